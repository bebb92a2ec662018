//! Likelihood-of-failure (LoF) models, fitted on a pipe-year [`Panel`]:
//!
//! - [`CohortRate`]: the smoothed break rate of the main's cell (prior breaks × material ×
//!   install decade), shrunk towards its parent cells when the cell has little length·time.
//!   Transparent, and the best published ranker on Kitchener (reference §4.3).
//! - [`PoissonGlm`]: a Poisson regression with log(length) as offset, fitted by our own IRLS
//!   (Newton) on ndarray, because linfa 0.8's `TweedieRegressor` has neither an offset nor
//!   sample weights (ARCHITECTURE.md, Decisions).
//! - [`Logistic`]: a logistic regression on "at least one break in the year", by the same IRLS.
//!
//! - [`RandomForest`]: a random forest of linfa-trees decision trees on "at least one break in
//!   the year", trained on every pipe-year with a break and as many without (balanced
//!   undersampling); its score is the share of trees voting "break", turned back into a
//!   probability with the undersampling rate.
//!
//! Each predicts expected breaks in the year from the as-of date and explains a prediction in
//! words an engineer can check. Settings follow linfa's params → fit shape.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use linfa::prelude::*;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2, Axis};
use rand08::SeedableRng;
use rand08::seq::SliceRandom;

use crate::AnalyticsError;
use crate::features::{Features, Panel};
use crate::material::Material;

/// The model families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    CohortRate,
    Poisson,
    Logistic,
    RandomForest,
}

impl ModelKind {
    /// Simplest first: model selection gives near-ties to the earlier one.
    pub const ALL: [ModelKind; 4] =
        [ModelKind::CohortRate, ModelKind::Poisson, ModelKind::Logistic, ModelKind::RandomForest];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::CohortRate => "cohort-rate",
            ModelKind::Poisson => "poisson",
            ModelKind::Logistic => "logistic",
            ModelKind::RandomForest => "random-forest",
        }
    }

    pub fn parse(s: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fitted LoF model.
pub trait LofModel: fmt::Debug + Send + Sync {
    fn kind(&self) -> ModelKind;
    /// Expected breaks of each main in the year from the as-of date.
    fn expected_breaks(&self, rows: &[Features]) -> Vec<f64>;
    /// The factors behind one prediction (`expected`: what [`Self::expected_breaks`] gave
    /// for the row), most important first.
    fn explain(&self, row: &Features, expected: f64) -> String;
}

/// Settings of every model family.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParams {
    /// Cohort rate: km·years of prior weight pulling a cell towards its parent.
    pub prior_weight_km_years: f64,
    /// Poisson and logistic: L2 penalty on the standardised coefficients.
    pub l2: f64,
    pub max_iterations: u64,
    /// Random forest: trees, their depth, and the seed of the undersampling and bagging.
    pub forest_trees: usize,
    pub forest_max_depth: usize,
    pub seed: u64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            prior_weight_km_years: 5.0,
            l2: 1.0,
            max_iterations: 100,
            forest_trees: 50,
            forest_max_depth: 8,
            seed: 1,
        }
    }
}

impl ModelParams {
    fn check(&self) -> Result<(), AnalyticsError> {
        let bad = |name, value: f64, why| AnalyticsError::InvalidParam { name, value: value.to_string(), why };
        if !(self.prior_weight_km_years.is_finite() && self.prior_weight_km_years > 0.0) {
            return Err(bad("prior_weight_km_years", self.prior_weight_km_years, "must be above 0"));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(bad("l2", self.l2, "must be 0 or more"));
        }
        if self.forest_trees == 0 || self.forest_max_depth == 0 {
            let value = self.forest_trees.min(self.forest_max_depth) as f64;
            return Err(bad("forest_trees/forest_max_depth", value, "must be 1 or more"));
        }
        Ok(())
    }

