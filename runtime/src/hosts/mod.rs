//! Host connections: the management side of the agent protocol (the
//! gateway). It accepts agents over TLS, authenticates them and negotiates
//! the protocol version, turns heartbeats and VM reports into controller
//! inputs, sends the controller's driver calls to the right agent and feeds
//! the answers back, and runs the controller's timers on its clock.
//!
//! **Durability.** Every controller input (API requests, driver results,
//! heartbeats, reports, timers, boot/restart) goes through one function,
//! `State::feed`: it is appended to the journal and applied, and what it
//! produced (driver calls, timers, the job id for the caller) is held until the
//! input is durable in the Store (`wal`: group commit, periodic snapshots off
//! the hot path). [`Gateway::open`] recovers the controller from the Store
//! (snapshot + journal, checked by state hash) and feeds `Input::Restart`;
//! agents reconnect without re-enrolling because the CA and host secrets are
//! kept in the Store's meta table (`creds`). [`Gateway::new`] keeps nothing
//! (simulations): every input is durable at once.
//!
//! Time is epoch milliseconds from the gateway's [`Clock`]. Everything that
//! touches the controller runs under one lock, in the order events arrive.

mod ca;
mod clock;
mod conn;
mod creds;
mod rebuild;
mod route;
mod state;
mod wal;

pub use ca::{CaError, ManagementCa, SecretSource, StoredCa};
pub use clock::{Clock, system_epoch_ms};
pub use state::GatewayStats;
pub use wal::DurabilityStats;

use crate::store::{Store, StoreError};
use clock::RunClock;
use state::State;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use stratus_core::CoreResult;
use stratus_core::controller::{Controller, Input, JobId, Reply, Request};
use stratus_core::ids::HostId;
use stratus_link::net::Listener;
use stratus_wire::HostFacts;
use stratus_wire::protocol::PROTOCOL_VERSIONS;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

/// The epoch simulations start at (`GatewayConfig::seeded`): 2023-11-14.
pub use stratus_core::units::SIM_EPOCH_MS;

#[derive(Debug)]
pub struct GatewayConfig {
    /// Names (DNS or IP) to put in the server certificate besides `stratus-management`.
    pub server_names: Vec<String>,
    pub secrets: SecretSource,
    /// A connection silent for this many ping intervals is closed.
    pub dead_after: u32,
    /// Limit for the TLS handshake and the first line.
    pub handshake_timeout: Duration,
    /// Every this many heartbeats of a host, ask it for its full VM report
    /// (VM sync, so the ledger converges even without reconnects); 0: never.
    pub full_report_every: u64,
    /// Protocol versions accepted at the greeting (default: all this build speaks).
    pub versions: Vec<u32>,
    /// The durable Store for [`Gateway::open`]: `sqlite://path/file.db`,
    /// `sqlite::memory:`, `postgres://user:pass@host:port/db`. `None`: nothing
    /// is kept (every input counts as durable at once).
    pub store_url: Option<String>,
    /// A snapshot every this many inputs (default 10,000).
    pub snapshot_every: u64,
    /// Where the controller's time (epoch ms) comes from.
    pub clock: Clock,
}

impl GatewayConfig {
    /// Secrets from the OS, the system clock, no Store.
    pub fn new() -> GatewayConfig {
        GatewayConfig {
            server_names: Vec::new(),
            secrets: SecretSource::os(),
            dead_after: 3,
            handshake_timeout: Duration::from_secs(10),
            full_report_every: 5,
            versions: PROTOCOL_VERSIONS.to_vec(),
            store_url: None,
            snapshot_every: 10_000,
            clock: Clock::System,
        }
    }
    /// Reproducible secrets and tokio's clock from [`SIM_EPOCH_MS`]: for simulations only.
    pub fn seeded(seed: u64) -> GatewayConfig {
        GatewayConfig {
            secrets: SecretSource::seeded(seed),
            clock: Clock::Tokio { epoch_ms: SIM_EPOCH_MS },
            ..GatewayConfig::new()
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig::new()
    }
}

/// What [`Gateway::open`] found in the Store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// An empty Store: the initial controller was written as snapshot 0.
    pub fresh: bool,
    /// The last durable input (the next one gets `seq + 1`).
    pub seq: u64,
    /// The snapshot recovery started from.
    pub snapshot_seq: u64,
    /// Journal entries replayed after it.
    pub replayed: u64,
    /// `state_hash()` of the recovered controller (before `Input::Restart`).
    pub hash: String,
    /// Time to open, recover and load credentials, ms.
    pub millis: u64,
    /// Hosts with stored credentials (they reconnect without a token).
    pub enrolled: usize,
    /// The CA was made now (a fresh Store), not loaded.
    pub new_ca: bool,
    /// Newer snapshots that were skipped (did not decode to their hash).
    pub bad_snapshots: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("recovery failed: {0}")]
    Recovery(String),
    #[error(transparent)]
    Ca(#[from] CaError),
}

