//! Webhook notification: one JSON POST per alert state change, per webhook whose severity
//! filter the alert passes, retried with exponential backoff while the receiver is down.
//!
//! Each webhook has its own task reading the store's change outbox from its own cursor, so a
//! slow or dead receiver delays only its own messages, never collection or the rule engine,
//! and a restart resumes where the last delivered change left off. Delivery is at least once:
//! a crash between the receiver's answer and the cursor update, or a receiver that answers
//! after our timeout, gets that change again, with the same `Idempotency-Key` header.
//! This module does not send e-mail.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use model::{AlertState, Severity};
use serde_json::json;
use store::AlertStore;
use store::alerts::AlertChange;
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
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The outbox cursor of this webhook.
    pub fn consumer(&self) -> String {
        format!("webhook:{}", self.name)
    }
}

fn severity_ja(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "重大",
        Severity::Major => "重要",
        Severity::Minor => "軽微",
        Severity::Info => "情報",
    }
}

fn state_ja(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "発生",
        AlertState::Acknowledged => "対応受付",
        AlertState::Resolved => "復旧",
        AlertState::Shelved => "保留",
    }
}

fn state_en(s: AlertState) -> &'static str {
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

enum Outcome {
    Delivered,
    /// The receiver refused this message for good (a 4xx other than 408/429).
    Refused(u16),
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
                Outcome::Refused(status)
            } else {
                Outcome::Retry(format!("HTTP {status}"))
            }
        }
        // reqwest's error text may contain the URL; log only its kind.
        Err(e) if e.is_timeout() => Outcome::Retry("timeout".to_owned()),
        Err(e) if e.is_connect() => Outcome::Retry("connection refused or unreachable".to_owned()),
        Err(_) => Outcome::Retry("request failed".to_owned()),
    }
}

/// Delivers the outbox to one webhook until `cancel` fires. `wake` is signalled when the
/// engine has recorded changes; a slow poll also catches changes made by other processes
/// (`mizumori alerts ack` and `resolve`).
pub async fn run(
    hook: Webhook,
    store: Arc<dyn AlertStore>,
    wake: Arc<Notify>,
    poll: Duration,
    cancel: CancellationToken,
) {
    let consumer = hook.consumer();
    let client = reqwest::Client::new();
    let mut cursor = loop {
        match store.cursor(&consumer).await {
            Ok(Some(c)) => break c,
            Ok(None) => {
                error!(webhook = %hook.name, "webhook cursor missing; it is set before the engine starts");
                break 0;
            }
            Err(e) => {
                warn!(webhook = %hook.name, error = %e, "cannot read the webhook cursor; retrying");
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
                warn!(webhook = %hook.name, error = %e, "cannot read alert changes");
                Vec::new()
            }
        };
        for change in &changes {
            if change.alert.severity >= hook.min_severity {
                let body = body(change);
                let mut wait = hook.initial_backoff;
                let mut attempts = 0u32;
                loop {
                    attempts += 1;
                    match post(&client, &hook, &body).await {
                        Outcome::Delivered => {
                            debug!(webhook = %hook.name, alert = change.alert.id, state = %change.state, "notified");
                            if attempts > 1 {
                                info!(webhook = %hook.name, attempts, "webhook reachable again");
                            }
                            break;
                        }
                        Outcome::Refused(status) => {
                            error!(webhook = %hook.name, status, alert = change.alert.id, "webhook refused a notification; skipping it");
                            break;
                        }
                        Outcome::Retry(why) => {
                            warn!(webhook = %hook.name, error = %why, attempts, retry_in_ms = wait.as_millis() as u64, "webhook unavailable");
                            tokio::select! {
                                _ = cancel.cancelled() => return,
                                _ = tokio::time::sleep(wait) => {}
                            }
                            wait = (wait * 2).min(hook.max_backoff);
                        }
                    }
                }
            }
            cursor = change.seq;
            if let Err(e) = store.set_cursor(&consumer, cursor).await {
                // Not fatal: the change may be sent again after a restart.
                warn!(webhook = %hook.name, error = %e, "cannot record webhook progress");
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
