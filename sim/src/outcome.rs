//! The outcome side of a run: operator actions, HA timings, expectations.

use crate::runner::{ExpectResult, Runner};
use crate::scenario::{Action, Expectation};
use serde::Serialize;
use stratus_core::controller::{Input, JobStatus};
use stratus_core::vm::VmState;

/// How HA did against the injected host faults.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HaMetrics {
    /// Slowest time from a host crash or hang to that host being declared Down.
    pub detection_s: Option<f64>,
    /// Slowest time from a host crash or hang to one of its HA VMs running again.
    pub max_recovery_s: Option<f64>,
    pub restarted: u64,
    pub gave_up: u64,
    pub not_restarted: u64,
    /// HA restarts still waiting at the end.
    pub pending: u64,
}

impl Runner {
    pub(crate) fn action(&mut self, a: Action) {
        // An operator's action needs a management server to receive it.
        if self.engine.ms_down_until.is_some() {
            self.engine.log(
                "action.refused",
                "operator",
                &format!("{a:?}: management server is down"),
            );
            return;
        }
        let input = match &a {
            Action::PrepareMaintenance { host, .. } => match self.host_id(host) {
                Some(host) => Input::PrepareMaintenance { host },
                None => return,
            },
            Action::CancelMaintenance { host, .. } => match self.host_id(host) {
                Some(host) => Input::CancelMaintenance { host },
                None => return,
            },
            Action::RollingMaintenance {
                cluster,
                pre_hook,
                post_hook,
                ..
            } => {
                let Some(c) = self
                    .engine
                    .ctl
                    .cloud()
                    .inv
                    .clusters
                    .iter()
                    .find(|c| &c.name == cluster)
                    .map(|c| c.id)
                else {
                    return;
                };
                let (pre, post) = (pre_hook.map_or(0, |d| d.ms), post_hook.map_or(0, |d| d.ms));
                Input::RollingMaintenance {
                    cluster: c,
                    pre_hook_ms: pre,
                    post_hook_ms: post,
                }
            }
        };
        if let Some(e) = self.engine.feed(input).error() {
            self.engine.log("action.refused", "operator", &format!("{a:?}: {e}"));
        }
        self.engine.after_controller();
    }

    pub fn ha_metrics(&self) -> HaMetrics {
        let ctl = &self.engine.ctl;
        // Fault times are simulated time; the controller's are epoch ms.
        let sim = |t: stratus_core::units::Millis| self.engine.sim_time(t);
        let mut m = HaMetrics::default();
        for (host, fault_at) in &self.host_faults {
            if let Some((_, down)) = ctl.host_downs().iter().find(|(h, t)| h == host && sim(*t) >= *fault_at) {
                let d = (sim(*down) - fault_at) as f64 / 1000.0;
                m.detection_s = Some(m.detection_s.map_or(d, |x: f64| x.max(d)));
            }
        }
        for o in ctl.ha_log() {
            match o.recovered_at {
                Some(t) => {
                    m.restarted += 1;
                    if let Some(fault_at) = o.host.and_then(|h| self.host_faults.get(&h)) {
                        let d = (sim(t).saturating_sub(*fault_at)) as f64 / 1000.0;
                        m.max_recovery_s = Some(m.max_recovery_s.map_or(d, |x: f64| x.max(d)));
                    }
                }
                None if o.reason.starts_with("HA gave up") => m.gave_up += 1,
                None => m.not_restarted += 1,
            }
        }
        m.pending = ctl.ha_pending() as u64;
        m
    }

