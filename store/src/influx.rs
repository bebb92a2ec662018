//! The InfluxDB store, over the v1 HTTP API.
//!
//! Writes are line protocol posted to `/write?precision=ms`; reads are InfluxQL on `/query`;
//! health is `/ping`. That is the one API every InfluxDB generation serves (1.x natively, 2.x
//! and 3.x through their v1 compatibility endpoints) and the one the CI's real server speaks.
//! The queries keep to the InfluxQL subset InfluxDB 3 supports (no SLIMIT, no meta-queries).
//!
//! Schema: measurement `reading`, tags `device` and `point`, fields `value` (float), `text`
//! (string) and `quality` (string). Quality is a field, not a tag, so that rewriting a reading
//! with another quality overwrites it instead of creating a second series.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use model::{DeviceId, PointName, Quality, Reading, Value};
use serde::Deserialize;
use tracing::{debug, info};

use crate::lineproto::{self, MEASUREMENT};
use crate::tls::ExtraRoots;
use crate::{RangeQuery, ReadingSink, ReadingSource, Store, StoreError, Window, WindowQuery, validate};

const BACKEND: &str = "InfluxDB";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Credentials for InfluxDB: a token (2.x, 3.x, 1.8+) or a user and password (1.x with auth).
#[derive(Debug, Clone, Default)]
pub struct InfluxAuth {
    token: Option<Secret>,
    basic: Option<(String, Secret)>,
}

/// Reads `NAME` or, failing that, the file named by `NAME_FILE` (trailing newline dropped).
fn secret_from_env(name: &str) -> Result<Option<Secret>, StoreError> {
    if let Ok(v) = std::env::var(name) {
        return Ok(Some(Secret(v)));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Secret { path, source })?;
            Ok(Some(Secret(text.trim_end_matches(['\n', '\r']).to_owned())))
        }
        Err(_) => Ok(None),
    }
}

impl InfluxAuth {
    /// No credentials (InfluxDB 1.x with auth off).
    pub fn none() -> Self {
        Self::default()
    }

    /// A token sent as `Authorization: Token …`.
    pub fn token(token: impl Into<String>) -> Self {
        InfluxAuth { token: Some(Secret(token.into())), basic: None }
    }

    /// Credentials from the environment: `MIZUMORI_INFLUX_TOKEN` (or `…_TOKEN_FILE`), and for a
    /// user named in the URL, `MIZUMORI_INFLUX_PASSWORD` (or `…_PASSWORD_FILE`).
    pub fn from_env(username: Option<String>) -> Result<Self, StoreError> {
        let token = secret_from_env("MIZUMORI_INFLUX_TOKEN")?;
        let basic = match username {
            Some(user) => {
                let password = secret_from_env("MIZUMORI_INFLUX_PASSWORD")?.ok_or_else(|| StoreError::BadUrl {
                    url: format!("influx://{user}@…"),
                    reason: "a user is named but MIZUMORI_INFLUX_PASSWORD (or _FILE) is not set".to_owned(),
                })?;
                Some((user, password))
            }
            None => None,
        };
        Ok(InfluxAuth { token, basic })
    }
}

/// A store on an InfluxDB server.
#[derive(Debug)]
pub struct InfluxStore {
    http: reqwest::Client,
    base: String,
    database: String,
    auth: InfluxAuth,
}

#[derive(Debug, Deserialize)]
struct QueryResponse {
    #[serde(default)]
    results: Vec<StatementResult>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

impl Series {
    fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

fn unavailable(e: reqwest::Error) -> StoreError {
    // reqwest's text says only "error sending request"; a certificate problem is the one
    // thing the operator must see to fix it.
    let message = match crate::tls::tls_reason(&e) {
        Some(tls) => format!("{e}: TLS: {tls}"),
        None => e.to_string(),
    };
    StoreError::Unavailable { backend: BACKEND.to_owned(), message }
}

fn protocol(message: impl Into<String>) -> StoreError {
    StoreError::Protocol { backend: BACKEND.to_owned(), message: message.into() }
}

impl InfluxStore {
    /// Connects to `base` (e.g. `http://127.0.0.1:8086`), checks `/ping`, and creates the
    /// database where the server allows it (1.x; 2.x and 3.x create it otherwise).
    pub async fn connect(base: &str, database: &str, auth: InfluxAuth) -> Result<Self, StoreError> {
        Self::connect_with_roots(base, database, auth, &ExtraRoots::none()).await
    }

