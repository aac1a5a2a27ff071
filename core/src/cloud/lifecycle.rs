//! VM lifecycle as it affects the ledger: every transition is checked against
//! CloudStack's state machine and refused (changing nothing) when illegal.

use super::{Cloud, DeploySpec};
use crate::allocator::{DiskNeed, Placement, PlacementRequest};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::{StorageType, TemplateZoneState};
use crate::units::GIB;
use crate::vm::*;

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('-')
}

impl Cloud {
    pub(crate) fn vm_idx(&self, id: VmId) -> CoreResult<VmIdx> {
        self.vm_index(id).ok_or_else(|| CoreError::NotFound {
            kind: "virtual machine",
            id: id.to_string(),
        })
    }

    pub(crate) fn bad_state(&self, i: VmIdx, op: &'static str) -> CoreError {
        let vm = self.vm_at(i);
        CoreError::InvalidState {
            entity: "VM",
            name: vm.name.clone(),
            state: vm.state.to_string(),
            op,
        }
    }

    pub(crate) fn set_state(&mut self, i: VmIdx, state: VmState) {
        let now = self.now();
        let vm = self.vms.get_mut(i.0).expect("live vm");
        vm.state = state;
        vm.state_since = now;
    }

    /// Validates a deploy request and resolves the VM's size.
    fn resolve_size(&self, spec: &DeploySpec, so: ServiceOfferingIdx) -> CoreResult<VmSize> {
        let o = self.inv.service_offering(so);
        match o.custom {
            None => {
                if spec.cpu_number.is_some() || spec.memory_mb.is_some() {
                    return Err(CoreError::invalid(
                        "details",
                        format!(
                            "service offering {} is not customized; cpuNumber and memory cannot be given",
                            o.name
                        ),
                    ));
                }
                Ok(VmSize {
                    cpu_number: o.cpu_number,
                    cpu_speed_mhz: o.cpu_speed_mhz,
                    memory_mb: o.memory_mb,
                })
            }
            Some(l) => {
                let cpu = spec
                    .cpu_number
                    .or((o.cpu_number > 0).then_some(o.cpu_number))
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "details[0].cpuNumber",
                            format!("offering {} is customized; give cpuNumber", o.name),
                        )
                    })?;
                let mem = spec
                    .memory_mb
                    .or((o.memory_mb > 0).then_some(o.memory_mb))
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "details[0].memory",
                            format!("offering {} is customized; give memory", o.name),
                        )
                    })?;
                if cpu < l.min_cpu || cpu > l.max_cpu {
                    return Err(CoreError::invalid(
                        "details[0].cpuNumber",
                        format!(
                            "{cpu} is outside {}..{} allowed by offering {}",
                            l.min_cpu, l.max_cpu, o.name
                        ),
                    ));
                }
                if mem < l.min_memory_mb || mem > l.max_memory_mb {
                    return Err(CoreError::invalid(
                        "details[0].memory",
                        format!(
                            "{mem} MB is outside {}..{} MB allowed by offering {}",
                            l.min_memory_mb, l.max_memory_mb, o.name
                        ),
                    ));
                }
                let speed = spec.cpu_speed_mhz.unwrap_or(o.cpu_speed_mhz);
                Ok(VmSize {
                    cpu_number: cpu,
                    cpu_speed_mhz: speed,
                    memory_mb: mem,
                })
            }
        }
    }

    /// deployVirtualMachine. Creates the VM (Stopped) with its volumes and, when
    /// `spec.start`, starts it. A failed start removes everything it created, and
    /// the error explains the refusal.
    pub fn deploy_vm(&mut self, spec: DeploySpec) -> CoreResult<VmId> {
        let account = spec.account.ok_or_else(|| CoreError::invalid("account", "missing"))?;
        let account = self.account_idx(account)?;
        let zone = self.zone_idx(
            spec.zone
                .ok_or_else(|| CoreError::invalid("zoneid", "missing parameter"))?,
        )?;
        let so_id = spec
            .offering
            .ok_or_else(|| CoreError::invalid("serviceofferingid", "missing parameter"))?;
        let so = self
            .inv
            .find_service_offering(so_id)
            .ok_or_else(|| CoreError::NotFound {
                kind: "service offering",
                id: so_id.to_string(),
            })?;
        let tpl_id = spec
            .template
            .ok_or_else(|| CoreError::invalid("templateid", "missing parameter"))?;
        let tpl = self.inv.find_template(tpl_id).ok_or_else(|| CoreError::NotFound {
            kind: "template",
            id: tpl_id.to_string(),
        })?;
        let t = self.inv.template(tpl);
        if t.state_in(zone) != Some(TemplateZoneState::Ready) {
            return Err(CoreError::invalid(
                "templateid",
                format!("template {} is not ready in zone {}", t.name, self.inv.zone(zone).name),
            ));
        }
        if !spec.name.is_empty() && !valid_hostname(&spec.name) {
            return Err(CoreError::invalid(
                "name",
                format!(
                    "'{}' is not a valid hostname (letters, digits and '-', starting with a letter, at most 63)",
                    spec.name
                ),
            ));
        }
        if !spec.name.is_empty() && self.vm_names.contains_key(&(account, spec.name.clone())) {
            return Err(CoreError::Duplicate {
                kind: "VM",
                name: spec.name.clone(),
                scope: "the account".into(),
            });
        }
        let size = self.resolve_size(&spec, so)?;
        let o = self.inv.service_offering(so).clone();
        if o.storage_type == StorageType::Local && !self.inv.zone(zone).local_storage_enabled {
            return Err(CoreError::invalid(
                "serviceofferingid",
                format!(
                    "offering {} needs local storage, which zone {} does not enable",
                    o.name,
                    self.inv.zone(zone).name
                ),
            ));
        }
        let tpl_size = self.inv.template(tpl).size_bytes;
        let root_size = match spec.root_disk_gib {
            Some(g) if g * GIB < tpl_size => {
                return Err(CoreError::invalid(
                    "rootdisksize",
                    format!(
                        "{g} GiB is smaller than the template ({:.1} GiB)",
                        tpl_size as f64 / GIB as f64
                    ),
                ));
            }
            Some(g) => g * GIB,
            None => tpl_size,
        };
        let data = match spec.disk_offering {
            None => {
                if spec.data_disk_gib.is_some() {
                    return Err(CoreError::invalid("size", "size needs a customized diskofferingid"));
                }
                None
            }
            Some(d) => Some(self.resolve_disk(d, spec.data_disk_gib)?),
        };
        let host = spec.host.map(|h| self.host_idx(h)).transpose()?;
        let mut groups = Vec::new();
        for g in &spec.affinity_groups {
            let gi = self.inv.find_affinity_group(*g).ok_or_else(|| CoreError::NotFound {
                kind: "affinity group",
                id: g.to_string(),
            })?;
            if self.inv.affinity_group(gi).account != account {
                return Err(CoreError::invalid(
                    "affinitygroupids",
                    format!(
                        "affinity group {} belongs to another account",
                        self.inv.affinity_group(gi).name
                    ),
                ));
            }
            groups.push(gi);
        }
        let network = spec
            .network
            .map(|n| {
                self.inv.find_network(n).ok_or_else(|| CoreError::NotFound {
                    kind: "network",
                    id: n.to_string(),
                })
            })
            .transpose()?;

        // Validated: create records.
        let id = VmId(self.new_uuid());
        let name = if spec.name.is_empty() {
            format!(
                "i-{}-{}-VM",
                account.0 + 1,
                self.vms.len() as u64 + self.expunged_count() + 1
            )
        } else {
            spec.name.clone()
        };
        let now = self.now();
        let vm = Vm {
            id,
            name: name.clone(),
            display_name: name.clone(),
            account,
            zone,
            offering: so,
            template: tpl,
            network,
            state: VmState::Stopped,
            host: None,
            last_host: None,
            ha_enabled: spec.ha.unwrap_or(o.offer_ha),
            size,
            host_tags: o.host_tags.clone(),
            storage_type: o.storage_type,
            planner: spec.planner.or(o.planner),
            volumes: Vec::new(),
            affinity_groups: groups.clone(),
            nic: None,
            charge: Charge::None,
            created: now,
            state_since: now,
        };
        let vi = VmIdx(self.vms.insert(id, vm));
        self.vm_names.insert((account, name.clone()), vi);
        let mut vols = vec![self.new_volume(
            Some(vi),
            &format!("ROOT-{}", name),
            VolumeType::Root,
            root_size,
            o.storage_tags.clone(),
            o.storage_type,
            None,
            account,
            zone,
        )];
        if let Some((di, bytes, tags, st)) = data {
            vols.push(self.new_volume(
                Some(vi),
                &format!("DATA-{}", name),
                VolumeType::DataDisk,
                bytes,
                tags,
                st,
                Some(di),
                account,
                zone,
            ));
        }
        self.vms.get_mut(vi.0).expect("just inserted").volumes = vols;
        for g in groups {
            self.group_members[g.ix()].push(vi);
        }
        if spec.start
            && let Err(e) = self.start_at(vi, host)
        {
            self.remove_vm(vi);
            return Err(e);
        }
        Ok(id)
    }

    /// The placement request for starting (or migrating) a VM.
    pub fn request_for(&self, i: VmIdx) -> PlacementRequest {
        let vm = self.vm_at(i);
        let mut req = PlacementRequest::new(vm.name.clone(), vm.account, vm.zone, vm.size);
        req.vm = Some(i);
        req.host_tags = vm.host_tags.clone();
        req.hypervisor = Some(self.inv.template(vm.template).hypervisor);
        req.affinity_groups = vm.affinity_groups.clone();
        req.planner = vm.planner;
        for &v in &vm.volumes {
            let vol = self.volume_at(v);
            match vol.pool {
                Some(p) => req.placed_pools.push(p),
                None => req.new_disks.push(DiskNeed {
                    label: if vol.volume_type == VolumeType::Root {
                        "ROOT"
                    } else {
                        "DATA"
                    },
                    size_bytes: vol.size_bytes,
                    tags: vol.storage_tags.clone(),
                    storage_type: vol.storage_type,
                }),
            }
        }
        if let Charge::Reserved { host, .. } = vm.charge {
            req.own_reservation = Some(host);
            req.preferred_host = Some(host);
        } else {
            req.preferred_host = vm.last_host;
        }
        req
    }

    /// What a new volume physically occupies on `pool`: thin pools hold the
    /// template's data for a root volume and nothing yet for a data disk; thick
    /// (local) pools hold the full size.
    fn physical_size(&self, vm: VmIdx, v: VolumeIdx, pool: PoolIdx) -> u64 {
        let vol = self.volume_at(v);
        if !self.inv.pool(pool).overprovisionable() {
            return vol.size_bytes;
        }
        match vol.volume_type {
            VolumeType::Root => vol
                .size_bytes
                .min(self.inv.template(self.vm_at(vm).template).size_bytes),
            VolumeType::DataDisk => 0,
        }
    }

    /// startVirtualMachine (optionally on a given host).
    pub fn start_vm(&mut self, id: VmId, host: Option<HostId>) -> CoreResult<HostId> {
        let i = self.vm_idx(id)?;
        let host = host.map(|h| self.host_idx(h)).transpose()?;
        self.start_at(i, host)?;
        Ok(self.inv.host(self.vm_at(i).host.expect("started")).id)
    }

    fn start_at(&mut self, i: VmIdx, host: Option<HostIdx>) -> CoreResult<()> {
        let p = self.begin_start(i, host)?;
        let _ = p;
        self.finish_start(i, true);
        Ok(())
    }

    /// First half of a start: plans, charges the host, places new volumes and
    /// enters Starting. `finish_start` completes or rolls back.
    pub fn begin_start(&mut self, i: VmIdx, host: Option<HostIdx>) -> CoreResult<Placement> {
        self.begin_start_mode(i, host, false)
    }

    /// `begin_start`, optionally as an HA restart (`ha.tag` hosts only, no last host).
    pub fn begin_start_mode(&mut self, i: VmIdx, host: Option<HostIdx>, ha: bool) -> CoreResult<Placement> {
        if self.vm_at(i).state != VmState::Stopped {
            return Err(self.bad_state(i, "start"));
        }
        let mut req = self.request_for(i);
        req.explicit_host = host;
        req.ha_restart = ha;
        let placement = self.place(&req).map_err(CoreError::InsufficientCapacity)?;
        self.set_charge(i, Charge::Used { host: placement.host });
        let vols = self.vm_at(i).volumes.clone();
        let mut k = 0;
        for v in vols {
            if self.volume_at(v).pool.is_none() {
                let pool = placement.pools[k];
                k += 1;
                let physical = self.physical_size(i, v, pool);
                let size = self.volume_at(v).size_bytes;
                self.book.pool_apply(pool, size, physical, true);
                let vol = self.volumes.get_mut(v.0).expect("live volume");
                vol.pool = Some(pool);
                vol.physical_bytes = physical;
                vol.state = VolumeState::Ready;
            }
        }
        let vm = self.vms.get_mut(i.0).expect("live vm");
        vm.host = Some(placement.host);
        self.set_state(i, VmState::Starting);
        Ok(placement)
    }

    /// Completes a start: Running on success; on failure back to Stopped with the
    /// host charge released (volumes stay where they were created).
    pub fn finish_start(&mut self, i: VmIdx, ok: bool) {
        if self.vm_at(i).state != VmState::Starting {
            return;
        }
        if ok {
            self.set_state(i, VmState::Running);
        } else {
            self.set_charge(i, Charge::None);
            let vm = self.vms.get_mut(i.0).expect("live vm");
            vm.last_host = vm.host.take();
            self.set_state(i, VmState::Stopped);
        }
    }

    /// stopVirtualMachine. The VM keeps its CPU and memory reserved on the host
    /// for `capacity.skipcounting.hours` seconds.
    pub fn stop_vm(&mut self, id: VmId, forced: bool) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        let state = self.vm_at(i).state;
        let allowed = state == VmState::Running
            || (forced
                && matches!(
                    state,
                    VmState::Starting | VmState::Stopping | VmState::Migrating | VmState::Error | VmState::Unknown
                ));
        if !allowed {
            return Err(self.bad_state(i, if forced { "force-stop" } else { "stop" }));
        }
        let host = match self.vm_at(i).charge {
            Charge::Used { host } | Charge::Migrating { from: host, .. } => Some(host),
            _ => self.vm_at(i).host,
        };
        match host {
            Some(h) => {
                let skip = self.policy.clusters[self.inv.host(h).cluster.ix()].skip_counting_ms;
                let until = crate::units::Millis(self.now().0 + skip);
                self.set_charge(
                    i,
                    if skip == 0 {
                        Charge::None
                    } else {
                        Charge::Reserved { host: h, until }
                    },
                );
            }
            None => self.set_charge(i, Charge::None),
        }
        let vm = self.vms.get_mut(i.0).expect("live vm");
        if host.is_some() {
            vm.last_host = host;
        }
        vm.host = None;
        self.set_state(i, VmState::Stopped);
        Ok(())
    }

    /// destroyVirtualMachine: releases compute; volumes stay allocated (state
    /// Destroy) until expunge. With `expunge`, expunges at once.
    pub fn destroy_vm(&mut self, id: VmId, expunge: bool) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        let state = self.vm_at(i).state;
        if !matches!(
            state,
            VmState::Running | VmState::Stopped | VmState::Error | VmState::Shutdown
        ) {
            return Err(self.bad_state(i, "destroy"));
        }
        self.set_charge(i, Charge::None);
        let vm = self.vms.get_mut(i.0).expect("live vm");
        if vm.host.is_some() {
            vm.last_host = vm.host.take();
        }
        for v in self.vm_at(i).volumes.clone() {
            let vol = self.volumes.get_mut(v.0).expect("live volume");
            if vol.state != VolumeState::Allocated {
                vol.state = VolumeState::Destroy;
            }
        }
        self.set_state(i, VmState::Destroyed);
        if expunge {
            self.expunge_vm(id)?;
        }
        Ok(())
    }

    /// recoverVirtualMachine: Destroyed → Stopped.
    pub fn recover_vm(&mut self, id: VmId) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        if self.vm_at(i).state != VmState::Destroyed {
            return Err(self.bad_state(i, "recover"));
        }
        for v in self.vm_at(i).volumes.clone() {
            let vol = self.volumes.get_mut(v.0).expect("live volume");
            if vol.state == VolumeState::Destroy {
                vol.state = VolumeState::Ready;
            }
        }
        self.set_state(i, VmState::Stopped);
        Ok(())
    }

    /// expungeVirtualMachine: removes a destroyed VM and frees its volumes.
    pub fn expunge_vm(&mut self, id: VmId) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        if self.vm_at(i).state != VmState::Destroyed {
            return Err(self.bad_state(i, "expunge"));
        }
        self.remove_vm(i);
        self.expunged += 1;
        Ok(())
    }

    /// Drops a VM and its volumes from every record and counter.
    fn remove_vm(&mut self, i: VmIdx) {
        self.set_charge(i, Charge::None);
        let vm = self.vm_at(i);
        let (id, vols, groups) = (vm.id, vm.volumes.clone(), vm.affinity_groups.clone());
        self.vm_names.remove(&(vm.account, vm.name.clone()));
        for v in vols {
            let vol = self.volume_at(v);
            let (vid, pool, size, physical) = (vol.id, vol.counts_on_pool(), vol.size_bytes, vol.physical_bytes);
            if let Some(p) = pool {
                self.book.pool_apply(p, size, physical, false);
            }
            self.volumes.remove(vid);
        }
        for g in groups {
            self.group_members[g.ix()].retain(|m| *m != i);
        }
        self.vms.remove(id);
    }

    /// updateVirtualMachine: the display name and the HA flag. HA can only be
    /// turned on when the VM's offering offers it (CloudStack's rule).
    pub fn update_vm(&mut self, id: VmId, display_name: Option<String>, ha: Option<bool>) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        if let Some(n) = &display_name
            && (n.trim().is_empty() || n.chars().count() > 255)
        {
            return Err(CoreError::invalid("displayname", "must have 1 to 255 characters"));
        }
        let o = self.inv.service_offering(self.vm_at(i).offering);
        if ha == Some(true) && !o.offer_ha {
            return Err(CoreError::invalid(
                "haenable",
                format!("service offering {} does not offer HA", o.name),
            ));
        }
        let vm = self.vms.get_mut(i.0).expect("live vm");
        if let Some(n) = display_name {
            vm.display_name = n;
        }
        if let Some(h) = ha {
            vm.ha_enabled = h;
        }
        Ok(())
    }

    /// changeServiceForVirtualMachine while Stopped. The old reservation no longer
    /// describes the VM, so it is dropped.
    pub fn change_offering(
        &mut self,
        id: VmId,
        offering: ServiceOfferingId,
        cpu: Option<u32>,
        memory_mb: Option<u64>,
    ) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        if self.vm_at(i).state != VmState::Stopped {
            return Err(self.bad_state(i, "change service offering"));
        }
        let so = self
            .inv
            .find_service_offering(offering)
            .ok_or_else(|| CoreError::NotFound {
                kind: "service offering",
                id: offering.to_string(),
            })?;
        let o = self.inv.service_offering(so).clone();
        if o.storage_type != self.vm_at(i).storage_type {
            return Err(CoreError::invalid(
                "serviceofferingid",
                format!(
                    "offering {} uses {} storage; the VM's root volume is {}",
                    o.name,
                    o.storage_type,
                    self.vm_at(i).storage_type
                ),
            ));
        }
        let spec = DeploySpec {
            cpu_number: cpu,
            memory_mb,
            ..Default::default()
        };
        let size = self.resolve_size(&spec, so)?;
        self.set_charge(i, Charge::None);
        let vm = self.vms.get_mut(i.0).expect("live vm");
        vm.offering = so;
        vm.size = size;
        vm.host_tags = o.host_tags.clone();
        vm.ha_enabled = o.offer_ha;
        Ok(())
    }

    /// First half of a live migration: picks (or checks) the destination and
    /// reserves it; the VM is Migrating until `finish_migration`.
    pub fn begin_migration(&mut self, id: VmId, dest: Option<HostId>) -> CoreResult<HostId> {
        let i = self.vm_idx(id)?;
        if self.vm_at(i).state != VmState::Running {
            return Err(self.bad_state(i, "migrate"));
        }
        let dest = dest.map(|h| self.host_idx(h)).transpose()?;
        let from = match self.vm_at(i).charge {
            Charge::Used { host } => host,
            _ => return Err(self.bad_state(i, "migrate")),
        };
        if dest == Some(from) {
            return Err(CoreError::invalid(
                "hostid",
                format!(
                    "VM {} already runs on host {}",
                    self.vm_at(i).name,
                    self.inv.host(from).name
                ),
            ));
        }
        let mut req = self.request_for(i);
        req.own_reservation = None;
        req.preferred_host = None;
        req.explicit_host = dest;
        req.avoid.hosts.insert(from);
        req.migrating_from = Some(from);
        let p = self.place(&req).map_err(CoreError::InsufficientCapacity)?;
        self.set_charge(i, Charge::Migrating { from, to: p.host });
        self.set_state(i, VmState::Migrating);
        Ok(self.inv.host(p.host).id)
    }

    /// Completes a migration: on success the VM runs on the destination; on
    /// failure it keeps running on the source.
    pub fn finish_migration(&mut self, id: VmId, ok: bool) -> CoreResult<()> {
        let i = self.vm_idx(id)?;
        let Charge::Migrating { from, to } = self.vm_at(i).charge else {
            return Err(self.bad_state(i, "finish migration"));
        };
        let host = if ok { to } else { from };
        self.set_charge(i, Charge::Used { host });
        let vm = self.vms.get_mut(i.0).expect("live vm");
        if ok {
            vm.last_host = Some(from);
        }
        vm.host = Some(host);
        self.set_state(i, VmState::Running);
        Ok(())
    }
}
