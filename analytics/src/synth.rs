//! A synthetic water network with a known hazard, so that tests and demos have ground truth.
//!
//! The city is shaped like Chitose (千歳市, Hokkaido): about 100,000 people and roughly 650 km
//! of distribution mains, laid mostly from the 1960s as the city grew around the airport and
//! the bases. Materials follow the eras a Hokkaido waterworks went through: grey cast iron,
//! asbestos cement and steel before 1965; A-joint ductile iron and PVC through the 1970s;
//! K-joint ductile iron in the 1980s; NS-joint ductile iron and polyethylene from the late
//! 1990s; GX-joint ductile iron from 2010. Breaks are drawn year by year from
//! [`HazardModel`], whose rates are public so that a test can check that a model recovers them.
//! Real registers cannot ship with the repository; this one is generated from a seed.

use std::path::Path;

use chrono::{Datelike, NaiveDate};
use model::AssetId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::AnalyticsError;
use crate::asset::{Break, Pipe, Register, RoadClass};
use crate::geo::PipeGeometry;
use crate::material::{DiJoint, Material};

/// The planted hazard: breaks per km per year of a main.
///
/// rate = base(material) × exp(age_per_year × age) × (150 / diameter)^diameter_exponent
///        × (1 + per_prior_break × min(prior, 3)) × zone_factor(pressure zone)
///
/// The prior-break factor makes a main that broke break again (the LEYP idea), as real data
/// shows. The zone factor (1 unless `zone_factor` names the zone) plants the effect of a
/// zone's pressure regime, so a test can check that pressure features recover it.
#[derive(Debug, Clone, PartialEq)]
pub struct HazardModel {
    pub age_per_year: f64,
    pub diameter_exponent: f64,
    pub per_prior_break: f64,
    /// (zone, multiplier of its mains' break rate); empty by default.
    pub zone_factor: Vec<(String, f64)>,
}

impl Default for HazardModel {
    fn default() -> Self {
        HazardModel { age_per_year: 0.015, diameter_exponent: 0.5, per_prior_break: 0.6, zone_factor: Vec::new() }
    }
}

impl HazardModel {
    /// Breaks per km per year of a new 150 mm main of `material` with no break history.
    /// Ordered as the reference's Kitchener rates and Japanese experience suggest: grey cast
    /// iron worst, earthquake-resistant ductile iron and polyethylene best.
    pub fn base_rate(&self, material: Material) -> f64 {
        match material {
            Material::CastIron => 0.15,
            Material::AsbestosCement => 0.10,
            Material::Pvc | Material::PvcOriented => 0.05,
            Material::DuctileIron(DiJoint::A) => 0.04,
            Material::Steel => 0.035,
            Material::DuctileIron(DiJoint::K | DiJoint::Unspecified) => 0.025,
            Material::DuctileIron(DiJoint::Ns | DiJoint::Seismic) => 0.008,
            Material::Polyethylene => 0.007,
            Material::DuctileIron(DiJoint::Gx) => 0.005,
            _ => 0.03,
        }
    }

    /// Breaks per km per year of `pipe` at `age` years with `prior` recorded breaks.
    pub fn rate(&self, pipe: &Pipe, age: f64, prior: u32) -> f64 {
        let d = pipe.diameter_mm.unwrap_or(150.0);
        self.base_rate(pipe.material)
            * (self.age_per_year * age.max(0.0)).exp()
            * (150.0 / d).powf(self.diameter_exponent)
            * (1.0 + self.per_prior_break * f64::from(prior.min(3)))
            * self.zone_factor(pipe)
    }

    fn zone_factor(&self, pipe: &Pipe) -> f64 {
        let Some(zone) = &pipe.pressure_zone else { return 1.0 };
        self.zone_factor.iter().find(|(z, _)| z == zone).map_or(1.0, |(_, f)| *f)
    }
}

/// Settings of the generator.
#[derive(Debug, Clone)]
pub struct SynthParams {
    pub seed: u64,
    /// About how many km of mains.
    pub network_km: f64,
    /// Exactly this many mains instead (`network_km` is then ignored): the scale knob of the
    /// benchmarks.
    pub pipes: Option<usize>,
    /// Breaks are recorded from 1 January of this year (older ones are lost, as in real ledgers).
    pub records_from: i32,
    /// The last year with breaks.
    pub last_year: i32,
    pub hazard: HazardModel,
    /// Pressure zones the mains are spread over at random (`Z1`…`Z6` by default; the demo
    /// uses its simulator's district names, so that readings and mains meet).
    pub zones: Vec<String>,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            seed: 1,
            network_km: 650.0,
            pipes: None,
            records_from: 1995,
            last_year: 2024,
            hazard: HazardModel::default(),
            zones: (1..=6).map(|z| format!("Z{z}")).collect(),
        }
    }
}

