//! Small HTML helpers; pages are plain strings, escaped where text comes from data.

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

/// The page frame: a readable layout at phone width, no scripts.
pub fn page(title: &str, refresh_s: Option<u32>, body: &str) -> String {
    let refresh = refresh_s.map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">")).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}
<title>{title} — Mizumori</title>
<style>
body {{ font-family: system-ui, "Hiragino Sans", "IPAexGothic", sans-serif; margin: 0; color: #1b1b1b; background: #f6f7f9; }}
header {{ background: #0b3d66; color: white; padding: 0.6rem 1rem; }}
header h1 {{ font-size: 1.2rem; margin: 0; }}
main {{ padding: 0.5rem 1rem 2rem; max-width: 1100px; }}
section.device {{ background: white; border: 1px solid #d8dde3; border-radius: 6px; margin: 1rem 0; padding: 0.5rem 1rem; }}
h2 {{ font-size: 1.1rem; }}
.point {{ display: grid; grid-template-columns: minmax(12rem, 1fr) 2fr; gap: 0.5rem; align-items: center; border-top: 1px solid #eef0f2; padding: 0.4rem 0; }}
.value {{ font-size: 1.3rem; font-variant-numeric: tabular-nums; }}
.q-good {{ color: #176b2c; }} .q-bad {{ color: #a4161a; font-weight: bold; }}
.meta {{ color: #555; font-size: 0.85rem; }}
svg {{ max-width: 100%; height: auto; }}
@media (max-width: 640px) {{ .point {{ grid-template-columns: 1fr; }} }}
</style>
</head>
<body>
<header><h1>水守 Mizumori</h1></header>
<main>
{body}
</main>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(super::escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
