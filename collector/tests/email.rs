//! E-mail delivery against a small local SMTP receiver: exactly one message per alert state
//! change, retried while the server is down, filtered by severity, bilingual.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use collector::alerts::email::Email;
use collector::alerts::notify;
use model::{DeviceId, NewAlert, PointName, Severity};
use store::AlertStore;
use store::alerts::{Resolution, SqliteAlerts};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

type Received = Arc<Mutex<Vec<String>>>;

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

/// Just enough SMTP to accept mail: greeting, EHLO, MAIL, RCPT, DATA, QUIT.
async fn smtp_sink(listener: TcpListener, got: Received) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let got = got.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
            let mut data: Option<String> = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(d) = &mut data {
                    if line == "." {
                        got.lock().unwrap().push(std::mem::take(d));
                        data = None;
                        w.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        d.push_str(line.strip_prefix('.').unwrap_or(&line));
                        d.push('\n');
                    }
                    continue;
                }
                let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                w.write_all(reply).await.unwrap();
            }
        });
    }
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
    let got: Received = Arc::default();
    let listener = TcpListener::bind(addr).await.unwrap();
    let server = tokio::spawn(smtp_sink(listener, got.clone()));

    let mails = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let v = got.lock().unwrap().clone();
            if v.len() >= 3 {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server got {:?}", got.lock().unwrap()));
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
    assert_eq!(got.lock().unwrap().len(), 3);
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(alerts.cursor("email:crew").await.unwrap(), Some(alerts.last_change().await.unwrap()));
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
