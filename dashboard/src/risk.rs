//! Risk pages for engineers: the ranked mains as a sortable, filterable, paged table with the
//! 5 × 5 LoF × CoF matrix; a page per main with its evidence; the model card with the
//! backtest against the baselines; the same data as JSON and the table as CSV.
//!
//! Everything comes from the newest stored ranking run ([`store::RiskStore`]); this module
//! ranks nothing. Every query parameter is checked into a [`RiskQuery`] or refused with 400:
//! the sort key must be a known column, numbers must be numbers, grades known names, and the
//! material a code from the run, so a request can only ever choose among fixed SQL texts.

use std::fmt::Write;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Datelike;
use model::AssetId;
use plotters::prelude::*;
use serde::Deserialize;
use serde_json::json;
use store::risk::{MatrixCell, RiskFilter, RiskLevel, RiskQuery, RiskRow, RiskRun, RiskSort};

use crate::auth::{CurrentUser, Permission};
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::params::{self, bad, some};
use crate::{AppError, AppState};

/// Rows per page of the table: a screenful on a desktop, and about 60 KB of HTML.
pub const PAGE_SIZE: u64 = 50;
/// The largest diameter a filter may name; larger mains do not exist in a city network.
const MAX_DIAMETER_MM: f64 = 5000.0;

/// The query of the risk table, its JSON and its CSV, as it arrives.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TableParams {
    material: Option<String>,
    dmin: Option<String>,
    dmax: Option<String>,
    grade: Option<String>,
    district: Option<String>,
    lof: Option<String>,
    cof: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    // Read by the language middleware.
    #[allow(dead_code)]
    lang: Option<String>,
}

/// A checked table query and the page number it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub query: RiskQuery,
    pub page: u64,
}

/// What a filter may choose from: the run's own material codes and districts.
#[derive(Debug, Default)]
pub(crate) struct Choices {
    pub materials: Vec<String>,
    pub districts: Vec<String>,
}

impl Choices {
    pub(crate) async fn of(state: &AppState, run: i64) -> Result<Choices, AppError> {
        let c = state.caches.risk_choices(&state.risk, run).await?;
        Ok(Choices { materials: c.0.clone(), districts: c.1.clone() })
    }
}

impl TableParams {
    /// Checks the parameters against the run's `choices`.
    pub(crate) fn check(&self, choices: &Choices, lang: Lang) -> Result<Table, AppError> {
        let materials = &choices.materials;
        let material = match some(&self.material) {
            None => None,
            Some(m) if materials.iter().any(|k| k == m) => Some(m.to_owned()),
            Some(m) => {
                return Err(bad(
                    lang,
                    format!("material={m:?}: not a material of this ranking ({})", materials.join(", ")),
                    format!("material={m:?}: この評価にない管種です（{}）", materials.join("、")),
                ));
            }
        };
        let diameter = |name: &str, v: Option<&str>| -> Result<Option<f64>, AppError> {
            match v {
                None => Ok(None),
                Some(s) => match s.parse::<f64>() {
                    Ok(d) if (0.0..=MAX_DIAMETER_MM).contains(&d) => Ok(Some(d)),
                    _ => Err(bad(
                        lang,
                        format!("{name}={s:?}: a diameter in mm from 0 to {MAX_DIAMETER_MM}"),
                        format!("{name}={s:?}: 口径は 0〜{MAX_DIAMETER_MM} mm の数値で指定してください"),
                    )),
                },
            }
        };
        let dmin = diameter("dmin", some(&self.dmin))?;
        let dmax = diameter("dmax", some(&self.dmax))?;
        if let (Some(a), Some(b)) = (dmin, dmax) {
            if a > b {
                return Err(bad(
                    lang,
                    format!("dmin={a} is above dmax={b}"),
                    format!("最小口径 {a} が最大口径 {b} を超えています"),
                ));
            }
        }
        let grade = match some(&self.grade) {
            None => None,
            Some(g) => Some(g.parse::<RiskLevel>().map_err(|_| {
                bad(
                    lang,
                    format!("grade={g:?}: use negligible, low, medium, high or extreme"),
                    format!("grade={g:?}: negligible, low, medium, high, extreme のいずれかを指定してください"),
                )
            })?),
        };
        let district = match some(&self.district) {
            None => None,
            Some(d) if choices.districts.iter().any(|k| k == d) => Some(d.to_owned()),
            Some(d) => {
                return Err(bad(
                    lang,
                    format!("district={d:?}: not a district of this ranking"),
                    format!("district={d:?}: この評価にない配水区です"),
                ));
            }
        };
        let grade_1_5 = |name: &str, v: Option<&str>| -> Result<Option<u8>, AppError> {
            match v {
                None => Ok(None),
                Some(s) => match s.parse::<u8>() {
                    Ok(g) if (1..=5).contains(&g) => Ok(Some(g)),
                    _ => Err(bad(
                        lang,
                        format!("{name}={s:?}: a grade from 1 to 5"),
                        format!("{name}={s:?}: 1〜5 の等級で指定してください"),
                    )),
                },
            }
        };
        let lof = grade_1_5("lof", some(&self.lof))?;
        let cof = grade_1_5("cof", some(&self.cof))?;
        let sort = params::sort_key(lang, some(&self.sort), RiskSort::Rank, &RiskSort::ALL, RiskSort::as_str)?;
        let descending = params::descending(lang, some(&self.dir))?;
        let page = params::page_number(lang, some(&self.page))?;
        Ok(Table {
            query: RiskQuery {
                filter: RiskFilter {
                    material,
                    diameter_min_mm: dmin,
                    diameter_max_mm: dmax,
                    risk_grade: grade,
                    district,
                    lof_grade: lof,
                    cof_grade: cof,
                },
                sort,
                descending,
                offset: (page - 1) * PAGE_SIZE,
                limit: PAGE_SIZE,
            },
            page,
        })
    }
}

