//! The alerts inbox, made for crews on phones: active alerts by severity and place, each with
//! its state written out; acknowledge with a comment, resolve with a note, shelve for a while;
//! an alert's own page (the deep link a notification points to) and the history of an asset.
//! The same as JSON under `/api/alerts`, with POST equivalents of the three actions.
//!
//! Alerts are raised and resolved by the collector's rules; this module only reads them and
//! asks the [`store::AlertStore`] for the state changes people make, which the store checks
//! (an alert that is already resolved cannot be acknowledged: 409). Every parameter is checked
//! into a [`Listing`] or refused with 400; filters reach the store as bound values.

use std::fmt::Write;

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use model::{Alert, AlertState, Severity};
use serde::Deserialize;
use serde_json::json;
use store::StoreError;
use store::alerts::{AlertQuery, Resolution};

use crate::auth::{CurrentUser, Permission, safe_next};
use crate::chart::jst;
use crate::html::{Frame, escape, page};
use crate::i18n::{Lang, Msg};
use crate::params::{bad, some};
use crate::{AppError, AppState};

/// The most alerts a list shows: a long shift's worth; past it the list says it was cut.
pub const MAX_LISTED: usize = 200;
/// Comments and notes longer than this are refused: they are for a sentence or two, and the
/// bound keeps a pasted log out of the journal.
pub const MAX_TEXT_CHARS: usize = 2000;
/// The longest shelving: a week. Shelving always ends (no silence without an end time).
pub const MAX_SHELVE_HOURS: u32 = 168;
/// The durations the shelve form offers, in hours.
const SHELVE_CHOICES: [u32; 6] = [1, 4, 8, 24, 72, 168];
/// Asset names come from rule files; this bounds what a filter may carry.
const MAX_ASSET_CHARS: usize = 128;

/// Which states a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateFilter {
    /// Open, acknowledged and shelved: what still needs someone. The inbox's default.
    Active,
    One(AlertState),
    All,
}

impl StateFilter {
    fn as_str(self) -> &'static str {
        match self {
            StateFilter::Active => "active",
            StateFilter::One(s) => s.as_str(),
            StateFilter::All => "all",
        }
    }
}

/// The query of the inbox and of `/api/alerts`, as it arrives.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    state: Option<String>,
    severity: Option<String>,
    asset: Option<String>,
    // Read by the language middleware.
    #[allow(dead_code)]
    lang: Option<String>,
}

/// A checked list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    pub states: StateFilter,
    pub severity: Option<Severity>,
    pub asset: Option<String>,
}

fn check_asset(a: &str, lang: Lang) -> Result<String, AppError> {
    if a.chars().count() > MAX_ASSET_CHARS || a.chars().any(char::is_control) {
        return Err(bad(
            lang,
            format!("asset={a:?}: an asset name of at most {MAX_ASSET_CHARS} characters without control characters"),
            format!("asset={a:?}: 設備名は制御文字を含まない {MAX_ASSET_CHARS} 文字以内で指定してください"),
        ));
    }
    Ok(a.to_owned())
}

impl ListParams {
    pub(crate) fn check(&self, lang: Lang) -> Result<Listing, AppError> {
        let states = match some(&self.state) {
            None | Some("active") => StateFilter::Active,
            Some("all") => StateFilter::All,
            Some(s) => StateFilter::One(s.parse::<AlertState>().map_err(|_| {
                bad(
                    lang,
                    format!("state={s:?}: use active, open, acknowledged, shelved, resolved or all"),
                    format!(
                        "state={s:?}: active, open, acknowledged, shelved, resolved, all のいずれかを指定してください"
                    ),
                )
            })?),
        };
        let severity = match some(&self.severity) {
            None => None,
            Some(s) => Some(s.parse::<Severity>().map_err(|_| {
                bad(
                    lang,
                    format!("severity={s:?}: use critical, major, minor or info"),
                    format!("severity={s:?}: critical, major, minor, info のいずれかを指定してください"),
                )
            })?),
        };
        let asset = some(&self.asset).map(|a| check_asset(a, lang)).transpose()?;
        Ok(Listing { states, severity, asset })
    }
}

