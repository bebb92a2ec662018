//! Pump health from vibration: the ISO 10816 zone a running pump's bearing vibration is in,
//! and cavitation, which multiplies broadband vibration within minutes.
//!
//! Vibration is judged on five-minute means of readings taken while the pump runs (its drive
//! frequency above 5 Hz), so start-up transients and noise do not count. Zones after ISO
//! 10816-3 for pumps with a separate driver on a rigid foundation (group 3; shared/reference/
//! collector.md §5.3): A/B at 2.3 mm/s, B/C at 4.5 mm/s ("restricted operation"), C/D at
//! 7.1 mm/s ("damage"). Bearing wear climbs through them over days; cavitation jumps to two to
//! four times the level of an hour before, which wear never does that fast.

use chrono::{DateTime, Utc};
use model::{Reading, Severity};

use super::{Bins, Detector, DetectorSpec, Input, Signal, output};
use crate::alerts::eval::Rule;

/// Settings of one pump's detector.
#[derive(Debug, Clone, PartialEq)]
pub struct PumpParams {
    /// Bearing vibration velocity RMS, mm/s.
    pub vibration: Input,
    /// Drive output frequency, Hz (the pump runs above 5 Hz).
    pub frequency: Input,
    /// Zone C begins (restricted operation), mm/s.
    pub zone_c_mm_s: f64,
    /// Zone D begins (damage), mm/s.
    pub zone_d_mm_s: f64,
    /// Vibration this many times the level of an hour before is cavitation.
    pub cavitation_ratio: f64,
}

impl PumpParams {
    pub fn new(vibration: Input, frequency: Input) -> Self {
        PumpParams { vibration, frequency, zone_c_mm_s: 4.5, zone_d_mm_s: 7.1, cavitation_ratio: 2.0 }
    }
}

const BIN_S: u32 = 60;
/// Bins: the last five minutes, and five minutes an hour before.
const NOW: (usize, usize) = (0, 5);
const HOUR_AGO: (usize, usize) = (60, 65);
/// A zone or cavitation clears below this share of its limit.
const CLEAR: f64 = 0.9;

#[derive(Debug)]
pub struct Pump {
    params: PumpParams,
    vibration: Bins,
    running: bool,
    /// The outputs' conditions as last reported.
    reported: [bool; 3],
    /// The level an hour before the cavitation began (its baseline while it lasts).
    cavitation_base: Option<f64>,
    rules: Vec<Rule>,
}

const ZONE_C: usize = 0;
const ZONE_D: usize = 1;
const CAVITATION: usize = 2;

impl Pump {
    pub fn new(spec: &DetectorSpec, params: PumpParams) -> Self {
        let v = &params.vibration;
        let rules = vec![
            output(
                spec,
                "_zone_c",
                v,
                Severity::Major,
                "bearing vibration {value} mm/s: ISO 10816 zone C, restricted operation; plan maintenance",
                "軸受振動 {value} mm/s: ISO 10816 ゾーンC (運転制限)。保守を計画してください",
            ),
            output(
                spec,
                "_zone_d",
                v,
                Severity::Critical,
                "bearing vibration {value} mm/s: ISO 10816 zone D, damage likely",
                "軸受振動 {value} mm/s: ISO 10816 ゾーンD (損傷のおそれ)",
            ),
            output(
                spec,
                "_cavitation",
                v,
                Severity::Major,
                "vibration jumped to {value} times its level of an hour ago: cavitation (low suction, high flow)?",
                "振動が1時間前の {value} 倍に急増: キャビテーションの疑い (吸込圧低下・過大流量)",
            ),
        ];
        Pump {
            params,
            vibration: Bins::new(BIN_S, HOUR_AGO.1 + 1),
            running: false,
            reported: [false; 3],
            cavitation_base: None,
            rules,
        }
    }