type Job = Box<dyn FnOnce(&mut State) + Send>;

struct Shared {
    state: Mutex<State>,
    ca: ManagementCa,
    config: GatewayConfig,
    notify: Arc<Notify>,
    inbox: mpsc::UnboundedSender<Job>,
    inbox_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    clock: RunClock,
    store: Option<Store>,
    recovery: Option<Recovery>,
    tasks: Mutex<Vec<AbortHandle>>,
    halt: Notify,
    halted: AtomicBool,
}

impl Shared {
    /// The state. A panic while it was held (a bug outside the controller:
    /// the controller's own panics are caught in `State::feed`) does not stop
    /// the gateway.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, with its clock moved to now.
    fn lock(&self) -> MutexGuard<'_, State> {
        let now = stratus_core::units::Millis(self.clock.now_ms());
        let mut st = self.state();
        if now > st.now {
            st.now = now;
        }
        st
    }

    /// Spawns a task that `Gateway::halt` stops.
    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(f);
        self.track(h.abort_handle());
    }

    fn track(&self, h: AbortHandle) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(h);
        if self.halted.load(Ordering::SeqCst) {
            tasks.drain(..).for_each(|t| t.abort());
        }
    }
}

/// The management server's agent gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gateway({:?})", self.shared.ca)
    }
}

impl Gateway {
    /// A gateway around a controller, with a fresh CA, that keeps nothing
    /// (`config.store_url` is not used: see [`Gateway::open`]).
    pub fn new(ctl: Controller, config: GatewayConfig) -> Result<Gateway, CaError> {
        let ca = ManagementCa::generate(&config.server_names)?;
        let base = wal::Base::Ctl(Box::new(ctl.clone()));
        let wal = wal::Wal::new(0, true, config.snapshot_every, 0, base);
        Ok(Gateway::build(
            ctl,
            config,
            ca,
            None,
            wal,
            creds::Loaded::default(),
            None,
        ))
    }

    /// A durable gateway on `config.store_url` (without one, as [`Gateway::new`]).
    /// An empty Store gets `initial()` as snapshot 0 and a new CA; otherwise the
    /// controller is the latest good snapshot plus the journal after it
    /// (checked by state hash), with the stored CA and host credentials, and
    /// `serve` feeds it `Input::Restart`.
    pub async fn open(initial: impl FnOnce() -> Controller, config: GatewayConfig) -> Result<Gateway, OpenError> {
        let Some(url) = config.store_url.clone() else {
            return Ok(Gateway::new(initial(), config)?);
        };
        let t = std::time::Instant::now();
        let store = Store::open(&url).await?;
        let recovered = crate::recover::recover(&store).await.map_err(OpenError::Recovery)?;
        let fresh = recovered.is_none();
        let (ctl, state, hash, seq, snapshot_seq, replayed, bad) = match recovered {
            Some(r) => (
                r.ctl,
                r.state,
                r.hash,
                r.seq,
                r.snapshot_seq,
                r.replayed,
                r.bad_snapshots,
            ),
            None => {
                let ctl = initial();
                let snap = crate::recover::encode_snapshot(0, &ctl, system_epoch_ms());
                store.put_snapshot(&snap).await?;
                (ctl, snap.payload, snap.state_hash, 0, 0, 0, Vec::new())
            }
        };
        let (ca, new_ca) = creds::load_or_make_ca(&store, &config.server_names)
            .await
            .map_err(OpenError::Recovery)?;
        let loaded = creds::load(&store).await.map_err(OpenError::Recovery)?;
        let recovery = Recovery {
            fresh,
            seq,
            snapshot_seq,
            replayed,
            hash,
            millis: t.elapsed().as_millis() as u64,
            enrolled: loaded.hosts.len(),
            new_ca,
            bad_snapshots: bad,
        };
        tracing::info!(
            fresh,
            seq,
            snapshot_seq,
            replayed,
            hash = %recovery.hash,
            ms = recovery.millis,
            "gateway state recovered"
        );
        let wal = wal::Wal::new(seq, false, config.snapshot_every, snapshot_seq, wal::Base::Bytes(state));
        Ok(Gateway::build(
            ctl,
            config,
            ca,
            Some(store),
            wal,
            loaded,
            Some(recovery),
        ))
    }

