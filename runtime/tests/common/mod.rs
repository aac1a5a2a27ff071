//! Shared test helpers: a lab cloud, turmoil sockets, invariant checks.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use stratus_agent::AgentConfig;
use stratus_core::Cloud;
use stratus_core::cloud::*;
use stratus_core::controller::{JobId, Request};
use stratus_core::ids::*;
use stratus_core::inventory::*;
use stratus_core::units::GIB;
use stratus_core::vm::{Charge, VmState};
use stratus_link::net::{Connector, Listener};
use stratus_runtime::hosts::{Gateway, GatewayConfig, SIM_EPOCH_MS};
use stratus_sim::backend::SimBackend;
use stratus_sim::world::World;
use stratus_wire::HostFacts;

pub struct Lab {
    pub cloud: Cloud,
    pub zone: ZoneId,
    pub hosts: Vec<HostId>,
    pub names: Vec<String>,
    pub offering: ServiceOfferingId,
    pub template: TemplateId,
    pub account: AccountId,
}

/// One zone; one pod, cluster and NFS pool per `per_cluster` hosts.
pub fn lab(seed: u64, clusters: usize, per_cluster: usize) -> Lab {
    let mut c = Cloud::new(seed);
    let zone = c.add_zone(ZoneSpec::advanced("z1")).unwrap();
    let mut hosts = Vec::new();
    let mut names = Vec::new();
    for ci in 0..clusters {
        let pod = c
            .add_pod(PodSpec::numbered(&format!("p{}", ci + 1), zone, ci as u8 + 1))
            .unwrap();
        let cl = c.add_cluster(&format!("c{}", ci + 1), pod, Hypervisor::Kvm).unwrap();
        for hi in 0..per_cluster {
            let name = format!("h{}", ci * per_cluster + hi + 1);
            hosts.push(
                c.add_host(HostSpec {
                    name: name.clone(),
                    cluster: cl,
                    cpu_cores: 8,
                    cpu_mhz: 2000,
                    memory_bytes: 32 * GIB,
                    tags: vec![],
                })
                .unwrap(),
            );
            names.push(name);
        }
        c.add_pool(PoolSpec {
            name: format!("ps{}", ci + 1),
            zone,
            scope: PoolScopeSpec::Cluster(cl),
            pool_type: PoolType::NetworkFilesystem,
            capacity_bytes: 4096 * GIB,
            tags: vec![],
        })
        .unwrap();
    }
    let offering = c
        .add_service_offering(ServiceOfferingSpec::fixed("small", 1, 1000, 1024))
        .unwrap();
    let template = c
        .add_template(TemplateSpec {
            name: "tiny".into(),
            format: ImageFormat::Qcow2,
            size_bytes: 2 * GIB,
            os_type: "Linux".into(),
            hypervisor: Hypervisor::Kvm,
            is_iso: false,
            ready_in: vec![zone],
        })
        .unwrap();
    let account = c.add_account("alice", None, AccountType::User).unwrap();
    Lab {
        cloud: c,
        zone,
        hosts,
        names,
        offering,
        template,
        account,
    }
}

impl Lab {
    pub fn deploy(&self, name: &str) -> Request {
        Request::Deploy(DeploySpec {
            name: name.into(),
            account: Some(self.account),
            zone: Some(self.zone),
            offering: Some(self.offering),
            template: Some(self.template),
            ha: Some(true),
            start: true,
            ..Default::default()
        })
    }

    pub fn facts(&self, i: usize) -> HostFacts {
        let h = self.cloud.inv.host(self.cloud.inv.find_host(self.hosts[i]).unwrap());
        HostFacts {
            cpu_cores: h.cpu_cores,
            cpu_mhz: h.cpu_mhz_per_core,
            memory_bytes: h.memory_bytes,
            hypervisor_version: "simulated".into(),
            ..Default::default()
        }
    }

    pub fn agent_config(&self, i: usize, server: &str, token: String, seed: u64) -> AgentConfig {
        let mut c = AgentConfig::new(server, self.names[i].clone(), self.facts(i));
        c.token = Some(token);
        c.seed = seed;
        c
    }
}

/// turmoil's listener behind the gateway's socket trait.
pub struct SimListener(pub turmoil::net::TcpListener);

impl Listener for SimListener {
    type Conn = turmoil::net::TcpStream;
    async fn accept(&mut self) -> io::Result<(Self::Conn, SocketAddr)> {
        self.0.accept().await
    }
}

/// turmoil's connector behind the agent's socket trait.
#[derive(Clone, Copy, Debug)]
pub struct SimConnector;

impl Connector for SimConnector {
    type Conn = turmoil::net::TcpStream;
    async fn connect(&self, addr: &str) -> io::Result<Self::Conn> {
        turmoil::net::TcpStream::connect(addr.to_string()).await
    }
}

