//! Who is asking, and may they: passwords, server-side sessions, CSRF and role checks.
//!
//! * Passwords are Argon2id PHC strings (the `argon2` crate's defaults, OWASP's minimum:
//!   m = 19 MiB, t = 2, p = 1), hashed and verified on the blocking pool.
//! * A session is a 256-bit random token in an `HttpOnly; SameSite=Lax` cookie (`Secure` and
//!   the `__Host-` prefix when the app sits behind TLS). The store keeps only the token's
//!   SHA-256, with the user, a per-session CSRF token and two timestamps; an idle and an
//!   absolute timeout end it. Logging in always makes a new token (no fixation).
//! * Every unsafe request (POST, PUT, PATCH, DELETE) must come from our own origin
//!   (`Origin` / `Sec-Fetch-Site`), and, when it carries a session, must repeat the session's
//!   CSRF token in a form field `csrf` or the header `X-CSRF-Token`. The check sits in the
//!   session middleware, so a new form cannot forget it.
//! * Routes are grouped by the [`Permission`] they need; [`require`] guards each group and
//!   answers 303 to the login page (pages), 401 (API) or 403 (wrong role).
//!
//! This module does not manage users (the CLI does) and keeps no state of its own but the
//! login throttle.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use store::accounts::SessionRecord;
use store::{Role, UserName};

use crate::i18n::{Lang, Msg, cookie};
use crate::{AppError, AppState};

/// What a route needs. Roles map to permissions here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Pages, charts and the read-only JSON API.
    View,
    /// Acknowledge, comment on and shelve alerts.
    ActOnAlerts,
    /// Alert rules, thresholds, annotations, model runs.
    EditRules,
    /// The renewal plan's years and costs.
    EditPlan,
    /// Downloads of data and reports (CSV, XLSX, PDF, GeoJSON).
    Export,
    /// Users, data sources, retention, open-data publication.
    Admin,
}

impl Permission {
    pub fn allows(self, role: Role) -> bool {
        use Role::*;
        match self {
            Permission::View => true,
            Permission::ActOnAlerts => matches!(role, Crew | Engineer | Admin),
            Permission::EditRules => matches!(role, Engineer | Admin),
            Permission::EditPlan => matches!(role, Planner | Admin),
            Permission::Export => matches!(role, Engineer | Planner | Admin),
            Permission::Admin => matches!(role, Admin),
        }
    }
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Mark cookies `Secure` (and name the session cookie `__Host-…`): set this when users
    /// reach the dashboard over HTTPS, e.g. behind a TLS-terminating proxy. Browsers do not
    /// send `Secure` cookies over plain HTTP, so it must be off for a plain-HTTP demo.
    pub secure_cookies: bool,
    /// A session unused this long ends; a crew's shift is the yardstick.
    pub idle_timeout: Duration,
    /// A session ends this long after login whatever its use.
    pub absolute_timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { secure_cookies: false, idle_timeout: Duration::hours(12), absolute_timeout: Duration::hours(24) }
    }
}

impl AuthConfig {
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies { "__Host-mizumori_session" } else { "mizumori_session" }
    }

    fn cookie(&self, value: &str, max_age_s: i64) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let v = format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}", self.cookie_name());
        HeaderValue::from_str(&v).expect("cookie is ASCII")
    }

    pub(crate) fn session_cookie(&self, token: &str) -> HeaderValue {
        self.cookie(token, self.absolute_timeout.num_seconds())
    }

    pub(crate) fn clear_cookie(&self) -> HeaderValue {
        self.cookie("", 0)
    }
}

/// The logged-in user of a request, put into the request's extensions by the session
/// middleware.
#[derive(Clone)]
pub struct CurrentUser {
    pub name: UserName,
    pub role: Role,
    /// The session's CSRF token, to put into forms (`<input type=hidden name=csrf>`).
    pub csrf: String,
    pub(crate) session_id: String,
}

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentUser").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

impl CurrentUser {
    pub fn can(&self, p: Permission) -> bool {
        p.allows(self.role)
    }
}

