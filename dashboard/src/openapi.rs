//! `GET /api/openapi.json`: the JSON API, described by hand in OpenAPI 3.1.
//!
//! Written out rather than generated: the API is small, and a generator crate (utoipa) would
//! put derive macros on every type for a dozen paths. A test requests every documented GET
//! path, so a path that stops existing fails the build's tests.

use axum::Json;
use serde_json::{Value, json};

/// The documented GET paths under `/api/`, with example parameters, for the test that calls
/// each of them.
pub const DOCUMENTED_GETS: [&str; 14] = [
    "/api/health",
    "/api/overview",
    "/api/devices",
    "/api/session",
    "/api/openapi.json",
    "/api/devices/{device}/{point}/windows",
    "/api/risk",
    "/api/risk/{asset_id}",
    "/api/model",
    "/api/plan",
    "/api/sewer",
    "/api/alerts",
    "/api/alerts/{id}",
    "/api/admin/open-data",
];

pub fn spec() -> Value {
    let mut spec = base();
    let paths = spec["paths"].as_object_mut().expect("paths is an object");
    paths.extend(alert_paths().as_object().expect("an object").clone());
    paths.extend(open_data_paths().as_object().expect("an object").clone());
    paths.extend(plan_paths().as_object().expect("an object").clone());
    paths.extend(overview_paths().as_object().expect("an object").clone());
    paths.extend(sewer_paths().as_object().expect("an object").clone());
    let schemas = spec["components"]["schemas"].as_object_mut().expect("schemas is an object");
    schemas.extend(alert_schemas().as_object().expect("an object").clone());
    spec
}

/// The alert types; apart from the rest to keep each `json!` literal within the macro's depth.
fn alert_schemas() -> Value {
    json!({
        "Severity": {"type": "string", "enum": ["info", "minor", "major", "critical"]},
        "AlertState": {"type": "string", "enum": ["open", "acknowledged", "shelved", "resolved"]},
        "Alert": {"type": "object", "properties": {
            "id": {"type": "integer"}, "rule": {"type": "string"}, "asset": {"type": "string"},
            "device": {"$ref": "#/components/schemas/Name"}, "point": {"$ref": "#/components/schemas/Name"},
            "severity": {"$ref": "#/components/schemas/Severity"}, "state": {"$ref": "#/components/schemas/AlertState"},
            "first_seen": {"type": "string", "format": "date-time"}, "last_seen": {"type": "string", "format": "date-time"},
            "count": {"type": "integer"}, "value": {"type": ["number", "null"]},
            "message_ja": {"type": "string"}, "message_en": {"type": "string"},
            "acknowledged_by": {"type": ["string", "null"]}, "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
            "ack_comment": {"type": ["string", "null"]},
            "resolved_by": {"type": ["string", "null"], "description": "null on a resolved alert: the rule resolved it."},
            "resolved_at": {"type": ["string", "null"], "format": "date-time"}, "resolve_note": {"type": ["string", "null"]},
            "shelved_until": {"type": ["string", "null"], "format": "date-time"}
        }}
    })
}

