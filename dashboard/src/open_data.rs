//! Open data: an admin publishes the pipe register of the newest ranking (material, diameter,
//! length, install year, age, district, risk grade, coordinates) at public URLs, as CSV and as
//! GeoJSON, under a licence line the admin sets. Off by default: until an admin turns it on,
//! the public URLs answer 404 as if they did not exist.
//!
//! The admin marks what is sensitive: mains whose consequence-of-failure grade is at or above a
//! threshold stand for critical facilities (hospitals, trunk mains, emergency roads raise a
//! main's CoF), and lose their coordinates or are left out; districts and coordinates can be
//! left out of every main. Likelihood figures, ranks and explanations are never published:
//! only the grade.
//!
//! The settings live in the SQLite file beside the accounts (`store::settings`), as JSON
//! under one name; an unreadable value counts as "off" (fail closed) and is logged.

use std::fmt::Write;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Form, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use chrono::{Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::risk::{RiskQuery, RiskRow, RiskRun};

use crate::auth::CurrentUser;
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::params::bad;
use crate::risk::grade_msg;
use crate::{AppError, AppState};

/// The name of the setting.
pub const SETTING: &str = "open_data";
/// Licence and attribution are one line each.
const MAX_LINE_CHARS: usize = 200;

/// What happens to a sensitive main.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveAction {
    /// Published without coordinates.
    #[default]
    OmitCoordinates,
    /// Not published at all.
    OmitMain,
}

/// The publication settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenData {
    pub enabled: bool,
    /// The licence line, e.g. "CC BY 4.0".
    pub licence: String,
    /// Who publishes, for the attribution the licence asks for (e.g. "千歳市水道局").
    pub attribution: String,
    /// Mains with a CoF grade at or above this are sensitive; 0 marks none.
    pub sensitive_cof: u8,
    pub sensitive_action: SensitiveAction,
    /// Leave the district out of every main.
    pub omit_district: bool,
    /// Leave coordinates out of every main.
    pub omit_coordinates: bool,
}

impl Default for OpenData {
    fn default() -> Self {
        OpenData {
            enabled: false,
            licence: "CC BY 4.0".into(),
            attribution: String::new(),
            sensitive_cof: 4,
            sensitive_action: SensitiveAction::OmitCoordinates,
            omit_district: false,
            omit_coordinates: false,
        }
    }
}

fn check_line(name: &str, v: &str, lang: Lang, required: bool) -> Result<String, AppError> {
    let v = v.trim();
    if (required && v.is_empty()) || v.chars().count() > MAX_LINE_CHARS || v.chars().any(char::is_control) {
        return Err(bad(
            lang,
            format!("{name}: one line of 1 to {MAX_LINE_CHARS} characters"),
            format!("{name}: 1〜{MAX_LINE_CHARS} 文字の1行で入力してください"),
        ));
    }
    Ok(v.to_owned())
}

impl OpenData {
    /// Checks settings from a form or the API.
    pub(crate) fn checked(self, lang: Lang) -> Result<OpenData, AppError> {
        if self.sensitive_cof > 5 {
            return Err(bad(
                lang,
                format!("sensitive_cof={}: a CoF grade from 1 to 5, or 0 for none", self.sensitive_cof),
                format!("sensitive_cof={}: CoF 等級 1〜5（なしは 0）で指定してください", self.sensitive_cof),
            ));
        }
        Ok(OpenData {
            licence: check_line("licence", &self.licence, lang, true)?,
            attribution: check_line("attribution", &self.attribution, lang, false)?,
            ..self
        })
    }

    fn is_sensitive(&self, r: &RiskRow) -> bool {
        self.sensitive_cof > 0 && r.cof_grade >= self.sensitive_cof
    }

    /// The coordinates to publish for `r`: WGS 84 longitude and latitude only (GeoJSON's
    /// system), never a sensitive main's or when coordinates are left out.
    fn coordinates(&self, r: &RiskRow) -> Option<(f64, f64)> {
        if self.omit_coordinates || self.is_sensitive(r) {
            return None;
        }
        match (r.x, r.y) {
            (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => Some((x, y)),
            _ => None,
        }
    }

    /// The mains to publish, in ranking order.
    fn published<'a>(&'a self, rows: &'a [RiskRow]) -> impl Iterator<Item = &'a RiskRow> + 'a {
        rows.iter().filter(|r| !(self.is_sensitive(r) && self.sensitive_action == SensitiveAction::OmitMain))
    }
}

