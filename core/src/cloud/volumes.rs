//! Volumes on their own: createVolume, attachVolume, detachVolume, deleteVolume
//! (the ledger side; running VMs go through the controller's sagas).

use super::Cloud;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::{DiskSize, StorageType, TagSet};
use crate::units::GIB;
use crate::vm::*;

impl Cloud {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_volume(
        &mut self,
        vm: Option<VmIdx>,
        name: &str,
        t: VolumeType,
        size: u64,
        tags: TagSet,
        st: StorageType,
        d: Option<DiskOfferingIdx>,
        account: AccountIdx,
        zone: ZoneIdx,
    ) -> VolumeIdx {
        let id = VolumeId(self.new_uuid());
        VolumeIdx(self.volumes.insert(
            id,
            Volume {
                id,
                name: name.to_string(),
                vm,
                volume_type: t,
                size_bytes: size,
                storage_tags: tags,
                storage_type: st,
                disk_offering: d,
                pool: None,
                physical_bytes: 0,
                created: false,
                state: VolumeState::Allocated,
                account,
                zone,
            },
        ))
    }

    /// A disk offering and optional custom size (GiB) → (offering, bytes, tags, storage type).
    pub(crate) fn resolve_disk(
        &self,
        d: DiskOfferingId,
        size_gib: Option<u64>,
    ) -> CoreResult<(DiskOfferingIdx, u64, TagSet, StorageType)> {
        let di = self.inv.find_disk_offering(d).ok_or_else(|| CoreError::NotFound {
            kind: "disk offering",
            id: d.to_string(),
        })?;
        let off = self.inv.disk_offering(di);
        let bytes = match (off.size, size_gib) {
            (DiskSize::Fixed(b), None) => b,
            (DiskSize::Fixed(_), Some(_)) => {
                return Err(CoreError::invalid(
                    "size",
                    format!("disk offering {} has a fixed size", off.name),
                ));
            }
            (DiskSize::Custom { .. }, None) => {
                return Err(CoreError::invalid(
                    "size",
                    format!("disk offering {} is customized; give size", off.name),
                ));
            }
            (DiskSize::Custom { min_bytes, max_bytes }, Some(g)) => {
                let b = g.saturating_mul(GIB);
                if b < min_bytes || b > max_bytes {
                    return Err(CoreError::invalid(
                        "size",
                        format!(
                            "{g} GiB is outside {}..{} GiB of disk offering {}",
                            min_bytes / GIB,
                            max_bytes / GIB,
                            off.name
                        ),
                    ));
                }
                b
            }
        };
        Ok((di, bytes, off.storage_tags.clone(), off.storage_type))
    }

    fn volume_idx(&self, id: VolumeId) -> CoreResult<VolumeIdx> {
        self.volumes.find(id).map(VolumeIdx).ok_or_else(|| CoreError::NotFound {
            kind: "volume",
            id: id.to_string(),
        })
    }

    /// createVolume: a data volume record (created on storage when first attached and used).
    pub fn create_volume(
        &mut self,
        name: &str,
        account: AccountId,
        zone: ZoneId,
        disk_offering: DiskOfferingId,
        size_gib: Option<u64>,
    ) -> CoreResult<VolumeId> {
        let account = self.account_idx(account)?;
        let zone = self.zone_idx(zone)?;
        if name.trim().is_empty() {
            return Err(CoreError::invalid("name", "must not be empty"));
        }
        let (di, bytes, tags, st) = self.resolve_disk(disk_offering, size_gib)?;
        let v = self.new_volume(
            None,
            name,
            VolumeType::DataDisk,
            bytes,
            tags,
            st,
            Some(di),
            account,
            zone,
        );
        Ok(self.volume_at(v).id)
    }