/// Hashes a password with Argon2id and a fresh salt. CPU-heavy (tens of ms): call it from
/// the blocking pool.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("hashing a password: {e}")))
}

/// True when `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so a wrong name takes as long as
/// a wrong password and response times do not tell which names exist.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password anyone has").expect("hashing a constant works"))
}

/// 256 random bits from the operating system, as hex.
pub(crate) fn new_token() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(hex(&bytes))
}

/// A password for generated accounts (the demo's): 80 random bits as 20 hex digits.
pub fn random_password() -> Result<String, AppError> {
    Ok(new_token()?[..20].to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The store key of a session token: its SHA-256. A 256-bit random token needs no salt or
/// slow hash; the digest only keeps a copy of the database from being a list of live logins.
pub(crate) fn session_id(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Creates a session for `user` and returns the cookie token.
pub(crate) async fn start_session(
    state: &AppState,
    user: &store::accounts::User,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let token = new_token()?;
    let record = SessionRecord {
        id: session_id(&token),
        user: user.name.clone(),
        role: user.role,
        csrf: new_token()?,
        created: now,
        last_seen: now,
    };
    state.accounts.create_session(&record).await?;
    // Expired sessions are dropped here rather than by a timer: logins are when they pile up.
    let cfg = &state.auth;
    state.accounts.purge_sessions(now - cfg.absolute_timeout, now - cfg.idle_timeout).await?;
    Ok(token)
}

/// Checks a login. `None` for an unknown user or a wrong password, indistinguishably.
pub(crate) async fn check_password(
    state: &AppState,
    name: &UserName,
    password: String,
) -> Result<Option<store::accounts::User>, AppError> {
    let user = state.accounts.user(name).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| dummy_hash().to_owned());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(format!("password check task: {e}")))?;
    Ok(user.filter(|_| ok))
}

/// Failed logins per user name: after [`LoginThrottle::MAX_FAILURES`] within
/// [`LoginThrottle::WINDOW`], further attempts for that name are refused until the window
/// has passed. In memory: a restart forgives, which is acceptable for a limit on guessing.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    const MAX_FAILURES: u32 = 5;
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

    pub(crate) fn blocked(&self, name: &str) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(name) {
            Some((_, since)) if since.elapsed() > Self::WINDOW => {
                map.remove(name);
                false
            }
            Some((n, _)) => *n >= Self::MAX_FAILURES,
            None => false,
        }
    }

    pub(crate) fn failed(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound the memory a flood of made-up names can take.
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() <= Self::WINDOW);
        }
        let e = map.entry(name.to_owned()).or_insert((0, Instant::now()));
        e.0 += 1;
    }

    pub(crate) fn succeeded(&self, name: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// False when the browser tells us the request comes from another site. Clients that are not
/// browsers send neither header; browsers send `Origin` with every cross-origin POST.
fn same_origin(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site") {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host =
        origin.to_str().ok().and_then(|o| o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The CSRF token of an unsafe request: the `X-CSRF-Token` header, or the `csrf` field of a
/// form body (which is read and put back for the handler).
async fn csrf_token(req: Request) -> Result<(Request, Option<String>), AppError> {
    if let Some(v) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        let v = v.to_owned();
        return Ok((req, Some(v)));
    }
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    // Forms here are a few fields; a megabyte is generous and bounds what we buffer.
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| AppError::BadRequest("form body too large or unreadable".into()))?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// Middleware on the whole app: finds the session, checks origin and CSRF on unsafe
/// requests, and clears a cookie whose session has ended.
pub(crate) async fn session_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let lang = req.extensions().get::<Lang>().copied().unwrap_or_default();
    let cfg = &state.auth;
    let token = cookie(req.headers(), cfg.cookie_name()).map(str::to_owned);
    let mut clear_cookie = false;
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        match load_session(&state, &token).await {
            Ok(Some(user)) => {
                req.extensions_mut().insert(user);
            }
            Ok(None) => clear_cookie = true,
            Err(e) => return e.into_response(),
        }
    }
    if is_unsafe(req.method()) {
        if !same_origin(req.headers()) {
            return AppError::Forbidden(format!("{} (cross-site request)", lang.t(Msg::Forbidden))).into_response();
        }
        // The login form has no session token to repeat (the user may be logged in as
        // someone else, or not at all); its protection is the origin check above.
        let expected =
            req.extensions().get::<CurrentUser>().filter(|_| req.uri().path() != "/login").map(|u| u.csrf.clone());
        if let Some(expected) = expected {
            let (r, got) = match csrf_token(req).await {
                Ok(x) => x,
                Err(e) => return e.into_response(),
            };
            req = r;
            if !got.is_some_and(|g| same_secret(&g, &expected)) {
                return AppError::Csrf.into_response();
            }
        }
    }
    let mut resp = next.run(req).await;
    if clear_cookie && !resp.headers().contains_key(SET_COOKIE) {
        resp.headers_mut().append(SET_COOKIE, cfg.clear_cookie());
    }
    resp
}

