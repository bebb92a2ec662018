//! The cases of the conformance suite; each takes a fresh, empty store.

use chrono::{DateTime, Duration, TimeZone, Utc};
use model::{DeviceId, PointName, Quality, Reading, Value};
use store::{RangeQuery, SeriesKey, Store, StoreError, WindowQuery};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
}

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn pt(s: &str) -> PointName {
    PointName::new(s).unwrap()
}

fn at(device: &str, point: &str, offset_ms: i64, value: Value, quality: Quality) -> Reading {
    Reading { device: dev(device), point: pt(point), time: t0() + Duration::milliseconds(offset_ms), value, quality }
}

fn num(device: &str, point: &str, offset_ms: i64, v: f64) -> Reading {
    at(device, point, offset_ms, Value::Number(v), Quality::Good)
}

async fn all(store: &dyn Store, device: &str, point: &str) -> Vec<Reading> {
    store
        .range(&RangeQuery {
            device: dev(device),
            point: pt(point),
            from: t0() - Duration::days(1),
            to: t0() + Duration::days(1),
            limit: 10_000,
        })
        .await
        .unwrap()
}

pub async fn latest_is_newest_per_series(store: &dyn Store) {
    let batch = vec![
        num("ps01", "flow", 0, 10.0),
        num("ps01", "flow", 1000, 11.5),
        num("ps01", "pressure", 500, 4.25),
        num("fm01", "flow", 2000, 99.0),
        num("fm01", "flow", 1000, 98.0),
    ];
    store.write(&batch).await.unwrap();
    let latest = store.latest().await.unwrap();
    assert_eq!(
        latest,
        vec![num("fm01", "flow", 2000, 99.0), num("ps01", "flow", 1000, 11.5), num("ps01", "pressure", 500, 4.25)]
    );
}

pub async fn same_time_overwrites(store: &dyn Store) {
    store.write(&[num("ps01", "flow", 0, 1.0)]).await.unwrap();
    store.write(&[num("ps01", "flow", 0, 2.0)]).await.unwrap();
    store.write(&[num("ps01", "flow", 0, 2.0)]).await.unwrap();
    assert_eq!(all(store, "ps01", "flow").await, vec![num("ps01", "flow", 0, 2.0)]);
}

pub async fn text_with_quotes_and_backslashes_round_trips(store: &dyn Store) {
    let texts = [r#"C:\path\"#, r#"say "hello""#, r#"it's \"both\" \\ and '"#, "ポンプ停止 (P-01) =, ;"];
    let batch: Vec<Reading> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| at("ps01", "fault_text", i as i64 * 1000, Value::Text((*t).to_owned()), Quality::Good))
        .collect();
    store.write(&batch).await.unwrap();
    assert_eq!(all(store, "ps01", "fault_text").await, batch);
}

pub async fn failed_reads_keep_their_quality_without_a_value(store: &dyn Store) {
    let batch = vec![
        at("ps02", "flow", 0, Value::Absent, Quality::CommFail),
        at("ps02", "flow", 1000, Value::Absent, Quality::Exception(2)),
        at("ps02", "flow", 2000, Value::Number(-3.0), Quality::OutOfRange),
    ];
    store.write(&batch).await.unwrap();
    assert_eq!(all(store, "ps02", "flow").await, batch);
    assert_eq!(store.latest().await.unwrap(), vec![batch[2].clone()]);
}

pub async fn nan_is_rejected_and_nothing_of_the_batch_is_written(store: &dyn Store) {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let batch = vec![num("ps01", "flow", 0, 1.0), num("ps01", "flow", 1000, bad), num("ps01", "flow", 2000, 3.0)];
        let err = store.write(&batch).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidReading { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("ps01/flow") && msg.contains("not a finite number"), "{msg}");
    }
    assert_eq!(all(store, "ps01", "flow").await, vec![]);
    assert_eq!(store.latest().await.unwrap(), vec![]);
}

pub async fn line_breaks_in_text_are_rejected_and_nothing_is_written(store: &dyn Store) {
    let injection = "ok\nreading,device=evil,point=x value=1 0";
    let batch = vec![
        at("ps01", "fault_text", 0, Value::Text("fine".into()), Quality::Good),
        at("ps01", "fault_text", 1000, Value::Text(injection.into()), Quality::Good),
    ];
    let err = store.write(&batch).await.unwrap_err().to_string();
    assert!(err.contains("line break"), "{err}");
    assert_eq!(store.latest().await.unwrap(), vec![]);
}

