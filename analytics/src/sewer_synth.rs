//! A synthetic sewer network with known deterioration curves, so that tests and demos of the
//! sewer ranking have ground truth.
//!
//! The city is the same Chitose-like one as `synth`: some 450 km of 管きょ (sewer spans,
//! manhole to manhole, about 40 m each). Materials follow the eras of a Hokkaido city's sewers:
//! Hume (reinforced concrete) and vitrified clay from the late 1960s, PVC (VU) taking over
//! small diameters from the 1980s, FRPM for large ones from the 1990s, polyethylene lately.
//! Each span's crossing ages into 緊急度 III, II and I are drawn from [`PlantedCurves`]
//! (one uniform draw per span through the three Weibull quantiles, so grades never go back),
//! and an inspection programme CCTV-surveys a share of the length every year, older spans
//! more likely first, recording the grade each span had reached on that day.

use std::path::Path;

use chrono::{Datelike, NaiveDate};
use model::AssetId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::AnalyticsError;
use crate::asset::RoadClass;
use crate::sewer::{Grade, Inspection, SewerMaterial, SewerPipe, SewerRegister};
use crate::sewer_curve::Weibull;

/// The planted curves: one Weibull shape per material and the scales (years) of the ages at
/// reaching 緊急度 III, II and I. The same shape with ordered scales keeps III ≤ II ≤ I.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedCurves;

impl PlantedCurves {
    /// (shape, scale to III, scale to II, scale to I). Clay joints and concrete corrosion
    /// age fastest (the NILIM national curve's target life is about 47 years); plastics last.
    pub fn params(material: SewerMaterial) -> (f64, f64, f64, f64) {
        match material {
            SewerMaterial::VitrifiedClay => (2.8, 35.0, 50.0, 70.0),
            SewerMaterial::ReinforcedConcrete | SewerMaterial::BoxCulvert => (3.0, 40.0, 58.0, 80.0),
            SewerMaterial::Frpm => (3.0, 55.0, 85.0, 120.0),
            SewerMaterial::Pvc => (3.0, 60.0, 95.0, 140.0),
            SewerMaterial::Polyethylene => (3.0, 70.0, 110.0, 160.0),
            _ => (3.0, 45.0, 65.0, 90.0),
        }
    }

    /// The planted curve of reaching `threshold` (III, II or I) for `material`.
    pub fn weibull(material: SewerMaterial, threshold: Grade) -> Weibull {
        let (shape, iii, ii, i) = PlantedCurves::params(material);
        let scale = match threshold {
            Grade::I => i,
            Grade::II => ii,
            _ => iii,
        };
        Weibull { shape, scale }
    }
}

/// Settings of the generator.
#[derive(Debug, Clone)]
pub struct SewerSynthParams {
    pub seed: u64,
    /// About how many km of 管きょ.
    pub network_km: f64,
    /// The first year of the CCTV programme.
    pub inspections_from: i32,
    /// The last year with inspections.
    pub last_year: i32,
    /// Share of the network's length surveyed each year.
    pub share_per_year: f64,
}

impl Default for SewerSynthParams {
    fn default() -> Self {
        SewerSynthParams { seed: 1, network_km: 450.0, inspections_from: 2008, last_year: 2025, share_per_year: 0.07 }
    }
}

/// A generated sewer network and its inspection history.
#[derive(Debug, Clone)]
pub struct SyntheticSewers {
    pub register: SewerRegister,
    pub inspections: Vec<Inspection>,
    /// Each span's quantile on its material's planted curves: the hidden truth.
    pub frailty: Vec<f64>,
}

