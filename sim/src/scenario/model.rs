//! The scenario file format (TOML), as typed data. Documented in
//! scenarios/README.md; a JSON schema is generated from these types.
//!
//! Durations are strings like "90s", "15m", "2h", "1d" (see `Duration`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use super::fault_model::*;

/// A simulated-time duration written as `"<number><unit>"`, unit in ms|s|m|h|d.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration {
    pub ms: u64,
}

/// A wall-clock time written as RFC 3339 in UTC, `"2026-01-01T00:00:00Z"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Epoch {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: Meta,
    /// Global settings by CloudStack name, e.g. "vm.allocation.algorithm" = "firstfit".
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SettingValue>")]
    pub settings: BTreeMap<String, toml::Value>,
    pub zones: Vec<ZoneDef>,
    pub offerings: Vec<OfferingDef>,
    #[serde(default)]
    pub disk_offerings: Vec<DiskOfferingDef>,
    pub templates: Vec<TemplateDef>,
    #[serde(default)]
    pub accounts: Vec<AccountDef>,
    #[serde(default)]
    pub workload: Vec<WorkloadDef>,
    #[serde(default)]
    pub faults: FaultsDef,
    /// Operator actions at points in simulated time (maintenance).
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub latency: LatencyDef,
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Faults and actions started by something that happens in the run.
    #[serde(default)]
    pub triggers: Vec<super::story::Trigger>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated time the run lasts.
    pub duration: Duration,
    /// The controller's wall clock at simulated time 0 (default
    /// 2023-11-14T22:13:20Z). Reports and the event log count from 0 whatever it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneDef {
    pub name: String,
    #[serde(default = "default_network_type")]
    pub network_type: String,
    #[serde(default = "default_dns")]
    pub dns1: String,
    #[serde(default = "default_dns")]
    pub internal_dns1: String,
    #[serde(default)]
    pub guest_cidr: Option<String>,
    #[serde(default = "yes")]
    pub local_storage_enabled: bool,
    pub pods: Vec<PodDef>,
    /// Zone-wide primary storage.
    #[serde(default)]
    pub pools: Vec<PoolDef>,
    #[serde(default)]
    pub image_stores: Vec<ImageStoreDef>,
    #[serde(default)]
    pub networks: Vec<NetworkDef>,
}

