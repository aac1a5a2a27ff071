//! The report of `stratus bench api`: per phase, per target, the journal's
//! work, the jobs of the startvm=true phase; as a table or JSON.

use serde::Serialize;
use std::collections::BTreeMap;
use stratus_runtime::hosts::DurabilityStats;

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub target: String,
    pub pass: bool,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub command: String,
    pub clients: usize,
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Mean size of an answer's body.
    pub mean_body_bytes: u64,
    /// HTTP status → count.
    pub statuses: BTreeMap<String, u64>,
    pub io_errors: u64,
    /// HTTP 200 answers that are not what was asked: a deploy without a job
    /// id, a list without its envelope or with another `count`.
    pub bad_bodies: u64,
    /// Non-200 answers, connection errors and bad bodies.
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub journal: JournalDelta,
}

/// The jobs of the startvm=true phase, waited for after it.
#[derive(Debug, Serialize)]
pub struct JobsReport {
    pub submitted: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub pending: usize,
    /// From the end of the phase until no job of it was pending (or the wait gave up).
    pub drain_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ApiReport {
    pub db: String,
    pub hosts: u16,
    pub vms: usize,
    pub clients: usize,
    pub seconds: f64,
    pub latency_ms: (u64, u64),
    pub pagesize: usize,
    pub snapshot_every: u64,
    pub how_populated: &'static str,
    pub setup_seconds: f64,
    /// `count` of listVirtualMachines before the list phases.
    pub listed_count: u64,
    pub phases: Vec<PhaseReport>,
    /// One request at a time, in process, stage by stage (medians).
    pub stages: Vec<crate::bench_api_stages::Stages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_jobs: Option<JobsReport>,
    pub errors: u64,
    pub max_rss_mb: f64,
    /// Hosts × the Simulator's max guests per host: the most VMs that can
    /// run, hence the most deploys of the startvm=true phase.
    pub guest_capacity: u64,
}

/// Nearest-rank percentile of sorted microseconds, in ms.
pub fn pct_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// The journal's work during a phase (deltas of the gateway's `DurabilityStats`).
#[derive(Debug, Serialize)]
pub struct JournalDelta {
    /// Controller inputs applied (requests, driver results, heartbeats, timers).
    pub inputs: u64,
    /// Group commits (one fsync each on SQLite).
    pub transactions: u64,
    pub mean_batch: f64,
    /// Time spent committing, ms (the writer's, overlapping the requests).
    pub commit_ms: u64,
    pub snapshots: u64,
    /// How long the clone for the newest snapshot held the gateway lock, µs.
    pub last_clone_us: u64,
    /// The slowest snapshot so far (serialize + hash + store, off the lock), ms.
    pub max_snapshot_ms: u64,
}

pub fn journal_delta(a: &DurabilityStats, b: &DurabilityStats) -> JournalDelta {
    let transactions = b.transactions - a.transactions;
    JournalDelta {
        inputs: b.applied - a.applied,
        transactions,
        mean_batch: (b.entries - a.entries) as f64 / transactions.max(1) as f64,
        commit_ms: b.commit_ms - a.commit_ms,
        snapshots: b.snapshots - a.snapshots,
        last_clone_us: b.last_clone_us,
        max_snapshot_ms: b.max_snapshot_ms,
    }
}

impl ApiReport {
    pub fn table(&self) -> String {
        let mut o = format!(
            "server: stratus::serve in-process, store {}, {} simulated hosts (64 cores, 512 GiB, 100 per cluster; {} guests at most), host calls {}-{} ms, snapshot every {} inputs\n\
             setup through the API {:.2} s; {} VMs created by {}; listVirtualMachines count {}\n\n",
            self.db,
            self.hosts,
            self.guest_capacity,
            self.latency_ms.0,
            self.latency_ms.1,
            self.snapshot_every,
            self.setup_seconds,
            self.vms,
            self.how_populated,
            self.listed_count
        );
        o.push_str(&format!(
            "{:<24} {:>7} {:>8} {:>6} {:>9} {:>7} {:>7} {:>7} {:>8} {:>8}  {:<16} verdict\n",
            "phase",
            "clients",
            "requests",
            "s",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "B/answer",
            "statuses"
        ));
        for p in &self.phases {
            let statuses = p
                .statuses
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .chain((p.io_errors > 0).then(|| format!("io:{}", p.io_errors)))
                .chain((p.bad_bodies > 0).then(|| format!("bad:{}", p.bad_bodies)))
                .collect::<Vec<_>>()
                .join(" ");
            let verdict = p.verdict.as_ref().map_or("-".to_string(), |v| {
                format!("{} ({})", if v.pass { "PASS" } else { "FAIL" }, v.target)
            });
            o.push_str(&format!(
                "{:<24} {:>7} {:>8} {:>6.2} {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8}  {:<16} {}\n",
                p.name,
                p.clients,
                p.requests,
                p.seconds,
                p.requests_per_s,
                p.p50_ms,
                p.p90_ms,
                p.p99_ms,
                p.max_ms,
                p.mean_body_bytes,
                statuses,
                verdict
            ));
            if let Some(e) = &p.first_error {
                o.push_str(&format!("  first error: {e}\n"));
            }
        }
        o.push_str(&format!(
            "\n{:<24} {:>9} {:>12} {:>10} {:>10} {:>9} {:>14} {:>16}\n",
            "journal during",
            "inputs",
            "group commits",
            "mean batch",
            "commit ms",
            "snapshots",
            "last clone µs",
            "max snapshot ms"
        ));
        for p in &self.phases {
            let j = &p.journal;
            o.push_str(&format!(
                "{:<24} {:>9} {:>12} {:>10.1} {:>10} {:>9} {:>14} {:>16}\n",
                p.name,
                j.inputs,
                j.transactions,
                j.mean_batch,
                j.commit_ms,
                j.snapshots,
                j.last_clone_us,
                j.max_snapshot_ms
            ));
        }
        o.push_str(&format!(
            "\n{:<34} {:>7} {:>7} {:>7} {:>7} {:>9} {:>8} {:>8} {:>9}\n",
            "in process, 1 at a time (median µs)",
            "sign",
            "parse",
            "auth",
            "check",
            "handler",
            "render",
            "total",
            "bytes"
        ));
        for s in &self.stages {
            o.push_str(&format!(
                "{:<34} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>9.1} {:>8.1} {:>8.1} {:>9}\n",
                s.command,
                s.sign_us,
                s.parse_us,
                s.auth_us,
                s.check_us,
                s.handler_us,
                s.render_us,
                s.total_us,
                s.body_bytes
            ));
        }
        if let Some(j) = &self.start_jobs {
            o.push_str(&format!(
                "\nstartvm=true jobs: {} submitted, {} succeeded, {} failed, {} pending; drained {:.2} s after the phase\n",
                j.submitted, j.succeeded, j.failed, j.pending, j.drain_seconds
            ));
            if let Some(f) = &j.first_failure {
                o.push_str(&format!("  first failure: {f}\n"));
            }
        }
        o.push_str(&format!(
            "errors: {}; peak RSS {:.0} MB\n",
            self.errors, self.max_rss_mb
        ));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_ms() {
        let us: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(pct_ms(&us, 0.99), 99.0);
        assert_eq!(pct_ms(&[], 0.5), 0.0);
    }
}
