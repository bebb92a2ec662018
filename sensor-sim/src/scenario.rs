//! Scenario files: the network a simulation runs (districts, reservoirs, pump stations, sewer
//! stations), the devices that observe it, and the events that happen to it.
//!
//! Reading is strict (`deny_unknown_fields`) and every problem names the file, the line and
//! the field, e.g. `demo.toml:41: district[2].population: invalid type: string "x", expected f64`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use toml::Spanned;

use crate::events::EventKind;

/// A scenario as written in its file (positions kept for messages).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Simulated start time (RFC 3339). Default: the wall clock when the simulation starts.
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, rename = "district")]
    pub districts: Vec<Spanned<DistrictSpec>>,
    #[serde(default, rename = "reservoir")]
    pub reservoirs: Vec<Spanned<ReservoirSpec>>,
    #[serde(default, rename = "pump_station")]
    pub pump_stations: Vec<Spanned<PumpStationSpec>>,
    #[serde(default, rename = "sewer_station")]
    pub sewer_stations: Vec<Spanned<SewerStationSpec>>,
    #[serde(default, rename = "device")]
    pub devices: Vec<Spanned<DeviceSpec>>,
    #[serde(default, rename = "event")]
    pub events: Vec<Spanned<EventSpec>>,
    #[serde(default)]
    pub random_events: Option<RandomEventsSpec>,
}

/// A district metered area: who lives there, what leaks, which station feeds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictSpec {
    pub name: String,
    pub population: f64,
    /// Pump station that supplies the district.
    pub fed_by: String,
    /// Background leakage, m³/h. Default: 8 % of mean consumption.
    #[serde(default)]
    pub leakage_m3_per_h: Option<f64>,
    /// Height of the district's critical point above the pump station, m.
    #[serde(default = "default_critical_elevation")]
    pub critical_elevation_m: f64,
}

fn default_critical_elevation() -> f64 {
    12.0
}

/// A distribution reservoir that pump stations draw from, refilled from a treatment plant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservoirSpec {
    pub name: String,
    pub area_m2: f64,
    pub depth_m: f64,
    #[serde(default)]
    pub initial_level_m: Option<f64>,
    /// Height of the reservoir floor above the pumps' suction, m.
    #[serde(default = "default_reservoir_elevation")]
    pub floor_elevation_m: f64,
    /// Supply from the treatment plant while the inlet valve is open, m³/h.
    pub inflow_m3_per_h: f64,
}

fn default_reservoir_elevation() -> f64 {
    3.0
}

/// A booster pump station with variable-speed pumps holding a discharge pressure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpStationSpec {
    pub name: String,
    pub draws_from: String,
    #[serde(default = "default_pumps")]
    pub pumps: u8,
    /// Discharge pressure the drives hold, bar.
    #[serde(default = "default_setpoint")]
    pub setpoint_bar: f64,
}

fn default_pumps() -> u8 {
    2
}
fn default_setpoint() -> f64 {
    4.5
}

/// A sewer manhole pump station (マンホールポンプ): a wet well with two pumps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SewerStationSpec {
    pub name: String,
    /// People whose sewage reaches the station.
    pub population: f64,
    /// Catchment area whose rain reaches the sewer through inflow and infiltration, ha.
    #[serde(default = "default_catchment")]
    pub catchment_ha: f64,
    #[serde(default = "default_well_area")]
    pub wet_well_area_m2: f64,
    /// Capacity of each of the two pumps, m³/h.
    #[serde(default = "default_sewer_pump")]
    pub pump_capacity_m3_per_h: f64,
}

fn default_catchment() -> f64 {
    20.0
}
fn default_well_area() -> f64 {
    3.0
}
fn default_sewer_pump() -> f64 {
    30.0
}

/// What a device measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    PumpStation,
    FlowMeter,
    PressureLogger,
    ReservoirLevel,
    SewerStation,
}

/// One Modbus device and the part of the network it observes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub name: String,
    pub profile: Profile,
    /// The pump station, district, reservoir or sewer station the device belongs to.
    pub of: String,
    /// Which listening address: 0 is the `--listen` port, N is that port + N.
    #[serde(default)]
    pub endpoint: u16,
    #[serde(default = "default_unit")]
    pub unit_id: u8,
}

fn default_unit() -> u8 {
    1
}

