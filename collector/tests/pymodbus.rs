//! Interop with an implementation no one here wrote: a pymodbus 3.x server
//! (`peers/pymodbus_server.py`) serving f32/u32/i32/u64/f64 values in all four word orders, a
//! device documented with 1-based addresses and a 50-register cap, bits, a string, and
//! exception responses. Every value must decode right and every exception become a quality.
//!
//! `scripts/test` installs pymodbus in a virtual environment and points
//! `MIZUMORI_TEST_PYTHON` at its interpreter.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use collector::{CollectorConfig, CollectorOptions, Metrics};
use model::{Quality, Value};
use store::{ReadingSource, SqliteStore};
use tokio_util::sync::CancellationToken;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Option<String> {
    if let Ok(p) = std::env::var("MIZUMORI_TEST_PYTHON") {
        return Some(p);
    }
    let ok = Command::new("python3").args(["-c", "import pymodbus"]).output().is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3".to_owned());
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but pymodbus is not available: scripts/test installs it"
    );
    eprintln!("skipping: pymodbus is not installed (scripts/test installs it and sets MIZUMORI_TEST_PYTHON)");
    None
}

fn start_server(python: &str) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/pymodbus_server.py");
    let child = Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "pymodbus server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

fn config(port: u16) -> String {
    let mut t = format!(
        "[[device]]\nname = \"peer\"\naddress = \"127.0.0.1:{port}\"\nunit_id = 1\npoll_interval_ms = 300\naddress_base = 1\nmax_registers_per_request = 50\n"
    );
    let mut point = |name: &str, register: &str, address: u32, ty: &str, extra: &str| {
        t.push_str(&format!(
            "\n[[device.point]]\nname = \"{name}\"\nregister = \"{register}\"\naddress = {address}\ntype = \"{ty}\"\n{extra}"
        ));
    };
    let orders = ["abcd", "cdab", "badc", "dcba"];
    for (base, ty, width) in [(1, "f32", 2), (9, "u32", 2), (17, "i32", 2), (25, "u64", 4), (41, "f64", 4)] {
        for (k, order) in orders.iter().enumerate() {
            point(
                &format!("{ty}_{order}"),
                "holding",
                base + k as u32 * width,
                ty,
                &format!("word_order = \"{order}\"\n"),
            );
        }
    }
    for i in 0..100 {
        point(&format!("block_{i:02}"), "holding", 61 + i, "u16", "");
    }
    for b in [0, 1, 2, 13, 15] {
        point(&format!("bit_{b:02}"), "holding", 161, "bool", &format!("bit = {b}\n"));
    }
    point("name", "holding", 171, "string", "length = 6\n");
    point("temperature", "input", 1, "i16", "scale = 0.1\n");
    for c in 0..8 {
        point(&format!("coil_{c}"), "coil", c + 1, "bool", "");
    }
    point("missing", "holding", 301, "u16", "");
    // The same server, asked for a unit it does not have.
    t.push_str(&format!(
        "\n[[device]]\nname = \"peer_unit2\"\naddress = \"127.0.0.1:{port}\"\nunit_id = 2\npoll_interval_ms = 300\n\n[[device.point]]\nname = \"x\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n"
    ));
    // A configuration that ignores the device's cap: the long block in one read of 100.
    t.push_str(&format!(
        "\n[[device]]\nname = \"peer_uncapped\"\naddress = \"127.0.0.1:{port}\"\nunit_id = 1\npoll_interval_ms = 300\nmax_registers_per_request = 125\n"
    ));
    for i in 0..100 {
        t.push_str(&format!(
            "\n[[device.point]]\nname = \"block_{i:02}\"\nregister = \"holding\"\naddress = {}\ntype = \"u16\"\n",
            60 + i
        ));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_decodes_and_every_exception_becomes_a_quality() {
    let Some(python) = python() else { return };
    let (_server, port) = start_server(&python);
    let config = CollectorConfig::parse(std::path::Path::new("peer.toml"), &config(port)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite")).await.unwrap());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(collector::run(
        config,
        store.clone(),
        CollectorOptions::new(dir.path().join("buffer")),
        Arc::new(Metrics::default()),
        cancel.clone(),
    ));
    let expected_points = 20 + 100 + 5 + 1 + 1 + 8 + 1 + 1 + 100;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let latest = loop {
        let latest = store.latest().await.unwrap();
        if latest.len() == expected_points {
            break latest;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {expected_points} points read", latest.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    cancel.cancel();
    task.await.unwrap().unwrap();

    let by: BTreeMap<(String, String), (Value, Quality)> =
        latest.into_iter().map(|r| ((r.device.to_string(), r.point.to_string()), (r.value, r.quality))).collect();
    let get = |d: &str, p: &str| by.get(&(d.to_owned(), p.to_owned())).cloned().unwrap_or_else(|| panic!("no {d}/{p}"));
    let num = |p: &str| match get("peer", p) {
        (Value::Number(v), Quality::Good) => v,
        other => panic!("{p}: {other:?}"),
    };
    for order in ["abcd", "cdab", "badc", "dcba"] {
        assert_eq!(num(&format!("f32_{order}")), 123.25, "f32 {order}");
        assert_eq!(num(&format!("u32_{order}")), f64::from(0x1234_5678u32), "u32 {order}");
        assert_eq!(num(&format!("i32_{order}")), -123_456.0, "i32 {order}");
        assert_eq!(num(&format!("u64_{order}")), 0x0102_0304_0506_0708u64 as f64, "u64 {order}");
        assert_eq!(num(&format!("f64_{order}")), -1234.5678, "f64 {order}");
    }
    for i in 0..100 {
        assert_eq!(num(&format!("block_{i:02}")), f64::from(1000 + i), "1-based address {}", 61 + i);
    }
    for (b, v) in [(0, 1.0), (1, 0.0), (2, 1.0), (13, 1.0), (15, 1.0)] {
        assert_eq!(num(&format!("bit_{b:02}")), v, "bit {b}");
    }
    assert_eq!(get("peer", "name"), (Value::Text("MIZUMORI-01".into()), Quality::Good));
    assert_eq!(num("temperature"), -25.0);
    for (c, v) in [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0].iter().enumerate() {
        assert_eq!(num(&format!("coil_{c}")), *v, "coil {c}");
    }
    assert_eq!(get("peer", "missing"), (Value::Absent, Quality::Exception(2)), "unmapped address");
    assert_eq!(get("peer_unit2", "x"), (Value::Absent, Quality::Exception(4)), "unknown unit");
    for i in 0..100 {
        assert_eq!(
            get("peer_uncapped", &format!("block_{i:02}")),
            (Value::Absent, Quality::Exception(3)),
            "read over the cap"
        );
    }
}
