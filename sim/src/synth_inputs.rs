//! A realistic stream of controller inputs for a synthetic datacenter, for
//! journal and recovery benchmarks.
//!
//! [`InputStream`] drives a [`Controller`] forward in simulated time: API
//! requests (stop, start, reboot, deploy) arrive at a fixed rate, every host
//! pings once per `ping.interval`, the controller's own timers fire, and a
//! driver stub answers every call `Ok` after a seeded latency. Each input is
//! applied to the controller as it is produced and handed to the caller, so the
//! inputs, in order and with their times, are exactly what a journal holds:
//! replaying them on the starting state rebuilds the final state.
//!
//! Deterministic: every choice comes from a [`DetRng`] seeded by the mix.

use crate::synth::Workload;
use std::collections::BTreeMap;
use stratus_core::controller::effects::{DriverCall, DriverResult, Effect, OpId, Timer};
use stratus_core::controller::{Controller, Input, Reply, Request};
use stratus_core::ids::{HostId, VmId};
use stratus_core::rng::DetRng;
use stratus_core::units::Millis;
use stratus_core::vm::VmState;

/// What the stream asks of the controller.
#[derive(Clone, Debug)]
pub struct InputMix {
    /// API requests per simulated second.
    pub request_rate: f64,
    /// Shares of the requests (the rest are stops). A start picks a VM this
    /// stream stopped; with none stopped yet it becomes a stop.
    pub deploy_share: f64,
    pub start_share: f64,
    pub reboot_share: f64,
    pub seed: u64,
}

impl Default for InputMix {
    fn default() -> Self {
        InputMix {
            request_rate: 20.0,
            deploy_share: 0.10,
            start_share: 0.40,
            reboot_share: 0.10,
            seed: 1,
        }
    }
}

/// How many inputs of each kind the stream produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputCounts {
    pub requests: u64,
    /// Requests the controller refused (they change nothing but the clock).
    pub refused: u64,
    pub deploys: u64,
    pub stops: u64,
    pub starts: u64,
    pub reboots: u64,
    pub results: u64,
    pub timers: u64,
    pub pings: u64,
}

#[derive(Clone, Debug)]
enum Ev {
    Answer(OpId),
    Timer(Timer),
    Request,
    PingRound,
}

/// A controller driven forward; see the module documentation.
#[derive(Debug)]
pub struct InputStream {
    mix: InputMix,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    now: u64,
    rng: DetRng,
    /// Every VM the stream may pick (the starting ones and its deploys).
    vms: Vec<VmId>,
    /// VMs this stream stopped (candidates for a start).
    stopped: Vec<VmId>,
    hosts: Vec<HostId>,
    deploys: Workload,
    ping_ms: u64,
    request_ms: f64,
    next_request: f64,
    pub counts: InputCounts,
}

impl InputStream {
    /// Boots `ctl` at `start_ms` (`Input::Boot` is applied here and is part of
    /// the starting state, not of the stream). Deploys are drawn from
    /// `deploys` (a [`workload`](crate::synth::workload) of the datacenter the
    /// cloud was built from).
    pub fn boot(ctl: &mut Controller, deploys: Workload, mix: InputMix, start_ms: u64) -> InputStream {
        ctl.apply(Millis(start_ms), Input::Boot);
        let request_ms = 1000.0 / mix.request_rate.max(1e-3);
        let mut s = InputStream {
            queue: BTreeMap::new(),
            seq: 0,
            now: start_ms,
            rng: DetRng::child(mix.seed, "synth-inputs"),
            vms: ctl.cloud().vms().map(|(_, v)| v.id).collect(),
            stopped: Vec::new(),
            hosts: ctl.cloud().inv.hosts.iter().map(|h| h.id).collect(),
            deploys,
            ping_ms: ctl.ping_interval_ms(),
            request_ms,
            next_request: start_ms as f64 + request_ms,
            counts: InputCounts::default(),
            mix,
        };
        s.take_effects(ctl);
        s.schedule(s.next_request as u64, Ev::Request);
        s.schedule(start_ms + s.ping_ms, Ev::PingRound);
        s
    }

