//! End to end: the simulator (in process, over Modbus TCP) with a scripted pump trip, the
//! collector with alert rules, alerts in the embedded store. The trip raises one alert, which
//! survives a collector restart in the same state and resolves itself after the trip ends.

mod util;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use collector::{Alerting, CollectorConfig, CollectorOptions, Metrics, RuleSet, config::Source};
use model::AlertState;
use sensor_sim::{Scenario, SimOptions, Simulation};
use store::alerts::SqliteAlerts;
use store::{AlertQuery, AlertStore, SqliteStore};
use tokio_util::sync::CancellationToken;
use util::eventually;

/// One pump station with two pumps; pump 1 trips one simulated minute in, for six minutes.
const SCENARIO: &str = r#"
name = "trip"

[[reservoir]]
name = "r1"
area_m2 = 1000
depth_m = 6
inflow_m3_per_h = 700

[[pump_station]]
name = "ps01"
draws_from = "r1"
pumps = 2

[[district]]
name = "d1"
population = 9000
fed_by = "ps01"

[[device]]
name = "ps01"
profile = "pump_station"
of = "ps01"

[[event]]
kind = "pump_trip"
target = "ps01"
pump = 1
start_min = 1
duration_min = 6
"#;

const RULES: &str = r#"
[engine]
tick_ms = 100

[[rule]]
name = "ps01_p1_trip"
kind = "nonzero"
device = "ps01"
point = "p1_fault_code"
asset = "ps01"
severity = "critical"
off_delay_s = 1
message_en = "pump 1 tripped (fault code {value})"
message_ja = "1号ポンプ 故障停止 (故障コード {value})"
"#;