/// The overview page's data.
fn overview_paths() -> Value {
    let now_then = json!({"type": ["object", "null"], "description": "Means of the last 10 minutes of good readings, now and 24 h before; null when the district has no such series.", "properties": {
        "now": {"type": ["number", "null"]}, "yesterday": {"type": ["number", "null"]},
        "change_pct": {"type": ["number", "null"]}, "unit": {"type": "string"}
    }});
    json!({
        "/api/overview": {"get": {
            "summary": "The overview page's data: device status, pumps running, active alerts by severity, the pipe-register KPIs, and per district the inflow and critical pressure now against yesterday and the minimum night flow",
            "responses": {
                "200": {"description": "The network at a glance.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "time": {"type": "string", "format": "date-time"},
                    "devices": {"type": "object", "properties": {
                        "up": {"type": "integer"}, "degraded": {"type": "integer"}, "down": {"type": "integer"},
                        "list": {"type": "array", "items": {"type": "object", "properties": {
                            "name": {"$ref": "#/components/schemas/Name"},
                            "status": {"type": "string", "enum": ["up", "degraded", "down"]},
                            "last_reading": {"type": ["string", "null"], "format": "date-time"},
                            "failing_points": {"type": "array", "items": {"$ref": "#/components/schemas/Name"}}
                        }}}
                    }},
                    "pumps": {"type": "object", "properties": {"running": {"type": "integer"}, "total": {"type": "integer"}}},
                    "active_alerts": {"type": "object", "properties": {"total": {"type": "integer"}, "by_severity": {"type": "object", "additionalProperties": {"type": "integer"}}}},
                    "register": {"type": ["object", "null"], "description": "From the newest ranking; null before the first.", "properties": {
                        "as_of": {"type": "string", "format": "date"}, "mains": {"type": "integer"}, "km": {"type": "number"},
                        "legal_life_years": {"type": "integer"}, "km_past_legal_life": {"type": "number"}, "past_legal_life_pct": {"type": "number"},
                        "renewal_year": {"type": "integer"}, "km_laid_in_renewal_year": {"type": "number"}, "renewal_rate_pct": {"type": "number"}
                    }},
                    "districts": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "inflow": now_then.clone(), "critical_pressure": now_then,
                        "night_flow": {"type": ["object", "null"], "description": "The lowest 15-minute mean inflow between 02:00 and 04:00 JST of the last complete night and the seven before; null without data.", "properties": {
                            "window": {"type": "string"}, "unit": {"type": "string"},
                            "last_night": {"type": ["number", "null"]}, "median_before": {"type": ["number", "null"]}, "change_pct": {"type": ["number", "null"]},
                            "nights": {"type": "array", "items": {"type": "object", "properties": {"date": {"type": "string", "format": "date"}, "min": {"type": ["number", "null"]}}}}
                        }}
                    }}}
                }}}}},
                "401": {"description": "No session: log in with POST /login.", "content": {"text/plain": {}}}
            }
        }}
    })
}

/// The renewal plan's JSON, chart and exports.
fn plan_paths() -> Value {
    let inputs = json!([
        {"name": "budget", "in": "query", "schema": {"type": "string"}, "description": "Budget A a year: yen (800000000, 8億, 800M) or km (5km); default 0.7 % of the network's length. Changing any input needs the planner or admin role (403 otherwise)."},
        {"name": "compare", "in": "query", "schema": {"type": "string"}, "description": "Budget B, same forms; default 1.0 % of the length."},
        {"name": "years", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}},
        {"name": "deadline", "in": "query", "schema": {"type": "string"}, "description": "Policy: a material renewed by a fiscal year, e.g. CI:2035."}
    ]);
    let bad = json!({"description": "A bad input, with a message.", "content": {"text/plain": {}}});
    json!({
        "/api/plan": {"get": {
            "summary": "The renewal plan for two yearly budgets over the newest ranking: per fiscal year km renewed, cost, expected breaks with and without, breaks avoided, mean age, km past the 40-year legal life",
            "parameters": inputs,
            "responses": {"200": {"description": "Both scenarios.", "content": {"application/json": {}}}, "400": bad, "401": {"description": "No session."}, "403": {"description": "Inputs changed without the planner or admin role."}, "404": {"description": "No ranking stored yet."}}
        }},
        "/plan/chart.svg": {"get": {
            "summary": "One of the plan page's charts alone, at the requested width (the page's script asks for its box's width)",
            "parameters": [
                {"name": "chart", "in": "query", "required": true, "schema": {"type": "string", "enum": ["km", "breaks", "age"]}},
                {"name": "w", "in": "query", "schema": {"type": "integer", "minimum": 200, "maximum": 3000, "default": 640}, "description": "Width in CSS pixels."}
            ],
            "responses": {"200": {"description": "The chart.", "content": {"image/svg+xml": {}}}, "400": bad, "403": {"description": "Inputs changed without the planner or admin role."}}
        }},
        "/plan/export": {"get": {
            "summary": "The two schedules (one row per main to renew) as CSV (UTF-8 BOM), XLSX (summary and schedule sheets) or GeoJSON, or the whole plan as an A4 PDF report (inputs, summary per fiscal year, the three charts, the schedule) in the user's language; engineer, planner, admin",
            "parameters": [{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["csv", "xlsx", "pdf", "geojson"], "default": "csv"}}],
            "responses": {"200": {"description": "The file."}, "400": bad, "403": {"description": "Not an exporting role."}, "503": {"description": "PDF only: the server has no Japanese font (see /api/health pdf_font)."}}
        }}
    })
}

