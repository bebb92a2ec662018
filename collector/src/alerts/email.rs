//! E-mail notification over SMTP: one message per alert state change, per mail target whose
//! severity filter the alert passes, subject and body in Japanese and English.
//!
//! Delivery runs like a webhook's (`notify::run`): its own task, its own outbox cursor
//! (`email:NAME`), exponential backoff while the server is unreachable or answers with a
//! transient (4xx) reply, and a permanent (5xx) refusal skips the message. This build has no
//! TLS: send to a local relay (the usual site MTA), which adds TLS and authentication to the
//! outside world. The password comes from the environment or a file and is never logged.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use model::Severity;
use store::alerts::AlertChange;

use super::notify::{Outcome, Secret, severity_ja, state_en, state_ja};

/// A validated `[[email]]` target.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub name: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Changes of alerts below this severity are not sent here.
    pub min_severity: Severity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub timeout: Duration,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("name", &self.name)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("to", &self.to.len())
            .field("min_severity", &self.min_severity)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

impl Email {
    /// The outbox cursor of this target.
    pub fn consumer(&self) -> String {
        format!("email:{}", self.name)
    }

    pub(crate) fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.smtp_host)
            .port(self.smtp_port)
            .timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            b = b.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        b.build()
    }
}

/// Subject and plain-text body of one change: Japanese first, then English.
pub fn message_text(change: &AlertChange) -> (String, String) {
    let a = &change.alert;
    let subject = format!(
        "【{}】{} {}: {} / [{}] {} {}",
        severity_ja(a.severity),
        a.asset,
        state_ja(change.state),
        a.message_ja,
        a.severity.as_str().to_uppercase(),
        a.asset,
        state_en(change.state),
    );
    let who = change.by.as_deref().unwrap_or_default();
    let note = change.note.as_deref().unwrap_or_default();
    let body = format!(
        "{ja}\n\
         資産: {asset}  機器: {device}/{point}  重要度: {sev_ja}  状態: {state_ja}\n\
         時刻: {at}  担当: {who}  備考: {note}\n\
         初回: {first}  最終: {last}  回数: {count}\n\
         \n\
         {en}\n\
         Asset: {asset}  Device: {device}/{point}  Severity: {sev}  State: {state_en}\n\
         At: {at}  By: {who}  Note: {note}\n\
         First seen: {first}  Last seen: {last}  Count: {count}\n\
         \n\
         alert {id}, rule {rule}, change {seq}\n",
        ja = a.message_ja,
        en = a.message_en,
        asset = a.asset,
        device = a.device,
        point = a.point,
        sev_ja = severity_ja(a.severity),
        sev = a.severity,
        state_ja = state_ja(change.state),
        state_en = state_en(change.state),
        at = change.at.to_rfc3339(),
        first = a.first_seen.to_rfc3339(),
        last = a.last_seen.to_rfc3339(),
        count = a.count,
        id = a.id,
        rule = a.rule,
        seq = change.seq,
    );
    (subject, body)
}

/// Sends one change.
pub(crate) async fn send(
    mail: &Email,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    change: &AlertChange,
) -> Outcome {
    let (subject, body) = message_text(change);
    let mut m = Message::builder().from(mail.from.clone()).subject(subject);
    for to in &mail.to {
        m = m.to(to.clone());
    }
    // The message id names the change, so a mail client can drop a repeat after a retry.
    let host = mail.from.email.domain();
    m = m.message_id(Some(format!("<{}.{}@{host}>", mail.consumer().replace(':', "."), change.seq)));
    // Base64: any server and client takes it, whatever the mix of Japanese and ASCII.
    let body =
        Body::new_with_encoding(body.replace('\n', "\r\n"), ContentTransferEncoding::Base64).unwrap_or_else(Body::new);
    let part = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body);
    let message = match m.singlepart(part) {
        Ok(m) => m,
        Err(e) => return Outcome::Refused(format!("cannot build the message: {e}")),
    };
    match transport.send(message).await {
        Ok(_) => Outcome::Delivered,
        Err(e) if e.is_permanent() => {
            Outcome::Refused(format!("SMTP {}", e.status().map(|c| c.to_string()).unwrap_or_default()))
        }
        Err(e) if e.is_transient() => {
            Outcome::Retry(format!("SMTP {}", e.status().map(|c| c.to_string()).unwrap_or_default()))
        }
        Err(e) if e.is_timeout() => Outcome::Retry("timeout".to_owned()),
        // lettre's other errors are connection failures; their text has no secret, but keep
        // the log to the kind as for webhooks.
        Err(_) => Outcome::Retry("connection failed".to_owned()),
    }
}
