//! The what-if HTML report opens in headless Chromium with no network and its
//! plots are drawn: the growth charts (one polyline per series with every
//! month, threshold lines), the headroom bars and the N-1 table are in the
//! rendered DOM. Skipped without Chromium unless STRATUS_CI is set.

use std::process::Command;

fn chromium() -> Option<String> {
    let found = std::env::var("STRATUS_TEST_CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| p.to_string())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("STRATUS_CI").is_none(),
            "STRATUS_CI is set but no Chromium (STRATUS_TEST_CHROMIUM)"
        );
        eprintln!("skipped: no Chromium (set STRATUS_TEST_CHROMIUM)");
    }
    found
}

#[test]
fn the_html_report_renders_its_plots_in_headless_chromium() {
    let Some(chrome) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/ha-host-crash.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args([
            "whatif",
            scenario,
            "--fail-host",
            "kvm1",
            "--grow",
            "15",
            "--months",
            "12",
            "--format",
            "html",
            "--quiet",
            "--out",
        ])
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        !text.contains("http://") && !text.contains("https://") && !text.contains("<script"),
        "self-contained"
    );
    let profile = dir.path().join("profile");
    let dom = Command::new(&chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(
        dom.contains("<svg class=\"growth\""),
        "growth charts in the DOM: {}",
        &dom[..dom.len().min(500)]
    );
    // Every series has 13 points (now + 12 months), with real coordinates.
    let series: Vec<&str> = dom.split("class=\"series\"").skip(1).collect();
    assert!(series.len() >= 2, "CPU and memory lines");
    for s in &series {
        let pts = s.split(" points=\"").nth(1).unwrap().split('"').next().unwrap();
        let n = pts
            .split_whitespace()
            .filter(|p| p.split(',').all(|x| x.parse::<f64>().is_ok()))
            .count();
        assert_eq!(n, 13, "{pts}");
    }
    assert!(
        dom.matches("class=\"threshold\"").count() >= 2,
        "notify and disable lines"
    );
    assert!(
        dom.contains("id=\"headroom\"") && dom.contains("class=\"bar\""),
        "headroom bars"
    );
    assert!(
        dom.contains("id=\"n1\"") && dom.contains("<td>kvm2</td>"),
        "the N-1 table"
    );
    assert!(dom.contains("id=\"plan\""), "the re-placement plan");
}