/// The alerts of a listing: most severe first, then the ones nobody has taken, then the
/// newest; at most [`MAX_LISTED`], and whether more matched.
pub(crate) async fn list(state: &AppState, l: &Listing) -> Result<(Vec<Alert>, bool), AppError> {
    let query = |s: Option<AlertState>| AlertQuery {
        state: s,
        severity: l.severity,
        asset: l.asset.clone(),
        from: None,
        to: None,
        // One more than shown, to know whether the list was cut.
        limit: MAX_LISTED + 1,
    };
    let mut alerts = Vec::new();
    match l.states {
        StateFilter::Active => {
            for s in [AlertState::Open, AlertState::Acknowledged, AlertState::Shelved] {
                alerts.extend(state.alerts.alerts(&query(Some(s))).await?);
            }
        }
        StateFilter::One(s) => alerts = state.alerts.alerts(&query(Some(s))).await?,
        StateFilter::All => alerts = state.alerts.alerts(&query(None)).await?,
    }
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(state_order(a.state).cmp(&state_order(b.state)))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(b.id.cmp(&a.id))
    });
    let cut = alerts.len() > MAX_LISTED;
    alerts.truncate(MAX_LISTED);
    Ok((alerts, cut))
}

/// Untaken alerts before taken ones: what needs a person comes first.
fn state_order(s: AlertState) -> u8 {
    match s {
        AlertState::Open => 0,
        AlertState::Acknowledged => 1,
        AlertState::Shelved => 2,
        AlertState::Resolved => 3,
    }
}

/// Active alerts by severity, most severe first (for the inbox header and the overview).
pub(crate) async fn active_counts(state: &AppState) -> Result<Vec<(Severity, usize)>, AppError> {
    let stored = state.alerts.active_by_severity().await?;
    let count = |s: Severity| stored.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n as usize);
    Ok(Severity::ALL.iter().rev().map(|s| (*s, count(*s))).collect())
}

pub(crate) fn severity_msg(s: Severity) -> Msg {
    match s {
        Severity::Critical => Msg::SevCritical,
        Severity::Major => Msg::SevMajor,
        Severity::Minor => Msg::SevMinor,
        Severity::Info => Msg::SevInfo,
    }
}

/// A shape for each severity, so that it reads without colour and in greyscale.
fn severity_icon(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "▲▲",
        Severity::Major => "▲",
        Severity::Minor => "●",
        Severity::Info => "ⓘ",
    }
}

/// Severity as a badge: icon, word, and colour.
pub(crate) fn severity_badge(lang: Lang, s: Severity) -> String {
    format!(
        "<span class=\"sev sev-{code}\"><span aria-hidden=\"true\">{icon}</span> {word}</span>",
        code = s.as_str(),
        icon = severity_icon(s),
        word = lang.t(severity_msg(s)),
    )
}

fn state_msg(s: AlertState) -> Msg {
    match s {
        AlertState::Open => Msg::StateOpen,
        AlertState::Acknowledged => Msg::StateAcknowledged,
        AlertState::Shelved => Msg::StateShelved,
        AlertState::Resolved => Msg::StateResolved,
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&jst()).format("%Y-%m-%d %H:%M").to_string()
}

fn message(lang: Lang, a: &Alert) -> &str {
    match lang {
        Lang::Ja => &a.message_ja,
        Lang::En => &a.message_en,
    }
}

fn asset_link(asset: &str) -> String {
    format!("/alerts/asset/{}", crate::error::percent_encode(asset))
}

/// The query string of a listing, for links and the hidden fields of forms.
fn listing_query(l: &Listing) -> String {
    let mut q = format!("state={}", l.states.as_str());
    if let Some(s) = l.severity {
        let _ = write!(q, "&severity={s}");
    }
    if let Some(a) = &l.asset {
        let _ = write!(q, "&asset={}", crate::error::percent_encode(a));
    }
    q
}

/// The hidden fields every action form carries: the CSRF token and where to go back to.
fn hidden(user: &CurrentUser, next: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">",
        user.csrf,
        escape(next)
    )
}

fn ack_form(lang: Lang, user: &CurrentUser, a: &Alert, next: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/alerts/{id}/ack\" class=\"act\">{hidden}\
         <label for=\"ack-comment-{id}\">{label}</label>\
         <textarea id=\"ack-comment-{id}\" name=\"comment\" rows=\"2\" maxlength=\"{max}\"></textarea>\
         <button type=\"submit\" class=\"button primary\" id=\"ack-{id}\">{button}</button></form>",
        id = a.id,
        hidden = hidden(user, next),
        label = lang.t(Msg::AckComment),
        max = MAX_TEXT_CHARS,
        button = lang.t(Msg::Acknowledge),
    )
}