/// The query string of a table (filters, sort, page), for links.
fn table_query(t: &Table, sort: RiskSort, descending: bool, page: u64) -> String {
    let f = &t.query.filter;
    let mut q = format!("sort={}&dir={}&page={page}", sort.as_str(), if descending { "desc" } else { "asc" });
    // Material codes are [A-Z-]; diameters and grades are numbers and fixed names.
    if let Some(m) = &f.material {
        let _ = write!(q, "&material={}", escape(m));
    }
    if let Some(d) = f.diameter_min_mm {
        let _ = write!(q, "&dmin={d}");
    }
    if let Some(d) = f.diameter_max_mm {
        let _ = write!(q, "&dmax={d}");
    }
    if let Some(g) = f.risk_grade {
        let _ = write!(q, "&grade={g}");
    }
    // District names come from the register: percent-encode them for the URL.
    if let Some(d) = &f.district {
        let _ = write!(q, "&district={}", escape(&crate::error::percent_encode(d)));
    }
    if let Some(g) = f.lof_grade {
        let _ = write!(q, "&lof={g}");
    }
    if let Some(g) = f.cof_grade {
        let _ = write!(q, "&cof={g}");
    }
    q
}

pub(crate) fn grade_msg(g: RiskLevel) -> Msg {
    match g {
        RiskLevel::Negligible => Msg::GradeNegligible,
        RiskLevel::Low => Msg::GradeLow,
        RiskLevel::Medium => Msg::GradeMedium,
        RiskLevel::High => Msg::GradeHigh,
        RiskLevel::Extreme => Msg::GradeExtreme,
    }
}

/// Fill colours of the grades, light enough for black text; the grade is always written too.
fn grade_rgb(g: RiskLevel) -> (u8, u8, u8) {
    match g {
        RiskLevel::Negligible => (220, 237, 200),
        RiskLevel::Low => (255, 241, 168),
        RiskLevel::Medium => (255, 210, 140),
        RiskLevel::High => (245, 160, 130),
        RiskLevel::Extreme => (214, 96, 96),
    }
}

/// A grade as text with its colour as a badge: colour is never the only signal.
fn grade_badge(lang: Lang, g: RiskLevel) -> String {
    let (r, gr, b) = grade_rgb(g);
    format!("<span class=\"grade\" style=\"background:rgb({r},{gr},{b})\">{}</span>", lang.t(grade_msg(g)))
}

/// The 5 × 5 LoF × CoF matrix: LoF up, CoF across, each cell coloured by its grade and
/// labelled with its number of mains and km. Drawn in pixels with plotters; the browser
/// renders the text.
pub(crate) fn matrix_svg(cells: &[MatrixCell], lang: Lang, width: u32) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_matrix(&mut svg, cells, lang, width) {
        tracing::warn!(error = %e, "risk matrix could not be drawn");
        svg.clear();
    }
    svg
}

fn draw_matrix(
    svg: &mut String,
    cells: &[MatrixCell],
    lang: Lang,
    width: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let left = 40i32;
    let bottom = 40i32;
    let cell = ((width as i32 - left - 8) / 5).max(40);
    let height = (cell * 5 + bottom + 8) as u32;
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    // plotters writes font-size as size / 1.24: these come out at about 13 and 11 px.
    let font = ("sans-serif", 16).into_font().color(&BLACK);
    let small = ("sans-serif", 14).into_font().color(&BLACK);
    let unit = lang.t(Msg::MainsUnit);
    for lof in 1..=5u8 {
        for cof in 1..=5u8 {
            let x0 = left + (i32::from(cof) - 1) * cell;
            let y0 = 4 + (5 - i32::from(lof)) * cell;
            let found = cells.iter().find(|c| c.lof_grade == lof && c.cof_grade == cof);
            let fill = match found {
                Some(c) => {
                    let (r, g, b) = grade_rgb(c.risk_grade);
                    RGBColor(r, g, b)
                }
                None => RGBColor(243, 244, 246),
            };
            root.draw(&Rectangle::new([(x0, y0), (x0 + cell, y0 + cell)], fill.filled()))?;
            root.draw(&Rectangle::new([(x0, y0), (x0 + cell, y0 + cell)], RGBColor(255, 255, 255).stroke_width(2)))?;
            let (n, km) = found.map_or((0, 0.0), |c| (c.mains, c.km));
            root.draw(&Text::new(format!("{n}{unit}"), (x0 + 4, y0 + cell / 2 - 12), font.clone()))?;
            root.draw(&Text::new(format!("{km:.1} km"), (x0 + 4, y0 + cell / 2 + 4), small.clone()))?;
        }
        let y = 4 + (5 - i32::from(lof)) * cell + cell / 2 - 6;
        root.draw(&Text::new(lof.to_string(), (left - 14, y), font.clone()))?;
    }
    for cof in 1..=5i32 {
        root.draw(&Text::new(cof.to_string(), (left + (cof - 1) * cell + cell / 2 - 4, 8 + 5 * cell), font.clone()))?;
    }
    root.draw(&Text::new(lang.t(Msg::CofAxis), (left, 24 + 5 * cell), font.clone()))?;
    root.draw(&Text::new("LoF", (2, 4), font))?;
    root.present()?;
    drop(root);
    Ok(())
}

