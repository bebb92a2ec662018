//! `GET /`: the network at a glance — devices up or down, pumps running, each district's
//! inflow and critical pressure now against the same time yesterday, one chart of district
//! inflow over 24 h, and the KPIs a Japanese utility reports from the pipe register.
//!
//! The page stays small however many devices there are: one line per device (its detail page
//! has the charts) and one chart for all districts. It reads the store's `latest` once,
//! two short `aggregate`s per district series, and one 24 h `aggregate` per district inflow.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Uri};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use model::{Reading, Value};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use store::{SeriesKey, Window};

use crate::cache::{Aggregated, Drawing};

use crate::auth::CurrentUser;
use crate::chart::{self, jst};
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::routes::format_value;
use crate::{AppError, AppState};

/// A device whose newest reading is older than this is down, whatever its quality: the
/// collector stores at least a heartbeat a minute for every point it can read.
const STALE_S: i64 = 120;
/// "Now" and "the same time yesterday" are means over this many minutes, so that one noisy
/// sample does not decide the comparison.
const COMPARE_MIN: i64 = 10;
/// Japan's statutory useful life of water mains (地方公営企業法施行規則, 法定耐用年数).
pub const LEGAL_LIFE_YEARS: i32 = 40;
/// The inflow chart's default width; the page script asks for its box's real width.
const CHART_W: u32 = 720;
const MIN_W: u32 = 200;
const MAX_W: u32 = 3000;

/// What the overview says about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Up,
    /// Some points fail (a sensor fault, an exception) while the device answers.
    Degraded,
    Down,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Down => "down",
        }
    }
}

