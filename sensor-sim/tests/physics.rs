//! Physics checks on the simulated network, stepping the simulation directly (no sockets).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Timelike, Utc};
use sensor_sim::network::PumpCurve;
use sensor_sim::{Scenario, SimOptions, Simulation};

/// 2026-04-01 00:00 JST, a Wednesday.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap()
}

const NETWORK: &str = r#"
name = "test"

[[reservoir]]
name = "r1"
area_m2 = 1000
depth_m = 6
inflow_m3_per_h = 700

[[pump_station]]
name = "ps01"
draws_from = "r1"
pumps = 2

[[district]]
name = "d1"
population = 9000
fed_by = "ps01"

[[district]]
name = "d2"
population = 6000
fed_by = "ps01"

[[sewer_station]]
name = "mp01"
population = 800

[[device]]
name = "ps01"
profile = "pump_station"
of = "ps01"

[[device]]
name = "fm01"
profile = "flow_meter"
of = "d1"
unit_id = 2

[[device]]
name = "pl01"
profile = "pressure_logger"
of = "d1"
unit_id = 3

[[device]]
name = "mp01"
profile = "sewer_station"
of = "mp01"
unit_id = 4
"#;

fn sim(extra: &str, seed: u64, step_s: u64) -> Simulation {
    let text = format!("{NETWORK}\n{extra}");
    let scenario = Scenario::parse(Path::new("test.toml"), &text).unwrap();
    let options = SimOptions {
        seed,
        start: Some(start()),
        update_interval: Duration::from_secs(step_s),
        ..SimOptions::default()
    };
    Simulation::from_scenario(&scenario, options).unwrap()
}

fn value(sim: &Simulation, device: &str, point: &str) -> f64 {
    let d = sim.devices().iter().find(|d| d.name.as_str() == device).unwrap();
    let i = d.model().points().iter().position(|p| p.name.as_str() == point).unwrap();
    d.model().values()[i]
}

#[test]
fn same_seed_gives_identical_readings_for_a_simulated_hour() {
    let mut a = sim("", 7, 1);
    let mut b = sim("", 7, 1);
    let mut c = sim("", 8, 1);
    let mut differs = false;
    for _ in 0..3600 {
        a.step();
        b.step();
        c.step();
        for (da, db) in a.devices().iter().zip(b.devices()) {
            assert_eq!(da.model().values(), db.model().values(), "{} at {}", da.name, a.now());
        }
        differs |= a.devices()[1].model().values() != c.devices()[1].model().values();
    }
    assert!(differs, "another seed gives other noise");
}

#[test]
fn totalizer_difference_equals_integrated_flow() {
    let mut s = sim("", 1, 1);
    let before = value(&s, "fm01", "forward_total");
    let mut integrated_m3 = 0.0;
    for _ in 0..3600 {
        s.step();
        integrated_m3 += value(&s, "fm01", "flow") / 3600.0;
    }
    let counted = value(&s, "fm01", "forward_total") - before;
    let rel = (counted - integrated_m3).abs() / integrated_m3;
    assert!(rel < 0.001, "totalizer {counted} m3 vs integrated {integrated_m3} m3 ({:.4} %)", rel * 100.0);
}

#[test]
fn a_burst_raises_inflow_and_lowers_critical_pressure() {
    let burst = "[[event]]\nkind = \"burst\"\ntarget = \"d1\"\nstart_min = 60\nduration_min = 120\nmagnitude = 40\n";
    let mut quiet = sim("", 3, 10);
    let mut bursting = sim(burst, 3, 10);
    // Ten minutes into the burst (at 01:10 JST, a quiet hour).
    for _ in 0..(70 * 6) {
        quiet.step();
        bursting.step();
    }
    let dq = value(&bursting, "fm01", "flow") - value(&quiet, "fm01", "flow");
    let dp = value(&bursting, "pl01", "pressure") - value(&quiet, "pl01", "pressure");
    assert!((dq - 40.0).abs() < 2.0, "inflow rose by {dq} m3/h for a 40 m3/h burst");
    assert!(dp < -0.1, "critical pressure changed by {dp} bar");
    assert_eq!(bursting.events().len(), 1);
    assert_eq!(bursting.events()[0].start, start() + chrono::Duration::minutes(60));
}

