//! Deterioration curves of sewer spans by age and material, and the span ranking built on them.
//!
//! Each inspection of a span at age `a` tells which grade the span had reached by then: for
//! each threshold (≥ III, ≥ II, I) it is *current-status* (interval-censored) data — the
//! age at which the span crossed the threshold is either ≤ a (reached) or > a (not yet).
//! Per material and threshold we fit a Weibull distribution of that crossing age by maximum
//! likelihood: L = Π F(a)^reached · S(a)^(1−reached). Then
//!
//! - 健全率 (share still sound) at age a = S≥III(a);
//! - the share at 緊急度 I+II at age a = F≥II(a), and the target service life (目標耐用年数,
//!   MLIT guideline) is the age where it reaches 50 %, the median of the ≥ II distribution;
//! - an uninspected span of age A has P(≥ II within N years) = F≥II(A + N);
//! - a span last seen below II at age a₀ has P = 1 − S≥II(A + N) / S≥II(a₀) (it cannot have
//!   crossed before a₀); one seen at II or I stays there (no repair is recorded).
//!
//! Materials with too few crossings in the data use the curve pooled over all materials and
//! say so. Grades are assumed not to improve; rehabilitation is not modelled. No IO here but
//! the ranking CSV.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use crate::AnalyticsError;
use crate::sewer::{Grade, Inspection, SewerMaterial, SewerRegister};

/// A Weibull distribution of the age (years) at which a span crosses a grade threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weibull {
    pub shape: f64,
    pub scale: f64,
}

impl Weibull {
    /// P(crossed by age `t`).
    pub fn cdf(&self, t: f64) -> f64 {
        1.0 - self.survival(t)
    }

    /// P(not yet crossed at age `t`).
    pub fn survival(&self, t: f64) -> f64 {
        (-(t.max(0.0) / self.scale).powf(self.shape)).exp()
    }

    /// The age by which a share `p` of spans has crossed.
    pub fn quantile(&self, p: f64) -> f64 {
        self.scale * (-(1.0 - p).ln()).powf(1.0 / self.shape)
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }
}

/// Current-status observations grouped by age: (age in years, spans seen, spans that had
/// crossed). Grouping to 0.1 year keeps the fit's cost independent of the number of rows.
#[derive(Debug, Clone, Default)]
pub struct CurrentStatus {
    cells: BTreeMap<i64, (f64, f64)>,
}

impl CurrentStatus {
    pub fn add(&mut self, age: f64, crossed: bool) {
        let cell = self.cells.entry((age * 10.0).round() as i64).or_default();
        cell.0 += 1.0;
        cell.1 += f64::from(u8::from(crossed));
    }

    pub fn extend(&mut self, other: &CurrentStatus) {
        for (k, (n, c)) in &other.cells {
            let cell = self.cells.entry(*k).or_default();
            cell.0 += n;
            cell.1 += c;
        }
    }

    pub fn seen(&self) -> f64 {
        self.cells.values().map(|c| c.0).sum()
    }

    pub fn crossed(&self) -> f64 {
        self.cells.values().map(|c| c.1).sum()
    }

    fn log_likelihood(&self, w: &Weibull) -> f64 {
        self.cells
            .iter()
            .map(|(&k, &(n, c))| {
                let age = (k as f64 / 10.0).max(0.05);
                let h = (age / w.scale).powf(w.shape);
                // ln F = ln(1 − e^−h), computed without cancellation for small h.
                let ln_f = (-(-h).exp_m1()).max(f64::MIN_POSITIVE).ln();
                c * ln_f - (n - c) * h
            })
            .sum()
    }

    /// The maximum-likelihood Weibull, or why there is none: it needs at least `min_each`
    /// spans that had crossed and as many that had not, or the scale runs off to a bound.
    pub fn fit(&self, min_each: f64) -> Result<Weibull, String> {
        let (seen, crossed) = (self.seen(), self.crossed());
        if crossed < min_each || seen - crossed < min_each {
            return Err(format!("{crossed} of {seen} inspections had crossed; at least {min_each} of each are needed"));
        }
        // Start at shape 2 with the scale at the mean age of what was seen.
        let mean_age = self.cells.iter().map(|(&k, &(n, _))| k as f64 / 10.0 * n).sum::<f64>() / seen;
        let objective = |x: [f64; 2]| {
            let w = Weibull { shape: x[0].exp(), scale: x[1].exp() };
            -self.log_likelihood(&w)
        };
        let best = nelder_mead(objective, [2f64.ln(), mean_age.max(1.0).ln()], 0.3);
        let w = Weibull { shape: best[0].exp(), scale: best[1].exp() };
        if !(0.2..=20.0).contains(&w.shape) || !(1.0..=2000.0).contains(&w.scale) {
            return Err(format!("the fit ran off to shape {:.2}, scale {:.0} years", w.shape, w.scale));
        }
        Ok(w)
    }
}

