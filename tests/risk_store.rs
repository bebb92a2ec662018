//! `mizumori risk rank --store`: the ranking the CLI writes as CSV is also saved where the
//! dashboard reads it, with the backtest for the model card, and a bad store fails before
//! any work.

mod util;

use store::RiskStore;
use store::risk::RiskQuery;
use util::bin;

#[tokio::test]
async fn rank_saves_the_run_the_dashboard_reads() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let out = bin().args(["risk", "synth", "--out-dir", synth.to_str().unwrap(), "--km", "100"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = dir.path().join("m.sqlite");
    let csv = dir.path().join("ranking.csv");
    let out = bin()
        .args(["risk", "rank", "--as-of", "2024-01-01", "--profile", "mizumori"])
        .arg("--assets")
        .arg(synth.join("assets.csv"))
        .arg("--breaks")
        .arg(synth.join("breaks.csv"))
        .arg("--out")
        .arg(&csv)
        .arg("--store")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("saved as ranking run 1"));

    let risk = store::SqliteRisk::open(&db).await.unwrap();
    let run = risk.latest_run().await.unwrap().expect("a stored run");
    assert_eq!(run.as_of.to_string(), "2024-01-01");
    assert_eq!(run.test_years, "2021–2023");
    let rankers: Vec<&str> = run.backtest.iter().map(|b| b.ranker.as_str()).collect();
    for name in ["mizumori", "age", "prior-breaks"] {
        assert!(rankers.contains(&name), "{rankers:?}");
    }
    // The stored rows are the CSV's rows, in the same order.
    let text = std::fs::read_to_string(&csv).unwrap();
    let ids: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    let page = risk.rows(run.id, &RiskQuery { limit: 1_000_000, ..Default::default() }).await.unwrap();
    assert_eq!(page.total as usize, ids.len());
    let stored: Vec<String> = page.rows.iter().map(|r| r.asset_id.to_string()).collect();
    assert_eq!(stored, ids);
}

#[test]
fn rank_refuses_an_influx_store_without_an_accounts_file_before_ranking() {
    let out = bin()
        .args(["risk", "rank", "--assets", "/nonexistent/a.csv", "--breaks", "/nonexistent/b.csv"])
        .args(["--as-of", "2024-01-01", "--out", "/tmp/never.csv", "--store", "influx://127.0.0.1:1/water"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--accounts"), "{err}");
}
