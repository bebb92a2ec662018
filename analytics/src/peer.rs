//! Comparing with outside rankers (e.g. scikit-learn) on the same pipe-year features.
//!
//! [`write_features_csv`] exports the pipe-year rows that Mizumori's own models see, and
//! [`read_peer_scores`] reads back the scores another tool gave each main in each test year.
//! The backtest then scores them with the same [`crate::metrics`] code as Mizumori's own
//! ranking, so the capture and AUC definitions (ties credited as a random order) cannot
//! drift between the two. This module does not train anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use thiserror::Error;

use crate::AnalyticsError;
use crate::features::FeatureBuilder;

/// The columns of the feature export, in order. `breaks` is the label: the main's breaks in
/// the year from 1 January of `year`; every other column is known on that day.
pub const FEATURE_COLUMNS: [&str; 12] = [
    "year",
    "asset_id",
    "material",
    "age_years",
    "age_known",
    "install_decade",
    "diameter_mm",
    "length_m",
    "prior_breaks",
    "breaks_last_5y",
    "years_since_last_break",
    "breaks",
];

/// Writes one row per main in service on 1 January of each year of `years`: its features as
/// of that day and its breaks in the year that follows. Unknown values are empty.
pub fn write_features_csv(
    path: &Path,
    builder: &FeatureBuilder,
    years: std::ops::RangeInclusive<i32>,
) -> Result<usize, AnalyticsError> {
    let err = |source| AnalyticsError::Write { path: path.to_owned(), source };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    w.write_record(FEATURE_COLUMNS).map_err(err)?;
    let mut written = 0;
    for year in years {
        let as_of = jan1(year)?;
        let rows = builder.as_of(as_of);
        let label = builder.next_year_breaks(&rows, as_of);
        for (r, breaks) in rows.iter().zip(label) {
            w.write_record([
                year.to_string(),
                builder.register().pipes()[r.pipe].id.to_string(),
                r.material.code().to_owned(),
                format!("{:.4}", r.age_years),
                u8::from(r.age_known).to_string(),
                r.decade.to_string(),
                r.diameter_mm.map(|d| d.to_string()).unwrap_or_default(),
                r.length_m.to_string(),
                r.prior_breaks.to_string(),
                r.breaks_last_5y.to_string(),
                r.years_since_last_break.map(|y| format!("{y:.4}")).unwrap_or_default(),
                breaks.to_string(),
            ])
            .map_err(err)?;
            written += 1;
        }
    }
    w.flush().map_err(|e| err(e.into()))?;
    Ok(written)
}

pub(crate) fn jan1(year: i32) -> Result<NaiveDate, AnalyticsError> {
    NaiveDate::from_ymd_opt(year, 1, 1).ok_or(AnalyticsError::InvalidParam {
        name: "year",
        value: year.to_string(),
        why: "not a year",
    })
}

/// A problem with a peer's score file, naming the file and line.
#[derive(Debug, Error)]
pub enum PeerError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: csv::Error },
    #[error("{}: the header must be year,asset_id,score (found {found})", path.display())]
    Header { path: PathBuf, found: String },
    #[error("{}:{line}: column {column}: {why}", path.display())]
    Field { path: PathBuf, line: u64, column: &'static str, why: String },
}

/// Scores another ranker gave: (test year, register position) → score, higher = riskier.
#[derive(Debug, Clone)]
pub struct PeerScores {
    pub name: String,
    scores: HashMap<(i32, usize), f64>,
}

impl PeerScores {
    pub fn get(&self, year: i32, pipe: usize) -> Option<f64> {
        self.scores.get(&(year, pipe)).copied()
    }
}

/// Reads a `year,asset_id,score` CSV. Every asset must be in `builder`'s register and every
/// score a finite number; a repeated (year, asset) is an error rather than a silent overwrite.
pub fn read_peer_scores(name: &str, path: &Path, builder: &FeatureBuilder) -> Result<PeerScores, PeerError> {
    let read = |source| PeerError::Read { path: path.to_owned(), source };
    let mut reader = csv::Reader::from_path(path).map_err(read)?;
    let header: Vec<String> = reader.headers().map_err(read)?.iter().map(str::to_owned).collect();
    if header != ["year", "asset_id", "score"] {
        return Err(PeerError::Header { path: path.to_owned(), found: header.join(",") });
    }
    let mut scores = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(read)?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |column, why: String| PeerError::Field { path: path.to_owned(), line, column, why };
        let year: i32 =
            record[0].trim().parse().map_err(|_| field("year", format!("{:?} is not a year", &record[0])))?;
        let id = &record[1];
        let pipe = model::AssetId::new(id.trim())
            .ok()
            .and_then(|id| builder.register().get(&id))
            .ok_or_else(|| field("asset_id", format!("{id:?} is not in the asset register")))?;
        let score: f64 = record[2]
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite())
            .ok_or_else(|| field("score", format!("{:?} is not a finite number", &record[2])))?;
        if scores.insert((year, pipe), score).is_some() {
            return Err(field("asset_id", format!("a second score for {id} in {year}")));
        }
    }
    Ok(PeerScores { name: name.to_owned(), scores })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::History;
    use crate::synth::{SynthParams, generate};

    #[test]
    fn exported_features_read_back_as_the_models_see_them_and_bad_scores_name_the_line() {
        let city = generate(&SynthParams { network_km: 20.0, ..SynthParams::default() });
        let history = History::new(&city.register, &city.breaks);
        let builder = FeatureBuilder::new(&city.register, &history);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.csv");
        let n = write_features_csv(&path, &builder, 2018..=2019).unwrap();
        let expected_rows = builder.as_of(jan1(2018).unwrap());
        assert_eq!(n, expected_rows.len() + builder.as_of(jan1(2019).unwrap()).len());
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), FEATURE_COLUMNS);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let labels = builder.next_year_breaks(&expected_rows, jan1(2018).unwrap());
        for ((row, f), label) in rows.iter().zip(&expected_rows).zip(&labels) {
            assert_eq!(&row[0], "2018");
            assert_eq!(&row[1], city.register.pipes()[f.pipe].id.as_str());
            assert_eq!(row[8].parse::<u32>().unwrap(), f.prior_breaks);
            assert_eq!(row[11].parse::<f64>().unwrap(), *label);
        }

        // A score file in the peer format reads back; a bad line is named.
        let scores = dir.path().join("scores.csv");
        let first = city.register.pipes()[0].id.as_str();
        std::fs::write(&scores, format!("year,asset_id,score\n2018,{first},0.5\n")).unwrap();
        let peer = read_peer_scores("p", &scores, &builder).unwrap();
        assert_eq!(peer.get(2018, 0), Some(0.5));
        assert_eq!(peer.get(2019, 0), None);
        std::fs::write(&scores, format!("year,asset_id,score\n2018,{first},0.5\n2018,{first},NaN\n")).unwrap();
        let e = read_peer_scores("p", &scores, &builder).unwrap_err().to_string();
        assert!(e.ends_with("scores.csv:3: column score: \"NaN\" is not a finite number"), "{e}");
        std::fs::write(&scores, "year,asset_id,score\n2018,NOPE,1\n").unwrap();
        let e = read_peer_scores("p", &scores, &builder).unwrap_err().to_string();
        assert!(e.contains(":2: column asset_id: \"NOPE\" is not in the asset register"), "{e}");
    }
}
