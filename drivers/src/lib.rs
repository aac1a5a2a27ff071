//! Driver traits: the only way out of the core. The controller speaks the
//! `DriverCall` vocabulary (`stratus-wire`); a runtime hands each call to
//! `execute`, which dispatches to the compute, storage, network or fencing
//! driver of the backend. The simulated datacenter (`stratus-sim`) implements
//! these traits; the real KVM backend (libvirt, Open vSwitch, NFS) will
//! implement the same. Failures are typed (`DriverError`: not found,
//! unavailable, refused, in doubt).
//!
//! [`watchdog`] holds the host side of the fencing rule, used by the real
//! agent and the simulated host alike.

#[cfg(feature = "kvm")]
pub mod kvm;
pub mod watchdog;

use async_trait::async_trait;
use std::net::Ipv4Addr;
pub use stratus_wire::HostFacts;
use stratus_wire::ids::*;
pub use stratus_wire::{
    BridgeKind, DiskBus, DiskDetail, DiskFormat, DomainDevices, ImageSource, NicDetail, NicModel, PoolSpec,
};
use stratus_wire::{DomainSpec, DriverCall, DriverResult, Mac};
pub use stratus_wire::{DriverError, ErrorKind};
pub use watchdog::Watchdog;

/// A domain as the hypervisor reports it (VM sync).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainReport {
    pub vm: VmId,
    pub running: bool,
}

pub type DriverOutcome = Result<(), DriverError>;

/// How far a long copy (`CopyTemplate`) has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyProgress {
    pub done_bytes: u64,
    /// 0 while the size is not known yet.
    pub total_bytes: u64,
}

#[async_trait]
pub trait ComputeDriver: Send + Sync {
    async fn define_domain(&self, host: HostId, vm: VmId, spec: &DomainSpec) -> DriverOutcome;
    async fn undefine_domain(&self, host: HostId, vm: VmId) -> DriverOutcome;
    async fn start_domain(&self, host: HostId, vm: VmId) -> DriverOutcome;
    async fn stop_domain(&self, host: HostId, vm: VmId, forced: bool) -> DriverOutcome;
    async fn reboot_domain(&self, host: HostId, vm: VmId) -> DriverOutcome;
    /// Live-migrates to `to`, reached at `to_uri` when the gateway knows it.
    async fn migrate_domain(&self, from: HostId, to: HostId, vm: VmId, to_uri: Option<&str>) -> DriverOutcome;
    async fn attach_disk(&self, host: HostId, vm: VmId, volume: VolumeId, pool: PoolId) -> DriverOutcome;
    async fn detach_disk(&self, host: HostId, vm: VmId, volume: VolumeId) -> DriverOutcome;
    async fn query_domains(&self, host: HostId) -> Result<Vec<DomainReport>, DriverError>;
    /// Asks `from` whether it reaches `target` (neighbour check for HA).
    async fn ping_neighbour(&self, from: HostId, target: HostId) -> Result<bool, DriverError>;
    async fn host_facts(&self, host: HostId) -> Result<HostFacts, DriverError>;
}

#[async_trait]
pub trait StorageDriver: Send + Sync {
    /// Copies a template's base image to a pool; `source` absent: from the
    /// secondary storage's `template/<id>.qcow2`.
    async fn copy_template(
        &self,
        pool: PoolId,
        template: TemplateId,
        size_bytes: u64,
        source: Option<&ImageSource>,
    ) -> DriverOutcome;
    /// Stops a copy in progress (its partial image is removed); `NotFound`
    /// when none runs.
    async fn cancel_copy(&self, pool: PoolId, template: TemplateId) -> DriverOutcome;
    /// Progress of a copy in progress, `None` when none runs.
    async fn copy_progress(&self, pool: PoolId, template: TemplateId) -> Option<CopyProgress>;
    /// Copies a volume to secondary storage as a template.
    async fn create_template(&self, pool: PoolId, volume: VolumeId, template: TemplateId) -> DriverOutcome;
    /// Puts a volume back to a snapshot's content.
    async fn revert_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome;
    /// Makes sure `host` reaches `pool` (define, start, mount). Idempotent.
    async fn ensure_pool(&self, host: HostId, pool: PoolId, spec: &PoolSpec) -> DriverOutcome;
    async fn create_volume(
        &self,
        pool: PoolId,
        volume: VolumeId,
        size_bytes: u64,
        template: Option<TemplateId>,
    ) -> DriverOutcome;
    async fn delete_volume(&self, pool: PoolId, volume: VolumeId) -> DriverOutcome;
    /// Copies a volume to a snapshot on secondary storage.
    async fn create_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome;
    async fn delete_snapshot(&self, snapshot: SnapshotId) -> DriverOutcome;
    /// Renews `host`'s heartbeat lease on a shared pool (issue: HA fencing).
    async fn heartbeat(&self, pool: PoolId, host: HostId) -> DriverOutcome;
    /// The value `host` last wrote to its lease on `pool`, if ever: opaque (a
    /// stamp in the host's clock or a counter, changed at every renewal).
    async fn read_lease(&self, pool: PoolId, host: HostId) -> Result<Option<u64>, DriverError>;
}

