//! Import of the asset register and the break history from CSV, through a column-mapping
//! [`Profile`].
//!
//! A bad row never costs a good one: every row is checked on its own, a row that cannot be
//! used becomes an [`Issue`] naming the file, line, column and reason, and the import goes on.
//! Only a file that cannot be opened or lacks a required column fails the whole import.
//! Files must be UTF-8 (a Shift_JIS ledger is reported row by row as not UTF-8).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use model::AssetId;

use crate::AnalyticsError;
use crate::asset::{Break, Pipe, Register, RoadClass};
use crate::material::Material;

/// Which columns of a register export hold what.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    pub assets: AssetColumns,
    pub breaks: BreakColumns,
}

/// Columns of the asset file. `None` = this export has no such column.
#[derive(Debug, Clone)]
pub struct AssetColumns {
    pub id: &'static str,
    pub material: &'static str,
    pub length_m: &'static str,
    pub installed: &'static str,
    pub diameter_mm: Option<&'static str>,
    pub removed: Option<&'static str>,
    /// A status column and the values that mean "out of service".
    pub status: Option<(&'static str, &'static [&'static str])>,
    pub criticality: Option<&'static str>,
    pub road_class: Option<&'static str>,
    pub pressure_zone: Option<&'static str>,
    /// Optional columns may be absent from the file (the mizumori schema); otherwise a missing
    /// optional column is an error because the export is not the one the profile describes.
    pub optional_may_be_absent: bool,
}

/// Columns of the break file.
#[derive(Debug, Clone)]
pub struct BreakColumns {
    pub asset_id: &'static str,
    pub date: &'static str,
    /// A type column and the value that means a break of the main itself.
    pub kind: Option<(&'static str, &'static str)>,
    /// A status column and the values that mean the incident was not a break.
    pub status: Option<(&'static str, &'static [&'static str])>,
}

impl Profile {
    /// The City of Kitchener open-data exports ("Water Mains", "Water Main Breaks").
    pub fn kitchener() -> Profile {
        Profile {
            name: "kitchener",
            assets: AssetColumns {
                id: "WATMAINID",
                material: "MATERIAL",
                length_m: "Shape__Length",
                installed: "INSTALLATION_DATE",
                diameter_mm: Some("PIPE_SIZE"),
                removed: None,
                status: Some(("STATUS", &["ABANDONED", "REMOVED", "INACTIVE"])),
                criticality: Some("CRITICALITY"),
                road_class: None,
                pressure_zone: Some("PRESSURE_ZONE"),
                optional_may_be_absent: false,
            },
            breaks: BreakColumns {
                asset_id: "ASSETID",
                date: "INCIDENT_DATE",
                kind: Some(("BREAK_TYPE", "MAIN")),
                status: Some(("STATUS", &["CANCELLED"])),
            },
        }
    }

    /// Mizumori's canonical schema (docs/analytics.md).
    pub fn mizumori() -> Profile {
        Profile {
            name: "mizumori",
            assets: AssetColumns {
                id: "asset_id",
                material: "material",
                length_m: "length_m",
                installed: "installed",
                diameter_mm: Some("diameter_mm"),
                removed: Some("removed"),
                status: None,
                criticality: Some("criticality"),
                road_class: Some("road_class"),
                pressure_zone: Some("pressure_zone"),
                optional_may_be_absent: true,
            },
            breaks: BreakColumns { asset_id: "asset_id", date: "date", kind: None, status: None },
        }
    }

    pub fn by_name(name: &str) -> Result<Profile, AnalyticsError> {
        match name {
            "kitchener" => Ok(Profile::kitchener()),
            "mizumori" => Ok(Profile::mizumori()),
            other => Err(AnalyticsError::UnknownProfile(other.to_owned())),
        }
    }
}

/// How bad a row problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The row was kept, with the field read as unknown.
    Warning,
    /// The row was not imported.
    Rejected,
}

/// One problem with one row: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub file: PathBuf,
    /// 1-based line of the file, as an editor shows it; for GeoJSON the 0-based index of
    /// the feature in `features` (see `unit`).
    pub line: u64,
    /// What `line` counts.
    pub unit: Unit,
    /// The column's header name; empty when the problem is the row itself.
    pub column: String,
    pub severity: Severity,
    pub reason: String,
}

/// What an [`Issue`]'s position counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// A line of a CSV file; its column is a header name.
    #[default]
    Line,
    /// A feature of a GeoJSON FeatureCollection; its column is a property name.
    Feature,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Warning => "warning",
            Severity::Rejected => "rejected",
        };
        match self.unit {
            Unit::Line => write!(f, "{}:{}: ", self.file.display(), self.line)?,
            Unit::Feature => write!(f, "{}: features[{}]: ", self.file.display(), self.line)?,
        }
        if !self.column.is_empty() {
            let what = if self.unit == Unit::Feature { "property" } else { "column" };
            write!(f, "{what} {}: ", self.column)?;
        }
        write!(f, "{what}: {}", self.reason)
    }
}

