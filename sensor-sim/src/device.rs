//! The seam between physics and protocol: a device's register image, and the state of its
//! communication faults, both shared between the stepping loop and the Modbus server.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use model::{DataType, PointConfig, RegisterKind, codec};

/// What a Modbus client can read from one device: the four tables, and which addresses exist.
#[derive(Debug, Clone, Default)]
pub struct RegisterImage {
    pub coils: Table<bool>,
    pub discretes: Table<bool>,
    pub holding: Table<u16>,
    pub input: Table<u16>,
}

/// One table: values and whether each address is mapped. Reading an unmapped address is an
/// "illegal data address" exception, as on real devices.
#[derive(Debug, Clone, Default)]
pub struct Table<T> {
    values: Vec<T>,
    mapped: Vec<bool>,
}

impl<T: Copy + Default> Table<T> {
    fn map(&mut self, address: u16, width: u16) {
        let end = usize::from(address) + usize::from(width);
        if self.values.len() < end {
            self.values.resize(end, T::default());
            self.mapped.resize(end, false);
        }
        self.mapped[usize::from(address)..end].iter_mut().for_each(|m| *m = true);
    }

    /// The values at `address..address+count`, or `None` if any of them is unmapped.
    pub fn read(&self, address: u16, count: u16) -> Option<Vec<T>> {
        let start = usize::from(address);
        let end = start + usize::from(count);
        if count == 0 || end > self.mapped.len() || !self.mapped[start..end].iter().all(|m| *m) {
            return None;
        }
        Some(self.values[start..end].to_vec())
    }

    fn set(&mut self, address: u16, values: &[T]) {
        let start = usize::from(address);
        self.values[start..start + values.len()].copy_from_slice(values);
    }
}

/// Clamps an engineering value's raw form into what the data type can hold, as a device's
/// firmware does, so that the physics can never make the codec fail.
fn clamp_raw(raw: f64, data_type: DataType) -> f64 {
    let (lo, hi) = match data_type {
        DataType::U16 => (0.0, f64::from(u16::MAX)),
        DataType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        DataType::U32 => (0.0, f64::from(u32::MAX)),
        DataType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        DataType::U64 => (0.0, 9.0e15),
        DataType::I64 => (-9.0e15, 9.0e15),
        DataType::F32 | DataType::F64 => return raw,
        DataType::Bool => return if raw != 0.0 { 1.0 } else { 0.0 },
        DataType::String => return raw,
    };
    if raw.is_nan() { lo.max(0.0) } else { raw.clamp(lo, hi) }
}

impl RegisterImage {
    /// An image with every point's registers mapped and zero.
    pub fn for_points(points: &[PointConfig]) -> Self {
        let mut image = RegisterImage::default();
        for p in points {
            let width = p.width();
            match p.register {
                RegisterKind::Coil => image.coils.map(p.address, width),
                RegisterKind::Discrete => image.discretes.map(p.address, width),
                RegisterKind::Holding => image.holding.map(p.address, width),
                RegisterKind::Input => image.input.map(p.address, width),
            }
        }
        image
    }

    /// Encodes `values` (engineering units, one per point) into the tables.
    pub fn store(&mut self, points: &[PointConfig], values: &[f64]) {
        for (p, &v) in points.iter().zip(values) {
            let raw = clamp_raw(p.raw(v), p.data_type);
            match p.register {
                RegisterKind::Coil => self.coils.set(p.address, &[raw != 0.0]),
                RegisterKind::Discrete => self.discretes.set(p.address, &[raw != 0.0]),
                RegisterKind::Holding | RegisterKind::Input => {
                    // A point's own word order, or big-endian: the simulator's register maps
                    // always state the order per point.
                    let order = p.word_order.unwrap_or_default();
                    let words = if p.data_type == DataType::String {
                        // The simulator's text points hold a number rendered as text.
                        codec::encode_string(&format!("{v}"), p.width(), order)
                    } else {
                        codec::encode(raw, p.data_type, order).expect("raw value clamped to the type's range")
                    };
                    let table = if p.register == RegisterKind::Holding { &mut self.holding } else { &mut self.input };
                    table.set(p.address, &words);
                }
            }
        }
    }
}

/// How a device currently misbehaves on the wire, set by the stepping loop from the active
/// events and read by the server for each request.
#[derive(Debug, Default)]
pub struct CommState {
    mode: AtomicU8,
    param: AtomicU32,
}

/// One communication fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommFault {
    None,
    /// No reply at all.
    Silent,
    /// A reply after this many milliseconds.
    Late(u32),
    /// Every request answered with this exception code.
    Exception(u8),
    /// The gateway cannot reach the device (exception 0x0B).
    Unreachable,
}

impl CommState {
    pub fn set(&self, fault: CommFault) {
        let (mode, param) = match fault {
            CommFault::None => (0, 0),
            CommFault::Silent => (1, 0),
            CommFault::Late(ms) => (2, ms),
            CommFault::Exception(code) => (3, u32::from(code)),
            CommFault::Unreachable => (4, 0),
        };
        // Param first: a reader that sees the new mode also sees its parameter.
        self.param.store(param, Ordering::Release);
        self.mode.store(mode, Ordering::Release);
    }

    pub fn get(&self) -> CommFault {
        let mode = self.mode.load(Ordering::Acquire);
        let param = self.param.load(Ordering::Acquire);
        match mode {
            1 => CommFault::Silent,
            2 => CommFault::Late(param),
            3 => CommFault::Exception(param as u8),
            4 => CommFault::Unreachable,
            _ => CommFault::None,
        }
    }
}