fn resolve_form(lang: Lang, user: &CurrentUser, a: &Alert, next: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/alerts/{id}/resolve\" class=\"act\">{hidden}\
         <label for=\"resolve-note-{id}\">{label}</label>\
         <textarea id=\"resolve-note-{id}\" name=\"note\" rows=\"2\" maxlength=\"{max}\"></textarea>\
         <button type=\"submit\" class=\"button\" id=\"resolve-{id}\">{button}</button></form>",
        id = a.id,
        hidden = hidden(user, next),
        label = lang.t(Msg::ResolveNote),
        max = MAX_TEXT_CHARS,
        button = lang.t(Msg::Resolve),
    )
}

fn shelve_form(lang: Lang, user: &CurrentUser, a: &Alert, next: &str) -> String {
    let mut options = String::new();
    for h in SHELVE_CHOICES {
        let text = if h < 24 {
            format!("{h} {}", lang.t(Msg::HoursUnit))
        } else {
            format!("{} {}", h / 24, lang.t(Msg::DaysUnit))
        };
        let selected = if h == 8 { " selected" } else { "" };
        let _ = write!(options, "<option value=\"{h}\"{selected}>{text}</option>");
    }
    format!(
        "<form method=\"post\" action=\"/alerts/{id}/shelve\" class=\"act\">{hidden}\
         <label for=\"shelve-hours-{id}\">{label}</label>\
         <select id=\"shelve-hours-{id}\" name=\"hours\">{options}</select>\
         <button type=\"submit\" class=\"button\" id=\"shelve-{id}\">{button}</button></form>",
        id = a.id,
        hidden = hidden(user, next),
        label = lang.t(Msg::ShelveFor),
        button = lang.t(Msg::Shelve),
    )
}

/// One alert as a card. `full` adds every action the user may take (the alert's own page);
/// otherwise an open alert gets the acknowledge form only, the crew's one-tap action.
fn card(lang: Lang, user: &CurrentUser, a: &Alert, next: &str, full: bool) -> String {
    let mut s = format!(
        "<article class=\"alert sev-{sev}\" id=\"alert-{id}\"><h3>{badge} <a href=\"{asset_href}\">{asset}</a></h3>\
         <p class=\"msg\">{msg}</p>\
         <p class=\"state\">{state_l}: <strong class=\"state-{state_code}\" id=\"state-{id}\">{state}</strong></p>\
         <p class=\"meta\">{first_l} {first} · {last_l} {last} · {count_l} {count}{value} · {device}/{point} · #{id}</p>",
        sev = a.severity.as_str(),
        id = a.id,
        badge = severity_badge(lang, a.severity),
        asset_href = escape(&asset_link(&a.asset)),
        asset = escape(&a.asset),
        msg = escape(message(lang, a)),
        state_l = lang.t(Msg::Status),
        state_code = a.state.as_str(),
        state = lang.t(state_msg(a.state)),
        first_l = lang.t(Msg::FirstSeen),
        first = fmt_time(a.first_seen),
        last_l = lang.t(Msg::LastSeen),
        last = fmt_time(a.last_seen),
        count_l = lang.t(Msg::Repeats),
        count = a.count,
        value = a.value.map(|v| format!(" · {} {v}", lang.t(Msg::Value))).unwrap_or_default(),
        device = a.device,
        point = a.point,
    );
    if let (Some(by), Some(at)) = (&a.acknowledged_by, a.acknowledged_at) {
        let _ = write!(
            s,
            "<p class=\"journal\">{l} {by} · {at}{comment}</p>",
            l = lang.t(Msg::AcknowledgedBy),
            by = escape(by),
            at = fmt_time(at),
            comment = a
                .ack_comment
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| format!("<br><q class=\"comment\">{}</q>", escape(c)))
                .unwrap_or_default(),
        );
    }
    if let (AlertState::Shelved, Some(until)) = (a.state, a.shelved_until) {
        let _ = write!(s, "<p class=\"journal\">{} {}</p>", lang.t(Msg::ShelvedUntil), fmt_time(until));
    }
    if let Some(at) = a.resolved_at {
        let by = a.resolved_by.as_deref().map_or_else(|| lang.t(Msg::ResolvedByRule).to_owned(), escape);
        let note = a
            .resolve_note
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|n| format!("<br><q class=\"comment\">{}</q>", escape(n)))
            .unwrap_or_default();
        let _ = write!(s, "<p class=\"journal\">{} {by} · {}{note}</p>", lang.t(Msg::ResolvedBy), fmt_time(at));
    }
    if user.can(Permission::ActOnAlerts) {
        let takeable = matches!(a.state, AlertState::Open | AlertState::Shelved);
        if takeable {
            s.push_str(&ack_form(lang, user, a, next));
        }
        if full {
            if matches!(a.state, AlertState::Open | AlertState::Acknowledged) {
                s.push_str(&shelve_form(lang, user, a, next));
            }
            if a.state.is_active() {
                s.push_str(&resolve_form(lang, user, a, next));
            }
        }
    }
    if !full {
        let _ = write!(s, "<p><a class=\"button\" href=\"/alerts/{}\">{}</a></p>", a.id, lang.t(Msg::AlertDetails));
    }
    s.push_str("</article>");
    s
}

