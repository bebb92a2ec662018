//! The route-by-route acceptance audit of issue #7: one table holds every route of
//! `src/routes.rs` with the permission it needs and an example request, and each test walks the
//! whole table: logged out, every role, CSRF on every unsafe request, garbage in every query
//! parameter and path segment (injection text included), and the stores unchanged afterwards.
//! A test reads `src/routes.rs` itself, so a route added there without a row here fails.

mod util;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use dashboard::AppState;
use model::{DeviceId, PointName};
use store::alerts::AlertQuery;
use store::risk::RiskQuery;
use store::{RangeQuery, Role};
use util::{Session, get, login, post_form, state_with_readings};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// No login: the health check, the login form and open data.
    Public,
    /// Any logged-in role.
    View,
    /// Crew, engineer, admin.
    Act,
    /// Engineer, planner, admin.
    Export,
    /// Admin only.
    Admin,
}

impl Need {
    fn allows(self, role: Role) -> bool {
        match self {
            Need::Public | Need::View => true,
            Need::Act => matches!(role, Role::Crew | Role::Engineer | Role::Admin),
            Need::Export => matches!(role, Role::Engineer | Role::Planner | Role::Admin),
            Need::Admin => role == Role::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// One route: its pattern as written in `src/routes.rs`, an example request that succeeds for
/// an allowed role, and the query parameters it reads (each gets garbage in `bad_query_values`).
struct Route {
    method: Method,
    pattern: &'static str,
    example: &'static str,
    need: Need,
    params: &'static [&'static str],
}

const RANGE: &[&str] = &["range", "from", "to", "w"];
const RISK: &[&str] = &["material", "dmin", "dmax", "grade", "district", "lof", "cof", "sort", "dir", "page"];
const PLAN: &[&str] = &["budget", "compare", "years", "deadline", "w"];
const ALERTS: &[&str] = &["state", "severity", "asset"];
const SEWER: &[&str] = &["grade", "material", "district", "sort", "dir", "page"];

const fn get_route(pattern: &'static str, example: &'static str, need: Need, params: &'static [&'static str]) -> Route {
    Route { method: Method::Get, pattern, example, need, params }
}

const fn post_route(pattern: &'static str, example: &'static str, need: Need) -> Route {
    Route { method: Method::Post, pattern, example, need, params: &[] }
}

/// Every route of the router. The open-data files answer 404 until an admin publishes them,
/// and the map 404 while the run has no coordinates: both count as "served" below.
const ROUTES: &[Route] = &[
    get_route("/api/health", "/api/health", Need::Public, &[]),
    get_route("/login", "/login", Need::Public, &[]),
    post_route("/login", "/login", Need::Public),
    get_route("/open-data", "/open-data", Need::Public, &[]),
    get_route("/open-data/pipes.csv", "/open-data/pipes.csv", Need::Public, &[]),
    get_route("/open-data/pipes.geojson", "/open-data/pipes.geojson", Need::Public, &[]),
    get_route("/", "/", Need::View, &[]),
    get_route("/districts/inflow.svg", "/districts/inflow.svg?w=400", Need::View, &["w"]),
    get_route("/alerts", "/alerts", Need::View, ALERTS),
    get_route("/alerts/{id}", "/alerts/1", Need::View, &[]),
    get_route("/alerts/asset/{asset}", "/alerts/asset/PS-01", Need::View, ALERTS),
    get_route("/api/alerts", "/api/alerts", Need::View, ALERTS),
    get_route("/api/alerts/{id}", "/api/alerts/1", Need::View, &[]),
    get_route("/risk", "/risk", Need::View, RISK),
    get_route("/risk/map.svg", "/risk/map.svg", Need::View, &["w"]),
    get_route("/risk/{asset_id}", "/risk/P-001", Need::View, &[]),
    get_route("/model", "/model", Need::View, &[]),
    get_route("/sewer", "/sewer", Need::View, SEWER),
    get_route("/sewer/curve.svg", "/sewer/curve.svg?w=400", Need::View, &["w"]),
    get_route("/api/sewer", "/api/sewer", Need::View, SEWER),
    get_route("/plan", "/plan", Need::View, PLAN),
    get_route("/plan/chart.svg", "/plan/chart.svg?chart=km", Need::View, &["chart", "w"]),
    get_route("/api/plan", "/api/plan", Need::View, PLAN),
    get_route("/api/risk", "/api/risk", Need::View, RISK),
    get_route("/api/risk/{asset_id}", "/api/risk/P-001", Need::View, &[]),
    get_route("/api/model", "/api/model", Need::View, &[]),
    post_route("/logout", "/logout", Need::View),
    get_route("/api/session", "/api/session", Need::View, &[]),
    get_route("/api/openapi.json", "/api/openapi.json", Need::View, &[]),
    get_route("/api/overview", "/api/overview", Need::View, &[]),
    get_route("/api/devices", "/api/devices", Need::View, &[]),
    get_route("/api/devices/{device}/{point}/windows", "/api/devices/fm01/flow/windows", Need::View, RANGE),
    get_route("/devices/{device}", "/devices/fm01", Need::View, RANGE),
    get_route("/devices/{device}/{point}", "/devices/fm01/flow", Need::View, RANGE),
    get_route("/devices/{device}/{point}/chart.svg", "/devices/fm01/flow/chart.svg", Need::View, RANGE),
    post_route("/alerts/{id}/{action}", "/alerts/2/ack", Need::Act),
    post_route("/api/alerts/{id}/{action}", "/api/alerts/2/ack", Need::Act),
    get_route("/devices/{device}/{point}/readings.csv", "/devices/fm01/flow/readings.csv", Need::Export, RANGE),
    get_route("/risk.csv", "/risk.csv", Need::Export, RISK),
    get_route("/risk/export", "/risk/export?format=xlsx", Need::Export, RISK),
    get_route("/plan/export", "/plan/export?format=csv", Need::Export, PLAN),
    get_route("/admin/open-data", "/admin/open-data", Need::Admin, &[]),
    post_route("/admin/open-data", "/admin/open-data", Need::Admin),
    get_route("/api/admin/open-data", "/api/admin/open-data", Need::Admin, &[]),
    post_route("/api/admin/open-data", "/api/admin/open-data", Need::Admin),
];

/// `(method, path)` of every `.route(..)` in `src/routes.rs`, read from the source: axum's
/// router cannot list its routes, and the source is where a new one is added.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/routes.rs");
    let mut out = BTreeSet::new();
    for line in src.lines().map(str::trim).filter(|l| l.starts_with(".route(\"")) {
        let path = line[8..].split('"').next().unwrap().to_owned();
        let handlers = &line[8 + path.len()..];
        for (m, call) in
            [("GET", "get("), ("POST", "post("), ("PUT", "put("), ("DELETE", "delete("), ("PATCH", "patch(")]
        {
            if handlers.contains(call) {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    assert!(out.len() > 30, "the parser found only {out:?}");
    out
}

fn table_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| ((if r.method == Method::Get { "GET" } else { "POST" }).to_owned(), r.pattern.to_owned()))
        .collect()
}

#[test]
fn the_table_lists_every_route_of_the_router() {
    let (router, table) = (router_routes(), table_routes());
    let missing: Vec<_> = router.difference(&table).collect();
    let stale: Vec<_> = table.difference(&router).collect();
    assert!(missing.is_empty(), "routes with no row in ROUTES (tests/audit.rs): {missing:?}");
    assert!(stale.is_empty(), "rows of routes the router no longer has: {stale:?}");
}

/// Every page with the `/api/` route that serves its data as JSON (issue #7: "JSON API under
/// /api/ for every page's data"). Charts, files and forms are views of these.
const PAGE_API: &[(&str, &str)] = &[
    ("/", "/api/overview"),
    ("/alerts", "/api/alerts"),
    ("/alerts/{id}", "/api/alerts/{id}"),
    ("/alerts/asset/{asset}", "/api/alerts"),
    ("/risk", "/api/risk"),
    ("/risk/{asset_id}", "/api/risk/{asset_id}"),
    ("/model", "/api/model"),
    ("/plan", "/api/plan"),
    ("/sewer", "/api/sewer"),
    ("/devices/{device}", "/api/devices"),
    ("/devices/{device}/{point}", "/api/devices/{device}/{point}/windows"),
    ("/admin/open-data", "/api/admin/open-data"),
];

/// Routes that are not pages with data of their own: the login form, the public open-data
/// index (its files are the data), and images and files drawn from an API's data.
const NOT_PAGES: &[&str] = &["/login", "/open-data"];

#[test]
fn every_page_has_its_json_twin_and_openapi_documents_every_api_route() {
    let router = router_routes();
    let spec = dashboard::openapi::spec();
    // The spec names each alert action's path; the router has one `{action}` route for them.
    let actions = ["ack", "resolve", "shelve"];
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let (head, last) = path.rsplit_once('/').unwrap();
            let path = if actions.contains(&last) { format!("{head}/{{action}}") } else { path.clone() };
            item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    for route in router.iter().filter(|(_, p)| p.starts_with("/api/")) {
        assert!(documented.contains(route), "{route:?} is routed but not in openapi.json");
    }
    let stale: Vec<_> = documented.difference(&router).collect();
    assert!(stale.is_empty(), "openapi.json documents routes the router does not have: {stale:?}");
    for a in actions {
        assert!(spec["paths"][format!("/api/alerts/{{id}}/{a}")]["post"].is_object(), "{a}");
    }
    // Every HTML page (a GET that is neither an API, an image, a file nor public) has a twin.
    for (method, path) in &router {
        let page = method == "GET"
            && !path.starts_with("/api/")
            && !path.starts_with("/open-data/")
            && !NOT_PAGES.contains(&path.as_str())
            && !path.rsplit('/').next().unwrap().contains('.')
            && path != "/risk/export"
            && path != "/plan/export";
        if page {
            let twin = PAGE_API.iter().find(|(p, _)| p == path).map(|(_, a)| a);
            let twin = twin.unwrap_or_else(|| panic!("page {path} has no /api/ twin in PAGE_API"));
            assert!(router.contains(&("GET".to_owned(), (*twin).to_owned())), "{path}: {twin} is not routed");
        }
    }
}

#[tokio::test]
async fn the_served_openapi_json_is_the_spec() {
    let (state, _dir) = state_with_readings().await;
    let viewer = login(&state, Role::Viewer).await;
    let r = viewer.get(&state, "/api/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let served: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(served, dashboard::openapi::spec());
}

/// What the stores hold, to compare before and after a barrage of bad requests.
async fn snapshot(state: &AppState) -> String {
    let now = Utc::now();
    let mut out = String::new();
    for (device, point) in [("fm01", "flow"), ("ps01", "discharge_pressure"), ("ps01", "fault_text")] {
        let q = RangeQuery {
            device: DeviceId::new(device).unwrap(),
            point: PointName::new(point).unwrap(),
            from: now - Duration::days(3),
            to: now + Duration::days(1),
            limit: 0,
        };
        let rs = state.store.range(&q).await.unwrap();
        out += &format!("{device}/{point}: {} readings, {:?}\n", rs.len(), rs.last().map(|r| &r.value));
    }
    out += &format!("latest: {}\n", state.store.latest().await.unwrap().len());
    let alerts = state.alerts.alerts(&AlertQuery::default()).await.unwrap();
    for a in &alerts {
        out += &format!("alert {} {:?} {:?} {:?}\n", a.id, a.state, a.acknowledged_by, a.shelved_until);
    }
    let run = state.risk.latest_run().await.unwrap().expect("a run");
    let rows = state.risk.rows(run.id, &RiskQuery { limit: 100_000, ..Default::default() }).await.unwrap();
    out += &format!("run {} as of {}: {} mains, first {}\n", run.id, run.as_of, rows.rows.len(), rows.rows[0].asset_id);
    out += &format!("open data: {:?}\n", state.settings.get("open_data").await.unwrap());
    out
}

/// The form or JSON body that an allowed role would send to a POST route (without the token).
fn post_body(r: &Route) -> (&'static str, &'static str) {
    match r.pattern {
        "/api/alerts/{id}/{action}" => ("application/json", r#"{"comment": "audit"}"#),
        "/api/admin/open-data" => ("application/json", r#"{"enabled": true, "licence": "CC BY 4.0"}"#),
        "/admin/open-data" => ("application/x-www-form-urlencoded", "enabled=on&licence=CC+BY+4.0"),
        "/alerts/{id}/{action}" => ("application/x-www-form-urlencoded", "comment=audit"),
        _ => ("application/x-www-form-urlencoded", ""),
    }
}

async fn post(
    state: &AppState,
    s: Option<&Session>,
    uri: &str,
    ctype: &str,
    body: &str,
    csrf: Option<&str>,
) -> util::Resp {
    let mut headers = vec![("content-type", ctype)];
    if let Some(s) = s {
        headers.push(("cookie", s.cookie.as_str()));
    }
    if let Some(t) = csrf {
        headers.push(("x-csrf-token", t));
    }
    let mut req = axum::http::Request::post(uri);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    util::send(state, req.body(axum::body::Body::from(body.to_owned())).unwrap()).await
}

/// A served answer: the handler ran (not the login or role check) and did not fail.
fn served(status: StatusCode) -> bool {
    status.is_success() || status.is_redirection() && status != StatusCode::SEE_OTHER || status == StatusCode::NOT_FOUND
}

#[tokio::test]
async fn logged_out_pages_go_to_login_the_api_says_401_and_posts_change_nothing() {
    let (state, _dir) = state_with_readings().await;
    let before = snapshot(&state).await;
    for r in ROUTES.iter().filter(|r| r.need != Need::Public) {
        match r.method {
            Method::Get => {
                let resp = get(&state, r.example).await;
                if r.example.starts_with("/api/") {
                    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", r.example);
                } else {
                    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", r.example);
                    let location = resp.header("location").unwrap();
                    assert!(location.starts_with("/login?next=/"), "{}: {location}", r.example);
                }
            }
            Method::Post => {
                let (ctype, body) = post_body(r);
                let resp = post(&state, None, r.example, ctype, body, None).await;
                assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "POST {}", r.example);
            }
        }
    }
    for r in ROUTES.iter().filter(|r| r.need == Need::Public && r.method == Method::Get) {
        assert!(served(get(&state, r.example).await.status), "{}", r.example);
    }
    assert_eq!(snapshot(&state).await, before);
}

#[tokio::test]
async fn every_role_gets_each_route_it_may_and_403_for_the_rest() {
    let (state, _dir) = state_with_readings().await;
    for role in Role::ALL {
        let s = login(&state, role).await;
        for r in ROUTES.iter().filter(|r| r.method == Method::Get) {
            let resp = s.get(&state, r.example).await;
            if r.need.allows(role) {
                assert!(served(resp.status), "{role} GET {}: {} {}", r.example, resp.status, resp.body);
            } else {
                assert_eq!(resp.status, StatusCode::FORBIDDEN, "{role} GET {}", r.example);
            }
        }
        // Unsafe requests with the right token: refused by role before anything changes.
        let csrf = s.csrf(&state).await;
        for r in ROUTES.iter().filter(|r| r.method == Method::Post && !r.need.allows(role)) {
            let before = snapshot(&state).await;
            let (ctype, body) = post_body(r);
            let resp = post(&state, Some(&s), r.example, ctype, body, Some(&csrf)).await;
            assert_eq!(resp.status, StatusCode::FORBIDDEN, "{role} POST {}: {}", r.example, resp.body);
            assert_eq!(snapshot(&state).await, before, "{role} POST {}", r.example);
        }
    }
}

#[tokio::test]
async fn every_unsafe_request_needs_the_sessions_csrf_token() {
    let (state, _dir) = state_with_readings().await;
    let admin = login(&state, Role::Admin).await;
    let other = login(&state, Role::Crew).await.csrf(&state).await;
    let own = admin.csrf(&state).await;
    let before = snapshot(&state).await;
    let mut posts = 0;
    for r in ROUTES.iter().filter(|r| r.method == Method::Post && r.need != Need::Public) {
        posts += 1;
        let (ctype, body) = post_body(r);
        let wrong_length = "0".repeat(63);
        for token in [None, Some(""), Some(wrong_length.as_str()), Some(&"0".repeat(64)), Some(other.as_str())] {
            let resp = post(&state, Some(&admin), r.example, ctype, body, token).await;
            assert_eq!(resp.status, StatusCode::FORBIDDEN, "POST {} with {token:?}: {}", r.example, resp.body);
            assert!(resp.body.contains("CSRF"), "POST {}: {}", r.example, resp.body);
        }
        // The right token in a cross-site request is refused too.
        let mut req = axum::http::Request::post(r.example)
            .header("content-type", ctype)
            .header("cookie", &admin.cookie)
            .header("x-csrf-token", &own)
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://evil.example");
        req = req.header("sec-fetch-site", "cross-site");
        let resp = util::send(&state, req.body(axum::body::Body::from(body)).unwrap()).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "cross-site POST {}", r.example);
    }
    assert_eq!(posts, 5, "logout, two alert actions, two open-data settings");
    assert_eq!(snapshot(&state).await, before, "nothing changed");
    assert_eq!(admin.get(&state, "/").await.status, StatusCode::OK, "still logged in");
    // And with the token each does its job (logout last).
    let mut unsafe_routes: Vec<&Route> =
        ROUTES.iter().filter(|r| r.method == Method::Post && r.need != Need::Public).collect();
    unsafe_routes.sort_by_key(|r| r.pattern == "/logout");
    for r in unsafe_routes {
        let (ctype, body) = post_body(r);
        let resp = post(&state, Some(&admin), r.example, ctype, body, Some(&own)).await;
        assert!(
            resp.status.is_success() || resp.status == StatusCode::SEE_OTHER || resp.status == StatusCode::CONFLICT,
            "POST {}: {} {}",
            r.example,
            resp.status,
            resp.body
        );
    }
    assert_ne!(snapshot(&state).await, before, "the alert was acknowledged and open data published");
}

/// Values that no query parameter of the dashboard accepts; each must be refused with a 400 and
/// a message, or ignored (200/404), never a 500, and never echoed as markup.
const GARBAGE: &[&str] = &[
    "%27%3B%20DROP%20TABLE%20readings%3B--",
    "%22%20OR%201%3D1",
    "%2F%20%3B%20DROP%20MEASUREMENT%20readings",
    "flow%0Avalue%3D1",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "-1",
    "-100000",
    "99999999999999999999999",
    "1e308",
    "NaN",
    "%E6%B0%B4%E9%81%93",
    "%00",
    "%FF%FE",
];

/// Sent markup comes back escaped in HTML; a plain-text error may repeat it, but only with
/// `nosniff`, so that no browser takes it for HTML.
#[track_caller]
fn assert_no_markup_echo(resp: &util::Resp, shown: &str) {
    if resp.body.contains("<script>alert") {
        assert!(resp.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "{shown}: markup echoed");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"), "{shown}: sniffable echo");
    }
}

fn long_value() -> String {
    "x".repeat(20_000)
}

#[tokio::test]
async fn garbage_in_any_query_parameter_is_never_a_500() {
    let (state, _dir) = state_with_readings().await;
    let admin = login(&state, Role::Admin).await;
    let before = snapshot(&state).await;
    let long = long_value();
    for r in ROUTES.iter().filter(|r| r.method == Method::Get) {
        for param in r.params {
            for value in GARBAGE.iter().copied().chain([long.as_str(), ""]) {
                let sep = if r.example.contains('?') { '&' } else { '?' };
                let uri = format!("{}{sep}{param}={value}&lang=en", r.example);
                let resp = admin.get(&state, &uri).await;
                let shown = &uri[..uri.len().min(120)];
                assert!(
                    resp.status == StatusCode::BAD_REQUEST || served(resp.status),
                    "{shown}: {} {}",
                    resp.status,
                    &resp.body[..resp.body.len().min(300)]
                );
                if resp.status == StatusCode::BAD_REQUEST {
                    assert!(resp.body.len() > 10, "{shown}: a 400 says why: {:?}", resp.body);
                    assert!(resp.body.len() < 2_000, "{shown}: the reason is short: {} bytes", resp.body.len());
                }
                assert_no_markup_echo(&resp, shown);
            }
        }
    }
    assert_eq!(snapshot(&state).await, before);
}

#[tokio::test]
async fn named_bad_parameters_are_400_with_the_reason() {
    let (state, _dir) = state_with_readings().await;
    let admin = login(&state, Role::Admin).await;
    let cases = [
        // The overview's chart.
        ("/districts/inflow.svg?w=-390", "chart width"),
        ("/districts/inflow.svg?w=99999999999", "chart width"),
        ("/districts/inflow.svg?w=%27%3BDROP", "chart width"),
        // The risk map: the width like every other chart's.
        ("/risk/map.svg?w=abc", "width"),
        ("/risk/map.svg?w=-1", "width"),
        ("/risk/map.svg?w=99999999999", "width"),
        ("/risk/map.svg?w=5", "width"),
        // The plan's charts and PDF.
        ("/plan/chart.svg?chart=km&w=-360", "width"),
        ("/plan/chart.svg?chart=km&w=99999999999", "width"),
        ("/plan/chart.svg?chart=pie", "chart"),
        ("/plan/chart.svg?chart=km&years=-1", "years"),
        ("/plan/chart.svg?chart=km&budget=%22%20OR%201%3D1", "budget"),
        ("/plan/export?format=pdf&years=0", "years"),
        ("/plan/export?format=pdf&years=-5", "years"),
        ("/plan/export?format=pdf&deadline=CI:1800", "deadline"),
        ("/plan/export?format=pdf&compare=-1km", "compare"),
        ("/plan/export?format=PDF%00", "format"),
        // Reversed, absurd and malformed date ranges.
        ("/devices/fm01/flow/chart.svg?from=2026-02-01&to=2026-01-01", "end after"),
        ("/api/devices/fm01/flow/windows?from=2026-01-01&to=2026-01-01", "end after"),
        ("/api/devices/fm01/flow/windows?from=0001-01-01&to=9999-12-31", "1970"),
        ("/api/devices/fm01/flow/windows?from=2020-01-01&to=9999-12-31", "366 days"),
        ("/api/devices/fm01/flow/windows?from=2026-13-45&to=2026-14-01", "from="),
        ("/devices/fm01?range=-1h", "range="),
        ("/devices/fm01?w=-720", "chart width"),
        // Unknown enum values.
        ("/api/alerts?state=burning", "state"),
        ("/api/alerts?severity=apocalyptic", "severity"),
        ("/api/risk?sort=score%3B%20DROP%20TABLE%20risk_rows", "sort"),
        ("/api/risk?dir=sideways", "dir"),
        ("/api/risk?grade=9", "grade"),
        ("/api/risk?page=-1", "page"),
        ("/api/risk?page=99999999999999999999", "page"),
        ("/api/risk?dmin=500&dmax=100", "dmin"),
        ("/risk/export?format=docx", "format"),
        // Injection text in path segments that must be names.
        ("/api/devices/fm01%27%20OR%201%3D1/flow/windows", "not a valid name"),
        ("/api/devices/fm01/flow%2F%3B%20DROP%20MEASUREMENT%20x/windows", "not a valid name"),
        ("/devices/fm01/flow%0Aflow%20value%3D1/readings.csv", "not a valid name"),
        ("/api/alerts/1%3B%20DROP%20TABLE%20alerts", "alert"),
        ("/api/alerts/-1", "alert"),
        ("/api/alerts/99999999999999999999999", "alert"),
        ("/alerts/abc", "alert"),
    ];
    for (uri, needle) in cases {
        let r = admin.get_with(&state, uri, &[("accept-language", "en")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert!(r.body.to_lowercase().contains(needle), "{uri}: {}", r.body);
    }
}

/// Injection text where a route takes a free name (an asset id, an alert's asset): a 400 or a
/// harmless 404 or empty list, and the stores as they were.
#[tokio::test]
async fn injection_in_path_segments_finds_nothing_and_changes_nothing() {
    let (state, _dir) = state_with_readings().await;
    let admin = login(&state, Role::Admin).await;
    let before = snapshot(&state).await;
    let long = long_value();
    let templates = [
        "/devices/{}",
        "/devices/fm01/{}",
        "/devices/{}/flow/chart.svg",
        "/api/devices/fm01/{}/windows",
        "/devices/fm01/{}/readings.csv",
        "/alerts/{}",
        "/api/alerts/{}",
        "/alerts/asset/{}",
        "/risk/{}",
        "/api/risk/{}",
        "/api/alerts/1/{}",
        "/alerts/1/{}",
    ];
    let crew = login(&state, Role::Crew).await;
    let csrf = crew.csrf(&state).await;
    for t in templates {
        for value in GARBAGE.iter().copied().chain([long.as_str(), "P-001%27--", "..%2F..%2Fetc%2Fpasswd"]) {
            let uri = t.replace("{}", value);
            let shown = &uri[..uri.len().min(120)];
            let resp = if t.ends_with("/1/{}") {
                let body = if t.starts_with("/api/") { r#"{"comment": "x"}"# } else { "comment=x" };
                let ctype =
                    if t.starts_with("/api/") { "application/json" } else { "application/x-www-form-urlencoded" };
                post(&state, Some(&crew), &uri, ctype, body, Some(&csrf)).await
            } else {
                admin.get(&state, &uri).await
            };
            let ok = match resp.status {
                StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => true,
                // The asset history is a free-text filter: an empty list.
                StatusCode::OK => t == "/alerts/asset/{}" && !resp.body.contains("rule1"),
                _ => false,
            };
            assert!(ok, "{shown}: {} {}", resp.status, &resp.body[..resp.body.len().min(300)]);
            assert_no_markup_echo(&resp, shown);
        }
    }
    assert_eq!(snapshot(&state).await, before);
    // Every account still logs in.
    for role in Role::ALL {
        login(&state, role).await;
    }
}

/// Login form fields full of injection text: refused as a wrong password, no account touched.
#[tokio::test]
async fn injection_in_the_login_form_is_a_wrong_password() {
    let (state, _dir) = state_with_readings().await;
    let long = long_value();
    for value in GARBAGE.iter().copied().chain([long.as_str()]) {
        let r = post_form(&state, "/login", &format!("username={value}&password={value}"), &[]).await;
        assert!(matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST), "{value}: {}", r.status);
        assert!(r.cookies().iter().all(|c| !c.starts_with("mizumori_session=")));
        assert_no_markup_echo(&r, value);
    }
    for role in Role::ALL {
        login(&state, role).await;
    }
}
