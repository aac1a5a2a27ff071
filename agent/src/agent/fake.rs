//! A tiny in-memory host for the agent's unit tests (the agent does not link
//! the simulator): domains that run or not, and storage that works or not.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use stratus_drivers::*;
use stratus_wire::ids::*;
use stratus_wire::{DomainSpec, HostFacts, Mac};

#[derive(Debug)]
pub(crate) struct FakeHost {
    domains: Mutex<BTreeMap<VmId, bool>>,
    storage_up: AtomicBool,
    /// Lease renewals that succeeded.
    heartbeats: AtomicU64,
    /// Stopping a domain fails (a wedged hypervisor).
    stop_fails: AtomicBool,
}

impl FakeHost {
    pub fn with_running(vms: &[VmId]) -> FakeHost {
        FakeHost {
            domains: Mutex::new(vms.iter().map(|vm| (*vm, true)).collect()),
            storage_up: AtomicBool::new(true),
            heartbeats: AtomicU64::new(0),
            stop_fails: AtomicBool::new(false),
        }
    }

    pub fn set_storage(&self, up: bool) {
        self.storage_up.store(up, Relaxed);
    }

    pub fn heartbeats(&self) -> u64 {
        self.heartbeats.load(Relaxed)
    }

    pub fn set_stop_fails(&self, fails: bool) {
        self.stop_fails.store(fails, Relaxed);
    }

    /// Starts (or restarts) a domain, as an operator or a stray call would.
    pub fn start(&self, vm: VmId) {
        self.domains.lock().unwrap().insert(vm, true);
    }

    pub fn running(&self) -> Vec<VmId> {
        let d = self.domains.lock().unwrap();
        d.iter().filter(|(_, r)| **r).map(|(vm, _)| *vm).collect()
    }

    fn set(&self, vm: VmId, running: Option<bool>) -> DriverOutcome {
        let mut d = self.domains.lock().unwrap();
        match running {
            Some(r) => d.insert(vm, r),
            None => d.remove(&vm),
        };
        Ok(())
    }
}

#[async_trait]
impl ComputeDriver for FakeHost {
    async fn define_domain(&self, _: HostId, vm: VmId, _: &DomainSpec) -> DriverOutcome {
        self.set(vm, Some(false))
    }
    async fn undefine_domain(&self, _: HostId, vm: VmId) -> DriverOutcome {
        self.set(vm, None)
    }
    async fn start_domain(&self, _: HostId, vm: VmId) -> DriverOutcome {
        self.set(vm, Some(true))
    }
    async fn stop_domain(&self, _: HostId, vm: VmId, _: bool) -> DriverOutcome {
        if self.stop_fails.load(Relaxed) {
            return Err(DriverError::unavailable("the hypervisor does not answer"));
        }
        self.set(vm, None)
    }
    async fn reboot_domain(&self, _: HostId, _: VmId) -> DriverOutcome {
        Ok(())
    }
    async fn migrate_domain(&self, _: HostId, _: HostId, vm: VmId, _: Option<&str>) -> DriverOutcome {
        self.set(vm, None)
    }
    async fn attach_disk(&self, _: HostId, _: VmId, _: VolumeId, _: PoolId) -> DriverOutcome {
        Ok(())
    }
    async fn detach_disk(&self, _: HostId, _: VmId, _: VolumeId) -> DriverOutcome {
        Ok(())
    }
    async fn query_domains(&self, _: HostId) -> Result<Vec<DomainReport>, DriverError> {
        let d = self.domains.lock().unwrap();
        Ok(d.iter().map(|(vm, r)| DomainReport { vm: *vm, running: *r }).collect())
    }
    async fn ping_neighbour(&self, _: HostId, _: HostId) -> Result<bool, DriverError> {
        Ok(true)
    }
    async fn host_facts(&self, _: HostId) -> Result<HostFacts, DriverError> {
        Ok(HostFacts {
            cpu_cores: 1,
            cpu_mhz: 1000,
            memory_bytes: 1 << 30,
            hypervisor_version: "fake".into(),
            ..Default::default()
        })
    }
}

#[async_trait]
impl StorageDriver for FakeHost {
    async fn copy_template(&self, _: PoolId, _: TemplateId, _: u64, _: Option<&ImageSource>) -> DriverOutcome {
        Ok(())
    }
    async fn cancel_copy(&self, _: PoolId, _: TemplateId) -> DriverOutcome {
        Err(DriverError::not_found("no copy in progress"))
    }
    async fn copy_progress(&self, _: PoolId, _: TemplateId) -> Option<CopyProgress> {
        None
    }
    async fn create_template(&self, _: PoolId, _: VolumeId, _: TemplateId) -> DriverOutcome {
        Ok(())
    }
    async fn revert_snapshot(&self, _: PoolId, _: VolumeId, _: SnapshotId) -> DriverOutcome {
        Ok(())
    }
    async fn ensure_pool(&self, _: HostId, _: PoolId, _: &PoolSpec) -> DriverOutcome {
        Ok(())
    }
    async fn create_volume(&self, _: PoolId, _: VolumeId, _: u64, _: Option<TemplateId>) -> DriverOutcome {
        Ok(())
    }
    async fn delete_volume(&self, _: PoolId, _: VolumeId) -> DriverOutcome {
        Ok(())
    }
    async fn create_snapshot(&self, _: PoolId, _: VolumeId, _: SnapshotId) -> DriverOutcome {
        Ok(())
    }
    async fn delete_snapshot(&self, _: SnapshotId) -> DriverOutcome {
        Ok(())
    }
    async fn heartbeat(&self, _: PoolId, _: HostId) -> DriverOutcome {
        if self.storage_up.load(Relaxed) {
            self.heartbeats.fetch_add(1, Relaxed);
            Ok(())
        } else {
            Err(DriverError::unavailable("storage is down"))
        }
    }
    async fn read_lease(&self, _: PoolId, _: HostId) -> Result<Option<u64>, DriverError> {
        Ok(None)
    }
}

#[async_trait]
impl NetworkDriver for FakeHost {
    async fn plug_nic(&self, _: HostId, _: VmId, _: NetworkId, _: Mac, _: Ipv4Addr) -> DriverOutcome {
        Ok(())
    }
    async fn unplug_nic(&self, _: HostId, _: VmId, _: NetworkId, _: Mac) -> DriverOutcome {
        Ok(())
    }
    async fn ensure_network(&self, _: HostId, _: NetworkId, _: &str, _: BridgeKind) -> DriverOutcome {
        Ok(())
    }
}

#[async_trait]
impl FenceDriver for FakeHost {
    async fn power_off(&self, _: HostId) -> DriverOutcome {
        Err(DriverError::refused("no fence device"))
    }
}
