use std::path::PathBuf;

use thiserror::Error;

/// Errors of the analytics crate. Problems with single rows of an input file are not errors:
/// they are [`crate::import::Issue`]s, reported while the good rows are kept.
#[derive(Debug, Error)]
pub enum AnalyticsError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot read the header line: {source}", path.display())]
    Header { path: PathBuf, source: csv::Error },
    #[error(
        "{}: no column {column:?}, which the {profile} profile needs for {what} (the file has: {found})",
        path.display()
    )]
    MissingColumn { path: PathBuf, profile: &'static str, column: &'static str, what: &'static str, found: String },
    #[error("unknown profile {0:?}: use kitchener or mizumori")]
    UnknownProfile(String),
    #[error("unknown sewer profile {0:?}: use mizumori or ja")]
    UnknownSewerProfile(String),
    #[error("{}: {why}", path.display())]
    GeoJson { path: PathBuf, why: String },
    #[error("no pipe of the register is in service on {as_of}")]
    NoPipesInService { as_of: chrono::NaiveDate },
    #[error("not enough history to train a model before {as_of}: {why}")]
    NotEnoughHistory { as_of: chrono::NaiveDate, why: String },
    #[error("fitting the {model} model failed: {why}")]
    Fit { model: &'static str, why: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: csv::Error },
    #[error("{}: line {line}, column {column}: {why}", path.display())]
    Row { path: PathBuf, line: usize, column: String, why: String },
    #[error("{peer} has no score for main {asset} in {year}, which was in service on 1 January")]
    PeerMissing { peer: String, year: i32, asset: String },
    #[error(transparent)]
    Peer(#[from] crate::peer::PeerError),
    #[error("{}{}: {field}: {why}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Zones { path: PathBuf, line: Option<usize>, field: String, why: String },
    #[error("reading pressure series {series} from the store: {why}")]
    Readings { series: String, why: String },
    #[error("invalid parameter {name} = {value}: {why}")]
    InvalidParam { name: &'static str, value: String, why: &'static str },
}
