//! The renewal plan: which mains to renew in which fiscal year (年度) under a yearly budget.
//!
//! Input is a ranking (each main's expected breaks next year, from [`crate::risk::rank`] or a
//! ranking CSV), unit costs by diameter, a yearly budget in yen or km, and optional policy
//! rules. Each year the plan first takes what a policy deadline requires (e.g. all grey cast
//! iron out by FY2035, spread evenly over the years left), then mains past their
//! renewal-standard age if asked, then the rest by breaks avoided per yen (or per km), skipping
//! a main that does not fit what is left of the year's budget. A year's budget is never
//! exceeded; unspent money does not carry over (a utility's budget is annual).
//!
//! Breaks over the horizon: an unrenewed main's expected breaks grow by `hazard_growth` a year
//! (ageing); a renewed main drops to `new_rate` breaks per km a year. A main renewed in a year
//! counts half a year of each (renewed mid-year on average). This module does no IO but
//! [`read_ranking_csv`].

use std::collections::HashMap;
use std::path::Path;

use crate::AnalyticsError;
use crate::material::Material;

/// One main as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanPipe {
    pub asset_id: String,
    pub material: Material,
    pub diameter_mm: Option<f64>,
    pub length_m: f64,
    pub install_year: Option<i32>,
    /// Expected breaks in the year after the ranking's as-of date.
    pub expected_breaks: f64,
    pub district: Option<String>,
    /// Map coordinates of the main's midpoint, where the register has geometry.
    pub x: Option<f64>,
    pub y: Option<f64>,
}

impl PlanPipe {
    /// A main of a stored ranking run (what the dashboard and `mizumori plan --store` plan
    /// from). A material code the analytics no longer knows plans as `Other`.
    pub fn from_risk_row(row: &store::risk::RiskRow) -> PlanPipe {
        PlanPipe {
            asset_id: row.asset_id.to_string(),
            material: Material::parse(&row.material).unwrap_or(Material::Other),
            diameter_mm: row.diameter_mm.filter(|d| *d > 0.0),
            length_m: row.length_m,
            install_year: row.install_year,
            expected_breaks: row.expected_breaks,
            district: row.district.clone(),
            x: row.x,
            y: row.y,
        }
    }
}

/// What a year's budget counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Yen a year.
    Yen(f64),
    /// Kilometres of main a year.
    Km(f64),
}

impl Budget {
    /// Parses `800000000` (yen), `8億` / `800M` (yen) or `5km` (km a year).
    pub fn parse(text: &str) -> Result<Budget, String> {
        let t = text.trim().replace(['_', ',', '¥', '円'], "");
        let (number, scale, km) = if let Some(n) = t.strip_suffix("km") {
            (n, 1.0, true)
        } else if let Some(n) = t.strip_suffix('億') {
            (n, 1e8, false)
        } else if let Some(n) = t.strip_suffix("万") {
            (n, 1e4, false)
        } else if let Some(n) = t.strip_suffix('M') {
            (n, 1e6, false)
        } else {
            (t.as_str(), 1.0, false)
        };
        let value: f64 =
            number.trim().parse().map_err(|_| format!("{text:?}: expected yen (800000000, 8億, 800M) or km (5km)"))?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("{text:?}: a budget must be more than zero"));
        }
        let value = value * scale;
        Ok(if km { Budget::Km(value) } else { Budget::Yen(value) })
    }

    fn amount(self) -> f64 {
        match self {
            Budget::Yen(v) | Budget::Km(v) => v,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Yen(v) => write!(f, "¥{:.0}/yr", v),
            Budget::Km(v) => write!(f, "{v} km/yr"),
        }
    }
}

/// Renewal cost in yen per metre by nominal diameter: `(up to mm, yen per m)`, ascending; the
/// last band covers everything larger. A main without a diameter costs the first band.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitCosts {
    pub bands: Vec<(f64, f64)>,
}

impl Default for UnitCosts {
    /// Order-of-magnitude defaults for open-cut renewal of distribution mains in a Japanese
    /// city, pavement restoration included (the often quoted "about ¥100 million per km" for
    /// small mains). A utility should load its own from its unit-price tables (単価表).
    fn default() -> UnitCosts {
        UnitCosts {
            bands: vec![
                (100.0, 90_000.0),
                (150.0, 100_000.0),
                (200.0, 120_000.0),
                (300.0, 150_000.0),
                (400.0, 200_000.0),
                (600.0, 280_000.0),
                (f64::INFINITY, 400_000.0),
            ],
        }
    }
}

