//! Sewer span rankings: a run (as-of date, horizon, the fitted deterioration curve of each
//! material) and one row per span, in the same SQLite file as the risk runs (beside the
//! accounts: the embedded store's own file, or with InfluxDB the accounts file).
//!
//! Analytics fits the curves and ranks the spans; this module only keeps what it made and
//! reads it back for the dashboard through a [`SewerQuery`] whose sort key is an enum and whose
//! filters are bound parameters, so no request text ever becomes SQL. It ranks nothing.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use model::AssetId;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

use crate::StoreError;
use crate::sqlite_file::{RunColumn, SqliteFile, distinct_values};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sewer_run (
    id            INTEGER PRIMARY KEY,
    as_of         TEXT NOT NULL,
    horizon_years INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sewer_curve (
    run         INTEGER NOT NULL REFERENCES sewer_run(id) ON DELETE CASCADE,
    material    TEXT NOT NULL,
    material_ja TEXT NOT NULL,
    inspections INTEGER NOT NULL,
    any_shape   REAL NOT NULL,
    any_scale   REAL NOT NULL,
    ii_shape    REAL NOT NULL,
    ii_scale    REAL NOT NULL,
    i_shape     REAL NOT NULL,
    i_scale     REAL NOT NULL,
    fallback    TEXT,
    PRIMARY KEY (run, material)
);
CREATE TABLE IF NOT EXISTS sewer_span (
    run           INTEGER NOT NULL REFERENCES sewer_run(id) ON DELETE CASCADE,
    priority      INTEGER NOT NULL,
    span_id       TEXT NOT NULL,
    material      TEXT NOT NULL,
    material_ja   TEXT NOT NULL,
    diameter_mm   REAL,
    length_m      REAL NOT NULL,
    install_year  INTEGER,
    district      TEXT,
    latest_grade  INTEGER,
    latest_date   TEXT,
    p_grade_ii    REAL NOT NULL,
    p_grade_i     REAL NOT NULL,
    explanation   TEXT NOT NULL,
    PRIMARY KEY (run, span_id)
);
CREATE INDEX IF NOT EXISTS sewer_span_priority ON sewer_span(run, priority);
";

/// 緊急度 of a span's latest inspection, stored as 0 (劣化なし) to 3 (緊急度 I) so that grades
/// sort by severity; a span never inspected has none (NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SewerGrade {
    /// 劣化なし: inspected, no deterioration.
    #[serde(rename = "none")]
    Sound,
    III,
    II,
    I,
}

impl SewerGrade {
    /// Most severe first, the order the dashboard lists them in.
    pub const ALL: [SewerGrade; 4] = [SewerGrade::I, SewerGrade::II, SewerGrade::III, SewerGrade::Sound];

    /// The name in URLs and JSON: `I`, `II`, `III`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            SewerGrade::Sound => "none",
            SewerGrade::III => "III",
            SewerGrade::II => "II",
            SewerGrade::I => "I",
        }
    }

    pub fn parse(s: &str) -> Option<SewerGrade> {
        SewerGrade::ALL.into_iter().find(|g| g.as_str() == s)
    }

    fn number(self) -> i64 {
        self as i64
    }

    fn from_number(n: i64) -> Option<SewerGrade> {
        [SewerGrade::Sound, SewerGrade::III, SewerGrade::II, SewerGrade::I].get(usize::try_from(n).ok()?).copied()
    }
}

impl fmt::Display for SewerGrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Weibull curve of the age at which a span reaches a grade threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WeibullParams {
    pub shape: f64,
    pub scale: f64,
}

impl WeibullParams {
    /// The share of spans of age `age` (years) that have not reached the threshold.
    pub fn survival(&self, age: f64) -> f64 {
        if age <= 0.0 { 1.0 } else { (-(age / self.scale).powf(self.shape)).exp() }
    }

    /// The age at which half the spans have reached the threshold.
    pub fn median(&self) -> f64 {
        self.scale * std::f64::consts::LN_2.powf(1.0 / self.shape)
    }
}

/// The deterioration curves of one material as fitted for a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SewerCurve {
    /// Material code (`RC`, `VP`, …) and its Japanese name.
    pub material: String,
    pub material_ja: String,
    /// Inspections the fit used.
    pub inspections: u32,
    /// Age at reaching 緊急度 III or worse (any deterioration): 1 − its survival is 健全率's
    /// complement.
    pub any: WeibullParams,
    /// Age at reaching 緊急度 II or worse; its median is the target service life.
    pub ii: WeibullParams,
    /// Age at reaching 緊急度 I.
    pub i: WeibullParams,
    /// How the curve was made when the material's own data were too thin.
    pub fallback: Option<String>,
}