/// A scripted event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub kind: EventKind,
    /// District, pump station, sewer station, reservoir or device name; `city` for rain.
    pub target: String,
    /// Minutes after the scenario's start.
    pub start_min: f64,
    pub duration_min: f64,
    /// Size, in the unit of the kind (see `EventKind::magnitude_unit`); a default otherwise.
    #[serde(default)]
    pub magnitude: Option<f64>,
    /// Which pump of a station (1-based) for pump events; default 1.
    #[serde(default)]
    pub pump: Option<u8>,
}

/// Events drawn at random from the seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomEventsSpec {
    /// How far ahead events are drawn, hours.
    #[serde(default = "default_horizon")]
    pub horizon_h: f64,
    /// Expected events per simulated day, by kind.
    #[serde(default)]
    pub per_day: HashMap<EventKind, f64>,
}

fn default_horizon() -> f64 {
    24.0 * 7.0
}

/// A problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

impl Scenario {
    /// The built-in demo scenario (`sensor-sim/scenarios/demo.toml`).
    pub fn demo() -> Result<Scenario, crate::SimError> {
        Scenario::parse(Path::new("sensor-sim/scenarios/demo.toml"), crate::DEMO_SCENARIO)
            .map_err(crate::SimError::Scenario)
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, Vec<ScenarioError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ScenarioError {
                file: path.to_owned(),
                line: None,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }]
        })?;
        Scenario::parse(path, &text)
    }

    /// Checks scenario `text` that came from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario, Vec<ScenarioError>> {
        let error =
            |line, field: String, message: String| ScenarioError { file: file.to_owned(), line, field, message };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            vec![error(e.span().map(|s| line_of(text, s.start)), String::new(), e.message().to_owned())]
        })?;
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            // `Spanned` wraps each table in a private field; users never wrote that name.
            let path = e.path().to_string().replace("$__serde_spanned_private_value.", "");
            let inner = e.into_inner();
            vec![error(
                inner.span().map(|s| line_of(text, s.start)),
                if path == "." { String::new() } else { path },
                inner.message().to_owned(),
            )]
        })?;
        let mut errors = Vec::new();
        scenario.check(&mut |span: &std::ops::Range<usize>, field: String, message: String| {
            errors.push(error(Some(line_of(text, span.start)), field, message));
        });
        if errors.is_empty() { Ok(scenario) } else { Err(errors) }
    }

    /// The scenario `copies` times over, for load tests: every entity, device and scripted event
    /// is repeated with `_rN` appended to its name (the first copy keeps its names), and copy N
    /// listens on endpoints shifted by N × (highest endpoint + 1).
    pub fn replicate(&self, copies: u32) -> Scenario {
        if copies <= 1 {
            return self.clone();
        }
        let stride = self.devices.iter().map(|d| d.get_ref().endpoint).max().unwrap_or(0) + 1;
        let rename = |name: &str, r: u32| if r == 0 { name.to_owned() } else { format!("{name}_r{r}") };
        let mut out = Scenario {
            districts: vec![],
            reservoirs: vec![],
            pump_stations: vec![],
            sewer_stations: vec![],
            devices: vec![],
            events: vec![],
            ..self.clone()
        };
        for r in 0..copies {
            for d in &self.districts {
                let mut v = d.get_ref().clone();
                v.name = rename(&v.name, r);
                v.fed_by = rename(&v.fed_by, r);
                out.districts.push(Spanned::new(d.span(), v));
            }
            for x in &self.reservoirs {
                let mut v = x.get_ref().clone();
                v.name = rename(&v.name, r);
                out.reservoirs.push(Spanned::new(x.span(), v));
            }
            for x in &self.pump_stations {
                let mut v = x.get_ref().clone();
                v.name = rename(&v.name, r);
                v.draws_from = rename(&v.draws_from, r);
                out.pump_stations.push(Spanned::new(x.span(), v));
            }
            for x in &self.sewer_stations {
                let mut v = x.get_ref().clone();
                v.name = rename(&v.name, r);
                out.sewer_stations.push(Spanned::new(x.span(), v));
            }
            for x in &self.devices {
                let mut v = x.get_ref().clone();
                v.name = rename(&v.name, r);
                v.of = rename(&v.of, r);
                v.endpoint = v.endpoint.saturating_add((r as u16).saturating_mul(stride));
                out.devices.push(Spanned::new(x.span(), v));
            }
            for x in &self.events {
                let mut v = x.get_ref().clone();
                if v.target != "city" {
                    v.target = rename(&v.target, r);
                } else if r > 0 {
                    continue;
                }
                out.events.push(Spanned::new(x.span(), v));
            }
        }
        out
    }

    /// Cross-references and ranges; `report(span, field, message)` per problem.
    fn check(&self, report: &mut dyn FnMut(&std::ops::Range<usize>, String, String)) {
        // Network entities share one namespace (events name them without saying their kind);
        // devices have their own, so a station and its controller may share a name.
        let mut entity_names: HashSet<String> = HashSet::new();
        let mut device_names: HashSet<String> = HashSet::new();
        let name_ok = |names: &mut HashSet<String>,
                       span: &std::ops::Range<usize>,
                       field: String,
                       name: &str,
                       report: &mut dyn FnMut(&std::ops::Range<usize>, String, String)| {
            if !model::id::is_safe_name(name) {
                report(
                    span,
                    field,
                    format!("{name:?} is not a valid name: use 1 to 64 characters from A-Z a-z 0-9 _ . -"),
                );
            } else if !names.insert(name.to_owned()) {
                report(span, field, format!("the name {name:?} is used twice"));
            }
        };
        let reservoirs: HashSet<&str> = self.reservoirs.iter().map(|r| r.get_ref().name.as_str()).collect();
        let stations: HashSet<&str> = self.pump_stations.iter().map(|s| s.get_ref().name.as_str()).collect();
        let districts: HashSet<&str> = self.districts.iter().map(|d| d.get_ref().name.as_str()).collect();
        let sewers: HashSet<&str> = self.sewer_stations.iter().map(|s| s.get_ref().name.as_str()).collect();
        let positive = |v: f64| v.is_finite() && v > 0.0;
        for (i, r) in self.reservoirs.iter().enumerate() {
            let (span, r) = (r.span(), r.get_ref());
            name_ok(&mut entity_names, &span, format!("reservoir[{i}].name"), &r.name, report);
            for (field, v) in [("area_m2", r.area_m2), ("depth_m", r.depth_m), ("inflow_m3_per_h", r.inflow_m3_per_h)] {
                if !positive(v) {
                    report(&span, format!("reservoir[{i}].{field}"), format!("{v} must be a positive number"));
                }
            }
            if r.initial_level_m.is_some_and(|l| !(0.0..=r.depth_m).contains(&l)) {
                report(&span, format!("reservoir[{i}].initial_level_m"), "must lie between 0 and depth_m".to_owned());
            }
        }
        for (i, s) in self.pump_stations.iter().enumerate() {
            let (span, s) = (s.span(), s.get_ref());
            name_ok(&mut entity_names, &span, format!("pump_station[{i}].name"), &s.name, report);
            if !reservoirs.contains(s.draws_from.as_str()) {
                report(
                    &span,
                    format!("pump_station[{i}].draws_from"),
                    format!("no reservoir named {:?}", s.draws_from),
                );
            }
            if !(1..=4).contains(&s.pumps) {
                report(&span, format!("pump_station[{i}].pumps"), format!("{} pumps: use 1 to 4", s.pumps));
            }
            if !(positive(s.setpoint_bar) && s.setpoint_bar < 10.0) {
                report(
                    &span,
                    format!("pump_station[{i}].setpoint_bar"),
                    format!("{} bar is outside (0, 10)", s.setpoint_bar),
                );
            }
        }
        for (i, d) in self.districts.iter().enumerate() {
            let (span, d) = (d.span(), d.get_ref());
            name_ok(&mut entity_names, &span, format!("district[{i}].name"), &d.name, report);
            if !stations.contains(d.fed_by.as_str()) {
                report(&span, format!("district[{i}].fed_by"), format!("no pump station named {:?}", d.fed_by));
            }
            if !positive(d.population) {
                report(
                    &span,
                    format!("district[{i}].population"),
                    format!("{} must be a positive number", d.population),
                );
            }
            if d.leakage_m3_per_h.is_some_and(|l| !(l.is_finite() && l >= 0.0)) {
                report(&span, format!("district[{i}].leakage_m3_per_h"), "must be zero or more".to_owned());
            }
        }
        for (i, s) in self.sewer_stations.iter().enumerate() {
            let (span, s) = (s.span(), s.get_ref());
            name_ok(&mut entity_names, &span, format!("sewer_station[{i}].name"), &s.name, report);
            for (field, v) in [
                ("population", s.population),
                ("catchment_ha", s.catchment_ha),
                ("wet_well_area_m2", s.wet_well_area_m2),
                ("pump_capacity_m3_per_h", s.pump_capacity_m3_per_h),
            ] {
                if !positive(v) {
                    report(&span, format!("sewer_station[{i}].{field}"), format!("{v} must be a positive number"));
                }
            }
        }
        let mut units: HashSet<(u16, u8)> = HashSet::new();
        let mut devices: HashSet<&str> = HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            let (span, d) = (d.span(), d.get_ref());
            name_ok(&mut device_names, &span, format!("device[{i}].name"), &d.name, report);
            devices.insert(d.name.as_str());
            let (set, what) = match d.profile {
                Profile::PumpStation => (&stations, "pump station"),
                Profile::FlowMeter | Profile::PressureLogger => (&districts, "district"),
                Profile::ReservoirLevel => (&reservoirs, "reservoir"),
                Profile::SewerStation => (&sewers, "sewer station"),
            };
            if !set.contains(d.of.as_str()) {
                report(&span, format!("device[{i}].of"), format!("no {what} named {:?}", d.of));
            }
            if d.unit_id == 0 || d.unit_id > 247 {
                report(&span, format!("device[{i}].unit_id"), format!("{} is outside 1..=247", d.unit_id));
            }
            if !units.insert((d.endpoint, d.unit_id)) {
                report(
                    &span,
                    format!("device[{i}].unit_id"),
                    format!("unit {} at endpoint {} is taken", d.unit_id, d.endpoint),
                );
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            let (span, e) = (e.span(), e.get_ref());
            let target_ok = match e.kind.target_kind() {
                crate::events::TargetKind::District => districts.contains(e.target.as_str()),
                crate::events::TargetKind::PumpStation => stations.contains(e.target.as_str()),
                crate::events::TargetKind::Sewer => sewers.contains(e.target.as_str()),
                crate::events::TargetKind::PumpOrSewer => {
                    stations.contains(e.target.as_str()) || sewers.contains(e.target.as_str())
                }
                crate::events::TargetKind::Device => devices.contains(e.target.as_str()),
                crate::events::TargetKind::City => e.target == "city",
            };
            if !target_ok {
                report(
                    &span,
                    format!("event[{i}].target"),
                    format!("{:?} is not a {} of this scenario", e.target, e.kind.target_kind()),
                );
            }
            if !(e.start_min.is_finite() && e.start_min >= 0.0) {
                report(&span, format!("event[{i}].start_min"), "must be zero or more".to_owned());
            }
            if !positive(e.duration_min) {
                report(&span, format!("event[{i}].duration_min"), "must be a positive number".to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
name = "small"

[[reservoir]]
name = "r1"
area_m2 = 400
depth_m = 5
inflow_m3_per_h = 300

[[pump_station]]
name = "ps01"
draws_from = "r1"

[[district]]
name = "d1"
population = 5000
fed_by = "ps01"

[[device]]
name = "fm01"
profile = "flow_meter"
of = "d1"
unit_id = 2
"#;

    #[track_caller]
    fn check(text: &str, expected: &[&str]) {
        let errs = Scenario::parse(Path::new("s.toml"), text).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(shown, expected);
    }

    #[test]
    fn a_small_scenario_parses() {
        let s = Scenario::parse(Path::new("s.toml"), SMALL).unwrap();
        assert_eq!(s.districts.len(), 1);
        assert_eq!(s.devices[0].get_ref().unit_id, 2);
    }

    #[test]
    fn type_errors_name_line_and_field() {
        check(
            &SMALL.replace("population = 5000", "population = \"many\""),
            &["s.toml:16: district[0].population: invalid type: string \"many\", expected f64"],
        );
        check(
            &SMALL.replace("profile = \"flow_meter\"", "profile = \"magmeter\""),
            &[
                "s.toml:21: device[0].profile: unknown variant `magmeter`, expected one of `pump_station`, `flow_meter`, `pressure_logger`, `reservoir_level`, `sewer_station`",
            ],
        );
        check(
            &SMALL.replace("fed_by = \"ps01\"", "fed_by = \"ps01\"\nfedby = 1"),
            &[
                "s.toml:18: district[0].fedby: unknown field `fedby`, expected one of `name`, `population`, `fed_by`, `leakage_m3_per_h`, `critical_elevation_m`",
            ],
        );
    }

    #[test]
    fn references_are_checked() {
        check(&SMALL.replace("of = \"d1\"", "of = \"d9\""), &["s.toml:19: device[0].of: no district named \"d9\""]);
        check(
            &SMALL.replace("draws_from = \"r1\"", "draws_from = \"r2\""),
            &["s.toml:10: pump_station[0].draws_from: no reservoir named \"r2\""],
        );
    }
}
