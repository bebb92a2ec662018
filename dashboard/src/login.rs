//! `GET /login`, `POST /login`, `POST /logout` and `GET /api/session`.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;
use store::UserName;
use tracing::info;

use crate::auth::{self, CurrentUser, safe_next};
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::{AppError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("username", &self.username).finish_non_exhaustive()
    }
}

fn login_page(lang: Lang, here: &str, next: &str, username: &str, message: Option<Msg>) -> String {
    let message = message.map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", lang.t(m))).unwrap_or_default();
    let body = format!(
        "<h2>{title}</h2>{message}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label for=\"username\">{user}</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" autocapitalize=\"none\" required>\
         <label for=\"password\">{pass}</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <p><button type=\"submit\" class=\"button\" id=\"login\">{title}</button></p></form>",
        title = lang.t(Msg::Login),
        user = lang.t(Msg::Username),
        pass = lang.t(Msg::Password),
        next = escape(next),
        username = escape(username),
    );
    page(&Frame { lang, title: lang.t(Msg::Login), user: None, here, refresh_s: None }, &body)
}

pub(crate) async fn show(
    Extension(lang): Extension<Lang>,
    uri: Uri,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let Query(q) = query?;
    let here = uri.path_and_query().map_or("/login", |p| p.as_str());
    Ok(Html(login_page(lang, here, safe_next(q.next.as_deref()), "", None)))
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    previous: Option<Extension<CurrentUser>>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let next = safe_next(form.next.as_deref()).to_owned();
    let refuse = |status: StatusCode, msg: Msg| {
        (status, Html(login_page(lang, "/login", &next, &form.username, Some(msg)))).into_response()
    };
    // An impossible name gets the same answer as a wrong password.
    let Ok(name) = UserName::new(form.username.clone()) else {
        return Ok(refuse(StatusCode::UNAUTHORIZED, Msg::LoginFailed));
    };
    if state.throttle.blocked(name.as_str()) {
        info!(user = %name, "login refused: too many failures");
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, Msg::LoginThrottled));
    }
    let Some(user) = auth::check_password(&state, &name, form.password.clone()).await? else {
        state.throttle.failed(name.as_str());
        info!(user = %name, "login failed");
        return Ok(refuse(StatusCode::UNAUTHORIZED, Msg::LoginFailed));
    };
    state.throttle.succeeded(name.as_str());
    // A new session every time: a token planted before login is worth nothing after it.
    if let Some(Extension(old)) = previous {
        state.accounts.delete_session(&old.session_id).await?;
    }
    let token = auth::start_session(&state, &user, Utc::now()).await?;
    info!(user = %user.name, role = %user.role, "logged in");
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(LOCATION, next.parse().map_err(|_| AppError::BadRequest("bad next".into()))?);
    resp.headers_mut().insert(SET_COOKIE, state.auth.session_cookie(&token));
    Ok(resp)
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Result<Response, AppError> {
    state.accounts.delete_session(&user.session_id).await?;
    info!(user = %user.name, "logged out");
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(LOCATION, axum::http::HeaderValue::from_static("/login"));
    resp.headers_mut().insert(SET_COOKIE, state.auth.clear_cookie());
    Ok(resp)
}

/// Who is logged in, and the CSRF token scripts send as `X-CSRF-Token`.
pub(crate) async fn session_json(Extension(user): Extension<CurrentUser>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": user.name,
        "role": user.role,
        "csrf": user.csrf,
    }))
}
