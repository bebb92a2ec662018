//! Walk-forward backtest: for each test year, rank with what was known on 1 January of it and
//! score the ranking on that year's breaks, next to the baselines "rank by age" and "rank by
//! prior breaks" in the same run.

use crate::AnalyticsError;
use crate::features::FeatureBuilder;
use crate::metrics::{auc, captures, gain_curve};
use crate::models::ModelKind;
use crate::peer::{PeerScores, jan1};
use crate::progress;
use crate::risk::{RankParams, scores, select_model};

/// The k of capture@k % of network length that the backtest reports.
pub const CAPTURE_AT: [f64; 3] = [0.01, 0.05, 0.10];

/// Points of a cumulative-gain curve after its start: one per percent of network length.
pub const GAIN_POINTS: usize = 100;

/// One ranker in one test year.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestRow {
    pub year: i32,
    /// `mizumori` (the model chosen by validation), a model family, `age` or `prior-breaks`.
    pub ranker: String,
    /// For `mizumori`: the family it chose that year.
    pub detail: String,
    pub mains: usize,
    pub breaks: f64,
    /// capture@1, @5, @10 % of length.
    pub capture: [f64; 3],
    pub auc: Option<f64>,
    /// Breaks caught at 0, 1 … 100 % of length ([`gain_curve`] with [`GAIN_POINTS`]).
    pub gain: Vec<f64>,
}

