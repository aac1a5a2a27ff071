//! The what-if report: what `stratus whatif --format json` prints and the
//! `runWhatIf` job returns as `whatif`. Documented in `docs/whatif.md` and in
//! `docs/whatif.schema.json` (a test keeps the schema and this file in step).

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "stratus-whatif/1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub inventory: Summary,
    /// The hypotheticals applied, in order, as an operator would say them.
    pub hypotheticals: Vec<String>,
    /// The re-placement plan of `--fail-*` / `--drain-host` (absent without them).
    pub replacement: Option<Replacement>,
    pub clusters: Vec<ClusterReport>,
    /// One entry per host that is Up: what happens if it alone fails.
    pub n_minus_1: Vec<HostFailure>,
    pub fit_now: Vec<OfferingFit>,
    pub growth: Option<Growth>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub zones: usize,
    pub pods: usize,
    pub clusters: usize,
    pub hosts: usize,
    pub hosts_up: usize,
    pub vms: usize,
    pub vms_running: usize,
    pub ha_vms_running: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub vm: String,
    pub vmid: String,
    pub from: String,
    /// "ha-restart", "migrate" (drain or removal) or "lost" (not HA-enabled, or root on local storage).
    pub kind: String,
    /// Destination host, or null when none was found (then `reason`).
    pub to: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replacement {
    pub failed_hosts: Vec<String>,
    pub drained_hosts: Vec<String>,
    /// Hosts taken out of the inventory (`--remove-host`, and every host of a
    /// `--remove-cluster`): their VMs are live-migrated by the plan, then their
    /// capacity is gone from every answer.
    #[serde(default)]
    pub removed_hosts: Vec<String>,
    #[serde(default)]
    pub removed_clusters: Vec<String>,
    pub moves: Vec<Move>,
    pub placed: usize,
    pub not_placed: usize,
    pub lost: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub total: u64,
    pub allocated: u64,
    pub allocated_pct: f64,
    /// Allocation threshold at which CloudStack alerts.
    pub notify_pct: f64,
    /// Allocation threshold above which the allocator skips the cluster.
    pub disable_pct: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Proven: any `tolerated` Up hosts of the cluster can fail and every HA VM restarts.
    pub tolerated: u32,
    /// Smallest k known to break it (a witness set exists), or null if none was found.
    pub breaks_at: Option<u32>,
    /// True when `breaks_at == tolerated + 1` (the answer is exact).
    pub exact: bool,
    /// How each k was decided: "enumerated" (every k-subset simulated), "slot-bound"
    /// (proof by free slots), "witness" (a failing subset found).
    pub method: Vec<String>,
    /// A set of hosts whose failure leaves an HA VM down (for `breaks_at`).
    pub witness: Vec<String>,
}

impl Tolerance {
    /// The answer as an operator reads it: `2`, `3 (all hosts)`, `1..2`
    /// (proven range), `>= 4` (no failing set found).
    pub fn summary(&self) -> String {
        match (self.exact, self.breaks_at) {
            (true, None) => format!("{} (all hosts)", self.tolerated),
            (true, Some(_)) => self.tolerated.to_string(),
            (false, Some(b)) => format!("{}..{}", self.tolerated, b - 1),
            (false, None) => format!(">= {}", self.tolerated),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slots {
    pub definition: String,
    pub slot_cpu_mhz: u64,
    pub slot_memory_mib: u64,
    pub total: u64,
    pub used: u64,
    /// Slots of the largest host, held back so one host failure is covered.
    pub failover: u64,
    pub available: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stranded {
    pub offering: String,
    /// VMs of the offering the cluster's free CPU and memory would hold if pooled.
    pub aggregate_fit: u64,
    /// VMs that actually fit host by host.
    pub placeable: u64,
    pub stranded_vms: u64,
    /// Free capacity left on the hosts once packed with the offering.
    pub stranded_cpu_mhz: u64,
    pub stranded_memory_mib: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    pub id: String,
    pub name: String,
    pub pod: String,
    pub zone: String,
    pub hosts: usize,
    pub hosts_up: usize,
    pub ha_vms: usize,
    pub cpu: Resource,
    pub memory: Resource,
    /// Percentage points left before the first disable threshold (CPU or memory).
    pub headroom_pct: f64,
    pub failures_tolerated: Tolerance,
    pub slots: Slots,
    pub stranded: Option<Stranded>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VmRefusal {
    pub vm: String,
    pub vmid: String,
    /// The allocator's one-line reason.
    pub reason: String,
    /// The allocator's full explanation (zone > pod > cluster > host).
    pub explanation: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFailure {
    pub host: String,
    pub hostid: String,
    pub cluster: String,
    pub ha_vms: usize,
    pub restarted: usize,
    pub not_restarted: Vec<VmRefusal>,
    /// Running VMs that are not HA-enabled (or have a local root volume): stay down.
    pub lost: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterFit {
    pub cluster: String,
    pub fits: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferingFit {
    pub offering: String,
    pub id: String,
    pub cpu: u32,
    pub mhz: u32,
    pub memory_mib: u64,
    /// More VMs of this offering that fit now (compute, cluster thresholds applied).
    pub fits: u64,
    pub per_cluster: Vec<ClusterFit>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GrowthMonth {
    pub month: u32,
    /// VMs the workload should have at the end of the month.
    pub target_vms: u64,
    pub placed: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterGrowth {
    pub cluster: String,
    /// Allocated CPU percent at the end of month 0 (now), 1, ..., months.
    pub cpu_pct: Vec<f64>,
    pub memory_pct: Vec<f64>,
    pub notify_pct: f64,
    pub disable_pct: f64,
    /// First month whose end is above the notification threshold (CPU or memory).
    pub notify_month: Option<u32>,
    /// First month whose end is above the disable threshold.
    pub disable_month: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    pub percent_per_month: f64,
    pub months: u32,
    pub start_vms: u64,
    /// The offering mix the new VMs are drawn from: (offering, share of VMs).
    pub mix: Vec<(String, f64)>,
    pub monthly: Vec<GrowthMonth>,
    pub clusters: Vec<ClusterGrowth>,
    /// First month in which a deploy is refused.
    pub first_failure_month: Option<u32>,
    pub first_failure: Option<String>,
}