/// The settings as stored, or the defaults.
pub(crate) async fn load(state: &AppState) -> Result<OpenData, AppError> {
    match state.settings.get(SETTING).await? {
        None => Ok(OpenData::default()),
        Some(s) => Ok(serde_json::from_str(&s.value).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the open-data setting is unreadable; publication stays off");
            OpenData::default()
        })),
    }
}

/// The settings, or 404 when publication is off.
async fn enabled(state: &AppState) -> Result<OpenData, AppError> {
    let o = load(state).await?;
    if !o.enabled {
        return Err(AppError::NotFound("open data is not published".into()));
    }
    Ok(o)
}

/// Every main of the newest run.
async fn register(state: &AppState) -> Result<(RiskRun, Vec<RiskRow>), AppError> {
    let run = state
        .caches
        .latest_run(&state.risk)
        .await?
        .ok_or_else(|| AppError::NotFound("open data: no register published yet".into()))?;
    let query = RiskQuery { limit: 1_000_000, ..RiskQuery::default() };
    let page = state.caches.risk_rows(&state.risk, run.id, &query).await?;
    Ok((run, page.rows.clone()))
}

fn age(run: &RiskRun, r: &RiskRow) -> Option<i32> {
    r.install_year.map(|y| (run.as_of.year() - y).max(0))
}

fn csv_field(s: &str) -> String {
    // Register text never starts a formula on purpose; neutralise it anyway.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `GET /open-data/pipes.csv` (public): UTF-8 with a BOM, so Japanese Excel reads it.
pub(crate) async fn pipes_csv(State(state): State<AppState>) -> Result<Response, AppError> {
    let o = enabled(&state).await?;
    let (run, rows) = register(&state).await?;
    let mut out = String::from('\u{feff}');
    out.push_str("asset_id,material,material_ja,diameter_mm,length_m,install_year,age_years");
    if !o.omit_district {
        out.push_str(",district");
    }
    out.push_str(",risk_grade,risk_grade_ja,longitude,latitude\r\n");
    for r in o.published(&rows) {
        let (lon, lat) = o.coordinates(r).map_or((None, None), |(x, y)| (Some(x), Some(y)));
        let _ = write!(
            out,
            "{},{},{},{},{:.1},{},{}",
            csv_field(r.asset_id.as_str()),
            csv_field(&r.material),
            csv_field(&r.material_ja),
            opt(r.diameter_mm),
            r.length_m,
            opt(r.install_year),
            opt(age(&run, r)),
        );
        if !o.omit_district {
            let _ = write!(out, ",{}", csv_field(r.district.as_deref().unwrap_or("")));
        }
        let _ = write!(out, ",{},{},{},{}\r\n", r.risk_grade, Lang::Ja.t(grade_msg(r.risk_grade)), opt(lon), opt(lat));
    }
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"pipes.csv\"")),
        ],
        out,
    )
        .into_response())
}

/// `GET /open-data/pipes.geojson` (public): a FeatureCollection of points at each main's
/// midpoint (null geometry where coordinates are unknown or withheld), with the licence.
pub(crate) async fn pipes_geojson(State(state): State<AppState>) -> Result<Response, AppError> {
    let o = enabled(&state).await?;
    let (run, rows) = register(&state).await?;
    let features: Vec<serde_json::Value> = o
        .published(&rows)
        .map(|r| {
            let geometry = o.coordinates(r).map(|(x, y)| json!({"type": "Point", "coordinates": [x, y]}));
            let mut p = json!({
                "asset_id": r.asset_id.as_str(),
                "material": r.material,
                "material_ja": r.material_ja,
                "diameter_mm": r.diameter_mm,
                "length_m": r.length_m,
                "install_year": r.install_year,
                "age_years": age(&run, r),
                "risk_grade": r.risk_grade.to_string(),
                "risk_grade_ja": Lang::Ja.t(grade_msg(r.risk_grade)),
            });
            if !o.omit_district {
                p["district"] = json!(r.district);
            }
            json!({"type": "Feature", "id": r.asset_id.as_str(), "geometry": geometry, "properties": p})
        })
        .collect();
    let body = json!({
        "type": "FeatureCollection",
        "name": "pipes",
        "licence": o.licence,
        "attribution": o.attribution,
        "as_of": run.as_of.to_string(),
        "features": features,
    });
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/geo+json"))], body.to_string()).into_response())
}

