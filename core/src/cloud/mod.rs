//! `Cloud`: the whole deterministic state (inventory, settings, VMs, volumes,
//! capacity) and the operations on it. Every mutation of compute capacity goes
//! through `set_charge`, so the book always equals the sum over VMs.

mod audit;
mod build;
mod fork;
mod lifecycle;
mod migration;
mod policy;
mod remove;
pub mod safety;
mod saga_support;
mod snapshots;
mod specs;
mod templates;
mod views;
mod volumes;

pub use audit::AuditReport;
pub use fork::Fork;
pub use migration::MigrationCandidate;
pub use policy::{ClusterPolicy, GlobalPolicy, Policy, PoolPolicy};
pub use specs::*;
pub use templates::{DownloadOutcome, TemplateSource};
pub use views::{AlertEvent, CapacityScope, HostView};

use crate::allocator::{self, Explanation, NoRecord, Placement, PlacementRequest, Scratch, TraceRecorder};
use crate::arena::Arena;
use crate::capacity::{CapacityBook, Footprint, Slot};
use crate::ids::*;
use crate::inventory::Inventory;
use crate::rng::DetRng;
use crate::settings::Settings;
use crate::units::Millis;
use crate::vm::{Charge, Vm, Volume};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// How many of an account's active VMs sit on each host, cluster and pod
/// (for the user-dispersing and user-concentrated planners).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Occupancy {
    #[serde(with = "crate::serde_util::sorted_map")]
    host: FxHashMap<(u32, u32), u32>,
    #[serde(with = "crate::serde_util::sorted_map")]
    cluster: FxHashMap<(u32, u32), u32>,
    #[serde(with = "crate::serde_util::sorted_map")]
    pod: FxHashMap<(u32, u32), u32>,
}

fn bump(m: &mut FxHashMap<(u32, u32), u32>, k: (u32, u32), add: bool) {
    if add {
        *m.entry(k).or_insert(0) += 1;
    } else if let Some(v) = m.get_mut(&k) {
        *v -= 1;
        if *v == 0 {
            m.remove(&k);
        }
    }
}

