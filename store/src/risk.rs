//! Risk rankings: a ranking run (as-of date, the model chosen, the backtest figures that
//! tell how far to trust it) and one row per main, in the embedded SQLite file.
//!
//! Analytics computes rankings and knows nothing of tables; the dashboard reads them through
//! [`RiskStore`] with a [`RiskQuery`] whose sort key is an enum and whose filters are bound
//! parameters, so no request text ever becomes SQL. This module does not rank anything.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use model::AssetId;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

use crate::StoreError;
use crate::sqlite_file::{RunColumn, SqliteFile, distinct_values};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS risk_run (
    id          INTEGER PRIMARY KEY,
    as_of       TEXT NOT NULL,
    model       TEXT NOT NULL,
    selection   TEXT NOT NULL,
    test_years  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_backtest (
    run        INTEGER NOT NULL REFERENCES risk_run(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    ranker     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    capture_1  REAL NOT NULL,
    capture_5  REAL NOT NULL,
    capture_10 REAL NOT NULL,
    auc        REAL,
    PRIMARY KEY (run, ranker)
);
CREATE TABLE IF NOT EXISTS risk_pipe (
    run             INTEGER NOT NULL REFERENCES risk_run(id) ON DELETE CASCADE,
    rank            INTEGER NOT NULL,
    asset_id        TEXT NOT NULL,
    material        TEXT NOT NULL,
    material_ja     TEXT NOT NULL,
    diameter_mm     REAL,
    length_m        REAL NOT NULL,
    install_year    INTEGER,
    district        TEXT,
    prior_breaks    INTEGER NOT NULL,
    expected_breaks REAL NOT NULL,
    probability     REAL NOT NULL,
    score           REAL NOT NULL,
    lof_grade       INTEGER NOT NULL,
    cof_grade       INTEGER NOT NULL,
    risk_grade      INTEGER NOT NULL,
    explanation     TEXT NOT NULL,
    x               REAL,
    y               REAL,
    PRIMARY KEY (run, asset_id)
);
CREATE INDEX IF NOT EXISTS risk_pipe_rank ON risk_pipe(run, rank);
";

/// The cell class of the 5 × 5 LoF × CoF matrix, stored as 1 (negligible) to 5 (extreme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Negligible,
    Low,
    Medium,
    High,
    Extreme,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 5] =
        [RiskLevel::Negligible, RiskLevel::Low, RiskLevel::Medium, RiskLevel::High, RiskLevel::Extreme];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Negligible => "negligible",
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Extreme => "extreme",
        }
    }

    /// 1 (negligible) to 5 (extreme): the stored form, so grades sort as numbers.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_number(n: u8) -> Option<RiskLevel> {
        RiskLevel::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a risk grade name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown risk grade {0:?}; expected negligible, low, medium, high or extreme")]
pub struct UnknownRiskLevel(pub String);

impl FromStr for RiskLevel {
    type Err = UnknownRiskLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RiskLevel::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRiskLevel(s.to_owned()))
    }
}

/// How one ranker did in the backtest, averaged over the test years.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestFigure {
    /// `mizumori` (the model chosen each year), a model family, `age` or `prior-breaks`.
    pub ranker: String,
    pub detail: String,
    /// Mean capture of next-year breaks in the top 1, 5 and 10 % of network length.
    pub capture: [f64; 3],
    pub auc: Option<f64>,
}

/// One ranking: when, with which model, and how that model did in the backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskRun {
    /// Set by the store when saved; ignored by [`RiskStore::save_run`].
    pub id: i64,
    pub as_of: NaiveDate,
    /// The model family used for the ranking.
    pub model: String,
    /// Why it was chosen (the validation scores), for people.
    pub selection: String,
    /// The backtest's test years, e.g. `2023-2025`.
    pub test_years: String,
    pub created: DateTime<Utc>,
    pub backtest: Vec<BacktestFigure>,
}

/// One ranked main.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskRow {
    /// 1 for the main to renew first.
    pub rank: u32,
    pub asset_id: AssetId,
    /// Material code (`CI`, `DI-K`, …) and its Japanese name.
    pub material: String,
    pub material_ja: String,
    pub diameter_mm: Option<f64>,
    pub length_m: f64,
    pub install_year: Option<i32>,
    pub district: Option<String>,
    pub prior_breaks: u32,
    pub expected_breaks: f64,
    pub probability: f64,
    /// Expected breaks per km in the year: the order of the ranking.
    pub score: f64,
    pub lof_grade: u8,
    pub cof_grade: u8,
    pub risk_grade: RiskLevel,
    pub explanation: String,
    /// Map coordinates of the main's midpoint, where the register has geometry.
    pub x: Option<f64>,
    pub y: Option<f64>,
}