impl CurrentStatus {
    /// The maximum-likelihood scale with the shape fixed: enough for a material with only a
    /// few crossings, whose shape alone the data cannot pin down.
    pub fn fit_scale(&self, shape: f64, min_each: f64) -> Result<Weibull, String> {
        let (seen, crossed) = (self.seen(), self.crossed());
        if crossed < min_each || seen - crossed < min_each {
            return Err(format!("{crossed} of {seen} inspections had crossed"));
        }
        // Golden-section search on the log scale between 1 and 2000 years.
        let f = |x: f64| -self.log_likelihood(&Weibull { shape, scale: x.exp() });
        let (mut a, mut b) = (0.0f64, 2000f64.ln());
        let r = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..100 {
            let (c, d) = (b - r * (b - a), a + r * (b - a));
            if f(c) < f(d) { b = d } else { a = c }
        }
        Ok(Weibull { shape, scale: ((a + b) / 2.0).exp() })
    }
}

/// Nelder–Mead minimisation in two dimensions (the log shape and log scale). Two parameters
/// and a smooth likelihood do not justify an optimisation crate.
fn nelder_mead(f: impl Fn([f64; 2]) -> f64, start: [f64; 2], step: f64) -> [f64; 2] {
    let mut simplex = [start, [start[0] + step, start[1]], [start[0], start[1] + step]];
    let mut values = simplex.map(&f);
    for _ in 0..2000 {
        let mut order = [0, 1, 2];
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let [best, mid, worst] = order;
        if (values[worst] - values[best]).abs() < 1e-10 * (1.0 + values[best].abs()) {
            break;
        }
        let centroid = [(simplex[best][0] + simplex[mid][0]) / 2.0, (simplex[best][1] + simplex[mid][1]) / 2.0];
        let along = |t: f64| {
            [centroid[0] + t * (simplex[worst][0] - centroid[0]), centroid[1] + t * (simplex[worst][1] - centroid[1])]
        };
        let reflected = along(-1.0);
        let fr = f(reflected);
        if fr < values[best] {
            let expanded = along(-2.0);
            let fe = f(expanded);
            (simplex[worst], values[worst]) = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < values[mid] {
            (simplex[worst], values[worst]) = (reflected, fr);
        } else {
            let contracted = if fr < values[worst] { along(-0.5) } else { along(0.5) };
            let fc = f(contracted);
            if fc < values[worst].min(fr) {
                (simplex[worst], values[worst]) = (contracted, fc);
            } else {
                for i in [mid, worst] {
                    simplex[i] = [
                        simplex[best][0] + 0.5 * (simplex[i][0] - simplex[best][0]),
                        simplex[best][1] + 0.5 * (simplex[i][1] - simplex[best][1]),
                    ];
                    values[i] = f(simplex[i]);
                }
            }
        }
    }
    let best = (0..3).min_by(|&a, &b| values[a].total_cmp(&values[b])).expect("three vertices");
    simplex[best]
}

/// The three thresholds a curve is fitted for.
const THRESHOLDS: [Grade; 3] = [Grade::III, Grade::II, Grade::I];

/// The fitted curves of one material.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterialCurve {
    /// Age at reaching 緊急度 III or worse (any deterioration).
    pub any: Weibull,
    /// Age at reaching 緊急度 II or worse.
    pub ii: Weibull,
    /// Age at reaching 緊急度 I.
    pub i: Weibull,
    /// Inspections the fit used.
    pub inspections: usize,
    /// `Some(how)` when the material's own data were too thin for its own two-parameter
    /// curves: how the curve was made instead, and why.
    pub fallback: Option<String>,
}

impl MaterialCurve {
    /// 健全率: the share of spans of age `age` still without deterioration.
    pub fn sound_share(&self, age: f64) -> f64 {
        self.any.survival(age)
    }

    /// The share at 緊急度 I or II at `age`.
    pub fn share_ii_or_worse(&self, age: f64) -> f64 {
        self.ii.cdf(age).min(self.any.cdf(age))
    }

    /// 目標耐用年数: the age at which 緊急度 I+II reaches 50 %.
    pub fn target_life(&self) -> f64 {
        self.ii.median()
    }

