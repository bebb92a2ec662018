//! End-to-end checks of the analytics on the synthetic city, whose hazard is known.

use std::collections::BTreeMap;

use analytics::backtest::{backtest, means};
use analytics::synth::{SynthParams, generate};
use analytics::{FeatureBuilder, History, Material, RankParams, rank};
use chrono::{Datelike, NaiveDate};

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
}

/// Length-weighted mean of (true rate, predicted rate) per group.
fn by_group<K: Ord>(pairs: impl Iterator<Item = (K, f64, f64, f64)>) -> BTreeMap<K, (f64, f64)> {
    let mut acc: BTreeMap<K, (f64, f64, f64)> = BTreeMap::new();
    for (k, len, truth, predicted) in pairs {
        let e = acc.entry(k).or_default();
        e.0 += len * truth;
        e.1 += len * predicted;
        e.2 += len;
    }
    acc.into_iter().filter(|(_, (_, _, len))| *len > 10_000.0).map(|(k, (t, p, len))| (k, (t / len, p / len))).collect()
}

/// Every pair of groups whose true rates differ by more than `ratio`× is ranked the same way.
/// (Closer pairs are within the noise of a few breaks: PE and GX ductile iron see a handful
/// of breaks in ten years.)
#[track_caller]
fn check_order<K: Ord + std::fmt::Debug>(groups: &BTreeMap<K, (f64, f64)>, ratio: f64) {
    assert!(groups.len() >= 4, "{groups:?}");
    let mut compared = 0;
    for (a, (ta, pa)) in groups {
        for (b, (tb, pb)) in groups {
            if ta > &(tb * ratio) {
                compared += 1;
                assert!(pa > pb, "true {a:?} {ta:.3} > {b:?} {tb:.3}, predicted {pa:.3} <= {pb:.3}\n{groups:?}");
            }
        }
    }
    assert!(compared >= 4, "{groups:?}");
}

#[test]
fn the_planted_hazard_ordering_is_recovered() {
    let city = generate(&SynthParams::default());
    let history = History::new(&city.register, &city.breaks);
    let builder = FeatureBuilder::new(&city.register, &history);
    let ranking = rank(&builder, as_of(), &RankParams::default()).unwrap();
    let features: BTreeMap<usize, _> = builder.as_of(as_of()).into_iter().map(|f| (f.pipe, f)).collect();
    let rows = || {
        ranking.rows.iter().map(|r| {
            let pipe = &city.register.pipes()[r.pipe];
            let f = &features[&r.pipe];
            let truth = city.hazard.rate(pipe, f.age_years, f.prior_breaks);
            (pipe, f, truth, r.score)
        })
    };
    let by_material = by_group(rows().map(|(p, _, t, s)| (p.material.code(), p.length_m, t, s)));
    check_order(&by_material, 2.5);
    // The planted extremes, named: grey cast iron is the worst, GX-joint ductile iron the best
    // of the iron mains.
    let rate = |m: Material| by_material[m.code()].1;
    assert!(rate(Material::CastIron) > rate(Material::DuctileIron(analytics::DiJoint::K)));
    assert!(rate(Material::DuctileIron(analytics::DiJoint::K)) > rate(Material::DuctileIron(analytics::DiJoint::Gx)));
    let era = |year: i32| match year {
        ..1965 => "1 before 1965",
        1965..1980 => "2 1965-79",
        1980..1995 => "3 1980-94",
        1995..2010 => "4 1995-2009",
        _ => "5 2010-",
    };
    let by_era = by_group(rows().map(|(p, _, t, s)| (era(p.installed.unwrap().year()), p.length_m, t, s)));
    check_order(&by_era, 1.5);
    // Mains that broke before are ranked above those that did not, as planted.
    let by_prior = by_group(rows().map(|(p, f, t, s)| (f.prior_breaks.min(3), p.length_m, t, s)));
    check_order(&by_prior, 1.5);
}

