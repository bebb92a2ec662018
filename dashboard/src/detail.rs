//! Device and point detail: charts over 1 h / 24 h / 7 d / 30 d or a custom range, drawn at
//! the requested width from the store's min-max windows; the gaps of the range; a CSV of its
//! readings; the same windows as JSON.
//!
//! Every parameter is checked here and refused with 400 and a message: names must be valid
//! `DeviceId`/`PointName`s (so nothing but a safe name reaches a query), ranges must be
//! ordered, after 1970 and at most a year long, widths between 200 and 3000 px.

use std::fmt::Write;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use model::{DeviceId, PointName, Reading, Value};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use store::{RangeQuery, SeriesKey, Window};

use crate::auth::{CurrentUser, Permission};
use crate::cache::Aggregated;
use crate::chart::{self, jst};
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::params::bad;
use crate::routes::format_value;
use crate::{AppError, AppState};

/// Chart widths a request may ask for, in CSS pixels.
const MIN_WIDTH: u32 = 200;
const MAX_WIDTH: u32 = 3000;
/// The width when the request names none: a desktop column; the page's script asks for the
/// real width of its box.
const DEFAULT_WIDTH: u32 = 720;
/// The longest range a chart or export covers.
const MAX_SPAN_DAYS: i64 = 366;
/// The most readings one CSV holds (about 12 days of 1 s data); longer ranges are refused
/// with a message rather than building a huge response in memory.
pub const MAX_EXPORT_ROWS: usize = 1_000_000;

/// The query of every chart, page, export and API call of a point.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeParams {
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    w: Option<String>,
    // The language and similar page-wide parameters are read by middleware.
    #[allow(dead_code)]
    lang: Option<String>,
}

/// The preset ranges, and a custom one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
    Hour,
    Day,
    Week,
    Month,
    Custom,
}

impl Span {
    const PRESETS: [(Span, &'static str, Msg); 4] = [
        (Span::Hour, "1h", Msg::Hour1),
        (Span::Day, "24h", Msg::Hours24),
        (Span::Week, "7d", Msg::Days7),
        (Span::Month, "30d", Msg::Days30),
    ];

    fn duration(self) -> Option<Duration> {
        match self {
            Span::Hour => Some(Duration::hours(1)),
            Span::Day => Some(Duration::hours(24)),
            Span::Week => Some(Duration::days(7)),
            Span::Month => Some(Duration::days(30)),
            Span::Custom => None,
        }
    }
}

/// A checked time range and chart width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub span: Span,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub width: u32,
}

/// A chart width from a `w` parameter, `default` when there is none; the plan's charts share it.
pub(crate) fn chart_width(w: Option<&str>, default: u32, lang: Lang) -> Result<u32, AppError> {
    match w {
        None | Some("") => Ok(default),
        Some(w) => match w.parse::<u32>() {
            Ok(w) if (MIN_WIDTH..=MAX_WIDTH).contains(&w) => Ok(w),
            _ => Err(bad(
                lang,
                format!("w={w:?}: the chart width must be a whole number of pixels from {MIN_WIDTH} to {MAX_WIDTH}"),
                format!("w={w:?}: グラフの幅は {MIN_WIDTH}〜{MAX_WIDTH} の整数（ピクセル）で指定してください"),
            )),
        },
    }
}

/// A time from a `datetime-local` input (`2026-04-01T09:30`, in JST), a date (`2026-04-01`,
/// JST midnight) or RFC 3339 with an offset.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    jst().from_local_datetime(&local).single().map(|t| t.with_timezone(&Utc))
}

