//! The device and point map: which registers of which device hold which values.
//!
//! This is the collector's configuration format (`[[device]]` with `[[device.point]]` tables)
//! and also what the simulator emits for its own devices, so both sides describe a register map
//! the same way. Parsing and validation with file and line context live in the collector; these
//! types only define the shape and defaults.

use serde::{Deserialize, Serialize};

use crate::{DataType, DeviceId, PointName, RegisterKind, WordOrder};

/// Default poll interval: one second, the usual SCADA scan rate for pumps and flows.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// Default request timeout. Field gateways over 4G answer in 5–50 ms; one second leaves room.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// The Modbus limit for one read of registers (function 3/4).
pub const DEFAULT_MAX_REGISTERS: u16 = 125;

fn default_unit_id() -> u8 {
    1
}
fn default_poll_interval_ms() -> u64 {
    DEFAULT_POLL_INTERVAL_MS
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_max_registers() -> u16 {
    DEFAULT_MAX_REGISTERS
}
fn default_scale() -> f64 {
    1.0
}
fn is_default_scale(v: &f64) -> bool {
    *v == 1.0
}
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// One Modbus device (a unit id at a host:port).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub name: DeviceId,
    /// `host:port` of the device or of the gateway in front of it.
    pub address: String,
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Word order of values wider than one register, unless a point says otherwise.
    #[serde(default)]
    pub word_order: WordOrder,
    /// Largest read the device accepts, in registers (some devices reject more than 50).
    #[serde(default = "default_max_registers")]
    pub max_registers_per_request: u16,
    /// 0: point addresses are protocol addresses (what goes on the wire). 1: they are
    /// numbered from 1 as in many manuals (a manual's 40001 is `address = 1` in a holding
    /// table), and the collector subtracts one.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub address_base: u8,
    /// Pause between the requests of one cycle, for devices that need a breather.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub request_pause_ms: u64,
    /// A point that counts the device's own samples (such as the simulator's `seq`). When it
    /// stops moving for `stale_after_ms`, the device still answers but its values are frozen:
    /// every reading of the cycle gets the quality `stale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_point: Option<PointName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_ms: Option<u64>,
    #[serde(rename = "point", default)]
    pub points: Vec<PointConfig>,
}

/// One value read from a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointConfig {
    pub name: PointName,
    pub register: RegisterKind,
    /// Register address: 0-based protocol address, or 1-based when the device says
    /// `address_base = 1`.
    pub address: u16,
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Engineering value = raw × scale + offset.
    #[serde(default = "default_scale", skip_serializing_if = "is_default_scale")]
    pub scale: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Overrides the device's word order for this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_order: Option<WordOrder>,
    /// Physical range; a value outside it is stored with quality `out_of_range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// With `type = "bool"` on a register table: which bit of the register (0 = least significant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    /// With `type = "string"`: how many registers the text occupies (two characters each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u16>,
    /// Store a new value only when it moved at least this much since the last one stored
    /// (or its quality changed, or `heartbeat_s` passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadband: Option<f64>,
    /// With a deadband: store the value at least this often anyway, seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_s: Option<u64>,
}

impl DeviceConfig {
    /// A device with the configuration file's defaults for everything not given.
    pub fn new(name: DeviceId, address: impl Into<String>, unit_id: u8, points: Vec<PointConfig>) -> Self {
        DeviceConfig {
            name,
            address: address.into(),
            unit_id,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            word_order: WordOrder::default(),
            max_registers_per_request: DEFAULT_MAX_REGISTERS,
            address_base: 0,
            request_pause_ms: 0,
            sequence_point: None,
            stale_after_ms: None,
            points,
        }
    }
}

impl PointConfig {
    /// A point with the configuration file's defaults: scale 1, no offset, unit, range, word
    /// order override, bit, length or deadband.
    pub fn new(name: PointName, register: RegisterKind, address: u16, data_type: DataType) -> Self {
        PointConfig {
            name,
            register,
            address,
            data_type,
            scale: 1.0,
            offset: 0.0,
            unit: String::new(),
            word_order: None,
            min: None,
            max: None,
            bit: None,
            length: None,
            deadband: None,
            heartbeat_s: None,
        }
    }

    /// Registers (or bits) the point occupies.
    pub fn width(&self) -> u16 {
        if self.register.is_bit() {
            1
        } else if self.data_type == DataType::String {
            self.length.unwrap_or(1)
        } else {
            self.data_type.width()
        }
    }

    /// The address on the wire.
    pub fn protocol_address(&self, device: &DeviceConfig) -> u16 {
        self.address.saturating_sub(u16::from(device.address_base))
    }

    /// The word order in force for this point.
    pub fn effective_word_order(&self, device: &DeviceConfig) -> WordOrder {
        self.word_order.unwrap_or(device.word_order)
    }

    /// Raw decoded number → engineering value.
    ///
    /// A decimal scale such as 0.001 is applied as a division by 1000, which is correctly
    /// rounded: 48231679 × 0.001 gives 48231.679000000004, 48231679 / 1000 gives 48231.679.
    pub fn engineering(&self, raw: f64) -> f64 {
        let inverse = 1.0 / self.scale;
        let scaled = if self.scale.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 * inverse.abs() {
            raw / inverse.round()
        } else {
            raw * self.scale
        };
        scaled + self.offset
    }

    /// Engineering value → raw number (what the simulator encodes).
    pub fn raw(&self, engineering: f64) -> f64 {
        (engineering - self.offset) / self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scale: f64, offset: f64) -> PointConfig {
        PointConfig {
            scale,
            offset,
            ..PointConfig::new(PointName::new("p").unwrap(), RegisterKind::Holding, 0, DataType::U32)
        }
    }

    #[test]
    fn decimal_scales_give_the_decimal_value() {
        assert_eq!(point(0.001, 0.0).engineering(48_231_679.0), 48_231.679);
        assert_eq!(point(0.1, 0.0).engineering(3.0), 0.3);
        assert!((point(0.01, -40.0).engineering(6_523.0) - 25.23).abs() < 1e-12);
        assert_eq!(point(2.5, 0.0).engineering(4.0), 10.0);
        assert_eq!(point(1.0, 0.0).engineering(7.0), 7.0);
    }
}
