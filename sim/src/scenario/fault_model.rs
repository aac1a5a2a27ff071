//! The fault part of the scenario format: scheduled faults (with their
//! selectors), the fault kinds and random fault rates. Re-exported by `model`.

use super::model::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultsDef {
    #[serde(default)]
    pub scheduled: Vec<ScheduledFault>,
    #[serde(default)]
    pub random: RandomFaults,
    /// Whether hosts have out-of-band power control (IPMI) the fence driver can use.
    #[serde(default = "default_true")]
    pub fence_driver: bool,
}

impl Default for FaultsDef {
    fn default() -> Self {
        FaultsDef {
            scheduled: Vec::new(),
            random: RandomFaults::default(),
            fence_driver: true,
        }
    }
}

/// A fault at a point in simulated time: `at`, the fault's own fields and an
/// optional selector (`cluster`, `pod`, `zone`, `all`) naming many hosts or pools.
///
/// Deserialized by hand (below): serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, which would refuse every field of the fault.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ScheduledFault {
    pub at: Duration,
    #[serde(flatten)]
    pub select: super::story::Select,
    #[serde(flatten)]
    pub fault: Fault,
}

impl<'de> Deserialize<'de> for ScheduledFault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let at = table.remove("at").ok_or_else(|| D::Error::missing_field("at"))?;
        let at = Duration::deserialize(at).map_err(|e| D::Error::custom(e.message()))?;
        let (select, fault) = super::story::fault_from_table(table).map_err(D::Error::custom)?;
        Ok(ScheduledFault { at, select, fault })
    }
}

/// A fault; `host`/`pool` are names from the topology.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The host powers off: its domains are gone; it comes back after `for` if given.
    HostCrash {
        /// One host; leave out to use the selector (`cluster`, `pod`, `zone`, `all`).
        #[serde(default)]
        host: String,
        #[serde(default, rename = "for")]
        duration: Option<Duration>,
    },
    /// The host stops answering; its domains keep running.
    HostHang {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// Management cannot reach the host (nor the host management).
    Partition {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// The pool fails every operation.
    StorageOutage {
        /// One pool; leave out to use the selector (a cluster's pools, a zone's, `all`).
        #[serde(default)]
        pool: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// The next `count` migrations fail.
    MigrationFailure {
        #[serde(default = "one")]
        count: u32,
    },
    /// Every driver operation fails with this probability for a while.
    OpFailureRate {
        rate: f64,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// The management server crashes and restarts after `downtime`.
    ManagementRestart { downtime: Duration },
    /// One running VM on the host crashes (its domain stops); the host stays up.
    VmCrash {
        #[serde(default)]
        host: String,
    },
    /// The management network fails: no host reaches the management server
    /// (nor it them) for a while; hosts, storage and VMs keep running.
    ManagementNetwork {
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// The whole host freezes: no pings, no lease renewals, and its neighbours
    /// cannot reach it either; its domains keep running (until its watchdog).
    HostFreeze {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// Only the agent process hangs: the host, its leases and its domains live.
    AgentHang {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// The host's lease writer stops; it still answers and its domains run.
    LeaseStop {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// Management and the host's neighbours cannot reach it; its storage works.
    Isolation {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// Asymmetric partition: management's calls to the host are lost while
    /// its pings still arrive.
    AsymmetricPartition {
        #[serde(default)]
        host: String,
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// The host's wall clock jumps to `skew_ms` off the true time (either
    /// sign): its lease stamps use it (its watchdog is monotonic).
    ClockSkew {
        #[serde(default)]
        host: String,
        skew_ms: i64,
    },
    /// Calls take effect but their reply is lost, with this probability.
    LostReplies {
        rate: f64,
        #[serde(rename = "for")]
        duration: Duration,
    },
}

impl Fault {
    /// The host fault this is, for the kinds that switch a host state on for
    /// a while.
    pub fn host_fault(&self) -> Option<(&str, crate::world::HostFault, Duration)> {
        use crate::world::HostFault as H;
        Some(match self {
            Fault::HostHang { host, duration } => (host, H::Hang, *duration),
            Fault::Partition { host, duration } => (host, H::Partition, *duration),
            Fault::HostFreeze { host, duration } => (host, H::Freeze, *duration),
            Fault::AgentHang { host, duration } => (host, H::AgentHang, *duration),
            Fault::LeaseStop { host, duration } => (host, H::LeaseStop, *duration),
            Fault::Isolation { host, duration } => (host, H::Isolation, *duration),
            Fault::AsymmetricPartition { host, duration } => (host, H::CallsLost, *duration),
            _ => return None,
        })
    }

    /// The host a host-level fault names (empty when a selector picks the
    /// hosts); `None` for faults that are not about one host.
    pub fn host_mut(&mut self) -> Option<&mut String> {
        match self {
            Fault::HostCrash { host, .. }
            | Fault::HostHang { host, .. }
            | Fault::Partition { host, .. }
            | Fault::VmCrash { host }
            | Fault::HostFreeze { host, .. }
            | Fault::AgentHang { host, .. }
            | Fault::LeaseStop { host, .. }
            | Fault::Isolation { host, .. }
            | Fault::AsymmetricPartition { host, .. }
            | Fault::ClockSkew { host, .. } => Some(host),
            _ => None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Random faults, drawn from the seed, as rates per simulated day.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    #[serde(default)]
    pub host_crash_per_day: f64,
    #[serde(default)]
    pub host_hang_per_day: f64,
    #[serde(default)]
    pub partition_per_day: f64,
    #[serde(default)]
    pub storage_outage_per_day: f64,
    #[serde(default)]
    pub migration_failure_per_day: f64,
    #[serde(default)]
    pub management_restart_per_day: f64,
    /// Probability that any single driver operation fails.
    #[serde(default)]
    pub op_failure_rate: f64,
    /// How long random outages last (default "5m").
    #[serde(default)]
    pub outage: Option<Duration>,
}
