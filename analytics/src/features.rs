//! Features of each main as of a date, and pipe-year panels for training.
//!
//! The one rule here is that nothing on or after the as-of date reaches a feature: the break
//! history is only ever read through [`History::before`], which cuts at the date. Labels (the
//! breaks of the year that follows an as-of date) are read by [`History::count_in`] and only
//! for windows that end on or before the as-of date of the model being trained.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Months, NaiveDate};
use rayon::prelude::*;

use crate::asset::{Break, Register};
use crate::material::Material;
use crate::pressure::ZonePressure;

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
    /// The pressure of the main's zone from the store's readings, when known
    /// ([`FeatureBuilder::with_pressure`]).
    pub pressure: Option<Pressure>,
}

/// The pressure features a model uses: those of the main's zone ([`ZonePressure`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub mean_bar: f64,
    pub max_bar: f64,
    pub transients_per_day: f64,
}

impl From<&ZonePressure> for Pressure {
    fn from(z: &ZonePressure) -> Pressure {
        Pressure { mean_bar: z.mean_bar, max_bar: z.max_bar, transients_per_day: z.transients_per_day }
    }
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
    /// Pressure features by register position, for mains whose zone has them; empty without.
    pressure: Vec<Option<Pressure>>,
    zones: BTreeMap<String, ZonePressure>,
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
        FeatureBuilder {
            register,
            history,
            median_year,
            overall_median_year,
            pressure: Vec::new(),
            zones: BTreeMap::new(),
        }
    }

    /// Gives each main the pressure features of its zone (by the register's `pressure_zone`).
    /// They are read from recent readings and used for every year of a training panel too:
    /// a zone's pressure regime (its reservoir level, its pressure-reducing valves) is taken
    /// as a lasting property of the zone, because the store holds no readings of years ago.
    pub fn with_pressure(mut self, zones: BTreeMap<String, ZonePressure>) -> Self {
        self.pressure = self
            .register
            .pipes()
            .iter()
            .map(|p| p.pressure_zone.as_deref().and_then(|z| zones.get(z)).map(Pressure::from))
            .collect();
        self.zones = zones;
        self
    }

    /// The zone pressure features given to [`Self::with_pressure`].
    pub fn zone_pressure(&self) -> &BTreeMap<String, ZonePressure> {
        &self.zones
    }

    /// The pressure features of main `i`, if its zone has them.
    pub fn pressure_of(&self, i: usize) -> Option<&ZonePressure> {
        let zone = self.register.pipes()[i].pressure_zone.as_deref()?;
        self.zones.get(zone)
    }

    pub fn register(&self) -> &Register {
        self.register
    }

    pub fn history(&self) -> &History {
        self.history
    }

    /// Features of every main in service on `as_of`, in register order.
    pub fn as_of(&self, as_of: NaiveDate) -> Vec<Features> {
        self.as_of_where(as_of, |_| true)
    }

    /// [`Self::as_of`] for about `max_rows` of the mains in service, drawn at random but
    /// depending only on (main, year), so a sample is the same run after run; all of them when
    /// there are no more than `max_rows`.
    pub fn sample_as_of(&self, as_of: NaiveDate, max_rows: usize) -> Vec<Features> {
        let in_service = self.register.pipes().iter().filter(|p| p.in_service(as_of)).count();
        if in_service <= max_rows {
            return self.as_of(as_of);
        }
        let keep = max_rows as f64 / in_service as f64;
        self.as_of_where(as_of, |i| unit_hash(i as u64, as_of.year()) < keep)
    }

    /// Features of the mains in service on `as_of` whose register position passes `keep`.
    fn as_of_where(&self, as_of: NaiveDate, keep: impl Fn(usize) -> bool + Sync) -> Vec<Features> {
        let five_years_ago = years_before(as_of, 5);
        // Over the cores: a million mains' break histories are a million binary searches.
        self.register
            .pipes()
            .par_iter()
            .enumerate()
            .filter(|(i, p)| p.in_service(as_of) && keep(*i))
            .map(|(i, _)| self.features(i, as_of, five_years_ago))
            .collect()
    }

    /// Features of main `i` (in service on `as_of`).
    fn features(&self, i: usize, as_of: NaiveDate, five_years_ago: NaiveDate) -> Features {
        let p = &self.register.pipes()[i];
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
            pressure: self.pressure.get(i).copied().flatten(),
        }
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
        self.sampled_panel(as_of, years, usize::MAX)
    }

    /// [`Self::panel`] with at most about `max_rows` rows: every pipe-year with a break is
    /// kept (unless they alone would fill more than half of it), and pipe-years without one
    /// are kept with the probability that fits the rest in, each row weighted by the inverse
    /// of its probability (case-control sampling), so weighted sums of the panel still
    /// estimate the whole panel's. Which rows are kept depends only on (main, year), so a
    /// ranking is reproducible. A large register trains in bounded time this way: breaks are
    /// rare, and the information is in them.
    pub fn sampled_panel(&self, as_of: NaiveDate, years: u32, max_rows: usize) -> Panel {
        let starts: Vec<NaiveDate> = (1..=years).map(|k| years_before(as_of, k)).collect();
        // Labels first: they are cheap and decide the sampling rate.
        let labelled: Vec<Vec<(usize, u32)>> = starts
            .par_iter()
            .map(|&start| {
                let end = one_year_after(start);
                let pipes = self.register.pipes().iter().enumerate();
                pipes
                    .filter(|(_, p)| p.in_service(start))
                    .map(|(i, _)| (i, self.history.count_in(i, start, end)))
                    .collect()
            })
            .collect();
        let total: usize = labelled.iter().map(Vec::len).sum();
        let positives = labelled.iter().flatten().filter(|(_, b)| *b > 0).count();
        // Sampling rates for pipe-years with and without a break. When breaks alone would
        // fill more than half the panel, both are sampled (at the same rate, so the break
        // share stays the panel's); a model needs quiet pipe-years to compare with.
        let (keep_positive, keep_negative) = if total <= max_rows {
            (1.0, 1.0)
        } else if positives <= max_rows / 2 {
            (1.0, (max_rows - positives) as f64 / (total - positives).max(1) as f64)
        } else {
            let rate = max_rows as f64 / total as f64;
            (rate, rate)
        };
        let mut panel = Panel::default();
        for (start, rows) in starts.iter().zip(labelled) {
            let five_years_ago = years_before(*start, 5);
            for (i, breaks) in rows {
                let keep = if breaks == 0 { keep_negative } else { keep_positive };
                if keep < 1.0 && unit_hash(i as u64, start.year()) >= keep {
                    continue;
                }
                panel.rows.push(self.features(i, *start, five_years_ago));
                panel.breaks.push(f64::from(breaks));
                panel.weights.push(1.0 / keep);
            }
        }
        panel
    }
}

