//! The alert lifecycle on SQLite: raise-or-update, acknowledge, resolve, shelve, queries, the
//! change outbox, and state that survives reopening the file.

use chrono::{DateTime, Duration, TimeZone, Utc};
use model::{AlertState, DeviceId, NewAlert, PointName, Severity};
use store::alerts::{Resolution, SqliteAlerts};
use store::{AlertQuery, AlertStore, StoreError};

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
}

fn new(rule: &str, device: &str, severity: Severity, at: DateTime<Utc>) -> NewAlert {
    NewAlert {
        rule: rule.to_owned(),
        asset: device.to_owned(),
        device: DeviceId::new(device).unwrap(),
        point: PointName::new("p1_fault_code").unwrap(),
        severity,
        at,
        value: Some(8976.0),
        message_ja: "ポンプ1が停止しました".to_owned(),
        message_en: "Pump 1 tripped".to_owned(),
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteAlerts {
    SqliteAlerts::open(&dir.path().join("m.sqlite")).await.unwrap()
}

#[tokio::test]
async fn a_repeat_updates_the_active_alert_and_a_resolved_one_starts_anew() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
    let a = s.raise(&new("trip", "ps02", Severity::Critical, t(0))).await.unwrap();
    assert!(a.new);
    let b = s.raise(&new("trip", "ps02", Severity::Critical, t(5))).await.unwrap();
    assert!(!b.new);
    assert_eq!(b.alert.id, a.alert.id);
    assert_eq!((b.alert.count, b.alert.first_seen, b.alert.last_seen), (2, t(0), t(5)));
    // Another device is another alert.
    let other = s.raise(&new("trip", "ps01", Severity::Critical, t(6))).await.unwrap();
    assert!(other.new && other.alert.id != a.alert.id);

    s.resolve(a.alert.id, &Resolution::Auto, t(10)).await.unwrap();
    let again = s.raise(&new("trip", "ps02", Severity::Critical, t(20))).await.unwrap();
    assert!(again.new, "a resolved alert is history; the next episode is a new alert");
    assert_eq!(again.alert.count, 1);
}

#[tokio::test]
async fn acknowledge_then_resolve_records_who_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
    let id = s.raise(&new("trip", "ps02", Severity::Critical, t(0))).await.unwrap().alert.id;
    let a = s.acknowledge(id, "crew", "on the way", t(2)).await.unwrap();
    assert_eq!(a.state, AlertState::Acknowledged);
    assert_eq!((a.acknowledged_by.as_deref(), a.ack_comment.as_deref()), (Some("crew"), Some("on the way")));
    assert_eq!(a.acknowledged_at, Some(t(2)));
    // Acknowledging twice is refused, and says why.
    let e = s.acknowledge(id, "crew", "again", t(3)).await.unwrap_err();
    assert!(matches!(e, StoreError::AlertTransition { state: "acknowledged", .. }), "{e}");
    // A repeat while acknowledged updates the alert but keeps it acknowledged.
    let r = s.raise(&new("trip", "ps02", Severity::Critical, t(4))).await.unwrap();
    assert_eq!((r.new, r.alert.state, r.alert.count), (false, AlertState::Acknowledged, 2));

    let how = Resolution::Manual { by: "engineer".into(), note: Some("reset the drive".into()) };
    let a = s.resolve(id, &how, t(30)).await.unwrap();
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!((a.resolved_by.as_deref(), a.resolve_note.as_deref()), (Some("engineer"), Some("reset the drive")));
    assert!(matches!(s.resolve(id, &Resolution::Auto, t(31)).await, Err(StoreError::AlertTransition { .. })));
    assert!(matches!(s.acknowledge(999, "x", "y", t(31)).await, Err(StoreError::NoSuchAlert { id: 999 })));
}

#[tokio::test]
async fn shelving_hides_until_the_time_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
    let id = s.raise(&new("trip", "ps02", Severity::Major, t(0))).await.unwrap().alert.id;
    let a = s.shelve(id, t(60), "engineer", t(1)).await.unwrap();
    assert_eq!((a.state, a.shelved_until), (AlertState::Shelved, Some(t(60))));
    // A repeat before the end stays shelved; nothing is unshelved before its time.
    let r = s.raise(&new("trip", "ps02", Severity::Major, t(30))).await.unwrap();
    assert_eq!(r.alert.state, AlertState::Shelved);
    assert!(s.unshelve_expired(t(59)).await.unwrap().is_empty());
    let back = s.unshelve_expired(t(60)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].id, back[0].state, back[0].shelved_until), (id, AlertState::Open, None));
}

