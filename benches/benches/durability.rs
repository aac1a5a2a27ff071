//! Durability micro-benchmarks: the codecs a journal and a recovery run through,
//! on a 1,000-host datacenter with 20,000 VMs (deployed through the ledger) and
//! a realistic input stream (`stratus_sim::synth_inputs`):
//!
//! * `input/{encode,decode}_{result,deploy,pings}`: `Input::to_bytes` /
//!   `from_bytes` of a driver result, a deploy request, and a heartbeat batch of
//!   all 1,000 hosts;
//! * `snapshot/{encode,decode}`: `Controller::state_bytes` /
//!   `from_state_bytes` of the whole state;
//! * `replay/1000_inputs`: decoding and replaying 1,000 consecutive journal
//!   entries on the state they followed (cloning that state is not timed).
//!
//! Run: `cargo bench -p stratus-benches --bench durability`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use stratus_core::controller::effects::{DriverResult, OpId};
use stratus_core::controller::journal::replay;
use stratus_core::controller::{Controller, Input, Request};
use stratus_sim::synth::{SynthConfig, build, workload};
use stratus_sim::synth_inputs::{InputMix, InputStream};

const HOSTS: usize = 1_000;
const VMS: usize = 20_000;
const REPLAYED: usize = 1_000;

fn durability(c: &mut Criterion) {
    let mut s = build(&SynthConfig {
        cpu_overprovisioning: 4.0,
        ..SynthConfig::with_hosts(HOSTS)
    })
    .expect("synthetic datacenter");
    let deploys = workload(&s, usize::MAX, 2);
    let spec = workload(&s, 1, 3).next().expect("one deploy");
    for spec in workload(&s, VMS, 1) {
        s.cloud.deploy_vm(spec).expect("room for every VM");
    }
    let mut ctl = Controller::new(s.cloud);
    ctl.set_logging(false);
    let mut stream = InputStream::boot(&mut ctl, deploys, InputMix::default(), 0);
    // Run a while so jobs, sagas and template copies are part of the state.
    for _ in 0..5_000 {
        stream.next_input(&mut ctl);
    }
    let before = ctl.clone();
    let entries: Vec<(u64, Vec<u8>)> = (0..REPLAYED)
        .map(|_| {
            let (at, input) = stream.next_input(&mut ctl);
            (at, input.to_bytes())
        })
        .collect();

    let mut group = c.benchmark_group("durability");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let inputs = [
        (
            "result",
            Input::Result {
                op: OpId(123_456),
                result: DriverResult::Ok,
            },
        ),
        (
            "deploy",
            Input::Request {
                request: Request::Deploy(spec),
            },
        ),
        ("pings", Input::Pings { hosts: s.hosts.clone() }),
    ];
    for (name, input) in &inputs {
        let bytes = input.to_bytes();
        group.bench_function(format!("input/encode_{name}"), |b| {
            b.iter(|| black_box(black_box(input).to_bytes()))
        });
        group.bench_function(format!("input/decode_{name}"), |b| {
            b.iter(|| black_box(Input::from_bytes(black_box(&bytes)).expect("decodes")))
        });
    }
    let snapshot = before.state_bytes();
    group.bench_function("snapshot/encode", |b| b.iter(|| black_box(before.state_bytes())));
    group.bench_function("snapshot/decode", |b| {
        b.iter(|| black_box(Controller::from_state_bytes(black_box(&snapshot)).expect("decodes")))
    });
    group.bench_function(format!("replay/{REPLAYED}_inputs"), |b| {
        b.iter_batched(
            || before.clone(),
            |mut ctl| {
                for (at, bytes) in &entries {
                    replay(&mut ctl, *at, Input::from_bytes(bytes).expect("decodes"));
                }
                ctl
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, durability);
criterion_main!(benches);
