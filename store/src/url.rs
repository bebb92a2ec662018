//! Store URLs: `sqlite://PATH` and `influx://[USER@]HOST:PORT/DATABASE`.

use std::path::PathBuf;
use std::str::FromStr;

use crate::StoreError;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH`; PATH may be relative (`sqlite://data/m.sqlite`) or absolute
    /// (`sqlite:///var/lib/mizumori/m.sqlite`).
    Sqlite { path: PathBuf },
    /// `influx://[USER@]HOST:PORT/DATABASE`, spoken as plain HTTP. The password or token never
    /// appears in the URL: it comes from the environment (see `InfluxAuth::from_env`).
    Influx { base: String, database: String, username: Option<String> },
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
        if let Some(rest) = url.strip_prefix("influx://") {
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
                base: format!("http://{hostport}"),
                database: database.to_owned(),
                username,
            });
        }
        Err(bad("expected sqlite://PATH or influx://HOST:PORT/DATABASE"))
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
            StoreUrl::Influx { base: "http://127.0.0.1:8086".into(), database: "water".into(), username: None }
        );
        assert_eq!(
            "influx://admin@db.local:8086/water".parse::<StoreUrl>().unwrap(),
            StoreUrl::Influx {
                base: "http://db.local:8086".into(),
                database: "water".into(),
                username: Some("admin".into())
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
        ] {
            let e = url.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains("secret@") || url.contains("secret"), "{e}");
        }
    }
}
