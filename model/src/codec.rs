//! The Modbus register codec: how a number becomes 16-bit registers and back.
//!
//! This is the one place that knows word and byte orders; the simulator encodes with it and the
//! collector decodes with it, so a disagreement between them is impossible by construction and
//! a disagreement with a real device is a configuration matter (`word_order`), tested against
//! independent Modbus implementations.
//!
//! Word orders are named after the four bytes of a 32-bit value, A being the most significant:
//! `abcd` is big-endian (Modbus's own convention), `cdab` swaps the two words (the "word swapped
//! float" of many meters), `badc` swaps the bytes within each word, `dcba` is little-endian. For
//! 64-bit values the same rule applies to four words: `cdab` means least significant word first.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterKind {
    /// Read/write bits, function 1.
    Coil,
    /// Read-only bits, function 2.
    Discrete,
    /// Read/write 16-bit registers, function 3.
    Holding,
    /// Read-only 16-bit registers, function 4.
    Input,
}

impl RegisterKind {
    /// True for the bit tables (coils and discrete inputs).
    pub fn is_bit(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::Discrete)
    }
}

/// How a point's registers are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// One bit: a coil or discrete input, a register read as "non-zero", or with `bit = N`
    /// one bit of a register.
    Bool,
    /// Fixed-length text, two characters per register (`length` registers).
    String,
}

impl DataType {
    /// Number of 16-bit registers (or bits, for `Bool` on a bit table) the type occupies.
    pub fn width(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bool | DataType::String => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
        }
    }

    /// The name used in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
            DataType::Bool => "bool",
            DataType::String => "string",
        }
    }
}

/// Order of words and of bytes within words, for values wider than one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WordOrder {
    #[default]
    Abcd,
    Cdab,
    Badc,
    Dcba,
}

impl WordOrder {
    fn words_reversed(self) -> bool {
        matches!(self, WordOrder::Cdab | WordOrder::Dcba)
    }

    fn bytes_swapped(self) -> bool {
        matches!(self, WordOrder::Badc | WordOrder::Dcba)
    }
}

/// Big-endian bytes of `value` as `data_type`, or an error when it does not fit.
fn to_be_bytes(value: f64, data_type: DataType) -> Result<Vec<u8>, ModelError> {
    let out_of_range = || ModelError::OutOfRange { data_type: data_type.name(), value: value.to_string() };
    if !value.is_finite() && !matches!(data_type, DataType::F32 | DataType::F64) {
        return Err(out_of_range());
    }
    let int = value.round();
    // `as` saturates; the explicit range checks make an overflow an error instead.
    macro_rules! int_bytes {
        ($t:ty) => {{
            if int < <$t>::MIN as f64 || int > <$t>::MAX as f64 {
                return Err(out_of_range());
            }
            (int as $t).to_be_bytes().to_vec()
        }};
    }
    Ok(match data_type {
        DataType::U16 => int_bytes!(u16),
        DataType::I16 => int_bytes!(i16),
        DataType::U32 => int_bytes!(u32),
        DataType::I32 => int_bytes!(i32),
        DataType::U64 => int_bytes!(u64),
        DataType::I64 => int_bytes!(i64),
        DataType::F32 => (value as f32).to_be_bytes().to_vec(),
        DataType::F64 => value.to_be_bytes().to_vec(),
        DataType::Bool => u16::from(value != 0.0).to_be_bytes().to_vec(),
        DataType::String => return Err(out_of_range()),
    })
}

/// Encodes `value` into registers in the given word order.
pub fn encode(value: f64, data_type: DataType, order: WordOrder) -> Result<Vec<u16>, ModelError> {
    let bytes = to_be_bytes(value, data_type)?;
    let mut words: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    if data_type.width() > 1 {
        arrange(&mut words, order);
    }
    Ok(words)
}

