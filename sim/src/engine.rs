//! The discrete-event engine: a virtual clock and an ordered event queue drive
//! the controller and the simulated world directly, with no async runtime.
//! Same inputs and seed ⇒ byte-identical event log.
//!
//! Simulated time (`now`, the queue, the world, every log line and report)
//! starts at 0; the controller gets epoch milliseconds, `epoch + now`, as a
//! real runtime would hand it. The conversion happens only here, so the event
//! log does not depend on the epoch.

use crate::journal::InputJournal;
use crate::world::{Outcome, World};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use stratus_core::controller::effects::{DriverResult, Effect, OpId, Timer};
use stratus_core::controller::{Controller, Input, Reply, Request};
use stratus_core::units::{Millis, SIM_EPOCH_MS};

/// Something that happens at a simulated time.
#[derive(Clone, Debug)]
pub enum Ev {
    Result {
        op: OpId,
        result: DriverResult,
    },
    Timer(Timer),
    /// Hook for the scenario runner (workload, faults); `u64` is its own tag.
    Script(u64),
    ManagementUp,
    /// The management server crashes now and is back after `downtime_ms`.
    ManagementCrash {
        downtime_ms: u64,
    },
    /// Hosts ping and renew their leases (every `ping.interval`).
    PingRound,
}

/// What the world holds beyond the ledger at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeakReport {
    /// Lost: nothing in the controller will ever clean these up.
    pub leaks: Vec<String>,
    /// Belongs to a job still running when the run ended.
    pub in_flight: Vec<String>,
    /// Held by the reconciler, which retries the undo until it is done.
    pub awaiting_cleanup: Vec<String>,
}

/// The events triggers and timeline expectations look at.
fn watched(k: stratus_core::controller::EventKind) -> bool {
    use stratus_core::controller::EventKind as K;
    matches!(
        k,
        K::HostState
            | K::HostResourceState
            | K::MaintenancePlan
            | K::JobSubmit
            | K::JobDone
            | K::JobFail
            | K::HaRecovered
            | K::VmStopped
    )
}

/// When the full (O(n)) audit runs; the cheap checks run after every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvery {
    Event,
    Events(u64),
}

pub struct Engine {
    pub ctl: Controller,
    pub world: World,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    /// Simulated time since the start, ms.
    pub now: u64,
    /// The controller's clock at simulated time 0 (epoch ms).
    pub epoch: u64,
    pub ms_down_until: Option<u64>,
    hasher: Sha256,
    pub log_file: Option<Box<dyn Write>>,
    pub events: u64,
    pub violations: Vec<String>,
    pub audit_every: AuditEvery,
    /// Where the per-event invariants left off in the controller's logs.
    checked: crate::invariants::Cursor,
    pub submitted_jobs: u64,
    pub deployed_vms: u64,
    pub refused_requests: u64,
    /// Keeps (a bounded number of) log lines in memory, for golden tests.
    pub keep_log: Option<Vec<String>>,
    ping_ms: u64,
    /// Inputs go here before the controller sees them (write-ahead); a
    /// management restart recovers from it.
    journal: Option<Box<dyn InputJournal>>,
    input_seq: u64,
    /// A snapshot is taken at least this many inputs apart; more when the
    /// state is large, so snapshot cost stays proportional to inputs.
    pub snapshot_every: u64,
    next_snapshot: u64,
    work_since_snapshot: u64,
    /// The state hash when the management server crashed.
    crash_hash: Option<String>,
    /// Recoveries from the journal (each checked by state hash).
    pub recoveries: u64,
    /// When set, the controller's host, job and maintenance events are also
    /// kept here (simulated time) for the runner's triggers and timeline.
    pub watch: Option<Vec<stratus_core::controller::Event>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("now", &self.now)
            .field("events", &self.events)
            .finish()
    }
}

impl Engine {
    /// An engine whose controller starts at [`SIM_EPOCH_MS`].
    pub fn new(ctl: Controller, world: World) -> Engine {
        Engine::starting_at(ctl, world, SIM_EPOCH_MS)
    }

