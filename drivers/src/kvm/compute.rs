//! Compute through libvirt: define, start, stop (graceful, then destroy),
//! reboot, peer-to-peer live migration, disk hot-plug, VM state and host
//! facts. Domains are persistent while they exist but, as in the
//! controller's model, a stop removes the definition.

use super::xml::{self, DomainPlan, MANAGED_MARK};
use super::{Kvm, KvmBackend, virt_error};
use async_trait::async_trait;
use std::time::{Duration, Instant};
use stratus_wire::ids::*;
use stratus_wire::{BridgeKind, DiskDetail, DomainSpec, DriverError, HostFacts};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use crate::{ComputeDriver, DomainReport, DriverOutcome};

/// Looks a domain up by the VM's id (its libvirt UUID); `None` if absent.
pub(crate) fn lookup(conn: &Connect, vm: VmId) -> Result<Option<Domain>, DriverError> {
    match conn.lookup_domain_by_uuid_string(&vm.to_string()) {
        Ok(d) => Ok(Some(d)),
        Err(e) => match virt_error("lookup", e) {
            e if e.kind == stratus_wire::ErrorKind::NotFound => Ok(None),
            e => Err(e),
        },
    }
}

fn active(d: &Domain) -> Result<bool, DriverError> {
    d.is_active().map_err(|e| virt_error("domain state", e))
}

/// Stops a domain (graceful unless forced, destroyed after `timeout`) and
/// removes its definition.
pub(crate) fn stop_and_undefine(d: &Domain, forced: bool, timeout: Duration) -> DriverOutcome {
    if active(d)? {
        if !forced && d.shutdown().is_ok() {
            let until = Instant::now() + timeout;
            while Instant::now() < until && active(d).unwrap_or(false) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if active(d).unwrap_or(false) {
            d.destroy().map_err(|e| virt_error("destroy", e))?;
        }
    }
    // A transient domain (one that arrived by migration) is gone with its stop.
    match d.undefine() {
        Ok(()) => Ok(()),
        Err(e) => match virt_error("undefine", e) {
            e if e.kind == stratus_wire::ErrorKind::NotFound => Ok(()),
            e if e.message.contains("transient") => Ok(()),
            e => Err(e),
        },
    }
}

/// The `<disk>` block of a domain's XML that holds `file`, if any.
pub(crate) fn disk_block<'a>(domain_xml: &'a str, file: &str) -> Option<&'a str> {
    let mut rest = domain_xml;
    let mut offset = 0;
    while let Some(start) = rest.find("<disk ") {
        let end = rest[start..].find("</disk>")? + start + "</disk>".len();
        let block = &rest[start..end];
        if block.contains(file) {
            return Some(&domain_xml[offset + start..offset + end]);
        }
        offset += end;
        rest = &rest[end..];
    }
    None
}

impl KvmBackend {
    async fn plan_xml(&self, vm: VmId, spec: &DomainSpec) -> Result<String, DriverError> {
        let mut disks = Vec::new();
        for (volume, pool) in &spec.disks {
            let detail = spec.disk_detail(*volume);
            let loc = self.volume_location(*pool, &KvmBackend::volume_file(*volume))?;
            let backing = super::storage::backing_of(&loc).await?;
            disks.push((detail, loc, backing));
        }
        // The boot disk first: it gets the first device name.
        disks.sort_by_key(|(d, _, _)| !d.root);
        let nics = spec
            .nics
            .iter()
            .map(|(mac, network)| {
                let mut detail = spec.nic_detail(*mac);
                if detail.vlan.is_none() {
                    detail.vlan = self.config.network_vlans.get(network).copied();
                }
                let (bridge, ovs) = self.bridge_for(&detail);
                (detail, bridge, ovs)
            })
            .collect();
        let console_log = self
            .config
            .console_dir
            .as_ref()
            .map(|d| format!("{d}/{}.log", spec.name));
        Ok(xml::domain_xml(&DomainPlan {
            vm,
            spec,
            domain_type: self.config.domain_type,
            disks,
            nics,
            direct_kernel: self.config.direct_kernel.as_ref(),
            console_log,
        }))
    }

    /// The bridge a NIC plugs into, and whether it is an OVS bridge.
    pub(crate) fn bridge_for(&self, nic: &stratus_wire::NicDetail) -> (String, bool) {
        if let Some(b) = &nic.bridge {
            return (b.clone(), self.config.bridge_kind != BridgeKind::Linux);
        }
        match (self.config.bridge_kind, nic.vlan) {
            (BridgeKind::Linux, Some(v)) => (format!("{}-{v}", self.config.bridge), false),
            (BridgeKind::Linux, None) => (self.config.bridge.clone(), false),
            _ => (self.config.bridge.clone(), true),
        }
    }

