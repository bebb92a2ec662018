//! The sewer page for engineers: the newest stored span ranking as a sortable, filterable,
//! paged table; spans and km per latest grade (緊急度); the 健全率-vs-age curve of each
//! material as a plotters SVG at the requested width; the same data as JSON.
//!
//! Everything comes from the newest stored sewer run ([`store::SewerStore`]); this module fits
//! and ranks nothing. Every query parameter is checked into a [`SewerQuery`] or refused with
//! 400: the sort key must be a known column, the grade a known name, the page a number, and
//! material and district values of the run itself, so a request only chooses among fixed SQL.

use std::fmt::Write;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Datelike;
use plotters::prelude::*;
use serde::Deserialize;
use serde_json::json;
use store::sewer::{
    GradeCount, GradeFilter, SewerCurve, SewerFilter, SewerGrade, SewerQuery, SewerRow, SewerRun, SewerSort,
};

use crate::auth::CurrentUser;
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::params::{self, bad, some};
use crate::{AppError, AppState};

/// Spans per page: a screenful on a desktop, about 40 KB of HTML.
pub const PAGE_SIZE: u64 = 50;
/// The curve chart's width when the request names none (a desktop column).
const CHART_WIDTH: u32 = 640;

/// The query of the sewer page and its JSON, as it arrives.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SewerParams {
    material: Option<String>,
    district: Option<String>,
    grade: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    // Read by the language middleware.
    #[allow(dead_code)]
    lang: Option<String>,
}

/// `GET /sewer/curve.svg`: the width only.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CurveParams {
    w: Option<String>,
    #[allow(dead_code)]
    lang: Option<String>,
}

/// The grade names a filter takes: the four grades and `uninspected`.
const GRADE_NAMES: &str = "I, II, III, none, uninspected";

/// A checked query and its page number.
#[derive(Debug, Clone, PartialEq)]
struct Table {
    query: SewerQuery,
    page: u64,
}

/// What a filter may choose from: the run's own materials and districts.
#[derive(Debug, Default)]
struct Choices {
    materials: Vec<String>,
    districts: Vec<String>,
}

impl SewerParams {
    fn check(&self, choices: &Choices, lang: Lang) -> Result<Table, AppError> {
        let material = match some(&self.material) {
            None => None,
            Some(m) if choices.materials.iter().any(|k| k == m) => Some(m.to_owned()),
            Some(m) => {
                return Err(bad(
                    lang,
                    format!("material={m:?}: not a material of this ranking ({})", choices.materials.join(", ")),
                    format!("material={m:?}: この評価にない管種です（{}）", choices.materials.join("、")),
                ));
            }
        };
        let district = match some(&self.district) {
            None => None,
            Some(d) if choices.districts.iter().any(|k| k == d) => Some(d.to_owned()),
            Some(d) => {
                return Err(bad(
                    lang,
                    format!("district={d:?}: not a district of this ranking"),
                    format!("district={d:?}: この評価にない処理区です"),
                ));
            }
        };
        let grade = match some(&self.grade) {
            None => None,
            Some("uninspected") => Some(GradeFilter::Uninspected),
            Some(g) => Some(GradeFilter::Grade(SewerGrade::parse(g).ok_or_else(|| {
                bad(
                    lang,
                    format!("grade={g:?}: use one of {GRADE_NAMES}"),
                    format!("grade={g:?}: {GRADE_NAMES} のいずれかを指定してください"),
                )
            })?)),
        };
        let sort = params::sort_key(lang, some(&self.sort), SewerSort::Priority, &SewerSort::ALL, SewerSort::as_str)?;
        let descending = params::descending(lang, some(&self.dir))?;
        let page = params::page_number(lang, some(&self.page))?;
        Ok(Table {
            query: SewerQuery {
                filter: SewerFilter { material, district, grade },
                sort,
                descending,
                offset: (page - 1) * PAGE_SIZE,
                limit: PAGE_SIZE,
            },
            page,
        })
    }
}

fn grade_filter_name(g: GradeFilter) -> &'static str {
    match g {
        GradeFilter::Grade(g) => g.as_str(),
        GradeFilter::Uninspected => "uninspected",
    }
}

