//! Host failure end to end through the controller's one entry point, with a
//! scripted datacenter: a host goes silent, is investigated, proven fenced (or
//! not) and its HA VMs restarted (or blocked). Written to kill the mutants
//! `cargo mutants` left alive in `controller/ha.rs` and `controller/hosts.rs`
//! (see TESTING.md, "Mutation run"): the times asserted are the settings'.

mod common;

use common::lab;
use std::collections::VecDeque;
use stratus_core::cloud::{HostSpec, PoolScopeSpec, PoolSpec, ServiceOfferingSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::effects::{DriverCall, DriverError, DriverResult, Effect, OpId, Timer};
use stratus_core::controller::{Controller, Event, EventKind, FenceProof, Input, Reply};
use stratus_core::ids::*;
use stratus_core::inventory::{HostStatus, PoolType, StorageType};
use stratus_core::units::GIB;
use stratus_core::units::Millis;
use stratus_core::vm::{Charge, VmState};

const T0: u64 = 1_700_000_000_000;
/// The host goes silent this long after boot.
const DIES_AFTER: u64 = 10_000;

/// How the scripted datacenter answers about the dead host.
#[derive(Clone, Copy)]
struct Script {
    lease_readable: bool,
    power_off_works: bool,
    /// Every call that is not a probe (the HA restart's) fails.
    restarts_fail: bool,
    /// Only the link to management is lost: the host keeps renewing its
    /// lease and its neighbours still reach it.
    link_only: bool,
    /// The HA VM's root volume is on a pool local to the dying host.
    local_root: bool,
    /// A third host, added but never connected: not Up, so never asked as a
    /// neighbour.
    spare_connecting: bool,
}

const STALE_LEASE: Script = Script {
    lease_readable: true,
    power_off_works: false,
    restarts_fail: false,
    link_only: false,
    local_root: false,
    spare_connecting: false,
};

struct Rig {
    c: Controller,
    now: u64,
    timers: Vec<(u64, Timer)>,
    calls: VecDeque<(OpId, DriverCall)>,
    /// Every call made, in order.
    made: Vec<DriverCall>,
    hosts: Vec<HostId>,
    dead: HostId,
    script: Script,
    events: Vec<Event>,
    vm: VmId,
    /// A VM without HA on the same host.
    plain: VmId,
    spare: Option<HostId>,
    cluster: ClusterId,
}

impl Rig {
    /// One cluster of two hosts on an NFS pool; one VM (HA or not) on the
    /// first host, which dies `DIES_AFTER` ms after boot.
    fn new(script: Script, ha: bool, settings: &[(&str, &str)]) -> Rig {
        let mut l = lab(3, 1, 2);
        for (k, v) in settings {
            l.set(k, v);
        }
        if script.local_root {
            l.cloud
                .add_pool(PoolSpec {
                    name: "local-h1".into(),
                    zone: l.zone,
                    scope: PoolScopeSpec::Host(l.hosts[0]),
                    pool_type: PoolType::Filesystem,
                    capacity_bytes: 512 * GIB,
                    tags: vec![],
                })
                .unwrap();
        }
        let ha_offering = l
            .cloud
            .add_service_offering(ServiceOfferingSpec {
                offer_ha: true,
                storage_type: if script.local_root {
                    StorageType::Local
                } else {
                    StorageType::Shared
                },
                ..ServiceOfferingSpec::fixed("ha", 1, 1000, 2048)
            })
            .unwrap();
        let mut spec = l.deploy_spec("db-1", ha_offering);
        spec.host = Some(l.hosts[0]);
        spec.ha = Some(ha);
        let vm = l.cloud.deploy_vm(spec).unwrap();
        let mut spec = l.deploy_spec("cache-1", l.small);
        spec.host = Some(l.hosts[0]);
        let plain = l.cloud.deploy_vm(spec).unwrap();
        let mut r = Rig {
            c: Controller::new(l.cloud),
            now: T0,
            timers: Vec::new(),
            calls: VecDeque::new(),
            made: Vec::new(),
            hosts: l.hosts.clone(),
            dead: l.hosts[0],
            script,
            events: Vec::new(),
            vm,
            plain,
            spare: None,
            cluster: l.clusters[0],
        };
        r.input(Input::Boot);
        r.input(Input::Pings { hosts: r.hosts.clone() });
        if script.spare_connecting {
            let spec = HostSpec {
                name: "h3".into(),
                cluster: r.cluster,
                cpu_cores: 4,
                cpu_mhz: 2000,
                memory_bytes: 16 * GIB,
                tags: vec![],
            };
            let change = AdminChange::AddHost { spec };
            let Reply::Created(Ok(created)) = r.c.handle(Millis(r.now), Input::Admin { change, by: None }).reply else {
                panic!("host not added")
            };
            r.spare = Some(HostId(created.id));
        }
        r
    }

    fn input(&mut self, input: Input) {
        let out = self.c.handle(Millis(self.now), input);
        self.events.extend(out.events);
        for e in out.effects {
            match e {
                Effect::Call { op, call } => {
                    self.made.push(call.clone());
                    self.calls.push_back((op, call));
                }
                Effect::Timer { at, timer } => self.timers.push((at.0, timer)),
            }
        }
    }

    fn dead_since(&self) -> Option<u64> {
        (self.now >= T0 + DIES_AFTER).then_some(T0 + DIES_AFTER)
    }

    fn answer(&self, call: &DriverCall) -> DriverResult {
        let dead = self.dead_since().is_some() && !self.script.link_only;
        match call {
            DriverCall::CheckLease { host, .. } if *host == self.dead && dead => {
                if self.script.lease_readable {
                    DriverResult::Lease {
                        renewed_at: Some(T0 + DIES_AFTER),
                    }
                } else {
                    DriverResult::Failed(DriverError::unavailable("pool unreadable"))
                }
            }
            DriverCall::CheckLease { .. } => DriverResult::Lease {
                renewed_at: Some(self.now),
            },
            // A dead host answers nothing, not even as a neighbour.
            DriverCall::PingNeighbour { from, .. } if dead && *from == self.dead => {
                DriverResult::Failed(DriverError::unavailable("host down"))
            }
            DriverCall::PingNeighbour { target, .. } => DriverResult::Reachable {
                reachable: !(dead && *target == self.dead),
            },
            DriverCall::PowerOff { .. } if self.script.power_off_works => DriverResult::Ok,
            DriverCall::PowerOff { .. } => DriverResult::Failed(DriverError::unavailable("no fence driver")),
            _ if self.script.restarts_fail => DriverResult::Failed(DriverError::refused("host refuses")),
            _ => DriverResult::Ok,
        }
    }

    /// Advances time in 500 ms steps to `until` (ms after boot): live hosts
    /// ping every 3 s, due timers fire, every call is answered at once.
    fn run_to(&mut self, until: u64) {
        while self.now < T0 + until {
            self.now += 500;
            if (self.now - T0).is_multiple_of(3000) {
                let live: Vec<HostId> = self
                    .hosts
                    .iter()
                    .copied()
                    .filter(|h| *h != self.dead || self.dead_since().is_none())
                    .collect();
                self.input(Input::Pings { hosts: live });
            }
            loop {
                self.timers.sort_by_key(|(at, _)| *at);
                if let Some((op, call)) = self.calls.pop_front() {
                    let result = self.answer(&call);
                    self.input(Input::Result { op, result });
                } else if self.timers.first().is_some_and(|(at, _)| *at <= self.now) {
                    let (_, timer) = self.timers.remove(0);
                    self.input(Input::Timer { timer });
                } else {
                    break;
                }
            }
        }
    }

    fn host_status(&self, id: HostId) -> HostStatus {
        let inv = &self.c.cloud().inv;
        inv.host(inv.find_host(id).unwrap()).status
    }

    fn vm_state(&self) -> VmState {
        self.state_of(self.vm)
    }

    fn state_of(&self, vm: VmId) -> VmState {
        self.c.cloud().vm(vm).unwrap().state
    }

    /// The host the VM is charged to as running.
    fn vm_host(&self) -> Option<HostId> {
        match self.c.cloud().vm(self.vm).unwrap().charge {
            Charge::Used { host } => Some(self.c.cloud().inv.host(host).id),
            _ => None,
        }
    }

    fn first(&self, kind: EventKind) -> Option<u64> {
        self.events.iter().find(|e| e.kind == kind).map(|e| e.t)
    }

    fn count(&self, kind: EventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }
}

#[test]
fn a_silent_host_is_fenced_only_once_its_lease_is_stale_past_the_proof_time() {
    let mut r = Rig::new(STALE_LEASE, true, &[]);
    let dead_idx = r.c.cloud().inv.find_host(r.dead).unwrap();
    // Last ping at 9 s; late after ping.interval × ping.timeout = 6 s: Alert
    // at the 18 s tick. Its lease was first read at 15 s (one ping missed).
    r.run_to(DIES_AFTER + 11_000);
    assert_eq!(
        r.host_status(r.dead),
        HostStatus::Alert,
        "not Down while the lease is undecided"
    );
    // ha.lease.timeout 9 s + 2 pings of 3 s.
    assert_eq!(r.c.fence_proof_ms(), 15_000);
    assert_eq!(r.c.unfenceable_after_ms(), 315_000);
    r.run_to(DIES_AFTER + 14_000);
    assert_ne!(r.host_status(r.dead), HostStatus::Up, "missed pings are noticed");
    assert!(
        r.c.host_report(dead_idx).fenced.is_none(),
        "not fenced before the proof time"
    );
    assert_eq!(r.vm_host(), Some(r.dead), "not restarted before the host is fenced");
    r.run_to(DIES_AFTER + 60_000);
    assert_eq!(r.host_status(r.dead), HostStatus::Down);
    assert_eq!(r.host_status(r.hosts[1]), HostStatus::Up);
    let report = r.c.host_report(dead_idx);
    let Some(FenceProof::LeaseExpired { stale_ms }) = report.fenced else {
        panic!("fenced by lease expiry expected, got {:?}", report.fenced)
    };
    assert!(stale_ms >= 15_000, "stale for {stale_ms} ms");
    // Down when the lease is judged stale (unchanged > 2 pings, at 24 s); fenced
    // once unchanged for fence_proof_ms since that first reading (at 30 s).
    let fenced_at = r.first(EventKind::HostFenced).unwrap();
    assert_eq!(fenced_at, T0 + 30_000);
    assert_eq!(r.c.host_downs()[0].1, Millis(T0 + 24_000));
    let down = r.c.host_downs();
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].0, r.dead);
    assert!(report.down_since.is_some_and(|d| d.0 <= fenced_at));
    // Restarted on the surviving host, once, and logged with its host and times.
    assert_eq!(r.vm_state(), VmState::Running);
    assert_eq!(r.vm_host(), Some(r.hosts[1]));
    assert_eq!(r.c.ha_pending(), 0);
    assert_eq!(r.count(EventKind::HaRecovered), 1);
    let log = r.c.ha_log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].vm, log[0].host), (r.vm, Some(r.dead)));
    assert_eq!(log[0].reason, "restarted");
    let (lost, back) = (log[0].lost_at.0, log[0].recovered_at.unwrap().0);
    // Lost when its host went Down; back only after the host was fenced.
    assert_eq!(Some(lost), report.down_since.map(|d| d.0));
    assert!(back >= fenced_at, "fenced {fenced_at} recovered {back}");
    assert_eq!(r.state_of(r.plain), VmState::Stopped, "no HA: left Stopped");
    // A readable lease decides: no power-off, no alert, and a host never asks itself.
    assert!(!r.made.iter().any(|c| matches!(c, DriverCall::PowerOff { .. })));
    assert_eq!(r.count(EventKind::Alert), 0);
    assert!(r.made.iter().all(|c| match c {
        DriverCall::PingNeighbour { from, target } => from != target,
        _ => true,
    }));
    // The neighbour was asked: the investigation had someone to ask.
    assert!(
        !r.events
            .iter()
            .any(|e| e.detail.contains("no shared pool and no neighbour"))
    );
}