    pub(crate) fn facts(&self, conn: &Connect) -> Result<HostFacts, DriverError> {
        let node = conn.node_info().map_err(|e| virt_error("node info", e))?;
        let hv = conn.hyp_version().map_err(|e| virt_error("hypervisor version", e))?;
        let lib = Connect::version().unwrap_or(0);
        let v = |n: u32| format!("{}.{}.{}", n / 1_000_000, n / 1000 % 1000, n % 1000);
        Ok(HostFacts {
            cpu_cores: node.cpus,
            cpu_mhz: node.mhz,
            memory_bytes: node.memory.saturating_mul(1024),
            hypervisor_version: format!("QEMU {} (libvirt {})", v(hv), v(lib)),
            cpu_sockets: node.sockets.saturating_mul(node.nodes),
            cpu_model: Some(node.model),
            migration_uri: self.config.advertised_uri.clone(),
        })
    }
}

#[async_trait]
impl ComputeDriver for Kvm {
    async fn define_domain(&self, _: HostId, vm: VmId, spec: &DomainSpec) -> DriverOutcome {
        let xml = self.0.plan_xml(vm, spec).await?;
        self.0
            .blocking(move |_, conn| {
                conn.define_domain_xml(&xml).map_err(|e| virt_error("define", e))?;
                Ok(())
            })
            .await
    }

    async fn undefine_domain(&self, _: HostId, vm: VmId) -> DriverOutcome {
        self.0
            .blocking(move |_, conn| match lookup(conn, vm)? {
                None => Ok(()),
                Some(d) if active(&d)? => Err(DriverError::refused("domain is running")),
                Some(d) => d.undefine().map_err(|e| virt_error("undefine", e)),
            })
            .await
    }

    async fn start_domain(&self, _: HostId, vm: VmId) -> DriverOutcome {
        self.0
            .blocking(move |_, conn| match lookup(conn, vm)? {
                None => Err(DriverError::not_found("domain not defined")),
                // A retried start never starts twice.
                Some(d) if active(&d)? => Ok(()),
                Some(d) => d.create().map(|_| ()).map_err(|e| virt_error("start", e)),
            })
            .await
    }

    async fn stop_domain(&self, _: HostId, vm: VmId, forced: bool) -> DriverOutcome {
        self.0
            .blocking(move |me, conn| match lookup(conn, vm)? {
                None => Ok(()),
                Some(d) => stop_and_undefine(&d, forced, me.config.shutdown_timeout),
            })
            .await
    }

    async fn reboot_domain(&self, _: HostId, vm: VmId) -> DriverOutcome {
        self.0
            .blocking(move |_, conn| match lookup(conn, vm)? {
                Some(d) if active(&d)? => d.reboot(0).map_err(|e| virt_error("reboot", e)),
                _ => Err(DriverError::refused("domain is not running")),
            })
            .await
    }

    async fn migrate_domain(&self, _: HostId, to: HostId, vm: VmId, to_uri: Option<&str>) -> DriverOutcome {
        let dest = to_uri
            .map(str::to_string)
            .or_else(|| self.0.config.peers.get(&to).cloned())
            .ok_or_else(|| DriverError::refused(format!("no libvirt address known for host {to}")))?;
        self.0
            .blocking(move |me, conn| {
                let running_here = match lookup(conn, vm)? {
                    Some(d) if active(&d)? => Some(d),
                    _ => None,
                };
                let Some(d) = running_here else {
                    // Idempotent: a retried migration that already completed is done.
                    let there = Connect::open(Some(&dest))
                        .map_err(|e| DriverError::unavailable(format!("destination {dest}: {}", e.message())))?;
                    return match lookup(&there, vm)? {
                        Some(d) if active(&d)? => Ok(()),
                        _ => Err(DriverError::refused("domain is not running on the source")),
                    };
                };
                let flags = sys::VIR_MIGRATE_LIVE
                    | sys::VIR_MIGRATE_PEER2PEER
                    | sys::VIR_MIGRATE_PERSIST_DEST
                    | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
                d.migrate_to_uri2(
                    Some(&dest),
                    me.config.migration_data_uri.as_deref(),
                    None,
                    flags,
                    None,
                    0,
                )
                .map_err(|e| virt_error("migrate", e))
            })
            .await
    }