/// A pump's running point: one `pN_running` per pump, at water and sewer stations alike (a
/// station's `pumps_running` count would only cover stations that report one).
fn is_pump(r: &Reading) -> bool {
    let n = r.point.as_str().strip_prefix('p').and_then(|s| s.strip_suffix("_running"));
    n.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn pump_running(r: &Reading) -> bool {
    r.quality.is_good() && matches!(r.value, Value::Number(x) if x > 0.5)
}

/// The status of a device from the newest reading of each of its points.
pub(crate) fn status(readings: &[Reading], now: DateTime<Utc>) -> Status {
    let newest = readings.iter().map(|r| r.time).max();
    let good = readings.iter().filter(|r| r.quality.is_good()).count();
    match newest {
        None => Status::Down,
        Some(t) if (now - t).num_seconds() > STALE_S => Status::Down,
        Some(_) if good == 0 => Status::Down,
        Some(_) if good < readings.len() => Status::Degraded,
        Some(_) => Status::Up,
    }
}

/// The count-weighted mean of the good readings of a series over the `COMPARE_MIN` minutes
/// that end `back` before now (cached for up to a minute).
async fn mean_of(state: &AppState, key: &SeriesKey, back: Duration) -> Result<Option<f64>, AppError> {
    // Longer than the span: one or two windows whatever the alignment.
    let window_ms = Duration::minutes(COMPARE_MIN * 2).num_milliseconds();
    let agg = state.caches.recent(&state.store, key, Duration::minutes(COMPARE_MIN), back, window_ms).await?;
    let windows = &agg.windows;
    let n: u64 = windows.iter().map(|w| w.count).sum();
    Ok((n > 0).then(|| windows.iter().map(|w| w.mean * w.count as f64).sum::<f64>() / n as f64))
}

/// Now and yesterday at this time.
async fn now_and_yesterday(state: &AppState, key: &SeriesKey) -> Result<(Option<f64>, Option<f64>), AppError> {
    Ok((mean_of(state, key, Duration::zero()).await?, mean_of(state, key, Duration::days(1)).await?))
}

fn number(v: Option<f64>, unit: &str) -> String {
    v.map_or("—".to_owned(), |x| format!("{} <small>{}</small>", format_value(&Value::Number(x)), escape(unit)))
}

/// The change from `before` to `now` in percent; none without both or from zero.
fn change_pct(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    match (now, before) {
        (Some(a), Some(b)) if b.abs() > 1e-9 => Some((a - b) / b.abs() * 100.0),
        _ => None,
    }
}

fn change(now: Option<f64>, before: Option<f64>) -> String {
    change_pct(now, before).map_or("—".to_owned(), |c| format!("{c:+.1}%"))
}

/// The district inflow series over the last 24 h at `width` pixels, and the range they cover
/// (cached for up to a minute; the range is the first series').
async fn inflow_series(state: &AppState, now: DateTime<Utc>, width: u32) -> Result<Inflow, AppError> {
    let span = Duration::hours(24);
    // A window per two pixels: twelve lines of means need no more, and the SVG stays small.
    let window_ms = chart::window_ms_for(now - span, now, width / 2);
    let mut series = Vec::new();
    for d in state.districts.iter() {
        let Some(key) = &d.inflow else { continue };
        let agg = state.caches.recent(&state.store, key, span, Duration::zero(), window_ms).await?;
        series.push((d.name.clone(), agg));
    }
    let (from, to) = series.first().map_or((now - span, now), |(_, a)| (a.from, a.to));
    Ok(Inflow { series, from, to, window_ms, width })
}

/// The district inflow of the last 24 h, as cached.
struct Inflow {
    series: Vec<(String, Arc<Aggregated>)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window_ms: i64,
    width: u32,
}

impl Inflow {
    fn has_data(&self) -> bool {
        self.series.iter().any(|(_, a)| !a.windows.is_empty())
    }

    /// The chart, drawn once while its aggregates are fresh.
    async fn svg(&self, state: &AppState) -> Result<Arc<Drawing>, AppError> {
        let aggs: Vec<&Arc<Aggregated>> = self.series.iter().map(|(_, a)| a).collect();
        let series: Vec<(String, Arc<Aggregated>)> = self.series.clone();
        let (from, to, window_ms, w) = (self.from, self.to, self.window_ms, self.width);
        state
            .caches
            .drawing(&format!("inflow {w}"), &aggs, move || {
                let series: Vec<(String, Vec<Window>)> =
                    series.into_iter().map(|(n, a)| (n, a.windows.clone())).collect();
                chart::lines_svg(&series, from, to, window_ms, (w, chart_height(w)))
            })
            .await
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WidthParams {
    w: Option<String>,
    #[allow(dead_code)]
    lang: Option<String>,
}

fn width(params: &WidthParams, lang: Lang) -> Result<u32, AppError> {
    match params.w.as_deref() {
        None | Some("") => Ok(CHART_W),
        Some(w) => match w.parse::<u32>() {
            Ok(w) if (MIN_W..=MAX_W).contains(&w) => Ok(w),
            _ => Err(AppError::BadRequest(match lang {
                Lang::En => {
                    format!("w={w:?}: the chart width must be a whole number of pixels from {MIN_W} to {MAX_W}")
                }
                Lang::Ja => format!("w={w:?}: グラフの幅は {MIN_W}〜{MAX_W} の整数（ピクセル）で指定してください"),
            })),
        },
    }
}

/// `GET /districts/inflow.svg?w=`: the overview's chart alone, at the requested width.
pub(crate) async fn inflow_svg(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<WidthParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = query?;
    let w = width(&params, lang)?;
    let svg = inflow_series(&state, Utc::now(), w).await?.svg(&state).await?.svg.clone();
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml; charset=utf-8"))], svg).into_response())
}

fn chart_height(width: u32) -> u32 {
    (width * 2 / 5).clamp(200, 360)
}

pub(crate) async fn overview(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
) -> Result<Html<String>, AppError> {
    let now = Utc::now();
    let mut devices: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    for r in state.caches.latest(&state.store).await?.iter().cloned() {
        devices.entry(r.device.to_string()).or_default().push(r);
    }
    let statuses: Vec<(&String, &Vec<Reading>, Status)> =
        devices.iter().map(|(name, rs)| (name, rs, status(rs, now))).collect();
    let up = statuses.iter().filter(|s| s.2 == Status::Up).count();
    let degraded = statuses.iter().filter(|s| s.2 == Status::Degraded).count();
    let down = statuses.iter().filter(|s| s.2 == Status::Down).count();
    let pump_points: Vec<&Reading> = devices.values().flatten().filter(|r| is_pump(r)).collect();
    let pumps = pump_points.len();
    let running = pump_points.iter().filter(|r| pump_running(r)).count();

    let mut body = format!("<h2>{}</h2><p class=\"meta\">{}</p>", lang.t(Msg::Overview), lang.t(Msg::TimesIn));
    if devices.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t(Msg::NoReadings));
    }

    // KPIs.
    body.push_str("<section class=\"kpis\">");
    let kpi = |label: &str, value: String, note: String| {
        format!(
            "<div class=\"kpi\"><div class=\"meta\">{label}</div><div class=\"value\">{value}</div><div class=\"meta\">{note}</div></div>"
        )
    };
    body.push_str(&kpi(
        lang.t(Msg::DevicesUp),
        format!("{up} / {}", devices.len()),
        format!("{} {down} · {} {degraded}", lang.t(Msg::StatusDown), lang.t(Msg::StatusDegraded)),
    ));
    // Active alerts, by severity in words, each a link to the inbox filtered to it.
    let counts = crate::alerts::active_counts(&state).await?;
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let by_severity: Vec<String> = counts
        .iter()
        .map(|(s, n)| {
            format!(
                "<a href=\"/alerts?state=active&amp;severity={code}\">{badge}&nbsp;{n}</a>",
                code = s.as_str(),
                badge = crate::alerts::severity_badge(lang, *s),
            )
        })
        .collect();
    let _ = write!(
        body,
        "<div class=\"kpi alerts\"><div class=\"meta\"><a href=\"/alerts\">{l}</a></div><div class=\"value\"><a href=\"/alerts\" id=\"open-alerts\">{total}</a></div><div class=\"meta\">{list}</div></div>",
        l = lang.t(Msg::OpenAlerts),
        list = by_severity.join(" "),
    );
    if pumps > 0 {
        body.push_str(&kpi(lang.t(Msg::PumpsRunning), format!("{running} / {pumps}"), String::new()));
    }
    if let Some(run) = state.caches.latest_run(&state.risk).await? {
        let s = state.caches.risk_summary(&state.risk, run.id, run.as_of.year(), LEGAL_LIFE_YEARS).await?;
        let share = if s.km > 0.0 { s.km_older_than / s.km * 100.0 } else { 0.0 };
        body.push_str(&kpi(
            lang.t(Msg::PastLegalLife),
            format!("{share:.1}%"),
            format!("{:.1} / {:.1} km · {} {}", s.km_older_than, s.km, lang.t(Msg::AsOf), run.as_of),
        ));
        let last_year = run.as_of.year() - 1;
        let rate = if s.km > 0.0 { s.km_laid_last_year / s.km * 100.0 } else { 0.0 };
        body.push_str(&kpi(
            lang.t(Msg::RenewalRate),
            format!("{rate:.2}%"),
            format!(
                "{:.1} km · {}",
                s.km_laid_last_year,
                escape(&lang.t(Msg::RenewalRateNote).replace("{year}", &last_year.to_string()))
            ),
        ));
        let _ = write!(
            body,
            "<div class=\"kpi\"><div class=\"meta\">{l}</div><div class=\"value\">{n}</div><div class=\"meta\"><a href=\"/risk\">{link}</a></div></div>",
            l = lang.t(Msg::MainsInRegister),
            n = s.mains,
            link = lang.t(Msg::RiskRanking),
        );
    }
    body.push_str("</section>");

    // Districts: now against yesterday, and one chart.
    if !state.districts.is_empty() {
        body.push_str(&districts_section(&state, now, lang).await?);
    }

    // Devices, one line each; problems first so that they are seen.
    let _ = write!(
        body,
        "<h3>{dev}</h3><div class=\"scroll\"><table class=\"devices\"><thead><tr><th scope=\"col\">{dev}</th><th scope=\"col\">{st}</th>\
         <th scope=\"col\">{last}</th><th scope=\"col\">{problems}</th></tr></thead><tbody>",
        dev = lang.t(Msg::Device),
        st = lang.t(Msg::Status),
        last = lang.t(Msg::LastReading),
        problems = lang.t(Msg::FailingPoints),
    );
    let mut ordered = statuses;
    ordered.sort_by_key(|s| match s.2 {
        Status::Down => 0,
        Status::Degraded => 1,
        Status::Up => 2,
    });
    for (name, readings, st) in ordered {
        let newest = readings.iter().map(|r| r.time).max().unwrap_or(now);
        let (class, label) = match st {
            Status::Up => ("q-good", lang.t(Msg::StatusUp)),
            Status::Degraded => ("q-bad", lang.t(Msg::StatusDegraded)),
            Status::Down => ("q-bad", lang.t(Msg::StatusDown)),
        };
        let failing: Vec<String> =
            readings.iter().filter(|r| !r.quality.is_good()).map(|r| format!("{} ({})", r.point, r.quality)).collect();
        let failing = if failing.len() > 4 {
            format!("{} … (+{})", failing[..4].join(", "), failing.len() - 4)
        } else {
            failing.join(", ")
        };
        let _ = write!(
            body,
            "<tr id=\"dev-{name}\"><td><a href=\"/devices/{name}\">{name}</a></td><td><span class=\"{class}\">{label}</span></td>\
             <td>{time} <small>({age} s)</small></td><td>{failing}</td></tr>",
            time = newest.with_timezone(&jst()).format("%H:%M:%S"),
            age = (now - newest).num_seconds().max(0),
        );
    }
    body.push_str("</tbody></table></div>");
    body.push_str(crate::detail::RESIZE_SCRIPT);
    let here = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok(Html(page(&Frame { lang, title: lang.t(Msg::Overview), user: Some(&user), here, refresh_s: Some(30) }, &body)))
}

/// The districts' part of the overview: inflow and critical pressure now against yesterday,
/// the 24-hour inflow chart and the minimum night flow. It asks the store for about forty
/// series, so it is built once a second per language and shared by every view in that second
/// (`Caches::overview_districts`): like the device status from the latest readings, it may
/// be up to a second behind the store, which a page refreshed every 30 s cannot show.
async fn districts_section(state: &AppState, now: DateTime<Utc>, lang: Lang) -> Result<Arc<String>, AppError> {
    let second = now.timestamp();
    if let Some(html) = state.caches.overview_districts(lang, second, build_districts_section(state, now, lang)).await {
        return Ok(html);
    }
    // Not built (an error, which is not cached): build it here to answer with the error.
    Ok(Arc::new(build_districts_section(state, now, lang).await?))
}

async fn build_districts_section(state: &AppState, now: DateTime<Utc>, lang: Lang) -> Result<String, AppError> {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h3>{d}</h3><div class=\"scroll\"><table><thead><tr><th scope=\"col\">{d}</th><th scope=\"col\">{inflow}</th>\
         <th scope=\"col\">{yday} (±)</th><th scope=\"col\">{press}</th><th scope=\"col\">{yday}</th></tr></thead><tbody>",
        d = lang.t(Msg::District),
        inflow = lang.t(Msg::InflowNow),
        yday = lang.t(Msg::SameTimeYesterday),
        press = lang.t(Msg::CriticalPressureNow),
    );
    for d in state.districts.iter() {
        let (q_now, q_then, q_unit) = match &d.inflow {
            Some(k) => {
                let (a, b) = now_and_yesterday(state, k).await?;
                (a, b, state.unit(&k.device, &k.point))
            }
            None => (None, None, ""),
        };
        let (p_now, p_then, p_unit) = match &d.critical_pressure {
            Some(k) => {
                let (a, b) = now_and_yesterday(state, k).await?;
                (a, b, state.unit(&k.device, &k.point))
            }
            None => (None, None, ""),
        };
        let link = |k: &Option<SeriesKey>, text: String| match k {
            Some(k) => format!("<a href=\"/devices/{}/{}?range=24h\">{text}</a>", k.device, k.point),
            None => text,
        };
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{name}</th><td class=\"num\">{qn}</td><td class=\"num\">{qt} ({qc})</td>\
             <td class=\"num\">{pn}</td><td class=\"num\">{pt}</td></tr>",
            name = escape(&d.name),
            qn = link(&d.inflow, number(q_now, q_unit)),
            qt = number(q_then, q_unit),
            qc = change(q_now, q_then),
            pn = link(&d.critical_pressure, number(p_now, p_unit)),
            pt = number(p_then, p_unit),
        );
    }
    body.push_str("</tbody></table></div>");
    let inflow = inflow_series(state, now, CHART_W).await?;
    if inflow.has_data() {
        let names: Vec<String> = inflow.series.iter().map(|(n, _)| n.clone()).collect();
        let drawing = inflow.svg(state).await?;
        let svg = &drawing.svg;
        let _ = write!(
            body,
            "<h3>{title}</h3><figure data-chart=\"/districts/inflow.svg?\" data-w=\"{CHART_W}\" role=\"img\" aria-label=\"{title}\">\
             <div class=\"svgbox\">{svg}</div></figure><p class=\"legend\">",
            title = lang.t(Msg::DistrictInflow24h),
        );
        for (i, name) in names.iter().enumerate() {
            let (r, g, b) = chart::palette(i);
            let _ = write!(
                body,
                "<span><span class=\"swatch\" style=\"background:rgb({r},{g},{b})\"></span>{}</span> ",
                escape(name)
            );
        }
        body.push_str("</p>");
    }
    night_flow_table(state, now, lang, &mut body).await?;
    Ok(body)
}

