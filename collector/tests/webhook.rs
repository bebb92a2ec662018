//! Webhook delivery against a small local HTTP receiver: exactly one POST per alert state
//! change, retried while the receiver does not answer, filtered by severity; and over https,
//! to a receiver whose certificate the webhook's `ca_file` vouches for, and not to one it
//! does not.

mod tls_util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use collector::alerts::notify::{self, Webhook};
use model::{DeviceId, NewAlert, PointName, Severity};
use store::alerts::{Resolution, SqliteAlerts};
use store::tls::ExtraRoots;
use store::{AlertStore, SqliteStore};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

type Received = Arc<Mutex<Vec<serde_json::Value>>>;

async fn receive(
    State(got): State<Received>,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<serde_json::Value>,
) -> &'static str {
    body["idempotency_key"] = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).into();
    got.lock().unwrap().push(body);
    "ok"
}

fn new(rule: &str, severity: Severity) -> NewAlert {
    NewAlert {
        rule: rule.to_owned(),
        asset: "ps02".to_owned(),
        device: DeviceId::new("ps02").unwrap(),
        point: PointName::new("p1_fault_code").unwrap(),
        severity,
        at: Utc::now(),
        value: Some(8976.0),
        message_ja: "1号ポンプ 故障停止".to_owned(),
        message_en: "pump 1 tripped".to_owned(),
    }
}

