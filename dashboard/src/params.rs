//! Query parameters shared by the table pages (`/risk`, `/sewer`, the alerts inbox): an empty
//! parameter counts as absent (an HTML form sends `material=` for "all"), and every refusal is
//! a 400 in the reader's language naming the parameter and what it takes. Also the two pieces
//! of HTML that follow from them on `/risk` and `/sewer`: the sortable header and the pager.

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

/// The `<thead>` of a table at `path` sorted by `sort` (`descending` or not). A column with a
/// key is a link that sorts by it: the current column carries `aria-sort` and an arrow, and its
/// link reverses the order; another column's link starts descending (the largest figures are
/// the ones to act on) unless `starts_ascending(key)` (ranks and names read from the top). A
/// column without a key is a plain heading. `query(key, descending)` is the link's query string.
pub(crate) fn sort_header<K: Copy + PartialEq>(
    lang: Lang,
    path: &str,
    columns: &[(Option<K>, Msg)],
    sort: K,
    descending: bool,
    starts_ascending: impl Fn(K) -> bool,
    query: impl Fn(K, bool) -> String,
) -> String {
    let mut s = String::from("<thead><tr>");
    for &(key, msg) in columns {
        let label = lang.t(msg);
        let Some(key) = key else {
            let _ = write!(s, "<th scope=\"col\">{label}</th>");
            continue;
        };
        let current = key == sort;
        let next_desc = if current { !descending } else { !starts_ascending(key) };
        let (aria, arrow) = match (current, descending) {
            (true, true) => (" aria-sort=\"descending\"", " ▼"),
            (true, false) => (" aria-sort=\"ascending\"", " ▲"),
            _ => ("", ""),
        };
        let _ = write!(
            s,
            "<th scope=\"col\"{aria}><a href=\"{path}?{q}\">{label}{arrow}</a></th>",
            q = query(key, next_desc)
        );
    }
    s.push_str("</tr></thead>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of columns 1 (starts ascending), none, 2 and 3 at `/t`, sorted by `sort`.
    #[track_caller]
    fn check(sort: u8, descending: bool, expected: &str) {
        let columns = [(Some(1), Msg::Rank), (None, Msg::LofCof), (Some(2), Msg::Material), (Some(3), Msg::LengthM)];
        let query = |k: u8, d: bool| format!("sort={k}&dir={}", if d { "desc" } else { "asc" });
        let got = sort_header(Lang::En, "/t", &columns, sort, descending, |k| k == 1, query);
        let expected = expected
            .replace("RANK", Lang::En.t(Msg::Rank))
            .replace("LOFCOF", Lang::En.t(Msg::LofCof))
            .replace("MATERIAL", Lang::En.t(Msg::Material))
            .replace("LENGTH", Lang::En.t(Msg::LengthM));
        assert_eq!(got, expected);
    }

    #[test]
    fn the_sorted_column_is_marked_and_its_link_reverses_the_order() {
        check(
            1,
            false,
            "<thead><tr><th scope=\"col\" aria-sort=\"ascending\"><a href=\"/t?sort=1&dir=desc\">RANK ▲</a></th>\
             <th scope=\"col\">LOFCOF</th><th scope=\"col\"><a href=\"/t?sort=2&dir=desc\">MATERIAL</a></th>\
             <th scope=\"col\"><a href=\"/t?sort=3&dir=desc\">LENGTH</a></th></tr></thead>",
        );
        check(
            2,
            true,
            "<thead><tr><th scope=\"col\"><a href=\"/t?sort=1&dir=asc\">RANK</a></th>\
             <th scope=\"col\">LOFCOF</th><th scope=\"col\" aria-sort=\"descending\"><a href=\"/t?sort=2&dir=asc\">MATERIAL ▼</a></th>\
             <th scope=\"col\"><a href=\"/t?sort=3&dir=desc\">LENGTH</a></th></tr></thead>",
        );
        check(
            3,
            false,
            "<thead><tr><th scope=\"col\"><a href=\"/t?sort=1&dir=asc\">RANK</a></th>\
             <th scope=\"col\">LOFCOF</th><th scope=\"col\"><a href=\"/t?sort=2&dir=desc\">MATERIAL</a></th>\
             <th scope=\"col\" aria-sort=\"ascending\"><a href=\"/t?sort=3&dir=desc\">LENGTH ▲</a></th></tr></thead>",
        );
    }
}