    /// An engine whose controller's clock reads `epoch_ms` at simulated time 0.
    pub fn starting_at(mut ctl: Controller, world: World, epoch_ms: u64) -> Engine {
        let hosts = ctl.cloud().inv.hosts.len() as u64;
        // VMs of the inventory it starts from (an export) count as deployed.
        let existing = ctl.cloud().vm_count() as u64 + ctl.cloud().expunged_count();
        ctl.apply(Millis(epoch_ms), Input::Boot);
        let ping_ms = ctl.ping_interval_ms();
        let mut e = Engine {
            ctl,
            world,
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            epoch: epoch_ms,
            ms_down_until: None,
            hasher: Sha256::new(),
            log_file: None,
            events: 0,
            violations: Vec::new(),
            audit_every: if hosts <= 200 {
                AuditEvery::Event
            } else {
                AuditEvery::Events(hosts * 10)
            },
            checked: Default::default(),
            submitted_jobs: 0,
            deployed_vms: existing,
            refused_requests: 0,
            keep_log: None,
            ping_ms,
            journal: None,
            input_seq: 0,
            snapshot_every: 20_000,
            next_snapshot: 0,
            work_since_snapshot: 0,
            crash_hash: None,
            recoveries: 0,
            watch: None,
        };
        e.after_controller();
        e.schedule(ping_ms, Ev::PingRound);
        e
    }

    /// Journals every later input; the current state is the first snapshot.
    pub fn attach_journal(&mut self, mut journal: Box<dyn InputJournal>) -> Result<(), String> {
        journal.snapshot(self.input_seq, &self.ctl)?;
        self.journal = Some(journal);
        self.next_snapshot = self.snapshot_spacing();
        self.work_since_snapshot = 0;
        Ok(())
    }

    /// The controller's time now (epoch ms).
    pub fn ctl_now(&self) -> Millis {
        Millis(self.epoch + self.now)
    }

    /// Simulated time of a controller time.
    pub fn sim_time(&self, t: Millis) -> u64 {
        t.0.saturating_sub(self.epoch)
    }

    /// How many inputs the controller has been fed since the journal began.
    pub fn inputs(&self) -> u64 {
        self.input_seq
    }

    /// The one way into the controller: journal (write-ahead), then apply.
    pub fn feed(&mut self, input: Input) -> Reply {
        if let Some(j) = self.journal.as_mut() {
            // Replay cost grows with the records an input touches, not its count.
            self.work_since_snapshot += match &input {
                Input::Pings { hosts } => hosts.len() as u64,
                Input::VmReports { reports } => reports.iter().map(|(_, v)| 1 + v.len() as u64).sum(),
                _ => 1,
            };
            self.input_seq += 1;
            if let Err(e) = j.append(self.input_seq, self.epoch + self.now, &input) {
                self.violations.push(format!("journal append failed: {e}"));
            }
        }
        let reply = self.ctl.apply(self.ctl_now(), input);
        if self.journal.is_some() && self.work_since_snapshot >= self.next_snapshot {
            self.work_since_snapshot = 0;
            self.next_snapshot = self.snapshot_spacing();
            if let Some(j) = self.journal.as_mut()
                && let Err(e) = j.snapshot(self.input_seq, &self.ctl)
            {
                self.violations.push(format!("snapshot failed: {e}"));
            }
        }
        reply
    }

    /// Work (records touched by inputs) between snapshots: the configured
    /// minimum, or 16 times the records a snapshot writes (jobs and VMs), so
    /// snapshot cost stays a small share of the work and replay stays bounded.
    fn snapshot_spacing(&self) -> u64 {
        let records = (self.ctl.jobs().len() + self.ctl.cloud().vm_count()) as u64;
        self.snapshot_every.max(1).max(16 * records)
    }

    /// The management server crashes now: nothing reaches it until `up_at`.
    pub fn crash_management(&mut self, up_at: u64) {
        self.ms_down_until = Some(up_at);
        if self.journal.is_some() {
            // The crash comes right after a group commit: the durable prefix is
            // every input so far. (Inputs still unflushed had no effect outside
            // the process, so losing them equals their arriving after the crash.)
            self.flush_journal();
            self.crash_hash = Some(self.ctl.state_hash());
        }
        self.schedule(up_at, Ev::ManagementUp);
    }

    fn flush_journal(&mut self) {
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = j.flush()
        {
            self.violations.push(format!("journal flush failed: {e}"));
        }
    }

