//! Sewer pipes (管きょ) and their CCTV inspections: the register, the condition grades and their
//! import from CSV.
//!
//! Japanese sewer risk is driven by condition, not by breaks: a CCTV or visual inspection rates
//! each span (manhole to manhole) 緊急度 I (severe: act promptly), II (act within about five
//! years), III (minor: five years or more) or 劣化なし (no deterioration), after the MLIT
//! stock-management guideline. `sewer_curve` fits deterioration curves to these grades and
//! ranks the spans; `sewer_synth` generates a city with known curves. Files are read with the
//! same row-by-row checks as the water-main import: a bad row becomes an [`Issue`] with file,
//! line, column and reason, and the good rows are kept.

use std::fmt;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use model::AssetId;

use crate::AnalyticsError;
use crate::asset::RoadClass;
use crate::import::{ImportReport, Severity, Table, bad_date, parse_date};
use crate::material::normalise;

/// The material of a sewer pipe (管種), whatever the ledger calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SewerMaterial {
    /// Reinforced concrete (鉄筋コンクリート管, ヒューム管 Hume pipe; HP, RC, RCP).
    ReinforcedConcrete,
    /// Vitrified clay (陶管; VC, VCP, TP).
    VitrifiedClay,
    /// Unplasticised PVC (硬質塩化ビニル管; VU, VP, PVC, リブ付き).
    Pvc,
    /// Fibre-reinforced plastic mortar (強化プラスチック複合管; FRPM).
    Frpm,
    /// Polyethylene (ポリエチレン管; PE, HDPE).
    Polyethylene,
    /// Ductile iron, mostly force mains (ダクタイル鋳鉄管; DIP, DCIP).
    DuctileIron,
    /// Box culvert or other rectangular conduit (ボックスカルバート, 矩形きょ).
    BoxCulvert,
    /// A spelling we recognise as a material but have no class for.
    Other,
    /// The ledger says it does not know (不明, empty).
    Unknown,
}

/// Every sewer material, in report order.
pub const SEWER_MATERIALS: [SewerMaterial; 9] = [
    SewerMaterial::ReinforcedConcrete,
    SewerMaterial::VitrifiedClay,
    SewerMaterial::Pvc,
    SewerMaterial::Frpm,
    SewerMaterial::Polyethylene,
    SewerMaterial::DuctileIron,
    SewerMaterial::BoxCulvert,
    SewerMaterial::Other,
    SewerMaterial::Unknown,
];

/// A material spelling that no rule recognises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sewer material {0:?}: use a code such as HP, RC, VC, VU, FRPM, PE or a Japanese name (ヒューム管, 陶管)"
)]
pub struct UnknownSewerMaterial(pub String);

impl SewerMaterial {
    /// Reads a ledger's spelling: codes (`HP`, `RC`, `VC`, `VU`, `FRPM`), Japanese names
    /// (鉄筋コンクリート管, ヒューム管, 陶管, 硬質塩化ビニル管, 強化プラスチック複合管), full-width
    /// letters folded.
    pub fn parse(text: &str) -> Result<SewerMaterial, UnknownSewerMaterial> {
        use SewerMaterial::*;
        let s = normalise(text);
        let has = |needle: &str| s.contains(needle);
        let is = |codes: &[&str]| codes.contains(&s.as_str());
        if s.is_empty() || is(&["UNKNOWN", "不明", "-", "?"]) {
            return Ok(Unknown);
        }
        // Order matters: 強化プラスチック複合管 is not concrete although it holds mortar, and
        // "DUCTILE" must not be read as anything else.
        if has("強化プラスチック") || is(&["FRPM", "FRP", "FRPM管"]) {
            return Ok(Frpm);
        }
        if has("ダクタイル") || has("鋳鉄") || is(&["DIP", "DCIP", "DI"]) {
            return Ok(DuctileIron);
        }
        if has("ボックス") || has("カルバート") || has("矩形") || is(&["BOX", "BC", "RCBOX"]) {
            return Ok(BoxCulvert);
        }
        if has("ヒューム")
            || has("鉄筋コンクリート")
            || has("コンクリート")
            || is(&["HP", "RC", "RCP", "CP", "HUME", "CONCRETE"])
        {
            return Ok(ReinforcedConcrete);
        }
        if has("陶") || is(&["VC", "VCP", "TP", "CLAY"]) {
            return Ok(VitrifiedClay);
        }
        if has("塩化ビニル") || has("塩ビ") || is(&["VU", "VP", "PVC", "PRP", "RIB"]) {
            return Ok(Pvc);
        }
        if has("ポリエチレン") || is(&["PE", "HDPE", "PEP"]) {
            return Ok(Polyethylene);
        }
        if is(&["OTHER", "その他"]) {
            return Ok(Other);
        }
        Err(UnknownSewerMaterial(text.trim().to_owned()))
    }

