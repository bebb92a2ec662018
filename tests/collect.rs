//! The collector against the simulator over real Modbus TCP, into the embedded store, and
//! `mizumori collect` with bad configuration files.

mod util;

use std::sync::Arc;
use std::time::Duration;

use collector::{CollectorConfig, CollectorOptions, Metrics};
use model::{DeviceId, Quality};
use sensor_sim::{SimOptions, Simulation};
use store::{ReadingSource, SqliteStore};
use tokio_util::sync::CancellationToken;
use util::{bin, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_device_never_stops_the_others() {
    let sim = Simulation::demo(SimOptions::default()).unwrap();
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addresses = listeners.iter().map(|(e, l)| (*e, l.local_addr().unwrap())).collect();
    let mut config_text = sim.collector_config_toml(&addresses);
    // A third device at a port where nothing listens (a closed port refuses at once).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    config_text.push_str(&format!(
        "\n[[device]]\nname = \"ps99\"\naddress = \"{dead_addr}\"\nunit_id = 1\npoll_interval_ms = 200\n\n[[device.point]]\nname = \"flow\"\nregister = \"input\"\naddress = 2\ntype = \"f32\"\n"
    ));
    let config = CollectorConfig::parse(std::path::Path::new("site.toml"), &config_text).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap());
    let cancel = CancellationToken::new();
    let sim_task = tokio::spawn(sim.run(listeners, cancel.clone()));
    let collector_task = tokio::spawn(collector::run(
        config,
        store.clone(),
        CollectorOptions::new(dir.path().join("buffer")),
        Arc::new(Metrics::default()),
        cancel.clone(),
    ));

    let latest = eventually("readings from every device", Duration::from_secs(20), || {
        let store = store.clone();
        async move {
            let latest = store.latest().await.ok()?;
            let has = |d: &str| latest.iter().any(|r| r.device == DeviceId::new(d).unwrap());
            (has("ps01") && has("fm01") && has("ps99")).then_some(latest)
        }
    })
    .await;
    for r in &latest {
        if r.device.as_str() == "ps99" {
            assert_eq!(r.quality, Quality::CommFail, "{r:?}");
        } else {
            assert_eq!(r.quality, Quality::Good, "{r:?}");
        }
    }
    // The live devices keep reporting every second while the dead one is retried.
    let count = |d: &'static str| {
        let store = store.clone();
        async move {
            let now = chrono::Utc::now();
            store
                .range(&store::RangeQuery {
                    device: DeviceId::new(d).unwrap(),
                    point: model::PointName::new(if d == "fm01" { "flow" } else { "outflow" }).unwrap(),
                    from: now - chrono::Duration::minutes(5),
                    to: now + chrono::Duration::seconds(1),
                    limit: 1000,
                })
                .await
                .unwrap()
                .len()
        }
    };
    let before = count("fm01").await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let after = count("fm01").await;
    assert!(after >= before + 2, "fm01 went from {before} to {after} readings in 3.2 s");
    assert!(count("ps01").await >= after - 1);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), collector_task).await.unwrap().unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(5), sim_task).await.unwrap().unwrap().unwrap();
}

#[test]
fn bad_config_is_reported_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[device]]\nname = \"ps01\"\naddress = \"127.0.0.1:5020\"\n\n[[device.point]]\nname = \"flow\"\nregister = \"input\"\naddress = 2\ntype = \"float\"\n",
    )
    .unwrap();
    let db = dir.path().join("m.sqlite");
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/demo.toml");
    let out = bin()
        .args(["collect", "--config"])
        .arg(&config)
        .arg("--store")
        .arg(format!("sqlite://{}", db.display()))
        .args(["--rules", rules])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:5"), "{err}");
    assert!(err.contains("device \"ps01\"") && err.contains("point \"flow\"") && err.contains("field `type`"), "{err}");
    assert!(err.contains("unknown variant `float`"), "{err}");
    assert!(!db.exists(), "a bad configuration must not create or touch the store");
}

#[test]
fn emitted_collector_config_is_valid() {
    let out = bin().args(["sim", "--listen", "127.0.0.1:5020", "--emit-collector-config"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let config = CollectorConfig::parse(std::path::Path::new("emitted.toml"), &text).unwrap();
    assert_eq!(config.devices.len(), 43);
    // Endpoint N of the scenario listens on the base port + N.
    let ports: std::collections::BTreeSet<u16> =
        config.devices.iter().map(|d| d.address.strip_prefix("127.0.0.1:").unwrap().parse().unwrap()).collect();
    assert_eq!(ports, (5020..=5033).collect());
}

/// Issue 3's acceptance: the configuration the simulator emits, given to the collector, fills
/// the store with good readings from every device of the demo scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emitted_config_collects_every_device_of_the_demo() {
    // A start at which no sensor or communication fault is active, so every device answers.
    let start = "2026-06-01T00:00:00Z".parse().unwrap();
    let sim = Simulation::demo(SimOptions { start: Some(start), ..SimOptions::default() }).unwrap();
    let faulty = |e: &sensor_sim::events::EventRecord| {
        let k = format!("{:?}", e.kind);
        (k.starts_with("Comm") || k.starts_with("Sensor")) && e.start < start + chrono::Duration::minutes(2)
    };
    assert!(!sim.events().iter().any(faulty), "pick another start: a fault is scheduled in the first minutes");
    let listeners = sim.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addresses = listeners.iter().map(|(e, l)| (*e, l.local_addr().unwrap())).collect();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("emitted.toml");
    std::fs::write(&config_path, sim.collector_config_toml(&addresses)).unwrap();
    let config = CollectorConfig::load(&config_path).unwrap();
    let expected: std::collections::BTreeSet<String> = config.devices.iter().map(|d| d.name.to_string()).collect();
    let points: usize = config.devices.iter().map(|d| d.points.len()).sum();
    assert_eq!(expected.len(), 43);

    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap());
    let cancel = CancellationToken::new();
    let sim_task = tokio::spawn(sim.run(listeners, cancel.clone()));
    let collector_task = tokio::spawn(collector::run(
        config,
        store.clone(),
        CollectorOptions::new(dir.path().join("buffer")),
        Arc::new(Metrics::default()),
        cancel.clone(),
    ));
    let latest = eventually("a reading of every point", Duration::from_secs(30), || {
        let store = store.clone();
        async move {
            let latest = store.latest().await.ok()?;
            (latest.len() == points).then_some(latest)
        }
    })
    .await;
    let seen: std::collections::BTreeSet<String> = latest.iter().map(|r| r.device.to_string()).collect();
    assert_eq!(seen, expected);
    let bad: Vec<String> = latest
        .iter()
        .filter(|r| r.quality != Quality::Good)
        .map(|r| format!("{}/{} {}", r.device, r.point, r.quality))
        .collect();
    assert!(bad.is_empty(), "not good: {bad:?}");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), collector_task).await.unwrap().unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(5), sim_task).await.unwrap().unwrap().unwrap();
}

#[test]
fn a_bad_scenario_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = \"x\"\n\n[[district]]\nname = \"d1\"\npopulation = -5\nfed_by = \"nowhere\"\n")
        .unwrap();
    let out = bin()
        .args(["sim", "--listen", "127.0.0.1:5020", "--emit-collector-config", "--scenario"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3: district[0].fed_by: no pump station named \"nowhere\""), "{err}");
    assert!(err.contains("bad.toml:3: district[0].population: -5 must be a positive number"), "{err}");
}
