//! The gateway's state: the controller, who is connected, credentials, calls
//! in flight and timers. Every change happens under one lock, on the
//! gateway's own clock (ms since it started).

use super::ca::SecretSource;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use stratus_core::controller::Controller;
use stratus_core::controller::effects::{DriverCall, DriverError, DriverResult, Effect, OpId, Timer};
use stratus_core::ids::HostId;
use stratus_core::inventory::{HostStatus, PoolScope};
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

struct TokenEntry {
    host: HostId,
    used: bool,
}

struct HostAuth {
    secret_hash: [u8; 32],
    facts: HostFacts,
}

struct Pending {
    host: HostId,
    call: DriverCall,
}

const LOG_TAIL: usize = 4000;

pub(crate) struct State {
    pub ctl: Controller,
    pub now: Millis,
    pub started: bool,
    instance: String,
    fingerprint: [u8; 32],
    tokens: BTreeMap<[u8; 32], TokenEntry>,
    hosts: BTreeMap<HostId, HostAuth>,
    pub conns: BTreeMap<HostId, Conn>,
    next_conn: u64,
    pending: BTreeMap<u64, Pending>,
    timers: BTreeMap<(Millis, u64), Timer>,
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
}

impl State {
    pub fn new(ctl: Controller, instance: String, fingerprint: [u8; 32], notify: Arc<Notify>) -> State {
        State {
            ctl,
            now: Millis(0),
            started: false,
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
        }
    }

