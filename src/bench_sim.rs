//! `stratus bench sim`: build a synthetic datacenter and deploy and start every
//! VM through the controller and the simulated drivers, on the event engine.

use clap::Args;
use serde::Serialize;
use std::time::Instant;
use stratus_core::controller::{Controller, Request};
use stratus_core::vm::VmState;
use stratus_sim::engine::Engine;
use stratus_sim::synth::{SynthConfig, build, workload};
use stratus_sim::world::World;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Hosts in the datacenter (100 per cluster, up to 10 pods).
    #[arg(long, default_value_t = 20_000)]
    hosts: usize,
    /// VMs to deploy and start.
    #[arg(long, default_value_t = 40_000)]
    vms: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip writing the event log (it is hashed by default, as in `sim run`).
    #[arg(long)]
    no_log: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
pub struct SimReport {
    pub hosts: usize,
    pub vms: usize,
    pub placed: usize,
    pub failed_jobs: usize,
    pub events: u64,
    pub sim_seconds: f64,
    pub build_seconds: f64,
    pub wall_seconds: f64,
    pub invariant_violations: usize,
    pub event_log_sha256: String,
    pub max_rss_mb: f64,
}

pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let synth = build(&SynthConfig {
        seed: args.seed,
        ..SynthConfig::with_hosts(args.hosts)
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let specs: Vec<_> = workload(&synth, args.vms, args.seed).collect();
    let mut cloud = synth.cloud;
    cloud.reserve_vms(args.vms);
    let world = World::from_cloud(&cloud, args.seed);
    let mut ctl = Controller::new(cloud);
    ctl.set_logging(!args.no_log);
    let mut engine = Engine::new(ctl, world);
    let build_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    for spec in specs {
        engine.submit(Request::Deploy(spec)).map_err(|e| anyhow::anyhow!(e))?;
    }
    engine.run_quiet(u64::MAX / 2);
    engine.check_full();
    let wall_seconds = t1.elapsed().as_secs_f64();

    let c = &engine.ctl.cloud();
    let report = SimReport {
        hosts: args.hosts,
        vms: args.vms,
        placed: c.vms().filter(|(_, v)| v.state == VmState::Running).count(),
        failed_jobs: engine.ctl.failed_jobs().count(),
        events: engine.events,
        sim_seconds: engine.now as f64 / 1000.0,
        build_seconds,
        wall_seconds,
        invariant_violations: engine.violations.len(),
        event_log_sha256: engine.log_sha256(),
        max_rss_mb: crate::bench::peak_rss_mb(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} VMs on {} hosts: {} running, {} jobs failed, {} events, {:.1} s simulated, {:.3} s wall (+{:.3} s build), {} invariant violations, {:.0} MB peak RSS",
            report.vms,
            report.hosts,
            report.placed,
            report.failed_jobs,
            report.events,
            report.sim_seconds,
            report.wall_seconds,
            report.build_seconds,
            report.invariant_violations,
            report.max_rss_mb
        );
    }
    if report.invariant_violations > 0 {
        anyhow::bail!("invariants violated: {:?}", engine.violations);
    }
    Ok(())
}