/// The matrix again as a table: the accessible twin of the chart, and each cell a link to its
/// mains (with the other filters kept).
fn matrix_table(lang: Lang, t: &Table, cells: &[MatrixCell]) -> String {
    let mut s = format!(
        "<details><summary class=\"button\">{}</summary><div class=\"scroll\"><table class=\"matrix\"><tr><th scope=\"col\">LoF \\ CoF</th>",
        lang.t(Msg::MatrixAsTable)
    );
    for cof in 1..=5 {
        let _ = write!(s, "<th scope=\"col\">{cof}</th>");
    }
    s.push_str("</tr>");
    for lof in (1..=5u8).rev() {
        let _ = write!(s, "<tr><th scope=\"row\">{lof}</th>");
        for cof in 1..=5u8 {
            let (n, km) =
                cells.iter().find(|c| c.lof_grade == lof && c.cof_grade == cof).map_or((0, 0.0), |c| (c.mains, c.km));
            let mut cell = t.clone();
            cell.query.filter.lof_grade = Some(lof);
            cell.query.filter.cof_grade = Some(cof);
            let _ = write!(
                s,
                "<td class=\"num\"><a href=\"/risk?{q}\">{n}{unit}<br><small>{km:.1} km</small></a></td>",
                q = table_query(&cell, t.query.sort, t.query.descending, 1),
                unit = lang.t(Msg::MainsUnit),
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</table></div></details>");
    s
}

/// The newest run, or a page that says there is none yet.
async fn latest(state: &AppState) -> Result<Option<RiskRun>, AppError> {
    state.caches.latest_run(&state.risk).await
}

fn no_run(lang: Lang) -> String {
    format!("<p>{}</p>", lang.t(Msg::NoRanking))
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("—".to_owned(), |v| v.to_string())
}

fn run_line(lang: Lang, run: &RiskRun) -> String {
    format!(
        "<p class=\"meta\">{asof} {date} · {model_l} {model} · <a href=\"/model\">{card}</a></p>",
        asof = lang.t(Msg::AsOf),
        date = run.as_of,
        model_l = lang.t(Msg::Model),
        model = escape(&run.model),
        card = lang.t(Msg::ModelCard),
    )
}

/// `GET /risk`: the ranked mains.
pub(crate) async fn table_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    query: Result<Query<TableParams>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let Query(params) = query?;
    let here = uri.path_and_query().map_or("/risk", |p| p.as_str());
    let title = lang.t(Msg::RiskRanking);
    let frame = Frame { lang, title, user: Some(&user), here, refresh_s: None };
    let mut body = format!("<h2>{title}</h2>");
    let Some(run) = latest(&state).await? else {
        // Still check the parameters, so a bad link is a 400 whether or not a run exists.
        // Materials and districts cannot be checked without a run; the rest can.
        let open = TableParams { material: None, district: None, ..params };
        open.check(&Choices::default(), lang)?;
        body.push_str(&no_run(lang));
        return Ok(Html(page(&frame, &body)));
    };
    let choices = Choices::of(&state, run.id).await?;
    let t = params.check(&choices, lang)?;
    let result = state.caches.risk_rows(&state.risk, run.id, &t.query).await?;
    let cells = state.caches.risk_matrix(&state.risk, run.id, &t.query.filter).await?;
    body.push_str(&run_line(lang, &run));
    body.push_str(&filter_form(lang, &t, &choices));
    let _ = write!(
        body,
        "<h3>{m}</h3><figure role=\"img\" aria-label=\"{m}\"><div class=\"svgbox\">{svg}</div></figure><p class=\"meta\">{legend}</p>",
        m = lang.t(Msg::RiskMatrix),
        svg = matrix_svg(&cells, lang, 360),
        legend = RiskLevel::ALL.iter().map(|g| grade_badge(lang, *g)).collect::<Vec<_>>().join(" "),
    );
    body.push_str(&matrix_table(lang, &t, &cells));
    let _ = write!(body, "<p><a id=\"risk-map\" href=\"/risk/map.svg\">{}</a></p>", crate::map::link_text(lang));
    let pages = result.total.div_ceil(PAGE_SIZE).max(1);
    let _ = write!(
        body,
        "<p>{n} {mains} · {page_l} {p} / {pages}</p>",
        n = result.total,
        mains = lang.t(Msg::MainsMatch),
        page_l = lang.t(Msg::Page),
        p = t.page,
    );
    body.push_str(&rows_table(lang, &t, &result.rows, run.as_of.year()));
    body.push_str(&pager(lang, &t, pages));
    if user.can(Permission::Export) {
        let _ = write!(
            body,
            "<p><a class=\"button\" id=\"risk-csv\" href=\"/risk.csv?{q}\" download>{csv}</a> \
             <a class=\"button\" id=\"risk-xlsx\" href=\"/risk/export?format=xlsx&amp;{q}\" download>Excel (xlsx)</a> \
             <a class=\"button\" id=\"risk-geojson\" href=\"/risk/export?format=geojson&amp;{q}\" download>GeoJSON</a></p>",
            q = table_query(&t, t.query.sort, t.query.descending, 1),
            csv = lang.t(Msg::DownloadCsv),
        );
    }
    Ok(Html(page(&frame, &body)))
}

fn filter_form(lang: Lang, t: &Table, choices: &Choices) -> String {
    let f = &t.query.filter;
    let materials = &choices.materials;
    let mut form = format!(
        "<form method=\"get\" action=\"/risk\" class=\"filters\"><div><label for=\"material\">{m_l}</label>\
         <select id=\"material\" name=\"material\"><option value=\"\">{all}</option>",
        m_l = lang.t(Msg::Material),
        all = lang.t(Msg::All),
    );
    for m in materials {
        let sel = if f.material.as_deref() == Some(m) { " selected" } else { "" };
        let _ = write!(form, "<option value=\"{m}\"{sel}>{m}</option>", m = escape(m));
    }
    let _ = write!(
        form,
        "</select></div><div><label for=\"dmin\">{dmin_l}</label><input type=\"number\" id=\"dmin\" name=\"dmin\" min=\"0\" max=\"{MAX_DIAMETER_MM}\" value=\"{dmin}\"></div>\
         <div><label for=\"dmax\">{dmax_l}</label><input type=\"number\" id=\"dmax\" name=\"dmax\" min=\"0\" max=\"{MAX_DIAMETER_MM}\" value=\"{dmax}\"></div>\
         <div><label for=\"grade\">{g_l}</label><select id=\"grade\" name=\"grade\"><option value=\"\">{all}</option>",
        dmin_l = lang.t(Msg::DiameterMin),
        dmax_l = lang.t(Msg::DiameterMax),
        dmin = f.diameter_min_mm.map(|d| d.to_string()).unwrap_or_default(),
        dmax = f.diameter_max_mm.map(|d| d.to_string()).unwrap_or_default(),
        g_l = lang.t(Msg::RiskGrade),
        all = lang.t(Msg::All),
    );
    for g in RiskLevel::ALL.iter().rev() {
        let sel = if f.risk_grade == Some(*g) { " selected" } else { "" };
        let _ = write!(form, "<option value=\"{g}\"{sel}>{}</option>", lang.t(grade_msg(*g)));
    }
    if !choices.districts.is_empty() {
        let _ = write!(
            form,
            "</select></div><div><label for=\"district\">{d_l}</label><select id=\"district\" name=\"district\"><option value=\"\">{all}</option>",
            d_l = lang.t(Msg::District),
            all = lang.t(Msg::All),
        );
        for d in &choices.districts {
            let sel = if f.district.as_deref() == Some(d) { " selected" } else { "" };
            let _ = write!(form, "<option value=\"{d}\"{sel}>{d}</option>", d = escape(d));
        }
    }
    // A matrix cell chosen by a link stays chosen when the form is sent again.
    let mut cell = String::new();
    for (name, v) in [("lof", f.lof_grade), ("cof", f.cof_grade)] {
        if let Some(g) = v {
            let _ = write!(cell, "<input type=\"hidden\" name=\"{name}\" value=\"{g}\">");
        }
    }
    let _ = write!(
        form,
        "</select></div>{cell}<input type=\"hidden\" name=\"sort\" value=\"{s}\"><input type=\"hidden\" name=\"dir\" value=\"{d}\">\
         <div><button type=\"submit\" class=\"button\">{show}</button></div></form>",
        s = t.query.sort.as_str(),
        d = if t.query.descending { "desc" } else { "asc" },
        show = lang.t(Msg::Show),
    );
    form
}

fn rows_table(lang: Lang, t: &Table, rows: &[RiskRow], year: i32) -> String {
    // The LoF/CoF column sorts like the rank (LoF follows the rank); only the rank links.
    let columns: [(Option<RiskSort>, Msg); 11] = [
        (Some(RiskSort::Rank), Msg::Rank),
        (Some(RiskSort::AssetId), Msg::AssetId),
        (Some(RiskSort::Material), Msg::Material),
        (Some(RiskSort::Diameter), Msg::DiameterMm),
        (Some(RiskSort::Length), Msg::LengthM),
        (Some(RiskSort::InstallYear), Msg::InstallYear),
        (Some(RiskSort::PriorBreaks), Msg::PriorBreaks),
        (Some(RiskSort::ExpectedBreaks), Msg::ExpectedBreaks),
        (Some(RiskSort::Probability), Msg::Probability),
        (None, Msg::LofCof),
        (Some(RiskSort::Risk), Msg::RiskGrade),
    ];
    let head = params::sort_header(
        lang,
        "/risk",
        &columns,
        t.query.sort,
        t.query.descending,
        |k| matches!(k, RiskSort::Rank | RiskSort::AssetId | RiskSort::Material),
        |k, desc| table_query(t, k, desc, 1),
    );
    let mut s = format!("<div class=\"scroll\"><table class=\"risk\">{head}<tbody>");
    for r in rows {
        let age = r.install_year.map(|y| year - y);
        let _ = write!(
            s,
            "<tr><td class=\"num\">{rank}</td><td><a href=\"/risk/{id}\">{id}</a></td><td title=\"{mja}\">{m}</td>\
             <td class=\"num\">{d}</td><td class=\"num\">{len:.0}</td><td class=\"num\">{y}{age}</td><td class=\"num\">{pb}</td>\
             <td class=\"num\">{eb:.3}</td><td class=\"num\">{p:.1}%</td><td class=\"num\">{lof}/{cof}</td><td>{grade}</td></tr>",
            rank = r.rank,
            id = r.asset_id,
            m = escape(&r.material),
            mja = escape(&r.material_ja),
            d = fmt_opt(r.diameter_mm),
            len = r.length_m,
            y = fmt_opt(r.install_year),
            age = age.map(|a| format!(" ({a})")).unwrap_or_default(),
            pb = r.prior_breaks,
            eb = r.expected_breaks,
            p = r.probability * 100.0,
            lof = r.lof_grade,
            cof = r.cof_grade,
            grade = grade_badge(lang, r.risk_grade),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

fn pager(lang: Lang, t: &Table, pages: u64) -> String {
    params::pager(lang, "/risk", t.page, pages, |page| table_query(t, t.query.sort, t.query.descending, page))
}

/// The asset id of a path: 400 when it is not a valid id.
fn asset_id(path: Result<Path<String>, PathRejection>, lang: Lang) -> Result<AssetId, AppError> {
    let Path(id) = path?;
    AssetId::new(&id).map_err(|e| bad(lang, e.to_string(), e.to_string()))
}

async fn pipe_of(state: &AppState, id: &AssetId) -> Result<(RiskRun, RiskRow), AppError> {
    let run = latest(state).await?.ok_or_else(|| AppError::NotFound("risk ranking: none stored yet".into()))?;
    let row = state.risk.row(run.id, id).await?.ok_or_else(|| AppError::NotFound(format!("asset {id}")))?;
    Ok((run, row))
}

/// `GET /risk/{asset_id}`: one main's evidence.
pub(crate) async fn pipe_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, AppError> {
    let id = asset_id(path, lang)?;
    let (run, r) = pipe_of(&state, &id).await?;
    let here = uri.path_and_query().map_or("/risk", |p| p.as_str());
    let age = r.install_year.map(|y| run.as_of.year() - y);
    let rows: [(Msg, String); 13] = [
        (Msg::Rank, r.rank.to_string()),
        (Msg::Material, format!("{} ({})", escape(&r.material_ja), escape(&r.material))),
        (Msg::DiameterMm, fmt_opt(r.diameter_mm)),
        (Msg::LengthM, format!("{:.0}", r.length_m)),
        (Msg::InstallYear, fmt_opt(r.install_year)),
        (Msg::AgeYears, fmt_opt(age)),
        (Msg::District, escape(r.district.as_deref().unwrap_or("—"))),
        (Msg::PriorBreaks, r.prior_breaks.to_string()),
        (Msg::ExpectedBreaks, format!("{:.3}", r.expected_breaks)),
        (Msg::Probability, format!("{:.1}%", r.probability * 100.0)),
        (Msg::BreaksPerKm, format!("{:.3}", r.score)),
        (Msg::LofCof, format!("{} / {}", r.lof_grade, r.cof_grade)),
        (Msg::RiskGrade, grade_badge(lang, r.risk_grade)),
    ];
    let mut body = format!(
        "<p><a href=\"/risk\">{back}</a></p><h2>{id}</h2>{line}<table>",
        back = lang.t(Msg::BackToRisk),
        line = run_line(lang, &run),
    );
    for (m, v) in rows {
        let _ = write!(body, "<tr><th scope=\"row\">{}</th><td>{v}</td></tr>", lang.t(m));
    }
    let _ = write!(
        body,
        "</table><h3>{why}</h3><p class=\"explanation\">{text}</p>",
        why = lang.t(Msg::Explanation),
        text = escape(&r.explanation),
    );
    if let Some((district, p)) = zone_pressure(&state, &run, &r).await {
        let _ = write!(
            body,
            "<h3>{title}</h3><p class=\"meta\">{note}</p><table>\
             <tr><th scope=\"row\">{mean_l}</th><td>{mean:.2}</td></tr>\
             <tr><th scope=\"row\">{max_l}</th><td>{max:.2}</td></tr>\
             <tr><th scope=\"row\">{transients_l}</th><td>{transients:.1}</td></tr>\
             <tr><th scope=\"row\">{drop_l}</th><td>{drop:.2}</td></tr></table>",
            title = lang.t(Msg::ZonePressure),
            note = lang.t(Msg::ZonePressureNote).replace("{district}", &escape(district)),
            mean_l = lang.t(Msg::ZoneMeanBar),
            max_l = lang.t(Msg::ZoneMaxBar),
            transients_l = lang.t(Msg::ZoneTransientsPerDay),
            drop_l = lang.t(Msg::ZoneMaxDropBar),
            mean = p.mean_bar,
            max = p.max_bar,
            transients = p.transients_per_day,
            drop = p.max_drop_bar,
        );
    }
    let title = id.to_string();
    Ok(Html(page(&Frame { lang, title: &title, user: Some(&user), here, refresh_s: None }, &body)))
}

/// The pressure of the main's district from its critical-point logger over the 30 days before
/// the run was made (`analytics::pressure`'s definitions, the ranking's zone pressure features
/// when the zones are the districts, as in the demo); `None` when the district has no logger,
/// too few readings, or the store fails (logged: the page is useful without it).
async fn zone_pressure<'a>(
    state: &AppState,
    run: &RiskRun,
    r: &'a RiskRow,
) -> Option<(&'a str, analytics::pressure::ZonePressure)> {
    let district = r.district.as_deref()?;
    let series = state.districts.iter().find(|d| d.name == district)?.critical_pressure.clone()?;
    let days = i64::from(analytics::pressure::DEFAULT_WINDOW_DAYS);
    // Through the aggregate cache: the range is fixed by the run, so the pages of one district's
    // mains share one 30-day query instead of each making its own.
    let from = run.created - chrono::Duration::days(days);
    match state.caches.fixed(&state.store, &series, from, run.created, 60_000).await {
        Ok(agg) => {
            analytics::pressure::ZonePressure::from_minutes(std::slice::from_ref(&agg.windows)).map(|p| (district, p))
        }
        Err(e) => {
            tracing::warn!(district, error = %e, "zone pressure for the risk page");
            None
        }
    }
}

/// What the model card calls each ranker of the backtest.
fn ranker_label(lang: Lang, ranker: &str) -> String {
    match ranker {
        "mizumori" => lang.t(Msg::RankerChosen).to_owned(),
        "age" => lang.t(Msg::RankerAge).to_owned(),
        "prior-breaks" => lang.t(Msg::RankerPriorBreaks).to_owned(),
        other => escape(other),
    }
}

/// `GET /model`: how far to trust the ranking.
pub(crate) async fn model_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
) -> Result<Html<String>, AppError> {
    let here = uri.path_and_query().map_or("/model", |p| p.as_str());
    let title = lang.t(Msg::ModelCard);
    let mut body = format!("<h2>{title}</h2>");
    let Some(run) = latest(&state).await? else {
        body.push_str(&no_run(lang));
        return Ok(Html(page(&Frame { lang, title, user: Some(&user), here, refresh_s: None }, &body)));
    };
    let _ = write!(
        body,
        "<p class=\"meta\">{asof} {date} · {model_l} <strong>{model}</strong></p><p>{why}</p><p>{intro} ({years})</p>",
        asof = lang.t(Msg::AsOf),
        date = run.as_of,
        model_l = lang.t(Msg::Model),
        model = escape(&run.model),
        why = escape(&run.selection),
        intro = lang.t(Msg::ModelCardIntro),
        years = escape(&run.test_years),
    );
    let _ = write!(
        body,
        "<div class=\"scroll\"><table class=\"model\"><thead><tr><th scope=\"col\" rowspan=\"2\">{r}</th>\
         <th scope=\"colgroup\" colspan=\"3\">capture@k%</th><th scope=\"col\" rowspan=\"2\">AUC</th></tr>\
         <tr><th scope=\"col\">1%</th><th scope=\"col\">5%</th><th scope=\"col\">10%</th></tr></thead><tbody>",
        r = lang.t(Msg::Ranker),
    );
    for b in &run.backtest {
        let chosen = b.ranker == "mizumori";
        let detail =
            if b.detail.is_empty() { String::new() } else { format!(" <small>({})</small>", escape(&b.detail)) };
        let _ = write!(
            body,
            "<tr{cls}><th scope=\"row\">{name}{detail}</th><td class=\"num\">{c1:.1}%</td><td class=\"num\">{c5:.1}%</td>\
             <td class=\"num\">{c10:.1}%</td><td class=\"num\">{auc}</td></tr>",
            cls = if chosen { " class=\"chosen\"" } else { "" },
            name = ranker_label(lang, &b.ranker),
            c1 = b.capture[0] * 100.0,
            c5 = b.capture[1] * 100.0,
            c10 = b.capture[2] * 100.0,
            auc = b.auc.map_or("—".to_owned(), |a| format!("{a:.3}")),
        );
    }
    let _ = write!(body, "</tbody></table></div><p class=\"meta\">{}</p>", lang.t(Msg::CaptureExplained));
    let _ = write!(
        body,
        "<h3>{t}</h3><figure role=\"img\" aria-label=\"{t}\"><div class=\"svgbox\">{svg}</div></figure>",
        t = lang.t(Msg::CaptureChart),
        svg = capture_svg(&run.backtest, lang, 360),
    );
    Ok(Html(page(&Frame { lang, title, user: Some(&user), here, refresh_s: None }, &body)))
}

/// capture@1/5/10 % as grouped bars, one group per ranker (the chosen model and the two
/// baselines; the other families are in the table), labelled with their values.
pub(crate) fn capture_svg(figures: &[store::risk::BacktestFigure], lang: Lang, width: u32) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_capture(&mut svg, figures, lang, width) {
        tracing::warn!(error = %e, "capture chart could not be drawn");
        svg.clear();
    }
    svg
}

fn draw_capture(
    svg: &mut String,
    figures: &[store::risk::BacktestFigure],
    lang: Lang,
    width: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let shown: Vec<_> =
        figures.iter().filter(|f| matches!(f.ranker.as_str(), "mizumori" | "age" | "prior-breaks")).collect();
    let row_h = 26i32;
    let label_h = 18i32;
    let group_h = label_h + 3 * row_h + 10;
    let height = (group_h * shown.len() as i32 + 8).max(40) as u32;
    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let font = ("sans-serif", 16).into_font().color(&BLACK);
    let left = 44i32;
    let bar_w = (width as i32 - left - 64).max(40);
    let colours = [RGBColor(120, 160, 210), RGBColor(31, 95, 168), RGBColor(11, 61, 102)];
    for (g, f) in shown.iter().enumerate() {
        let y0 = 4 + g as i32 * group_h;
        let name = match f.ranker.as_str() {
            "mizumori" => lang.t(Msg::RankerChosen),
            "age" => lang.t(Msg::RankerAge),
            _ => lang.t(Msg::RankerPriorBreaks),
        };
        root.draw(&Text::new(name.to_owned(), (2, y0), font.clone()))?;
        for (k, (label, v)) in ["1%", "5%", "10%"].iter().zip(f.capture).enumerate() {
            let y = y0 + label_h + k as i32 * row_h;
            let w = ((v.clamp(0.0, 1.0)) * f64::from(bar_w)).round() as i32;
            root.draw(&Text::new((*label).to_owned(), (2, y + 4), font.clone()))?;
            root.draw(&Rectangle::new([(left, y), (left + w.max(1), y + row_h - 6)], colours[k].filled()))?;
            root.draw(&Text::new(format!("{:.1}%", v * 100.0), (left + w + 4, y + 4), font.clone()))?;
        }
    }
    root.present()?;
    drop(root);
    Ok(())
}

fn run_json(run: &RiskRun) -> serde_json::Value {
    json!({
        "as_of": run.as_of, "model": run.model, "selection": run.selection,
        "test_years": run.test_years, "created": run.created,
    })
}

/// `GET /api/risk`: the table's page, its total and the matrix.
pub(crate) async fn table_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<TableParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Query(params) = query?;
    let run = latest(&state).await?.ok_or_else(|| AppError::NotFound("risk ranking: none stored yet".into()))?;
    let choices = Choices::of(&state, run.id).await?;
    let t = params.check(&choices, lang)?;
    let result = state.caches.risk_rows(&state.risk, run.id, &t.query).await?;
    let cells = state.caches.risk_matrix(&state.risk, run.id, &t.query.filter).await?;
    Ok(Json(json!({
        "run": run_json(&run),
        "page": t.page, "page_size": PAGE_SIZE, "total": result.total,
        "rows": &result.rows, "matrix": &*cells,
    })))
}

/// `GET /api/risk/{asset_id}`.
pub(crate) async fn pipe_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let id = asset_id(path, lang)?;
    let (run, row) = pipe_of(&state, &id).await?;
    Ok(Json(json!({ "run": run_json(&run), "pipe": row })))
}