/// The column a risk table is sorted by. An enum, so a sort key from a URL is either one of
/// these or refused before any SQL is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RiskSort {
    #[default]
    Rank,
    AssetId,
    Material,
    Diameter,
    Length,
    InstallYear,
    PriorBreaks,
    ExpectedBreaks,
    Probability,
    Risk,
}

impl RiskSort {
    pub const ALL: [RiskSort; 10] = [
        RiskSort::Rank,
        RiskSort::AssetId,
        RiskSort::Material,
        RiskSort::Diameter,
        RiskSort::Length,
        RiskSort::InstallYear,
        RiskSort::PriorBreaks,
        RiskSort::ExpectedBreaks,
        RiskSort::Probability,
        RiskSort::Risk,
    ];

    /// The name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskSort::Rank => "rank",
            RiskSort::AssetId => "asset_id",
            RiskSort::Material => "material",
            RiskSort::Diameter => "diameter",
            RiskSort::Length => "length",
            RiskSort::InstallYear => "install_year",
            RiskSort::PriorBreaks => "prior_breaks",
            RiskSort::ExpectedBreaks => "expected_breaks",
            RiskSort::Probability => "probability",
            RiskSort::Risk => "risk",
        }
    }

    pub fn parse(s: &str) -> Option<RiskSort> {
        RiskSort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The ORDER BY expression: fixed text chosen by the enum, never from the request.
    fn column(self) -> &'static str {
        match self {
            RiskSort::Rank => "rank",
            RiskSort::AssetId => "asset_id",
            RiskSort::Material => "material",
            RiskSort::Diameter => "diameter_mm",
            RiskSort::Length => "length_m",
            RiskSort::InstallYear => "install_year",
            RiskSort::PriorBreaks => "prior_breaks",
            RiskSort::ExpectedBreaks => "expected_breaks",
            RiskSort::Probability => "probability",
            RiskSort::Risk => "risk_grade",
        }
    }
}

/// Which mains: every field narrows, `None` leaves it open.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RiskFilter {
    /// A material code, compared as a bound parameter.
    pub material: Option<String>,
    pub diameter_min_mm: Option<f64>,
    pub diameter_max_mm: Option<f64>,
    pub risk_grade: Option<RiskLevel>,
    pub district: Option<String>,
    /// One cell of the matrix: the LoF and CoF grades.
    pub lof_grade: Option<u8>,
    pub cof_grade: Option<u8>,
}

/// A page of a filtered, sorted risk table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RiskQuery {
    pub filter: RiskFilter,
    pub sort: RiskSort,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

/// One page of rows and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskPage {
    pub total: u64,
    pub rows: Vec<RiskRow>,
}

/// One cell of the LoF × CoF matrix: how many mains and how many km.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixCell {
    pub lof_grade: u8,
    pub cof_grade: u8,
    /// The grade of the cell (the same for every main in it).
    pub risk_grade: RiskLevel,
    pub mains: u64,
    pub km: f64,
}

/// The register of a run in numbers, for the overview's KPIs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisterSummary {
    pub mains: u64,
    pub km: f64,
    /// km of mains laid `years` or more years before the reference year.
    pub km_older_than: f64,
    pub years: i32,
    /// km of mains laid in the year before the reference year (the renewal rate's numerator,
    /// as far as a register of mains in service can tell it).
    pub km_laid_last_year: f64,
}

/// Ranking runs and their rows, by role.
#[async_trait]
pub trait RiskStore: Send + Sync {
    /// Saves a run and its rows in one transaction (all or nothing); returns the run's id.
    async fn save_run(&self, run: &RiskRun, rows: &[RiskRow]) -> Result<i64, StoreError>;

    /// The newest run, with its backtest figures.
    async fn latest_run(&self) -> Result<Option<RiskRun>, StoreError>;

    /// A page of a run's rows.
    async fn rows(&self, run: i64, query: &RiskQuery) -> Result<RiskPage, StoreError>;

    /// One main of a run.
    async fn row(&self, run: i64, asset: &AssetId) -> Result<Option<RiskRow>, StoreError>;

    /// The non-empty cells of the LoF × CoF matrix of the rows that pass `filter`.
    async fn matrix(&self, run: i64, filter: &RiskFilter) -> Result<Vec<MatrixCell>, StoreError>;

    /// The material codes of a run, sorted, for a filter's choices.
    async fn materials(&self, run: i64) -> Result<Vec<String>, StoreError>;

    /// The districts of a run, sorted.
    async fn districts(&self, run: i64) -> Result<Vec<String>, StoreError>;

    /// Mains, km, and km laid at least `years` years before `year`.
    async fn summary(&self, run: i64, year: i32, years: i32) -> Result<RegisterSummary, StoreError>;
}

