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
    /// One bit: a coil or discrete input, or a register read as "non-zero".
    Bool,
}

impl DataType {
    /// Number of 16-bit registers (or bits, for `Bool` on a bit table) the type occupies.
    pub fn width(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bool => 1,
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
    })
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