#[async_trait]
pub trait NetworkDriver: Send + Sync {
    /// `vlan`: the guest network's tag (`None`: untagged, or the host's own
    /// per-network setting).
    async fn plug_nic(
        &self,
        host: HostId,
        vm: VmId,
        network: NetworkId,
        mac: Mac,
        ip: Ipv4Addr,
        vlan: Option<u16>,
    ) -> DriverOutcome;
    async fn unplug_nic(&self, host: HostId, vm: VmId, network: NetworkId, mac: Mac) -> DriverOutcome;
    /// Makes sure `host` has `bridge` for `network`'s physical network. Idempotent.
    async fn ensure_network(&self, host: HostId, network: NetworkId, bridge: &str, kind: BridgeKind) -> DriverOutcome;
}

#[async_trait]
pub trait FenceDriver: Send + Sync {
    /// Powers a host off (IPMI, PDU, or a simulated switch). Ok means proven off.
    async fn power_off(&self, host: HostId) -> DriverOutcome;
}

/// One backend: a driver for each concern.
pub struct Drivers<'a> {
    pub compute: &'a dyn ComputeDriver,
    pub storage: &'a dyn StorageDriver,
    pub network: &'a dyn NetworkDriver,
    pub fence: &'a dyn FenceDriver,
}

impl std::fmt::Debug for Drivers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Drivers")
    }
}

/// Executes one call of the controller against a backend.
pub async fn execute(d: &Drivers<'_>, call: &DriverCall) -> DriverResult {
    if let Some(r) = execute_probe(d, call).await {
        return r;
    }
    let r = match call {
        DriverCall::DefineDomain { vm, host, spec } => d.compute.define_domain(*host, *vm, spec).await,
        DriverCall::UndefineDomain { vm, host } => d.compute.undefine_domain(*host, *vm).await,
        DriverCall::StartDomain { vm, host } => d.compute.start_domain(*host, *vm).await,
        DriverCall::StopDomain { vm, host, forced } => d.compute.stop_domain(*host, *vm, *forced).await,
        DriverCall::RebootDomain { vm, host } => d.compute.reboot_domain(*host, *vm).await,
        DriverCall::MigrateDomain { vm, from, to, to_uri } => {
            d.compute.migrate_domain(*from, *to, *vm, to_uri.as_deref()).await
        }
        DriverCall::AttachDisk { vm, host, volume, pool } => d.compute.attach_disk(*host, *vm, *volume, *pool).await,
        DriverCall::DetachDisk { vm, host, volume } => d.compute.detach_disk(*host, *vm, *volume).await,
        DriverCall::CopyTemplate {
            template,
            pool,
            size_bytes,
            source,
        } => {
            d.storage
                .copy_template(*pool, *template, *size_bytes, source.as_ref())
                .await
        }
        DriverCall::CancelCopy { template, pool } => d.storage.cancel_copy(*pool, *template).await,
        DriverCall::CreateTemplate { volume, pool, template } => {
            d.storage.create_template(*pool, *volume, *template).await
        }
        DriverCall::RevertSnapshot { volume, pool, snapshot } => {
            d.storage.revert_snapshot(*pool, *volume, *snapshot).await
        }
        DriverCall::EnsurePool { host, pool, spec } => d.storage.ensure_pool(*host, *pool, spec).await,
        DriverCall::EnsureNetwork {
            host,
            network,
            bridge,
            kind,
        } => d.network.ensure_network(*host, *network, bridge, *kind).await,
        DriverCall::CreateVolume {
            volume,
            pool,
            size_bytes,
            template,
        } => d.storage.create_volume(*pool, *volume, *size_bytes, *template).await,
        DriverCall::DeleteVolume { volume, pool } => d.storage.delete_volume(*pool, *volume).await,
        DriverCall::CreateSnapshot { volume, pool, snapshot } => {
            d.storage.create_snapshot(*pool, *volume, *snapshot).await
        }
        DriverCall::DeleteSnapshot { snapshot } => d.storage.delete_snapshot(*snapshot).await,
        DriverCall::PlugNic {
            vm,
            host,
            network,
            mac,
            ip,
            vlan,
        } => d.network.plug_nic(*host, *vm, *network, *mac, *ip, *vlan).await,
        DriverCall::UnplugNic { vm, host, network, mac } => d.network.unplug_nic(*host, *vm, *network, *mac).await,
        DriverCall::CheckLease { .. } | DriverCall::PingNeighbour { .. } | DriverCall::PowerOff { .. } => {
            unreachable!("answered by execute_probe")
        }
    };
    match r {
        Ok(()) => DriverResult::Ok,
        Err(e) => DriverResult::Failed(e),
    }
}

/// Calls whose answer is a value, not just success.
async fn execute_probe(d: &Drivers<'_>, call: &DriverCall) -> Option<DriverResult> {
    let fail = DriverResult::Failed;
    Some(match call {
        DriverCall::CheckLease { host, pool } => match d.storage.read_lease(*pool, *host).await {
            Ok(renewed_at) => DriverResult::Lease { renewed_at },
            Err(e) => fail(e),
        },
        DriverCall::PingNeighbour { from, target } => match d.compute.ping_neighbour(*from, *target).await {
            Ok(reachable) => DriverResult::Reachable { reachable },
            Err(e) => fail(e),
        },
        DriverCall::PowerOff { host } => match d.fence.power_off(*host).await {
            Ok(()) => DriverResult::Ok,
            Err(e) => fail(e),
        },
        _ => return None,
    })
}
