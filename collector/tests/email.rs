//! E-mail delivery against a small local SMTP receiver: exactly one message per alert state
//! change, retried while the server is down, filtered by severity, bilingual; over STARTTLS
//! and implicit TLS with a certificate from a CA made in the test, and never in plain text
//! when TLS was asked for and the server does not offer it.

mod tls_util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use collector::alerts::email::Email;
use collector::alerts::notify;
use model::{DeviceId, NewAlert, PointName, Severity};
use std::sync::atomic::{AtomicBool, Ordering};
use store::AlertStore;
use store::alerts::{Resolution, SqliteAlerts};

use collector::alerts::email::SmtpTls;
use store::tls::ExtraRoots;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

/// The decoded text of a message whose body is base64 (as lettre sends Japanese text).
fn text_of(message: &str) -> String {
    let (head, body) = message.split_once("\n\n").expect("headers, a blank line, a body");
    assert!(head.contains("Content-Transfer-Encoding: base64"), "{head}");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0u32, Vec::new());
    for c in body.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        bits = (bits << 6) | alphabet.iter().position(|a| *a == c).expect("base64") as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).unwrap().replace("\r\n", "\n")
}

/// What the sink saw: each command with whether the connection was encrypted, and the
/// messages with the same flag.
#[derive(Default)]
struct Sink {
    /// Offer STARTTLS with this certificate (when `offer_starttls` is set), or speak TLS from
    /// the first byte when `implicit` is set.
    tls: Option<Arc<ServerConfig>>,
    offer_starttls: AtomicBool,
    implicit: bool,
    commands: Mutex<Vec<(bool, String)>>,
    mails: Mutex<Vec<(bool, String)>>,
}

impl Sink {
    fn plain() -> Arc<Self> {
        Arc::default()
    }

    fn starttls(config: Arc<ServerConfig>) -> Arc<Self> {
        Arc::new(Sink { tls: Some(config), offer_starttls: AtomicBool::new(true), ..Sink::default() })
    }

    /// The verbs received, with whether each came over TLS.
    fn verbs(&self) -> Vec<(bool, String)> {
        let commands = self.commands.lock().unwrap();
        commands.iter().map(|(tls, c)| (*tls, c.split(' ').next().unwrap_or_default().to_ascii_uppercase())).collect()
    }
}

/// Just enough SMTP to accept mail: greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT.
async fn smtp_sink(listener: TcpListener, sink: Arc<Sink>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let sink = sink.clone();
        tokio::spawn(async move {
            let acceptor = sink.tls.clone().map(TlsAcceptor::from);
            if sink.implicit {
                let Ok(tls) = acceptor.expect("a certificate for implicit TLS").accept(stream).await else { return };
                session(tls, true, true, &sink).await;
            } else if let Some(plain) = session(stream, false, true, &sink).await {
                // The client asked for STARTTLS and got 220: the handshake follows, then the
                // session starts over with EHLO (no greeting).
                let Ok(tls) = acceptor.expect("STARTTLS offered").accept(plain).await else { return };
                session(tls, true, false, &sink).await;
            }
        });
    }
}