/// Risk runs in a SQLite file (the embedded store's own file in the demo).
#[derive(Debug, Clone)]
pub struct SqliteRisk {
    inner: Arc<SqliteFile>,
}

const ROW_COLUMNS: &str = "rank, asset_id, material, material_ja, diameter_mm, length_m, install_year, district, \
     prior_breaks, expected_breaks, probability, score, lof_grade, cof_grade, risk_grade, explanation, x, y";

fn conversion(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

fn row_from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<RiskRow> {
    let grade: u8 = r.get(14)?;
    Ok(RiskRow {
        rank: r.get(0)?,
        asset_id: AssetId::new(r.get::<_, String>(1)?).map_err(|e| conversion(1, e))?,
        material: r.get(2)?,
        material_ja: r.get(3)?,
        diameter_mm: r.get(4)?,
        length_m: r.get(5)?,
        install_year: r.get(6)?,
        district: r.get(7)?,
        prior_breaks: r.get(8)?,
        expected_breaks: r.get(9)?,
        probability: r.get(10)?,
        score: r.get(11)?,
        lof_grade: r.get(12)?,
        cof_grade: r.get(13)?,
        risk_grade: RiskLevel::from_number(grade).ok_or_else(|| conversion(14, UnknownRiskLevel(grade.to_string())))?,
        explanation: r.get(15)?,
        x: r.get(16)?,
        y: r.get(17)?,
    })
}

/// The WHERE clause of a filter (after `run = ?1`) and its bound values. Only placeholders
/// are added to the text; every value travels as a parameter.
fn where_clause(run: i64, f: &RiskFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = String::from("run = ?");
    let mut values = vec![V::Integer(run)];
    if let Some(m) = &f.material {
        sql.push_str(" AND material = ?");
        values.push(V::Text(m.clone()));
    }
    if let Some(d) = f.diameter_min_mm {
        sql.push_str(" AND diameter_mm >= ?");
        values.push(V::Real(d));
    }
    if let Some(d) = f.diameter_max_mm {
        sql.push_str(" AND diameter_mm <= ?");
        values.push(V::Real(d));
    }
    if let Some(g) = f.risk_grade {
        sql.push_str(" AND risk_grade = ?");
        values.push(V::Integer(i64::from(g.number())));
    }
    if let Some(d) = &f.district {
        sql.push_str(" AND district = ?");
        values.push(V::Text(d.clone()));
    }
    if let Some(g) = f.lof_grade {
        sql.push_str(" AND lof_grade = ?");
        values.push(V::Integer(i64::from(g)));
    }
    if let Some(g) = f.cof_grade {
        sql.push_str(" AND cof_grade = ?");
        values.push(V::Integer(i64::from(g)));
    }
    (sql, values)
}

impl SqliteRisk {
    /// Opens (creating if needed) the risk tables in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteRisk { inner: SqliteFile::open(path, SCHEMA).await? })
    }

    /// No runs, in memory: the dashboard starts with this until it is given a file, so its
    /// risk pages say "no ranking yet" rather than fail.
    pub fn in_memory() -> Self {
        SqliteRisk { inner: SqliteFile::in_memory(SCHEMA) }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.call(f).await
    }
}

