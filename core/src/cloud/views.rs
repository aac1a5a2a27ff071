//! Read-only views: listCapacity rows, per-host capacity, capacity alerts.

use super::Cloud;
use crate::capacity::{CapacityRow, CapacityType, Compute, percent};
use crate::ids::*;
use crate::inventory::{HostStatus, PoolScope, ResourceState, TemplateZoneState};
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// Which level listCapacity aggregates at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityScope {
    Zone(ZoneIdx),
    Pod(PodIdx),
    Cluster(ClusterIdx),
}

/// A host with its capacity, as listHosts reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostView {
    pub id: HostId,
    pub name: String,
    pub state: HostStatus,
    pub resourcestate: ResourceState,
    pub cpunumber: u32,
    pub cpuspeed: u32,
    pub cpuwithoverprovisioning: u64,
    pub cpuallocated: String,
    pub memorytotal: u64,
    pub memoryallocated: u64,
    pub guests: u32,
    pub hosttags: Vec<String>,
}

/// A capacity notification raised or cleared (listAlerts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub raised: bool,
    /// CloudStack alert type = capacity type code.
    #[serde(rename = "type")]
    pub alert_type: u32,
    pub subject: String,
    pub subjectid: String,
    pub fraction: f64,
    pub threshold: f64,
    pub description: String,
    pub at: Millis,
}

impl Cloud {
    pub fn host_view(&self, h: HostIdx) -> HostView {
        let host = self.inv.host(h);
        let c = &self.book.host[h.ix()];
        HostView {
            id: host.id,
            name: host.name.clone(),
            state: host.status,
            resourcestate: host.resource_state,
            cpunumber: host.cpu_cores,
            cpuspeed: host.cpu_mhz_per_core,
            cpuwithoverprovisioning: c.cpu.total,
            cpuallocated: format!("{}%", percent(c.cpu.allocated(), c.cpu.total)),
            memorytotal: c.mem.total,
            memoryallocated: c.mem.allocated(),
            guests: self.book.host_guests[h.ix()],
            hosttags: self.inv.tags.names_of(&host.tags),
        }
    }

    fn compute_rows(
        &self,
        at: &Compute,
        zone: ZoneIdx,
        pod: Option<PodIdx>,
        cluster: Option<ClusterIdx>,
        out: &mut Vec<CapacityRow>,
    ) {
        for (t, c) in [
            (CapacityType::Memory, at.mem),
            (CapacityType::Cpu, at.cpu),
            (CapacityType::CpuCore, at.cores),
        ] {
            out.push(self.row(t, zone, pod, cluster, c.total, c.allocated()));
        }
    }

    fn row(
        &self,
        t: CapacityType,
        zone: ZoneIdx,
        pod: Option<PodIdx>,
        cluster: Option<ClusterIdx>,
        total: u64,
        used: u64,
    ) -> CapacityRow {
        CapacityRow {
            capacity_type: t.code(),
            name: t.name(),
            zoneid: self.inv.zone(zone).id,
            zonename: self.inv.zone(zone).name.clone(),
            podid: pod.map(|p| self.inv.pod(p).id),
            podname: pod.map(|p| self.inv.pod(p).name.clone()),
            clusterid: cluster.map(|c| self.inv.cluster(c).id),
            clustername: cluster.map(|c| self.inv.cluster(c).name.clone()),
            capacitytotal: total,
            capacityused: used,
            capacityallocated: used,
            percentused: percent(used, total),
        }
    }

    /// listCapacity at a zone, pod or cluster, optionally filtered by type code.
    pub fn capacity(&self, scope: CapacityScope, type_filter: Option<CapacityType>) -> Vec<CapacityRow> {
        let mut rows = Vec::new();
        let (zone, pod, cluster, compute) = match scope {
            CapacityScope::Zone(z) => (z, None, None, self.book.zone[z.ix()]),
            CapacityScope::Pod(p) => (self.inv.pod(p).zone, Some(p), None, self.book.pod[p.ix()]),
            CapacityScope::Cluster(c) => {
                let cl = self.inv.cluster(c);
                (cl.zone, Some(cl.pod), Some(c), self.book.cluster[c.ix()])
            }
        };
        self.compute_rows(&compute, zone, pod, cluster, &mut rows);
        // Storage: pools visible at this level.
        let (mut raw, mut used, mut alloc_total, mut allocated, mut local_raw, mut local_used) = (0, 0, 0, 0, 0, 0);
        for (i, p) in self.inv.pools.iter().enumerate() {
            let in_scope = p.zone == zone
                && !p.removed
                && match (scope, p.scope) {
                    (CapacityScope::Zone(_), _) => true,
                    (_, PoolScope::Zone) => false,
                    (CapacityScope::Pod(pd), PoolScope::Cluster(c)) => self.inv.cluster(c).pod == pd,
                    (CapacityScope::Pod(pd), PoolScope::Host(h)) => self.inv.host(h).pod == pd,
                    (CapacityScope::Cluster(cl), PoolScope::Cluster(c)) => c == cl,
                    (CapacityScope::Cluster(cl), PoolScope::Host(h)) => self.inv.host(h).cluster == cl,
                };
            if !in_scope {
                continue;
            }
            let u = &self.book.pool[i];
            if p.is_local() {
                local_raw += u.raw_total;
                local_used += u.used;
            } else {
                raw += u.raw_total;
                used += u.used;
                alloc_total += u.allocatable_total;
                allocated += u.allocated;
            }
        }
        rows.push(self.row(CapacityType::Storage, zone, pod, cluster, raw, used));
        rows.push(self.row(
            CapacityType::StorageAllocated,
            zone,
            pod,
            cluster,
            alloc_total,
            allocated,
        ));
        rows.push(self.row(CapacityType::LocalStorage, zone, pod, cluster, local_raw, local_used));
        if let CapacityScope::Zone(z) = scope {
            let (total, used) = self.secondary_usage(z);
            rows.push(self.row(CapacityType::SecondaryStorage, zone, None, None, total, used));
        }
        rows.retain(|r| type_filter.is_none_or(|t| r.capacity_type == t.code()));
        rows.sort_by_key(|r| r.capacity_type);
        rows
    }

