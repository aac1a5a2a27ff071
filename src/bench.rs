//! `stratus bench ...`: benchmarks of the core on synthetic datacenters.
//!
//! `stratus bench placement` builds a `stratus_sim::synth` datacenter (timed
//! separately as `build_seconds`), then deploys and starts VMs one at a time
//! through `Cloud::deploy_vm`, which runs the allocator and commits capacity,
//! timing each call.

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::time::Instant;
use stratus_sim::synth::{self, SynthConfig};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Places VMs one by one in a synthetic datacenter; reports throughput,
    /// per-placement latency and peak memory.
    Placement(PlacementArgs),
    /// Deploys and starts every VM through the controller and the simulated
    /// drivers on the event engine; reports wall time and events.
    Sim(crate::bench_sim::SimArgs),
    /// Appends inputs to the durable journal through group commit; reports
    /// durable inputs per second and acknowledgement latency.
    Journal(crate::bench_journal::JournalArgs),
    /// Snapshots a large controller state, journals realistic inputs after
    /// it, then recovers (load, decode, replay) and checks the state hash.
    Recovery(crate::bench_recovery::RecoveryArgs),
    /// The CloudStack API under load: the whole server in-process on a
    /// Store, signed keep-alive clients; list latency, list throughput and
    /// deploy acceptance against the targets.
    Api(crate::bench_api::ApiArgs),
    /// The web console's instances page over many VMs, server time per load
    /// (admin over every account and the owning tenant; target < 300 ms).
    Console(crate::bench_console::ConsoleArgs),
    /// The what-if engine: N-1 sweep over every host, failures tolerated per
    /// cluster, growth projection; wall time and memory.
    Whatif(crate::bench_whatif::WhatIfBenchArgs),
    /// Real KVM hosts (`--features kvm`, the services of .ci/kvm-setup.sh):
    /// deploy, stop, start and live migration through Stratus versus raw
    /// virsh in one run (ratios, target <= 1.10), the HA restart time with
    /// --ha, and a simulator latency profile with --profile-out.
    #[cfg(feature = "kvm")]
    Kvm(crate::bench_kvm::KvmBenchArgs),
}