    /// Fits a model of `kind` on `panel`.
    pub fn fit(&self, kind: ModelKind, panel: &Panel) -> Result<Box<dyn LofModel>, AnalyticsError> {
        self.check()?;
        if panel.rows.is_empty() || panel.total_breaks() == 0.0 {
            return Err(AnalyticsError::Fit {
                model: kind.name(),
                why: format!(
                    "the training panel has {} pipe-years and {} breaks",
                    panel.rows.len(),
                    panel.total_breaks()
                ),
            });
        }
        Ok(match kind {
            ModelKind::CohortRate => Box::new(CohortRate::fit(self, panel)),
            ModelKind::Poisson => Box::new(PoissonGlm::fit(self, panel)?),
            ModelKind::Logistic => Box::new(Logistic::fit(self, panel)?),
            ModelKind::RandomForest => Box::new(RandomForest::fit(self, panel)?),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Cohort rate

/// Prior breaks are capped at 3 in cells: beyond it cells are too thin to tell apart.
fn prior_bucket(prior: u32) -> u32 {
    prior.min(3)
}

type CellKey = (u32, Material, i32);

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    breaks: f64,
    km_years: f64,
}

/// The smoothed break rate per km·year of each cell.
#[derive(Debug, Clone)]
pub struct CohortRate {
    cells: BTreeMap<CellKey, (Tally, f64)>,
    by_material: BTreeMap<(u32, Material), f64>,
    by_prior: BTreeMap<u32, f64>,
    global: f64,
    weight: f64,
}

impl CohortRate {
    fn fit(params: &ModelParams, panel: &Panel) -> CohortRate {
        // Ordered maps: sums in a fixed order give bit-identical rates run after run.
        let mut cells: BTreeMap<CellKey, Tally> = BTreeMap::new();
        for ((r, &y), &w) in panel.rows.iter().zip(&panel.breaks).zip(&panel.weights) {
            let t = cells.entry((prior_bucket(r.prior_breaks), r.material, r.decade)).or_default();
            t.breaks += w * y;
            t.km_years += w * r.length_km();
        }
        let mut by_material: BTreeMap<(u32, Material), Tally> = BTreeMap::new();
        let mut by_prior: BTreeMap<u32, Tally> = BTreeMap::new();
        let mut all = Tally::default();
        for (&(p, m, _), t) in &cells {
            for target in [by_material.entry((p, m)).or_default(), by_prior.entry(p).or_default(), &mut all] {
                target.breaks += t.breaks;
                target.km_years += t.km_years;
            }
        }
        let w = params.prior_weight_km_years;
        let shrink = |t: &Tally, parent: f64| (t.breaks + w * parent) / (t.km_years + w);
        let global = all.breaks / all.km_years.max(f64::MIN_POSITIVE);
        let by_prior: BTreeMap<u32, f64> = by_prior.iter().map(|(&p, t)| (p, shrink(t, global))).collect();
        let by_material: BTreeMap<(u32, Material), f64> =
            by_material.iter().map(|(&(p, m), t)| ((p, m), shrink(t, by_prior[&p]))).collect();
        let cells =
            cells.into_iter().map(|((p, m, d), t)| ((p, m, d), (t, shrink(&t, by_material[&(p, m)])))).collect();
        CohortRate { cells, by_material, by_prior, global, weight: w }
    }

    /// Breaks per km·year for a main with these features, with the evidence behind it.
    fn rate(&self, r: &Features) -> (f64, Tally) {
        let p = prior_bucket(r.prior_breaks);
        if let Some((t, rate)) = self.cells.get(&(p, r.material, r.decade)) {
            return (*rate, *t);
        }
        // A cell never seen in training: its parent's rate, with no evidence of its own.
        let parent =
            self.by_material.get(&(p, r.material)).or_else(|| self.by_prior.get(&p)).copied().unwrap_or(self.global);
        (parent, Tally::default())
    }
}

impl LofModel for CohortRate {
    fn kind(&self) -> ModelKind {
        ModelKind::CohortRate
    }

    fn expected_breaks(&self, rows: &[Features]) -> Vec<f64> {
        rows.iter().map(|r| self.rate(r).0 * r.length_km()).collect()
    }

    fn explain(&self, r: &Features, _expected: f64) -> String {
        let (rate, t) = self.rate(r);
        let prior = match prior_bucket(r.prior_breaks) {
            3 => "3+ prior breaks".to_owned(),
            1 => "1 prior break".to_owned(),
            n => format!("{n} prior breaks"),
        };
        format!(
            "cell {} laid {}s, {prior}: {} breaks in {:.1} km·yr (+{} km·yr prior) → {:.1}/100 km/yr",
            r.material,
            r.decade,
            t.breaks,
            t.km_years,
            self.weight,
            rate * 100.0
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Design matrix shared by the Poisson and logistic models

/// Groups of columns, named as an explanation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Factor {
    Material,
    AgeAndEra,
    Diameter,
    Length,
    History,
    /// The zone's pressure from the store's readings (only when the panel has any).
    Pressure,
}

/// Turns features into standardised model columns; fitted on the training panel.
#[derive(Debug, Clone)]
struct Design {
    materials: Vec<Material>,
    decades: Vec<i32>,
    /// Pressure columns, when some pipe-year of the training panel has pressure features:
    /// without them (Kitchener) the design is the same as before they existed.
    pressure: bool,
    factors: Vec<Factor>,
    mean: Vec<f64>,
    sd: Vec<f64>,
}

impl Design {
    fn new(rows: &[Features]) -> Design {
        // Dummies for every material and decade but the one with the most length: that one
        // is the reference the others are compared with.
        let mut km: HashMap<Material, f64> = HashMap::new();
        let mut dkm: HashMap<i32, f64> = HashMap::new();
        for r in rows {
            *km.entry(r.material).or_default() += r.length_m;
            *dkm.entry(r.decade).or_default() += r.length_m;
        }
        let mut materials: Vec<_> = km.into_iter().collect();
        materials.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let materials: Vec<Material> = materials.into_iter().skip(1).map(|(m, _)| m).collect();
        let mut decades: Vec<_> = dkm.into_iter().collect();
        decades.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let decades: Vec<i32> = decades.into_iter().skip(1).map(|(d, _)| d).collect();
        let pressure = rows.iter().any(|r| r.pressure.is_some());
        let mut design = Design { factors: Vec::new(), materials, decades, pressure, mean: Vec::new(), sd: Vec::new() };
        let mut factors = Vec::new();
        design.columns(&rows[0], |f, _| factors.push(f));
        design.factors = factors;
        let n = design.factors.len();
        let raw = design.raw(rows);
        design.mean = raw.mean_axis(Axis(0)).expect("rows are not empty").to_vec();
        design.sd = raw.std_axis(Axis(0), 0.0).to_vec();
        for k in 0..n {
            if design.sd[k] < 1e-12 {
                // A constant column carries nothing; scaling by 1 keeps it harmless at zero.
                design.sd[k] = 1.0;
            }
        }
        design
    }

    /// The raw (unstandardised) columns of one row with their factor.
    ///
    /// A callback rather than a returned `Vec`: this runs for every pipe-year of a panel.
    fn columns(&self, r: &Features, mut c: impl FnMut(Factor, f64)) {
        for m in &self.materials {
            c(Factor::Material, f64::from(u8::from(r.material == *m)));
        }
        let age = r.age_years / 10.0;
        c(Factor::AgeAndEra, age);
        c(Factor::AgeAndEra, age * age);
        c(Factor::AgeAndEra, f64::from(u8::from(!r.age_known)));
        for d in &self.decades {
            c(Factor::AgeAndEra, f64::from(u8::from(r.decade == *d)));
        }
        let (diameter, unknown) = match r.diameter_mm {
            Some(d) => ((d / 150.0).ln(), 0.0),
            None => (0.0, 1.0),
        };
        c(Factor::Diameter, diameter);
        c(Factor::Diameter, unknown);
        c(Factor::Length, (r.length_m / 100.0).ln());
        c(Factor::History, f64::from(r.prior_breaks).ln_1p());
        c(Factor::History, f64::from(r.breaks_last_5y).ln_1p());
        c(Factor::History, f64::from(u8::from(r.years_since_last_break.is_some_and(|y| y < 2.0))));
        if self.pressure {
            // Mean pressure loads the joints and walls all the time; transients are the
            // surges that fatigue them. An unknown zone gets 0 and its own indicator.
            let (mean, transients, unknown) = match r.pressure {
                Some(p) => (p.mean_bar, p.transients_per_day.ln_1p(), 0.0),
                None => (0.0, 0.0, 1.0),
            };
            c(Factor::Pressure, mean);
            c(Factor::Pressure, transients);
            c(Factor::Pressure, unknown);
        }
    }

    fn raw(&self, rows: &[Features]) -> Array2<f64> {
        let n = self.factors.len();
        let mut x = Vec::with_capacity(rows.len() * n);
        for r in rows {
            self.columns(r, |_, v| x.push(v));
        }
        Array2::from_shape_vec((rows.len(), n), x).expect("n columns a row")
    }

    /// intercept + βᵀx of each row on the standardised columns, streamed row by row: scoring a
    /// million mains this way needs no million-row matrix.
    fn linear(&self, beta: &[f64], intercept: f64, rows: &[Features]) -> Vec<f64> {
        rows.iter()
            .map(|r| {
                let mut eta = intercept;
                let mut k = 0;
                self.columns(r, |_, v| {
                    eta += beta[k] * (v - self.mean[k]) / self.sd[k];
                    k += 1;
                });
                eta
            })
            .collect()
    }

    /// Standardised columns (mean 0, sd 1 on the training panel).
    fn matrix(&self, rows: &[Features]) -> Array2<f64> {
        let mut x = self.raw(rows);
        // Row by row over the contiguous buffer: a column-wise `mapv` strides through memory.
        for row in x.as_slice_mut().expect("standard layout").chunks_exact_mut(self.mean.len()) {
            for ((v, m), sd) in row.iter_mut().zip(&self.mean).zip(&self.sd) {
                *v = (*v - m) / sd;
            }
        }
        x
    }

    /// The top factors of a linear predictor with coefficients `beta` (standardised scale) for
    /// one row, as multipliers against a main with the training panel's average columns.
    fn explain(&self, beta: &[f64], r: &Features, what: &str) -> String {
        let mut effect: Vec<(Factor, f64)> = Vec::new();
        let mut columns = Vec::with_capacity(self.factors.len());
        self.columns(r, |f, v| columns.push((f, v)));
        for (k, (factor, v)) in columns.into_iter().enumerate() {
            let z = (v - self.mean[k]) / self.sd[k];
            match effect.iter_mut().find(|(f, _)| *f == factor) {
                Some((_, e)) => *e += beta[k] * z,
                None => effect.push((factor, beta[k] * z)),
            }
        }
        effect.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let parts: Vec<String> = effect
            .iter()
            .take(3)
            .map(|(f, e)| {
                let label = match f {
                    Factor::Material => format!("material {}", r.material),
                    Factor::AgeAndEra if r.age_known => {
                        format!("age {:.0} y (laid {}s)", r.age_years, r.decade)
                    }
                    Factor::AgeAndEra => format!("age unknown (~{:.0} y)", r.age_years),
                    Factor::Diameter => match r.diameter_mm {
                        Some(d) => format!("{d:.0} mm"),
                        None => "diameter unknown".to_owned(),
                    },
                    Factor::Length if r.length_m < 10.0 => format!("{:.1} m long", r.length_m),
                    Factor::Length => format!("{:.0} m long", r.length_m),
                    Factor::History => match r.prior_breaks {
                        0 => "no prior break".to_owned(),
                        1 => "1 prior break".to_owned(),
                        n => format!("{n} prior breaks"),
                    },
                    Factor::Pressure => match r.pressure {
                        Some(p) => format!(
                            "zone pressure {}: mean {:.1} bar, {:.0} transients/day",
                            if *e > 0.0 { "high" } else { "low" },
                            p.mean_bar,
                            p.transients_per_day
                        ),
                        None => "zone pressure unknown".to_owned(),
                    },
                };
                format!("{label} ×{:.2}", e.exp())
            })
            .collect();
        format!("{what} vs average main: {}", parts.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------
// Poisson GLM with a length offset

/// log E[breaks] = log(length km) + β₀ + βᵀx, fitted by penalised IRLS.
#[derive(Debug, Clone)]
pub struct PoissonGlm {
    design: Design,
    intercept: f64,
    beta: Vec<f64>,
    pub iterations: usize,
}

impl PoissonGlm {
    fn fit(params: &ModelParams, panel: &Panel) -> Result<PoissonGlm, AnalyticsError> {
        let design = Design::new(&panel.rows);
        let x = design.matrix(&panel.rows);
        let offset: Array1<f64> = panel.rows.iter().map(|r| r.length_km().ln()).collect();
        let y = Array1::from(panel.breaks.clone());
        let weights = Array1::from(panel.weights.clone());
        let (coef, iterations) =
            irls(Family::Poisson, &x, &y, &offset, Some(&weights), params.l2, params.max_iterations).ok_or_else(
                || AnalyticsError::Fit {
                    model: "poisson",
                    why: "IRLS did not converge (singular or diverging Newton steps)".into(),
                },
            )?;
        Ok(PoissonGlm { design, intercept: coef[0], beta: coef.iter().skip(1).copied().collect(), iterations })
    }
}

impl LofModel for PoissonGlm {
    fn kind(&self) -> ModelKind {
        ModelKind::Poisson
    }

    fn expected_breaks(&self, rows: &[Features]) -> Vec<f64> {
        let eta = self.design.linear(&self.beta, self.intercept, rows);
        rows.iter().zip(eta).map(|(r, e)| (e.min(20.0)).exp() * r.length_km()).collect()
    }

    fn explain(&self, r: &Features, _expected: f64) -> String {
        self.design.explain(&self.beta, r, "rate")
    }
}

/// The response distribution of [`irls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Counts with a log link.
    Poisson,
    /// 0/1 outcomes with a logit link.
    Binomial,
}

/// Penalised Poisson IRLS with an offset: x without intercept column (one is added as
/// column 0 and not penalised). Returns (coefficients, iterations), or `None` if it fails.
pub fn irls_poisson(
    x: &Array2<f64>,
    y: &Array1<f64>,
    offset: &Array1<f64>,
    l2: f64,
    max_iterations: u64,
) -> Option<(Array1<f64>, usize)> {
    irls(Family::Poisson, x, y, offset, None, l2, max_iterations)
}

/// Penalised IRLS (Newton's method) for a GLM with an offset and optional sample weights:
/// x without intercept column (one is added as column 0 and not penalised). Returns
/// (coefficients, iterations), or `None` if a Newton step fails.
///
/// Written on row slices rather than ndarray expressions: broadcasting a weight over the rows
/// of an n × p matrix was most of a Kitchener ranking's time in a profile.
pub fn irls(
    family: Family,
    x: &Array2<f64>,
    y: &Array1<f64>,
    offset: &Array1<f64>,
    weights: Option<&Array1<f64>>,
    l2: f64,
    max_iterations: u64,
) -> Option<(Array1<f64>, usize)> {
    let (n, p) = x.dim();
    let q = p + 1;
    // Rows with the intercept as column 0.
    let mut xi = Vec::with_capacity(n * q);
    for row in x.rows() {
        xi.push(1.0);
        xi.extend(row.iter());
    }
    let xi = Array2::from_shape_vec((n, q), xi).expect("q columns a row");
    let rows = xi.as_slice().expect("standard layout");
    let y = y.as_slice().expect("contiguous");
    let offset = offset.as_slice().expect("contiguous");
    let ones = vec![1.0; n];
    let sw = weights.map_or(&ones[..], |w| w.as_slice().expect("contiguous"));
    let linear = |beta: &[f64]| -> Vec<f64> {
        rows.chunks_exact(q).zip(offset).map(|(r, o)| o + r.iter().zip(beta).map(|(a, b)| a * b).sum::<f64>()).collect()
    };
    // The penalised negative log-likelihood (up to a constant), to damp Newton steps.
    let objective = |beta: &[f64]| -> f64 {
        let eta = linear(beta);
        let nll: f64 = match family {
            Family::Poisson => {
                eta.iter().zip(y).zip(sw).map(|((e, y), w)| w * (e.clamp(-30.0, 30.0).exp() - y * e)).sum()
            }
            // log(1 + e^η) − yη, computed without overflow.
            Family::Binomial => {
                eta.iter().zip(y).zip(sw).map(|((e, y), w)| w * (e.max(0.0) + (-e.abs()).exp().ln_1p() - y * e)).sum()
            }
        };
        nll + 0.5 * l2 * beta.iter().skip(1).map(|b| b * b).sum::<f64>()
    };
    let mut beta = vec![0.0; q];
    // Start at the overall rate (or odds), so the first step is small.
    let total = y.iter().zip(sw).map(|(y, w)| y * w).sum::<f64>().max(0.5);
    beta[0] = match family {
        Family::Poisson => (total / offset.iter().zip(sw).map(|(o, w)| o.exp() * w).sum::<f64>()).ln(),
        Family::Binomial => {
            let share = (total / sw.iter().sum::<f64>()).clamp(1e-9, 1.0 - 1e-9);
            (share / (1.0 - share)).ln()
        }
    };
    let mut current = objective(&beta);
    let mut xw = Array2::<f64>::zeros((n, q));
    for it in 1..=max_iterations as usize {
        let eta = linear(&beta);
        // Gradient of the log-likelihood and the weighted rows for the Hessian.
        let mut gradient = Array1::<f64>::zeros(q);
        for (((r, wr), (e, yi)), w) in rows
            .chunks_exact(q)
            .zip(xw.as_slice_mut().expect("standard layout").chunks_exact_mut(q))
            .zip(eta.iter().zip(y))
            .zip(sw)
        {
            // The mean and the IRLS weight (the variance at the mean).
            let (mu, var) = match family {
                Family::Poisson => {
                    let mu = e.clamp(-30.0, 30.0).exp();
                    (mu, mu)
                }
                Family::Binomial => {
                    let mu = 1.0 / (1.0 + (-e.clamp(-30.0, 30.0)).exp());
                    (mu, (mu * (1.0 - mu)).max(1e-12))
                }
            };
            let residual = w * (yi - mu);
            for ((g, a), b) in gradient.iter_mut().zip(r).zip(wr.iter_mut()) {
                *g += residual * a;
                *b = w * var * a;
            }
        }
        let mut a = xw.t().dot(&xi);
        for k in 1..q {
            a[[k, k]] += l2;
            gradient[k] -= l2 * beta[k];
        }
        let direction = solve_spd(a, gradient)?;
        // Rare events make full Newton steps overshoot (a Kitchener logistic fit diverged
        // without this): halve the step until the objective does not rise.
        let mut t = 1.0;
        let (next, value) = loop {
            let next: Vec<f64> = beta.iter().zip(&direction).map(|(b, d)| b + t * d).collect();
            let value = objective(&next);
            if value.is_finite() && value <= current + 1e-12 * current.abs() {
                break (next, value);
            }
            t /= 2.0;
            if t < 1e-10 {
                return None;
            }
        };
        let step = next.iter().zip(&beta).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
        let gain = current - value;
        beta = next;
        current = value;
        if step < 1e-7 || gain <= 1e-10 * current.abs() {
            return Some((Array1::from(beta), it));
        }
    }
    Some((Array1::from(beta), max_iterations as usize))
}

/// Solves a·x = b for a symmetric positive-definite a (Cholesky).
fn solve_spd(mut a: Array2<f64>, b: Array1<f64>) -> Option<Array1<f64>> {
    let n = b.len();
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= a[[j, k]] * a[[j, k]];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[[j, j]] = d;
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= a[[i, k]] * a[[j, k]];
            }
            a[[i, j]] = s / d;
        }
    }
    let mut x = b;
    for i in 0..n {
        let mut s = x[i];
        for k in 0..i {
            s -= a[[i, k]] * x[k];
        }
        x[i] = s / a[[i, i]];
    }
    for i in (0..n).rev() {
        let mut s = x[i];
        for k in i + 1..n {
            s -= a[[k, i]] * x[k];
        }
        x[i] = s / a[[i, i]];
    }
    Some(x)
}

// ---------------------------------------------------------------------------------------------
// Logistic regression

/// P(at least one break in the year) by a penalised logistic regression on the same columns.
#[derive(Debug, Clone)]
pub struct Logistic {
    design: Design,
    intercept: f64,
    beta: Vec<f64>,
}

impl Logistic {
    fn fit(params: &ModelParams, panel: &Panel) -> Result<Logistic, AnalyticsError> {
        let design = Design::new(&panel.rows);
        let x = design.matrix(&panel.rows);
        let y: Array1<f64> = panel.breaks.iter().map(|b| f64::from(u8::from(*b > 0.0))).collect();
        let offset = Array1::zeros(y.len());
        let weights = Array1::from(panel.weights.clone());
        // Our own IRLS rather than linfa-logistic: linfa's L-BFGS took 25 s for one fit on
        // 140,000 Kitchener pipe-years (ARCHITECTURE.md, Decisions); Newton's method converges in a
        // handful of steps on a few dozen columns.
        let (coef, _) = irls(Family::Binomial, &x, &y, &offset, Some(&weights), params.l2, params.max_iterations)
            .ok_or_else(|| AnalyticsError::Fit {
                model: "logistic",
                why: "IRLS did not converge (singular or diverging Newton steps)".into(),
            })?;
        Ok(Logistic { design, intercept: coef[0], beta: coef.iter().skip(1).copied().collect() })
    }

    fn probability(&self, rows: &[Features]) -> Vec<f64> {
        let eta = self.design.linear(&self.beta, self.intercept, rows);
        eta.iter().map(|e| 1.0 / (1.0 + (-e).exp())).collect()
    }
}

impl LofModel for Logistic {
    fn kind(&self) -> ModelKind {
        ModelKind::Logistic
    }

    fn expected_breaks(&self, rows: &[Features]) -> Vec<f64> {
        // The expected count of a Poisson variable with this chance of at least one event.
        self.probability(rows).into_iter().map(|p| -(1.0 - p.min(1.0 - 1e-12)).ln()).collect()
    }

    fn explain(&self, r: &Features, _expected: f64) -> String {
        self.design.explain(&self.beta, r, "odds")
    }
}

// ---------------------------------------------------------------------------------------------
// Random forest (linfa)

/// A balanced random forest of linfa-trees decision trees on the design's raw columns.
pub struct RandomForest {
    design: Design,
    /// Each tree, flattened for scoring (linfa's boxed nodes and `predict` on a column
    /// selection cost a copy of the design per tree and a pointer chase per level).
    trees: Vec<FlatTree>,
    /// The sampling rate of pipe-years without a break over that of those with one: turns the
    /// odds of a vote share on the balanced sample back into the panel's odds.
    negative_share: f64,
    /// Mean impurity decrease by factor, summed over the trees, largest first.
    importance: Vec<(Factor, f64)>,
}

impl fmt::Debug for RandomForest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomForest")
            .field("trees", &self.trees.len())
            .field("negative_share", &self.negative_share)
            .field("importance", &self.importance)
            .finish()
    }
}

/// Most pipe-years of each class a forest trains on.
const FOREST_CLASS_ROWS: usize = 5_000;

/// Share of the columns each tree sees (a random subspace per tree, as linfa-ensemble does).
const FOREST_COLUMN_SHARE: f64 = 0.6;

impl RandomForest {
    fn fit(params: &ModelParams, panel: &Panel) -> Result<RandomForest, AnalyticsError> {
        let design = Design::new(&panel.rows);
        let (positives, negatives): (Vec<usize>, Vec<usize>) =
            (0..panel.rows.len()).partition(|&i| panel.breaks[i] > 0.0);
        // Balance the classes by undersampling the pipe-years without a break to as many as
        // those with one: a few hundred breaks against a hundred thousand quiet pipe-years
        // would otherwise give leaves that all say "no break".
        // At most FOREST_CLASS_ROWS of each class: linfa's trees cost far more per row than the
        // IRLS, and a large register's panel can hold tens of thousands of breaks.
        let mut rng = rand08::rngs::SmallRng::seed_from_u64(params.seed);
        let per_class = positives.len().min(negatives.len()).min(FOREST_CLASS_ROWS);
        let kept_positives: Vec<usize> = positives.choose_multiple(&mut rng, per_class).copied().collect();
        let kept: Vec<usize> = negatives.choose_multiple(&mut rng, per_class).copied().collect();
        let weight_of = |rows: &[usize]| rows.iter().map(|&i| panel.weights[i]).sum::<f64>().max(1.0);
        let negative_share =
            (kept.len() as f64 / weight_of(&negatives)) / (kept_positives.len() as f64 / weight_of(&positives));
        let rows: Vec<Features> = kept_positives.iter().chain(&kept).map(|&i| panel.rows[i].clone()).collect();
        let y: Vec<bool> = kept_positives.iter().map(|_| true).chain(kept.iter().map(|_| false)).collect();
        // Our own bagging rather than linfa-ensemble's: its bootstrap rebuilds each sample
        // without weights (reference §5), and we need one weight. linfa-trees picks a leaf's
        // class by iterating a HashMap, so a leaf with equal weights of both classes would
        // vote at random from run to run; "no break" weighs 0.999 so a tie votes "break" and
        // a ranking is reproducible.
        let weight = |label: bool| if label { 1.0f32 } else { 0.999 };
        let x = design.raw(&rows);
        let columns = design.factors.len();
        let per_tree = ((columns as f64 * FOREST_COLUMN_SHARE).ceil() as usize).clamp(1, columns);
        let tree_params = DecisionTree::params().max_depth(Some(params.forest_max_depth)).min_weight_leaf(5.0);
        let mut fitted = Vec::with_capacity(params.forest_trees);
        for _ in 0..params.forest_trees {
            let sample: Vec<usize> = (0..rows.len()).map(|_| rand08::Rng::gen_range(&mut rng, 0..rows.len())).collect();
            let mut features: Vec<usize> =
                (0..columns).collect::<Vec<_>>().choose_multiple(&mut rng, per_tree).copied().collect();
            features.sort_unstable();
            let records = x.select(Axis(0), &sample).select(Axis(1), &features);
            let targets: Array1<bool> = sample.iter().map(|&i| y[i]).collect();
            let weights: Array1<f32> = sample.iter().map(|&i| weight(y[i])).collect();
            let tree = tree_params
                .fit(&Dataset::new(records, targets).with_weights(weights))
                .map_err(|e| AnalyticsError::Fit { model: "random-forest", why: e.to_string() })?;
            fitted.push((tree, features));
        }
        let mut importance: Vec<(Factor, f64)> = Vec::new();
        for (tree, features) in &fitted {
            for (k, value) in features.iter().zip(tree.feature_importance()) {
                // A tree with no split has no importance to share (0/0).
                if !value.is_finite() {
                    continue;
                }
                let factor = design.factors[*k];
                match importance.iter_mut().find(|(f, _)| *f == factor) {
                    Some((_, v)) => *v += value,
                    None => importance.push((factor, value)),
                }
            }
        }
        let total: f64 = importance.iter().map(|(_, v)| v).sum::<f64>().max(f64::MIN_POSITIVE);
        importance.iter_mut().for_each(|(_, v)| *v /= total);
        importance.sort_by(|a, b| b.1.total_cmp(&a.1));
        let trees = fitted.iter().map(|(tree, features)| FlatTree::new(tree, features)).collect();
        Ok(RandomForest { design, trees, negative_share, importance })
    }

    /// The share of trees that vote "break" for each row.
    fn vote_share(&self, rows: &[Features]) -> Vec<f64> {
        let mut votes = Vec::with_capacity(rows.len());
        // In chunks, so that each tree's column selection stays in cache and a million mains
        // never make a million-row matrix.
        for chunk in rows.chunks(8192) {
            let x = self.design.raw(chunk);
            votes.extend(x.rows().into_iter().map(|row| {
                let row = row.as_slice().expect("a design matrix is in standard layout");
                self.trees.iter().filter(|tree| tree.votes_break(row)).count() as f64
            }));
        }
        let trees = self.trees.len() as f64;
        votes.into_iter().map(|v| v / trees).collect()
    }

    /// P(at least one break) from a vote share: its odds on the balanced sample, scaled back
    /// by the undersampling. A share of 0 or 1 is moved half a vote inwards.
    fn probability(&self, share: f64) -> f64 {
        let trees = self.trees.len() as f64;
        let s = share.clamp(0.5 / trees, 1.0 - 0.5 / trees);
        let odds = s / (1.0 - s) * self.negative_share;
        odds / (1.0 + odds)
    }
}

/// A decision tree as one array of nodes, its splits on the design's column numbers.
#[derive(Debug, Clone)]
struct FlatTree {
    nodes: Vec<FlatNode>,
}

#[derive(Debug, Clone, Copy)]
enum FlatNode {
    Leaf(bool),
    /// Go to `left` when the value of `column` is below `split`, else to `right`: linfa's rule.
    Split {
        column: usize,
        split: f64,
        left: usize,
        right: usize,
    },
}

impl FlatTree {
    /// `columns[k]` is the design column of the tree's feature `k`.
    fn new(tree: &DecisionTree<f64, bool>, columns: &[usize]) -> FlatTree {
        let mut nodes = Vec::new();
        Self::push(tree.root_node(), columns, &mut nodes);
        FlatTree { nodes }
    }

    fn push(node: &linfa_trees::TreeNode<f64, bool>, columns: &[usize], nodes: &mut Vec<FlatNode>) -> usize {
        let at = nodes.len();
        if let Some(vote) = node.prediction() {
            nodes.push(FlatNode::Leaf(vote));
            return at;
        }
        let (feature, split, _) = node.split();
        nodes.push(FlatNode::Leaf(false));
        let children = node.children();
        let child = |i: usize| children[i].as_deref().expect("a split node has both children");
        let left = Self::push(child(0), columns, nodes);
        let right = Self::push(child(1), columns, nodes);
        nodes[at] = FlatNode::Split { column: columns[feature], split, left, right };
        at
    }

    fn votes_break(&self, row: &[f64]) -> bool {
        let mut at = 0;
        loop {
            match self.nodes[at] {
                FlatNode::Leaf(vote) => return vote,
                FlatNode::Split { column, split, left, right } => at = if row[column] < split { left } else { right },
            }
        }
    }
}

impl LofModel for RandomForest {
    fn kind(&self) -> ModelKind {
        ModelKind::RandomForest
    }

    fn expected_breaks(&self, rows: &[Features]) -> Vec<f64> {
        self.vote_share(rows).into_iter().map(|s| -(1.0 - self.probability(s)).ln()).collect()
    }

    fn explain(&self, r: &Features, expected: f64) -> String {
        // The vote share back from the expected breaks: voting again per row would walk every
        // tree once more for each main of the ranking.
        let odds = (expected.exp() - 1.0) / self.negative_share;
        let share = odds / (1.0 + odds);
        let factors: Vec<String> = self
            .importance
            .iter()
            .take(3)
            .map(|(f, v)| {
                let name = match f {
                    Factor::Material => format!("material ({})", r.material),
                    Factor::AgeAndEra => format!("age and era ({:.0} y, {}s)", r.age_years, r.decade),
                    Factor::Diameter => match r.diameter_mm {
                        Some(d) => format!("diameter ({d:.0} mm)"),
                        None => "diameter (unknown)".to_owned(),
                    },
                    Factor::Length => format!("length ({:.0} m)", r.length_m),
                    Factor::History => format!("break history ({} prior)", r.prior_breaks),
                    Factor::Pressure => match r.pressure {
                        Some(p) => {
                            format!(
                                "zone pressure (mean {:.1} bar, {:.0} transients/day)",
                                p.mean_bar, p.transients_per_day
                            )
                        }
                        None => "zone pressure (unknown)".to_owned(),
                    },
                };
                format!("{name} {:.0}%", v * 100.0)
            })
            .collect();
        format!(
            "{:.0}% of {} trees vote break; the forest splits most on {}",
            share * 100.0,
            self.trees.len(),
            factors.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_flattened_tree_votes_as_linfa_predicts() {
        // Two columns that decide the label, one of noise; the tree sees columns 2 and 0 of a
        // three-column design, so the flattening must map its feature numbers back.
        let mut rng = rand08::rngs::SmallRng::seed_from_u64(7);
        let design: Array2<f64> = Array2::from_shape_fn((2_000, 3), |_| rand08::Rng::gen_range(&mut rng, 0.0..1.0));
        let columns = [2, 0];
        let x = design.select(Axis(1), &columns);
        let y: Array1<bool> = x.rows().into_iter().map(|r| r[0] > 0.6 || (r[1] < 0.3 && r[0] > 0.2)).collect();
        let tree = DecisionTree::params().max_depth(Some(6)).fit(&Dataset::new(x.clone(), y)).unwrap();
        assert!(tree.num_leaves() > 2, "the tree splits");
        let flat = FlatTree::new(&tree, &columns);
        let linfa: Array1<bool> = tree.predict(&x);
        let ours: Vec<bool> = design.rows().into_iter().map(|r| flat.votes_break(r.as_slice().unwrap())).collect();
        assert_eq!(ours, linfa.to_vec());
        assert!(ours.iter().any(|v| *v) && ours.iter().any(|v| !*v));
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = array![[4.0, 2.0], [2.0, 3.0]];
        let x = solve_spd(a, array![2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x}");
        assert!(solve_spd(array![[1.0, 2.0], [2.0, 1.0]], array![1.0, 1.0]).is_none());
    }

    #[test]
    fn irls_recovers_a_known_rate_ratio_with_exposure() {
        // Group 1 has 3× the rate of group 0; exposures differ 10×, counts are exact means.
        let x = array![[0.0], [0.0], [1.0], [1.0]];
        let exposure = [10.0, 30.0, 1.0, 3.0];
        let y = array![20.0, 60.0, 6.0, 18.0];
        let offset: Array1<f64> = exposure.iter().map(|e: &f64| e.ln()).collect();
        let (beta, _) = irls_poisson(&x, &y, &offset, 0.0, 50).unwrap();
        assert!((beta[0] - 2.0f64.ln()).abs() < 1e-6, "{beta}");
        assert!((beta[1] - 3.0f64.ln()).abs() < 1e-6, "{beta}");
    }

    #[test]
    fn irls_recovers_a_known_odds_ratio_with_weights() {
        // Group 0: 1 in 5 broke (odds 1/4); group 1: 1 in 2 (odds 1); weights stand for rows.
        let x = array![[0.0], [0.0], [1.0], [1.0]];
        let y = array![1.0, 0.0, 1.0, 0.0];
        let w = array![10.0, 40.0, 7.0, 7.0];
        let (beta, _) = irls(Family::Binomial, &x, &y, &Array1::zeros(4), Some(&w), 0.0, 50).unwrap();
        assert!((beta[0] - 0.25f64.ln()).abs() < 1e-6, "{beta}");
        assert!((beta[1] - 4.0f64.ln()).abs() < 1e-6, "{beta}");
    }
}