#[test]
fn a_host_that_cannot_be_proven_fenced_keeps_its_vm_until_the_operator_is_told() {
    let script = Script {
        lease_readable: false,
        ..STALE_LEASE
    };
    let mut r = Rig::new(script, true, &[]);
    r.run_to(DIES_AFTER + 60_000);
    assert_eq!(r.host_status(r.dead), HostStatus::Down);
    assert_eq!(r.count(EventKind::HostFenced), 0);
    assert!(r.count(EventKind::Alert) > 0, "the failed power-off is alerted");
    assert_eq!(r.vm_host(), Some(r.dead), "never restarted while it may still run");
    let down_at = r.c.host_downs()[0].1.0;
    // Left Running (charged to the dead host) until unfenceable_after_ms...
    r.run_to(down_at - T0 + 314_000);
    assert_eq!(r.vm_state(), VmState::Running);
    assert_eq!(r.count(EventKind::HaBlocked), 0);
    // ...then put in Error for an operator, once.
    r.run_to(down_at - T0 + 320_000);
    assert_eq!(r.vm_state(), VmState::Error);
    assert_eq!(r.count(EventKind::HaBlocked), 1);
    assert_eq!(r.state_of(r.plain), VmState::Running, "only HA VMs are blocked");
    // Down at a tick; ticks every 3 s: the block comes exactly at the bound.
    assert_eq!(r.first(EventKind::HaBlocked), Some(down_at + 315_000));
    assert_eq!(r.c.ha_pending(), 0);
}

