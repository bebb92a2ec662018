//! `GET /plan`: the renewal plan for planners — two yearly budgets side by side over the
//! newest stored ranking (`analytics::plan`), with charts of km renewed, breaks avoided and
//! network age by fiscal year (年度); `GET /api/plan` the same as JSON; `GET /plan/export`
//! the schedules as CSV (UTF-8 BOM), XLSX or GeoJSON, or the whole plan as an A4 PDF report
//! (laid out by Typst in `pdf`, with the page's charts as vectors).
//!
//! The plan is computed per request from the stored ranking (a few milliseconds for a city's
//! mains), so a what-if needs no saved state. Everyone may view the default plan; changing its
//! inputs is the planner's and admin's (`Permission::EditPlan`), exporting needs `Export`.
//! The defaults are the national renewal rate (0.7 % of the network a year, the figure the
//! issue quotes) against 1.0 %, over ten years from the next fiscal year.

use std::fmt::Write;

use analytics::plan::{Budget, Deadline, Plan, PlanParams, PlanPipe, Scheduled, plan};
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, Uri};
use axum::response::{Html, IntoResponse, Json, Response};
use chrono::Datelike;
use plotters::prelude::*;
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::Deserialize;
use serde_json::json;
use store::risk::{RiskQuery, RiskRun};

use crate::auth::{CurrentUser, Permission};
use crate::html::{Frame, escape, page};
use crate::i18n::Lang;
use crate::{AppError, AppState};

/// The inputs, as they come in a query string; checked into [`Inputs`] or a 400.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PlanQuery {
    budget: Option<String>,
    compare: Option<String>,
    years: Option<String>,
    deadline: Option<String>,
    format: Option<String>,
    /// `GET /plan/chart.svg`: which chart (`km`, `breaks` or `age`) and its width in CSS px.
    chart: Option<String>,
    w: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Inputs {
    budgets: [Budget; 2],
    years: u32,
    deadline: Option<Deadline>,
    first_fiscal_year: i32,
    /// Whether any input differs from the defaults (changing the plan needs `EditPlan`).
    changed: bool,
}

fn t(lang: Lang, en: &'static str, ja: &'static str) -> &'static str {
    if lang == Lang::Ja { ja } else { en }
}

/// The fiscal year after today's in JST (年度 starts in April).
fn next_fiscal_year() -> i32 {
    let today = chrono::Utc::now().with_timezone(&crate::chart::jst()).date_naive();
    if today.month() >= 4 { today.year() + 1 } else { today.year() }
}

impl PlanQuery {
    fn check(&self, total_km: f64, lang: Lang) -> Result<Inputs, AppError> {
        let bad = |en: String, ja: String| AppError::BadRequest(if lang == Lang::Ja { ja } else { en });
        let km = |share: f64| Budget::Km(((total_km * share) * 10.0).round().max(1.0) / 10.0);
        let defaults = [km(0.007), km(0.01)];
        let budget = |s: &Option<String>, name: &str, default: Budget| match s.as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some(text) => Budget::parse(text).map_err(|e| bad(format!("{name}: {e}"), format!("{name}: {e}"))),
        };
        let budgets = [budget(&self.budget, "budget", defaults[0])?, budget(&self.compare, "compare", defaults[1])?];
        let years = match self.years.as_deref().map(str::trim) {
            None | Some("") => 10,
            Some(y) => match y.parse::<u32>() {
                Ok(n) if (1..=50).contains(&n) => n,
                _ => {
                    return Err(bad(
                        format!("years: {y:?} is not a number of years from 1 to 50"),
                        format!("years: {y:?} は 1〜50 の年数ではありません"),
                    ));
                }
            },
        };
        let deadline = match self.deadline.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(Deadline::parse(d).map_err(|e| bad(format!("deadline: {e}"), format!("deadline: {e}")))?),
        };
        let first_fiscal_year = next_fiscal_year();
        // A deadline already past cannot be planned for; it would not be refused further down.
        if let Some(d) = deadline.as_ref().filter(|d| d.by_fiscal_year < first_fiscal_year) {
            let y = d.by_fiscal_year;
            return Err(bad(
                format!("deadline: FY{y} is before the plan's first fiscal year, FY{first_fiscal_year}"),
                format!("deadline: {y}年度は計画の初年度（{first_fiscal_year}年度）より前です"),
            ));
        }
        let changed = budgets != defaults || years != 10 || deadline.is_some();
        Ok(Inputs { budgets, years, deadline, first_fiscal_year, changed })
    }
}

