//! Progress bars for long steps. indicatif draws nothing when stderr is not a terminal, so
//! scripts and CI logs stay clean without a flag.

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) fn bar(len: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>20} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}