    async fn attach_disk(&self, _: HostId, vm: VmId, volume: VolumeId, pool: PoolId) -> DriverOutcome {
        let file = KvmBackend::volume_file(volume);
        let loc = self.0.volume_location(pool, &file)?;
        self.0
            .blocking(move |_, conn| {
                let d = lookup(conn, vm)?.ok_or_else(|| DriverError::not_found("domain not found"))?;
                let now = d.xml_desc(0).map_err(|e| virt_error("domain XML", e))?;
                if disk_block(&now, &file).is_some() {
                    return Ok(());
                }
                let detail = DiskDetail {
                    volume,
                    format: stratus_wire::DiskFormat::Qcow2,
                    bus: stratus_wire::DiskBus::Virtio,
                    root: false,
                };
                let dev = (0..)
                    .map(|i| xml::target_dev(detail.bus, i))
                    .find(|dev| !now.contains(&format!("dev='{dev}'")) && !now.contains(&format!("dev=\"{dev}\"")))
                    .expect("a free device name");
                let mut flags = sys::VIR_DOMAIN_AFFECT_CONFIG;
                if active(&d)? {
                    flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
                }
                d.attach_device_flags(&xml::disk_xml(&detail, &loc, dev), flags)
                    .map_err(|e| virt_error("attach disk", e))
            })
            .await
    }

    async fn detach_disk(&self, _: HostId, vm: VmId, volume: VolumeId) -> DriverOutcome {
        let file = KvmBackend::volume_file(volume);
        self.0
            .blocking(move |_, conn| {
                let Some(d) = lookup(conn, vm)? else { return Ok(()) };
                let now = d.xml_desc(0).map_err(|e| virt_error("domain XML", e))?;
                let Some(block) = disk_block(&now, &file) else {
                    return Ok(());
                };
                let mut flags = sys::VIR_DOMAIN_AFFECT_CONFIG;
                if active(&d)? {
                    flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
                }
                d.detach_device_flags(block, flags)
                    .map_err(|e| virt_error("detach disk", e))
            })
            .await
    }

    async fn query_domains(&self, _: HostId) -> Result<Vec<DomainReport>, DriverError> {
        self.0
            .blocking(|_, conn| {
                let mut out = Vec::new();
                for d in conn.list_all_domains(0).map_err(|e| virt_error("list domains", e))? {
                    let Ok(text) = d.xml_desc(0) else { continue };
                    if !text.contains(MANAGED_MARK) {
                        continue; // not ours: never reported, never touched
                    }
                    let Ok(uuid) = d.uuid_string() else { continue };
                    let Ok(id) = stratus_wire::uuid::Uuid::parse_str(&uuid) else {
                        continue;
                    };
                    out.push(DomainReport {
                        vm: VmId(id),
                        running: d.is_active().unwrap_or(false),
                    });
                }
                out.sort_by_key(|r| r.vm);
                Ok(out)
            })
            .await
    }

    async fn ping_neighbour(&self, _: HostId, target: HostId) -> Result<bool, DriverError> {
        let uri = self
            .0
            .config
            .peers
            .get(&target)
            .cloned()
            .ok_or_else(|| DriverError::unavailable(format!("no address known for host {target}")))?;
        let probe =
            tokio::task::spawn_blocking(move || Connect::open(Some(&uri)).is_ok_and(|c| c.is_alive().unwrap_or(false)));
        match tokio::time::timeout(Duration::from_secs(5), probe).await {
            Ok(Ok(reachable)) => Ok(reachable),
            _ => Ok(false),
        }
    }

    async fn host_facts(&self, _: HostId) -> Result<HostFacts, DriverError> {
        self.0.blocking(|me, conn| me.facts(conn)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_holding_a_file_is_found_among_several() {
        let x = "<domain><devices><disk type='file'><source file='/p/a.qcow2'/></disk>\n<disk type='network'><source protocol='nfs' name='/primary/b.qcow2'/><target dev='vdb'/></disk></devices></domain>";
        assert_eq!(
            disk_block(x, "b.qcow2"),
            Some("<disk type='network'><source protocol='nfs' name='/primary/b.qcow2'/><target dev='vdb'/></disk>")
        );
        assert!(disk_block(x, "a.qcow2").unwrap().contains("/p/a.qcow2"));
        assert_eq!(disk_block(x, "c.qcow2"), None);
    }
}