/// The severity counts as links that filter the inbox; every count written as a number.
fn counts_nav(lang: Lang, counts: &[(Severity, usize)], l: &Listing) -> String {
    let mut s = format!("<nav class=\"ranges\" aria-label=\"{}\">", lang.t(Msg::ActiveBySeverity));
    for (sev, n) in counts {
        let current = if l.severity == Some(*sev) { " aria-current=\"true\"" } else { "" };
        let _ = write!(
            s,
            "<a href=\"/alerts?state=active&amp;severity={code}\"{current}>{badge}&nbsp;<strong>{n}</strong></a>",
            code = sev.as_str(),
            badge = severity_badge(lang, *sev),
        );
    }
    s.push_str("</nav>");
    s
}

fn filter_form(lang: Lang, l: &Listing, action: &str) -> String {
    let mut states = String::new();
    let choices: [(StateFilter, Msg); 6] = [
        (StateFilter::Active, Msg::StateActive),
        (StateFilter::One(AlertState::Open), Msg::StateOpen),
        (StateFilter::One(AlertState::Acknowledged), Msg::StateAcknowledged),
        (StateFilter::One(AlertState::Shelved), Msg::StateShelved),
        (StateFilter::One(AlertState::Resolved), Msg::StateResolved),
        (StateFilter::All, Msg::All),
    ];
    for (f, m) in choices {
        let sel = if f == l.states { " selected" } else { "" };
        let _ = write!(states, "<option value=\"{}\"{sel}>{}</option>", f.as_str(), lang.t(m));
    }
    let mut sevs = format!("<option value=\"\">{}</option>", lang.t(Msg::All));
    for s in Severity::ALL.iter().rev() {
        let sel = if l.severity == Some(*s) { " selected" } else { "" };
        let _ = write!(sevs, "<option value=\"{s}\"{sel}>{}</option>", lang.t(severity_msg(*s)));
    }
    let asset = l
        .asset
        .as_deref()
        .filter(|_| action == "/alerts")
        .map(|a| format!("<input type=\"hidden\" name=\"asset\" value=\"{}\">", escape(a)))
        .unwrap_or_default();
    format!(
        "<form method=\"get\" action=\"{action}\" class=\"filters\">{asset}\
         <div><label for=\"state\">{state_l}</label><select id=\"state\" name=\"state\">{states}</select></div>\
         <div><label for=\"severity\">{sev_l}</label><select id=\"severity\" name=\"severity\">{sevs}</select></div>\
         <div><button type=\"submit\" class=\"button\">{show}</button></div></form>",
        action = escape(action),
        state_l = lang.t(Msg::Status),
        sev_l = lang.t(Msg::Severity),
        show = lang.t(Msg::Show),
    )
}

fn cards(lang: Lang, user: &CurrentUser, alerts: &[Alert], cut: bool, next: &str) -> String {
    let mut body = String::new();
    if alerts.is_empty() {
        let _ = write!(body, "<p class=\"empty\">{}</p>", lang.t(Msg::NoAlerts));
    }
    for a in alerts {
        body.push_str(&card(lang, user, a, next, false));
    }
    if cut {
        let _ = write!(body, "<p class=\"meta\">{} {MAX_LISTED}</p>", lang.t(Msg::ListCut));
    }
    body
}

