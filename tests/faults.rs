//! The collector against misbehaving devices (issue 4), counted by the devices' own sample
//! sequence counters: a silent device, late replies and a gateway reset.

mod util;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use collector::{CollectorConfig, CollectorOptions, Metrics};
use model::{DeviceId, PointName, Quality, Reading};
use sensor_sim::{Scenario, SimOptions, Simulation};
use store::{RangeQuery, ReadingSource, SqliteStore};
use tokio_util::sync::CancellationToken;

/// fm01 and fm02 sit behind one gateway (endpoint 0, one shared connection); pl01 and ps01
/// have their own addresses. ps01 goes silent for a simulated minute, pl01 answers late for
/// 18 s, and the gateway of fm01/fm02 drops its connections once.
const SCENARIO: &str = r#"
name = "faults"

[[reservoir]]
name = "r1"
area_m2 = 1000
depth_m = 6
inflow_m3_per_h = 700

[[pump_station]]
name = "ps01"
draws_from = "r1"

[[district]]
name = "d1"
population = 9000
fed_by = "ps01"

[[district]]
name = "d2"
population = 4000
fed_by = "ps01"

[[device]]
name = "fm01"
profile = "flow_meter"
of = "d1"

[[device]]
name = "fm02"
profile = "flow_meter"
of = "d2"
unit_id = 2

[[device]]
name = "pl01"
profile = "pressure_logger"
of = "d1"
endpoint = 1

[[device]]
name = "ps01"
profile = "pump_station"
of = "ps01"
endpoint = 2

[[event]]
kind = "comm_timeout"
target = "ps01"
start_min = 0.2
duration_min = 1.0

[[event]]
kind = "comm_late_reply"
target = "pl01"
start_min = 0.5
duration_min = 0.3
magnitude = 700

[[event]]
kind = "comm_reset"
target = "fm01"
start_min = 1.0
duration_min = 0.01
"#;

async fn readings(store: &SqliteStore, device: &str, point: &str) -> Vec<Reading> {
    let now = chrono::Utc::now();
    store
        .range(&RangeQuery {
            device: DeviceId::new(device).unwrap(),
            point: PointName::new(point).unwrap(),
            from: now - chrono::Duration::hours(1),
            to: now + chrono::Duration::hours(1),
            limit: 1_000_000,
        })
        .await
        .unwrap()
}

fn good_seqs(rs: &[Reading]) -> Vec<i64> {
    rs.iter().filter(|r| r.quality == Quality::Good).map(|r| r.value.as_f64().unwrap() as i64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_devices_cost_only_their_own_readings() {
    // Six simulated seconds per real second; values refresh every simulated second (166 ms)
    // and are polled every 50 ms, so each sample is read several times.
    let scenario = Scenario::parse(std::path::Path::new("faults.toml"), SCENARIO).unwrap();
    let sim = Simulation::from_scenario(&scenario, SimOptions { time_scale: 6.0, ..SimOptions::default() }).unwrap();
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addresses = listeners.iter().map(|(e, l)| (*e, l.local_addr().unwrap())).collect();
    let text = sim
        .collector_config_toml(&addresses)
        .replace("poll_interval_ms = 1000", "poll_interval_ms = 50")
        .replace("timeout_ms = 1000", "timeout_ms = 300");
    let config = CollectorConfig::parse(std::path::Path::new("faults.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap());
    let metrics = Arc::new(Metrics::default());
    let cancel = CancellationToken::new();
    let sim_task = tokio::spawn(sim.run(listeners, cancel.clone()));
    let options = CollectorOptions::new(dir.path().join("buffer"));
    let collector_task = tokio::spawn(collector::run(config, store.clone(), options, metrics.clone(), cancel.clone()));
    // 1.4 simulated minutes.
    tokio::time::sleep(Duration::from_secs(14)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), collector_task).await.unwrap().unwrap().unwrap();
    sim_task.await.unwrap().unwrap();

    // The silent pump station cost nobody else a sample, and the reset gateway's devices
    // reconnected at once: every sequence number from first to last is there.
    for device in ["fm01", "fm02"] {
        let seqs = good_seqs(&readings(&store, device, "seq").await);
        let distinct: std::collections::BTreeSet<i64> = seqs.iter().copied().collect();
        let (first, last) = (*distinct.first().unwrap(), *distinct.last().unwrap());
        assert!(last - first >= 60, "{device}: only {first}..{last}");
        assert_eq!(distinct.len() as i64, last - first + 1, "{device}: samples missing between {first} and {last}");
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{device}: a sequence number went backwards");
    }
    // Behind one connection, each unit's values stay its own: district 1 draws about twice
    // what district 2 does.
    let mean = |rs: &[Reading]| {
        let v: Vec<f64> = rs.iter().filter_map(|r| r.value.as_f64()).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (q1, q2) = (mean(&readings(&store, "fm01", "flow").await), mean(&readings(&store, "fm02", "flow").await));
    assert!(q1 > 1.6 * q2 && q1 < 3.0 * q2, "fm01 {q1} vs fm02 {q2}");

    // The silent device: failed reads recorded as comm_fail, polled less often meanwhile.
    let ps = readings(&store, "ps01", "outflow").await;
    let failed = ps.iter().filter(|r| r.quality == Quality::CommFail).count();
    assert!(failed > 0 && ps.iter().any(|r| r.quality == Quality::Good), "{failed} failed of {}", ps.len());

    // Late replies: failed while late, good again afterwards, and never a stale or foreign
    // answer: the logger's counter never goes backwards.
    let pl = readings(&store, "pl01", "seq").await;
    let by_quality: BTreeMap<String, usize> = pl.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.quality.to_string()).or_default() += 1;
        m
    });
    assert!(by_quality.get("comm_fail").copied().unwrap_or(0) > 0, "{by_quality:?}");
    let seqs = good_seqs(&pl);
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "pl01: a sequence number went backwards: {seqs:?}");
    let last_fail = pl.iter().filter(|r| r.quality == Quality::CommFail).map(|r| r.time).max().unwrap();
    assert!(pl.iter().any(|r| r.quality == Quality::Good && r.time > last_fail), "pl01 never recovered");
    let pressure = readings(&store, "pl01", "pressure").await;
    assert!(
        pressure
            .iter()
            .filter(|r| r.quality == Quality::Good)
            .all(|r| (0.5..10.0).contains(&r.value.as_f64().unwrap()))
    );

    let text = metrics.render();
    let count = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("collector_reconnects_total") >= 2.0, "{text}");
    assert!(count("collector_device_errors_total{kind=\"timeout\"}") >= 1.0, "{text}");
}