#[test]
fn a_fence_driver_power_off_proves_fencing_when_no_lease_can_tell() {
    let script = Script {
        lease_readable: false,
        power_off_works: true,
        ..STALE_LEASE
    };
    let mut r = Rig::new(script, true, &[]);
    r.run_to(DIES_AFTER + 60_000);
    let dead_idx = r.c.cloud().inv.find_host(r.dead).unwrap();
    assert_eq!(r.c.host_report(dead_idx).fenced, Some(FenceProof::PoweredOff));
    assert_eq!(r.host_status(r.dead), HostStatus::Down);
    assert_eq!(r.vm_host(), Some(r.hosts[1]));
    assert_eq!(r.c.ha_log().len(), 1);
}

#[test]
fn a_vm_without_ha_is_left_stopped_when_its_host_is_fenced() {
    let mut r = Rig::new(STALE_LEASE, false, &[]);
    r.run_to(DIES_AFTER + 60_000);
    assert_eq!(r.count(EventKind::HostFenced), 1);
    assert_eq!(r.vm_state(), VmState::Stopped);
    assert_eq!(r.count(EventKind::HaScheduled), 0);
    assert!(r.c.ha_log().is_empty());
    assert_eq!(r.c.ha_pending(), 0);
}

#[test]
fn failed_ha_restarts_are_retried_at_the_interval_then_given_up_with_the_reason() {
    let script = Script {
        restarts_fail: true,
        ..STALE_LEASE
    };
    let mut r = Rig::new(script, true, &[("max.retries", "2"), ("restart.retry.interval", "20")]);
    r.run_to(DIES_AFTER + 40_000);
    let scheduled = r.first(EventKind::HaScheduled).unwrap();
    assert_eq!(r.c.ha_pending(), 1);
    let work: Vec<_> = r.c.ha_work().collect();
    assert_eq!(work.len(), 1);
    assert_eq!((work[0].0, work[0].1), (r.vm, Some(r.dead)));
    // Nothing is overdue yet against a bound longer than it has waited.
    let waited = r.c.now().0 - work[0].2.0;
    assert!(r.c.ha_overdue(waited + 1).is_empty());
    assert!(r.c.ha_overdue(waited).is_empty(), "overdue means longer than the bound");
    assert_eq!(r.c.ha_overdue(waited - 1), vec![(r.vm, waited)]);
    r.run_to(scheduled - T0 + 60_000);
    let retries: Vec<u64> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::HaRetry)
        .map(|e| e.t)
        .collect();
    assert_eq!(retries.len(), 2, "max.retries 2: two retries, then give up");
    let gave_up = r.first(EventKind::HaGaveUp).unwrap();
    assert!(gave_up - retries[1] >= 20_000 && gave_up - retries[1] < 25_000);
    assert!(retries[1] - retries[0] >= 20_000 && retries[1] - retries[0] < 25_000);
    let detail = &r.events.iter().find(|e| e.kind == EventKind::HaGaveUp).unwrap().detail;
    assert!(detail.starts_with("HA gave up after 3 attempts: "), "{detail}");
    assert_eq!(r.vm_state(), VmState::Error);
    assert_eq!(r.c.ha_pending(), 0);
    let log = r.c.ha_log();
    assert_eq!(log.len(), 1);
    assert!(log[0].recovered_at.is_none());
    assert_eq!(log[0].reason, *detail);
}

