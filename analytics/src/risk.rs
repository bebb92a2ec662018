//! Risk ranking as of a date: choose the LoF model by walk-forward validation on the years
//! before the date, predict each main's breaks in the year from it, grade LoF and CoF on a
//! 5 × 5 matrix, and order the mains so that renewing from the top, length by length,
//! removes the most expected breaks per km.

use std::io::Write as _;
use std::path::Path;

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::AnalyticsError;
use crate::asset::{Pipe, RoadClass};
use crate::features::{FeatureBuilder, years_before};
use crate::metrics::{captures, descending};
use crate::models::{LofModel, ModelKind, ModelParams};
use crate::progress;

/// Settings of a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankParams {
    /// Pipe-years of training: the years before the as-of date.
    pub train_years: u32,
    /// Years before the as-of date on which the candidate models are compared.
    pub validation_years: u32,
    /// Use this model instead of choosing by validation.
    pub model: Option<ModelKind>,
    pub models: ModelParams,
    /// At most about this many pipe-years in a training panel: pipe-years without a break
    /// are sampled beyond it (`FeatureBuilder::sampled_panel`), so that a large register
    /// trains in bounded time.
    pub max_train_rows: usize,
    /// At most about this many mains are scored in each validation year: a random sample of
    /// the mains in service (`FeatureBuilder::sample_as_of`) when there are more. Capture@k %
    /// on 200,000 mains estimates the whole register's to well under the half point that
    /// decides a tie (ARCHITECTURE.md, Decisions), and scoring a million mains with four
    /// models was most of a large ranking's time.
    pub validation_sample: usize,
    /// Above this many mains in service the random forest is left out of validation (and so
    /// never chosen), with the reason in the selection's text: on the 1,000,000-main
    /// benchmark it scored 23–25 % capture@5 % against 29–31 % for the others
    /// (BENCHMARKS.md), and its trees were a tenth of the ranking's CPU time.
    pub forest_max_mains: usize,
}

impl Default for RankParams {
    fn default() -> Self {
        RankParams {
            train_years: 10,
            validation_years: 2,
            model: None,
            models: ModelParams::default(),
            max_train_rows: 50_000,
            validation_sample: 200_000,
            forest_max_mains: 200_000,
        }
    }
}

impl RankParams {
    /// The training panel for a model used on `as_of`.
    pub fn panel(&self, builder: &FeatureBuilder, as_of: NaiveDate) -> crate::features::Panel {
        builder.sampled_panel(as_of, self.train_years, self.max_train_rows)
    }
}

/// How one candidate did in validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationScore {
    pub kind: ModelKind,
    /// Mean capture@1 % and @5 % of length over the validation years.
    pub capture_1: f64,
    pub capture_5: f64,
}

/// Which model was used and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub chosen: ModelKind,
    /// Empty when the model was forced.
    pub validation: Vec<ValidationScore>,
    /// Families left out of validation, and why.
    pub left_out: Vec<(ModelKind, String)>,
}

impl Selection {
    pub fn describe(&self) -> String {
        if self.validation.is_empty() {
            return format!("model {} (chosen by the user)", self.chosen);
        }
        let scores: Vec<String> = self
            .validation
            .iter()
            .map(|v| format!("{} {:.1}%@5 {:.1}%@1", v.kind, v.capture_5 * 100.0, v.capture_1 * 100.0))
            .collect();
        let mut text =
            format!("model {} (best mean capture@5% of length in validation: {})", self.chosen, scores.join(", "));
        for (kind, why) in &self.left_out {
            text.push_str(&format!("; {kind} not validated: {why}"));
        }
        text
    }
}

