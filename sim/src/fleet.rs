//! The simulated hosts of `stratus serve` (feature `agent`), like
//! CloudStack's Simulator hypervisor but through the code that ships: every
//! host is a real agent (`stratus-agent`: TLS, enrollment, heartbeats,
//! leases, watchdog) connected to the management gateway, all over one
//! shared simulated [`World`], as `stratus agent --sim-world` runs them.
//! Unlike `--sim-world`, the inventory grows while it runs (hosts and pools
//! added through the API: [`SimFleet::ensure_host`], [`SimFleet::sync`]),
//! faults are injected at runtime ([`FleetFault`], like `configureSimulator`),
//! and the world and the agents' credentials are kept in a state file so a
//! restarted server finds its VMs still running and its agents reconnect
//! without new tokens. The file is written ahead of the answers: a call that
//! changed the world answers once a save holds it (`fleet_io::SaveBarrier`), as a
//! real host's disk keeps what it did when the management server dies.
//!
//! Faults map onto the world: a crash is `World::crash_host` (domains gone,
//! the agent stops; recovery starts a fresh agent on the empty host); a
//! partition cuts the agent's link to management and nothing else (the host
//! keeps renewing its storage leases and neighbours still reach it, as the
//! world models a partition), so the controller sees it `Disconnected` and
//! restarts nothing; a storage outage marks the pool down; failed calls are
//! `World::fail_next`.

use crate::agent_world::{HostAgent, epoch_ms};
use crate::backend::SimBackend;
use crate::fleet_io::{CutConnector, FORMAT, FleetFile, SaveBarrier, SavedAgent};
use crate::world::{FailNext, World};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use stratus_agent::{AgentStats, CredentialStore, Credentials, Hooks};
use stratus_core::Cloud;
use stratus_core::ids::{HostId, PoolId};
use tokio::task::AbortHandle;

/// Every `DriverCall` variant name (the wire's one list), what
/// [`FleetFault::FailCalls`] accepts.
pub const CALL_KINDS: &[&str] = stratus_core::controller::effects::DriverCall::NAMES;

/// Investigation and fencing probes: the world answers them from its state
/// (use a partition, crash or storage outage to change the answers).
const PROBES: [&str; 3] = ["CheckLease", "PingNeighbour", "PowerOff"];

/// A fault to inject (or lift) at runtime. Serde form: an object tagged by
/// `"fault"`, e.g. `{"fault":"crash_host","host":"…"}`,
/// `{"fault":"fail_calls","call":"StartDomain","count":1}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum FleetFault {
    /// The host powers off: its domains are gone, its agent stops.
    CrashHost {
        host: HostId,
    },
    /// A crashed host powers on, empty; a fresh agent reconnects.
    RecoverHost {
        host: HostId,
    },
    /// The host's link to management is cut (storage and neighbours still reach it).
    PartitionHost {
        host: HostId,
    },
    HealHost {
        host: HostId,
    },
    /// The pool is unreachable: calls on it fail, leases on it are not renewed.
    StorageOutage {
        pool: PoolId,
    },
    StorageRestore {
        pool: PoolId,
    },
    /// The next `count` calls of this kind (a `DriverCall` variant name) fail
    /// (refused: "injected failure"); with `host`, only calls on that host
    /// (storage calls name no host: give none). `count` 0 removes the rule.
    FailCalls {
        #[serde(default)]
        host: Option<HostId>,
        call: String,
        count: u32,
    },
    /// Lifts every fault: failures forgotten, pools restored, partitions
    /// healed, crashed hosts recovered.
    ClearFaults,
}

/// One host as the fleet sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FleetHost {
    pub id: HostId,
    pub name: String,
    /// Its agent runs (connected or between connections).
    pub agent_running: bool,
    /// It holds credentials (enrolled; reconnects without a token).
    pub enrolled: bool,
    /// Sessions its agents established since the fleet started.
    pub sessions: u64,
    pub crashed: bool,
    pub partitioned: bool,
    pub running_domains: usize,
    /// The agent's last note (connected, lost, retrying, stopped: why).
    pub note: Option<String>,
}

/// One host's agent and what outlives it.
#[derive(Debug)]
struct Slot {
    creds: CredentialStore,
    cut: Arc<AtomicBool>,
    stats: Arc<AgentStats>,
    /// How to start its agent (known once `ensure_host` saw the host).
    spec: Option<HostAgent>,
    agent: Option<AbortHandle>,
    note: Arc<Mutex<Option<String>>>,
}