impl RangeParams {
    /// Checks the parameters against `now`.
    pub(crate) fn check(&self, now: DateTime<Utc>, lang: Lang) -> Result<Checked, AppError> {
        let width = chart_width(self.w.as_deref(), DEFAULT_WIDTH, lang)?;
        let custom = self.from.is_some() || self.to.is_some();
        let span = match self.range.as_deref() {
            None | Some("") if custom => Span::Custom,
            None | Some("") => Span::Day,
            Some("custom") => Span::Custom,
            Some(r) => Span::PRESETS.iter().find(|(_, code, _)| *code == r).map(|(s, _, _)| *s).ok_or_else(|| {
                bad(
                    lang,
                    format!("range={r:?}: use 1h, 24h, 7d, 30d or custom (with from and to)"),
                    format!("range={r:?}: 1h, 24h, 7d, 30d または custom（from と to を指定）を使ってください"),
                )
            })?,
        };
        let (from, to) = match span.duration() {
            Some(d) => (now - d, now),
            None => {
                let field = |name: &str, v: Option<&str>| -> Result<DateTime<Utc>, AppError> {
                    let v = v.unwrap_or("");
                    parse_time(v).ok_or_else(|| {
                        bad(
                            lang,
                            format!("{name}={v:?}: give a time like 2026-04-01T09:30 (JST) or an RFC 3339 time"),
                            format!("{name}={v:?}: 2026-04-01T09:30（日本時間）または RFC 3339 形式で指定してください"),
                        )
                    })
                };
                (field("from", self.from.as_deref())?, field("to", self.to.as_deref())?)
            }
        };
        if to <= from {
            return Err(bad(
                lang,
                "the range must end after it starts (to > from)".into(),
                "終了は開始より後にしてください（to > from）".into(),
            ));
        }
        if from.timestamp_millis() < 0 {
            return Err(bad(lang, "the range cannot start before 1970".into(), "1970年より前は指定できません".into()));
        }
        if to - from > Duration::days(MAX_SPAN_DAYS) {
            return Err(bad(
                lang,
                format!("the range is longer than {MAX_SPAN_DAYS} days"),
                format!("期間は {MAX_SPAN_DAYS} 日以内にしてください"),
            ));
        }
        Ok(Checked { span, from, to, width })
    }
}

/// The device and point of a path, as validated names.
pub(crate) fn names(
    path: Result<Path<(String, String)>, PathRejection>,
    lang: Lang,
) -> Result<(DeviceId, PointName), AppError> {
    let Path((device, point)) = path?;
    let device = DeviceId::new(&device).map_err(|e| bad(lang, e.to_string(), e.to_string()))?;
    let point = PointName::new(&point).map_err(|e| bad(lang, e.to_string(), e.to_string()))?;
    Ok((device, point))
}

fn device_name(path: Result<Path<String>, PathRejection>, lang: Lang) -> Result<DeviceId, AppError> {
    let Path(device) = path?;
    DeviceId::new(&device).map_err(|e| bad(lang, e.to_string(), e.to_string()))
}

/// The latest reading of a point, or 404 when the store has never seen it.
async fn latest_of(state: &AppState, device: &DeviceId, point: &PointName) -> Result<Reading, AppError> {
    state
        .caches
        .latest(&state.store)
        .await?
        .iter()
        .find(|r| &r.device == device && &r.point == point)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("{device}/{point}")))
}

/// The windows a chart of `c` draws, through the cache: a preset range is "the last 24 h"
/// as of when the cache filled (at most one window ago), so `c`'s ends move to the cached ones.
async fn windows_of(
    state: &AppState,
    device: &DeviceId,
    point: &PointName,
    c: &mut Checked,
) -> Result<(Arc<Aggregated>, i64), AppError> {
    let window_ms = chart::window_ms_for(c.from, c.to, c.width);
    let series = SeriesKey { device: device.clone(), point: point.clone() };
    let agg = match c.span {
        Span::Custom => state.caches.fixed(&state.store, &series, c.from, c.to, window_ms).await?,
        _ => state.caches.recent(&state.store, &series, c.to - c.from, Duration::zero(), window_ms).await?,
    };
    c.from = agg.from;
    c.to = agg.to;
    Ok((agg, window_ms))
}

/// The line chart of `agg` at `c`'s width, drawn once while the aggregate is fresh.
async fn line_chart(
    state: &AppState,
    agg: &Arc<Aggregated>,
    c: &Checked,
    window_ms: i64,
) -> Result<Arc<crate::cache::Drawing>, AppError> {
    let (a, from, to, width) = (agg.clone(), c.from, c.to, c.width);
    state
        .caches
        .drawing(&format!("line {width}"), &[agg], move || {
            chart::line_svg(&a.windows, from, to, window_ms, (width, chart_height(width)))
        })
        .await
}

fn chart_height(width: u32) -> u32 {
    // Flatter on wide screens, taller on phones so the line stays readable.
    (width * 2 / 5).clamp(180, 360)
}