#[tokio::test]
async fn queries_filter_by_state_severity_asset_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
    let a = s.raise(&new("trip", "ps01", Severity::Critical, t(0))).await.unwrap().alert.id;
    s.raise(&new("trip", "ps02", Severity::Critical, t(10))).await.unwrap();
    s.raise(&new("hot", "ps02", Severity::Minor, t(20))).await.unwrap();
    s.resolve(a, &Resolution::Auto, t(5)).await.unwrap();
    let ids = |v: Vec<model::Alert>| v.into_iter().map(|a| (a.rule, a.asset)).collect::<Vec<_>>();
    let q = |f: fn(&mut AlertQuery)| {
        let mut q = AlertQuery::default();
        f(&mut q);
        q
    };
    let open = s.alerts(&q(|q| q.state = Some(AlertState::Open))).await.unwrap();
    assert_eq!(ids(open), [("hot".into(), "ps02".into()), ("trip".into(), "ps02".into())]);
    let critical = s.alerts(&q(|q| q.severity = Some(Severity::Critical))).await.unwrap();
    assert_eq!(critical.len(), 2);
    let ps01 = s.alerts(&q(|q| q.asset = Some("ps01".into()))).await.unwrap();
    assert_eq!(ids(ps01), [("trip".into(), "ps01".into())]);
    let late = s.alerts(&q(|q| q.from = Some(t(15)))).await.unwrap();
    assert_eq!(ids(late), [("hot".into(), "ps02".into())]);
    let early = s.alerts(&q(|q| q.to = Some(t(1)))).await.unwrap();
    assert_eq!(ids(early), [("trip".into(), "ps01".into())]);
    assert_eq!(s.active().await.unwrap().len(), 2);
}

#[tokio::test]
async fn state_and_the_change_outbox_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let s = open(&dir).await;
        let id = s.raise(&new("trip", "ps02", Severity::Critical, t(0))).await.unwrap().alert.id;
        s.raise(&new("trip", "ps02", Severity::Critical, t(1))).await.unwrap();
        s.acknowledge(id, "crew", "seen", t(2)).await.unwrap();
        s.set_cursor("webhook:crew", 1).await.unwrap();
        id
    };
    let s = open(&dir).await;
    let a = s.alert(id).await.unwrap().unwrap();
    assert_eq!((a.state, a.count, a.acknowledged_by.as_deref()), (AlertState::Acknowledged, 2, Some("crew")));
    assert_eq!(s.cursor("webhook:crew").await.unwrap(), Some(1));
    assert_eq!(s.cursor("webhook:other").await.unwrap(), None);
    // One change per state change: raised (open) and acknowledged; the repeat is not a change.
    let changes = s.changes_after(0, 100).await.unwrap();
    let states = changes.iter().map(|c| c.state).collect::<Vec<_>>();
    assert_eq!(states, [AlertState::Open, AlertState::Acknowledged]);
    assert_eq!(changes[1].by.as_deref(), Some("crew"));
    assert_eq!(s.changes_after(1, 100).await.unwrap().len(), 1);
    assert_eq!(s.last_change().await.unwrap(), changes[1].seq);
}

#[tokio::test]
async fn active_counts_by_severity_leave_out_resolved_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir).await;
    assert!(s.active_by_severity().await.unwrap().is_empty());
    let a = s.raise(&new("trip", "ps01", Severity::Critical, t(0))).await.unwrap().alert.id;
    let b = s.raise(&new("trip", "ps02", Severity::Critical, t(1))).await.unwrap().alert.id;
    let c = s.raise(&new("low", "ps03", Severity::Minor, t(2))).await.unwrap().alert.id;
    s.raise(&new("low", "ps04", Severity::Minor, t(3))).await.unwrap();
    s.acknowledge(a, "crew", "", t(4)).await.unwrap();
    s.shelve(c, t(100), "crew", t(5)).await.unwrap();
    s.resolve(b, &Resolution::Auto, t(6)).await.unwrap();
    let mut counts = s.active_by_severity().await.unwrap();
    counts.sort();
    assert_eq!(counts, [(Severity::Minor, 2), (Severity::Critical, 1)]);
    // The same as counting the active alerts one by one.
    let active = s.active().await.unwrap();
    for (sev, n) in counts {
        assert_eq!(active.iter().filter(|x| x.severity == sev).count() as u64, n);
    }
}