/// Nights shown in the minimum-night-flow table: last night and the seven before it.
const NIGHTS: usize = 8;
/// Windows of the night-flow query: 15 minutes, so that one quarter-hour of a tank filling
/// does not pass for the night's demand, and 14 days stay under 1,400 windows a district.
const NIGHT_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The minimum night flow of each of the `nights` nights ending with the last complete one
/// before `now`, oldest first: the lowest window mean that starts between 02:00 and 04:00 JST.
/// A night without such a window is `None` (the meter was down), never zero.
pub(crate) fn night_minimums(windows: &[Window], now: DateTime<Utc>, nights: usize) -> Vec<(NaiveDate, Option<f64>)> {
    let local_now = now.with_timezone(&jst());
    // The last night is complete once 04:00 has passed; before that it is the night before.
    let last = if local_now.hour() >= 4 { local_now.date_naive() } else { local_now.date_naive() - Duration::days(1) };
    let mut by_night: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for w in windows {
        let t = w.start.with_timezone(&jst());
        if (2..4).contains(&t.hour()) {
            let e = by_night.entry(t.date_naive()).or_insert(f64::INFINITY);
            *e = e.min(w.mean);
        }
    }
    (0..nights)
        .rev()
        .map(|back| {
            let night = last - Duration::days(back as i64);
            (night, by_night.get(&night).copied())
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 })
}