fn sewer_paths() -> Value {
    let bad = json!({"description": "A bad parameter, with a message.", "content": {"text/plain": {}}});
    let w = |shape: &str| json!({"type": "object", "description": shape, "properties": {"shape": {"type": "number"}, "scale": {"type": "number"}}});
    json!({
        "/api/sewer": {"get": {
            "summary": "A page of the newest sewer span ranking (緊急度 from CCTV inspections and Weibull deterioration curves per material), filtered and sorted, with spans and km per latest grade; run is null until a ranking is stored",
            "parameters": [
                {"name": "grade", "in": "query", "schema": {"type": "string", "enum": ["I", "II", "III", "none", "uninspected"]}, "description": "Latest grade: 緊急度 I/II/III, none (劣化なし) or never inspected."},
                {"name": "material", "in": "query", "schema": {"type": "string"}, "description": "A material code of the run (RC, VP, …); another is a 400."},
                {"name": "district", "in": "query", "schema": {"type": "string"}, "description": "A district of the run; another is a 400."},
                {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["priority", "span_id", "material", "diameter", "length", "install_year", "grade", "p_grade_ii", "p_grade_i"], "default": "priority"}},
                {"name": "dir", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}, "description": "50 spans a page."}
            ],
            "responses": {
                "200": {"description": "The page.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "run": {"type": ["object", "null"], "properties": {
                        "id": {"type": "integer"}, "as_of": {"type": "string", "format": "date"},
                        "horizon_years": {"type": "integer"}, "created": {"type": "string", "format": "date-time"},
                        "curves": {"type": "array", "items": {"type": "object", "properties": {
                            "material": {"type": "string"}, "material_ja": {"type": "string"}, "inspections": {"type": "integer"},
                            "any": w("Age at 緊急度 III or worse"), "ii": w("Age at 緊急度 II or worse"), "i": w("Age at 緊急度 I"),
                            "fallback": {"type": ["string", "null"]}
                        }}}
                    }},
                    "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"},
                    "rows": {"type": "array", "items": {"type": "object", "properties": {
                        "priority": {"type": "integer"}, "span_id": {"type": "string"}, "material": {"type": "string"},
                        "material_ja": {"type": "string"}, "diameter_mm": {"type": ["number", "null"]}, "length_m": {"type": "number"},
                        "install_year": {"type": ["integer", "null"]}, "district": {"type": ["string", "null"]},
                        "latest_grade": {"type": ["string", "null"], "enum": ["I", "II", "III", "none", null]},
                        "latest_date": {"type": ["string", "null"], "format": "date"},
                        "p_grade_ii": {"type": "number"}, "p_grade_i": {"type": "number"}, "explanation": {"type": "string"}
                    }}},
                    "grades": {"type": "array", "items": {"type": "object", "properties": {
                        "grade": {"type": ["string", "null"]}, "spans": {"type": "integer"}, "km": {"type": "number"}
                    }}}
                }}}}},
                "400": bad, "401": {"description": "No session."}
            }
        }},
        "/sewer/curve.svg": {"get": {
            "summary": "健全率 (share of spans without deterioration) against age per material, from the newest sewer run, at the requested width",
            "parameters": [{"name": "w", "in": "query", "schema": {"type": "integer", "minimum": 200, "maximum": 3000, "default": 640}, "description": "Width in CSS pixels."}],
            "responses": {"200": {"description": "The chart.", "content": {"image/svg+xml": {}}}, "400": bad, "404": {"description": "No sewer ranking stored yet."}}
        }}
    })
}

