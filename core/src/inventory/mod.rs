//! The datacenter inventory: zone > pod > cluster > host, storage, offerings,
//! templates, networks and owners. Entities live in dense vectors addressed by
//! index newtypes; UUID maps translate at the edges.

mod model;
mod remove;

pub use model::*;
pub use remove::{ClusterTombstone, HostTombstone, PodTombstone};

use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Interns tag strings so host/storage tag checks compare integers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TagInterner {
    names: Vec<String>,
    #[serde(with = "crate::serde_util::sorted_map")]
    index: FxHashMap<String, TagId>,
}

impl TagInterner {
    pub fn intern(&mut self, name: &str) -> TagId {
        let key = name.trim().to_string();
        if let Some(t) = self.index.get(&key) {
            return *t;
        }
        let t = TagId(self.names.len() as u32);
        self.names.push(key.clone());
        self.index.insert(key, t);
        t
    }
    pub fn lookup(&self, name: &str) -> Option<TagId> {
        self.index.get(name.trim()).copied()
    }
    pub fn name(&self, t: TagId) -> &str {
        &self.names[t.0 as usize]
    }
    pub fn set(&mut self, names: &[String]) -> TagSet {
        TagSet::new(
            names
                .iter()
                .filter(|n| !n.trim().is_empty())
                .map(|n| self.intern(n))
                .collect(),
        )
    }
    pub fn names_of(&self, set: &TagSet) -> Vec<String> {
        set.iter().map(|t| self.name(t).to_string()).collect()
    }
}

macro_rules! table {
    ($field:ident, $map:ident, $ty:ty, $id:ty, $idx:ident, $get:ident, $find:ident) => {
        pub fn $get(&self, i: $idx) -> &$ty {
            &self.$field[i.ix()]
        }
        pub fn $find(&self, id: $id) -> Option<$idx> {
            self.$map.get(&id).copied()
        }
    };
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub zones: Vec<Zone>,
    pub pods: Vec<Pod>,
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    pub pools: Vec<StoragePool>,
    pub image_stores: Vec<ImageStore>,
    pub service_offerings: Vec<ServiceOffering>,
    pub disk_offerings: Vec<DiskOffering>,
    pub templates: Vec<Template>,
    pub networks: Vec<Network>,
    pub domains: Vec<Domain>,
    pub accounts: Vec<Account>,
    pub affinity_groups: Vec<AffinityGroup>,
    pub hypervisor_caps: Vec<HypervisorCapability>,
    pub tags: TagInterner,
    /// Pools visible to each cluster (cluster scope first, then zone scope), kept in
    /// creation order; local pools are found through `host_local_pools`.
    pub cluster_pools: Vec<Vec<PoolIdx>>,
    pub host_local_pools: Vec<Vec<PoolIdx>>,
    pub pod_clusters: Vec<Vec<ClusterIdx>>,
    pub zone_pods: Vec<Vec<PodIdx>>,
    #[serde(with = "crate::serde_util::sorted_map")]
    zone_map: FxHashMap<ZoneId, ZoneIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    pod_map: FxHashMap<PodId, PodIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    cluster_map: FxHashMap<ClusterId, ClusterIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    host_map: FxHashMap<HostId, HostIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    host_names: FxHashMap<(ZoneIdx, String), HostIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    pool_map: FxHashMap<PoolId, PoolIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    pool_names: FxHashMap<(ZoneIdx, String), PoolIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    store_map: FxHashMap<ImageStoreId, ImageStoreIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    so_map: FxHashMap<ServiceOfferingId, ServiceOfferingIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    do_map: FxHashMap<DiskOfferingId, DiskOfferingIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    tpl_map: FxHashMap<TemplateId, TemplateIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    net_map: FxHashMap<NetworkId, NetworkIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    domain_map: FxHashMap<DomainId, DomainIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    account_map: FxHashMap<AccountId, AccountIdx>,
    #[serde(with = "crate::serde_util::sorted_map")]
    ag_map: FxHashMap<AffinityGroupId, AffinityGroupIdx>,
}