impl Occupancy {
    pub fn host(&self, a: AccountIdx, h: HostIdx) -> u32 {
        self.host.get(&(a.0, h.0)).copied().unwrap_or(0)
    }
    pub fn cluster(&self, a: AccountIdx, c: ClusterIdx) -> u32 {
        self.cluster.get(&(a.0, c.0)).copied().unwrap_or(0)
    }
    pub fn pod(&self, a: AccountIdx, p: PodIdx) -> u32 {
        self.pod.get(&(a.0, p.0)).copied().unwrap_or(0)
    }
    pub(crate) fn host_total(&self) -> u32 {
        self.host.values().sum()
    }
    fn change(&mut self, a: AccountIdx, h: HostIdx, parents: (ClusterIdx, PodIdx, ZoneIdx), add: bool) {
        bump(&mut self.host, (a.0, h.0), add);
        bump(&mut self.cluster, (a.0, parents.0.0), add);
        bump(&mut self.pod, (a.0, parents.1.0), add);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cloud {
    pub inv: Inventory,
    pub settings: Settings,
    pub book: CapacityBook,
    pub policy: Policy,
    pub(crate) vms: Arena<VmId, Vm>,
    pub(crate) volumes: Arena<VolumeId, Volume>,
    pub(crate) occupancy: Occupancy,
    pub(crate) group_members: Vec<Vec<VmIdx>>,
    /// (account, VM name) → VM, for the per-account name uniqueness check.
    #[serde(with = "crate::serde_util::sorted_map")]
    pub(crate) vm_names: FxHashMap<(AccountIdx, String), VmIdx>,
    /// VMs whose charge touches each host (running, reserved, migrating).
    host_vms: Vec<Vec<VmIdx>>,
    pub(crate) snapshots: std::collections::BTreeMap<SnapshotId, crate::vm::Snapshot>,
    ids: DetRng,
    alloc_rng: DetRng,
    now: Millis,
    #[serde(with = "crate::serde_util::sorted_heap")]
    reservations: BinaryHeap<Reverse<(Millis, u32)>>,
    #[serde(with = "crate::serde_util::pairs")]
    active_alerts: BTreeMap<(u32, String), ()>,
    #[serde(skip)]
    scratch: Scratch,
    root_domain: DomainIdx,
    admin_account: AccountIdx,
    expunged: u64,
}

impl Cloud {
    /// An empty cloud with the ROOT domain and the `admin` account.
    pub fn new(seed: u64) -> Cloud {
        let mut inv = Inventory::default();
        let mut ids = DetRng::child(seed, "ids");
        let settings = Settings::new();
        let root_domain = inv
            .add_domain(crate::inventory::Domain {
                id: DomainId(ids.uuid()),
                name: "ROOT".into(),
                parent: None,
                path: "ROOT".into(),
            })
            .expect("fresh inventory");
        let admin_account = inv
            .add_account(crate::inventory::Account {
                id: AccountId(ids.uuid()),
                name: "admin".into(),
                domain: root_domain,
                account_type: crate::inventory::AccountType::Admin,
            })
            .expect("fresh inventory");
        let policy = Policy::resolve(&settings, &mut inv);
        Cloud {
            inv,
            settings,
            book: CapacityBook::default(),
            policy,
            vms: Arena::default(),
            volumes: Arena::default(),
            occupancy: Occupancy::default(),
            group_members: Vec::new(),
            vm_names: FxHashMap::default(),
            host_vms: Vec::new(),
            snapshots: Default::default(),
            ids,
            alloc_rng: DetRng::child(seed, "allocator"),
            now: Millis(0),
            reservations: BinaryHeap::new(),
            active_alerts: BTreeMap::new(),
            scratch: Scratch::default(),
            root_domain,
            admin_account,
            expunged: 0,
        }
    }

    /// Pre-sizes the VM and volume tables (avoids rehash stalls when loading many VMs).
    pub fn reserve_vms(&mut self, n: usize) {
        self.vms.reserve(n);
        self.volumes.reserve(n);
        self.vm_names.reserve(n);
    }

    /// VMs whose charge touches host `h` (running, reserved or migrating there).
    pub fn vms_on(&self, h: HostIdx) -> &[VmIdx] {
        self.host_vms.get(h.ix()).map_or(&[], |v| v.as_slice())
    }

    pub fn now(&self) -> Millis {
        self.now
    }
    pub fn root_domain(&self) -> DomainId {
        self.inv.domain(self.root_domain).id
    }
    pub fn admin_account(&self) -> AccountId {
        self.inv.account(self.admin_account).id
    }
    pub(crate) fn new_uuid(&mut self) -> uuid::Uuid {
        self.ids.uuid()
    }

    pub fn vm(&self, id: VmId) -> Option<&Vm> {
        self.vms.find(id).and_then(|i| self.vms.get(i))
    }
    pub fn vm_at(&self, i: VmIdx) -> &Vm {
        self.vms.get(i.0).expect("live vm index")
    }
    pub fn vm_index(&self, id: VmId) -> Option<VmIdx> {
        self.vms.find(id).map(VmIdx)
    }
    pub fn vms(&self) -> impl Iterator<Item = (VmIdx, &Vm)> {
        self.vms.iter().map(|(i, v)| (VmIdx(i), v))
    }
    pub fn vm_count(&self) -> usize {
        self.vms.len()
    }
    pub fn expunged_count(&self) -> u64 {
        self.expunged
    }
    pub fn volume(&self, id: VolumeId) -> Option<&Volume> {
        self.volumes.find(id).and_then(|i| self.volumes.get(i))
    }
    pub fn volume_at(&self, i: VolumeIdx) -> &Volume {
        self.volumes.get(i.0).expect("live volume index")
    }
    pub fn volumes(&self) -> impl Iterator<Item = (VolumeIdx, &Volume)> {
        self.volumes.iter().map(|(i, v)| (VolumeIdx(i), v))
    }
    pub(crate) fn vm_charge(&self, i: VmIdx) -> Charge {
        self.vms.get(i.0).map(|v| v.charge).unwrap_or(Charge::None)
    }
    pub(crate) fn vm_name(&self, i: VmIdx) -> String {
        self.vms
            .get(i.0)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| format!("#{}", i.0))
    }

    /// Moves a VM's compute charge, updating the book, guest counts and occupancy.
    pub(crate) fn set_charge(&mut self, i: VmIdx, new: Charge) {
        let vm = self.vms.get(i.0).expect("live vm");
        let (old, fp, account) = (vm.charge, vm.size.footprint(), vm.account);
        self.apply_charge(old, fp, account, false);
        self.apply_charge(new, fp, account, true);
        for h in old.hosts() {
            self.host_vms[h.ix()].retain(|x| *x != i);
        }
        for h in new.hosts() {
            if self.host_vms.len() <= h.ix() {
                self.host_vms
                    .resize_with(self.inv.hosts.len().max(h.ix() + 1), Vec::new);
            }
            if !self.host_vms[h.ix()].contains(&i) {
                self.host_vms[h.ix()].push(i);
            }
        }
        self.vms.get_mut(i.0).expect("live vm").charge = new;
        if let Charge::Reserved { until, .. } = new {
            self.reservations.push(Reverse((until, i.0)));
        }
    }

    fn apply_charge(&mut self, ch: Charge, fp: Footprint, account: AccountIdx, add: bool) {
        match ch {
            Charge::None => {}
            Charge::Used { host } => {
                self.book.apply(host, fp, Slot::Used, add);
                self.book.guests(host, add);
                self.occupancy.change(account, host, self.book.parents[host.ix()], add);
            }
            Charge::Reserved { host, .. } => self.book.apply(host, fp, Slot::Reserved, add),
            Charge::Migrating { from, to } => {
                self.book.apply(from, fp, Slot::Used, add);
                self.book.apply(to, fp, Slot::Reserved, add);
                self.book.guests(from, add);
                self.book.guests(to, add);
                self.occupancy.change(account, from, self.book.parents[from.ix()], add);
            }
        }
    }

    /// Runs the allocator. On failure the error carries the full explanation.
    pub fn place(&mut self, req: &PlacementRequest) -> Result<Placement, Box<Explanation>> {
        let start = self.alloc_rng.clone();
        let mut rng = start.clone();
        let mut scratch = std::mem::take(&mut self.scratch);
        let found = allocator::place(self, req, &mut rng, &mut NoRecord, &mut scratch);
        let result = match found {
            Some(p) => Ok(p),
            None => {
                let mut trace = TraceRecorder::default();
                let mut replay = start;
                allocator::place(self, req, &mut replay, &mut trace, &mut scratch);
                Err(Box::new(Explanation::build(self, req, &trace, None)))
            }
        };
        self.scratch = scratch;
        self.alloc_rng = rng;
        result
    }

    /// What the allocator would decide now, with every verdict; changes nothing.
    pub fn explain(&mut self, req: &PlacementRequest) -> Explanation {
        let mut rng = self.alloc_rng.clone();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut trace = TraceRecorder::default();
        let found = allocator::place(self, req, &mut rng, &mut trace, &mut scratch);
        self.scratch = scratch;
        Explanation::build(self, req, &trace, found.map(|p| p.host))
    }

    /// Advances the logical clock, releasing reservations that expired.
    pub fn advance_to(&mut self, now: Millis) {
        if now > self.now {
            self.now = now;
        }
        while let Some(Reverse((until, ix))) = self.reservations.peek().copied() {
            if until > self.now {
                break;
            }
            self.reservations.pop();
            let vi = VmIdx(ix);
            if let Some(vm) = self.vms.get(ix)
                && matches!(vm.charge, Charge::Reserved { until: u, .. } if u == until)
            {
                self.set_charge(vi, Charge::None);
            }
        }
    }
}