    /// Checks an attach; returns (volume, vm).
    pub fn check_attach(&self, volume: VolumeId, vm: VmId) -> CoreResult<(VolumeIdx, VmIdx)> {
        let v = self.volume_idx(volume)?;
        let i = self.vm_idx(vm)?;
        let vol = self.volume_at(v);
        let m = self.vm_at(i);
        if vol.volume_type != VolumeType::DataDisk {
            return Err(CoreError::invalid(
                "id",
                format!("volume {} is a root volume", vol.name),
            ));
        }
        if let Some(other) = vol.vm {
            return Err(CoreError::invalid(
                "id",
                format!("volume {} is attached to VM {}", vol.name, self.vm_name(other)),
            ));
        }
        if vol.state == VolumeState::Destroy {
            return Err(CoreError::invalid("id", format!("volume {} is destroyed", vol.name)));
        }
        if vol.account != m.account {
            return Err(CoreError::invalid(
                "virtualmachineid",
                "the VM belongs to another account than the volume",
            ));
        }
        if vol.zone != m.zone {
            return Err(CoreError::invalid(
                "virtualmachineid",
                "the VM is in another zone than the volume",
            ));
        }
        if !matches!(m.state, VmState::Stopped | VmState::Running) {
            return Err(self.bad_state(i, "attach a volume"));
        }
        let hv = self.inv.template(m.template).hypervisor;
        let limit = self.inv.capability(hv).max_data_volumes as usize;
        let data = m
            .volumes
            .iter()
            .filter(|x| self.volume_at(**x).volume_type == VolumeType::DataDisk)
            .count();
        if data >= limit {
            return Err(CoreError::invalid(
                "virtualmachineid",
                format!("VM {} already has {data} data volumes, the {hv} limit", m.name),
            ));
        }
        Ok((v, i))
    }

    /// Records an attach (after the driver attached it, for a running VM).
    pub fn commit_attach(&mut self, v: VolumeIdx, i: VmIdx) {
        self.volumes.get_mut(v.0).expect("live volume").vm = Some(i);
        self.vms.get_mut(i.0).expect("live vm").volumes.push(v);
    }

    /// Checks a detach; returns (volume, vm).
    pub fn check_detach(&self, volume: VolumeId) -> CoreResult<(VolumeIdx, VmIdx)> {
        let v = self.volume_idx(volume)?;
        let vol = self.volume_at(v);
        let Some(i) = vol.vm else {
            return Err(CoreError::invalid("id", format!("volume {} is not attached", vol.name)));
        };
        if vol.volume_type != VolumeType::DataDisk {
            return Err(CoreError::invalid(
                "id",
                format!("volume {} is a root volume and cannot be detached", vol.name),
            ));
        }
        if !matches!(self.vm_at(i).state, VmState::Stopped | VmState::Running) {
            return Err(self.bad_state(i, "detach a volume"));
        }
        Ok((v, i))
    }

    pub fn commit_detach(&mut self, v: VolumeIdx) {
        let vol = self.volumes.get_mut(v.0).expect("live volume");
        if let Some(i) = vol.vm.take() {
            self.vms.get_mut(i.0).expect("live vm").volumes.retain(|x| *x != v);
        }
    }

    /// Checks a delete: only detached volumes.
    pub fn check_delete_volume(&self, volume: VolumeId) -> CoreResult<VolumeIdx> {
        let v = self.volume_idx(volume)?;
        let vol = self.volume_at(v);
        if vol.vm.is_some() {
            return Err(CoreError::invalid(
                "id",
                format!("volume {} is attached; detach it first", vol.name),
            ));
        }
        Ok(v)
    }

    /// Removes a detached volume record and its pool accounting.
    pub fn remove_volume(&mut self, v: VolumeIdx) {
        let vol = self.volume_at(v);
        let (id, pool, size, physical) = (vol.id, vol.counts_on_pool(), vol.size_bytes, vol.physical_bytes);
        if let Some(p) = pool {
            self.book.pool_apply(p, size, physical, false);
        }
        self.volumes.remove(id);
    }

    /// Places a volume on `pool` in the ledger (allocated before creation).
    pub fn place_volume(&mut self, v: VolumeIdx, pool: PoolIdx) {
        let vol = self.volume_at(v);
        let physical = if self.inv.pool(pool).overprovisionable() {
            0
        } else {
            vol.size_bytes
        };
        let size = vol.size_bytes;
        self.book.pool_apply(pool, size, physical, true);
        let vol = self.volumes.get_mut(v.0).expect("live volume");
        vol.pool = Some(pool);
        vol.physical_bytes = physical;
        vol.state = VolumeState::Ready;
    }
}