/// One district's minimum night flow: each of the `NIGHTS` nights, oldest first.
struct NightFlow {
    district: String,
    unit: String,
    nights: Vec<(NaiveDate, Option<f64>)>,
}

impl NightFlow {
    fn last(&self) -> Option<f64> {
        self.nights.last().and_then(|(_, v)| *v)
    }

    /// The median of the nights before the last, the yardstick the last is compared with.
    fn median_before(&self) -> Option<f64> {
        median(self.nights[..self.nights.len() - 1].iter().filter_map(|(_, v)| *v).collect())
    }
}

/// The span of the night-flow query: 02:00 JST of the oldest night shown to 04:00 JST of the
/// last complete one.
fn nights_span(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let local_now = now.with_timezone(&jst());
    let last = if local_now.hour() >= 4 { local_now.date_naive() } else { local_now.date_naive() - Duration::days(1) };
    let at = |date: NaiveDate, hour: u32| {
        let t = date.and_hms_opt(hour, 0, 0).expect("02:00 and 04:00 exist");
        (t - Duration::hours(9)).and_utc()
    };
    (at(last - Duration::days(NIGHTS as i64 - 1), 2), at(last, 4))
}

/// Each district with an inflow series and at least one night with data. The nights are all
/// over, so their windows are a fixed range, cached as such: not a live view that asks the store
/// for its open last window on every page view (one more store query per district per request).
async fn night_flows(state: &AppState, now: DateTime<Utc>) -> Result<Vec<NightFlow>, AppError> {
    let (from, to) = nights_span(now);
    let mut rows = Vec::new();
    for d in state.districts.iter() {
        let Some(key) = &d.inflow else { continue };
        let agg = state.caches.fixed(&state.store, key, from, to, NIGHT_WINDOW_MS).await?;
        let nights = night_minimums(&agg.windows, now, NIGHTS);
        if nights.iter().all(|(_, v)| v.is_none()) {
            continue;
        }
        rows.push(NightFlow { district: d.name.clone(), unit: state.unit(&key.device, &key.point).to_owned(), nights });
    }
    Ok(rows)
}

