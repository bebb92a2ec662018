//! Webhook notification: one JSON POST per alert state change, per webhook whose severity
//! filter the alert passes, retried with exponential backoff while the receiver is down.
//!
//! Each webhook has its own task reading the store's change outbox from its own cursor, so a
//! slow or dead receiver delays only its own messages, never collection or the rule engine,
//! and a restart resumes where the last delivered change left off. Delivery is at least once:
//! a crash between the receiver's answer and the cursor update, or a receiver that answers
//! after our timeout, gets that change again, with the same `Idempotency-Key` header.
//! E-mail targets (`super::email`) are delivered by the same loop.
//!
//! A webhook URL is `http://` or `https://`; https trusts the system's roots and the
//! webhook's `ca_file` (`store::tls`). A receiver whose certificate is not trusted is treated
//! as one that is down: the change is retried with backoff and stays in the outbox.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use model::{AlertState, Severity};
use serde_json::json;
use store::AlertStore;
use store::alerts::AlertChange;
use store::tls::ExtraRoots;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// A secret (a webhook's bearer token): never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A validated `[[webhook]]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// Changes of alerts below this severity are not sent here.
    pub min_severity: Severity,
    pub token: Option<Secret>,
    /// Roots trusted beside the system's for an https URL (`ca_file`).
    pub roots: ExtraRoots,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub timeout: Duration,
}

impl fmt::Debug for Webhook {
    // The URL may carry a token in its query string: keep it out of logs too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("min_severity", &self.min_severity)
            .field("token", &self.token)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The outbox cursor of this webhook.
    pub fn consumer(&self) -> String {
        format!("webhook:{}", self.name)
    }
}

pub(crate) fn severity_ja(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "重大",
        Severity::Major => "重要",
        Severity::Minor => "軽微",
        Severity::Info => "情報",
    }
}

pub(crate) fn state_ja(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "発生",
        AlertState::Acknowledged => "対応受付",
        AlertState::Resolved => "復旧",
        AlertState::Shelved => "保留",
    }
}

pub(crate) fn state_en(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "opened",
        AlertState::Acknowledged => "acknowledged",
        AlertState::Resolved => "resolved",
        AlertState::Shelved => "shelved",
    }
}

/// The JSON body of one change: the alert, the change, and a one-line text in each language.
pub fn body(change: &AlertChange) -> serde_json::Value {
    let a = &change.alert;
    let text_en = format!(
        "[{}] {} {}: {} ({}/{})",
        a.severity.as_str().to_uppercase(),
        a.asset,
        state_en(change.state),
        a.message_en,
        a.device,
        a.point
    );
    let text_ja = format!(
        "【{}】{} {}: {} ({}/{})",
        severity_ja(a.severity),
        a.asset,
        state_ja(change.state),
        a.message_ja,
        a.device,
        a.point
    );
    json!({
        "seq": change.seq,
        "alert_id": a.id,
        "state": change.state,
        "at": change.at,
        "by": change.by,
        "note": change.note,
        "rule": a.rule,
        "asset": a.asset,
        "device": a.device,
        "point": a.point,
        "severity": a.severity,
        "value": a.value,
        "first_seen": a.first_seen,
        "last_seen": a.last_seen,
        "count": a.count,
        "text": { "en": text_en, "ja": text_ja },
        "message": { "en": a.message_en, "ja": a.message_ja },
    })
}

pub(crate) enum Outcome {
    Delivered,
    /// The receiver refused this message for good (HTTP 4xx other than 408/429, SMTP 5xx).
    Refused(String),
    Retry(String),
}

async fn post(client: &reqwest::Client, hook: &Webhook, body: &serde_json::Value) -> Outcome {
    // The key names the change, so a receiver can drop a repeat of a message it processed
    // after we had given up waiting for its answer.
    let key = format!("{}:{}", hook.consumer(), body["seq"]);
    let mut req = client.post(&hook.url).timeout(hook.timeout).header("Idempotency-Key", key).json(body);
    if let Some(Secret(token)) = &hook.token {
        req = req.bearer_auth(token);
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => {
            let status = resp.status().as_u16();
            if (400..500).contains(&status) && status != 408 && status != 429 {
                Outcome::Refused(format!("HTTP {status}"))
            } else {
                Outcome::Retry(format!("HTTP {status}"))
            }
        }
        // reqwest's error text may contain the URL; log only its kind, or the TLS reason
        // (an untrusted certificate, a wrong name), which holds no secret.
        Err(e) if e.is_timeout() => Outcome::Retry("timeout".to_owned()),
        Err(e) if store::tls::tls_reason(&e).is_some() => {
            Outcome::Retry(format!("TLS: {}", store::tls::tls_reason(&e).unwrap_or_default()))
        }
        Err(e) if e.is_connect() => Outcome::Retry("connection refused or unreachable".to_owned()),
        Err(_) => Outcome::Retry("request failed".to_owned()),
    }
}