/// Chooses the model family with the best mean capture@5 % of length over the
/// `validation_years` years before `as_of`, each fitted only on the years before it. Ties go
/// to the simpler model (the order of [`ModelKind::ALL`]); capture@1 % breaks near-ties.
pub fn select_model(
    builder: &FeatureBuilder,
    as_of: NaiveDate,
    params: &RankParams,
) -> Result<Selection, AnalyticsError> {
    if let Some(kind) = params.model {
        return Ok(Selection { chosen: kind, validation: Vec::new(), left_out: Vec::new() });
    }
    let in_service = builder.register().pipes().iter().filter(|p| p.in_service(as_of)).count();
    let mut left_out = Vec::new();
    let kinds: Vec<ModelKind> = ModelKind::ALL
        .into_iter()
        .filter(|&kind| {
            let skip = kind == ModelKind::RandomForest && in_service > params.forest_max_mains;
            if skip {
                left_out.push((
                    kind,
                    format!(
                        "{in_service} mains in service, above {}; it never won on registers this large",
                        params.forest_max_mains
                    ),
                ));
            }
            !skip
        })
        .collect();
    let mut sums: Vec<ValidationScore> =
        kinds.iter().map(|&kind| ValidationScore { kind, capture_1: 0.0, capture_5: 0.0 }).collect();
    let years = params.validation_years.max(1);
    let bar = progress::bar(u64::from(years) * kinds.len() as u64, "validating models");
    // The validation years are independent: one thread each (the machines this runs on have
    // a few cores, and a ranking waits on nothing else).
    let per_year: Vec<Result<Option<Captures>, AnalyticsError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..=years)
            .map(|v| {
                let bar = bar.clone();
                let kinds = &kinds;
                scope.spawn(move || validate_year(builder, years_before(as_of, v), params, kinds, &bar))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a validation thread does not panic")).collect()
    });
    bar.finish_and_clear();
    let mut used = 0;
    for year in per_year {
        if let Some(captures) = year? {
            used += 1;
            for (s, (c1, c5)) in sums.iter_mut().zip(captures) {
                s.capture_1 += c1;
                s.capture_5 += c5;
            }
        }
    }
    if used == 0 {
        return Err(AnalyticsError::NotEnoughHistory {
            as_of,
            why: format!("no breaks in the {years} validation years before it"),
        });
    }
    for s in &mut sums {
        s.capture_1 /= f64::from(used);
        s.capture_5 /= f64::from(used);
    }
    let best = sums
        .iter()
        .fold(&sums[0], |best, s| {
            // Half a percentage point is noise at a few dozen breaks a year.
            let better = s.capture_5 > best.capture_5 + 0.005
                || ((s.capture_5 - best.capture_5).abs() <= 0.005 && s.capture_1 > best.capture_1 + 0.005);
            if better { s } else { best }
        })
        .kind;
    Ok(Selection { chosen: best, validation: sums, left_out })
}

/// (capture@1 %, capture@5 %) of each family validated, in their order.
type Captures = Vec<(f64, f64)>;

/// Capture@1 % and @5 % of each of `kinds` on the year from `at`, trained on the years before
/// it; `None` when that year or its training panel has no break.
fn validate_year(
    builder: &FeatureBuilder,
    at: NaiveDate,
    params: &RankParams,
    kinds: &[ModelKind],
    bar: &indicatif::ProgressBar,
) -> Result<Option<Captures>, AnalyticsError> {
    let panel = params.panel(builder, at);
    let rows = builder.sample_as_of(at, params.validation_sample);
    let actual = builder.next_year_breaks(&rows, at);
    if panel.total_breaks() == 0.0 || actual.iter().sum::<f64>() == 0.0 {
        bar.inc(kinds.len() as u64);
        return Ok(None);
    }
    let lengths: Vec<f64> = rows.iter().map(|r| r.length_m).collect();
    let mut out = Vec::new();
    for &kind in kinds {
        let model = params.models.fit(kind, &panel)?;
        let score = scores(&*model, &rows);
        let [c1, c5] = captures(&score, &lengths, &actual, [0.01, 0.05]);
        out.push((c1, c5));
        bar.inc(1);
    }
    Ok(Some(out))
}

/// Expected breaks per km in the year: the ranking score.
pub fn scores(model: &dyn LofModel, rows: &[crate::features::Features]) -> Vec<f64> {
    expected_breaks(model, rows).into_iter().zip(rows).map(|(e, r)| e / r.length_km()).collect()
}