fn dup(kind: &'static str, name: &str, scope: &str) -> CoreError {
    CoreError::Duplicate {
        kind,
        name: name.to_string(),
        scope: scope.to_string(),
    }
}

fn check_name(name: &str) -> CoreResult<()> {
    if name.trim().is_empty() {
        return Err(CoreError::invalid("name", "must not be empty"));
    }
    if name.len() > 255 {
        return Err(CoreError::invalid("name", "must be at most 255 characters"));
    }
    Ok(())
}

impl Inventory {
    table!(zones, zone_map, Zone, ZoneId, ZoneIdx, zone, find_zone);
    table!(pods, pod_map, Pod, PodId, PodIdx, pod, find_pod);
    table!(
        clusters,
        cluster_map,
        Cluster,
        ClusterId,
        ClusterIdx,
        cluster,
        find_cluster
    );
    table!(hosts, host_map, Host, HostId, HostIdx, host, find_host);
    table!(pools, pool_map, StoragePool, PoolId, PoolIdx, pool, find_pool);
    table!(
        image_stores,
        store_map,
        ImageStore,
        ImageStoreId,
        ImageStoreIdx,
        image_store,
        find_image_store
    );
    table!(
        service_offerings,
        so_map,
        ServiceOffering,
        ServiceOfferingId,
        ServiceOfferingIdx,
        service_offering,
        find_service_offering
    );
    table!(
        disk_offerings,
        do_map,
        DiskOffering,
        DiskOfferingId,
        DiskOfferingIdx,
        disk_offering,
        find_disk_offering
    );
    table!(
        templates,
        tpl_map,
        Template,
        TemplateId,
        TemplateIdx,
        template,
        find_template
    );
    table!(networks, net_map, Network, NetworkId, NetworkIdx, network, find_network);
    table!(domains, domain_map, Domain, DomainId, DomainIdx, domain, find_domain);
    table!(
        accounts,
        account_map,
        Account,
        AccountId,
        AccountIdx,
        account,
        find_account
    );
    table!(
        affinity_groups,
        ag_map,
        AffinityGroup,
        AffinityGroupId,
        AffinityGroupIdx,
        affinity_group,
        find_affinity_group
    );

    pub fn host_mut(&mut self, i: HostIdx) -> &mut Host {
        &mut self.hosts[i.ix()]
    }
    pub fn pool_mut(&mut self, i: PoolIdx) -> &mut StoragePool {
        &mut self.pools[i.ix()]
    }

    pub fn capability(&self, h: Hypervisor) -> HypervisorCapability {
        self.hypervisor_caps
            .iter()
            .find(|c| c.hypervisor == h)
            .copied()
            .unwrap_or_else(|| HypervisorCapability::default_for(h))
    }

    /// Sets a hypervisor capability row (updateHypervisorCapabilities).
    pub fn set_capability(&mut self, cap: HypervisorCapability) {
        self.hypervisor_caps.retain(|c| c.hypervisor != cap.hypervisor);
        self.hypervisor_caps.push(cap);
    }

    pub fn add_zone(&mut self, z: Zone) -> CoreResult<ZoneIdx> {
        check_name(&z.name)?;
        if self.zones.iter().any(|o| o.name == z.name) {
            return Err(dup("zone", &z.name, "the cloud"));
        }
        let i = ZoneIdx(self.zones.len() as u32);
        self.zone_map.insert(z.id, i);
        self.zones.push(z);
        self.zone_pods.push(Vec::new());
        Ok(i)
    }