    /// The simulated time of the last input (ms).
    pub fn now(&self) -> u64 {
        self.now
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), ev);
    }

    /// Produces the next input, applies it to `ctl` and returns it with its time.
    pub fn next_input(&mut self, ctl: &mut Controller) -> (u64, Input) {
        loop {
            let ((at, _), ev) = self
                .queue
                .pop_first()
                .expect("requests and ping rounds are always scheduled");
            self.now = at;
            let input = match ev {
                Ev::Answer(op) => {
                    self.counts.results += 1;
                    Input::Result {
                        op,
                        result: DriverResult::Ok,
                    }
                }
                Ev::Timer(timer) => {
                    self.counts.timers += 1;
                    Input::Timer { timer }
                }
                Ev::PingRound => {
                    self.schedule(at + self.ping_ms, Ev::PingRound);
                    self.counts.pings += 1;
                    Input::Pings {
                        hosts: self.hosts.clone(),
                    }
                }
                Ev::Request => {
                    self.next_request += self.request_ms;
                    self.schedule(self.next_request as u64, Ev::Request);
                    let Some(request) = self.pick_request(ctl) else {
                        continue;
                    };
                    self.counts.requests += 1;
                    Input::Request { request }
                }
            };
            let reply = ctl.apply(Millis(at), input.clone());
            self.after(ctl, &input, reply);
            return (at, input);
        }
    }

    fn pick_request(&mut self, ctl: &Controller) -> Option<Request> {
        let u = self.rng.unit();
        let m = &self.mix;
        if u < m.deploy_share {
            return self.deploys.next().map(Request::Deploy);
        }
        if u < m.deploy_share + m.start_share {
            while !self.stopped.is_empty() {
                let vm = self.stopped.swap_remove(self.rng.below(self.stopped.len()));
                match ctl.cloud().vm(vm).map(|v| v.state) {
                    Some(VmState::Stopped) if !ctl.vm_busy(vm) => return Some(Request::Start { vm, host: None }),
                    Some(VmState::Stopped | VmState::Stopping) => {
                        // Still stopping: try it again later.
                        self.stopped.push(vm);
                        break;
                    }
                    _ => {}
                }
            }
        }
        let reboot = u >= 1.0 - m.reboot_share;
        for _ in 0..32 {
            if self.vms.is_empty() {
                break;
            }
            let vm = self.vms[self.rng.below(self.vms.len())];
            if ctl.vm_busy(vm) || ctl.cloud().vm(vm).map(|v| v.state) != Some(VmState::Running) {
                continue;
            }
            return Some(if reboot {
                Request::Reboot { vm }
            } else {
                Request::Stop { vm, forced: false }
            });
        }
        None
    }

    fn after(&mut self, ctl: &mut Controller, input: &Input, reply: Reply) {
        if let Input::Request { request } = input {
            match (&reply, request) {
                (Reply::Job(Err(_)), _) => self.counts.refused += 1,
                (Reply::Job(Ok(job)), Request::Deploy(_)) => {
                    self.counts.deploys += 1;
                    if let Some(vm) = ctl.job(*job).and_then(|j| j.vm) {
                        self.vms.push(vm);
                    }
                }
                (_, Request::Stop { vm, .. }) => {
                    self.counts.stops += 1;
                    self.stopped.push(*vm);
                }
                (_, Request::Start { .. }) => self.counts.starts += 1,
                (_, Request::Reboot { .. }) => self.counts.reboots += 1,
                _ => {}
            }
        }
        ctl.take_log();
        self.take_effects(ctl);
    }

    /// Schedules the stub's answers and the controller's timers. Every call is
    /// answered well before its timeout, so timeouts are not scheduled.
    fn take_effects(&mut self, ctl: &mut Controller) {
        for eff in ctl.take_effects() {
            match eff {
                Effect::Call { op, call } => {
                    let (lo, hi) = match call {
                        DriverCall::CopyTemplate { .. } => (20_000u64, 60_000u64),
                        DriverCall::CreateVolume { .. } | DriverCall::DeleteVolume { .. } => (500, 3_000),
                        _ => (50, 500),
                    };
                    let at = self.now + lo + self.rng.below((hi - lo) as usize) as u64;
                    self.schedule(at, Ev::Answer(op));
                }
                Effect::Timer {
                    timer: Timer::OpTimeout(_),
                    ..
                } => {}
                Effect::Timer { at, timer } => self.schedule(at.0, Ev::Timer(timer)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Synth, SynthConfig, build, workload};
    use stratus_core::controller::journal::replay;

    fn small() -> (Synth, Controller) {
        let mut s = build(&SynthConfig::with_hosts(40)).unwrap();
        let specs: Vec<_> = workload(&s, 200, 7).collect();
        for spec in specs {
            s.cloud.deploy_vm(spec).unwrap();
        }
        let ctl = Controller::new(s.cloud.clone());
        (s, ctl)
    }

    #[test]
    fn replaying_the_stream_rebuilds_the_state() {
        let (synth, mut live) = small();
        let mut stream = InputStream::boot(&mut live, workload(&synth, usize::MAX, 2), InputMix::default(), 0);
        let start = live.state_bytes();
        let inputs: Vec<(u64, Vec<u8>)> = (0..3_000)
            .map(|_| {
                let (at, input) = stream.next_input(&mut live);
                (at, input.to_bytes())
            })
            .collect();
        let c = stream.counts;
        assert!(
            c.deploys > 10 && c.stops > 10 && c.starts > 10 && c.reboots > 5,
            "{c:?}"
        );
        assert!(c.results > c.requests && c.pings > 10 && c.timers > 10, "{c:?}");
        assert_eq!(c.refused, 0, "{c:?}");
        assert!(live.failed_jobs().next().is_none());

        let mut back = Controller::from_state_bytes(&start).unwrap();
        for (at, bytes) in &inputs {
            replay(&mut back, *at, Input::from_bytes(bytes).unwrap());
        }
        assert_eq!(back.state_hash(), live.state_hash());
    }

    #[test]
    fn same_seed_same_stream() {
        let run = || {
            let (synth, mut ctl) = small();
            let mut stream = InputStream::boot(&mut ctl, workload(&synth, usize::MAX, 2), InputMix::default(), 0);
            (0..500)
                .map(|_| stream.next_input(&mut ctl).1.to_bytes())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
