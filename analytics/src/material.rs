//! The material model: one vocabulary for pipe materials, whatever a register calls them.
//!
//! Registers spell materials as North American codes (Kitchener: `CI`, `DI`, `PVCO`), Japanese
//! ledger codes (`DIP`, `DCIP`, `VP`, `HPPE`) or Japanese names (ダクタイル鋳鉄管（GX形）,
//! 硬質塩化ビニル管). [`Material::parse`] maps all of them onto [`Material`]. For ductile iron
//! the joint matters as much as the metal (an earthquake-resistant GX or NS joint does not pull
//! out), so the joint is part of the material. This module does no IO.

use std::fmt;
use std::str::FromStr;

/// The joint of a ductile-iron main (継手形式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiJoint {
    /// GX形: the current earthquake-resistant joint.
    Gx,
    /// NS形: earthquake-resistant, the GX joint's predecessor.
    Ns,
    /// S形, SII形 or a ledger that only says 耐震 (earthquake-resistant).
    Seismic,
    /// K形: mechanical joint, not earthquake-resistant.
    K,
    /// A形 and other older mechanical joints.
    A,
    /// The register does not say.
    Unspecified,
}

/// A pipe material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Material {
    /// Grey cast iron (鋳鉄管, CIP; Kitchener `CI`).
    CastIron,
    /// Ductile iron (ダクタイル鋳鉄管, DIP/DCIP; Kitchener `DI`).
    DuctileIron(DiJoint),
    /// Steel (鋼管, SP/STW/SGP; Kitchener `ST`).
    Steel,
    /// Unplasticised PVC (硬質塩化ビニル管, VP/HIVP; Kitchener `PVC`, `PVCB`, `PVCF`).
    Pvc,
    /// Molecularly oriented PVC (Kitchener `PVCO`).
    PvcOriented,
    /// Asbestos cement (石綿セメント管, ACP; Kitchener `AC`).
    AsbestosCement,
    /// Polyethylene (配水用ポリエチレン管, HPPE/PE; Kitchener `HDPE`, also HDPE relined in CI).
    Polyethylene,
    /// Concrete pressure pipe (Kitchener `CPP`).
    ConcretePressure,
    /// Copper (Kitchener `COP`).
    Copper,
    /// A spelling we recognise as a material but have no class for.
    Other,
    /// The register says it does not know (`XXX`, `UNKNOWN`, 不明, empty).
    Unknown,
}

/// Every material, in a fixed order (used for one-hot encodings and reports).
pub const ALL: [Material; 16] = [
    Material::CastIron,
    Material::DuctileIron(DiJoint::Gx),
    Material::DuctileIron(DiJoint::Ns),
    Material::DuctileIron(DiJoint::Seismic),
    Material::DuctileIron(DiJoint::K),
    Material::DuctileIron(DiJoint::A),
    Material::DuctileIron(DiJoint::Unspecified),
    Material::Steel,
    Material::Pvc,
    Material::PvcOriented,
    Material::AsbestosCement,
    Material::Polyethylene,
    Material::ConcretePressure,
    Material::Copper,
    Material::Other,
    Material::Unknown,
];

/// A spelling that no rule recognises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown material {0:?}: use a code such as CI, DI-GX, PVC, AC, PE or a Japanese name")]
pub struct UnknownMaterial(pub String);