    fn evaluate(&mut self, at: DateTime<Utc>, out: &mut Vec<Signal>) {
        let Some(level) = self.vibration.mean_back(NOW.0, NOW.1) else { return };
        let limit = |on: bool, l: f64| if on { CLEAR * l } else { l };
        let zone_c = level > limit(self.reported[ZONE_C], self.params.zone_c_mm_s);
        let zone_d = level > limit(self.reported[ZONE_D], self.params.zone_d_mm_s);
        let base = self.cavitation_base.or_else(|| self.vibration.mean_back(HOUR_AGO.0, HOUR_AGO.1));
        let ratio = base.filter(|b| *b > 0.1).map(|b| level / b);
        let cavitation = ratio.is_some_and(|r| r > limit(self.reported[CAVITATION], self.params.cavitation_ratio));
        self.cavitation_base = if cavitation { base } else { None };
        let round = |v: f64| (v * 100.0).round() / 100.0;
        let values = [round(level), round(level), round(ratio.unwrap_or(0.0))];
        for (k, cond) in [(ZONE_C, zone_c), (ZONE_D, zone_d), (CAVITATION, cavitation)] {
            if cond != self.reported[k] {
                self.reported[k] = cond;
                out.push(Signal { output: k, cond, value: Some(values[k]), at });
            }
        }
    }
}

impl Detector for Pump {
    fn inputs(&self) -> Vec<Input> {
        vec![self.params.vibration.clone(), self.params.frequency.clone()]
    }

    fn outputs(&self) -> Vec<Rule> {
        self.rules.clone()
    }

    fn on_reading(&mut self, input: usize, r: &Reading, out: &mut Vec<Signal>) {
        let Some(v) = r.value.as_f64().filter(|v| v.is_finite() && r.quality.is_good()) else { return };
        if input == 1 {
            self.running = v > 5.0;
        } else if self.running {
            if let Some(at) = self.vibration.add(r.time, v) {
                self.evaluate(at, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::detect::DetectorKind;
    use chrono::TimeZone;
    use model::{DeviceId, PointName};

    fn run(seconds: i64, vib: impl Fn(i64) -> f64) -> Vec<(i64, usize, bool)> {
        let input = |p: &str| Input { device: DeviceId::new("ps03").unwrap(), point: PointName::new(p).unwrap() };
        let params = PumpParams::new(input("p1_vibration"), input("p1_frequency"));
        let spec = DetectorSpec {
            name: "ps03_p1_health".into(),
            asset: "ps03".into(),
            kind: DetectorKind::Pump(params.clone()),
        };
        let mut d = Pump::new(&spec, params);
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let (mut out, mut got) = (Vec::new(), Vec::new());
        for s in 0..seconds {
            let t = t0 + chrono::Duration::seconds(s);
            let reading =
                |p: &str, v: f64| Reading::good(DeviceId::new("ps03").unwrap(), PointName::new(p).unwrap(), t, v);
            d.on_reading(1, &reading("p1_frequency", 48.0), &mut out);
            d.on_reading(0, &reading("p1_vibration", vib(s)), &mut out);
            got.extend(out.drain(..).map(|g| ((g.at - t0).num_seconds(), g.output, g.cond)));
        }
        got
    }

    #[test]
    fn slow_wear_walks_through_the_zones_without_cavitation() {
        // 1.3 mm/s growing eightfold over 12 hours.
        let got = run(12 * 3600, |s| 1.3 * (s as f64 / 43_200.0 * 8f64.ln()).exp());
        assert_eq!(got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(), [(ZONE_C, true), (ZONE_D, true)], "{got:?}");
    }

    #[test]
    fn a_sudden_jump_is_cavitation_and_clears_when_it_ends() {
        let got = run(4 * 3600, |s| if (7200..9000).contains(&s) { 3.4 } else { 1.3 });
        assert_eq!(
            got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(),
            [(CAVITATION, true), (CAVITATION, false)],
            "{got:?}"
        );
        assert!((7200..7200 + 300).contains(&got[0].0), "{got:?}");
    }
}