/// (first year, last year, share of spans, material mix with weights).
type Era = (i32, i32, f64, &'static [(SewerMaterial, f64)]);

const ERAS: &[Era] = &[
    (1966, 1979, 0.25, &[(SewerMaterial::ReinforcedConcrete, 0.55), (SewerMaterial::VitrifiedClay, 0.45)]),
    (
        1980,
        1994,
        0.35,
        &[(SewerMaterial::ReinforcedConcrete, 0.35), (SewerMaterial::Pvc, 0.55), (SewerMaterial::VitrifiedClay, 0.10)],
    ),
    (
        1995,
        2009,
        0.28,
        &[(SewerMaterial::Pvc, 0.70), (SewerMaterial::ReinforcedConcrete, 0.15), (SewerMaterial::Frpm, 0.15)],
    ),
    (2010, 2024, 0.12, &[(SewerMaterial::Pvc, 0.80), (SewerMaterial::Frpm, 0.10), (SewerMaterial::Polyethylene, 0.10)]),
];

fn pick<T: Copy>(rng: &mut SmallRng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items.last().expect("a non-empty table").0
}

fn diameter(rng: &mut SmallRng, material: SewerMaterial) -> f64 {
    let sizes: &[(f64, f64)] = match material {
        SewerMaterial::Pvc | SewerMaterial::Polyethylene => &[(200.0, 5.0), (250.0, 2.0), (300.0, 1.0)],
        SewerMaterial::VitrifiedClay => &[(200.0, 3.0), (250.0, 2.0), (300.0, 1.0)],
        SewerMaterial::Frpm => &[(600.0, 2.0), (800.0, 2.0), (1000.0, 1.0), (1350.0, 0.5)],
        _ => &[(250.0, 3.0), (300.0, 3.0), (450.0, 2.0), (600.0, 1.0), (900.0, 0.5), (1200.0, 0.3)],
    };
    pick(rng, sizes)
}

/// Generates the network and its inspections.
pub fn generate_sewers(params: &SewerSynthParams) -> SyntheticSewers {
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let eras: Vec<_> = ERAS.iter().map(|e| (e, e.2)).collect();
    let mut pipes = Vec::new();
    // The quantile each span sits at on all three curves (its own frailty).
    let mut frailty = Vec::new();
    let mut km = 0.0;
    while km < params.network_km {
        let (from, to, _, mix) = *pick(&mut rng, &eras);
        let year = rng.random_range(from..=to);
        let material = pick(&mut rng, mix);
        // Manhole spacing: log-normal with a median of about 40 m.
        let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        let length_m = (40.0 * (0.35 * z).exp()).clamp(8.0, 120.0).round();
        let road_class =
            pick(&mut rng, &[(RoadClass::Emergency, 0.08), (RoadClass::Arterial, 0.22), (RoadClass::Local, 0.70)]);
        let district = pick(&mut rng, &[("千歳処理区", 0.8), ("向陽台処理区", 0.2)]);
        let id = AssetId::new(format!("SW-{:06}", pipes.len() + 1)).expect("a safe name");
        pipes.push(SewerPipe {
            id,
            material,
            diameter_mm: Some(diameter(&mut rng, material)),
            length_m,
            installed: NaiveDate::from_ymd_opt(year, rng.random_range(5..=10), 1),
            depth_m: Some((1.2 + rng.random::<f64>() * 3.5 * 10.0).round() / 10.0),
            road_class: Some(road_class),
            district: Some(district.to_owned()),
        });
        frailty.push(rng.random::<f64>());
        km += length_m / 1000.0;
    }
    let mut inspections = Vec::new();
    let mut last_seen: Vec<Option<i32>> = vec![None; pipes.len()];
    let total_m: f64 = pipes.iter().map(|p| p.length_m).sum();
    for year in params.inspections_from..=params.last_year {
        // Older spans first, with enough noise that every era gets some surveys; a span is
        // not surveyed again within ten years.
        let mut candidates: Vec<(f64, usize)> = pipes
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                p.installed.is_some_and(|d| d.year() < year) && last_seen[*i].is_none_or(|y| year - y >= 10)
            })
            .map(|(i, p)| {
                let age = f64::from(year - p.installed.map_or(year, |d| d.year()));
                (age + rng.random::<f64>() * 40.0, i)
            })
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut surveyed = 0.0;
        for (_, i) in candidates {
            if surveyed >= params.share_per_year * total_m {
                break;
            }
            let date =
                NaiveDate::from_ymd_opt(year, rng.random_range(5..=10), rng.random_range(1..=28)).expect("a valid day");
            inspections.push(Inspection {
                span: pipes[i].id.clone(),
                date,
                grade: true_grade(&pipes[i], frailty[i], date),
            });
            last_seen[i] = Some(year);
            surveyed += pipes[i].length_m;
        }
    }
    inspections.sort_by(|a, b| a.date.cmp(&b.date).then(a.span.cmp(&b.span)));
    SyntheticSewers { register: SewerRegister::new(pipes), inspections, frailty }
}