/// Decodes registers (as read from the wire, in the device's order) into a number.
///
/// `u64`/`i64` values above 2^53 lose precision in the `f64`; totalizers in practice stay far
/// below that (2^53 litres is nine billion cubic metres).
pub fn decode(registers: &[u16], data_type: DataType, order: WordOrder) -> Result<f64, ModelError> {
    let width = usize::from(data_type.width());
    if registers.len() < width {
        return Err(ModelError::ShortRegisters { data_type: data_type.name(), needed: width, got: registers.len() });
    }
    let mut words = registers[..width].to_vec();
    if width > 1 {
        // The arrangement is its own inverse: reversing and byte-swapping twice restores the order.
        arrange(&mut words, order);
    }
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    Ok(match data_type {
        DataType::U16 => f64::from(u16::from_be_bytes([b[0], b[1]])),
        DataType::I16 => f64::from(i16::from_be_bytes([b[0], b[1]])),
        DataType::U32 => f64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        DataType::I32 => f64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        DataType::U64 => u64::from_be_bytes(b[..8].try_into().expect("width is 4 registers")) as f64,
        DataType::I64 => i64::from_be_bytes(b[..8].try_into().expect("width is 4 registers")) as f64,
        DataType::F32 => f32_to_f64_shortest(f32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        DataType::F64 => f64::from_be_bytes(b[..8].try_into().expect("width is 4 registers")),
        DataType::Bool => f64::from(u8::from(registers[0] != 0)),
        DataType::String => {
            return Err(ModelError::OutOfRange { data_type: "string", value: "use decode_string".to_owned() });
        }
    })
}

/// Decodes fixed-length text: two bytes per register, the first in the high byte (or the low
/// byte for the byte-swapped orders `badc` and `dcba`). Ends at the first NUL; trailing spaces
/// and control characters are dropped, and bytes that are not UTF-8 are replaced.
pub fn decode_string(registers: &[u16], order: WordOrder) -> String {
    let mut bytes: Vec<u8> = Vec::with_capacity(registers.len() * 2);
    for w in registers {
        let [hi, lo] = w.to_be_bytes();
        if order.bytes_swapped() {
            bytes.extend([lo, hi]);
        } else {
            bytes.extend([hi, lo]);
        }
    }
    if let Some(end) = bytes.iter().position(|b| *b == 0) {
        bytes.truncate(end);
    }
    let text: String = String::from_utf8_lossy(&bytes).chars().filter(|c| !c.is_control()).collect();
    text.trim_end().to_owned()
}

/// Encodes text into `length` registers, padded with NULs (for the simulator and tests).
pub fn encode_string(text: &str, length: u16, order: WordOrder) -> Vec<u16> {
    let mut bytes: Vec<u8> = text.bytes().take(usize::from(length) * 2).collect();
    bytes.resize(usize::from(length) * 2, 0);
    bytes
        .chunks_exact(2)
        .map(
            |c| if order.bytes_swapped() { u16::from_be_bytes([c[1], c[0]]) } else { u16::from_be_bytes([c[0], c[1]]) },
        )
        .collect()
}

/// Widens an f32 to the f64 with the same shortest decimal form, so a meter's 146.0364 is
/// stored as 146.0364 and not as 146.03639221191406 (the exact binary value, which only
/// looks like noise to a user and to a CSV export).
fn f32_to_f64_shortest(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::from(v);
    }
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Turns big-endian words into `order` (and back: the operation is an involution).
fn arrange(words: &mut [u16], order: WordOrder) {
    if order.words_reversed() {
        words.reverse();
    }
    if order.bytes_swapped() {
        for w in words.iter_mut() {
            *w = w.swap_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use DataType::*;
    use WordOrder::*;

    /// 123.25 as an IEEE-754 f32 is 0x42F6_8000.
    const F32_123_25: [u16; 2] = [0x42F6, 0x8000];
    /// 0x1234_5678 as u32.
    const U32_HEX: f64 = 305_419_896.0;

    #[track_caller]
    fn check(value: f64, data_type: DataType, order: WordOrder, wire: &[u16]) {
        assert_eq!(encode(value, data_type, order).unwrap(), wire, "encode {value} {data_type:?} {order:?}");
        assert_eq!(decode(wire, data_type, order).unwrap(), value, "decode {wire:04x?} {data_type:?} {order:?}");
    }

    #[test]
    fn thirty_two_bit_orders() {
        check(123.25, F32, Abcd, &F32_123_25);
        check(123.25, F32, Cdab, &[0x8000, 0x42F6]);
        check(123.25, F32, Badc, &[0xF642, 0x0080]);
        check(123.25, F32, Dcba, &[0x0080, 0xF642]);
        check(U32_HEX, U32, Abcd, &[0x1234, 0x5678]);
        check(U32_HEX, U32, Cdab, &[0x5678, 0x1234]);
        check(U32_HEX, U32, Badc, &[0x3412, 0x7856]);
        check(U32_HEX, U32, Dcba, &[0x7856, 0x3412]);
        check(-2.0, I32, Abcd, &[0xFFFF, 0xFFFE]);
        check(-2.0, I32, Cdab, &[0xFFFE, 0xFFFF]);
    }

    #[test]
    fn sixty_four_bit_orders() {
        let v = 0x0001_0203_0405_0607_u64 as f64;
        check(v, U64, Abcd, &[0x0001, 0x0203, 0x0405, 0x0607]);
        check(v, U64, Cdab, &[0x0607, 0x0405, 0x0203, 0x0001]);
        check(v, U64, Badc, &[0x0100, 0x0302, 0x0504, 0x0706]);
        check(v, U64, Dcba, &[0x0706, 0x0504, 0x0302, 0x0100]);
        check(-1.5, F64, Abcd, &[0xBFF8, 0, 0, 0]);
        check(-7.0, I64, Cdab, &[0xFFF9, 0xFFFF, 0xFFFF, 0xFFFF]);
    }

    #[test]
    fn single_registers_ignore_word_order() {
        for order in [Abcd, Cdab, Badc, Dcba] {
            check(65_535.0, U16, order, &[0xFFFF]);
            check(-1.0, I16, order, &[0xFFFF]);
            check(1.0, Bool, order, &[1]);
        }
    }

    #[test]
    fn out_of_range_is_an_error() {
        assert!(encode(65_536.0, U16, Abcd).is_err());
        assert!(encode(-1.0, U32, Abcd).is_err());
        assert!(encode(f64::NAN, I32, Abcd).is_err());
        assert!(encode(40_000.0, I16, Abcd).is_err());
    }

    #[test]
    fn f32_widens_to_its_shortest_decimal() {
        let words = encode(146.0364, F32, Abcd).unwrap();
        assert_eq!(decode(&words, F32, Abcd).unwrap(), 146.0364);
        assert!(decode(&[0x7FC0, 0], F32, Abcd).unwrap().is_nan());
    }

    #[test]
    fn strings() {
        // "MIZUMORI-01" in six registers: "MI" "ZU" "MO" "RI" "-0" "1\0".
        let wire = [0x4D49, 0x5A55, 0x4D4F, 0x5249, 0x2D30, 0x3100];
        assert_eq!(decode_string(&wire, Abcd), "MIZUMORI-01");
        assert_eq!(encode_string("MIZUMORI-01", 6, Abcd), wire);
        let swapped: Vec<u16> = wire.iter().map(|w| w.swap_bytes()).collect();
        assert_eq!(decode_string(&swapped, Badc), "MIZUMORI-01");
        assert_eq!(decode_string(&[0x4142, 0x2020, 0x0A00], Abcd), "AB");
        assert_eq!(decode_string(&[0xFFFE], Abcd), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn short_input_is_an_error() {
        let e = decode(&[1, 2, 3], F64, Abcd).unwrap_err();
        assert_eq!(e, ModelError::ShortRegisters { data_type: "f64", needed: 4, got: 3 });
    }

    #[test]
    fn round_trip_every_type_and_order() {
        // A cheap exhaustive-ish sweep instead of a property-test dependency: every type and
        // order over values that exercise sign bits and all byte positions.
        let samples = [0.0, 1.0, 255.0, 256.0, 4660.0, 32_767.0, 65_535.0, 1.0e6, 4_294_967_295.0];
        for dt in [U16, I16, U32, I32, U64, I64, F32, F64] {
            for order in [Abcd, Cdab, Badc, Dcba] {
                for &v in samples.iter().chain(&[-1.0, -32_768.0, 0.1, 1234.5678]) {
                    let Ok(words) = encode(v, dt, order) else {
                        continue;
                    };
                    let back = decode(&words, dt, order).unwrap();
                    let expected = match dt {
                        F32 => f32_to_f64_shortest(v as f32),
                        F64 => v,
                        _ => v.round(),
                    };
                    assert_eq!(back, expected, "{v} {dt:?} {order:?}");
                }
            }
        }
    }
}
