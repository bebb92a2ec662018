//! Store URLs: `sqlite://PATH`, `influx://[USER@]HOST:PORT/DATABASE` (plain HTTP) and
//! `influxs://[USER@]HOST:PORT/DATABASE[?ca_file=PEM]` (https).

use std::path::PathBuf;
use std::str::FromStr;

use crate::StoreError;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH`; PATH may be relative (`sqlite://data/m.sqlite`) or absolute
    /// (`sqlite:///var/lib/mizumori/m.sqlite`).
    Sqlite { path: PathBuf },
    /// `influx://[USER@]HOST:PORT/DATABASE`, spoken as plain HTTP, or `influxs://…` spoken
    /// as https, trusting the system's roots and those in `?ca_file=PATH` (a PEM file; the
    /// path as written, not percent-decoded). The password or token never appears in the URL:
    /// it comes from the environment (see `InfluxAuth::from_env`).
    Influx { base: String, database: String, username: Option<String>, ca_file: Option<PathBuf> },
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| StoreError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(bad("missing file path, e.g. sqlite://mizumori-data/mizumori.sqlite"));
            }
            return Ok(StoreUrl::Sqlite { path: PathBuf::from(path) });
        }
        let plain = url.strip_prefix("influx://").map(|rest| ("http", rest));
        if let Some((scheme, rest)) = plain.or_else(|| url.strip_prefix("influxs://").map(|rest| ("https", rest))) {
            let (rest, ca_file) = match rest.split_once('?') {
                None => (rest, None),
                Some((rest, query)) => match query.strip_prefix("ca_file=") {
                    Some("") => return Err(bad("give ca_file=PATH, the PEM file of the CA to trust")),
                    Some(path) if !path.contains('&') && scheme == "https" => (rest, Some(PathBuf::from(path))),
                    Some(path) if !path.contains('&') => {
                        return Err(bad("ca_file is for https: write influxs://, or leave ca_file out"));
                    }
                    _ => return Err(bad("the one query parameter is ca_file=PATH (influxs:// only)")),
                },
            };
            let (authority, database) =
                rest.split_once('/').ok_or_else(|| bad("missing /DATABASE, e.g. influx://127.0.0.1:8086/water"))?;
            let database = database.trim_end_matches('/');
            if !model::id::is_safe_name(database) {
                return Err(bad("database name must be 1-64 characters from A-Z a-z 0-9 _ . -"));
            }
            let (username, hostport) = match authority.rsplit_once('@') {
                Some((user, _)) if user.contains(':') => {
                    return Err(bad(
                        "put no password in the URL; set MIZUMORI_INFLUX_PASSWORD or MIZUMORI_INFLUX_PASSWORD_FILE",
                    ));
                }
                Some((user, host)) => (Some(user.to_owned()), host),
                None => (None, authority),
            };
            let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("expected HOST:PORT"));
            }
            return Ok(StoreUrl::Influx {
                base: format!("{scheme}://{hostport}"),
                database: database.to_owned(),
                username,
                ca_file,
            });
        }
        Err(bad("expected sqlite://PATH, influx://HOST:PORT/DATABASE or influxs://HOST:PORT/DATABASE"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes() {
        assert_eq!("sqlite://d/m.sqlite".parse::<StoreUrl>().unwrap(), StoreUrl::Sqlite { path: "d/m.sqlite".into() });
        assert_eq!(
            "sqlite:///abs/m.sqlite".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite { path: "/abs/m.sqlite".into() }
        );
        assert_eq!(
            "influx://127.0.0.1:8086/water".parse::<StoreUrl>().unwrap(),
            StoreUrl::Influx {
                base: "http://127.0.0.1:8086".into(),
                database: "water".into(),
                username: None,
                ca_file: None
            }
        );
        assert_eq!(
            "influx://admin@db.local:8086/water".parse::<StoreUrl>().unwrap(),
            StoreUrl::Influx {
                base: "http://db.local:8086".into(),
                database: "water".into(),
                username: Some("admin".into()),
                ca_file: None
            }
        );
        assert_eq!(
            "influxs://admin@db.city.example:8086/water?ca_file=/etc/mizumori/city-ca.pem".parse::<StoreUrl>().unwrap(),
            StoreUrl::Influx {
                base: "https://db.city.example:8086".into(),
                database: "water".into(),
                username: Some("admin".into()),
                ca_file: Some("/etc/mizumori/city-ca.pem".into())
            }
        );
        assert_eq!(
            "influxs://db.city.example:8086/water".parse::<StoreUrl>().unwrap(),
            StoreUrl::Influx {
                base: "https://db.city.example:8086".into(),
                database: "water".into(),
                username: None,
                ca_file: None
            }
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        for (url, needle) in [
            ("postgres://x", "expected sqlite://"),
            ("sqlite://", "missing file path"),
            ("influx://127.0.0.1:8086", "missing /DATABASE"),
            ("influx://127.0.0.1/water", "missing :PORT"),
            ("influx://127.0.0.1:x/water", "HOST:PORT"),
            ("influx://127.0.0.1:8086/wa'ter", "database name"),
            ("influx://u:secret@127.0.0.1:8086/water", "no password in the URL"),
            ("influx://127.0.0.1:8086/water?ca_file=/ca.pem", "ca_file is for https: write influxs://"),
            ("influxs://127.0.0.1:8086/water?ca_file=", "give ca_file=PATH"),
            ("influxs://127.0.0.1:8086/water?verify=no", "the one query parameter is ca_file"),
            ("influxs://127.0.0.1:8086/water?ca_file=/a.pem&x=1", "the one query parameter is ca_file"),
            ("influxs://127.0.0.1/water", "missing :PORT"),
        ] {
            let e = url.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains("secret@") || url.contains("secret"), "{e}");
        }
    }
}
