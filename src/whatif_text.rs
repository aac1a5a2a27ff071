//! The what-if report as aligned text tables (comfy-table).

use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use std::fmt::Write;
use stratus_core::whatif::Report;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    t
}

fn right(t: &mut Table, cols: &[usize]) {
    for &c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let i = &r.inventory;
    let _ = writeln!(
        out,
        "What-if on {} zone(s), {} pod(s), {} cluster(s), {} hosts ({} Up), {} VMs ({} running, {} of them HA)",
        i.zones, i.pods, i.clusters, i.hosts, i.hosts_up, i.vms, i.vms_running, i.ha_vms_running
    );
    for h in &r.hypotheticals {
        let _ = writeln!(out, "  hypothetical: {h}");
    }
    if let Some(p) = &r.replacement {
        let _ = writeln!(
            out,
            "\nRe-placement plan: {} placed, {} not placed, {} lost (not HA)",
            p.placed, p.not_placed, p.lost
        );
        let mut t = table(&["VM", "from", "kind", "to", "reason"]);
        for m in &p.moves {
            t.add_row(vec![
                m.vm.clone(),
                m.from.clone(),
                m.kind.clone(),
                m.to.clone().unwrap_or_else(|| "-".into()),
                m.reason.clone().unwrap_or_default(),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    let _ = writeln!(out, "\nClusters");
    let mut t = table(&[
        "cluster",
        "hosts up",
        "HA VMs",
        "CPU alloc %",
        "mem alloc %",
        "headroom %",
        "failures tolerated",
        "slots total/used/failover/avail",
        "stranded (largest offering)",
    ]);
    for c in &r.clusters {
        let s = &c.slots;
        t.add_row(vec![
            c.name.clone(),
            format!("{}/{}", c.hosts_up, c.hosts),
            c.ha_vms.to_string(),
            format!("{:.2}", c.cpu.allocated_pct),
            format!("{:.2}", c.memory.allocated_pct),
            format!("{:.2}", c.headroom_pct),
            c.failures_tolerated.summary(),
            format!("{}/{}/{}/{}", s.total, s.used, s.failover, s.available),
            c.stranded
                .as_ref()
                .map(|x| {
                    format!(
                        "{} VMs of {} ({} MHz, {} MiB left)",
                        x.stranded_vms, x.offering, x.stranded_cpu_mhz, x.stranded_memory_mib
                    )
                })
                .unwrap_or_default(),
        ]);
    }
    right(&mut t, &[1, 2, 3, 4, 5, 6]);
    let _ = writeln!(out, "{t}");
    for c in &r.clusters {
        let _ = writeln!(out, "  {} slot: {}", c.name, c.slots.definition);
        let ft = &c.failures_tolerated;
        let _ = writeln!(
            out,
            "  {} failures tolerated: {} [{}]{}",
            c.name,
            ft.summary(),
            ft.method.join("; "),
            if ft.witness.is_empty() {
                String::new()
            } else {
                format!("; fails if these fail together: {}", ft.witness.join(", "))
            }
        );
    }
    let broken: Vec<_> = r.n_minus_1.iter().filter(|h| !h.not_restarted.is_empty()).collect();
    let _ = writeln!(
        out,
        "\nN-1: {} hosts checked, {} leave HA VMs down",
        r.n_minus_1.len(),
        broken.len()
    );
    let mut t = table(&[
        "host",
        "cluster",
        "HA VMs",
        "restarted",
        "not restarted",
        "lost (not HA)",
    ]);
    for h in &r.n_minus_1 {
        t.add_row(vec![
            h.host.clone(),
            h.cluster.clone(),
            h.ha_vms.to_string(),
            h.restarted.to_string(),
            h.not_restarted.len().to_string(),
            h.lost.to_string(),
        ]);
    }
    right(&mut t, &[2, 3, 4, 5]);
    if r.n_minus_1.len() <= 200 {
        let _ = writeln!(out, "{t}");
    } else {
        let _ = writeln!(
            out,
            "(per-host table omitted for {} hosts; use --format json)",
            r.n_minus_1.len()
        );
    }
    for h in broken {
        for v in &h.not_restarted {
            let _ = writeln!(out, "  if {} fails, {} is not restarted: {}", h.host, v.vm, v.reason);
            for line in v.explanation.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let _ = writeln!(out, "\nMore VMs that fit now (compute, cluster thresholds applied)");
    let mut t = table(&["offering", "vCPU x MHz", "memory MiB", "fit"]);
    for o in &r.fit_now {
        t.add_row(vec![
            o.offering.clone(),
            format!("{} x {}", o.cpu, o.mhz),
            o.memory_mib.to_string(),
            o.fits.to_string(),
        ]);
    }
    right(&mut t, &[2, 3]);
    let _ = writeln!(out, "{t}");
    if let Some(g) = &r.growth {
        let _ = writeln!(
            out,
            "\nGrowth: {}% per month for {} months from {} running VMs; first refused deploy: {}",
            g.percent_per_month,
            g.months,
            g.start_vms,
            match (&g.first_failure_month, &g.first_failure) {
                (Some(m), Some(why)) => format!("month {m} ({why})"),
                (Some(m), None) => format!("month {m}"),
                _ => "none".into(),
            }
        );
        let mut t = table(&[
            "cluster",
            "CPU % now",
            "mem % now",
            "CPU % end",
            "mem % end",
            "notify month",
            "disable month",
        ]);
        for c in &g.clusters {
            let last = |v: &Vec<f64>| v.last().copied().unwrap_or(0.0);
            let first = |v: &Vec<f64>| v.first().copied().unwrap_or(0.0);
            let m = |x: Option<u32>| x.map_or("-".to_string(), |m| m.to_string());
            t.add_row(vec![
                c.cluster.clone(),
                format!("{:.2}", first(&c.cpu_pct)),
                format!("{:.2}", first(&c.memory_pct)),
                format!("{:.2}", last(&c.cpu_pct)),
                format!("{:.2}", last(&c.memory_pct)),
                m(c.notify_month),
                m(c.disable_month),
            ]);
        }
        right(&mut t, &[1, 2, 3, 4, 5, 6]);
        let _ = writeln!(out, "{t}");
    }
    out
}
