//! Import of the water-main register from GeoJSON: a FeatureCollection of LineStrings or
//! MultiLineStrings whose properties are the register's columns.
//!
//! The properties go through the same column [`Profile`] and the same row checks as a CSV
//! file: they are tabulated (one row per feature, one column per property name seen) and read
//! by the CSV import, so a GeoJSON register and a CSV one cannot disagree on what a value
//! means. Issues then name the feature (`features[3]`) and the property. The geometry is
//! kept on the [`crate::asset::Pipe`]; a feature without a length property gets its geodesic
//! length. Coordinates must be WGS 84 longitude/latitude, as RFC 7946 requires; a legacy
//! `crs` member naming anything else fails the file, and a projected position fails its
//! feature's geometry.

use std::path::Path;

use crate::AnalyticsError;
use crate::asset::Register;
use crate::geo::PipeGeometry;
use crate::import::{ImportReport, Issue, Profile, Severity, Table, Unit, assets_from_table};

/// Reads the asset register from a GeoJSON FeatureCollection.
pub fn import_assets_geojson(path: &Path, profile: &Profile) -> Result<(Register, ImportReport), AnalyticsError> {
    let fail = |why: String| AnalyticsError::GeoJson { path: path.to_owned(), why };
    let text =
        std::fs::read_to_string(path).map_err(|source| AnalyticsError::Open { path: path.to_owned(), source })?;
    let root: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
    if root.get("type").and_then(|t| t.as_str()) != Some("FeatureCollection") {
        return Err(fail("not a GeoJSON FeatureCollection".into()));
    }
    if let Some(crs) = root.get("crs") {
        let name = crs.pointer("/properties/name").and_then(|n| n.as_str()).unwrap_or("");
        if !(name.contains("CRS84") || name.ends_with("EPSG::4326") || name.ends_with("EPSG:4326")) {
            return Err(fail(format!(
                "crs {name:?}: only WGS 84 longitude/latitude is read (RFC 7946); reproject to EPSG:4326"
            )));
        }
    }
    let features = root.get("features").and_then(|f| f.as_array()).ok_or_else(|| fail("no features array".into()))?;

    let mut issues = Vec::new();
    let issue = |index: usize, column: &str, severity, reason: String| Issue {
        file: path.to_owned(),
        line: index as u64,
        unit: Unit::Feature,
        column: column.to_owned(),
        severity,
        reason,
    };
    // Property names in first-seen order, and each feature's properties and geometry.
    let mut headers: Vec<String> = Vec::new();
    // (feature index, properties, geometry) of the features that parsed.
    let mut rows: Vec<(usize, serde_json::Map<String, serde_json::Value>, Option<PipeGeometry>)> = Vec::new();
    for (index, value) in features.iter().enumerate() {
        let feature = match serde_json::from_value::<geojson::Feature>(value.clone()) {
            Ok(f) => f,
            Err(e) => {
                issues.push(issue(index, "", Severity::Rejected, format!("not a GeoJSON feature: {e}")));
                continue;
            }
        };
        let properties = feature.properties.unwrap_or_default();
        for key in properties.keys() {
            if !headers.contains(key) {
                headers.push(key.clone());
            }
        }
        let geometry = match &feature.geometry {
            None => {
                issues.push(issue(index, "", Severity::Warning, "no geometry; kept without a line".into()));
                None
            }
            Some(g) => match PipeGeometry::from_geojson(g) {
                Ok(g) => Some(g),
                Err(why) => {
                    issues.push(issue(index, "", Severity::Warning, format!("{why}; kept without a line")));
                    None
                }
            },
        };
        rows.push((index, properties, geometry));
    }
    let length_col = profile.assets.length_m;
    if !headers.iter().any(|h| h == length_col) {
        headers.push(length_col.to_owned());
    }
    let id_col = profile.assets.id;
    let dates = [Some(profile.assets.installed), profile.assets.removed];

    // Tabulate: one CSV record per feature that parsed, so record k is on line k + 2 (line
    // breaks inside values are flattened to keep that true).
    let mut csv_bytes = Vec::new();
    {
        let mut w = csv::Writer::from_writer(&mut csv_bytes);
        let write_err = |e: csv::Error| fail(format!("tabulating the properties: {e}"));
        w.write_record(&headers).map_err(write_err)?;
        for (_, properties, geometry) in &rows {
            let record: Vec<String> = headers
                .iter()
                .map(|h| {
                    let value = properties.get(h).unwrap_or(&serde_json::Value::Null);
                    let text = cell(value, dates.contains(&Some(h.as_str())));
                    if h == length_col && text.trim().is_empty() {
                        // A length the register does not give is measured on the line.
                        return geometry.as_ref().map(|g| format!("{:.2}", g.length_m())).unwrap_or_default();
                    }
                    text
                })
                .collect();
            w.write_record(&record).map_err(write_err)?;
        }
        w.flush().map_err(|e| write_err(e.into()))?;
    }
    let table = Table::from_bytes(path, profile.name, csv_bytes)?;
    let (mut register, mut report) = assets_from_table(table, profile)?;
    for i in &mut report.issues {
        i.line = rows.get((i.line as usize).saturating_sub(2)).map_or(0, |r| r.0 as u64);
        i.unit = Unit::Feature;
    }
    issues.append(&mut report.issues);
    issues.sort_by_key(|i| i.line);
    report.issues = issues;

    // Attach each feature's line to its main: the first feature with the id is the one kept.
    let mut first: foldhash::HashMap<String, usize> = Default::default();
    for (k, (_, properties, _)) in rows.iter().enumerate() {
        let id = fold_id(&cell(properties.get(id_col).unwrap_or(&serde_json::Value::Null), false));
        first.entry(id).or_insert(k);
    }
    for pipe in register.pipes_mut() {
        if let Some(&k) = first.get(pipe.id.as_str()) {
            pipe.geometry = rows[k].2.clone();
        }
    }
    Ok((register, report))
}

