//! PDF reports: the Japanese font they embed, and the Typst engine that lays them out.
//!
//! The font is read at run time from the system (Debian `fonts-ipaexfont-gothic`), never shipped
//! in the repository: [`KNOWN_FONT_PATHS`] in order, or only the file named by
//! `MIZUMORI_PDF_FONT`. It is looked for when the app state is made (so start-up says at once,
//! in the log and in `/api/health`, when there is none) and read on the first report. Without a
//! Japanese font the report routes answer 503 with a message rather than a PDF whose Japanese
//! is tofu boxes; an English-only fallback would need a Latin font we do not ship either, and a
//! report in the wrong language is not what a planner asked for.
//!
//! This module does not decide what a report says: `plan` builds its inputs; the layout is the
//! Typst template beside this file. Typst embeds only the glyphs used (a font subset).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[cfg(feature = "pdf")]
use typst::foundations::{Bytes, Dict};
#[cfg(feature = "pdf")]
use typst::text::Font;
#[cfg(feature = "pdf")]
use typst_as_lib::{TypstEngine, TypstTemplateMainFile};

/// What a report is made from: the template's `sys.inputs` (a Typst dictionary).
#[cfg(feature = "pdf")]
pub(crate) type ReportInputs = Dict;
/// Without the `pdf` feature there is no Typst, and no report is made.
#[cfg(not(feature = "pdf"))]
pub(crate) type ReportInputs = ();

/// The environment variable naming the report font file (a `.ttf`, `.otf` or `.ttc`).
pub const FONT_ENV: &str = "MIZUMORI_PDF_FONT";

/// The environment variable naming the utility on reports (its title block).
pub const UTILITY_ENV: &str = "MIZUMORI_UTILITY_NAME";

/// Where Debian and similar systems put a Japanese gothic font, best first.
pub const KNOWN_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
];

/// A character every Japanese font has and a Latin one lacks: 水 (water).
#[cfg(feature = "pdf")]
const PROBE: char = '水';

/// The renewal-plan template.
#[cfg(feature = "pdf")]
const PLAN_TEMPLATE: &str = include_str!("plan_report.typ");

/// Why a build without the `pdf` feature makes no reports.
const NOT_BUILT: &str = "this server was built without PDF reports (cargo feature `pdf`)";

/// What the font search found, as `/api/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FontStatus {
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Why there is none, for the log and the health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A loaded engine: the template with the font's faces, and the family name to set.
struct Engine {
    #[cfg(feature = "pdf")]
    typst: TypstEngine<TypstTemplateMainFile>,
    #[cfg(feature = "pdf")]
    family: String,
}

/// The report machinery of one app: where the font is, and the engine once it is built.
pub(crate) struct Reports {
    #[cfg_attr(not(feature = "pdf"), allow(dead_code))]
    utility: String,
    font: Result<PathBuf, String>,
    engine: OnceLock<Result<Arc<Engine>, String>>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").field("font", &self.font).finish_non_exhaustive()
    }
}

impl Reports {
    /// The font named by `MIZUMORI_PDF_FONT`, or the first of [`KNOWN_FONT_PATHS`] that exists.
    pub(crate) fn from_env() -> Self {
        match std::env::var_os(FONT_ENV).filter(|v| !v.is_empty()) {
            // An explicit choice is the only one tried: falling back behind the operator's back
            // would hide a typo.
            Some(path) => Reports::search(&[PathBuf::from(path)], Some(FONT_ENV)),
            None => Reports::search(&KNOWN_FONT_PATHS.iter().map(PathBuf::from).collect::<Vec<_>>(), None),
        }
    }

    /// The first of `paths` that is a file; `from` names where the list came from.
    pub(crate) fn search(paths: &[PathBuf], from: Option<&str>) -> Self {
        let font = match paths.iter().find(|p| p.is_file()) {
            Some(_) if !cfg!(feature = "pdf") => Err(NOT_BUILT.to_owned()),
            Some(p) => Ok(p.clone()),
            None if paths.is_empty() => Err("no font file configured".to_owned()),
            None => {
                let list = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
                Err(match from {
                    Some(var) => format!("{var}={list}: no such file"),
                    None => format!(
                        "no Japanese font in {list}; install fonts-ipaexfont-gothic or set {FONT_ENV}=/path/to/font.ttf"
                    ),
                })
            }
        };
        let utility = std::env::var(UTILITY_ENV).ok().filter(|u| !u.trim().is_empty());
        let reports =
            Reports { utility: utility.unwrap_or_else(|| "Mizumori".to_owned()), font, engine: OnceLock::new() };
        let status = reports.status();
        match &status.problem {
            Some(problem) => tracing::warn!(%problem, "PDF reports are off"),
            None => tracing::debug!(path = ?status.path, "PDF report font found"),
        }
        reports
    }

