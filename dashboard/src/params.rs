//! Query parameters shared by the table pages (`/risk`, `/sewer`, the alerts inbox): an empty
//! parameter counts as absent (an HTML form sends `material=` for "all"), and every refusal is
//! a 400 in the reader's language naming the parameter and what it takes.

use std::fmt::Write;

use crate::AppError;
use crate::i18n::{Lang, Msg};

/// A 400 with the message in the reader's language.
pub(crate) fn bad(lang: Lang, en: String, ja: String) -> AppError {
    AppError::BadRequest(match lang {
        Lang::En => en,
        Lang::Ja => ja,
    })
}

/// The parameter's value, `None` when absent or empty.
pub(crate) fn some(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// `sort=`: one of `keys` (by name), `default` when absent.
pub(crate) fn sort_key<K: Copy>(
    lang: Lang,
    v: Option<&str>,
    default: K,
    keys: &[K],
    name: fn(K) -> &'static str,
) -> Result<K, AppError> {
    let Some(s) = v else { return Ok(default) };
    keys.iter().copied().find(|&k| name(k) == s).ok_or_else(|| {
        let names: Vec<&str> = keys.iter().map(|&k| name(k)).collect();
        bad(
            lang,
            format!("sort={s:?}: sort by one of {}", names.join(", ")),
            format!("sort={s:?}: 並べ替えの列は {} のいずれかです", names.join(", ")),
        )
    })
}

/// `dir=asc|desc`: whether the order is descending (ascending when absent).
pub(crate) fn descending(lang: Lang, v: Option<&str>) -> Result<bool, AppError> {
    match v {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(d) => Err(bad(
            lang,
            format!("dir={d:?}: use asc or desc"),
            format!("dir={d:?}: asc または desc を指定してください"),
        )),
    }
}

/// `page=`: a page number from 1 (1 when absent).
pub(crate) fn page_number(lang: Lang, v: Option<&str>) -> Result<u64, AppError> {
    match v {
        None => Ok(1),
        Some(p) => match p.parse::<u64>() {
            // Past a million pages the offset would not fit SQLite's integers anyway.
            Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
            _ => Err(bad(
                lang,
                format!("page={p:?}: a page number from 1"),
                format!("page={p:?}: ページ番号は 1 以上の整数です"),
            )),
        },
    }
}

/// Previous / next links of a paged table at `path`; `query(page)` is the query string of a page.
pub(crate) fn pager(lang: Lang, path: &str, page: u64, pages: u64, query: impl Fn(u64) -> String) -> String {
    let mut s = format!("<nav class=\"ranges\" aria-label=\"{}\">", lang.t(Msg::Page));
    if page > 1 {
        let _ = write!(s, "<a href=\"{path}?{}\" rel=\"prev\">← {}</a>", query(page - 1), lang.t(Msg::Previous));
    }
    if page < pages {
        let _ = write!(s, "<a href=\"{path}?{}\" rel=\"next\">{} →</a>", query(page + 1), lang.t(Msg::Next));
    }
    s.push_str("</nav>");
    s
}
