//! The simulated datacenter behind the async driver traits, so anything that
//! drives real hosts (the server's runtime, the host agent) can drive it too.
//! Calls execute against the same `World` the discrete-event engine uses; an
//! unreachable host answers with an error instead of silence.

use crate::world::{Outcome, World};
use async_trait::async_trait;
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use stratus_core::controller::effects::{DomainSpec, DriverCall, DriverError, DriverResult, Mac};
use stratus_core::ids::*;
use stratus_drivers::*;

/// Where the world is kept (the fleet's state file). A call that changed the
/// world is answered only once the world including it is saved, as a real
/// host's disk keeps what it did: a crash of the process that runs the
/// simulated hosts never loses work the controller was told is done.
pub trait Durability: Send + Sync + std::fmt::Debug {
    /// Resolves once the world at `generation` (or a later one) is saved.
    fn saved(&self, generation: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

#[derive(Debug)]
pub struct SimBackend {
    pub world: Mutex<World>,
    durability: OnceLock<Arc<dyn Durability>>,
}

impl SimBackend {
    pub fn new(world: World) -> SimBackend {
        SimBackend {
            world: Mutex::new(world),
            durability: OnceLock::new(),
        }
    }

    /// Answers wait for `d` from now on (set once).
    pub fn set_durability(&self, d: Arc<dyn Durability>) {
        let _ = self.durability.set(d);
    }

    /// Waits until the change that made `generation` is saved, if it matters.
    async fn durable(&self, generation: Option<u64>) {
        if let (Some(g), Some(d)) = (generation, self.durability.get()) {
            d.saved(g).await;
        }
    }

    async fn run(&self, call: DriverCall) -> DriverOutcome {
        let (out, generation) = self.run_now(call);
        self.durable(generation).await;
        out
    }

    /// Executes at once: the answer and, when the world changed, its generation.
    fn run_now(&self, call: DriverCall) -> (DriverOutcome, Option<u64>) {
        let mut w = self.world.lock().expect("world lock");
        let before = w.generation;
        let out = Self::outcome(&mut w, &call);
        (out, (w.generation != before).then_some(w.generation))
    }

    fn outcome(w: &mut World, call: &DriverCall) -> DriverOutcome {
        match w.execute(call, 0) {
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
        .await
    }
    async fn undefine_domain(&self, host: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::UndefineDomain { vm, host }).await
    }
    async fn start_domain(&self, host: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::StartDomain { vm, host }).await
    }
    async fn stop_domain(&self, host: HostId, vm: VmId, forced: bool) -> DriverOutcome {
        self.run(DriverCall::StopDomain { vm, host, forced }).await
    }
    async fn reboot_domain(&self, host: HostId, vm: VmId) -> DriverOutcome {
        self.run(DriverCall::RebootDomain { vm, host }).await
    }
    async fn migrate_domain(&self, from: HostId, to: HostId, vm: VmId, to_uri: Option<&str>) -> DriverOutcome {
        let to_uri = to_uri.map(str::to_string);
        self.run(DriverCall::MigrateDomain { vm, from, to, to_uri }).await
    }
    async fn attach_disk(&self, host: HostId, vm: VmId, volume: VolumeId, pool: PoolId) -> DriverOutcome {
        self.run(DriverCall::AttachDisk { vm, host, volume, pool }).await
    }
    async fn detach_disk(&self, host: HostId, vm: VmId, volume: VolumeId) -> DriverOutcome {
        self.run(DriverCall::DetachDisk { vm, host, volume }).await
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
            ..Default::default()
        })
    }
}

