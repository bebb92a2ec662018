//! Zone pressure features: computed right from readings in a real (temporary) SQLite store,
//! zone files checked with their line and field, and a ranking with and without them.

use std::collections::BTreeMap;
use std::path::Path;

use analytics::pressure::{ZoneMap, ZonePressure, demo_zones, zone_pressure};
use analytics::risk::write_ranking_csv;
use analytics::synth::{HazardModel, SynthParams, generate};
use analytics::{FeatureBuilder, History, ModelKind, RankParams};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use model::{DeviceId, PointName, Quality, Reading, Value};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

/// 180 minutes of one logger, three readings a minute (at 0, 20 and 40 s): 5.0 bar
/// throughout, except minute 100 at 4.0 bar (a fall of 1.0 and a rise of 1.0 around it) and
/// minute 150 reading 5.0, 5.8, 5.0 (a 0.8 bar spike within the minute), plus a 99 bar
/// reading of bad quality that must be ignored.
fn readings(device: &str) -> Vec<Reading> {
    let (d, p) = (DeviceId::new(device).unwrap(), PointName::new("pressure").unwrap());
    let mut out = Vec::new();
    for minute in 0..180 {
        for (k, second) in [0, 20, 40].into_iter().enumerate() {
            let value = match (minute, k) {
                (100, _) => 4.0,
                (150, 1) => 5.8,
                _ => 5.0,
            };
            let time = t0() + Duration::minutes(minute) + Duration::seconds(second);
            out.push(Reading::good(d.clone(), p.clone(), time, value));
        }
    }
    out.push(Reading {
        device: d,
        point: p,
        time: t0() + Duration::minutes(10) + Duration::seconds(50),
        value: Value::Number(99.0),
        quality: Quality::CommFail,
    });
    out
}

#[tokio::test]
async fn zone_features_are_computed_right_from_stored_readings() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("readings.sqlite").display());
    let store = store::open(&url).await.unwrap();
    store.write(&readings("pl01")).await.unwrap();
    // A second zone with readings outside the window only, and a third with none at all.
    let late: Vec<Reading> =
        readings("pl02").into_iter().map(|r| Reading { time: r.time + Duration::days(1), ..r }).collect();
    store.write(&late).await.unwrap();
    let zones = ZoneMap::parse(
        Path::new("zones.toml"),
        "[[zone]]\nname = \"Z1\"\npressure = [\"pl01/pressure\"]\n\n[[zone]]\nname = \"Z2\"\npressure = [\"pl02/pressure\"]\n\n[[zone]]\nname = \"Z3\"\npressure = [\"pl03/pressure\"]\n",
    )
    .unwrap();
    let end = t0() + Duration::hours(12);
    let got = zone_pressure(store.as_ref(), &zones, end, 1).await.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["Z1"], "Z2's readings are after the window, Z3 has none");
    let z = got["Z1"];
    assert_eq!(z.minutes, 180);
    let spike_mean = (5.0 + 5.8 + 5.0) / 3.0;
    let mean = (178.0 * 5.0 + 4.0 + spike_mean) / 180.0;
    assert!((z.mean_bar - mean).abs() < 1e-9, "{} vs {mean}", z.mean_bar);
    assert!((z.max_bar - 5.8).abs() < 1e-9, "{}", z.max_bar);
    // Transient minutes: 100 (fell 1.0), 101 (rose 1.0), 150 (0.8 within the minute); over
    // 180 minutes = 1/8 day, that is 24 a day.
    assert!((z.transients_per_day - 24.0).abs() < 1e-9, "{}", z.transients_per_day);
    assert!((z.max_drop_bar - 1.0).abs() < 1e-9, "{}", z.max_drop_bar);
    // Fewer than an hour of minutes give nothing: a window that ends 30 minutes in.
    let short = zone_pressure(store.as_ref(), &zones, t0() + Duration::minutes(30), 1).await.unwrap();
    assert!(short.is_empty());
}

#[test]
fn a_gap_in_the_readings_is_no_transient() {
    let w = |minute: i64, mean: f64| store::Window {
        start: t0() + Duration::minutes(minute),
        mean,
        min: mean,
        max: mean,
        last: mean,
        count: 1,
    };
    // 60 minutes at 5 bar, then after a 10-minute gap 60 at 3 bar: no consecutive minutes
    // differ, so no transient and no drop.
    let series: Vec<_> = (0..60).map(|m| w(m, 5.0)).chain((70..130).map(|m| w(m, 3.0))).collect();
    let z = ZonePressure::from_minutes(&[series]).unwrap();
    assert_eq!(z.transients_per_day, 0.0);
    assert_eq!(z.max_drop_bar, 0.0);
    assert!((z.mean_bar - 4.0).abs() < 1e-12);
}

#[track_caller]
fn check_error(text: &str, expected: &str) {
    let err = ZoneMap::parse(Path::new("zones.toml"), text).unwrap_err().to_string();
    assert_eq!(err, expected);
}

