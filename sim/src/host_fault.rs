//! The ways one simulated host fails (each on or off; they may overlap).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HostFault {
    /// Agent and lease writer hang; the kernel still answers neighbours.
    Hang,
    /// The whole host hangs: no pings, no leases, neighbours cannot reach it.
    Freeze,
    /// Cut off from management, both ways.
    Partition,
    /// Cut off from management and from its neighbours; storage still works.
    Isolation,
    /// Only the agent process hangs; leases renew, neighbours reach it.
    AgentHang,
    /// Leases stop renewing; everything else works.
    LeaseStop,
    /// Management's calls to it are lost; its pings still arrive.
    CallsLost,
}

impl HostFault {
    pub fn describe(self) -> &'static str {
        match self {
            HostFault::Hang => "host hangs (stops answering, domains keep running)",
            HostFault::Freeze => "host freezes (neighbours cannot reach it either; domains keep running)",
            HostFault::Partition => "management <-> host partition",
            HostFault::Isolation => "host cut off from management and its neighbours (storage still reachable)",
            HostFault::AgentHang => "agent hangs (host, leases and domains live)",
            HostFault::LeaseStop => "lease writer stops (host answers, domains keep running)",
            HostFault::CallsLost => "asymmetric link: calls to the host are lost, its pings arrive",
        }
    }

    pub fn ended(self) -> &'static str {
        match self {
            HostFault::Hang | HostFault::Freeze => "host answers again",
            HostFault::Partition | HostFault::Isolation | HostFault::CallsLost => "partition healed",
            HostFault::AgentHang => "agent answers again",
            HostFault::LeaseStop => "lease writer renews again",
        }
    }
}