/// The districts' minimum night flow: last night against the median of the seven before, and
/// the seven nights themselves, so that a leak growing night by night is seen at a glance.
async fn night_flow_table(state: &AppState, now: DateTime<Utc>, lang: Lang, body: &mut String) -> Result<(), AppError> {
    let rows = night_flows(state, now).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let _ = write!(
        body,
        "<h3>{title}</h3><p class=\"meta\">{note}</p><div class=\"scroll\"><table class=\"night-flow\"><thead><tr>\
         <th scope=\"col\">{d}</th><th scope=\"col\">{last}</th><th scope=\"col\">{before} (±)</th><th scope=\"col\">{recent}</th></tr></thead><tbody>",
        title = lang.t(Msg::NightFlow),
        note = lang.t(Msg::NightFlowNote),
        d = lang.t(Msg::District),
        last = lang.t(Msg::LastNight),
        before = lang.t(Msg::NightsBefore),
        recent = lang.t(Msg::RecentNights),
    );
    for row in rows {
        let (last, before) = (row.last(), row.median_before());
        let recent: Vec<String> = row.nights[1..]
            .iter()
            .map(|(night, v)| {
                format!(
                    "<span title=\"{}\">{}</span>",
                    night.format("%m/%d"),
                    v.map_or("—".to_owned(), |x| format_value(&Value::Number(x)))
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{name}</th><td class=\"num\">{l}</td><td class=\"num\">{b} ({c})</td><td>{r}</td></tr>",
            name = escape(&row.district),
            l = number(last, &row.unit),
            b = number(before, &row.unit),
            c = change(last, before),
            r = recent.join(" · "),
        );
    }
    body.push_str("</tbody></table></div>");
    Ok(())
}

/// A value now and at the same time yesterday, for the JSON.
fn now_then_json(now: Option<f64>, then: Option<f64>, unit: &str) -> serde_json::Value {
    json!({"now": now, "yesterday": then, "change_pct": change_pct(now, then), "unit": unit})
}

/// A district series now and yesterday, or null when the district has none.
async fn series_json(state: &AppState, key: Option<&SeriesKey>) -> Result<serde_json::Value, AppError> {
    Ok(match key {
        Some(k) => {
            let (a, b) = now_and_yesterday(state, k).await?;
            now_then_json(a, b, state.unit(&k.device, &k.point))
        }
        None => serde_json::Value::Null,
    })
}

/// `GET /api/overview`: the overview's data as JSON — device status, pumps, active alerts by
/// severity, the register KPIs, and per district the inflow and critical pressure now against
/// yesterday and the minimum night flow. Read through the same caches as the page.
pub(crate) async fn overview_json(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let now = Utc::now();
    let mut devices: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    for r in state.caches.latest(&state.store).await?.iter().cloned() {
        devices.entry(r.device.to_string()).or_default().push(r);
    }
    let device_json: Vec<serde_json::Value> = devices
        .iter()
        .map(|(name, rs)| {
            let failing: Vec<String> =
                rs.iter().filter(|r| !r.quality.is_good()).map(|r| r.point.to_string()).collect();
            json!({
                "name": name,
                "status": status(rs, now).as_str(),
                "last_reading": rs.iter().map(|r| r.time).max(),
                "failing_points": failing,
            })
        })
        .collect();
    let count = |s: Status| devices.values().filter(|rs| status(rs, now) == s).count();
    let pumps: Vec<&Reading> = devices.values().flatten().filter(|r| is_pump(r)).collect();
    let running = pumps.iter().filter(|r| pump_running(r)).count();
    let counts = crate::alerts::active_counts(&state).await?;
    let by_severity: serde_json::Map<String, serde_json::Value> =
        counts.iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect();
    let register = match state.caches.latest_run(&state.risk).await? {
        Some(run) => {
            let s = state.caches.risk_summary(&state.risk, run.id, run.as_of.year(), LEGAL_LIFE_YEARS).await?;
            let pct = |km: f64| if s.km > 0.0 { km / s.km * 100.0 } else { 0.0 };
            json!({
                "as_of": run.as_of,
                "mains": s.mains,
                "km": s.km,
                "legal_life_years": LEGAL_LIFE_YEARS,
                "km_past_legal_life": s.km_older_than,
                "past_legal_life_pct": pct(s.km_older_than),
                "renewal_year": run.as_of.year() - 1,
                "km_laid_in_renewal_year": s.km_laid_last_year,
                "renewal_rate_pct": pct(s.km_laid_last_year),
            })
        }
        None => serde_json::Value::Null,
    };
    let nights = night_flows(&state, now).await?;
    let mut districts = Vec::new();
    for d in state.districts.iter() {
        let inflow = series_json(&state, d.inflow.as_ref()).await?;
        let pressure = series_json(&state, d.critical_pressure.as_ref()).await?;
        let night = nights.iter().find(|n| n.district == d.name).map(|n| {
            json!({
                "window": "02:00-04:00 JST",
                "unit": n.unit,
                "last_night": n.last(),
                "median_before": n.median_before(),
                "change_pct": change_pct(n.last(), n.median_before()),
                "nights": n.nights.iter().map(|(date, v)| json!({"date": date, "min": v})).collect::<Vec<_>>(),
            })
        });
        districts.push(json!({"name": d.name, "inflow": inflow, "critical_pressure": pressure, "night_flow": night}));
    }
    Ok(Json(json!({
        "time": now,
        "devices": {
            "up": count(Status::Up),
            "degraded": count(Status::Degraded),
            "down": count(Status::Down),
            "list": device_json,
        },
        "pumps": {"running": running, "total": pumps.len()},
        "active_alerts": {"total": counts.iter().map(|(_, n)| n).sum::<usize>(), "by_severity": by_severity},
        "register": register,
        "districts": districts,
    })))
}

#[cfg(test)]
mod tests {
    use model::{DeviceId, PointName, Quality};

    use super::*;

    fn reading(point: &str, age_s: i64, quality: Quality, now: DateTime<Utc>) -> Reading {
        Reading {
            device: DeviceId::new("d1").unwrap(),
            point: PointName::new(point).unwrap(),
            time: now - Duration::seconds(age_s),
            value: if quality.is_good() { Value::Number(1.0) } else { Value::Absent },
            quality,
        }
    }

    #[test]
    fn status_from_quality_and_age() {
        let now = Utc::now();
        assert_eq!(
            status(&[reading("a", 1, Quality::Good, now), reading("b", 1, Quality::Good, now)], now),
            Status::Up
        );
        assert_eq!(
            status(&[reading("a", 1, Quality::Good, now), reading("b", 1, Quality::OutOfRange, now)], now),
            Status::Degraded
        );
        assert_eq!(status(&[reading("a", 1, Quality::CommFail, now)], now), Status::Down);
        assert_eq!(status(&[reading("a", STALE_S + 5, Quality::Good, now)], now), Status::Down);
        assert_eq!(status(&[], now), Status::Down);
    }

    fn window(start: DateTime<Utc>, mean: f64) -> Window {
        Window { start, mean, min: mean, max: mean, last: mean, count: 15 }
    }

    #[test]
    fn night_minimum_is_the_lowest_window_between_two_and_four_jst() {
        use chrono::TimeZone;
        // 2026-11-20 05:00 JST = 2026-11-19 20:00 UTC: last night is the night of the 20th.
        let now = Utc.with_ymd_and_hms(2026, 11, 19, 20, 0, 0).unwrap();
        let at = |d: u32, h: u32, m: u32| jst().with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap().with_timezone(&Utc);
        let windows = vec![
            window(at(19, 1, 45), 5.0), // before 02:00: not the night's
            window(at(19, 2, 0), 30.0),
            window(at(19, 3, 45), 28.0),
            window(at(19, 4, 0), 10.0), // after 04:00: not the night's
            window(at(20, 2, 15), 35.0),
            window(at(20, 3, 0), 33.5),
        ];
        let nights = night_minimums(&windows, now, 3);
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        assert_eq!(nights, vec![(day(18), None), (day(19), Some(28.0)), (day(20), Some(33.5))]);
        // At 03:00 JST the night of the 20th is not over: the last complete one is the 19th.
        let early = at(20, 3, 0);
        assert_eq!(night_minimums(&windows, early, 1), vec![(day(19), Some(28.0))]);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn the_nights_span_ends_at_four_jst_of_the_last_complete_night() {
        use chrono::TimeZone;
        // 05:00 JST on the 20th: the nights of the 13th to the 20th, 02:00 to 04:00 JST.
        let now = jst().with_ymd_and_hms(2026, 11, 20, 5, 0, 0).unwrap().with_timezone(&Utc);
        let (from, to) = nights_span(now);
        assert_eq!(from, jst().with_ymd_and_hms(2026, 11, 13, 2, 0, 0).unwrap().with_timezone(&Utc));
        assert_eq!(to, jst().with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap().with_timezone(&Utc));
        // 03:00 JST: tonight is not over, the last complete night is the 19th.
        let early = jst().with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap().with_timezone(&Utc);
        assert_eq!(nights_span(early).1, jst().with_ymd_and_hms(2026, 11, 19, 4, 0, 0).unwrap().with_timezone(&Utc));
    }

    #[test]
    fn change_against_yesterday() {
        assert_eq!(change(Some(110.0), Some(100.0)), "+10.0%");
        assert_eq!(change(Some(90.0), Some(100.0)), "-10.0%");
        assert_eq!(change(Some(90.0), None), "—");
        assert_eq!(change(Some(1.0), Some(0.0)), "—");
    }
}
