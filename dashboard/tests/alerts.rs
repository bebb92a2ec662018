//! The alerts inbox, its JSON and its actions, in-process over a real SQLite file holding five
//! alerts in every state (`util::save_alerts`).

mod util;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use dashboard::AppState;
use store::Role;
use util::{Session, get, login, post_form, post_json, state_with_readings};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The ids of the alert cards on a page, in order.
fn card_ids(body: &str) -> Vec<i64> {
    body.split("<article class=\"alert ")
        .skip(1)
        .map(|s| s.split("id=\"alert-").nth(1).unwrap())
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

async fn alert(state: &AppState, s: &Session, id: i64) -> serde_json::Value {
    let r = s.get(state, &format!("/api/alerts/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    json(&r.body)
}

#[tokio::test]
async fn alert_routes_need_a_login() {
    let (state, _dir) = state_with_readings().await;
    for uri in ["/alerts", "/alerts/1", "/alerts/asset/PS-01"] {
        let r = get(&state, uri).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert!(r.header("location").unwrap().starts_with("/login?next=/alerts"), "{uri}");
    }
    for uri in ["/api/alerts", "/api/alerts/1"] {
        assert_eq!(get(&state, uri).await.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let r = post_form(&state, "/alerts/1/ack", "comment=x", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let viewer = login(&state, Role::Viewer).await;
    assert_eq!(alert(&state, &viewer, 1).await["state"], "open", "nothing changed");
}

#[tokio::test]
async fn every_role_reads_and_only_crew_engineer_admin_act() {
    let (state, _dir) = state_with_readings().await;
    for role in Role::ALL {
        let s = login(&state, role).await;
        for uri in ["/alerts", "/alerts/1", "/alerts/asset/PS-01", "/api/alerts", "/api/alerts/1"] {
            let r = s.get(&state, uri).await;
            assert_eq!(r.status, StatusCode::OK, "{role} {uri}: {}", r.body);
        }
        let may_act = matches!(role, Role::Crew | Role::Engineer | Role::Admin);
        let page = s.get(&state, "/alerts/1").await.body;
        assert_eq!(page.contains("action=\"/alerts/1/ack\""), may_act, "{role}: the acknowledge form");
        assert_eq!(page.contains("action=\"/alerts/1/resolve\""), may_act, "{role}: the resolve form");
        assert_eq!(page.contains("action=\"/alerts/1/shelve\""), may_act, "{role}: the shelve form");
        let csrf = s.csrf(&state).await;
        if !may_act {
            // With a valid CSRF token: the role, not the token, is what refuses.
            let r = s.post(&state, "/alerts/1/ack", &format!("csrf={csrf}&comment=mine")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
            let r = post_json(&state, &s, "/api/alerts/2/resolve", "{}", Some(&csrf)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
            let r = post_json(&state, &s, "/api/alerts/2/shelve", r#"{"hours": 1}"#, Some(&csrf)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
        }
    }
    let viewer = login(&state, Role::Viewer).await;
    assert_eq!(alert(&state, &viewer, 1).await["state"], "open");
    assert_eq!(alert(&state, &viewer, 2).await["state"], "open");
}

#[tokio::test]
async fn actions_need_the_sessions_csrf_token() {
    let (state, _dir) = state_with_readings().await;
    let crew = login(&state, Role::Crew).await;
    let r = crew.post(&state, "/alerts/1/ack", "comment=no+token").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    let r = crew.post(&state, "/alerts/1/ack", "csrf=0000&comment=wrong+token").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_json(&state, &crew, "/api/alerts/1/ack", r#"{"comment": "x"}"#, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another session's token is not this session's.
    let other = login(&state, Role::Engineer).await.csrf(&state).await;
    let r = post_json(&state, &crew, "/api/alerts/1/ack", r#"{"comment": "x"}"#, Some(&other)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A cross-site form post is refused even with the right token.
    let csrf = crew.csrf(&state).await;
    let r = post_form(
        &state,
        "/alerts/1/ack",
        &format!("csrf={csrf}&comment=x"),
        &[("cookie", &crew.cookie), ("host", "127.0.0.1:8080"), ("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(alert(&state, &crew, 1).await["state"], "open", "nothing changed");
}

#[tokio::test]
async fn crew_acknowledges_resolves_and_shelves() {
    let (state, _dir) = state_with_readings().await;
    let crew = login(&state, Role::Crew).await;
    let csrf = crew.csrf(&state).await;

    // Acknowledge from the inbox with a comment: back to the inbox at the alert's card.
    let r = crew
        .post(
            &state,
            "/alerts/1/ack",
            &format!("csrf={csrf}&next=%2Falerts%3Flang%3Den&comment=On+my+way+%3Cb%3E15+min%3C%2Fb%3E"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/alerts?lang=en#alert-1"));
    let a = alert(&state, &crew, 1).await;
    assert_eq!(a["state"], "acknowledged");
    assert_eq!(a["acknowledged_by"], "crew");
    assert_eq!(a["ack_comment"], "On my way <b>15 min</b>");
    let page = crew.get(&state, "/alerts?lang=en").await.body;
    let card = page.split("id=\"alert-1\"").nth(1).unwrap().split("</article>").next().unwrap();
    assert!(card.contains(">Acknowledged</strong>"), "{card}");
    assert!(card.contains("Acknowledged by crew") && card.contains("On my way &lt;b&gt;15 min&lt;/b&gt;"), "{card}");
    assert!(!card.contains("action=\"/alerts/1/ack\""), "no second acknowledge");
    // Twice is a conflict, not an error of ours.
    let r = crew.post(&state, "/alerts/1/ack", &format!("csrf={csrf}&comment=again")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("acknowledged"), "{}", r.body);

    // Resolve with a note; then nothing more can happen to it.
    let r = crew.post(&state, "/alerts/1/resolve", &format!("csrf={csrf}&note=Valve+reseated")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/alerts/1"), "no next: the alert's page");
    let a = alert(&state, &crew, 1).await;
    assert_eq!(
        (a["state"].as_str(), a["resolved_by"].as_str(), a["resolve_note"].as_str()),
        (Some("resolved"), Some("crew"), Some("Valve reseated"))
    );
    let r = crew.post(&state, "/alerts/1/shelve", &format!("csrf={csrf}&hours=4")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Shelve through the API: until now + 4 h.
    let before = Utc::now();
    let r = post_json(&state, &crew, "/api/alerts/2/shelve", r#"{"hours": 4}"#, Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = json(&r.body);
    assert_eq!(a["state"], "shelved");
    let until: DateTime<Utc> = a["shelved_until"].as_str().unwrap().parse().unwrap();
    let h = (until - before).num_seconds();
    assert!((4 * 3600 - 5..=4 * 3600 + 5).contains(&h), "{h} s");
    // A shelved alert can still be taken: acknowledging ends the shelving.
    let r = post_json(&state, &crew, "/api/alerts/2/ack", r#"{"comment": "taking it"}"#, Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = json(&r.body);
    assert_eq!((a["state"].as_str(), a["shelved_until"].is_null()), (Some("acknowledged"), true));

    // A `next` to another site is not followed.
    let r = crew.post(&state, "/alerts/3/resolve", &format!("csrf={csrf}&next=%2F%2Fevil.example%2F")).await;
    assert_eq!(r.header("location"), Some("/alerts/3"));
    assert!(alert(&state, &crew, 3).await["resolve_note"].is_null(), "an empty note is no note");
}

#[tokio::test]
async fn inbox_orders_by_severity_and_filters() {
    let (state, _dir) = state_with_readings().await;
    let crew = login(&state, Role::Crew).await;
    let r = crew.get(&state, "/alerts?lang=en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.len() < 200_000, "{} bytes", r.body.len());
    // Active only; critical first, then major (open before shelved), then minor.
    assert_eq!(card_ids(&r.body), [1, 2, 5, 3]);
    // Severity and state are words, not only colours; messages are escaped.
    assert!(r.body.contains("Critical</span>") && r.body.contains("Major</span>") && r.body.contains("Minor</span>"));
    assert!(r.body.contains(">Open</strong>") && r.body.contains(">Shelved</strong>"));
    assert!(r.body.contains("Shelved until"));
    assert!(r.body.contains("&lt;script&gt;") && !r.body.contains("low <script>"));
    // Counts by severity link to filtered lists; every form control has a label.
    assert!(r.body.contains("href=\"/alerts?state=active&amp;severity=critical\""));
    assert_eq!(r.body.matches("<textarea id=\"ack-comment-").count(), 3, "open and shelved alerts");
    for id in ["ack-comment-1", "ack-comment-2", "ack-comment-5", "state", "severity"] {
        assert!(r.body.contains(&format!("<label for=\"{id}\">")), "{id}");
    }

    let ids = |q: &'static str| {
        let (state, crew) = (state.clone(), crew.clone());
        async move {
            let j = json(&crew.get(&state, &format!("/api/alerts?{q}")).await.body);
            j["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("severity=major").await, [2, 5]);
    assert_eq!(ids("state=resolved").await, [4]);
    assert_eq!(ids("state=all").await, [1, 2, 5, 3, 4]);
    assert_eq!(ids("state=open&severity=critical").await, [1]);
    assert_eq!(ids("asset=PS-01").await, [1, 3]);
    // Filter values are bound, never SQL.
    assert_eq!(ids("asset=PS-01%27%20OR%20%271%27%3D%271").await, Vec::<i64>::new());
    let j = json(&crew.get(&state, "/api/alerts").await.body);
    assert_eq!(j["active_by_severity"], serde_json::json!({"critical": 1, "major": 2, "minor": 1, "info": 0}));
    assert_eq!(j["truncated"], false);

    // An asset's history has every state, newest first; a name that needs encoding works.
    let r = crew.get(&state, "/alerts/asset/PS-01?lang=en").await;
    assert_eq!(card_ids(&r.body), [1, 3, 4]);
    assert!(r.body.contains("Resolved by the rule"), "auto-resolved");
    let r = crew.get(&state, "/alerts/asset/%E9%85%8D%E6%B0%B4%E5%8C%BA-%E5%8C%97").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(card_ids(&r.body), [2]);
    assert!(r.body.contains("アラート履歴: 配水区-北"));
    let r = crew.get(&state, "/alerts").await;
    assert!(r.body.contains("href=\"/alerts/asset/%E9%85%8D%E6%B0%B4%E5%8C%BA-%E5%8C%97\""), "links encode the asset");
    assert!(r.body.contains("緊急") && r.body.contains("未対応"), "Japanese by default");

    // The overview counts them and links here.
    let r = crew.get(&state, "/?lang=en").await;
    assert!(r.body.contains("<a href=\"/alerts\" id=\"open-alerts\">4</a>"), "active alerts on the overview");
    assert!(r.body.contains("href=\"/alerts?state=active&amp;severity=major\"><span class=\"sev sev-major\">"));
}

#[tokio::test]
async fn bad_alert_parameters_are_400_and_unknown_alerts_404() {
    let (state, _dir) = state_with_readings().await;
    let crew = login(&state, Role::Crew).await;
    let csrf = crew.csrf(&state).await;
    for (uri, needle) in [
        ("/alerts?state=closed", "state=\"closed\""),
        ("/api/alerts?severity=urgent", "severity=\"urgent\""),
        ("/api/alerts?asset=a%00b", "control"),
        ("/alerts/abc", "not an alert number"),
        ("/api/alerts/0", "not an alert number"),
        ("/api/alerts/1%20OR%201=1", "not an alert number"),
        ("/alerts/asset/PS-01?state=gone", "state="),
    ] {
        let r = crew.get_with(&state, uri, &[("accept-language", "en")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert!(r.body.contains(needle), "{uri}: {}", r.body);
    }
    for (uri, form, needle) in [
        ("/alerts/1/shelve", "hours=0", "1 to 168"),
        ("/alerts/1/shelve", "hours=999", "1 to 168"),
        ("/alerts/1/shelve", "hours=soon", "1 to 168"),
        ("/alerts/1/shelve", "", "1 to 168"),
        ("/alerts/x/ack", "comment=a", "not an alert number"),
    ] {
        let r = crew.post(&state, &format!("{uri}?lang=en"), &format!("csrf={csrf}&{form}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri} {form}: {}", r.body);
        assert!(r.body.contains(needle), "{uri} {form}: {}", r.body);
    }
    let long = "x".repeat(2001);
    let r = crew.post(&state, "/alerts/1/ack?lang=en", &format!("csrf={csrf}&comment={long}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("at most 2000"), "{}", r.body);
    for body in [r#"{"hours": "4"}"#, r#"{"hours": -1}"#, r#"{"comment": 1}"#, r#"{"nonsense": true}"#, "not json"] {
        let r = post_json(&state, &crew, "/api/alerts/1/ack", body, Some(&csrf)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    assert_eq!(alert(&state, &crew, 1).await["state"], "open", "nothing changed");

    assert_eq!(crew.get(&state, "/alerts/999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(crew.get(&state, "/api/alerts/999").await.status, StatusCode::NOT_FOUND);
    let r = crew.post(&state, "/alerts/999/ack", &format!("csrf={csrf}&comment=x")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = crew.post(&state, "/alerts/1/delete", &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