impl Material {
    /// The canonical code written by Mizumori (the `material` column of the mizumori profile).
    pub fn code(self) -> &'static str {
        match self {
            Material::CastIron => "CI",
            Material::DuctileIron(DiJoint::Gx) => "DI-GX",
            Material::DuctileIron(DiJoint::Ns) => "DI-NS",
            Material::DuctileIron(DiJoint::Seismic) => "DI-ER",
            Material::DuctileIron(DiJoint::K) => "DI-K",
            Material::DuctileIron(DiJoint::A) => "DI-A",
            Material::DuctileIron(DiJoint::Unspecified) => "DI",
            Material::Steel => "ST",
            Material::Pvc => "PVC",
            Material::PvcOriented => "PVCO",
            Material::AsbestosCement => "AC",
            Material::Polyethylene => "PE",
            Material::ConcretePressure => "CPP",
            Material::Copper => "COP",
            Material::Other => "OTHER",
            Material::Unknown => "UNKNOWN",
        }
    }

    /// The Japanese name a ledger would use.
    pub fn name_ja(self) -> &'static str {
        match self {
            Material::CastIron => "鋳鉄管",
            Material::DuctileIron(DiJoint::Gx) => "ダクタイル鋳鉄管（GX形）",
            Material::DuctileIron(DiJoint::Ns) => "ダクタイル鋳鉄管（NS形）",
            Material::DuctileIron(DiJoint::Seismic) => "ダクタイル鋳鉄管（耐震継手）",
            Material::DuctileIron(DiJoint::K) => "ダクタイル鋳鉄管（K形）",
            Material::DuctileIron(DiJoint::A) => "ダクタイル鋳鉄管（A形）",
            Material::DuctileIron(DiJoint::Unspecified) => "ダクタイル鋳鉄管",
            Material::Steel => "鋼管",
            Material::Pvc => "硬質塩化ビニル管",
            Material::PvcOriented => "配向性塩化ビニル管",
            Material::AsbestosCement => "石綿セメント管",
            Material::Polyethylene => "配水用ポリエチレン管",
            Material::ConcretePressure => "コンクリート管",
            Material::Copper => "銅管",
            Material::Other => "その他",
            Material::Unknown => "不明",
        }
    }

    /// Example renewal-standard years (更新基準年数の設定例) from the MHLW/MLIT simple support
    /// tool, as reconstructed in shared/reference/analytics.md §3.1. `None` where the table is
    /// silent. Utilities set their own values; these are defaults for plans, not for LoF.
    pub fn renewal_standard_years(self) -> Option<u16> {
        match self {
            Material::CastIron => Some(50),
            Material::DuctileIron(DiJoint::Gx) => Some(100),
            Material::DuctileIron(DiJoint::Ns | DiJoint::Seismic) => Some(80),
            Material::DuctileIron(DiJoint::K) => Some(70),
            Material::DuctileIron(DiJoint::A | DiJoint::Unspecified) => Some(60),
            Material::Steel => Some(40),
            Material::AsbestosCement => Some(40),
            Material::Pvc | Material::PvcOriented => Some(50),
            Material::Polyethylene => Some(60),
            Material::ConcretePressure | Material::Copper | Material::Other | Material::Unknown => None,
        }
    }

    /// Reads any spelling we know: Kitchener codes, Japanese ledger codes and names, our codes.
    /// Full-width letters and digits (ＤＩＰ) are folded to ASCII first.
    pub fn parse(text: &str) -> Result<Material, UnknownMaterial> {
        let s = normalise(text);
        let has = |needle: &str| s.contains(needle);
        if s.is_empty() || matches!(s.as_str(), "XXX" | "UNKNOWN" | "UNK" | "不明" | "-" | "?") {
            return Ok(Material::Unknown);
        }
        // Order matters: ductile iron before cast iron (ダクタイル鋳鉄管 contains 鋳鉄管), PVCO
        // before PVC, HDPE relined in CI before CI (the pressure boundary is the HDPE).
        if has("ダクタイル") || s.starts_with("DI") || s.starts_with("DCI") {
            return Ok(Material::DuctileIron(joint(&s)));
        }
        if has("HDPE") || has("HPPE") || has("ポリエチレン") || matches!(s.as_str(), "PE" | "PP") {
            return Ok(Material::Polyethylene);
        }
        if s == "PVCO" || has("配向") {
            return Ok(Material::PvcOriented);
        }
        if s.starts_with("PVC") || has("塩化ビニル") || has("VP") || s == "RR" {
            return Ok(Material::Pvc);
        }
        if has("鋳鉄") || matches!(s.as_str(), "CI" | "CIP" | "FC" | "CAST IRON") {
            return Ok(Material::CastIron);
        }
        if has("石綿") || matches!(s.as_str(), "AC" | "ACP" | "ASBESTOS CEMENT") {
            return Ok(Material::AsbestosCement);
        }
        if has("鋼管") || matches!(s.as_str(), "ST" | "SP" | "STW" | "SGP" | "STEEL") {
            return Ok(Material::Steel);
        }
        if has("コンクリート") || matches!(s.as_str(), "CPP" | "PCCP" | "RCP") {
            return Ok(Material::ConcretePressure);
        }
        if has("銅") || matches!(s.as_str(), "COP" | "CU" | "COPPER") {
            return Ok(Material::Copper);
        }
        if matches!(s.as_str(), "OTHER" | "その他") {
            return Ok(Material::Other);
        }
        Err(UnknownMaterial(text.trim().to_owned()))
    }
}

/// The joint named in a ductile-iron spelling such as `DIP-GX`, `DCIP(NS)`, `ダクタイル鋳鉄管 K形`.
fn joint(s: &str) -> DiJoint {
    // Strip the material words first: what is left is the joint, e.g. `-GX`, `(NS)`, ` K形`.
    let rest = s
        .replace("ダクタイル鋳鉄管", " ")
        .replace("ダクタイル", " ")
        .replace("DCIP", " ")
        .replace("DIP", " ")
        .replace("DI", " ");
    if rest.contains("GX") {
        DiJoint::Gx
    } else if rest.contains("NS") {
        DiJoint::Ns
    } else if rest.contains("SII") || rest.contains("耐震") || token(&rest, "S") || token(&rest, "ER") {
        DiJoint::Seismic
    } else if token(&rest, "K") {
        DiJoint::K
    } else if token(&rest, "A") {
        DiJoint::A
    } else {
        DiJoint::Unspecified
    }
}

