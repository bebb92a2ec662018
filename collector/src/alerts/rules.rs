//! The alert rules file: TOML → [`RuleSet`] (rules and webhooks), with errors that name the
//! file, the line, the rule and the field.
//!
//! Like the collector configuration, parsing has two steps: the file into raw tables (keeping
//! each `[[rule]]` table's position), then each table into a [`RawRule`] with its field path
//! tracked, then checks across fields (which fields a rule's `kind` needs, delays, names).
//! Every problem in the file is reported at once.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::{DeviceId, PointName, Severity};
use serde::Deserialize;

use super::detect::burst::BurstParams;
use super::detect::leak::LeakParams;
use super::detect::pump::{DutyInputs, PumpParams};
use super::detect::sewer::SewerParams;
use super::detect::{DetectorKind, DetectorSpec, Input};
use super::email::SmtpTls;
use super::eval::{Kind, Rule};
use super::notify::{Secret, Webhook};
use store::tls::ExtraRoots;

/// A validated rules file.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub webhooks: Vec<Webhook>,
    /// Detectors of conditions that need many readings (bursts, sewer stations, pumps).
    pub detectors: Vec<DetectorSpec>,
    /// E-mail targets.
    pub emails: Vec<super::email::Email>,
    /// How often time-based conditions (delays, communication loss, shelving) are checked.
    pub tick: Duration,
}

/// One problem in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// `rule "name"`, `detector "name"` or `webhook "name"`.
    pub item: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(":")?;
        if let Some(item) = &self.item {
            write!(f, " {item}")?;
        }
        if let Some(field) = &self.field {
            let sep = if self.item.is_some() { "," } else { "" };
            write!(f, "{sep} field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a rules file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulesErrors(pub Vec<RulesError>);

impl fmt::Display for RulesErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{} in the alert rules:", if n == 1 { "" } else { "s" })?;
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
    engine: RawEngine,
    #[serde(default)]
    webhook: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    rule: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    detector: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    email: Vec<toml::Spanned<toml::Table>>,
}

/// One `[[email]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    name: String,
    smtp_host: String,
    /// Default by `tls`: 587, 465 or 25.
    smtp_port: Option<u16>,
    /// Default `starttls`, except that an explicit port 25 must say which (see `check_email_tls`).
    tls: Option<SmtpTls>,
    /// A PEM file of extra trust roots (a city's private CA).
    ca_file: Option<PathBuf>,
    /// Send the password over `tls = "none"` (a relay on this machine). Default false.
    #[serde(default)]
    allow_plaintext_auth: bool,
    from: String,
    to: Vec<String>,
    #[serde(default = "lowest")]
    min_severity: Severity,
    username: Option<String>,
    /// Name of an environment variable holding the SMTP password.
    password_env: Option<String>,
    /// A file holding the SMTP password (first line).
    password_file: Option<PathBuf>,
    #[serde(default = "default_initial_backoff_ms")]
    initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    max_backoff_ms: u64,
    #[serde(default = "default_smtp_timeout_ms")]
    timeout_ms: u64,
}

fn default_smtp_timeout_ms() -> u64 {
    10_000
}

/// What a `[[detector]]` table detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawDetectorKind {
    Burst,
    Sewer,
    Pump,
    Leak,
}

/// One `[[detector]]` table as written; fields are checked against the kind afterwards.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetector {
    name: String,
    kind: RawDetectorKind,
    asset: String,
    /// `device/point` of the district's inlet flow (burst).
    flow: Option<String>,
    /// `device/point` of the pressure at the district's critical point (burst).
    pressure: Option<String>,
    min_rise_m3_per_h: Option<f64>,
    k_sigma: Option<f64>,
    min_pressure_drop_bar: Option<f64>,
    flushing_max_min: Option<f64>,
    burst_confirm_min: Option<f64>,
    flushing_hours: Option<[f64; 2]>,
    /// Whether the planned-works register explains flushing (burst; default true).
    planned_works: Option<bool>,
    planned_margin_min: Option<f64>,
    utc_offset_h: Option<f64>,
    /// `device/point` of the wet-well level (sewer).
    level: Option<String>,
    /// `device/point` of each pump's running contact (sewer).
    running: Option<Vec<String>>,
    min_rise_m_per_h: Option<f64>,
    rise_for_s: Option<f64>,
    overflow_level_m: Option<f64>,
    overflow_within_min: Option<f64>,
    /// Share of the learned pump-out rate lost that is a loss of capacity (sewer, 0-1).
    capacity_drop: Option<f64>,
    /// `device/point` of a pump's bearing vibration, mm/s (pump).
    vibration: Option<String>,
    /// `device/point` of the pump's drive frequency, Hz (pump).
    frequency: Option<String>,
    zone_c_mm_s: Option<f64>,
    zone_d_mm_s: Option<f64>,
    cavitation_ratio: Option<f64>,
    /// `device/point` of the pump's bearing temperature, °C (pump, optional).
    bearing_temperature: Option<String>,
    bearing_excess_k: Option<f64>,
    thermal_lag_min: Option<f64>,
    /// `device/point` of the pump's flow, the station's suction and discharge pressure and the
    /// pump's power (pump, optional, all four together): the impeller check.
    pump_flow: Option<String>,
    suction_pressure: Option<String>,
    discharge_pressure: Option<String>,
    power: Option<String>,
    head_loss_frac: Option<f64>,
    energy_rise_frac: Option<f64>,
    /// Night window for the minimum night flow, local hours [from, to) (leak).
    night_hours: Option<[f64; 2]>,
    baseline_nights: Option<u32>,
    confirm_nights: Option<u32>,
}

/// The `[engine]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    /// Default 1000 ms.
    #[serde(default = "default_tick_ms")]
    tick_ms: u64,
}

impl Default for RawEngine {
    fn default() -> Self {
        RawEngine { tick_ms: default_tick_ms() }
    }
}

fn default_tick_ms() -> u64 {
    1000
}

fn default_off_delay_s() -> f64 {
    60.0
}

/// What rule a `[[rule]]` table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Above,
    Below,
    RateOfChange,
    FlatLine,
    OutOfRange,
    CommLoss,
    Bits,
    Nonzero,
}

/// One `[[rule]]` table as written. Fields that only some kinds use are optional here and
/// checked against the kind afterwards, so a misplaced field is named in the error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    kind: RawKind,
    device: DeviceId,
    /// Required, except for `comm_loss`, where no point means "any point of the device".
    point: Option<PointName>,
    asset: String,
    severity: Severity,
    threshold: Option<f64>,
    hysteresis: Option<f64>,
    max_rate_per_min: Option<f64>,
    stuck_for_s: Option<f64>,
    tolerance: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    silent_for_s: Option<f64>,
    mask: Option<u32>,
    /// The condition must hold this long before the alert is raised. Default 0.
    #[serde(default)]
    on_delay_s: f64,
    /// The condition must stay clear this long before the alert resolves itself. Default 60.
    #[serde(default = "default_off_delay_s")]
    off_delay_s: f64,
    message_en: Option<String>,
    message_ja: Option<String>,
    /// A kind of planned works (`pump_maintenance`) during which, on the rule's asset or
    /// device, the condition is not a failure.
    quiet_during: Option<String>,
}