/// The query string that reproduces a checked range (for links, the chart and the CSV).
fn range_query(c: &Checked) -> String {
    match c.span {
        Span::Custom => format!(
            "range=custom&from={}&to={}",
            c.from.to_rfc3339_opts(SecondsFormat::Secs, true),
            c.to.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        s => format!("range={}", Span::PRESETS.iter().find(|(p, _, _)| *p == s).map_or("24h", |(_, code, _)| *code)),
    }
}

/// A chart and the script hook that redraws it at its box's real width.
fn figure(base: &str, c: &Checked, svg: &str, label: &str) -> String {
    // `+` and `:` in an RFC 3339 time must survive the query string.
    let query = range_query(c).replace('+', "%2B");
    format!(
        "<figure data-chart=\"{base}/chart.svg?{query}\" data-w=\"{w}\" role=\"img\" aria-label=\"{label}\">\
         <div class=\"svgbox\">{svg}</div></figure>",
        w = c.width,
        label = escape(label),
    )
}

/// A chart as an image the browser loads when it scrolls into view, at the server's guess of
/// the width (the resize script corrects it before loading). The device page uses these: a
/// pump station has ~46 points, and inline SVGs made its HTML ~560 KB.
fn lazy_figure(base: &str, c: &Checked, label: &str) -> String {
    let query = range_query(c).replace('+', "%2B");
    let src = format!("{base}/chart.svg?{query}");
    format!(
        "<figure data-chart=\"{src}\" data-w=\"{w}\"><div class=\"svgbox\">\
         <img src=\"{src}&amp;w={w}\" width=\"{w}\" height=\"{h}\" loading=\"lazy\" decoding=\"async\" alt=\"{label}\">\
         </div></figure>",
        w = c.width,
        h = chart_height(c.width),
        label = escape(label),
    )
}

/// Redraws each chart at the width its box really has, when that differs by more than 10 %
/// from what the server guessed: an inline SVG is fetched again, a lazy image gets its new
/// address before it loads. Without scripts the server's width stays. The height rule is
/// `chart_height`'s.
pub(crate) const RESIZE_SCRIPT: &str = r#"<script>
for (const f of document.querySelectorAll('figure[data-chart]')) {
  const box = f.querySelector('.svgbox');
  const want = Math.max(200, Math.min(3000, Math.round(box.clientWidth)));
  if (Math.abs(want - f.dataset.w) / f.dataset.w > 0.1) {
    const img = box.querySelector('img');
    if (img) {
      img.width = want; img.height = Math.max(180, Math.min(360, Math.floor(want * 2 / 5)));
      img.src = f.dataset.chart + '&w=' + want; f.dataset.w = want;
      continue;
    }
    fetch(f.dataset.chart + '&w=' + want, {credentials: 'same-origin'})
      .then(r => r.ok ? r.text() : null)
      .then(t => { if (t) { box.innerHTML = t; f.dataset.w = want; } });
  }
}
</script>"#;

fn range_nav(lang: Lang, base: &str, c: &Checked) -> String {
    let mut nav = format!("<nav class=\"ranges\" aria-label=\"{}\">", lang.t(Msg::Range));
    for (span, code, msg) in Span::PRESETS {
        let current = if span == c.span { " aria-current=\"page\"" } else { "" };
        let _ = write!(nav, "<a href=\"{base}?range={code}\"{current}>{}</a>", lang.t(msg));
    }
    nav.push_str("</nav>");
    let local = |t: DateTime<Utc>| t.with_timezone(&jst()).format("%Y-%m-%dT%H:%M").to_string();
    let _ = write!(
        nav,
        "<details{open}><summary class=\"button\">{custom}</summary><form method=\"get\" action=\"{base}\" class=\"custom\">\
         <input type=\"hidden\" name=\"range\" value=\"custom\">\
         <label for=\"from\">{from_l}</label><input type=\"datetime-local\" id=\"from\" name=\"from\" value=\"{from}\" required>\
         <label for=\"to\">{to_l}</label><input type=\"datetime-local\" id=\"to\" name=\"to\" value=\"{to}\" required>\
         <p><button type=\"submit\" class=\"button\">{show}</button></p></form></details>",
        open = if c.span == Span::Custom { " open" } else { "" },
        custom = lang.t(Msg::Custom),
        from_l = lang.t(Msg::From),
        to_l = lang.t(Msg::To),
        show = lang.t(Msg::Show),
        from = local(c.from),
        to = local(c.to),
    );
    nav
}

fn fmt_time(t: DateTime<Utc>) -> String {
    // Seconds matter: a 30 s communication failure is worth seeing as such.
    t.with_timezone(&jst()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `GET /devices/{device}`: every point of a device with its latest value and a chart that
/// loads when scrolled to (so the page is the same small size over any range).
pub(crate) async fn device_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let device = device_name(path, lang)?;
    let Query(params) = query?;
    let c = params.check(Utc::now(), lang)?;
    let readings: Vec<Reading> =
        state.caches.latest(&state.store).await?.iter().filter(|r| r.device == device).cloned().collect();
    if readings.is_empty() {
        return Err(AppError::NotFound(device.to_string()));
    }
    let base = format!("/devices/{device}");
    let mut body = format!(
        "<p><a href=\"/\">{back}</a></p><h2>{dev_l}: {device}</h2>{nav}<p class=\"meta\">{tz}</p>",
        back = lang.t(Msg::BackToOverview),
        dev_l = lang.t(Msg::Device),
        nav = range_nav(lang, &base, &c),
        tz = lang.t(Msg::TimesIn),
    );
    for r in &readings {
        let point_base = format!("/devices/{device}/{}", r.point);
        let chart = if matches!(r.value, Value::Text(_)) {
            String::new()
        } else {
            lazy_figure(&point_base, &c, &format!("{} {device}/{}", lang.t(Msg::ChartOf), r.point))
        };
        let _ = write!(
            body,
            "<section class=\"device\"><h3><a href=\"{point_base}?{q}\">{point}</a></h3>\
             <div class=\"value\">{value} <small>{unit}</small></div>\
             <div class=\"meta\"><span class=\"{qc}\">{quality}</span> · {time}</div>{chart}</section>",
            q = range_query(&c).replace('+', "%2B"),
            point = r.point,
            value = format_value(&r.value),
            unit = escape(state.unit(&r.device, &r.point)),
            qc = if r.quality.is_good() { "q-good" } else { "q-bad" },
            quality = r.quality,
            time = r.time.with_timezone(&jst()).format("%Y-%m-%d %H:%M:%S"),
        );
    }
    body.push_str(RESIZE_SCRIPT);
    let here = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok(Html(page(&Frame { lang, title: device.as_str(), user: Some(&user), here, refresh_s: None }, &body)))
}

/// `GET /devices/{device}/{point}`: one point's chart, statistics, gaps and CSV link.
pub(crate) async fn point_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let (device, point) = names(path, lang)?;
    let Query(params) = query?;
    let mut c = params.check(Utc::now(), lang)?;
    let latest = latest_of(&state, &device, &point).await?;
    let (agg, window_ms) = windows_of(&state, &device, &point, &mut c).await?;
    let windows = &agg.windows;
    let base = format!("/devices/{device}/{point}");
    let unit = escape(state.unit(&device, &point));
    let drawing = line_chart(&state, &agg, &c, window_ms).await?;
    let svg = &drawing.svg;
    let mut body = format!(
        "<p><a href=\"/devices/{device}?{q}\">{dev_l}: {device}</a></p>\
         <h2>{device} / {point}</h2>\
         <p><span class=\"meta\">{latest_l}</span> <span class=\"value\">{value} <small>{unit}</small></span> \
         <span class=\"{qc}\">{quality}</span> · {time}</p>{nav}<p class=\"meta\">{range} 〜 {range_to} ({tz})</p>{fig}",
        q = range_query(&c).replace('+', "%2B"),
        dev_l = lang.t(Msg::Device),
        latest_l = lang.t(Msg::LatestValue),
        value = format_value(&latest.value),
        qc = if latest.quality.is_good() { "q-good" } else { "q-bad" },
        quality = latest.quality,
        time = latest.time.with_timezone(&jst()).format("%Y-%m-%d %H:%M:%S"),
        nav = range_nav(lang, &base, &c),
        range = fmt_time(c.from),
        range_to = fmt_time(c.to),
        tz = "JST",
        fig = figure(&base, &c, svg, &format!("{} {device}/{point}", lang.t(Msg::ChartOf))),
    );
    if windows.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t(Msg::NoData));
    } else {
        let count: u64 = windows.iter().map(|w| w.count).sum();
        let min = windows.iter().map(|w| w.min).fold(f64::INFINITY, f64::min);
        let max = windows.iter().map(|w| w.max).fold(f64::NEG_INFINITY, f64::max);
        let mean = windows.iter().map(|w| w.mean * w.count as f64).sum::<f64>() / count as f64;
        let _ = write!(
            body,
            "<table><tr><th>{min_l}</th><td class=\"num\">{min}</td></tr><tr><th>{max_l}</th><td class=\"num\">{max}</td></tr>\
             <tr><th>{mean_l}</th><td class=\"num\">{mean}</td></tr><tr><th>{count_l}</th><td class=\"num\">{count}</td></tr></table>",
            min_l = lang.t(Msg::Minimum),
            max_l = lang.t(Msg::Maximum),
            mean_l = lang.t(Msg::Mean),
            count_l = lang.t(Msg::GoodReadings),
            min = format_value(&Value::Number(min)),
            max = format_value(&Value::Number(max)),
            mean = format_value(&Value::Number(mean)),
        );
    }
    let gaps = chart::gaps(windows, c.from, c.to, window_ms);
    let _ = write!(body, "<h3>{}</h3>", lang.t(Msg::Gaps));
    if gaps.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t(Msg::NoGaps));
    } else {
        body.push_str("<ul class=\"gaps\">");
        for (a, b) in gaps.iter().take(20) {
            let _ = write!(body, "<li>{} 〜 {}</li>", fmt_time(*a), fmt_time(*b));
        }
        if gaps.len() > 20 {
            let _ = write!(body, "<li>… (+{})</li>", gaps.len() - 20);
        }
        body.push_str("</ul>");
    }
    if user.can(Permission::Export) {
        let _ = write!(
            body,
            "<p><a class=\"button\" id=\"csv\" href=\"{base}/readings.csv?{q}\" download>{csv}</a></p>",
            q = range_query(&c).replace('+', "%2B"),
            csv = lang.t(Msg::DownloadCsv),
        );
    }
    body.push_str(RESIZE_SCRIPT);
    let here = uri.path_and_query().map_or("/", |p| p.as_str());
    let title = format!("{device}/{point}");
    Ok(Html(page(&Frame { lang, title: &title, user: Some(&user), here, refresh_s: None }, &body)))
}

