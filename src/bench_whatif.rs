//! `stratus bench whatif`: the what-if engine on a synthetic datacenter.
//!
//! Builds `stratus_sim::synth` with `--hosts`, deploys `--vms` (all HA: the
//! bench sets `force.ha`), then times one what-if (`wall_seconds`: the N-1
//! sweep over every host, failures tolerated per cluster, slots, stranded
//! capacity and fit per offering) and, with `--months`, a growth projection
//! (`growth_seconds`). Memory: resident set of the loaded inventory, then the
//! peak during the what-if (VmHWM reset in between via /proc/self/clear_refs).

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use std::time::Instant;
use stratus_core::whatif::{self, Options};
use stratus_sim::synth::{self, SynthConfig};

#[derive(Args, Debug)]
pub struct WhatIfBenchArgs {
    #[arg(long, default_value_t = 10_000)]
    hosts: usize,
    #[arg(long, default_value_t = 100_000)]
    vms: usize,
    /// Global `cpu.overprovisioning.factor` (4 lets 200,000 VMs fit in 10,000 hosts).
    #[arg(long, default_value_t = 2.0)]
    cpu_overprovisioning: f64,
    #[arg(long, default_value = "random")]
    algorithm: String,
    /// Growth per month in percent (with --months).
    #[arg(long, default_value_t = 3.0)]
    grow: f64,
    /// Months of growth to project (0: none).
    #[arg(long, default_value_t = 0)]
    months: u32,
    /// Skip the N-1 / failures-tolerated run (growth only).
    #[arg(long)]
    growth_only: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct WhatIfBenchReport {
    hosts: usize,
    clusters: usize,
    vms: usize,
    placed: usize,
    ha_vms: usize,
    algorithm: String,
    /// N-1 sweep + failures tolerated per cluster + slots/stranded/fit.
    wall_seconds: f64,
    hosts_failing_n1: usize,
    tolerance_exact_clusters: usize,
    months: u32,
    growth_seconds: f64,
    /// Resident set with the inventory loaded (VmRSS).
    inventory_rss_mb: f64,
    /// Peak resident set during the what-if (VmHWM after a reset).
    whatif_peak_rss_mb: f64,
    added_rss_pct: f64,
}

fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

pub fn run(args: &WhatIfBenchArgs) -> anyhow::Result<()> {
    let mut cfg = SynthConfig::with_hosts(args.hosts);
    cfg.seed = args.seed;
    cfg.cpu_overprovisioning = args.cpu_overprovisioning;
    cfg = cfg
        .setting("vm.allocation.algorithm", &args.algorithm)
        .setting("force.ha", "true");
    let mut dc = synth::build(&cfg).context("building the synthetic datacenter")?;
    dc.cloud.reserve_vms(args.vms);
    let mut placed = 0;
    for spec in synth::workload(&dc, args.vms, args.seed) {
        if dc.cloud.deploy_vm(spec).is_ok() {
            placed += 1;
        }
    }
    let mut cloud = dc.cloud;
    // Reset the peak so it measures the what-if alone (Linux: "5" clears VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let inventory_rss_mb = status_mb("VmRSS:");
    let mut opts = Options::new();
    opts.brief = true;
    let (mut wall_seconds, mut failing, mut exact, mut ha_vms) = (0.0, 0, 0, 0);
    if !args.growth_only {
        let t = Instant::now();
        let report = whatif::run(&mut cloud, &opts, &mut |_, _, _| {})?;
        wall_seconds = t.elapsed().as_secs_f64();
        failing = report.n_minus_1.iter().filter(|h| !h.not_restarted.is_empty()).count();
        exact = report.clusters.iter().filter(|c| c.failures_tolerated.exact).count();
        ha_vms = report.inventory.ha_vms_running;
    }
    let mut growth_seconds = 0.0;
    if args.months > 0 {
        let mut scratch = stratus_core::allocator::Scratch::default();
        let t = Instant::now();
        let g = whatif::growth::project(&mut cloud, args.grow, args.months, &mut scratch, &mut |_, _| {});
        growth_seconds = t.elapsed().as_secs_f64();
        std::hint::black_box(g);
    }
    let whatif_peak_rss_mb = status_mb("VmHWM:");
    let r = WhatIfBenchReport {
        hosts: args.hosts,
        clusters: cfg.clusters,
        vms: args.vms,
        placed,
        ha_vms,
        algorithm: args.algorithm.clone(),
        wall_seconds,
        hosts_failing_n1: failing,
        tolerance_exact_clusters: exact,
        months: args.months,
        growth_seconds,
        inventory_rss_mb,
        whatif_peak_rss_mb,
        added_rss_pct: if inventory_rss_mb > 0.0 {
            (whatif_peak_rss_mb - inventory_rss_mb).max(0.0) * 100.0 / inventory_rss_mb
        } else {
            0.0
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{r:#?}");
    }
    Ok(())
}
