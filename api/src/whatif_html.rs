//! The what-if report as one self-contained HTML file: inline CSS and
//! hand-built SVG plots (no script, no network), to mail to a manager.
//! Plots: allocation over time per cluster with the threshold lines (with
//! `--grow`), headroom bars per cluster, and the N-1 table.

use std::fmt::Write;
use stratus_core::whatif::{ClusterGrowth, Report};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Clusters drawn as growth charts (the busiest at the end first).
const MAX_CHARTS: usize = 24;
/// N-1 rows shown (hosts that leave VMs down first).
const MAX_ROWS: usize = 500;

fn growth_chart(g: &ClusterGrowth) -> String {
    let (w, h, l, b, t, r) = (420.0, 220.0, 44.0, 30.0, 24.0, 10.0);
    let months = g.cpu_pct.len().saturating_sub(1).max(1) as f64;
    let ymax = g
        .cpu_pct
        .iter()
        .chain(&g.memory_pct)
        .copied()
        .fold(g.disable_pct.max(100.0), f64::max)
        .min(1000.0);
    let x = |m: f64| l + (w - l - r) * m / months;
    let y = |p: f64| t + (h - t - b) * (1.0 - p.min(ymax) / ymax);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="growth" data-cluster="{}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>{} allocation by month</title>"#,
        esc(&g.cluster),
        esc(&g.cluster)
    );
    let _ = write!(s, r#"<text x="{l}" y="16" class="t">{}</text>"#, esc(&g.cluster));
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#444"/>"##,
        h - b,
        w - r,
        h - b
    );
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="#444"/>"##,
        h - b
    );
    for p in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="a" text-anchor="end">{p:.0}%</text>"#,
            l - 4.0,
            y(p) + 4.0
        );
    }
    let step = (months / 6.0).ceil().max(1.0);
    let mut m = 0.0;
    while m <= months {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="a" text-anchor="middle">{m:.0}</text>"#,
            x(m),
            h - b + 14.0
        );
        m += step;
    }
    for (pct, color, label) in [
        (g.notify_pct, "#d9a400", "notify"),
        (g.disable_pct, "#c0392b", "disable"),
    ] {
        let _ = write!(
            s,
            r#"<line class="threshold" data-threshold="{label}" x1="{l}" y1="{0}" x2="{1}" y2="{0}" stroke="{color}" stroke-dasharray="5,4"/><text x="{1}" y="{2}" class="a" text-anchor="end" fill="{color}">{label} {pct:.0}%</text>"#,
            y(pct),
            w - r,
            y(pct) - 3.0
        );
    }
    for (series, color, name) in [(&g.cpu_pct, "#2e86de", "cpu"), (&g.memory_pct, "#27ae60", "memory")] {
        let pts: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i as f64), y(*p)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" data-series="{name}" data-points="{}" points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            series.len(),
            pts.join(" ")
        );
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" class="a" fill="#2e86de">CPU</text><text x="{}" y="{}" class="a" fill="#27ae60">memory</text>"##,
        l + 8.0,
        t + 12.0,
        l + 40.0,
        t + 12.0
    );
    s.push_str("</svg>");
    s
}