fn default_network_type() -> String {
    "Advanced".into()
}
fn default_dns() -> String {
    "192.0.2.53".into()
}
fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodDef {
    pub name: String,
    pub gateway: String,
    pub netmask: String,
    pub start_ip: String,
    pub end_ip: String,
    pub clusters: Vec<ClusterDef>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterDef {
    pub name: String,
    #[serde(default = "default_hypervisor")]
    pub hypervisor: String,
    /// Host groups: `count` hosts of one shape named `<prefix><n>`.
    pub hosts: Vec<HostGroupDef>,
    /// Cluster-wide primary storage.
    #[serde(default)]
    pub pools: Vec<PoolDef>,
    /// Cluster-scope settings, e.g. "cpu.overprovisioning.factor" = 2.0.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SettingValue>")]
    pub settings: BTreeMap<String, toml::Value>,
}

fn default_hypervisor() -> String {
    "KVM".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostGroupDef {
    /// Hosts are named `<prefix><n>`: n counts from 1 and continues across
    /// groups that share a prefix, in file order (so `prefix = "kvm"` in two
    /// clusters of 4 hosts gives kvm1..kvm4 and kvm5..kvm8).
    pub prefix: String,
    #[serde(default = "one")]
    pub count: u32,
    /// CPU sockets per host; the host has `sockets × cores` cores.
    #[serde(default = "one")]
    pub sockets: u32,
    /// Cores per socket (per host when `sockets` is 1).
    pub cores: u32,
    pub mhz: u32,
    pub memory_gib: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Size of a host-local pool per host, GiB (0 = none).
    #[serde(default)]
    pub local_storage_gib: u64,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolDef {
    pub name: String,
    /// "nfs" | "gluster"
    #[serde(default = "default_pool_type")]
    pub r#type: String,
    pub capacity_gib: u64,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_pool_type() -> String {
    "nfs".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageStoreDef {
    pub name: String,
    pub url: String,
    pub capacity_gib: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    pub name: String,
    pub cidr: String,
    /// Owner account; absent = shared network.
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferingDef {
    pub name: String,
    pub cpu: u32,
    pub mhz: u32,
    pub memory_mb: u64,
    #[serde(default)]
    pub ha: bool,
    /// "shared" | "local"
    #[serde(default = "default_storage")]
    pub storage: String,
    #[serde(default)]
    pub host_tags: Vec<String>,
    #[serde(default)]
    pub storage_tags: Vec<String>,
    /// "FirstFitPlanner" | "UserDispersingPlanner" | "UserConcentratedPodPlanner"
    #[serde(default)]
    pub planner: Option<String>,
}

fn default_storage() -> String {
    "shared".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskOfferingDef {
    pub name: String,
    pub size_gib: u64,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    pub name: String,
    pub size_gib: u64,
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default = "default_os")]
    pub os_type: String,
    #[serde(default = "default_hypervisor")]
    pub hypervisor: String,
}

fn default_format() -> String {
    "QCOW2".into()
}
fn default_os() -> String {
    "Other Linux (64-bit)".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDef {
    pub name: String,
}

/// A stream of VMs for one account.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadDef {
    pub account: String,
    /// Zone name; defaults to the first zone.
    #[serde(default)]
    pub zone: Option<String>,
    pub offering: String,
    pub template: String,
    #[serde(default)]
    pub disk_offering: Option<String>,
    #[serde(default)]
    pub network: Option<String>,
    pub arrival: Arrival,
    #[serde(default)]
    pub lifetime: Lifetime,
    /// Per running VM, operations per simulated hour.
    #[serde(default)]
    pub ops_per_hour: OpMix,
    /// Deploy with startvm=false.
    #[serde(default)]
    pub start_stopped: bool,
    /// Retry a failed deploy, start or destroy (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// How the workload retries its failed operations, like a client would.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first failure (> 0).
    pub attempts: u32,
    /// Wait between a failure and its retry.
    pub after: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrival {
    /// `count` VMs at time `at` (a burst).
    Burst {
        count: u32,
        #[serde(default)]
        at: Option<Duration>,
    },
    /// `count` VMs evenly spread over `over`.
    Ramp { count: u32, over: Duration },
    /// Poisson arrivals at `per_hour` until the end (or `max` VMs).
    Poisson {
        per_hour: f64,
        #[serde(default)]
        max: Option<u32>,
    },
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lifetime {
    /// Never destroyed.
    #[default]
    Forever,
    /// Exponentially distributed lifetime with this mean; destroyed with expunge.
    Exponential { mean: Duration },
    /// Fixed lifetime.
    Fixed { after: Duration },
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpMix {
    #[serde(default)]
    pub stop_start: f64,
    #[serde(default)]
    pub reboot: f64,
    #[serde(default)]
    pub migrate: f64,
}

/// Operation latencies of the simulated drivers (each a uniform range).
/// `profile` starts from a measured profile (`sim/profiles/<name>.toml`,
/// e.g. `"kvm-qemu-tcg"`, written by `stratus bench kvm --profile-out`)
/// instead of the built-in defaults; a range given here overrides it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<(Duration, Duration)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<(Duration, Duration)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_volume: Option<(Duration, Duration)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_template: Option<(Duration, Duration)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<(Duration, Duration)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<(Duration, Duration)>,
}

impl LatencyDef {
    /// The ranges in force: the profile's (or the built-in defaults), with
    /// this table's own ranges over them. Errs on an unknown profile.
    pub fn resolve(&self) -> Result<super::profile::LatencyRanges, String> {
        let mut r = match &self.profile {
            Some(name) => super::profile::builtin(name)?.latency,
            None => super::profile::LatencyRanges::default(),
        };
        let set = |slot: &mut (Duration, Duration), v: Option<(Duration, Duration)>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut r.start, self.start);
        set(&mut r.stop, self.stop);
        set(&mut r.create_volume, self.create_volume);
        set(&mut r.copy_template, self.copy_template);
        set(&mut r.migrate, self.migrate);
        set(&mut r.other, self.other);
        Ok(r)
    }
}

/// An assertion checked at the end of the run (invariants are always checked).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expectation {
    /// No deploy fails.
    NoFailedDeploys,
    /// At most `max` deploys fail.
    MaxFailedDeploys { max: u64 },
    /// At least `min` VMs are Running at the end.
    MinRunningVms { min: u64 },
    /// A cluster's allocated fraction of `resource` ("cpu" | "memory") at the end is below `below`.
    ClusterAllocatedBelow {
        cluster: String,
        resource: String,
        below: f64,
    },
    /// Every VM that should run is Running at the end.
    AllVmsRunning,
    /// Every crashed or hung host was declared Down within this many seconds.
    HaDetectionWithin { seconds: f64 },
    /// Every HA VM of a crashed or hung host ran again within this many seconds of the fault.
    HaRecoveryWithin { seconds: f64 },
    /// At most `max` HA restarts happened (0 for "nothing was restarted").
    MaxHaRestarts { max: u64 },
    /// A host's state at the end ("Up", "Down", "Disconnected", "Alert", ...).
    HostState { host: String, state: String },
    /// A host's resource state at the end ("Enabled", "Maintenance", ...).
    HostResourceState { host: String, state: String },
    /// At most `max` things are left behind that nothing will clean up (a
    /// leak fails the run unless the scenario expects it this way).
    MaxLeaks { max: u64 },
    /// Checked after every event: the host (or every host, if `host` is left
    /// out) is never in `state` ("Down", "Alert", "Disconnected", ...).
    HostNever {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        state: String,
    },
    /// Checked after every event: the cluster's allocated fraction of
    /// `resource` ("cpu" | "memory") stays at or below `max`.
    PeakAllocatedAtMost {
        cluster: String,
        resource: String,
        max: f64,
    },
    /// The host's maintenance ends in one of `states` (e.g. ["Maintenance",
    /// "ErrorInPrepareForMaintenance"]); ending in ErrorInPrepareForMaintenance
    /// must come with a reason.
    MaintenanceEndsIn { host: String, states: Vec<String> },
}

/// An operator action at time `at`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// prepareHostForMaintenance.
    PrepareMaintenance { at: Duration, host: String },
    /// cancelHostMaintenance.
    CancelMaintenance { at: Duration, host: String },
    /// Every host of the cluster, one at a time: pre hook, evacuate, post hook, enable.
    RollingMaintenance {
        at: Duration,
        cluster: String,
        #[serde(default)]
        pre_hook: Option<Duration>,
        #[serde(default)]
        post_hook: Option<Duration>,
        /// A host that is not Up when its turn comes: "skip" it (default; the
        /// log and the end of the roll name it) or "wait" until it is Up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        down_hosts: Option<String>,
    },
    /// updateConfiguration: a setting by its CloudStack name, globally or for
    /// one `cluster` or `zone`.
    SetSetting {
        at: Duration,
        name: String,
        #[schemars(with = "SettingValue")]
        value: toml::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// updateHost allocationstate=Disable: no new VM lands on it.
    DisableHost { at: Duration, host: String },
    /// updateHost allocationstate=Enable.
    EnableHost { at: Duration, host: String },
    /// updateCluster allocationstate=Disabled: no new VM lands in it.
    DisableCluster { at: Duration, cluster: String },
    /// updateCluster allocationstate=Enabled.
    EnableCluster { at: Duration, cluster: String },
    /// addHost: `count` new hosts of one shape join a cluster (named
    /// `<prefix><n>` after the existing ones of that prefix).
    AddHosts {
        at: Duration,
        cluster: String,
        prefix: String,
        #[serde(default = "one")]
        count: u32,
        #[serde(default = "one")]
        sockets: u32,
        cores: u32,
        mhz: u32,
        memory_gib: u64,
    },
    /// deleteHost: the host leaves the inventory and the datacenter. It must
    /// be drained first (in Maintenance, e.g. by an earlier
    /// `prepare_maintenance`) unless `forced`; a host VMs still use is refused
    /// either way, and a refusal is listed in the report (`actions_refused`).
    RemoveHost {
        at: Duration,
        host: String,
        #[serde(default)]
        forced: bool,
    },
    /// createServiceOffering: a compute offering appears mid-run.
    RegisterOffering {
        at: Duration,
        name: String,
        cpu: u32,
        mhz: u32,
        memory_mb: u64,
        #[serde(default)]
        ha: bool,
    },
}

impl Action {
    /// When the action happens (simulated time).
    pub fn at(&self) -> Duration {
        match self {
            Action::PrepareMaintenance { at, .. }
            | Action::CancelMaintenance { at, .. }
            | Action::RollingMaintenance { at, .. }
            | Action::SetSetting { at, .. }
            | Action::DisableHost { at, .. }
            | Action::EnableHost { at, .. }
            | Action::DisableCluster { at, .. }
            | Action::EnableCluster { at, .. }
            | Action::AddHosts { at, .. }
            | Action::RemoveHost { at, .. }
            | Action::RegisterOffering { at, .. } => *at,
        }
    }
}

/// Schema of a setting value: TOML string, number or boolean, validated
/// against the setting's kind. Dotted keys written without quotes make nested
/// tables; they are joined back into the dotted setting name.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum SettingValue {
    Text(String),
    Number(f64),
    Bool(bool),
    Nested(BTreeMap<String, SettingValue>),
}
