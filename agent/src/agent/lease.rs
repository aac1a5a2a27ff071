//! The storage lease and the watchdog.

use super::{AgentStats, Backend};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use stratus_core::ids::{HostId, PoolId, VmId};
use tokio::time::Instant;

/// Renews the host's lease on its shared pools every ping interval; with no
/// renewal for `lease_timeout`, stops every running domain (the watchdog), so
/// the management server may restart them elsewhere once the lease is stale.
pub(super) async fn lease_loop<B: Backend>(
    backend: Arc<B>,
    host: HostId,
    pools: Vec<PoolId>,
    every: Duration,
    lease_timeout: Duration,
    stats: Arc<AgentStats>,
) {
    let mut last_ok = Instant::now();
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let mut renewed = false;
        for p in &pools {
            renewed |= backend.heartbeat(*p, host).await.is_ok();
        }
        if renewed {
            last_ok = Instant::now();
        } else if last_ok.elapsed() >= lease_timeout {
            let Ok(domains) = backend.query_domains(host).await else {
                continue;
            };
            let running: Vec<VmId> = domains.into_iter().filter(|d| d.running).map(|d| d.vm).collect();
            if !running.is_empty() {
                stats.self_fenced.fetch_add(1, Relaxed);
            }
            for vm in running {
                let _ = backend.stop_domain(host, vm, true).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_core::controller::effects::{DomainSpec, DriverCall};
    use stratus_sim::backend::SimBackend;
    use stratus_sim::world::{SimHost, SimPool, World};

    #[tokio::test(start_paused = true)]
    async fn stops_the_vms_when_no_lease_can_be_renewed() {
        let (host, pool, vm) = (
            HostId(uuid::Uuid::from_u128(1)),
            PoolId(uuid::Uuid::from_u128(2)),
            VmId(uuid::Uuid::from_u128(3)),
        );
        let mut w = World::new(1);
        w.hosts.insert(
            host,
            SimHost {
                name: "h1".into(),
                ..Default::default()
            },
        );
        w.pools.insert(pool, SimPool::default());
        let spec = DomainSpec {
            name: "i-1".into(),
            cpu: 1,
            mhz: 1000,
            memory_mb: 512,
            disks: vec![],
            nics: vec![],
        };
        w.execute(&DriverCall::DefineDomain { vm, host, spec }, 0);
        w.execute(&DriverCall::StartDomain { vm, host }, 0);
        let backend = Arc::new(SimBackend::new(w));
        let stats = Arc::new(AgentStats::default());
        let every = Duration::from_secs(1);
        let task = tokio::spawn(lease_loop(
            backend.clone(),
            host,
            vec![pool],
            every,
            Duration::from_secs(3),
            stats.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            backend.world.lock().unwrap().running_copies.get(&vm),
            Some(&1),
            "the lease renews"
        );
        backend.world.lock().unwrap().pools.get_mut(&pool).unwrap().down = true;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            backend.world.lock().unwrap().total_running(),
            1,
            "not before the lease timeout"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            backend.world.lock().unwrap().total_running(),
            0,
            "the watchdog stopped the VM"
        );
        assert_eq!(stats.self_fenced.load(Relaxed), 1);
        task.abort();
    }
}
