//! Ledger steps the controller's sagas use beyond the plain lifecycle calls.

use super::Cloud;
use crate::ids::*;
use crate::vm::{Charge, Nic, VmState, VolumeState};

impl Cloud {
    /// Reverses the pool placement of a volume that was never created.
    pub fn unplace_volume(&mut self, v: VolumeIdx) {
        let vol = self.volume_at(v);
        if let Some(p) = vol.pool {
            let (size, physical) = (vol.size_bytes, vol.physical_bytes);
            self.book.pool_apply(p, size, physical, false);
            let vol = self.volumes.get_mut(v.0).expect("live volume");
            vol.pool = None;
            vol.physical_bytes = 0;
            vol.created = false;
            vol.state = VolumeState::Allocated;
        }
    }

    pub fn set_volume_created(&mut self, v: VolumeIdx, created: bool) {
        if let Some(vol) = self.volumes.get_mut(v.0) {
            vol.created = created;
        }
    }

    /// A failed operation leaves the VM in Error, holding no compute.
    pub fn mark_error(&mut self, i: VmIdx) {
        self.set_charge(i, Charge::None);
        let vm = self.vms.get_mut(i.0).expect("live vm");
        if vm.host.is_some() {
            vm.last_host = vm.host.take();
        }
        self.set_state(i, VmState::Error);
    }

    pub fn set_nic(&mut self, i: VmIdx, nic: Option<Nic>) {
        self.vms.get_mut(i.0).expect("live vm").nic = nic;
    }

    /// Marks a running VM as being stopped (Stopping) before driver calls go out.
    pub fn mark_stopping(&mut self, i: VmIdx) {
        self.set_state(i, VmState::Stopping);
    }

    /// The VM runs nowhere any more (its host was fenced, or its domain vanished):
    /// Stopped, holding nothing.
    pub fn vm_lost(&mut self, i: VmIdx) {
        self.set_charge(i, Charge::None);
        let vm = self.vms.get_mut(i.0).expect("live vm");
        if vm.host.is_some() {
            vm.last_host = vm.host.take();
        }
        self.set_state(i, VmState::Stopped);
    }

    /// The VM was found running on `h`: the ledger follows (VM sync).
    pub fn adopt_on(&mut self, i: VmIdx, h: HostIdx) {
        self.set_charge(i, Charge::Used { host: h });
        let vm = self.vms.get_mut(i.0).expect("live vm");
        vm.host = Some(h);
        self.set_state(i, VmState::Running);
    }

    /// Whereabouts unknown (a start or migration got no answer): the VM keeps
    /// its charge, volumes and address until a host report settles it.
    pub fn mark_unknown(&mut self, i: VmIdx) {
        self.set_state(i, VmState::Unknown);
    }

    /// Error without touching the VM's charge: it may still run where it was.
    pub fn mark_error_in_place(&mut self, i: VmIdx) {
        self.set_state(i, VmState::Error);
    }

    /// Drops a stopped VM's reservation (its host is gone).
    pub fn release_reservation(&mut self, i: VmIdx) {
        if let Charge::Reserved { .. } = self.vm_at(i).charge {
            self.set_charge(i, Charge::None);
        }
    }

    /// A stop that failed before the domain stopped: the VM is Running again.
    pub fn revert_to_running(&mut self, i: VmIdx) {
        if matches!(self.vm_at(i).charge, Charge::Used { .. }) {
            self.set_state(i, VmState::Running);
        }
    }

    pub fn host_id(&self, h: HostIdx) -> HostId {
        self.inv.host(h).id
    }
    pub fn pool_id(&self, p: PoolIdx) -> PoolId {
        self.inv.pool(p).id
    }
}