#[async_trait]
impl StorageDriver for SimBackend {
    async fn copy_template(
        &self,
        pool: PoolId,
        template: TemplateId,
        size_bytes: u64,
        source: Option<&ImageSource>,
    ) -> DriverOutcome {
        self.run(DriverCall::CopyTemplate {
            template,
            pool,
            size_bytes,
            source: source.cloned(),
        })
        .await
    }
    async fn cancel_copy(&self, pool: PoolId, template: TemplateId) -> DriverOutcome {
        self.run(DriverCall::CancelCopy { template, pool }).await
    }
    async fn copy_progress(&self, _: PoolId, _: TemplateId) -> Option<CopyProgress> {
        // The world copies at once (its latency is in the answer's time).
        None
    }
    async fn create_template(&self, pool: PoolId, volume: VolumeId, template: TemplateId) -> DriverOutcome {
        self.run(DriverCall::CreateTemplate { volume, pool, template }).await
    }
    async fn revert_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome {
        self.run(DriverCall::RevertSnapshot { volume, pool, snapshot }).await
    }
    async fn ensure_pool(&self, host: HostId, pool: PoolId, spec: &PoolSpec) -> DriverOutcome {
        self.run(DriverCall::EnsurePool {
            host,
            pool,
            spec: spec.clone(),
        })
        .await
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
        .await
    }
    async fn delete_volume(&self, pool: PoolId, volume: VolumeId) -> DriverOutcome {
        self.run(DriverCall::DeleteVolume { volume, pool }).await
    }
    async fn create_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome {
        self.run(DriverCall::CreateSnapshot { volume, pool, snapshot }).await
    }
    async fn delete_snapshot(&self, snapshot: SnapshotId) -> DriverOutcome {
        self.run(DriverCall::DeleteSnapshot { snapshot }).await
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
    async fn plug_nic(
        &self,
        host: HostId,
        vm: VmId,
        network: NetworkId,
        mac: Mac,
        ip: Ipv4Addr,
        vlan: Option<u16>,
    ) -> DriverOutcome {
        self.run(DriverCall::PlugNic {
            vm,
            host,
            network,
            mac,
            ip,
            vlan,
        })
        .await
    }
    async fn unplug_nic(&self, host: HostId, vm: VmId, network: NetworkId, mac: Mac) -> DriverOutcome {
        self.run(DriverCall::UnplugNic { vm, host, network, mac }).await
    }
    async fn ensure_network(&self, host: HostId, network: NetworkId, bridge: &str, kind: BridgeKind) -> DriverOutcome {
        self.run(DriverCall::EnsureNetwork {
            host,
            network,
            bridge: bridge.to_string(),
            kind,
        })
        .await
    }
}

#[async_trait]
impl FenceDriver for SimBackend {
    async fn power_off(&self, host: HostId) -> DriverOutcome {
        let generation = {
            let mut w = self.world.lock().expect("world lock");
            if !w.hosts.contains_key(&host) {
                return Err(DriverError::not_found("unknown host"));
            }
            w.crash_host(host);
            w.generation
        };
        self.durable(Some(generation)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records which generations had to be saved before an answer.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<u64>>);

    impl Durability for Recorder {
        fn saved(&self, generation: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            self.0.lock().unwrap().push(generation);
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn a_change_is_saved_before_its_answer_and_a_read_is_not_waited_for() {
        let mut world = World::new(1);
        let pool = PoolId(stratus_core::uuid::Uuid::from_u128(7));
        world.pools.insert(pool, crate::world::SimPool::default());
        let b = SimBackend::new(world);
        let rec = Arc::new(Recorder::default());
        b.set_durability(rec.clone());
        let vol = VolumeId(stratus_core::uuid::Uuid::from_u128(8));
        b.create_volume(pool, vol, 1 << 30, None).await.unwrap();
        let g = b.world.lock().unwrap().generation;
        assert_eq!(*rec.0.lock().unwrap(), [g]);
        // A lease read changes nothing: no wait.
        let _ = b.read_lease(pool, HostId(stratus_core::uuid::Uuid::from_u128(9))).await;
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_simulator_speaks_the_real_drivers_extra_calls() {
        use stratus_core::uuid::Uuid;
        let (host, pool) = (HostId(Uuid::from_u128(1)), PoolId(Uuid::from_u128(2)));
        let (vm, vol) = (VmId(Uuid::from_u128(3)), VolumeId(Uuid::from_u128(4)));
        let (tpl, snap, net) = (
            TemplateId(Uuid::from_u128(5)),
            SnapshotId(Uuid::from_u128(6)),
            NetworkId(Uuid::from_u128(7)),
        );
        let mut world = World::new(1);
        world.pools.insert(pool, crate::world::SimPool::default());
        world.hosts.insert(host, crate::world::SimHost::default());
        let b = SimBackend::new(world);
        let spec = PoolSpec::QemuNfs {
            server: "127.0.0.1".into(),
            export: "/primary".into(),
            local_path: None,
        };
        b.ensure_pool(host, pool, &spec).await.unwrap();
        b.ensure_network(host, net, "cloudbr0", BridgeKind::OvsNetdev)
            .await
            .unwrap();
        {
            let w = b.world.lock().unwrap();
            assert!(w.hosts[&host].attached_pools.contains(&pool));
            assert!(w.hosts[&host].bridges.contains("cloudbr0"));
        }
        // Copies complete at once: nothing to cancel, no progress.
        b.copy_template(pool, tpl, 1 << 20, None).await.unwrap();
        assert_eq!(b.cancel_copy(pool, tpl).await.unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(b.copy_progress(pool, tpl).await, None);
        b.create_volume(pool, vol, 1 << 30, Some(tpl)).await.unwrap();
        b.create_snapshot(pool, vol, snap).await.unwrap();
        // A running domain's disk is neither templated nor reverted.
        let dspec = DomainSpec {
            name: "v".into(),
            cpu: 1,
            mhz: 1000,
            memory_mb: 128,
            disks: vec![(vol, pool)],
            nics: vec![],
            devices: Default::default(),
        };
        b.define_domain(host, vm, &dspec).await.unwrap();
        b.start_domain(host, vm).await.unwrap();
        let tpl2 = TemplateId(Uuid::from_u128(8));
        assert_eq!(
            b.create_template(pool, vol, tpl2).await.unwrap_err().kind,
            ErrorKind::Refused
        );
        assert_eq!(
            b.revert_snapshot(pool, vol, snap).await.unwrap_err().kind,
            ErrorKind::Refused
        );
        b.stop_domain(host, vm, false).await.unwrap();
        b.create_template(pool, vol, tpl2).await.unwrap();
        assert!(b.world.lock().unwrap().templates.contains(&tpl2));
        b.revert_snapshot(pool, vol, snap).await.unwrap();
        let gone = SnapshotId(Uuid::from_u128(9));
        assert_eq!(
            b.revert_snapshot(pool, vol, gone).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        // A pool that is down cannot be ensured.
        b.world.lock().unwrap().pools.get_mut(&pool).unwrap().down = true;
        assert_eq!(
            b.ensure_pool(host, pool, &spec).await.unwrap_err().kind,
            ErrorKind::Unavailable
        );
    }
}
