//! Pressure of each pressure zone from the store's readings, as features of the mains in it:
//! the link between monitoring and risk. A zone is observed by one or more pressure series
//! (`device/point`), named in a small TOML file ([`ZoneMap`]); over a window before the as-of
//! date (30 days by default) the zone's one-minute windows give its mean and maximum pressure
//! and its transients ([`ZonePressure`], defined in docs/analytics.md).
//!
//! This module reads the store through `ReadingSource::aggregate` only; it does not know how
//! readings are kept. Mains whose zone has no mapping or no readings simply have no pressure
//! features, and every model works without them (Kitchener has none).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use model::{DeviceId, PointName};
use serde::Deserialize;
use store::{ReadingSource, Window, WindowQuery};

use crate::AnalyticsError;

/// A change of more than this between two consecutive one-minute means, or within one minute
/// (its maximum minus its minimum), is a transient: a valve slammed, a pump tripped or
/// started, a burst. Ordinary demand moves a zone's pressure by a few hundredths of a bar a
/// minute.
pub const TRANSIENT_BAR: f64 = 0.5;

/// Fewer minutes of readings than this in the window give no features: an hour of data says
/// little about a month, and a transient rate from minutes would be noise.
pub const MIN_MINUTES: u64 = 60;

/// Days of readings before the as-of date that make a zone's features, by default.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;

/// One pressure series: a device's point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    pub device: DeviceId,
    pub point: PointName,
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.device, self.point)
    }
}

/// A pressure zone and the series that observe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// As the register's `pressure_zone` column writes it.
    pub name: String,
    pub pressure: Vec<Series>,
}

/// The zones of a zone file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneMap {
    pub zones: Vec<Zone>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    zone: Vec<toml::Spanned<RawZone>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: String,
    pressure: Vec<String>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

impl ZoneMap {
    /// Reads and checks a zone file.
    pub fn load(path: &Path) -> Result<ZoneMap, AnalyticsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| AnalyticsError::Open { path: path.to_owned(), source })?;
        ZoneMap::parse(path, &text)
    }

    /// Checks zone-file `text` that came from `file`: every zone has a unique name and at
    /// least one series, every series is `device/point` with valid names and observes one
    /// zone only. The first problem is the error, with its line and field.
    pub fn parse(file: &Path, text: &str) -> Result<ZoneMap, AnalyticsError> {
        let err = |line: Option<usize>, field: &str, why: String| AnalyticsError::Zones {
            path: file.to_owned(),
            line,
            field: field.to_owned(),
            why,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            err(line, "zone", e.message().to_owned())
        })?;
        if raw.zone.is_empty() {
            return Err(err(None, "zone", "no [[zone]] tables: no zone to read pressure for".into()));
        }
        let mut names = HashSet::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut zones = Vec::new();
        for spanned in raw.zone {
            let line = Some(line_of(text, spanned.span().start));
            let raw = spanned.into_inner();
            let name = raw.name.trim().to_owned();
            if name.is_empty() {
                return Err(err(line, "name", "a zone needs a name".into()));
            }
            if !names.insert(name.clone()) {
                return Err(err(line, "name", format!("zone {name:?} is named above already")));
            }
            if raw.pressure.is_empty() {
                return Err(err(line, "pressure", format!("zone {name:?} lists no pressure series")));
            }
            let mut pressure = Vec::new();
            for s in &raw.pressure {
                let bad = |why: String| err(line, "pressure", format!("zone {name:?}: {s:?}: {why}"));
                let (device, point) = s.split_once('/').ok_or_else(|| bad("use DEVICE/POINT".into()))?;
                let device = DeviceId::new(device).map_err(|e| bad(e.to_string()))?;
                let point = PointName::new(point).map_err(|e| bad(e.to_string()))?;
                if let Some(other) = seen.insert(s.clone(), name.clone()) {
                    return Err(bad(format!("already observes zone {other:?}")));
                }
                pressure.push(Series { device, point });
            }
            zones.push(Zone { name, pressure });
        }
        Ok(ZoneMap { zones })
    }
}