    /// Secondary storage of a zone: image stores' size, and the templates ready there.
    fn secondary_usage(&self, z: ZoneIdx) -> (u64, u64) {
        let stores: Vec<_> = self
            .inv
            .image_stores
            .iter()
            .filter(|s| s.zone.is_none_or(|sz| sz == z))
            .collect();
        let total = stores.iter().map(|s| s.capacity_bytes).sum();
        let per_store: u64 = self
            .inv
            .templates
            .iter()
            .filter(|t| t.state_in(z) == Some(TemplateZoneState::Ready))
            .map(|t| t.size_bytes)
            .sum();
        let snaps = self.snapshot_bytes(z);
        (total, if stores.is_empty() { 0 } else { per_store + snaps })
    }

    /// Compares allocated fractions with the notification thresholds; returns
    /// alerts newly raised and alerts that cleared since the last check.
    pub fn check_capacity_alerts(&mut self) -> Vec<AlertEvent> {
        let mut current: Vec<(u32, String, String, f64, f64, String)> = Vec::new();
        for (i, cl) in self.inv.clusters.iter().enumerate() {
            if cl.removed {
                continue;
            }
            let pol = &self.policy.clusters[i];
            let agg = &self.book.cluster[i];
            let where_ = format!(
                "cluster {} (pod {}, zone {})",
                cl.name,
                self.inv.pod(cl.pod).name,
                self.inv.zone(cl.zone).name
            );
            for (t, frac, thr, what) in [
                (CapacityType::Cpu, agg.cpu.fraction_with(0), pol.cpu_notify, "CPU"),
                (CapacityType::Memory, agg.mem.fraction_with(0), pol.mem_notify, "memory"),
            ] {
                current.push((
                    t.code(),
                    cl.id.to_string(),
                    cl.name.clone(),
                    frac,
                    thr,
                    format!("Low available {what} in {where_}"),
                ));
            }
        }
        for (i, p) in self.inv.pools.iter().enumerate() {
            if p.removed {
                continue;
            }
            let u = &self.book.pool[i];
            let cl_pol = match p.scope {
                PoolScope::Cluster(c) => self.policy.clusters[c.ix()],
                PoolScope::Host(h) => self.policy.clusters[self.inv.host(h).cluster.ix()],
                PoolScope::Zone => self
                    .policy
                    .clusters
                    .first()
                    .copied()
                    .unwrap_or_else(|| super::Policy::cluster(&self.settings, &self.inv, 0)),
            };
            let used = if u.raw_total == 0 {
                0.0
            } else {
                u.used as f64 / u.raw_total as f64
            };
            if p.is_local() {
                current.push((
                    CapacityType::LocalStorage.code(),
                    p.id.to_string(),
                    p.name.clone(),
                    used,
                    cl_pol.local_storage_notify,
                    format!("Low available local storage on pool {}", p.name),
                ));
            } else {
                let alloc = if u.allocatable_total == 0 {
                    0.0
                } else {
                    u.allocated as f64 / u.allocatable_total as f64
                };
                current.push((
                    CapacityType::Storage.code(),
                    p.id.to_string(),
                    p.name.clone(),
                    used,
                    cl_pol.storage_notify,
                    format!("Low available storage on pool {}", p.name),
                ));
                current.push((
                    CapacityType::StorageAllocated.code(),
                    p.id.to_string(),
                    p.name.clone(),
                    alloc,
                    cl_pol.storage_allocated_notify,
                    format!("Low unallocated storage on pool {}", p.name),
                ));
            }
        }
        let sec_thr = self.settings.f64(
            "zone.secstorage.capacity.notificationthreshold",
            crate::settings::Scope::Global,
        );
        for (zi, z) in self.inv.zones.iter().enumerate() {
            let (total, used) = self.secondary_usage(ZoneIdx(zi as u32));
            if total > 0 {
                current.push((
                    CapacityType::SecondaryStorage.code(),
                    z.id.to_string(),
                    z.name.clone(),
                    used as f64 / total as f64,
                    sec_thr,
                    format!("Low available secondary storage in zone {}", z.name),
                ));
            }
        }
        let now = self.now();
        let mut events = Vec::new();
        for (t, id, name, frac, thr, text) in current {
            let key = (t, id.clone());
            let active = self.active_alerts.contains_key(&key);
            let over = frac >= thr;
            if over != active {
                if over {
                    self.active_alerts.insert(key, ());
                } else {
                    self.active_alerts.remove(&key);
                }
                let description = if over {
                    format!("{text}: {frac:.2} >= notificationthreshold {thr:.2}")
                } else {
                    format!("Cleared: {text}: {frac:.2} < notificationthreshold {thr:.2}")
                };
                events.push(AlertEvent {
                    raised: over,
                    alert_type: t,
                    subject: name,
                    subjectid: id,
                    fraction: frac,
                    threshold: thr,
                    description,
                    at: now,
                });
            }
        }
        events
    }

    /// Alerts currently active as (type code, subject id).
    pub fn active_alerts(&self) -> Vec<(u32, String)> {
        self.active_alerts.keys().cloned().collect()
    }
}