async fn load_session(state: &AppState, token: &str) -> Result<Option<CurrentUser>, AppError> {
    let id = session_id(token);
    let Some(s) = state.accounts.session(&id).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let cfg = &state.auth;
    if now - s.created > cfg.absolute_timeout || now - s.last_seen > cfg.idle_timeout {
        state.accounts.delete_session(&id).await?;
        return Ok(None);
    }
    // One write a minute per session is enough for an idle timeout measured in hours.
    if now - s.last_seen > Duration::minutes(1) {
        state.accounts.touch_session(&id, now).await?;
    }
    Ok(Some(CurrentUser { name: s.user, role: s.role, csrf: s.csrf, session_id: id }))
}

/// Middleware for a group of routes that need `perm`.
pub(crate) async fn require(perm: Permission, req: Request, next: Next) -> Response {
    let lang = req.extensions().get::<Lang>().copied().unwrap_or_default();
    match req.extensions().get::<CurrentUser>() {
        None => {
            let path = req.uri().path();
            let next_page = (req.method() == Method::GET && !path.starts_with("/api/"))
                .then(|| req.uri().path_and_query().map_or("/".to_owned(), |p| p.to_string()));
            AppError::LoginRequired { next: next_page }.into_response()
        }
        Some(user) if !user.can(perm) => {
            AppError::Forbidden(format!("{} ({}: {}, {:?})", lang.t(Msg::Forbidden), user.name, user.role, perm))
                .into_response()
        }
        Some(_) => next.run(req).await,
    }
}

/// A `next` target that stays on this site: a path, not `//host` or a scheme.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_permissions() {
        use Permission::*;
        use Role::*;
        let table = [
            (View, [true, true, true, true, true]),
            (ActOnAlerts, [false, true, true, false, true]),
            (EditRules, [false, false, true, false, true]),
            (EditPlan, [false, false, false, true, true]),
            (Export, [false, false, true, true, true]),
            (Permission::Admin, [false, false, false, false, true]),
        ];
        for (perm, allowed) in table {
            for (role, ok) in [Viewer, Crew, Engineer, Planner, Role::Admin].into_iter().zip(allowed) {
                assert_eq!(perm.allows(role), ok, "{perm:?} for {role}");
            }
        }
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn tokens_are_random_and_stored_digested() {
        let a = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token().unwrap());
        assert_eq!(session_id(&a).len(), 64);
        assert_ne!(session_id(&a), a);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn origin_checks() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(same_origin(&h(&[])));
        assert!(same_origin(&h(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&h(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
        assert!(!same_origin(&h(&[("host", "a"), ("origin", "null")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn next_targets_stay_local() {
        assert_eq!(safe_next(Some("/devices/fm01?range=7d")), "/devices/fm01?range=7d");
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", "x"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn throttle_blocks_after_repeated_failures() {
        let t = LoginThrottle::default();
        for _ in 0..LoginThrottle::MAX_FAILURES {
            assert!(!t.blocked("kato"));
            t.failed("kato");
        }
        assert!(t.blocked("kato"));
        assert!(!t.blocked("sato"));
        t.succeeded("kato");
        assert!(!t.blocked("kato"));
    }
}
