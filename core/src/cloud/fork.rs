//! `Fork`: a hypothetical change to a `Cloud` that costs what it changes.
//!
//! A what-if fails hosts, moves VMs and adds load on the one `Cloud` it was
//! given, recording an undo entry per change; dropping the fork (or `rollback`)
//! puts back exactly what was there, including the order of each host's VM list
//! (the HA order), so the next hypothetical starts from the same state. No
//! whole-state clone: memory and time are proportional to what the
//! hypothetical touches. Placement runs the production allocator on
//! `&Cloud` (`Cloud::place_shared`).

use super::Cloud;
use crate::allocator::{self, Explanation, NoRecord, Placement, PlacementRequest, Scratch, TraceRecorder};
use crate::capacity::{Footprint, Slot};
use crate::ids::*;
use crate::inventory::{ClusterTombstone, HostStatus, HostTombstone, ResourceState};
use crate::rng::DetRng;
use crate::vm::{Charge, VmState};

#[derive(Debug)]
enum Undo {
    Status(HostIdx, HostStatus),
    Resource(HostIdx, ResourceState),
    Vm {
        vm: VmIdx,
        charge: Charge,
        state: VmState,
        host: Option<HostIdx>,
        last_host: Option<HostIdx>,
    },
    Load {
        host: HostIdx,
        fp: Footprint,
        account: AccountIdx,
    },
    Pool {
        pool: PoolIdx,
        bytes: u64,
        physical: u64,
    },
    RemovedHost(HostTombstone),
    RemovedCluster(ClusterTombstone),
}

/// A reversible set of changes on a borrowed `Cloud`.
#[derive(Debug)]
pub struct Fork<'a> {
    c: &'a mut Cloud,
    undo: Vec<Undo>,
    /// Host VM lists as they were before the fork first touched them.
    saved_lists: Vec<(HostIdx, Vec<VmIdx>)>,
}

impl Cloud {
    /// Runs the production allocator on a shared view with the caller's RNG and
    /// buffers; on refusal returns the explanation (same RNG replayed).
    pub fn place_shared(
        &self,
        req: &PlacementRequest,
        rng: &mut DetRng,
        scratch: &mut Scratch,
    ) -> Result<Placement, Box<Explanation>> {
        let start = rng.clone();
        match allocator::place(self, req, rng, &mut NoRecord, scratch) {
            Some(p) => Ok(p),
            None => {
                let mut trace = TraceRecorder::default();
                let mut replay = start;
                allocator::place(self, req, &mut replay, &mut trace, scratch);
                Err(Box::new(Explanation::build(self, req, &trace, None)))
            }
        }
    }

    /// Like `place_shared` but only says whether it fits (no explanation).
    pub fn place_quiet(&self, req: &PlacementRequest, rng: &mut DetRng, scratch: &mut Scratch) -> Option<Placement> {
        allocator::place(self, req, rng, &mut NoRecord, scratch)
    }

    /// The allocator's RNG as it stands (a what-if draws from a copy).
    pub fn allocator_rng(&self) -> DetRng {
        self.alloc_rng.clone()
    }

    /// Starts a hypothetical on this cloud.
    pub fn fork(&mut self) -> Fork<'_> {
        Fork {
            c: self,
            undo: Vec::new(),
            saved_lists: Vec::new(),
        }
    }
}

impl<'a> Fork<'a> {
    pub fn cloud(&self) -> &Cloud {
        self.c
    }

    /// How many changes it holds (what it costs).
    pub fn changes(&self) -> usize {
        self.undo.len()
    }

    pub fn set_host_status(&mut self, h: HostIdx, s: HostStatus) {
        let old = self.c.inv.host(h).status;
        self.undo.push(Undo::Status(h, old));
        self.c.inv.host_mut(h).status = s;
    }

    pub fn set_resource_state(&mut self, h: HostIdx, s: ResourceState) {
        let old = self.c.inv.host(h).resource_state;
        self.undo.push(Undo::Resource(h, old));
        self.c.inv.host_mut(h).resource_state = s;
    }