/// A number in [0, 1) that depends only on (main, year): splitmix64 of the pair.
fn unit_hash(pipe: u64, year: i32) -> f64 {
    let mut z = pipe.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (year as u64).wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Pipe-year rows with their breaks in the year (the label) and the weight of each row (the
/// number of pipe-years it stands for: 1 unless the panel was sampled).
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub rows: Vec<Features>,
    pub breaks: Vec<f64>,
    pub weights: Vec<f64>,
}

impl Panel {
    pub fn total_breaks(&self) -> f64 {
        self.breaks.iter().zip(&self.weights).map(|(b, w)| b * w).sum()
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
            geometry: None,
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

    #[test]
    fn a_sampled_panel_keeps_every_break_and_weighs_the_rest_to_the_whole() {
        let city = crate::synth::generate(&crate::synth::SynthParams { network_km: 300.0, ..Default::default() });
        let history = History::new(&city.register, &city.breaks);
        let b = FeatureBuilder::new(&city.register, &history);
        let as_of = date(2020, 1, 1);
        let full = b.panel(as_of, 10);
        let sampled = b.sampled_panel(as_of, 10, full.rows.len() / 10);
        assert!(sampled.rows.len() < full.rows.len() / 8, "{} of {}", sampled.rows.len(), full.rows.len());
        assert_eq!(sampled.total_breaks(), full.total_breaks());
        let positives = |p: &Panel| p.breaks.iter().filter(|b| **b > 0.0).count();
        assert_eq!(positives(&sampled), positives(&full));
        // The weighted pipe-years estimate the panel's within a few per cent.
        let weighted: f64 = sampled.weights.iter().sum();
        let ratio = weighted / full.rows.len() as f64;
        assert!((0.97..1.03).contains(&ratio), "{ratio}");
        assert_eq!(sampled.rows, b.sampled_panel(as_of, 10, full.rows.len() / 10).rows, "reproducible");
        // When breaks alone would fill the panel, both kinds are sampled at one rate.
        let all = full.breaks.iter().filter(|b| **b > 0.0).count();
        let tight = b.sampled_panel(as_of, 10, all);
        let kept = positives(&tight);
        assert!(kept < all && kept * 20 < tight.rows.len(), "{kept} of {} rows", tight.rows.len());
        let ratio = tight.weights.iter().sum::<f64>() / full.rows.len() as f64;
        assert!((0.9..1.1).contains(&ratio), "{ratio}");
    }
}