/// The query string of a table (filters, sort, page), for links.
fn table_query(t: &Table, sort: SewerSort, descending: bool, page: u64) -> String {
    let f = &t.query.filter;
    let mut q = format!("sort={}&dir={}&page={page}", sort.as_str(), if descending { "desc" } else { "asc" });
    // Materials and districts come from the register: percent-encode them for the URL.
    if let Some(m) = &f.material {
        let _ = write!(q, "&material={}", escape(&crate::error::percent_encode(m)));
    }
    if let Some(d) = &f.district {
        let _ = write!(q, "&district={}", escape(&crate::error::percent_encode(d)));
    }
    if let Some(g) = f.grade {
        let _ = write!(q, "&grade={}", grade_filter_name(g));
    }
    q
}

fn grade_msg(g: Option<SewerGrade>) -> Msg {
    match g {
        Some(SewerGrade::I) => Msg::SewerGradeI,
        Some(SewerGrade::II) => Msg::SewerGradeII,
        Some(SewerGrade::III) => Msg::SewerGradeIII,
        Some(SewerGrade::Sound) => Msg::SewerGradeNone,
        None => Msg::Uninspected,
    }
}

/// Fill colours of the grades, light enough for black text; the grade is always written too.
fn grade_rgb(g: Option<SewerGrade>) -> (u8, u8, u8) {
    match g {
        Some(SewerGrade::I) => (214, 96, 96),
        Some(SewerGrade::II) => (255, 180, 120),
        Some(SewerGrade::III) => (255, 235, 150),
        Some(SewerGrade::Sound) => (210, 235, 195),
        None => (229, 231, 235),
    }
}

/// A grade as text on its colour: colour is never the only signal.
fn grade_badge(lang: Lang, g: Option<SewerGrade>) -> String {
    let (r, gr, b) = grade_rgb(g);
    format!("<span class=\"grade\" style=\"background:rgb({r},{gr},{b})\">{}</span>", lang.t(grade_msg(g)))
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("—".to_owned(), |v| v.to_string())
}

async fn choices(state: &AppState, run: i64) -> Result<Choices, AppError> {
    Ok(Choices { materials: state.sewer.materials(run).await?, districts: state.sewer.districts(run).await? })
}

/// The newest run and the checked query, or `None` with the parameters still checked as far
/// as they can be without a run, so a bad link is a 400 whether or not a run exists.
async fn prepare(
    state: &AppState,
    params: SewerParams,
    lang: Lang,
) -> Result<Option<(SewerRun, Choices, Table)>, AppError> {
    let Some(run) = state.sewer.latest_run().await? else {
        SewerParams { material: None, district: None, ..params }.check(&Choices::default(), lang)?;
        return Ok(None);
    };
    let choices = choices(state, run.id).await?;
    let t = params.check(&choices, lang)?;
    Ok(Some((run, choices, t)))
}

/// `GET /sewer`: the ranked spans.
pub(crate) async fn sewer_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    query: Result<Query<SewerParams>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let Query(params) = query?;
    let here = uri.path_and_query().map_or("/sewer", |p| p.as_str());
    let title = lang.t(Msg::Sewers);
    let frame = Frame { lang, title, user: Some(&user), here, refresh_s: None };
    let mut body = format!("<h2>{title}</h2>");
    let Some((run, choices, t)) = prepare(&state, params, lang).await? else {
        let _ = write!(body, "<p>{}</p>", lang.t(Msg::NoSewerRanking));
        return Ok(Html(page(&frame, &body)));
    };
    let result = state.sewer.rows(run.id, &t.query).await?;
    let counts = state.sewer.grade_counts(run.id, &t.query.filter).await?;
    let _ = write!(
        body,
        "<p class=\"meta\">{asof} {date} · {horizon_l} {h} {years}</p>",
        asof = lang.t(Msg::AsOf),
        date = run.as_of,
        horizon_l = lang.t(Msg::SewerHorizon),
        h = run.horizon_years,
        years = lang.t(Msg::YearsUnit),
    );
    body.push_str(&filter_form(lang, &t, &choices));
    body.push_str(&counts_table(lang, &counts));
    let chart = lang.t(Msg::SoundShareChart);
    let _ = write!(
        body,
        "<h3>{chart}</h3><figure data-chart=\"/sewer/curve.svg?\" data-w=\"{CHART_WIDTH}\" role=\"img\" aria-label=\"{chart}\">\
         <div class=\"svgbox\">{svg}</div></figure>",
        svg = curve_svg_or_empty(&run.curves, CHART_WIDTH),
    );
    body.push_str(&curves_table(lang, &run.curves));
    let pages = result.total.div_ceil(PAGE_SIZE).max(1);
    let _ = write!(
        body,
        "<p>{n} {spans} · {page_l} {p} / {pages}</p>",
        n = result.total,
        spans = lang.t(Msg::SpansMatch),
        page_l = lang.t(Msg::Page),
        p = t.page,
    );
    body.push_str(&rows_table(lang, &t, &result.rows, run.as_of.year()));
    body.push_str(&pager(lang, &t, pages));
    body.push_str(crate::detail::RESIZE_SCRIPT);
    Ok(Html(page(&frame, &body)))
}