/// `GET /alerts`: the inbox.
pub(crate) async fn inbox(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let Query(params) = query?;
    let l = params.check(lang)?;
    let here = uri.path_and_query().map_or("/alerts", |p| p.as_str());
    let (alerts, cut) = list(&state, &l).await?;
    let counts = active_counts(&state).await?;
    let title = lang.t(Msg::Alerts);
    let mut body = format!("<h2>{title}</h2>");
    body.push_str(&counts_nav(lang, &counts, &l));
    body.push_str(&filter_form(lang, &l, "/alerts"));
    if let Some(a) = &l.asset {
        let _ = write!(body, "<p>{} <a href=\"{}\">{}</a></p>", lang.t(Msg::Place), escape(&asset_link(a)), escape(a));
    }
    let _ =
        write!(body, "<p class=\"meta\">{} {} · {}</p>", alerts.len(), lang.t(Msg::AlertsShown), lang.t(Msg::TimesIn));
    body.push_str(&cards(lang, &user, &alerts, cut, here));
    // Crews keep the inbox open: it reloads itself, as the overview does.
    let frame = Frame { lang, title, user: Some(&user), here, refresh_s: Some(60) };
    Ok(Html(page(&frame, &body)))
}

/// `GET /alerts/asset/{asset}`: every alert of one asset, newest first, whatever its state.
pub(crate) async fn asset_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let Path(asset) = path?;
    let Query(params) = query?;
    let asset = check_asset(&asset, lang)?;
    let mut l = params.check(lang)?;
    // History: everything unless the user narrowed it.
    if params.state.as_deref().is_none_or(str::is_empty) {
        l.states = StateFilter::All;
    }
    l.asset = Some(asset.clone());
    let here = uri.path_and_query().map_or("/alerts", |p| p.as_str());
    let (mut alerts, cut) = list(&state, &l).await?;
    // A history reads newest first.
    alerts.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id)));
    let title = format!("{}: {}", lang.t(Msg::AlertHistory), asset);
    let mut body = format!("<h2>{}</h2>", escape(&title));
    body.push_str(&filter_form(lang, &l, &asset_link(&asset)));
    let _ =
        write!(body, "<p class=\"meta\">{} {} · {}</p>", alerts.len(), lang.t(Msg::AlertsShown), lang.t(Msg::TimesIn));
    body.push_str(&cards(lang, &user, &alerts, cut, here));
    let _ = write!(body, "<p><a class=\"button\" href=\"/alerts\">{}</a></p>", lang.t(Msg::BackToAlerts));
    let frame = Frame { lang, title: &title, user: Some(&user), here, refresh_s: None };
    Ok(Html(page(&frame, &body)))
}

fn parse_id(raw: &str, lang: Lang) -> Result<i64, AppError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        bad(lang, format!("{raw:?} is not an alert number"), format!("{raw:?} はアラート番号ではありません"))
    })
}

async fn one(state: &AppState, id: i64) -> Result<Alert, AppError> {
    state.alerts.alert(id).await?.ok_or_else(|| AppError::NotFound(format!("alert {id}")))
}

/// `GET /alerts/{id}`: one alert with every action the user may take.
pub(crate) async fn alert_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, AppError> {
    let Path(raw) = path?;
    let a = one(&state, parse_id(&raw, lang)?).await?;
    let here = uri.path_and_query().map_or("/alerts", |p| p.as_str());
    let title = format!("{} #{}", lang.t(Msg::Alert), a.id);
    let mut body = format!("<h2>{}</h2>", escape(&title));
    body.push_str(&card(lang, &user, &a, here, true));
    let _ = write!(
        body,
        "<p><a class=\"button\" href=\"{}\">{}</a> <a class=\"button\" href=\"/alerts\">{}</a></p>",
        escape(&asset_link(&a.asset)),
        lang.t(Msg::AlertHistory),
        lang.t(Msg::BackToAlerts)
    );
    let frame = Frame { lang, title: &title, user: Some(&user), here, refresh_s: None };
    Ok(Html(page(&frame, &body)))
}

/// The fields of the action forms; each action reads the ones it needs.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActForm {
    comment: Option<String>,
    note: Option<String>,
    hours: Option<String>,
    next: Option<String>,
    // Checked by the session middleware.
    #[allow(dead_code)]
    csrf: Option<String>,
}

