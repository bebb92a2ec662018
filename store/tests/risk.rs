//! The risk tables: a run saved and read back whole, filters, sorting, paging, the matrix and
//! the register summary; filter values that look like SQL are only ever compared as values.

use chrono::{NaiveDate, Utc};
use model::AssetId;
use store::risk::{BacktestFigure, RiskFilter, RiskLevel, RiskQuery, RiskRow, RiskRun, RiskSort};
use store::{RiskStore, SqliteRisk};

fn row(rank: u32, material: &str, diameter: f64, year: i32, lof: u8, cof: u8) -> RiskRow {
    RiskRow {
        rank,
        asset_id: AssetId::new(format!("P-{rank:03}")).unwrap(),
        material: material.to_owned(),
        material_ja: format!("{material}管"),
        diameter_mm: Some(diameter),
        length_m: 100.0 * f64::from(rank),
        install_year: Some(year),
        district: Some("dma01".into()),
        prior_breaks: rank % 3,
        expected_breaks: 1.0 / f64::from(rank),
        probability: 1.0 - (-1.0 / f64::from(rank)).exp(),
        score: 10.0 / f64::from(rank),
        lof_grade: lof,
        cof_grade: cof,
        risk_grade: RiskLevel::from_number((lof * cof).div_ceil(5)).unwrap(),
        explanation: format!("age {year}"),
        x: None,
        y: None,
    }
}

fn run() -> RiskRun {
    RiskRun {
        id: 0,
        as_of: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        model: "poisson".into(),
        selection: "best capture@5%".into(),
        test_years: "2023-2025".into(),
        created: Utc::now(),
        backtest: vec![
            BacktestFigure {
                ranker: "mizumori".into(),
                detail: "poisson".into(),
                capture: [0.1, 0.3, 0.4],
                auc: Some(0.8),
            },
            BacktestFigure { ranker: "age".into(), detail: String::new(), capture: [0.02, 0.1, 0.2], auc: None },
        ],
    }
}