/// The newest run and its mains as the planner sees them.
async fn pipes(state: &AppState) -> Result<(RiskRun, Vec<PlanPipe>), AppError> {
    let run = state
        .caches
        .latest_run(&state.risk)
        .await?
        .ok_or_else(|| AppError::NotFound("risk ranking: none stored yet".into()))?;
    // A city register has tens of thousands of mains at most; a million is a safe cap.
    let query = RiskQuery { limit: 1_000_000, ..Default::default() };
    let rows = state.risk.rows(run.id, &query).await?.rows;
    Ok((run, rows.iter().map(PlanPipe::from_risk_row).collect()))
}

/// Both plans, computed on the blocking pool (sorting every main every year).
async fn plans(pipes: Vec<PlanPipe>, inputs: &Inputs) -> Result<(Vec<PlanPipe>, Vec<Plan>), AppError> {
    let params: Vec<PlanParams> = inputs
        .budgets
        .iter()
        .map(|b| PlanParams {
            deadlines: inputs.deadline.iter().cloned().collect(),
            ..PlanParams::new(*b, inputs.years, inputs.first_fiscal_year)
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        let plans = params.iter().map(|p| plan(&pipes, p)).collect::<Result<Vec<_>, _>>();
        (pipes, plans)
    })
    .await
    .map_err(|e| AppError::Internal(format!("plan task: {e}")))
    .and_then(|(pipes, plans)| Ok((pipes, plans.map_err(|e| AppError::BadRequest(e.to_string()))?)))
}

async fn prepare(
    state: &AppState,
    query: &PlanQuery,
    user: &CurrentUser,
    lang: Lang,
) -> Result<(RiskRun, Inputs, Vec<PlanPipe>, Vec<Plan>), AppError> {
    let (run, pipes) = pipes(state).await?;
    let total_km = pipes.iter().map(|p| p.length_m).sum::<f64>() / 1000.0;
    let inputs = query.check(total_km, lang)?;
    if inputs.changed && !user.can(Permission::EditPlan) {
        return Err(AppError::Forbidden(
            t(
                lang,
                "changing the plan's inputs is for planners and admins",
                "計画条件の変更は計画担当と管理者のみです",
            )
            .into(),
        ));
    }
    let (pipes, plans) = plans(pipes, &inputs).await?;
    Ok((run, inputs, pipes, plans))
}

fn budget_label(lang: Lang, b: Budget) -> String {
    match b {
        Budget::Km(km) => format!("{km} km/{}", t(lang, "yr", "年")),
        Budget::Yen(y) if lang == Lang::Ja => format!("{:.2}億円/年", y / 1e8),
        Budget::Yen(y) => format!("¥{:.0}M/yr", y / 1e6),
    }
}

fn budget_input(b: Budget) -> String {
    match b {
        Budget::Km(km) => format!("{km}km"),
        Budget::Yen(y) => format!("{y:.0}"),
    }
}