/// One `[[webhook]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: String,
    url: String,
    /// Only alerts of this severity or higher. Default `info` (all).
    #[serde(default = "lowest")]
    min_severity: Severity,
    /// Name of an environment variable holding a bearer token (never the token itself).
    token_env: Option<String>,
    /// A PEM file of extra trust roots for an https URL (a city's private CA).
    ca_file: Option<PathBuf>,
    #[serde(default = "default_initial_backoff_ms")]
    initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    max_backoff_ms: u64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn lowest() -> Severity {
    Severity::Info
}
fn default_initial_backoff_ms() -> u64 {
    1000
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    5000
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// One `[[kind]]` table deserialised into `T`, with its line and the label errors name it by
/// (`rule "low_pressure"`); a table that does not deserialise is reported and skipped.
fn raw_table<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    spanned: toml::Spanned<toml::Table>,
    kind: &str,
    errors: &mut Vec<RulesError>,
) -> Option<(T, usize, Option<String>)> {
    let line = line_of(text, spanned.span().start);
    let table = spanned.into_inner();
    let item = Some(match table.get("name").and_then(|v| v.as_str()) {
        Some(n) => format!("{kind} {n:?}"),
        None => kind.to_owned(),
    });
    match serde_path_to_error::deserialize(toml::Value::Table(table)) {
        Ok(t) => Some((t, line, item)),
        Err(e) => {
            let path = e.path().to_string();
            errors.push(RulesError {
                file: file.to_owned(),
                line: Some(line),
                item,
                field: (path != ".").then_some(path),
                message: e.inner().message().to_owned(),
            });
            None
        }
    }
}

impl RuleSet {
    /// Reads and validates a rules file; `env` looks up webhook tokens (`std::env::var` in the
    /// binary, a map in tests).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, RulesErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RulesErrors(vec![RulesError {
                file: path.to_owned(),
                line: None,
                item: None,
                field: None,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(path, &text, env)
    }

    /// Validates rules `text` that came from `file`.
    pub fn parse(file: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, RulesErrors> {
        let err = |line, item: Option<String>, field: Option<&str>, message: String| RulesError {
            file: file.to_owned(),
            line,
            item,
            field: field.map(str::to_owned),
            message,
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                return Err(RulesErrors(vec![err(line, None, None, e.message().to_owned())]));
            }
        };
        let mut errors = Vec::new();
        if raw.engine.tick_ms < 10 {
            errors.push(err(None, None, Some("engine.tick_ms"), "use at least 10".to_owned()));
        }

        let mut rules = Vec::new();
        let mut names = HashSet::new();
        for spanned in raw.rule {
            let Some((r, line, item)) = raw_table::<RawRule>(file, text, spanned, "rule", &mut errors) else {
                continue;
            };
            let before = errors.len();
            let mut report = |field: &str, message: String| {
                errors.push(err(Some(line), item.clone(), Some(field), message));
            };
            if !model::id::is_safe_name(&r.name) {
                report("name", format!("{:?}: use 1-64 characters from A-Z a-z 0-9 _ . -", r.name));
            } else if !names.insert(r.name.clone()) {
                report("name", "a rule of this name is configured above".to_owned());
            }
            if !model::id::is_safe_name(&r.asset) {
                report("asset", format!("{:?}: use 1-64 characters from A-Z a-z 0-9 _ . -", r.asset));
            }
            if let Some(rule) = check_rule(r, &mut report) {
                if errors.len() == before {
                    rules.push(rule);
                }
            }
        }

        let mut detectors = Vec::new();
        for spanned in raw.detector {
            let Some((d, line, item)) = raw_table::<RawDetector>(file, text, spanned, "detector", &mut errors) else {
                continue;
            };
            let before = errors.len();
            let mut report = |field: &str, message: String| {
                errors.push(err(Some(line), item.clone(), Some(field), message));
            };
            if !model::id::is_safe_name(&d.name) {
                report("name", format!("{:?}: use 1-64 characters from A-Z a-z 0-9 _ . -", d.name));
            }
            if !model::id::is_safe_name(&d.asset) {
                report("asset", format!("{:?}: use 1-64 characters from A-Z a-z 0-9 _ . -", d.asset));
            }
            let spec = check_detector(d, &mut report);
            if let Some(spec) = spec {
                // A detector's alerts share the rules' name space: one name, one kind of alert.
                for out in super::detect::output_names(&spec) {
                    if !names.insert(out.clone()) {
                        report("name", format!("its alert {out:?} has the name of a rule or detector above"));
                    }
                }
                if errors.len() == before {
                    detectors.push(spec);
                }
            }
        }

        let mut webhooks = Vec::new();
        let mut hook_names = HashSet::new();
        for spanned in raw.webhook {
            let Some((w, line, item)) = raw_table::<RawWebhook>(file, text, spanned, "webhook", &mut errors) else {
                continue;
            };
            let before = errors.len();
            let mut report = |field: &str, message: String| {
                errors.push(err(Some(line), item.clone(), Some(field), message));
            };
            if !model::id::is_safe_name(&w.name) {
                report("name", format!("{:?}: use 1-64 characters from A-Z a-z 0-9 _ . -", w.name));
            } else if !hook_names.insert(w.name.clone()) {
                report("name", "a webhook of this name is configured above".to_owned());
            }
            // The URL is not echoed: it may carry a token in its query.
            let scheme = match reqwest::Url::parse(&w.url) {
                Ok(u) if !u.has_host() => {
                    report("url", "the URL names no host".to_owned());
                    None
                }
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.scheme().to_owned()),
                Ok(_) => {
                    report("url", "use an http:// or https:// URL".to_owned());
                    None
                }
                Err(e) => {
                    report("url", format!("not a URL: {e}"));
                    None
                }
            };
            let roots = match (&w.ca_file, scheme.as_deref()) {
                (Some(_), Some("http")) => {
                    report("ca_file", "a ca_file is for an https:// URL".to_owned());
                    ExtraRoots::none()
                }
                (path, _) => ExtraRoots::from_optional_file(path.as_deref()).unwrap_or_else(|e| {
                    report("ca_file", e.to_string());
                    ExtraRoots::none()
                }),
            };
            if w.initial_backoff_ms == 0 || w.max_backoff_ms < w.initial_backoff_ms {
                report("max_backoff_ms", "backoffs must satisfy 0 < initial_backoff_ms <= max_backoff_ms".to_owned());
            }
            if w.timeout_ms == 0 {
                report("timeout_ms", "must be at least 1".to_owned());
            }
            let token = match &w.token_env {
                Some(var) => match env(var) {
                    Some(t) => Some(Secret::new(t)),
                    None => {
                        report("token_env", format!("the environment variable {var} is not set"));
                        None
                    }
                },
                None => None,
            };
            if errors.len() == before {
                webhooks.push(Webhook {
                    name: w.name,
                    url: w.url,
                    min_severity: w.min_severity,
                    token,
                    roots,
                    initial_backoff: Duration::from_millis(w.initial_backoff_ms),
                    max_backoff: Duration::from_millis(w.max_backoff_ms),
                    timeout: Duration::from_millis(w.timeout_ms),
                });
            }
        }
        let mut emails = Vec::new();
        for spanned in raw.email {
            let Some((m, line, item)) = raw_table::<RawEmail>(file, text, spanned, "email", &mut errors) else {
                continue;
            };
            let before = errors.len();
            let mut report = |field: &str, message: String| {
                errors.push(err(Some(line), item.clone(), Some(field), message));
            };
            if !model::id::is_safe_name(&m.name) {
                report("name", format!("{:?}: use 1-64 characters from A-Z a-z 0-9 _ . -", m.name));
            } else if !hook_names.insert(format!("email:{}", m.name)) {
                report("name", "an e-mail target of this name is configured above".to_owned());
            }
            if m.smtp_host.is_empty() {
                report("smtp_host", "give the SMTP server's host name or address".to_owned());
            }
            let from = m
                .from
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| report("from", format!("{:?}: {e}", m.from)))
                .ok();
            let mut to = Vec::new();
            if m.to.is_empty() {
                report("to", "give at least one address".to_owned());
            }
            for (i, a) in m.to.iter().enumerate() {
                match a.parse::<lettre::message::Mailbox>() {
                    Ok(mb) => to.push(mb),
                    Err(e) => report(&format!("to[{i}]"), format!("{a:?}: {e}")),
                }
            }
            if m.initial_backoff_ms == 0 || m.max_backoff_ms < m.initial_backoff_ms {
                report("max_backoff_ms", "backoffs must satisfy 0 < initial_backoff_ms <= max_backoff_ms".to_owned());
            }
            if m.timeout_ms == 0 {
                report("timeout_ms", "must be at least 1".to_owned());
            }
            let password = match (&m.password_env, &m.password_file) {
                (Some(_), Some(_)) => {
                    report("password_file", "give password_env or password_file, not both".to_owned());
                    None
                }
                (Some(var), None) => match env(var) {
                    Some(p) => Some(Secret::new(p)),
                    None => {
                        report("password_env", format!("the environment variable {var} is not set"));
                        None
                    }
                },
                // The file's contents are never echoed, only that it could not be read.
                (None, Some(path)) => match std::fs::read_to_string(path) {
                    Ok(t) => Some(Secret::new(t.lines().next().unwrap_or_default().to_owned())),
                    Err(e) => {
                        report("password_file", format!("cannot read {}: {}", path.display(), e.kind()));
                        None
                    }
                },
                (None, None) => None,
            };
            if password.is_some() != m.username.is_some() {
                report("username", "username and a password (password_env or password_file) go together".to_owned());
            }
            let tls = check_email_tls(&m, &mut report);
            let roots = match (&m.ca_file, tls) {
                (Some(_), SmtpTls::None) => {
                    report("ca_file", "a ca_file is for tls = \"starttls\" or \"tls\"".to_owned());
                    ExtraRoots::none()
                }
                (path, _) => ExtraRoots::from_optional_file(path.as_deref()).unwrap_or_else(|e| {
                    report("ca_file", e.to_string());
                    ExtraRoots::none()
                }),
            };
            if let (Some(from), true) = (from, errors.len() == before) {
                emails.push(super::email::Email {
                    name: m.name,
                    smtp_host: m.smtp_host,
                    smtp_port: m.smtp_port.unwrap_or(tls.default_port()),
                    tls,
                    roots,
                    from,
                    to,
                    min_severity: m.min_severity,
                    username: m.username,
                    password,
                    initial_backoff: Duration::from_millis(m.initial_backoff_ms),
                    max_backoff: Duration::from_millis(m.max_backoff_ms),
                    timeout: Duration::from_millis(m.timeout_ms),
                });
            }
        }
        if errors.is_empty() {
            Ok(RuleSet { rules, webhooks, detectors, emails, tick: Duration::from_millis(raw.engine.tick_ms) })
        } else {
            Err(RulesErrors(errors))
        }
    }
}

