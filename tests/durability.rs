//! No loss, no duplicates (issue 4): a real InfluxDB is stopped for ten simulated minutes while
//! the collector keeps polling, the collector is then killed with SIGKILL, the store comes back
//! and the collector restarts. Every reading the collector accepted before the kill is stored
//! exactly once, and the devices' sample sequence counters show no gap during the outage.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::Duration;

use model::{DeviceId, PointName, Quality, Reading};
use sensor_sim::{Scenario, SimOptions, Simulation};
use store::{InfluxAuth, InfluxStore, RangeQuery, ReadingSource};
use tokio_util::sync::CancellationToken;
use util::{Influxd, bin};

const NETWORK: &str = r#"
name = "durability"

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
population = 5000
fed_by = "ps01"

[[device]]
name = "ps01"
profile = "pump_station"
of = "ps01"

[[device]]
name = "fm01"
profile = "flow_meter"
of = "d1"
unit_id = 2

[[device]]
name = "fm02"
profile = "flow_meter"
of = "d2"
unit_id = 3

[[device]]
name = "pl01"
profile = "pressure_logger"
of = "d1"
endpoint = 1
"#;

type Key = (String, String, i64);

fn key(r: &Reading) -> Key {
    (r.device.to_string(), r.point.to_string(), r.time.timestamp_millis())
}

async fn everything(store: &InfluxStore, series: &[(DeviceId, PointName)]) -> BTreeMap<Key, Reading> {
    let now = chrono::Utc::now();
    let mut all = BTreeMap::new();
    for (device, point) in series {
        let q = RangeQuery {
            device: device.clone(),
            point: point.clone(),
            from: now - chrono::Duration::hours(1),
            to: now + chrono::Duration::hours(1),
            limit: 1_000_000,
        };
        for r in store.range(&q).await.unwrap() {
            assert!(all.insert(key(&r), r).is_none(), "a reading came back twice");
        }
    }
    all
}

fn start_collector(config: &std::path::Path, url: &str, buffer: &std::path::Path) -> Child {
    bin()
        .args(["collect", "--config"])
        .arg(config)
        .args(["--store", url, "--buffer-dir"])
        .arg(buffer)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_and_kill_9_lose_and_duplicate_nothing() {
    let Some(mut influx) = Influxd::start() else { return };
    // Two simulated minutes per real second: the 5 s outage below is 10 simulated minutes.
    // Values refresh every simulated minute (0.5 s real) and are polled every 100 ms, so every
    // sample is read several times and a lost one would show as a gap in `seq`.
    let scenario = Scenario::parse(std::path::Path::new("durability.toml"), NETWORK).unwrap();
    let options = SimOptions { time_scale: 120.0, update_interval: Duration::from_secs(60), ..SimOptions::default() };
    let sim = Simulation::from_scenario(&scenario, options).unwrap();
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addresses = listeners.iter().map(|(e, l)| (*e, l.local_addr().unwrap())).collect();
    let series: Vec<(DeviceId, PointName)> = sim
        .collector_config(&addresses)
        .iter()
        .flat_map(|d| d.points.iter().map(|p| (d.name.clone(), p.name.clone())))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        sim.collector_config_toml(&addresses).replace("poll_interval_ms = 1000", "poll_interval_ms = 100"),
    )
    .unwrap();
    let buffer = dir.path().join("buffer");
    let cancel = CancellationToken::new();
    let sim_task = tokio::spawn(sim.run(listeners, cancel.clone()));
    let url = format!("influx://127.0.0.1:{}/durability", influx.port);

    let mut collector = start_collector(&config, &url, &buffer);
    tokio::time::sleep(Duration::from_secs(3)).await;
    influx.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    collector.kill().unwrap(); // SIGKILL
    collector.wait().unwrap();
    let killed_at = chrono::Utc::now();

    // What the collector had accepted: in the store already, or in its buffer.
    let unsent = {
        let log =
            collector::buffer::Log::open(&buffer, 1 << 30, collector::WhenFull::Block, Duration::from_secs(1)).unwrap();
        log.read(usize::MAX).unwrap().0
    };
    assert!(unsent.len() > 1000, "only {} readings were waiting in the buffer", unsent.len());
    influx.resume();
    let store = InfluxStore::connect(&influx.url(), "durability", InfluxAuth::none()).await.unwrap();
    let mut accepted = everything(&store, &series).await;
    let stored_before = accepted.len();
    assert!(stored_before > 100, "{stored_before} readings reached the store before the outage");
    for r in unsent {
        accepted.insert(key(&r), r);
    }

    let mut collector = start_collector(&config, &url, &buffer);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = everything(&store, &series).await;
        if accepted.keys().all(|k| now.contains_key(k)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the buffer was not forwarded within 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    util::terminate(&mut collector);

    let stored = everything(&store, &series).await;
    let before_kill: BTreeMap<&Key, &Reading> = stored.iter().filter(|(_, r)| r.time <= killed_at).collect();
    let missing = accepted.keys().filter(|k| !stored.contains_key(*k)).count();
    assert_eq!(missing, 0, "accepted readings lost");
    assert_eq!(before_kill.len(), accepted.len(), "readings from before the kill that were never accepted");
    for (k, r) in &accepted {
        assert_eq!(&stored[k], r, "stored differently: {k:?}");
    }

    // The sequence counters: no sample skipped while the store was down.
    for device in ["ps01", "fm01", "fm02", "pl01"] {
        let seqs: BTreeSet<i64> = before_kill
            .values()
            .filter(|r| r.device.as_str() == device && r.point.as_str() == "seq" && r.quality == Quality::Good)
            .filter(|r| r.time <= killed_at - chrono::Duration::seconds(1))
            .map(|r| r.value.as_f64().unwrap() as i64)
            .collect();
        let (first, last) = (*seqs.first().unwrap(), *seqs.last().unwrap());
        assert!(last - first >= 10, "{device}: only {first}..{last}");
        assert_eq!(seqs.len() as i64, last - first + 1, "{device}: samples missing between {first} and {last}");
    }
    cancel.cancel();
    sim_task.await.unwrap().unwrap();
}
