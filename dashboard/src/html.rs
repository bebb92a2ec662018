//! Small HTML helpers; pages are plain strings, escaped where text comes from data.

use crate::auth::CurrentUser;
use crate::i18n::{Lang, Msg};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the frame around a page body needs to know.
#[derive(Debug)]
pub struct Frame<'a> {
    pub lang: Lang,
    pub title: &'a str,
    /// The logged-in user: shows their name, the logout button and the CSRF meta tag.
    pub user: Option<&'a CurrentUser>,
    /// This page's path and query, for the language switch.
    pub here: &'a str,
    pub refresh_s: Option<u32>,
}

/// `here` with its `lang` parameter set to `lang`.
fn with_lang(here: &str, lang: Lang) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut params: Vec<&str> = query.split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("lang=")).collect();
    let l = format!("lang={}", lang.code());
    params.push(&l);
    format!("{path}?{}", params.join("&"))
}

/// The page frame: readable at phone width, touch targets of at least 44 px, no scripts
/// beyond what a page adds itself.
pub fn page(f: &Frame<'_>, body: &str) -> String {
    let lang = f.lang;
    let refresh = f.refresh_s.map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">")).unwrap_or_default();
    // The sections a logged-in user can open, on every page.
    let nav = if let Some(u) = f.user {
        let admin = if u.role == store::Role::Admin {
            format!("<a href=\"/admin/open-data\">{}</a>", lang.t(Msg::OpenData))
        } else {
            String::new()
        };
        format!(
            "<nav class=\"main\"><a href=\"/\">{}</a><a href=\"/alerts\">{}</a><a href=\"/risk\">{}</a><a href=\"/sewer\">{}</a><a href=\"/plan\">{}</a><a href=\"/model\">{}</a>{admin}</nav>",
            lang.t(Msg::Overview),
            lang.t(Msg::Alerts),
            lang.t(Msg::RiskRanking),
            lang.t(Msg::Sewers),
            if lang == Lang::Ja { "更新計画" } else { "Renewal plan" },
            lang.t(Msg::ModelCard)
        )
    } else {
        String::new()
    };
    let (csrf_meta, account) = match f.user {
        Some(u) => (
            format!("<meta name=\"csrf-token\" content=\"{}\">", u.csrf),
            format!(
                "<span class=\"who\">{signed} {name} ({role})</span>\
                 <form method=\"post\" action=\"/logout\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\">{logout}</button></form>",
                signed = lang.t(Msg::SignedInAs),
                name = u.name,
                role = u.role,
                csrf = u.csrf,
                logout = lang.t(Msg::Logout),
            ),
        ),
        None => (String::new(), String::new()),
    };
    let switch = format!(
        "<a href=\"{}\" lang=\"{}\">{}</a>",
        escape(&with_lang(f.here, lang.other())),
        lang.other().code(),
        lang.t(Msg::SwitchLanguage)
    );
    format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}{csrf_meta}
