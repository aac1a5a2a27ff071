//! The gateway's state: the controller, who is connected, credentials, calls
//! in flight and timers. Every change happens under one lock.
//!
//! The controller is changed only by [`State::feed`]: the input is applied
//! (`Controller::handle`), then queued for the journal (so one that panics is
//! never journaled: `rebuild`), and what it produced is held until the input
//! is durable; [`State::release`] then sends the driver calls, arms the
//! timers and answers the caller (`wal`).

use super::ca::SecretSource;
use super::creds::{HostAuth, TokenEntry};
use super::rebuild::panic_message;
use super::wal::{Answer, Held, Wal};
use crate::store::JournalEntry;
use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use stratus_core::controller::effects::{DriverCall, DriverError, DriverResult, Effect, OpId, Timer};
use stratus_core::controller::{Controller, Input, Reply};
use stratus_core::ids::HostId;
use stratus_core::units::Millis;
use stratus_link::tls::{self, constant_time_eq, secret_hash};
use stratus_link::token::EnrollToken;
use stratus_wire::HostFacts;
use stratus_wire::protocol::{AgentMsg, ServerMsg, negotiate};
use tokio::sync::{Notify, mpsc, oneshot};

/// Counters, for tests and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    pub enrollments: u64,
    pub hellos: u64,
    pub refused: u64,
    pub malformed: u64,
    pub requests_sent: u64,
    pub requests_resent: u64,
    pub replies: u64,
    pub late_replies: u64,
    pub failed_unroutable: u64,
    pub reports_applied: u64,
    pub reports_stale: u64,
    pub heartbeats: u64,
    pub connections_lost: u64,
}

pub(crate) struct Conn {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<ServerMsg>,
    /// Dropping it ends the connection's reader.
    pub _kill: oneshot::Sender<()>,
    /// An outstanding `Resync`: its nonce and the host's migration epoch then.
    resync: Option<(u64, u64)>,
    beats: u64,
}

pub(crate) struct Pending {
    pub host: HostId,
    pub call: DriverCall,
}

/// An agent that passed `admit`, to be registered once its credentials are durable.
pub(crate) struct Admitted {
    pub host: HostId,
    pub version: u32,
    pub greeting: ServerMsg,
    /// For an enrollment: the token used and the new credentials.
    pub enrolled: Option<([u8; 32], HostAuth)>,
}

const LOG_TAIL: usize = 4000;

pub(crate) struct State {
    pub ctl: Controller,
    pub now: Millis,
    pub started: bool,
    /// After `Gateway::halt`: nothing is applied or sent any more.
    pub halted: bool,
    instance: String,
    fingerprint: [u8; 32],
    pub tokens: BTreeMap<[u8; 32], TokenEntry>,
    pub hosts: BTreeMap<HostId, HostAuth>,
    pub conns: BTreeMap<HostId, Conn>,
    next_conn: u64,
    pub pending: BTreeMap<u64, Pending>,
    pub(super) timers: BTreeMap<(Millis, u64), Timer>,
    timer_seq: u64,
    /// Per host: migrations into it whose answer was processed (report barrier).
    mig_epoch: BTreeMap<HostId, u64>,
    next_nonce: u64,
    pub stats: GatewayStats,
    pub full_report_every: u64,
    /// Protocol versions this server accepts.
    pub versions: Vec<u32>,
    log_hash: ring::digest::Context,
    pub log_tail: VecDeque<String>,
    pub log_lines: u64,
    notify: Arc<Notify>,
    pub wal: Wal,
    /// After a restart, until every enrolled agent is back (or this time):
    /// calls no connected agent can take wait here instead of failing.
    grace_until: Option<Millis>,
    pub(super) parked: Vec<(OpId, DriverCall)>,
}

impl State {
    pub fn new(ctl: Controller, instance: String, fingerprint: [u8; 32], notify: Arc<Notify>, wal: Wal) -> State {
        State {
            now: ctl.now(),
            ctl,
            started: false,
            halted: false,
            instance,
            fingerprint,
            tokens: BTreeMap::new(),
            hosts: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            pending: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            mig_epoch: BTreeMap::new(),
            next_nonce: 0,
            stats: GatewayStats::default(),
            full_report_every: 0,
            versions: stratus_wire::protocol::PROTOCOL_VERSIONS.to_vec(),
            log_hash: ring::digest::Context::new(&ring::digest::SHA256),
            log_tail: VecDeque::new(),
            log_lines: 0,
            notify,
            wal,
            grace_until: None,
            parked: Vec::new(),
        }
    }