#[test]
fn night_flow_is_the_daily_minimum() {
    let mut s = sim("", 5, 60);
    let mut min = (f64::INFINITY, start());
    let mut max = f64::NEG_INFINITY;
    for _ in 0..1440 {
        s.step();
        let q = s.network().districts[0].inflow_m3_per_h;
        if q < min.0 {
            min = (q, s.now());
        }
        max = max.max(q);
    }
    let hour_jst = (min.1.hour() + 9) % 24;
    assert!((1..=5).contains(&hour_jst), "daily minimum at {hour_jst}:00 JST");
    assert!(max > 2.0 * min.0, "peak {max} vs night {}", min.0);
}

#[test]
fn pump_power_follows_the_affinity_law() {
    let curve = PumpCurve { h0_m: 60.0, k: 20.0 / (500.0 * 500.0), q_bep: 400.0 };
    for (q1, s1, s2) in [(400.0f64, 1.0f64, 0.8f64), (300.0, 0.95, 0.7), (450.0, 1.05, 0.85)] {
        let q2 = q1 * s2 / s1;
        let expected = (s2 / s1).powi(3);
        let got = curve.power_kw(q2, s2, 0.0) / curve.power_kw(q1, s1, 0.0);
        assert!((got / expected - 1.0).abs() < 0.05, "P2/P1 = {got}, (n2/n1)^3 = {expected}");
        let head_ratio = curve.head_m(q2, s2, 0.0) / curve.head_m(q1, s1, 0.0);
        assert!((head_ratio / (s2 / s1).powi(2) - 1.0).abs() < 1e-9);
    }
}

#[test]
fn bearing_wear_raises_vibration_through_the_iso_zones() {
    let wear = "[[event]]\nkind = \"bearing_wear\"\ntarget = \"ps01\"\npump = 1\nstart_min = 0\nduration_min = 4320\n";
    let mut s = sim(wear, 2, 60);
    let mut daily_peak = Vec::new();
    for _day in 0..3 {
        let mut peak: f64 = 0.0;
        for _ in 0..1440 {
            s.step();
            peak = peak.max(value(&s, "ps01", "p1_vibration"));
        }
        daily_peak.push(peak);
    }
    // ISO 10816-3 (group 2, rigid): A/B 1.4, B/C 2.8, C/D 4.5 mm/s.
    assert!(daily_peak[0] < 4.5, "{daily_peak:?}");
    assert!(daily_peak[2] > 7.1, "{daily_peak:?}");
    assert!(daily_peak.windows(2).all(|w| w[1] > w[0]), "{daily_peak:?}");
    let status = value(&s, "ps01", "p1_status_word") as u16;
    assert_ne!(status & sensor_sim::profiles::pump_status::WARNING, 0, "warning bit set");
}

#[test]
fn a_pump_trip_stops_flow_until_the_standby_starts() {
    let trip = "[[event]]\nkind = \"pump_trip\"\ntarget = \"ps01\"\npump = 1\nstart_min = 30\nduration_min = 60\n";
    let mut s = sim(trip, 4, 5);
    for _ in 0..(30 * 12 + 2) {
        s.step();
    }
    assert_ne!(value(&s, "ps01", "p1_fault_code"), 0.0);
    assert_eq!(value(&s, "ps01", "outflow"), 0.0);
    assert_eq!(value(&s, "ps01", "p1_running"), 0.0);
    // After the standby start delay (60 s) pump 2 carries the flow.
    for _ in 0..24 {
        s.step();
    }
    assert_eq!(value(&s, "ps01", "p2_running"), 1.0);
    assert!(value(&s, "ps01", "outflow") > 50.0);
    assert!(value(&s, "ps01", "p2_starts") > 0.0);
}

#[test]
fn rain_fills_the_wet_well_and_the_pumps_cycle() {
    let rain = "[[event]]\nkind = \"rain\"\ntarget = \"city\"\nstart_min = 60\nduration_min = 120\nmagnitude = 30\n";
    let mut dry = sim("", 6, 10);
    let mut wet = sim(rain, 6, 10);
    let (mut dry_max, mut wet_max, mut starts) = (0.0f64, 0.0f64, 0.0);
    for _ in 0..(4 * 360) {
        dry.step();
        wet.step();
        dry_max = dry_max.max(value(&dry, "mp01", "level"));
        wet_max = wet_max.max(value(&wet, "mp01", "level"));
        starts = value(&wet, "mp01", "p1_starts") + value(&wet, "mp01", "p2_starts");
    }
    assert!(wet_max > dry_max, "rain {wet_max} m vs dry {dry_max} m");
    assert!(starts > 2_380.0 + 2.0, "pumps started {starts}");
}