/// A property as the CSV import would see it. Dates exported by ArcGIS come as milliseconds
/// since 1970; those become `YYYY-MM-DD` (a bare year such as 1975 stays a year).
fn cell(value: &serde_json::Value, is_date: bool) -> String {
    use serde_json::Value;
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) if is_date && n.as_f64().is_some_and(|ms| ms.abs() > 100_000.0) => {
            let ms = n.as_f64().unwrap_or_default() as i64;
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.date_naive().to_string())
                .unwrap_or_else(|| n.to_string())
        }
        other => other.to_string(),
    };
    text.replace(['\n', '\r'], " ")
}

/// The id as the import reads it: trimmed, full-width ASCII folded.
fn fold_id(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::Material;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("mains.geojson");
        std::fs::write(&path, text).unwrap();
        path
    }

    const MAINS: &str = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"asset_id": "G1", "material": "DIP", "installed": 1975, "length_m": 120.5},
       "geometry": {"type": "LineString", "coordinates": [[141.65, 42.82], [141.651, 42.82]]}},
      {"type": "Feature", "properties": {"asset_id": "G2", "material": "CI", "installed": "1962-05-01"},
       "geometry": {"type": "MultiLineString", "coordinates": [[[141.65, 42.82], [141.65, 42.821]], [[141.66, 42.82], [141.66, 42.821]]]}},
      {"type": "Feature", "properties": {"asset_id": "G3", "material": "CI", "installed": "19x0"},
       "geometry": {"type": "LineString", "coordinates": [[141.65, 42.82], [141.651, 42.82]]}},
      {"type": "Feature", "properties": {"asset_id": "G4", "material": "PVC", "installed": 1990},
       "geometry": {"type": "LineString", "coordinates": [[-12345.6, 38000.0], [-12300.0, 38010.0]]}},
      {"type": "Feature", "properties": {"asset_id": "G5", "material": "PVC", "installed": 1990, "length_m": 40},
       "geometry": {"type": "Point", "coordinates": [141.65, 42.82]}},
      {"type": "Feature", "properties": {"asset_id": "G6"}, "geometry": {"type": "LineString", "coordinates": "oops"}},
      {"type": "Feature", "properties": {"asset_id": "G1", "material": "CI", "installed": 1960, "length_m": 10},
       "geometry": null}
    ]}"#;

    #[test]
    fn features_go_through_the_profile_with_their_geometry() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, MAINS);
        let (register, report) = import_assets_geojson(&path, &Profile::mizumori()).unwrap();
        let ids: Vec<_> = register.pipes().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["G1", "G2", "G5"]);
        let located: Vec<_> =
            report.issues.iter().map(|i| format!("{}:{}:{:?}", i.line, i.column, i.severity)).collect();
        assert_eq!(
            located,
            [
                "2:installed:Rejected", // 19x0
                "3::Warning",           // projected coordinates: no line …
                "3:length_m:Rejected",  // … and so no length
                "4::Warning",           // a Point is not a pipe
                "5::Rejected",          // coordinates that are not positions
                "6::Warning",           // no geometry
                "6:asset_id:Rejected",  // G1 again
            ]
        );
        let shown = report.issues[0].to_string();
        assert!(shown.ends_with("mains.geojson: features[2]: property installed: rejected: \"19x0\" is not a date: use YYYY-MM-DD, YYYY/MM/DD or a year YYYY"), "{shown}");
        assert!(report.issues[1].reason.contains("WGS 84"), "{:?}", report.issues[1]);

        let g1 = &register.pipes()[0];
        assert_eq!((g1.material, g1.length_m), (Material::DuctileIron(crate::material::DiJoint::Unspecified), 120.5));
        let (lon, lat) = g1.midpoint().unwrap();
        assert!((lon - 141.6505).abs() < 1e-9 && (lat - 42.82).abs() < 1e-9, "{lon} {lat}");
        // G2 has no length property: its two 0.001° meridian arcs, about 111.1 m each.
        let g2 = &register.pipes()[1];
        assert!((g2.length_m - 222.2).abs() < 0.5, "{}", g2.length_m);
        assert_eq!(g2.geometry.as_ref().unwrap().parts.len(), 2);
        assert_eq!(register.pipes()[2].geometry, None);
    }

    #[test]
    fn the_kitchener_profile_reads_arcgis_dates() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
              "properties": {"WATMAINID": 10080, "STATUS": "ACTIVE", "PRESSURE_ZONE": "KIT 6", "PIPE_SIZE": 450,
                "MATERIAL": "DI", "INSTALLATION_DATE": 283996800000, "CRITICALITY": 6, "Shape__Length": 34.2},
              "geometry": {"type": "LineString", "coordinates": [[-80.49, 43.45], [-80.4896, 43.45]]}}]}"#,
        );
        let (register, report) = import_assets_geojson(&path, &Profile::kitchener()).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        let p = &register.pipes()[0];
        assert_eq!(p.installed, chrono::NaiveDate::from_ymd_opt(1979, 1, 1));
        assert_eq!(p.length_m, 34.2);
    }

    #[test]
    fn a_file_that_is_not_wgs84_or_not_a_collection_fails_whole() {
        let dir = tempfile::tempdir().unwrap();
        let crs = r#"{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::6680"}}, "features": []}"#;
        let e = import_assets_geojson(&write(&dir, crs), &Profile::mizumori()).unwrap_err().to_string();
        assert!(e.contains("EPSG::6680") && e.contains("RFC 7946"), "{e}");
        let e = import_assets_geojson(&write(&dir, r#"{"type": "Feature"}"#), &Profile::mizumori()).unwrap_err();
        assert!(e.to_string().contains("not a GeoJSON FeatureCollection"), "{e}");
        let e = import_assets_geojson(&write(&dir, "{"), &Profile::mizumori()).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }
}