/// `GET /api/model`.
pub(crate) async fn model_json(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let run = latest(&state).await?.ok_or_else(|| AppError::NotFound("risk ranking: none stored yet".into()))?;
    let mut j = run_json(&run);
    j["backtest"] = serde_json::to_value(&run.backtest).map_err(|e| AppError::Internal(format!("backtest: {e}")))?;
    Ok(Json(j))
}

/// A CSV field: quoted when it holds a separator, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// `GET /risk.csv`: every main that passes the filters, in the chosen order, with a UTF-8
/// BOM for Japanese Excel. Export permission.
pub(crate) async fn table_csv(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<TableParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = query?;
    let run = latest(&state).await?.ok_or_else(|| AppError::NotFound("risk ranking: none stored yet".into()))?;
    let choices = Choices::of(&state, run.id).await?;
    let mut t = params.check(&choices, lang)?;
    t.query.offset = 0;
    // A city register has tens of thousands of mains at most; a million is a safe cap.
    t.query.limit = 1_000_000;
    let result = state.risk.rows(run.id, &t.query).await?;
    let mut out = String::from('\u{feff}');
    out.push_str(match lang {
        Lang::Ja => "順位,管路ID,管種,管種名,口径(mm),延長(m),布設年度,配水区,既往破損,予測破損件数,破損確率,LoF,CoF,リスク,根拠\r\n",
        Lang::En => "rank,asset_id,material,material_name,diameter_mm,length_m,install_year,district,prior_breaks,expected_breaks,probability,lof_grade,cof_grade,risk_grade,explanation\r\n",
    });
    for r in &result.rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.6},{:.6},{},{},{},{}\r\n",
            r.rank,
            r.asset_id,
            csv_field(&r.material),
            csv_field(&r.material_ja),
            r.diameter_mm.map(|d| d.to_string()).unwrap_or_default(),
            r.length_m,
            r.install_year.map(|y| y.to_string()).unwrap_or_default(),
            csv_field(r.district.as_deref().unwrap_or("")),
            r.prior_breaks,
            r.expected_breaks,
            r.probability,
            r.lof_grade,
            r.cof_grade,
            r.risk_grade,
            csv_field(&r.explanation),
        );
    }
    let filename = format!("risk_{}.csv", run.as_of);
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).expect("a date is ASCII"),
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> TableParams {
        let q: String = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        serde_urlencoded::from_str(&q).unwrap()
    }

    fn choices() -> Choices {
        Choices { materials: vec!["CI".into(), "DI-K".into()], districts: vec!["Z1".into()] }
    }

    #[track_caller]
    fn refused(pairs: &[(&str, &str)], needle: &str) {
        match params(pairs).check(&choices(), Lang::En) {
            Err(AppError::BadRequest(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn table_parameters_are_checked() {
        let t = params(&[
            ("material", "DI-K"),
            ("dmin", "100"),
            ("grade", "high"),
            ("sort", "probability"),
            ("dir", "desc"),
            ("page", "3"),
        ])
        .check(&choices(), Lang::En)
        .unwrap();
        assert_eq!(t.page, 3);
        assert_eq!(t.query.offset, 2 * PAGE_SIZE);
        assert_eq!(t.query.sort, RiskSort::Probability);
        assert!(t.query.descending);
        assert_eq!(t.query.filter.material.as_deref(), Some("DI-K"));
        assert_eq!(t.query.filter.risk_grade, Some(RiskLevel::High));
        // Empty form fields mean "any".
        let t = params(&[("material", ""), ("dmin", ""), ("grade", "")]).check(&Choices::default(), Lang::En).unwrap();
        assert_eq!(t.query.filter, RiskFilter::default());

        refused(&[("page", "-1")], "page=");
        refused(&[("page", "0")], "page=");
        refused(&[("page", "x")], "page=");
        refused(&[("sort", "rank;DROP TABLE risk_pipe")], "sort by one of");
        refused(&[("dir", "sideways")], "asc or desc");
        refused(&[("grade", "severe")], "negligible");
        refused(&[("material", "CI' OR '1'='1")], "not a material");
        refused(&[("dmin", "-5")], "diameter");
        refused(&[("dmax", "NaN")], "diameter");
        refused(&[("dmin", "300"), ("dmax", "100")], "above");
        refused(&[("district", "Z9")], "not a district");
        refused(&[("lof", "6")], "lof=");
        refused(&[("cof", "0")], "cof=");
        let t = params(&[("district", "Z1"), ("lof", "5"), ("cof", "2")]).check(&choices(), Lang::En).unwrap();
        assert_eq!((t.query.filter.lof_grade, t.query.filter.cof_grade), (Some(5), Some(2)));
        assert_eq!(t.query.filter.district.as_deref(), Some("Z1"));
    }

    #[test]
    fn matrix_labels_every_cell() {
        let cells = [MatrixCell { lof_grade: 5, cof_grade: 4, risk_grade: RiskLevel::Extreme, mains: 12, km: 3.25 }];
        let svg = matrix_svg(&cells, Lang::En, 360);
        assert!(svg.contains("width=\"360\""));
        // plotters writes each text on a line of its own.
        assert!(svg.contains("\n12 mains\n") && svg.contains("\n3.2 km\n"), "{svg}");
        assert_eq!(svg.matches(" mains\n</text>").count(), 25, "every cell has its count, zero included");
    }
}
