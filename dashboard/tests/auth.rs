//! Logins, sessions, CSRF and role checks, in-process over a real embedded store.

mod util;

use axum::http::StatusCode;
use chrono::Duration;
use dashboard::AuthConfig;
use store::Role;
use util::{Session, get, login, password, post_form, state_with_readings};

/// Every route that needs a login, with a valid example path.
const PAGES: [&str; 4] = ["/", "/devices/fm01", "/devices/fm01/flow?range=7d", "/devices/fm01/flow/readings.csv"];
const API: [&str; 5] = [
    "/api/devices",
    "/api/session",
    "/api/openapi.json",
    "/api/devices/fm01/flow/windows",
    // The chart is fetched by scripts but is a page resource: listed with the API because
    // its redirect would be useless to a script either way.
    "/devices/fm01/flow/chart.svg",
];

#[tokio::test]
async fn only_health_and_login_are_public() {
    let (state, _dir) = state_with_readings().await;
    assert_eq!(get(&state, "/api/health").await.status, StatusCode::OK);
    let r = get(&state, "/login").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("name=\"username\"") && r.body.contains("name=\"password\""));
    for page in PAGES {
        let r = get(&state, page).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{page}");
        let location = r.header("location").unwrap();
        assert!(location.starts_with("/login?next=/"), "{page}: {location}");
    }
    for api in API.iter().take(4) {
        let r = get(&state, api).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{api}");
    }
    // A redirect for the chart is harmless; it just must not draw.
    let r = get(&state, API[4]).await;
    assert!(!r.body.contains("<svg"), "{}", r.status);
    // Logging out without a session goes nowhere either.
    let r = post_form(&state, "/logout", "", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_role_can_view_every_page() {
    let (state, _dir) = state_with_readings().await;
    for role in Role::ALL {
        let s = login(&state, role).await;
        for uri in PAGES.iter().take(3).chain(API.iter()) {
            let r = s.get(&state, uri).await;
            assert_eq!(r.status, StatusCode::OK, "{role} {uri}: {}", r.body);
        }
        let j: serde_json::Value = serde_json::from_str(&s.get(&state, "/api/session").await.body).unwrap();
        assert_eq!(j["user"], role.as_str());
        assert_eq!(j["role"], role.as_str());
    }
}

#[tokio::test]
async fn login_sets_a_safe_cookie_and_returns_to_next() {
    let (state, _dir) = state_with_readings().await;
    let form = format!("username=crew&password={}&next=%2Fdevices%2Ffm01%3Frange%3D7d", password(Role::Crew));
    let r = post_form(&state, "/login", &form, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/devices/fm01?range=7d"));
    let cookie = r.cookies()[0].to_owned();
    assert!(cookie.starts_with("mizumori_session="), "{cookie}");
    let token = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(token.len(), 64);
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP by default: {cookie}");

    // No open redirect through next.
    let form = format!("username=crew&password={}&next=%2F%2Fevil.example%2F", password(Role::Crew));
    let r = post_form(&state, "/login", &form, &[]).await;
    assert_eq!(r.header("location"), Some("/"));
}

#[tokio::test]
async fn secure_cookies_behind_tls() {
    let (state, _dir) = state_with_readings().await;
    let state = state.with_auth(AuthConfig { secure_cookies: true, ..AuthConfig::default() });
    let form = format!("username=admin&password={}", password(Role::Admin));
    let r = post_form(&state, "/login", &form, &[]).await;
    let cookie = r.cookies()[0];
    assert!(cookie.starts_with("__Host-mizumori_session="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = Session { cookie: cookie.split(';').next().unwrap().to_owned() };
    assert_eq!(session.get(&state, "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_passwords_are_refused_alike_and_throttled() {
    let (state, _dir) = state_with_readings().await;
    let wrong = post_form(&state, "/login", "username=crew&password=nope", &[]).await;
    let unknown = post_form(&state, "/login", "username=ghost&password=nope", &[]).await;
    let impossible = post_form(&state, "/login", "username=%27%20OR%201%3D1--&password=x", &[]).await;
    for r in [&wrong, &unknown, &impossible] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.cookies().iter().all(|c| !c.contains("mizumori_session")));
        assert!(r.body.contains("ユーザー名またはパスワードが違います"));
    }
    // The user name is kept in the form, escaped.
    assert!(impossible.body.contains("value=\"&#39; OR 1=1--\""));

    // Four more failures make five; then even the right password waits.
    for _ in 0..4 {
        let r = post_form(&state, "/login", "username=crew&password=nope", &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let right = format!("username=crew&password={}", password(Role::Crew));
    let r = post_form(&state, "/login", &right, &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Other users are not affected.
    login(&state, Role::Viewer).await;
}

#[tokio::test]
async fn missing_form_fields_are_400() {
    let (state, _dir) = state_with_readings().await;
    let r = post_form(&state, "/login", "username=crew", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("password"), "{}", r.body);
}

#[tokio::test]
async fn cross_site_login_is_refused() {
    let (state, _dir) = state_with_readings().await;
    let form = format!("username=admin&password={}", password(Role::Admin));
    let r = post_form(&state, "/login", &form, &[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.cookies().is_empty());
    let r = post_form(&state, "/login", &form, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        post_form(&state, "/login", &form, &[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let (state, _dir) = state_with_readings().await;
    let s = login(&state, Role::Engineer).await;
    let csrf = s.csrf(&state).await;
    assert_eq!(csrf.len(), 64);
    // The page carries the same token for forms and scripts.
    assert!(s.get(&state, "/").await.body.contains(&csrf));

    for form in ["".to_owned(), "csrf=".to_owned(), format!("csrf={}", "0".repeat(64))] {
        let r = s.post(&state, "/logout", &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form:?}");
        assert!(r.body.contains("CSRF"), "{}", r.body);
    }
    // Another user's token is no good either.
    let other = login(&state, Role::Viewer).await.csrf(&state).await;
    let r = s.post(&state, "/logout", &format!("csrf={other}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get(&state, "/").await.status, StatusCode::OK, "still logged in");

    let r = s.post(&state, "/logout", &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login"));
    assert!(r.cookies()[0].contains("Max-Age=0"));
    let r = s.get(&state, "/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the old cookie is dead");
    assert!(r.cookies().iter().any(|c| c.starts_with("mizumori_session=;")), "and is cleared");
}

#[tokio::test]
async fn csrf_header_works_for_scripts() {
    let (state, _dir) = state_with_readings().await;
    let s = login(&state, Role::Crew).await;
    let csrf = s.csrf(&state).await;
    let r = post_form(&state, "/logout", "", &[("cookie", &s.cookie), ("x-csrf-token", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn idle_sessions_end() {
    let (state, _dir) = state_with_readings().await;
    let state = state.with_auth(AuthConfig { idle_timeout: Duration::zero(), ..AuthConfig::default() });
    let s = login(&state, Role::Viewer).await;
    // Any time at all has passed since the login, so the session is over.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = s.get(&state, "/api/devices").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_login_replaces_the_old_session() {
    let (state, _dir) = state_with_readings().await;
    let first = login(&state, Role::Planner).await;
    let form = format!("username=planner&password={}", password(Role::Planner));
    let r = post_form(&state, "/login", &form, &[("cookie", &first.cookie)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let second = r.cookies()[0].split(';').next().unwrap().to_owned();
    assert_ne!(second, first.cookie);
    assert_eq!(first.get(&state, "/").await.status, StatusCode::SEE_OTHER);
    let second = Session { cookie: second };
    assert_eq!(second.get(&state, "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_state_without_accounts_lets_nobody_in() {
    let (state, _dir) = state_with_readings().await;
    let bare = dashboard::AppState::new(state.store.clone());
    let form = format!("username=admin&password={}", password(Role::Admin));
    let r = post_form(&bare, "/login", &form, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