    pub fn code(self) -> &'static str {
        use SewerMaterial::*;
        match self {
            ReinforcedConcrete => "RC",
            VitrifiedClay => "VC",
            Pvc => "PVC",
            Frpm => "FRPM",
            Polyethylene => "PE",
            DuctileIron => "DIP",
            BoxCulvert => "BOX",
            Other => "OTHER",
            Unknown => "UNKNOWN",
        }
    }

    pub fn name_ja(self) -> &'static str {
        use SewerMaterial::*;
        match self {
            ReinforcedConcrete => "鉄筋コンクリート管",
            VitrifiedClay => "陶管",
            Pvc => "硬質塩化ビニル管",
            Frpm => "強化プラスチック複合管",
            Polyethylene => "ポリエチレン管",
            DuctileIron => "ダクタイル鋳鉄管",
            BoxCulvert => "ボックスカルバート",
            Other => "その他",
            Unknown => "不明",
        }
    }

    pub fn name_en(self) -> &'static str {
        use SewerMaterial::*;
        match self {
            ReinforcedConcrete => "reinforced concrete (Hume)",
            VitrifiedClay => "vitrified clay",
            Pvc => "PVC",
            Frpm => "FRPM",
            Polyethylene => "polyethylene",
            DuctileIron => "ductile iron",
            BoxCulvert => "box culvert",
            Other => "other",
            Unknown => "unknown",
        }
    }
}

impl fmt::Display for SewerMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// 緊急度: the condition grade of a span from an inspection, ordered from sound to severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    /// 劣化なし: no deterioration found.
    Sound,
    /// 緊急度 III (軽度): minor; simple measures defer action five years or more.
    III,
    /// 緊急度 II (中度): plan the countermeasure within about five years.
    II,
    /// 緊急度 I (重度): act promptly.
    I,
}

impl Grade {
    /// Reads `緊急度Ⅰ`, `Ⅱ`, `III`, `2`, `なし`, `none`, `劣化なし` and the like.
    pub fn parse(text: &str) -> Option<Grade> {
        let s = normalise(text);
        let s = s.strip_prefix("緊急度").unwrap_or(&s).trim();
        let s = s.replace('Ⅰ', "I").replace('Ⅱ', "II").replace('Ⅲ', "III");
        match s.as_str() {
            "I" | "1" => Some(Grade::I),
            "II" | "2" => Some(Grade::II),
            "III" | "3" => Some(Grade::III),
            "なし" | "劣化なし" | "NONE" | "SOUND" | "0" | "健全" => Some(Grade::Sound),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Grade::Sound => "none",
            Grade::III => "III",
            Grade::II => "II",
            Grade::I => "I",
        }
    }

    pub fn name_ja(self) -> &'static str {
        match self {
            Grade::Sound => "劣化なし",
            Grade::III => "緊急度Ⅲ",
            Grade::II => "緊急度Ⅱ",
            Grade::I => "緊急度Ⅰ",
        }
    }
}

/// One sewer span (管きょ, manhole to manhole) of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct SewerPipe {
    pub id: AssetId,
    pub material: SewerMaterial,
    pub diameter_mm: Option<f64>,
    pub length_m: f64,
    /// `None` when the ledger does not know; the span then gets its material's median
    /// install year in the register for its age.
    pub installed: Option<NaiveDate>,
    /// Earth cover (土被り) in metres.
    pub depth_m: Option<f64>,
    pub road_class: Option<RoadClass>,
    /// Treatment district (処理区) or drainage area.
    pub district: Option<String>,
}

/// One inspection of one span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub span: AssetId,
    pub date: NaiveDate,
    pub grade: Grade,
}

/// The sewer register with its id index.
#[derive(Debug, Clone, Default)]
pub struct SewerRegister {
    pub pipes: Vec<SewerPipe>,
    index: foldhash::HashMap<AssetId, usize>,
}

impl SewerRegister {
    /// Builds the register; ids must be unique (the import rejects repeats row by row).
    pub fn new(pipes: Vec<SewerPipe>) -> SewerRegister {
        let index = pipes.iter().enumerate().map(|(i, p)| (p.id.clone(), i)).collect();
        SewerRegister { pipes, index }
    }