/// `GET /plan`.
pub(crate) async fn plan_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let Query(query) = query?;
    let here = uri.path_and_query().map_or("/plan", |p| p.as_str());
    let title = t(lang, "Renewal plan", "更新計画");
    let (run, inputs, pipes, plans) = match prepare(&state, &query, &user, lang).await {
        Err(AppError::NotFound(_)) => {
            let body = format!(
                "<h2>{title}</h2><p>{}</p>",
                t(
                    lang,
                    "No ranking is stored yet: the plan is made from one.",
                    "リスク評価がまだありません。計画はその結果から作ります。"
                )
            );
            return Ok(Html(page(&Frame { lang, title, user: Some(&user), here, refresh_s: None }, &body)));
        }
        other => other?,
    };
    let mut body = format!(
        "<h2>{title}</h2><p class=\"meta\">{} {} · {} {} · {:.1} km</p>",
        t(lang, "Ranking as of", "評価基準日"),
        run.as_of,
        t(lang, "mains", "管路数"),
        pipes.len(),
        plans[0].total_km
    );
    if user.can(Permission::EditPlan) {
        let _ = write!(
            body,
            "<form method=\"get\" action=\"/plan\" class=\"plan-inputs\">\
             <label for=\"budget\">{a}</label><input id=\"budget\" name=\"budget\" value=\"{b0}\" inputmode=\"text\">\
             <label for=\"compare\">{c}</label><input id=\"compare\" name=\"compare\" value=\"{b1}\">\
             <label for=\"years\">{y}</label><input id=\"years\" name=\"years\" type=\"number\" min=\"1\" max=\"50\" value=\"{years}\">\
             <label for=\"deadline\">{d}</label><input id=\"deadline\" name=\"deadline\" placeholder=\"CI:2035\" value=\"{dl}\">\
             <p class=\"meta\">{hint}</p><button type=\"submit\" class=\"button\">{go}</button></form>",
            a = t(
                lang,
                "Budget A (yen a year, e.g. 8億 or 800000000, or km, e.g. 5km)",
                "予算A（年額：8億・800000000 など、または延長：5km）"
            ),
            c = t(lang, "Budget B (to compare)", "予算B（比較）"),
            y = t(lang, "Years", "年数"),
            d = t(
                lang,
                "Policy: a material out by a fiscal year (e.g. CI:2035)",
                "方針：管種の更新完了年度（例 CI:2035）"
            ),
            b0 = escape(&budget_input(inputs.budgets[0])),
            b1 = escape(&budget_input(inputs.budgets[1])),
            years = inputs.years,
            dl = escape(query.deadline.as_deref().unwrap_or("")),
            hint = t(
                lang,
                "Defaults: 0.7 % of the network a year (the national rate) against 1.0 %.",
                "既定値：年0.7 %（全国平均の更新率）と1.0 %の比較。"
            ),
            go = t(lang, "Plan", "計画する"),
        );
    }
    // Side by side: one column group per budget.
    let _ = write!(
        body,
        "<div class=\"scroll\"><table class=\"plan\"><caption>{cap}</caption><thead><tr><th scope=\"col\" rowspan=\"2\">{fy}</th>",
        cap = t(lang, "Two budgets by fiscal year", "年度別の2案比較"),
        fy = t(lang, "Fiscal year", "年度"),
    );
    for p in &plans {
        let _ =
            write!(body, "<th scope=\"colgroup\" colspan=\"4\">{}</th>", escape(&budget_label(lang, p.params.budget)));
    }
    body.push_str("</tr><tr>");
    for _ in &plans {
        let _ = write!(
            body,
            "<th scope=\"col\">km</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>",
            t(lang, "¥M", "百万円"),
            t(lang, "breaks avoided", "回避破損"),
            t(lang, "mean age", "平均経過年数"),
        );
    }
    body.push_str("</tr></thead><tbody>");
    for i in 0..plans[0].years.len() {
        let _ = write!(body, "<tr><th scope=\"row\">{}</th>", plans[0].years[i].fiscal_year);
        for p in &plans {
            let y = &p.years[i];
            let _ = write!(
                body,
                "<td class=\"num\">{:.2}</td><td class=\"num\">{:.0}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.1}</td>",
                y.km_renewed,
                y.cost_yen / 1e6,
                y.breaks_avoided(),
                y.mean_age_years
            );
        }
        body.push_str("</tr>");
    }
    let _ = write!(body, "<tr><th scope=\"row\">{}</th>", t(lang, "Total", "合計"));
    for p in &plans {
        let _ = write!(
            body,
            "<td class=\"num\">{:.2}</td><td class=\"num\">{:.0}</td><td class=\"num\">{:.2}</td><td></td>",
            p.km_renewed(),
            p.cost_yen() / 1e6,
            p.breaks_avoided()
        );
    }
    body.push_str("</tr></tbody></table></div>");
    for p in &plans {
        for (d, km) in &p.missed_deadlines {
            let _ = write!(
                body,
                "<p class=\"error\">{} {}: {km:.2} km {} {} FY{}</p>",
                escape(&budget_label(lang, p.params.budget)),
                d.material.code(),
                t(lang, "still in service after", "が期限後も残ります："),
                t(lang, "the deadline", "期限"),
                d.by_fiscal_year
            );
        }
    }
    // Drawn at the server's guess of the width; the resize script asks `/plan/chart.svg` for the
    // box's real width (a phone's 360 px), so labels keep their size instead of being shrunk.
    let width = crate::detail::chart_width(query.w.as_deref(), CHART_WIDTH, lang)?;
    let q = export_query(&query);
    for (code, label, f) in chart_specs(lang) {
        let _ = write!(
            body,
            "<h3>{label}</h3><figure data-chart=\"/plan/chart.svg?chart={code}{}\" data-w=\"{width}\" role=\"img\" \
             aria-label=\"{label}\"><div class=\"svgbox\">{}</div></figure>",
            escape(&q),
            series_svg(&plans, lang, f, width)
        );
    }
    if user.can(Permission::Export) {
        let _ = write!(
            body,
            "<p class=\"exports\">{}: <a class=\"button\" href=\"/plan/export?format=csv{q}\" download>CSV</a> \
             <a class=\"button\" href=\"/plan/export?format=xlsx{q}\" download>Excel</a> \
             <a class=\"button\" href=\"/plan/export?format=pdf{q}\" download>PDF</a> \
             <a class=\"button\" href=\"/plan/export?format=geojson{q}\" download>GeoJSON</a></p>",
            t(lang, "Download the schedules", "計画表のダウンロード")
        );
    }
    let _ = write!(
        body,
        "<p class=\"meta\">{}</p>",
        t(
            lang,
            "Each year takes policy deadlines first, then the mains with the most breaks avoided per yen (per km with a km budget); a year's budget is never exceeded. Unit costs are order-of-magnitude defaults (docs/analytics.md).",
            "各年度、方針の期限分を先に、次に費用あたり回避破損件数の大きい管路から選びます（延長予算ではkmあたり）。年度予算を超えることはありません。単価は概算の既定値です（docs/analytics.md）。"
        )
    );
    body.push_str(crate::detail::RESIZE_SCRIPT);
    Ok(Html(page(&Frame { lang, title, user: Some(&user), here, refresh_s: None }, &body)))
}

