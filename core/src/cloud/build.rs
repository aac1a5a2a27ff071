//! Building the inventory and changing settings and states through `Cloud`, so
//! the capacity book and policy caches grow and refresh with it.

use super::{Cloud, Policy, specs::*};
use crate::capacity::{Compute, Counter, PoolUsage};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::*;
use crate::settings::Scope;

fn not_found(kind: &'static str, id: impl ToString) -> CoreError {
    CoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

impl Cloud {
    pub fn zone_idx(&self, id: ZoneId) -> CoreResult<ZoneIdx> {
        self.inv.find_zone(id).ok_or_else(|| not_found("zone", id))
    }
    pub fn pod_idx(&self, id: PodId) -> CoreResult<PodIdx> {
        self.inv.find_pod(id).ok_or_else(|| not_found("pod", id))
    }
    pub fn cluster_idx(&self, id: ClusterId) -> CoreResult<ClusterIdx> {
        self.inv.find_cluster(id).ok_or_else(|| not_found("cluster", id))
    }
    pub fn host_idx(&self, id: HostId) -> CoreResult<HostIdx> {
        self.inv.find_host(id).ok_or_else(|| not_found("host", id))
    }
    pub fn pool_idx(&self, id: PoolId) -> CoreResult<PoolIdx> {
        self.inv.find_pool(id).ok_or_else(|| not_found("storage pool", id))
    }
    pub fn account_idx(&self, id: AccountId) -> CoreResult<AccountIdx> {
        self.inv.find_account(id).ok_or_else(|| not_found("account", id))
    }

    pub fn add_zone(&mut self, s: ZoneSpec) -> CoreResult<ZoneId> {
        let guest_cidr = match &s.guest_cidr {
            Some(c) => Some(Cidr::parse(c).ok_or_else(|| {
                CoreError::invalid("guestcidraddress", format!("'{c}' is not a network in CIDR form"))
            })?),
            None => None,
        };
        let id = ZoneId(self.new_uuid());
        self.inv.add_zone(Zone {
            id,
            name: s.name,
            network_type: s.network_type,
            dns1: s.dns1,
            internal_dns1: s.internal_dns1,
            allocation_state: AllocationState::Enabled,
            local_storage_enabled: s.local_storage_enabled,
            guest_cidr,
        })?;
        self.book.zone.push(Compute::default());
        Ok(id)
    }

    pub fn add_pod(&mut self, s: PodSpec) -> CoreResult<PodId> {
        let zone = self.zone_idx(s.zone)?;
        let id = PodId(self.new_uuid());
        self.inv.add_pod(Pod {
            id,
            name: s.name,
            zone,
            gateway: s.gateway,
            netmask: s.netmask,
            start_ip: s.start_ip,
            end_ip: s.end_ip,
            allocation_state: AllocationState::Enabled,
            removed: false,
        })?;
        self.book.pod.push(Compute::default());
        Ok(id)
    }

    pub fn add_cluster(&mut self, name: &str, pod: PodId, hypervisor: Hypervisor) -> CoreResult<ClusterId> {
        let pod = self.pod_idx(pod)?;
        let id = ClusterId(self.new_uuid());
        let ix = self.inv.add_cluster(Cluster {
            id,
            name: name.to_string(),
            pod,
            zone: ZoneIdx(0),
            hypervisor,
            cluster_type: ClusterType::CloudManaged,
            allocation_state: AllocationState::Enabled,
            hosts: Vec::new(),
            removed: false,
        })?;
        self.book.cluster.push(Compute::default());
        self.policy
            .clusters
            .push(Policy::cluster(&self.settings, &self.inv, ix.ix()));
        Ok(id)
    }

    pub fn add_host(&mut self, s: HostSpec) -> CoreResult<HostId> {
        let cluster = self.cluster_idx(s.cluster)?;
        let hypervisor = self.inv.cluster(cluster).hypervisor;
        let id = HostId(self.new_uuid());
        let tags = self.inv.tags.set(&s.tags);
        let h = self.inv.add_host(Host {
            id,
            name: s.name,
            cluster,
            pod: PodIdx(0),
            zone: ZoneIdx(0),
            hypervisor,
            cpu_cores: s.cpu_cores,
            cpu_mhz_per_core: s.cpu_mhz,
            memory_bytes: s.memory_bytes,
            tags,
            status: HostStatus::Up,
            resource_state: ResourceState::Enabled,
        })?;
        let host = self.inv.host(h);
        self.book.parents.push((host.cluster, host.pod, host.zone));
        self.book.host.push(Compute::default());
        self.book.host_guests.push(0);
        self.refresh_host_total(h);
        Ok(id)
    }

    pub fn add_pool(&mut self, s: PoolSpec) -> CoreResult<PoolId> {
        let zone = self.zone_idx(s.zone)?;
        let scope = match s.scope {
            PoolScopeSpec::Cluster(c) => PoolScope::Cluster(self.cluster_idx(c)?),
            PoolScopeSpec::Zone => PoolScope::Zone,
            PoolScopeSpec::Host(h) => PoolScope::Host(self.host_idx(h)?),
        };
        let id = PoolId(self.new_uuid());
        let tags = self.inv.tags.set(&s.tags);
        let p = self.inv.add_pool(StoragePool {
            id,
            name: s.name,
            zone,
            scope,
            pool_type: s.pool_type,
            capacity_bytes: s.capacity_bytes,
            tags,
            state: PoolState::Up,
            removed: false,
        })?;
        self.policy.pools.push(Policy::pool(&self.settings, &self.inv, p.ix()));
        self.book.pool.push(PoolUsage::default());
        self.refresh_pool_total(p);
        Ok(id)
    }

    pub fn add_image_store(
        &mut self,
        name: &str,
        zone: Option<ZoneId>,
        url: &str,
        capacity_bytes: u64,
    ) -> CoreResult<ImageStoreId> {
        let zone = zone.map(|z| self.zone_idx(z)).transpose()?;
        let id = ImageStoreId(self.new_uuid());
        self.inv.add_image_store(ImageStore {
            id,
            name: name.to_string(),
            zone,
            url: url.to_string(),
            capacity_bytes,
        })?;
        Ok(id)
    }

    pub fn add_service_offering(&mut self, s: ServiceOfferingSpec) -> CoreResult<ServiceOfferingId> {
        let id = ServiceOfferingId(self.new_uuid());
        let host_tags = self.inv.tags.set(&s.host_tags);
        let storage_tags = self.inv.tags.set(&s.storage_tags);
        self.inv.add_service_offering(ServiceOffering {
            id,
            name: s.name,
            cpu_number: s.cpu_number,
            cpu_speed_mhz: s.cpu_speed_mhz,
            memory_mb: s.memory_mb,
            offer_ha: s.offer_ha,
            storage_type: s.storage_type,
            host_tags,
            storage_tags,
            custom: s.custom,
            planner: s.planner,
        })?;
        Ok(id)
    }

    pub fn add_disk_offering(&mut self, s: DiskOfferingSpec) -> CoreResult<DiskOfferingId> {
        let id = DiskOfferingId(self.new_uuid());
        let storage_tags = self.inv.tags.set(&s.storage_tags);
        self.inv.add_disk_offering(DiskOffering {
            id,
            name: s.name,
            size: s.size,
            storage_tags,
            storage_type: s.storage_type,
        })?;
        Ok(id)
    }

    pub fn add_template(&mut self, s: TemplateSpec) -> CoreResult<TemplateId> {
        let zones = s
            .ready_in
            .iter()
            .map(|z| self.zone_idx(*z).map(|zi| (zi, TemplateZoneState::Ready)))
            .collect::<CoreResult<Vec<_>>>()?;
        let id = TemplateId(self.new_uuid());
        self.inv.add_template(Template {
            id,
            name: s.name,
            format: s.format,
            size_bytes: s.size_bytes,
            os_type: s.os_type,
            hypervisor: s.hypervisor,
            is_iso: s.is_iso,
            zones,
            url: String::new(),
            checksum: None,
            downloads: Vec::new(),
        })?;
        Ok(id)
    }

    pub fn add_network(&mut self, s: NetworkSpec) -> CoreResult<NetworkId> {
        let zone = self.zone_idx(s.zone)?;
        let cidr = Cidr::parse(&s.cidr)
            .ok_or_else(|| CoreError::invalid("cidr", format!("'{}' is not a network in CIDR form", s.cidr)))?;
        let account = s.account.map(|a| self.account_idx(a)).transpose()?;
        let id = NetworkId(self.new_uuid());
        let gateway = std::net::Ipv4Addr::from(u32::from(cidr.network()) + 1);
        self.inv.add_network(Network {
            id,
            name: s.name,
            zone,
            cidr,
            gateway,
            account,
        })?;
        Ok(id)
    }

    pub fn add_domain(&mut self, name: &str, parent: Option<DomainId>) -> CoreResult<DomainId> {
        let parent = match parent {
            Some(p) => self.inv.find_domain(p).ok_or_else(|| not_found("domain", p))?,
            None => self.inv.find_domain(self.root_domain()).expect("root domain"),
        };
        let path = format!("{}/{}", self.inv.domain(parent).path, name);
        let id = DomainId(self.new_uuid());
        self.inv.add_domain(Domain {
            id,
            name: name.to_string(),
            parent: Some(parent),
            path,
        })?;
        Ok(id)
    }

    pub fn add_account(
        &mut self,
        name: &str,
        domain: Option<DomainId>,
        account_type: AccountType,
    ) -> CoreResult<AccountId> {
        let domain = domain.unwrap_or_else(|| self.root_domain());
        let d = self
            .inv
            .find_domain(domain)
            .ok_or_else(|| not_found("domain", domain))?;
        let id = AccountId(self.new_uuid());
        self.inv.add_account(Account {
            id,
            name: name.to_string(),
            domain: d,
            account_type,
        })?;
        Ok(id)
    }

    pub fn add_affinity_group(
        &mut self,
        name: &str,
        kind: AffinityKind,
        account: AccountId,
    ) -> CoreResult<AffinityGroupId> {
        let account = self.account_idx(account)?;
        let id = AffinityGroupId(self.new_uuid());
        self.inv.add_affinity_group(AffinityGroup {
            id,
            name: name.to_string(),
            kind,
            account,
        })?;
        self.group_members.push(Vec::new());
        Ok(id)
    }

    /// updateConfiguration: validates, stores, and refreshes capacity totals and
    /// allocator policy. Nothing changes on error.
    pub fn update_setting(&mut self, name: &str, scope: Scope, value: &str) -> CoreResult<()> {
        match scope {
            Scope::Global => {}
            Scope::Zone(z) => drop(self.zone_idx(z)?),
            Scope::Cluster(c) => drop(self.cluster_idx(c)?),
            Scope::Pool(p) => drop(self.pool_idx(p)?),
            Scope::Account(a) => drop(self.account_idx(a)?),
        }
        self.settings.set(name, scope, value)?;
        self.refresh_policy();
        Ok(())
    }

    /// Re-resolves every cached policy and recomputes all totals.
    pub fn refresh_policy(&mut self) {
        self.policy = Policy::resolve(&self.settings, &mut self.inv);
        for h in 0..self.inv.hosts.len() {
            self.refresh_host_total(HostIdx(h as u32));
        }
        for p in 0..self.inv.pools.len() {
            self.refresh_pool_total(PoolIdx(p as u32));
        }
        self.book.rebuild_aggregate_totals();
    }

    pub(super) fn refresh_host_total(&mut self, h: HostIdx) {
        let host = self.inv.host(h);
        let pol = &self.policy.clusters[host.cluster.ix()];
        let old = self.book.host[h.ix()];
        // A removed host keeps its slot (tombstone) but no capacity.
        let (new_cpu, new_mem) = if host.is_removed() {
            (0, 0)
        } else {
            super::safety::host_totals(host, pol)
        };
        let cores = if host.is_removed() {
            0
        } else {
            u64::from(host.cpu_cores)
        };
        let hc = &mut self.book.host[h.ix()];
        hc.cpu = Counter {
            total: new_cpu,
            ..old.cpu
        };
        hc.cores = Counter {
            total: cores,
            ..old.cores
        };
        hc.mem = Counter {
            total: new_mem,
            ..old.mem
        };
        // Keep aggregates exact without a full rebuild.
        let (c, p, z) = self.book.parents[h.ix()];
        for agg in [
            &mut self.book.cluster[c.ix()],
            &mut self.book.pod[p.ix()],
            &mut self.book.zone[z.ix()],
        ] {
            agg.cpu.total = agg.cpu.total - old.cpu.total + new_cpu;
            agg.cores.total = agg.cores.total - old.cores.total + cores;
            agg.mem.total = agg.mem.total - old.mem.total + new_mem;
        }
    }

    pub(super) fn refresh_pool_total(&mut self, p: PoolIdx) {
        let pool = self.inv.pool(p);
        let factor = if pool.overprovisionable() {
            self.policy.pools[p.ix()].factor
        } else {
            1.0
        };
        let bytes = if pool.removed { 0 } else { pool.capacity_bytes };
        let u = &mut self.book.pool[p.ix()];
        u.raw_total = bytes;
        u.allocatable_total = (bytes as f64 * factor).floor() as u64;
    }

    pub fn set_host_status(&mut self, h: HostId, status: HostStatus) -> CoreResult<()> {
        let h = self.host_idx(h)?;
        self.inv.host_mut(h).status = status;
        Ok(())
    }

    pub fn set_host_resource_state(&mut self, h: HostId, state: ResourceState) -> CoreResult<()> {
        let h = self.host_idx(h)?;
        self.inv.host_mut(h).resource_state = state;
        Ok(())
    }

    pub fn set_pool_state(&mut self, p: PoolId, state: PoolState) -> CoreResult<()> {
        let p = self.pool_idx(p)?;
        self.inv.pool_mut(p).state = state;
        Ok(())
    }

    pub fn set_zone_allocation(&mut self, z: ZoneId, state: AllocationState) -> CoreResult<()> {
        let z = self.zone_idx(z)?;
        self.inv.zones[z.ix()].allocation_state = state;
        Ok(())
    }

    pub fn set_pod_allocation(&mut self, p: PodId, state: AllocationState) -> CoreResult<()> {
        let p = self.pod_idx(p)?;
        self.inv.pods[p.ix()].allocation_state = state;
        Ok(())
    }

    pub fn set_cluster_allocation(&mut self, c: ClusterId, state: AllocationState) -> CoreResult<()> {
        let c = self.cluster_idx(c)?;
        self.inv.clusters[c.ix()].allocation_state = state;
        Ok(())
    }
}