fn filter_form(lang: Lang, t: &Table, choices: &Choices) -> String {
    let f = &t.query.filter;
    let all = lang.t(Msg::All);
    let mut form = format!(
        "<form method=\"get\" action=\"/sewer\" class=\"filters\"><div><label for=\"grade\">{g_l}</label>\
         <select id=\"grade\" name=\"grade\"><option value=\"\">{all}</option>",
        g_l = lang.t(Msg::LatestGrade),
    );
    let options = SewerGrade::ALL.map(|g| (GradeFilter::Grade(g), Some(g)));
    for (filter, grade) in options.into_iter().chain([(GradeFilter::Uninspected, None)]) {
        let sel = if f.grade == Some(filter) { " selected" } else { "" };
        let _ = write!(
            form,
            "<option value=\"{v}\"{sel}>{label}</option>",
            v = grade_filter_name(filter),
            label = lang.t(grade_msg(grade))
        );
    }
    let _ = write!(
        form,
        "</select></div><div><label for=\"material\">{m_l}</label><select id=\"material\" name=\"material\"><option value=\"\">{all}</option>",
        m_l = lang.t(Msg::Material),
    );
    for m in &choices.materials {
        let sel = if f.material.as_deref() == Some(m) { " selected" } else { "" };
        let _ = write!(form, "<option value=\"{m}\"{sel}>{m}</option>", m = escape(m));
    }
    if !choices.districts.is_empty() {
        let _ = write!(
            form,
            "</select></div><div><label for=\"district\">{d_l}</label><select id=\"district\" name=\"district\"><option value=\"\">{all}</option>",
            d_l = lang.t(Msg::SewerDistrict),
        );
        for d in &choices.districts {
            let sel = if f.district.as_deref() == Some(d) { " selected" } else { "" };
            let _ = write!(form, "<option value=\"{d}\"{sel}>{d}</option>", d = escape(d));
        }
    }
    let _ = write!(
        form,
        "</select></div><input type=\"hidden\" name=\"sort\" value=\"{s}\"><input type=\"hidden\" name=\"dir\" value=\"{d}\">\
         <div><button type=\"submit\" class=\"button\">{show}</button></div></form>",
        s = t.query.sort.as_str(),
        d = if t.query.descending { "desc" } else { "asc" },
        show = lang.t(Msg::Show),
    );
    form
}

