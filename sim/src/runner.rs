//! Runs a scenario: workload arrivals and operations, scheduled and random
//! faults, on the discrete-event engine; then checks expectations.

use crate::engine::{AuditEvery, Engine, Ev};
use crate::scenario::{Arrival, Fault, Lifetime, Scenario, WorkloadDef};
use crate::world::{HostFault, Latencies, World};
use std::collections::BTreeMap;
use stratus_core::Cloud;
use stratus_core::cloud::DeploySpec;
use stratus_core::controller::{Controller, Request};
use stratus_core::ids::*;
use stratus_core::rng::DetRng;
use stratus_core::vm::VmState;

#[derive(Clone, Debug)]
enum Item {
    Arrival {
        stream: usize,
    },
    Op {
        vm: VmId,
        stream: usize,
    },
    StartAgain {
        vm: VmId,
    },
    Destroy {
        vm: VmId,
    },
    Fault(crate::scenario::Select, Fault),
    /// The trigger at this index fires (its fault or action happens now).
    Triggered(usize),
    /// A job the workload retries if it fails.
    Retry(crate::retry::Watched),
    HostBack(HostId),
    HostFaultOver(HostId, crate::world::HostFault),
    LostRepliesOver,
    PoolBack(PoolId),
    RandomFault {
        kind: usize,
    },
    Action(crate::scenario::Action),
}

/// Resolved workload stream.
struct Stream {
    def: WorkloadDef,
    account: AccountId,
    zone: ZoneId,
    offering: ServiceOfferingId,
    template: TemplateId,
    disk: Option<DiskOfferingId>,
    network: Option<NetworkId>,
    arrived: u32,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub seed: Option<u64>,
    /// Overrides the scenario's epoch (the controller's clock at simulated time 0, epoch ms).
    pub epoch_ms: Option<u64>,
    /// Run the full O(n) audit after every event, whatever the size.
    pub audit_every_event: bool,
    pub keep_log: bool,
}

/// Outcome of one expectation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExpectResult {
    pub expectation: String,
    pub ok: bool,
    pub detail: String,
    /// For expectations checked along the run: when it first failed (simulated s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at_s: Option<f64>,
}

pub struct Runner {
    pub engine: Engine,
    pub(crate) scenario: Scenario,
    items: Vec<Item>,
    streams: Vec<Stream>,
    rng: DetRng,
    fault_rng: DetRng,
    /// VMs the workload wants running (for `all_vms_running`).
    pub want_running: BTreeMap<VmId, bool>,
    vm_stream: BTreeMap<VmId, usize>,
    /// When each host first crashed or hung (for HA timings).
    pub host_faults: BTreeMap<HostId, u64>,
    pub end: u64,
    outage_ms: u64,
    /// Triggers: has each fired already (a non-repeating one fires once).
    pub(crate) fired: Vec<bool>,
    /// Timeline expectations: the first moment each failed, and why.
    pub timeline: crate::timeline::Timeline,
    /// Per-minute samples of allocation, VM and host states.
    pub series: crate::series::Series,
    /// Operator actions the controller refused, with when and why (the report's `actions_refused`).
    pub actions_refused: Vec<String>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("engine", &self.engine).finish()
    }
}

/// A valid hostname from an account name (letters, digits, '-').
fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'v');
    }
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

fn exp_ms(rng: &mut DetRng, per_hour: f64) -> u64 {
    let u = rng.unit().max(1e-12);
    (-u.ln() / per_hour * 3_600_000.0) as u64
}

fn find<T: Copy>(items: impl Iterator<Item = (String, T)>, name: &str) -> Option<T> {
    items.into_iter().find(|(n, _)| n == name).map(|(_, t)| t)
}