#[tokio::test]
async fn a_run_round_trips_and_queries_filter_sort_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let risk = SqliteRisk::open(&path).await.unwrap();
    assert_eq!(risk.latest_run().await.unwrap(), None);
    let rows = vec![
        row(1, "CI", 100.0, 1960, 5, 2),
        row(2, "AC", 150.0, 1970, 4, 2),
        row(3, "CI", 300.0, 1990, 3, 4),
        row(4, "PVC", 75.0, 2000, 1, 1),
    ];
    let id = risk.save_run(&run(), &rows).await.unwrap();

    // Another connection (as after a restart) sees the same run.
    let again = SqliteRisk::open(&path).await.unwrap();
    let stored = again.latest_run().await.unwrap().unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.backtest, run().backtest);
    assert_eq!((stored.as_of, stored.model.as_str()), (run().as_of, "poisson"));

    let all = again.rows(id, &RiskQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(all.rows, rows);

    let ci = RiskFilter { material: Some("CI".into()), ..Default::default() };
    let page = again
        .rows(id, &RiskQuery { filter: ci.clone(), sort: RiskSort::Diameter, descending: true, limit: 1, offset: 0 })
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.rows.iter().map(|r| r.rank).collect::<Vec<_>>(), [3]);
    let page = again
        .rows(id, &RiskQuery { filter: ci, sort: RiskSort::Diameter, descending: true, limit: 1, offset: 1 })
        .await
        .unwrap();
    assert_eq!(page.rows.iter().map(|r| r.rank).collect::<Vec<_>>(), [1]);

    let sized = RiskFilter { diameter_min_mm: Some(100.0), diameter_max_mm: Some(150.0), ..Default::default() };
    let page = again.rows(id, &RiskQuery { filter: sized, limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.rows.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2]);

    let by_grade = RiskFilter { risk_grade: Some(rows[2].risk_grade), ..Default::default() };
    let page = again.rows(id, &RiskQuery { filter: by_grade, limit: 10, ..Default::default() }).await.unwrap();
    assert!(page.rows.iter().all(|r| r.risk_grade == rows[2].risk_grade) && page.total >= 1);

    // A material that is an injection attempt matches nothing and breaks nothing.
    let evil = RiskFilter { material: Some("CI' OR '1'='1".into()), ..Default::default() };
    let page = again.rows(id, &RiskQuery { filter: evil.clone(), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.total, 0);
    assert!(again.matrix(id, &evil).await.unwrap().is_empty());
    assert_eq!(again.rows(id, &RiskQuery { limit: 10, ..Default::default() }).await.unwrap().total, 4);

    let by_year = again
        .rows(id, &RiskQuery { sort: RiskSort::InstallYear, descending: false, limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_year.rows.iter().map(|r| r.install_year.unwrap()).collect::<Vec<_>>(), [1960, 1970, 1990, 2000]);

    assert_eq!(again.row(id, &AssetId::new("P-003").unwrap()).await.unwrap(), Some(rows[2].clone()));
    assert_eq!(again.row(id, &AssetId::new("P-999").unwrap()).await.unwrap(), None);

    let cells = again.matrix(id, &RiskFilter::default()).await.unwrap();
    assert_eq!(cells.iter().map(|c| c.mains).sum::<u64>(), 4);
    let cell = cells.iter().find(|c| c.lof_grade == 3 && c.cof_grade == 4).unwrap();
    assert_eq!(cell.mains, 1);
    assert!((cell.km - 0.3).abs() < 1e-9);

    let cell = RiskFilter { lof_grade: Some(3), cof_grade: Some(4), ..Default::default() };
    let page = again.rows(id, &RiskQuery { filter: cell, limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.rows.iter().map(|r| r.rank).collect::<Vec<_>>(), [3]);

    assert_eq!(again.materials(id).await.unwrap(), ["AC", "CI", "PVC"]);
    assert_eq!(again.districts(id).await.unwrap(), ["dma01"]);
    // As of 2026, mains of 1960 and 1970 are past 40 years: 0.1 + 0.2 of 1.0 km.
    let s = again.summary(id, 2026, 40).await.unwrap();
    assert_eq!(s.mains, 4);
    assert!((s.km - 1.0).abs() < 1e-9 && (s.km_older_than - 0.3).abs() < 1e-9, "{s:?}");
}

#[tokio::test]
async fn a_newer_run_is_the_latest() {
    let risk = SqliteRisk::in_memory();
    let first = risk.save_run(&run(), &[row(1, "CI", 100.0, 1960, 5, 2)]).await.unwrap();
    let second = risk.save_run(&RiskRun { model: "cohort-rate".into(), ..run() }, &[]).await.unwrap();
    assert!(second > first);
    let latest = risk.latest_run().await.unwrap().unwrap();
    assert_eq!((latest.id, latest.model.as_str()), (second, "cohort-rate"));
    // The first run's rows stay under its own id.
    assert_eq!(risk.rows(first, &RiskQuery { limit: 5, ..Default::default() }).await.unwrap().total, 1);
    assert_eq!(risk.rows(second, &RiskQuery { limit: 5, ..Default::default() }).await.unwrap().total, 0);
}

#[test]
fn grades_and_sort_keys_parse_only_known_names() {
    for g in RiskLevel::ALL {
        assert_eq!(g.as_str().parse::<RiskLevel>().unwrap(), g);
        assert_eq!(RiskLevel::from_number(g.number()), Some(g));
    }
    assert!("severe".parse::<RiskLevel>().is_err());
    assert_eq!(RiskLevel::from_number(0), None);
    for k in RiskSort::ALL {
        assert_eq!(RiskSort::parse(k.as_str()), Some(k));
    }
    assert_eq!(RiskSort::parse("rank; DROP TABLE risk_pipe"), None);
}