    /// The utility's name for the report's title block.
    #[cfg_attr(not(feature = "pdf"), allow(dead_code))]
    pub(crate) fn utility(&self) -> &str {
        &self.utility
    }

    pub(crate) fn status(&self) -> FontStatus {
        let loaded = self.engine.get().and_then(|e| e.as_ref().err());
        match (&self.font, loaded) {
            (Ok(path), None) => FontStatus { available: true, path: Some(path.clone()), problem: None },
            (Ok(path), Some(e)) => FontStatus { available: false, path: Some(path.clone()), problem: Some(e.clone()) },
            (Err(e), _) => FontStatus { available: false, path: None, problem: Some(e.clone()) },
        }
    }

    /// The engine, built on first use (reading the font file, a few MB); the error says why not.
    fn engine(&self) -> Result<Arc<Engine>, String> {
        self.engine
            .get_or_init(|| {
                let path = self.font.as_ref().map_err(Clone::clone)?;
                #[cfg(feature = "pdf")]
                let engine = load(path);
                #[cfg(not(feature = "pdf"))]
                let engine: Result<Engine, String> = Err(format!("{}: {NOT_BUILT}", path.display()));
                if let Err(e) = &engine {
                    tracing::warn!(error = %e, "PDF reports are off: the font could not be used");
                }
                engine.map(Arc::new)
            })
            .clone()
    }

    /// Lays out the renewal-plan report from `inputs` (see `plan_report.typ`) and writes the PDF.
    /// Blocking: tens of milliseconds of CPU; call it on the blocking pool.
    #[cfg(feature = "pdf")]
    pub(crate) fn plan_pdf(&self, mut inputs: ReportInputs) -> Result<Vec<u8>, ReportError> {
        let engine = self.engine().map_err(ReportError::NoFont)?;
        inputs.insert("font".into(), typst::foundations::Value::Str(engine.family.as_str().into()));
        let doc = engine.typst.compile_with_input(inputs).output.map_err(|e| ReportError::Layout(format!("{e}")))?;
        typst_pdf::pdf(&doc, &Default::default()).map_err(|e| ReportError::Layout(format!("{e:?}")))
    }

    #[cfg(not(feature = "pdf"))]
    pub(crate) fn plan_pdf(&self, _inputs: ReportInputs) -> Result<Vec<u8>, ReportError> {
        self.engine().map_err(ReportError::NoFont).map(|_| Vec::new())
    }
}

/// Why a report was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// No usable Japanese font: the route answers 503 and says so.
    #[error("no Japanese font for PDF reports: {0}")]
    NoFont(String),
    /// Our template or its inputs are wrong: a bug, answered as 500.
    #[cfg_attr(not(feature = "pdf"), allow(dead_code))]
    #[error("PDF layout failed: {0}")]
    Layout(String),
}

#[cfg(feature = "pdf")]
fn load(path: &std::path::Path) -> Result<Engine, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let faces: Vec<Font> = Font::iter(Bytes::new(data)).collect();
    let family = faces
        .iter()
        .find(|f| f.info().coverage.contains(u32::from(PROBE)))
        .map(|f| f.info().family.clone())
        .ok_or_else(|| {
        if faces.is_empty() {
            format!("{}: not a font file (TrueType, OpenType or a collection)", path.display())
        } else {
            format!("{}: the font has no Japanese glyphs (no {PROBE})", path.display())
        }
    })?;
    let typst = TypstEngine::builder().main_file(PLAN_TEMPLATE).fonts(faces).build();
    Ok(Engine { typst, family })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_is_reported_with_the_paths_tried() {
        let r = Reports::search(&[PathBuf::from("/nonexistent/font.ttf")], None);
        let s = r.status();
        assert!(!s.available);
        let problem = s.problem.unwrap();
        assert!(problem.contains("/nonexistent/font.ttf") && problem.contains("fonts-ipaexfont-gothic"), "{problem}");
        assert!(matches!(r.plan_pdf(ReportInputs::default()), Err(ReportError::NoFont(_))));
    }

    #[cfg(feature = "pdf")]
    #[test]
    fn a_file_that_is_no_font_turns_reports_off_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-font.ttf");
        std::fs::write(&path, b"hello").unwrap();
        let r = Reports::search(std::slice::from_ref(&path), Some(FONT_ENV));
        assert!(r.status().available, "found, not yet read");
        let Err(ReportError::NoFont(e)) = r.plan_pdf(ReportInputs::default()) else { panic!("expected NoFont") };
        assert!(e.contains("not-a-font.ttf") && e.contains("not a font file"), "{e}");
        assert!(!r.status().available, "after the first try the health check knows");
    }
}