impl UnitCosts {
    pub fn yen_per_m(&self, diameter_mm: Option<f64>) -> f64 {
        let d = diameter_mm.unwrap_or(0.0);
        self.bands.iter().find(|(up_to, _)| d <= *up_to).or(self.bands.last()).map_or(0.0, |(_, c)| *c)
    }

    pub fn cost(&self, pipe: &PlanPipe) -> f64 {
        self.yen_per_m(pipe.diameter_mm) * pipe.length_m
    }
}

/// All mains of a material renewed by the end of a fiscal year.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    pub material: Material,
    pub by_fiscal_year: i32,
}

impl Deadline {
    /// Parses `CI:2035` (a material code or Japanese name, a colon, a fiscal year).
    pub fn parse(text: &str) -> Result<Deadline, String> {
        let (m, y) = text.rsplit_once(':').ok_or_else(|| format!("{text:?}: expected MATERIAL:YEAR, e.g. CI:2035"))?;
        let material = Material::parse(m).map_err(|e| format!("{text:?}: {e}"))?;
        let by_fiscal_year = y.trim().parse().map_err(|_| format!("{text:?}: {y:?} is not a year"))?;
        Ok(Deadline { material, by_fiscal_year })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanParams {
    pub budget: Budget,
    pub years: u32,
    /// The first fiscal year of the plan (年度: April to March).
    pub first_fiscal_year: i32,
    pub unit_costs: UnitCosts,
    pub deadlines: Vec<Deadline>,
    /// Renew mains past their material's renewal-standard years (更新基準年数) before the rest.
    pub standard_years_first: bool,
    /// Yearly growth of an unrenewed main's expected breaks (ageing), e.g. 0.03.
    pub hazard_growth: f64,
    /// Breaks per km a year of a new main.
    pub new_rate: f64,
}

impl PlanParams {
    pub fn new(budget: Budget, years: u32, first_fiscal_year: i32) -> PlanParams {
        PlanParams {
            budget,
            years,
            first_fiscal_year,
            unit_costs: UnitCosts::default(),
            deadlines: Vec::new(),
            standard_years_first: false,
            hazard_growth: 0.03,
            new_rate: 0.005,
        }
    }

    fn check(&self) -> Result<(), AnalyticsError> {
        let bad = |name, value: String, why| Err(AnalyticsError::InvalidParam { name, value, why });
        if !(1..=100).contains(&self.years) {
            return bad("years", self.years.to_string(), "must be 1 to 100");
        }
        if !(self.hazard_growth.is_finite() && (-0.5..=1.0).contains(&self.hazard_growth)) {
            return bad("hazard_growth", self.hazard_growth.to_string(), "must be between -0.5 and 1");
        }
        if !(self.new_rate.is_finite() && self.new_rate >= 0.0) {
            return bad("new_rate", self.new_rate.to_string(), "must be zero or more");
        }
        if !(self.budget.amount().is_finite() && self.budget.amount() > 0.0) {
            return bad("budget", self.budget.to_string(), "must be more than zero");
        }
        let ascending = self.unit_costs.bands.windows(2).all(|w| w[0].0 < w[1].0);
        if self.unit_costs.bands.is_empty()
            || !ascending
            || self.unit_costs.bands.iter().any(|(_, c)| !(c.is_finite() && *c > 0.0))
        {
            return bad("unit_costs", format!("{:?}", self.unit_costs.bands), "need ascending diameters, costs > 0");
        }
        Ok(())
    }
}

/// Why a main is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A policy deadline for its material.
    Deadline,
    /// Past its material's renewal-standard years.
    StandardYears,
    /// Its breaks avoided per yen (or km).
    Risk,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Deadline => "deadline",
            Reason::StandardYears => "standard_years",
            Reason::Risk => "risk",
        }
    }
}

/// One main scheduled for renewal.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// Index into the plan's input.
    pub pipe: usize,
    pub fiscal_year: i32,
    pub cost_yen: f64,
    pub reason: Reason,
    /// Its expected breaks in that year had it not been renewed.
    pub expected_breaks: f64,
}