/// [`LofModel::expected_breaks`] over the cores, in blocks: every family scores each main on
/// its own, so the blocks' results joined in order are the same numbers.
pub fn expected_breaks(model: &dyn LofModel, rows: &[crate::features::Features]) -> Vec<f64> {
    rows.par_chunks(SCORE_BLOCK).flat_map_iter(|block| model.expected_breaks(block)).collect()
}

/// Mains per block of parallel work: large enough that a block's overhead is nothing, small
/// enough that two cores share a million mains evenly.
const SCORE_BLOCK: usize = 16_384;

/// One ranked main.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedPipe {
    pub pipe: usize,
    /// Expected breaks per km in the year from the as-of date.
    pub score: f64,
    pub expected_breaks: f64,
    /// P(at least one break in the year).
    pub probability: f64,
    pub lof_grade: u8,
    pub cof_grade: u8,
    pub risk_grade: RiskGrade,
    pub explanation: String,
}

/// A ranking of the mains in service on a date.
#[derive(Debug, Clone)]
pub struct Ranking {
    pub as_of: NaiveDate,
    pub selection: Selection,
    pub rows: Vec<RankedPipe>,
}

/// Ranks the mains in service on `as_of`, with breaks before it only.
pub fn rank(builder: &FeatureBuilder, as_of: NaiveDate, params: &RankParams) -> Result<Ranking, AnalyticsError> {
    let rows = builder.as_of(as_of);
    if rows.is_empty() {
        return Err(AnalyticsError::NoPipesInService { as_of });
    }
    let selection = select_model(builder, as_of, params)?;
    let panel = params.panel(builder, as_of);
    let model = params.models.fit(selection.chosen, &panel)?;
    let expected = expected_breaks(&*model, &rows);
    let score: Vec<f64> = expected.iter().zip(&rows).map(|(e, r)| e / r.length_km()).collect();
    let order = descending(&score);
    let total_m: f64 = rows.iter().map(|r| r.length_m).sum();
    // LoF grade by the share of network length ranked above each main: the top 1 % of
    // length is grade 5, as the capture@k% metric walks the same list.
    let mut walked = 0.0;
    let lof: Vec<u8> = order
        .iter()
        .map(|&i| {
            let share = walked / total_m;
            walked += rows[i].length_m;
            match share {
                s if s < 0.01 => 5,
                s if s < 0.05 => 4,
                s if s < 0.15 => 3,
                s if s < 0.40 => 2,
                _ => 1,
            }
        })
        .collect();
    let bar = progress::bar(order.len() as u64, "explaining mains");
    let model = &*model;
    let ranked_pipe = |(&i, &lof): (&usize, &u8)| {
        let r = &rows[i];
        let cof = cof_grade(&builder.register().pipes()[r.pipe]);
        RankedPipe {
            pipe: r.pipe,
            score: score[i],
            expected_breaks: expected[i],
            probability: 1.0 - (-expected[i]).exp(),
            lof_grade: lof,
            cof_grade: cof,
            risk_grade: RiskGrade::of(lof, cof),
            explanation: format!("{}: {}", model.kind(), model.explain(r, expected[i])),
        }
    };
    // Explanations are text for every main (a few seconds of CPU for a million): over the
    // cores, in order.
    let ranked: Vec<RankedPipe> = order
        .par_iter()
        .zip(&lof[..])
        .map(|pair| {
            bar.inc(1);
            ranked_pipe(pair)
        })
        .collect();
    bar.finish_and_clear();
    Ok(Ranking { as_of, selection, rows: ranked })
}