/// What an import produced besides its rows.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub rows_read: usize,
    pub accepted: usize,
    pub issues: Vec<Issue>,
    /// Rows left out on purpose (e.g. service-connection breaks), by reason.
    pub filtered: BTreeMap<String, usize>,
}

impl ImportReport {
    pub fn rejected(&self) -> usize {
        self.issues.iter().filter(|i| i.severity == Severity::Rejected).count()
    }

    pub fn warnings(&self) -> usize {
        self.issues.len() - self.rejected()
    }

    /// One line: "15903 rows: 15903 accepted, 0 rejected, 49 warnings; filtered: ...".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} rows: {} accepted, {} rejected, {} warnings",
            self.rows_read,
            self.accepted,
            self.rejected(),
            self.warnings()
        );
        for (why, n) in &self.filtered {
            s.push_str(&format!("; {n} left out ({why})"));
        }
        s
    }
}

/// Reads the asset register.
pub fn import_assets(path: &Path, profile: &Profile) -> Result<(Register, ImportReport), AnalyticsError> {
    assets_from_table(Table::open(path, profile.name)?, profile)
}

/// Reads the asset register from a table (a CSV file, or GeoJSON properties tabulated).
pub(crate) fn assets_from_table(
    mut table: Table,
    profile: &Profile,
) -> Result<(Register, ImportReport), AnalyticsError> {
    let cols = &profile.assets;
    let id_col = table.required(cols.id, "the asset id")?;
    let material = table.required(cols.material, "the material")?;
    let length = table.required(cols.length_m, "the length")?;
    let installed = table.required(cols.installed, "the install date")?;
    let opt = |t: &Table, c: Option<&'static str>, what| t.optional(c, what, cols.optional_may_be_absent);
    let diameter = opt(&table, cols.diameter_mm, "the diameter")?;
    let removed = opt(&table, cols.removed, "the removal date")?;
    let status = match cols.status {
        Some((c, out)) => opt(&table, Some(c), "the status")?.map(|i| (i, out)),
        None => None,
    };
    let criticality = opt(&table, cols.criticality, "the criticality")?;
    let road = opt(&table, cols.road_class, "the road class")?;
    let zone = opt(&table, cols.pressure_zone, "the pressure zone")?;

    let mut report = ImportReport::default();
    // Rows are checked on all cores; ids are matched up afterwards, in file order, so the
    // first of two rows with one id is the one kept, as before.
    let rows = table.par_map_rows(&mut report, |row, report| {
        if let Some((i, out)) = status {
            let v = row.get(i).trim().to_ascii_uppercase();
            if out.contains(&v.as_str()) {
                *report.filtered.entry(format!("status {v}")).or_default() += 1;
                return None;
            }
        }
        let mut ok = true;
        let id = row.asset_id(id_col, report, &mut ok);
        let material = row.or_other(report, material, Material::parse(row.get(material)), Material::Other);
        // A row without a length is left out below, as one with `ok` false is.
        let length_m = row.length_m(report, length);
        let installed = row.install_date(report, installed, &mut ok);
        let diameter_mm = diameter.and_then(|i| match row.get(i).trim() {
            "" => None,
            text => match text.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                _ => {
                    row.issue(
                        report,
                        i,
                        Severity::Warning,
                        format!("diameter {text:?} is not a size in mm above 0; read as unknown"),
                    );
                    None
                }
            },
        });
        let removed = removed.and_then(|i| match row.get(i).trim() {
            "" => None,
            text => {
                let d = parse_date(text);
                if d.is_none() {
                    row.reject(report, i, &bad_date(text));
                    ok = false;
                }
                d
            }
        });
        // Kitchener writes -1 for "not assessed".
        let criticality = criticality.and_then(|i| {
            let text = row.get(i).trim();
            match text.parse::<f64>() {
                Ok(v) if (0.0..=10.0).contains(&v) => Some(v),
                Ok(v) if v < 0.0 => None,
                _ if text.is_empty() => None,
                _ => {
                    row.issue(
                        report,
                        i,
                        Severity::Warning,
                        format!("criticality {text:?} is not 0 to 10; read as unknown"),
                    );
                    None
                }
            }
        });
        let road_class = row.road_class(report, road);
        let pressure_zone = zone.map(|i| row.get(i).trim().to_owned()).filter(|z| !z.is_empty());
        match (ok, id, length_m) {
            (true, Some(id), Some(length_m)) => Some(Pipe {
                id,
                material,
                diameter_mm,
                length_m,
                installed,
                removed,
                criticality,
                road_class,
                pressure_zone,
                geometry: None,
            }),
            _ => None,
        }
    });
    // One id map, built once and kept as the register's index: hashing a million ids twice
    // (a duplicate check, then the index) was a visible share of a large import.
    let mut index: foldhash::HashMap<AssetId, usize> = Default::default();
    index.reserve(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    let mut pipes = Vec::with_capacity(rows.len());
    let before = report.issues.len();
    for (line, pipe) in rows {
        match index.entry(pipe.id.clone()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = lines[*first.get()];
                report.issues.push(Issue {
                    file: table.path.clone(),
                    line,
                    unit: Unit::Line,
                    column: table.headers[id_col].clone(),
                    severity: Severity::Rejected,
                    reason: format!("duplicate asset id {}: line {first} has it first and is kept", pipe.id),
                });
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(pipes.len());
                lines.push(line);
                pipes.push(pipe);
            }
        }
    }
    if report.issues.len() > before {
        // Each duplicate's issue in its row's place, after that row's own warnings.
        report.issues.sort_by_key(|i| i.line);
    }
    let register = Register::from_indexed(pipes, index);
    report.accepted = register.len();
    Ok((register, report))
}