impl Runner {
    pub fn new(scenario: Scenario, cloud: Cloud, opts: &RunOptions) -> Runner {
        let seed = opts.seed.unwrap_or(scenario.scenario.seed);
        let mut world = World::from_cloud(&cloud, seed);
        let l = &scenario.latency;
        let r = |p: &(crate::scenario::Duration, crate::scenario::Duration)| (p.0.ms, p.1.ms);
        world.latency = Latencies {
            start: r(&l.start),
            stop: r(&l.stop),
            create_volume: r(&l.create_volume),
            copy_template: r(&l.copy_template),
            migrate: r(&l.migrate),
            other: r(&l.other),
        };
        world.op_failure_rate = scenario.faults.random.op_failure_rate;
        world.fence_available = scenario.faults.fence_driver;
        world.op_failure_until = if world.op_failure_rate > 0.0 { u64::MAX } else { 0 };
        let inv = &cloud.inv;
        let mut streams = Vec::new();
        for w in &scenario.workload {
            let zone_name = scenario.workload_zone(w).to_string();
            let z = find(inv.zones.iter().map(|z| (z.name.clone(), z.id)), &zone_name).expect("validated zone");
            let zi = inv.find_zone(z).expect("zone");
            streams.push(Stream {
                def: w.clone(),
                account: find(inv.accounts.iter().map(|a| (a.name.clone(), a.id)), &w.account)
                    .expect("validated account"),
                zone: z,
                offering: find(
                    inv.service_offerings.iter().map(|o| (o.name.clone(), o.id)),
                    &w.offering,
                )
                .expect("validated offering"),
                template: find(inv.templates.iter().map(|t| (t.name.clone(), t.id)), &w.template)
                    .expect("validated template"),
                disk: w
                    .disk_offering
                    .as_ref()
                    .and_then(|d| find(inv.disk_offerings.iter().map(|o| (o.name.clone(), o.id)), d)),
                network: w.network.as_ref().and_then(|n| {
                    find(
                        inv.networks
                            .iter()
                            .filter(|x| x.zone == zi)
                            .map(|x| (x.name.clone(), x.id)),
                        n,
                    )
                }),
                arrived: 0,
            });
        }
        let epoch = opts
            .epoch_ms
            .unwrap_or(scenario.scenario.epoch.unwrap_or_default().as_ms());
        let mut engine = Engine::starting_at(Controller::new(cloud), world, epoch);
        if opts.audit_every_event {
            engine.audit_every = AuditEvery::Event;
        }
        if opts.keep_log {
            engine.keep_log = Some(Vec::new());
        }
        let end = scenario.scenario.duration.ms;
        let outage_ms = scenario.faults.random.outage.map_or(300_000, |d| d.ms);
        let mut r = Runner {
            engine,
            scenario,
            items: Vec::new(),
            streams,
            rng: DetRng::child(seed, "workload"),
            fault_rng: DetRng::child(seed, "faults"),
            want_running: BTreeMap::new(),
            vm_stream: BTreeMap::new(),
            host_faults: BTreeMap::new(),
            end,
            outage_ms,
            fired: Vec::new(),
            timeline: Default::default(),
            series: Default::default(),
            actions_refused: Vec::new(),
        };
        r.fired = vec![false; r.scenario.triggers.len()];
        r.timeline = crate::timeline::Timeline::new(&r.scenario.expect, r.engine.ctl.cloud());
        if !r.scenario.triggers.is_empty() || r.timeline.needs_events() {
            r.engine.watch = Some(Vec::new());
        }
        r.schedule_initial();
        r
    }

    pub(crate) fn at_triggered(&mut self, t: u64, i: usize) {
        self.at(t, Item::Triggered(i));
    }

    pub(crate) fn at_retry(&mut self, t: u64, w: crate::retry::Watched) {
        self.at(t, Item::Retry(w));
    }

    /// A VM deployed by a retry belongs to its stream like the first one.
    pub(crate) fn adopt_retried(&mut self, vm: VmId, stream: usize, start: bool) {
        self.vm_stream.insert(vm, stream);
        if start {
            self.want_running.insert(vm, true);
        }
    }

    pub(crate) fn stream_of(&self, vm: VmId) -> Option<usize> {
        self.vm_stream.get(&vm).copied()
    }

    fn at(&mut self, t: u64, item: Item) {
        if t > self.end {
            return;
        }
        self.items.push(item);
        let tag = (self.items.len() - 1) as u64;
        self.engine.schedule(t, Ev::Script(tag));
    }

    fn schedule_initial(&mut self) {
        for s in 0..self.streams.len() {
            match self.streams[s].def.arrival.clone() {
                Arrival::Burst { count, at } => {
                    let t = at.map_or(0, |d| d.ms);
                    for _ in 0..count {
                        self.at(t, Item::Arrival { stream: s });
                    }
                }
                Arrival::Ramp { count, over } => {
                    for k in 0..count {
                        self.at(
                            over.ms * u64::from(k) / u64::from(count.max(1)),
                            Item::Arrival { stream: s },
                        );
                    }
                }
                Arrival::Poisson { per_hour, .. } => {
                    let t = exp_ms(&mut self.rng, per_hour);
                    self.at(t, Item::Arrival { stream: s });
                }
            }
        }
        for a in self.scenario.actions.clone() {
            self.at(a.at().ms, Item::Action(a));
        }
        for f in self.scenario.faults.scheduled.clone() {
            self.at(f.at.ms, Item::Fault(f.select, f.fault));
        }
        for kind in 0..6 {
            self.schedule_random_fault(kind, 0);
        }
    }

