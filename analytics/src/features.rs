//! Features of each main as of a date, and pipe-year panels for training.
//!
//! The one rule here is that nothing on or after the as-of date reaches a feature: the break
//! history is only ever read through [`History::before`], which cuts at the date. Labels (the
//! breaks of the year that follows an as-of date) are read by [`History::count_in`] and only
//! for windows that end on or before the as-of date of the model being trained.

use std::collections::HashMap;

use chrono::{Datelike, Months, NaiveDate};

use crate::asset::{Break, Register};
use crate::material::Material;

/// Break dates of every main, by register position, sorted.
#[derive(Debug, Clone)]
pub struct History {
    per_pipe: Vec<Vec<NaiveDate>>,
}

impl History {
    /// Breaks of mains not in `register` are ignored (the importer has rejected them already).
    pub fn new(register: &Register, breaks: &[Break]) -> History {
        let mut per_pipe = vec![Vec::new(); register.len()];
        for b in breaks {
            if let Some(i) = register.get(&b.asset_id) {
                per_pipe[i].push(b.date);
            }
        }
        for dates in &mut per_pipe {
            dates.sort_unstable();
        }
        History { per_pipe }
    }

    /// The breaks of main `pipe` strictly before `date`.
    pub fn before(&self, pipe: usize, date: NaiveDate) -> &[NaiveDate] {
        let dates = &self.per_pipe[pipe];
        &dates[..dates.partition_point(|d| *d < date)]
    }

    /// The number of breaks of main `pipe` in `[from, to)`.
    pub fn count_in(&self, pipe: usize, from: NaiveDate, to: NaiveDate) -> u32 {
        let dates = &self.per_pipe[pipe];
        let a = dates.partition_point(|d| *d < from);
        let b = dates.partition_point(|d| *d < to);
        (b - a) as u32
    }
}

/// What a model may know about one main on one as-of date.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Position in the register.
    pub pipe: usize,
    pub material: Material,
    pub age_years: f64,
    /// False when the install date was unknown and the material's median was used.
    pub age_known: bool,
    /// Install decade (1960 for 1960–1969): the cohort.
    pub decade: i32,
    pub diameter_mm: Option<f64>,
    pub length_m: f64,
    pub prior_breaks: u32,
    pub breaks_last_5y: u32,
    pub years_since_last_break: Option<f64>,
}

impl Features {
    pub fn length_km(&self) -> f64 {
        self.length_m / 1000.0
    }
}

/// One year after `date` (29 February becomes 28 February).
pub fn one_year_after(date: NaiveDate) -> NaiveDate {
    date.checked_add_months(Months::new(12)).expect("dates are years 1800..=2200")
}

/// `years` years before `date`.
pub fn years_before(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_sub_months(Months::new(12 * years)).expect("dates are years 1800..=2200")
}

/// Computes features of the register's mains as of a date.
#[derive(Debug, Clone)]
pub struct FeatureBuilder<'a> {
    register: &'a Register,
    history: &'a History,
    /// Median install year by material, for mains whose install date is unknown.
    median_year: HashMap<Material, i32>,
    overall_median_year: i32,
}

impl<'a> FeatureBuilder<'a> {
    pub fn new(register: &'a Register, history: &'a History) -> Self {
        let mut years: HashMap<Material, Vec<i32>> = HashMap::new();
        let mut all = Vec::new();
        for p in register.pipes() {
            if let Some(d) = p.installed {
                years.entry(p.material).or_default().push(d.year());
                all.push(d.year());
            }
        }
        let median = |v: &mut Vec<i32>| {
            v.sort_unstable();
            v[v.len() / 2]
        };
        let overall_median_year = if all.is_empty() { 1980 } else { median(&mut all) };
        let median_year = years.into_iter().map(|(m, mut v)| (m, median(&mut v))).collect();
        FeatureBuilder { register, history, median_year, overall_median_year }
    }

    pub fn register(&self) -> &Register {
        self.register
    }

    pub fn history(&self) -> &History {
        self.history
    }

