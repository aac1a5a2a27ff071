//! The host agent: dials the management server (TLS, pinned CA), enrolls once
//! with a token or says hello with its per-host secret (negotiating the
//! protocol version), reports its running domains, heartbeats, executes
//! driver calls exactly once per request id, renews its storage leases under
//! the isolation watchdog, and reconnects with capped, jittered backoff.

mod cache;
mod config;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod lease;

pub use config::{AgentConfig, CredentialStore, Credentials, HostMonitorLink};

use cache::{Cache, Slot};
use lease::Isolation;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_drivers::{ComputeDriver, Drivers, FenceDriver, NetworkDriver, StorageDriver};
use stratus_link::net::{Connector, FrameError, LineReader};
use stratus_link::tls;
use stratus_link::token::EnrollToken;
use stratus_wire::ids::{HostId, PoolId, VmId};
use stratus_wire::protocol::{AgentMsg, GREETING_VERSION, ServerMsg, decode, encode};
use stratus_wire::rng::DetRng;
use stratus_wire::{DriverCall, DriverError, DriverResult};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const DEFAULT_PING: Duration = Duration::from_secs(3);

/// Everything a host can do: one value implementing every driver trait.
pub trait Backend: ComputeDriver + StorageDriver + NetworkDriver + FenceDriver + Send + Sync + 'static {}
impl<T: ComputeDriver + StorageDriver + NetworkDriver + FenceDriver + Send + Sync + 'static> Backend for T {}

/// Counters, for tests and operators.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub connects: AtomicU64,
    pub sessions: AtomicU64,
    pub enrollments: AtomicU64,
    pub executed: AtomicU64,
    pub answered_from_cache: AtomicU64,
    pub retried_in_flight: AtomicU64,
    pub reports: AtomicU64,
    pub refused_calls: AtomicU64,
    /// Isolations in which the watchdog stopped running VMs.
    pub self_fenced: AtomicU64,
    /// The protocol version agreed in the last session (0: none yet).
    pub protocol_version: AtomicU32,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the management server refused this agent: {0}")]
    Refused(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("configuration: {0}")]
    Config(String),
}

type HostHook = Box<dyn Fn(HostId) + Send + Sync>;
type CallHook = Box<dyn Fn(&DriverCall) -> Option<DriverResult> + Send + Sync>;
type CredsHook = Box<dyn Fn(&Credentials) + Send + Sync>;
type NoteHook = Box<dyn Fn(&str) + Send + Sync>;
type LatencyHook = Box<dyn Fn(&DriverCall) -> Duration + Send + Sync>;
type PoolsHook = Box<dyn Fn() -> Vec<PoolId> + Send + Sync>;

/// The lease loop ends with the agent, also when `run` is dropped (a task
/// aborted by whoever runs the agent) rather than left renewing forever.
struct LeaseTask(Option<tokio::task::JoinHandle<()>>);

impl Drop for LeaseTask {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// How the agent proves who it is on the next connection.
enum Identity {
    Hello(Credentials),
    Enroll(EnrollToken),
}

/// Hooks a backend may need (the simulated one learns its host id).
#[derive(Default)]
pub struct Hooks {
    /// Called when the host id is known (after enrollment or hello).
    pub on_host: Option<HostHook>,
    /// Called before each call is executed; an answer here replaces execution.
    pub before_call: Option<CallHook>,
    /// Called with new credentials after enrollment (to persist them).
    pub on_enrolled: Option<CredsHook>,
    /// Human-readable notes: connected, lost, retrying (for a log).
    pub on_note: Option<NoteHook>,
    /// How long a call takes before it runs (a simulated host's latency).
    pub latency: Option<LatencyHook>,
    /// The shared pools to renew a lease on, asked at every renewal (a host
    /// whose pools change while it runs); replaces `AgentConfig::lease_pools`.
    pub lease_pools: Option<PoolsHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

struct Done {
    instance: String,
    req_id: u64,
    result: DriverResult,
}

/// The agent. `run` loops until a fatal error (refused credentials, wrong CA).
pub struct Agent<C: Connector, B: Backend> {
    pub config: AgentConfig,
    connector: C,
    backend: Arc<B>,
    creds: CredentialStore,
    pub stats: Arc<AgentStats>,
    hooks: Arc<Hooks>,
    cache: Arc<Mutex<Cache>>,
    /// VMs named by calls since the last domain poll (their changes are expected).
    touched: Arc<Mutex<BTreeSet<VmId>>>,
}

impl<C: Connector, B: Backend> std::fmt::Debug for Agent<C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Agent({})", self.config.host_name)
    }
}

