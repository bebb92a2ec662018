//! The seam between physics and protocol: a device model and its register image.

use model::{DataType, PointConfig, RegisterKind, codec};

/// A simulated device: its register map and the physics that fills it.
///
/// `points()` is the documented register map (the same description the collector's
/// configuration uses); after each `step`, `values()` holds one engineering value per point, in
/// the same order.
pub trait DeviceModel: Send + Sync + std::fmt::Debug {
    /// A short name of the kind of device, e.g. "pump_station".
    fn profile(&self) -> &'static str;
    fn points(&self) -> &[PointConfig];
    /// Advances the physics by `dt_s` seconds to `now`.
    fn step(&mut self, now: chrono::DateTime<chrono::Utc>, dt_s: f64);
    fn values(&self) -> &[f64];
    /// The largest read the device accepts.
    fn max_registers_per_request(&self) -> u16 {
        model::config::DEFAULT_MAX_REGISTERS
    }
}

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
        self.mapped[usize::from(address)..end]
            .iter_mut()
            .for_each(|m| *m = true);
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
    };
    if raw.is_nan() {
        lo.max(0.0)
    } else {
        raw.clamp(lo, hi)
    }
}

impl RegisterImage {
    /// An image with every point's registers mapped and zero.
    pub fn for_points(points: &[PointConfig]) -> Self {
        let mut image = RegisterImage::default();
        for p in points {
            let width = if p.register.is_bit() {
                1
            } else {
                p.data_type.width()
            };
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
                    let words = codec::encode(raw, p.data_type, order)
                        .expect("raw value clamped to the type's range");
                    let table = if p.register == RegisterKind::Holding {
                        &mut self.holding
                    } else {
                        &mut self.input
                    };
                    table.set(p.address, &words);
                }
            }
        }
    }
}
