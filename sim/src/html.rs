//! The self-contained HTML report of a run (`sim run --report FILE.html`):
//! inline SVG plots of the per-minute series with the disable thresholds
//! drawn, the HA timeline, expectations with the moment each first failed,
//! and the failed operations with their explanations. No script, no network.

use crate::report::RunReport;
use crate::runner::Runner;
use crate::series::Series;
use std::fmt::Write;

/// A named line of (simulated seconds, value) points.
type Line = (String, Vec<(f64, f64)>);

const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One line chart: x in simulated seconds, named lines, dashed horizontal thresholds.
fn chart(title: &str, lines: &[Line], y_max: f64, thresholds: &[Line], x_end: f64) -> String {
    let (w, h, l, r, t, b) = (760.0, 260.0, 56.0, 150.0, 28.0, 36.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let y_max = if y_max > 0.0 { y_max } else { 1.0 };
    let x_end = if x_end > 0.0 { x_end } else { 1.0 };
    let px = |x: f64| l + x / x_end * pw;
    let py = |y: f64| t + ph - (y / y_max).min(1.05) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{0}"><text x="{l}" y="18" font-weight="bold">{0}</text>"#,
        esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for k in 0..=4 {
        let y = y_max * f64::from(k) / 4.0;
        let label = if y_max <= 1.5 {
            format!("{:.0}%", y * 100.0)
        } else {
            format!("{y:.0}")
        };
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{x2}" y1="{y0}" y2="{y0}" stroke="#eee"/><text x="{tx}" y="{ty}" font-size="11" text-anchor="end">{label}</text>"##,
            x2 = l + pw,
            y0 = py(y),
            tx = l - 4.0,
            ty = py(y) + 4.0
        );
    }
    for k in 0..=4 {
        let x = x_end * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            px(x),
            t + ph + 16.0,
            human_time(x)
        );
    }
    for (i, (name, pts)) in thresholds.iter().enumerate() {
        let points: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let y0 = pts.first().map_or(0.0, |p| py(p.1));
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="#c00" stroke-dasharray="6 4" points="{pts}"/><text x="{tx}" y="{ty}" font-size="11" fill="#c00">{name}</text>"##,
            pts = points.join(" "),
            tx = l + 4.0,
            ty = y0 - 4.0 - 12.0 * i as f64,
            name = esc(name)
        );
    }
    for (i, (name, pts)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        if i < 12 {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" font-size="11" fill="{color}">{}</text>"#,
                l + pw + 6.0,
                t + 40.0 + 14.0 * i as f64 + 12.0 * thresholds.len() as f64,
                esc(name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn human_time(s: f64) -> String {
    let s = s as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m", s / 60)
    }
}

fn state_lines(
    series: &Series,
    states: &[String],
    pick: impl Fn(&crate::series::Sample, &str) -> u32,
) -> (Vec<Line>, f64) {
    let mut max = 1.0f64;
    let lines = states
        .iter()
        .map(|st| {
            let pts: Vec<(f64, f64)> = series
                .samples
                .iter()
                .map(|s| {
                    let v = f64::from(pick(s, st));
                    max = max.max(v);
                    (s.t_s as f64, v)
                })
                .collect();
            (st.clone(), pts)
        })
        .collect();
    (lines, max)
}

/// The whole report as one HTML document.
pub fn render(report: &RunReport, runner: &Runner) -> String {
    let series = &runner.series;
    let cloud = runner.engine.ctl.cloud();
    let x_end = runner.end as f64 / 1000.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>body{{font-family:sans-serif;margin:24px;max-width:1000px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}.fail{{color:#c00;font-weight:bold}}.ok{{color:#080}}pre{{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}}</style></head><body><h1>Scenario {0}</h1>",
        esc(&report.scenario)
    );
    let _ = write!(
        out,
        "<p>seed {} · {} events · {:.0} s simulated in {:.2} s · <span class=\"{}\">{}</span></p>",
        report.seed,
        report.events,
        report.sim_seconds,
        report.wall_seconds,
        if report.passed() { "ok" } else { "fail" },
        if report.passed() { "PASS" } else { "FAIL" }
    );
    out.push_str(
        "<h2>Expectations</h2><table><tr><th>expectation</th><th>result</th><th>first failed</th><th>detail</th></tr>",
    );
    for x in &report.expectations {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.expectation),
            if x.ok { "ok" } else { "fail" },
            if x.ok { "ok" } else { "FAILED" },
            x.failed_at_s.map(|t| format!("{t:.1} s")).unwrap_or_default(),
            esc(&x.detail)
        );
    }
    out.push_str("</table><h2>Capacity</h2><table><tr><th>cluster</th><th>CPU allocated</th><th>CPU peak</th><th>memory allocated</th><th>memory peak</th><th>VMs</th></tr>");
    for c in &report.clusters {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} of {} MHz ({:.1}%)</td><td>{:.1}% at {}</td><td>{:.1} of {:.1} GiB ({:.1}%)</td><td>{:.1}% at {}</td><td>{}</td></tr>",
            esc(&c.cluster),
            c.cpu_allocated_mhz,
            c.cpu_total_mhz,
            c.cpu_allocated * 100.0,
            c.cpu_peak * 100.0,
            human_time(c.cpu_peak_at_s as f64),
            c.memory_allocated_gib,
            c.memory_total_gib,
            c.memory_allocated * 100.0,
            c.memory_peak * 100.0,
            human_time(c.memory_peak_at_s as f64),
            c.running_vms
        );
    }
    out.push_str("</table>");
    let shown: Vec<usize> = (0..series.cluster_names.len()).take(COLORS.len()).collect();
    // Threshold lines as they were at each sample (a mid-run change shows as a step).
    let thresholds = |memory: bool| -> Vec<Line> {
        let mut out: Vec<Line> = Vec::new();
        let name = if memory { "memory" } else { "cpu" };
        for &i in &shown {
            let pts: Vec<(f64, f64)> = series
                .samples
                .iter()
                .filter_map(|s| s.clusters.get(i))
                .zip(&series.samples)
                .map(|(c, s)| (s.t_s as f64, if memory { c.memory_threshold } else { c.cpu_threshold }))
                .collect();
            if out.iter().any(|(_, p)| *p == pts) {
                continue;
            }
            let mut values: Vec<f64> = Vec::new();
            for (_, v) in &pts {
                if values.last() != Some(v) {
                    values.push(*v);
                }
            }
            let moves: Vec<String> = values.iter().map(|v| format!("{:.0}%", v * 100.0)).collect();
            out.push((
                format!(
                    "disable {} (cluster.{name}.allocated.capacity.disablethreshold)",
                    moves.join(" → ")
                ),
                pts,
            ));
        }
        out
    };
    for memory in [false, true] {
        let lines: Vec<Line> = shown
            .iter()
            .map(|&i| {
                let pts = series
                    .samples
                    .iter()
                    .filter_map(|s| {
                        s.clusters.get(i).map(|c| {
                            (
                                s.t_s as f64,
                                if memory { c.memory_fraction() } else { c.cpu_fraction() },
                            )
                        })
                    })
                    .collect();
                (series.cluster_names[i].clone(), pts)
            })
            .collect();
        let title = if memory {
            "Memory allocated per cluster"
        } else {
            "CPU allocated per cluster"
        };
        out.push_str(&chart(title, &lines, 1.0, &thresholds(memory), x_end));
    }
    let (vm_lines, vm_max) = state_lines(series, &series.vm_states(), |s, st| s.vms.get(st).copied().unwrap_or(0));
    out.push_str(&chart("VMs by state", &vm_lines, vm_max, &[], x_end));
    let (host_lines, host_max) = state_lines(series, &series.host_states(), |s, st| {
        s.hosts.get(st).copied().unwrap_or(0)
    });
    out.push_str(&chart("Hosts by state", &host_lines, host_max, &[], x_end));
    out.push_str("<h2>HA timeline</h2><p>Detection: from the fault (crash or hang) to the host declared Down. Recovery: from the fault to the VM running again.</p><table><tr><th>time</th><th>what</th></tr>");
    let mut rows: Vec<(u64, String)> = Vec::new();
    let name_of = |h| {
        cloud
            .inv
            .hosts
            .iter()
            .find(|x| x.id == h)
            .map_or_else(|| "?".to_string(), |x| x.name.clone())
    };
    for (h, t) in &runner.host_faults {
        rows.push((*t, format!("host {} crashed or hung", name_of(*h))));
    }
    for (h, t) in runner.engine.ctl.host_downs() {
        rows.push((
            runner.engine.sim_time(*t),
            format!("host {} declared Down", name_of(*h)),
        ));
    }
    for o in runner.engine.ctl.ha_log() {
        let vm = runner.engine.ctl.vm_label(o.vm);
        match o.recovered_at {
            Some(t) => rows.push((
                runner.engine.sim_time(t),
                format!("VM {vm} running again ({})", o.reason),
            )),
            None => rows.push((
                runner.engine.sim_time(o.lost_at),
                format!("VM {vm} not restarted: {}", o.reason),
            )),
        }
    }
    rows.sort();
    for (t, what) in rows.iter().take(500) {
        let _ = write!(
            out,
            "<tr><td>{:.1} s</td><td>{}</td></tr>",
            *t as f64 / 1000.0,
            esc(what)
        );
    }
    out.push_str("</table><h2>Failed operations</h2>");
    if report.failures.is_empty() {
        out.push_str("<p>none</p>");
    }
    for f in report.failures.iter().take(20) {
        let _ = write!(
            out,
            "<h3>{} ×{}</h3><p>{}</p><pre>{}</pre>",
            esc(&f.command),
            f.count,
            esc(&f.reason),
            esc(&f.first_detail)
        );
    }
    out.push_str("</body></html>\n");
    out
}