/// Spans and km per latest grade of the filtered spans, every grade listed (zero included).
fn counts_table(lang: Lang, counts: &[GradeCount]) -> String {
    let mut s = format!(
        "<h3>{title}</h3><div class=\"scroll\"><table class=\"grades\"><thead><tr><th scope=\"col\">{g}</th>\
         <th scope=\"col\">{n}</th><th scope=\"col\">km</th></tr></thead><tbody>",
        title = lang.t(Msg::SpansByGrade),
        g = lang.t(Msg::LatestGrade),
        n = lang.t(Msg::Spans),
    );
    let grades = SewerGrade::ALL.map(Some).into_iter().chain([None]);
    for g in grades {
        let (n, km) = counts.iter().find(|c| c.grade == g).map_or((0, 0.0), |c| (c.spans, c.km));
        let _ = write!(
            s,
            "<tr><th scope=\"row\">{badge}</th><td class=\"num\">{n}</td><td class=\"num\">{km:.1}</td></tr>",
            badge = grade_badge(lang, g)
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

/// The curves in numbers: the accessible twin of the chart.
fn curves_table(lang: Lang, curves: &[SewerCurve]) -> String {
    let mut s = format!(
        "<details><summary class=\"button\">{}</summary><div class=\"scroll\"><table class=\"curves\"><thead><tr>\
         <th scope=\"col\">{m}</th><th scope=\"col\">{n}</th><th scope=\"col\">{s30}</th><th scope=\"col\">{s50}</th>\
         <th scope=\"col\">{life}</th><th scope=\"col\">{note}</th></tr></thead><tbody>",
        lang.t(Msg::CurvesAsTable),
        m = lang.t(Msg::Material),
        n = lang.t(Msg::Inspections),
        s30 = lang.t(Msg::SoundAt30),
        s50 = lang.t(Msg::SoundAt50),
        life = lang.t(Msg::TargetLife),
        note = lang.t(Msg::CurveNote),
    );
    for c in curves {
        let _ = write!(
            s,
            "<tr><td>{ja} ({code})</td><td class=\"num\">{n}</td><td class=\"num\">{s30:.0}%</td><td class=\"num\">{s50:.0}%</td>\
             <td class=\"num\">{life:.0}</td><td>{note}</td></tr>",
            ja = escape(&c.material_ja),
            code = escape(&c.material),
            n = c.inspections,
            s30 = 100.0 * c.sound_share(30.0),
            s50 = 100.0 * c.sound_share(50.0),
            life = c.target_life(),
            note = escape(c.fallback.as_deref().unwrap_or("")),
        );
    }
    s.push_str("</tbody></table></div></details>");
    s
}

fn rows_table(lang: Lang, t: &Table, rows: &[SewerRow], year: i32) -> String {
    // Districts are a filter, not a sort key.
    let columns: [(Option<SewerSort>, Msg); 10] = [
        (Some(SewerSort::Priority), Msg::Priority),
        (Some(SewerSort::SpanId), Msg::SpanId),
        (Some(SewerSort::Material), Msg::Material),
        (Some(SewerSort::Diameter), Msg::DiameterMm),
        (Some(SewerSort::Length), Msg::LengthM),
        (Some(SewerSort::InstallYear), Msg::InstallYear),
        (None, Msg::SewerDistrict),
        (Some(SewerSort::Grade), Msg::LatestGrade),
        (Some(SewerSort::PGradeII), Msg::PGradeII),
        (Some(SewerSort::PGradeI), Msg::PGradeI),
    ];
    let head = params::sort_header(
        lang,
        "/sewer",
        &columns,
        t.query.sort,
        t.query.descending,
        |k| matches!(k, SewerSort::Priority | SewerSort::SpanId | SewerSort::Material),
        |k, desc| table_query(t, k, desc, 1),
    );
    let mut s = format!("<div class=\"scroll\"><table class=\"sewer\">{head}<tbody>");
    for r in rows {
        let age = r.install_year.map(|y| year - y);
        let seen = r.latest_date.map(|d| format!("<br><small>{d}</small>")).unwrap_or_default();
        let _ = write!(
            s,
            "<tr><td class=\"num\">{p}</td><td title=\"{why}\">{id}</td><td title=\"{mja}\">{m}</td><td class=\"num\">{d}</td>\
             <td class=\"num\">{len:.0}</td><td class=\"num\">{y}{age}</td><td>{district}</td><td>{grade}{seen}</td>\
             <td class=\"num\">{p2:.1}%</td><td class=\"num\">{p1:.1}%</td></tr>",
            p = r.priority,
            why = escape(&r.explanation),
            id = escape(r.span_id.as_str()),
            m = escape(&r.material),
            mja = escape(&r.material_ja),
            d = fmt_opt(r.diameter_mm),
            len = r.length_m,
            y = fmt_opt(r.install_year),
            age = age.map(|a| format!(" ({a})")).unwrap_or_default(),
            district = escape(r.district.as_deref().unwrap_or("—")),
            grade = grade_badge(lang, r.latest_grade),
            p2 = r.p_grade_ii * 100.0,
            p1 = r.p_grade_i * 100.0,
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

fn pager(lang: Lang, t: &Table, pages: u64) -> String {
    params::pager(lang, "/sewer", t.page, pages, |page| table_query(t, t.query.sort, t.query.descending, page))
}

/// `GET /api/sewer`: the page's data as JSON; `run` is null until a ranking is stored.
pub(crate) async fn sewer_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<SewerParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Query(params) = query?;
    let Some((run, _, t)) = prepare(&state, params, lang).await? else {
        return Ok(Json(
            json!({ "run": null, "page": 1, "page_size": PAGE_SIZE, "total": 0, "rows": [], "grades": [] }),
        ));
    };
    let result = state.sewer.rows(run.id, &t.query).await?;
    let counts = state.sewer.grade_counts(run.id, &t.query.filter).await?;
    Ok(Json(json!({
        "run": run,
        "page": t.page,
        "page_size": PAGE_SIZE,
        "total": result.total,
        "rows": result.rows,
        "grades": counts,
    })))
}

/// `GET /sewer/curve.svg?w=`: the curve chart alone at the requested width (the page's script
/// asks for its box's width); 404 until a ranking is stored.
pub(crate) async fn curve_svg(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<CurveParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) = query?;
    let width = crate::detail::chart_width(q.w.as_deref(), CHART_WIDTH, lang)?;
    let run =
        state.sewer.latest_run().await?.ok_or_else(|| AppError::NotFound("sewer ranking: none stored yet".into()))?;
    Ok(([(CONTENT_TYPE, "image/svg+xml; charset=utf-8")], curve_svg_or_empty(&run.curves, width)).into_response())
}

/// The chart's height for a width: 5:8, within what a phone and a desktop column show.
fn chart_height(width: u32) -> u32 {
    (width * 5 / 8).clamp(240, 600)
}

fn curve_svg_or_empty(curves: &[SewerCurve], width: u32) -> String {
    curve_chart_svg(curves, (width, chart_height(width))).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the sewer curve chart could not be drawn");
        String::new()
    })
}

/// Line colours per material (the Okabe–Ito colour-blind-safe set); each line's legend entry
/// names its material and target life, and the lines keep their order by age, so the chart
/// also reads in grey.
const PALETTE: [(u8, u8, u8); 7] =
    [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0)];

/// 健全率 (share of spans without deterioration) against age, one line per material, with
/// the age where 緊急度 I+II reaches 50 % marked on each. Plotters' SVG backend without its
/// font feature, as the other charts: the text stays `<text>` for the viewer's fonts. The
/// binary's `mizumori sewer curve --chart` draws with this too.
pub fn curve_chart_svg(curves: &[SewerCurve], size: (u32, u32)) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(
                "健全率 by age and material / share of sewer spans without deterioration (▲ I+II = 50 %)",
                ("sans-serif", if size.0 < 500 { 11 } else { 15 }),
            )
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..100.0, 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_desc("経過年数 age (years)")
            .y_desc("健全率 sound (%)")
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (k, c) in curves.iter().enumerate() {
            let (r, g, b) = PALETTE[k % PALETTE.len()];
            let colour = RGBColor(r, g, b);
            let points: Vec<(f64, f64)> =
                (0..=200).map(|a| f64::from(a) / 2.0).map(|a| (a, 100.0 * c.sound_share(a))).collect();
            let life = c.target_life();
            let pooled = if c.fallback.as_deref().is_some_and(|f| f.starts_with("pooled")) { ", pooled" } else { "" };
            let label = format!("{} {} (I+II 50 % at {life:.0} y{pooled})", c.material, c.material_ja);
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
            if life <= 100.0 {
                let at = 100.0 * c.sound_share(life);
                chart.draw_series([TriangleMarker::new((life, at), 6, colour.filled())])?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 13))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}