<title>{title} — {app}</title>
<style>
body {{ font-family: system-ui, "Hiragino Sans", "IPAexGothic", "Noto Sans CJK JP", sans-serif; margin: 0; color: #1b1b1b; background: #f6f7f9; }}
header {{ background: #0b3d66; color: white; padding: 0.4rem 1rem; display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; }}
header h1 {{ font-size: 1.2rem; margin: 0; }}
header a, header button {{ color: white; min-height: 44px; display: inline-flex; align-items: center; }}
header button {{ background: none; border: 1px solid #8fb3d3; border-radius: 4px; padding: 0 0.8rem; font: inherit; cursor: pointer; }}
header .who {{ margin-left: auto; font-size: 0.9rem; }}
header nav.main {{ display: flex; flex-wrap: wrap; gap: 0 1rem; }}
form.inline {{ display: inline; margin: 0; }}
main {{ padding: 0.5rem 1rem 2rem; max-width: 1100px; }}
section.device {{ background: white; border: 1px solid #d8dde3; border-radius: 6px; margin: 1rem 0; padding: 0.5rem 1rem; }}
h2 {{ font-size: 1.1rem; }}
.point {{ display: grid; grid-template-columns: minmax(12rem, 1fr) 2fr; gap: 0.5rem; align-items: center; border-top: 1px solid #eef0f2; padding: 0.4rem 0; }}
.value {{ font-size: 1.3rem; font-variant-numeric: tabular-nums; }}
.q-good {{ color: #176b2c; }} .q-bad {{ color: #a4161a; font-weight: bold; }}
.meta {{ color: #555; font-size: 0.85rem; }}
.error {{ color: #a4161a; font-weight: bold; }}
nav.ranges {{ display: flex; flex-wrap: wrap; gap: 0.4rem; margin: 0.5rem 0; }}
nav.ranges a, .button {{ min-height: 44px; min-width: 44px; padding: 0 0.9rem; display: inline-flex; align-items: center; justify-content: center; border: 1px solid #0b3d66; border-radius: 4px; color: #0b3d66; background: white; text-decoration: none; box-sizing: border-box; }}
nav.ranges a[aria-current] {{ background: #0b3d66; color: white; font-weight: bold; }}
details > summary {{ list-style: none; cursor: pointer; }}
details[open] > summary {{ background: #0b3d66; color: white; }}
label {{ display: block; margin: 0.5rem 0 0.2rem; }}
input, select, button {{ font: inherit; min-height: 44px; box-sizing: border-box; }}
input[type=text], input[type=password] {{ width: 100%; max-width: 20rem; padding: 0 0.5rem; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 0.3rem 0.6rem; border-bottom: 1px solid #e3e6ea; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 0.5rem 0; }}
svg, .svgbox img {{ max-width: 100%; height: auto; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
.kpis {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: 0.5rem; margin: 0.5rem 0; }}
.kpi {{ background: white; border: 1px solid #d8dde3; border-radius: 6px; padding: 0.5rem 0.8rem; }}
.grade {{ display: inline-block; padding: 0.1rem 0.5rem; border-radius: 3px; color: #1b1b1b; white-space: nowrap; }}
.legend .swatch {{ display: inline-block; width: 0.9rem; height: 0.25rem; margin-right: 0.25rem; vertical-align: middle; }}
form.filters {{ display: flex; flex-wrap: wrap; gap: 0 1rem; align-items: flex-end; }}
form.filters input[type=number] {{ width: 7rem; }}
tr.chosen {{ background: #e8f0f8; font-weight: bold; }}
td a, th a {{ display: inline-block; min-height: 24px; }}
article.alert {{ background: white; border: 1px solid #d8dde3; border-left: 8px solid #6b7280; border-radius: 6px; margin: 0.8rem 0; padding: 0.3rem 0.8rem 0.6rem; }}
article.alert h3 {{ font-size: 1.05rem; margin: 0.4rem 0; display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }}
article.alert h3 a {{ min-height: 44px; display: inline-flex; align-items: center; }}
article.alert .msg {{ font-size: 1.05rem; margin: 0.3rem 0; }}
article.alert p {{ margin: 0.3rem 0; }}
.sev {{ display: inline-block; padding: 0.15rem 0.5rem; border-radius: 3px; font-weight: bold; white-space: nowrap; }}
article.alert.sev-critical {{ border-left-color: #a4161a; }} span.sev-critical {{ background: #a4161a; color: white; }}
article.alert.sev-major {{ border-left-color: #d9480f; }} span.sev-major {{ background: #ffd8a8; color: #1b1b1b; }}
article.alert.sev-minor {{ border-left-color: #e0b000; }} span.sev-minor {{ background: #fff3bf; color: #1b1b1b; }}
article.alert.sev-info {{ border-left-color: #1c7ed6; }} span.sev-info {{ background: #d0ebff; color: #1b1b1b; }}
.state-open {{ color: #a4161a; }} .state-acknowledged {{ color: #176b2c; }}
.journal {{ background: #f1f3f5; padding: 0.3rem 0.5rem; border-radius: 4px; }}
form.act {{ margin: 0.5rem 0; }}
form.act textarea, form.act select {{ width: 100%; max-width: 30rem; min-height: 44px; font: inherit; box-sizing: border-box; display: block; margin-bottom: 0.3rem; }}
.button.primary {{ background: #0b3d66; color: white; font-weight: bold; }}
@media (max-width: 640px) {{ .point {{ grid-template-columns: 1fr; }} main {{ padding: 0.5rem 0.5rem 2rem; }} }}
</style>
</head>
<body>
<header><h1><a href="/" style="text-decoration:none">水守 Mizumori</a></h1>{nav}{switch}{account}</header>
<main>
{body}
</main>
</body>
</html>
"#,
        code = lang.code(),
        title = escape(f.title),
        app = lang.t(Msg::AppName),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn language_switch_keeps_the_other_parameters() {
        assert_eq!(with_lang("/", Lang::En), "/?lang=en");
        assert_eq!(
            with_lang("/devices/fm01/flow?range=7d&lang=ja&w=390", Lang::En),
            "/devices/fm01/flow?range=7d&w=390&lang=en"
        );
    }
}
