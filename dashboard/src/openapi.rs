//! `GET /api/openapi.json`: the JSON API, described by hand in OpenAPI 3.1.
//!
//! Written out rather than generated: the API is small, and a generator crate (utoipa) would
//! put derive macros on every type for a dozen paths. A test requests every documented GET
//! path, so a path that stops existing fails the build's tests.

use axum::Json;
use serde_json::{Value, json};

/// The documented GET paths under `/api/`, with example parameters, for the test that calls
/// each of them.
pub const DOCUMENTED_GETS: [&str; 5] =
    ["/api/health", "/api/devices", "/api/session", "/api/openapi.json", "/api/devices/{device}/{point}/windows"];

pub fn spec() -> Value {
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
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Mizumori dashboard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read-only JSON for the dashboard's pages. Every path but /api/health needs a session cookie from POST /login. Unsafe methods must carry the session's CSRF token (X-CSRF-Token header or csrf form field; GET /api/session gives it) and come from the same origin."
        },
        "components": {
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "mizumori_session", "description": "Named __Host-mizumori_session when the server runs with secure cookies."}},
            "schemas": {
                "Name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "Role": {"type": "string", "enum": ["viewer", "crew", "engineer", "planner", "admin"]},
                "Quality": {"type": "string", "description": "good, stale, comm_fail, exception_XX (hex Modbus exception) or out_of_range"},
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
                        "store": {"type": "object", "properties": {"backend": {"type": "string"}, "reachable": {"type": "boolean"}, "error": {"type": "string"}}}
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
