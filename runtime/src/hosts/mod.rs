//! Host connections: the management side of the agent protocol (the
//! gateway). It accepts agents over TLS, authenticates them and negotiates
//! the protocol version, turns heartbeats and VM reports into controller
//! inputs, sends the controller's driver calls to the right agent and feeds
//! the answers back, and runs the controller's timers on its clock.
//!
//! Time is the gateway's: milliseconds since `serve` started, from tokio's
//! clock (which turmoil simulates). Everything that touches the controller
//! runs under one lock, in the order events arrive.

mod ca;
mod state;

pub use ca::{CaError, ManagementCa, SecretSource};
pub use state::GatewayStats;
use state::State;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use stratus_core::CoreResult;
use stratus_core::controller::{Controller, JobId, Request};
use stratus_core::ids::HostId;
use stratus_core::units::Millis;
use stratus_link::net::{FrameError, LineReader, Listener, Stream};
use stratus_wire::HostFacts;
use stratus_wire::protocol::{AgentMsg, GREETING_VERSION, PROTOCOL_VERSIONS, ServerMsg, decode, encode};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, timeout};

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
}

impl GatewayConfig {
    /// Secrets from the OS.
    pub fn new() -> GatewayConfig {
        GatewayConfig {
            server_names: Vec::new(),
            secrets: SecretSource::os(),
            dead_after: 3,
            handshake_timeout: Duration::from_secs(10),
            full_report_every: 5,
            versions: PROTOCOL_VERSIONS.to_vec(),
        }
    }
    /// Reproducible secrets, for simulations only.
    pub fn seeded(seed: u64) -> GatewayConfig {
        GatewayConfig {
            secrets: SecretSource::seeded(seed),
            ..GatewayConfig::new()
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig::new()
    }
}

type Job = Box<dyn FnOnce(&mut State) + Send>;

struct Shared {
    state: Mutex<State>,
    ca: ManagementCa,
    config: GatewayConfig,
    notify: Arc<Notify>,
    inbox: mpsc::UnboundedSender<Job>,
    inbox_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    epoch: OnceLock<Instant>,
}

impl Shared {
    fn now(&self) -> Millis {
        Millis(self.epoch.get().map_or(0, |e| e.elapsed().as_millis() as u64))
    }
    /// The state, with its clock moved to now.
    fn lock(&self) -> MutexGuard<'_, State> {
        let now = self.now();
        let mut st = self.state.lock().expect("gateway state lock");
        if now > st.now {
            st.now = now;
        }
        st
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

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Gateway {
    /// A gateway around a controller, with a fresh CA.
    pub fn new(ctl: Controller, config: GatewayConfig) -> Result<Gateway, CaError> {
        let ca = ManagementCa::generate(&config.server_names)?;
        let notify = Arc::new(Notify::new());
        let mut instance = [0u8; 12];
        config.secrets.fill(&mut instance);
        let mut state = State::new(ctl, stratus_link::tls::hex(&instance), ca.fingerprint(), notify.clone());
        state.full_report_every = config.full_report_every;
        state.versions = config.versions.clone();
        let (inbox, rx) = mpsc::unbounded_channel();
        Ok(Gateway {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                ca,
                config,
                notify,
                inbox,
                inbox_rx: Mutex::new(Some(rx)),
                epoch: OnceLock::new(),
            }),
        })
    }

    /// SHA-256 of the CA certificate (what tokens carry).
    pub fn ca_fingerprint(&self) -> [u8; 32] {
        self.shared.ca.fingerprint()
    }

    /// A one-time enrollment token for an inventory host.
    pub fn issue_token(&self, host: HostId) -> Result<String, String> {
        let sh = &self.shared;
        sh.lock().issue_token(host, &sh.config.secrets)
    }

    /// Starts the controller (`Controller::start`) and its timers, then accepts
    /// agents until the listener fails. Call once per gateway.
    pub async fn serve<L: Listener>(&self, mut listener: L) -> std::io::Result<()> {
        let rx = self
            .shared
            .inbox_rx
            .lock()
            .expect("inbox lock")
            .take()
            .ok_or_else(|| std::io::Error::other("this gateway is already serving"))?;
        let _ = self.shared.epoch.set(Instant::now());
        {
            let mut st = self.shared.lock();
            st.ctl.start(Millis(0));
            st.started = true;
            st.drain();
        }
        let _core = AbortOnDrop(tokio::spawn(core_loop(self.shared.clone(), rx)));
        loop {
            match listener.accept().await {
                Ok((sock, _peer)) => {
                    tokio::spawn(connection(self.shared.clone(), sock));
                }
                Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues `f` to run on the controller at the gateway's time (then its
    /// effects are executed); the receiver gets its result. Usable from any
    /// thread or simulated host; runs once `serve` is running.
    pub fn enqueue<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Controller, Millis) -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |st: &mut State| {
            let now = st.now;
            let _ = tx.send(f(&mut st.ctl, now));
        });
        // If the core loop is gone the receiver reports it.
        let _ = self.shared.inbox.send(job);
        rx
    }

