//! `mizumori plan`: from a ranking CSV or the stored run, a schedule whose every fiscal year
//! stays within the budget, the same plan from both inputs, and clear errors for bad input.

mod util;

use std::collections::BTreeMap;
use std::path::Path;

use util::bin;

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Cost per (budget, fiscal year) of a schedule CSV, and its rows.
fn schedule(path: &Path) -> (BTreeMap<(String, i32), f64>, Vec<csv::StringRecord>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "no UTF-8 BOM: Japanese Excel would garble it");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (b, fy, cost) = (col("budget"), col("fiscal_year"), col("cost_yen"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut spent = BTreeMap::new();
    for r in &rows {
        *spent.entry((r[b].to_owned(), r[fy].parse().unwrap())).or_insert(0.0) += r[cost].parse::<f64>().unwrap();
    }
    (spent, rows)
}

#[test]
fn plans_within_each_years_budget_from_a_csv_or_the_stored_run() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    ok(bin().args(["risk", "synth", "--out-dir", synth.to_str().unwrap(), "--km", "100"]).output().unwrap());
    let db = dir.path().join("m.sqlite");
    let ranking = dir.path().join("ranking.csv");
    ok(bin()
        .args(["risk", "rank", "--as-of", "2025-04-01"])
        .arg("--assets")
        .arg(synth.join("assets.csv"))
        .arg("--breaks")
        .arg(synth.join("breaks.csv"))
        .arg("--out")
        .arg(&ranking)
        .arg("--store")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap());

    let from_csv = dir.path().join("plan-csv.csv");
    let summary = dir.path().join("summary.csv");
    let stdout = ok(bin()
        .args(["plan", "--budget", "1.5億", "--compare", "2km", "--years", "8", "--first-year", "2026"])
        .args(["--deadline", "CI:2030"])
        .arg("--ranking")
        .arg(&ranking)
        .arg("--out")
        .arg(&from_csv)
        .arg("--summary")
        .arg(&summary)
        .output()
        .unwrap());
    assert!(stdout.contains("| 2033 |"), "{stdout}");
    let (spent, rows) = schedule(&from_csv);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| !r[7].is_empty()), "every main has its district (from the ranking CSV)");
    for ((budget, fy), yen) in &spent {
        if budget.starts_with('¥') {
            assert!(*yen <= 1.5e8 + 1.0, "{budget} FY{fy}: ¥{yen}");
        }
    }
    // The km budget: sum the lengths instead.
    let mut km: BTreeMap<i32, f64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[0].ends_with("km/yr")) {
        *km.entry(r[1].parse().unwrap()).or_default() += r[5].parse::<f64>().unwrap() / 1000.0;
    }
    assert_eq!(km.len(), 8, "every year renews something: {km:?}");
    assert!(km.values().all(|k| *k <= 2.0 + 1e-3), "{km:?}");
    // Both budgets in the summary, eight years each.
    let text = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(text.lines().count(), 1 + 16, "{text}");

    // The stored run gives the same plan (same mains, same years).
    let from_store = dir.path().join("plan-store.csv");
    ok(bin()
        .args(["plan", "--budget", "1.5億", "--compare", "2km", "--years", "8", "--first-year", "2026"])
        .args(["--deadline", "CI:2030", "--store", &format!("sqlite://{}", db.display())])
        .arg("--out")
        .arg(&from_store)
        .output()
        .unwrap());
    let ids = |rows: &[csv::StringRecord]| rows.iter().map(|r| (r[1].to_owned(), r[2].to_owned())).collect::<Vec<_>>();
    assert_eq!(ids(&schedule(&from_store).1), ids(&rows));
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.csv");
    let run = |args: &[&str]| {
        let o = bin().arg("plan").args(args).arg("--out").arg(&out).output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = run(&["--budget", "lots", "--ranking", "x.csv"]);
    assert!(err.contains("--budget") && err.contains("lots"), "{err}");
    let err = run(&["--budget", "5km", "--deadline", "CI:soon", "--ranking", "x.csv"]);
    assert!(err.contains("CI:soon"), "{err}");
    let err = run(&["--budget", "5km"]);
    assert!(err.contains("--ranking"), "{err}");
    let bad = dir.path().join("ranking.csv");
    std::fs::write(&bad, "asset_id,expected_breaks,material,diameter_mm,length_m,installed\nA,0.1,CI,100,-3,\n")
        .unwrap();
    let err = run(&["--budget", "5km", "--ranking", bad.to_str().unwrap()]);
    assert!(err.contains("line 2") && err.contains("length_m"), "{err}");
    assert!(!out.exists(), "nothing written after an error");
}