/// Waits (polling every 20 ms, at most 10 s) until the receiver holds `n` bodies.
async fn wait_for(got: &Received, n: usize) -> Vec<serde_json::Value> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let v = got.lock().unwrap().clone();
            if v.len() >= n {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the receiver got {:?}, expected {n} bodies", got.lock().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_post_per_state_change_delivered_after_the_receiver_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.sqlite");
    // Alerts share the file with the readings, as in the embedded deployment.
    let _readings = SqliteStore::open(&db).await.unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&db).await.unwrap());

    // The receiver is down: its port is closed, so every attempt is refused. (A receiver that
    // hangs instead may process a request the notifier gave up on: delivery is at least once,
    // and the `Idempotency-Key` header lets such a receiver drop the repeat.)
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let hook = Webhook {
        name: "crew".into(),
        url: format!("http://{addr}/alerts"),
        min_severity: Severity::Major,
        token: None,
        roots: ExtraRoots::none(),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        timeout: Duration::from_millis(300),
    };
    alerts.set_cursor(&hook.consumer(), alerts.last_change().await.unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let task =
        tokio::spawn(notify::run(hook, alerts.clone(), wake.clone(), Duration::from_millis(100), cancel.clone()));

    // Raised, repeated (not a state change), acknowledged, resolved; and a minor alert the
    // webhook's filter leaves out.
    let id = alerts.raise(&new("trip", Severity::Critical)).await.unwrap().alert.id;
    alerts.raise(&new("trip", Severity::Critical)).await.unwrap();
    alerts.raise(&new("warm", Severity::Minor)).await.unwrap();
    alerts.acknowledge(id, "crew1", "on the way", Utc::now()).await.unwrap();
    alerts
        .resolve(id, &Resolution::Manual { by: "crew1".into(), note: Some("drive reset".into()) }, Utc::now())
        .await
        .unwrap();
    wake.notify_waiters();

    // Down for a while: several attempts are refused. Then it comes up on the same port.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!task.is_finished());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let got: Received = Arc::default();
    let app = axum::Router::new().route("/alerts", axum::routing::post(receive)).with_state(got.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let bodies = wait_for(&got, 3).await;
    let states: Vec<&str> = bodies.iter().map(|b| b["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["open", "acknowledged", "resolved"], "{bodies:#?}");
    assert!(bodies.iter().all(|b| b["rule"] == "trip" && b["alert_id"] == id));
    assert_eq!(bodies[1]["by"], "crew1");
    assert_eq!(bodies[0]["idempotency_key"], format!("webhook:crew:{}", bodies[0]["seq"]));
    assert_eq!(bodies[2]["note"], "drive reset");
    assert_eq!(bodies[0]["text"]["en"], "[CRITICAL] ps02 opened: pump 1 tripped (ps02/p1_fault_code)");
    assert_eq!(bodies[0]["text"]["ja"], "【重大】ps02 発生: 1号ポンプ 故障停止 (ps02/p1_fault_code)");

    // Nothing more comes: no duplicates from the retries, nothing for the minor alert.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(got.lock().unwrap().len(), 3);

    // A restart of the notifier resumes after the last delivered change: no resend.
    cancel.cancel();
    task.await.unwrap();
    let last = alerts.last_change().await.unwrap();
    assert_eq!(alerts.cursor("webhook:crew").await.unwrap(), Some(last));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_is_sent_and_a_refusal_is_not_retried_forever() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    let got: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let n = {
                    let mut s = seen.lock().unwrap();
                    s.push(auth);
                    s.len()
                };
                // The first message is refused as malformed; the receiver takes the next.
                if n == 1 { axum::http::StatusCode::BAD_REQUEST } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let hook = Webhook {
        name: "ops".into(),
        url: format!("http://{addr}/alerts"),
        min_severity: Severity::Info,
        token: Some(collector::alerts::notify::Secret::new("t0ken".into())),
        roots: ExtraRoots::none(),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
    };
    alerts.set_cursor(&hook.consumer(), 0).await.unwrap();
    let id = alerts.raise(&new("trip", Severity::Info)).await.unwrap().alert.id;
    alerts.acknowledge(id, "crew1", "ok", Utc::now()).await.unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(notify::run(
        hook,
        alerts.clone(),
        Arc::new(Notify::new()),
        Duration::from_millis(50),
        cancel.clone(),
    ));
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("two requests");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got, [Some("Bearer t0ken".to_owned()), Some("Bearer t0ken".to_owned())]);
    cancel.cancel();
    task.await.unwrap();
    server.abort();
}

/// An https webhook to `addr` trusting the CA in `ca_file`.
fn https_hook(addr: std::net::SocketAddr, ca_file: &std::path::Path) -> Webhook {
    Webhook {
        name: "crew".into(),
        url: format!("https://{addr}/alerts"),
        min_severity: Severity::Major,
        token: Some(collector::alerts::notify::Secret::new("t0ken".into())),
        roots: ExtraRoots::from_pem_file(ca_file).unwrap(),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_receiver_trusted_through_the_ca_file_gets_one_post_per_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    let ca = tls_util::TestCa::new(dir.path(), "city");
    let listener = tls_util::TlsListener::bind(ca.server_config()).await;
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let handshakes = listener.handshakes.clone();
    let got: Received = Arc::default();
    let app = axum::Router::new().route("/alerts", axum::routing::post(receive)).with_state(got.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let hook = https_hook(addr, &ca.ca_file);
    alerts.set_cursor(&hook.consumer(), alerts.last_change().await.unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let task =
        tokio::spawn(notify::run(hook, alerts.clone(), wake.clone(), Duration::from_millis(100), cancel.clone()));
    let id = alerts.raise(&new("trip", Severity::Critical)).await.unwrap().alert.id;
    alerts.raise(&new("trip", Severity::Critical)).await.unwrap();
    alerts.raise(&new("warm", Severity::Minor)).await.unwrap();
    alerts.acknowledge(id, "crew1", "on the way", Utc::now()).await.unwrap();
    alerts.resolve(id, &Resolution::Manual { by: "crew1".into(), note: None }, Utc::now()).await.unwrap();
    wake.notify_waiters();

    let bodies = wait_for(&got, 3).await;
    let states: Vec<&str> = bodies.iter().map(|b| b["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["open", "acknowledged", "resolved"], "{bodies:#?}");
    assert!(bodies.iter().all(|b| b["alert_id"] == id));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(got.lock().unwrap().len(), 3, "no repeats");
    assert_eq!(handshakes.failed(), 0);
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(alerts.cursor("webhook:crew").await.unwrap(), Some(alerts.last_change().await.unwrap()));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_gets_nothing_and_the_change_waits_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Arc::new(SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap());
    // The webhook trusts the city's CA; the receiver first shows a certificate of another.
    let city = tls_util::TestCa::new(dir.path(), "city");
    let other = tls_util::TestCa::new(dir.path(), "other");
    let listener = tls_util::TlsListener::bind(other.server_config()).await;
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let (handshakes, config) = (listener.handshakes.clone(), listener.config.clone());
    let got: Received = Arc::default();
    let app = axum::Router::new().route("/alerts", axum::routing::post(receive)).with_state(got.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let hook = https_hook(addr, &city.ca_file);
    let start = alerts.last_change().await.unwrap();
    alerts.set_cursor(&hook.consumer(), start).await.unwrap();
    let cancel = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let task =
        tokio::spawn(notify::run(hook, alerts.clone(), wake.clone(), Duration::from_millis(100), cancel.clone()));
    alerts.raise(&new("trip", Severity::Critical)).await.unwrap();
    wake.notify_waiters();

    // Retried with backoff: several refused handshakes, no request, the cursor where it was.
    tokio::time::timeout(Duration::from_secs(10), async {
        while handshakes.failed() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the notifier retries the untrusted receiver");
    assert!(got.lock().unwrap().is_empty(), "nothing is sent over a connection the roots do not vouch for");
    assert_eq!(alerts.cursor("webhook:crew").await.unwrap(), Some(start), "the change is kept");
    assert!(!task.is_finished());

    // Once the receiver shows a certificate from the city's CA, the change arrives, once.
    *config.write().unwrap() = city.server_config();
    let bodies = wait_for(&got, 1).await;
    assert_eq!(bodies[0]["state"], "open");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.lock().unwrap().len(), 1);
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(alerts.cursor("webhook:crew").await.unwrap(), Some(alerts.last_change().await.unwrap()));
    server.abort();
}