/// The TLS mode of an `[[email]]` table, and whether its password may be sent that way.
///
/// The default is STARTTLS, what a city's submission server on 587 expects. Before TLS
/// existed here the documented form was `smtp_port = 25` to a plain local relay; such a table
/// must now say `tls = "none"` (or `"starttls"`) rather than silently start asking for
/// STARTTLS, which a plain relay would refuse on every message. (A table that left the port
/// out now goes to 587 with STARTTLS; if nothing listens there, the log says which address
/// and mode failed.)
fn check_email_tls(m: &RawEmail, report: &mut dyn FnMut(&str, String)) -> SmtpTls {
    let tls = match (m.tls, m.smtp_port) {
        (Some(tls), _) => tls,
        (None, Some(25)) => {
            report(
                "tls",
                "port 25 without `tls`: say tls = \"none\" for a plain relay (as before TLS support) or \
                 tls = \"starttls\""
                    .to_owned(),
            );
            SmtpTls::None
        }
        (None, _) => SmtpTls::StartTls,
    };
    match (tls, m.allow_plaintext_auth) {
        (SmtpTls::None, false) if m.username.is_some() => report(
            "username",
            "with tls = \"none\" the password would cross the network in plain text: use tls = \"starttls\" or \
             \"tls\", or set allow_plaintext_auth = true for a relay on this machine"
                .to_owned(),
        ),
        (SmtpTls::StartTls | SmtpTls::Tls, true) => {
            report("allow_plaintext_auth", format!("only means something with tls = \"none\", not {:?}", tls.as_str()))
        }
        _ => {}
    }
    tls
}

fn seconds(field: &str, v: f64, report: &mut dyn FnMut(&str, String)) -> Duration {
    if v.is_finite() && (0.0..=31_536_000.0).contains(&v) {
        Duration::from_secs_f64(v)
    } else {
        report(field, format!("{v} is not a number of seconds between 0 and one year"));
        Duration::ZERO
    }
}

/// Reads `device/point`.
fn input(field: &str, v: &str, report: &mut dyn FnMut(&str, String)) -> Option<Input> {
    let Some((device, point)) = v.split_once('/') else {
        report(field, format!("{v:?}: write device/point, e.g. \"fm01/flow\""));
        return None;
    };
    match (model::DeviceId::new(device), model::PointName::new(point)) {
        (Ok(device), Ok(point)) => Some(Input { device, point }),
        (Err(e), _) | (_, Err(e)) => {
            report(field, format!("{v:?}: {e}"));
            None
        }
    }
}