/// True if `letter` stands alone in `s` or is followed by 形 (a joint type), e.g. `-K`, `(K)`, `K形`.
fn token(s: &str, letter: &str) -> bool {
    s.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == letter || t.strip_suffix('形') == Some(letter))
        || s.contains(&format!("{letter}形"))
}

/// Upper-cases ASCII, folds full-width ASCII (U+FF01..U+FF5E) and the ideographic space.
pub(crate) fn normalise(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => {
                char::from_u32(c as u32 - 0xFEE0).expect("the full-width ASCII block maps to ASCII")
            }
            '\u{3000}' => ' ',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_ascii_uppercase()
}

impl fmt::Display for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Material {
    type Err = UnknownMaterial;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Material::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Material) {
        assert_eq!(Material::parse(input), Ok(expected), "{input:?}");
    }

    #[test]
    fn kitchener_codes() {
        check("CI", Material::CastIron);
        check("DI", Material::DuctileIron(DiJoint::Unspecified));
        check("PVC", Material::Pvc);
        check("PVCB", Material::Pvc);
        check("PVCF", Material::Pvc);
        check("PVCO", Material::PvcOriented);
        check("AC", Material::AsbestosCement);
        check("HDPE", Material::Polyethylene);
        check("HDPE IN CI", Material::Polyethylene);
        check("CPP", Material::ConcretePressure);
        check("COP", Material::Copper);
        check("ST", Material::Steel);
        check("XXX", Material::Unknown);
        check("", Material::Unknown);
    }

    #[test]
    fn japanese_names_and_codes() {
        check("鋳鉄管", Material::CastIron);
        check("CIP", Material::CastIron);
        check("ダクタイル鋳鉄管", Material::DuctileIron(DiJoint::Unspecified));
        check("ダクタイル鋳鉄管（GX形）", Material::DuctileIron(DiJoint::Gx));
        check("ダクタイル鋳鉄管 NS形", Material::DuctileIron(DiJoint::Ns));
        check("ダクタイル鋳鉄管(耐震)", Material::DuctileIron(DiJoint::Seismic));
        check("ダクタイル鋳鉄管 K形", Material::DuctileIron(DiJoint::K));
        check("ダクタイル鋳鉄管A形", Material::DuctileIron(DiJoint::A));
        check("DIP-GX", Material::DuctileIron(DiJoint::Gx));
        check("DCIP(NS)", Material::DuctileIron(DiJoint::Ns));
        check("DIP-K", Material::DuctileIron(DiJoint::K));
        check("DCIP", Material::DuctileIron(DiJoint::Unspecified));
        check("DIP-SII", Material::DuctileIron(DiJoint::Seismic));
        check("ＤＩＰ－ＧＸ", Material::DuctileIron(DiJoint::Gx));
        check("鋼管", Material::Steel);
        check("SP", Material::Steel);
        check("SGP", Material::Steel);
        check("硬質塩化ビニル管", Material::Pvc);
        check("VP", Material::Pvc);
        check("HIVP", Material::Pvc);
        check("RRVP", Material::Pvc);
        check("石綿セメント管", Material::AsbestosCement);
        check("ACP", Material::AsbestosCement);
        check("配水用ポリエチレン管", Material::Polyethylene);
        check("HPPE", Material::Polyethylene);
        check("PE", Material::Polyethylene);
        check("不明", Material::Unknown);
    }

    #[test]
    fn our_codes_round_trip() {
        for m in ALL {
            check(m.code(), m);
            check(m.name_ja(), m);
        }
    }

    #[test]
    fn unknown_spelling_is_an_error_naming_it() {
        let e = Material::parse(" wood ").unwrap_err();
        assert_eq!(e.0, "wood");
        assert!(e.to_string().contains("\"wood\""));
    }

    #[test]
    fn renewal_standards_follow_the_reference_table() {
        assert_eq!(Material::CastIron.renewal_standard_years(), Some(50));
        assert_eq!(Material::DuctileIron(DiJoint::Gx).renewal_standard_years(), Some(100));
        assert_eq!(Material::DuctileIron(DiJoint::K).renewal_standard_years(), Some(70));
        assert_eq!(Material::AsbestosCement.renewal_standard_years(), Some(40));
    }
}