impl Slot {
    fn new(saved: SavedAgent) -> Slot {
        Slot {
            creds: Arc::new(Mutex::new(saved.credentials)),
            cut: Arc::new(AtomicBool::new(saved.partitioned)),
            stats: Arc::default(),
            spec: None,
            agent: None,
            note: Arc::default(),
        }
    }

    fn running(&self) -> bool {
        self.agent.as_ref().is_some_and(|a| !a.is_finished())
    }

    fn stop_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            a.abort();
        }
    }
}

#[derive(Debug, Default)]
struct State {
    slots: BTreeMap<HostId, Slot>,
    stopped: bool,
}

#[derive(Debug)]
struct Inner {
    server: String,
    seed: u64,
    latency_ms: (u64, u64),
    backend: Arc<SimBackend>,
    rt: tokio::runtime::Handle,
    /// Lock order: `state` before the world, never the other way round.
    state: Mutex<State>,
    file: Option<PathBuf>,
    /// One writer of the state file at a time (the saver, enrollments, shutdown).
    write: Mutex<()>,
    /// What is in the file: changed calls wait on it before they answer.
    barrier: Arc<SaveBarrier>,
    /// Bumped by changes outside the world (credentials, partitions).
    changes: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// The simulated hosts: a cheap, cloneable handle (Send + Sync).
#[derive(Clone, Debug)]
pub struct SimFleet {
    inner: Arc<Inner>,
}

/// How often the state file is written at most while things change.
const SAVE_EVERY: Duration = Duration::from_millis(200);

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fleet state lock")
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.backend.world.lock().expect("world lock")
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Writes the state file now (if there is one): the world generation saved.
    fn save(&self) -> Result<u64, String> {
        let Some(path) = &self.file else { return Ok(0) };
        let _one = self.write.lock().expect("fleet write lock");
        let agents = self
            .state()
            .slots
            .iter()
            .map(|(id, s)| {
                let saved = SavedAgent {
                    credentials: s.creds.lock().expect("creds lock").clone(),
                    partitioned: s.cut.load(Ordering::SeqCst),
                };
                (*id, saved)
            })
            .collect();
        let world = self.world().clone();
        let generation = world.generation;
        FleetFile {
            format: FORMAT,
            world,
            agents,
        }
        .save(path)?;
        self.barrier.published(generation);
        Ok(generation)
    }

    /// Starts the host's agent (fresh: no answer cache, a new watchdog).
    fn spawn_agent(self: &Arc<Self>, host: HostId, slot: &mut Slot) {
        let Some(spec) = slot.spec.clone() else { return };
        let weak: Weak<Inner> = Arc::downgrade(self);
        let store = slot.creds.clone();
        let on_enrolled = move |c: &Credentials| {
            // Saved at once: the token is used up, so these are the host's
            // only way back in.
            *store.lock().expect("creds lock") = Some(c.clone());
            if let Some(inner) = weak.upgrade() {
                inner.changed();
                if let Err(e) = inner.save() {
                    eprintln!("fleet: cannot save the credentials of {host}: {e}");
                }
            }
        };
        let b = self.backend.clone();
        // The pools the world says it holds a lease on: `sync` may add some.
        let lease_pools = move || {
            let w = b.world.lock().expect("world lock");
            w.hosts
                .get(&host)
                .map(|h| h.leases.iter().map(|(p, _)| *p).collect())
                .unwrap_or_default()
        };
        let note = slot.note.clone();
        let on_note = move |text: &str| *note.lock().expect("note lock") = Some(text.to_string());
        let hooks = Hooks {
            on_enrolled: Some(Box::new(on_enrolled)),
            lease_pools: Some(Box::new(lease_pools)),
            on_note: Some(Box::new(on_note)),
            ..Default::default()
        };
        let connector = CutConnector { cut: slot.cut.clone() };
        let agent = spec.build(
            connector,
            self.backend.clone(),
            slot.creds.clone(),
            slot.stats.clone(),
            hooks,
        );
        let note = slot.note.clone();
        let task = self.rt.spawn(async move {
            if let Err(e) = agent.run().await {
                *note.lock().expect("note lock") = Some(format!("stopped: {e}"));
            }
        });
        slot.agent = Some(task.abort_handle());
    }

    fn track(&self, h: AbortHandle) {
        self.tasks.lock().expect("tasks lock").push(h);
    }
}

impl Drop for Inner {
    /// The last handle is gone without `shutdown`: the agents stop too
    /// (nothing is saved; `shutdown` does that).
    fn drop(&mut self) {
        if let Ok(st) = self.state.get_mut() {
            st.slots.values_mut().for_each(Slot::stop_agent);
        }
        if let Ok(tasks) = self.tasks.get_mut() {
            tasks.drain(..).for_each(|t| t.abort());
        }
    }
}