/// Reads the break history, keeping breaks of pipes in `register` only.
pub fn import_breaks(
    path: &Path,
    profile: &Profile,
    register: &Register,
) -> Result<(Vec<Break>, ImportReport), AnalyticsError> {
    let cols = &profile.breaks;
    let mut table = Table::open(path, profile.name)?;
    let id = table.required(cols.asset_id, "the asset id of the broken main")?;
    let date = table.required(cols.date, "the break date")?;
    let kind = match cols.kind {
        Some((c, v)) => Some((table.required(c, "the break type")?, v)),
        None => None,
    };
    let status = match cols.status {
        Some((c, v)) => Some((table.required(c, "the incident status")?, v)),
        None => None,
    };
    let mut report = ImportReport::default();
    let breaks = table.par_map_rows(&mut report, |row, report| {
        if let Some((i, main)) = kind {
            let v = row.get(i).trim().to_ascii_uppercase();
            if v != main {
                *report.filtered.entry(format!("type {v}")).or_default() += 1;
                return None;
            }
        }
        if let Some((i, out)) = status {
            let v = row.get(i).trim().to_ascii_uppercase();
            if out.contains(&v.as_str()) {
                *report.filtered.entry(format!("status {v}")).or_default() += 1;
                return None;
            }
        }
        let mut ok = true;
        let asset = row.asset_id(id, report, &mut ok);
        let when = match parse_date(row.get(date).trim()) {
            Some(d) => Some(d),
            None => {
                row.reject(report, date, &bad_date(row.get(date).trim()));
                None
            }
        };
        let (Some(asset_id), Some(date)) = (asset, when) else {
            return None;
        };
        if register.get(&asset_id).is_none() {
            row.reject(report, id, &format!("asset {asset_id} is not in the asset register"));
            return None;
        }
        Some(Break { asset_id, date })
    });
    let breaks: Vec<Break> = breaks.into_iter().map(|(_, b)| b).collect();
    report.accepted = breaks.len();
    Ok((breaks, report))
}

pub(crate) fn bad_date(text: &str) -> String {
    if text.is_empty() {
        "no date".to_owned()
    } else {
        format!("{text:?} is not a date: use YYYY-MM-DD, YYYY/MM/DD or a year YYYY")
    }
}

/// Reads `YYYY-MM-DD`, `YYYY/MM/DD` (with anything after the date, e.g. Kitchener's
/// `1979/01/01 00:00:00+00`) or a bare year `YYYY` (1 January of it, as ledgers that record
/// only the install year mean). Years outside 1800..=2200 are refused as typos.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let date = if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
        NaiveDate::from_ymd_opt(text.parse().ok()?, 1, 1)
    } else {
        let head = text.get(..10)?;
        if text.len() > 10 && !text[10..].starts_with([' ', 'T']) {
            return None;
        }
        NaiveDate::parse_from_str(head, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(head, "%Y/%m/%d")).ok()
    }?;
    use chrono::Datelike;
    (1800..=2200).contains(&date.year()).then_some(date)
}

/// A CSV file with its header, held in memory and read row by row (also the sewer import's
/// reader), or in chunks on every core ([`Table::par_map_rows`]).
pub(crate) struct Table {
    path: PathBuf,
    profile: &'static str,
    headers: Vec<String>,
    data: Vec<u8>,
    /// Where the first record after the header starts in `data`.
    body_start: usize,
    /// Lines (`\n`) before `body_start`: the header's.
    header_lines: u64,
}

