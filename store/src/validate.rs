//! Checks every backend applies to a batch before writing any of it, so that both refuse the
//! same readings with the same message and a bad reading never leaves half a batch behind.

use model::{Reading, Value};

use crate::StoreError;

pub(crate) fn batch(batch: &[Reading]) -> Result<(), StoreError> {
    for r in batch {
        let reason = match &r.value {
            Value::Number(v) if !v.is_finite() => Some(format!("value {v} is not a finite number")),
            Value::Text(t) if t.contains(['\n', '\r']) => Some("text contains a line break".to_owned()),
            Value::Text(t) if t.chars().any(char::is_control) => Some("text contains a control character".to_owned()),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(StoreError::InvalidReading {
                device: r.device.to_string(),
                point: r.point.to_string(),
                time: r.time.to_rfc3339(),
                reason,
            });
        }
        if r.time.timestamp_millis() < 0 {
            return Err(StoreError::InvalidReading {
                device: r.device.to_string(),
                point: r.point.to_string(),
                time: r.time.to_rfc3339(),
                reason: "time is before 1970".to_owned(),
            });
        }
    }
    Ok(())
}
