//! The dashboard in a real browser: headless Debian Chromium driven over WebDriver
//! (chromedriver), at a phone's 390×844 viewport. Logs in through the form, opens the
//! overview, a device page and a point page, checks that charts fit the screen, logs out;
//! acknowledges an alert; reads the plan and downloads its PDF report as a planner.
//! Screenshots go to `target/tmp/screenshots/` as artifacts for a person to look at.
//!
//! Needs `chromium`, `chromium-driver`, `fonts-ipaexfont-gothic` and `poppler-utils` (scripts/test installs
//! them); fails, rather than skips, without them.

mod util;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use store::Role;
use tokio_util::sync::CancellationToken;
use util::{password, state_with_readings};

const WIDTH: u32 = 390;
const HEIGHT: u32 = 844;

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts chromedriver on a free loopback port and connects a headless Chromium session.
async fn browser() -> (Client, tokio::process::Child, tempfile::TempDir) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver runs (apt-get install chromium chromium-driver; scripts/test does)");
    let profile = tempfile::tempdir().unwrap();
    // Flags from shared/reference/dashboard.md §4.2: no sandbox as root, and no background
    // connections on this closed network.
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            // Headless windows are at least 500 px wide; phone emulation gives the real
            // 390 px viewport (and a touch screen).
            "mobileEmulation": {"deviceMetrics": {"width": WIDTH, "height": HEIGHT, "pixelRatio": 1.0, "touch": true}},
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--window-size={WIDTH},{HEIGHT}"),
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps = match caps {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
            Ok(c) => break c,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session from chromedriver at {url}: {e}"),
        }
    };
    (client, driver, profile)
}

async fn save_screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    assert!(png.len() > 5_000, "{name}: a {}-byte screenshot is blank", png.len());
    assert_eq!(&png[1..4], b"PNG");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// Evaluates `script` (which returns a number) until `ok` holds, for up to 10 s.
