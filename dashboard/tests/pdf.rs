//! The PDF renewal-plan report (`GET /plan/export?format=pdf`), in-process over the 120-main
//! test ranking: roles, a real PDF with its file name, the 503 without a Japanese font, and
//! the Japanese report checked with poppler (`pdftoppm` renders it, `pdffonts` finds a
//! subset of IPAexGothic embedded, `pdftotext` reads the title and a pipe id back).
//!
//! Needs Debian `fonts-ipaexfont-gothic` and `poppler-utils` (scripts/test installs them).

#![cfg(feature = "pdf")]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use store::Role;
use util::{get_raw, login, state_with_readings};

fn run(tool: &str, args: &[&str], pdf: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(pdf)
        .args(if tool == "pdftotext" { &["-"][..] } else { &[][..] })
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (install poppler-utils; scripts/test does)"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn exporters_get_a_pdf_others_403() {
    let (state, _dir) = state_with_readings().await;
    for role in Role::ALL {
        let s = login(&state, role).await;
        let (status, headers, body) = get_raw(&state, &s, "/plan/export?format=pdf&lang=en").await;
        let exports = matches!(role, Role::Engineer | Role::Planner | Role::Admin);
        if !exports {
            assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{role}: {}", String::from_utf8_lossy(&body));
        assert!(body.starts_with(b"%PDF-"), "{role}: a PDF");
        assert_eq!(headers[CONTENT_TYPE], "application/pdf");
        assert_eq!(headers[CONTENT_DISPOSITION], "attachment; filename=\"mizumori-plan-2026-04-01.pdf\"");
    }
    // Changed inputs stay the planner's, as on the page.
    let engineer = login(&state, Role::Engineer).await;
    let (status, _, _) = get_raw(&state, &engineer, "/plan/export?format=pdf&budget=5km").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(util::get(&state, "/plan/export?format=pdf").await.status, StatusCode::SEE_OTHER, "no session");
}

#[tokio::test]
async fn without_a_japanese_font_the_pdf_is_503_in_the_users_language_and_health_says_so() {
    let (state, _dir) = state_with_readings().await;
    let state = state.with_pdf_font_paths(&[PathBuf::from("/nonexistent/ipaexg.ttf")]);
    let health: serde_json::Value = serde_json::from_str(&util::get(&state, "/api/health").await.body).unwrap();
    assert_eq!(health["pdf_font"]["available"], false, "{health}");
    assert!(health["pdf_font"]["problem"].as_str().unwrap().contains("/nonexistent/ipaexg.ttf"), "{health}");
    let planner = login(&state, Role::Planner).await;
    let r = planner.get(&state, "/plan/export?format=pdf&lang=ja").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("日本語フォント") && r.body.contains("fonts-ipaexfont-gothic"), "{}", r.body);
    let r = planner.get(&state, "/plan/export?format=pdf&lang=en").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("no Japanese font"), "{}", r.body);
    // The other exports do not need the font.
    assert_eq!(planner.get(&state, "/plan/export?format=csv").await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_names_the_font_when_there_is_one() {
    let (state, _dir) = state_with_readings().await;
    let font = dashboard::KNOWN_FONT_PATHS[0];
    let state = state.with_pdf_font_paths(&[PathBuf::from(font)]);
    let health: serde_json::Value = serde_json::from_str(&util::get(&state, "/api/health").await.body).unwrap();
    assert_eq!(health["pdf_font"]["available"], true, "{health} (install fonts-ipaexfont-gothic)");
    assert_eq!(health["pdf_font"]["path"], font);
}

#[tokio::test]
async fn the_japanese_report_renders_embeds_a_font_subset_and_reads_back() {
    let (state, _dir) = state_with_readings().await;
    let state = state.with_pdf_font_paths(&[PathBuf::from(dashboard::KNOWN_FONT_PATHS[0])]);
    let planner = login(&state, Role::Planner).await;
    // Thirty years of a large budget: the schedule holds every main, over several pages.
    let (status, _, pdf) = get_raw(&state, &planner, "/plan/export?format=pdf&lang=ja&budget=3km&years=30").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&pdf));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.pdf");
    std::fs::write(&file, &pdf).unwrap();

    let fonts = run("pdffonts", &[], &file);
    let ipa: Vec<&str> = fonts.lines().filter(|l| l.contains("IPAexGothic")).collect();
    assert!(!ipa.is_empty(), "IPAexGothic embedded:\n{fonts}");
    for line in &ipa {
        // A subset's name carries a six-letter tag: ABCDEF+IPAexGothic; columns emb and sub say yes.
        let name = line.split_whitespace().next().unwrap();
        assert!(name.len() > 7 && name.as_bytes()[6] == b'+', "subset name: {line}");
        let yes = line.split_whitespace().filter(|w| *w == "yes").count();
        assert!(yes >= 2, "embedded and subset: {line}");
    }

    let text = run("pdftotext", &["-enc", "UTF-8"], &file);
    assert!(text.contains("管路更新計画書"), "the Japanese title:\n{text}");
    assert!(text.contains("P-001") && text.contains("P-120"), "pipe ids in the schedule");
    assert!(text.contains("年度別集計") && text.contains("年度"), "fiscal years");
    assert!(text.contains("年度別更新延長"), "a chart title");

    let info = run("pdfinfo", &[], &file);
    let pages: u32 = info.lines().find_map(|l| l.strip_prefix("Pages:")).unwrap().trim().parse().unwrap();
    assert!(pages >= 3, "the schedule runs over pages: {info}");
    // Every page renders.
    let prefix = dir.path().join("page");
    let out = Command::new("pdftoppm").args(["-r", "40", "-png"]).arg(&file).arg(&prefix).output().unwrap();
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let pngs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png"))
        .count();
    assert_eq!(pngs as u32, pages);
}
