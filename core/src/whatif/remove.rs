//! `--remove-host` / `--remove-cluster`: decommissioning, not failure. Every
//! VM the ledger has on the host is live-migrated to where the allocator puts
//! it (all of them, HA or not: the host is still up while it is emptied), a
//! VM that fits nowhere is counted not placed and stopped, then the host —
//! and for a cluster, the cluster and its own pools — leaves the inventory
//! (`Fork::remove_host`), so headroom, slots, N-1 and growth no longer count it.

use super::report::{Move, Replacement};
use crate::allocator::Scratch;
use crate::cloud::Fork;
use crate::ids::*;
use crate::inventory::ResourceState;
use crate::rng::DetRng;
use crate::vm::{Charge, VmState};

pub(super) fn remove(
    f: &mut Fork,
    hosts: &[HostIdx],
    clusters: &[ClusterIdx],
    rng: &mut DetRng,
    scratch: &mut Scratch,
    plan: &mut Replacement,
) {
    // Never a destination while the others are emptied.
    for &h in hosts {
        f.set_resource_state(h, ResourceState::PrepareForMaintenance);
    }
    for &h in hosts {
        let from = f.cloud().inv.host(h).name.clone();
        let vms: Vec<VmIdx> = f.cloud().vms_on(h).to_vec();
        for i in vms {
            let vm = f.cloud().vm_at(i);
            if let Charge::Reserved { .. } = vm.charge {
                // A stopped VM's reservation simply goes with the host.
                let (state, host) = (vm.state, vm.host);
                f.set_vm(i, Charge::None, state, host);
                continue;
            }
            let mut req = f.cloud().request_for(i);
            req.own_reservation = None;
            req.preferred_host = None;
            req.avoid.hosts.extend(hosts.iter().copied());
            let (vmname, vmid) = (vm.name.clone(), vm.id.to_string());
            let (to, reason) = match f.cloud().place_shared(&req, rng, scratch) {
                Ok(p) => {
                    f.set_vm(i, Charge::Used { host: p.host }, VmState::Running, Some(p.host));
                    plan.placed += 1;
                    (Some(f.cloud().inv.host(p.host).name.clone()), None)
                }
                Err(e) => {
                    f.set_vm(i, Charge::None, VmState::Stopped, None);
                    plan.not_placed += 1;
                    (None, Some(format!("{}; it would have to be stopped", e.headline())))
                }
            };
            plan.moves.push(Move {
                vm: vmname,
                vmid,
                from: from.clone(),
                kind: "migrate".into(),
                to,
                reason,
            });
        }
    }
    for &h in hosts {
        plan.removed_hosts.push(f.cloud().inv.host(h).name.clone());
        f.remove_host(h);
    }
    for &cl in clusters {
        plan.removed_clusters.push(f.cloud().inv.cluster(cl).name.clone());
        f.remove_cluster(cl);
    }
}
