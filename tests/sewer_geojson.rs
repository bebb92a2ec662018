//! `mizumori sewer synth|rank|curve` on the synthetic network with bad rows added (reported,
//! the others ranked), and `mizumori risk rank` on a GeoJSON register: the stored ranking
//! carries each main's midpoint.

mod util;

use std::io::Write;

use store::RiskStore;
use store::risk::RiskQuery;
use util::bin;

fn ok(out: std::process::Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn append(path: &std::path::Path, text: &str) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn sewer_rank_reports_bad_rows_and_ranks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(bin().args(["sewer", "synth", "--km", "120", "--out-dir"]).arg(d).output().unwrap());
    let pipes = d.join("sewer_pipes.csv");
    let inspections = d.join("sewer_inspections.csv");
    let spans = std::fs::read_to_string(&pipes).unwrap().lines().count() - 1;
    let lines = std::fs::read_to_string(&inspections).unwrap().lines().count();
    append(&pipes, "BAD-1,ヒューム管,300,-4,1970-01-01,,,\n");
    append(&inspections, "SW-000001,2020-06-01,IV\nNOPE,2020-06-01,I\n");

    let ranking = d.join("ranking.csv");
    let (stdout, stderr) = ok(bin()
        .args(["sewer", "rank", "--as-of", "2026-01-01"])
        .arg("--pipes")
        .arg(&pipes)
        .arg("--inspections")
        .arg(&inspections)
        .arg("--out")
        .arg(&ranking)
        .output()
        .unwrap());
    assert!(stdout.contains(&format!("{spans} spans ranked")), "{stdout}");
    let line = spans + 2;
    assert!(stderr.contains(&format!("sewer_pipes.csv:{line}: column length_m: rejected")), "{stderr}");
    assert!(stderr.contains(&format!("sewer_inspections.csv:{}: column grade: rejected", lines + 1)), "{stderr}");
    assert!(stderr.contains("span NOPE is not in the sewer register"), "{stderr}");

    let mut reader = csv::Reader::from_path(&ranking).unwrap();
    let headers = reader.headers().unwrap().clone();
    for c in ["span_id", "material", "age", "latest_grade", "p_grade_ii_5y", "p_grade_i_5y", "priority", "explanation"]
    {
        assert!(headers.iter().any(|h| h == c), "no column {c} in {headers:?}");
    }
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), spans);
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(r[col("priority")].parse::<usize>().unwrap(), k + 1);
        let (p2, p1): (f64, f64) = (r[col("p_grade_ii_5y")].parse().unwrap(), r[col("p_grade_i_5y")].parse().unwrap());
        assert!((0.0..=1.0).contains(&p1) && p1 <= p2 && p2 <= 1.0, "{r:?}");
    }
    assert_eq!(&rows[0][col("latest_grade")], "I");

    let chart = d.join("curve.svg");
    let (stdout, _) = ok(bin()
        .args(["sewer", "curve"])
        .arg("--pipes")
        .arg(&pipes)
        .arg("--inspections")
        .arg(&inspections)
        .arg("--chart")
        .arg(&chart)
        .output()
        .unwrap());
    assert!(stdout.contains("| RC | 鉄筋コンクリート管 |") && stdout.contains("| VC | 陶管 |"), "{stdout}");
    assert!(std::fs::read_to_string(&chart).unwrap().contains("健全率"));
}

#[tokio::test]
async fn a_geojson_register_gives_the_stored_ranking_its_midpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(bin().args(["risk", "synth", "--km", "60", "--out-dir"]).arg(d).output().unwrap());
    // The synthetic register as GeoJSON: each main a short east-west line near Chitose, half
    // of them without a length property (measured on the line instead).
    let mut reader = csv::Reader::from_path(d.join("assets.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let mut features = Vec::new();
    for (k, r) in reader.records().enumerate() {
        let r = r.unwrap();
        let mut properties = serde_json::Map::new();
        for (h, v) in headers.iter().zip(r.iter()) {
            let measured = h == "length_m" && k % 2 == 1;
            if !v.is_empty() && !measured {
                properties.insert(h.to_owned(), serde_json::Value::String(v.to_owned()));
            }
        }
        let (lon, lat) = (141.60 + 0.0001 * (k % 500) as f64, 42.78 + 0.0001 * (k / 500) as f64);
        features.push(serde_json::json!({"type": "Feature", "properties": properties,
            "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat]]}}));
    }
    let n = features.len();
    let assets = d.join("assets.geojson");
    std::fs::write(&assets, serde_json::json!({"type": "FeatureCollection", "features": features}).to_string())
        .unwrap();

    let db = d.join("m.sqlite");
    let (_, stderr) = ok(bin()
        .args(["risk", "rank", "--as-of", "2024-01-01"])
        .arg("--assets")
        .arg(&assets)
        .arg("--breaks")
        .arg(d.join("breaks.csv"))
        .arg("--out")
        .arg(d.join("ranking.csv"))
        .arg("--store")
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap());
    assert!(stderr.contains(&format!("{n} rows: {n} accepted, 0 rejected")), "{stderr}");

    let risk = store::SqliteRisk::open(&db).await.unwrap();
    let run = risk.latest_run().await.unwrap().expect("a stored run");
    let page = risk.rows(run.id, &RiskQuery { limit: 1_000_000, ..Default::default() }).await.unwrap();
    assert!(!page.rows.is_empty());
    for r in &page.rows {
        let (x, y) = (r.x.expect("a longitude"), r.y.expect("a latitude"));
        assert!((141.6..141.66).contains(&x) && (42.78..42.8).contains(&y), "{}: {x} {y}", r.asset_id);
        // A 0.001° east-west line at 42.8° N is about 81.8 m; the listed lengths are other.
        let k: usize = r.asset_id.as_str()[4..].parse::<usize>().unwrap() - 1;
        if k % 2 == 1 {
            assert!((r.length_m - 81.8).abs() < 0.3, "{}: {} m", r.asset_id, r.length_m);
        }
    }
}