    fn random_rate(&self, kind: usize) -> f64 {
        let r = &self.scenario.faults.random;
        [
            r.host_crash_per_day,
            r.host_hang_per_day,
            r.partition_per_day,
            r.storage_outage_per_day,
            r.migration_failure_per_day,
            r.management_restart_per_day,
        ][kind]
    }

    fn schedule_random_fault(&mut self, kind: usize, now: u64) {
        let rate = self.random_rate(kind);
        if rate > 0.0 {
            let t = now + exp_ms(&mut self.fault_rng, rate / 24.0);
            self.at(t, Item::RandomFault { kind });
        }
    }

    /// Runs to the scenario's end, calling `progress(now, end)` now and then.
    pub fn run(&mut self, progress: &mut dyn FnMut(u64, u64)) {
        let mut n = 0u64;
        self.series.sample(&self.engine, 0);
        while let Some(tag) = self.engine.step(self.end) {
            if let Some(tag) = tag {
                let item = self.items[tag as usize].clone();
                self.handle(item);
            }
            self.after_event();
            n += 1;
            if n.is_multiple_of(4096) {
                progress(self.engine.now, self.end);
            }
        }
        self.engine.now = self.end.max(self.engine.now);
        self.series.sample(&self.engine, self.engine.now);
        self.timeline.check(&self.engine, &self.want_running);
        self.engine.check_full();
        progress(self.end, self.end);
    }

    fn handle(&mut self, item: Item) {
        let now = self.engine.now;
        match item {
            Item::Arrival { stream } => self.arrive(stream),
            Item::Op { vm, stream } => self.vm_op(vm, stream),
            Item::StartAgain { vm } => {
                if self
                    .engine
                    .ctl
                    .cloud()
                    .vm(vm)
                    .is_some_and(|v| v.state == VmState::Stopped)
                {
                    if let Ok(job) = self.engine.submit(Request::Start { vm, host: None })
                        && let Some(s) = self.stream_of(vm)
                    {
                        self.watch_job(s, job, crate::retry::Op::Start(vm), 0);
                    }
                    self.want_running.insert(vm, true);
                } else if self.engine.ctl.cloud().vm(vm).is_some() {
                    self.at(now + 60_000, Item::StartAgain { vm });
                }
            }
            Item::Destroy { vm } => {
                let Some(v) = self.engine.ctl.cloud().vm(vm) else {
                    return;
                };
                if matches!(v.state, VmState::Running | VmState::Stopped | VmState::Error) {
                    if let Ok(job) = self.engine.submit(Request::Destroy { vm, expunge: true }) {
                        self.want_running.remove(&vm);
                        if let Some(s) = self.stream_of(vm) {
                            self.watch_job(s, job, crate::retry::Op::Destroy(vm), 0);
                        }
                    } else {
                        self.at(now + 60_000, Item::Destroy { vm });
                    }
                } else if v.state != VmState::Destroyed {
                    self.at(now + 60_000, Item::Destroy { vm });
                }
            }
            Item::Fault(select, f) => self.fault_selected(&select, f),
            Item::Triggered(i) => self.fire(i),
            Item::Retry(w) => self.check_retry(w),
            Item::Action(a) => self.action(a),
            Item::HostBack(h) => {
                // A host removed while it was down stays gone.
                if let Some(x) = self.engine.world.hosts.get_mut(&h) {
                    x.crashed = false;
                }
                self.log_host("fault.end", h, "host powered back on (empty)");
            }
            Item::HostFaultOver(h, f) => {
                if let Some(x) = self.engine.world.hosts.get_mut(&h) {
                    x.set_fault(f, false);
                }
                self.log_host("fault.end", h, f.ended());
            }
            Item::LostRepliesOver => {
                self.engine.world.lost_reply_rate = 0.0;
                self.engine.log("fault.end", "drivers", "replies arrive again");
            }
            Item::PoolBack(p) => {
                let pool = self.engine.world.pools.get_mut(&p).expect("pool");
                pool.down = false;
                let name = pool.name.clone();
                self.engine.log("fault.end", &name, "storage pool back");
            }
            Item::RandomFault { kind } => {
                self.random_fault(kind);
                self.schedule_random_fault(kind, now);
            }
        }
    }

