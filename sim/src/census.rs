//! What a simulated world holds — domains, NIC ports, volumes, snapshots —
//! in a form that crosses processes (`stratus agent --sim-world` writes it as
//! JSON), and its comparison with a ledger in both directions:
//! [`leaks`] (the world holds what the ledger does not know) and [`missing`]
//! (the ledger counts on what the world does not hold, checked at rest).

use crate::world::World;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stratus_core::Cloud;
use stratus_core::controller::effects::Mac;
use stratus_core::ids::{HostId, PoolId, SnapshotId, VmId, VolumeId};
use stratus_core::vm::{Charge, SnapshotState, VmState};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCensus {
    pub name: String,
    /// Defined domains: whether each runs.
    pub domains: BTreeMap<VmId, bool>,
    pub ports: BTreeSet<(VmId, Mac)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolCensus {
    pub name: String,
    pub volumes: BTreeSet<VolumeId>,
}

/// Everything a world holds that a ledger accounts for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldCensus {
    pub hosts: BTreeMap<HostId, HostCensus>,
    pub pools: BTreeMap<PoolId, PoolCensus>,
    pub snapshots: BTreeSet<SnapshotId>,
    /// Driver calls executed so far (a quiet world stops counting).
    pub calls: u64,
    /// Of those, read-only investigations (lease reads, neighbour pings): a
    /// late heartbeat on a loaded machine starts one in a quiet cloud.
    #[serde(default)]
    pub probes: u64,
    /// VMs seen running on two hosts at once, ever.
    pub duplicates: u64,
}

impl World {
    /// What this world holds now.
    pub fn census(&self) -> WorldCensus {
        WorldCensus {
            hosts: self
                .hosts
                .iter()
                .map(|(id, h)| {
                    let c = HostCensus {
                        name: h.name.clone(),
                        domains: h.domains.iter().map(|(vm, d)| (*vm, d.running)).collect(),
                        ports: h.ports.clone(),
                    };
                    (*id, c)
                })
                .collect(),
            pools: self
                .pools
                .iter()
                .map(|(id, p)| {
                    let c = PoolCensus {
                        name: p.name.clone(),
                        volumes: p.volumes.clone(),
                    };
                    (*id, c)
                })
                .collect(),
            snapshots: self.snapshots.clone(),
            calls: self.calls_by_kind.values().sum(),
            probes: ["CheckLease", "PingNeighbour"]
                .iter()
                .filter_map(|k| self.calls_by_kind.get(*k))
                .sum(),
            duplicates: self.duplicates.len() as u64,
        }
    }
}

/// Domains, ports, snapshots and volumes the world holds that the ledger does
/// not know about.
/// Something the world holds that the ledger does not account for, with the
/// VM or volume it belongs to (to tell a leak from work still in flight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftBehind {
    pub what: String,
    pub vm: Option<VmId>,
    pub volume: Option<VolumeId>,
}

pub fn leaks(w: &WorldCensus, c: &Cloud) -> Vec<String> {
    left_behind(w, c).into_iter().map(|l| l.what).collect()
}