/// The width of the plan's charts when the request names none (a desktop column).
const CHART_WIDTH: u32 = 640;

/// `GET /plan/chart.svg?chart=km|breaks|age&w=…` with the page's inputs: one chart alone, at
/// the requested width.
pub(crate) async fn chart_svg(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let width = crate::detail::chart_width(query.w.as_deref(), CHART_WIDTH, lang)?;
    let code = query.chart.as_deref().unwrap_or("");
    let Some((_, _, f)) = chart_specs(lang).into_iter().find(|(c, _, _)| *c == code) else {
        return Err(AppError::BadRequest(
            t(lang, "chart: use km, breaks or age", "chart: km・breaks・age のいずれかを指定してください").into(),
        ));
    };
    let (_run, _inputs, _pipes, plans) = prepare(&state, &query, &user, lang).await?;
    let svg = series_svg(&plans, lang, f, width);
    Ok(([(CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}

/// One figure of a plan year, as a chart draws it.
type Metric = fn(&analytics::plan::YearSummary) -> f64;

/// The plan's three charts, on the page and in the PDF report.
fn chart_specs(lang: Lang) -> [(&'static str, &'static str, Metric); 3] {
    [
        ("km", t(lang, "km renewed per fiscal year", "年度別更新延長（km）"), |y| y.km_renewed),
        ("breaks", t(lang, "Breaks avoided per fiscal year", "年度別回避破損件数"), |y| y.breaks_avoided()),
        ("age", t(lang, "Mean network age (years)", "管路の平均経過年数（年）"), |y| y.mean_age_years),
    ]
}

/// The inputs of this plan as `&key=value` pairs for the export links.
fn export_query(q: &PlanQuery) -> String {
    let mut out = String::new();
    for (k, v) in [("budget", &q.budget), ("compare", &q.compare), ("years", &q.years), ("deadline", &q.deadline)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            let _ = write!(out, "&{k}={}", urlencode(v));
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// One line (or bar series) per plan over the fiscal years; text left to the browser's fonts.
fn series_svg(plans: &[Plan], lang: Lang, f: Metric, width: u32) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_series(&mut svg, plans, lang, f, width) {
        tracing::warn!(error = %e, "plan chart could not be drawn");
        svg.clear();
    }
    svg
}

fn draw_series(
    svg: &mut String,
    plans: &[Plan],
    lang: Lang,
    f: Metric,
    width: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let years: Vec<i32> = plans[0].years.iter().map(|y| y.fiscal_year).collect();
    let (first, last) = (years[0], *years.last().unwrap_or(&years[0]));
    let values: Vec<f64> = plans.iter().flat_map(|p| p.years.iter().map(f)).filter(|v| v.is_finite()).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max).max(lo + 1e-9) * 1.1;
    let root = SVGBackend::with_string(svg, (width, 240)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(first as f64 - 0.5..last as f64 + 0.5, lo..hi)?;
    chart.configure_mesh().x_labels(years.len().min(12)).x_label_formatter(&|x| format!("{x:.0}")).draw()?;
    let colours = [RGBColor(31, 95, 168), RGBColor(214, 120, 30)];
    let markers = ["●", "■"];
    for (k, p) in plans.iter().enumerate() {
        let colour = colours[k % 2];
        let points: Vec<(f64, f64)> =
            p.years.iter().map(|y| (f64::from(y.fiscal_year), f(y))).filter(|(_, v)| v.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(format!("{} {}", markers[k % 2], budget_label(lang, p.params.budget)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
        // Markers of different shapes, so the two budgets differ in more than colour.
        if k % 2 == 0 {
            chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, colour.filled())))?;
        } else {
            chart.draw_series(
                points.iter().map(|&(x, y)| Rectangle::new([(x - 0.12, y), (x + 0.12, y)], colour.stroke_width(8))),
            )?;
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// `GET /api/plan`: both plans' yearly figures.
pub(crate) async fn plan_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Query(query) = query?;
    let (run, inputs, _pipes, plans) = prepare(&state, &query, &user, lang).await?;
    let scenarios: Vec<serde_json::Value> = plans
        .iter()
        .map(|p| {
            json!({
                "budget": p.params.budget.to_string(),
                "km_renewed": p.km_renewed(), "cost_yen": p.cost_yen(), "breaks_avoided": p.breaks_avoided(),
                "years": p.years.iter().map(|y| json!({
                    "fiscal_year": y.fiscal_year, "mains": y.mains, "km_renewed": y.km_renewed,
                    "cost_yen": y.cost_yen, "breaks_without": y.breaks_without, "breaks_with": y.breaks_with,
                    "breaks_avoided": y.breaks_avoided(),
                    "mean_age_years": if y.mean_age_years.is_finite() { json!(y.mean_age_years) } else { json!(null) },
                    "km_past_legal_life": y.km_past_legal_life,
                    "deadline_shortfall_km": y.deadline_shortfall_km,
                })).collect::<Vec<_>>(),
                "missed_deadlines": p.missed_deadlines.iter().map(|(d, km)| json!({
                    "material": d.material.code(), "by_fiscal_year": d.by_fiscal_year, "km_left": km,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "as_of": run.as_of, "first_fiscal_year": inputs.first_fiscal_year, "years": inputs.years,
        "total_km": plans[0].total_km, "scenarios": scenarios,
    })))
}

/// The schedule's column names; the English ones are those `mizumori plan` writes too.
fn schedule_head(lang: Lang) -> [&'static str; 10] {
    if lang == Lang::Ja {
        return [
            "予算案",
            "年度",
            "管路ID",
            "管種",
            "口径(mm)",
            "延長(m)",
            "布設年度",
            "配水区",
            "概算費用(円)",
            "選定理由",
        ];
    }
    let [fiscal_year, id, material, diameter, length, installed, district, cost] = Scheduled::CELL_NAMES;
    ["budget", fiscal_year, id, material, diameter, length, installed, district, cost, "reason"]
}

fn reason_label(lang: Lang, r: analytics::plan::Reason) -> &'static str {
    use analytics::plan::Reason::*;
    match r {
        Deadline => t(lang, "policy deadline", "方針の期限"),
        StandardYears => t(lang, "past renewal-standard years", "更新基準年数超過"),
        Risk => t(lang, "breaks avoided per cost", "費用対効果"),
    }
}

fn schedule_rows(lang: Lang, pipes: &[PlanPipe], plans: &[Plan]) -> Vec<[String; 10]> {
    let mut rows = Vec::new();
    for p in plans {
        let b = budget_label(lang, p.params.budget);
        for s in &p.schedule {
            let [fiscal_year, id, material, diameter, length, installed, district, cost] = s.cells(pipes);
            let reason = reason_label(lang, s.reason).to_owned();
            rows.push([b.clone(), fiscal_year, id, material, diameter, length, installed, district, cost, reason]);
        }
    }
    rows
}

fn csv_text(lang: Lang, pipes: &[PlanPipe], plans: &[Plan]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let headers = schedule_head(lang);
    let io = |e: csv::Error| AppError::Internal(format!("plan CSV: {e}"));
    w.write_record(headers).map_err(io)?;
    for r in schedule_rows(lang, pipes, plans) {
        w.write_record(&r).map_err(io)?;
    }
    w.into_inner().map_err(|e| AppError::Internal(format!("plan CSV: {e}")))
}

fn xlsx(lang: Lang, pipes: &[PlanPipe], plans: &[Plan]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let summary = wb.add_worksheet();
    summary.set_name(t(lang, "summary", "年度別集計"))?;
    let heads = if lang == Lang::Ja {
        ["予算案", "年度", "更新延長(km)", "費用(円)", "回避破損件数", "平均経過年数", "法定耐用年数超過(km)"]
    } else {
        ["budget", "fiscal_year", "km_renewed", "cost_yen", "breaks_avoided", "mean_age_years", "km_past_legal_life"]
    };
    for (c, h) in heads.iter().enumerate() {
        summary.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    let mut row = 1u32;
    for p in plans {
        for y in &p.years {
            summary.write_string(row, 0, budget_label(lang, p.params.budget))?;
            summary.write_number(row, 1, f64::from(y.fiscal_year))?;
            summary.write_number(row, 2, y.km_renewed)?;
            summary.write_number(row, 3, y.cost_yen.round())?;
            summary.write_number(row, 4, y.breaks_avoided())?;
            if y.mean_age_years.is_finite() {
                summary.write_number(row, 5, y.mean_age_years)?;
            }
            summary.write_number(row, 6, y.km_past_legal_life)?;
            row += 1;
        }
    }
    summary.set_freeze_panes(1, 0)?;
    let ws = wb.add_worksheet();
    ws.set_name(t(lang, "schedule", "更新計画表"))?;
    let headers = schedule_head(lang);
    for (c, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    let rows = schedule_rows(lang, pipes, plans);
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        for (c, v) in r.iter().enumerate() {
            // Numbers as numbers, so Excel sums them; text stays text.
            match (c, v.parse::<f64>()) {
                (1 | 4 | 5 | 6 | 8, Ok(n)) => ws.write_number(row, c as u16, n)?,
                _ => ws.write_string(row, c as u16, v)?,
            };
        }
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, rows.len() as u32, headers.len() as u16 - 1)?;
    wb.save_to_buffer()
}

fn geojson(lang: Lang, run: &RiskRun, pipes: &[PlanPipe], plans: &[Plan]) -> String {
    let mut features = Vec::new();
    for p in plans {
        for s in &p.schedule {
            let pipe = &pipes[s.pipe];
            let geometry = match (pipe.x, pipe.y) {
                (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => {
                    json!({"type": "Point", "coordinates": [x, y]})
                }
                _ => serde_json::Value::Null,
            };
            features.push(json!({"type": "Feature", "geometry": geometry, "properties": {
                "asset_id": pipe.asset_id, "budget": budget_label(lang, p.params.budget),
                "fiscal_year": s.fiscal_year, "material": pipe.material.code(),
                "diameter_mm": pipe.diameter_mm, "length_m": pipe.length_m, "install_year": pipe.install_year,
                "cost_yen": s.cost_yen.round(), "reason": s.reason.code(),
            }}));
        }
    }
    json!({"type": "FeatureCollection", "name": format!("mizumori renewal plan (ranking as of {})", run.as_of),
           "features": features})
    .to_string()
}

/// `GET /plan/export?format=csv|xlsx|pdf|geojson` with the page's inputs.
pub(crate) async fn plan_export(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let format = query.format.clone().unwrap_or_else(|| "csv".into());
    if !matches!(format.as_str(), "csv" | "xlsx" | "geojson" | "pdf") {
        // The value is not echoed: an error page is no place for request text.
        return Err(AppError::BadRequest(
            t(
                lang,
                "format: use csv, xlsx, pdf or geojson",
                "format: csv・xlsx・pdf・geojson のいずれかを指定してください",
            )
            .into(),
        ));
    }
    let (run, inputs, pipes, plans) = prepare(&state, &query, &user, lang).await?;
    let name = format!("mizumori-plan-{}", run.as_of);
    let (body, content_type, ext) = match format.as_str() {
        "pdf" => (
            pdf_report(&state, lang, &run, &inputs, query.deadline.as_deref(), &pipes, &plans).await?,
            "application/pdf",
            "pdf",
        ),
        "xlsx" => (
            xlsx(lang, &pipes, &plans).map_err(|e| AppError::Internal(format!("plan xlsx: {e}")))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        "geojson" => (geojson(lang, &run, &pipes, &plans).into_bytes(), "application/geo+json", "geojson"),
        _ => (csv_text(lang, &pipes, &plans)?, "text/csv; charset=utf-8", "csv"),
    };
    let mut resp = body.into_response();
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        resp.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The fiscal year as a report names it: 2027年度 or FY2027.
#[cfg(feature = "pdf")]
fn fiscal_year_label(lang: Lang, fy: i32) -> String {
    if lang == Lang::Ja { format!("{fy}年度") } else { format!("FY{fy}") }
}

/// The PDF report: the same plans as the page, laid out on the blocking pool.
async fn pdf_report(
    state: &AppState,
    lang: Lang,
    run: &RiskRun,
    inputs: &Inputs,
    deadline: Option<&str>,
    pipes: &[PlanPipe],
    plans: &[Plan],
) -> Result<Vec<u8>, AppError> {
    if !cfg!(feature = "pdf") {
        return Err(AppError::Unavailable(
            t(
                lang,
                "PDF reports are unavailable: this server was built without them (cargo feature pdf). CSV and Excel exports still work.",
                "PDF帳票は利用できません：このサーバーはPDF機能なしでビルドされています（cargo feature pdf）。CSV・Excel は利用できます。",
            )
            .into(),
        ));
    }
    // Say so before the layout work when there is no font (503 in the user's language).
    if !state.reports.status().available {
        return Err(no_font(lang));
    }
    #[cfg(feature = "pdf")]
    let dict = report_inputs(lang, state.reports.utility(), run, inputs, deadline, pipes, plans);
    #[cfg(not(feature = "pdf"))]
    let dict = {
        let _ = (run, inputs, deadline, pipes, plans);
    };
    let reports = state.reports.clone();
    match tokio::task::spawn_blocking(move || reports.plan_pdf(dict)).await {
        Ok(Ok(pdf)) => Ok(pdf),
        Ok(Err(crate::pdf::ReportError::NoFont(_))) => Err(no_font(lang)),
        Ok(Err(e)) => Err(AppError::Internal(e.to_string())),
        Err(e) => Err(AppError::Internal(format!("PDF task: {e}"))),
    }
}

fn no_font(lang: Lang) -> AppError {
    AppError::Unavailable(
        t(
            lang,
            "PDF reports are unavailable: the server has no Japanese font (install fonts-ipaexfont-gothic or set MIZUMORI_PDF_FONT). CSV and Excel exports still work.",
            "PDF帳票は利用できません：サーバーに日本語フォントがありません（fonts-ipaexfont-gothic を導入するか MIZUMORI_PDF_FONT を設定してください）。CSV・Excel は利用できます。",
        )
        .into(),
    )
}

/// Everything the report template shows, as Typst values; the template only lays them out.
#[cfg(feature = "pdf")]
fn report_inputs(
    lang: Lang,
    utility: &str,
    run: &RiskRun,
    inputs: &Inputs,
    deadline: Option<&str>,
    pipes: &[PlanPipe],
    plans: &[Plan],
) -> typst::foundations::Dict {
    use typst::foundations::{Bytes, Dict, IntoValue, Value};
    let mut d = Dict::new();
    let mut put = |k: &str, v: Value| {
        d.insert(k.into(), v);
    };
    let strs = |v: Vec<String>| v.into_value();
    let text = |s: &str| Value::Str(s.into());
    let today = chrono::Utc::now().with_timezone(&crate::chart::jst()).format("%Y/%m/%d").to_string();
    let last_fy = inputs.first_fiscal_year + inputs.years as i32 - 1;
    put("lang", text(if lang == Lang::Ja { "ja" } else { "en" }));
    put("title", text(t(lang, "Pipe renewal plan report", "管路更新計画書")));
    put("utility", text(utility));
    let total_km = plans.first().map_or(0.0, |p| p.total_km);
    put(
        "meta",
        vec![
            vec![t(lang, "Utility", "事業体").to_owned(), utility.to_owned()],
            vec![t(lang, "Issued", "作成日").to_owned(), today],
            vec![t(lang, "Ranking as of", "リスク評価基準日").to_owned(), run.as_of.to_string()],
            vec![t(lang, "Mains", "対象管路").to_owned(), format!("{} ({total_km:.1} km)", pipes.len())],
        ]
        .into_value(),
    );
    put("inputs_heading", text(t(lang, "Inputs", "計画条件")));
    put("inputs_head", strs(vec![t(lang, "Input", "項目").into(), t(lang, "Value", "値").into()]));
    put(
        "inputs",
        vec![
            vec![t(lang, "Budget A", "予算A").to_owned(), budget_label(lang, inputs.budgets[0])],
            vec![t(lang, "Budget B", "予算B").to_owned(), budget_label(lang, inputs.budgets[1])],
            vec![
                t(lang, "Years", "計画期間").to_owned(),
                format!(
                    "{} – {} ({} {})",
                    fiscal_year_label(lang, inputs.first_fiscal_year),
                    fiscal_year_label(lang, last_fy),
                    inputs.years,
                    t(lang, "years", "年間")
                ),
            ],
            vec![
                t(lang, "Policy deadline", "方針（管種の更新完了年度）").to_owned(),
                deadline.filter(|d| !d.trim().is_empty()).unwrap_or(t(lang, "none", "なし")).to_owned(),
            ],
        ]
        .into_value(),
    );
    put("summary_heading", text(t(lang, "Summary by fiscal year", "年度別集計")));
    put(
        "summary_head",
        strs(vec![
            t(lang, "Fiscal year", "年度").into(),
            t(lang, "km renewed", "更新延長(km)").into(),
            t(lang, "Cost (¥M)", "費用(百万円)").into(),
            t(lang, "Breaks avoided", "回避破損件数").into(),
            t(lang, "Mean age (years)", "平均経過年数(年)").into(),
        ]),
    );
    let scenarios: Vec<Value> = plans
        .iter()
        .zip(["A", "B"])
        .map(|(p, letter)| {
            let mut s = Dict::new();
            let name = format!("{} {letter}: {}", t(lang, "Budget", "予算"), budget_label(lang, p.params.budget));
            s.insert("name".into(), name.into_value());
            let totals = format!(
                "{} {:.2} km · {} {:.0} {} · {} {:.2}",
                t(lang, "Total", "合計"),
                p.km_renewed(),
                t(lang, "cost", "費用"),
                p.cost_yen() / 1e6,
                t(lang, "¥M", "百万円"),
                t(lang, "breaks avoided", "回避破損件数"),
                p.breaks_avoided()
            );
            s.insert("totals".into(), totals.into_value());
            let rows: Vec<Vec<String>> = p
                .years
                .iter()
                .map(|y| {
                    vec![
                        fiscal_year_label(lang, y.fiscal_year),
                        format!("{:.2}", y.km_renewed),
                        format!("{:.0}", y.cost_yen / 1e6),
                        format!("{:.2}", y.breaks_avoided()),
                        if y.mean_age_years.is_finite() { format!("{:.1}", y.mean_age_years) } else { "–".into() },
                    ]
                })
                .collect();
            s.insert("rows".into(), rows.into_value());
            Value::Dict(s)
        })
        .collect();
    put("scenarios", scenarios.into_value());
    let charts: Vec<Value> = chart_specs(lang)
        .into_iter()
        .map(|(_, title, f)| {
            let mut c = Dict::new();
            c.insert("title".into(), text(title));
            c.insert("svg".into(), Bytes::from_string(series_svg(plans, lang, f, 640)).into_value());
            Value::Dict(c)
        })
        .collect();
    put("charts", charts.into_value());
    put("schedule_heading", text(t(lang, "Renewal schedule", "更新計画表")));
    put(
        "schedule_note",
        text(t(
            lang,
            "Each year takes policy deadlines first, then the mains with the most breaks avoided per yen; a year's budget is never exceeded. Unit costs are order-of-magnitude defaults.",
            "各年度、方針の期限分を先に、次に費用あたり回避破損件数の大きい管路から選びます。年度予算を超えることはありません。単価は概算の既定値です。",
        )),
    );
    let head = schedule_head(lang);
    put("schedule_head", strs(head.iter().map(|h| (*h).to_owned()).collect()));
    let rows: Vec<Vec<String>> = schedule_rows(lang, pipes, plans)
        .into_iter()
        .map(|mut r| {
            r[1] = r[1].parse().map_or_else(|_| r[1].clone(), |fy| fiscal_year_label(lang, fy));
            r.to_vec()
        })
        .collect();
    put("schedule", rows.into_value());
    d
}