async fn wait_for(c: &Client, what: &str, script: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.execute(script, vec![]).await.unwrap().as_f64().unwrap_or(f64::NAN);
        if ok(v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: still {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Form controls (but hidden fields and buttons, whose text is their name) with neither a
/// `<label>` nor an `aria-label`/`aria-labelledby`, by id or name.
const UNLABELLED_JS: &str = "return [...document.querySelectorAll('input, select, textarea')]\
    .filter(e => !['hidden', 'submit', 'button', 'reset'].includes(e.type))\
    .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))\
    .map(e => e.id || e.name || e.outerHTML.slice(0, 80))";

/// The smallest side of any control a crew member taps on the page, in CSS pixels.
const SMALLEST_TARGET_JS: &str = "return Math.min(...[...document.querySelectorAll(\
    'main button, main select, main textarea, main input:not([type=hidden]), main a.button, nav.ranges a')]\
    .map(e => { const r = e.getBoundingClientRect(); return Math.min(r.height, r.width); }))";

/// A crew page at 390×844 (issue #7): every form control labelled, every control at least
/// 44 px on each side (WCAG 2.5.5), measured from the rendered layout.
async fn assert_accessible(c: &Client, page: &str) {
    let unlabelled = c.execute(UNLABELLED_JS, vec![]).await.unwrap();
    assert_eq!(unlabelled, serde_json::json!([]), "{page}: form controls without a label");
    let smallest = wait_for(c, "touch targets", SMALLEST_TARGET_JS, |v| v.is_finite()).await;
    assert!(smallest >= 44.0, "{page}: a touch target of {smallest} px");
}

/// Presses Tab until the element with `id` has the focus; the number of presses, or none
/// within `max`.
async fn tab_to(c: &Client, id: &str, max: usize) -> Option<usize> {
    for n in 1..=max {
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: Key::Tab.into() })
            .then(KeyAction::Up { value: Key::Tab.into() });
        c.perform_actions(tab).await.unwrap();
        let focused =
            c.execute("return document.activeElement ? document.activeElement.id : ''", vec![]).await.unwrap();
        if focused == id {
            return Some(n);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crew_logs_in_and_reads_charts_on_a_phone() {
    let (state, _dir) = state_with_readings().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let server = tokio::spawn(dashboard::serve(listener, state, cancel.clone()));
    let (c, mut driver, _profile) = browser().await;

    let run = async {
        // Anonymous: the overview sends us to the login form.
        c.goto(&format!("{base}/?lang=ja")).await.unwrap();
        assert!(c.current_url().await.unwrap().path() == "/login");
        c.find(Locator::Id("username")).await.unwrap().send_keys("crew").await.unwrap();
        c.find(Locator::Id("password")).await.unwrap().send_keys(&password(Role::Crew)).await.unwrap();
        c.find(Locator::Id("login")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("table.devices")).await.unwrap();
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), "/");
        let inner = wait_for(&c, "viewport", "return window.innerWidth", |w| w > 0.0).await;
        assert_eq!(inner, f64::from(WIDTH), "the phone viewport");
        let text = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
        assert!(text.contains("概要") && text.contains("fm01"), "{text}");
        wait_for(
            &c,
            "overview charts redrawn to fit",
            "return Math.max(...[...document.querySelectorAll('.svgbox svg')].map(s => +s.getAttribute('width')))",
            |w| w > 0.0 && w <= f64::from(WIDTH),
        )
        .await;
        save_screenshot(&c, "overview-390x844.png").await;

        // A device page: its charts are images that load when scrolled to, asked for at the
        // phone's width by the page script.
        c.goto(&format!("{base}/devices/fm01")).await.unwrap();
        let svg_w = wait_for(
            &c,
            "chart loaded at the phone's width",
            "const i = document.querySelector('.svgbox img'); return i && i.complete ? i.naturalWidth : 0",
            |w| w > 0.0 && w <= f64::from(WIDTH),
        )
        .await;
        assert!(svg_w >= 300.0, "drawn for the phone, not shrunk: {svg_w}");
        let scroll = wait_for(&c, "page width", "return document.documentElement.scrollWidth", |_| true).await;
        assert!(scroll <= f64::from(WIDTH), "no sideways scrolling: {scroll}");
        save_screenshot(&c, "device-390x844.png").await;

        // A point page over the last hour, with the gap listed; crews get no CSV link.
        c.goto(&format!("{base}/devices/fm01/flow?range=1h")).await.unwrap();
        wait_for(
            &c,
            "point chart redrawn to fit",
            "const s = document.querySelector('.svgbox svg'); return s ? +s.getAttribute('width') : 0",
            |w| w > 0.0 && w <= f64::from(WIDTH),
        )
        .await;
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("欠測"), "{text}");
        assert!(c.find(Locator::Id("csv")).await.is_err(), "no export for crews");
        let current = c.find(Locator::Css("nav.ranges a[aria-current]")).await.unwrap().text().await.unwrap();
        assert_eq!(current, "1時間");
        save_screenshot(&c, "point-390x844.png").await;

        // The risk ranking: the matrix and the table fit the phone (the table scrolls in its
        // own box), grades are written out, and the filter form works.
        c.goto(&format!("{base}/risk")).await.unwrap();
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("table.risk")).await.unwrap();
        let scroll = wait_for(&c, "risk page width", "return document.documentElement.scrollWidth", |_| true).await;
        assert!(scroll <= f64::from(WIDTH), "no sideways scrolling on /risk: {scroll}");
        let matrix_w = wait_for(
            &c,
            "matrix drawn",
            "const s = document.querySelector('.svgbox svg'); return s ? s.getBoundingClientRect().width : 0",
            |w| w > 0.0,
        )
        .await;
        assert!(matrix_w >= 300.0, "the matrix is not shrunk on a phone: {matrix_w}");
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("リスク評価") && text.contains("120 本が該当"), "{text}");
        save_screenshot(&c, "risk-390x844.png").await;
        c.find(Locator::Css("select#material option[value='PVC']")).await.unwrap().click().await.unwrap();
        c.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
        wait_for(&c, "filtered by the form", "return location.search.includes('material=PVC') ? 1 : 0", |v| v == 1.0)
            .await;
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("table.risk")).await.unwrap();
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("40 本が該当"), "{text}");

        // A main's evidence, then the model card.
        c.find(Locator::Css("table.risk tbody a")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("p.explanation")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().starts_with("/risk/P-"));
        c.goto(&format!("{base}/model")).await.unwrap();
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("モデルカード") && text.contains("基準: 経過年数順") && text.contains("28.3%"), "{text}");
        let scroll = wait_for(&c, "model page width", "return document.documentElement.scrollWidth", |_| true).await;
        assert!(scroll <= f64::from(WIDTH), "no sideways scrolling on /model: {scroll}");
        save_screenshot(&c, "model-390x844.png").await;

        // The renewal plan: two budgets side by side, charts, no sideways scrolling.
        c.goto(&format!("{base}/plan")).await.unwrap();
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("更新計画") && text.contains("年度別の2案比較"), "{text}");
        assert_eq!(c.find_all(Locator::Css("main figure svg")).await.unwrap().len(), 3, "three plan charts");
        let scroll = wait_for(&c, "plan page width", "return document.documentElement.scrollWidth", |_| true).await;
        assert!(scroll <= f64::from(WIDTH), "no sideways scrolling on /plan: {scroll}");
        save_screenshot(&c, "plan-390x844.png").await;

        // Log out with the header button (a CSRF-protected form).
        c.find(Locator::Css("header form button")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Id("password")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/login");
        c.goto(&format!("{base}/")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/login");
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = c.close().await;
    let _ = driver.kill().await;
    cancel.cancel();
    let _ = server.await;
    outcome.expect("browser test finished within 2 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crew_acknowledges_an_alert_on_a_phone() {
    let (state, _dir) = state_with_readings().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let server = tokio::spawn(dashboard::serve(listener, state, cancel.clone()));
    let (c, mut driver, _profile) = browser().await;

    let run = async {
        // A deep link to the inbox survives the login.
        c.goto(&format!("{base}/alerts?lang=ja")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/login");
        assert_accessible(&c, "/login").await;
        assert!(tab_to(&c, "username", 20).await.is_some(), "Tab reaches the user name field");
        c.find(Locator::Id("username")).await.unwrap().send_keys("crew").await.unwrap();
        c.find(Locator::Id("password")).await.unwrap().send_keys(&password(Role::Crew)).await.unwrap();
        c.find(Locator::Id("login")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Id("alert-1")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/alerts");
        let inner = wait_for(&c, "viewport", "return window.innerWidth", |w| w > 0.0).await;
        assert_eq!(inner, f64::from(WIDTH), "the phone viewport");
        let scroll = wait_for(&c, "inbox width", "return document.documentElement.scrollWidth", |_| true).await;
        assert!(scroll <= f64::from(WIDTH), "no sideways scrolling on /alerts: {scroll}");
        // Every control a crew taps is at least 44 px high, and at least 44 px wide.
        let smallest = wait_for(
            &c,
            "touch targets",
            "return Math.min(...[...document.querySelectorAll('main button, main select, main textarea, main a.button, nav.ranges a')]\
               .map(e => { const r = e.getBoundingClientRect(); return Math.min(r.height, r.width); }))",
            |v| v.is_finite(),
        )
        .await;
        assert!(smallest >= 44.0, "a touch target of {smallest} px");
        let card = c.find(Locator::Id("alert-1")).await.unwrap().text().await.unwrap();
        assert!(card.contains("緊急") && card.contains("未対応") && card.contains("PS-01"), "{card}");
        save_screenshot(&c, "alerts-390x844.png").await;
        assert_accessible(&c, "/alerts").await;
        // A keyboard alone gets from the top of the inbox to the first acknowledge button.
        c.execute("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)", vec![])
            .await
            .unwrap();
        let presses = tab_to(&c, "ack-1", 80).await;
        assert!(presses.is_some(), "Tab never reaches the acknowledge button");

        // Acknowledge the critical alert with a comment.
        c.find(Locator::Id("ack-comment-1")).await.unwrap().send_keys("現地に向かいます（15分）").await.unwrap();
        c.find(Locator::Id("ack-1")).await.unwrap().click().await.unwrap();
        wait_for(
            &c,
            "acknowledged",
            "const s = document.getElementById('state-1'); return s && s.textContent === '確認済み' ? 1 : 0",
            |v| v == 1.0,
        )
        .await;
        assert_eq!(c.current_url().await.unwrap().path(), "/alerts");
        let card = c.find(Locator::Id("alert-1")).await.unwrap().text().await.unwrap();
        assert!(card.contains("確認: crew") && card.contains("現地に向かいます（15分）"), "{card}");
        assert!(c.find(Locator::Id("ack-1")).await.is_err(), "no second acknowledge button");
        save_screenshot(&c, "alert-acknowledged-390x844.png").await;

        // The alert's own page offers shelving and resolving; resolve it with a note.
        c.goto(&format!("{base}/alerts/1")).await.unwrap();
        assert_accessible(&c, "/alerts/1").await;
        c.find(Locator::Id("resolve-note-1")).await.unwrap().send_keys("弁を交換").await.unwrap();
        c.find(Locator::Id("resolve-1")).await.unwrap().click().await.unwrap();
        wait_for(
            &c,
            "resolved",
            "const s = document.getElementById('state-1'); return s && s.textContent === '解決済み' ? 1 : 0",
            |v| v == 1.0,
        )
        .await;
        save_screenshot(&c, "alert-resolved-390x844.png").await;
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = c.close().await;
    let _ = driver.kill().await;
    cancel.cancel();
    let _ = server.await;
    outcome.expect("browser test finished within 2 minutes");
}

/// Issue #7: a planner on a phone reads the plan with its charts drawn at the phone's width
/// (not shrunk) and downloads the PDF report with the browser's session; the report's first
/// page, rendered by `pdftoppm`, is kept beside the screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_reads_the_plan_and_downloads_the_pdf_on_a_phone() {
    let (state, _dir) = state_with_readings().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let server = tokio::spawn(dashboard::serve(listener, state, cancel.clone()));
    let (c, mut driver, _profile) = browser().await;

    let run = async {
        c.goto(&format!("{base}/plan?lang=ja")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/login");
        c.find(Locator::Id("username")).await.unwrap().send_keys("planner").await.unwrap();
        c.find(Locator::Id("password")).await.unwrap().send_keys(&password(Role::Planner)).await.unwrap();
        c.find(Locator::Id("login")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("table.plan")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/plan");
        // Every chart is redrawn for its box: its own width is the width it is shown at.
        let drawn = wait_for(
            &c,
            "plan charts drawn at their box's width",
            "const s = [...document.querySelectorAll('main figure svg')];\
             return s.length === 3 && s.every(e => Math.abs(+e.getAttribute('width') - e.getBoundingClientRect().width) < 1)\
               ? Math.max(...s.map(e => +e.getAttribute('width'))) : 0",
            |w| w > 0.0,
        )
        .await;
        assert!((300.0..=f64::from(WIDTH)).contains(&drawn), "drawn for the phone: {drawn} px");
        let scroll = wait_for(&c, "plan page width", "return document.documentElement.scrollWidth", |_| true).await;
        assert!(scroll <= f64::from(WIDTH), "no sideways scrolling on /plan: {scroll}");
        save_screenshot(&c, "plan-planner-390x844.png").await;
        // The Japanese text of the charts is drawn with real glyphs, not tofu: each CJK
        // character of the charts' <text>, drawn on a canvas in the same font, must differ
        // from a code point no font has (U+10FFFD, drawn as .notdef or nothing) and not be blank.
        let tofu = wait_for(
            &c,
            "Japanese chart text in the charts",
            "const cjk = /[\\u3040-\\u30ff\\u4e00-\\u9fff]/;\
             const texts = [...document.querySelectorAll('main figure svg text')].filter(e => cjk.test(e.textContent));\
             if (!texts.length) return -1;\
             const family = getComputedStyle(texts[0]).fontFamily;\
             const cv = document.createElement('canvas'); cv.width = 64; cv.height = 64;\
             const x = cv.getContext('2d');\
             const draw = ch => { x.clearRect(0, 0, 64, 64); x.font = '40px ' + family; x.fillText(ch, 4, 48);\
                                  return x.getImageData(0, 0, 64, 64).data.join(','); };\
             const notdef = draw('\\u{10FFFD}');\
             const chars = [...new Set([...texts.map(t => t.textContent).join('')].filter(ch => cjk.test(ch)))];\
             return chars.filter(ch => { const d = draw(ch); return d === notdef || !/[1-9]/.test(d); }).length",
            |v| v >= 0.0,
        )
        .await;
        assert_eq!(tofu, 0.0, "CJK characters of the plan charts drawn as tofu or blank");

        // The PDF link, fetched as the browser would download it (same session cookie); a
        // build without the `pdf` feature has no PDF link.
        if cfg!(feature = "pdf") {
            let href =
                c.find(Locator::Css("a[href^='/plan/export?format=pdf']")).await.unwrap().attr("href").await.unwrap();
            let got = c
                .execute_async(
                    "const done = arguments[arguments.length - 1];\
                     fetch(arguments[0], {credentials: 'same-origin'}).then(async r => {\
                       const body = Array.from(new Uint8Array(await r.arrayBuffer()));\
                       done({status: r.status, type: r.headers.get('content-type'),\
                             disposition: r.headers.get('content-disposition'), body});\
                     }).catch(e => done({status: 0, type: String(e)}));",
                    vec![serde_json::json!(href.unwrap())],
                )
                .await
                .unwrap();
            assert_eq!(got["status"], 200, "{}", got["type"]);
            assert_eq!(got["type"], "application/pdf");
            assert!(got["disposition"].as_str().unwrap().contains(".pdf"), "{}", got["disposition"]);
            let pdf: Vec<u8> = got["body"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            assert!(pdf.starts_with(b"%PDF-"), "a PDF");
            let path = screenshot_dir().join("plan-report.pdf");
            std::fs::write(&path, &pdf).unwrap();
            let out = std::process::Command::new("pdftoppm")
                .args(["-r", "60", "-png", "-f", "1", "-l", "1", "-singlefile"])
                .arg(&path)
                .arg(screenshot_dir().join("plan-report-page1"))
                .output()
                .expect("pdftoppm (apt-get install poppler-utils; scripts/test does)");
            assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = c.close().await;
    let _ = driver.kill().await;
    cancel.cancel();
    let _ = server.await;
    outcome.expect("browser test finished within 2 minutes");
}
