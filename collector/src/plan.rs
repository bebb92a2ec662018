//! Request planning: which reads fetch a device's points.
//!
//! Points of the same table are merged into one read while they are contiguous (or overlap)
//! and the read stays within the device's cap. Points separated by a gap are never merged:
//! many devices answer "illegal data address" for an unmapped register inside a read.

use model::{DeviceConfig, RegisterKind};

/// The Modbus limit for one read of bits (functions 1 and 2).
pub const MAX_BITS: u16 = 2000;

/// One read request and the points it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub register: RegisterKind,
    pub address: u16,
    pub count: u16,
    /// Indices into the device's `points`.
    pub points: Vec<usize>,
}

/// Every read of one poll cycle of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub requests: Vec<Request>,
}

impl Plan {
    pub fn for_device(device: &DeviceConfig) -> Plan {
        let mut order: Vec<usize> = (0..device.points.len()).collect();
        order.sort_by_key(|&i| (device.points[i].register, device.points[i].protocol_address(device)));
        let mut requests: Vec<Request> = Vec::new();
        for i in order {
            let p = &device.points[i];
            let address = p.protocol_address(device);
            let width = p.width();
            let cap = if p.register.is_bit() { MAX_BITS } else { device.max_registers_per_request };
            let end = u32::from(address) + u32::from(width);
            if let Some(last) = requests.last_mut() {
                let last_end = u32::from(last.address) + u32::from(last.count);
                let merged_count = end.max(last_end) - u32::from(last.address);
                if last.register == p.register && u32::from(address) <= last_end && merged_count <= u32::from(cap) {
                    last.count = merged_count as u16;
                    last.points.push(i);
                    continue;
                }
            }
            requests.push(Request { register: p.register, address, count: width, points: vec![i] });
        }
        Plan { requests }
    }
}

#[cfg(test)]
mod tests {
    use model::{DataType, DeviceId, PointConfig, PointName};

    use super::*;

    fn device(max: u16, points: &[(RegisterKind, u16, DataType)]) -> DeviceConfig {
        let points = points
            .iter()
            .enumerate()
            .map(|(i, &(register, address, data_type))| {
                PointConfig::new(PointName::new(format!("p{i}")).unwrap(), register, address, data_type)
            })
            .collect();
        DeviceConfig {
            max_registers_per_request: max,
            ..DeviceConfig::new(DeviceId::new("d").unwrap(), "127.0.0.1:502", 1, points)
        }
    }

    #[track_caller]
    fn check(max: u16, points: &[(RegisterKind, u16, DataType)], expected: &[(RegisterKind, u16, u16, &[usize])]) {
        let plan = Plan::for_device(&device(max, points));
        let got: Vec<(RegisterKind, u16, u16, Vec<usize>)> =
            plan.requests.into_iter().map(|r| (r.register, r.address, r.count, r.points)).collect();
        let expected: Vec<(RegisterKind, u16, u16, Vec<usize>)> =
            expected.iter().map(|&(k, a, c, p)| (k, a, c, p.to_vec())).collect();
        assert_eq!(got, expected);
    }

    use DataType::{Bool, F32, U16, U32};
    use RegisterKind::*;

    #[test]
    fn contiguous_points_merge() {
        check(125, &[(Input, 2, F32), (Input, 0, U32), (Input, 4, U16)], &[(Input, 0, 5, &[1, 0, 2])]);
    }

    #[test]
    fn gaps_and_tables_split() {
        check(
            125,
            &[(Input, 0, U16), (Input, 2, U16), (Holding, 1, U16), (Discrete, 0, Bool), (Discrete, 1, Bool)],
            &[(Discrete, 0, 2, &[3, 4]), (Holding, 1, 1, &[2]), (Input, 0, 1, &[0]), (Input, 2, 1, &[1])],
        );
    }

    #[test]
    fn the_cap_splits_long_runs() {
        check(
            4,
            &[(Holding, 0, F32), (Holding, 2, F32), (Holding, 4, F32)],
            &[(Holding, 0, 4, &[0, 1]), (Holding, 4, 2, &[2])],
        );
    }

    #[test]
    fn overlapping_points_share_registers() {
        check(125, &[(Holding, 0, U32), (Holding, 1, U16)], &[(Holding, 0, 2, &[0, 1])]);
    }
}