/// Consequence-of-failure grade 1–5: from the diameter (a bigger main feeds more customers
/// and floods more road), raised to the utility's criticality (0–10 → 0–5) when given, one up
/// under an emergency transport road (緊急輸送道路).
pub fn cof_grade(pipe: &Pipe) -> u8 {
    let by_diameter = match pipe.diameter_mm {
        Some(d) if d >= 500.0 => 5,
        Some(d) if d >= 300.0 => 4,
        Some(d) if d >= 200.0 => 3,
        Some(d) if d >= 100.0 => 2,
        Some(_) => 1,
        None => 2,
    };
    let by_criticality = pipe.criticality.map_or(0, |c| (c / 2.0).ceil() as u8);
    let road = u8::from(pipe.road_class == Some(RoadClass::Emergency));
    (by_diameter.max(by_criticality) + road).clamp(1, 5)
}

/// The cell of the 5 × 5 LoF × CoF matrix, by the product of the grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskGrade {
    Negligible,
    Low,
    Medium,
    High,
    Extreme,
}

impl RiskGrade {
    pub fn of(lof: u8, cof: u8) -> RiskGrade {
        match lof * cof {
            0..=2 => RiskGrade::Negligible,
            3..=4 => RiskGrade::Low,
            5..=9 => RiskGrade::Medium,
            10..=14 => RiskGrade::High,
            _ => RiskGrade::Extreme,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RiskGrade::Negligible => "negligible",
            RiskGrade::Low => "low",
            RiskGrade::Medium => "medium",
            RiskGrade::High => "high",
            RiskGrade::Extreme => "extreme",
        }
    }
}

/// Writes the ranking: the contract columns first, then what an engineer wants beside them.
pub fn write_ranking_csv(path: &Path, ranking: &Ranking, builder: &FeatureBuilder) -> Result<(), AnalyticsError> {
    let err = |source| AnalyticsError::Write { path: path.to_owned(), source };
    let io = |e: std::io::Error| err(e.into());
    // A 1 MiB buffer: with the default 8 KiB a million rows of about 130 bytes are 16,000 writes.
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(io)?);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "asset_id",
        "score",
        "expected_breaks",
        "probability",
        "lof_grade",
        "cof_grade",
        "risk_grade",
        "explanation",
        "material",
        "diameter_mm",
        "length_m",
        "installed",
        "prior_breaks",
        "district",
        "zone_mean_bar",
        "zone_max_bar",
        "zone_transients_per_day",
    ])
    .map_err(err)?;
    file.write_all(&w.into_inner().map_err(|e| io(e.into_error()))?).map_err(io)?;
    // Rows are formatted into text over the cores, a block at a time, and written in order:
    // formatting numbers was most of the writing's time.
    for blocks in ranking.rows.chunks(SCORE_BLOCK * 4) {
        let texts: Vec<Vec<u8>> = blocks
            .par_chunks(SCORE_BLOCK)
            .map(|block| ranking_rows_csv(block, ranking.as_of, builder))
            .collect::<Result<_, csv::Error>>()
            .map_err(err)?;
        for text in texts {
            file.write_all(&text).map_err(io)?;
        }
    }
    file.flush().map_err(io)?;
    Ok(())
}