/// One SMTP session over `stream`; returns the stream when the client asked for STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(stream: S, tls: bool, greet: bool, sink: &Sink) -> Option<S> {
    let mut conn = BufReader::new(stream);
    if greet {
        conn.get_mut().write_all(b"220 sink ESMTP\r\n").await.ok()?;
    }
    let mut data: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(d) = &mut data {
            if line == "." {
                sink.mails.lock().unwrap().push((tls, std::mem::take(d)));
                data = None;
                conn.get_mut().write_all(b"250 queued\r\n").await.ok()?;
            } else {
                d.push_str(line.strip_prefix('.').unwrap_or(line));
                d.push('\n');
            }
            continue;
        }
        sink.commands.lock().unwrap().push((tls, line.to_owned()));
        let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        let reply: Vec<u8> = match verb.as_str() {
            "EHLO" => {
                let mut ext = vec!["sink", "8BITMIME", "AUTH PLAIN LOGIN"];
                if !tls && sink.tls.is_some() && sink.offer_starttls.load(Ordering::SeqCst) {
                    ext.push("STARTTLS");
                }
                let last = ext.len() - 1;
                ext.iter()
                    .enumerate()
                    .map(|(i, e)| format!("250{}{e}\r\n", if i == last { ' ' } else { '-' }))
                    .collect::<String>()
                    .into_bytes()
            }
            "STARTTLS" => {
                conn.get_mut().write_all(b"220 go ahead\r\n").await.ok()?;
                return Some(conn.into_inner());
            }
            "AUTH" => b"235 accepted\r\n".to_vec(),
            "DATA" => {
                data = Some(String::new());
                b"354 go on\r\n".to_vec()
            }
            "QUIT" => {
                let _ = conn.get_mut().write_all(b"221 bye\r\n").await;
                return None;
            }
            _ => b"250 ok\r\n".to_vec(),
        };
        conn.get_mut().write_all(&reply).await.ok()?;
    }
}

/// Waits (at most 10 s) until the sink holds `n` messages.
async fn wait_for_mails(sink: &Sink, n: usize) -> Vec<(bool, String)> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let v = sink.mails.lock().unwrap().clone();
            if v.len() >= n {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server got {:?}, commands {:?}", sink.mails.lock().unwrap(), sink.verbs()))
}

/// A target at 127.0.0.1:`port` with `tls`, trusting the CA in `ca_file`, logging in.
fn tls_target(port: u16, tls: SmtpTls, ca_file: &std::path::Path) -> Email {
    Email {
        name: "crew".into(),
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        tls,
        roots: ExtraRoots::from_pem_file(ca_file).unwrap(),
        from: "Mizumori <alerts@mizumori.test>".parse().unwrap(),
        to: vec!["crew@mizumori.test".parse().unwrap()],
        min_severity: Severity::Info,
        username: Some("mizumori".into()),
        password: Some(notify::Secret::new("pa55word".into())),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
    }
}

/// Starts `mail`'s notifier from the newest change and raises one critical alert.
async fn raise_one(mail: Email, alerts: &Arc<SqliteAlerts>, cancel: &CancellationToken) -> tokio::task::JoinHandle<()> {
    alerts.set_cursor(&mail.consumer(), alerts.last_change().await.unwrap()).await.unwrap();
    let wake = Arc::new(Notify::new());
    let task =
        tokio::spawn(notify::run(mail, alerts.clone(), wake.clone(), Duration::from_millis(100), cancel.clone()));
    alerts.raise(&new("dma07_burst", Severity::Critical)).await.unwrap();
    wake.notify_waiters();
    task
}