impl SewerCurve {
    /// 健全率: the share of spans of age `age` without deterioration.
    pub fn sound_share(&self, age: f64) -> f64 {
        self.any.survival(age)
    }

    /// 目標耐用年数: the age at which 緊急度 I+II reaches 50 %.
    pub fn target_life(&self) -> f64 {
        self.ii.median()
    }
}

/// One sewer ranking: when, over which horizon, with which curves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SewerRun {
    /// Set by the store when saved; ignored by [`SewerStore::save_run`].
    pub id: i64,
    pub as_of: NaiveDate,
    /// The probabilities are of the grade `horizon_years` after the as-of date.
    pub horizon_years: u32,
    pub created: DateTime<Utc>,
    /// One per material of the register, read back in the order saved.
    pub curves: Vec<SewerCurve>,
}

/// One ranked span (管きょ).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SewerRow {
    /// 1 for the span to act on first.
    pub priority: u32,
    pub span_id: AssetId,
    pub material: String,
    pub material_ja: String,
    pub diameter_mm: Option<f64>,
    pub length_m: f64,
    pub install_year: Option<i32>,
    pub district: Option<String>,
    /// The latest inspection's grade and date; `None` when never inspected.
    pub latest_grade: Option<SewerGrade>,
    pub latest_date: Option<NaiveDate>,
    /// P(緊急度 II or worse) and P(緊急度 I) at the run's horizon.
    pub p_grade_ii: f64,
    pub p_grade_i: f64,
    pub explanation: String,
}

/// The column a sewer table is sorted by: an enum, so a URL's sort key is one of these or
/// refused before any SQL is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SewerSort {
    #[default]
    Priority,
    SpanId,
    Material,
    Diameter,
    Length,
    InstallYear,
    Grade,
    PGradeII,
    PGradeI,
}

impl SewerSort {
    pub const ALL: [SewerSort; 9] = [
        SewerSort::Priority,
        SewerSort::SpanId,
        SewerSort::Material,
        SewerSort::Diameter,
        SewerSort::Length,
        SewerSort::InstallYear,
        SewerSort::Grade,
        SewerSort::PGradeII,
        SewerSort::PGradeI,
    ];

    /// The name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            SewerSort::Priority => "priority",
            SewerSort::SpanId => "span_id",
            SewerSort::Material => "material",
            SewerSort::Diameter => "diameter",
            SewerSort::Length => "length",
            SewerSort::InstallYear => "install_year",
            SewerSort::Grade => "grade",
            SewerSort::PGradeII => "p_grade_ii",
            SewerSort::PGradeI => "p_grade_i",
        }
    }

    pub fn parse(s: &str) -> Option<SewerSort> {
        SewerSort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The ORDER BY column: fixed text chosen by the enum, never from the request.
    fn column(self) -> &'static str {
        match self {
            SewerSort::Priority => "priority",
            SewerSort::SpanId => "span_id",
            SewerSort::Material => "material",
            SewerSort::Diameter => "diameter_mm",
            SewerSort::Length => "length_m",
            SewerSort::InstallYear => "install_year",
            SewerSort::Grade => "latest_grade",
            SewerSort::PGradeII => "p_grade_ii",
            SewerSort::PGradeI => "p_grade_i",
        }
    }
}

/// Which latest grade a filter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradeFilter {
    Grade(SewerGrade),
    /// Never inspected.
    Uninspected,
}

/// Which spans: every field narrows, `None` leaves it open.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SewerFilter {
    /// A material code, compared as a bound parameter.
    pub material: Option<String>,
    pub district: Option<String>,
    pub grade: Option<GradeFilter>,
}

/// A page of a filtered, sorted sewer table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SewerQuery {
    pub filter: SewerFilter,
    pub sort: SewerSort,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

/// One page of spans and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SewerPage {
    pub total: u64,
    pub rows: Vec<SewerRow>,
}

/// Spans and km with one latest grade (`None`: never inspected).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeCount {
    pub grade: Option<SewerGrade>,
    pub spans: u64,
    pub km: f64,
}

