//! A saga step's undo: what it gives back in the ledger and the driver call
//! that removes what it made.

use super::Controller;
use super::effects::{DriverCall, Mac};
use super::saga::Undo;
use crate::controller::{EventKind, SagaId};
use crate::ids::*;

impl Controller {
    pub(super) fn undo(&mut self, sid: SagaId, undo: Undo) -> Option<DriverCall> {
        if let Undo::DropSnapshot { snapshot } = undo {
            self.cloud.remove_snapshot(snapshot);
            return Some(DriverCall::DeleteSnapshot { snapshot });
        }
        let vm = self.saga_mut(sid).expect("live saga").vm?;
        let i = self.cloud.vm_index(vm)?;
        let name = self.vm_label(vm);
        self.event(EventKind::Undo, name, undo.name());
        let c = &self.cloud;
        match undo {
            Undo::ReleaseStart => {
                self.cloud.finish_start(i, false);
                let placed: Vec<VolumeIdx> = self
                    .cloud
                    .vm_at(i)
                    .volumes
                    .iter()
                    .copied()
                    .filter(|v| !self.cloud.volume_at(*v).created)
                    .collect();
                for v in placed {
                    self.cloud.unplace_volume(v);
                }
                None
            }
            Undo::DeleteVolume { volume, pool } => {
                let id = c.volume_at(volume).id;
                let pool = c.pool_id(pool);
                self.cloud.set_volume_created(volume, false);
                Some(DriverCall::DeleteVolume { volume: id, pool })
            }
            Undo::ReleaseNic => {
                if let Some(nic) = c.vm_at(i).nic {
                    self.ipam.release(nic.network, nic.ip);
                    self.cloud.set_nic(i, None);
                }
                None
            }
            Undo::UnplugNic { host } => {
                let nic = c.vm_at(i).nic?;
                Some(DriverCall::UnplugNic {
                    vm,
                    host: c.host_id(host),
                    network: c.inv.network(nic.network).id,
                    mac: Mac(nic.mac),
                })
            }
            Undo::Undefine { host } => Some(DriverCall::UndefineDomain {
                vm,
                host: c.host_id(host),
            }),
            Undo::StopDomain { host } => Some(DriverCall::StopDomain {
                vm,
                host: c.host_id(host),
                forced: true,
            }),
            Undo::UnplaceVolume { volume } => {
                if !c.volume_at(volume).created {
                    self.cloud.unplace_volume(volume);
                }
                None
            }
            Undo::DetachDisk { volume, host } => Some(DriverCall::DetachDisk {
                vm,
                host: c.host_id(host),
                volume: c.volume_at(volume).id,
            }),
            Undo::DropSnapshot { .. } => unreachable!("handled above"),
            Undo::AbortMigration => {
                let _ = self.cloud.finish_migration(vm, false);
                None
            }
        }
    }
}