/// `GET /devices/{device}/{point}/chart.svg`: the chart alone, at the requested width.
pub(crate) async fn chart_svg(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let (device, point) = names(path, lang)?;
    let Query(params) = query?;
    let mut c = params.check(Utc::now(), lang)?;
    let (agg, window_ms) = windows_of(&state, &device, &point, &mut c).await?;
    // A series with windows exists; only an empty answer needs the (costlier) list of series
    // to tell an unknown series (404) from one without good readings in the range.
    if agg.windows.is_empty() {
        latest_of(&state, &device, &point).await?;
    }
    let drawing = line_chart(&state, &agg, &c, window_ms).await?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml; charset=utf-8"))], drawing.svg.clone())
        .into_response())
}

#[derive(Debug, Serialize)]
struct WindowsJson {
    device: DeviceId,
    point: PointName,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
    windows: Vec<Window>,
    gaps: Vec<GapJson>,
}

#[derive(Debug, Serialize)]
struct GapJson {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// `GET /api/devices/{device}/{point}/windows`: what the chart draws, as JSON.
pub(crate) async fn windows_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (device, point) = names(path, lang)?;
    let Query(params) = query?;
    let mut c = params.check(Utc::now(), lang)?;
    latest_of(&state, &device, &point).await?;
    let (agg, window_ms) = windows_of(&state, &device, &point, &mut c).await?;
    let windows = agg.windows.clone();
    let gaps =
        chart::gaps(&windows, c.from, c.to, window_ms).into_iter().map(|(from, to)| GapJson { from, to }).collect();
    let body = WindowsJson { device, point, from: c.from, to: c.to, window_ms, windows, gaps };
    Ok(Json(serde_json::to_value(body).map_err(|e| AppError::Internal(format!("serialising windows: {e}")))?))
}