/// The simulator's invariants, checked on the gateway's ledger and the
/// shared world: at most one running copy of any VM, the capacity audit, no
/// job record lost; `at_rest` (no fault pending) adds that every VM the
/// ledger says is Running runs exactly once, on its host. Returns every breach.
pub fn check_invariants(gw: &Gateway, backend: &SimBackend, submitted: &[JobId], at_rest: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let mut w = backend.world.lock().unwrap();
    for vm in std::mem::take(&mut w.duplicates) {
        bad.push(format!("VM {vm} ran on two hosts at once"));
    }
    for (vm, n) in &w.running_copies {
        if *n > 1 {
            bad.push(format!("VM {vm} has {n} running copies"));
        }
    }
    gw.with_controller(|ctl| {
        let audit = ctl.cloud().audit();
        if !audit.ok() {
            bad.extend(audit.violations.iter().map(|v| format!("audit: {v}")));
        }
        let known: BTreeSet<JobId> = ctl.jobs().iter().map(|j| j.id).collect();
        for j in submitted {
            if !known.contains(j) {
                bad.push(format!("job {j} lost"));
            }
        }
        for (_, vm) in ctl.cloud().vms().filter(|_| at_rest) {
            let running_on: Vec<HostId> = w
                .hosts
                .iter()
                .filter(|(_, h)| h.domains.get(&vm.id).is_some_and(|d| d.running))
                .map(|(id, _)| *id)
                .collect();
            match (vm.state, vm.charge) {
                (VmState::Running, Charge::Used { host }) => {
                    let expected = ctl.cloud().host_id(host);
                    if running_on != vec![expected] {
                        bad.push(format!(
                            "VM {} is Running on {} in the ledger but runs on {:?}",
                            vm.name, expected, running_on
                        ));
                    }
                }
                (VmState::Running, other) => bad.push(format!("VM {} is Running with charge {other:?}", vm.name)),
                _ => {}
            }
        }
    });
    bad
}

/// Credentials per host that survive a simulated host's restart (its "disk").
pub fn disks(n: usize) -> Vec<stratus_agent::CredentialStore> {
    (0..n).map(|_| Arc::new(Mutex::new(None))).collect()
}

pub fn world_of(cloud: &Cloud, seed: u64) -> Arc<SimBackend> {
    Arc::new(SimBackend::new(World::from_cloud(cloud, seed)))
}

/// The management server ("ms", port 7000) and one agent host per lab host
/// on a turmoil network, sharing one simulated world.
pub struct Net {
    pub sim: turmoil::Sim<'static>,
    pub gw: Gateway,
    pub backend: Arc<SimBackend>,
    pub lab: Lab,
    pub stats: Vec<Arc<stratus_agent::AgentStats>>,
    pub submitted: Vec<JobId>,
    pending: Vec<tokio::sync::oneshot::Receiver<stratus_core::controller::Reply>>,
}

pub const MS: &str = "ms";
pub const MS_ADDR: &str = "ms:7000";

/// Who runs the hosts' isolation watchdogs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Watchdogs {
    /// The simulated hardware (`World::ping_round` on the management host's
    /// clock): lease renewals and watchdogs; agents only heartbeat.
    #[default]
    World,
    /// The agents themselves: each renews its lease on its cluster's shared
    /// pools through the backend and runs its own watchdog (the world only
    /// keeps the clock its lease records carry).
    Agents,
}

/// Builds the network. `hooks(i)` may give agent `i` hooks (rebuilt at each restart).
pub fn net(lab: Lab, seed: u64, hooks: impl Fn(usize) -> stratus_agent::Hooks + 'static) -> Net {
    net_with(lab, seed, Watchdogs::World, hooks)
}

/// The shared pools of host `i`'s cluster.
pub fn lease_pools(cloud: &Cloud, host: HostId) -> Vec<PoolId> {
    let inv = &cloud.inv;
    let h = inv.host(inv.find_host(host).unwrap());
    inv.cluster_pools[h.cluster.ix()]
        .iter()
        .map(|p| inv.pool(*p))
        .filter(|p| !p.is_local())
        .map(|p| p.id)
        .collect()
}