    fn by_threshold(&self, g: Grade) -> &Weibull {
        match g {
            Grade::I => &self.i,
            Grade::II => &self.ii,
            _ => &self.any,
        }
    }
}

/// Deterioration curves per material, fitted to inspections up to a date.
#[derive(Debug, Clone)]
pub struct DeteriorationModel {
    pub as_of: NaiveDate,
    pub pooled: MaterialCurve,
    pub curves: BTreeMap<SewerMaterial, MaterialCurve>,
}

/// Least crossings (and non-crossings) per threshold for a material's own curve.
pub const MIN_EACH: f64 = 10.0;
/// Least crossings (and non-crossings) per threshold to fit a material's scale alone.
pub const MIN_SCALE_ONLY: f64 = 3.0;

/// A span's age in years on `date`, from its install date or its material's median year.
fn age_on(register: &SewerRegister, pipe: usize, date: NaiveDate) -> Option<f64> {
    let p = &register.pipes[pipe];
    let installed = p
        .installed
        .or_else(|| register.median_install_year(p.material).and_then(|y| NaiveDate::from_ymd_opt(y, 7, 1)))?;
    Some((date - installed).num_days() as f64 / 365.25)
}

impl DeteriorationModel {
    /// Fits the curves to the inspections dated on or before `as_of`. Inspections of spans
    /// without a known install date are left out of the fit (their age would be a guess).
    pub fn fit(
        register: &SewerRegister,
        inspections: &[Inspection],
        as_of: NaiveDate,
    ) -> Result<DeteriorationModel, AnalyticsError> {
        let mut data: BTreeMap<SewerMaterial, [CurrentStatus; 3]> = BTreeMap::new();
        let mut counts: BTreeMap<SewerMaterial, usize> = BTreeMap::new();
        for ins in inspections.iter().filter(|i| i.date <= as_of) {
            let Some(i) = register.get(&ins.span) else { continue };
            let pipe = &register.pipes[i];
            let Some(installed) = pipe.installed else { continue };
            let age = (ins.date - installed).num_days() as f64 / 365.25;
            let cells = data.entry(pipe.material).or_default();
            for (cell, threshold) in cells.iter_mut().zip(THRESHOLDS) {
                cell.add(age, ins.grade >= threshold);
            }
            *counts.entry(pipe.material).or_default() += 1;
        }
        let mut all: [CurrentStatus; 3] = Default::default();
        for cells in data.values() {
            for (a, c) in all.iter_mut().zip(cells) {
                a.extend(c);
            }
        }
        let fit3 = |cells: &[CurrentStatus; 3]| -> Result<[Weibull; 3], String> {
            let mut out = [Weibull { shape: 1.0, scale: 1.0 }; 3];
            for ((o, c), g) in out.iter_mut().zip(cells).zip(THRESHOLDS) {
                *o = c.fit(MIN_EACH).map_err(|e| format!("緊急度 {} or worse: {e}", g.code()))?;
            }
            Ok(out)
        };
        let [any, ii, i] = fit3(&all).map_err(|why| AnalyticsError::Fit { model: "sewer deterioration", why })?;
        let n_all = counts.values().sum();
        let pooled = MaterialCurve { any, ii, i, inspections: n_all, fallback: None };
        // First each material on its own; a material too thin for that gets the median shape
        // of the others (per threshold) and only its scale fitted; one thinner still, the
        // pooled curve. Pooling outright would let the many old concrete and clay spans
        // speak for a young plastic pipe.
        let own: BTreeMap<SewerMaterial, Result<[Weibull; 3], String>> =
            data.iter().map(|(m, cells)| (*m, fit3(cells))).collect();
        let shared_shape = |k: usize| {
            let mut shapes: Vec<f64> = own.values().filter_map(|r| r.as_ref().ok()).map(|w| w[k].shape).collect();
            shapes.sort_by(f64::total_cmp);
            shapes.get(shapes.len() / 2).copied().unwrap_or([any, ii, i][k].shape)
        };
        let mut curves = BTreeMap::new();
        for (material, cells) in &data {
            let n = counts[material];
            let curve = match &own[material] {
                Ok([any, ii, i]) => MaterialCurve { any: *any, ii: *ii, i: *i, inspections: n, fallback: None },
                Err(why) => {
                    let scaled: Vec<Option<Weibull>> =
                        (0..3).map(|k| cells[k].fit_scale(shared_shape(k), MIN_SCALE_ONLY).ok()).collect();
                    let pooled_w = [pooled.any, pooled.ii, pooled.i];
                    // A threshold with too few crossings (often 緊急度 I) takes its scale from
                    // a fitted neighbour's, in the pooled curves' ratio.
                    let anchor = [1, 0, 2].into_iter().find(|&k| scaled[k].is_some());
                    match anchor {
                        Some(a) => {
                            let w: Vec<Weibull> = (0..3)
                                .map(|k| {
                                    scaled[k].unwrap_or_else(|| Weibull {
                                        shape: shared_shape(k),
                                        scale: scaled[a].expect("the anchor was fitted").scale * pooled_w[k].scale
                                            / pooled_w[a].scale,
                                    })
                                })
                                .collect();
                            MaterialCurve {
                                any: w[0],
                                ii: w[1],
                                i: w[2],
                                inspections: n,
                                fallback: Some(format!("shape shared with the other materials ({why})")),
                            }
                        }
                        None => MaterialCurve {
                            inspections: n,
                            fallback: Some(format!("pooled curve of all materials ({why})")),
                            ..pooled.clone()
                        },
                    }
                }
            };
            curves.insert(*material, curve);
        }
        Ok(DeteriorationModel { as_of, pooled, curves })
    }

