//! Reading the collector's TOML configuration, with errors that name the file, the line, the
//! device, the point and the field.
//!
//! Parsing happens in two steps: the file into raw tables (keeping each device table's
//! position), then each device table into [`DeviceConfig`] with the field path tracked, then
//! checks that span fields (duplicate names, address ranges). Every problem in the file is
//! reported at once.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use model::{DataType, DeviceConfig, PointConfig};
use serde::Deserialize;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub devices: Vec<DeviceConfig>,
    /// Where each device was configured, for messages about it later (same order as `devices`).
    pub sources: Vec<Source>,
    pub buffer: BufferSettings,
}

/// The `[buffer]` table: where and how the durable buffer keeps readings the store has not
/// taken yet. Every field is optional; see `CollectorOptions` for the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferSettings {
    /// Directory of the buffer, relative to the configuration file.
    pub dir: Option<PathBuf>,
    pub max_bytes: Option<u64>,
    pub when_full: Option<crate::WhenFull>,
    pub fsync_interval_ms: Option<u64>,
}

impl BufferSettings {
    /// Applies the settings to `options`; a relative `dir` is taken from `base` (the directory
    /// of the configuration file).
    pub fn apply(&self, base: &Path, options: &mut crate::CollectorOptions) {
        if let Some(dir) = &self.dir {
            options.buffer_dir = base.join(dir);
        }
        if let Some(b) = self.max_bytes {
            options.buffer_max_bytes = b;
        }
        if let Some(w) = self.when_full {
            options.when_full = w;
        }
        if let Some(ms) = self.fsync_interval_ms {
            options.fsync_interval = std::time::Duration::from_millis(ms);
        }
    }
}

/// Where a device came from: file and line of its `[[device]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub device: Option<String>,
    pub point: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(":")?;
        if let Some(d) = &self.device {
            write!(f, " device {d:?}")?;
        }
        if let Some(p) = &self.point {
            write!(f, ", point {p:?}")?;
        }
        if let Some(field) = &self.field {
            let sep = if self.device.is_some() { "," } else { "" };
            write!(f, "{sep} field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{} in the collector configuration:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    buffer: BufferSettings,
    #[serde(default)]
    device: Vec<toml::Spanned<toml::Table>>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Line of the `index`-th `[[device.point]]` header after line `from` (before the next device).
fn point_line(text: &str, from: usize, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from)
        .take_while(|(_, l)| l.trim() != "[[device]]")
        .filter(|(_, l)| l.trim() == "[[device.point]]")
        .nth(index)
        .map(|(i, _)| i + 1)
}

impl CollectorConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                line: None,
                device: None,
                point: None,
                field: None,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(path, &text)
    }

    /// Validates configuration `text` that came from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let err = |line, device: Option<&str>, point: Option<&str>, field: Option<&str>, message: String| ConfigError {
            file: file.to_owned(),
            line,
            device: device.map(str::to_owned),
            point: point.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                return Err(ConfigErrors(vec![err(line, None, None, None, e.message().to_owned())]));
            }
        };
        if raw.device.is_empty() {
            errors.push(err(None, None, None, Some("device"), "no [[device]] tables: nothing to poll".to_owned()));
        }
        let mut devices = Vec::new();
        let mut sources = Vec::new();
        let mut names = HashSet::new();
        for spanned in raw.device {
            let line = line_of(text, spanned.span().start);
            let table = spanned.into_inner();
            let name = table.get("name").and_then(|v| v.as_str()).map(str::to_owned);
            let point_names: Vec<Option<String>> = table
                .get("point")
                .and_then(|p| p.as_array())
                .map(|ps| ps.iter().map(|p| p.get("name").and_then(|n| n.as_str()).map(str::to_owned)).collect())
                .unwrap_or_default();
            let device: DeviceConfig = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
                Ok(d) => d,
                Err(e) => {
                    let (point_ix, field) = split_path(&e.path().to_string());
                    let point = point_ix.and_then(|i| point_names.get(i).cloned().flatten());
                    let at = point_ix.and_then(|i| point_line(text, line, i)).unwrap_or(line);
                    errors.push(err(
                        Some(at),
                        name.as_deref(),
                        point.as_deref(),
                        field.as_deref(),
                        e.inner().message().to_owned(),
                    ));
                    continue;
                }
            };
            let before = errors.len();
            check_device(&device, &mut |point_ix: Option<usize>, field: &str, message: String| {
                let point = point_ix.map(|i| device.points[i].name.to_string());
                let at = point_ix.and_then(|i| point_line(text, line, i)).unwrap_or(line);
                errors.push(err(Some(at), Some(device.name.as_str()), point.as_deref(), Some(field), message));
            });
            if !names.insert(device.name.clone()) {
                errors.push(err(
                    Some(line),
                    Some(device.name.as_str()),
                    None,
                    Some("name"),
                    "a device of this name is configured above".to_owned(),
                ));
            }
            if errors.len() == before {
                sources.push(Source { file: file.to_owned(), line });
                devices.push(device);
            }
        }
        if raw.buffer.max_bytes.is_some_and(|b| b < 1 << 20) {
            errors.push(err(None, None, None, Some("buffer.max_bytes"), "use at least 1048576 (1 MiB)".to_owned()));
        }
        if errors.is_empty() {
            Ok(CollectorConfig { devices, sources, buffer: raw.buffer })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// `point[2].type` → (Some(2), Some("type")); `address` → (None, Some("address")).
fn split_path(path: &str) -> (Option<usize>, Option<String>) {
    if let Some(rest) = path.strip_prefix("point[") {
        if let Some((ix, field)) = rest.split_once(']') {
            let field = field.trim_start_matches('.');
            return (ix.parse().ok(), (!field.is_empty()).then(|| field.to_owned()));
        }
    }
    (None, (!path.is_empty() && path != ".").then(|| path.to_owned()))
}

/// Checks that need more than one field: calls `report(point index, field, message)` per problem.
fn check_device(d: &DeviceConfig, report: &mut dyn FnMut(Option<usize>, &str, String)) {
    match d.address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => report(None, "address", format!("{:?} is not HOST:PORT", d.address)),
    }
    if d.poll_interval_ms < 10 {
        report(None, "poll_interval_ms", format!("{} ms is too short; use at least 10", d.poll_interval_ms));
    }
    if d.timeout_ms == 0 {
        report(None, "timeout_ms", "must be at least 1".to_owned());
    }
    if d.address_base > 1 {
        report(None, "address_base", format!("{} is neither 0 nor 1", d.address_base));
    }
    if !(1..=125).contains(&d.max_registers_per_request) {
        report(None, "max_registers_per_request", format!("{} is outside 1..=125", d.max_registers_per_request));
    }
    if d.points.is_empty() {
        report(None, "point", "the device has no [[device.point]]: nothing to poll".to_owned());
    }
    if let Some(seq) = &d.sequence_point {
        if !d.points.iter().any(|p| &p.name == seq) {
            report(None, "sequence_point", format!("{seq:?} is not a point of this device"));
        }
    }
    if d.stale_after_ms == Some(0) {
        report(None, "stale_after_ms", "must be at least 1".to_owned());
    }
    let mut names = HashSet::new();
    for (i, p) in d.points.iter().enumerate() {
        check_point(p, d, &mut |field, message| report(Some(i), field, message));
        if !names.insert(&p.name) {
            report(Some(i), "name", "a point of this name is configured above in this device".to_owned());
        }
    }
}