enum End {
    /// The link failed before the session was established.
    Failed(String),
    /// An established session ended.
    Lost(String),
}

impl<C: Connector, B: Backend> Agent<C, B> {
    pub fn new(config: AgentConfig, connector: C, backend: Arc<B>, creds: CredentialStore) -> Self {
        let cap = config.cache_size.max(1);
        Agent {
            config,
            connector,
            backend,
            creds,
            stats: Arc::default(),
            hooks: Arc::default(),
            cache: Arc::new(Mutex::new(Cache::new(cap))),
            touched: Arc::default(),
        }
    }

    /// Shares counters (e.g. across restarts of a simulated host).
    pub fn with_stats(mut self, stats: Arc<AgentStats>) -> Self {
        self.stats = stats;
        self
    }

    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    fn note(&self, text: &str) {
        if let Some(f) = &self.hooks.on_note {
            f(text);
        }
    }

    /// The pinned CA and how to authenticate, from credentials or the token.
    fn identity(&self) -> Result<([u8; 32], Identity), AgentError> {
        if let Some(c) = self.creds.lock().expect("creds lock").clone() {
            let pin = tls::parse_fingerprint(&c.ca_fingerprint)
                .ok_or_else(|| AgentError::Config("stored credentials carry a bad CA fingerprint".into()))?;
            return Ok((pin, Identity::Hello(c)));
        }
        let Some(t) = &self.config.token else {
            return Err(AgentError::Config(
                "no credentials yet: an enrollment token is required".into(),
            ));
        };
        let token = EnrollToken::parse(t).map_err(|e| AgentError::Config(e.to_string()))?;
        Ok((token.ca_fingerprint, Identity::Enroll(token)))
    }

    /// Runs until a fatal error; reconnects on every other failure.
    pub async fn run(self) -> Result<(), AgentError> {
        let mut rng = DetRng::child(self.config.seed, &format!("agent-backoff:{}", self.config.host_name));
        let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
        let mut attempt = 0u32;
        let mut lease_task = LeaseTask(None);
        let mut iso = Isolation::new(self.config.lease_timeout);
        if let Some(m) = &self.config.host_monitor {
            iso = iso.with_contact_stamp(&m.run_dir);
        }
        let result = loop {
            let why = match self.session(&tx, &mut rx, &mut lease_task, &iso).await {
                Err(fatal) => break Err(fatal),
                Ok(End::Lost(why)) => {
                    attempt = 0;
                    format!("session lost: {why}")
                }
                Ok(End::Failed(why)) => {
                    attempt = attempt.saturating_add(1);
                    why
                }
            };
            let delay = self.config.backoff(attempt, &mut rng);
            self.note(&format!("{why}; retrying in {:.1} s", delay.as_secs_f64()));
            tokio::time::sleep(delay).await;
        };
        drop(lease_task);
        result
    }