impl Scheduled {
    /// The column names of [`Scheduled::cells`] in the CSV exports.
    pub const CELL_NAMES: [&'static str; 8] =
        ["fiscal_year", "asset_id", "material", "diameter_mm", "length_m", "install_year", "district", "cost_yen"];

    /// The main's cells in every schedule export (`mizumori plan`, the dashboard's CSV, Excel
    /// and PDF report) from fiscal year to cost: fiscal year, asset id, material code, diameter
    /// (mm), length (m, one decimal), install year, district, cost (whole yen), an unknown value
    /// empty. `pipes` is the plan's input. Each export adds the budget and the reason in its own
    /// words, so the figures of a main read the same in all of them.
    pub fn cells(&self, pipes: &[PlanPipe]) -> [String; 8] {
        let pipe = &pipes[self.pipe];
        [
            self.fiscal_year.to_string(),
            pipe.asset_id.clone(),
            pipe.material.code().to_owned(),
            pipe.diameter_mm.map(|d| d.to_string()).unwrap_or_default(),
            format!("{:.1}", pipe.length_m),
            pipe.install_year.map(|y| y.to_string()).unwrap_or_default(),
            pipe.district.clone().unwrap_or_default(),
            format!("{:.0}", self.cost_yen),
        ]
    }
}

/// One fiscal year of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct YearSummary {
    pub fiscal_year: i32,
    pub mains: usize,
    pub km_renewed: f64,
    pub cost_yen: f64,
    /// Expected breaks in the year without any renewal since the plan started.
    pub breaks_without: f64,
    pub breaks_with: f64,
    /// Length-weighted mean age at the year's end, over mains with a known install year.
    pub mean_age_years: f64,
    /// Kilometres older than the 40-year legal life (法定耐用年数) at the year's end.
    pub km_past_legal_life: f64,
    /// Length of a policy deadline's mains that the year's budget could not reach.
    pub deadline_shortfall_km: f64,
}

impl YearSummary {
    pub fn breaks_avoided(&self) -> f64 {
        self.breaks_without - self.breaks_with
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub params: PlanParams,
    pub years: Vec<YearSummary>,
    pub schedule: Vec<Scheduled>,
    pub total_km: f64,
    /// Deadlines inside the horizon that the budget could not meet, with the km of their
    /// material still in service after the deadline's year.
    pub missed_deadlines: Vec<(Deadline, f64)>,
}

impl Plan {
    pub fn breaks_avoided(&self) -> f64 {
        self.years.iter().map(YearSummary::breaks_avoided).sum()
    }

    pub fn cost_yen(&self) -> f64 {
        self.years.iter().map(|y| y.cost_yen).sum()
    }