#[test]
fn a_bad_zone_file_names_its_line_and_field() {
    check_error(
        "[[zone]]\nname = \"Z1\"\npressure = [\"pl01/pressure\"]\nunit = \"bar\"\n",
        "zones.toml:4: zone: unknown field `unit`, expected `name` or `pressure`",
    );
    check_error(
        "[[zone]]\nname = \"Z1\"\npressure = [\"pl01/pressure\"]\n\n[[zone]]\nname = \"Z1\"\npressure = [\"pl02/pressure\"]\n",
        "zones.toml:5: name: zone \"Z1\" is named above already",
    );
    check_error(
        "[[zone]]\nname = \"Z1\"\npressure = [\"pl01 pressure\"]\n",
        "zones.toml:1: pressure: zone \"Z1\": \"pl01 pressure\": use DEVICE/POINT",
    );
    check_error(
        "[[zone]]\nname = \"Z1\"\npressure = [\"pl01/pressure\"]\n[[zone]]\nname = \"Z2\"\npressure = [\"pl01/pressure\"]\n",
        "zones.toml:4: pressure: zone \"Z2\": \"pl01/pressure\": already observes zone \"Z1\"",
    );
    check_error(
        "[[zone]]\nname = \"Z1\"\npressure = []\n",
        "zones.toml:1: pressure: zone \"Z1\" lists no pressure series",
    );
    check_error("", "zones.toml: zone: no [[zone]] tables: no zone to read pressure for");
}

#[test]
fn the_example_zone_file_parses_and_matches_the_demo() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/zones.toml");
    let zones = ZoneMap::load(&path).unwrap();
    assert_eq!(zones, demo_zones(12));
}

/// Zone features that say Z1 runs high with many transients and the others do not.
fn high_z1() -> BTreeMap<String, ZonePressure> {
    (1..=6)
        .map(|z| {
            let high = z == 1;
            let p = ZonePressure {
                mean_bar: if high { 6.8 } else { 4.5 + 0.1 * f64::from(z) },
                max_bar: if high { 9.5 } else { 6.0 },
                transients_per_day: if high { 14.0 } else { 0.5 },
                max_drop_bar: if high { 2.0 } else { 0.3 },
                minutes: 43_200,
            };
            (format!("Z{z}"), p)
        })
        .collect()
}

/// Share of the ranking's top 10 % of length that lies in zone Z1.
fn z1_share_of_top(ranking: &analytics::Ranking, builder: &FeatureBuilder) -> f64 {
    let pipes = builder.register().pipes();
    let total: f64 = ranking.rows.iter().map(|r| pipes[r.pipe].length_m).sum();
    let (mut walked, mut z1) = (0.0, 0.0);
    for r in &ranking.rows {
        if walked >= 0.1 * total {
            break;
        }
        let p = &pipes[r.pipe];
        walked += p.length_m;
        if p.pressure_zone.as_deref() == Some("Z1") {
            z1 += p.length_m;
        }
    }
    z1 / walked
}

#[test]
fn a_planted_pressure_effect_is_recovered_and_rankings_work_without_pressure() {
    // Mains in Z1 break three times as often, other things equal.
    let hazard = HazardModel { zone_factor: vec![("Z1".into(), 3.0)], ..HazardModel::default() };
    let city = generate(&SynthParams { network_km: 300.0, hazard, ..SynthParams::default() });
    let history = History::new(&city.register, &city.breaks);
    let as_of = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let params = RankParams { model: Some(ModelKind::Poisson), ..RankParams::default() };

    let plain = FeatureBuilder::new(&city.register, &history);
    let without = analytics::rank(&plain, as_of, &params).unwrap();
    let with_builder = FeatureBuilder::new(&city.register, &history).with_pressure(high_z1());
    let with = analytics::rank(&with_builder, as_of, &params).unwrap();

    // An empty set of zone features is the same as none: the model without pressure.
    let empty = FeatureBuilder::new(&city.register, &history).with_pressure(BTreeMap::new());
    let same = analytics::rank(&empty, as_of, &params).unwrap();
    assert_eq!(same.rows, without.rows);
    assert!(without.rows.iter().all(|r| !r.explanation.contains("zone pressure")));

    let (share_without, share_with) = (z1_share_of_top(&without, &plain), z1_share_of_top(&with, &with_builder));
    eprintln!("Z1's share of the top 10 % of length: {share_without:.3} without pressure, {share_with:.3} with");
    // Z1 holds about a sixth of the length; its history alone lifts it somewhat, its pressure
    // lifts it clearly further.
    assert!(share_with > share_without + 0.05, "Z1 share of the top 10 %: {share_without:.3} → {share_with:.3}");
    let z1_first = with.rows.iter().find(|r| {
        city.register.pipes()[r.pipe].pressure_zone.as_deref() == Some("Z1")
            && r.explanation.contains("zone pressure high")
    });
    assert!(z1_first.is_some(), "a Z1 main explained by its zone's pressure");
    assert!(z1_first.unwrap().explanation.contains("zone pressure high: mean 6.8 bar, 14 transients/day"));

    // The ranking CSV gains the zone columns, filled where the zone has features.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ranking.csv");
    write_ranking_csv(&path, &with, &with_builder).unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (zone, mean, transients) = (col("district"), col("zone_mean_bar"), col("zone_transients_per_day"));
    for record in reader.records().take(200) {
        let record = record.unwrap();
        if &record[zone] == "Z1" {
            assert_eq!(&record[mean], "6.800");
            assert_eq!(&record[transients], "14.00");
        } else {
            assert!(!record[mean].is_empty());
        }
    }
    write_ranking_csv(&path, &without, &plain).unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let record = reader.records().next().unwrap().unwrap();
    assert_eq!(&record[mean], "", "no pressure, no figures");
}