    fn arrive(&mut self, stream: usize) {
        let now = self.engine.now;
        let s = &mut self.streams[stream];
        s.arrived += 1;
        let n = s.arrived;
        let spec = DeploySpec {
            name: sanitize(&format!("{}-w{}-{n}", s.def.account, stream + 1)),
            account: Some(s.account),
            zone: Some(s.zone),
            offering: Some(s.offering),
            template: Some(s.template),
            disk_offering: s.disk,
            network: s.network,
            start: !s.def.start_stopped,
            ..Default::default()
        };
        let next = match s.def.arrival {
            Arrival::Poisson { per_hour, max } if max.is_none_or(|m| n < m) => Some(per_hour),
            _ => None,
        };
        let lifetime = s.def.lifetime.clone();
        let ops = s.def.ops_per_hour.stop_start + s.def.ops_per_hour.reboot + s.def.ops_per_hour.migrate;
        let start = spec.start;
        if let Some(per_hour) = next {
            let t = now + exp_ms(&mut self.rng, per_hour);
            self.at(t, Item::Arrival { stream });
        }
        let retry = self.streams[stream].def.retry.is_some().then(|| spec.clone());
        let Ok(job) = self.engine.submit(Request::Deploy(spec)) else {
            return;
        };
        if let Some(spec) = retry {
            self.watch_job(stream, job, crate::retry::Op::Deploy(Box::new(spec)), 0);
        }
        let vm = self
            .engine
            .ctl
            .job(job)
            .and_then(|j| j.vm)
            .expect("deploy job has a VM");
        self.vm_stream.insert(vm, stream);
        if start {
            self.want_running.insert(vm, true);
        }
        match lifetime {
            Lifetime::Forever => {}
            Lifetime::Fixed { after } => self.at(now + after.ms, Item::Destroy { vm }),
            Lifetime::Exponential { mean } => {
                let t = now + exp_ms(&mut self.rng, 3_600_000.0 / mean.ms.max(1) as f64);
                self.at(t, Item::Destroy { vm });
            }
        }
        if ops > 0.0 {
            let t = now + exp_ms(&mut self.rng, ops);
            self.at(t, Item::Op { vm, stream });
        }
    }

    fn vm_op(&mut self, vm: VmId, stream: usize) {
        let now = self.engine.now;
        let Some(v) = self.engine.ctl.cloud().vm(vm) else {
            return;
        };
        if v.state == VmState::Destroyed {
            return;
        }
        let mix = self.streams[stream].def.ops_per_hour.clone();
        let total = mix.stop_start + mix.reboot + mix.migrate;
        if v.state == VmState::Running {
            let x = self.rng.unit() * total;
            if x < mix.stop_start {
                if self.engine.submit(Request::Stop { vm, forced: false }).is_ok() {
                    self.want_running.insert(vm, false);
                    self.at(now + 600_000, Item::StartAgain { vm });
                }
            } else if x < mix.stop_start + mix.reboot {
                let _ = self.engine.submit(Request::Reboot { vm });
            } else {
                let _ = self.engine.submit(Request::Migrate { vm, host: None });
            }
        }
        let t = now + exp_ms(&mut self.rng, total);
        self.at(t, Item::Op { vm, stream });
    }

    pub(crate) fn host_id(&self, name: &str) -> Option<HostId> {
        self.engine
            .ctl
            .cloud()
            .inv
            .live_hosts()
            .find(|(_, h)| h.name == name)
            .map(|(_, h)| h.id)
    }

    fn log_host(&mut self, kind: &'static str, h: HostId, detail: &str) {
        // A host removed mid-run (remove_host) is no longer in the world.
        let Some(name) = self.engine.world.hosts.get(&h).map(|x| x.name.clone()) else {
            return;
        };
        self.engine.log(kind, &name, detail);
    }