    pub fn km_renewed(&self) -> f64 {
        self.years.iter().map(|y| y.km_renewed).sum()
    }
}

/// The legal useful life of a distribution main (地方公営企業法施行規則 別表第二号).
pub const LEGAL_LIFE_YEARS: i32 = 40;

/// Builds the plan. Mains with no length are left out of every figure.
pub fn plan(pipes: &[PlanPipe], params: &PlanParams) -> Result<Plan, AnalyticsError> {
    params.check()?;
    let costs: Vec<f64> = pipes.iter().map(|p| params.unit_costs.cost(p)).collect();
    let mut renewed_in: Vec<Option<i32>> = vec![None; pipes.len()];
    let mut schedule = Vec::new();
    let mut years = Vec::with_capacity(params.years as usize);
    let total_km = pipes.iter().map(|p| p.length_m).sum::<f64>() / 1000.0;

    for t in 0..params.years {
        let fy = params.first_fiscal_year + t as i32;
        let growth = (1.0 + params.hazard_growth).powi(t as i32);
        let unrenewed_breaks = |i: usize| pipes[i].expected_breaks * growth;
        let avoided = |i: usize| (unrenewed_breaks(i) - params.new_rate * pipes[i].length_m / 1000.0).max(0.0);
        let spend = |i: usize| match params.budget {
            Budget::Yen(_) => costs[i],
            Budget::Km(_) => pipes[i].length_m / 1000.0,
        };
        // Breaks avoided per unit of budget, highest first; the asset id breaks ties so the
        // plan does not depend on input order.
        let by_value = |a: &usize, b: &usize| {
            let va = avoided(*a) / spend(*a).max(f64::MIN_POSITIVE);
            let vb = avoided(*b) / spend(*b).max(f64::MIN_POSITIVE);
            vb.total_cmp(&va).then_with(|| pipes[*a].asset_id.cmp(&pipes[*b].asset_id))
        };

        let mut left = params.budget.amount();
        let mut take = |i: usize, reason: Reason, left: &mut f64, renewed_in: &mut Vec<Option<i32>>| -> bool {
            let s = spend(i);
            if renewed_in[i].is_some() || pipes[i].length_m <= 0.0 || s > *left {
                return false;
            }
            *left -= s;
            renewed_in[i] = Some(fy);
            schedule.push(Scheduled {
                pipe: i,
                fiscal_year: fy,
                cost_yen: costs[i],
                reason,
                expected_breaks: unrenewed_breaks(i),
            });
            true
        };

        // 1. Policy deadlines: this year's even share of what is left, riskiest first; after
        //    the deadline, all that is left.
        let mut shortfall_km = 0.0;
        for d in &params.deadlines {
            let mut due: Vec<usize> =
                (0..pipes.len()).filter(|&i| renewed_in[i].is_none() && pipes[i].material == d.material).collect();
            let due_km: f64 = due.iter().map(|&i| pipes[i].length_m).sum::<f64>() / 1000.0;
            let years_left = (d.by_fiscal_year - fy + 1).max(1) as f64;
            let quota_km = due_km / years_left;
            due.sort_by(by_value);
            let mut got_km = 0.0;
            for i in due {
                if got_km >= quota_km - 1e-9 {
                    break;
                }
                if take(i, Reason::Deadline, &mut left, &mut renewed_in) {
                    got_km += pipes[i].length_m / 1000.0;
                }
            }
            shortfall_km += (quota_km - got_km).max(0.0);
        }
        // 2. Past the renewal-standard years, if the policy says so.
        if params.standard_years_first {
            let mut past: Vec<usize> =
                (0..pipes.len()).filter(|&i| renewed_in[i].is_none() && past_standard(&pipes[i], fy)).collect();
            past.sort_by(by_value);
            for i in past {
                take(i, Reason::StandardYears, &mut left, &mut renewed_in);
            }
        }
        // 3. The rest by value for money.
        let mut rest: Vec<usize> = (0..pipes.len()).filter(|&i| renewed_in[i].is_none()).collect();
        rest.sort_by(by_value);
        for i in rest {
            if left <= 0.0 {
                break;
            }
            take(i, Reason::Risk, &mut left, &mut renewed_in);
        }

        years.push(summarise(pipes, params, fy, growth, &renewed_in, &schedule, shortfall_km));
    }
    let horizon_end = params.first_fiscal_year + params.years as i32 - 1;
    let missed_deadlines = params
        .deadlines
        .iter()
        .filter(|d| d.by_fiscal_year <= horizon_end)
        .filter_map(|d| {
            let left_m: f64 = (0..pipes.len())
                .filter(|&i| pipes[i].material == d.material)
                .filter(|&i| renewed_in[i].is_none_or(|y| y > d.by_fiscal_year))
                .map(|i| pipes[i].length_m)
                .sum();
            (left_m > 0.0).then(|| (d.clone(), left_m / 1000.0))
        })
        .collect();
    Ok(Plan { params: params.clone(), years, schedule, total_km, missed_deadlines })
}

fn past_standard(pipe: &PlanPipe, fy: i32) -> bool {
    match (pipe.material.renewal_standard_years(), pipe.install_year) {
        (Some(years), Some(installed)) => fy - installed >= i32::from(years),
        _ => false,
    }
}

fn summarise(
    pipes: &[PlanPipe],
    params: &PlanParams,
    fy: i32,
    growth: f64,
    renewed_in: &[Option<i32>],
    schedule: &[Scheduled],
    deadline_shortfall_km: f64,
) -> YearSummary {
    let this_year: Vec<&Scheduled> = schedule.iter().filter(|s| s.fiscal_year == fy).collect();
    let (mut without, mut with) = (0.0, 0.0);
    let (mut age_m, mut known_m, mut old_m) = (0.0, 0.0, 0.0);
    for (i, p) in pipes.iter().enumerate() {
        let old = p.expected_breaks * growth;
        let new = params.new_rate * p.length_m / 1000.0;
        without += old;
        with += match renewed_in[i] {
            Some(y) if y < fy => new,
            Some(_) => 0.5 * (old + new),
            None => old,
        };
        let installed = match renewed_in[i] {
            Some(y) => Some(y),
            None => p.install_year,
        };
        if let Some(installed) = installed {
            let age = f64::from((fy - installed).max(0));
            age_m += age * p.length_m;
            known_m += p.length_m;
            if fy - installed > LEGAL_LIFE_YEARS {
                old_m += p.length_m;
            }
        }
    }
    YearSummary {
        fiscal_year: fy,
        mains: this_year.len(),
        km_renewed: this_year.iter().map(|s| pipes[s.pipe].length_m).sum::<f64>() / 1000.0,
        cost_yen: this_year.iter().map(|s| s.cost_yen).sum(),
        breaks_without: without,
        breaks_with: with,
        mean_age_years: if known_m > 0.0 { age_m / known_m } else { f64::NAN },
        km_past_legal_life: old_m / 1000.0,
        deadline_shortfall_km,
    }
}

/// Reads a ranking CSV as written by `mizumori risk rank` (columns `asset_id`,
/// `expected_breaks`, `material`, `diameter_mm`, `length_m`, `installed`; `district`, `x`, `y`
/// when present). A bad row is an error naming the file, line and column: a plan that silently
/// left mains out would understate the need.
pub fn read_ranking_csv(path: &Path) -> Result<Vec<PlanPipe>, AnalyticsError> {
    let open = |source| AnalyticsError::Open { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(open)?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let headers = reader.headers().map_err(|source| AnalyticsError::Header { path: path.to_owned(), source })?.clone();
    let index: HashMap<&str, usize> =
        headers.iter().enumerate().map(|(i, h)| (h.trim_start_matches('\u{feff}'), i)).collect();
    let need = |column: &'static str| {
        index.get(column).copied().ok_or_else(|| AnalyticsError::MissingColumn {
            path: path.to_owned(),
            profile: "ranking",
            column,
            what: "a renewal plan",
            found: headers.iter().collect::<Vec<_>>().join(","),
        })
    };
    let (id_c, eb_c, mat_c, dia_c, len_c, inst_c) = (
        need("asset_id")?,
        need("expected_breaks")?,
        need("material")?,
        need("diameter_mm")?,
        need("length_m")?,
        need("installed")?,
    );
    let (district_c, x_c, y_c) = (index.get("district").copied(), index.get("x").copied(), index.get("y").copied());

    let mut pipes = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let bad = |column: &str, why: String| AnalyticsError::Row {
            path: path.to_owned(),
            line,
            column: column.to_owned(),
            why,
        };
        let record = record.map_err(|e| bad("", e.to_string()))?;
        let field = |c: usize| record.get(c).unwrap_or("").trim();
        let number = |c: usize, name: &str| -> Result<Option<f64>, AnalyticsError> {
            let s = field(c);
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(bad(name, format!("{s:?} is not a number ≥ 0"))),
            }
        };
        let asset_id = field(id_c);
        if asset_id.is_empty() {
            return Err(bad("asset_id", "empty".into()));
        }
        let material = Material::parse(field(mat_c)).map_err(|e| bad("material", e.to_string()))?;
        let installed = field(inst_c);
        let install_year = if installed.is_empty() {
            None
        } else {
            Some(
                installed
                    .get(..4)
                    .and_then(|y| y.parse::<i32>().ok())
                    .ok_or_else(|| bad("installed", format!("{installed:?} is not a date (YYYY-MM-DD)")))?,
            )
        };
        let opt = |c: Option<usize>, name: &str| c.map_or(Ok(None), |c| number(c, name));
        pipes.push(PlanPipe {
            asset_id: asset_id.to_owned(),
            material,
            diameter_mm: number(dia_c, "diameter_mm")?.filter(|d| *d > 0.0),
            length_m: number(len_c, "length_m")?.ok_or_else(|| bad("length_m", "empty".into()))?,
            install_year,
            expected_breaks: number(eb_c, "expected_breaks")?.ok_or_else(|| bad("expected_breaks", "empty".into()))?,
            district: district_c.map(|c| field(c).to_owned()).filter(|d| !d.is_empty()),
            x: opt(x_c, "x")?,
            y: opt(y_c, "y")?,
        });
    }
    Ok(pipes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn pipe(id: &str, material: Material, diameter: f64, length_m: f64, installed: i32, eb: f64) -> PlanPipe {
        PlanPipe {
            asset_id: id.into(),
            material,
            diameter_mm: Some(diameter),
            length_m,
            install_year: Some(installed),
            expected_breaks: eb,
            district: None,
            x: None,
            y: None,
        }
    }

    fn random_network(seed: u64, n: usize) -> Vec<PlanPipe> {
        let mut rng = StdRng::seed_from_u64(seed);
        let materials = [Material::CastIron, Material::Pvc, Material::AsbestosCement, Material::Polyethylene];
        (0..n)
            .map(|i| {
                let m = materials[rng.random_range(0..materials.len())];
                let d = [75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 800.0][rng.random_range(0..7)];
                pipe(
                    &format!("P{i:05}"),
                    m,
                    d,
                    rng.random_range(5.0..600.0),
                    rng.random_range(1950..2020),
                    rng.random_range(0.0..0.3),
                )
            })
            .collect()
    }

    #[test]
    fn a_scheduled_mains_cells_round_as_the_exports_do_and_leave_unknowns_empty() {
        let mut known = pipe("P-1", Material::CastIron, 150.0, 86.26, 1962, 0.2);
        known.district = Some("配水区A".into());
        let unknown =
            PlanPipe { diameter_mm: None, install_year: None, ..pipe("P-2", Material::Pvc, 0.0, 40.0, 0, 0.1) };
        let pipes = [known, unknown];
        let scheduled = |pipe, cost_yen| Scheduled {
            pipe,
            fiscal_year: 2027,
            cost_yen,
            reason: Reason::Risk,
            expected_breaks: 0.2,
        };
        assert_eq!(
            scheduled(0, 12_939_000.4).cells(&pipes),
            ["2027", "P-1", "CI", "150", "86.3", "1962", "配水区A", "12939000"]
        );
        assert_eq!(scheduled(1, 3_999_999.5).cells(&pipes), ["2027", "P-2", "PVC", "", "40.0", "", "", "4000000"]);
    }

    #[test]
    fn no_year_ever_exceeds_its_budget() {
        for seed in 0..20 {
            let pipes = random_network(seed, 800);
            for budget in [Budget::Yen(3e8), Budget::Yen(1.2e9), Budget::Km(2.5), Budget::Km(0.3)] {
                let mut params = PlanParams::new(budget, 12, 2027);
                params.deadlines = vec![Deadline { material: Material::CastIron, by_fiscal_year: 2030 }];
                params.standard_years_first = seed % 2 == 0;
                let plan = plan(&pipes, &params).unwrap();
                for y in &plan.years {
                    let spent = match budget {
                        Budget::Yen(_) => y.cost_yen,
                        Budget::Km(_) => y.km_renewed,
                    };
                    assert!(spent <= budget.amount() * (1.0 + 1e-12), "{budget} FY{}: spent {spent}", y.fiscal_year);
                    assert!(y.breaks_with <= y.breaks_without + 1e-9);
                }
                // Each main at most once.
                let mut seen = std::collections::HashSet::new();
                assert!(plan.schedule.iter().all(|s| seen.insert(s.pipe)));
            }
        }
    }

    #[test]
    fn spends_on_the_most_breaks_per_yen_first() {
        // Same cost (same diameter and length), different expected breaks: the budget buys
        // exactly two mains, and it must buy the two worst.
        let pipes = vec![
            pipe("A", Material::Pvc, 150.0, 100.0, 1980, 0.05),
            pipe("B", Material::Pvc, 150.0, 100.0, 1980, 0.40),
            pipe("C", Material::Pvc, 150.0, 100.0, 1980, 0.20),
            pipe("D", Material::Pvc, 150.0, 100.0, 1980, 0.01),
        ];
        let cost = UnitCosts::default().cost(&pipes[0]);
        let plan = plan(&pipes, &PlanParams::new(Budget::Yen(2.0 * cost + 1.0), 1, 2027)).unwrap();
        let ids: Vec<&str> = plan.schedule.iter().map(|s| pipes[s.pipe].asset_id.as_str()).collect();
        assert_eq!(ids, ["B", "C"]);
        let y = &plan.years[0];
        // Mid-year convention: half of B's and C's breaks avoided, less half a new main's.
        let new = 0.005 * 0.1;
        assert!((y.breaks_avoided() - 0.5 * (0.40 - new + 0.20 - new)).abs() < 1e-12);
    }

    #[test]
    fn a_deadline_clears_its_material_in_time_and_evenly() {
        let mut pipes = random_network(7, 300);
        pipes.retain(|p| p.material != Material::CastIron);
        for i in 0..40 {
            pipes.push(pipe(&format!("CI{i}"), Material::CastIron, 100.0, 250.0, 1965, 0.001));
        }
        // 10 km of cast iron with almost no breaks: without the policy it would wait.
        let mut params = PlanParams::new(Budget::Km(6.0), 6, 2027);
        params.deadlines = vec![Deadline { material: Material::CastIron, by_fiscal_year: 2031 }];
        let plan = plan(&pipes, &params).unwrap();
        let ci_by_year = |fy| {
            plan.schedule
                .iter()
                .filter(|s| s.fiscal_year == fy && pipes[s.pipe].material == Material::CastIron)
                .map(|s| pipes[s.pipe].length_m / 1000.0)
                .sum::<f64>()
        };
        for fy in 2027..=2031 {
            assert!((ci_by_year(fy) - 2.0).abs() < 0.26, "FY{fy}: {} km of CI", ci_by_year(fy));
        }
        assert_eq!(ci_by_year(2032), 0.0);
        assert!(plan.years.iter().all(|y| y.deadline_shortfall_km < 1e-9));
        assert!(plan.missed_deadlines.is_empty());
        // Half the budget cannot do it: the plan says how much is left, and still spends
        // no more than the budget.
        params.budget = Budget::Km(1.0);
        let short = super::plan(&pipes, &params).unwrap();
        let (_, left_km) = &short.missed_deadlines[0];
        assert!((left_km - 5.0).abs() < 0.3, "{left_km} km of CI left after FY2031");
    }

    #[test]
    fn a_bigger_budget_avoids_more_breaks_and_keeps_the_network_younger() {
        let pipes = random_network(3, 1000);
        let small = plan(&pipes, &PlanParams::new(Budget::Yen(2e8), 10, 2027)).unwrap();
        let big = plan(&pipes, &PlanParams::new(Budget::Yen(8e8), 10, 2027)).unwrap();
        assert!(big.breaks_avoided() > small.breaks_avoided());
        assert!(big.km_renewed() > small.km_renewed());
        let last = |p: &Plan| p.years.last().unwrap().mean_age_years;
        assert!(last(&big) < last(&small));
    }

    #[test]
    fn budgets_parse_in_yen_oku_and_km() {
        assert_eq!(Budget::parse("800000000"), Ok(Budget::Yen(8e8)));
        assert_eq!(Budget::parse("8億"), Ok(Budget::Yen(8e8)));
        assert_eq!(Budget::parse("800M"), Ok(Budget::Yen(8e8)));
        assert_eq!(Budget::parse("¥800,000,000"), Ok(Budget::Yen(8e8)));
        assert_eq!(Budget::parse("5km"), Ok(Budget::Km(5.0)));
        for bad in ["", "km", "-5km", "0", "lots", "NaN"] {
            assert!(Budget::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Deadline::parse("CI:2035"), Ok(Deadline { material: Material::CastIron, by_fiscal_year: 2035 }));
        assert!(Deadline::parse("CI").is_err());
        assert!(Deadline::parse("CI:soon").is_err());
    }

    #[test]
    fn a_bad_ranking_row_names_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ranking.csv");
        std::fs::write(
            &path,
            "asset_id,score,expected_breaks,material,diameter_mm,length_m,installed\n\
             A,1,0.2,CI,150,100,1960-01-01\n\
             B,1,0.1,CI,150,lots,1960-01-01\n",
        )
        .unwrap();
        let err = read_ranking_csv(&path).unwrap_err().to_string();
        assert!(err.contains("ranking.csv") && err.contains("line 3") && err.contains("length_m"), "{err}");
        std::fs::write(&path, "asset_id,expected_breaks\nA,0.1\n").unwrap();
        let err = read_ranking_csv(&path).unwrap_err().to_string();
        assert!(err.contains("material"), "{err}");
    }
}
