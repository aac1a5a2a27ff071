//! The workload of a cloud mirrored into a simulated world (`World::from_cloud`):
//! what a live inventory's ledger says runs where, as domains, ports,
//! volumes and template copies.

use crate::world::{SimDomain, World};
use stratus_core::Cloud;
use stratus_core::controller::effects::Mac;

impl World {
    /// Each VM that runs (Running or Stopping; a migrating one on its source)
    /// gets its domain running on its host with its disks and NIC port, each
    /// created volume is put on its pool, and each pool holds the template
    /// copies its root volumes came from. An empty cloud changes nothing.
    pub(crate) fn mirror_workload(&mut self, cloud: &Cloud) {
        use stratus_core::vm::{Charge, VmState, VolumeType};
        for (_, vol) in cloud.volumes() {
            let (Some(p), true) = (vol.pool, vol.created) else {
                continue;
            };
            let Some(pool) = self.pools.get_mut(&cloud.inv.pool(p).id) else {
                continue;
            };
            pool.volumes.insert(vol.id);
            if let (VolumeType::Root, Some(vm)) = (vol.volume_type, vol.vm) {
                pool.templates.insert(cloud.inv.template(cloud.vm_at(vm).template).id);
            }
        }
        for (_, vm) in cloud.vms() {
            let host = match (vm.state, vm.charge) {
                (VmState::Running | VmState::Stopping, Charge::Used { host }) => host,
                (_, Charge::Migrating { from, .. }) => from,
                _ => continue,
            };
            let id = cloud.inv.host(host).id;
            let Some(h) = self.hosts.get_mut(&id) else { continue };
            h.domains.insert(
                vm.id,
                SimDomain {
                    running: false,
                    disks: vm.volumes.iter().map(|v| cloud.volume_at(*v).id).collect(),
                    nic_vlans: vm
                        .nic
                        .iter()
                        .filter_map(|n| Some((Mac(n.mac), cloud.inv.network(n.network).vlan?)))
                        .collect(),
                },
            );
            if let Some(nic) = &vm.nic {
                h.ports.insert((vm.id, Mac(nic.mac)));
            }
            self.set_running(vm.id, id, true);
        }
        self.generation += 1;
    }
}