/// Checks a detector's fields against its kind.
fn check_detector(d: RawDetector, report: &mut dyn FnMut(&str, String)) -> Option<DetectorSpec> {
    // Fields a leak detector shares with a burst detector (both watch a district's inflow).
    let inflow_fields = [
        ("flow", d.flow.is_some()),
        ("min_rise_m3_per_h", d.min_rise_m3_per_h.is_some()),
        ("k_sigma", d.k_sigma.is_some()),
        ("utc_offset_h", d.utc_offset_h.is_some()),
    ];
    let burst_fields = [
        ("pressure", d.pressure.is_some()),
        ("min_pressure_drop_bar", d.min_pressure_drop_bar.is_some()),
        ("flushing_max_min", d.flushing_max_min.is_some()),
        ("burst_confirm_min", d.burst_confirm_min.is_some()),
        ("flushing_hours", d.flushing_hours.is_some()),
        ("planned_works", d.planned_works.is_some()),
        ("planned_margin_min", d.planned_margin_min.is_some()),
    ];
    let leak_fields = [
        ("night_hours", d.night_hours.is_some()),
        ("baseline_nights", d.baseline_nights.is_some()),
        ("confirm_nights", d.confirm_nights.is_some()),
    ];
    let sewer_fields = [
        ("level", d.level.is_some()),
        ("running", d.running.is_some()),
        ("min_rise_m_per_h", d.min_rise_m_per_h.is_some()),
        ("rise_for_s", d.rise_for_s.is_some()),
        ("overflow_level_m", d.overflow_level_m.is_some()),
        ("overflow_within_min", d.overflow_within_min.is_some()),
        ("capacity_drop", d.capacity_drop.is_some()),
    ];
    let pump_fields = [
        ("vibration", d.vibration.is_some()),
        ("frequency", d.frequency.is_some()),
        ("zone_c_mm_s", d.zone_c_mm_s.is_some()),
        ("zone_d_mm_s", d.zone_d_mm_s.is_some()),
        ("cavitation_ratio", d.cavitation_ratio.is_some()),
        ("bearing_temperature", d.bearing_temperature.is_some()),
        ("bearing_excess_k", d.bearing_excess_k.is_some()),
        ("thermal_lag_min", d.thermal_lag_min.is_some()),
        ("pump_flow", d.pump_flow.is_some()),
        ("suction_pressure", d.suction_pressure.is_some()),
        ("discharge_pressure", d.discharge_pressure.is_some()),
        ("power", d.power.is_some()),
        ("head_loss_frac", d.head_loss_frac.is_some()),
        ("energy_rise_frac", d.energy_rise_frac.is_some()),
    ];
    let (kind_name, foreign): (&str, Vec<&[(&str, bool)]>) = match d.kind {
        RawDetectorKind::Burst => ("burst", vec![&sewer_fields, &pump_fields, &leak_fields]),
        RawDetectorKind::Sewer => ("sewer", vec![&inflow_fields, &burst_fields, &pump_fields, &leak_fields]),
        RawDetectorKind::Pump => ("pump", vec![&inflow_fields, &burst_fields, &sewer_fields, &leak_fields]),
        RawDetectorKind::Leak => ("leak", vec![&burst_fields, &sewer_fields, &pump_fields]),
    };
    for (field, given) in foreign.into_iter().flatten() {
        if *given {
            report(field, format!("a {kind_name} detector does not use this field"));
        }
    }
    let kind = match d.kind {
        RawDetectorKind::Leak => {
            let flow = match &d.flow {
                Some(v) => input("flow", v, report),
                None => {
                    report("flow", "a leak detector needs this field (device/point)".to_owned());
                    None
                }
            }?;
            let mut p = LeakParams::new(flow);
            for (field, v, slot) in [
                ("min_rise_m3_per_h", d.min_rise_m3_per_h, &mut p.min_rise_m3_per_h),
                ("k_sigma", d.k_sigma, &mut p.k_sigma),
            ] {
                if let Some(v) = v {
                    if v.is_finite() && v > 0.0 {
                        *slot = v;
                    } else {
                        report(field, format!("{v} must be a positive number"));
                    }
                }
            }
            if let Some(n) = d.baseline_nights {
                // Fewer than two nights of a kind gives no median to compare with.
                if (2..=60).contains(&n) {
                    p.baseline_nights = n as usize;
                } else {
                    report("baseline_nights", format!("{n}: give 2 to 60 nights"));
                }
            }
            if let Some(n) = d.confirm_nights {
                if (1..=14).contains(&n) {
                    p.confirm_nights = n as usize;
                } else {
                    report("confirm_nights", format!("{n}: give 1 to 14 nights"));
                }
            }
            if let Some([from, to]) = d.night_hours {
                // The window must not cross midnight: one night is one local day's window.
                if (0.0..24.0).contains(&from) && to <= 24.0 && to - from >= 0.5 {
                    p.night_hours = (from, to);
                } else {
                    report(
                        "night_hours",
                        format!("[{from}, {to}]: give [from, to] local hours, 0 <= from, from + 0.5 <= to <= 24"),
                    );
                }
            }
            if let Some(h) = d.utc_offset_h {
                if (-12.0..=14.0).contains(&h) {
                    p.utc_offset_h = h;
                } else {
                    report("utc_offset_h", format!("{h} is not a time zone offset (-12 to 14 hours)"));
                }
            }
            DetectorKind::Leak(p)
        }
        RawDetectorKind::Pump => {
            let mut need = |field: &str, v: &Option<String>| match v {
                Some(v) => input(field, v, report),
                None => {
                    report(field, "a pump detector needs this field (device/point)".to_owned());
                    None
                }
            };
            let vibration = need("vibration", &d.vibration);
            let frequency = need("frequency", &d.frequency);
            let (Some(vibration), Some(frequency)) = (vibration, frequency) else { return None };
            let mut p = PumpParams::new(vibration, frequency);
            if let Some(t) = &d.bearing_temperature {
                p.bearing_temperature = Some(input("bearing_temperature", t, report)?);
            }
            for (field, v, slot) in [
                ("zone_c_mm_s", d.zone_c_mm_s, &mut p.zone_c_mm_s),
                ("zone_d_mm_s", d.zone_d_mm_s, &mut p.zone_d_mm_s),
                ("cavitation_ratio", d.cavitation_ratio, &mut p.cavitation_ratio),
                ("bearing_excess_k", d.bearing_excess_k, &mut p.bearing_excess_k),
                ("thermal_lag_min", d.thermal_lag_min, &mut p.thermal_lag_min),
            ] {
                if let Some(v) = v {
                    if v.is_finite() && v > 0.0 {
                        *slot = v;
                    } else {
                        report(field, format!("{v} must be a positive number"));
                    }
                }
            }
            let duty = [
                ("pump_flow", &d.pump_flow),
                ("suction_pressure", &d.suction_pressure),
                ("discharge_pressure", &d.discharge_pressure),
                ("power", &d.power),
            ];
            if duty.iter().any(|(_, v)| v.is_some()) {
                // The impeller check needs the whole duty point: flow, head (both pressures)
                // and power.
                let got: Vec<Option<Input>> = duty
                    .iter()
                    .map(|(field, v)| match v {
                        Some(v) => input(field, v, report),
                        None => {
                            report(field, "the impeller check needs pump_flow, suction_pressure, discharge_pressure and power together".to_owned());
                            None
                        }
                    })
                    .collect();
                if let [Some(flow), Some(suction), Some(discharge), Some(power)] = &got[..] {
                    p.duty = Some(DutyInputs {
                        flow: flow.clone(),
                        suction: suction.clone(),
                        discharge: discharge.clone(),
                        power: power.clone(),
                    });
                }
            }
            for (field, v, slot) in [
                ("head_loss_frac", d.head_loss_frac, &mut p.head_loss_frac),
                ("energy_rise_frac", d.energy_rise_frac, &mut p.energy_rise_frac),
            ] {
                if let Some(v) = v {
                    if v.is_finite() && v > 0.0 && v < 1.0 {
                        *slot = v;
                    } else {
                        report(field, format!("{v} must be a fraction between 0 and 1"));
                    }
                }
            }
            if p.zone_d_mm_s <= p.zone_c_mm_s {
                report("zone_d_mm_s", format!("{} must be above zone_c_mm_s {}", p.zone_d_mm_s, p.zone_c_mm_s));
            }
            DetectorKind::Pump(p)
        }
        RawDetectorKind::Sewer => {
            let level = match &d.level {
                Some(v) => input("level", v, report),
                None => {
                    report("level", "a sewer detector needs this field (device/point)".to_owned());
                    None
                }
            };
            let mut running = Vec::new();
            match &d.running {
                Some(list) if !list.is_empty() => {
                    for v in list {
                        running.extend(input("running", v, report));
                    }
                }
                _ => report(
                    "running",
                    "a sewer detector needs the pumps' running points, e.g. [\"mp01/p1_running\"]".to_owned(),
                ),
            }
            let level = level?;
            let mut p = SewerParams::new(level, running);
            let mut positive = |field: &str, v: Option<f64>, slot: &mut f64| {
                if let Some(v) = v {
                    if v.is_finite() && v > 0.0 {
                        *slot = v;
                    } else {
                        report(field, format!("{v} must be a positive number"));
                    }
                }
            };
            positive("min_rise_m_per_h", d.min_rise_m_per_h, &mut p.min_rise_m_per_h);
            positive("overflow_level_m", d.overflow_level_m, &mut p.overflow_level_m);
            let mut rise_s = p.rise_for.as_secs_f64();
            positive("rise_for_s", d.rise_for_s, &mut rise_s);
            let mut within_min = p.overflow_within.as_secs_f64() / 60.0;
            positive("overflow_within_min", d.overflow_within_min, &mut within_min);
            p.rise_for = seconds("rise_for_s", rise_s, report);
            p.overflow_within = seconds("overflow_within_min", within_min * 60.0, report);
            if let Some(v) = d.capacity_drop {
                if v.is_finite() && v > 0.0 && v < 1.0 {
                    p.capacity_drop = v;
                } else {
                    report("capacity_drop", format!("{v} must be a fraction between 0 and 1"));
                }
            }
            DetectorKind::Sewer(p)
        }
        RawDetectorKind::Burst => {
            let need = |field: &str, v: &Option<String>, report: &mut dyn FnMut(&str, String)| match v {
                Some(v) => input(field, v, report),
                None => {
                    report(field, "a burst detector needs this field (device/point)".to_owned());
                    None
                }
            };
            let flow = need("flow", &d.flow, report);
            let pressure = need("pressure", &d.pressure, report);
            let (Some(flow), Some(pressure)) = (flow, pressure) else { return None };
            let mut p = BurstParams::new(flow, pressure);
            let mut positive = |field: &str, v: Option<f64>, slot: &mut f64| {
                if let Some(v) = v {
                    if v.is_finite() && v > 0.0 {
                        *slot = v;
                    } else {
                        report(field, format!("{v} must be a positive number"));
                    }
                }
            };
            positive("min_rise_m3_per_h", d.min_rise_m3_per_h, &mut p.min_rise_m3_per_h);
            positive("k_sigma", d.k_sigma, &mut p.k_sigma);
            positive("min_pressure_drop_bar", d.min_pressure_drop_bar, &mut p.min_pressure_drop_bar);
            let mut flushing_min = p.flushing_max.as_secs_f64() / 60.0;
            positive("flushing_max_min", d.flushing_max_min, &mut flushing_min);
            let mut confirm_min = p.burst_confirm.as_secs_f64() / 60.0;
            positive("burst_confirm_min", d.burst_confirm_min, &mut confirm_min);
            let mut margin_min = p.planned_margin.as_secs_f64() / 60.0;
            positive("planned_margin_min", d.planned_margin_min, &mut margin_min);
            p.flushing_max = seconds("flushing_max_min", flushing_min * 60.0, report);
            p.burst_confirm = seconds("burst_confirm_min", confirm_min * 60.0, report);
            p.planned_margin = seconds("planned_margin_min", margin_min * 60.0, report);
            p.planned_works = d.planned_works.unwrap_or(p.planned_works);
            if let Some([from, to]) = d.flushing_hours {
                if (0.0..=24.0).contains(&from) && (0.0..=24.0).contains(&to) && from <= to {
                    p.flushing_hours = (from, to);
                } else {
                    report(
                        "flushing_hours",
                        format!("[{from}, {to}]: give [from, to] local hours, 0 <= from <= to <= 24"),
                    );
                }
            }
            if let Some(h) = d.utc_offset_h {
                if (-12.0..=14.0).contains(&h) {
                    p.utc_offset_h = h;
                } else {
                    report("utc_offset_h", format!("{h} is not a time zone offset (-12 to 14 hours)"));
                }
            }
            DetectorKind::Burst(p)
        }
    };
    Some(DetectorSpec { name: d.name, asset: d.asset, kind })
}