pub(crate) struct Row<'a> {
    path: &'a Path,
    headers: &'a [String],
    record: &'a csv::StringRecord,
    pub(crate) line: u64,
}

/// Below this, a file is read in one piece: splitting costs more than it saves.
const MIN_CHUNK_BYTES: usize = 1 << 20;

impl Table {
    /// Reads the whole file: a register of a million mains is about 100 MB, far below what
    /// the ranking itself holds, and in memory it can be split for the cores.
    pub(crate) fn open(path: &Path, profile: &'static str) -> Result<Table, AnalyticsError> {
        let data = std::fs::read(path).map_err(|source| AnalyticsError::Open { path: path.to_owned(), source })?;
        Table::from_bytes(path, profile, data)
    }

    /// A table from CSV text in memory (the GeoJSON import tabulates its properties), named `path`.
    pub(crate) fn from_bytes(path: &Path, profile: &'static str, data: Vec<u8>) -> Result<Table, AnalyticsError> {
        // Flexible: a short or long row becomes one issue instead of stopping the read.
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(&data[..]);
        let headers = reader
            .headers()
            .map_err(|source| AnalyticsError::Header { path: path.to_owned(), source })?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let body_start = usize::try_from(reader.position().byte()).unwrap_or(data.len()).min(data.len());
        drop(reader);
        let header_lines = memchr::memchr_iter(b'\n', &data[..body_start]).count() as u64;
        Ok(Table { path: path.to_owned(), profile, headers, data, body_start, header_lines })
    }

    pub(crate) fn find(&self, column: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == column)
    }

    pub(crate) fn required(&self, column: &'static str, what: &'static str) -> Result<usize, AnalyticsError> {
        self.find(column).ok_or_else(|| AnalyticsError::MissingColumn {
            path: self.path.clone(),
            profile: self.profile,
            column,
            what,
            found: self.headers.join(","),
        })
    }

    pub(crate) fn optional(
        &self,
        column: Option<&'static str>,
        what: &'static str,
        may_be_absent: bool,
    ) -> Result<Option<usize>, AnalyticsError> {
        match column {
            None => Ok(None),
            Some(c) if may_be_absent => Ok(self.find(c)),
            Some(c) => self.required(c, what).map(Some),
        }
    }

    /// Calls `f` on every row in file order; rows of the wrong width and unreadable records
    /// become issues without reaching it.
    pub(crate) fn for_each_row(&mut self, report: &mut ImportReport, f: impl FnMut(&Row, &mut ImportReport)) {
        let body = &self.data[self.body_start..];
        read_chunk(&self.path, &self.headers, body, self.header_lines, report, f);
    }

    /// Maps every row with `f` on all cores and returns what it kept, with the row's line, in
    /// file order. The issues and counts in `report` are those [`Table::for_each_row`] would
    /// give, in the same order: the file is cut at line ends outside quoted fields, each piece
    /// is read by its own CSV reader, and the pieces are joined in order.
    pub(crate) fn par_map_rows<T: Send>(
        &mut self,
        report: &mut ImportReport,
        f: impl Fn(&Row, &mut ImportReport) -> Option<T> + Sync,
    ) -> Vec<(u64, T)> {
        let pieces = rayon::current_num_threads() * 4;
        self.par_map_rows_in(report, (self.data.len() / pieces).max(MIN_CHUNK_BYTES), f)
    }

    fn par_map_rows_in<T: Send>(
        &mut self,
        report: &mut ImportReport,
        chunk_bytes: usize,
        f: impl Fn(&Row, &mut ImportReport) -> Option<T> + Sync,
    ) -> Vec<(u64, T)> {
        use rayon::prelude::*;
        let body = &self.data[self.body_start..];
        let Some(cuts) = cut_points(body, chunk_bytes) else {
            // A quote where RFC 4180 puts none: where records end is the reader's call alone.
            let mut out = Vec::new();
            self.for_each_row(report, |row, report| out.extend(f(row, report).map(|t| (row.line, t))));
            return out;
        };
        let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &body[w[0]..w[1]]).collect();
        // Each piece's first line: the header's lines and the line ends of the pieces before.
        let newlines: Vec<u64> = pieces.par_iter().map(|p| memchr::memchr_iter(b'\n', p).count() as u64).collect();
        let firsts: Vec<u64> = newlines
            .iter()
            .scan(self.header_lines, |line, n| {
                let first = *line;
                *line += n;
                Some(first)
            })
            .collect();
        let (path, headers) = (&self.path, &self.headers);
        let results: Vec<(ImportReport, Vec<(u64, T)>)> = pieces
            .par_iter()
            .zip(firsts)
            .map(|(piece, first)| {
                let mut local = ImportReport::default();
                let mut out = Vec::new();
                read_chunk(path, headers, piece, first, &mut local, |row, local| {
                    out.extend(f(row, local).map(|t| (row.line, t)));
                });
                (local, out)
            })
            .collect();
        let mut all = Vec::with_capacity(results.iter().map(|r| r.1.len()).sum());
        for (local, out) in results {
            report.rows_read += local.rows_read;
            report.issues.extend(local.issues);
            for (why, n) in local.filtered {
                *report.filtered.entry(why).or_default() += n;
            }
            all.extend(out);
        }
        all
    }
}

