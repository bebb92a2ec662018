//! E-mail notification over SMTP: one message per alert state change, per mail target whose
//! severity filter the alert passes, subject and body in Japanese and English.
//!
//! Delivery runs like a webhook's (`notify::run`): its own task, its own outbox cursor
//! (`email:NAME`), exponential backoff while the server is unreachable or answers with a
//! transient (4xx) reply, and a permanent (5xx) refusal skips the message. The connection is
//! STARTTLS (the default, port 587), implicit TLS (port 465) or plain SMTP to a trusted relay
//! ([`SmtpTls`]); TLS trusts the system's roots and an optional `ca_file` (`store::tls`). A
//! server that cannot do the TLS asked for is an error that is retried, never a plain send. The
//! password comes from the environment or a file, is sent only over TLS unless the rules file
//! explicitly allows otherwise, and is never logged.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use model::Severity;
use serde::Deserialize;
use store::alerts::AlertChange;
use store::tls::ExtraRoots;

use super::notify::{Outcome, Secret, severity_ja, state_en, state_ja};

/// How the connection to the SMTP server is secured (`tls = "…"` in the rules file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP, then `STARTTLS` before anything else is sent; a server that does not offer
    /// it is an error (retried), not a plain send. Port 587 by default.
    StartTls,
    /// TLS from the first byte ("SMTPS", RFC 8314). Port 465 by default.
    Tls,
    /// Plain SMTP, for a relay on this machine or the site network. Port 25 by default.
    None,
}

impl SmtpTls {
    /// The usual port of each mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }
}

/// A validated `[[email]]` target.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub name: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// Roots trusted beside the system's (`ca_file`).
    pub roots: ExtraRoots,
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
            .field("tls", &self.tls)
            .field("roots", &self.roots)
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

    /// The SMTP transport; fails only when the TLS settings cannot be built (no CA
    /// certificates on the machine and no `ca_file`).
    pub(crate) fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            // `Required`, never `Opportunistic`: a server (or someone in between) that hides
            // STARTTLS must not get the message and the password in plain text.
            SmtpTls::StartTls => Tls::Required(self.tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(self.tls_parameters()?),
        };
        // `builder_dangerous` only means "no TLS chosen yet": `.tls(..)` sets it here.
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.smtp_host)
            .port(self.smtp_port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            b = b.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(b.build())
    }

    /// The server's host name is what its certificate must name; the system's roots (through
    /// lettre's platform verifier, like `store::tls` for https) and the `ca_file`'s are trusted.
    fn tls_parameters(&self) -> Result<TlsParameters, String> {
        let mut p = TlsParameters::builder(self.smtp_host.clone());
        for cert in self.roots.certs() {
            let cert = Certificate::from_der(cert.to_vec()).map_err(|e| format!("ca_file: {e}"))?;
            p = p.add_root_certificate(cert);
        }
        p.build_rustls().map_err(|e| format!("cannot set up TLS: {e}"))
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
        // A certificate the roots do not vouch for, or a name that does not match: the reason
        // is what the operator needs, and it holds no secret.
        Err(e) if store::tls::tls_reason(&e).is_some() => {
            Outcome::Retry(format!("TLS: {}", store::tls::tls_reason(&e).unwrap_or_default()))
        }
        Err(e) if e.is_tls() => Outcome::Retry(format!("TLS: {e}")),
        // lettre's own refusals before sending, e.g. "STARTTLS is not supported on this
        // server" with tls = "starttls": retried, since the server may be fixed; never sent
        // in plain text.
        Err(e) if e.is_client() => Outcome::Retry(e.to_string()),
        // The rest are connection failures. The address and mode (not secret: `Email`'s Debug
        // shows them) tell an operator whose table left the port out that 587 was tried.
        Err(_) => Outcome::Retry(format!(
            "cannot connect to {}:{} (tls = {:?})",
            mail.smtp_host,
            mail.smtp_port,
            mail.tls.as_str()
        )),
    }
}
