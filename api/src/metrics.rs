//! Request counters for `/metrics` (Prometheus text format). Job durations
//! and capacity are read from the controller at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use stratus_core::controller::{Controller, JobStatus};

#[derive(Debug, Default)]
pub struct Metrics {
    /// (command, HTTP status) → count.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

/// Upper bounds of the job-duration histogram, seconds.
const BUCKETS: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

impl Metrics {
    pub fn record(&self, command: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((command.to_string(), status)).or_default() += 1;
    }

    pub fn render(&self, ctl: &Controller, sessions: usize) -> String {
        let mut o = String::new();
        o.push_str("# HELP stratus_api_requests_total API requests by command and HTTP status.\n");
        o.push_str("# TYPE stratus_api_requests_total counter\n");
        for ((cmd, status), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let cmd = cmd.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(
                o,
                "stratus_api_requests_total{{command=\"{cmd}\",status=\"{status}\"}} {n}"
            );
        }
        o.push_str("# HELP stratus_job_duration_seconds Duration of finished async jobs.\n");
        o.push_str("# TYPE stratus_job_duration_seconds histogram\n");
        let mut counts = [0u64; BUCKETS.len()];
        let (mut n, mut sum, mut pending) = (0u64, 0f64, 0u64);
        for j in ctl.jobs() {
            let Some(done) = j.completed else {
                pending += u64::from(j.status == JobStatus::Pending);
                continue;
            };
            let s = done.0.saturating_sub(j.created.0) as f64 / 1000.0;
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    counts[i] += 1;
                }
            }
            n += 1;
            sum += s;
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(o, "stratus_job_duration_seconds_bucket{{le=\"{b}\"}} {}", counts[i]);
        }
        let _ = writeln!(o, "stratus_job_duration_seconds_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(o, "stratus_job_duration_seconds_sum {sum}");
        let _ = writeln!(o, "stratus_job_duration_seconds_count {n}");
        o.push_str("# TYPE stratus_jobs_pending gauge\n");
        let _ = writeln!(o, "stratus_jobs_pending {pending}");
        o.push_str("# TYPE stratus_sessions gauge\n");
        let _ = writeln!(o, "stratus_sessions {sessions}");
        o.push_str("# HELP stratus_capacity Allocated and total capacity per zone (cpu MHz, memory bytes).\n");
        o.push_str("# TYPE stratus_capacity gauge\n");
        for row in crate::views::capacity_rows(ctl, None) {
            let _ = writeln!(
                o,
                "stratus_capacity{{zone=\"{}\",cluster=\"{}\",type=\"{}\",kind=\"used\"}} {}",
                row.zone_name, row.cluster_name, row.kind, row.used
            );
            let _ = writeln!(
                o,
                "stratus_capacity{{zone=\"{}\",cluster=\"{}\",type=\"{}\",kind=\"total\"}} {}",
                row.zone_name, row.cluster_name, row.kind, row.total
            );
        }
        o
    }
}
