//! Pipe geometry: the line a main follows, in WGS 84 longitude/latitude (RFC 7946, the only
//! coordinates GeoJSON allows), with its geodesic length and midpoint.
//!
//! Geometry rides along on a [`crate::asset::Pipe`] for maps and exports; no model uses it.
//! Projected coordinates (JGD2011 plane zones, UTM) are refused rather than reprojected: a
//! length measured in the wrong CRS would be silently wrong.

use geographiclib_rs::{Geodesic, InverseGeodesic};

/// A main's line: one or more parts (a MultiLineString has several), each a list of
/// `[longitude, latitude]` in degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeGeometry {
    pub parts: Vec<Vec<[f64; 2]>>,
}

impl PipeGeometry {
    /// Checks the coordinates: every part has two positions or more, every position is a
    /// finite longitude in −180..=180 and latitude in −90..=90.
    pub fn new(parts: Vec<Vec<[f64; 2]>>) -> Result<PipeGeometry, String> {
        if parts.is_empty() {
            return Err("the geometry has no line".into());
        }
        for part in &parts {
            if part.len() < 2 {
                return Err("a line needs two positions or more".into());
            }
            for &[lon, lat] in part {
                if !(lon.is_finite()
                    && lat.is_finite()
                    && (-180.0..=180.0).contains(&lon)
                    && (-90.0..=90.0).contains(&lat))
                {
                    return Err(format!(
                        "position [{lon}, {lat}] is not WGS 84 longitude/latitude (RFC 7946); reproject the file to \
                         EPSG:4326 first"
                    ));
                }
            }
        }
        Ok(PipeGeometry { parts })
    }

    /// Reads a GeoJSON LineString or MultiLineString.
    pub fn from_geojson(geometry: &geojson::Geometry) -> Result<PipeGeometry, String> {
        let line = |positions: &[geojson::Position]| -> Result<Vec<[f64; 2]>, String> {
            positions
                .iter()
                .map(|p| match p.as_slice() {
                    [lon, lat, ..] => Ok([*lon, *lat]),
                    _ => Err("a position needs a longitude and a latitude".to_owned()),
                })
                .collect()
        };
        let parts = match &geometry.value {
            geojson::GeometryValue::LineString { coordinates } => vec![line(coordinates)?],
            geojson::GeometryValue::MultiLineString { coordinates } => {
                coordinates.iter().map(|l| line(l)).collect::<Result<_, _>>()?
            }
            other => return Err(format!("a {} is not a pipe: use LineString or MultiLineString", other.type_name())),
        };
        PipeGeometry::new(parts)
    }

    /// Length along the lines on the WGS 84 ellipsoid, in metres (Karney's geodesic).
    pub fn length_m(&self) -> f64 {
        let g = Geodesic::wgs84();
        self.segments().map(|(a, b)| segment_m(&g, a, b)).sum()
    }

    /// The point halfway along the lines (the parts taken in order), as `[lon, lat]`. Within a
    /// segment the point is interpolated linearly in degrees: segments of a main are tens of
    /// metres, where the difference from the geodesic is far below a map's pixel.
    pub fn midpoint(&self) -> [f64; 2] {
        let g = Geodesic::wgs84();
        let half = self.length_m() / 2.0;
        let mut walked = 0.0;
        for (a, b) in self.segments() {
            let d = segment_m(&g, a, b);
            if walked + d >= half && d > 0.0 {
                let t = (half - walked) / d;
                return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
            }
            walked += d;
        }
        self.parts[0][0]
    }

    fn segments(&self) -> impl Iterator<Item = ([f64; 2], [f64; 2])> + '_ {
        self.parts.iter().flat_map(|p| p.windows(2).map(|w| (w[0], w[1])))
    }
}

fn segment_m(g: &Geodesic, a: [f64; 2], b: [f64; 2]) -> f64 {
    let s: f64 = g.inverse(a[1], a[0], b[1], b[0]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodesic_length_and_midpoint() {
        // One minute of latitude at Chitose (42.82 N) is about 1,852 m (1,851.6 on the
        // ellipsoid there); one minute of longitude is that times cos(latitude), less the
        // ellipsoid's flattening (about 1,362 m).
        let north = PipeGeometry::new(vec![vec![[141.65, 42.82], [141.65, 42.82 + 1.0 / 60.0]]]).unwrap();
        assert!((north.length_m() - 1851.8).abs() < 2.0, "{}", north.length_m());
        let east = PipeGeometry::new(vec![vec![[141.65, 42.82], [141.65 + 1.0 / 60.0, 42.82]]]).unwrap();
        assert!((east.length_m() - 1362.0).abs() < 3.0, "{}", east.length_m());
        // An L of two equal legs: the midpoint is the corner.
        let d = 0.001;
        let l = PipeGeometry::new(vec![vec![[141.65, 42.82], [141.65, 42.82 + d], [141.65 + d * 1.36, 42.82 + d]]])
            .unwrap();
        let [lon, lat] = l.midpoint();
        assert!((lat - (42.82 + d)).abs() < 2e-5 && (lon - 141.65).abs() < 3e-5, "{lon} {lat}");
        // Two parts: lengths add up.
        let two = PipeGeometry::new(vec![north.parts[0].clone(), east.parts[0].clone()]).unwrap();
        assert!((two.length_m() - north.length_m() - east.length_m()).abs() < 1e-6);
    }

    #[test]
    fn projected_coordinates_are_refused() {
        let e = PipeGeometry::new(vec![vec![[-12_345.6, 38_000.0], [-12_300.0, 38_010.0]]]).unwrap_err();
        assert!(e.contains("WGS 84") && e.contains("EPSG:4326"), "{e}");
        assert!(PipeGeometry::new(vec![vec![[141.0, 42.0]]]).is_err());
        assert!(PipeGeometry::new(vec![]).is_err());
    }
}