    async fn session(
        &self,
        tx: &mpsc::UnboundedSender<Done>,
        rx: &mut mpsc::UnboundedReceiver<Done>,
        lease_task: &mut LeaseTask,
        iso: &Isolation,
    ) -> Result<End, AgentError> {
        let (pin, identity) = self.identity()?;
        let cfg = &self.config;
        let dead = cfg.ping_interval.unwrap_or(DEFAULT_PING) * cfg.dead_after.max(1);
        self.stats.connects.fetch_add(1, Relaxed);
        let tcp = match timeout(cfg.connect_timeout, self.connector.connect(&cfg.server)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Ok(End::Failed(format!("connect: {e}"))),
            Err(_) => return Ok(End::Failed("connect: timed out".into())),
        };
        let connector = tls::agent_connector(pin).map_err(|e| AgentError::Tls(e.to_string()))?;
        let stream = match timeout(cfg.connect_timeout, connector.connect(tls::server_name(), tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => match tls::tls_failure(&e) {
                Some(why) => return Err(AgentError::Tls(why)),
                None => return Ok(End::Failed(format!("TLS handshake: {e}"))),
            },
            Err(_) => return Ok(End::Failed("TLS handshake: timed out".into())),
        };
        let (r, mut w) = tokio::io::split(stream);
        let mut reader = LineReader::new(r);
        let first = match &identity {
            Identity::Hello(c) => AgentMsg::Hello {
                host_id: c.host_id,
                secret: c.secret.clone(),
                versions: cfg.versions.clone(),
            },
            Identity::Enroll(t) => AgentMsg::Enroll {
                token: t.to_string(),
                host_name: cfg.host_name.clone(),
                facts: cfg.facts.clone(),
                versions: cfg.versions.clone(),
            },
        };
        if let Err(e) = send(&mut w, GREETING_VERSION, &first, dead).await {
            return Ok(End::Failed(e));
        }
        let answer = match timeout(dead, reader.next_line()).await {
            Ok(Ok(Some(line))) => {
                iso.contact();
                decode::<ServerMsg>(&line, GREETING_VERSION).map_err(|e| e.to_string())
            }
            Ok(Ok(None)) => Err("closed by the server".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer to the greeting".into()),
        };
        let (host_id, instance, server_ping, version) = match answer {
            Ok(ServerMsg::Enrolled {
                host_id,
                secret,
                instance,
                ping_interval_ms,
                version,
            }) => {
                let creds = Credentials {
                    host_id,
                    secret,
                    ca_fingerprint: tls::hex(&pin),
                };
                if let Some(f) = &self.hooks.on_enrolled {
                    f(&creds);
                }
                *self.creds.lock().expect("creds lock") = Some(creds);
                self.stats.enrollments.fetch_add(1, Relaxed);
                self.note(&format!("enrolled as host {host_id}"));
                (host_id, instance, ping_interval_ms, version)
            }
            Ok(ServerMsg::Welcome {
                host_id,
                instance,
                ping_interval_ms,
                version,
            }) => (host_id, instance, ping_interval_ms, version),
            Ok(ServerMsg::Error { message }) => return Err(AgentError::Refused(message)),
            Ok(other) => return Ok(End::Failed(format!("unexpected greeting {other:?}"))),
            Err(e) => return Ok(End::Failed(e)),
        };
        if !cfg.versions.contains(&version) {
            // The server chose a version this agent did not offer: retrying
            // will not help.
            return Err(AgentError::Refused(format!(
                "the server chose protocol version {version}, but this agent speaks {:?}",
                cfg.versions
            )));
        }
        self.stats.protocol_version.store(version, Relaxed);
        self.stats.sessions.fetch_add(1, Relaxed);
        self.note(&format!(
            "connected to {} as host {host_id} (protocol {version})",
            cfg.server
        ));
        let ping = cfg
            .ping_interval
            .unwrap_or(Duration::from_millis(server_ping.clamp(100, 3_600_000)));
        {
            let mut cache = self.cache.lock().expect("cache lock");
            cache.set_instance(&instance);
        }
        if let Some(f) = &self.hooks.on_host {
            f(host_id);
        }
        if lease_task.0.is_none() && (!cfg.lease_pools.is_empty() || self.hooks.lease_pools.is_some()) {
            lease_task.0 = Some(tokio::spawn(lease::lease_loop(
                self.backend.clone(),
                host_id,
                cfg.lease_pools.clone(),
                ping,
                iso.clone(),
                self.stats.clone(),
                self.hooks.clone(),
                cfg.host_monitor.clone(),
            )));
        }
        let link = Link {
            host: host_id,
            instance: &instance,
            version,
            ping,
            iso,
        };
        let why = self.established(&link, &mut reader, &mut w, tx, rx).await;
        let _ = w.shutdown().await;
        Ok(End::Lost(why))
    }

    /// The main loop of an authenticated session; returns why it ended.
    async fn established<R: tokio::io::AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &self,
        link: &Link<'_>,
        reader: &mut LineReader<R>,
        w: &mut W,
        tx: &mpsc::UnboundedSender<Done>,
        rx: &mut mpsc::UnboundedReceiver<Done>,
    ) -> String {
        let (host, instance, ping) = (link.host, link.instance, link.ping);
        let dead = ping * self.config.dead_after.max(1);
        let mut ticker = tokio::time::interval(ping);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let mut seq = 0u64;
        let mut seen: Option<BTreeSet<VmId>> = None;
        loop {
            let out: Vec<AgentMsg> = tokio::select! {
                biased;
                line = reader.next_line() => {
                    last_rx = Instant::now();
                    if let Ok(Some(_)) = &line {
                        link.iso.contact(); // any line from the server: management is there
                    }
                    match line {
                        Ok(Some(line)) => match decode::<ServerMsg>(&line, link.version) {
                            Ok(msg) => match self.on_message(host, instance, msg, tx).await {
                                Ok(out) => out,
                                Err(why) => return why,
                            },
                            Err(e) => return format!("bad message from the server: {e}"),
                        },
                        Ok(None) => return "closed by the server".into(),
                        Err(FrameError::Io(e)) => return format!("read: {e}"),
                        Err(e) => return e.to_string(),
                    }
                }
                Some(done) = rx.recv() => {
                    if done.instance != instance {
                        continue; // an answer for a previous management-server run
                    }
                    vec![AgentMsg::Reply { req_id: done.req_id, result: done.result }]
                }
                _ = ticker.tick() => {
                    if last_rx.elapsed() > dead {
                        return "no word from the server: link presumed dead".into();
                    }
                    seq += 1;
                    let mut out = vec![AgentMsg::Heartbeat { host_id: host, seq }];
                    if let Some(report) = self.poll_domains(host, &mut seen).await {
                        out.push(report);
                    }
                    out
                }
            };
            for m in &out {
                if let Err(e) = send(w, link.version, m, dead).await {
                    return e;
                }
            }
        }
    }

    async fn on_message(
        &self,
        host: HostId,
        instance: &str,
        msg: ServerMsg,
        tx: &mpsc::UnboundedSender<Done>,
    ) -> Result<Vec<AgentMsg>, String> {
        Ok(match msg {
            ServerMsg::Pong { .. } => vec![],
            ServerMsg::Resync { nonce } => match self.running(host).await {
                Ok(running) => {
                    self.stats.reports.fetch_add(1, Relaxed);
                    vec![AgentMsg::VmReport {
                        nonce: Some(nonce),
                        running,
                    }]
                }
                Err(e) => {
                    // No list is better than a wrong one; the server asks again.
                    self.note(&e);
                    vec![]
                }
            },
            ServerMsg::Request { req_id, call } => self.on_request(host, instance, req_id, call, tx),
            ServerMsg::Error { message } => return Err(format!("the server reported an error: {message}")),
            ServerMsg::Enrolled { .. } | ServerMsg::Welcome { .. } => {
                return Err("unexpected second greeting".into());
            }
        })
    }

    fn on_request(
        &self,
        host: HostId,
        instance: &str,
        req_id: u64,
        call: DriverCall,
        tx: &mpsc::UnboundedSender<Done>,
    ) -> Vec<AgentMsg> {
        if let Some(h) = call.host()
            && h != host
        {
            self.stats.refused_calls.fetch_add(1, Relaxed);
            let error = format!("{} is for host {h}, not this host ({host})", call.name());
            return vec![AgentMsg::Reply {
                req_id,
                result: DriverResult::Failed(DriverError::refused(error)),
            }];
        }
        {
            let mut cache = self.cache.lock().expect("cache lock");
            match cache.slots.get(&req_id) {
                Some(Slot::Done(r)) => {
                    self.stats.answered_from_cache.fetch_add(1, Relaxed);
                    return vec![AgentMsg::Reply {
                        req_id,
                        result: r.clone(),
                    }];
                }
                Some(Slot::InFlight) => {
                    // Its answer goes out when it finishes.
                    self.stats.retried_in_flight.fetch_add(1, Relaxed);
                    return vec![];
                }
                None => {
                    cache.slots.insert(req_id, Slot::InFlight);
                }
            }
        }
        if let Some(vm) = call_vm(&call) {
            self.touched.lock().expect("touched lock").insert(vm);
        }
        let answered = self.hooks.before_call.as_ref().and_then(|f| f(&call));
        let latency = self.hooks.latency.as_ref().map(|f| f(&call));
        self.stats.executed.fetch_add(1, Relaxed);
        let (backend, cache, tx, instance) = (
            self.backend.clone(),
            self.cache.clone(),
            tx.clone(),
            instance.to_string(),
        );
        tokio::spawn(async move {
            if let Some(d) = latency {
                tokio::time::sleep(d).await;
            }
            let b = &*backend;
            let d = Drivers {
                compute: b,
                storage: b,
                network: b,
                fence: b,
            };
            let result = match answered {
                Some(r) => r,
                None => stratus_drivers::execute(&d, &call).await,
            };
            cache
                .lock()
                .expect("cache lock")
                .complete(&instance, req_id, result.clone());
            let _ = tx.send(Done {
                instance,
                req_id,
                result,
            });
        });
        vec![]
    }

    async fn running(&self, host: HostId) -> Result<Vec<VmId>, String> {
        let domains = self
            .backend
            .query_domains(host)
            .await
            .map_err(|e| format!("cannot list domains: {e}"))?;
        Ok(domains.into_iter().filter(|d| d.running).map(|d| d.vm).collect())
    }

    /// Notices domains that stopped on their own; answers with an unsolicited
    /// report (the server then asks for a fresh one).
    async fn poll_domains(&self, host: HostId, seen: &mut Option<BTreeSet<VmId>>) -> Option<AgentMsg> {
        let now: BTreeSet<VmId> = self.running(host).await.ok()?.into_iter().collect();
        let touched = std::mem::take(&mut *self.touched.lock().expect("touched lock"));
        let vanished = seen
            .as_ref()
            .is_some_and(|before| before.iter().any(|vm| !now.contains(vm) && !touched.contains(vm)));
        *seen = Some(now.clone());
        vanished.then(|| {
            self.stats.reports.fetch_add(1, Relaxed);
            AgentMsg::VmReport {
                nonce: None,
                running: now.into_iter().collect(),
            }
        })
    }
}

fn call_vm(c: &DriverCall) -> Option<VmId> {
    match c {
        DriverCall::DefineDomain { vm, .. }
        | DriverCall::UndefineDomain { vm, .. }
        | DriverCall::StartDomain { vm, .. }
        | DriverCall::StopDomain { vm, .. }
        | DriverCall::RebootDomain { vm, .. }
        | DriverCall::MigrateDomain { vm, .. }
        | DriverCall::AttachDisk { vm, .. }
        | DriverCall::DetachDisk { vm, .. }
        | DriverCall::PlugNic { vm, .. }
        | DriverCall::UnplugNic { vm, .. } => Some(*vm),
        _ => None,
    }
}

/// One authenticated session: who this host is, to which server run, in
/// which protocol version, at which heartbeat period.
struct Link<'a> {
    host: HostId,
    instance: &'a str,
    version: u32,
    ping: Duration,
    iso: &'a Isolation,
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, version: u32, msg: &AgentMsg, limit: Duration) -> Result<(), String> {
    let bytes = encode(version, msg);
    match timeout(limit, async {
        w.write_all(&bytes).await?;
        w.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err("write: timed out".into()),
    }
}