/// A CSV field: quoted when it holds a separator, quote or line break; text that a
/// spreadsheet would run as a formula gets a leading apostrophe.
fn csv_text(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// `GET /devices/{device}/{point}/readings.csv`: every reading of the range, whatever its
/// quality, with a UTF-8 BOM so that Excel in Japanese opens it as UTF-8.
pub(crate) async fn readings_csv(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let (device, point) = names(path, lang)?;
    let Query(params) = query?;
    let c = params.check(Utc::now(), lang)?;
    latest_of(&state, &device, &point).await?;
    let rows = state
        .store
        .range(&RangeQuery {
            device: device.clone(),
            point: point.clone(),
            from: c.from,
            to: c.to,
            limit: MAX_EXPORT_ROWS + 1,
        })
        .await?;
    if rows.len() > MAX_EXPORT_ROWS {
        return Err(bad(
            lang,
            format!("more than {MAX_EXPORT_ROWS} readings in this range: choose a shorter one"),
            format!("この期間の計測値が {MAX_EXPORT_ROWS} 件を超えます。期間を短くしてください"),
        ));
    }
    let mut out = String::with_capacity(64 + rows.len() * 64);
    out.push('\u{feff}');
    out.push_str(match lang {
        Lang::Ja => "時刻(JST),時刻(UTC),機器,計測点,値,品質\r\n",
        Lang::En => "time (JST),time (UTC),device,point,value,quality\r\n",
    });
    for r in &rows {
        let value = match &r.value {
            Value::Number(v) => v.to_string(),
            Value::Text(t) => csv_text(t),
            Value::Absent => String::new(),
        };
        let _ = write!(
            out,
            "{},{},{},{},{},{}\r\n",
            r.time.with_timezone(&jst()).format("%Y/%m/%d %H:%M:%S%.3f"),
            r.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            r.device,
            r.point,
            value,
            r.quality
        );
    }
    let stamp = |t: DateTime<Utc>| t.with_timezone(&jst()).format("%Y%m%d-%H%M").to_string();
    let filename = format!("{device}_{point}_{}_{}.csv", stamp(c.from), stamp(c.to));
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).expect("safe names and digits"),
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(range: Option<&str>, from: Option<&str>, to: Option<&str>, w: Option<&str>) -> RangeParams {
        RangeParams {
            range: range.map(str::to_owned),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            w: w.map(str::to_owned),
            lang: None,
        }
    }

    #[test]
    fn ranges_resolve_against_now() {
        let now = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let c = params(None, None, None, None).check(now, Lang::En).unwrap();
        assert_eq!((c.span, c.to - c.from, c.width), (Span::Day, Duration::hours(24), 720));
        let c = params(Some("30d"), None, None, Some("390")).check(now, Lang::En).unwrap();
        assert_eq!((c.span, c.to - c.from, c.width), (Span::Month, Duration::days(30), 390));
        // A datetime-local value is JST: 09:00 JST is midnight UTC.
        let c = params(None, Some("2026-04-01T09:00"), Some("2026-04-01T10:30"), None).check(now, Lang::En).unwrap();
        assert_eq!(c.span, Span::Custom);
        assert_eq!(c.from, now);
        assert_eq!(c.to - c.from, Duration::minutes(90));
        let c = params(Some("custom"), Some("2026-03-01T00:00:00Z"), Some("2026-03-02"), None)
            .check(now, Lang::En)
            .unwrap();
        assert_eq!(c.to - c.from, Duration::hours(15));
    }

    #[track_caller]
    fn refused(p: RangeParams, needle: &str) {
        let now = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        match p.check(now, Lang::En) {
            Err(AppError::BadRequest(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        refused(params(Some("2w"), None, None, None), "use 1h, 24h");
        refused(params(Some("1h'; DROP TABLE reading;--"), None, None, None), "use 1h");
        refused(params(None, None, None, Some("10")), "chart width");
        refused(params(None, None, None, Some("abc")), "chart width");
        refused(params(None, None, None, Some("99999999999")), "chart width");
        refused(params(Some("custom"), None, None, None), "from=");
        refused(params(None, Some("yesterday"), Some("2026-04-01"), None), "from=\"yesterday\"");
        refused(params(None, Some("2026-04-02"), Some("2026-04-01"), None), "end after");
        refused(params(None, Some("1960-01-01"), Some("1961-01-01"), None), "1970");
        refused(params(None, Some("2020-01-01"), Some("2026-01-01"), None), "366 days");
        refused(params(None, Some("2026-01-01T00:00:00 OR 1=1"), Some("2026-01-02"), None), "from=");
    }

    #[test]
    fn csv_text_is_quoted_and_defused() {
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("-1"), "'-1");
    }
}
