//! What a host says about itself.

use serde::{Deserialize, Serialize};

/// A host's hardware and hypervisor, as its agent reports them at enrollment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub cpu_cores: u32,
    /// MHz per core.
    pub cpu_mhz: u32,
    pub memory_bytes: u64,
    pub hypervisor_version: String,
    /// CPU sockets (0: not reported, older agents).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpu_sockets: u32,
    /// CPU model as the hypervisor names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// The URI peers use to live-migrate domains to this host
    /// (`qemu+tls://hostb/system`); `None` for simulated hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_uri: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
