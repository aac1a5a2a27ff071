//! Volumes and snapshots.

use super::prelude::*;

pub fn snapshot_view(ctl: &Controller, id: Uuid) -> Option<Obj> {
    let cloud = ctl.cloud();
    let s = cloud.snapshot(SnapshotId(id))?;
    let inv = &cloud.inv;
    let acc = inv.account(s.account);
    let d = inv.domain(acc.domain);
    let z = inv.zone(s.zone);
    let vol_type = cloud.volume(s.volume).map_or("DATADISK", |v| {
        if v.volume_type.as_str() == "Root" {
            "ROOT"
        } else {
            "DATADISK"
        }
    });
    Some(
        Obj::new()
            .s("id", s.id.0.to_string())
            .s("name", s.name.clone())
            .s("volumeid", s.volume.0.to_string())
            .s("volumename", s.volume_name.clone())
            .s("volumetype", vol_type)
            .s("snapshottype", "MANUAL")
            .s("intervaltype", "MANUAL")
            .s("state", s.state.as_str())
            .i("physicalsize", s.size_bytes as i64)
            .s("zoneid", z.id.0.to_string())
            .s("account", acc.name.clone())
            .s("domainid", d.id.0.to_string())
            .s("domain", d.name.clone())
            .b("revertable", false)
            .date("created", s.created.0),
    )
}

pub static COMMANDS: &[Command] = &[];