/// The grade a span at quantile `u` of its material's planted curves has on `date`.
fn true_grade(pipe: &SewerPipe, u: f64, date: NaiveDate) -> Grade {
    let Some(installed) = pipe.installed else { return Grade::Sound };
    let age = (date - installed).num_days() as f64 / 365.25;
    [Grade::I, Grade::II, Grade::III]
        .into_iter()
        .find(|&g| PlantedCurves::weibull(pipe.material, g).quantile(u) <= age)
        .unwrap_or(Grade::Sound)
}

impl SyntheticSewers {
    /// The true grade of span `i` on `date` (what a perfect inspection would see).
    pub fn true_grade(&self, i: usize, date: NaiveDate) -> Grade {
        true_grade(&self.register.pipes[i], self.frailty[i], date)
    }

    /// Writes `sewer_pipes.csv` and `sewer_inspections.csv` in the mizumori sewer schema,
    /// with Japanese material names and grades as a Japanese ledger would have them.
    pub fn write_csv(&self, dir: &Path) -> Result<(), AnalyticsError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| AnalyticsError::Write { path, source }
        };
        let path = dir.join("sewer_pipes.csv");
        let mut w = csv::Writer::from_path(&path).map_err(err(&path))?;
        w.write_record([
            "span_id",
            "material",
            "diameter_mm",
            "length_m",
            "installed",
            "depth_m",
            "road_class",
            "district",
        ])
        .map_err(err(&path))?;
        for p in &self.register.pipes {
            let opt = |v: Option<String>| v.unwrap_or_default();
            w.write_record([
                p.id.to_string(),
                p.material.name_ja().to_owned(),
                opt(p.diameter_mm.map(|d| d.to_string())),
                p.length_m.to_string(),
                opt(p.installed.map(|d| d.to_string())),
                opt(p.depth_m.map(|d| d.to_string())),
                opt(p.road_class.map(|r| r.code().to_owned())),
                opt(p.district.clone()),
            ])
            .map_err(err(&path))?;
        }
        w.flush().map_err(|e| err(&path)(csv::Error::from(e)))?;
        let path = dir.join("sewer_inspections.csv");
        let mut w = csv::Writer::from_path(&path).map_err(err(&path))?;
        w.write_record(["span_id", "date", "grade"]).map_err(err(&path))?;
        for i in &self.inspections {
            w.write_record([i.span.to_string(), i.date.to_string(), i.grade.name_ja().to_owned()])
                .map_err(err(&path))?;
        }
        w.flush().map_err(|e| err(&path)(csv::Error::from(e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sewer::{SewerProfile, import_inspections, import_sewer_pipes};
    use crate::sewer_curve::{DeteriorationModel, rank_spans};

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
    }

    #[test]
    fn the_network_has_the_intended_size_and_programme() {
        let s = generate_sewers(&SewerSynthParams::default());
        let km = s.register.length_km();
        assert!((450.0..452.0).contains(&km), "{km} km");
        let inspected_km: f64 =
            s.inspections.iter().map(|i| s.register.pipes[s.register.get(&i.span).unwrap()].length_m).sum::<f64>()
                / 1000.0;
        let per_year = inspected_km / 18.0 / km;
        assert!((0.05..0.10).contains(&per_year), "{per_year} of the length a year");
        // Reproducible from the seed.
        assert_eq!(generate_sewers(&SewerSynthParams::default()).inspections, s.inspections);
    }

    #[test]
    fn written_files_import_without_issues() {
        let s = generate_sewers(&SewerSynthParams { network_km: 30.0, ..SewerSynthParams::default() });
        let dir = tempfile::tempdir().unwrap();
        s.write_csv(dir.path()).unwrap();
        let profile = SewerProfile::mizumori();
        let (register, report) = import_sewer_pipes(&dir.path().join("sewer_pipes.csv"), &profile).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(register.pipes, s.register.pipes);
        let (inspections, report) =
            import_inspections(&dir.path().join("sewer_inspections.csv"), &profile, &register).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(inspections, s.inspections);
    }

    /// The fitted curves recover the planted ones: the target life (age at 50 % 緊急度 I+II)
    /// of the well-observed materials within 10 %, their ordering, and the shape.
    #[test]
    fn fitted_curves_recover_the_planted_ones() {
        let s = generate_sewers(&SewerSynthParams::default());
        let model = DeteriorationModel::fit(&s.register, &s.inspections, as_of()).unwrap();
        let life = |m: SewerMaterial| model.curve(m).target_life();
        let planted = |m: SewerMaterial| PlantedCurves::weibull(m, Grade::II).median();
        for m in [SewerMaterial::ReinforcedConcrete, SewerMaterial::VitrifiedClay] {
            let c = model.curve(m);
            assert!(c.fallback.is_none(), "{m}: {:?}", c.fallback);
            let (got, want) = (life(m), planted(m));
            assert!((got - want).abs() / want < 0.10, "{m}: target life {got:.1} y, planted {want:.1} y");
            let shape = PlantedCurves::params(m).0;
            assert!((c.ii.shape - shape).abs() < 0.6, "{m}: shape {:.2}, planted {shape}", c.ii.shape);
            let sound_at_40 = c.sound_share(40.0);
            let want = PlantedCurves::weibull(m, Grade::III).survival(40.0);
            assert!((sound_at_40 - want).abs() < 0.06, "{m}: 健全率 at 40 y {sound_at_40:.3}, planted {want:.3}");
        }
        // Planted order: clay ages fastest, then concrete, then PVC.
        assert!(life(SewerMaterial::VitrifiedClay) < life(SewerMaterial::ReinforcedConcrete));
        assert!(
            life(SewerMaterial::ReinforcedConcrete) < life(SewerMaterial::Pvc),
            "{:?}",
            model.curve(SewerMaterial::Pvc)
        );
    }

    /// The ranking finds the spans that will truly be at 緊急度 II or worse in five years: the
    /// top 10 % of spans hold several times their share of them, and the predicted
    /// probabilities of the uninspected spans match the true share (calibration).
    #[test]
    fn the_ranking_finds_the_spans_that_deteriorate() {
        let s = generate_sewers(&SewerSynthParams::default());
        let model = DeteriorationModel::fit(&s.register, &s.inspections, as_of()).unwrap();
        let ranking = rank_spans(&s.register, &s.inspections, &model, as_of(), 5);
        let n = ranking.rows.len();
        assert_eq!(n, s.register.pipes.len());
        assert!(ranking.rows.iter().enumerate().all(|(k, r)| r.priority == k + 1));
        let in_5y = as_of() + chrono::Days::new(5 * 365);
        let bad = |pipe: usize| s.true_grade(pipe, in_5y) >= Grade::II;
        let total_bad = ranking.rows.iter().filter(|r| bad(r.pipe)).count();
        let top = n / 10;
        let top_bad = ranking.rows[..top].iter().filter(|r| bad(r.pipe)).count();
        let lift = (top_bad as f64 / top as f64) / (total_bad as f64 / n as f64);
        assert!(lift > 3.0, "top 10 %: {top_bad} of {top} spans at II+ in 5 y, {total_bad} of {n} overall");
        // Calibration on the spans not yet seen at II, whose p comes from the curves: the
        // predicted count is within 10 % of the true one (seed 1: 1,079 predicted, 1,005
        // true; the fitted scales' own error, a few %, dominates the binomial noise).
        let open: Vec<_> = ranking.rows.iter().filter(|r| r.latest.is_none_or(|(_, g)| g < Grade::II)).collect();
        let predicted = open.iter().map(|r| r.p_ii).sum::<f64>();
        let observed = open.iter().filter(|r| bad(r.pipe)).count() as f64;
        assert!((predicted - observed).abs() / observed < 0.10, "predicted {predicted:.0}, true {observed}");
        assert!(observed > 100.0, "{observed}: too few to check calibration");
        // Every span last seen at 緊急度 I comes first.
        let is_i = |r: &&crate::sewer_curve::RankedSpan| r.latest.is_some_and(|(_, g)| g == Grade::I);
        let first_not_i = ranking.rows.iter().position(|r| !is_i(&r)).unwrap();
        assert!(first_not_i > 0 && ranking.rows[first_not_i..].iter().all(|r| !is_i(&r)));
    }
}