/// What a person asks to do to an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Acknowledge { comment: String },
    Resolve { note: Option<String> },
    Shelve { hours: u32 },
}

fn check_text(name: &str, v: Option<&str>, lang: Lang) -> Result<String, AppError> {
    let t = v.unwrap_or("").trim();
    if t.chars().count() > MAX_TEXT_CHARS {
        return Err(bad(
            lang,
            format!("{name}: at most {MAX_TEXT_CHARS} characters"),
            format!("{name}: {MAX_TEXT_CHARS} 文字以内で入力してください"),
        ));
    }
    Ok(t.to_owned())
}

fn check_hours(v: Option<&str>, lang: Lang) -> Result<u32, AppError> {
    let raw = v.unwrap_or("");
    raw.trim().parse::<u32>().ok().filter(|h| (1..=MAX_SHELVE_HOURS).contains(h)).ok_or_else(|| {
        bad(
            lang,
            format!("hours={raw:?}: shelve for 1 to {MAX_SHELVE_HOURS} hours"),
            format!("hours={raw:?}: 保留は 1〜{MAX_SHELVE_HOURS} 時間で指定してください"),
        )
    })
}

impl Action {
    fn parse(
        kind: &str,
        comment: Option<&str>,
        note: Option<&str>,
        hours: Option<&str>,
        lang: Lang,
    ) -> Result<Action, AppError> {
        match kind {
            "ack" => Ok(Action::Acknowledge { comment: check_text("comment", comment, lang)? }),
            "resolve" => {
                let note = check_text("note", note, lang)?;
                Ok(Action::Resolve { note: (!note.is_empty()).then_some(note) })
            }
            "shelve" => Ok(Action::Shelve { hours: check_hours(hours, lang)? }),
            other => Err(AppError::NotFound(format!("no alert action {other:?}"))),
        }
    }
}

/// Applies `action` to alert `id` as `user`. The store refuses a step the alert's state does
/// not allow; that is the user's conflict with someone else's change (409), not our error.
async fn apply(state: &AppState, user: &CurrentUser, id: i64, action: &Action, lang: Lang) -> Result<Alert, AppError> {
    let now = Utc::now();
    let by = user.name.to_string();
    let result = match action {
        Action::Acknowledge { comment } => state.alerts.acknowledge(id, &by, comment, now).await,
        Action::Resolve { note } => {
            state.alerts.resolve(id, &Resolution::Manual { by: by.clone(), note: note.clone() }, now).await
        }
        Action::Shelve { hours } => state.alerts.shelve(id, now + Duration::hours(i64::from(*hours)), &by, now).await,
    };
    match result {
        Ok(a) => {
            tracing::info!(alert = id, user = %user.name, action = ?action_name(action), "alert changed from the dashboard");
            Ok(a)
        }
        Err(StoreError::NoSuchAlert { id }) => Err(AppError::NotFound(format!("alert {id}"))),
        Err(StoreError::AlertTransition { id, state: s, action: what }) => Err(AppError::Conflict(match lang {
            Lang::En => format!("alert {id} is {s}: cannot {what} it (someone may have changed it; reload the page)"),
            Lang::Ja => format!(
                "アラート {id} は {s} のため {what} できません（他の人が操作した可能性があります。再読み込みしてください）"
            ),
        })),
        Err(e) => Err(e.into()),
    }
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Acknowledge { .. } => "acknowledge",
        Action::Resolve { .. } => "resolve",
        Action::Shelve { .. } => "shelve",
    }
}

/// `POST /alerts/{id}/{ack|resolve|shelve}`: a form's action, then back to the page it came
/// from (303, so a reload does not repeat it).
pub(crate) async fn act_form(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    path: Result<Path<(String, String)>, PathRejection>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Path((raw, kind)) = path?;
    let Form(f) = form?;
    let id = parse_id(&raw, lang)?;
    let action = Action::parse(&kind, f.comment.as_deref(), f.note.as_deref(), f.hours.as_deref(), lang)?;
    apply(&state, &user, id, &action, lang).await?;
    let fallback = format!("/alerts/{id}");
    let target = match f.next.as_deref() {
        Some(n) if safe_next(Some(n)) == n => format!("{n}#alert-{id}"),
        _ => fallback,
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let location =
        HeaderValue::from_str(&target).map_err(|_| AppError::BadRequest("next: not a usable path".into()))?;
    resp.headers_mut().insert(LOCATION, location);
    Ok(resp)
}

/// The JSON body of the POST API; each action reads the fields it needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActJson {
    comment: Option<String>,
    note: Option<String>,
    hours: Option<u32>,
}