    /// [`InfluxStore::connect`] to an `http://` or `https://` base; https trusts the system's
    /// roots and `roots` (a private CA's `ca_file`).
    pub async fn connect_with_roots(
        base: &str,
        database: &str,
        auth: InfluxAuth,
        roots: &ExtraRoots,
    ) -> Result<Self, StoreError> {
        lineproto::check_name("database name", database)?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(StoreError::BadUrl { url: base.to_owned(), reason: "expected http:// or https://".to_owned() });
        }
        let http = crate::tls::http_client_for(base, roots)
            .map_err(|e| protocol(format!("cannot set up TLS: {e}")))?
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| protocol(format!("cannot build HTTP client: {e}")))?;
        let store =
            InfluxStore { http, base: base.trim_end_matches('/').to_owned(), database: database.to_owned(), auth };
        store.health().await?;
        match store.post_query(&format!("CREATE DATABASE \"{database}\"")).await {
            Ok(_) => debug!(database, "database ready"),
            Err(e) => {
                info!(database, error = %e, "could not create the database; assuming it exists")
            }
        }
        Ok(store)
    }

    fn with_auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = match &self.auth.token {
            Some(token) => req.header(reqwest::header::AUTHORIZATION, format!("Token {}", token.0)),
            None => req,
        };
        match &self.auth.basic {
            Some((user, password)) => req.basic_auth(user, Some(&password.0)),
            None => req,
        }
    }

    async fn read_response(resp: reqwest::Response) -> Result<QueryResponse, StoreError> {
        let status = resp.status();
        let body = resp.text().await.map_err(unavailable)?;
        if !status.is_success() {
            return Err(StoreError::Rejected { backend: BACKEND.to_owned(), status: status.as_u16(), message: body });
        }
        let parsed: QueryResponse =
            serde_json::from_str(&body).map_err(|e| protocol(format!("bad JSON from /query ({e}): {body:.200}")))?;
        if let Some(error) = parsed.error.as_ref().or_else(|| parsed.results.iter().find_map(|r| r.error.as_ref())) {
            return Err(StoreError::Rejected {
                backend: BACKEND.to_owned(),
                status: status.as_u16(),
                message: error.clone(),
            });
        }
        Ok(parsed)
    }

    /// Runs a statement that changes the server (CREATE DATABASE); needs POST.
    async fn post_query(&self, q: &str) -> Result<QueryResponse, StoreError> {
        let req = self.http.post(format!("{}/query", self.base)).query(&[("q", q)]);
        let resp = self.with_auth(req).send().await.map_err(unavailable)?;
        Self::read_response(resp).await
    }

    /// Runs a SELECT with millisecond epoch timestamps in the answer.
    async fn select(&self, q: &str) -> Result<Vec<Series>, StoreError> {
        debug!(query = q, "InfluxQL");
        let req = self.http.get(format!("{}/query", self.base)).query(&[
            ("db", self.database.as_str()),
            ("epoch", "ms"),
            ("q", q),
        ]);
        let resp = self.with_auth(req).send().await.map_err(unavailable)?;
        let parsed = Self::read_response(resp).await?;
        Ok(parsed.results.into_iter().flat_map(|r| r.series).collect())
    }

    /// Drops the database; for tests that made their own.
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        self.post_query(&format!("DROP DATABASE \"{}\"", self.database)).await.map(|_| ())
    }
}

/// `time >= …ms AND time < …ms`, the range condition every query shares.
fn time_range(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!("time >= {}ms AND time < {}ms", from.timestamp_millis(), to.timestamp_millis())
}

/// `"device" = '…' AND "point" = '…'`. The names are safe by construction ([`DeviceId`],
/// [`PointName`]); checking again here keeps this function safe on its own.
fn series_filter(device: &DeviceId, point: &PointName) -> Result<String, StoreError> {
    lineproto::check_name("device", device.as_str())?;
    lineproto::check_name("point", point.as_str())?;
    Ok(format!("\"device\" = '{device}' AND \"point\" = '{point}'"))
}

fn time_of(v: &serde_json::Value) -> Result<DateTime<Utc>, StoreError> {
    v.as_i64().and_then(|ms| Utc.timestamp_millis_opt(ms).single()).ok_or_else(|| protocol(format!("bad time {v}")))
}

fn f64_of(v: &serde_json::Value, what: &str) -> Result<f64, StoreError> {
    v.as_f64().ok_or_else(|| protocol(format!("bad {what} {v}")))
}

/// Turns rows with `time`, `value`, `text` and `quality` columns into readings.
fn readings_of(series: &Series, device: &DeviceId, point: &PointName) -> Result<Vec<Reading>, StoreError> {
    let time_col = series.column("time").ok_or_else(|| protocol("no time column"))?;
    let value_col = series.column("value");
    let text_col = series.column("text");
    let quality_col = series.column("quality");
    let cell =
        |row: &[serde_json::Value], col: Option<usize>| col.and_then(|c| row.get(c)).cloned().unwrap_or_default();
    series
        .values
        .iter()
        .map(|row| {
            let time = time_of(&cell(row, Some(time_col)))?;
            let value = match (cell(row, value_col), cell(row, text_col)) {
                (serde_json::Value::Number(n), _) => Value::Number(n.as_f64().ok_or_else(|| protocol("bad value"))?),
                (_, serde_json::Value::String(t)) => Value::Text(t),
                _ => Value::Absent,
            };
            let quality = match cell(row, quality_col) {
                serde_json::Value::String(q) => q.parse::<Quality>().map_err(|e| protocol(e.to_string()))?,
                other => return Err(protocol(format!("bad quality {other}"))),
            };
            Ok(Reading { device: device.clone(), point: point.clone(), time, value, quality })
        })
        .collect()
}

