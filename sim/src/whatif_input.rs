//! The inventory a what-if starts from when given a scenario file: the
//! scenario's datacenter with its workload run in the simulator up to the
//! first scheduled fault or operator action (or to its end), with no faults.
//! That is the state an operator would ask "what if host X dies now?" about.

use crate::runner::{RunOptions, Runner};
use crate::scenario::{self, Scenario};
use std::path::Path;
use stratus_core::Cloud;

/// When the fault-free part of the scenario ends (ms of simulated time).
pub fn cutoff_ms(s: &Scenario) -> u64 {
    let faults = s.faults.scheduled.iter().map(|f| f.at.ms);
    let actions = s.actions.iter().map(|a| a.at().ms);
    faults
        .chain(actions)
        .min()
        .unwrap_or(s.scenario.duration.ms)
        .min(s.scenario.duration.ms)
}

/// Runs the scenario's workload up to `cutoff_ms` with every fault removed
/// and returns the controller's `Cloud` at that point.
pub fn cloud_before_faults(mut s: Scenario, built: Cloud) -> Cloud {
    let end = cutoff_ms(&s);
    s.faults.scheduled.clear();
    s.faults.random = Default::default();
    s.actions.clear();
    s.triggers.clear();
    s.expect.clear();
    s.scenario.duration.ms = end;
    let mut r = Runner::new(s, built, &RunOptions::default());
    r.run(&mut |_, _| {});
    r.engine.ctl.cloud().clone()
}

pub fn load(path: &Path) -> Result<Cloud, String> {
    let (s, built) = scenario::load_and_build(path).map_err(|e| e.to_string())?;
    Ok(cloud_before_faults(s, built.cloud))
}