    fn save_list(&mut self, h: HostIdx) {
        if self.saved_lists.iter().any(|(x, _)| *x == h) {
            return;
        }
        let list = self.c.vms_on(h).to_vec();
        self.saved_lists.push((h, list));
    }

    /// Moves a VM's charge (the ledger's `set_charge`), recording how it was.
    pub fn set_vm(&mut self, i: VmIdx, charge: Charge, state: VmState, host: Option<HostIdx>) {
        let old = self.c.vm_at(i).charge;
        for h in old.hosts().chain(charge.hosts()) {
            self.save_list(h);
        }
        let vm = self.c.vm_at(i);
        self.undo.push(Undo::Vm {
            vm: i,
            charge: vm.charge,
            state: vm.state,
            host: vm.host,
            last_host: vm.last_host,
        });
        self.c.set_charge(i, charge);
        let vm = self.c.vms.get_mut(i.0).expect("live vm");
        if vm.host.is_some() && host.is_none() {
            vm.last_host = vm.host;
        }
        vm.host = host;
        vm.state = state;
    }

    /// Charges a VM that does not exist (growth): book, guests and occupancy.
    pub fn add_load(&mut self, host: HostIdx, fp: Footprint, account: AccountIdx) {
        self.load(host, fp, account, true);
        self.undo.push(Undo::Load { host, fp, account });
    }

    fn load(&mut self, host: HostIdx, fp: Footprint, account: AccountIdx, add: bool) {
        self.c.book.apply(host, fp, Slot::Used, add);
        self.c.book.guests(host, add);
        let parents = self.c.book.parents[host.ix()];
        self.c.occupancy.change(account, host, parents, add);
    }

    /// Allocates storage for a volume that does not exist (growth).
    pub fn add_pool_use(&mut self, pool: PoolIdx, bytes: u64, physical: u64) {
        self.c.book.pool_apply(pool, bytes, physical, true);
        self.undo.push(Undo::Pool { pool, bytes, physical });
    }

    /// Takes a host out of the inventory and every capacity total (its VMs
    /// must have been moved or stopped first: `set_vm`).
    pub fn remove_host(&mut self, h: HostIdx) {
        debug_assert!(
            self.c.vms_on(h).is_empty(),
            "remove_host on a host that VMs still charge"
        );
        let t = self.c.tombstone_host(h);
        self.undo.push(Undo::RemovedHost(t));
    }

    /// Takes an empty cluster (and its own pools) out of the inventory.
    pub fn remove_cluster(&mut self, cl: ClusterIdx) {
        let t = self.c.tombstone_cluster(cl);
        self.undo.push(Undo::RemovedCluster(t));
    }

    /// Keeps every change (the fork becomes the new state).
    pub fn commit(mut self) {
        self.undo.clear();
        self.saved_lists.clear();
    }

    /// Puts everything back as it was.
    pub fn rollback(mut self) {
        self.undo_all();
    }

    fn undo_all(&mut self) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Status(h, s) => self.c.inv.host_mut(h).status = s,
                Undo::Resource(h, s) => self.c.inv.host_mut(h).resource_state = s,
                Undo::Vm {
                    vm,
                    charge,
                    state,
                    host,
                    last_host,
                } => {
                    self.c.set_charge(vm, charge);
                    let v = self.c.vms.get_mut(vm.0).expect("live vm");
                    v.state = state;
                    v.host = host;
                    v.last_host = last_host;
                }
                Undo::Load { host, fp, account } => self.load(host, fp, account, false),
                Undo::Pool { pool, bytes, physical } => self.c.book.pool_apply(pool, bytes, physical, false),
                Undo::RemovedHost(t) => self.c.untombstone_host(t),
                Undo::RemovedCluster(t) => self.c.untombstone_cluster(t),
            }
        }
        for (h, list) in self.saved_lists.drain(..) {
            if let Some(slot) = self.c.host_vms.get_mut(h.ix()) {
                *slot = list;
            }
        }
    }
}

impl Drop for Fork<'_> {
    fn drop(&mut self) {
        self.undo_all();
    }
}