    pub fn add_pod(&mut self, p: Pod) -> CoreResult<PodIdx> {
        check_name(&p.name)?;
        let zone = self
            .zones
            .get(p.zone.ix())
            .ok_or_else(|| CoreError::invalid("zoneid", "no such zone"))?;
        if self.zone_pods[p.zone.ix()].iter().any(|o| self.pod(*o).name == p.name) {
            return Err(dup("pod", &p.name, &format!("zone {}", zone.name)));
        }
        let mask = u32::from(p.netmask);
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return Err(CoreError::invalid(
                "netmask",
                format!("{} is not a contiguous netmask", p.netmask),
            ));
        }
        let net = u32::from(p.gateway) & mask;
        for (param, ip) in [("startip", p.start_ip), ("endip", p.end_ip)] {
            if u32::from(ip) & mask != net {
                return Err(CoreError::invalid(
                    param,
                    format!(
                        "{ip} is outside the pod subnet of gateway {} / {}",
                        p.gateway, p.netmask
                    ),
                ));
            }
        }
        if u32::from(p.start_ip) > u32::from(p.end_ip) {
            return Err(CoreError::invalid("endip", "must not be lower than startip"));
        }
        let i = PodIdx(self.pods.len() as u32);
        self.pod_map.insert(p.id, i);
        self.zone_pods[p.zone.ix()].push(i);
        self.pods.push(p);
        self.pod_clusters.push(Vec::new());
        Ok(i)
    }

    pub fn add_cluster(&mut self, mut c: Cluster) -> CoreResult<ClusterIdx> {
        check_name(&c.name)?;
        let pod = self
            .pods
            .get(c.pod.ix())
            .ok_or_else(|| CoreError::invalid("podid", "no such pod"))?;
        c.zone = pod.zone;
        if self.pod_clusters[c.pod.ix()]
            .iter()
            .any(|o| self.cluster(*o).name == c.name)
        {
            return Err(dup("cluster", &c.name, &format!("pod {}", pod.name)));
        }
        c.hosts.clear();
        let i = ClusterIdx(self.clusters.len() as u32);
        self.cluster_map.insert(c.id, i);
        self.pod_clusters[c.pod.ix()].push(i);
        // Zone-wide pools already present become visible to the new cluster.
        let zone_pools: Vec<PoolIdx> = (0..self.pools.len() as u32)
            .map(PoolIdx)
            .filter(|p| {
                self.pool(*p).zone == c.zone && self.pool(*p).scope == PoolScope::Zone && !self.pool(*p).removed
            })
            .collect();
        self.clusters.push(c);
        self.cluster_pools.push(zone_pools);
        Ok(i)
    }

    pub fn add_host(&mut self, mut h: Host) -> CoreResult<HostIdx> {
        check_name(&h.name)?;
        let cl = self
            .clusters
            .get(h.cluster.ix())
            .ok_or_else(|| CoreError::invalid("clusterid", "no such cluster"))?;
        h.pod = cl.pod;
        h.zone = cl.zone;
        if h.hypervisor != cl.hypervisor {
            return Err(CoreError::invalid(
                "hypervisor",
                format!("host is {} but cluster {} is {}", h.hypervisor, cl.name, cl.hypervisor),
            ));
        }
        if h.cpu_cores == 0 || h.cpu_mhz_per_core == 0 || h.memory_bytes == 0 {
            return Err(CoreError::invalid(
                "host",
                "cpu cores, cpu speed and memory must all be positive",
            ));
        }
        let cap = self.capability(cl.hypervisor);
        if cl.hosts.len() as u32 >= cap.max_hosts_per_cluster {
            return Err(CoreError::invalid(
                "clusterid",
                format!(
                    "cluster {} already has {} hosts, the {} limit",
                    cl.name,
                    cl.hosts.len(),
                    cl.hypervisor
                ),
            ));
        }
        if self.host_names.contains_key(&(h.zone, h.name.clone())) {
            return Err(dup("host", &h.name, &format!("zone {}", self.zone(h.zone).name)));
        }
        let i = HostIdx(self.hosts.len() as u32);
        self.host_map.insert(h.id, i);
        self.host_names.insert((h.zone, h.name.clone()), i);
        self.clusters[h.cluster.ix()].hosts.push(i);
        self.hosts.push(h);
        self.host_local_pools.push(Vec::new());
        Ok(i)
    }

    pub fn add_pool(&mut self, p: StoragePool) -> CoreResult<PoolIdx> {
        check_name(&p.name)?;
        if self.zones.get(p.zone.ix()).is_none() {
            return Err(CoreError::invalid("zoneid", "no such zone"));
        }
        if p.capacity_bytes == 0 {
            return Err(CoreError::invalid("capacitybytes", "must be positive"));
        }
        match p.scope {
            PoolScope::Cluster(c) => {
                let cl = self
                    .clusters
                    .get(c.ix())
                    .ok_or_else(|| CoreError::invalid("clusterid", "no such cluster"))?;
                if cl.zone != p.zone {
                    return Err(CoreError::invalid("clusterid", "cluster is in another zone"));
                }
            }
            PoolScope::Host(h) => {
                let host = self
                    .hosts
                    .get(h.ix())
                    .ok_or_else(|| CoreError::invalid("hostid", "no such host"))?;
                if host.zone != p.zone {
                    return Err(CoreError::invalid("hostid", "host is in another zone"));
                }
                if p.pool_type != PoolType::Filesystem {
                    return Err(CoreError::invalid(
                        "scope",
                        "host-local pools must be of type Filesystem",
                    ));
                }
            }
            PoolScope::Zone => {}
        }
        if self.pool_names.contains_key(&(p.zone, p.name.clone())) {
            return Err(dup(
                "storage pool",
                &p.name,
                &format!("zone {}", self.zone(p.zone).name),
            ));
        }
        let i = PoolIdx(self.pools.len() as u32);
        self.pool_map.insert(p.id, i);
        self.pool_names.insert((p.zone, p.name.clone()), i);
        match p.scope {
            PoolScope::Cluster(c) => self.cluster_pools[c.ix()].push(i),
            PoolScope::Zone => {
                for (ci, cl) in self.clusters.iter().enumerate() {
                    if cl.zone == p.zone && !cl.removed {
                        self.cluster_pools[ci].push(i);
                    }
                }
            }
            PoolScope::Host(h) => self.host_local_pools[h.ix()].push(i),
        }
        let scope = p.scope;
        let zone = p.zone;
        self.pools.push(p);
        // Keep cluster-scope pools ahead of zone-scope ones (allocator order).
        let pools = &self.pools;
        let key = |p: &PoolIdx| (pools[p.ix()].scope == PoolScope::Zone, p.0);
        match scope {
            PoolScope::Cluster(c) => self.cluster_pools[c.ix()].sort_by_key(key),
            PoolScope::Zone => {
                for (ci, list) in self.cluster_pools.iter_mut().enumerate() {
                    if self.clusters[ci].zone == zone {
                        list.sort_by_key(key);
                    }
                }
            }
            PoolScope::Host(_) => {}
        }
        Ok(i)
    }

    pub fn add_image_store(&mut self, s: ImageStore) -> CoreResult<ImageStoreIdx> {
        check_name(&s.name)?;
        if self.image_stores.iter().any(|o| o.name == s.name) {
            return Err(dup("image store", &s.name, "the cloud"));
        }
        let i = ImageStoreIdx(self.image_stores.len() as u32);
        self.store_map.insert(s.id, i);
        self.image_stores.push(s);
        Ok(i)
    }

    pub fn add_service_offering(&mut self, o: ServiceOffering) -> CoreResult<ServiceOfferingIdx> {
        check_name(&o.name)?;
        match o.custom {
            None => {
                if o.cpu_number == 0 || o.cpu_speed_mhz == 0 || o.memory_mb == 0 {
                    return Err(CoreError::invalid(
                        "cpunumber/cpuspeed/memory",
                        "a fixed offering needs positive cpunumber, cpuspeed and memory",
                    ));
                }
            }
            Some(l) => {
                if l.min_cpu == 0 || l.min_cpu > l.max_cpu || l.min_memory_mb == 0 || l.min_memory_mb > l.max_memory_mb
                {
                    return Err(CoreError::invalid(
                        "mincpunumber/maxcpunumber/minmemory/maxmemory",
                        "need 0 < min <= max",
                    ));
                }
                if o.cpu_speed_mhz == 0 {
                    return Err(CoreError::invalid(
                        "cpuspeed",
                        "a custom offering still needs a cpu speed",
                    ));
                }
            }
        }
        if self.service_offerings.iter().any(|x| x.name == o.name) {
            return Err(dup("service offering", &o.name, "the cloud"));
        }
        let i = ServiceOfferingIdx(self.service_offerings.len() as u32);
        self.so_map.insert(o.id, i);
        self.service_offerings.push(o);
        Ok(i)
    }

    pub fn add_disk_offering(&mut self, o: DiskOffering) -> CoreResult<DiskOfferingIdx> {
        check_name(&o.name)?;
        match o.size {
            DiskSize::Fixed(0) => return Err(CoreError::invalid("disksize", "must be positive")),
            DiskSize::Custom { min_bytes, max_bytes } if min_bytes == 0 || min_bytes > max_bytes => {
                return Err(CoreError::invalid("disksize", "custom size limits need 0 < min <= max"));
            }
            _ => {}
        }
        if self.disk_offerings.iter().any(|x| x.name == o.name) {
            return Err(dup("disk offering", &o.name, "the cloud"));
        }
        let i = DiskOfferingIdx(self.disk_offerings.len() as u32);
        self.do_map.insert(o.id, i);
        self.disk_offerings.push(o);
        Ok(i)
    }

    pub fn add_template(&mut self, t: Template) -> CoreResult<TemplateIdx> {
        check_name(&t.name)?;
        if t.size_bytes == 0 {
            return Err(CoreError::invalid("size", "template size must be positive"));
        }
        if self.templates.iter().any(|x| x.name == t.name) {
            return Err(dup("template", &t.name, "the cloud"));
        }
        let i = TemplateIdx(self.templates.len() as u32);
        self.tpl_map.insert(t.id, i);
        self.templates.push(t);
        Ok(i)
    }

    pub fn add_network(&mut self, n: Network) -> CoreResult<NetworkIdx> {
        check_name(&n.name)?;
        if !n.cidr.contains(n.gateway) {
            return Err(CoreError::invalid(
                "gateway",
                format!("{} is outside {}", n.gateway, n.cidr),
            ));
        }
        if n.cidr.host_count() < 2 {
            return Err(CoreError::invalid(
                "cidr",
                format!("{} leaves no guest addresses", n.cidr),
            ));
        }
        let i = NetworkIdx(self.networks.len() as u32);
        self.net_map.insert(n.id, i);
        self.networks.push(n);
        Ok(i)
    }

    pub fn add_domain(&mut self, d: Domain) -> CoreResult<DomainIdx> {
        check_name(&d.name)?;
        if self.domains.iter().any(|x| x.path == d.path) {
            return Err(dup("domain", &d.path, "the cloud"));
        }
        let i = DomainIdx(self.domains.len() as u32);
        self.domain_map.insert(d.id, i);
        self.domains.push(d);
        Ok(i)
    }

    pub fn add_account(&mut self, a: Account) -> CoreResult<AccountIdx> {
        check_name(&a.name)?;
        if self.accounts.iter().any(|x| x.name == a.name && x.domain == a.domain) {
            return Err(dup(
                "account",
                &a.name,
                &format!("domain {}", self.domain(a.domain).path),
            ));
        }
        let i = AccountIdx(self.accounts.len() as u32);
        self.account_map.insert(a.id, i);
        self.accounts.push(a);
        Ok(i)
    }

    pub fn add_affinity_group(&mut self, g: AffinityGroup) -> CoreResult<AffinityGroupIdx> {
        check_name(&g.name)?;
        if self
            .affinity_groups
            .iter()
            .any(|x| x.name == g.name && x.account == g.account)
        {
            return Err(dup("affinity group", &g.name, "the account"));
        }
        let i = AffinityGroupIdx(self.affinity_groups.len() as u32);
        self.ag_map.insert(g.id, i);
        self.affinity_groups.push(g);
        Ok(i)
    }
}