/// Everything [`leaks`] lists, each with its owner.
pub fn left_behind(w: &WorldCensus, c: &Cloud) -> Vec<LeftBehind> {
    let mut out = Vec::new();
    let on = |vm: &VmId, hid: &HostId| {
        c.vm(*vm)
            .is_some_and(|v| v.host.map(|x| c.host_id(x)) == Some(*hid) || matches!(v.charge, Charge::Migrating { .. }))
    };
    for (hid, h) in &w.hosts {
        for vm in h.domains.keys() {
            if !on(vm, hid) {
                out.push(LeftBehind {
                    what: format!("domain {vm} on host {} is unknown to the ledger", h.name),
                    vm: Some(*vm),
                    volume: None,
                });
            }
        }
    }
    for (hid, h) in &w.hosts {
        for (vm, mac) in &h.ports {
            let known = c.vm(*vm).is_some_and(|v| v.nic.is_some_and(|n| n.mac == mac.0)) && on(vm, hid);
            if !known {
                out.push(LeftBehind {
                    what: format!("port {mac} of VM {vm} on host {} is unknown to the ledger", h.name),
                    vm: Some(*vm),
                    volume: None,
                });
            }
        }
    }
    for s in &w.snapshots {
        if c.snapshot(*s).is_none() {
            out.push(LeftBehind {
                what: format!("snapshot {s} on secondary storage is unknown to the ledger"),
                vm: None,
                volume: None,
            });
        }
    }
    for (pid, p) in &w.pools {
        for v in &p.volumes {
            let known = c
                .volume(*v)
                .is_some_and(|vol| vol.created && vol.pool.map(|x| c.pool_id(x)) == Some(*pid));
            if !known {
                out.push(LeftBehind {
                    what: format!("volume {v} on pool {} is unknown to the ledger", p.name),
                    vm: c.volume(*v).and_then(|vol| vol.vm).map(|i| c.vm_at(i).id),
                    volume: Some(*v),
                });
            }
        }
    }
    out
}

/// At rest (no operation in flight): what the ledger counts on that the world
/// does not hold, or holds otherwise. A Running VM runs exactly once, on its
/// host, with its NIC port there; nothing else runs; a Stopped VM has no port
/// left; every created volume is on its pool; every backed-up snapshot exists.
pub fn missing(w: &WorldCensus, c: &Cloud) -> Vec<String> {
    let mut out = Vec::new();
    let mut running: BTreeMap<VmId, Vec<HostId>> = BTreeMap::new();
    for (hid, h) in &w.hosts {
        for (vm, up) in &h.domains {
            if *up {
                running.entry(*vm).or_default().push(*hid);
            }
        }
    }
    for (_, v) in c.vms() {
        let runs = running.remove(&v.id).unwrap_or_default();
        let name = &v.name;
        match (v.state, v.charge) {
            (VmState::Running, Charge::Used { host }) => {
                let hid = c.host_id(host);
                if runs != vec![hid] {
                    out.push(format!(
                        "VM {name} is Running on {hid} in the ledger but runs on {runs:?}"
                    ));
                }
                if let Some(n) = v.nic
                    && !w.hosts.get(&hid).is_some_and(|h| h.ports.contains(&(v.id, Mac(n.mac))))
                {
                    out.push(format!("VM {name} is Running without its NIC port on {hid}"));
                }
            }
            (VmState::Running, other) => out.push(format!("VM {name} is Running with charge {other:?}")),
            (state, _) if !runs.is_empty() => {
                out.push(format!("VM {name} is {state} in the ledger but runs on {runs:?}"));
            }
            (VmState::Stopped, _) => {
                for (hid, h) in &w.hosts {
                    if h.ports.iter().any(|(vm, _)| *vm == v.id) {
                        out.push(format!("VM {name} is Stopped but keeps a NIC port on {hid}"));
                    }
                }
            }
            _ => {}
        }
    }
    for (vm, hosts) in running {
        out.push(format!("VM {vm} runs on {hosts:?} but the ledger has no such VM"));
    }
    for (_, vol) in c.volumes() {
        if !vol.created {
            continue;
        }
        let Some(p) = vol.pool.map(|p| c.pool_id(p)) else {
            out.push(format!("volume {} is created but on no pool", vol.name));
            continue;
        };
        if !w.pools.get(&p).is_some_and(|x| x.volumes.contains(&vol.id)) {
            out.push(format!("volume {} ({}) is not on its pool {p}", vol.name, vol.id));
        }
    }
    for s in c.snapshots() {
        if s.state == SnapshotState::BackedUp && !w.snapshots.contains(&s.id) {
            out.push(format!(
                "snapshot {} is backed up in the ledger but not on secondary storage",
                s.name
            ));
        }
    }
    out
}
