//! Readings and their quality.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DeviceId, ModelError, PointName};

/// What the collector knows about a value besides the number itself.
///
/// Every reading carries one, so that a chart can show a gap where a device did not answer and an
/// alert rule can tell a dead sensor from a quiet one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// Read and decoded without complaint.
    Good,
    /// The value was not refreshed in time (a device that answers but whose own sequence counter
    /// stopped, or a value repeated from the last good read).
    Stale,
    /// The request for this point failed on the wire: timeout, reset, refused, bad frame.
    CommFail,
    /// The device answered with a Modbus exception (the code, e.g. 2 = illegal data address).
    Exception(u8),
    /// The value decoded but lies outside the point's physical range (or is NaN/inf).
    OutOfRange,
}

impl Quality {
    /// True for values fit to compute with (aggregates, charts, alert thresholds).
    pub fn is_good(self) -> bool {
        self == Quality::Good
    }
}

impl Quality {
    /// The text form without allocating for the common cases.
    pub fn as_text(self) -> std::borrow::Cow<'static, str> {
        match self {
            Quality::Good => "good".into(),
            Quality::Stale => "stale".into(),
            Quality::CommFail => "comm_fail".into(),
            Quality::OutOfRange => "out_of_range".into(),
            Quality::Exception(_) => self.to_string().into(),
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Good => f.write_str("good"),
            Quality::Stale => f.write_str("stale"),
            Quality::CommFail => f.write_str("comm_fail"),
            Quality::Exception(code) => write!(f, "exception_{code:02x}"),
            Quality::OutOfRange => f.write_str("out_of_range"),
        }
    }
}

impl FromStr for Quality {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "good" => Quality::Good,
            "stale" => Quality::Stale,
            "comm_fail" => Quality::CommFail,
            "out_of_range" => Quality::OutOfRange,
            _ => match s.strip_prefix("exception_").map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(code)) if s.len() == "exception_00".len() => Quality::Exception(code),
                _ => return Err(ModelError::UnknownQuality(s.to_owned())),
            },
        })
    }
}

impl Serialize for Quality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quality {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The value of a reading.
///
/// Numbers are what nearly every point yields; text comes from string registers (a device's
/// serial number, a fault message). A failed read has no value at all, only its quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
    #[serde(rename = "null")]
    Absent,
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(*v),
            _ => None,
        }
    }
}

/// One value of one point of one device at one time.
///
/// `time` has millisecond precision: both stores keep milliseconds, so a reading read back
/// compares equal to the one written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub device: DeviceId,
    pub point: PointName,
    pub time: DateTime<Utc>,
    pub value: Value,
    pub quality: Quality,
}

impl Reading {
    /// A good numeric reading.
    pub fn good(device: DeviceId, point: PointName, time: DateTime<Utc>, value: f64) -> Self {
        Reading { device, point, time, value: Value::Number(value), quality: Quality::Good }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_round_trips_through_text() {
        for q in [
            Quality::Good,
            Quality::Stale,
            Quality::CommFail,
            Quality::Exception(2),
            Quality::Exception(0x0b),
            Quality::OutOfRange,
        ] {
            assert_eq!(q.to_string().parse::<Quality>().unwrap(), q);
        }
        assert_eq!(Quality::Exception(0x0b).to_string(), "exception_0b");
        assert!("exception_".parse::<Quality>().is_err());
        assert!("exception_1ff".parse::<Quality>().is_err());
        assert!("fine".parse::<Quality>().is_err());
    }
}