    pub fn get(&self, id: &AssetId) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn length_km(&self) -> f64 {
        self.pipes.iter().map(|p| p.length_m).sum::<f64>() / 1000.0
    }

    /// The median install year of the spans of `material` whose year is known, else of all.
    pub fn median_install_year(&self, material: SewerMaterial) -> Option<i32> {
        let years = |same: bool| {
            let mut v: Vec<i32> = self
                .pipes
                .iter()
                .filter(|p| !same || p.material == material)
                .filter_map(|p| p.installed.map(|d| d.year()))
                .collect();
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        };
        years(true).or_else(|| years(false))
    }
}

/// Which columns of a sewer ledger and an inspection file hold what.
#[derive(Debug, Clone)]
pub struct SewerProfile {
    pub name: &'static str,
    pub id: &'static str,
    pub material: &'static str,
    pub length_m: &'static str,
    pub installed: &'static str,
    pub diameter_mm: &'static str,
    pub depth_m: &'static str,
    pub road_class: &'static str,
    pub district: &'static str,
    pub inspection_span: &'static str,
    pub inspection_date: &'static str,
    pub inspection_grade: &'static str,
}

impl SewerProfile {
    /// Mizumori's schema (docs/analytics.md, "Sewers").
    pub fn mizumori() -> SewerProfile {
        SewerProfile {
            name: "mizumori",
            id: "span_id",
            material: "material",
            length_m: "length_m",
            installed: "installed",
            diameter_mm: "diameter_mm",
            depth_m: "depth_m",
            road_class: "road_class",
            district: "district",
            inspection_span: "span_id",
            inspection_date: "date",
            inspection_grade: "grade",
        }
    }

    /// Japanese headers as a 下水道台帳 export might have them.
    pub fn ja() -> SewerProfile {
        SewerProfile {
            name: "ja",
            id: "管きょ番号",
            material: "管種",
            length_m: "延長",
            installed: "布設年度",
            diameter_mm: "管径",
            depth_m: "土被り",
            road_class: "道路種別",
            district: "処理区",
            inspection_span: "管きょ番号",
            inspection_date: "調査日",
            inspection_grade: "緊急度",
        }
    }

    pub fn by_name(name: &str) -> Result<SewerProfile, AnalyticsError> {
        match name {
            "mizumori" => Ok(SewerProfile::mizumori()),
            "ja" => Ok(SewerProfile::ja()),
            other => Err(AnalyticsError::UnknownSewerProfile(other.to_owned())),
        }
    }
}

/// A positive number of the row's column `i`, or a warning and `None`.
fn positive(row: &crate::import::Row, report: &mut ImportReport, i: Option<usize>, what: &str) -> Option<f64> {
    let i = i?;
    match row.get(i).trim() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Some(v),
            _ => {
                row.issue(
                    report,
                    i,
                    Severity::Warning,
                    format!("{what} {text:?} is not a number above 0; read as unknown"),
                );
                None
            }
        },
    }
}

/// Reads the sewer register. Only the id, material, length and install date columns are
/// required; the others may be absent.
pub fn import_sewer_pipes(
    path: &Path,
    profile: &SewerProfile,
) -> Result<(SewerRegister, ImportReport), AnalyticsError> {
    let mut table = Table::open(path, profile.name)?;
    let id_col = table.required(profile.id, "the span id")?;
    let material = table.required(profile.material, "the material")?;
    let length = table.required(profile.length_m, "the length")?;
    let installed = table.required(profile.installed, "the install date")?;
    let diameter = table.find(profile.diameter_mm);
    let depth = table.find(profile.depth_m);
    let road = table.find(profile.road_class);
    let district = table.find(profile.district);

    let mut report = ImportReport::default();
    let mut pipes = Vec::new();
    let mut first_line: foldhash::HashMap<AssetId, u64> = Default::default();
    table.for_each_row(&mut report, |row, report| {
        let mut ok = true;
        let id = row.asset_id(id_col, report, &mut ok);
        let material = row.or_other(report, material, SewerMaterial::parse(row.get(material)), SewerMaterial::Other);
        let length_m = row.length_m(report, length);
        let installed = row.install_date(report, installed, &mut ok);
        let diameter_mm = positive(row, report, diameter, "diameter");
        let depth_m = positive(row, report, depth, "depth");
        let road_class = row.road_class(report, road);
        let district = district.map(|i| row.get(i).trim().to_owned()).filter(|d| !d.is_empty());
        if let (true, Some(id), Some(length_m)) = (ok, id, length_m) {
            if let Some(first) = first_line.get(&id) {
                row.reject(report, id_col, &format!("duplicate span id {id}: line {first} has it first and is kept"));
                return;
            }
            first_line.insert(id.clone(), row.line);
            pipes.push(SewerPipe { id, material, diameter_mm, length_m, installed, depth_m, road_class, district });
        }
    });
    report.accepted = pipes.len();
    Ok((SewerRegister::new(pipes), report))
}

