//! One cancellation token for the whole process, fired by Ctrl-C or SIGTERM.

use tokio_util::sync::CancellationToken;
use tracing::info;

/// A token that is cancelled on the first Ctrl-C (SIGINT) or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler works on unix");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("Ctrl-C: shutting down"),
                _ = term.recv() => info!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            info!("Ctrl-C: shutting down");
        }
        fire.cancel();
    });
    token
}
