//! The simulated datacenter behind the async driver traits, so anything that
//! drives real hosts (the server's runtime, the host agent) can drive it too.
//! Calls execute against the same `World` the discrete-event engine uses; an
//! unreachable host answers with an error instead of silence.

use crate::world::{Outcome, World};
use async_trait::async_trait;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use stratus_core::controller::effects::{DomainSpec, DriverCall, DriverError, DriverResult, Mac};
use stratus_core::ids::*;
use stratus_drivers::*;

#[derive(Debug)]
pub struct SimBackend {
    pub world: Mutex<World>,
}

impl SimBackend {
    pub fn new(world: World) -> SimBackend {
        SimBackend {
            world: Mutex::new(world),
        }
    }

    fn run(&self, call: DriverCall) -> DriverOutcome {
        let mut w = self.world.lock().expect("world lock");
        match w.execute(&call, 0) {
            Outcome::Reply {
                result: DriverResult::Ok,
                ..
            } => Ok(()),
            Outcome::Reply {
                result: DriverResult::Failed(e),
                ..
            } => Err(e),
            Outcome::Reply { result, .. } => Err(DriverError::refused(format!("unexpected answer {result:?}"))),
            // The world did not apply it: the host is down, hung or cut off.
            Outcome::Silence => Err(DriverError::unavailable(format!(
                "{}: no answer from the host",
                call.name()
            ))),
        }
    }

    fn host(&self, host: HostId) -> Result<(), DriverError> {
        let w = self.world.lock().expect("world lock");
        match w.hosts.get(&host) {
            Some(h) if h.reachable() => Ok(()),
            Some(h) => Err(DriverError::unavailable(format!("host {} does not answer", h.name))),
            None => Err(DriverError::not_found("unknown host")),
        }
    }
}

#[async_trait]
impl ComputeDriver for SimBackend {
    async fn define_domain(&self, host: HostId, vm: VmId, spec: &DomainSpec) -> DriverOutcome {
        self.run(DriverCall::DefineDomain {
            vm,
            host,
            spec: spec.clone(),
        })
    }
    async fn undefine_domain(&self, host: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::UndefineDomain { vm, host })
    }
    async fn start_domain(&self, host: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::StartDomain { vm, host })
    }
    async fn stop_domain(&self, host: HostId, vm: VmId, forced: bool) -> DriverOutcome {
        self.run(DriverCall::StopDomain { vm, host, forced })
    }
    async fn reboot_domain(&self, host: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::RebootDomain { vm, host })
    }
    async fn migrate_domain(&self, from: HostId, to: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::MigrateDomain { vm, from, to })
    }
    async fn attach_disk(&self, host: HostId, vm: VmId, volume: VolumeId, pool: PoolId) -> DriverOutcome {
        self.run(DriverCall::AttachDisk { vm, host, volume, pool })
    }
    async fn detach_disk(&self, host: HostId, vm: VmId, volume: VolumeId) -> DriverOutcome {
        self.run(DriverCall::DetachDisk { vm, host, volume })
    }
    async fn query_domains(&self, host: HostId) -> Result<Vec<DomainReport>, DriverError> {
        self.host(host)?;
        let w = self.world.lock().expect("world lock");
        Ok(w.hosts[&host]
            .domains
            .iter()
            .map(|(vm, d)| DomainReport {
                vm: *vm,
                running: d.running,
            })
            .collect())
    }
    async fn ping_neighbour(&self, from: HostId, target: HostId) -> Result<bool, DriverError> {
        self.host(from)?;
        let mut w = self.world.lock().expect("world lock");
        match w.answer_probe(&DriverCall::PingNeighbour { from, target }) {
            Some(DriverResult::Reachable { reachable }) => Ok(reachable),
            other => Err(DriverError::refused(format!("unexpected answer {other:?}"))),
        }
    }
    async fn host_facts(&self, host: HostId) -> Result<HostFacts, DriverError> {
        self.host(host)?;
        let w = self.world.lock().expect("world lock");
        let (cpu_cores, cpu_mhz, memory_bytes) = w.hosts[&host].facts;
        Ok(HostFacts {
            cpu_cores,
            cpu_mhz,
            memory_bytes,
            hypervisor_version: "simulated".into(),
        })
    }
}

#[async_trait]
impl StorageDriver for SimBackend {
    async fn copy_template(&self, pool: PoolId, template: TemplateId, size_bytes: u64) -> DriverOutcome {
        self.run(DriverCall::CopyTemplate {
            template,
            pool,
            size_bytes,
        })
    }
    async fn create_volume(
        &self,
        pool: PoolId,
        volume: VolumeId,
        size_bytes: u64,
        template: Option<TemplateId>,
    ) -> DriverOutcome {
        self.run(DriverCall::CreateVolume {
            volume,
            pool,
            size_bytes,
            template,
        })
    }
    async fn delete_volume(&self, pool: PoolId, volume: VolumeId) -> DriverOutcome {
        self.run(DriverCall::DeleteVolume { volume, pool })
    }
    async fn create_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome {
        self.run(DriverCall::CreateSnapshot { volume, pool, snapshot })
    }
    async fn delete_snapshot(&self, snapshot: SnapshotId) -> DriverOutcome {
        self.run(DriverCall::DeleteSnapshot { snapshot })
    }
    async fn read_lease(&self, pool: PoolId, host: HostId) -> Result<Option<u64>, DriverError> {
        let mut w = self.world.lock().expect("world lock");
        match w.answer_probe(&DriverCall::CheckLease { host, pool }) {
            Some(DriverResult::Lease { renewed_at }) => Ok(renewed_at),
            Some(DriverResult::Failed(e)) => Err(e),
            other => Err(DriverError::refused(format!("unexpected answer {other:?}"))),
        }
    }
    async fn heartbeat(&self, pool: PoolId, host: HostId) -> DriverOutcome {
        self.host(host)?;
        let mut w = self.world.lock().expect("world lock");
        let now = w.clock_ms;
        w.renew_lease(host, pool, now);
        match w.pools.get(&pool) {
            Some(p) if !p.down => Ok(()),
            Some(p) => Err(DriverError::unavailable(format!(
                "storage pool {} is unavailable",
                p.name
            ))),
            None => Err(DriverError::not_found("unknown storage pool")),
        }
    }
}

#[async_trait]
impl NetworkDriver for SimBackend {
    async fn plug_nic(&self, host: HostId, vm: VmId, network: NetworkId, mac: Mac, ip: Ipv4Addr) -> DriverOutcome {
        self.run(DriverCall::PlugNic {
            vm,
            host,
            network,
            mac,
            ip,
        })
    }
    async fn unplug_nic(&self, host: HostId, vm: VmId, network: NetworkId, mac: Mac) -> DriverOutcome {
        self.run(DriverCall::UnplugNic { vm, host, network, mac })
    }
}

#[async_trait]
impl FenceDriver for SimBackend {
    async fn power_off(&self, host: HostId) -> DriverOutcome {
        let mut w = self.world.lock().expect("world lock");
        if !w.hosts.contains_key(&host) {
            return Err(DriverError::not_found("unknown host"));
        }
        w.crash_host(host);
        Ok(())
    }
}