    /// The curve for `material`: its own, or the pooled one.
    pub fn curve(&self, material: SewerMaterial) -> &MaterialCurve {
        self.curves.get(&material).unwrap_or(&self.pooled)
    }
}

/// One ranked span.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedSpan {
    pub pipe: usize,
    /// Age in years on the as-of date; `None` when neither the span nor its material has an
    /// install year.
    pub age: Option<f64>,
    pub latest: Option<(NaiveDate, Grade)>,
    /// P(at 緊急度 II or worse `horizon_years` after the as-of date).
    pub p_ii: f64,
    /// P(at 緊急度 I `horizon_years` after the as-of date).
    pub p_i: f64,
    /// 1 = act first.
    pub priority: usize,
    pub explanation: String,
}

/// The span ranking as of a date.
#[derive(Debug, Clone)]
pub struct SewerRanking {
    pub as_of: NaiveDate,
    pub horizon_years: u32,
    pub rows: Vec<RankedSpan>,
}

/// P(the span is at or past `threshold` at age `t`), given what the last inspection saw.
fn p_at(curve: &MaterialCurve, threshold: Grade, t: f64, latest: Option<(f64, Grade)>) -> f64 {
    let w = curve.by_threshold(threshold);
    match latest {
        Some((_, g)) if g >= threshold => 1.0,
        Some((a0, _)) => {
            let s0 = w.survival(a0);
            if s0 <= 0.0 { 1.0 } else { (1.0 - w.survival(t.max(a0)) / s0).clamp(0.0, 1.0) }
        }
        None => w.cdf(t),
    }
}

/// Ranks every span of the register as of `as_of`: spans last seen at 緊急度 I first, then by
/// the probability of 緊急度 I within `horizon_years`, then of II, then the longer span first.
/// Inspections after `as_of` are not used.
pub fn rank_spans(
    register: &SewerRegister,
    inspections: &[Inspection],
    model: &DeteriorationModel,
    as_of: NaiveDate,
    horizon_years: u32,
) -> SewerRanking {
    let mut latest: Vec<Option<(NaiveDate, Grade)>> = vec![None; register.pipes.len()];
    for ins in inspections.iter().filter(|i| i.date <= as_of) {
        if let Some(i) = register.get(&ins.span) {
            // The later inspection wins; on the same day the worse grade.
            if latest[i].is_none_or(|(d, g)| (ins.date, ins.grade) > (d, g)) {
                latest[i] = Some((ins.date, ins.grade));
            }
        }
    }
    let horizon = f64::from(horizon_years);
    let mut rows: Vec<RankedSpan> = register
        .pipes
        .iter()
        .enumerate()
        .map(|(i, pipe)| {
            let curve = model.curve(pipe.material);
            let age = age_on(register, i, as_of);
            let seen = latest[i].map(|(d, g)| (age_on(register, i, d).unwrap_or(0.0), g));
            let t = age.unwrap_or(0.0) + horizon;
            let p_ii = p_at(curve, Grade::II, t, seen);
            let p_i = p_at(curve, Grade::I, t, seen).min(p_ii);
            let source = match &curve.fallback {
                Some(how) if how.starts_with("pooled") => {
                    "pooled curve (too few inspections of this material)".to_owned()
                }
                Some(_) => format!(
                    "{} curve with a shared shape, target life {:.0} y",
                    pipe.material.code(),
                    curve.target_life()
                ),
                None => format!("{} curve, target life {:.0} y", pipe.material.code(), curve.target_life()),
            };
            let age_text = match (age, pipe.installed) {
                (Some(a), Some(_)) => format!("age {a:.0} y"),
                (Some(a), None) => format!("age {a:.0} y (install year unknown: material median)"),
                (None, _) => "age unknown".to_owned(),
            };
            let explanation = match latest[i] {
                Some((d, g)) if g >= Grade::II => format!("{} on {d}; {age_text}; {source}", g.name_ja()),
                Some((d, g)) => format!("{} on {d}, progression since by the {source}; {age_text}", g.name_ja()),
                None => format!("not inspected: {source}; {age_text}"),
            };
            RankedSpan { pipe: i, age, latest: latest[i], p_ii, p_i, priority: 0, explanation }
        })
        .collect();
    rows.sort_by(|a, b| {
        let first = |r: &RankedSpan| r.latest.is_some_and(|(_, g)| g == Grade::I);
        first(b)
            .cmp(&first(a))
            .then(b.p_i.total_cmp(&a.p_i))
            .then(b.p_ii.total_cmp(&a.p_ii))
            .then(register.pipes[b.pipe].length_m.total_cmp(&register.pipes[a.pipe].length_m))
            .then(a.pipe.cmp(&b.pipe))
    });
    for (n, r) in rows.iter_mut().enumerate() {
        r.priority = n + 1;
    }
    SewerRanking { as_of, horizon_years, rows }
}