    pub(crate) fn fault(&mut self, f: Fault) {
        let now = self.engine.now;
        if let Some((host, kind, duration)) = f.host_fault() {
            let Some(h) = self.host_id(host) else { return };
            if matches!(kind, HostFault::Hang | HostFault::Freeze) {
                self.host_faults.entry(h).or_insert(now);
            }
            self.engine.world.hosts.get_mut(&h).expect("host").set_fault(kind, true);
            self.log_host("fault", h, kind.describe());
            self.at(now + duration.ms, Item::HostFaultOver(h, kind));
            return;
        }
        match f {
            Fault::HostHang { .. }
            | Fault::Partition { .. }
            | Fault::HostFreeze { .. }
            | Fault::AgentHang { .. }
            | Fault::LeaseStop { .. }
            | Fault::Isolation { .. }
            | Fault::AsymmetricPartition { .. } => unreachable!("host faults handled above"),
            Fault::ClockSkew { host, skew_ms } => {
                let Some(h) = self.host_id(&host) else { return };
                self.engine.world.hosts.get_mut(&h).expect("host").clock_skew_ms = skew_ms;
                self.log_host("fault", h, &format!("clock now {skew_ms} ms off"));
            }
            Fault::LostReplies { rate, duration } => {
                self.engine.world.lost_reply_rate = rate;
                self.engine.world.lost_reply_until = now + duration.ms;
                self.engine
                    .log("fault", "drivers", &format!("replies lost with probability {rate}"));
                self.at(now + duration.ms, Item::LostRepliesOver);
            }
            Fault::HostCrash { host, duration } => {
                let Some(h) = self.host_id(&host) else { return };
                self.host_faults.entry(h).or_insert(now);
                self.engine.world.crash_host(h);
                self.log_host("fault", h, "host crashed");
                if let Some(d) = duration {
                    self.at(now + d.ms, Item::HostBack(h));
                }
            }
            Fault::StorageOutage { pool, duration } => {
                let Some(p) = self
                    .engine
                    .ctl
                    .cloud()
                    .inv
                    .pools
                    .iter()
                    .find(|x| x.name == pool)
                    .map(|x| x.id)
                else {
                    return;
                };
                self.engine.world.pools.get_mut(&p).expect("pool").down = true;
                self.engine.log("fault", &pool, "storage pool outage");
                self.at(now + duration.ms, Item::PoolBack(p));
            }
            Fault::MigrationFailure { count } => {
                self.engine.world.migration_failures += count;
                self.engine
                    .log("fault", "migrations", &format!("next {count} migrations fail"));
            }
            Fault::OpFailureRate { rate, duration } => {
                self.engine.world.op_failure_rate = rate;
                self.engine.world.op_failure_until = now + duration.ms;
                self.engine
                    .log("fault", "drivers", &format!("operations fail with probability {rate}"));
            }
            Fault::VmCrash { host } => {
                let Some(h) = self.host_id(&host) else { return };
                if let Some(vm) = self.engine.world.crash_one_vm(h) {
                    let name = self.engine.ctl.vm_label(vm);
                    self.engine.log("fault", &name, &format!("VM crashed on {host}"));
                }
            }
            Fault::ManagementNetwork { duration } => {
                let hosts: Vec<HostId> = self.engine.ctl.cloud().inv.live_hosts().map(|(_, h)| h.id).collect();
                for h in hosts {
                    if let Some(w) = self.engine.world.hosts.get_mut(&h) {
                        w.set_fault(HostFault::Partition, true);
                    }
                    self.at(now + duration.ms, Item::HostFaultOver(h, HostFault::Partition));
                }
                self.engine
                    .log("fault", "management-network", "no host reaches the management server");
            }
            Fault::ManagementRestart { downtime } => {
                if self.engine.ms_down_until.is_none() {
                    self.engine.crash_management(now + downtime.ms);
                    self.engine.log("fault", "management-server", "crashed");
                }
            }
        }
    }

    fn random_fault(&mut self, kind: usize) {
        let hosts: Vec<String> = self
            .engine
            .ctl
            .cloud()
            .inv
            .live_hosts()
            .map(|(_, h)| h.name.clone())
            .collect();
        let pools: Vec<String> = self
            .engine
            .ctl
            .cloud()
            .inv
            .pools
            .iter()
            .filter(|p| !p.is_local())
            .map(|p| p.name.clone())
            .collect();
        let d = crate::scenario::Duration { ms: self.outage_ms };
        let pick = |rng: &mut DetRng, v: &[String]| (!v.is_empty()).then(|| v[rng.below(v.len())].clone());
        let fault = match kind {
            0 => pick(&mut self.fault_rng, &hosts).map(|host| Fault::HostCrash {
                host,
                duration: Some(d),
            }),
            1 => pick(&mut self.fault_rng, &hosts).map(|host| Fault::HostHang { host, duration: d }),
            2 => pick(&mut self.fault_rng, &hosts).map(|host| Fault::Partition { host, duration: d }),
            3 => pick(&mut self.fault_rng, &pools).map(|pool| Fault::StorageOutage { pool, duration: d }),
            4 => Some(Fault::MigrationFailure { count: 1 }),
            _ => Some(Fault::ManagementRestart {
                downtime: crate::scenario::Duration { ms: 60_000 },
            }),
        };
        if let Some(f) = fault {
            self.fault(f);
        }
    }
}
