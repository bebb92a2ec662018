//! Alerts: what a rule raised about an asset, and where it is in its life
//! (open → acknowledged → resolved, or shelved for a while).
//!
//! These are plain values. Raising, updating and storing them is the collector's and the
//! store's business; this module only names the states and severities once for everyone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DeviceId, ModelError, PointName};

/// How urgent an alert is. Ordered: `Info < Minor < Major < Critical`, so a webhook's filter
/// "major and above" is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Minor,
    Major,
    Critical,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised and nobody has taken it yet.
    Open,
    /// Someone took it (who and with what comment is on the alert).
    Acknowledged,
    /// Over: the condition cleared for long enough (auto) or someone closed it with a note.
    Resolved,
    /// Hidden until a time (planned works, a known fault); repeats do not notify meanwhile.
    Shelved,
}

impl AlertState {
    /// True while the alert is not resolved: a repeat of its condition updates it.
    pub fn is_active(self) -> bool {
        self != AlertState::Resolved
    }
}

macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident => $text:literal),+) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(ModelError::UnknownName { kind: $what, value: s.to_owned(), expected: concat!($($text, " "),+) }),
                }
            }
        }
    };
}

text_enum!(Severity, "severity", Info => "info", Minor => "minor", Major => "major", Critical => "critical");
text_enum!(AlertState, "alert state", Open => "open", Acknowledged => "acknowledged", Resolved => "resolved", Shelved => "shelved");

/// What a rule reports when its condition holds: enough to raise a new alert or to update the
/// open one of the same rule, device and point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAlert {
    pub rule: String,
    /// The asset the alert belongs to (a pump station, a district, a sewer station).
    pub asset: String,
    pub device: DeviceId,
    pub point: PointName,
    pub severity: Severity,
    pub at: DateTime<Utc>,
    /// The value that made the condition true, when there is one (comm loss has none).
    pub value: Option<f64>,
    pub message_ja: String,
    pub message_en: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub rule: String,
    pub asset: String,
    pub device: DeviceId,
    pub point: PointName,
    pub severity: Severity,
    pub state: AlertState,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How often the condition was reported while this alert was active (1 when raised).
    pub count: u32,
    pub value: Option<f64>,
    pub message_ja: String,
    pub message_en: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub ack_comment: Option<String>,
    /// Who resolved it; `None` on a resolved alert means the rule resolved it (condition clear).
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolve_note: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_severity_orders() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
        }
        for s in AlertState::ALL {
            assert_eq!(s.as_str().parse::<AlertState>().unwrap(), *s);
        }
        assert!(Severity::Critical > Severity::Major && Severity::Minor > Severity::Info);
        let e = "urgent".parse::<Severity>().unwrap_err().to_string();
        assert!(e.contains("urgent") && e.contains("critical"), "{e}");
        assert!(!AlertState::Resolved.is_active() && AlertState::Shelved.is_active());
    }
}