/// Writes the ranking as CSV, highest priority first (docs/analytics.md, "Sewers").
pub fn write_sewer_ranking_csv(
    path: &Path,
    ranking: &SewerRanking,
    register: &SewerRegister,
) -> Result<(), AnalyticsError> {
    let err = |source| AnalyticsError::Write { path: path.to_owned(), source };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    let n = ranking.horizon_years;
    w.write_record([
        "span_id".to_owned(),
        "material".to_owned(),
        "diameter_mm".to_owned(),
        "length_m".to_owned(),
        "installed".to_owned(),
        "age".to_owned(),
        "district".to_owned(),
        "last_inspected".to_owned(),
        "latest_grade".to_owned(),
        format!("p_grade_ii_{n}y"),
        format!("p_grade_i_{n}y"),
        "priority".to_owned(),
        "explanation".to_owned(),
    ])
    .map_err(err)?;
    for r in &ranking.rows {
        let p = &register.pipes[r.pipe];
        let opt = |v: Option<String>| v.unwrap_or_default();
        w.write_record([
            p.id.to_string(),
            p.material.code().to_owned(),
            opt(p.diameter_mm.map(|d| d.to_string())),
            p.length_m.to_string(),
            opt(p.installed.map(|d| d.year().to_string())),
            opt(r.age.map(|a| format!("{a:.1}"))),
            opt(p.district.clone()),
            opt(r.latest.map(|(d, _)| d.to_string())),
            r.latest.map_or("uninspected", |(_, g)| g.code()).to_owned(),
            format!("{:.4}", r.p_ii),
            format!("{:.4}", r.p_i),
            r.priority.to_string(),
            r.explanation.clone(),
        ])
        .map_err(err)?;
    }
    w.flush().map_err(|e| err(csv::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_fit_recovers_a_weibull_from_current_status_data() {
        let truth = Weibull { shape: 3.0, scale: 55.0 };
        let mut rng = SmallRng::seed_from_u64(7);
        let mut data = CurrentStatus::default();
        for _ in 0..4000 {
            let crossing = truth.quantile(rng.random::<f64>());
            let age = rng.random_range(5.0..80.0);
            data.add(age, crossing <= age);
        }
        let w = data.fit(MIN_EACH).unwrap();
        assert!((w.shape - 3.0).abs() < 0.3, "{w:?}");
        assert!((w.scale - 55.0).abs() < 2.5, "{w:?}");
        assert!((w.median() - truth.median()).abs() < 2.0, "{w:?}");
    }

    #[test]
    fn too_few_crossings_is_no_fit() {
        let mut data = CurrentStatus::default();
        for age in 1..100 {
            data.add(f64::from(age) / 10.0, age == 99);
        }
        assert!(data.fit(MIN_EACH).unwrap_err().contains("1 of 99"));
    }

    #[test]
    fn weibull_quantile_inverts_the_cdf() {
        let w = Weibull { shape: 2.5, scale: 60.0 };
        for p in [0.01, 0.3, 0.5, 0.9] {
            assert!((w.cdf(w.quantile(p)) - p).abs() < 1e-12);
        }
        assert!((w.median() - 60.0 * 2f64.ln().powf(0.4)).abs() < 1e-9);
    }
}