/// Sewer ranking runs and their spans, by role.
#[async_trait]
pub trait SewerStore: Send + Sync {
    /// Checks every row, then saves the run, its curves and rows in one transaction (all or
    /// nothing); returns the run's id. A bad row is refused by name and changes nothing.
    async fn save_run(&self, run: &SewerRun, rows: &[SewerRow]) -> Result<i64, StoreError>;

    /// The newest run, with its curves.
    async fn latest_run(&self) -> Result<Option<SewerRun>, StoreError>;

    /// A page of a run's spans.
    async fn rows(&self, run: i64, query: &SewerQuery) -> Result<SewerPage, StoreError>;

    /// Spans and km per latest grade of the spans that pass `filter`, most severe first,
    /// uninspected last; grades without spans are left out.
    async fn grade_counts(&self, run: i64, filter: &SewerFilter) -> Result<Vec<GradeCount>, StoreError>;

    /// The material codes of a run, sorted.
    async fn materials(&self, run: i64) -> Result<Vec<String>, StoreError>;

    /// The districts of a run, sorted.
    async fn districts(&self, run: i64) -> Result<Vec<String>, StoreError>;
}

/// Sewer runs in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteSewer {
    inner: Arc<SqliteFile>,
}

impl SqliteSewer {
    /// Opens (creating if needed) the sewer tables in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteSewer { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    /// No runs, in memory: the dashboard starts with this until it is given a file.
    pub fn in_memory() -> Self {
        SqliteSewer { inner: SqliteFile::in_memory(SCHEMA) }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.call(f).await
    }
}

const ROW_COLUMNS: &str = "priority, span_id, material, material_ja, diameter_mm, length_m, install_year, district, \
     latest_grade, latest_date, p_grade_ii, p_grade_i, explanation";

fn conversion(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

#[derive(Debug, thiserror::Error)]
#[error("stored value {0} is not a sewer grade")]
struct BadGrade(i64);

fn date_from_sql(col: usize, s: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| conversion(col, e))
}

fn row_from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<SewerRow> {
    let grade: Option<i64> = r.get(8)?;
    let date: Option<String> = r.get(9)?;
    Ok(SewerRow {
        priority: r.get(0)?,
        span_id: AssetId::new(r.get::<_, String>(1)?).map_err(|e| conversion(1, e))?,
        material: r.get(2)?,
        material_ja: r.get(3)?,
        diameter_mm: r.get(4)?,
        length_m: r.get(5)?,
        install_year: r.get(6)?,
        district: r.get(7)?,
        latest_grade: grade
            .map(|g| SewerGrade::from_number(g).ok_or_else(|| conversion(8, BadGrade(g))))
            .transpose()?,
        latest_date: date.as_deref().map(|d| date_from_sql(9, d)).transpose()?,
        p_grade_ii: r.get(10)?,
        p_grade_i: r.get(11)?,
        explanation: r.get(12)?,
    })
}

/// The WHERE clause of a filter and its bound values: only placeholders enter the text.
fn where_clause(run: i64, f: &SewerFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = String::from("run = ?");
    let mut values = vec![V::Integer(run)];
    if let Some(m) = &f.material {
        sql.push_str(" AND material = ?");
        values.push(V::Text(m.clone()));
    }
    if let Some(d) = &f.district {
        sql.push_str(" AND district = ?");
        values.push(V::Text(d.clone()));
    }
    match f.grade {
        Some(GradeFilter::Grade(g)) => {
            sql.push_str(" AND latest_grade = ?");
            values.push(V::Integer(g.number()));
        }
        Some(GradeFilter::Uninspected) => sql.push_str(" AND latest_grade IS NULL"),
        None => {}
    }
    (sql, values)
}

fn invalid(row: &SewerRow, field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidSewerRow { span: row.span_id.to_string(), field, reason: reason.into() }
}

/// What SQLite would take but the dashboard could not show: refused before anything is written.
fn check_row(r: &SewerRow) -> Result<(), StoreError> {
    if !(r.length_m.is_finite() && r.length_m > 0.0) {
        return Err(invalid(r, "length_m", format!("{} is not a length above 0", r.length_m)));
    }
    if let Some(d) = r.diameter_mm.filter(|d| !(d.is_finite() && *d >= 0.0)) {
        return Err(invalid(r, "diameter_mm", format!("{d} is not a diameter")));
    }
    for (field, p) in [("p_grade_ii", r.p_grade_ii), ("p_grade_i", r.p_grade_i)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(r, field, format!("{p} is not a probability")));
        }
    }
    if r.latest_grade.is_some() != r.latest_date.is_some() {
        return Err(invalid(r, "latest_date", "a latest grade needs its inspection date and a date its grade"));
    }
    Ok(())
}