/// Reads the records of `body` (no header; `lines_before` lines of the file precede it) and
/// calls `f` on each row of the header's width.
fn read_chunk(
    path: &Path,
    headers: &[String],
    body: &[u8],
    lines_before: u64,
    report: &mut ImportReport,
    mut f: impl FnMut(&Row, &mut ImportReport),
) {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut record = csv::StringRecord::new();
    // The line of a record's first character, counted from the line ends before it. The csv
    // crate's own line number counts a record from the line end before it, so after a CRLF or
    // a blank line it is one short, and a piece that starts after that line end would not
    // agree with one reader over the whole file.
    let (mut counted_to, mut newlines) = (0, 0u64);
    let mut line_at = |pos: Option<&csv::Position>| {
        let Some(pos) = pos else { return 0 };
        let mut at = usize::try_from(pos.byte()).unwrap_or(body.len()).min(body.len());
        while matches!(body.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        if at > counted_to {
            newlines += memchr::memchr_iter(b'\n', &body[counted_to..at]).count() as u64;
            counted_to = at;
        }
        lines_before + newlines + 1
    };
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                report.rows_read += 1;
                let line = line_at(record.position());
                let row = Row { path, headers, record: &record, line };
                if record.len() != headers.len() {
                    row.reject(
                        report,
                        usize::MAX,
                        &format!("{} fields where the header has {}", record.len(), headers.len()),
                    );
                    continue;
                }
                f(&row, report);
            }
            Err(e) => {
                report.rows_read += 1;
                let line = line_at(e.position());
                let (column, reason) = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => (
                        headers.get(err.field()).cloned().unwrap_or_default(),
                        "not UTF-8 text: save the file as UTF-8".to_owned(),
                    ),
                    _ => (String::new(), e.to_string()),
                };
                report.issues.push(Issue {
                    file: path.to_owned(),
                    line,
                    unit: Unit::Line,
                    column,
                    severity: Severity::Rejected,
                    reason,
                });
                // An IO error would repeat forever; anything else is one bad row.
                if e.is_io_error() {
                    break;
                }
            }
        }
    }
}

/// Where to cut `body` into pieces of about `chunk_bytes` so that each starts a record: just
/// after a line end outside any quoted field. `None` when a quote stands where RFC 4180
/// allows none (inside an unquoted field, or not followed by a separator after closing), so
/// quote parity could not tell where fields end; then the file is read in one piece. The
/// result starts at 0 and ends at `body.len()`.
fn cut_points(body: &[u8], chunk_bytes: usize) -> Option<Vec<usize>> {
    // The quoted fields, as (opening quote, closing quote) positions.
    let mut quoted: Vec<(usize, usize)> = Vec::new();
    let mut quotes = memchr::memchr_iter(b'"', body);
    let ends_field = |b: Option<&u8>| matches!(b, None | Some(b',' | b'\n' | b'\r'));
    while let Some(open) = quotes.next() {
        if open > 0 && !ends_field(body.get(open - 1)) {
            return None;
        }
        loop {
            let close = quotes.next()?;
            if body.get(close + 1) == Some(&b'"') {
                // An escaped quote ("") inside the field.
                quotes.next();
                continue;
            }
            if !ends_field(body.get(close + 1)) {
                return None;
            }
            quoted.push((open, close));
            break;
        }
    }
    let mut cuts = vec![0];
    let mut from = chunk_bytes;
    while from < body.len() {
        let Some(nl) = memchr::memchr(b'\n', &body[from..]).map(|i| from + i) else { break };
        // The quoted field that holds this line end, if any: the last opened at or before it.
        let k = quoted.partition_point(|&(open, _)| open <= nl);
        if let Some(&(_, close)) = k.checked_sub(1).map(|k| &quoted[k]) {
            if close > nl {
                from = close + 1;
                continue;
            }
        }
        cuts.push(nl + 1);
        from = nl + 1 + chunk_bytes;
    }
    if *cuts.last().expect("starts with 0") != body.len() {
        cuts.push(body.len());
    }
    Some(cuts)
}