/// A COUNT(*) column: SQLite integers are i64, and a count is never negative.
fn count(r: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(r.get::<_, i64>(col)?).unwrap_or(0))
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[async_trait]
impl RiskStore for SqliteRisk {
    async fn save_run(&self, run: &RiskRun, rows: &[RiskRow]) -> Result<i64, StoreError> {
        let run = run.clone();
        let rows = rows.to_vec();
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO risk_run (as_of, model, selection, test_years, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run.as_of.to_string(), run.model, run.selection, run.test_years, run.created.timestamp_millis()],
            )?;
            let id = tx.last_insert_rowid();
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO risk_backtest (run, position, ranker, detail, capture_1, capture_5, capture_10, auc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (i, b) in run.backtest.iter().enumerate() {
                    stmt.execute(params![id, i as i64, b.ranker, b.detail, b.capture[0], b.capture[1], b.capture[2], b.auc])?;
                }
                let mut stmt = tx.prepare(&format!(
                    "INSERT INTO risk_pipe (run, {ROW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                     ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
                ))?;
                for r in &rows {
                    stmt.execute(params![
                        id,
                        r.rank,
                        r.asset_id.as_str(),
                        r.material,
                        r.material_ja,
                        r.diameter_mm,
                        r.length_m,
                        r.install_year,
                        r.district,
                        r.prior_breaks,
                        r.expected_breaks,
                        r.probability,
                        r.score,
                        r.lof_grade,
                        r.cof_grade,
                        r.risk_grade.number(),
                        r.explanation,
                        r.x,
                        r.y
                    ])?;
                }
            }
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    async fn latest_run(&self) -> Result<Option<RiskRun>, StoreError> {
        self.call(|c| {
            let run = c
                .query_row(
                    "SELECT id, as_of, model, selection, test_years, created_ms FROM risk_run ORDER BY id DESC LIMIT 1",
                    [],
                    |r| {
                        let as_of: String = r.get(1)?;
                        Ok(RiskRun {
                            id: r.get(0)?,
                            as_of: NaiveDate::parse_from_str(&as_of, "%Y-%m-%d").map_err(|e| conversion(1, e))?,
                            model: r.get(2)?,
                            selection: r.get(3)?,
                            test_years: r.get(4)?,
                            created: millis_to_time(r.get(5)?),
                            backtest: Vec::new(),
                        })
                    },
                )
                .optional()?;
            let Some(mut run) = run else { return Ok(None) };
            let mut stmt = c.prepare(
                "SELECT ranker, detail, capture_1, capture_5, capture_10, auc FROM risk_backtest
                 WHERE run = ?1 ORDER BY position",
            )?;
            run.backtest = stmt
                .query_map(params![run.id], |r| {
                    Ok(BacktestFigure {
                        ranker: r.get(0)?,
                        detail: r.get(1)?,
                        capture: [r.get(2)?, r.get(3)?, r.get(4)?],
                        auc: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(run))
        })
        .await
    }

    async fn rows(&self, run: i64, query: &RiskQuery) -> Result<RiskPage, StoreError> {
        let q = query.clone();
        self.call(move |c| {
            let (cond, mut values) = where_clause(run, &q.filter);
            let total: u64 =
                c.query_row(&format!("SELECT COUNT(*) FROM risk_pipe WHERE {cond}"), params_from_iter(&values), |r| {
                    count(r, 0)
                })?;
            let dir = if q.descending { "DESC" } else { "ASC" };
            // Unknown values (no diameter, no install year) go last either way; rank breaks ties.
            let col = q.sort.column();
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM risk_pipe WHERE {cond} ORDER BY {col} IS NULL, {col} {dir}, rank LIMIT ? OFFSET ?"
            );
            values.push(rusqlite::types::Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
            values.push(rusqlite::types::Value::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(&values), row_from_sql)?.collect::<rusqlite::Result<_>>()?;
            Ok(RiskPage { total, rows })
        })
        .await
    }

    async fn row(&self, run: i64, asset: &AssetId) -> Result<Option<RiskRow>, StoreError> {
        let asset = asset.clone();
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {ROW_COLUMNS} FROM risk_pipe WHERE run = ?1 AND asset_id = ?2"),
                params![run, asset.as_str()],
                row_from_sql,
            )
            .optional()
        })
        .await
    }

    async fn matrix(&self, run: i64, filter: &RiskFilter) -> Result<Vec<MatrixCell>, StoreError> {
        let f = filter.clone();
        self.call(move |c| {
            let (cond, values) = where_clause(run, &f);
            let mut stmt = c.prepare(&format!(
                "SELECT lof_grade, cof_grade, MAX(risk_grade), COUNT(*), SUM(length_m) / 1000.0 FROM risk_pipe WHERE {cond}
                 GROUP BY lof_grade, cof_grade ORDER BY lof_grade, cof_grade"
            ))?;
            let cells = stmt
                .query_map(params_from_iter(&values), |r| {
                    let grade: u8 = r.get(2)?;
                    Ok(MatrixCell {
                        lof_grade: r.get(0)?,
                        cof_grade: r.get(1)?,
                        risk_grade: RiskLevel::from_number(grade)
                            .ok_or_else(|| conversion(2, UnknownRiskLevel(grade.to_string())))?,
                        mains: count(r, 3)?,
                        km: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(cells)
        })
        .await
    }

    async fn materials(&self, run: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |c| distinct_values(c, run, RunColumn::RiskMaterial)).await
    }

    async fn districts(&self, run: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |c| distinct_values(c, run, RunColumn::RiskDistrict)).await
    }

    async fn summary(&self, run: i64, year: i32, years: i32) -> Result<RegisterSummary, StoreError> {
        self.call(move |c| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(length_m), 0) / 1000.0,
                        COALESCE(SUM(CASE WHEN install_year <= ?2 THEN length_m ELSE 0 END), 0) / 1000.0,
                        COALESCE(SUM(CASE WHEN install_year = ?3 THEN length_m ELSE 0 END), 0) / 1000.0
                 FROM risk_pipe WHERE run = ?1",
                params![run, year - years, year - 1],
                |r| {
                    Ok(RegisterSummary {
                        mains: count(r, 0)?,
                        km: r.get(1)?,
                        km_older_than: r.get(2)?,
                        years,
                        km_laid_last_year: r.get(3)?,
                    })
                },
            )
        })
        .await
    }
}