fn unknown_host(host: HostId) -> String {
    format!("unknown host {host}: not in the simulated fleet")
}

fn unknown_pool(pool: PoolId) -> String {
    format!("unknown storage pool {pool}: not in the simulated fleet")
}

impl SimFleet {
    /// The fleet over `cloud`'s inventory, its world loaded from `state_file`
    /// when that exists (then completed with whatever `cloud` has more).
    /// No agent runs until [`SimFleet::ensure_host`]. Call inside a tokio
    /// runtime: the fleet's tasks (world clock, saver, agents) run on it.
    pub fn start(
        server_addr: String,
        cloud: &Cloud,
        seed: u64,
        latency_ms: (u64, u64),
        state_file: Option<PathBuf>,
    ) -> Result<SimFleet, String> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| "the simulated fleet needs a tokio runtime".to_string())?;
        let loaded = match &state_file {
            Some(p) => FleetFile::load(p)?,
            None => None,
        };
        let (mut world, saved) = match loaded {
            Some(f) => (f.world, f.agents),
            None => (World::from_cloud(cloud, seed), BTreeMap::new()),
        };
        world.sync_inventory(cloud);
        // Lease records carry the world's clock: the management server's (epoch ms).
        world.clock_ms = epoch_ms();
        let state = State {
            slots: saved.into_iter().map(|(id, s)| (id, Slot::new(s))).collect(),
            stopped: false,
        };
        let inner = Arc::new(Inner {
            server: server_addr,
            seed,
            latency_ms,
            backend: Arc::new(SimBackend::new(world)),
            rt,
            state: Mutex::new(state),
            file: state_file,
            write: Mutex::new(()),
            barrier: Arc::new(SaveBarrier::new()),
            changes: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let fleet = SimFleet { inner };
        fleet.spawn_clock();
        if fleet.inner.file.is_some() {
            fleet.inner.save()?; // the file exists (and is writable) from the start
            fleet.inner.backend.set_durability(fleet.inner.barrier.clone());
            fleet.spawn_saver();
        }
        Ok(fleet)
    }

    /// Keeps the world's clock on the wall clock, and stops the agent of a
    /// host the world powered off (fenced by `PowerOff`).
    fn spawn_clock(&self) {
        let weak = Arc::downgrade(&self.inner);
        let task = self.inner.rt.spawn(async move {
            let mut t = tokio::time::interval(Duration::from_millis(100));
            loop {
                t.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let mut st = inner.state();
                let mut w = inner.world();
                w.clock_ms = epoch_ms();
                for (id, slot) in st.slots.iter_mut() {
                    if slot.agent.is_some() && w.hosts.get(id).is_some_and(|h| h.crashed) {
                        slot.stop_agent();
                    }
                }
            }
        });
        self.inner.track(task.abort_handle());
    }

    /// Writes the state file when the world or the agents changed: at once
    /// when a call waits for it (group commit), else at most every
    /// `SAVE_EVERY` (lease renewals alone are not worth a write).
    fn spawn_saver(&self) {
        let weak = Arc::downgrade(&self.inner);
        let barrier = self.inner.barrier.clone();
        // Just written by `start`.
        let mut saved = (self.inner.world().generation, self.inner.changes.load(Ordering::SeqCst));
        let task = self.inner.rt.spawn(async move {
            let mut t = tokio::time::interval(SAVE_EVERY);
            loop {
                tokio::select! {
                    _ = t.tick() => {}
                    _ = barrier.wake.notified() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let changes = inner.changes.load(Ordering::SeqCst);
                if (inner.world().generation, changes) == saved {
                    continue;
                }
                let job = inner.clone();
                match tokio::task::spawn_blocking(move || job.save()).await {
                    Ok(Ok(generation)) => saved = (generation, changes),
                    Ok(Err(e)) => eprintln!("fleet: {e}"),
                    Err(e) => eprintln!("fleet: the saver failed: {e}"),
                }
            }
        });
        self.inner.track(task.abort_handle());
    }

    /// The shared world (for checks and status pages).
    pub fn backend(&self) -> Arc<SimBackend> {
        self.inner.backend.clone()
    }

    /// Learns `cloud`'s inventory (`World::sync_inventory`): new hosts and
    /// pools, and leases on new shared pools (running agents renew them from
    /// their next round). Returns how many things were added.
    pub fn sync(&self, cloud: &Cloud) -> usize {
        let n = self.inner.world().sync_inventory(cloud);
        if n > 0 {
            self.inner.changed();
        }
        n
    }

    /// Syncs the world with `cloud` and starts `host`'s agent unless it runs.
    /// Without stored credentials it needs an enrollment `token`
    /// (`Gateway::issue_token_durable`). A token given for a host whose agent
    /// does not run replaces its stored credentials (the server issues one
    /// only to a host it does not know as enrolled, e.g. after its database
    /// was reset). A crashed host's agent starts when the host recovers.
    pub fn ensure_host(&self, cloud: &Cloud, host: HostId, token: Option<String>) -> Result<(), String> {
        let inner = &self.inner;
        let h = cloud
            .inv
            .find_host(host)
            .map(|i| cloud.inv.host(i))
            .ok_or_else(|| format!("host {host} is not in the inventory"))?;
        let mut st = inner.state();
        if st.stopped {
            return Err("the simulated fleet is shut down".into());
        }
        self.sync(cloud);
        let slot = st.slots.entry(host).or_insert_with(|| Slot::new(SavedAgent::default()));
        if token.is_some() && !slot.running() {
            *slot.creds.lock().expect("creds lock") = None;
        }
        let enrolled = slot.creds.lock().expect("creds lock").is_some();
        let mut spec = HostAgent::new(cloud, h, &inner.server, inner.seed, inner.latency_ms);
        spec.token = match (token, &slot.spec) {
            (Some(t), _) => Some(t),
            (None, Some(old)) => old.token.clone(),
            (None, None) => None,
        };
        if !enrolled && spec.token.is_none() {
            return Err(format!(
                "host {} ({host}) has no credentials yet: an enrollment token is needed",
                h.name
            ));
        }
        slot.spec = Some(spec);
        if slot.running() || inner.world().hosts.get(&host).is_some_and(|x| x.crashed) {
            return Ok(());
        }
        inner.spawn_agent(host, slot);
        Ok(())
    }

    /// A deleted host (deleteHost): its agent stops and it leaves the world
    /// (and the state file), so a restarted server does not start it again.
    pub fn remove_host(&self, host: HostId) {
        let mut st = self.inner.state();
        if let Some(mut slot) = st.slots.remove(&host) {
            slot.stop_agent();
        }
        drop(st);
        let mut w = self.inner.world();
        if w.hosts.remove(&host).is_some() {
            w.generation += 1;
            drop(w);
            self.inner.changed();
        }
    }

    /// Every host of the world, with its agent's state.
    pub fn hosts(&self) -> Vec<FleetHost> {
        let st = self.inner.state();
        let w = self.inner.world();
        w.hosts
            .iter()
            .map(|(id, h)| {
                let slot = st.slots.get(id);
                FleetHost {
                    id: *id,
                    name: h.name.clone(),
                    agent_running: slot.is_some_and(Slot::running),
                    enrolled: slot.is_some_and(|s| s.creds.lock().expect("creds lock").is_some()),
                    sessions: slot.map_or(0, |s| s.stats.sessions.load(Ordering::Relaxed)),
                    crashed: h.crashed,
                    partitioned: slot.is_some_and(|s| s.cut.load(Ordering::SeqCst)),
                    running_domains: h.domains.values().filter(|d| d.running).count(),
                    note: slot.and_then(|s| s.note.lock().expect("note lock").clone()),
                }
            })
            .collect()
    }

    /// Applies a fault (what the API's `configureSimulator` maps onto).
    pub fn inject(&self, fault: FleetFault) -> Result<(), String> {
        match fault {
            FleetFault::CrashHost { host } => self.crash_host(host),
            FleetFault::RecoverHost { host } => self.recover_host(host),
            FleetFault::PartitionHost { host } => self.partition_host(host),
            FleetFault::HealHost { host } => self.heal_host(host),
            FleetFault::StorageOutage { pool } => self.storage_outage(pool),
            FleetFault::StorageRestore { pool } => self.storage_restore(pool),
            FleetFault::FailCalls { host, call, count } => self.fail_calls(host, &call, count),
            FleetFault::ClearFaults => self.clear_faults(),
        }
    }

    /// The host powers off: every domain on it is gone and its agent stops.
    pub fn crash_host(&self, host: HostId) -> Result<(), String> {
        let mut st = self.inner.state();
        {
            let mut w = self.inner.world();
            let h = w.hosts.get(&host).ok_or_else(|| unknown_host(host))?;
            if !h.crashed {
                w.crash_host(host);
            }
        }
        if let Some(slot) = st.slots.get_mut(&host) {
            slot.stop_agent();
        }
        Ok(())
    }

    /// A crashed host powers on, empty, and a fresh agent reconnects (with
    /// its credentials). A host that is not crashed is left alone.
    pub fn recover_host(&self, host: HostId) -> Result<(), String> {
        let mut st = self.inner.state();
        {
            let mut w = self.inner.world();
            let h = w.hosts.get_mut(&host).ok_or_else(|| unknown_host(host))?;
            if !h.crashed {
                return Ok(());
            }
            h.crashed = false;
            w.generation += 1;
        }
        if let Some(slot) = st.slots.get_mut(&host)
            && !slot.running()
        {
            self.inner.spawn_agent(host, slot);
        }
        Ok(())
    }

    fn set_cut(&self, host: HostId, cut: bool) -> Result<(), String> {
        let mut st = self.inner.state();
        if !self.inner.world().hosts.contains_key(&host) {
            return Err(unknown_host(host));
        }
        let slot = st.slots.entry(host).or_insert_with(|| Slot::new(SavedAgent::default()));
        slot.cut.store(cut, Ordering::SeqCst);
        self.inner.changed();
        Ok(())
    }

    /// Cuts the host's link to management: its agent loses the connection
    /// and cannot dial again until healed. It keeps running its VMs and
    /// renewing its leases, so the controller finds it alive (Disconnected).
    pub fn partition_host(&self, host: HostId) -> Result<(), String> {
        self.set_cut(host, true)
    }

    /// Restores the link; the agent reconnects within its backoff (≤ 1 s).
    pub fn heal_host(&self, host: HostId) -> Result<(), String> {
        self.set_cut(host, false)
    }

    fn set_pool_down(&self, pool: PoolId, down: bool) -> Result<(), String> {
        let mut w = self.inner.world();
        w.pools.get_mut(&pool).ok_or_else(|| unknown_pool(pool))?.down = down;
        w.generation += 1;
        Ok(())
    }

    /// The pool becomes unreachable: its calls fail (`unavailable`) and its
    /// leases are not renewed (hosts still talking to management fence nothing).
    pub fn storage_outage(&self, pool: PoolId) -> Result<(), String> {
        self.set_pool_down(pool, true)
    }

    pub fn storage_restore(&self, pool: PoolId) -> Result<(), String> {
        self.set_pool_down(pool, false)
    }

    /// The next `count` calls named `call` (a `DriverCall` variant, see
    /// [`CALL_KINDS`]) fail, on `host` only if given. `count` 0 removes
    /// pending failures of that kind (and host).
    pub fn fail_calls(&self, host: Option<HostId>, call: &str, count: u32) -> Result<(), String> {
        if !CALL_KINDS.contains(&call) {
            return Err(format!("unknown call {call:?}: one of {}", CALL_KINDS.join(", ")));
        }
        if PROBES.contains(&call) {
            return Err(format!(
                "{call} is answered from the world's state: use a partition, a crash or a storage outage"
            ));
        }
        let mut w = self.inner.world();
        if let Some(h) = host
            && !w.hosts.contains_key(&h)
        {
            return Err(unknown_host(h));
        }
        if count == 0 {
            w.fail_next.retain(|f| !(f.call == call && f.host == host));
        } else {
            w.fail_next.push(FailNext {
                host,
                call: call.to_string(),
                left: count,
            });
        }
        w.generation += 1;
        Ok(())
    }

    /// Lifts every fault: pending failures are forgotten, pools come back,
    /// partitions heal and crashed hosts recover.
    pub fn clear_faults(&self) -> Result<(), String> {
        let crashed: Vec<HostId> = {
            let st = self.inner.state();
            for slot in st.slots.values() {
                slot.cut.store(false, Ordering::SeqCst);
            }
            let mut w = self.inner.world();
            w.fail_next.clear();
            w.pools.values_mut().for_each(|p| p.down = false);
            w.generation += 1;
            w.hosts.iter().filter(|(_, h)| h.crashed).map(|(id, _)| *id).collect()
        };
        self.inner.changed();
        crashed.into_iter().try_for_each(|h| self.recover_host(h))
    }

    /// Stops every agent and the fleet's tasks, and writes the state file a
    /// last time (the next `start` on it picks up from here).
    pub fn shutdown(&self) -> Result<(), String> {
        {
            let mut st = self.inner.state();
            st.stopped = true;
            st.slots.values_mut().for_each(Slot::stop_agent);
        }
        self.inner
            .tasks
            .lock()
            .expect("tasks lock")
            .drain(..)
            .for_each(|t| t.abort());
        let saved = self.inner.save().map(|_| ());
        // Nothing saves from now on: calls still waiting answer (to no one).
        self.inner.barrier.published(u64::MAX);
        saved
    }
}