#[derive(Args, Debug)]
pub struct PlacementArgs {
    /// Hosts in the datacenter (100 per cluster, up to 10 pods).
    #[arg(long, default_value_t = 10_000)]
    hosts: usize,
    /// VMs to deploy and start.
    #[arg(long, default_value_t = 100_000)]
    vms: usize,
    /// Clusters (default: hosts / 100, rounded up; KVM allows 128 hosts per cluster).
    #[arg(long)]
    clusters: Option<usize>,
    /// Pods (default: min(10, clusters)).
    #[arg(long)]
    pods: Option<usize>,
    /// Global `cpu.overprovisioning.factor` (with 3.0, 200,000 VMs fit in 10,000 hosts).
    #[arg(long, default_value_t = 2.0)]
    cpu_overprovisioning: f64,
    /// Accounts owning the VMs.
    #[arg(long, default_value_t = 50)]
    accounts: usize,
    /// `vm.allocation.algorithm`.
    #[arg(long, default_value = "random")]
    algorithm: String,
    /// `vm.deployment.planner` (default: the setting's default, FirstFitPlanner).
    #[arg(long)]
    planner: Option<String>,
    /// Seed of the datacenter, the workload and the allocator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(which: BenchCommand) -> anyhow::Result<()> {
    match which {
        BenchCommand::Placement(args) => {
            let report = placement(&args)?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
        BenchCommand::Sim(args) => crate::bench_sim::run(&args),
        BenchCommand::Journal(args) => crate::bench_journal::run(&args),
        BenchCommand::Recovery(args) => crate::bench_recovery::run(&args),
        BenchCommand::Api(args) => crate::bench_api::run(&args),
        BenchCommand::Console(args) => crate::bench_console::run(&args),
        BenchCommand::Whatif(args) => crate::bench_whatif::run(&args),
        #[cfg(feature = "kvm")]
        BenchCommand::Kvm(args) => crate::bench_kvm::run(args),
    }
}

#[derive(Debug, Serialize)]
pub struct PlacementReport {
    pub hosts: usize,
    pub clusters: usize,
    pub pods: usize,
    pub accounts: usize,
    pub cpu_overprovisioning: f64,
    pub vms: usize,
    pub placed: usize,
    pub failed: usize,
    pub algorithm: String,
    pub planner: String,
    pub seed: u64,
    pub build_seconds: f64,
    /// Wall time of the placement loop.
    pub seconds: f64,
    pub placements_per_sec: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Peak resident memory after building the datacenter (VmHWM).
    pub build_rss_mb: f64,
    /// Peak resident memory of the whole run (VmHWM).
    pub max_rss_mb: f64,
    /// Mean latency of the refused deploys (they build a full explanation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_mean_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

impl PlacementReport {
    fn table(&self) -> String {
        let mut rows = vec![
            (
                "datacenter",
                format!(
                    "{} hosts, {} clusters, {} pods, {} accounts, cpu overprovisioning {}",
                    self.hosts, self.clusters, self.pods, self.accounts, self.cpu_overprovisioning
                ),
            ),
            (
                "allocator",
                format!("{} / {} (seed {})", self.algorithm, self.planner, self.seed),
            ),
            (
                "build",
                format!("{:.3} s, {:.0} MB peak RSS", self.build_seconds, self.build_rss_mb),
            ),
            (
                "placed",
                format!("{} of {} ({} failed)", self.placed, self.vms, self.failed),
            ),
            ("wall time", format!("{:.3} s", self.seconds)),
            ("throughput", format!("{:.0} placements/s", self.placements_per_sec)),
            (
                "latency (µs)",
                format!(
                    "mean {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.1}",
                    self.mean_us, self.p50_us, self.p90_us, self.p99_us, self.p999_us, self.max_us
                ),
            ),
            ("peak RSS", format!("{:.0} MB", self.max_rss_mb)),
        ];
        if let Some(us) = self.failed_mean_us {
            rows.push(("failed mean", format!("{us:.1} µs per refused deploy")));
        }
        if let Some(f) = &self.first_failure {
            rows.push(("first failure", f.clone()));
        }
        rows.iter().map(|(k, v)| format!("{k:<14} {v}\n")).collect()
    }
}

/// Peak resident set size in MB, from `VmHWM` in /proc/self/status (0 if unavailable).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Nearest-rank percentile of sorted nanoseconds, in microseconds.
fn percentile_us(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1000.0
}

fn progress_bar(len: usize) -> ProgressBar {
    // Hidden automatically when stderr is not a terminal.
    let pb = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message("placing");
    pb
}

pub fn placement(args: &PlacementArgs) -> anyhow::Result<PlacementReport> {
    let mut cfg = SynthConfig::with_hosts(args.hosts);
    cfg.seed = args.seed;
    cfg.accounts = args.accounts;
    cfg.cpu_overprovisioning = args.cpu_overprovisioning;
    if let Some(c) = args.clusters {
        cfg.clusters = c;
        cfg.pods = c.min(10);
    }
    if let Some(p) = args.pods {
        cfg.pods = p;
    }
    // Validated by the core's settings registry while the zone has no hosts.
    cfg = cfg.setting("vm.allocation.algorithm", &args.algorithm);
    if let Some(p) = &args.planner {
        cfg = cfg.setting("vm.deployment.planner", p);
    }

    let t0 = Instant::now();
    let mut dc = synth::build(&cfg).context("building the synthetic datacenter")?;
    let build_seconds = t0.elapsed().as_secs_f64();
    let build_rss_mb = peak_rss_mb();
    let policy = &dc.cloud.policy.global;
    let (algorithm, planner) = (
        policy.algorithm.as_str().to_string(),
        policy.planner.as_str().to_string(),
    );

    let work = synth::workload(&dc, args.vms, args.seed);
    let mut latencies_ns: Vec<u64> = Vec::with_capacity(args.vms);
    let (mut placed, mut failed, mut failed_ns, mut first_failure) = (0usize, 0usize, 0u64, None);
    let pb = progress_bar(args.vms);
    let start = Instant::now();
    for (i, spec) in work.enumerate() {
        let t = Instant::now();
        let r = dc.cloud.deploy_vm(spec);
        let ns = t.elapsed().as_nanos() as u64;
        latencies_ns.push(ns);
        match r {
            Ok(_) => placed += 1,
            Err(e) => {
                failed += 1;
                failed_ns += ns;
                if first_failure.is_none() {
                    first_failure = Some(format!("VM #{}: {e}", i + 1));
                }
            }
        }
        if (i + 1) % 1000 == 0 {
            pb.set_position((i + 1) as u64);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    pb.finish_and_clear();

    let max_rss_mb = peak_rss_mb();
    let mean_us = if latencies_ns.is_empty() {
        0.0
    } else {
        latencies_ns.iter().sum::<u64>() as f64 / latencies_ns.len() as f64 / 1000.0
    };
    latencies_ns.sort_unstable();
    Ok(PlacementReport {
        hosts: cfg.hosts,
        clusters: cfg.clusters,
        pods: cfg.pods,
        accounts: cfg.accounts,
        cpu_overprovisioning: cfg.cpu_overprovisioning,
        vms: args.vms,
        placed,
        failed,
        algorithm,
        planner,
        seed: args.seed,
        build_seconds,
        seconds,
        placements_per_sec: if seconds > 0.0 { args.vms as f64 / seconds } else { 0.0 },
        mean_us,
        p50_us: percentile_us(&latencies_ns, 0.50),
        p90_us: percentile_us(&latencies_ns, 0.90),
        p99_us: percentile_us(&latencies_ns, 0.99),
        p999_us: percentile_us(&latencies_ns, 0.999),
        max_us: latencies_ns.last().map_or(0.0, |&n| n as f64 / 1000.0),
        build_rss_mb,
        max_rss_mb,
        failed_mean_us: (failed > 0).then(|| failed_ns as f64 / failed as f64 / 1000.0),
        first_failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_us(&ns, 0.50), 50.0);
        assert_eq!(percentile_us(&ns, 0.99), 99.0);
        assert_eq!(percentile_us(&ns, 1.0), 100.0);
        assert_eq!(percentile_us(&[], 0.5), 0.0);
    }

    #[test]
    fn small_run_places_everything() {
        let args = PlacementArgs {
            hosts: 200,
            vms: 500,
            clusters: None,
            pods: None,
            accounts: 5,
            cpu_overprovisioning: 2.0,
            algorithm: "firstfit".into(),
            planner: Some("UserDispersingPlanner".into()),
            seed: 3,
            json: true,
        };
        let r = placement(&args).unwrap();
        assert_eq!((r.placed, r.failed, r.clusters, r.pods), (500, 0, 2, 2));
        assert_eq!(
            (r.algorithm.as_str(), r.planner.as_str()),
            ("firstfit", "UserDispersingPlanner")
        );
        assert!(r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
    }

    #[test]
    fn bad_algorithm_names_the_setting() {
        let args = PlacementArgs {
            hosts: 10,
            vms: 1,
            clusters: None,
            pods: None,
            accounts: 1,
            cpu_overprovisioning: 2.0,
            algorithm: "best".into(),
            planner: None,
            seed: 1,
            json: true,
        };
        let e = format!("{:#}", placement(&args).unwrap_err());
        assert!(
            e.contains("Invalid value 'best' for setting 'vm.allocation.algorithm'"),
            "{e}"
        );
    }
}