/// Runs the backtest over `years` (test years, each from 1 January).
pub fn backtest(
    builder: &FeatureBuilder,
    years: std::ops::RangeInclusive<i32>,
    params: &RankParams,
) -> Result<Vec<BacktestRow>, AnalyticsError> {
    let mut out = Vec::new();
    let bar = progress::bar((years.end() - years.start() + 1).max(0) as u64, "backtest years");
    for year in years {
        let as_of = jan1(year)?;
        let rows = builder.as_of(as_of);
        let actual = builder.next_year_breaks(&rows, as_of);
        let lengths: Vec<f64> = rows.iter().map(|r| r.length_m).collect();
        let breaks: f64 = actual.iter().sum();
        let mut push = |ranker: &str, detail: String, score: &[f64]| {
            out.push(BacktestRow {
                year,
                ranker: ranker.to_owned(),
                detail,
                mains: rows.len(),
                breaks,
                capture: captures(score, &lengths, &actual, CAPTURE_AT),
                auc: auc(score, &actual),
                gain: gain_curve(score, &lengths, &actual, GAIN_POINTS),
            });
        };
        let selection = select_model(builder, as_of, params)?;
        let panel = params.panel(builder, as_of);
        let mut family_scores = Vec::new();
        for kind in ModelKind::ALL {
            let model = params.models.fit(kind, &panel)?;
            family_scores.push((kind, scores(&*model, &rows)));
        }
        let chosen = &family_scores.iter().find(|(k, _)| *k == selection.chosen).expect("every family was fitted").1;
        push("mizumori", selection.chosen.to_string(), chosen);
        for (kind, score) in &family_scores {
            push(kind.name(), String::new(), score);
        }
        let age: Vec<f64> = rows.iter().map(|r| r.age_years).collect();
        push("age", String::new(), &age);
        let prior: Vec<f64> = rows.iter().map(|r| f64::from(r.prior_breaks) / r.length_km()).collect();
        push("prior-breaks", String::new(), &prior);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Scores an outside ranker's `peer` scores in the test `years` exactly as [`backtest`]
/// scores Mizumori's: same mains in service, same labels, same metrics. Every main in service
/// must have a score; a missing one is an error naming the year and the main.
pub fn peer_rows(
    builder: &FeatureBuilder,
    years: std::ops::RangeInclusive<i32>,
    peer: &PeerScores,
) -> Result<Vec<BacktestRow>, AnalyticsError> {
    let mut out = Vec::new();
    for year in years {
        let as_of = jan1(year)?;
        let rows = builder.as_of(as_of);
        let actual = builder.next_year_breaks(&rows, as_of);
        let lengths: Vec<f64> = rows.iter().map(|r| r.length_m).collect();
        let score = rows
            .iter()
            .map(|r| {
                peer.get(year, r.pipe).ok_or_else(|| AnalyticsError::PeerMissing {
                    peer: peer.name.clone(),
                    year,
                    asset: builder.register().pipes()[r.pipe].id.to_string(),
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        out.push(BacktestRow {
            year,
            ranker: peer.name.clone(),
            detail: String::new(),
            mains: rows.len(),
            breaks: actual.iter().sum(),
            capture: captures(&score, &lengths, &actual, CAPTURE_AT),
            auc: auc(&score, &actual),
            gain: gain_curve(&score, &lengths, &actual, GAIN_POINTS),
        });
    }
    Ok(out)
}

/// Mean of each ranker over the years, in the order rankers first appear.
pub fn means(rows: &[BacktestRow]) -> Vec<(String, [f64; 3], Option<f64>)> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.ranker.as_str()) {
            names.push(&r.ranker);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let mine: Vec<_> = rows.iter().filter(|r| r.ranker == name).collect();
            let n = mine.len() as f64;
            let capture = [0, 1, 2].map(|k| mine.iter().map(|r| r.capture[k]).sum::<f64>() / n);
            let aucs: Vec<f64> = mine.iter().filter_map(|r| r.auc).collect();
            let auc = (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64);
            (name.to_owned(), capture, auc)
        })
        .collect()
}

/// The cumulative-gain curve of each ranker over the test years pooled, in the order rankers
/// first appear: (share of network length, share of breaks caught), both 0–1, from (0, 0)
/// to (1, 1). Pooled means the breaks caught at each share summed over the years, over all
/// the years' breaks, so a year with more breaks weighs more. The model families that
/// Mizumori chooses between are left out (`mizumori` is the one chosen); `age`,
/// `prior-breaks` and peers are kept. A ranker with no break in its years is left out.
pub fn pooled_gain(rows: &[BacktestRow]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<f64>, f64)> = Vec::new();
    for r in rows.iter().filter(|r| ModelKind::parse(&r.ranker).is_none()) {
        let at = match out.iter().position(|(name, _, _)| *name == r.ranker) {
            Some(at) => at,
            None => {
                out.push((r.ranker.clone(), vec![0.0; r.gain.len()], 0.0));
                out.len() - 1
            }
        };
        let (_, caught, breaks) = &mut out[at];
        caught.iter_mut().zip(&r.gain).for_each(|(c, g)| *c += g);
        *breaks += r.breaks;
    }
    out.into_iter()
        .filter(|(_, _, breaks)| *breaks > 0.0)
        .map(|(name, caught, breaks)| {
            let last = (caught.len() - 1).max(1) as f64;
            let curve = caught.iter().enumerate().map(|(k, c)| (k as f64 / last, c / breaks)).collect();
            (name, curve)
        })
        .collect()
}

/// The backtest as a table for a terminal or a Markdown file.
pub fn table(rows: &[BacktestRow]) -> String {
    let mut s = String::from(
        "| year | ranker | breaks | capture@1% | capture@5% | capture@10% | AUC |\n|---|---|---|---|---|---|---|\n",
    );
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    let auc = |v: Option<f64>| v.map_or("-".to_owned(), |a| format!("{a:.3}"));
    for r in rows {
        let name = if r.detail.is_empty() { r.ranker.clone() } else { format!("{} ({})", r.ranker, r.detail) };
        s.push_str(&format!(
            "| {} | {name} | {} | {} | {} | {} | {} |\n",
            r.year,
            r.breaks,
            pct(r.capture[0]),
            pct(r.capture[1]),
            pct(r.capture[2]),
            auc(r.auc)
        ));
    }
    for (name, c, a) in means(rows) {
        s.push_str(&format!("| mean | {name} | | {} | {} | {} | {} |\n", pct(c[0]), pct(c[1]), pct(c[2]), auc(a)));
    }
    s
}