/// Checks the fields a kind needs and refuses the ones it does not use.
fn check_rule(r: RawRule, report: &mut dyn FnMut(&str, String)) -> Option<Rule> {
    let given: [(&str, bool); 9] = [
        ("threshold", r.threshold.is_some()),
        ("hysteresis", r.hysteresis.is_some()),
        ("max_rate_per_min", r.max_rate_per_min.is_some()),
        ("stuck_for_s", r.stuck_for_s.is_some()),
        ("tolerance", r.tolerance.is_some()),
        ("min", r.min.is_some()),
        ("max", r.max.is_some()),
        ("silent_for_s", r.silent_for_s.is_some()),
        ("mask", r.mask.is_some()),
    ];
    let (uses, needs): (&[&str], &[&str]) = match r.kind {
        RawKind::Above | RawKind::Below => (&["threshold", "hysteresis"], &["threshold"]),
        RawKind::RateOfChange => (&["max_rate_per_min"], &["max_rate_per_min"]),
        RawKind::FlatLine => (&["stuck_for_s", "tolerance"], &["stuck_for_s"]),
        RawKind::OutOfRange => (&["min", "max"], &[]),
        RawKind::CommLoss => (&["silent_for_s"], &["silent_for_s"]),
        RawKind::Bits => (&["mask"], &["mask"]),
        RawKind::Nonzero => (&[], &[]),
    };
    let kind_name = format!("{:?}", r.kind).to_lowercase();
    for (field, is_given) in given {
        if is_given && !uses.contains(&field) {
            report(field, format!("a {kind_name} rule does not use this field"));
        }
        if !is_given && needs.contains(&field) {
            report(field, format!("a {kind_name} rule needs this field"));
        }
    }
    let finite = |field: &str, v: Option<f64>, report: &mut dyn FnMut(&str, String)| match v {
        Some(x) if !x.is_finite() => {
            report(field, "must be a finite number".to_owned());
            0.0
        }
        Some(x) => x,
        None => 0.0,
    };
    let positive = |field: &str, v: Option<f64>, report: &mut dyn FnMut(&str, String)| match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            report(field, format!("{x} must be a positive number"));
            0.0
        }
        Some(x) => x,
        None => 0.0,
    };
    let hysteresis = finite("hysteresis", r.hysteresis, report);
    if hysteresis < 0.0 {
        report("hysteresis", "must be zero or positive".to_owned());
    }
    let kind = match r.kind {
        RawKind::Above => Kind::Above { threshold: finite("threshold", r.threshold, report), hysteresis },
        RawKind::Below => Kind::Below { threshold: finite("threshold", r.threshold, report), hysteresis },
        RawKind::RateOfChange => {
            Kind::RateOfChange { max_per_min: positive("max_rate_per_min", r.max_rate_per_min, report) }
        }
        RawKind::FlatLine => Kind::FlatLine {
            stuck_for: seconds("stuck_for_s", r.stuck_for_s.unwrap_or(0.0), report),
            tolerance: finite("tolerance", r.tolerance, report).abs(),
        },
        RawKind::OutOfRange => {
            let (min, max) = (r.min.unwrap_or(f64::NEG_INFINITY), r.max.unwrap_or(f64::INFINITY));
            if min.is_nan() || max.is_nan() || min > max {
                report("min", format!("min {min} must be a number not above max {max}"));
            }
            Kind::OutOfRange { min, max }
        }
        RawKind::CommLoss => {
            Kind::CommLoss { silent_for: seconds("silent_for_s", r.silent_for_s.unwrap_or(0.0), report) }
        }
        RawKind::Bits => {
            let mask = r.mask.unwrap_or(0);
            if mask == 0 {
                report("mask", "0 selects no bit".to_owned());
            }
            Kind::Bits { mask }
        }
        RawKind::Nonzero => Kind::Nonzero,
    };
    if r.point.is_none() && r.kind != RawKind::CommLoss {
        report("point", format!("a {kind_name} rule needs the point it watches"));
    }
    let on_delay = seconds("on_delay_s", r.on_delay_s, report);
    let off_delay = seconds("off_delay_s", r.off_delay_s, report);
    let (default_en, default_ja) = kind.default_messages();
    let quiet_during = match r.quiet_during.as_deref().map(str::parse::<store::WorkKind>) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            report("quiet_during", e);
            None
        }
    };
    Some(Rule {
        name: r.name,
        device: r.device,
        point: r.point,
        asset: r.asset,
        severity: r.severity,
        kind,
        on_delay,
        off_delay,
        message_en: r.message_en.unwrap_or(default_en),
        message_ja: r.message_ja.unwrap_or(default_ja),
        quiet_during,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const GOOD: &str = r#"
[[webhook]]
name = "crew"
url = "http://127.0.0.1:9000/hook"
min_severity = "major"
token_env = "CREW_TOKEN"

[[rule]]
name = "ps02_p1_trip"
kind = "nonzero"
device = "ps02"
point = "p1_fault_code"
asset = "ps02"
severity = "critical"

[[rule]]
name = "pl01_low"
kind = "below"
device = "pl01"
point = "pressure"
asset = "dma01"
severity = "major"
threshold = 1.5
hysteresis = 0.1
on_delay_s = 60
"#;

    #[track_caller]
    fn check_err(text: &str, expected: &[&str]) {
        let env = |k: &str| match k {
            "CREW_TOKEN" => Some("s3cret".to_owned()),
            "SMTP_PASSWORD" => Some("pa55word".to_owned()),
            _ => None,
        };
        let errs = RuleSet::parse(Path::new("rules.toml"), text, &env).unwrap_err();
        let shown = errs.0.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown.len(), expected.len(), "{errs}");
        for (s, e) in shown.iter().zip(expected) {
            assert!(s.starts_with(e), "{s}\ndoes not begin with\n{e}");
        }
    }

    #[test]
    fn a_good_file_parses_with_defaults_and_a_secret_token() {
        let env = |k: &str| (k == "CREW_TOKEN").then(|| "s3cret".to_owned());
        let set = RuleSet::parse(Path::new("rules.toml"), GOOD, &env).unwrap();
        assert_eq!(set.rules.len(), 2);
        assert_eq!(set.rules[0].off_delay, Duration::from_secs(60));
        assert_eq!(set.rules[1].kind, Kind::Below { threshold: 1.5, hysteresis: 0.1 });
        assert_eq!(set.rules[1].on_delay, Duration::from_secs(60));
        assert_eq!(set.webhooks[0].min_severity, Severity::Major);
        let shown = format!("{:?}", set.webhooks[0]);
        assert!(!shown.contains("s3cret") && !shown.contains("9000"), "{shown}");
    }

    #[test]
    fn errors_name_file_line_rule_and_field() {
        check_err(
            &GOOD.replace("threshold = 1.5", "treshold = 1.5"),
            &[r#"rules.toml:16: rule "pl01_low", field `treshold`: unknown field `treshold`, expected one of"#],
        );
        check_err(
            &GOOD.replace("severity = \"major\"\nthreshold", "severity = \"urgent\"\nthreshold"),
            &[r#"rules.toml:16: rule "pl01_low", field `severity`: unknown variant `urgent`"#],
        );
        check_err(
            &GOOD.replace("kind = \"nonzero\"", "kind = \"nonzero\"\nmask = 2").replace("threshold = 1.5\n", ""),
            &[
                r#"rules.toml:8: rule "ps02_p1_trip", field `mask`: a nonzero rule does not use this field"#,
                r#"rules.toml:17: rule "pl01_low", field `threshold`: a below rule needs this field"#,
            ],
        );
        check_err(
            &GOOD
                .replace("name = \"pl01_low\"", "name = \"ps02_p1_trip\"")
                .replace("on_delay_s = 60", "on_delay_s = -1"),
            &[
                r#"rules.toml:16: rule "ps02_p1_trip", field `name`: a rule of this name is configured above"#,
                r#"rules.toml:16: rule "ps02_p1_trip", field `on_delay_s`: -1 is not a number of seconds"#,
            ],
        );
        let errs = RuleSet::parse(Path::new("rules.toml"), GOOD, &no_env).unwrap_err();
        assert_eq!(
            errs.0[0].to_string(),
            r#"rules.toml:2: webhook "crew", field `token_env`: the environment variable CREW_TOKEN is not set"#
        );
        check_err("[[rule]\n", &["rules.toml:1:"]);
        let detector = "\n[[detector]]\nname = \"dma01_burst\"\nkind = \"burst\"\nasset = \"dma01\"\nflow = \"fm01/flow\"\npressure = \"pl01/pressure\"\n";
        let env = |k: &str| (k == "CREW_TOKEN").then(|| "s3cret".to_owned());
        let set = RuleSet::parse(Path::new("rules.toml"), &format!("{GOOD}{detector}"), &env).unwrap();
        assert_eq!(set.detectors.len(), 1);
        check_err(
            &format!("{GOOD}{}", detector.replace("fm01/flow", "fm01").replace("asset", "level = \"x/y\"\nasset")),
            &[
                r#"rules.toml:27: detector "dma01_burst", field `level`: a burst detector does not use this field"#,
                r#"rules.toml:27: detector "dma01_burst", field `flow`: "fm01": write device/point"#,
            ],
        );
        check_err(
            &format!("{GOOD}{}", detector.replace("dma01_burst", "pl01_low")),
            &[r#"rules.toml:27: detector "pl01_low", field `name`: its alert "pl01_low" has the name of a rule"#],
        );
    }

    #[test]
    fn planned_works_settings_parse_and_name_bad_values() {
        let env = |k: &str| (k == "CREW_TOKEN").then(|| "s3cret".to_owned());
        let quiet = GOOD.replace("asset = \"ps02\"", "asset = \"ps02\"\nquiet_during = \"pump_maintenance\"");
        let set = RuleSet::parse(Path::new("rules.toml"), &quiet, &env).unwrap();
        assert_eq!(set.rules[0].quiet_during, Some(store::WorkKind::PumpMaintenance));
        assert_eq!(set.rules[1].quiet_during, None);
        check_err(
            &quiet.replace("\"pump_maintenance\"", "\"maintenance\""),
            &[r#"rules.toml:8: rule "ps02_p1_trip", field `quiet_during`: unknown kind of work "maintenance""#],
        );
        let burst = "\n[[detector]]\nname = \"dma01_burst\"\nkind = \"burst\"\nasset = \"dma01\"\nflow = \"fm01/flow\"\npressure = \"pl01/pressure\"\n";
        let set = RuleSet::parse(Path::new("rules.toml"), &format!("{GOOD}{burst}"), &env).unwrap();
        let DetectorKind::Burst(p) = &set.detectors[0].kind else { panic!("{:?}", set.detectors[0]) };
        assert_eq!((p.planned_works, p.planned_margin), (true, Duration::from_secs(900)), "the defaults");
        let off = format!("{GOOD}{burst}planned_works = false\nplanned_margin_min = 30\n");
        let set = RuleSet::parse(Path::new("rules.toml"), &off, &env).unwrap();
        let DetectorKind::Burst(p) = &set.detectors[0].kind else { panic!("{:?}", set.detectors[0]) };
        assert_eq!((p.planned_works, p.planned_margin), (false, Duration::from_secs(1800)));
        check_err(
            &format!("{GOOD}{burst}planned_margin_min = -5\n"),
            &[r#"rules.toml:27: detector "dma01_burst", field `planned_margin_min`: -5 must be a positive number"#],
        );
    }

    #[test]
    fn leak_detectors_parse_and_name_bad_fields() {
        let env = |k: &str| (k == "CREW_TOKEN").then(|| "s3cret".to_owned());
        let leak = "\n[[detector]]\nname = \"dma01\"\nkind = \"leak\"\nasset = \"dma01\"\nflow = \"fm01/flow\"\nnight_hours = [1.5, 4]\nk_sigma = 5\n";
        let set = RuleSet::parse(Path::new("rules.toml"), &format!("{GOOD}{leak}"), &env).unwrap();
        let DetectorKind::Leak(p) = &set.detectors[0].kind else { panic!("{:?}", set.detectors[0]) };
        assert_eq!((p.night_hours, p.k_sigma, p.confirm_nights), ((1.5, 4.0), 5.0, 2));
        check_err(
            &format!(
                "{GOOD}{}",
                leak.replace("[1.5, 4]", "[23, 2]")
                    .replace("asset", "pressure = \"pl01/pressure\"\nconfirm_nights = 0\nasset")
            ),
            &[
                r#"rules.toml:27: detector "dma01", field `pressure`: a leak detector does not use this field"#,
                r#"rules.toml:27: detector "dma01", field `confirm_nights`: 0: give 1 to 14 nights"#,
                r#"rules.toml:27: detector "dma01", field `night_hours`: [23, 2]: give [from, to] local hours"#,
            ],
        );
        check_err(
            &format!("{GOOD}{}", leak.replace("flow = \"fm01/flow\"\n", "")),
            &[r#"rules.toml:27: detector "dma01", field `flow`: a leak detector needs this field"#],
        );
    }

    #[test]
    fn pump_impeller_inputs_parse_together_and_name_what_is_missing() {
        let env = |k: &str| (k == "CREW_TOKEN").then(|| "s3cret".to_owned());
        let pump = "\n[[detector]]\nname = \"ps01_p1_health\"\nkind = \"pump\"\nasset = \"ps01\"\nvibration = \"ps01/p1_vibration\"\nfrequency = \"ps01/p1_frequency\"\npump_flow = \"ps01/outflow\"\nsuction_pressure = \"ps01/suction_pressure\"\ndischarge_pressure = \"ps01/discharge_pressure\"\npower = \"ps01/p1_power\"\n";
        let set =
            RuleSet::parse(Path::new("rules.toml"), &format!("{GOOD}{pump}head_loss_frac = 0.08\n"), &env).unwrap();
        let DetectorKind::Pump(p) = &set.detectors[0].kind else { panic!("{:?}", set.detectors[0]) };
        let duty = p.duty.as_ref().expect("the duty inputs");
        assert_eq!((duty.power.point.as_str(), p.head_loss_frac, p.energy_rise_frac), ("p1_power", 0.08, 0.10));
        check_err(
            &format!("{GOOD}{}energy_rise_frac = 1.5\n", pump.replace("power = \"ps01/p1_power\"\n", "")),
            &[
                r#"rules.toml:27: detector "ps01_p1_health", field `power`: the impeller check needs pump_flow, suction_pressure, discharge_pressure and power together"#,
                r#"rules.toml:27: detector "ps01_p1_health", field `energy_rise_frac`: 1.5 must be a fraction between 0 and 1"#,
            ],
        );
    }

    #[test]
    fn email_targets_parse_with_a_secret_password_and_name_their_errors() {
        let mail = r#"
[[email]]
name = "crew"
smtp_host = "127.0.0.1"
smtp_port = 2525
from = "Mizumori <alerts@city.example.jp>"
to = ["crew@city.example.jp"]
min_severity = "critical"
username = "mizumori"
password_env = "SMTP_PASSWORD"
"#;
        let env = |k: &str| match k {
            "CREW_TOKEN" => Some("s3cret".to_owned()),
            "SMTP_PASSWORD" => Some("pa55word".to_owned()),
            _ => None,
        };
        let set = RuleSet::parse(Path::new("rules.toml"), &format!("{GOOD}{mail}"), &env).unwrap();
        assert_eq!(set.emails.len(), 1);
        assert_eq!((set.emails[0].smtp_port, set.emails[0].min_severity), (2525, Severity::Critical));
        assert!(!format!("{:?}", set.emails[0]).contains("pa55word"));
        let bad =
            mail.replace("crew@city.example.jp", "not an address").replace("password_env = \"SMTP_PASSWORD\"\n", "");
        let errs = RuleSet::parse(Path::new("rules.toml"), &format!("{GOOD}{bad}"), &env).unwrap_err();
        let shown: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with(r#"rules.toml:27: email "crew", field `to[0]`: "not an address""#), "{shown:?}");
        assert!(
            shown[1].starts_with(r#"rules.toml:27: email "crew", field `username`: username and a password"#),
            "{shown:?}"
        );
    }

    /// A CA certificate in PEM, written to `dir/ca.pem`.
    fn ca_file(dir: &Path) -> PathBuf {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.city.example".into()]).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).unwrap();
        path
    }

    #[test]
    fn https_webhooks_take_a_ca_file_and_bad_ones_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca_file(dir.path());
        let env = |k: &str| (k == "CREW_TOKEN").then(|| "s3cret".to_owned());
        let https = GOOD.replace(
            "url = \"http://127.0.0.1:9000/hook\"",
            &format!("url = \"https://hooks.city.example/alerts\"\nca_file = {:?}", ca.display().to_string()),
        );
        let set = RuleSet::parse(Path::new("rules.toml"), &https, &env).unwrap();
        assert_eq!(set.webhooks[0].roots.certs().len(), 1);
        assert_eq!(set.webhooks[0].roots.file(), Some(ca.as_path()));
        let plain = RuleSet::parse(Path::new("rules.toml"), GOOD, &env).unwrap();
        assert_eq!(plain.webhooks[0].roots, ExtraRoots::none());

        let missing = dir.path().join("missing.pem");
        check_err(
            &https.replace(&ca.display().to_string(), &missing.display().to_string()),
            &[&format!(
                r#"rules.toml:2: webhook "crew", field `ca_file`: {}: cannot read: entity not found"#,
                missing.display()
            )],
        );
        std::fs::write(dir.path().join("key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap();
        check_err(
            &https.replace("ca.pem", "key.pem"),
            &[&format!(
                r#"rules.toml:2: webhook "crew", field `ca_file`: {}: no -----BEGIN CERTIFICATE----- block"#,
                dir.path().join("key.pem").display()
            )],
        );
        check_err(
            &https.replace("https://", "http://"),
            &[r#"rules.toml:2: webhook "crew", field `ca_file`: a ca_file is for an https:// URL"#],
        );
        for (url, message) in [
            ("ftp://hooks.city.example/a", "use an http:// or https:// URL"),
            ("hooks.city.example/alerts", "not a URL: relative URL without a base"),
            ("https://", "not a URL: empty host"),
        ] {
            let text = GOOD.replace("http://127.0.0.1:9000/hook", url);
            check_err(&text, &[&format!(r#"rules.toml:2: webhook "crew", field `url`: {message}"#)]);
        }
    }

    #[test]
    fn email_tls_modes_default_ports_and_plaintext_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca_file(dir.path());
        let env = |k: &str| match k {
            "CREW_TOKEN" => Some("s3cret".to_owned()),
            "SMTP_PASSWORD" => Some("pa55word".to_owned()),
            _ => None,
        };
        let mail = |extra: &str| {
            format!(
                "{GOOD}\n[[email]]\nname = \"crew\"\nsmtp_host = \"mail.city.example\"\nfrom = \"alerts@city.example\"\n\
                 to = [\"crew@city.example\"]\n{extra}"
            )
        };
        let parsed = |extra: &str| {
            let set = RuleSet::parse(Path::new("rules.toml"), &mail(extra), &env).unwrap();
            let e = &set.emails[0];
            (e.tls, e.smtp_port, e.roots.certs().len())
        };
        assert_eq!(parsed(""), (SmtpTls::StartTls, 587, 0), "STARTTLS by default");
        assert_eq!(parsed("tls = \"tls\"\n"), (SmtpTls::Tls, 465, 0));
        assert_eq!(parsed("tls = \"none\"\n"), (SmtpTls::None, 25, 0));
        assert_eq!(parsed("tls = \"none\"\nsmtp_port = 2525\n"), (SmtpTls::None, 2525, 0));
        assert_eq!(parsed("tls = \"starttls\"\nsmtp_port = 25\n"), (SmtpTls::StartTls, 25, 0));
        assert_eq!(parsed(&format!("ca_file = {:?}\n", ca.display().to_string())), (SmtpTls::StartTls, 587, 1));
        let login = "username = \"mizumori\"\npassword_env = \"SMTP_PASSWORD\"\n";
        assert_eq!(parsed(login), (SmtpTls::StartTls, 587, 0), "a password over STARTTLS");
        assert_eq!(parsed(&format!("{login}tls = \"none\"\nallow_plaintext_auth = true\n")), (SmtpTls::None, 25, 0));

        let at = r#"rules.toml:27: email "crew", field"#;
        check_err(&mail("smtp_port = 25\n"), &[&format!("{at} `tls`: port 25 without `tls`: say tls = \"none\"")]);
        check_err(
            &mail(&format!("{login}tls = \"none\"\n")),
            &[&format!("{at} `username`: with tls = \"none\" the password would cross the network in plain text")],
        );
        check_err(
            &mail("allow_plaintext_auth = true\n"),
            &[&format!("{at} `allow_plaintext_auth`: only means something with tls = \"none\", not \"starttls\"")],
        );
        check_err(
            &mail(&format!("tls = \"none\"\nca_file = {:?}\n", ca.display().to_string())),
            &[&format!("{at} `ca_file`: a ca_file is for tls = \"starttls\" or \"tls\"")],
        );
        let missing = dir.path().join("nope.pem");
        check_err(
            &mail(&format!("ca_file = {:?}\n", missing.display().to_string())),
            &[&format!("{at} `ca_file`: {}: cannot read: entity not found", missing.display())],
        );
        check_err(&mail("tls = \"ssl\"\n"), &[&format!("{at} `tls`: unknown variant `ssl`")]);
    }

    #[test]
    fn the_readme_examples_of_webhooks_and_email_parse() {
        let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
        let env = |k: &str| k.starts_with("MIZUMORI_").then(|| "s3cret".to_owned());
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split_once("```").map(|(code, _)| code))
            .filter(|code| code.contains("[[webhook]]") || code.contains("[[email]]"))
            .collect();
        assert_eq!(blocks.len(), 2, "the webhook and the e-mail examples");
        let set = RuleSet::parse(Path::new("README.md"), &blocks.concat(), &env).unwrap();
        assert_eq!(set.webhooks[0].url, "https://hooks.city.example/alerts");
        assert_eq!((set.emails[0].tls, set.emails[0].smtp_port), (SmtpTls::StartTls, 587));
    }

    #[test]
    fn the_shipped_demo_rules_parse() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/demo.toml");
        let set = RuleSet::load(&path, &no_env).unwrap();
        let count = |k: fn(&Kind) -> bool| set.rules.iter().filter(|r| k(&r.kind)).count();
        assert_eq!(count(|k| matches!(k, Kind::Nonzero)), 10 + 12 + 12, "pump trips, sewer overflows and pump faults");
        assert_eq!(count(|k| matches!(k, Kind::Below { .. })), 12);
        assert_eq!(count(|k| matches!(k, Kind::CommLoss { .. })), 43);
        assert_eq!(set.detectors.len(), 12 + 12 + 10 + 12, "per district, sewer station, pump; leak per district");
    }
}