#[test]
fn a_host_only_cut_off_from_management_is_disconnected_and_its_vms_stay() {
    let script = Script {
        link_only: true,
        ..STALE_LEASE
    };
    let mut r = Rig::new(script, true, &[]);
    r.run_to(DIES_AFTER + 120_000);
    assert_eq!(r.host_status(r.dead), HostStatus::Disconnected);
    assert!(r.c.host_downs().is_empty());
    assert_eq!(r.count(EventKind::HostFenced), 0);
    assert_eq!(r.vm_host(), Some(r.dead));
    assert_eq!(r.state_of(r.plain), VmState::Running);
    assert_eq!(r.c.ha_pending(), 0);
}

#[test]
fn an_ha_vm_with_its_root_on_host_local_storage_is_not_restarted() {
    let script = Script {
        local_root: true,
        ..STALE_LEASE
    };
    let mut r = Rig::new(script, true, &[]);
    r.run_to(DIES_AFTER + 60_000);
    assert_eq!(r.count(EventKind::HostFenced), 1);
    assert_eq!(r.count(EventKind::HaSkip), 1);
    assert_eq!(r.count(EventKind::HaScheduled), 0);
    assert_eq!(r.vm_state(), VmState::Stopped);
    let log = r.c.ha_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].reason, "root volume on host-local storage");
    assert!(log[0].recovered_at.is_none());
}

#[test]
fn only_up_neighbours_are_asked_about_a_silent_host() {
    let script = Script {
        spare_connecting: true,
        ..STALE_LEASE
    };
    let mut r = Rig::new(script, true, &[]);
    r.run_to(DIES_AFTER + 60_000);
    let spare = r.spare.unwrap();
    assert_eq!(r.host_status(spare), HostStatus::Connecting);
    assert_eq!(r.count(EventKind::HostFenced), 1);
    assert_eq!(r.vm_host(), Some(r.hosts[1]));
    let asked: Vec<HostId> = r
        .made
        .iter()
        .filter_map(|c| match c {
            DriverCall::PingNeighbour { from, .. } => Some(*from),
            _ => None,
        })
        .collect();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|h| *h == r.hosts[1]), "asked {asked:?}");
}