async fn trip_alerts(alerts: &SqliteAlerts) -> Vec<model::Alert> {
    let mut all = alerts.alerts(&AlertQuery::default()).await.unwrap();
    all.retain(|a| a.rule == "ps01_p1_trip");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pump_trip_raises_one_alert_that_survives_a_restart_and_resolves_when_the_trip_ends() {
    let scenario = Scenario::parse(Path::new("trip.toml"), SCENARIO).unwrap();
    // A simulated minute per real second: the trip runs from 1 s to 7 s after the start.
    let sim = Simulation::from_scenario(&scenario, SimOptions { time_scale: 60.0, ..SimOptions::default() }).unwrap();
    let truth = sim.events().to_vec();
    assert_eq!(truth.len(), 1);
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addresses = listeners.iter().map(|(e, l)| (*e, l.local_addr().unwrap())).collect();
    let devices = sim.collector_config(&addresses);
    let sources = devices.iter().map(|_| Source { file: "<test>".into(), line: 0 }).collect();
    let config = CollectorConfig { devices, sources, buffer: Default::default() };

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.sqlite");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let alerts = Arc::new(SqliteAlerts::open(&db).await.unwrap());
    let rules = RuleSet::parse(Path::new("rules.toml"), RULES, &|_| None).unwrap();
    let sim_cancel = CancellationToken::new();
    let sim_task = tokio::spawn(sim.run(listeners, sim_cancel.clone()));
    let start_collector = |cancel: CancellationToken| {
        tokio::spawn(collector::run_with_alerts(
            config.clone(),
            store.clone(),
            CollectorOptions::new(dir.path().join("buffer")),
            Arc::new(Metrics::default()),
            Some(Alerting { rules: rules.clone(), store: alerts.clone(), works: None, states: None }),
            cancel,
        ))
    };

    let first = CancellationToken::new();
    let collector_task = start_collector(first.clone());
    let raised = eventually("a pump-trip alert", Duration::from_secs(20), || {
        let alerts = alerts.clone();
        async move { trip_alerts(&alerts).await.into_iter().next() }
    })
    .await;
    assert_eq!(raised.state, AlertState::Open);
    assert_eq!(raised.value, Some(f64::from(0x2310u16)));
    assert_eq!(raised.message_en, "pump 1 tripped (fault code 8976)");

    // Restart the collector while the pump is still tripped.
    first.cancel();
    collector_task.await.unwrap().unwrap();
    let second = CancellationToken::new();
    let collector_task = start_collector(second.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = trip_alerts(&alerts).await;
    assert_eq!(during.len(), 1, "not raised again after the restart: {during:#?}");
    assert!(during[0].state.is_active(), "{during:#?}");

    let resolved = eventually("the alert resolved after the trip ended", Duration::from_secs(30), || {
        let alerts = alerts.clone();
        async move { trip_alerts(&alerts).await.into_iter().find(|a| a.state == AlertState::Resolved) }
    })
    .await;
    assert_eq!(resolved.id, raised.id);
    assert_eq!(resolved.resolved_by, None, "resolved by the rule, not by a person");
    assert_eq!(trip_alerts(&alerts).await.len(), 1, "one alert for one episode");
    second.cancel();
    collector_task.await.unwrap().unwrap();
    sim_cancel.cancel();
    sim_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_cli_lists_acknowledges_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.sqlite");
    let alerts = SqliteAlerts::open(&db).await.unwrap();
    let new = model::NewAlert {
        rule: "pl07_pressure_low".into(),
        asset: "dma07".into(),
        device: model::DeviceId::new("pl07").unwrap(),
        point: model::PointName::new("pressure").unwrap(),
        severity: model::Severity::Critical,
        at: chrono::Utc::now(),
        value: Some(1.31),
        message_ja: "末端圧力低下 (1.31 bar)".into(),
        message_en: "critical-point pressure low (1.31 bar)".into(),
    };
    let id = alerts.raise(&new).await.unwrap().alert.id;
    let store = format!("sqlite://{}", db.display());
    let run = |args: &[&str]| {
        let out = util::bin().args(args).args(["--store", &store]).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["alerts", "list", "--state", "open"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with(&format!("{id}\topen\tcritical\tdma07\tpl07_pressure_low\t"))),
        "{out}"
    );
    let (ok, _, err) = run(&["alerts", "ack", &id.to_string(), "--by", "crew", "--comment", "valve team sent"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["alerts", "ack", &id.to_string(), "--by", "crew", "--comment", "again"]);
    assert!(!ok && err.contains("is acknowledged: cannot acknowledge it"), "{err}");
    let (ok, _, err) = run(&["alerts", "resolve", &id.to_string(), "--note", "main repaired", "--by", "crew"]);
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["alerts", "list", "--state", "open"]);
    assert!(ok && out.lines().count() == 1, "only the header: {out}");
    let a = alerts.alert(id).await.unwrap().unwrap();
    assert_eq!(
        (a.state, a.ack_comment.as_deref(), a.resolve_note.as_deref()),
        (AlertState::Resolved, Some("valve team sent"), Some("main repaired"))
    );
    let (ok, _, err) = run(&["alerts", "list", "--state", "closed"]);
    assert!(!ok && err.contains("closed"), "{err}");
}

/// `mizumori works` enters, lists and removes planned works; a bad entry names its field and
/// stores nothing.
#[tokio::test]
async fn the_cli_enters_lists_and_removes_planned_works() {
    use store::WorksStore;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.sqlite");
    let works = store::SqliteWorks::open(&db).await.unwrap();
    let store = format!("sqlite://{}", db.display());
    let run = |args: &[&str]| {
        let out = util::bin().args(args).args(["--store", &store]).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let add = |target: &'static str, kind: &'static str, from: &'static str| {
        vec!["works", "add", "--target", target, "--kind", kind, "--from", from, "--for", "2h", "--by", "tanaka"]
    };
    let (ok, out, err) = run(&add("dma03", "flushing", "2099-04-01T09:00:00+09:00"));
    assert!(ok && out.contains("flushing on dma03 from 2099-04-01T00:00:00Z to 2099-04-01T02:00:00Z"), "{out}{err}");
    let (ok, _, err) = run(&add("dma 03", "flushing", "2099-04-01T09:00:00+09:00"));
    assert!(!ok && err.contains("field `target`") && err.contains("\"dma 03\""), "{err}");
    let (ok, _, err) = run(&add("dma03", "hydrant", "2099-04-01T09:00:00+09:00"));
    assert!(!ok && err.contains("unknown kind of work \"hydrant\""), "{err}");
    let (ok, _, err) = run(&add("dma03", "flushing", "2099-04-01 09:00"));
    assert!(!ok && err.contains("RFC 3339"), "{err}");
    let (ok, out, err) = run(&["works", "list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "the header and the one good entry: {out}");
    assert!(lines[1].contains("\tflushing\tdma03\t2099-04-01T00:00:00Z\t2099-04-01T02:00:00Z\ttanaka\t"), "{out}");
    let all =
        works.works(chrono::DateTime::<chrono::Utc>::MIN_UTC, chrono::DateTime::<chrono::Utc>::MAX_UTC).await.unwrap();
    assert_eq!(all.len(), 1);
    let id = all[0].id.to_string();
    let (ok, _, err) = run(&["works", "remove", &id]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["works", "remove", &id]);
    assert!(!ok && err.contains(&format!("no planned work {id}")), "{err}");
}
