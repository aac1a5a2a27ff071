//! Volume snapshots in the ledger (createSnapshot, deleteSnapshot). Snapshots
//! live on secondary storage: they count there and survive their volume.

use super::Cloud;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::vm::{Snapshot, SnapshotState, VolumeState};

impl Cloud {
    /// Records a snapshot of a created volume (Allocated until backed up).
    pub fn allocate_snapshot(&mut self, volume: VolumeId, name: &str) -> CoreResult<(SnapshotId, VolumeIdx, PoolIdx)> {
        let v = self
            .volumes
            .find(volume)
            .map(VolumeIdx)
            .ok_or_else(|| CoreError::NotFound {
                kind: "volume",
                id: volume.to_string(),
            })?;
        let vol = self.volume_at(v).clone();
        let pool = match (vol.created, vol.pool, vol.state) {
            (true, Some(p), VolumeState::Ready) => p,
            _ => {
                return Err(CoreError::invalid(
                    "volumeid",
                    format!(
                        "volume {} is {} and not on storage yet; nothing to snapshot",
                        vol.name, vol.state
                    ),
                ));
            }
        };
        let id = SnapshotId(self.new_uuid());
        let name = if name.trim().is_empty() {
            format!("{}-snap-{}", vol.name, self.snapshots.len() + 1)
        } else {
            name.to_string()
        };
        let snap = Snapshot {
            id,
            name,
            volume,
            volume_name: vol.name.clone(),
            account: vol.account,
            zone: vol.zone,
            size_bytes: vol.size_bytes,
            state: SnapshotState::Allocated,
            created: self.now(),
        };
        self.snapshots.insert(id, snap);
        Ok((id, v, pool))
    }

    pub fn snapshot(&self, id: SnapshotId) -> Option<&Snapshot> {
        self.snapshots.get(&id)
    }

    pub fn snapshots(&self) -> impl Iterator<Item = &Snapshot> {
        self.snapshots.values()
    }

    pub fn mark_snapshot_backed_up(&mut self, id: SnapshotId) {
        if let Some(s) = self.snapshots.get_mut(&id) {
            s.state = SnapshotState::BackedUp;
        }
    }

    pub fn remove_snapshot(&mut self, id: SnapshotId) {
        self.snapshots.remove(&id);
    }

    /// Bytes of snapshots kept in a zone's secondary storage.
    pub fn snapshot_bytes(&self, zone: ZoneIdx) -> u64 {
        self.snapshots
            .values()
            .filter(|s| s.zone == zone)
            .map(|s| s.size_bytes)
            .sum()
    }
}