fn new(rule: &str, severity: Severity) -> NewAlert {
    NewAlert {
        rule: rule.to_owned(),
        asset: "dma07".to_owned(),
        device: DeviceId::new("fm07").unwrap(),
        point: PointName::new("flow").unwrap(),
        severity,
        at: Utc::now(),
        value: Some(35.0),
        message_ja: "管路破損(漏水事故)の疑い".to_owned(),
        message_en: "suspected burst".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_per_state_change_delivered_after_the_server_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    // The server is down: its port is closed, so every attempt is refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mail = Email {
        name: "crew".into(),
        smtp_host: "127.0.0.1".into(),
        smtp_port: addr.port(),
        tls: SmtpTls::None,
        roots: ExtraRoots::none(),
        from: "Mizumori <alerts@mizumori.test>".parse().unwrap(),
        to: vec!["crew@mizumori.test".parse().unwrap(), "duty@mizumori.test".parse().unwrap()],
        min_severity: Severity::Major,
        username: None,
        password: None,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        timeout: Duration::from_secs(2),
    };
    alerts.set_cursor(&mail.consumer(), alerts.last_change().await.unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let task =
        tokio::spawn(notify::run(mail, alerts.clone(), wake.clone(), Duration::from_millis(100), cancel.clone()));

    let id = alerts.raise(&new("dma07_burst", Severity::Critical)).await.unwrap().alert.id;
    alerts.raise(&new("dma07_burst", Severity::Critical)).await.unwrap();
    alerts.raise(&new("pl09_battery", Severity::Minor)).await.unwrap();
    alerts.acknowledge(id, "crew1", "on the way", Utc::now()).await.unwrap();
    alerts
        .resolve(id, &Resolution::Manual { by: "crew1".into(), note: Some("main repaired".into()) }, Utc::now())
        .await
        .unwrap();
    wake.notify_waiters();

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!task.is_finished());
    let sink = Sink::plain();
    let listener = TcpListener::bind(addr).await.unwrap();
    let server = tokio::spawn(smtp_sink(listener, sink.clone()));

    let mails: Vec<String> = wait_for_mails(&sink, 3).await.into_iter().map(|(_, m)| m).collect();
    // Japanese first, then English, in every message; the state in both.
    let texts: Vec<String> = mails.iter().map(|m| text_of(m)).collect();
    for ((m, t), (ja, en)) in
        mails.iter().zip(&texts).zip([("発生", "opened"), ("対応受付", "acknowledged"), ("復旧", "resolved")])
    {
        assert!(t.starts_with("管路破損(漏水事故)の疑い\n") && t.contains("\nsuspected burst\n"), "{t}");
        assert!(t.contains(&format!("状態: {ja}")) && t.contains(&format!("State: {en}")), "{t}");
        assert!(m.contains("To: crew@mizumori.test, duty@mizumori.test"), "{m}");
        // Long headers are folded onto continuation lines.
        let unfolded = m.replace("\n ", " ");
        assert!(unfolded.contains(&format!("/ [CRITICAL] dma07 {en}\n")), "a bilingual subject: {m}");
    }
    assert!(texts[1].contains("By: crew1") && texts[2].contains("Note: main repaired"), "{texts:#?}");
    // Nothing more: no duplicates from the retries, nothing for the minor alert.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.mails.lock().unwrap().len(), 3);
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(alerts.cursor("email:crew").await.unwrap(), Some(alerts.last_change().await.unwrap()));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_comes_before_the_login_and_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    let ca = tls_util::TestCa::new(dir.path(), "city");
    let sink = Sink::starttls(ca.server_config());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(smtp_sink(listener, sink.clone()));
    let cancel = CancellationToken::new();
    let task = raise_one(tls_target(port, SmtpTls::StartTls, &ca.ca_file), &alerts, &cancel).await;

    let mails = wait_for_mails(&sink, 1).await;
    assert!(mails[0].0, "the message came over TLS");
    assert!(text_of(&mails[0].1).starts_with("管路破損(漏水事故)の疑い\n"));
    let verbs = sink.verbs();
    let plain: Vec<&str> = verbs.iter().filter(|(tls, _)| !tls).map(|(_, v)| v.as_str()).collect();
    assert_eq!(plain, ["EHLO", "STARTTLS"], "nothing but the upgrade in plain text: {verbs:?}");
    assert!(verbs.contains(&(true, "AUTH".to_owned())), "the login, over TLS: {verbs:?}");
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(alerts.cursor("email:crew").await.unwrap(), Some(alerts.last_change().await.unwrap()));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_speaks_tls_from_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    let ca = tls_util::TestCa::new(dir.path(), "city");
    let sink = Arc::new(Sink { tls: Some(ca.server_config()), implicit: true, ..Sink::default() });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(smtp_sink(listener, sink.clone()));
    let cancel = CancellationToken::new();
    let task = raise_one(tls_target(port, SmtpTls::Tls, &ca.ca_file), &alerts, &cancel).await;

    let mails = wait_for_mails(&sink, 1).await;
    assert!(mails[0].0);
    assert!(sink.verbs().iter().all(|(tls, _)| *tls), "{:?}", sink.verbs());
    cancel.cancel();
    task.await.unwrap();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_gets_no_plain_message_and_the_change_waits() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    let ca = tls_util::TestCa::new(dir.path(), "city");
    let sink = Sink::starttls(ca.server_config());
    sink.offer_starttls.store(false, Ordering::SeqCst);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(smtp_sink(listener, sink.clone()));
    let start = alerts.last_change().await.unwrap();
    let cancel = CancellationToken::new();
    let task = raise_one(tls_target(port, SmtpTls::StartTls, &ca.ca_file), &alerts, &cancel).await;

    // Retried: the client connects, sees no STARTTLS, and leaves without sending anything.
    tokio::time::timeout(Duration::from_secs(10), async {
        while sink.verbs().iter().filter(|(_, v)| v == "EHLO").count() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the notifier retries");
    let verbs = sink.verbs();
    assert!(verbs.iter().all(|(_, v)| v == "EHLO" || v == "QUIT"), "no login, no message in plain text: {verbs:?}");
    assert!(sink.mails.lock().unwrap().is_empty());
    assert_eq!(alerts.cursor("email:crew").await.unwrap(), Some(start), "the change is kept");
    assert!(!task.is_finished());

    // Once the server offers STARTTLS the change goes out, over TLS, once.
    sink.offer_starttls.store(true, Ordering::SeqCst);
    let mails = wait_for_mails(&sink, 1).await;
    assert!(mails[0].0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails.lock().unwrap().len(), 1);
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(alerts.cursor("email:crew").await.unwrap(), Some(alerts.last_change().await.unwrap()));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_gets_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    let (city, other) = (tls_util::TestCa::new(dir.path(), "city"), tls_util::TestCa::new(dir.path(), "other"));
    let sink = Sink::starttls(other.server_config());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(smtp_sink(listener, sink.clone()));
    let start = alerts.last_change().await.unwrap();
    let cancel = CancellationToken::new();
    let task = raise_one(tls_target(port, SmtpTls::StartTls, &city.ca_file), &alerts, &cancel).await;

    tokio::time::timeout(Duration::from_secs(10), async {
        while sink.verbs().iter().filter(|(_, v)| v == "STARTTLS").count() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the notifier retries");
    let verbs = sink.verbs();
    assert!(verbs.iter().all(|(tls, v)| !tls && (v == "EHLO" || v == "STARTTLS")), "{verbs:?}");
    assert!(sink.mails.lock().unwrap().is_empty());
    assert_eq!(alerts.cursor("email:crew").await.unwrap(), Some(start));
    cancel.cancel();
    task.await.unwrap();
    server.abort();
}

#[test]
fn the_subject_and_body_carry_both_languages() {
    let change = store::alerts::AlertChange {
        seq: 7,
        state: model::AlertState::Open,
        at: Utc::now(),
        by: None,
        note: None,
        alert: model::Alert {
            id: 3,
            rule: "ps02_p1_trip".into(),
            asset: "ps02".into(),
            device: DeviceId::new("ps02").unwrap(),
            point: PointName::new("p1_fault_code").unwrap(),
            severity: Severity::Critical,
            state: model::AlertState::Open,
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            count: 1,
            value: Some(8976.0),
            message_ja: "1号ポンプ 故障停止".into(),
            message_en: "pump 1 tripped".into(),
            acknowledged_by: None,
            acknowledged_at: None,
            ack_comment: None,
            resolved_by: None,
            resolved_at: None,
            resolve_note: None,
            shelved_until: None,
        },
    };
    let (subject, body) = collector::alerts::email::message_text(&change);
    assert_eq!(subject, "【重大】ps02 発生: 1号ポンプ 故障停止 / [CRITICAL] ps02 opened");
    assert!(body.starts_with("1号ポンプ 故障停止\n資産: ps02"), "{body}");
    assert!(body.contains("\npump 1 tripped\nAsset: ps02"), "{body}");
}