/// Where notifications go: a webhook or an e-mail target.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook(Webhook),
    Email(super::email::Email),
}

impl From<Webhook> for Target {
    fn from(w: Webhook) -> Self {
        Target::Webhook(w)
    }
}

impl From<super::email::Email> for Target {
    fn from(e: super::email::Email) -> Self {
        Target::Email(e)
    }
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Webhook(w) => &w.name,
            Target::Email(e) => &e.name,
        }
    }

    pub fn consumer(&self) -> String {
        match self {
            Target::Webhook(w) => w.consumer(),
            Target::Email(e) => e.consumer(),
        }
    }

    fn min_severity(&self) -> Severity {
        match self {
            Target::Webhook(w) => w.min_severity,
            Target::Email(e) => e.min_severity,
        }
    }

    fn backoff(&self) -> (Duration, Duration) {
        match self {
            Target::Webhook(w) => (w.initial_backoff, w.max_backoff),
            Target::Email(e) => (e.initial_backoff, e.max_backoff),
        }
    }
}

/// A target with its client: an HTTP client, or an SMTP transport.
enum Sender {
    Webhook(Webhook, reqwest::Client),
    Email(super::email::Email, Box<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>),
}

impl Sender {
    /// The client of a target; fails only when its TLS settings cannot be built.
    fn new(target: Target) -> Result<Self, String> {
        match target {
            Target::Webhook(w) => {
                let client = store::tls::http_client_for(&w.url, &w.roots)
                    .map_err(|e| format!("cannot set up TLS: {e}"))?
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                Ok(Sender::Webhook(w, client))
            }
            Target::Email(e) => {
                let t = e.transport()?;
                Ok(Sender::Email(e, Box::new(t)))
            }
        }
    }

    async fn send(&self, change: &AlertChange) -> Outcome {
        match self {
            Sender::Webhook(hook, client) => post(client, hook, &body(change)).await,
            Sender::Email(mail, transport) => super::email::send(mail, transport, change).await,
        }
    }
}

/// Delivers the outbox to one webhook or e-mail target until `cancel` fires. `wake` is
/// signalled when the engine has recorded changes; a slow poll also catches changes made by
/// other processes (`mizumori alerts ack` and `resolve`).
pub async fn run(
    target: impl Into<Target>,
    store: Arc<dyn AlertStore>,
    wake: Arc<Notify>,
    poll: Duration,
    cancel: CancellationToken,
) {
    let target = target.into();
    let consumer = target.consumer();
    let name = target.name().to_owned();
    let min_severity = target.min_severity();
    let (initial_backoff, max_backoff) = target.backoff();
    // A client that cannot be built (no CA certificates on the machine) is retried like an
    // unreachable target, so the outbox keeps the changes until it is fixed.
    let mut wait = initial_backoff;
    let sender = loop {
        match Sender::new(target.clone()) {
            Ok(s) => break s,
            Err(why) => {
                error!(target = %name, error = %why, retry_in_ms = wait.as_millis() as u64, "notification target cannot be set up");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(max_backoff);
            }
        }
    };
    let mut cursor = loop {
        match store.cursor(&consumer).await {
            Ok(Some(c)) => break c,
            Ok(None) => {
                error!(target = %name, "notification cursor missing; it is set before the engine starts");
                break 0;
            }
            Err(e) => {
                warn!(target = %name, error = %e, "cannot read the notification cursor; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    loop {
        let changes = match store.changes_after(cursor, 100).await {
            Ok(c) => c,
            Err(e) => {
                warn!(target = %name, error = %e, "cannot read alert changes");
                Vec::new()
            }
        };
        for change in &changes {
            if change.alert.severity >= min_severity {
                let mut wait = initial_backoff;
                let mut attempts = 0u32;
                loop {
                    attempts += 1;
                    match sender.send(change).await {
                        Outcome::Delivered => {
                            debug!(target = %name, alert = change.alert.id, state = %change.state, "notified");
                            if attempts > 1 {
                                info!(target = %name, attempts, "notification target reachable again");
                            }
                            break;
                        }
                        Outcome::Refused(why) => {
                            error!(target = %name, reason = %why, alert = change.alert.id, "notification refused; skipping it");
                            break;
                        }
                        Outcome::Retry(why) => {
                            warn!(target = %name, error = %why, attempts, retry_in_ms = wait.as_millis() as u64, "notification target unavailable");
                            tokio::select! {
                                _ = cancel.cancelled() => return,
                                _ = tokio::time::sleep(wait) => {}
                            }
                            wait = (wait * 2).min(max_backoff);
                        }
                    }
                }
            }
            cursor = change.seq;
            if let Err(e) = store.set_cursor(&consumer, cursor).await {
                // Not fatal: the change may be sent again after a restart.
                warn!(target = %name, error = %e, "cannot record notification progress");
            }
        }
        if changes.len() == 100 {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
