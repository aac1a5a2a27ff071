//! The outcome side of a run: operator actions, HA timings, expectations.

use crate::runner::{ExpectResult, Runner};
use crate::scenario::{Action, Expectation};
use serde::Serialize;
use stratus_core::cloud::{HostSpec, ServiceOfferingSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::{Input, JobStatus};
use stratus_core::inventory::AllocationState;
use stratus_core::settings::Scope;
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
        let what = crate::scenario::describe(&a);
        // An operator's action needs a management server to receive it.
        if self.engine.ms_down_until.is_some() {
            self.refuse_action(&what, "management server is down");
            return;
        }
        let inv = &self.engine.ctl.cloud().inv;
        let cluster_id = |name: &str| inv.clusters.iter().find(|c| c.name == name).map(|c| c.id);
        let zone_id = |name: &str| inv.zones.iter().find(|z| z.name == name).map(|z| z.id);
        let admin = |change: AdminChange| vec![Input::Admin { change, by: None }];
        let inputs: Vec<Input> = match &a {
            Action::PrepareMaintenance { host, .. } => match self.host_id(host) {
                Some(host) => vec![Input::PrepareMaintenance { host }],
                None => return,
            },
            Action::CancelMaintenance { host, .. } => match self.host_id(host) {
                Some(host) => vec![Input::CancelMaintenance { host }],
                None => return,
            },
            Action::RollingMaintenance {
                cluster,
                pre_hook,
                post_hook,
                down_hosts,
                ..
            } => {
                let Some(c) = cluster_id(cluster) else { return };
                let (pre, post) = (pre_hook.map_or(0, |d| d.ms), post_hook.map_or(0, |d| d.ms));
                vec![Input::RollingMaintenance {
                    cluster: c,
                    pre_hook_ms: pre,
                    post_hook_ms: post,
                    wait_for_down: down_hosts.as_deref() == Some("wait"),
                }]
            }
            Action::SetSetting {
                name,
                value,
                cluster,
                zone,
                ..
            } => {
                let scope = match (cluster, zone) {
                    (Some(c), _) => match cluster_id(c) {
                        Some(id) => Scope::Cluster(id),
                        None => return,
                    },
                    (None, Some(z)) => match zone_id(z) {
                        Some(id) => Scope::Zone(id),
                        None => return,
                    },
                    (None, None) => Scope::Global,
                };
                let value = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                vec![Input::UpdateSetting {
                    name: name.clone(),
                    scope,
                    value,
                }]
            }
            Action::DisableHost { host, .. } | Action::EnableHost { host, .. } => match self.host_id(host) {
                Some(host) => admin(AdminChange::UpdateHost {
                    host,
                    allocation: Some(if matches!(a, Action::DisableHost { .. }) {
                        AllocationState::Disabled
                    } else {
                        AllocationState::Enabled
                    }),
                    tags: None,
                }),
                None => return,
            },
            Action::DisableCluster { cluster, .. } | Action::EnableCluster { cluster, .. } => {
                let Some(c) = cluster_id(cluster) else { return };
                admin(AdminChange::UpdateCluster {
                    cluster: c,
                    allocation: if matches!(a, Action::DisableCluster { .. }) {
                        AllocationState::Disabled
                    } else {
                        AllocationState::Enabled
                    },
                })
            }
            Action::AddHosts {
                cluster,
                prefix,
                count,
                sockets,
                cores,
                mhz,
                memory_gib,
                ..
            } => {
                let Some(c) = cluster_id(cluster) else { return };
                let taken = inv.hosts.iter().filter(|h| h.name.starts_with(prefix.as_str())).count() as u32;
                (1..=*count)
                    .map(|k| Input::Admin {
                        change: AdminChange::AddHost {
                            spec: HostSpec {
                                name: format!("{prefix}{}", taken + k),
                                cluster: c,
                                cpu_cores: sockets.saturating_mul(*cores),
                                cpu_mhz: *mhz,
                                memory_bytes: memory_gib * (1 << 30),
                                tags: Vec::new(),
                            },
                        },
                        by: None,
                    })
                    .collect()
            }
            Action::RemoveHost { host, forced, .. } => match self.host_id(host) {
                Some(h) => admin(AdminChange::DeleteHost {
                    host: h,
                    forced: *forced,
                }),
                None => {
                    self.refuse_action(&what, &format!("no host {host} (already removed?)"));
                    return;
                }
            },
            Action::RegisterOffering {
                name,
                cpu,
                mhz,
                memory_mb,
                ha,
                ..
            } => {
                let mut spec = ServiceOfferingSpec::fixed(name, *cpu, *mhz, *memory_mb);
                spec.offer_ha = *ha;
                admin(AdminChange::CreateServiceOffering {
                    spec,
                    display_text: name.clone(),
                })
            }
        };
        for input in inputs {
            if let Some(e) = self.engine.feed(input).error() {
                self.refuse_action(&what, &e.to_string());
            }
        }
        self.engine.after_controller();
        if matches!(a, Action::AddHosts { .. } | Action::RemoveHost { .. }) {
            self.sync_world();
        }
    }

    /// An action the run could not carry out: in the event log and the report.
    fn refuse_action(&mut self, what: &str, why: &str) {
        self.engine.log("action.refused", "operator", &format!("{what}: {why}"));
        let at = self.engine.now / 1000;
        self.actions_refused.push(format!("at {at} s: {what}: {why}"));
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

    /// For `max_ha_restarts`: when the first restart over the limit happened
    /// (simulated ms) and its number.
    fn ha_restart_exceeded(&self, e: &Expectation) -> Option<(u64, u64)> {
        let Expectation::MaxHaRestarts { max } = e else {
            return None;
        };
        let mut times: Vec<u64> = self
            .engine
            .ctl
            .ha_log()
            .iter()
            .filter_map(|o| o.recovered_at)
            .map(|t| self.engine.sim_time(t))
            .collect();
        times.sort_unstable();
        let k = usize::try_from(*max).ok()?;
        times.get(k).map(|t| (*t, *max + 1))
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
            .enumerate()
            .map(|(i, e)| {
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
                    Expectation::HostNever { host, state } => {
                        let who = host.as_deref().unwrap_or("any host");
                        (true, format!("{who} never {state}"))
                    }
                    Expectation::PeakAllocatedAtMost { cluster, resource, max } => {
                        let peak = self.timeline.peak.get(i).copied().flatten();
                        (
                            true,
                            match peak {
                                Some((p, t)) => format!(
                                    "cluster {cluster} {resource} peaked at {p:.4} at {:.0} s (max {max})",
                                    t as f64 / 1000.0
                                ),
                                None => format!("cluster {cluster} {resource}: no sample"),
                            },
                        )
                    }
                    Expectation::MaintenanceEndsIn { host, states } => {
                        let h = ctl.cloud().inv.hosts.iter().rev().find(|x| &x.name == host); // newest: a removed host's name may be reused
                        match h {
                            None => (false, format!("no host {host}")),
                            Some(h) => {
                                let now = h.resource_state.as_str();
                                let why = self
                                    .timeline
                                    .last_resource_change
                                    .get(host)
                                    .cloned()
                                    .unwrap_or_default();
                                let reason = why.split_once(": ").map(|(_, r)| r.trim()).unwrap_or("");
                                let in_list = states.iter().any(|s| s.eq_ignore_ascii_case(now));
                                if now == "ErrorInPrepareForMaintenance" && reason.is_empty() {
                                    (false, format!("{host} is {now} with no reason given"))
                                } else if reason.is_empty() {
                                    (in_list, format!("{host} is {now}"))
                                } else {
                                    (in_list, format!("{host} is {now} ({reason})"))
                                }
                            }
                        }
                    }
                    Expectation::HostState { host, state } => {
                        let h = ctl.cloud().inv.hosts.iter().rev().find(|x| &x.name == host); // newest: a removed host's name may be reused
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
                        let h = ctl.cloud().inv.hosts.iter().rev().find(|x| &x.name == host); // newest: a removed host's name may be reused
                        match h {
                            Some(h) => (
                                h.resource_state.as_str().eq_ignore_ascii_case(state),
                                format!("{host} is {}", h.resource_state),
                            ),
                            None => (false, format!("no host {host}")),
                        }
                    }
                };
                let mut failed_at_s = None;
                let (ok, detail) = match self.timeline.first_failure.get(i).cloned().flatten() {
                    Some(f) => {
                        failed_at_s = Some(f.at_ms as f64 / 1000.0);
                        (
                            false,
                            format!("first failed at {:.1} s: {}", f.at_ms as f64 / 1000.0, f.detail),
                        )
                    }
                    None => match (e, self.ha_restart_exceeded(e)) {
                        (Expectation::MaxHaRestarts { .. }, Some((t, n))) => {
                            failed_at_s = Some(t as f64 / 1000.0);
                            (ok, format!("{detail}; restart {n} came at {:.1} s", t as f64 / 1000.0))
                        }
                        _ => (ok, detail),
                    },
                };
                ExpectResult {
                    expectation: crate::scenario::describe(e),
                    ok,
                    detail,
                    failed_at_s,
                }
            })
            .collect()
    }
}
