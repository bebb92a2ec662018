//! InfluxDB line protocol, written strictly.
//!
//! Rather than escaping everything that line protocol can escape (and trusting every server
//! generation to unescape it the same way, which they do not for backslashes and quotes in
//! tags), names are restricted to a safe alphabet and anything else is refused with an error.
//! Free text only ever goes into string fields, where `\` and `"` are escaped and line breaks
//! are refused: a newline would end the line and let the rest inject a new one.

use std::fmt::Write;

use model::{Reading, Value};

use crate::StoreError;

/// Measurement that holds readings.
pub const MEASUREMENT: &str = "reading";

/// True for the characters allowed in measurement names, tag keys, tag values and field keys.
fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/')
}

/// Checks a measurement name, tag key, tag value or field key.
pub fn check_name(what: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.is_empty() {
        "is empty"
    } else if value.contains(['\n', '\r']) {
        "contains a line break"
    } else if !value.chars().all(safe_char) {
        "has characters outside A-Z a-z 0-9 _ . - : /"
    } else {
        return Ok(());
    };
    Err(StoreError::LineProtocol { what, value: value.to_owned(), reason })
}

/// Appends `"text"` with `\` and `"` escaped; refuses line breaks.
pub fn push_string_field(out: &mut String, text: &str) -> Result<(), StoreError> {
    if text.contains(['\n', '\r']) {
        return Err(StoreError::LineProtocol {
            what: "string field",
            value: text.to_owned(),
            reason: "contains a line break",
        });
    }
    out.push('"');
    for c in text.chars() {
        if matches!(c, '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(())
}

/// Appends a float field value; refuses NaN and infinities, which no InfluxDB accepts.
pub fn push_float_field(out: &mut String, value: f64) -> Result<(), StoreError> {
    if !value.is_finite() {
        return Err(StoreError::LineProtocol {
            what: "float field",
            value: value.to_string(),
            reason: "is not finite",
        });
    }
    // `Display` for f64 never uses an exponent and round-trips exactly.
    write!(out, "{value}").expect("writing to a String cannot fail");
    Ok(())
}

/// Appends one reading as a line (with a trailing newline), millisecond precision.
///
/// On error nothing is appended, so a caller can encode a whole batch before sending any of it.
pub fn push_reading(out: &mut String, r: &Reading) -> Result<(), StoreError> {
    let start = out.len();
    let result = encode(out, r);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode(out: &mut String, r: &Reading) -> Result<(), StoreError> {
    check_name("tag value", r.device.as_str())?;
    check_name("tag value", r.point.as_str())?;
    write!(out, "{MEASUREMENT},device={},point={} ", r.device, r.point).expect("String write");
    match &r.value {
        Value::Number(v) => {
            out.push_str("value=");
            push_float_field(out, *v)?;
            out.push(',');
        }
        Value::Text(t) => {
            out.push_str("text=");
            push_string_field(out, t)?;
            out.push(',');
        }
        Value::Absent => {}
    }
    out.push_str("quality=");
    push_string_field(out, &r.quality.to_string())?;
    writeln!(out, " {}", r.time.timestamp_millis()).expect("String write");
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use model::{DeviceId, PointName, Quality};

    use super::*;

    fn reading(value: Value, quality: Quality) -> Reading {
        Reading {
            device: DeviceId::new("ps01").unwrap(),
            point: PointName::new("flow").unwrap(),
            time: Utc.timestamp_millis_opt(1_795_739_213_123).unwrap(),
            value,
            quality,
        }
    }

    #[track_caller]
    fn check(r: &Reading, expected: &str) {
        let mut out = String::new();
        push_reading(&mut out, r).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn exact_bytes() {
        check(
            &reading(Value::Number(12.5), Quality::Good),
            "reading,device=ps01,point=flow value=12.5,quality=\"good\" 1795739213123\n",
        );
        check(
            &reading(Value::Number(10.0), Quality::Good),
            "reading,device=ps01,point=flow value=10,quality=\"good\" 1795739213123\n",
        );
        check(
            &reading(Value::Absent, Quality::Exception(2)),
            "reading,device=ps01,point=flow quality=\"exception_02\" 1795739213123\n",
        );
        check(
            &reading(Value::Text(r#"C:\path\ "q""#.into()), Quality::Good),
            "reading,device=ps01,point=flow text=\"C:\\\\path\\\\ \\\"q\\\"\",quality=\"good\" 1795739213123\n",
        );
    }

    #[test]
    fn refuses_what_would_corrupt_a_batch() {
        let mut out = String::from("kept\n");
        assert!(push_reading(&mut out, &reading(Value::Number(f64::NAN), Quality::Good)).is_err());
        assert!(push_reading(&mut out, &reading(Value::Number(f64::INFINITY), Quality::Good)).is_err());
        assert!(push_reading(&mut out, &reading(Value::Text("a\nb v=1".into()), Quality::Good)).is_err());
        assert_eq!(out, "kept\n", "a refused reading leaves nothing behind");
    }

    #[test]
    fn names_outside_the_safe_set_are_refused() {
        for bad in ["", "a b", "a,b", "a=b", "a\\", "a\"b", "line1\nline2", "ポンプ"] {
            let e = check_name("tag value", bad).unwrap_err().to_string();
            assert!(e.contains("tag value"), "{e}");
        }
        check_name("tag value", "dma-03.inlet:flow/1").unwrap();
    }
}
