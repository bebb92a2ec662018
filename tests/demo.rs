//! The foundation's acceptance, run on the real binary: `mizumori demo` serves fresh,
//! good readings from at least two devices, every device on the overview and a chart per
//! point on its page, stops cleanly on SIGTERM,
//! keeps its readings across a restart, and `mizumori readings` shows the same data.

mod util;

use std::time::Duration;

use serde_json::Value as Json;
use util::{Demo, bin, eventually};

/// Devices whose every point has a good reading under 5 s old.
fn fresh_good_devices(devices: &Json) -> Vec<String> {
    devices["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            d["points"].as_array().is_some_and(|ps| {
                !ps.is_empty()
                    && ps.iter().all(|p| p["quality"] == "good" && p["age_s"].as_f64().is_some_and(|a| a < 5.0))
            })
        })
        .filter_map(|d| d["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_whole_flow_and_restarts_on_its_data() {
    let dir = tempfile::tempdir().unwrap();
    // reqwest has no crypto provider of its own here (see store::tls); these URLs are http.
    let http = store::tls::plain_http_client().build().unwrap();

    let demo = Demo::start(dir.path());
    eventually("/api/health 200", Duration::from_secs(30), || async {
        let r = http.get(format!("{}/api/health", demo.url)).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    // Everything but the health check needs a login.
    let anonymous = http.get(format!("{}/api/devices", demo.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let http = demo.login("viewer").await;
    let devices: Json = eventually("two devices with fresh good readings", Duration::from_secs(30), || async {
        let j: Json = http.get(format!("{}/api/devices", demo.url)).send().await.ok()?.json().await.ok()?;
        (fresh_good_devices(&j).len() >= 2).then_some(j)
    })
    .await;

    // The overview lists every device with a link to its page, and stays small with all 43;
    // the charts are on the device pages.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = http.get(format!("{}/?lang=en", demo.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.len() < 200_000, "overview is {} bytes", page.len());
    for d in devices["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        assert!(page.contains(&format!("<a href=\"/devices/{name}\">{name}</a>")), "{name} listed on the overview");
    }
    assert!(page.contains("dma01") && page.contains("District inflow"), "districts summed up");
    let numeric = devices["devices"].as_array().unwrap().iter().find(|d| d["name"] == "fm01").unwrap()["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["value"].is_number())
        .count();
    let fm01 = http.get(format!("{}/devices/fm01?range=1h", demo.url)).send().await.unwrap().text().await.unwrap();
    assert!(fm01.matches("loading=\"lazy\"").count() >= numeric, "a chart per numeric point of fm01 ({numeric})");
    // The four-pump station's page, ~560 KB when its charts were inline SVGs (issue #7).
    let ps01 = http.get(format!("{}/devices/ps01", demo.url)).send().await.unwrap().text().await.unwrap();
    assert!(ps01.len() < 200_000, "ps01's page is {} bytes", ps01.len());
    // The risk pages answer while the synthetic city is ranked in the background.
    let risk = http.get(format!("{}/risk", demo.url)).send().await.unwrap();
    assert_eq!(risk.status(), 200);

    // The CLI reads the same store: the dashboard's latest flow value is among its rows.
    let latest: Json = http.get(format!("{}/api/devices", demo.url)).send().await.unwrap().json().await.unwrap();
    let flow = latest["devices"].as_array().unwrap().iter().find(|d| d["name"] == "fm01").unwrap()["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "flow")
        .unwrap()
        .clone();
    let store = format!("sqlite://{}/mizumori.sqlite", dir.path().display());
    let out = bin()
        .args([
            "readings", "--store", &store, "--device", "fm01", "--point", "flow", "--since", "1m", "--format", "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("time,device,point,value,quality"));
    let wanted_time = chrono::DateTime::parse_from_rfc3339(flow["time"].as_str().unwrap()).unwrap();
    let row = lines
        .clone()
        .find(|l| chrono::DateTime::parse_from_rfc3339(l.split(',').next().unwrap()).unwrap() == wanted_time)
        .unwrap_or_else(|| panic!("no CSV row at {wanted_time} in\n{csv}"));
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(&fields[1..3], ["fm01", "flow"]);
    assert_eq!(fields[3].parse::<f64>().unwrap(), flow["value"].as_f64().unwrap());
    assert_eq!(fields[4], "good");
    let rows_before = lines.count();
    assert!(rows_before >= 3, "{csv}");

    let (status, took) = demo.terminate();
    assert!(status.success(), "demo exited with {status}");
    assert!(took < Duration::from_secs(5), "demo took {took:?} to stop");
    let stopped_at = chrono::Utc::now();

    // A second start on the same directory still has the first run's readings.
    let demo = Demo::start(dir.path());
    eventually("restarted dashboard", Duration::from_secs(30), || async {
        let r = http.get(format!("{}/api/health", demo.url)).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let out = bin()
        .args(["readings", "--store", &store, "--device", "fm01", "--point", "flow", "--since", "10m"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let before_restart = csv
        .lines()
        .skip(1)
        .filter(|l| chrono::DateTime::parse_from_rfc3339(l.split(',').next().unwrap()).unwrap() < stopped_at)
        .count();
    assert!(before_restart >= rows_before, "{before_restart} rows from the first run, had {rows_before}");
    let http = demo.login("viewer").await;
    let page = http.get(format!("{}/", demo.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("fm01") && page.contains("/devices/fm01"));
    let (status, _) = demo.terminate();
    assert!(status.success());
}

#[test]
fn readings_on_a_missing_store_says_where_it_looked() {
    let out = bin()
        .args(["readings", "--store", "sqlite:///nonexistent/dir/m.sqlite", "--device", "fm01", "--point", "flow"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/dir/m.sqlite"), "{err}");
}

#[test]
fn readings_rejects_unsafe_names() {
    let out = bin()
        .args(["readings", "--store", "sqlite:///tmp/x.sqlite", "--device", "fm01' OR '1'='1", "--point", "flow"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--device") && err.contains("not a valid name"), "{err}");
}

#[test]
fn user_add_takes_the_password_from_stdin() {
    use std::io::Write;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/m.sqlite", dir.path().display());
    let add = |args: &[&str], stdin: &str| {
        let mut child = bin()
            .args(["user", "add"])
            .args(args)
            .args(["--store", &store])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A refusal (the user exists, a bad role) can come before the password is read; the
        // closed pipe is then part of the answer, not a failure of the test.
        match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
        child.wait_with_output().unwrap()
    };
    let out = add(&["kato", "--role", "crew"], "a long password\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = add(&["kato", "--role", "admin"], "another password\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace"));
    let out = add(&["sato", "--role", "viewer"], "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    let out = add(&["sato", "--role", "root"], "a long password\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));

    let out = bin().args(["user", "list", "--store", &store]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "kato\tcrew\n");

    // The stored hash is what the dashboard checks at login, and no copy of the password.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let user = rt.block_on(async {
        let accounts = store::SqliteAccounts::open(&dir.path().join("m.sqlite")).await.unwrap();
        store::AccountStore::user(&accounts, &store::UserName::new("kato").unwrap()).await.unwrap().unwrap()
    });
    assert!(dashboard::auth::verify_password("a long password", &user.password_hash));
    // The row may still sit in the write-ahead log: search both files.
    let mut raw = std::fs::read(dir.path().join("m.sqlite")).unwrap();
    raw.extend(std::fs::read(dir.path().join("m.sqlite-wal")).unwrap_or_default());
    assert!(raw.windows(4).any(|w| w == b"kato"), "the search sees the rows");
    assert!(!raw.windows(15).any(|w| w == b"a long password"));
}
