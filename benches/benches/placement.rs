//! Placement micro-benchmarks on synthetic datacenters of 1,000 and 10,000
//! hosts, pre-filled to about half their CPU (9 VMs of the default mix per host):
//!
//! * `place/<algorithm>`: one dry `Cloud::place` of a medium VM (2 x 2000 MHz,
//!   4 GiB, 2 GiB root disk): the allocator only, nothing is committed;
//! * `deploy_destroy_expunge`: `deploy_vm` (start) + `destroy_vm(expunge)`,
//!   the commit path, leaving the datacenter as it was.
//!
//! Run: `cargo bench -p stratus-benches --bench placement`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use stratus_core::allocator::PlacementRequest;
use stratus_core::settings::Scope;
use stratus_sim::synth::{Synth, SynthConfig, build, workload};

const ALGORITHMS: [&str; 4] = ["random", "firstfit", "firstfitleastconsumed", "userdispersing"];

/// VMs per host for the pre-fill: the default mix averages ~5,100 MHz, so 9 per
/// host is ~48% of a host's 96,000 MHz (20 cores x 2400 MHz x 2.0).
const PREFILL_PER_HOST: usize = 9;

fn prepared(hosts: usize) -> (Synth, PlacementRequest) {
    let mut s = build(&SynthConfig::with_hosts(hosts)).expect("synthetic datacenter");
    for spec in workload(&s, hosts * PREFILL_PER_HOST, 7) {
        // A few may be refused once tagged hosts fill up; that is part of the state.
        let _ = s.cloud.deploy_vm(spec);
    }
    let medium = s.offering("medium").expect("medium offering");
    let mut spec = s.deploy_spec(medium, 0);
    spec.start = false;
    let id = s.cloud.deploy_vm(spec).expect("stopped medium VM");
    let vm = s.cloud.vm_index(id).expect("just created");
    let req = s.cloud.request_for(vm);
    (s, req)
}

fn placement(c: &mut Criterion) {
    for hosts in [1_000, 10_000] {
        let (mut s, req) = prepared(hosts);
        let mut group = c.benchmark_group(format!("placement_{hosts}_hosts"));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for algorithm in ALGORITHMS {
            s.cloud
                .update_setting("vm.allocation.algorithm", Scope::Global, algorithm)
                .expect("known algorithm");
            group.bench_function(format!("place/{algorithm}"), |b| {
                b.iter(|| black_box(s.cloud.place(black_box(&req)).expect("a half-full datacenter has room")))
            });
        }
        s.cloud
            .update_setting("vm.allocation.algorithm", Scope::Global, "random")
            .expect("known algorithm");
        let medium = s.offering("medium").expect("medium offering");
        let spec = s.deploy_spec(medium, 1);
        group.bench_function("deploy_destroy_expunge", |b| {
            b.iter(|| {
                let id = s.cloud.deploy_vm(spec.clone()).expect("room for a medium VM");
                s.cloud.destroy_vm(black_box(id), true).expect("destroy and expunge");
            })
        });
        group.finish();
    }
}

criterion_group!(benches, placement);
criterion_main!(benches);