/// What the readings say about one zone's pressure over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZonePressure {
    /// Mean of the one-minute means of all the zone's series, bar.
    pub mean_bar: f64,
    /// Highest one-minute maximum, bar.
    pub max_bar: f64,
    /// Transient minutes (see [`TRANSIENT_BAR`]) per day of readings.
    pub transients_per_day: f64,
    /// Largest fall from one minute's mean to the next minute's, bar (0 when it never fell).
    pub max_drop_bar: f64,
    /// Minutes with readings, summed over the zone's series.
    pub minutes: u64,
}

impl ZonePressure {
    /// The features of a zone from the one-minute windows of each of its series (each in time
    /// order, as `aggregate` returns them); `None` with fewer than [`MIN_MINUTES`] minutes.
    pub fn from_minutes(series: &[Vec<Window>]) -> Option<ZonePressure> {
        let minutes: u64 = series.iter().map(|s| s.len() as u64).sum();
        if minutes < MIN_MINUTES {
            return None;
        }
        let (mut sum, mut max_bar, mut transients, mut max_drop) = (0.0, f64::NEG_INFINITY, 0u64, 0.0f64);
        for windows in series {
            let mut previous: Option<&Window> = None;
            for w in windows {
                sum += w.mean;
                max_bar = max_bar.max(w.max);
                // Only minutes that follow each other: across a gap in the readings a change
                // is no transient, whatever its size.
                let step = previous.filter(|p| w.start - p.start == Duration::minutes(1)).map(|p| w.mean - p.mean);
                if let Some(step) = step {
                    max_drop = max_drop.max(-step);
                }
                if w.max - w.min > TRANSIENT_BAR || step.is_some_and(|s| s.abs() > TRANSIENT_BAR) {
                    transients += 1;
                }
                previous = Some(w);
            }
        }
        let days = minutes as f64 / 1440.0;
        Some(ZonePressure {
            mean_bar: sum / minutes as f64,
            max_bar,
            transients_per_day: transients as f64 / days,
            max_drop_bar: max_drop,
            minutes,
        })
    }
}

/// Pressure features of each zone of `zones` over the `days` days before `end`, read from
/// `source` in one-minute windows; zones with too few readings are left out.
pub async fn zone_pressure<S: ReadingSource + ?Sized>(
    source: &S,
    zones: &ZoneMap,
    end: DateTime<Utc>,
    days: u32,
) -> Result<BTreeMap<String, ZonePressure>, AnalyticsError> {
    let from = end - Duration::days(i64::from(days));
    let mut out = BTreeMap::new();
    for zone in &zones.zones {
        let mut series = Vec::with_capacity(zone.pressure.len());
        for s in &zone.pressure {
            let query =
                WindowQuery { device: s.device.clone(), point: s.point.clone(), from, to: end, window_ms: 60_000 };
            let windows = source
                .aggregate(&query)
                .await
                .map_err(|e| AnalyticsError::Readings { series: s.to_string(), why: e.to_string() })?;
            series.push(windows);
        }
        if let Some(p) = ZonePressure::from_minutes(&series) {
            out.insert(zone.name.clone(), p);
        }
    }
    Ok(out)
}

/// The zone file of the demo: each district of the simulator's demo scenario is a zone,
/// observed by its critical-point pressure logger (`pl01` for `dma01` …).
pub fn demo_zones(districts: usize) -> ZoneMap {
    let zones = (1..=districts)
        .map(|i| Zone {
            name: format!("dma{i:02}"),
            pressure: vec![Series {
                device: DeviceId::new(format!("pl{i:02}")).expect("a safe name"),
                point: PointName::new("pressure").expect("a safe name"),
            }],
        })
        .collect();
    ZoneMap { zones }
}