    fn build(
        ctl: Controller,
        config: GatewayConfig,
        ca: ManagementCa,
        store: Option<Store>,
        wal: wal::Wal,
        loaded: creds::Loaded,
        recovery: Option<Recovery>,
    ) -> Gateway {
        let notify = Arc::new(Notify::new());
        let mut instance = [0u8; 12];
        config.secrets.fill(&mut instance);
        let mut state = State::new(
            ctl,
            stratus_link::tls::hex(&instance),
            ca.fingerprint(),
            notify.clone(),
            wal,
        );
        state.full_report_every = config.full_report_every;
        state.versions = config.versions.clone();
        state.hosts = loaded.hosts;
        state.tokens = loaded.tokens;
        let (inbox, rx) = mpsc::unbounded_channel();
        Gateway {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                ca,
                clock: RunClock::new(config.clock),
                config,
                notify,
                inbox,
                inbox_rx: Mutex::new(Some(rx)),
                store,
                recovery,
                tasks: Mutex::new(Vec::new()),
                halt: Notify::new(),
                halted: AtomicBool::new(false),
            }),
        }
    }

    /// SHA-256 of the CA certificate (what tokens carry).
    pub fn ca_fingerprint(&self) -> [u8; 32] {
        self.shared.ca.fingerprint()
    }

    /// A one-time enrollment token for an inventory host, kept in memory only
    /// (a durable gateway should use [`Gateway::issue_token_durable`]).
    pub fn issue_token(&self, host: HostId) -> Result<String, String> {
        let sh = &self.shared;
        sh.lock().issue_token(host, &sh.config.secrets).map(|t| t.0)
    }

    /// A one-time enrollment token, stored (by its hash) before it is returned,
    /// so it stays valid across restarts until used.
    pub async fn issue_token_durable(&self, host: HostId) -> Result<String, String> {
        let sh = &self.shared;
        let (token, hash) = sh.lock().issue_token(host, &sh.config.secrets)?;
        if let Some(store) = &sh.store {
            let entry = creds::TokenEntry { host, used: false };
            creds::save_token(store, &hash, &entry).await?;
        }
        Ok(token)
    }

    /// deleteHost: forgets the host's secret and enrollment tokens (in memory
    /// and in the Store) and drops its connection, so its agent cannot come
    /// back. Call after the deletion is durable.
    pub async fn forget_host(&self, host: HostId) -> Result<(), String> {
        let sh = &self.shared;
        let tokens = sh.lock().forget_host(host);
        if let Some(store) = &sh.store {
            creds::forget_host(store, host, &tokens).await?;
        }
        Ok(())
    }

    /// Hosts holding credentials (enrolled once; they reconnect with `hello`).
    pub fn enrolled(&self) -> Vec<HostId> {
        self.shared.state().hosts.keys().copied().collect()
    }

    /// What `open` recovered (`None` for a gateway without a Store).
    pub fn recovery(&self) -> Option<Recovery> {
        self.shared.recovery.clone()
    }

    /// Feeds the controller `Input::Boot` (or `Input::Restart` after a
    /// recovery) and runs its timers and the journal writer, then accepts
    /// agents until the listener fails, the journal cannot be written, or the
    /// gateway is halted. Call once per gateway.
    pub async fn serve<L: Listener>(&self, mut listener: L) -> std::io::Result<()> {
        let sh = &self.shared;
        let rx = sh
            .inbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| std::io::Error::other("this gateway is already serving"))?;
        sh.clock.start();
        {
            let mut st = sh.lock();
            let input = match &sh.recovery {
                Some(r) if !r.fresh => {
                    let detail = format!(
                        "state {} at input {} (snapshot {} + {} replayed) in {} ms; {} hosts enrolled",
                        r.hash, r.seq, r.snapshot_seq, r.replayed, r.millis, r.enrolled
                    );
                    st.event("gateway.recovered", "management-server".into(), detail);
                    // Agents are reconnecting: give them the time a silent one gets.
                    let grace = st.ping_ms() * u64::from(sh.config.dead_after.max(1));
                    let until = stratus_core::units::Millis(st.now.0 + grace);
                    st.begin_grace(until);
                    Input::Restart
                }
                _ => Input::Boot,
            };
            st.feed(input, None);
            st.started = true;
        }
        sh.spawn(core_loop(sh.clone(), rx));
        let mut writer = sh.store.clone().map(|store| {
            let h = tokio::spawn(wal::writer(sh.clone(), store));
            sh.track(h.abort_handle());
            h
        });
        let writer_done = async {
            match writer.as_mut() {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(writer_done);
        loop {
            if sh.halted.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((sock, _peer)) => sh.spawn(conn::connection(sh.clone(), sock)),
                    Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => return Err(e),
                },
                _ = sh.halt.notified() => return Ok(()),
                w = &mut writer_done => {
                    let why = match w {
                        Ok(Ok(())) => "stopped".to_string(),
                        Ok(Err(e)) => e,
                        Err(e) => e.to_string(),
                    };
                    self.halt();
                    return Err(std::io::Error::other(format!("the journal writer failed: {why}")));
                }
            }
        }
    }

    /// Stops the gateway as a crash would: nothing more is applied, written
    /// or sent, every task ends and connections drop. For tests of recovery
    /// in one process (a real server just dies).
    pub fn halt(&self) {
        let sh = &self.shared;
        sh.halted.store(true, Ordering::SeqCst);
        {
            let mut st = sh.state();
            st.halted = true;
            st.conns.clear();
        }
        sh.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .for_each(|t| t.abort());
        sh.halt.notify_one();
    }

    /// Feeds an input to the controller (once `serve` runs); the receiver gets
    /// the controller's reply once the input is durable.
    pub fn input(&self, input: Input) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |st: &mut State| st.feed(input, Some(tx)));
        // If the core loop is gone the receiver reports it.
        let _ = self.shared.inbox.send(job);
        rx
    }

    /// Submits an API request (an async job); the job id comes back once the
    /// request is durable. `None` if the gateway stopped first.
    pub async fn try_submit(&self, req: Request) -> Option<CoreResult<JobId>> {
        match self.input(Input::Request { request: req }).await {
            Ok(Reply::Job(r)) => Some(r),
            Ok(other) => panic!("a request answers with a job, got {other:?}"),
            Err(_) => None,
        }
    }

    /// Submits an API request (an async job).
    pub async fn submit(&self, req: Request) -> CoreResult<JobId> {
        self.try_submit(req).await.expect("the gateway's core loop is gone")
    }

    /// Reads the controller, answering only once every input the answer may
    /// reflect is durable (so a crash cannot take back what was read).
    /// `None` if the gateway stopped first.
    pub async fn read_durable<R>(&self, f: impl FnOnce(&Controller) -> R) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let r = {
            let mut st = self.shared.state();
            let r = f(&st.ctl);
            st.barrier(tx);
            r
        };
        rx.await.ok().map(|_| r)
    }

    /// Reads the controller (ledger, jobs) without changing it. What it shows
    /// may not be durable yet: see [`Gateway::read_durable`].
    pub fn with_controller<R>(&self, f: impl FnOnce(&Controller) -> R) -> R {
        f(&self.shared.state().ctl)
    }

    /// Hosts with an authenticated connection.
    pub fn connected(&self) -> Vec<HostId> {
        self.shared.state().conns.keys().copied().collect()
    }

    pub fn stats(&self) -> GatewayStats {
        self.shared.state().stats.clone()
    }

    /// The write-ahead path's counters.
    pub fn durability(&self) -> DurabilityStats {
        self.shared.state().wal.stats.clone()
    }

    /// Facts a host reported at enrollment.
    pub fn facts(&self, host: HostId) -> Option<HostFacts> {
        self.shared.state().facts(host)
    }

    /// Calls waiting for an answer from this host.
    pub fn pending_for(&self, host: HostId) -> usize {
        self.shared.state().pending_for(host)
    }

    /// SHA-256 of the event log (controller and gateway events, JSON lines).
    pub fn log_sha256(&self) -> String {
        self.shared.state().log_sha256()
    }

    /// The last few thousand log lines.
    pub fn log_tail(&self) -> Vec<String> {
        self.shared.state().log_tail.iter().cloned().collect()
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

/// Timers and API inputs, in one task.
async fn core_loop(shared: Arc<Shared>, mut inbox: mpsc::UnboundedReceiver<Job>) {
    loop {
        let deadline = shared.state().next_deadline();
        let wait = deadline.map_or(Duration::from_secs(3600 * 24), |at| shared.clock.until(at.0));
        tokio::select! {
            biased;
            job = inbox.recv() => match job {
                Some(job) => job(&mut shared.lock()),
                None => return,
            },
            _ = tokio::time::sleep(wait) => shared.lock().fire_due(),
            _ = shared.notify.notified() => {}
        }
    }
}