/// `POST /api/alerts/{id}/{ack|resolve|shelve}`: the same actions for scripts, answering the
/// alert as it is afterwards.
pub(crate) async fn act_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(user): Extension<CurrentUser>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<ActJson>, JsonRejection>,
) -> Result<Json<Alert>, AppError> {
    let Path((raw, kind)) = path?;
    let Json(b) = body?;
    let id = parse_id(&raw, lang)?;
    let hours = b.hours.map(|h| h.to_string());
    let action = Action::parse(&kind, b.comment.as_deref(), b.note.as_deref(), hours.as_deref(), lang)?;
    Ok(Json(apply(&state, &user, id, &action, lang).await?))
}

/// `GET /api/alerts`: the inbox as JSON, with the active counts by severity.
pub(crate) async fn list_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Query(params) = query?;
    let l = params.check(lang)?;
    let (alerts, cut) = list(&state, &l).await?;
    let counts: serde_json::Map<String, serde_json::Value> =
        active_counts(&state).await?.into_iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect();
    Ok(Json(json!({
        "query": listing_query(&l),
        "active_by_severity": counts,
        "truncated": cut,
        "alerts": alerts,
    })))
}

/// `GET /api/alerts/{id}`.
pub(crate) async fn alert_json(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Alert>, AppError> {
    let Path(raw) = path?;
    Ok(Json(one(&state, parse_id(&raw, lang)?).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(state: Option<&str>, severity: Option<&str>, asset: Option<&str>) -> ListParams {
        ListParams {
            state: state.map(str::to_owned),
            severity: severity.map(str::to_owned),
            asset: asset.map(str::to_owned),
            lang: None,
        }
    }

    #[test]
    fn list_parameters_are_checked() {
        let l = params(None, None, None).check(Lang::En).unwrap();
        assert_eq!(l, Listing { states: StateFilter::Active, severity: None, asset: None });
        let l = params(Some("resolved"), Some("critical"), Some("PS-01 北")).check(Lang::En).unwrap();
        assert_eq!(l.states, StateFilter::One(AlertState::Resolved));
        assert_eq!(l.severity, Some(Severity::Critical));
        assert_eq!(l.asset.as_deref(), Some("PS-01 北"));
        assert_eq!(params(Some("all"), Some(""), Some("")).check(Lang::En).unwrap().states, StateFilter::All);
        for (p, needle) in [
            (params(Some("closed"), None, None), "state=\"closed\""),
            (params(None, Some("urgent"), None), "severity=\"urgent\""),
            (params(None, None, Some("a\u{0}b")), "control"),
            (params(None, None, Some(&"x".repeat(129))), "128"),
        ] {
            let e = p.check(Lang::En).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn actions_are_checked() {
        let parse = |k, c: Option<&str>, n: Option<&str>, h: Option<&str>| Action::parse(k, c, n, h, Lang::En);
        assert_eq!(
            parse("ack", Some("  on my way "), None, None).unwrap(),
            Action::Acknowledge { comment: "on my way".into() }
        );
        assert_eq!(parse("resolve", None, Some(" "), None).unwrap(), Action::Resolve { note: None });
        assert_eq!(parse("shelve", None, None, Some("24")).unwrap(), Action::Shelve { hours: 24 });
        for h in ["0", "169", "-1", "x", ""] {
            assert!(parse("shelve", None, None, Some(h)).is_err(), "{h}");
        }
        let long = "あ".repeat(MAX_TEXT_CHARS + 1);
        assert!(parse("ack", Some(&long), None, None).unwrap_err().to_string().contains("at most"));
        assert!(matches!(parse("delete", None, None, None), Err(AppError::NotFound(_))));
    }

    #[test]
    fn ids_are_positive_numbers() {
        assert_eq!(parse_id("12", Lang::En).unwrap(), 12);
        for bad in ["0", "-3", "1.5", "1 OR 1=1", ""] {
            assert!(parse_id(bad, Lang::En).is_err(), "{bad}");
        }
    }
}