    pub fn ping_ms(&self) -> u64 {
        let s = self
            .ctl
            .cloud
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

    fn host_name(&self, h: HostId) -> String {
        let inv = &self.ctl.cloud.inv;
        inv.find_host(h)
            .map(|i| inv.host(i).name.clone())
            .unwrap_or_else(|| h.to_string())
    }

    pub fn issue_token(&mut self, host: HostId, secrets: &SecretSource) -> Result<String, String> {
        if self.ctl.cloud.inv.find_host(host).is_none() {
            return Err(format!("no host {host} in the inventory"));
        }
        let token = EnrollToken {
            ca_fingerprint: self.fingerprint,
            secret: secrets.secret(),
        };
        self.tokens
            .insert(secret_hash(&token.secret), TokenEntry { host, used: false });
        Ok(token.to_string())
    }

    /// Checks `Enroll`/`Hello` (protocol version first, so a refused agent
    /// does not use up its token); on success registers the connection and
    /// queues the greeting, a `Resync`, and every request still waiting for
    /// this host. Returns the host, the connection and the agreed version.
    pub fn authenticate(
        &mut self,
        msg: AgentMsg,
        tx: mpsc::UnboundedSender<ServerMsg>,
        kill: oneshot::Sender<()>,
        secrets: &SecretSource,
    ) -> Result<(HostId, u64, u32), String> {
        let ping_interval_ms = self.ping_ms();
        let version = match &msg {
            AgentMsg::Enroll { versions, .. } | AgentMsg::Hello { versions, .. } => {
                negotiate(&self.versions, versions).map_err(|e| self.refuse(e.to_string()))?
            }
            _ => 0, // refused below
        };
        let (host, greeting) = match msg {
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
                let name = self.host_name(host);
                if name != host_name {
                    return Err(self.refuse(format!(
                        "the token was issued for host {name}, but this agent calls itself {host_name}"
                    )));
                }
                self.tokens.get_mut(&hash).expect("seen").used = true;
                let secret = secrets.secret();
                self.hosts.insert(
                    host,
                    HostAuth {
                        secret_hash: secret_hash(&secret),
                        facts: facts.clone(),
                    },
                );
                self.stats.enrollments += 1;
                self.event(
                    "agent.enrolled",
                    name,
                    format!(
                        "{} cores x {} MHz, {} MiB, {}",
                        facts.cpu_cores,
                        facts.cpu_mhz,
                        facts.memory_bytes >> 20,
                        facts.hypervisor_version
                    ),
                );
                let greeting = ServerMsg::Enrolled {
                    host_id: host,
                    secret,
                    instance: self.instance.clone(),
                    ping_interval_ms,
                    version,
                };
                (host, greeting)
            }
            AgentMsg::Hello {
                host_id,
                secret,
                versions: _,
            } => {
                let ok = self
                    .hosts
                    .get(&host_id)
                    .is_some_and(|a| constant_time_eq(&a.secret_hash, &secret_hash(&secret)));
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
                (host_id, greeting)
            }
            other => {
                return Err(self.refuse(format!("authenticate first (enroll or hello), got {}", other.kind())));
            }
        };
        self.next_conn += 1;
        let id = self.next_conn;
        let replaced = self.conns.remove(&host).is_some();
        let name = self.host_name(host);
        self.event(
            "agent.connected",
            name,
            if replaced {
                "replaces its previous connection"
            } else {
                ""
            }
            .into(),
        );
        let _ = tx.send(greeting);
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
        let now = self.now;
        self.ctl.on_pings(&[host], now);
        self.drain();
        Ok((host, id, version))
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
        let now = self.now;
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
                    let e = DriverError::in_doubt(why.message);
                    self.ctl.on_result(OpId(op), DriverResult::Failed(e), now);
                }
            }
        }
        self.drain();
    }

    fn send(&self, host: HostId, msg: ServerMsg) -> bool {
        self.conns.get(&host).is_some_and(|c| c.tx.send(msg).is_ok())
    }

    fn send_request(&mut self, host: HostId, op: u64, call: &DriverCall) {
        let msg = ServerMsg::Request {
            req_id: op,
            call: call.clone(),
        };
        if self.send(host, msg) {
            self.stats.requests_sent += 1;
        }
    }

    fn resync(&mut self, host: HostId) {
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
        if self.conns.get(&host).is_none_or(|c| c.id != conn) {
            return; // a connection that was replaced
        }
        let now = self.now;
        match msg {
            AgentMsg::Heartbeat { host_id, seq } => {
                if host_id != host {
                    self.send(
                        host,
                        ServerMsg::Error {
                            message: "heartbeat names another host".into(),
                        },
                    );
                    return;
                }
                self.stats.heartbeats += 1;
                self.ctl.on_pings(&[host], now);
                self.send(host, ServerMsg::Pong { seq });
                let every = self.full_report_every;
                let c = self.conns.get_mut(&host).expect("checked");
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
                            self.ctl.on_vm_report(host, &running, now);
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
                self.ctl.on_result(OpId(req_id), result, now);
            }
            AgentMsg::Enroll { .. } | AgentMsg::Hello { .. } => {
                self.send(
                    host,
                    ServerMsg::Error {
                        message: "already authenticated".into(),
                    },
                );
                return;
            }
        }
        self.drain();
    }

    /// Executes the controller's effects until it has none left.
    pub fn drain(&mut self) {
        loop {
            for e in self.ctl.take_log() {
                self.write_log(serde_json::to_string(&e).expect("events serialize"));
            }
            let effects = self.ctl.take_effects();
            if effects.is_empty() {
                return;
            }
            let mut failed = Vec::new();
            for eff in effects {
                match eff {
                    Effect::Timer { at, timer } => {
                        self.timer_seq += 1;
                        self.timers.insert((at, self.timer_seq), timer);
                        self.notify.notify_one();
                    }
                    Effect::Call { op, call } => match self.route(op.0, &call) {
                        Ok(host) => {
                            self.pending.insert(
                                op.0,
                                Pending {
                                    host,
                                    call: call.clone(),
                                },
                            );
                            self.send_request(host, op.0, &call);
                        }
                        Err(why) => failed.push((op, why)),
                    },
                }
            }
            let now = self.now;
            for (op, why) in failed {
                self.stats.failed_unroutable += 1;
                self.ctl.on_result(op, DriverResult::Failed(why), now);
            }
        }
    }

    /// Which agent executes a call. Calls for one host wait for it (until the
    /// controller's timeout); probes and storage/fencing calls go to a
    /// connected agent that can do them, or fail at once.
    /// A call nobody can take now surely did not happen (`Unavailable`).
    fn route(&self, op: u64, call: &DriverCall) -> Result<HostId, DriverError> {
        let inv = &self.ctl.cloud.inv;
        match call {
            DriverCall::PingNeighbour { from, .. } => {
                if self.conns.contains_key(from) {
                    Ok(*from)
                } else {
                    Err(DriverError::unavailable(format!(
                        "the agent of {} is not connected",
                        self.host_name(*from)
                    )))
                }
            }
            DriverCall::PowerOff { host } => {
                let Some(target) = inv.find_host(*host).map(|i| inv.host(i)) else {
                    return Err(DriverError::not_found("unknown host"));
                };
                let (cluster, zone) = (target.cluster, target.zone);
                let same_cluster = self.pick(op, *host, |h| inv.host(h).cluster == cluster);
                same_cluster
                    .or_else(|| self.pick(op, *host, |h| inv.host(h).zone == zone))
                    .ok_or_else(|| {
                        DriverError::unavailable(format!(
                            "no connected agent in the zone of {} can fence it",
                            target.name
                        ))
                    })
            }
            _ => match (call.host(), pool_of(call)) {
                (Some(h), _) => Ok(h),
                (None, Some((pool, exclude))) => {
                    let Some(p) = inv.find_pool(pool).map(|i| inv.pool(i)) else {
                        return Err(DriverError::not_found("unknown storage pool"));
                    };
                    let (scope, zone) = (p.scope, p.zone);
                    let exclude = exclude.unwrap_or(HostId(stratus_core::uuid::Uuid::nil()));
                    self.pick(op, exclude, |h| match scope {
                        PoolScope::Cluster(c) => inv.host(h).cluster == c,
                        PoolScope::Zone => inv.host(h).zone == zone,
                        PoolScope::Host(x) => h == x,
                    })
                    .ok_or_else(|| {
                        DriverError::unavailable(format!("no connected agent can reach storage pool {}", p.name))
                    })
                }
                // Secondary storage (snapshots) is reachable from any agent.
                (None, None) if matches!(call, DriverCall::DeleteSnapshot { .. }) => self
                    .pick(op, HostId(stratus_core::uuid::Uuid::nil()), |_| true)
                    .ok_or_else(|| DriverError::unavailable("no connected agent can reach secondary storage")),
                (None, None) => Err(DriverError::refused(format!("{} has no executor", call.name()))),
            },
        }
    }

    /// A connected agent (not `exclude`) passing `ok`, Up hosts first; spread by op id.
    fn pick(&self, op: u64, exclude: HostId, ok: impl Fn(stratus_core::ids::HostIdx) -> bool) -> Option<HostId> {
        let inv = &self.ctl.cloud.inv;
        let candidates: Vec<(HostId, bool)> = self
            .conns
            .keys()
            .filter(|h| **h != exclude)
            .filter_map(|h| inv.find_host(*h).map(|i| (*h, i)))
            .filter(|(_, i)| ok(*i))
            .map(|(h, i)| (h, inv.host(i).status == HostStatus::Up))
            .collect();
        let up: Vec<HostId> = candidates.iter().filter(|c| c.1).map(|c| c.0).collect();
        let all: Vec<HostId> = candidates.iter().map(|c| c.0).collect();
        let from = if up.is_empty() { all } else { up };
        (!from.is_empty()).then(|| from[(op % from.len() as u64) as usize])
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.keys().next().map(|k| k.0)
    }

    /// Delivers every timer due at `now`.
    pub fn fire_due(&mut self) {
        let now = self.now;
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Timer::OpTimeout(op) = timer {
                // The controller gives up on it: never deliver it late.
                self.pending.remove(&op.0);
            }
            self.ctl.on_timer(timer, now);
            self.drain();
        }
    }

    pub fn pending_for(&self, host: HostId) -> usize {
        self.pending.values().filter(|p| p.host == host).count()
    }
}

fn pool_of(call: &DriverCall) -> Option<(stratus_core::ids::PoolId, Option<HostId>)> {
    match call {
        DriverCall::CheckLease { host, pool } => Some((*pool, Some(*host))),
        other => other.pool().map(|p| (p, None)),
    }
}