    /// Rebuilds the controller from the journal and checks it equals the one
    /// that crashed (the durable prefix is everything: each input is journaled
    /// before it is applied).
    fn recover_controller(&mut self) {
        let Some(j) = self.journal.as_mut() else { return };
        match j.recover() {
            Ok((ctl, seq)) => {
                let hash = ctl.state_hash();
                let expected = self.crash_hash.take().unwrap_or_default();
                if hash != expected || seq != self.input_seq {
                    self.violations.push(format!(
                        "recovery mismatch: state hash {hash} after input {seq}, crashed at {expected} after input {}",
                        self.input_seq
                    ));
                }
                self.ctl = ctl;
                self.recoveries += 1;
            }
            Err(e) => self.violations.push(format!("recovery failed: {e}")),
        }
    }

    pub fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), ev);
    }

    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    pub fn next_time(&self) -> Option<u64> {
        self.queue.keys().next().map(|k| k.0)
    }

    pub fn log_sha256(&self) -> String {
        let digest = self.hasher.clone().finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Writes one line to the event log (hash, optional file, optional memory).
    /// The simulator's own kinds (faults, watchdog, checker) sit beside the
    /// controller's `EventKind`s in one log, with the same line format.
    pub fn log(&mut self, kind: &'static str, subject: &str, detail: &str) {
        #[derive(serde::Serialize)]
        struct WorldLine<'a> {
            t: u64,
            kind: &'a str,
            subject: &'a str,
            detail: &'a str,
        }
        let e = WorldLine {
            t: self.now,
            kind,
            subject,
            detail,
        };
        self.write_event(&e);
    }

    fn write_event(&mut self, e: &impl serde::Serialize) {
        let line = serde_json::to_string(e).expect("events serialize");
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        if let Some(f) = self.log_file.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        if let Some(k) = self.keep_log.as_mut() {
            k.push(line);
        }
    }

    /// Submits an API request now. Refused while the management server is down.
    pub fn submit(&mut self, req: Request) -> Result<stratus_core::controller::JobId, String> {
        if self.ms_down_until.is_some() {
            self.refused_requests += 1;
            return Err("management server is down".into());
        }
        let is_deploy = matches!(req, Request::Deploy(_));
        let r = match self.feed(Input::Request { request: req }) {
            Reply::Job(r) => r,
            other => unreachable!("a request is answered with a job: {other:?}"),
        };
        // A job id is returned only once the request is durable.
        if r.is_ok() {
            self.flush_journal();
        }
        self.after_controller();
        match r {
            Ok(job) => {
                self.submitted_jobs += 1;
                if is_deploy {
                    self.deployed_vms += 1;
                }
                Ok(job)
            }
            Err(e) => {
                self.refused_requests += 1;
                Err(e.to_string())
            }
        }
    }

    /// Executes the controller's effects and copies its log. The inputs that
    /// produced them are made durable first (write-ahead).
    pub fn after_controller(&mut self) {
        for mut e in self.ctl.take_log() {
            e.t = self.sim_time(Millis(e.t));
            self.write_event(&e);
            if let Some(w) = self.watch.as_mut()
                && watched(e.kind)
            {
                w.push(e);
            }
        }
        let effects = self.ctl.take_effects();
        // Group commit: inputs whose effects stay in the process (timers, state)
        // wait for the next flush; a driver call leaves only once every input
        // before it is durable.
        if effects.iter().any(|e| matches!(e, Effect::Call { .. })) {
            self.flush_journal();
        }
        // A call the world will answer never needs its timeout: the answer comes
        // first (or is lost with a management restart, which forgets the call).
        let mut answered: Option<OpId> = None;
        for eff in effects {
            match eff {
                Effect::Call { op, call } => match self.world.execute(&call, self.now) {
                    Outcome::Reply { at, result } => {
                        answered = Some(op);
                        self.schedule(at, Ev::Result { op, result })
                    }
                    Outcome::Silence => {}
                },
                Effect::Timer {
                    timer: Timer::OpTimeout(op),
                    ..
                } if answered == Some(op) => {}
                Effect::Timer { at, timer } => self.schedule(self.sim_time(at), Ev::Timer(timer)),
            }
        }
        if let Some(at) = self.world.crash_at.take() {
            self.schedule(at, Ev::ManagementCrash { downtime_ms: 30_000 });
        }
    }

    /// Pops and handles the next event at or before `until`. Returns the script
    /// tag when the event belongs to the runner.
    pub fn step(&mut self, until: u64) -> Option<Option<u64>> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > until {
            return None;
        }
        let ev = self.queue.remove(&key).expect("just seen");
        self.now = key.0;
        self.events += 1;
        let mut script = None;
        let down = self.ms_down_until.is_some();
        match ev {
            Ev::Result { op, result } if !down => {
                self.feed(Input::Result { op, result });
                self.after_controller();
            }
            Ev::Timer(t) if !down => {
                self.feed(Input::Timer { timer: t });
                self.after_controller();
            }
            Ev::Result { .. } | Ev::Timer(_) => {} // lost while the management server is down
            Ev::ManagementCrash { downtime_ms } => {
                if self.ms_down_until.is_none() {
                    self.log("fault", "management-server", "crashed");
                    self.crash_management(self.now + downtime_ms);
                }
            }
            Ev::ManagementUp => {
                self.ms_down_until = None;
                self.recover_controller();
                self.feed(Input::Restart);
                // Every agent reconnects to the restarted server and reports.
                let reports = self.world.full_reports();
                self.feed(Input::VmReports { reports });
                self.after_controller();
            }
            Ev::Script(tag) => script = Some(tag),
            Ev::PingRound => {
                // The world runs on whether management listens or not.
                let round = self.world.ping_round(self.now);
                for h in &round.self_fenced {
                    let name = self.world.hosts[h].name.clone();
                    self.log("watchdog", &name, "lease lost: the host stopped its VMs");
                }
                if !down {
                    self.feed(Input::Pings { hosts: round.pings });
                    if !round.full_reports.is_empty() {
                        self.feed(Input::VmReports {
                            reports: round.full_reports,
                        });
                    }
                    for (host, vm) in round.stopped {
                        self.feed(Input::VmStopped { host, vm });
                    }
                    self.after_controller();
                }
                self.schedule(self.now + self.ping_ms, Ev::PingRound);
            }
        }
        self.check_cheap();
        let full = match self.audit_every {
            AuditEvery::Event => true,
            AuditEvery::Events(n) => self.events.is_multiple_of(n.max(1)),
        };
        if full {
            self.check_full();
        }
        Some(script)
    }

    /// Runs the engine alone (no script) until nothing is in flight or `until`.
    pub fn run_quiet(&mut self, until: u64) {
        while self.ctl.in_flight() > 0 {
            if self.step(until).is_none() {
                break;
            }
        }
    }

    /// Checks cheap enough for every event.
    pub fn check_cheap(&mut self) {
        use crate::invariants as inv;
        for vm in std::mem::take(&mut self.world.duplicates) {
            self.violation(inv::vm_runs_twice(&self.ctl, vm));
        }
        let mut found = inv::new_ha_losses_fenced(&self.ctl, &self.world, &mut self.checked.ha_losses);
        found.extend(inv::no_down_with_fresh_lease(
            &self.ctl,
            &self.world,
            self.checked.host_downs,
            self.now,
            self.ping_ms,
        ));
        self.checked.host_downs = self.ctl.host_downs().len();
        for v in found {
            self.violation(v);
        }
        let c = &self.ctl.cloud();
        if c.vm_count() as u64 + c.expunged_count() != self.deployed_vms {
            let msg = format!(
                "VM records lost: {} deployed, {} live + {} expunged",
                self.deployed_vms,
                c.vm_count(),
                c.expunged_count()
            );
            self.violation(msg);
        }
        if self.ctl.jobs().len() as u64 != self.submitted_jobs + self.internal_jobs() {
            let msg = format!(
                "job records lost: {} submitted, {} recorded",
                self.submitted_jobs,
                self.ctl.jobs().len()
            );
            self.violation(msg);
        }
    }

    /// Jobs the controller started itself (expunge timers).
    fn internal_jobs(&self) -> u64 {
        self.ctl.internal_jobs()
    }

    /// The O(n) checks: capacity, volumes, addresses.
    pub fn check_full(&mut self) {
        let report = self.ctl.cloud().audit();
        for v in report.violations {
            self.violation(v);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut with_nic = 0usize;
        let mut twice = Vec::new();
        for (_, vm) in self.ctl.cloud().vms() {
            if let Some(nic) = vm.nic {
                with_nic += 1;
                if !seen.insert((nic.network, nic.ip)) {
                    twice.push(format!("IP {} given twice (VM {})", nic.ip, vm.name));
                }
            }
        }
        for msg in twice {
            self.violation(msg);
        }
        let mut safety = self.ctl.cloud().check_safety();
        safety.extend(crate::invariants::no_vm_on_maintenance_host(&self.ctl, &self.world));
        safety.extend(crate::invariants::failed_op_holds_nothing(&self.ctl, &self.world));
        for v in safety {
            self.violation(v);
        }
        // Every HA VM of a Down host runs again, or is in Error with a reason, in bounded time.
        let s = &self.ctl.cloud().settings;
        let g = stratus_core::settings::Scope::Global;
        let retries = s.i64("max.retries", g).max(0) as u64 + 1;
        let bound = self.ctl.unfenceable_after_ms()
            + retries * s.i64("restart.retry.interval", g).max(1) as u64 * 1000
            + 300_000;
        let overdue: Vec<String> = self
            .ctl
            .ha_overdue(bound)
            .into_iter()
            .map(|(vm, ms)| {
                format!(
                    "HA VM {} not running {:.0} s after losing its host",
                    self.ctl.vm_label(vm),
                    ms as f64 / 1e3
                )
            })
            .collect();
        for v in overdue {
            self.violation(v);
        }
        let stuck: Vec<String> = self
            .ctl
            .cloud()
            .inv
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.status == stratus_core::inventory::HostStatus::Down)
            .filter_map(|(i, h)| {
                let hi = stratus_core::ids::HostIdx(i as u32);
                let down = self.ctl.host_health(hi)?.down_since?;
                (self.ctl_now().0.saturating_sub(down.0) > bound).then_some((hi, h.name.clone()))
            })
            .flat_map(|(hi, name)| {
                self.ctl
                    .cloud()
                    .vms_on(hi)
                    .iter()
                    .map(|i| self.ctl.cloud().vm_at(*i))
                    .filter(|v| v.ha_enabled && v.state == stratus_core::vm::VmState::Running)
                    .map(|v| format!("HA VM {} still Running on Down host {name}", v.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        for v in stuck {
            self.violation(v);
        }
        let in_ipam = self.ctl.ipam().all().count();
        if in_ipam != with_nic {
            self.violation(format!("{in_ipam} addresses allocated but {with_nic} VMs hold one"));
        }
    }

    fn violation(&mut self, msg: String) {
        if self.violations.len() < 1000 && !self.violations.contains(&msg) {
            self.log("invariant.violated", "checker", &msg);
            self.violations.push(msg);
        }
    }

    /// Domains and volumes the world holds that the ledger does not know about.
    pub fn leaks(&self) -> Vec<String> {
        crate::census::leaks(&self.world.census(), self.ctl.cloud())
    }

    /// [`Engine::leaks`] sorted by what the controller still does about them:
    /// a job working on the VM or volume (in flight), the reconciler holding
    /// the undo call (awaiting cleanup), or nothing at all (a leak).
    pub fn leak_report(&self) -> LeakReport {
        use stratus_core::controller::effects::DriverCall;
        let (mut vms, mut volumes) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        for l in self.ctl.leftovers() {
            match &l.call {
                DriverCall::DeleteVolume { volume, .. } => {
                    volumes.insert(*volume);
                }
                DriverCall::UndefineDomain { vm, .. }
                | DriverCall::StopDomain { vm, .. }
                | DriverCall::UnplugNic { vm, .. } => {
                    vms.insert(*vm);
                }
                _ => {}
            }
        }
        let mut r = LeakReport::default();
        for l in crate::census::left_behind(&self.world.census(), self.ctl.cloud()) {
            let busy = l.vm.is_some_and(|v| self.ctl.vm_busy(v)) || l.volume.is_some_and(|v| self.ctl.volume_busy(v));
            let held = l.vm.is_some_and(|v| vms.contains(&v)) || l.volume.is_some_and(|v| volumes.contains(&v));
            if busy {
                r.in_flight.push(l.what);
            } else if held {
                r.awaiting_cleanup.push(l.what);
            } else {
                r.leaks.push(l.what);
            }
        }
        r
    }
}