    /// Features of every main in service on `as_of`, in register order.
    pub fn as_of(&self, as_of: NaiveDate) -> Vec<Features> {
        let five_years_ago = years_before(as_of, 5);
        self.register
            .pipes()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.in_service(as_of))
            .map(|(i, p)| {
                let prior = self.history.before(i, as_of);
                let (install_year, age_known, age_years) = match p.installed {
                    Some(d) => (d.year(), true, (as_of - d).num_days() as f64 / 365.25),
                    None => {
                        let y = self.median_year.get(&p.material).copied().unwrap_or(self.overall_median_year);
                        (y, false, f64::from(as_of.year() - y))
                    }
                };
                Features {
                    pipe: i,
                    material: p.material,
                    age_years: age_years.max(0.0),
                    age_known,
                    decade: install_year.div_euclid(10) * 10,
                    diameter_mm: p.diameter_mm,
                    length_m: p.length_m,
                    prior_breaks: prior.len() as u32,
                    breaks_last_5y: prior.iter().filter(|d| **d >= five_years_ago).count() as u32,
                    years_since_last_break: prior.last().map(|d| (as_of - *d).num_days() as f64 / 365.25),
                }
            })
            .collect()
    }

    /// Breaks of each row's main in the year from `as_of`: the label of a panel row.
    pub fn next_year_breaks(&self, rows: &[Features], as_of: NaiveDate) -> Vec<f64> {
        let end = one_year_after(as_of);
        rows.iter().map(|r| f64::from(self.history.count_in(r.pipe, as_of, end))).collect()
    }

    /// The training panel for a model used on `as_of`: for each of the `years` years before
    /// it, the features as of that year's start and the breaks of that year. Every label
    /// window ends on or before `as_of`, so no break on or after it is used.
    pub fn panel(&self, as_of: NaiveDate, years: u32) -> Panel {
        let mut panel = Panel::default();
        for k in 1..=years {
            let start = years_before(as_of, k);
            let rows = self.as_of(start);
            panel.breaks.extend(self.next_year_breaks(&rows, start));
            panel.rows.extend(rows);
        }
        panel
    }
}

/// Pipe-year rows with their breaks in the year (the label).
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub rows: Vec<Features>,
    pub breaks: Vec<f64>,
}

impl Panel {
    pub fn total_breaks(&self) -> f64 {
        self.breaks.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::Pipe;
    use model::AssetId;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn pipe(id: &str, installed: Option<NaiveDate>) -> Pipe {
        Pipe {
            id: AssetId::new(id).unwrap(),
            material: Material::CastIron,
            diameter_mm: Some(150.0),
            length_m: 100.0,
            installed,
            removed: None,
            criticality: None,
            road_class: None,
            pressure_zone: None,
        }
    }

    fn brk(id: &str, d: NaiveDate) -> Break {
        Break { asset_id: AssetId::new(id).unwrap(), date: d }
    }

    #[test]
    fn features_see_only_breaks_before_the_as_of_date() {
        let (register, _) = Register::new(vec![
            pipe("a", Some(date(1960, 1, 1))),
            pipe("b", None),
            Pipe { material: Material::Pvc, ..pipe("c", Some(date(2021, 1, 1))) },
        ]);
        let early = vec![brk("a", date(2015, 6, 1)), brk("a", date(2019, 12, 31))];
        let mut all = early.clone();
        // Breaks on and after the as-of date, including one on the day itself.
        all.extend([brk("a", date(2020, 1, 1)), brk("a", date(2020, 3, 1))]);
        all.extend([brk("b", date(2020, 2, 2))]);
        let as_of = date(2020, 1, 1);
        let h_early = History::new(&register, &early);
        let h_all = History::new(&register, &all);
        let f_early = FeatureBuilder::new(&register, &h_early).as_of(as_of);
        let f_all = FeatureBuilder::new(&register, &h_all).as_of(as_of);
        assert_eq!(f_early, f_all);
        assert_eq!(f_all.len(), 2, "c is laid after the as-of date");
        assert_eq!(f_all[0].prior_breaks, 2);
        assert_eq!(f_all[0].breaks_last_5y, 2);
        assert!((f_all[0].years_since_last_break.unwrap() - 1.0 / 365.25).abs() < 1e-9);
        assert!(!f_all[1].age_known);
        assert_eq!(f_all[1].decade, 1960, "the material's median");
        // The panel for this date uses labels up to 2019 only.
        let b = FeatureBuilder::new(&register, &h_all);
        let panel = b.panel(as_of, 5);
        assert_eq!(panel.total_breaks(), 2.0);
        let panel_early = FeatureBuilder::new(&register, &h_early).panel(as_of, 5);
        assert_eq!(panel.rows, panel_early.rows);
        assert_eq!(panel.breaks, panel_early.breaks);
        // The label of the year from the as-of date does see them.
        assert_eq!(b.next_year_breaks(&f_all, as_of), [2.0, 1.0]);
    }
}