pub fn net_with(
    lab: Lab,
    seed: u64,
    watchdogs: Watchdogs,
    hooks: impl Fn(usize) -> stratus_agent::Hooks + 'static,
) -> Net {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(std::time::Duration::from_secs(3600))
        .tick_duration(std::time::Duration::from_millis(10))
        .min_message_latency(std::time::Duration::from_millis(1))
        .max_message_latency(std::time::Duration::from_millis(40))
        .rng_seed(seed)
        .build();
    let backend = world_of(&lab.cloud, seed);
    let gw = Gateway::new(
        stratus_core::controller::Controller::new(lab.cloud.clone()),
        GatewayConfig::seeded(seed),
    )
    .unwrap();
    let ping_ms = (lab
        .cloud
        .settings
        .f64("ping.interval", stratus_core::settings::Scope::Global)
        * 1000.0) as u64;
    {
        let (gw, backend) = (gw.clone(), backend.clone());
        sim.host(MS, move || {
            let (gw, backend) = (gw.clone(), backend.clone());
            async move {
                let listener = turmoil::net::TcpListener::bind("0.0.0.0:7000").await?;
                // The hosts' hardware on the gateway's clock: storage lease
                // renewals and the watchdog (agents' pings go over the network).
                let epoch = tokio::time::Instant::now();
                tokio::spawn(async move {
                    let every = match watchdogs {
                        Watchdogs::World => ping_ms,
                        Watchdogs::Agents => 100,
                    };
                    let mut t = tokio::time::interval(std::time::Duration::from_millis(every));
                    loop {
                        t.tick().await;
                        // The gateway's clock: tokio's since start, from the simulation epoch.
                        let now = SIM_EPOCH_MS + epoch.elapsed().as_millis() as u64;
                        let mut w = backend.world.lock().unwrap();
                        match watchdogs {
                            Watchdogs::World => {
                                w.ping_round(now);
                            }
                            Watchdogs::Agents => w.clock_ms = now,
                        }
                    }
                });
                gw.serve(SimListener(listener)).await?;
                Ok(())
            }
        });
    }
    let hooks = Arc::new(hooks);
    let mut stats = Vec::new();
    for (i, store) in disks(lab.hosts.len()).into_iter().enumerate() {
        let token = gw.issue_token(lab.hosts[i]).unwrap();
        let mut config = lab.agent_config(i, MS_ADDR, token, seed + i as u64);
        if watchdogs == Watchdogs::Agents {
            config.lease_pools = lease_pools(&lab.cloud, lab.hosts[i]);
            config.lease_timeout = std::time::Duration::from_secs(
                lab.cloud
                    .settings
                    .i64("ha.lease.timeout", stratus_core::settings::Scope::Global) as u64,
            );
        }
        let st = Arc::new(stratus_agent::AgentStats::default());
        stats.push(st.clone());
        let (backend, disk, hooks) = (backend.clone(), store, hooks.clone());
        sim.host(lab.names[i].as_str(), move || {
            let agent = stratus_agent::Agent::new(config.clone(), SimConnector, backend.clone(), disk.clone())
                .with_stats(st.clone())
                .with_hooks(hooks(i));
            async move {
                agent.run().await.map_err(|e| e.to_string())?;
                Ok(())
            }
        });
    }
    Net {
        sim,
        gw,
        backend,
        lab,
        stats,
        submitted: Vec::new(),
        pending: Vec::new(),
    }
}

impl Net {
    pub fn now(&self) -> std::time::Duration {
        self.sim.elapsed()
    }

    /// Steps the simulation until `secs` of simulated time have passed.
    pub fn run_until(&mut self, secs: f64) {
        let until = std::time::Duration::from_secs_f64(secs);
        while self.sim.elapsed() < until {
            self.sim.step().unwrap();
            self.collect();
        }
    }

    /// Submits a request through the gateway (answered at the next steps).
    pub fn submit(&mut self, req: Request) {
        let rx = self.gw.input(stratus_core::controller::Input::Request { request: req });
        self.pending.push(rx);
    }

    fn collect(&mut self) {
        let mut still = Vec::new();
        for mut rx in std::mem::take(&mut self.pending) {
            match rx.try_recv() {
                Ok(stratus_core::controller::Reply::Job(Ok(job))) => self.submitted.push(job),
                Ok(_refused) => {}
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => still.push(rx),
                Err(e) => panic!("the gateway dropped a request: {e}"),
            }
        }
        self.pending = still;
    }

    pub fn host_index(&self, name: &str) -> usize {
        self.lab.names.iter().position(|n| n == name).unwrap()
    }

    /// Jobs still pending in the controller.
    pub fn pending_jobs(&self) -> usize {
        self.gw.with_controller(|c| {
            c.jobs()
                .iter()
                .filter(|j| j.status == stratus_core::controller::JobStatus::Pending)
                .count()
        })
    }

    /// Safety invariants (always true).
    pub fn invariants(&self) -> Vec<String> {
        check_invariants(&self.gw, &self.backend, &self.submitted, false)
    }

    /// Safety plus convergence: the ledger matches the world.
    pub fn invariants_at_rest(&self) -> Vec<String> {
        check_invariants(&self.gw, &self.backend, &self.submitted, true)
    }

    /// Panics with the gateway's log tail when `bad` is not empty.
    pub fn assert_clean(&self, bad: &[String]) {
        if !bad.is_empty() {
            let tail = self.gw.log_tail();
            let from = tail.len().saturating_sub(300);
            panic!(
                "invariants broken:\n{}\n--- log tail ---\n{}",
                bad.join("\n"),
                tail[from..].join("\n")
            );
        }
    }
}