fn key_of(series: &Series) -> Result<(DeviceId, PointName), StoreError> {
    let tag = |k: &str| series.tags.get(k).cloned().ok_or_else(|| protocol(format!("series without tag {k}")));
    let device = DeviceId::new(tag("device")?).map_err(|e| protocol(e.to_string()))?;
    let point = PointName::new(tag("point")?).map_err(|e| protocol(e.to_string()))?;
    Ok((device, point))
}

#[async_trait]
impl ReadingSink for InfluxStore {
    async fn write(&self, batch: &[Reading]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        validate::batch(batch)?;
        // Encode everything before sending anything: a refused reading must not leave the
        // readings before it written.
        let mut body = String::with_capacity(batch.len() * 80);
        for r in batch {
            lineproto::push_reading(&mut body, r)?;
        }
        let req = self
            .http
            .post(format!("{}/write", self.base))
            .query(&[("db", self.database.as_str()), ("precision", "ms")])
            .body(body);
        let resp = self.with_auth(req).send().await.map_err(unavailable)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let message = resp.text().await.unwrap_or_default();
        Err(StoreError::Rejected { backend: BACKEND.to_owned(), status: status.as_u16(), message })
    }
}

#[async_trait]
impl ReadingSource for InfluxStore {
    async fn latest(&self) -> Result<Vec<Reading>, StoreError> {
        let q = format!("SELECT * FROM \"{MEASUREMENT}\" GROUP BY \"device\", \"point\" ORDER BY time DESC LIMIT 1");
        let mut out = Vec::new();
        for series in self.select(&q).await? {
            let (device, point) = key_of(&series)?;
            out.extend(readings_of(&series, &device, &point)?);
        }
        out.sort_by(|a, b| (&a.device, &a.point).cmp(&(&b.device, &b.point)));
        Ok(out)
    }

    async fn aggregate(&self, query: &WindowQuery) -> Result<Vec<Window>, StoreError> {
        if query.window_ms <= 0 {
            return Err(protocol("window must be positive"));
        }
        let q = format!(
            "SELECT mean(\"value\"), min(\"value\"), max(\"value\"), last(\"value\"), count(\"value\") FROM \"{MEASUREMENT}\" \
             WHERE {} AND \"quality\" = 'good' AND {} GROUP BY time({}ms) fill(none)",
            series_filter(&query.device, &query.point)?,
            time_range(query.from, query.to),
            query.window_ms
        );
        let mut out = Vec::new();
        for series in self.select(&q).await? {
            let col = |name: &str| series.column(name).ok_or_else(|| protocol(format!("no {name} column")));
            let (t, mean, min, max, last, count) =
                (col("time")?, col("mean")?, col("min")?, col("max")?, col("last")?, col("count")?);
            for row in &series.values {
                let get = |i: usize| row.get(i).cloned().unwrap_or_default();
                out.push(Window {
                    start: time_of(&get(t))?,
                    mean: f64_of(&get(mean), "mean")?,
                    min: f64_of(&get(min), "min")?,
                    max: f64_of(&get(max), "max")?,
                    last: f64_of(&get(last), "last")?,
                    count: get(count).as_u64().ok_or_else(|| protocol("bad count"))?,
                });
            }
        }
        Ok(out)
    }

    async fn range(&self, query: &RangeQuery) -> Result<Vec<Reading>, StoreError> {
        let q = format!(
            "SELECT \"value\", \"text\", \"quality\" FROM \"{MEASUREMENT}\" WHERE {} AND {} ORDER BY time ASC LIMIT {}",
            series_filter(&query.device, &query.point)?,
            time_range(query.from, query.to),
            query.limit
        );
        let mut out = Vec::new();
        for series in self.select(&q).await? {
            out.extend(readings_of(&series, &query.device, &query.point)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for InfluxStore {
    fn describe(&self) -> String {
        format!("influx {}/{}", self.base, self.database)
    }

    async fn health(&self) -> Result<(), StoreError> {
        let resp = self.with_auth(self.http.get(format!("{}/ping", self.base))).send().await.map_err(unavailable)?;
        match resp.status().as_u16() {
            200 | 204 => Ok(()),
            status => Err(StoreError::Rejected {
                backend: BACKEND.to_owned(),
                status,
                message: resp.text().await.unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = InfluxAuth {
            token: Some(Secret("tok-123".into())),
            basic: Some(("admin".into(), Secret("pw-456".into()))),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("tok-123") && !shown.contains("pw-456"), "{shown}");
        assert!(shown.contains("admin"));
    }
}