/// `GET /open-data` (public): what is published, under which licence.
pub(crate) async fn index(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    uri: Uri,
) -> Result<Html<String>, AppError> {
    let o = enabled(&state).await?;
    let (run, rows) = register(&state).await?;
    let title = lang.t(Msg::OpenData);
    let body = format!(
        "<h2>{title}</h2><p>{intro}</p><p class=\"licence\">{licence_l}: <strong>{licence}</strong>{attribution}</p>\
         <p>{asof_l} {asof} · {n} {mains}</p>\
         <p><a class=\"button\" href=\"/open-data/pipes.csv\">CSV</a> <a class=\"button\" href=\"/open-data/pipes.geojson\">GeoJSON</a></p>",
        intro = lang.t(Msg::OpenDataIntro),
        licence_l = lang.t(Msg::Licence),
        licence = escape(&o.licence),
        attribution = if o.attribution.is_empty() { String::new() } else { format!(" · {}", escape(&o.attribution)) },
        asof_l = lang.t(Msg::AsOf),
        asof = run.as_of,
        n = o.published(&rows).count(),
        mains = lang.t(Msg::MainsUnit),
    );
    let here = uri.path_and_query().map_or("/open-data", |p| p.as_str());
    Ok(Html(page(&Frame { lang, title, user: None, here, refresh_s: None }, &body)))
}

/// The admin form's fields, as a browser sends them (unchecked boxes are absent).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsForm {
    enabled: Option<String>,
    licence: Option<String>,
    attribution: Option<String>,
    sensitive_cof: Option<String>,
    sensitive_action: Option<String>,
    omit_district: Option<String>,
    omit_coordinates: Option<String>,
    #[allow(dead_code)]
    csrf: Option<String>,
}

impl SettingsForm {
    fn into_settings(self, lang: Lang) -> Result<OpenData, AppError> {
        let cof = self.sensitive_cof.as_deref().unwrap_or("0");
        let sensitive_cof = cof.parse::<u8>().map_err(|_| {
            bad(
                lang,
                format!("sensitive_cof={cof:?}: a CoF grade from 1 to 5, or 0 for none"),
                format!("sensitive_cof={cof:?}: CoF 等級 1〜5（なしは 0）で指定してください"),
            )
        })?;
        let sensitive_action = match self.sensitive_action.as_deref().unwrap_or("omit_coordinates") {
            "omit_coordinates" => SensitiveAction::OmitCoordinates,
            "omit_main" => SensitiveAction::OmitMain,
            other => {
                return Err(bad(
                    lang,
                    format!("sensitive_action={other:?}: use omit_coordinates or omit_main"),
                    format!("sensitive_action={other:?}: omit_coordinates または omit_main を指定してください"),
                ));
            }
        };
        OpenData {
            enabled: self.enabled.is_some(),
            licence: self.licence.unwrap_or_default(),
            attribution: self.attribution.unwrap_or_default(),
            sensitive_cof,
            sensitive_action,
            omit_district: self.omit_district.is_some(),
            omit_coordinates: self.omit_coordinates.is_some(),
        }
        .checked(lang)
    }
}

async fn save(state: &AppState, user: &CurrentUser, o: &OpenData) -> Result<(), AppError> {
    let value = serde_json::to_string(o).map_err(|e| AppError::Internal(format!("open-data setting: {e}")))?;
    state.settings.put(SETTING, &value, user.name.as_str(), Utc::now()).await?;
    tracing::info!(user = %user.name, enabled = o.enabled, "open-data settings changed");
    Ok(())
}