impl Row<'_> {
    pub(crate) fn get(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("")
    }

    pub(crate) fn issue(&self, report: &mut ImportReport, column: usize, severity: Severity, reason: String) {
        report.issues.push(Issue {
            file: self.path.to_owned(),
            line: self.line,
            unit: Unit::Line,
            column: self.headers.get(column).cloned().unwrap_or_default(),
            severity,
            reason,
        });
    }

    pub(crate) fn reject(&self, report: &mut ImportReport, column: usize, reason: &str) {
        self.issue(report, column, Severity::Rejected, reason.to_owned());
    }

    /// A value of a fixed vocabulary (a material) as `parsed`; one the vocabulary does not know
    /// is a warning and reads as `other`, so an unusual code costs a main no place in the ranking.
    pub(crate) fn or_other<T, E: fmt::Display>(
        &self,
        report: &mut ImportReport,
        column: usize,
        parsed: Result<T, E>,
        other: T,
    ) -> T {
        parsed.unwrap_or_else(|e| {
            self.issue(report, column, Severity::Warning, format!("{e}; read as OTHER"));
            other
        })
    }

    /// The length in metres, a number above 0; anything else is a rejection (`None`).
    pub(crate) fn length_m(&self, report: &mut ImportReport, column: usize) -> Option<f64> {
        match self.get(column).trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Some(v),
            _ => {
                self.reject(report, column, "length must be a number of metres above 0");
                None
            }
        }
    }

    /// The install date: empty is a warning (the model takes the material's median age), a
    /// date it cannot read is a rejection.
    pub(crate) fn install_date(&self, report: &mut ImportReport, column: usize, ok: &mut bool) -> Option<NaiveDate> {
        match self.get(column).trim() {
            "" => {
                let why = "no install date; age taken from the material's median".to_owned();
                self.issue(report, column, Severity::Warning, why);
                None
            }
            text => match parse_date(text) {
                Some(d) => Some(d),
                None => {
                    self.reject(report, column, &bad_date(text));
                    *ok = false;
                    None
                }
            },
        }
    }

    /// The road class in an optional column; text that is not a class is a warning, read as unknown.
    pub(crate) fn road_class(&self, report: &mut ImportReport, column: Option<usize>) -> Option<RoadClass> {
        let i = column?;
        let text = self.get(i).trim();
        let r = RoadClass::parse(text);
        if r.is_none() && !text.is_empty() {
            let why = format!("road class {text:?} is not emergency, arterial or local; read as unknown");
            self.issue(report, i, Severity::Warning, why);
        }
        r
    }

    /// The asset id of the row, folded from full-width digits, or a rejection.
    pub(crate) fn asset_id(&self, column: usize, report: &mut ImportReport, ok: &mut bool) -> Option<AssetId> {
        let text: String = self
            .get(column)
            .trim()
            .chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                c => c,
            })
            .collect();
        if text.is_empty() {
            self.reject(report, column, "no asset id");
            *ok = false;
            return None;
        }
        match AssetId::new(text) {
            Ok(id) => Some(id),
            Err(e) => {
                self.reject(report, column, &e.to_string());
                *ok = false;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::DiJoint;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The issues as `line:column:severity` strings, in file order.
    fn located(report: &ImportReport) -> Vec<String> {
        let mut v: Vec<_> = report.issues.iter().map(|i| format!("{}:{}:{:?}", i.line, i.column, i.severity)).collect();
        v.sort();
        v
    }

    #[test]
    fn dates() {
        #[track_caller]
        fn check(text: &str, expected: Option<(i32, u32, u32)>) {
            let expected = expected.map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap());
            assert_eq!(parse_date(text), expected, "{text:?}");
        }
        check("1979/01/01 00:00:00+00", Some((1979, 1, 1)));
        check("2017-12-01", Some((2017, 12, 1)));
        check("2017-12-01T15:15:00Z", Some((2017, 12, 1)));
        check("1965", Some((1965, 1, 1)));
        check(" 1965 ", Some((1965, 1, 1)));
        check("", None);
        check("65", None);
        check("2017-13-01", None);
        check("2017-12-01x", None);
        check("0965", None);
        check("昭和40年", None);
    }

    const ASSETS: &str = "\
asset_id,material,diameter_mm,length_m,installed,removed,criticality,road_class,pressure_zone
A1,ダクタイル鋳鉄管（GX形）,150,120.5,2015-04-01,,5,emergency,Z1
A2,CI,100,80,1962,,,,
A3,DIP,abc,50,1975,,,,
A4,VP,75,-3,1980,,,,
A5,ACP,100,40,19x0,,,,
,CI,100,40,1960,,,,
A 7,CI,100,40,1960,,,,
A2,CI,100,40,1960,,,,
A9,wood,100,40,1960,,,,
A10,CI,100,40,1960
A11,HPPE,50,10,,2020-01-01,12,moon,
";

    /// Every row as (line, fields joined by |) and the report's issues, read serially.
    fn serial(table: &mut Table) -> (Vec<(u64, String)>, ImportReport) {
        let mut report = ImportReport::default();
        let mut rows = Vec::new();
        table
            .for_each_row(&mut report, |row, _| rows.push((row.line, row.record.iter().collect::<Vec<_>>().join("|"))));
        (rows, report)
    }

    /// A file with quoted fields holding commas, escaped quotes and line breaks, CRLF line
    /// ends, short and long rows, a row that is not UTF-8 and a blank line.
    fn tricky() -> Vec<u8> {
        let mut data = b"id,name,note\r\nA1,plain,x\r\nA2,\"with, comma\",\"two\nlines\"\r\nA3,short\r\n\r\n".to_vec();
        data.extend_from_slice(b"A4,\"say \"\"hi\"\"\",\"three\nline\nfield\"\nA5,\xff\xfe,z\nA6,a,b,c\n");
        for i in 7..40 {
            data.extend_from_slice(format!("A{i},\"n{i}\nn\",{i}\n").as_bytes());
        }
        data.extend_from_slice(b"A40,last,row");
        data
    }

    #[test]
    fn pieces_read_on_all_cores_give_what_one_reader_gives() {
        let path = Path::new("tricky.csv");
        let (rows, report) = serial(&mut Table::from_bytes(path, "test", tricky()).unwrap());
        assert_eq!(rows.len(), 37, "{rows:?}");
        assert_eq!(rows[1], (3, "A2|with, comma|two\nlines".to_owned()));
        assert!(report.issues.len() == 3, "{:?}", report.issues);
        // Every piece size, down to a piece per line end.
        for chunk in 1..=200 {
            let mut table = Table::from_bytes(path, "test", tricky()).unwrap();
            let mut par = ImportReport::default();
            let got =
                table.par_map_rows_in(&mut par, chunk, |row, _| Some(row.record.iter().collect::<Vec<_>>().join("|")));
            assert_eq!(got, rows, "chunk {chunk}");
            assert_eq!(par.issues, report.issues, "chunk {chunk}");
            assert_eq!(par.rows_read, report.rows_read, "chunk {chunk}");
        }
    }

    #[test]
    fn a_stray_quote_reads_the_file_in_one_piece() {
        #[track_caller]
        fn check(body: &[u8], cuts: Option<Vec<usize>>) {
            assert_eq!(cut_points(body, 1), cuts, "{}", String::from_utf8_lossy(body));
        }
        check(b"a,b\nc,d\n", Some(vec![0, 4, 8]));
        check(b"a,\"b\nc\"\nd,e", Some(vec![0, 8, 11]));
        check(b"a,\"b\"\"\nc\"\nd", Some(vec![0, 10, 11]));
        // A quote inside an unquoted field, text after a closing quote, an unclosed quote.
        check(b"a,b\"c\nd\n", None);
        check(b"a,\"b\"c\nd\n", None);
        check(b"a,\"b\nc\n", None);
        // A stray quote goes through the one reader, with the same rows.
        let data = b"id,name\nA1,5\" pipe\nA2,x\n".to_vec();
        let mut table = Table::from_bytes(Path::new("q.csv"), "test", data.clone()).unwrap();
        let (rows, _) = serial(&mut table);
        let mut par = ImportReport::default();
        let mut table = Table::from_bytes(Path::new("q.csv"), "test", data).unwrap();
        let got = table.par_map_rows_in(&mut par, 1, |row, _| Some(row.record.iter().collect::<Vec<_>>().join("|")));
        assert_eq!(got, rows);
        assert_eq!(rows[0], (2, "A1|5\" pipe".to_owned()));
    }

    #[test]
    fn every_bad_row_is_reported_and_good_rows_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "assets.csv", ASSETS);
        let (register, report) = import_assets(&path, &Profile::mizumori()).unwrap();
        let ids: Vec<_> = register.pipes().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["A1", "A2", "A3", "A9", "A11"]);
        assert_eq!(report.rows_read, 11);
        assert_eq!(report.accepted, 5);
        assert_eq!(
            located(&report),
            [
                "10:material:Warning",    // wood
                "11::Rejected",           // short row
                "12:criticality:Warning", // 12 is out of 0..=10
                "12:installed:Warning",   // no install date
                "12:road_class:Warning",  // moon
                "4:diameter_mm:Warning",  // abc
                "5:length_m:Rejected",    // -3
                "6:installed:Rejected",   // 19x0
                "7:asset_id:Rejected",    // empty
                "8:asset_id:Rejected",    // space in the id
                "9:asset_id:Rejected",    // duplicate A2
            ]
        );
        let a1 = &register.pipes()[0];
        assert_eq!(a1.material, Material::DuctileIron(DiJoint::Gx));
        assert_eq!(a1.road_class, Some(RoadClass::Emergency));
        assert_eq!(a1.criticality, Some(5.0));
        assert_eq!(a1.pressure_zone.as_deref(), Some("Z1"));
        assert_eq!(register.pipes()[3].material, Material::Other);
        let a11 = &register.pipes()[4];
        assert_eq!(a11.installed, None);
        assert_eq!(a11.removed, NaiveDate::from_ymd_opt(2020, 1, 1));
        // In file order, as a reader going row by row reports them.
        assert!(report.issues.windows(2).all(|w| w[0].line <= w[1].line), "{:?}", report.issues);
        let dup = report.issues.iter().find(|i| i.line == 9).unwrap();
        assert!(dup.reason.contains("line 3"), "{}", dup.reason);
        let shown = report.issues.iter().find(|i| i.line == 6).unwrap().to_string();
        assert!(
            shown.ends_with("assets.csv:6: column installed: rejected: \"19x0\" is not a date: use YYYY-MM-DD, YYYY/MM/DD or a year YYYY"),
            "{shown}"
        );
    }

    #[test]
    fn breaks_are_checked_against_the_register() {
        let dir = tempfile::tempdir().unwrap();
        let assets = write(&dir, "a.csv", ASSETS);
        let (register, _) = import_assets(&assets, &Profile::mizumori()).unwrap();
        let breaks = write(
            &dir,
            "b.csv",
            "asset_id,date\nA1,2019-02-03\nA2,2019-13-01\nZZ,2019-01-01\nA2,1999/12/31 10:00:00+00\n",
        );
        let (rows, report) = import_breaks(&breaks, &Profile::mizumori(), &register).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(located(&report), ["3:date:Rejected", "4:asset_id:Rejected"]);
        assert!(report.issues[1].reason.contains("ZZ is not in the asset register"));
    }

    #[test]
    fn kitchener_profile_reads_the_city_export_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mains = write(
            &dir,
            "mains.csv",
            "OBJECTID,WATMAINID,STATUS,PRESSURE_ZONE,PIPE_SIZE,MATERIAL,INSTALLATION_DATE,CRITICALITY,Shape__Length\n\
             1,10080,ACTIVE,KIT 6,450,DI,1979/01/01 00:00:00+00,6,34.2\n\
             2,10081,ACTIVE,KIT 6,0,XXX,,-1,12.0\n\
             3,10082,ABANDONED,KIT 6,150,CI,1950/01/01 00:00:00+00,6,12.0\n",
        );
        let (register, report) = import_assets(&mains, &Profile::kitchener()).unwrap();
        assert_eq!(register.len(), 2);
        assert_eq!(report.filtered.get("status ABANDONED"), Some(&1));
        let p = &register.pipes()[1];
        assert_eq!((p.diameter_mm, p.criticality, p.material), (None, None, Material::Unknown));
        let breaks = write(
            &dir,
            "breaks.csv",
            "X,Y,INCIDENT_DATE,BREAK_TYPE,STATUS,ASSETID\n\
             0,0,2017/12/01 15:15:00+00,MAIN,REPAIR COMPLETED,10080\n\
             0,0,2017/12/02 15:15:00+00,SERVICE,REPAIR COMPLETED,10080\n\
             0,0,2017/12/03 15:15:00+00,MAIN,CANCELLED,10080\n",
        );
        let (rows, report) = import_breaks(&breaks, &Profile::kitchener(), &register).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(report.filtered.len(), 2);
        assert!(report.issues.is_empty());
    }

    #[test]
    fn a_missing_column_names_it_and_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.csv", "asset_id,material,length_m\nA1,CI,10\n");
        let e = import_assets(&path, &Profile::mizumori()).unwrap_err().to_string();
        assert!(e.contains("\"installed\"") && e.contains("mizumori"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_reported_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sjis.csv");
        let mut bytes = b"asset_id,material,length_m,installed\nA1,CI,10,1960\nA2,".to_vec();
        bytes.extend([0x93, 0x53]); // 鉄 in Shift_JIS
        bytes.extend(b",10,1960\n");
        std::fs::write(&path, bytes).unwrap();
        let (register, report) = import_assets(&path, &Profile::mizumori()).unwrap();
        assert_eq!(register.len(), 1);
        assert_eq!(located(&report), ["3:material:Rejected"]);
    }
}