fn check_point(p: &PointConfig, d: &DeviceConfig, report: &mut dyn FnMut(&str, String)) {
    if p.register.is_bit() && p.data_type != DataType::Bool {
        report("type", format!("{:?} registers hold single bits: use type = \"bool\"", p.register).to_lowercase());
    }
    if d.address_base == 1 && p.address == 0 {
        report("address", "the device numbers registers from 1 (address_base = 1), so 0 does not exist".to_owned());
    }
    let width = p.width();
    if u32::from(p.protocol_address(d)) + u32::from(width) > 65_536 {
        report("address", format!("{} plus the point's {width} registers runs past 65535", p.address));
    }
    if !p.register.is_bit() && width > d.max_registers_per_request {
        report("type", format!("needs {width} registers but the device reads at most {}", d.max_registers_per_request));
    }
    match (p.bit, p.data_type, p.register.is_bit()) {
        (None, _, _) => {}
        (Some(b), DataType::Bool, false) if b < 16 => {}
        (Some(b), DataType::Bool, false) => report("bit", format!("{b} is not a bit of a 16-bit register (0-15)")),
        (Some(_), _, true) => report("bit", "coils and discrete inputs are single bits already".to_owned()),
        (Some(_), _, false) => report("bit", "a bit of a register is read with type = \"bool\"".to_owned()),
    }
    match (p.data_type, p.length) {
        (DataType::String, None) => report("length", "a string needs its length in registers".to_owned()),
        (DataType::String, Some(n)) if n == 0 || n > 125 => {
            report("length", format!("{n} registers is outside 1..=125"))
        }
        (DataType::String, Some(_)) => {}
        (_, Some(_)) => report("length", "only strings have a length".to_owned()),
        (_, None) => {}
    }
    if !p.scale.is_finite() || p.scale == 0.0 {
        report("scale", format!("{} must be a finite, non-zero number", p.scale));
    }
    if !p.offset.is_finite() {
        report("offset", format!("{} must be a finite number", p.offset));
    }
    for (field, bound) in [("min", p.min), ("max", p.max)] {
        if bound.is_some_and(|b| b.is_nan()) {
            report(field, "must be a number".to_owned());
        }
    }
    if let (Some(min), Some(max)) = (p.min, p.max) {
        if min > max {
            report("min", format!("min {min} is above max {max}"));
        }
    }
    if p.deadband.is_some_and(|d| !(d.is_finite() && d >= 0.0)) {
        report("deadband", "must be zero or a positive number".to_owned());
    }
    if p.heartbeat_s.is_some() && p.deadband.is_none() {
        report("heartbeat_s", "only means something with a deadband".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[device]]
name = "ps01"
address = "127.0.0.1:5020"
unit_id = 1
poll_interval_ms = 1000
word_order = "abcd"

[[device.point]]
name = "discharge_pressure"
register = "input"
address = 4
type = "f32"
scale = 1.0
unit = "bar"

[[device.point]]
name = "running"
register = "discrete"
address = 0
type = "bool"
"#;

    /// Checks the messages, each of which must begin with the expected text (serde's lists of
    /// the names it expected are left out of the expectations).
    #[track_caller]
    fn check_err(text: &str, expected: &[&str]) {
        let errs = CollectorConfig::parse(Path::new("site.toml"), text).unwrap_err();
        let shown = errs.0.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown.len(), expected.len(), "{errs}");
        for (s, e) in shown.iter().zip(expected) {
            assert!(s.starts_with(e), "{s}\ndoes not begin with\n{e}");
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let c = CollectorConfig::parse(Path::new("site.toml"), GOOD).unwrap();
        assert_eq!(c.devices.len(), 1);
        assert_eq!(c.devices[0].points.len(), 2);
        assert_eq!(c.sources[0].line, 2);
    }

    #[test]
    fn unknown_field_names_file_line_device_and_field() {
        let text = GOOD.replace("unit_id = 1", "unit_id = 1\nadress = \"x\"");
        check_err(&text, &["site.toml:2: device \"ps01\", field `adress`: unknown field `adress`, expected one of"]);
    }

    #[test]
    fn bad_type_names_the_point_and_its_line() {
        let text = GOOD.replace("type = \"f32\"", "type = \"f33\"");
        check_err(
            &text,
            &[
                "site.toml:9: device \"ps01\", point \"discharge_pressure\", field `type`: unknown variant `f33`, expected one of",
            ],
        );
    }

    #[test]
    fn duplicate_point_and_device_are_reported_together() {
        let mut text = GOOD.replace("name = \"running\"", "name = \"discharge_pressure\"");
        text.push_str("\n[[device]]\nname = \"ps01\"\naddress = \"127.0.0.1:5021\"\n[[device.point]]\nname = \"x\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n");
        check_err(
            &text,
            &[
                "site.toml:17: device \"ps01\", point \"discharge_pressure\", field `name`: a point of this name is configured above in this device",
                "site.toml:23: device \"ps01\", field `name`: a device of this name is configured above",
            ],
        );
    }

    #[test]
    fn semantic_checks() {
        let text = GOOD
            .replace("address = \"127.0.0.1:5020\"", "address = \"localhost\"")
            .replace("type = \"bool\"", "type = \"u16\"")
            .replace("scale = 1.0", "scale = 0.0");
        check_err(
            &text,
            &[
                "site.toml:2: device \"ps01\", field `address`: \"localhost\" is not HOST:PORT",
                "site.toml:9: device \"ps01\", point \"discharge_pressure\", field `scale`: 0 must be a finite, non-zero number",
                "site.toml:17: device \"ps01\", point \"running\", field `type`: discrete registers hold single bits: use type = \"bool\"",
            ],
        );
    }

    #[test]
    fn point_options_are_checked() {
        let text = GOOD
            .replace("poll_interval_ms = 1000", "poll_interval_ms = 1000\naddress_base = 1")
            .replace("address = 4\ntype = \"f32\"", "address = 0\ntype = \"string\"")
            .replace("type = \"bool\"", "type = \"bool\"\nbit = 3");
        check_err(
            &text,
            &[
                "site.toml:10: device \"ps01\", point \"discharge_pressure\", field `address`: the device numbers registers from 1 (address_base = 1), so 0 does not exist",
                "site.toml:10: device \"ps01\", point \"discharge_pressure\", field `length`: a string needs its length in registers",
                "site.toml:18: device \"ps01\", point \"running\", field `address`: the device numbers registers from 1 (address_base = 1), so 0 does not exist",
                "site.toml:18: device \"ps01\", point \"running\", field `bit`: coils and discrete inputs are single bits already",
            ],
        );
    }

    #[test]
    fn bad_names_and_syntax() {
        check_err(
            &GOOD.replace("name = \"ps01\"", "name = \"ps 01\""),
            &[
                "site.toml:2: device \"ps 01\", field `name`: device name \"ps 01\" is not a valid name: use 1 to 64 characters from A-Z a-z 0-9 _ . -",
            ],
        );
        let errs = CollectorConfig::parse(Path::new("site.toml"), "[[device]\nname=1").unwrap_err();
        assert!(errs.0[0].to_string().starts_with("site.toml:1:"), "{errs}");
        check_err("", &["site.toml: field `device`: no [[device]] tables: nothing to poll"]);
    }
}