fn headroom_bars(r: &Report) -> String {
    let rows = r.clusters.len().min(200);
    let (w, row_h, l) = (640.0, 18.0, 160.0);
    let h = 30.0 + row_h * rows as f64;
    let max = r.clusters.iter().map(|c| c.headroom_pct.abs()).fold(10.0, f64::max);
    let zero = l + (w - l - 60.0) * 0.5;
    let scale = (w - l - 60.0) * 0.5 / max;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="headroom" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>Headroom to the disable threshold per cluster</title>"#
    );
    let _ = write!(
        s,
        r##"<line x1="{zero}" y1="10" x2="{zero}" y2="{}" stroke="#444"/>"##,
        h - 10.0
    );
    for (i, c) in r.clusters.iter().take(rows).enumerate() {
        let yy = 16.0 + row_h * i as f64;
        let v = c.headroom_pct;
        let (x0, bw) = if v >= 0.0 {
            (zero, v * scale)
        } else {
            (zero + v * scale, -v * scale)
        };
        let color = if v < 0.0 {
            "#c0392b"
        } else if v < 10.0 {
            "#d9a400"
        } else {
            "#27ae60"
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="a" text-anchor="end">{}</text><rect class="bar" data-cluster="{}" data-value="{v:.2}" x="{x0:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{color}"/><text x="{}" y="{}" class="a">{v:.1}%</text>"#,
            l - 6.0,
            yy + 12.0,
            esc(&c.name),
            esc(&c.name),
            bw.max(0.5),
            row_h - 4.0,
            x0 + bw.max(0.5) + 4.0,
            yy + 12.0
        );
    }
    s.push_str("</svg>");
    s
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stratus capacity what-if</title><style>",
    );
    s.push_str("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f0f0f0}td.n{text-align:right}.bad{background:#fde2e0}svg text.t{font-size:13px;font-weight:bold}svg text.a{font-size:10px}.charts{display:flex;flex-wrap:wrap;gap:12px}pre{font-size:11px;background:#f8f8f8;padding:6px}");
    s.push_str("</style></head><body><h1>Capacity what-if</h1>");
    let i = &r.inventory;
    let _ = write!(
        s,
        "<p>{} zone(s), {} pod(s), {} cluster(s), {} hosts ({} Up), {} VMs ({} running, {} HA).</p>",
        i.zones, i.pods, i.clusters, i.hosts, i.hosts_up, i.vms, i.vms_running, i.ha_vms_running
    );
    if !r.hypotheticals.is_empty() {
        s.push_str("<h2>Hypotheticals</h2><ul>");
        for h in &r.hypotheticals {
            let _ = write!(s, "<li>{}</li>", esc(h));
        }
        s.push_str("</ul>");
    }
    if let Some(p) = &r.replacement {
        let _ = write!(
            s,
            "<h2>Re-placement plan</h2><p>{} placed, {} not placed, {} lost (not HA).</p><table id=\"plan\"><tr><th>VM</th><th>from</th><th>kind</th><th>to</th><th>reason</th></tr>",
            p.placed, p.not_placed, p.lost
        );
        for m in p.moves.iter().take(MAX_ROWS) {
            let _ = write!(
                s,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if m.to.is_none() { " class=\"bad\"" } else { "" },
                esc(&m.vm),
                esc(&m.from),
                esc(&m.kind),
                esc(m.to.as_deref().unwrap_or("-")),
                esc(m.reason.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Clusters</h2><table id=\"clusters\"><tr><th>cluster</th><th>hosts up</th><th>HA VMs</th><th>CPU %</th><th>memory %</th><th>headroom %</th><th>failures tolerated</th><th>slots (total/used/failover/available)</th><th>slot</th><th>stranded</th></tr>");
    for c in &r.clusters {
        let sl = &c.slots;
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=n>{}/{}</td><td class=n>{}</td><td class=n>{:.2}</td><td class=n>{:.2}</td><td class=n>{:.2}</td><td class=n title=\"{}\">{}</td><td class=n>{}/{}/{}/{}</td><td>{} MHz, {} MiB</td><td>{}</td></tr>",
            esc(&c.name),
            c.hosts_up,
            c.hosts,
            c.ha_vms,
            c.cpu.allocated_pct,
            c.memory.allocated_pct,
            c.headroom_pct,
            esc(&c.failures_tolerated.method.join("; ")),
            esc(&c.failures_tolerated.summary()),
            sl.total,
            sl.used,
            sl.failover,
            sl.available,
            sl.slot_cpu_mhz,
            sl.slot_memory_mib,
            c.stranded
                .as_ref()
                .map(|x| esc(&format!("{} VMs of {}", x.stranded_vms, x.offering)))
                .unwrap_or_default()
        );
    }
    s.push_str("</table><p>Slot: the largest powered-on VM's CPU and memory in the cluster (vSphere's slot policy); the largest host's slots are held for failover.</p>");
    s.push_str("<h2>Headroom to the disable threshold</h2>");
    s.push_str(&headroom_bars(r));
    if let Some(g) = &r.growth {
        let _ = write!(
            s,
            "<h2>Growth: {}% per month for {} months</h2><p>From {} running VMs. First refused deploy: {}.</p>",
            g.percent_per_month,
            g.months,
            g.start_vms,
            esc(&match (&g.first_failure_month, &g.first_failure) {
                (Some(m), Some(w)) => format!("month {m} ({w})"),
                (Some(m), None) => format!("month {m}"),
                _ => "none".into(),
            })
        );
        s.push_str("<table id=\"growth\"><tr><th>cluster</th><th>notify month</th><th>disable month</th></tr>");
        for c in &g.clusters {
            let m = |x: Option<u32>| x.map_or("-".to_string(), |m| m.to_string());
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                esc(&c.cluster),
                m(c.notify_month),
                m(c.disable_month)
            );
        }
        s.push_str("</table><div class=\"charts\">");
        let mut order: Vec<&ClusterGrowth> = g.clusters.iter().collect();
        order.sort_by(|a, b| {
            let end = |c: &ClusterGrowth| {
                c.cpu_pct
                    .last()
                    .copied()
                    .unwrap_or(0.0)
                    .max(c.memory_pct.last().copied().unwrap_or(0.0))
            };
            end(b).total_cmp(&end(a)).then(a.cluster.cmp(&b.cluster))
        });
        for c in order.into_iter().take(MAX_CHARTS) {
            s.push_str(&growth_chart(c));
        }
        s.push_str("</div>");
    }
    let mut rows: Vec<_> = r.n_minus_1.iter().collect();
    rows.sort_by_key(|h| std::cmp::Reverse(h.not_restarted.len()));
    let _ = write!(
        s,
        "<h2>N-1: each host failing alone</h2><p>{} hosts checked; {} leave HA VMs down.</p><table id=\"n1\"><tr><th>host</th><th>cluster</th><th>HA VMs</th><th>restarted</th><th>not restarted</th><th>lost (not HA)</th><th>why</th></tr>",
        r.n_minus_1.len(),
        rows.iter().filter(|h| !h.not_restarted.is_empty()).count()
    );
    for h in rows.iter().take(MAX_ROWS) {
        let why: Vec<String> = h
            .not_restarted
            .iter()
            .map(|v| format!("{}: {}", v.vm, v.reason))
            .collect();
        let _ = write!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            if h.not_restarted.is_empty() {
                ""
            } else {
                " class=\"bad\""
            },
            esc(&h.host),
            esc(&h.cluster),
            h.ha_vms,
            h.restarted,
            h.not_restarted.len(),
            h.lost,
            esc(&why.join("; "))
        );
    }
    s.push_str("</table>");
    s.push_str("<h2>More VMs that fit now</h2><table id=\"fit\"><tr><th>offering</th><th>vCPU x MHz</th><th>memory MiB</th><th>fit</th></tr>");
    for o in &r.fit_now {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{} x {}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&o.offering),
            o.cpu,
            o.mhz,
            o.memory_mib,
            o.fits
        );
    }
    s.push_str("</table></body></html>\n");
    s
}