#[async_trait]
impl SewerStore for SqliteSewer {
    async fn save_run(&self, run: &SewerRun, rows: &[SewerRow]) -> Result<i64, StoreError> {
        for r in rows {
            check_row(r)?;
        }
        let run = run.clone();
        let rows = rows.to_vec();
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sewer_run (as_of, horizon_years, created_ms) VALUES (?1, ?2, ?3)",
                params![run.as_of.to_string(), run.horizon_years, run.created.timestamp_millis()],
            )?;
            let id = tx.last_insert_rowid();
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO sewer_curve (run, material, material_ja, inspections, any_shape, any_scale,
                     ii_shape, ii_scale, i_shape, i_scale, fallback) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for k in &run.curves {
                    stmt.execute(params![
                        id,
                        k.material,
                        k.material_ja,
                        k.inspections,
                        k.any.shape,
                        k.any.scale,
                        k.ii.shape,
                        k.ii.scale,
                        k.i.shape,
                        k.i.scale,
                        k.fallback
                    ])?;
                }
                let mut stmt = tx.prepare(&format!(
                    "INSERT INTO sewer_span (run, {ROW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                     ?12, ?13, ?14)"
                ))?;
                for r in &rows {
                    stmt.execute(params![
                        id,
                        r.priority,
                        r.span_id.as_str(),
                        r.material,
                        r.material_ja,
                        r.diameter_mm,
                        r.length_m,
                        r.install_year,
                        r.district,
                        r.latest_grade.map(SewerGrade::number),
                        r.latest_date.map(|d| d.to_string()),
                        r.p_grade_ii,
                        r.p_grade_i,
                        r.explanation
                    ])?;
                }
            }
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    async fn latest_run(&self) -> Result<Option<SewerRun>, StoreError> {
        self.call(|c| {
            let run = c
                .query_row(
                    "SELECT id, as_of, horizon_years, created_ms FROM sewer_run ORDER BY id DESC LIMIT 1",
                    [],
                    |r| {
                        let as_of: String = r.get(1)?;
                        Ok(SewerRun {
                            id: r.get(0)?,
                            as_of: date_from_sql(1, &as_of)?,
                            horizon_years: r.get(2)?,
                            created: Utc.timestamp_millis_opt(r.get(3)?).single().unwrap_or(DateTime::<Utc>::MIN_UTC),
                            curves: Vec::new(),
                        })
                    },
                )
                .optional()?;
            let Some(mut run) = run else { return Ok(None) };
            let mut stmt = c.prepare(
                "SELECT material, material_ja, inspections, any_shape, any_scale, ii_shape, ii_scale, i_shape, i_scale,
                 fallback FROM sewer_curve WHERE run = ?1 ORDER BY rowid",
            )?;
            run.curves = stmt
                .query_map(params![run.id], |r| {
                    Ok(SewerCurve {
                        material: r.get(0)?,
                        material_ja: r.get(1)?,
                        inspections: r.get(2)?,
                        any: WeibullParams { shape: r.get(3)?, scale: r.get(4)? },
                        ii: WeibullParams { shape: r.get(5)?, scale: r.get(6)? },
                        i: WeibullParams { shape: r.get(7)?, scale: r.get(8)? },
                        fallback: r.get(9)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(run))
        })
        .await
    }

    async fn rows(&self, run: i64, query: &SewerQuery) -> Result<SewerPage, StoreError> {
        let q = query.clone();
        self.call(move |c| {
            let (cond, mut values) = where_clause(run, &q.filter);
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM sewer_span WHERE {cond}"),
                params_from_iter(&values),
                |r| r.get(0),
            )?;
            let dir = if q.descending { "DESC" } else { "ASC" };
            // Unknown values (no diameter, never inspected) go last either way; priority breaks ties.
            let col = q.sort.column();
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM sewer_span WHERE {cond} ORDER BY {col} IS NULL, {col} {dir}, priority \
                 LIMIT ? OFFSET ?"
            );
            values.push(rusqlite::types::Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
            values.push(rusqlite::types::Value::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(&values), row_from_sql)?.collect::<rusqlite::Result<_>>()?;
            Ok(SewerPage { total: u64::try_from(total).unwrap_or(0), rows })
        })
        .await
    }

    async fn grade_counts(&self, run: i64, filter: &SewerFilter) -> Result<Vec<GradeCount>, StoreError> {
        let f = filter.clone();
        self.call(move |c| {
            let (cond, values) = where_clause(run, &f);
            let mut stmt = c.prepare(&format!(
                "SELECT latest_grade, COUNT(*), SUM(length_m) / 1000.0 FROM sewer_span WHERE {cond}
                 GROUP BY latest_grade ORDER BY latest_grade IS NULL, latest_grade DESC"
            ))?;
            let counts = stmt
                .query_map(params_from_iter(&values), |r| {
                    let grade: Option<i64> = r.get(0)?;
                    Ok(GradeCount {
                        grade: grade
                            .map(|g| SewerGrade::from_number(g).ok_or_else(|| conversion(0, BadGrade(g))))
                            .transpose()?,
                        spans: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        km: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(counts)
        })
        .await
    }

    async fn materials(&self, run: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |c| distinct_values(c, run, RunColumn::SewerMaterial)).await
    }

    async fn districts(&self, run: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |c| distinct_values(c, run, RunColumn::SewerDistrict)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(as_of: &str) -> SewerRun {
        let w = |shape, scale| WeibullParams { shape, scale };
        SewerRun {
            id: 0,
            as_of: as_of.parse().unwrap(),
            horizon_years: 5,
            created: Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
            curves: vec![
                SewerCurve {
                    material: "RC".into(),
                    material_ja: "鉄筋コンクリート管".into(),
                    inspections: 812,
                    any: w(3.1, 42.0),
                    ii: w(3.0, 61.5),
                    i: w(2.9, 88.0),
                    fallback: None,
                },
                SewerCurve {
                    material: "VP".into(),
                    material_ja: "硬質塩化ビニル管".into(),
                    inspections: 9,
                    any: w(3.0, 70.0),
                    ii: w(3.0, 95.0),
                    i: w(3.0, 130.0),
                    fallback: Some("shape shared with the other materials (too few)".into()),
                },
            ],
        }
    }

    fn row(priority: u32, id: &str, material: &str, grade: Option<SewerGrade>, district: &str) -> SewerRow {
        SewerRow {
            priority,
            span_id: AssetId::new(id).unwrap(),
            material: material.into(),
            material_ja: if material == "RC" { "鉄筋コンクリート管" } else { "硬質塩化ビニル管" }.into(),
            diameter_mm: if priority % 3 == 0 { None } else { Some(250.0) },
            length_m: 30.0 + f64::from(priority),
            install_year: Some(1970 + i32::try_from(priority).unwrap()),
            district: Some(district.into()),
            latest_grade: grade,
            latest_date: grade.map(|_| "2021-06-30".parse().unwrap()),
            p_grade_ii: 1.0 / f64::from(priority),
            p_grade_i: 0.5 / f64::from(priority),
            explanation: format!("緊急度 on 2021-06-30; span {id}"),
        }
    }

    fn rows() -> Vec<SewerRow> {
        vec![
            row(1, "S-1", "RC", Some(SewerGrade::I), "北処理区"),
            row(2, "S-2", "RC", Some(SewerGrade::II), "北処理区"),
            row(3, "S-3", "VP", Some(SewerGrade::III), "南処理区"),
            row(4, "S-4", "VP", Some(SewerGrade::Sound), "南処理区"),
            row(5, "S-5", "VP", None, "北処理区"),
        ]
    }

    #[tokio::test]
    async fn a_stored_run_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let store = SqliteSewer::open(&path).await.unwrap();
        assert_eq!(store.latest_run().await.unwrap(), None);
        let id = store.save_run(&run("2026-11-27"), &rows()).await.unwrap();
        // Read back through a fresh connection, as the dashboard does after the demo saved it.
        let store = SqliteSewer::open(&path).await.unwrap();
        let back = store.latest_run().await.unwrap().unwrap();
        assert_eq!(back, SewerRun { id, ..run("2026-11-27") });
        let page = store.rows(id, &SewerQuery { limit: 100, ..Default::default() }).await.unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(page.rows, rows());
        assert_eq!(store.materials(id).await.unwrap(), ["RC", "VP"]);
        assert_eq!(store.districts(id).await.unwrap(), ["北処理区", "南処理区"]);
    }

    #[tokio::test]
    async fn filters_sorting_and_counts() {
        let store = SqliteSewer::in_memory();
        let id = store.save_run(&run("2026-11-27"), &rows()).await.unwrap();
        let ids = |p: SewerPage| p.rows.into_iter().map(|r| r.span_id.to_string()).collect::<Vec<_>>();
        let q = |filter: SewerFilter| SewerQuery { filter, limit: 10, ..Default::default() };
        let grade = |g| SewerFilter { grade: Some(g), ..Default::default() };
        assert_eq!(ids(store.rows(id, &q(grade(GradeFilter::Grade(SewerGrade::II)))).await.unwrap()), ["S-2"]);
        assert_eq!(ids(store.rows(id, &q(grade(GradeFilter::Uninspected))).await.unwrap()), ["S-5"]);
        let vp_north =
            SewerFilter { material: Some("VP".into()), district: Some("北処理区".into()), ..Default::default() };
        assert_eq!(ids(store.rows(id, &q(vp_north)).await.unwrap()), ["S-5"]);
        // By grade, most severe first; the uninspected span last either way.
        let by_grade = SewerQuery { sort: SewerSort::Grade, descending: true, limit: 10, ..Default::default() };
        assert_eq!(ids(store.rows(id, &by_grade).await.unwrap()), ["S-1", "S-2", "S-3", "S-4", "S-5"]);
        let by_grade = SewerQuery { descending: false, ..by_grade };
        assert_eq!(ids(store.rows(id, &by_grade).await.unwrap()), ["S-4", "S-3", "S-2", "S-1", "S-5"]);
        // Paging.
        let page2 = SewerQuery { offset: 2, limit: 2, ..Default::default() };
        let p = store.rows(id, &page2).await.unwrap();
        assert_eq!(p.total, 5);
        assert_eq!(ids(p), ["S-3", "S-4"]);
        // Injection text is just a value that matches nothing.
        let evil = SewerFilter { material: Some("RC' OR '1'='1".into()), ..Default::default() };
        assert_eq!(store.rows(id, &q(evil)).await.unwrap().total, 0);

        let counts = store.grade_counts(id, &SewerFilter::default()).await.unwrap();
        let grades: Vec<Option<SewerGrade>> = counts.iter().map(|c| c.grade).collect();
        assert_eq!(
            grades,
            [Some(SewerGrade::I), Some(SewerGrade::II), Some(SewerGrade::III), Some(SewerGrade::Sound), None]
        );
        assert!(counts.iter().all(|c| c.spans == 1));
        assert!((counts[0].km - 0.031).abs() < 1e-12, "{counts:?}");
    }

    #[tokio::test]
    async fn a_bad_row_is_refused_by_name_and_loses_no_stored_run() {
        let store = SqliteSewer::in_memory();
        let first = store.save_run(&run("2025-04-01"), &rows()).await.unwrap();
        for (field, spoil) in [
            ("p_grade_ii", &(|r: &mut SewerRow| r.p_grade_ii = f64::NAN) as &dyn Fn(&mut SewerRow)),
            ("length_m", &|r: &mut SewerRow| r.length_m = 0.0),
            ("p_grade_i", &|r: &mut SewerRow| r.p_grade_i = 1.5),
            ("latest_date", &|r: &mut SewerRow| r.latest_date = None),
        ] {
            let mut bad = rows();
            spoil(&mut bad[3]);
            let e = store.save_run(&run("2026-11-27"), &bad).await.unwrap_err().to_string();
            assert!(e.contains("S-4") && e.contains(field), "{e}");
        }
        // A repeated span id passes the checks but fails in SQLite: the transaction is undone.
        let mut twice = rows();
        twice[4].span_id = AssetId::new("S-1").unwrap();
        store.save_run(&run("2026-11-27"), &twice).await.unwrap_err();
        let latest = store.latest_run().await.unwrap().unwrap();
        assert_eq!(latest.id, first);
        assert_eq!(latest.as_of.to_string(), "2025-04-01");
        let page = store.rows(first, &SewerQuery { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(page.rows, rows());
    }

    #[test]
    fn weibull_median_halves_the_survival() {
        let w = WeibullParams { shape: 2.7, scale: 60.0 };
        assert!((w.survival(w.median()) - 0.5).abs() < 1e-12);
        assert_eq!(w.survival(0.0), 1.0);
    }
}
