//! The asset register (water mains) and the break history, as the rest of the crate sees them
//! once imported. No IO here: `import` reads files into these types, `synth` generates them.

use chrono::NaiveDate;
use model::AssetId;

use crate::geo::PipeGeometry;
use crate::material::Material;

/// Road class above a main: a break under an emergency transport road (緊急輸送道路) blocks
/// the routes a city needs after an earthquake, so it weighs on the consequence of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoadClass {
    /// 緊急輸送道路.
    Emergency,
    /// A main road (幹線道路).
    Arterial,
    /// A local street.
    Local,
}

impl RoadClass {
    pub fn parse(s: &str) -> Option<RoadClass> {
        match s.trim().to_ascii_lowercase().as_str() {
            "emergency" | "緊急輸送道路" => Some(RoadClass::Emergency),
            "arterial" | "幹線道路" | "幹線" => Some(RoadClass::Arterial),
            "local" | "生活道路" | "その他" => Some(RoadClass::Local),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            RoadClass::Emergency => "emergency",
            RoadClass::Arterial => "arterial",
            RoadClass::Local => "local",
        }
    }
}

/// One water main of the asset register.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub id: AssetId,
    pub material: Material,
    /// Nominal diameter; `None` when the register has none (Kitchener writes 0).
    pub diameter_mm: Option<f64>,
    pub length_m: f64,
    /// `None` when the register does not know; such a pipe counts as in service at any date
    /// and gets its material's median install year for its age.
    pub installed: Option<NaiveDate>,
    /// The day it was taken out of service, if it was.
    pub removed: Option<NaiveDate>,
    /// A utility's own criticality score, 0 (low) to 10 (high).
    pub criticality: Option<f64>,
    pub road_class: Option<RoadClass>,
    pub pressure_zone: Option<String>,
    /// The line the main follows (WGS 84), when the register has it (a GeoJSON import).
    pub geometry: Option<PipeGeometry>,
}

impl Pipe {
    /// The midpoint of the main's line as `(longitude, latitude)`, when it has geometry.
    pub fn midpoint(&self) -> Option<(f64, f64)> {
        self.geometry.as_ref().map(|g| {
            let [lon, lat] = g.midpoint();
            (lon, lat)
        })
    }

    /// In service on `date`: laid on or before it and not removed by then.
    pub fn in_service(&self, date: NaiveDate) -> bool {
        self.installed.is_none_or(|i| i <= date) && self.removed.is_none_or(|r| r > date)
    }
}

/// One main break (a repair on the main itself, not a service connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub asset_id: AssetId,
    pub date: NaiveDate,
}

/// The imported asset register with its id index.
#[derive(Debug, Clone, Default)]
pub struct Register {
    pipes: Vec<Pipe>,
    /// foldhash, not SipHash: ids come from the utility's own file, and hashing a million of
    /// them with SipHash was a visible share of a large ranking's time.
    index: foldhash::HashMap<AssetId, usize>,
}

impl Register {
    /// Builds the register; a later pipe with an id already present is returned as a
    /// duplicate instead of replacing the first.
    pub fn new(pipes: Vec<Pipe>) -> (Register, Vec<Pipe>) {
        let mut register = Register { pipes: Vec::with_capacity(pipes.len()), index: Default::default() };
        // Sized once: growing a million-entry map rehashes it twenty times.
        register.index.reserve(pipes.len());
        let mut duplicates = Vec::new();
        for pipe in pipes {
            if register.index.contains_key(&pipe.id) {
                duplicates.push(pipe);
            } else {
                register.index.insert(pipe.id.clone(), register.pipes.len());
                register.pipes.push(pipe);
            }
        }
        (register, duplicates)
    }

    /// The register of `pipes` with its id index already built (ids unique, `index` mapping
    /// each to its position): the import builds the map once while it checks for duplicates.
    pub(crate) fn from_indexed(pipes: Vec<Pipe>, index: foldhash::HashMap<AssetId, usize>) -> Register {
        debug_assert!(
            index.len() == pipes.len() && pipes.iter().enumerate().all(|(i, p)| index.get(&p.id) == Some(&i))
        );
        Register { pipes, index }
    }

    pub fn pipes(&self) -> &[Pipe] {
        &self.pipes
    }

    /// For attaching what the import learns after the register is built (geometry).
    pub(crate) fn pipes_mut(&mut self) -> &mut [Pipe] {
        &mut self.pipes
    }

    pub fn get(&self, id: &AssetId) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.pipes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }

    /// Total length in km.
    pub fn length_km(&self) -> f64 {
        self.pipes.iter().map(|p| p.length_m).sum::<f64>() / 1000.0
    }
}