/// CSV text of ranked rows (no header), as [`write_ranking_csv`] writes them.
fn ranking_rows_csv(rows: &[RankedPipe], as_of: NaiveDate, builder: &FeatureBuilder) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::with_capacity(rows.len() * 160));
    // One text buffer reused for every number, rather than a `String` per field: a million
    // rows would otherwise allocate ten million times.
    let mut text = String::new();
    let mut field = |w: &mut csv::Writer<Vec<u8>>, args: std::fmt::Arguments| {
        use std::fmt::Write as _;
        text.clear();
        text.write_fmt(args).expect("writing to a String cannot fail");
        w.write_field(&text)
    };
    for r in rows {
        let p = &builder.register().pipes()[r.pipe];
        let prior = builder.history().before(r.pipe, as_of).len();
        w.write_field(p.id.as_str())?;
        field(&mut w, format_args!("{:.6}", r.score))?;
        field(&mut w, format_args!("{:.6}", r.expected_breaks))?;
        field(&mut w, format_args!("{:.6}", r.probability))?;
        field(&mut w, format_args!("{}", r.lof_grade))?;
        field(&mut w, format_args!("{}", r.cof_grade))?;
        w.write_field(r.risk_grade.name())?;
        w.write_field(&r.explanation)?;
        w.write_field(p.material.code())?;
        match p.diameter_mm {
            Some(d) => field(&mut w, format_args!("{d}"))?,
            None => w.write_field("")?,
        }
        field(&mut w, format_args!("{}", p.length_m))?;
        match p.installed {
            Some(d) => field(&mut w, format_args!("{d}"))?,
            None => w.write_field("")?,
        }
        field(&mut w, format_args!("{prior}"))?;
        w.write_field(p.pressure_zone.as_deref().unwrap_or_default())?;
        match builder.pressure_of(r.pipe) {
            Some(z) => {
                field(&mut w, format_args!("{:.3}", z.mean_bar))?;
                field(&mut w, format_args!("{:.3}", z.max_bar))?;
                field(&mut w, format_args!("{:.2}", z.transients_per_day))?;
            }
            None => {
                for _ in 0..3 {
                    w.write_field("")?;
                }
            }
        }
        w.write_record(None::<&[u8]>)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_register_validates_on_a_sample_and_without_the_forest() {
        use crate::features::History;
        let city = crate::synth::generate(&crate::synth::SynthParams { network_km: 150.0, ..Default::default() });
        let history = History::new(&city.register, &city.breaks);
        let builder = FeatureBuilder::new(&city.register, &history);
        let as_of = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let all = builder.as_of(as_of);
        // The sample is about the size asked for, a subset in register order, and the same
        // every time.
        let sample = builder.sample_as_of(as_of, all.len() / 4);
        assert!((all.len() / 5..all.len() * 3 / 10).contains(&sample.len()), "{} of {}", sample.len(), all.len());
        assert!(sample.windows(2).all(|w| w[0].pipe < w[1].pipe));
        assert!(sample.iter().all(|r| all.iter().any(|a| a == r)));
        assert_eq!(sample, builder.sample_as_of(as_of, all.len() / 4));
        assert_eq!(builder.sample_as_of(as_of, all.len()), all, "small enough: every main");

        // "Large" here is anything above 100 mains: the forest is left out, and says why.
        let params = RankParams { forest_max_mains: 100, validation_sample: all.len() / 2, ..RankParams::default() };
        let selection = select_model(&builder, as_of, &params).unwrap();
        let kinds: Vec<ModelKind> = selection.validation.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, [ModelKind::CohortRate, ModelKind::Poisson, ModelKind::Logistic]);
        assert_ne!(selection.chosen, ModelKind::RandomForest);
        assert!(selection.describe().contains("random-forest not validated"), "{}", selection.describe());
        let full = select_model(&builder, as_of, &RankParams::default()).unwrap();
        assert_eq!(full.validation.len(), 4, "a register this small validates every family");
        assert!(full.left_out.is_empty());
    }

    #[test]
    fn risk_matrix_corners() {
        assert_eq!(RiskGrade::of(1, 1), RiskGrade::Negligible);
        assert_eq!(RiskGrade::of(1, 5), RiskGrade::Medium);
        assert_eq!(RiskGrade::of(5, 1), RiskGrade::Medium);
        assert_eq!(RiskGrade::of(3, 4), RiskGrade::High);
        assert_eq!(RiskGrade::of(5, 5), RiskGrade::Extreme);
    }

    #[test]
    fn cof_grows_with_diameter_criticality_and_road() {
        let mut p = crate::synth::generate(&crate::synth::SynthParams { network_km: 1.0, ..Default::default() })
            .register
            .pipes()[0]
            .clone();
        p.road_class = None;
        p.criticality = None;
        p.diameter_mm = Some(75.0);
        assert_eq!(cof_grade(&p), 1);
        p.diameter_mm = Some(300.0);
        assert_eq!(cof_grade(&p), 4);
        p.road_class = Some(RoadClass::Emergency);
        assert_eq!(cof_grade(&p), 5);
        p.road_class = None;
        p.diameter_mm = Some(75.0);
        p.criticality = Some(7.0);
        assert_eq!(cof_grade(&p), 4);
    }
}