#[test]
fn every_model_family_recovers_the_planted_material_and_prior_break_ordering() {
    let city = generate(&SynthParams::default());
    let history = History::new(&city.register, &city.breaks);
    let builder = FeatureBuilder::new(&city.register, &history);
    let features = builder.as_of(as_of());
    for kind in analytics::ModelKind::ALL {
        let params = RankParams { model: Some(kind), ..RankParams::default() };
        let ranking = rank(&builder, as_of(), &params).unwrap();
        assert_eq!(ranking.selection.chosen, kind);
        let by_pipe: BTreeMap<usize, f64> = ranking.rows.iter().map(|r| (r.pipe, r.score)).collect();
        let rows = || {
            features.iter().map(|f| {
                let pipe = &city.register.pipes()[f.pipe];
                (pipe, f, city.hazard.rate(pipe, f.age_years, f.prior_breaks), by_pipe[&f.pipe])
            })
        };
        let by_material = by_group(rows().map(|(p, _, t, s)| (p.material.code(), p.length_m, t, s)));
        check_order(&by_material, 2.5);
        let by_prior = by_group(rows().map(|(p, f, t, s)| (f.prior_breaks.min(3), p.length_m, t, s)));
        check_order(&by_prior, 1.5);
    }
}

#[test]
fn no_break_on_or_after_the_as_of_date_changes_the_ranking() {
    let city = generate(&SynthParams { network_km: 150.0, ..SynthParams::default() });
    let before: Vec<_> = city.breaks.iter().filter(|b| b.date < as_of()).cloned().collect();
    assert!(before.len() < city.breaks.len(), "the city has later breaks to leak");
    let full = History::new(&city.register, &city.breaks);
    let cut = History::new(&city.register, &before);
    let params = RankParams::default();
    let a = rank(&FeatureBuilder::new(&city.register, &full), as_of(), &params).unwrap();
    let b = rank(&FeatureBuilder::new(&city.register, &cut), as_of(), &params).unwrap();
    assert_eq!(a.selection, b.selection);
    assert_eq!(a.rows, b.rows);
}

#[test]
fn the_backtest_beats_age_and_random_on_the_synthetic_city() {
    let city = generate(&SynthParams::default());
    let history = History::new(&city.register, &city.breaks);
    let builder = FeatureBuilder::new(&city.register, &history);
    let rows = backtest(&builder, 2020..=2020, &RankParams::default()).unwrap();
    assert_eq!(rows.len(), 2 + analytics::ModelKind::ALL.len() + 1);
    let m: BTreeMap<String, [f64; 3]> = means(&rows).into_iter().map(|(n, c, _)| (n, c)).collect();
    let ours = m["mizumori"][1];
    assert!(ours > m["age"][1], "{m:?}");
    assert!(ours > 0.10, "twice random at 5 % of length: {m:?}");
    for r in &rows {
        assert!(r.capture[0] <= r.capture[1] && r.capture[1] <= r.capture[2], "{r:?}");
    }
}

#[test]
fn the_ranking_file_has_the_contract_columns_one_row_per_main_in_service_best_first() {
    let city = generate(&SynthParams { network_km: 120.0, ..SynthParams::default() });
    let history = History::new(&city.register, &city.breaks);
    let builder = FeatureBuilder::new(&city.register, &history);
    let as_of = NaiveDate::from_ymd_opt(2012, 6, 1).unwrap();
    let ranking = rank(&builder, as_of, &RankParams::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ranking.csv");
    analytics::risk::write_ranking_csv(&path, &ranking, &builder).unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header[..8],
        ["asset_id", "score", "expected_breaks", "probability", "lof_grade", "cof_grade", "risk_grade", "explanation"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let in_service = city.register.pipes().iter().filter(|p| p.in_service(as_of)).count();
    assert!(in_service < city.register.len(), "some mains are laid after the date");
    assert_eq!(rows.len(), in_service);
    let scores: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score, highest first");
    for r in &rows {
        let p: f64 = r[3].parse().unwrap();
        let e: f64 = r[2].parse().unwrap();
        assert!((0.0..1.0).contains(&p) && (p - (1.0 - (-e).exp())).abs() < 1e-5);
        assert!(!r[7].is_empty());
    }
    assert_eq!(&rows[0][4], "5", "the top of the list is LoF grade 5");
}
