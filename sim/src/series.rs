//! Time series of a run, one sample per simulated minute: allocation per
//! cluster (absolute and fraction), VMs by state, hosts by state. Written as
//! CSV or JSON lines (`sim run --series`) and plotted in the HTML report.

use crate::engine::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One cluster at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ClusterSample {
    pub cpu_allocated_mhz: u64,
    pub cpu_total_mhz: u64,
    pub memory_allocated_bytes: u64,
    pub memory_total_bytes: u64,
    /// The disable thresholds in force then (they may change mid-run).
    pub cpu_threshold: f64,
    pub memory_threshold: f64,
}

impl ClusterSample {
    pub fn cpu_fraction(&self) -> f64 {
        frac(self.cpu_allocated_mhz, self.cpu_total_mhz)
    }
    pub fn memory_fraction(&self) -> f64 {
        frac(self.memory_allocated_bytes, self.memory_total_bytes)
    }
}

fn frac(a: u64, t: u64) -> f64 {
    if t == 0 { 0.0 } else { a as f64 / t as f64 }
}

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Simulated seconds since the start.
    pub t_s: u64,
    pub clusters: Vec<ClusterSample>,
    pub vms: BTreeMap<String, u32>,
    pub hosts: BTreeMap<String, u32>,
}

/// A sample every `every_ms` of simulated time (a minute).
#[derive(Clone, Debug)]
pub struct Series {
    pub every_ms: u64,
    next_ms: u64,
    pub cluster_names: Vec<String>,
    pub samples: Vec<Sample>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            every_ms: 60_000,
            next_ms: 0,
            cluster_names: Vec::new(),
            samples: Vec::new(),
        }
    }
}

impl Series {
    /// Samples every minute boundary passed since the last sample (the state
    /// then is the state now: nothing happened in between).
    #[inline]
    pub fn maybe_sample(&mut self, e: &Engine) {
        if e.now >= self.next_ms {
            self.sample(e, e.now - e.now % self.every_ms);
        }
    }

    pub fn sample(&mut self, e: &Engine, t_ms: u64) {
        let c = e.ctl.cloud();
        if self.cluster_names.len() != c.inv.clusters.len() {
            self.cluster_names = c.inv.clusters.iter().map(|x| x.name.clone()).collect();
        }
        let clusters = c
            .book
            .cluster
            .iter()
            .zip(&c.policy.clusters)
            .map(|(a, p)| ClusterSample {
                cpu_threshold: p.cpu_disable,
                memory_threshold: p.mem_disable,
                cpu_allocated_mhz: a.cpu.allocated(),
                cpu_total_mhz: a.cpu.total,
                memory_allocated_bytes: a.mem.allocated(),
                memory_total_bytes: a.mem.total,
            })
            .collect();
        let mut vms = BTreeMap::new();
        for (_, v) in c.vms() {
            *vms.entry(v.state.as_str().to_string()).or_insert(0) += 1;
        }
        let mut hosts = BTreeMap::new();
        for h in &c.inv.hosts {
            *hosts.entry(h.status.as_str().to_string()).or_insert(0) += 1;
        }
        let t_s = t_ms / 1000;
        if self.samples.last().is_some_and(|s| s.t_s == t_s) {
            self.samples.pop();
        }
        self.samples.push(Sample {
            t_s,
            clusters,
            vms,
            hosts,
        });
        self.next_ms = t_ms - t_ms % self.every_ms + self.every_ms;
    }

    /// Highest allocated fraction per cluster over the samples: (cpu, at_s), (memory, at_s).
    pub fn peaks(&self) -> Vec<((f64, u64), (f64, u64))> {
        let mut out = vec![((0.0, 0), (0.0, 0)); self.cluster_names.len()];
        for s in &self.samples {
            for (i, c) in s.clusters.iter().enumerate().take(out.len()) {
                if c.cpu_fraction() > out[i].0.0 {
                    out[i].0 = (c.cpu_fraction(), s.t_s);
                }
                if c.memory_fraction() > out[i].1.0 {
                    out[i].1 = (c.memory_fraction(), s.t_s);
                }
            }
        }
        out
    }

    fn states(&self, f: impl Fn(&Sample) -> &BTreeMap<String, u32>) -> Vec<String> {
        let mut all: Vec<String> = self.samples.iter().flat_map(|s| f(s).keys().cloned()).collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn vm_states(&self) -> Vec<String> {
        self.states(|s| &s.vms)
    }

    pub fn host_states(&self) -> Vec<String> {
        self.states(|s| &s.hosts)
    }

    /// One header line and one line per sample.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("t_s");
        for n in &self.cluster_names {
            let _ = write!(
                out,
                ",{n}.cpu_allocated_mhz,{n}.cpu_total_mhz,{n}.cpu_fraction,{n}.memory_allocated_gib,{n}.memory_total_gib,{n}.memory_fraction"
            );
        }
        let (vs, hs) = (self.vm_states(), self.host_states());
        for v in &vs {
            let _ = write!(out, ",vms.{v}");
        }
        for h in &hs {
            let _ = write!(out, ",hosts.{h}");
        }
        out.push('\n');
        for s in &self.samples {
            let _ = write!(out, "{}", s.t_s);
            for c in &s.clusters {
                let _ = write!(
                    out,
                    ",{},{},{:.4},{:.2},{:.2},{:.4}",
                    c.cpu_allocated_mhz,
                    c.cpu_total_mhz,
                    c.cpu_fraction(),
                    gib(c.memory_allocated_bytes),
                    gib(c.memory_total_bytes),
                    c.memory_fraction()
                );
            }
            for v in &vs {
                let _ = write!(out, ",{}", s.vms.get(v).copied().unwrap_or(0));
            }
            for h in &hs {
                let _ = write!(out, ",{}", s.hosts.get(h).copied().unwrap_or(0));
            }
            out.push('\n');
        }
        out
    }

    /// One JSON object per sample, clusters by name.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for s in &self.samples {
            let clusters: BTreeMap<&str, serde_json::Value> = self
                .cluster_names
                .iter()
                .zip(&s.clusters)
                .map(|(n, c)| {
                    (
                        n.as_str(),
                        serde_json::json!({
                            "cpu_allocated_mhz": c.cpu_allocated_mhz,
                            "cpu_total_mhz": c.cpu_total_mhz,
                            "cpu_fraction": c.cpu_fraction(),
                            "memory_allocated_bytes": c.memory_allocated_bytes,
                            "memory_total_bytes": c.memory_total_bytes,
                            "memory_fraction": c.memory_fraction(),
                        }),
                    )
                })
                .collect();
            let line = serde_json::json!({"t_s": s.t_s, "clusters": clusters, "vms": s.vms, "hosts": s.hosts});
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }
}

pub(crate) fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}
