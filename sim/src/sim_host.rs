//! A simulated host's signs of life: what reaches management, what renews
//! leases, and the renewal runs the fresh-lease invariant reads.

use crate::world::{HOST_CLOCK_BASE_MS, HostFault, SimHost};

impl SimHost {
    /// Whether its pings reach management.
    pub fn reachable(&self) -> bool {
        !self.crashed && !self.hung && !self.partitioned && !self.agent_hung
    }

    /// Whether management's calls reach it (and their answers come back).
    pub fn answers_calls(&self) -> bool {
        self.reachable() && !self.calls_lost
    }

    /// A lease renewal at `now`; one after a gap of `ha.lease.timeout` starts a new run.
    pub fn note_renewal(&mut self, now: u64) {
        let gap = self.watchdog.lease_timeout_ms();
        if self.last_renewal_at.is_none_or(|t| now.saturating_sub(t) >= gap) {
            self.renewing_since = Some(now);
        }
        self.last_renewal_at = Some(now);
    }

    /// Whether it renews its storage leases (on pools that are up).
    pub fn renews_leases(&self) -> bool {
        !self.crashed && !self.hung && !self.lease_stopped
    }

    /// Whether a neighbour's ping reaches it. A hung host's kernel still
    /// answers unless the host is frozen or cut from the cluster network.
    pub fn neighbours_reach(&self) -> bool {
        !self.crashed && !self.neighbour_cut
    }

    /// The host's own wall clock at simulation time `now` (epoch ms, from
    /// [`HOST_CLOCK_BASE_MS`]): skewed by `clock_skew_ms`. A real clock never
    /// sits at 0: clamping a negatively skewed early clock there froze its
    /// lease stamps, and a live host's lease looked stale (fuzz seed 5865 of
    /// ha-host-crash).
    pub fn local_clock(&self, now: u64) -> u64 {
        (HOST_CLOCK_BASE_MS as i64)
            .saturating_add(now as i64)
            .saturating_add(self.clock_skew_ms)
            .max(0) as u64
    }

    /// Turns one kind of host fault on or off. Faults may overlap (a hang
    /// inside a freeze): each flag holds while any fault that sets it does.
    pub fn set_fault(&mut self, f: HostFault, on: bool) {
        let depth = self.fault_depth.entry(f).or_insert(0);
        if on {
            *depth += 1;
        } else {
            *depth = depth.saturating_sub(1);
        }
        let active = |k: HostFault| self.fault_depth.get(&k).is_some_and(|d| *d > 0);
        self.hung = active(HostFault::Hang) || active(HostFault::Freeze);
        self.neighbour_cut = active(HostFault::Freeze) || active(HostFault::Isolation);
        self.partitioned = active(HostFault::Partition) || active(HostFault::Isolation);
        self.agent_hung = active(HostFault::AgentHang);
        self.lease_stopped = active(HostFault::LeaseStop);
        self.calls_lost = active(HostFault::CallsLost);
    }
}
