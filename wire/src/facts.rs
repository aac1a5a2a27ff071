//! What a host says about itself.

use serde::{Deserialize, Serialize};

/// A host's hardware and hypervisor, as its agent reports them at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub cpu_cores: u32,
    /// MHz per core.
    pub cpu_mhz: u32,
    pub memory_bytes: u64,
    pub hypervisor_version: String,
}