    /// Checks the scenario's expectations against the final state.
    pub fn expectations(&self) -> Vec<ExpectResult> {
        let ctl = &self.engine.ctl;
        let ha = self.ha_metrics();
        let failed_deploys = ctl
            .jobs()
            .iter()
            .filter(|j| {
                j.command == stratus_core::controller::Command::DeployVirtualMachine && j.status == JobStatus::Failed
            })
            .count() as u64;
        let running = ctl.cloud().vms().filter(|(_, v)| v.state == VmState::Running).count() as u64;
        self.scenario
            .expect
            .iter()
            .map(|e| {
                let (ok, detail) = match e {
                    Expectation::NoFailedDeploys => (failed_deploys == 0, format!("{failed_deploys} deploys failed")),
                    Expectation::MaxFailedDeploys { max } => (
                        failed_deploys <= *max,
                        format!("{failed_deploys} deploys failed (max {max})"),
                    ),
                    Expectation::MinRunningVms { min } => {
                        (running >= *min, format!("{running} VMs running (min {min})"))
                    }
                    Expectation::ClusterAllocatedBelow {
                        cluster,
                        resource,
                        below,
                    } => match ctl.cloud().inv.clusters.iter().position(|c| &c.name == cluster) {
                        None => (false, format!("no cluster {cluster}")),
                        Some(i) => {
                            let agg = &ctl.cloud().book.cluster[i];
                            let f = if resource == "memory" {
                                agg.mem.fraction_with(0)
                            } else {
                                agg.cpu.fraction_with(0)
                            };
                            (
                                f < *below,
                                format!("cluster {cluster} {resource} allocated {f:.3} (below {below})"),
                            )
                        }
                    },
                    Expectation::AllVmsRunning => {
                        let not: Vec<String> = self
                            .want_running
                            .iter()
                            .filter(|(_, want)| **want)
                            .filter_map(|(vm, _)| ctl.cloud().vm(*vm))
                            .filter(|v| v.state != VmState::Running)
                            .map(|v| format!("{} is {}", v.name, v.state))
                            .collect();
                        (
                            not.is_empty(),
                            if not.is_empty() {
                                "all running".into()
                            } else {
                                not.join(", ")
                            },
                        )
                    }
                    Expectation::HaDetectionWithin { seconds } => match ha.detection_s {
                        Some(d) => (d <= *seconds, format!("detection {d:.1} s (limit {seconds} s)")),
                        None => (false, "no crashed or hung host was declared Down".into()),
                    },
                    Expectation::HaRecoveryWithin { seconds } => match ha.max_recovery_s {
                        Some(d) if ha.gave_up == 0 && ha.pending == 0 => (
                            d <= *seconds,
                            format!("every HA VM running again within {d:.1} s (limit {seconds} s)"),
                        ),
                        Some(d) => (
                            false,
                            format!(
                                "{} gave up, {} pending; slowest recovery {d:.1} s",
                                ha.gave_up, ha.pending
                            ),
                        ),
                        None => (false, "no HA restart happened".into()),
                    },
                    Expectation::MaxHaRestarts { max } => (
                        ha.restarted <= *max,
                        format!("{} HA restarts (max {max})", ha.restarted),
                    ),
                    Expectation::HostState { host, state } => {
                        let h = ctl.cloud().inv.hosts.iter().find(|x| &x.name == host);
                        match h {
                            Some(h) => (
                                h.status.as_str().eq_ignore_ascii_case(state),
                                format!("{host} is {}", h.status),
                            ),
                            None => (false, format!("no host {host}")),
                        }
                    }
                    Expectation::MaxLeaks { max } => {
                        let n = self.engine.leak_report().leaks.len() as u64;
                        (
                            n <= *max,
                            format!("{n} left behind with nothing to clean them up (max {max})"),
                        )
                    }
                    Expectation::HostResourceState { host, state } => {
                        let h = ctl.cloud().inv.hosts.iter().find(|x| &x.name == host);
                        match h {
                            Some(h) => (
                                h.resource_state.as_str().eq_ignore_ascii_case(state),
                                format!("{host} is {}", h.resource_state),
                            ),
                            None => (false, format!("no host {host}")),
                        }
                    }
                };
                ExpectResult {
                    expectation: format!("{e:?}"),
                    ok,
                    detail,
                }
            })
            .collect()
    }
}
