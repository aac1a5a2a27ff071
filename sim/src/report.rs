//! The summary of a scenario run, as JSON and as text.

use crate::runner::{ExpectResult, Runner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use stratus_core::controller::JobStatus;
use stratus_core::units::Millis;

#[derive(Clone, Debug, Serialize)]
pub struct ClusterLine {
    pub cluster: String,
    /// Allocated fractions at the end (used + reserved over total).
    pub cpu_allocated: f64,
    pub memory_allocated: f64,
    /// The same in absolute figures (totals include overprovisioning).
    pub cpu_allocated_mhz: u64,
    pub cpu_total_mhz: u64,
    pub memory_allocated_gib: f64,
    pub memory_total_gib: f64,
    /// Highest allocated fraction over the per-minute samples, and when (simulated s).
    pub cpu_peak: f64,
    pub cpu_peak_at_s: u64,
    pub memory_peak: f64,
    pub memory_peak_at_s: u64,
    /// Primary storage of the cluster's pools (cluster-wide and host-local):
    /// virtual sizes allocated, physical bytes used, capacity; GiB.
    pub storage_allocated_gib: f64,
    pub storage_used_gib: f64,
    pub storage_total_gib: f64,
    pub running_vms: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureLine {
    pub command: String,
    pub reason: String,
    pub count: usize,
    /// The full error of the first such failure (capacity refusals explain themselves).
    pub first_detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    /// The seed everything was drawn from: the datacenter's build and the run.
    pub seed: u64,
    /// Where `seed` came from: "scenario file" or "--seed".
    pub seed_source: String,
    /// The seed the scenario file names.
    pub file_seed: u64,
    /// The controller's wall clock at simulated time 0 (RFC 3339); every time
    /// in the report and the event log counts from there.
    pub epoch: String,
    pub events: u64,
    pub sim_seconds: f64,
    pub wall_seconds: f64,
    pub event_log_sha256: String,
    pub invariant_violations: Vec<String>,
    /// Controller inputs journaled, and management restarts recovered from
    /// the journal with a matching state hash (a mismatch is a violation).
    pub journaled_inputs: u64,
    pub recoveries: u64,
    pub expectations: Vec<ExpectResult>,
    pub expectations_failed: usize,
    pub vms_by_state: BTreeMap<String, usize>,
    pub jobs_submitted: usize,
    pub jobs_succeeded: usize,
    pub jobs_failed: usize,
    pub jobs_pending: usize,
    pub requests_refused: u64,
    pub clusters: Vec<ClusterLine>,
    pub failures: Vec<FailureLine>,
    /// Left behind on hosts or storage with nothing to clean it up: fails
    /// the run unless the scenario expects it (`max_leaks`).
    pub leaks: Vec<String>,
    pub leaks_expected: bool,
    /// Left behind by jobs still running when the run ended (not a leak).
    pub in_flight: Vec<String>,
    /// Left behind, held by the reconciler, which retries the cleanup.
    pub awaiting_cleanup: Vec<String>,
    pub ha: crate::outcome::HaMetrics,
    /// Operator actions the controller refused (e.g. `remove_host` of a host
    /// not drained), with when and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions_refused: Vec<String>,
    /// Hosts not Up and Enabled at the end, with the evidence behind their state.
    pub hosts_not_up: Vec<stratus_core::controller::HostReport>,
}

impl RunReport {
    pub fn build(r: &Runner, scenario: &str, seed: u64, wall_seconds: f64) -> RunReport {
        let e = &r.engine;
        let c = &e.ctl.cloud();
        let mut vms_by_state = BTreeMap::new();
        for (_, v) in c.vms() {
            *vms_by_state.entry(v.state.to_string()).or_insert(0) += 1;
        }
        if c.expunged_count() > 0 {
            vms_by_state.insert("Expunged".into(), c.expunged_count() as usize);
        }
        let jobs = e.ctl.jobs();
        let count = |s: JobStatus| jobs.iter().filter(|j| j.status == s).count();
        let peaks = r.series.peaks();
        let gib = crate::series::gib;
        let clusters = c
            .inv
            .clusters
            .iter()
            .enumerate()
            .map(|(i, cl)| {
                let agg = &c.book.cluster[i];
                let ((cpu_peak, cpu_at), (mem_peak, mem_at)) = peaks.get(i).copied().unwrap_or_default();
                let (mut alloc, mut used, mut total) = (0u64, 0u64, 0u64);
                for (p, pool) in c.inv.pools.iter().enumerate() {
                    let here = match pool.scope {
                        stratus_core::inventory::PoolScope::Cluster(pc) => pc.ix() == i,
                        stratus_core::inventory::PoolScope::Host(h) => c.inv.host(h).cluster.ix() == i,
                        stratus_core::inventory::PoolScope::Zone => false,
                    };
                    if here {
                        alloc += c.book.pool[p].allocated;
                        used += c.book.pool[p].used;
                        total += pool.capacity_bytes;
                    }
                }
                ClusterLine {
                    cluster: cl.name.clone(),
                    cpu_allocated: round3(agg.cpu.fraction_with(0)),
                    memory_allocated: round3(agg.mem.fraction_with(0)),
                    cpu_allocated_mhz: agg.cpu.allocated(),
                    cpu_total_mhz: agg.cpu.total,
                    memory_allocated_gib: round3(gib(agg.mem.allocated())),
                    memory_total_gib: round3(gib(agg.mem.total)),
                    cpu_peak: round3(cpu_peak),
                    cpu_peak_at_s: cpu_at,
                    memory_peak: round3(mem_peak),
                    memory_peak_at_s: mem_at,
                    storage_allocated_gib: round3(gib(alloc)),
                    storage_used_gib: round3(gib(used)),
                    storage_total_gib: round3(gib(total)),
                    running_vms: cl.hosts.iter().map(|h| c.book.host_guests[h.ix()]).sum(),
                }
            })
            .collect();
        let mut failures: BTreeMap<(String, String), FailureLine> = BTreeMap::new();
        for j in e.ctl.failed_jobs() {
            let full = j.error.clone().unwrap_or_default();
            let reason = full.lines().next().unwrap_or("").to_string();
            // Group refusals by their cause, not the VM name in the headline.
            let key_reason = reason.split(" for VM ").next().unwrap_or(&reason).to_string();
            failures
                .entry((j.command.to_string(), key_reason))
                .and_modify(|f| f.count += 1)
                .or_insert(FailureLine {
                    command: j.command.to_string(),
                    reason,
                    count: 1,
                    first_detail: full,
                });
        }
        let mut failures: Vec<FailureLine> = failures.into_values().collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        let expectations = r.expectations();
        let left = e.leak_report();
        let file_seed = r.scenario.scenario.seed;
        RunReport {
            scenario: scenario.to_string(),
            seed,
            // The caller that applied an override says so (`sim run --seed`).
            seed_source: if seed == file_seed { "scenario file" } else { "caller" }.to_string(),
            file_seed,
            epoch: crate::scenario::Epoch { ms: e.epoch }.to_string(),
            events: e.events,
            sim_seconds: e.now as f64 / 1000.0,
            wall_seconds,
            event_log_sha256: e.log_sha256(),
            invariant_violations: e.violations.clone(),
            journaled_inputs: e.inputs(),
            recoveries: e.recoveries,
            expectations_failed: expectations.iter().filter(|x| !x.ok).count(),
            expectations,
            vms_by_state,
            jobs_submitted: jobs.len(),
            jobs_succeeded: count(JobStatus::Succeeded),
            jobs_failed: count(JobStatus::Failed),
            jobs_pending: count(JobStatus::Pending),
            requests_refused: e.refused_requests,
            clusters,
            failures,
            leaks: left.leaks,
            leaks_expected: r
                .scenario
                .expect
                .iter()
                .any(|x| matches!(x, crate::scenario::Expectation::MaxLeaks { .. })),
            in_flight: left.in_flight,
            awaiting_cleanup: left.awaiting_cleanup,
            ha: r.ha_metrics(),
            actions_refused: r.actions_refused.clone(),
            hosts_not_up: c
                .inv
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.is_removed())
                .filter(|(_, h)| {
                    h.status != stratus_core::inventory::HostStatus::Up
                        || h.resource_state != stratus_core::inventory::ResourceState::Enabled
                })
                .map(|(i, _)| {
                    // In simulated time, like the rest of the report.
                    let mut h = e.ctl.host_report(stratus_core::ids::HostIdx(i as u32));
                    let sim = |t: Millis| Millis(e.sim_time(t));
                    h.last_ping = h.last_ping.map(sim);
                    h.down_since = h.down_since.map(sim);
                    h.evidence.iter_mut().for_each(|x| x.at = sim(x.at));
                    h
                })
                .collect(),
        }
    }

    pub fn passed(&self) -> bool {
        self.invariant_violations.is_empty()
            && self.expectations_failed == 0
            && (self.leaks.is_empty() || self.leaks_expected)
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {} (seed {} from the {}): {} events, {:.0} s simulated in {:.2} s wall",
            self.scenario, self.seed, self.seed_source, self.events, self.sim_seconds, self.wall_seconds
        );
        let _ = writeln!(s, "event log sha256 {}", self.event_log_sha256);
        let states: Vec<String> = self.vms_by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            s,
            "VMs: {}",
            if states.is_empty() {
                "none".into()
            } else {
                states.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "jobs: {} submitted, {} succeeded, {} failed, {} pending; {} requests refused",
            self.jobs_submitted, self.jobs_succeeded, self.jobs_failed, self.jobs_pending, self.requests_refused
        );
        let _ = writeln!(s, "capacity allocated at the end (peak over the run):");
        for c in self.clusters.iter().take(20) {
            let _ = writeln!(
                s,
                "  cluster {:<12} cpu {}/{} MHz {:>5.1}% (peak {:.1}%)  memory {:.1}/{:.1} GiB {:>5.1}% (peak {:.1}%)  storage {:.1} allocated, {:.1} used of {:.1} GiB  {} VMs",
                c.cluster,
                c.cpu_allocated_mhz,
                c.cpu_total_mhz,
                c.cpu_allocated * 100.0,
                c.cpu_peak * 100.0,
                c.memory_allocated_gib,
                c.memory_total_gib,
                c.memory_allocated * 100.0,
                c.memory_peak * 100.0,
                c.storage_allocated_gib,
                c.storage_used_gib,
                c.storage_total_gib,
                c.running_vms
            );
        }
        if self.clusters.len() > 20 {
            let _ = writeln!(s, "  ... {} more clusters", self.clusters.len() - 20);
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "failed operations:");
            for f in self.failures.iter().take(10) {
                let _ = writeln!(s, "  {} x{}: {}", f.command, f.count, f.reason);
            }
            if let Some(first) = self.failures.iter().find(|f| f.first_detail.lines().count() > 1) {
                let _ = writeln!(s, "first refusal explained:");
                for line in first.first_detail.lines().take(30) {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
        let ha = &self.ha;
        if ha.restarted + ha.gave_up + ha.not_restarted + ha.pending > 0 || ha.detection_s.is_some() {
            let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1} s"));
            let _ = writeln!(
                s,
                "HA: slowest detection (fault -> Down) {}, slowest recovery (fault -> running) {}; {} restarted, {} gave up, {} not restarted, {} pending",
                f(ha.detection_s),
                f(ha.max_recovery_s),
                ha.restarted,
                ha.gave_up,
                ha.not_restarted,
                ha.pending
            );
        }
        for h in self.hosts_not_up.iter().take(10) {
            if h.evidence.is_empty() {
                let _ = writeln!(
                    s,
                    "host {} is {}/{} (no health evidence was gathered)",
                    h.view.name, h.view.state, h.view.resourcestate
                );
                continue;
            }
            let _ = writeln!(
                s,
                "host {} is {}/{}; latest evidence:",
                h.view.name, h.view.state, h.view.resourcestate
            );
            for e in h.evidence.iter().rev().take(3).rev() {
                let _ = writeln!(
                    s,
                    "  {:.1} s {}: {}: {}",
                    e.at.as_secs_f64(),
                    e.source,
                    e.sign,
                    e.detail
                );
            }
        }
        for (title, list) in [
            ("operator actions refused", &self.actions_refused),
            ("LEAKED (nothing will clean these up)", &self.leaks),
            ("in flight at the end (jobs still running)", &self.in_flight),
            ("awaiting cleanup by the reconciler", &self.awaiting_cleanup),
        ] {
            if !list.is_empty() {
                let _ = writeln!(s, "{title} ({}):", list.len());
                for l in list.iter().take(10) {
                    let _ = writeln!(s, "  {l}");
                }
            }
        }
        let _ = writeln!(
            s,
            "invariants: {}",
            if self.invariant_violations.is_empty() {
                "all held".to_string()
            } else {
                format!("{} VIOLATED", self.invariant_violations.len())
            }
        );
        for v in self.invariant_violations.iter().take(20) {
            let _ = writeln!(s, "  {v}");
        }
        for x in &self.expectations {
            let _ = writeln!(
                s,
                "expect {}: {} ({})",
                x.expectation,
                if x.ok { "ok" } else { "FAILED" },
                x.detail
            );
        }
        let _ = writeln!(s, "{}", if self.passed() { "PASS" } else { "FAIL" });
        s
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