/// Open data: the admin's settings, and the public files they publish.
fn open_data_paths() -> Value {
    let settings = json!({"type": "object", "properties": {
        "enabled": {"type": "boolean", "default": false},
        "licence": {"type": "string", "maxLength": 200, "default": "CC BY 4.0"},
        "attribution": {"type": "string", "maxLength": 200},
        "sensitive_cof": {"type": "integer", "minimum": 0, "maximum": 5, "default": 4, "description": "Mains with a CoF grade at or above this are sensitive (critical facilities); 0 marks none."},
        "sensitive_action": {"type": "string", "enum": ["omit_coordinates", "omit_main"], "default": "omit_coordinates"},
        "omit_district": {"type": "boolean", "default": false},
        "omit_coordinates": {"type": "boolean", "default": false}
    }});
    let off =
        json!({"description": "Not published (the default), or no ranking stored yet.", "content": {"text/plain": {}}});
    json!({
        "/api/admin/open-data": {
            "get": {"summary": "The open-data settings (admin)", "responses": {
                "200": {"description": "The settings.", "content": {"application/json": {"schema": settings.clone()}}},
                "401": {"description": "No session."}, "403": {"description": "Not an admin."}
            }},
            "post": {"summary": "Replace the open-data settings (admin; X-CSRF-Token)", "requestBody": {"required": true, "content": {"application/json": {"schema": settings.clone()}}}, "responses": {
                "200": {"description": "The settings as saved.", "content": {"application/json": {"schema": settings}}},
                "400": {"description": "A bad field; the text says which."}, "401": {"description": "No session."}, "403": {"description": "Not an admin, or the CSRF token is missing or wrong."}
            }}
        },
        "/open-data/pipes.csv": {"get": {"summary": "The published pipe register as CSV (UTF-8 with BOM); no login", "security": [], "responses": {"200": {"description": "One main a row.", "content": {"text/csv": {}}}, "404": off.clone()}}},
        "/open-data/pipes.geojson": {"get": {"summary": "The published pipe register as a GeoJSON FeatureCollection (WGS 84 points, null where withheld) with licence and attribution members; no login", "security": [], "responses": {"200": {"description": "One feature a main.", "content": {"application/geo+json": {}}}, "404": off}}}
    })
}

/// The alerts inbox's API: the list, one alert, and the three actions.
fn alert_paths() -> Value {
    let errors = json!({
        "400": {"description": "A bad parameter or body; the text says which and why.", "content": {"text/plain": {}}},
        "401": {"description": "No session: log in with POST /login.", "content": {"text/plain": {}}},
        "403": {"description": "The role may not act on alerts (viewer, planner), or the CSRF token is missing or wrong.", "content": {"text/plain": {}}},
        "404": {"description": "No such alert.", "content": {"text/plain": {}}},
        "409": {"description": "The alert's state does not allow this (e.g. already resolved).", "content": {"text/plain": {}}}
    });
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}});
    let act = |summary: &str, body: Value| {
        json!({"post": {
            "summary": summary,
            "description": "Crew, engineer and admin only. Needs the X-CSRF-Token header (GET /api/session).",
            "parameters": [id.clone()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": "The alert afterwards.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Alert"}}}},
                "400": errors["400"], "401": errors["401"], "403": errors["403"], "404": errors["404"], "409": errors["409"]
            }
        }})
    };
    let text = |what: &str| json!({"type": "string", "maxLength": 2000, "description": what});
    json!({
        "/api/alerts": {"get": {
            "summary": "Alerts, most severe first, then untaken before taken, then newest; at most 200",
            "parameters": [
                {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["active", "open", "acknowledged", "shelved", "resolved", "all"], "default": "active"}},
                {"name": "severity", "in": "query", "schema": {"$ref": "#/components/schemas/Severity"}},
                {"name": "asset", "in": "query", "description": "One asset's alerts (up to 128 characters).", "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {"description": "The list.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "query": {"type": "string"},
                    "active_by_severity": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "truncated": {"type": "boolean", "description": "More than 200 matched."},
                    "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
                }}}}},
                "400": errors["400"], "401": errors["401"]
            }
        }},
        "/api/alerts/{id}": {"get": {
            "summary": "One alert",
            "parameters": [id.clone()],
            "responses": {"200": {"description": "The alert.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Alert"}}}}, "400": errors["400"], "401": errors["401"], "404": errors["404"]}
        }},
        "/api/alerts/{id}/ack": act("Acknowledge an open or shelved alert, with a comment", json!({"type": "object", "properties": {"comment": text("What the crew is doing.")}})),
        "/api/alerts/{id}/resolve": act("Resolve an active alert, with a note", json!({"type": "object", "properties": {"note": text("What fixed it.")}})),
        "/api/alerts/{id}/shelve": act("Shelve an open or acknowledged alert for 1 to 168 hours", json!({"type": "object", "required": ["hours"], "properties": {"hours": {"type": "integer", "minimum": 1, "maximum": 168}}}))
    })
}