    /// Runs `f` on the controller (see `enqueue`) and waits for its result.
    pub async fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Controller, Millis) -> R + Send + 'static) -> R {
        self.enqueue(f).await.expect("the gateway's core loop is gone")
    }

    /// Submits an API request (an async job).
    pub async fn submit(&self, req: Request) -> CoreResult<JobId> {
        self.call(move |ctl, now| ctl.submit(req, now)).await
    }

    /// Reads the controller (ledger, jobs) without changing it.
    pub fn with_controller<R>(&self, f: impl FnOnce(&Controller) -> R) -> R {
        f(&self.shared.state.lock().expect("gateway state lock").ctl)
    }

    /// Hosts with an authenticated connection.
    pub fn connected(&self) -> Vec<HostId> {
        self.shared.state.lock().expect("lock").conns.keys().copied().collect()
    }

    pub fn stats(&self) -> GatewayStats {
        self.shared.state.lock().expect("lock").stats.clone()
    }

    /// Facts a host reported at enrollment.
    pub fn facts(&self, host: HostId) -> Option<HostFacts> {
        self.shared.state.lock().expect("lock").facts(host)
    }

    /// Calls waiting for an answer from this host.
    pub fn pending_for(&self, host: HostId) -> usize {
        self.shared.state.lock().expect("lock").pending_for(host)
    }

    /// SHA-256 of the event log (controller and gateway events, JSON lines).
    pub fn log_sha256(&self) -> String {
        self.shared.state.lock().expect("lock").log_sha256()
    }

    /// The last few thousand log lines.
    pub fn log_tail(&self) -> Vec<String> {
        self.shared
            .state
            .lock()
            .expect("lock")
            .log_tail
            .iter()
            .cloned()
            .collect()
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

/// Timers and API jobs, in one task.
async fn core_loop(shared: Arc<Shared>, mut inbox: mpsc::UnboundedReceiver<Job>) {
    let epoch = *shared.epoch.get().expect("set by serve");
    loop {
        let deadline = shared.state.lock().expect("lock").next_deadline();
        let wake = deadline.map_or(epoch + Duration::from_secs(3600 * 24 * 365), |at| {
            epoch + Duration::from_millis(at.0)
        });
        tokio::select! {
            biased;
            job = inbox.recv() => match job {
                Some(job) => {
                    let mut st = shared.lock();
                    job(&mut st);
                    st.drain();
                }
                None => return,
            },
            _ = tokio::time::sleep_until(wake) => shared.lock().fire_due(),
            _ = shared.notify.notified() => {}
        }
    }
}

/// Refuses a connection before authentication (a greeting-version line).
async fn write_error<W: AsyncWrite + Unpin>(w: &mut W, message: String) {
    let bytes = encode(GREETING_VERSION, &ServerMsg::Error { message });
    let _ = timeout(Duration::from_secs(5), async {
        w.write_all(&bytes).await?;
        w.flush().await?;
        w.shutdown().await
    })
    .await;
}

/// Writes one connection's messages: the greeting's answer in the greeting
/// version, everything else in the negotiated `version`.
async fn writer<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<ServerMsg>,
    limit: Duration,
    version: u32,
) {
    while let Some(msg) = rx.recv().await {
        let v = if msg.is_greeting() { GREETING_VERSION } else { version };
        let bytes = encode(v, &msg);
        let ok = timeout(limit, async {
            w.write_all(&bytes).await?;
            w.flush().await
        })
        .await;
        if !matches!(ok, Ok(Ok(()))) {
            return;
        }
    }
    let _ = timeout(limit, w.shutdown()).await;
}

/// One agent connection: TLS, authentication, then messages until it ends.
async fn connection<S: Stream>(shared: Arc<Shared>, sock: S) {
    let cfg = &shared.config;
    let Ok(Ok(tls)) = timeout(cfg.handshake_timeout, shared.ca.acceptor().accept(sock)).await else {
        return;
    };
    let (r, mut w) = tokio::io::split(tls);
    let mut reader = LineReader::new(r);
    let first = match timeout(cfg.handshake_timeout, reader.next_line()).await {
        Ok(Ok(Some(line))) => decode::<AgentMsg>(&line, GREETING_VERSION).and_then(|m| m.validate().map(|()| m)),
        Ok(Err(FrameError::Protocol(e))) => Err(e),
        _ => return,
    };
    let msg = match first {
        Ok(m) => m,
        Err(e) => {
            shared.lock().stats.malformed += 1;
            return write_error(&mut w, e.to_string()).await;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (kill, mut killed) = oneshot::channel();
    let auth = shared.lock().authenticate(msg, tx.clone(), kill, &cfg.secrets);
    let (host, conn, version) = match auth {
        Ok(x) => x,
        Err(why) => return write_error(&mut w, why).await,
    };
    let dead = Duration::from_millis(shared.lock().ping_ms() * u64::from(cfg.dead_after.max(1)));
    tokio::spawn(writer(w, rx, dead, version));
    loop {
        let line = tokio::select! {
            biased;
            _ = &mut killed => break, // replaced by a newer connection
            r = timeout(dead, reader.next_line()) => r,
        };
        match line {
            Ok(Ok(Some(line))) => match decode::<AgentMsg>(&line, version).and_then(|m| m.validate().map(|()| m)) {
                Ok(msg) => shared.lock().on_agent(host, conn, msg),
                Err(e) => {
                    shared.lock().stats.malformed += 1;
                    let _ = tx.send(ServerMsg::Error { message: e.to_string() });
                }
            },
            Ok(Err(FrameError::Protocol(e))) => {
                shared.lock().stats.malformed += 1;
                let _ = tx.send(ServerMsg::Error { message: e.to_string() });
                break; // framing is lost
            }
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => break, // silent for too long
        }
    }
    shared.lock().closed(host, conn);
}
