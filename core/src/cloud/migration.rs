//! findHostsForMigration: for a running VM, every other host of its zone with
//! the allocator's verdict for moving the VM there now (the reason when it
//! would refuse). Reads only: the allocator runs on a copy of its RNG and a
//! scratch buffer of its own.

use super::Cloud;
use crate::allocator::{self, Explanation, PlacementRequest, Scratch, TraceRecorder, Verdict, VerdictLine};
use crate::error::CoreResult;
use crate::ids::*;
use crate::vm::{Charge, VmState};

/// One possible destination and why it would or would not take the VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationCandidate {
    pub host: HostId,
    /// `None`: suitable; else the allocator's reason (first filter that refused).
    pub refusal: Option<String>,
}

impl Cloud {
    /// Every host of the VM's zone except its own, in inventory order, each
    /// with the allocator's verdict for an explicit migration there.
    pub fn migration_candidates(&self, vm: VmId) -> CoreResult<Vec<MigrationCandidate>> {
        let i = self.vm_idx(vm)?;
        let v = self.vm_at(i);
        let from = match (v.state, v.charge) {
            (VmState::Running, Charge::Used { host }) => host,
            _ => return Err(self.bad_state(i, "migrate")),
        };
        let mut base = self.request_for(i);
        base.own_reservation = None;
        base.preferred_host = None;
        base.avoid.hosts.insert(from);
        let zone = v.zone;
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for (hx, h) in self.inv.live_hosts() {
            if h.zone != zone || hx == from {
                continue;
            }
            out.push(MigrationCandidate {
                host: h.id,
                refusal: self.verdict_for(&base, hx, &mut scratch),
            });
        }
        Ok(out)
    }

    fn verdict_for(&self, base: &PlacementRequest, h: HostIdx, scratch: &mut Scratch) -> Option<String> {
        let mut req = base.clone();
        req.explicit_host = Some(h);
        let mut rng = self.alloc_rng.clone();
        let mut trace = TraceRecorder::default();
        let found = allocator::place(self, &req, &mut rng, &mut trace, scratch);
        if found.is_some() {
            return None;
        }
        let ex = Explanation::build(self, &req, &trace, None);
        Some(first_refusal(&ex.zone).unwrap_or_else(|| ex.headline()))
    }
}

/// The deepest refusal on the way down (host or pool before cluster, pod, zone).
fn first_refusal(line: &VerdictLine) -> Option<String> {
    for c in &line.children {
        if let Some(r) = first_refusal(c) {
            return Some(r);
        }
    }
    match (line.verdict, &line.reason) {
        (Verdict::Rejected, Some(r)) => Some(format!("{} {}: {r}", line.kind, line.name)),
        _ => None,
    }
}