/// A generated city: its register, its break history and the hazard that drew it.
#[derive(Debug, Clone)]
pub struct SyntheticCity {
    pub register: Register,
    pub breaks: Vec<Break>,
    pub hazard: HazardModel,
}

/// Era of installation → (share of the network's pipes, material mix with weights).
/// (first year, last year, share of pipes, material mix with weights).
type Era = (i32, i32, f64, &'static [(Material, f64)]);

const ERAS: &[Era] = &[
    (1955, 1964, 0.10, &[(Material::CastIron, 0.6), (Material::AsbestosCement, 0.3), (Material::Steel, 0.1)]),
    (
        1965,
        1979,
        0.28,
        &[
            (Material::AsbestosCement, 0.25),
            (Material::CastIron, 0.10),
            (Material::DuctileIron(DiJoint::A), 0.30),
            (Material::Pvc, 0.35),
        ],
    ),
    (1980, 1994, 0.27, &[(Material::DuctileIron(DiJoint::K), 0.55), (Material::Pvc, 0.40), (Material::Steel, 0.05)]),
    (
        1995,
        2009,
        0.20,
        &[(Material::DuctileIron(DiJoint::Ns), 0.60), (Material::Polyethylene, 0.20), (Material::Pvc, 0.20)],
    ),
    (2010, 2023, 0.15, &[(Material::DuctileIron(DiJoint::Gx), 0.70), (Material::Polyethylene, 0.30)]),
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

/// A Poisson draw (Knuth's method: the means here are far below 1).
fn poisson(rng: &mut SmallRng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p = rng.random::<f64>();
    while p > limit {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

fn diameter(rng: &mut SmallRng, material: Material) -> f64 {
    let sizes: &[(f64, f64)] = match material {
        Material::Pvc | Material::Polyethylene => &[(50.0, 2.0), (75.0, 3.0), (100.0, 3.0), (150.0, 2.0)],
        Material::Steel => &[(300.0, 1.0), (400.0, 1.0), (600.0, 1.0)],
        Material::AsbestosCement => &[(75.0, 2.0), (100.0, 3.0), (150.0, 2.0), (200.0, 1.0)],
        Material::CastIron => &[(75.0, 2.0), (100.0, 3.0), (150.0, 3.0), (250.0, 1.0), (300.0, 1.0)],
        _ => &[(75.0, 2.0), (100.0, 4.0), (150.0, 4.0), (200.0, 2.0), (300.0, 1.0), (400.0, 0.5)],
    };
    pick(rng, sizes)
}

/// Generates the city.
pub fn generate(params: &SynthParams) -> SyntheticCity {
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let eras: Vec<_> = ERAS.iter().map(|e| (e, e.2)).collect();
    let mut pipes = Vec::new();
    let mut km = 0.0;
    let more = |count: usize, km: f64| match params.pipes {
        Some(n) => count < n,
        None => km < params.network_km,
    };
    while more(pipes.len(), km) {
        let (from, to, _, mix) = *pick(&mut rng, &eras);
        let year = rng.random_range(from..=to);
        let material = pick(&mut rng, mix);
        // Log-normal lengths with a median of about 80 m, like block-to-block mains.
        let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        let length_m = (80.0 * (0.7 * z).exp()).clamp(5.0, 800.0).round();
        let road_class =
            pick(&mut rng, &[(RoadClass::Emergency, 0.1), (RoadClass::Arterial, 0.25), (RoadClass::Local, 0.65)]);
        let id = AssetId::new(format!("CHT-{:06}", pipes.len() + 1)).expect("a safe name");
        pipes.push(Pipe {
            id,
            material,
            diameter_mm: Some(diameter(&mut rng, material)),
            length_m,
            installed: NaiveDate::from_ymd_opt(year, rng.random_range(4..=11), 1),
            removed: None,
            criticality: None,
            road_class: Some(road_class),
            // Drawn as 1..=n, as when the zones were always Z1…Z6, so that those cities stay
            // the same pipe for pipe.
            pressure_zone: (!params.zones.is_empty())
                .then(|| params.zones[rng.random_range(1..=params.zones.len() as i32) as usize - 1].clone()),
            geometry: None,
        });
        km += length_m / 1000.0;
    }
    let mut breaks = Vec::new();
    let mut prior = vec![0u32; pipes.len()];
    for year in params.records_from..=params.last_year {
        let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).expect("a valid year");
        for (i, pipe) in pipes.iter().enumerate() {
            let Some(installed) = pipe.installed.filter(|d| d.year() <= year) else {
                continue;
            };
            let age = f64::from(year - installed.year());
            let mean = params.hazard.rate(pipe, age, prior[i]) * pipe.length_m / 1000.0;
            let mut days: Vec<u32> = (0..poisson(&mut rng, mean)).map(|_| rng.random_range(0..365)).collect();
            days.sort_unstable();
            for day in days {
                let date = jan1 + chrono::Days::new(u64::from(day));
                if date < installed {
                    continue;
                }
                breaks.push(Break { asset_id: pipe.id.clone(), date });
                prior[i] += 1;
            }
        }
    }
    let (register, duplicates) = Register::new(pipes);
    debug_assert!(duplicates.is_empty());
    SyntheticCity { register, breaks, hazard: params.hazard.clone() }
}

/// The centre of Chitose (千歳市役所, about 42.821 N 141.651 E), around which the synthetic
/// mains are laid on a street grid.
pub const CHITOSE: [f64; 2] = [141.651, 42.821];

/// Lays every main of `city` along a street of a grid around [`CHITOSE`] (WGS 84), so maps
/// and GeoJSON exports have places to show. Older mains sit nearer the centre, as the city
/// grew outward from it; a main runs east-west or north-south from a crossing for its length.
/// A separate generator seeded from `seed`, so the register and breaks do not change.
pub fn lay_out_streets(city: &mut SyntheticCity, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_57ee7);
    const BLOCK_M: f64 = 110.0;
    let m_per_deg_lat = 111_132.0;
    let m_per_deg_lon = 111_320.0 * CHITOSE[1].to_radians().cos();
    for pipe in city.register.pipes_mut() {
        let year = pipe.installed.map_or(1980, |d| d.year());
        // Blocks from the centre: 10 (about 1 km) for the 1950s, out to about 45 (5 km) by 2020.
        let reach = (10.0 + f64::from((year - 1955).clamp(0, 70)) * 0.5) as i32;
        let (i, j) = (rng.random_range(-reach..=reach), rng.random_range(-reach..=reach));
        let start =
            [CHITOSE[0] + f64::from(i) * BLOCK_M / m_per_deg_lon, CHITOSE[1] + f64::from(j) * BLOCK_M / m_per_deg_lat];
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        let end = if rng.random::<bool>() {
            [start[0] + sign * pipe.length_m / m_per_deg_lon, start[1]]
        } else {
            [start[0], start[1] + sign * pipe.length_m / m_per_deg_lat]
        };
        // Degrees per metre above are the sphere's; rescale so the line's geodesic length on
        // the ellipsoid is the main's length.
        let rough = PipeGeometry::new(vec![vec![start, end]]).expect("positions near Chitose");
        let k = pipe.length_m / rough.length_m();
        let end = [start[0] + k * (end[0] - start[0]), start[1] + k * (end[1] - start[1])];
        pipe.geometry = Some(PipeGeometry::new(vec![vec![start, end]]).expect("positions near Chitose"));
    }
}

impl SyntheticCity {
    /// Writes `assets.csv` and `breaks.csv` in the mizumori schema (docs/analytics.md), with
    /// Japanese material names as a Japanese ledger would have them.
    pub fn write_csv(&self, dir: &Path) -> Result<(), AnalyticsError> {
        let assets = dir.join("assets.csv");
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| AnalyticsError::Write { path, source }
        };
        let mut w = csv::Writer::from_path(&assets).map_err(err(&assets))?;
        w.write_record([
            "asset_id",
            "material",
            "diameter_mm",
            "length_m",
            "installed",
            "removed",
            "criticality",
            "road_class",
            "pressure_zone",
        ])
        .map_err(err(&assets))?;
        for p in self.register.pipes() {
            let opt = |v: Option<String>| v.unwrap_or_default();
            w.write_record([
                p.id.to_string(),
                p.material.name_ja().to_owned(),
                opt(p.diameter_mm.map(|d| d.to_string())),
                p.length_m.to_string(),
                opt(p.installed.map(|d| d.to_string())),
                opt(p.removed.map(|d| d.to_string())),
                opt(p.criticality.map(|c| c.to_string())),
                opt(p.road_class.map(|r| r.code().to_owned())),
                opt(p.pressure_zone.clone()),
            ])
            .map_err(err(&assets))?;
        }
        w.flush().map_err(|e| err(&assets)(csv::Error::from(e)))?;
        let path = dir.join("breaks.csv");
        let mut w = csv::Writer::from_path(&path).map_err(err(&path))?;
        w.write_record(["asset_id", "date"]).map_err(err(&path))?;
        for b in &self.breaks {
            w.write_record([b.asset_id.to_string(), b.date.to_string()]).map_err(err(&path))?;
        }
        w.flush().map_err(|e| err(&path)(csv::Error::from(e)))?;
        Ok(())
    }
}

impl SyntheticCity {
    /// Writes `assets.geojson`: the register as a FeatureCollection of LineStrings (WGS 84)
    /// with the mizumori columns as properties, for mains that have a line (see
    /// [`lay_out_streets`]).
    pub fn write_geojson(&self, dir: &Path) -> Result<(), AnalyticsError> {
        use serde_json::{Value, json};
        let path = dir.join("assets.geojson");
        let features: Vec<Value> = self
            .register
            .pipes()
            .iter()
            .filter_map(|p| {
                let g = p.geometry.as_ref()?;
                let coordinates: Vec<Value> = g.parts[0].iter().map(|[lon, lat]| json!([lon, lat])).collect();
                Some(json!({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coordinates},
                "properties": {
                    "asset_id": p.id.as_str(), "material": p.material.name_ja(), "diameter_mm": p.diameter_mm,
                    "length_m": p.length_m, "installed": p.installed.map(|d| d.to_string()),
                    "road_class": p.road_class.map(|r| r.code()), "pressure_zone": p.pressure_zone,
                }}))
            })
            .collect();
        let text = json!({"type": "FeatureCollection", "features": features}).to_string();
        std::fs::write(&path, text)
            .map_err(|e| AnalyticsError::Write { path: path.clone(), source: csv::Error::from(e) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Profile, import_assets, import_breaks};

    #[test]
    fn the_city_has_the_intended_size_and_is_reproducible() {
        let params = SynthParams::default();
        let a = generate(&params);
        let b = generate(&params);
        assert_eq!(a.breaks, b.breaks);
        let km = a.register.length_km();
        assert!((650.0..700.0).contains(&km), "{km} km");
        let per_year = a.breaks.len() as f64 / 30.0;
        assert!((20.0..200.0).contains(&per_year), "{per_year} breaks a year");
        let c = generate(&SynthParams { seed: 2, ..params.clone() });
        assert_ne!(a.breaks, c.breaks);
        assert_eq!(generate(&SynthParams { pipes: Some(1234), ..params }).register.len(), 1234);
    }

    #[test]
    fn written_files_import_without_issues() {
        let city = generate(&SynthParams { network_km: 50.0, ..SynthParams::default() });
        let dir = tempfile::tempdir().unwrap();
        city.write_csv(dir.path()).unwrap();
        let profile = Profile::mizumori();
        let (register, report) = import_assets(&dir.path().join("assets.csv"), &profile).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(register.pipes(), city.register.pipes());
        let (breaks, report) = import_breaks(&dir.path().join("breaks.csv"), &profile, &register).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(breaks, city.breaks);
    }

    #[test]
    fn laid_out_mains_read_back_from_geojson_with_their_lines() {
        let mut city = generate(&SynthParams { network_km: 30.0, ..SynthParams::default() });
        lay_out_streets(&mut city, 1);
        let dir = tempfile::tempdir().unwrap();
        city.write_geojson(dir.path()).unwrap();
        let (register, report) =
            crate::import_assets_geojson(&dir.path().join("assets.geojson"), &Profile::mizumori()).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(register.pipes(), city.register.pipes());
        for p in register.pipes() {
            let g = p.geometry.as_ref().unwrap();
            // The line is as long as the main (to the centimetre) and within 6 km of the centre.
            assert!((g.length_m() - p.length_m).abs() < 0.5, "{}: {} vs {}", p.id, g.length_m(), p.length_m);
            let [lon, lat] = g.midpoint();
            assert!((lon - CHITOSE[0]).abs() < 0.08 && (lat - CHITOSE[1]).abs() < 0.06, "{lon} {lat}");
        }
    }
}