/// `GET /admin/open-data`: the settings form.
pub(crate) async fn settings_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
) -> Result<Html<String>, AppError> {
    let o = load(&state).await?;
    let checked = |b: bool| if b { " checked" } else { "" };
    let mut cofs = String::new();
    for g in 0..=5u8 {
        let sel = if g == o.sensitive_cof { " selected" } else { "" };
        let text = if g == 0 { lang.t(Msg::NoneMarked).to_owned() } else { format!("CoF ≥ {g}") };
        let _ = write!(cofs, "<option value=\"{g}\"{sel}>{text}</option>");
    }
    let action = |v: SensitiveAction, m: Msg, code: &str| {
        format!(
            "<option value=\"{code}\"{}>{}</option>",
            if o.sensitive_action == v { " selected" } else { "" },
            lang.t(m)
        )
    };
    let title = lang.t(Msg::OpenData);
    let body = format!(
        "<h2>{title}</h2><p>{intro}</p>\
         <form method=\"post\" action=\"/admin/open-data\" class=\"settings\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <p><input type=\"checkbox\" id=\"enabled\" name=\"enabled\" value=\"on\"{en}> <label for=\"enabled\" style=\"display:inline\">{en_l}</label></p>\
         <label for=\"licence\">{lic_l}</label><input type=\"text\" id=\"licence\" name=\"licence\" value=\"{lic}\" required maxlength=\"{max}\">\
         <label for=\"attribution\">{att_l}</label><input type=\"text\" id=\"attribution\" name=\"attribution\" value=\"{att}\" maxlength=\"{max}\">\
         <label for=\"sensitive_cof\">{cof_l}</label><select id=\"sensitive_cof\" name=\"sensitive_cof\">{cofs}</select>\
         <label for=\"sensitive_action\">{act_l}</label><select id=\"sensitive_action\" name=\"sensitive_action\">{a1}{a2}</select>\
         <p><input type=\"checkbox\" id=\"omit_district\" name=\"omit_district\" value=\"on\"{od}> <label for=\"omit_district\" style=\"display:inline\">{od_l}</label></p>\
         <p><input type=\"checkbox\" id=\"omit_coordinates\" name=\"omit_coordinates\" value=\"on\"{oc}> <label for=\"omit_coordinates\" style=\"display:inline\">{oc_l}</label></p>\
         <p><button type=\"submit\" class=\"button primary\">{save}</button></p></form>\
         <p><a href=\"/open-data\">/open-data</a> · <a href=\"/open-data/pipes.csv\">pipes.csv</a> · <a href=\"/open-data/pipes.geojson\">pipes.geojson</a></p>",
        intro = lang.t(Msg::OpenDataAdminIntro),
        csrf = user.csrf,
        en = checked(o.enabled),
        en_l = lang.t(Msg::PublishOpenData),
        lic_l = lang.t(Msg::Licence),
        lic = escape(&o.licence),
        att_l = lang.t(Msg::Attribution),
        att = escape(&o.attribution),
        max = MAX_LINE_CHARS,
        cof_l = lang.t(Msg::SensitiveCof),
        act_l = lang.t(Msg::SensitiveAction),
        a1 = action(SensitiveAction::OmitCoordinates, Msg::OmitCoordinatesOfThem, "omit_coordinates"),
        a2 = action(SensitiveAction::OmitMain, Msg::OmitThem, "omit_main"),
        od = checked(o.omit_district),
        od_l = lang.t(Msg::OmitDistrict),
        oc = checked(o.omit_coordinates),
        oc_l = lang.t(Msg::OmitAllCoordinates),
        save = lang.t(Msg::Save),
    );
    let here = uri.path_and_query().map_or("/admin/open-data", |p| p.as_str());
    Ok(Html(page(&Frame { lang, title, user: Some(&user), here, refresh_s: None }, &body)))
}

/// `POST /admin/open-data`: saves the form, then back to it (303).
pub(crate) async fn settings_submit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(f) = form?;
    save(&state, &user, &f.into_settings(lang)?).await?;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(LOCATION, HeaderValue::from_static("/admin/open-data"));
    Ok(resp)
}

/// `GET /api/admin/open-data`.
pub(crate) async fn settings_json(State(state): State<AppState>) -> Result<Json<OpenData>, AppError> {
    Ok(Json(load(&state).await?))
}

/// `POST /api/admin/open-data`: replaces the settings; answers them as saved.
pub(crate) async fn settings_put_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    body: Result<Json<OpenData>, JsonRejection>,
) -> Result<Json<OpenData>, AppError> {
    let Json(o) = body?;
    let o = o.checked(lang)?;
    save(&state, &user, &o).await?;
    Ok(Json(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = OpenData { licence: " CC BY 4.0 ".into(), ..OpenData::default() }.checked(Lang::En).unwrap();
        assert_eq!(ok.licence, "CC BY 4.0");
        for bad in [
            OpenData { licence: String::new(), ..OpenData::default() },
            OpenData { licence: "a\nb".into(), ..OpenData::default() },
            OpenData { attribution: "x".repeat(201), ..OpenData::default() },
            OpenData { sensitive_cof: 6, ..OpenData::default() },
        ] {
            assert!(bad.checked(Lang::En).is_err());
        }
        assert!(!OpenData::default().enabled, "off by default");
    }
}