pub async fn unsafe_names_cannot_reach_the_store(store: &dyn Store) {
    // Identifiers are validated where they are made, so no reading with such a name exists to
    // be written and no query can carry one; the store's own encoder refuses them as well
    // (see the lineproto unit tests).
    for bad in ["ps01\nevil v=1", "ps 01", "ps01,point=x", "x' OR '1'='1", "a\"b", "a\\"] {
        assert!(DeviceId::new(bad).is_err(), "{bad:?}");
        assert!(PointName::new(bad).is_err(), "{bad:?}");
    }
    store.write(&[num("ps01", "flow", 0, 1.0)]).await.unwrap();
    assert_eq!(store.series().await.unwrap().len(), 1);
}

pub async fn windowed_aggregation_uses_good_values_only(store: &dyn Store) {
    // Windows of 10 s from t0: [0,10) has 1,2,3 and a failed read; [10,20) has nothing good;
    // [20,30) has 7.5 and -2.5 (newest last).
    let batch = vec![
        num("fm01", "flow", 0, 1.0),
        num("fm01", "flow", 3000, 3.0),
        num("fm01", "flow", 6000, 2.0),
        at("fm01", "flow", 9000, Value::Absent, Quality::CommFail),
        at("fm01", "flow", 12_000, Value::Number(1000.0), Quality::OutOfRange),
        num("fm01", "flow", 25_000, -2.5),
        num("fm01", "flow", 21_000, 7.5),
        num("fm01", "other", 1000, 500.0),
    ];
    store.write(&batch).await.unwrap();
    let windows = store
        .aggregate(&WindowQuery {
            device: dev("fm01"),
            point: pt("flow"),
            from: t0(),
            to: t0() + Duration::seconds(30),
            window_ms: 10_000,
        })
        .await
        .unwrap();
    let got: Vec<(i64, f64, f64, f64, f64, u64)> =
        windows.iter().map(|w| ((w.start - t0()).num_milliseconds(), w.mean, w.min, w.max, w.last, w.count)).collect();
    assert_eq!(got, vec![(0, 2.0, 1.0, 3.0, 2.0, 3), (20_000, 2.5, -2.5, 7.5, -2.5, 2)]);

    // The range bounds cut windows: from 3 s on, the first window holds only 3 and 2.
    let windows = store
        .aggregate(&WindowQuery {
            device: dev("fm01"),
            point: pt("flow"),
            from: t0() + Duration::seconds(3),
            to: t0() + Duration::seconds(21),
            window_ms: 10_000,
        })
        .await
        .unwrap();
    let got: Vec<(i64, f64, u64)> =
        windows.iter().map(|w| ((w.start - t0()).num_milliseconds(), w.mean, w.count)).collect();
    assert_eq!(got, vec![(0, 2.5, 2)]);
}

pub async fn range_is_half_open_ordered_and_limited(store: &dyn Store) {
    let batch: Vec<Reading> = (0..10).rev().map(|i| num("pl01", "pressure", i * 1000, i as f64)).collect();
    store.write(&batch).await.unwrap();
    let q = |from: i64, to: i64, limit: usize| RangeQuery {
        device: dev("pl01"),
        point: pt("pressure"),
        from: t0() + Duration::milliseconds(from),
        to: t0() + Duration::milliseconds(to),
        limit,
    };
    let values = |rs: Vec<Reading>| rs.iter().map(|r| r.value.as_f64().unwrap()).collect::<Vec<_>>();
    assert_eq!(values(store.range(&q(2000, 5000, 100)).await.unwrap()), vec![2.0, 3.0, 4.0]);
    assert_eq!(values(store.range(&q(0, 10_000, 3)).await.unwrap()), vec![0.0, 1.0, 2.0]);
    assert_eq!(values(store.range(&q(20_000, 30_000, 3)).await.unwrap()), Vec::<f64>::new());
}

pub async fn series_lists_every_device_and_point(store: &dyn Store) {
    store
        .write(&[num("b", "y", 0, 1.0), num("a", "z", 0, 1.0), num("a", "x", 0, 1.0), num("a", "x", 5, 1.0)])
        .await
        .unwrap();
    let key = |d: &str, p: &str| SeriesKey { device: dev(d), point: pt(p) };
    assert_eq!(store.series().await.unwrap(), vec![key("a", "x"), key("a", "z"), key("b", "y")]);
}

pub async fn health_answers(store: &dyn Store) {
    store.health().await.unwrap();
    assert!(!store.describe().is_empty());
}