    /// Starts the post-restart grace: agents are reconnecting, so a call that
    /// only they can take waits for them until `until` (then fails as usual).
    pub fn begin_grace(&mut self, until: Millis) {
        self.grace_until = Some(until);
    }

    /// Routes the calls that waited for agents; once every enrolled agent is
    /// back or the grace is over, those still without one fail.
    fn retry_parked(&mut self) {
        let Some(until) = self.grace_until else { return };
        let everyone = self.hosts.keys().all(|h| self.conns.contains_key(h));
        let over = everyone || self.now >= until;
        let parked = std::mem::take(&mut self.parked);
        let mut failed = Vec::new();
        for (op, call) in parked {
            match self.route(op.0, &call) {
                Ok(host) => self.send_pending(host, op.0, call),
                Err(why) if over => failed.push((op, why)),
                Err(_) => self.parked.push((op, call)),
            }
        }
        if over {
            self.grace_until = None;
            let detail = format!("{} calls found no agent", failed.len());
            self.event("gateway.grace.over", "management-server".into(), detail);
        }
        for (op, why) in failed {
            self.stats.failed_unroutable += 1;
            let result = DriverResult::Failed(why);
            self.feed(Input::Result { op, result }, None);
        }
    }

    fn send_pending(&mut self, host: HostId, op: u64, call: DriverCall) {
        self.send_request(host, op, &call);
        self.pending.insert(op, Pending { host, call });
    }

    pub fn ping_ms(&self) -> u64 {
        let s = self
            .ctl
            .cloud()
            .settings
            .f64("ping.interval", stratus_core::settings::Scope::Global);
        ((s * 1000.0) as u64).max(100)
    }

    pub fn log_sha256(&self) -> String {
        tls::hex(self.log_hash.clone().finish().as_ref())
    }

    fn write_log(&mut self, line: String) {
        self.log_hash.update(line.as_bytes());
        self.log_hash.update(b"\n");
        self.log_lines += 1;
        self.log_tail.push_back(line);
        while self.log_tail.len() > LOG_TAIL {
            self.log_tail.pop_front();
        }
    }

