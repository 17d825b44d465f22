//! report.html as a person sees it: rendered by headless Chromium from the fixture
//! results, checked for console errors, for the recommendation and the charts in the
//! DOM, and for a screenshot that is not blank.
//!
//! Needs Debian's `chromium` package (`apt-get install -y chromium`); the test FAILS,
//! with that command in the message, when /usr/bin/chromium is missing. Set
//! DBBENCH_SCREENSHOT=path.png to keep the screenshot for a look.

#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use dbbench::report;
use dbbench::results::RunResults;

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path, extra: &[String], page: &Path) -> std::process::Output {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test renders report.html in headless Chromium; install it with `apt-get install -y chromium`"
    );
    let url = format!("file://{}", page.display());
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .output()
        .expect("chromium starts");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Console messages Chromium logs to stderr (`CONSOLE(...)` lines), which a page
/// without script should have none of.
fn console_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn report_html_renders_in_chromium() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report-results.json");
    let results = RunResults::read(&fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    report::write_reports(&results, dir.path()).unwrap();
    let page = dir.path().join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "no script is needed");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "self-contained: nothing fetched");

    let profile = dir.path().join("profile");
    let dom = chromium(&profile, &["--dump-dom".to_string()], &page);
    let text = String::from_utf8_lossy(&dom.stdout);
    let errors = console_errors(&String::from_utf8_lossy(&dom.stderr));
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(
        text.contains("Recommended: sqlite, the only engine that meets all 8 requirements."),
        "{}",
        &text[..text.len().min(3000)]
    );
    let svgs = text.matches("<svg").count();
    // 8 ops x (spectrum + timeline) + the ef_search sweep + load bars.
    assert!(svgs >= 18, "{svgs} <svg> elements in the DOM");
    assert!(text.contains("latency by percentile") && text.contains("recall against throughput"));
    assert!(!text.contains("chart not drawn"), "every chart of the fixture can be drawn");

    let shot = dir.path().join("report.png");
    let out =
        chromium(&profile, &[format!("--screenshot={}", shot.display()), "--window-size=1280,2000".into()], &page);
    let errors = console_errors(&String::from_utf8_lossy(&out.stderr));
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    if let Some(keep) = std::env::var_os("DBBENCH_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("screenshot written"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000));
    let channels = info.color_type.samples();
    let colours: HashSet<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    assert!(colours.len() > 200, "the screenshot looks blank: {} distinct colours", colours.len());
}
