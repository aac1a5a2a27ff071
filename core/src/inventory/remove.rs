//! Removing hosts, clusters, pods and the pools that go with them.
//!
//! Why tombstones and not compaction: every index newtype (`HostIdx`,
//! `ClusterIdx`, ...) is stored far from the inventory — in the capacity book,
//! VM records, the controller's host health, policy caches, pool scopes,
//! journals replayed after a restart. Renumbering on removal would have to
//! rewrite all of them consistently. So a removed entity keeps its slot: a
//! host gets CloudStack's own `Removed` status, a cluster, pod or pool its
//! `removed` flag; it leaves the UUID and name maps (nothing finds it, the
//! name may be reused) and the parent lists the allocator and HA walk
//! (`zone_pods`, `pod_clusters`, `Cluster::hosts`, `cluster_pools`,
//! `host_local_pools`). Loops over the raw vectors skip tombstones
//! (`live_hosts`, `Host::is_removed`). Each removal returns what it changed
//! so a what-if (`cloud::Fork`) can put it back exactly.

use super::*;

/// What removing a host changed, to undo it.
#[derive(Clone, Debug)]
pub struct HostTombstone {
    pub host: HostIdx,
    status: HostStatus,
    position: usize,
    pub local_pools: Vec<PoolIdx>,
}

/// What removing a cluster changed, to undo it.
#[derive(Clone, Debug)]
pub struct ClusterTombstone {
    pub cluster: ClusterIdx,
    position: usize,
    pools: Vec<PoolIdx>,
    /// Its own (cluster-scope) pools, removed with it.
    pub own_pools: Vec<PoolIdx>,
}

/// What removing a pod changed, to undo it.
#[derive(Clone, Debug)]
pub struct PodTombstone {
    pub pod: PodIdx,
    position: usize,
}

impl Inventory {
    /// Hosts that were not removed, in index order.
    pub fn live_hosts(&self) -> impl Iterator<Item = (HostIdx, &Host)> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_removed())
            .map(|(i, h)| (HostIdx(i as u32), h))
    }

    /// Clusters that were not removed, in index order.
    pub fn live_clusters(&self) -> impl Iterator<Item = (ClusterIdx, &Cluster)> {
        self.clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.removed)
            .map(|(i, c)| (ClusterIdx(i as u32), c))
    }

    /// Takes a host out (the caller checked it holds nothing); its
    /// host-local pools go with it.
    pub fn remove_host(&mut self, h: HostIdx) -> HostTombstone {
        let host = &self.hosts[h.ix()];
        let (id, zone, name, cluster, status) = (host.id, host.zone, host.name.clone(), host.cluster, host.status);
        let list = &mut self.clusters[cluster.ix()].hosts;
        let position = list.iter().position(|x| *x == h).unwrap_or(list.len());
        list.retain(|x| *x != h);
        self.host_map.remove(&id);
        self.host_names.remove(&(zone, name));
        let local_pools = std::mem::take(&mut self.host_local_pools[h.ix()]);
        for p in &local_pools {
            self.tombstone_pool(*p);
        }
        self.hosts[h.ix()].status = HostStatus::Removed;
        HostTombstone {
            host: h,
            status,
            position,
            local_pools,
        }
    }

    pub fn restore_host(&mut self, t: HostTombstone) {
        let h = t.host;
        let host = &mut self.hosts[h.ix()];
        host.status = t.status;
        let (id, zone, name, cluster) = (host.id, host.zone, host.name.clone(), host.cluster);
        let list = &mut self.clusters[cluster.ix()].hosts;
        list.insert(t.position.min(list.len()), h);
        self.host_map.insert(id, h);
        self.host_names.insert((zone, name), h);
        for p in &t.local_pools {
            self.untombstone_pool(*p);
        }
        self.host_local_pools[h.ix()] = t.local_pools;
    }

    /// Takes a cluster out (the caller checked it has no hosts); its own
    /// (cluster-scope) pools go with it.
    pub fn remove_cluster(&mut self, c: ClusterIdx) -> ClusterTombstone {
        let pod = self.clusters[c.ix()].pod;
        let list = &mut self.pod_clusters[pod.ix()];
        let position = list.iter().position(|x| *x == c).unwrap_or(list.len());
        list.retain(|x| *x != c);
        self.cluster_map.remove(&self.clusters[c.ix()].id);
        let pools = std::mem::take(&mut self.cluster_pools[c.ix()]);
        let own_pools: Vec<PoolIdx> = pools
            .iter()
            .copied()
            .filter(|p| self.pools[p.ix()].scope == PoolScope::Cluster(c))
            .collect();
        for p in &own_pools {
            self.tombstone_pool(*p);
        }
        self.clusters[c.ix()].removed = true;
        ClusterTombstone {
            cluster: c,
            position,
            pools,
            own_pools,
        }
    }

    pub fn restore_cluster(&mut self, t: ClusterTombstone) {
        let c = t.cluster;
        self.clusters[c.ix()].removed = false;
        let (pod, id) = (self.clusters[c.ix()].pod, self.clusters[c.ix()].id);
        let list = &mut self.pod_clusters[pod.ix()];
        list.insert(t.position.min(list.len()), c);
        self.cluster_map.insert(id, c);
        for p in &t.own_pools {
            self.untombstone_pool(*p);
        }
        self.cluster_pools[c.ix()] = t.pools;
    }

    /// Takes a pod out (the caller checked it has no clusters).
    pub fn remove_pod(&mut self, p: PodIdx) -> PodTombstone {
        let zone = self.pods[p.ix()].zone;
        let list = &mut self.zone_pods[zone.ix()];
        let position = list.iter().position(|x| *x == p).unwrap_or(list.len());
        list.retain(|x| *x != p);
        self.pod_map.remove(&self.pods[p.ix()].id);
        self.pods[p.ix()].removed = true;
        PodTombstone { pod: p, position }
    }

    pub fn restore_pod(&mut self, t: PodTombstone) {
        let p = t.pod;
        self.pods[p.ix()].removed = false;
        let (zone, id) = (self.pods[p.ix()].zone, self.pods[p.ix()].id);
        let list = &mut self.zone_pods[zone.ix()];
        list.insert(t.position.min(list.len()), p);
        self.pod_map.insert(id, p);
    }

    fn tombstone_pool(&mut self, p: PoolIdx) {
        let pool = &mut self.pools[p.ix()];
        pool.removed = true;
        let (id, zone, name) = (pool.id, pool.zone, pool.name.clone());
        self.pool_map.remove(&id);
        self.pool_names.remove(&(zone, name));
    }

    fn untombstone_pool(&mut self, p: PoolIdx) {
        let pool = &mut self.pools[p.ix()];
        pool.removed = false;
        let (id, zone, name) = (pool.id, pool.zone, pool.name.clone());
        self.pool_map.insert(id, p);
        self.pool_names.insert((zone, name), p);
    }
}