    /// A gateway event in the same log as the controller's.
    pub fn event(&mut self, kind: &'static str, subject: String, detail: String) {
        #[derive(serde::Serialize)]
        struct GatewayLine<'a> {
            t: u64,
            kind: &'a str,
            subject: String,
            detail: String,
        }
        let e = GatewayLine {
            t: self.now.0,
            kind,
            subject,
            detail,
        };
        self.write_log(serde_json::to_string(&e).expect("events serialize"));
    }

    pub fn host_name(&self, h: HostId) -> String {
        let inv = &self.ctl.cloud().inv;
        inv.find_host(h)
            .map(|i| inv.host(i).name.clone())
            .unwrap_or_else(|| h.to_string())
    }

    // ---- the one way into the controller ----

    /// Applies an input now and holds what it produced until it is durable;
    /// `answer` gets the controller's reply then. The input is journaled only
    /// if handling it returned: one that panics is never replayed, and the
    /// controller is rebuilt without it (`rebuild`).
    pub fn feed(&mut self, input: Input, answer: Option<oneshot::Sender<Reply>>) {
        if self.halted {
            return;
        }
        let now = self.now;
        // Encoded first (handling consumes the input); the error path decodes it.
        let payload = input.to_bytes();
        let name = input.name();
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| self.ctl.handle(now, input)));
        let out = match handled {
            Ok(out) => out,
            Err(panic) => return self.after_panic(name, &payload, panic_message(&*panic), answer),
        };
        self.wal.applied += 1;
        let seq = self.wal.applied;
        self.wal.stats.applied = seq;
        self.wal.buf.push(JournalEntry {
            seq,
            at_ms: now.0 as i64,
            payload,
        });
        self.wal.checkpoint_if_due(&self.ctl);
        for e in out.events {
            self.write_log(serde_json::to_string(&e).expect("events serialize"));
        }
        self.wal.held.push_back(Held {
            seq,
            effects: out.effects,
            answer: answer.map(|tx| Answer::Reply(tx, out.reply)),
        });
        if self.wal.sync {
            self.wal.durable = seq;
            self.wal.stats.durable = seq;
            self.release();
        } else {
            self.wal.wake.notify_one();
        }
    }

    /// Answers `tx` with the applied seq once every input applied so far is durable.
    pub fn barrier(&mut self, tx: oneshot::Sender<u64>) {
        if self.wal.applied <= self.wal.durable {
            let _ = tx.send(self.wal.durable);
            return;
        }
        self.wal.held.push_back(Held {
            seq: self.wal.applied,
            effects: Vec::new(),
            answer: Some(Answer::Barrier(tx)),
        });
    }

    /// Lets out everything whose input is durable, in input order.
    pub fn release(&mut self) {
        if self.halted || !self.wal.begin_release() {
            return;
        }
        while let Some(h) = self.wal.next_releasable() {
            match h.answer {
                Some(Answer::Reply(tx, reply)) => {
                    let _ = tx.send(reply);
                }
                Some(Answer::Barrier(tx)) => {
                    let _ = tx.send(h.seq);
                }
                None => {}
            }
            self.execute(h.effects);
        }
        self.wal.end_release();
    }

    /// Sends calls to agents and arms timers. A call nobody can take fails at
    /// once (a new input).
    fn execute(&mut self, effects: Vec<Effect>) {
        for eff in effects {
            match eff {
                Effect::Timer { at, timer } => {
                    self.timer_seq += 1;
                    self.timers.insert((at, self.timer_seq), timer);
                    self.notify.notify_one();
                }
                Effect::Call { op, call } => match self.route(op.0, &call) {
                    Ok(host) => self.send_pending(host, op.0, call),
                    Err(_) if self.grace_until.is_some() => self.parked.push((op, call)),
                    Err(why) => {
                        self.stats.failed_unroutable += 1;
                        let result = DriverResult::Failed(why);
                        self.feed(Input::Result { op, result }, None);
                    }
                },
            }
        }
    }

    // ---- enrollment and connections ----

    /// deleteHost: the host's secret and its tokens are dropped and its
    /// connection closed. Returns the token hashes (for the Store).
    pub fn forget_host(&mut self, host: HostId) -> Vec<[u8; 32]> {
        self.hosts.remove(&host);
        if self.conns.remove(&host).is_some() {
            self.event("agent.disconnected", host.to_string(), "the host was deleted".into());
        }
        let tokens: Vec<[u8; 32]> = self
            .tokens
            .iter()
            .filter(|(_, t)| t.host == host)
            .map(|(h, _)| *h)
            .collect();
        for t in &tokens {
            self.tokens.remove(t);
        }
        tokens
    }

    pub fn issue_token(&mut self, host: HostId, secrets: &SecretSource) -> Result<(String, [u8; 32]), String> {
        if self.ctl.cloud().inv.find_host(host).is_none() {
            return Err(format!("no host {host} in the inventory"));
        }
        let token = EnrollToken {
            ca_fingerprint: self.fingerprint,
            secret: secrets.secret(),
        };
        let hash = secret_hash(&token.secret);
        self.tokens.insert(hash, TokenEntry { host, used: false });
        Ok((token.to_string(), hash))
    }

    /// Checks `Enroll`/`Hello` (protocol version first, so a refused agent
    /// does not use up its token). An enrollment takes its token at once (so
    /// it cannot be used twice meanwhile) but the host is registered by
    /// `register`, after its credentials are durable.
    pub fn admit(&mut self, msg: AgentMsg, secrets: &SecretSource) -> Result<Admitted, String> {
        let ping_interval_ms = self.ping_ms();
        let version = match &msg {
            AgentMsg::Enroll { versions, .. } | AgentMsg::Hello { versions, .. } => {
                negotiate(&self.versions, versions).map_err(|e| self.refuse(e.to_string()))?
            }
            _ => 0, // refused below
        };
        match msg {
            AgentMsg::Enroll {
                token,
                host_name,
                facts,
                versions: _,
            } => {
                let token = EnrollToken::parse(&token).map_err(|e| self.refuse(e.to_string()))?;
                if !constant_time_eq(&token.ca_fingerprint, &self.fingerprint) {
                    return Err(self.refuse("the token was issued by another management server".into()));
                }
                let hash = secret_hash(&token.secret);
                let host = match self.tokens.get(&hash) {
                    None => return Err(self.refuse("unknown enrollment token".into())),
                    Some(t) if t.used => return Err(self.refuse("this enrollment token was already used".into())),
                    Some(t) => t.host,
                };
                if self.ctl.cloud().inv.find_host(host).is_none() {
                    return Err(self.refuse(format!("host {host} was deleted")));
                }
                let name = self.host_name(host);
                if name != host_name {
                    return Err(self.refuse(format!(
                        "the token was issued for host {name}, but this agent calls itself {host_name}"
                    )));
                }
                self.tokens.get_mut(&hash).expect("seen").used = true;
                let secret = secrets.secret();
                let auth = HostAuth {
                    secret_hash: secret_hash(&secret),
                    facts,
                };
                let greeting = ServerMsg::Enrolled {
                    host_id: host,
                    secret,
                    instance: self.instance.clone(),
                    ping_interval_ms,
                    version,
                };
                Ok(Admitted {
                    host,
                    version,
                    greeting,
                    enrolled: Some((hash, auth)),
                })
            }
            AgentMsg::Hello {
                host_id,
                secret,
                versions: _,
            } => {
                // A deleted host is refused even if its credentials outlived it
                // (a crash between the delete and forgetting them).
                let ok = self
                    .hosts
                    .get(&host_id)
                    .is_some_and(|a| constant_time_eq(&a.secret_hash, &secret_hash(&secret)))
                    && self.ctl.cloud().inv.find_host(host_id).is_some();
                if !ok {
                    return Err(self.refuse("unknown host or wrong secret".into()));
                }
                self.stats.hellos += 1;
                let greeting = ServerMsg::Welcome {
                    host_id,
                    instance: self.instance.clone(),
                    ping_interval_ms,
                    version,
                };
                Ok(Admitted {
                    host: host_id,
                    version,
                    greeting,
                    enrolled: None,
                })
            }
            other => Err(self.refuse(format!("authenticate first (enroll or hello), got {}", other.kind()))),
        }
    }

    /// An enrollment whose credentials could not be stored: its token is usable again.
    pub fn unadmit(&mut self, token: &[u8; 32], why: String) -> String {
        if let Some(t) = self.tokens.get_mut(token) {
            t.used = false;
        }
        self.refuse(why)
    }

    /// Registers an admitted agent: queues the greeting, a `Resync`, and every
    /// request still waiting for this host. Returns the connection id.
    pub fn register(&mut self, a: Admitted, tx: mpsc::UnboundedSender<ServerMsg>, kill: oneshot::Sender<()>) -> u64 {
        let host = a.host;
        let name = self.host_name(host);
        if let Some((_, auth)) = a.enrolled {
            self.stats.enrollments += 1;
            let f = &auth.facts;
            let detail = format!(
                "{} cores x {} MHz, {} MiB, {}",
                f.cpu_cores,
                f.cpu_mhz,
                f.memory_bytes >> 20,
                f.hypervisor_version
            );
            self.event("agent.enrolled", name.clone(), detail);
            self.hosts.insert(host, auth);
        }
        self.next_conn += 1;
        let id = self.next_conn;
        let replaced = self.conns.remove(&host).is_some();
        let detail = if replaced {
            "replaces its previous connection"
        } else {
            ""
        };
        self.event("agent.connected", name, detail.into());
        let _ = tx.send(a.greeting);
        self.conns.insert(
            host,
            Conn {
                id,
                tx,
                _kill: kill,
                resync: None,
                beats: 0,
            },
        );
        self.resync(host);
        let waiting: Vec<(u64, DriverCall)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.host == host)
            .map(|(op, p)| (*op, p.call.clone()))
            .collect();
        for (op, call) in waiting {
            self.stats.requests_resent += 1;
            self.send_request(host, op, &call);
        }
        self.feed(Input::Pings { hosts: vec![host] }, None);
        self.retry_parked();
        id
    }

    fn refuse(&mut self, why: String) -> String {
        self.stats.refused += 1;
        self.event("agent.refused", "-".into(), why.clone());
        why
    }

    pub fn facts(&self, host: HostId) -> Option<HostFacts> {
        self.hosts.get(&host).map(|a| a.facts.clone())
    }

    pub fn closed(&mut self, host: HostId, conn: u64) {
        if self.conns.get(&host).is_none_or(|c| c.id != conn) {
            return;
        }
        self.conns.remove(&host);
        self.stats.connections_lost += 1;
        let name = self.host_name(host);
        self.event("agent.lost", name, "connection closed".into());
        // Probes this agent ran for others: lease reads and power-off are
        // idempotent, so another agent takes them; a neighbour check can only
        // come from this host, so it is an unknown now. Calls that change
        // things wait for this host (or the controller's timeout).
        let moved: Vec<(u64, DriverCall)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.host == host)
            .filter(|(_, p)| {
                matches!(
                    p.call,
                    DriverCall::CheckLease { .. } | DriverCall::PowerOff { .. } | DriverCall::PingNeighbour { .. }
                )
            })
            .map(|(op, p)| (*op, p.call.clone()))
            .collect();
        for (op, call) in moved {
            match self.route(op, &call) {
                Ok(other) => {
                    self.pending.get_mut(&op).expect("listed").host = other;
                    self.send_request(other, op, &call);
                }
                Err(why) => {
                    // Sent to an agent whose connection just closed: it may
                    // have run (a power-off may have happened).
                    self.pending.remove(&op);
                    self.stats.failed_unroutable += 1;
                    let result = DriverResult::Failed(DriverError::in_doubt(why.message));
                    self.feed(Input::Result { op: OpId(op), result }, None);
                }
            }
        }
    }

    fn send(&self, host: HostId, msg: ServerMsg) -> bool {
        self.conns.get(&host).is_some_and(|c| c.tx.send(msg).is_ok())
    }

    fn send_request(&mut self, host: HostId, op: u64, call: &DriverCall) {
        let mut call = call.clone();
        // A real hypervisor needs the destination's address to migrate to.
        if let DriverCall::MigrateDomain { to, to_uri, .. } = &mut call
            && to_uri.is_none()
        {
            *to_uri = self.facts(*to).and_then(|f| f.migration_uri);
        }
        let msg = ServerMsg::Request { req_id: op, call };
        if self.send(host, msg) {
            self.stats.requests_sent += 1;
        }
    }

    pub(super) fn resync(&mut self, host: HostId) {
        self.next_nonce += 1;
        let nonce = self.next_nonce;
        let epoch = self.mig_epoch.get(&host).copied().unwrap_or(0);
        if let Some(c) = self.conns.get_mut(&host) {
            c.resync = Some((nonce, epoch));
            let _ = c.tx.send(ServerMsg::Resync { nonce });
        }
    }

    /// A message from an authenticated connection.
    pub fn on_agent(&mut self, host: HostId, conn: u64, msg: AgentMsg) {
        if self.halted || self.conns.get(&host).is_none_or(|c| c.id != conn) {
            return; // a connection that was replaced
        }
        match msg {
            AgentMsg::Heartbeat { host_id, seq } => {
                if host_id != host {
                    let message = "heartbeat names another host".into();
                    self.send(host, ServerMsg::Error { message });
                    return;
                }
                self.stats.heartbeats += 1;
                self.feed(Input::Pings { hosts: vec![host] }, None);
                self.send(host, ServerMsg::Pong { seq });
                let every = self.full_report_every;
                let Some(c) = self.conns.get_mut(&host) else { return };
                c.beats += 1;
                if every > 0 && c.beats.is_multiple_of(every) {
                    // Also supersedes a resync the agent could not answer.
                    self.resync(host);
                }
            }
            AgentMsg::VmReport { nonce, running } => {
                let epoch = self.mig_epoch.get(&host).copied().unwrap_or(0);
                let outstanding = self.conns.get(&host).and_then(|c| c.resync);
                match (nonce, outstanding) {
                    (Some(n), Some((m, e))) if n == m => {
                        if e == epoch {
                            self.conns.get_mut(&host).expect("checked").resync = None;
                            self.stats.reports_applied += 1;
                            let reports = vec![(host, running)];
                            self.feed(Input::VmReports { reports }, None);
                        } else {
                            // A migration into this host finished meanwhile: the
                            // list may predate it. Ask again.
                            self.stats.reports_stale += 1;
                            self.resync(host);
                        }
                    }
                    (None, None) => self.resync(host),
                    _ => {} // an old nonce, or a resync is already outstanding
                }
            }
            AgentMsg::Reply { req_id, result } => {
                let mine = self.pending.get(&req_id).is_some_and(|p| p.host == host);
                if !mine {
                    self.stats.late_replies += 1;
                    return;
                }
                let p = self.pending.remove(&req_id).expect("checked");
                if let DriverCall::MigrateDomain { to, .. } = p.call {
                    *self.mig_epoch.entry(to).or_insert(0) += 1;
                }
                self.stats.replies += 1;
                self.feed(
                    Input::Result {
                        op: OpId(req_id),
                        result,
                    },
                    None,
                );
            }
            AgentMsg::Enroll { .. } | AgentMsg::Hello { .. } => {
                let message = "already authenticated".into();
                self.send(host, ServerMsg::Error { message });
            }
        }
    }

    // ---- timers ----

    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.keys().next().map(|k| k.0)
    }

    /// Delivers every timer due now.
    pub fn fire_due(&mut self) {
        let now = self.now;
        while let Some(entry) = self.timers.first_entry() {
            if self.halted || entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Timer::OpTimeout(op) = timer {
                // The controller gives up on it: never deliver it late.
                self.pending.remove(&op.0);
                self.parked.retain(|(p, _)| *p != op);
            }
            self.feed(Input::Timer { timer }, None);
        }
        self.retry_parked();
    }

    pub fn pending_for(&self, host: HostId) -> usize {
        self.pending.values().filter(|p| p.host == host).count()
    }
}
