//! Validated identifiers.
//!
//! Device and point names travel into InfluxDB tag values, SQL parameters, URLs and file names.
//! Restricting them to a small safe alphabet at the edge (config load, HTTP query) means no layer
//! behind it has to escape them, and no name can inject a line of line protocol or a clause of a
//! query. The rule is checked once, in `new`; a value of these types is always valid.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ModelError;

/// The longest name we accept; long enough for "district07_inlet_flow.totalizer_forward".
pub const MAX_NAME_LEN: usize = 64;

/// True if `s` is a safe name: 1..=64 characters from `[A-Za-z0-9_.-]`.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

macro_rules! safe_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Shared, not copied: every reading carries its device and point, so a clone is a
        /// reference-count increment rather than an allocation.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, ModelError> {
                let value = value.into();
                if is_safe_name(&value) {
                    Ok(Self(Arc::from(value)))
                } else {
                    Err(ModelError::InvalidName { kind: $kind, value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

safe_name!(
    /// A device: one Modbus unit at a host:port, e.g. `ps01` or `dma03_inlet`.
    DeviceId,
    "device name"
);
safe_name!(
    /// An asset of the register: a water main or sewer span, e.g. `10080` or `CHT-000123`.
    /// Ledger numbers are ASCII in every register we have seen; a Japanese ledger's full-width
    /// digits are folded to ASCII by the importer before they get here.
    AssetId,
    "asset id"
);
safe_name!(
    /// A point of a device: one decoded value, e.g. `discharge_pressure`.
    PointName,
    "point name"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, ok: bool) {
        assert_eq!(DeviceId::new(input).is_ok(), ok, "{input:?}");
        assert_eq!(PointName::new(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn safe_names() {
        check("ps01", true);
        check("dma-03.inlet_flow", true);
        check(&"a".repeat(MAX_NAME_LEN), true);
        check(&"a".repeat(MAX_NAME_LEN + 1), false);
        check("", false);
        check("ps 01", false);
        check("ps01\nflow v=1", false);
        check("x,y=z", false);
        check("a'b", false);
        check("a\"b", false);
        check("a\\b", false);
        check("ポンプ", false);
    }

    #[test]
    fn error_names_the_kind_and_value() {
        let e = PointName::new("bad name").unwrap_err().to_string();
        assert!(e.contains("point name") && e.contains("\"bad name\""), "{e}");
    }
}