/// Reads the inspection history, checking each row against the register.
pub fn import_inspections(
    path: &Path,
    profile: &SewerProfile,
    register: &SewerRegister,
) -> Result<(Vec<Inspection>, ImportReport), AnalyticsError> {
    let mut table = Table::open(path, profile.name)?;
    let span = table.required(profile.inspection_span, "the inspected span's id")?;
    let date = table.required(profile.inspection_date, "the inspection date")?;
    let grade = table.required(profile.inspection_grade, "the grade (緊急度)")?;
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    table.for_each_row(&mut report, |row, report| {
        let mut ok = true;
        let id = row.asset_id(span, report, &mut ok);
        let when = match parse_date(row.get(date).trim()) {
            Some(d) => Some(d),
            None => {
                row.reject(report, date, &bad_date(row.get(date).trim()));
                None
            }
        };
        let g = Grade::parse(row.get(grade));
        if g.is_none() {
            let text = row.get(grade).trim();
            let why = format!("{text:?} is not a grade: use I, II, III (緊急度Ⅰ/Ⅱ/Ⅲ, 1/2/3) or none (なし)");
            row.reject(report, grade, &why);
        }
        let (Some(id), Some(when), Some(g)) = (id, when, g) else {
            return;
        };
        let Some(i) = register.get(&id) else {
            row.reject(report, span, &format!("span {id} is not in the sewer register"));
            return;
        };
        if let Some(installed) = register.pipes[i].installed.filter(|d| *d > when) {
            row.reject(report, date, &format!("inspected on {when}, before the span was laid ({installed})"));
            return;
        }
        rows.push(Inspection { span: id, date: when, grade: g });
    });
    report.accepted = rows.len();
    Ok((rows, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn materials() {
        #[track_caller]
        fn check(text: &str, expected: SewerMaterial) {
            assert_eq!(SewerMaterial::parse(text), Ok(expected), "{text:?}");
        }
        use SewerMaterial::*;
        check("鉄筋コンクリート管", ReinforcedConcrete);
        check("ヒューム管", ReinforcedConcrete);
        check("HP", ReinforcedConcrete);
        check("ｈｐ", ReinforcedConcrete);
        check("陶管", VitrifiedClay);
        check("VCP", VitrifiedClay);
        check("硬質塩化ビニル管", Pvc);
        check("VU", Pvc);
        check("強化プラスチック複合管", Frpm);
        check("FRPM", Frpm);
        check("ポリエチレン管", Polyethylene);
        check("ダクタイル鋳鉄管", DuctileIron);
        check("ボックスカルバート", BoxCulvert);
        check("不明", Unknown);
        check("", Unknown);
        assert!(SewerMaterial::parse("wood").is_err());
        for m in SEWER_MATERIALS {
            assert_eq!(SewerMaterial::parse(m.name_ja()), Ok(m), "{m}");
            assert_eq!(SewerMaterial::parse(m.code()), Ok(m), "{m}");
        }
    }

    #[test]
    fn grades() {
        #[track_caller]
        fn check(text: &str, expected: Option<Grade>) {
            assert_eq!(Grade::parse(text), expected, "{text:?}");
        }
        check("緊急度Ⅰ", Some(Grade::I));
        check("緊急度Ⅱ", Some(Grade::II));
        check("緊急度Ⅲ", Some(Grade::III));
        check("緊急度III", Some(Grade::III));
        check("Ⅱ", Some(Grade::II));
        check("I", Some(Grade::I));
        check("ii", Some(Grade::II));
        check("III", Some(Grade::III));
        check("1", Some(Grade::I));
        check("２", Some(Grade::II));
        check("3", Some(Grade::III));
        check("なし", Some(Grade::Sound));
        check("劣化なし", Some(Grade::Sound));
        check("none", Some(Grade::Sound));
        check("", None);
        check("IV", None);
        check("4", None);
        assert!(Grade::I > Grade::II && Grade::II > Grade::III && Grade::III > Grade::Sound);
        for g in [Grade::Sound, Grade::III, Grade::II, Grade::I] {
            assert_eq!(Grade::parse(g.code()), Some(g));
            assert_eq!(Grade::parse(g.name_ja()), Some(g));
        }
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn located(report: &ImportReport) -> Vec<String> {
        let mut v: Vec<_> = report.issues.iter().map(|i| format!("{}:{}:{:?}", i.line, i.column, i.severity)).collect();
        v.sort();
        v
    }

    const PIPES: &str = "\
span_id,material,diameter_mm,length_m,installed,depth_m,road_class,district
S1,ヒューム管,300,42.5,1972-06-01,2.1,arterial,千歳処理区
S2,陶管,200,38,1968,,,
S3,VU,zero,30,1990,-1,,
S4,HP,250,-5,1975,,,
S5,HP,250,40,19x5,,,
S1,HP,250,40,1975,,,
S7,wood,250,40,1975,,moon,
S8,HP,250,40
S9,FRPM,800,55,,,,
";

    #[test]
    fn bad_sewer_rows_are_reported_and_good_rows_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "pipes.csv", PIPES);
        let (register, report) = import_sewer_pipes(&path, &SewerProfile::mizumori()).unwrap();
        let ids: Vec<_> = register.pipes.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["S1", "S2", "S3", "S7", "S9"]);
        assert_eq!((report.rows_read, report.accepted), (9, 5));
        assert_eq!(
            located(&report),
            [
                "10:installed:Warning",  // S9 has no install date
                "4:depth_m:Warning",     // -1
                "4:diameter_mm:Warning", // zero
                "5:length_m:Rejected",   // -5
                "6:installed:Rejected",  // 19x5
                "7:span_id:Rejected",    // S1 again
                "8:material:Warning",    // wood
                "8:road_class:Warning",  // moon
                "9::Rejected",           // short row
            ]
        );
        let s1 = &register.pipes[0];
        assert_eq!(s1.material, SewerMaterial::ReinforcedConcrete);
        assert_eq!((s1.diameter_mm, s1.depth_m), (Some(300.0), Some(2.1)));
        assert_eq!(s1.road_class, Some(RoadClass::Arterial));
        assert_eq!(s1.district.as_deref(), Some("千歳処理区"));
        assert_eq!(register.pipes[1].installed, NaiveDate::from_ymd_opt(1968, 1, 1));
        let shown = report.issues.iter().find(|i| i.line == 5).unwrap().to_string();
        assert!(
            shown.ends_with("pipes.csv:5: column length_m: rejected: length must be a number of metres above 0"),
            "{shown}"
        );

        let inspections = write(
            &dir,
            "inspections.csv",
            "span_id,date,grade\nS1,2015-05-01,緊急度Ⅱ\nS2,2016-07-01,なし\nS2,2021-07-01,3\n\
             S3,2019-02-30,I\nS4,2019-01-01,I\nS1,2019-01-01,IV\nS9,2020-01-01,1\nS1,1970-01-01,none\n",
        );
        let (rows, report) = import_inspections(&inspections, &SewerProfile::mizumori(), &register).unwrap();
        let got: Vec<_> = rows.iter().map(|r| format!("{} {} {}", r.span, r.date, r.grade.code())).collect();
        assert_eq!(got, ["S1 2015-05-01 II", "S2 2016-07-01 none", "S2 2021-07-01 III", "S9 2020-01-01 I"]);
        assert_eq!(located(&report), ["5:date:Rejected", "6:span_id:Rejected", "7:grade:Rejected", "9:date:Rejected"]);
        assert!(report.issues[1].reason.contains("S4 is not in the sewer register"), "{:?}", report.issues[1]);
        assert!(report.issues[3].reason.contains("before the span was laid"), "{:?}", report.issues[3]);
    }

    #[test]
    fn japanese_headers_read_through_the_ja_profile() {
        let dir = tempfile::tempdir().unwrap();
        let pipes = write(&dir, "台帳.csv", "管きょ番号,管種,管径,延長,布設年度\nK-1,陶管,250,40.2,1970\n");
        let (register, report) = import_sewer_pipes(&pipes, &SewerProfile::ja()).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        assert_eq!(register.pipes[0].material, SewerMaterial::VitrifiedClay);
        let inspections = write(&dir, "調査.csv", "管きょ番号,調査日,緊急度\nK-1,2020/06/01,緊急度Ⅰ\n");
        let (rows, _) = import_inspections(&inspections, &SewerProfile::ja(), &register).unwrap();
        assert_eq!(rows[0].grade, Grade::I);
        let e = import_sewer_pipes(&inspections, &SewerProfile::ja()).unwrap_err().to_string();
        assert!(e.contains("管種") && e.contains("ja"), "{e}");
    }
}