fn base() -> Value {
    let range_params = json!([
        {"name": "device", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Name"}},
        {"name": "point", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Name"}},
        {"name": "range", "in": "query", "schema": {"type": "string", "enum": ["1h", "24h", "7d", "30d", "custom"], "default": "24h"}},
        {"name": "from", "in": "query", "description": "Start of a custom range: RFC 3339, or 2026-04-01T09:30 / 2026-04-01 in JST.", "schema": {"type": "string"}},
        {"name": "to", "in": "query", "description": "End of a custom range (exclusive), same forms as from. At most 366 days after from.", "schema": {"type": "string"}},
        {"name": "w", "in": "query", "description": "Chart width in pixels; the windows are about one per pixel of the plot area.", "schema": {"type": "integer", "minimum": 200, "maximum": 3000, "default": 720}}
    ]);
    let errors = json!({
        "400": {"description": "A bad parameter; the body says which and why.", "content": {"text/plain": {}}},
        "401": {"description": "No session: log in with POST /login.", "content": {"text/plain": {}}},
        "404": {"description": "The store has never seen this device/point.", "content": {"text/plain": {}}}
    });
    let table_params = json!([
        {"name": "material", "in": "query", "description": "A material code of the ranking (CI, DI-K, PVC, ...); empty for all.", "schema": {"type": "string"}},
        {"name": "dmin", "in": "query", "description": "Smallest diameter, mm.", "schema": {"type": "number", "minimum": 0, "maximum": 5000}},
        {"name": "dmax", "in": "query", "description": "Largest diameter, mm.", "schema": {"type": "number", "minimum": 0, "maximum": 5000}},
        {"name": "grade", "in": "query", "schema": {"$ref": "#/components/schemas/RiskGrade"}},
        {"name": "district", "in": "query", "description": "A district of the ranking; empty for all.", "schema": {"type": "string"}},
        {"name": "lof", "in": "query", "description": "One row of the matrix: the LoF grade.", "schema": {"type": "integer", "minimum": 1, "maximum": 5}},
        {"name": "cof", "in": "query", "description": "One column of the matrix: the CoF grade.", "schema": {"type": "integer", "minimum": 1, "maximum": 5}},
        {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["rank", "asset_id", "material", "diameter", "length", "install_year", "prior_breaks", "expected_breaks", "probability", "risk"], "default": "rank"}},
        {"name": "dir", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}},
        {"name": "page", "in": "query", "description": "1-based; 50 mains a page.", "schema": {"type": "integer", "minimum": 1, "default": 1}}
    ]);
    let risk_404 =
        json!({"description": "No ranking stored yet, or no such main in it.", "content": {"text/plain": {}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Mizumori dashboard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON for the dashboard's pages, and the alert actions. Every path but /api/health needs a session cookie from POST /login. Unsafe methods must carry the session's CSRF token (X-CSRF-Token header or csrf form field; GET /api/session gives it) and come from the same origin."
        },
        "components": {
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "mizumori_session", "description": "Named __Host-mizumori_session when the server runs with secure cookies."}},
            "schemas": {
                "Name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "Role": {"type": "string", "enum": ["viewer", "crew", "engineer", "planner", "admin"]},
                "Quality": {"type": "string", "description": "good, stale, comm_fail, exception_XX (hex Modbus exception) or out_of_range"},
                "RiskGrade": {"type": "string", "enum": ["negligible", "low", "medium", "high", "extreme"]},
                "RiskRun": {"type": "object", "properties": {
                    "as_of": {"type": "string", "format": "date"}, "model": {"type": "string"},
                    "selection": {"type": "string"}, "test_years": {"type": "string"},
                    "created": {"type": "string", "format": "date-time"}
                }},
                "RiskRow": {"type": "object", "properties": {
                    "rank": {"type": "integer"}, "asset_id": {"$ref": "#/components/schemas/Name"},
                    "material": {"type": "string"}, "material_ja": {"type": "string"},
                    "diameter_mm": {"type": ["number", "null"]}, "length_m": {"type": "number"},
                    "install_year": {"type": ["integer", "null"]}, "district": {"type": ["string", "null"]},
                    "prior_breaks": {"type": "integer"}, "expected_breaks": {"type": "number"},
                    "probability": {"type": "number"}, "score": {"type": "number", "description": "Expected breaks per km next year."},
                    "lof_grade": {"type": "integer", "minimum": 1, "maximum": 5}, "cof_grade": {"type": "integer", "minimum": 1, "maximum": 5},
                    "risk_grade": {"$ref": "#/components/schemas/RiskGrade"}, "explanation": {"type": "string"},
                    "x": {"type": ["number", "null"]}, "y": {"type": ["number", "null"]}
                }},
                "Window": {"type": "object", "required": ["start", "mean", "min", "max", "last", "count"], "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "mean": {"type": "number"}, "min": {"type": "number"}, "max": {"type": "number"},
                    "last": {"type": "number"}, "count": {"type": "integer", "minimum": 1}
                }}
            }
        },
        "security": [{"session": []}],
        "paths": {
            "/api/health": {"get": {
                "summary": "Liveness and store reachability (no login needed)",
                "security": [],
                "responses": {
                    "200": {"description": "The store answers.", "content": {"application/json": {"schema": {"type": "object", "required": ["status", "version", "store"], "properties": {
                        "status": {"type": "string", "enum": ["ok", "degraded"]},
                        "version": {"type": "string"},
                        "store": {"type": "object", "properties": {"backend": {"type": "string"}, "reachable": {"type": "boolean"}, "error": {"type": "string"}}},
                        "pdf_font": {"type": "object", "description": "The Japanese font PDF reports embed; available false means PDF exports answer 503.", "properties": {"available": {"type": "boolean"}, "path": {"type": "string"}, "problem": {"type": "string"}}}
                    }}}}},
                    "503": {"description": "The store does not answer; same body with status degraded."}
                }
            }},
            "/api/devices": {"get": {
                "summary": "Every device with the latest reading of each point",
                "responses": {"200": {"description": "Devices by name.", "content": {"application/json": {"schema": {"type": "object", "properties": {"devices": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"$ref": "#/components/schemas/Name"},
                    "points": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"$ref": "#/components/schemas/Name"},
                        "value": {"type": ["number", "string", "null"]},
                        "unit": {"type": "string"},
                        "time": {"type": "string", "format": "date-time"},
                        "age_s": {"type": "number"},
                        "quality": {"$ref": "#/components/schemas/Quality"}
                    }}}
                }}}}}}}}, "401": errors["401"]}
            }},
            "/api/session": {"get": {
                "summary": "The logged-in user, their role and the session's CSRF token",
                "responses": {"200": {"description": "The session.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "user": {"$ref": "#/components/schemas/Name"}, "role": {"$ref": "#/components/schemas/Role"}, "csrf": {"type": "string"}
                }}}}}, "401": errors["401"]}
            }},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}, "401": errors["401"]}}},
            "/api/devices/{device}/{point}/windows": {"get": {
                "summary": "Min-max windows of a point over a range, as the chart draws them, and the gaps without good readings",
                "parameters": range_params,
                "responses": {
                    "200": {"description": "Windows, oldest first.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "device": {"$ref": "#/components/schemas/Name"}, "point": {"$ref": "#/components/schemas/Name"},
                        "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
                        "window_ms": {"type": "integer"},
                        "windows": {"type": "array", "items": {"$ref": "#/components/schemas/Window"}},
                        "gaps": {"type": "array", "items": {"type": "object", "properties": {"from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}}}}
                    }}}}},
                    "400": errors["400"], "401": errors["401"], "404": errors["404"]
                }
            }},
            "/api/risk": {"get": {
                "summary": "A page of the newest risk ranking, filtered and sorted, with the LoF x CoF matrix of the filtered mains",
                "parameters": table_params,
                "responses": {
                    "200": {"description": "The page.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "run": {"$ref": "#/components/schemas/RiskRun"},
                        "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"},
                        "rows": {"type": "array", "items": {"$ref": "#/components/schemas/RiskRow"}},
                        "matrix": {"type": "array", "items": {"type": "object", "properties": {
                            "lof_grade": {"type": "integer"}, "cof_grade": {"type": "integer"},
                            "risk_grade": {"$ref": "#/components/schemas/RiskGrade"}, "mains": {"type": "integer"}, "km": {"type": "number"}
                        }}}
                    }}}}},
                    "400": errors["400"], "401": errors["401"], "404": risk_404
                }
            }},
            "/api/risk/{asset_id}": {"get": {
                "summary": "One main of the newest ranking, with its evidence",
                "parameters": [{"name": "asset_id", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Name"}}],
                "responses": {
                    "200": {"description": "The main.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "run": {"$ref": "#/components/schemas/RiskRun"}, "pipe": {"$ref": "#/components/schemas/RiskRow"}
                    }}}}},
                    "400": errors["400"], "401": errors["401"], "404": risk_404
                }
            }},
            "/api/model": {"get": {
                "summary": "The model card: the newest run and its backtest (capture@1/5/10 % of length and AUC) against rank-by-age and rank-by-prior-breaks",
                "responses": {
                    "200": {"description": "The run and its backtest.", "content": {"application/json": {"schema": {"allOf": [{"$ref": "#/components/schemas/RiskRun"}, {"type": "object", "properties": {
                        "backtest": {"type": "array", "items": {"type": "object", "properties": {
                            "ranker": {"type": "string", "description": "mizumori (the chosen model), a model family, age or prior-breaks"},
                            "detail": {"type": "string"},
                            "capture": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                            "auc": {"type": ["number", "null"]}
                        }}}
                    }}]}}}},
                    "401": errors["401"], "404": risk_404
                }
            }},
            "/login": {"post": {
                "summary": "Log in; sets the session cookie and redirects (303) to next or /",
                "security": [],
                "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["username", "password"], "properties": {
                    "username": {"type": "string"}, "password": {"type": "string", "format": "password"}, "next": {"type": "string", "description": "A local path to go to afterwards."}
                }}}}},
                "responses": {"303": {"description": "Logged in."}, "401": {"description": "Wrong user name or password."}, "429": {"description": "Too many failures for this user; wait 15 minutes."}, "403": {"description": "Cross-site request."}}
            }},
            "/logout": {"post": {
                "summary": "End the session",
                "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"csrf": {"type": "string"}}}}}},
                "responses": {"303": {"description": "Logged out; to /login."}, "403": {"description": "CSRF token missing or wrong."}}
            }}
        }
    })
}

pub(crate) async fn serve() -> Json<Value> {
    Json(spec())
}
