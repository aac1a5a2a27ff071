//! What-if micro-benchmarks on a 1,000-host synthetic datacenter pre-filled
//! with 10 VMs per host, all HA (`force.ha`):
//!
//! * `n_minus_1`: the N-1 sweep over every host (each failed on a fork, HA
//!   replayed by the allocator, rolled back);
//! * `one_host_failure`: a single fork failing one host and rolling back;
//! * `growth_24_months`: the 24-month growth projection at 3% a month.
//!
//! Run: `cargo bench -p stratus-benches --bench whatif`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use stratus_core::allocator::Scratch;
use stratus_core::ids::HostIdx;
use stratus_core::whatif::{failures, growth, n_minus_1};
use stratus_sim::synth::{SynthConfig, build, workload};

fn whatif(c: &mut Criterion) {
    let cfg = SynthConfig::with_hosts(1_000).setting("force.ha", "true");
    let mut s = build(&cfg).expect("synthetic datacenter");
    for spec in workload(&s, 10_000, 7) {
        let _ = s.cloud.deploy_vm(spec);
    }
    let mut cloud = s.cloud;
    let force = failures::force_ha(&cloud);
    let mut g = c.benchmark_group("whatif_1000_hosts");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("n_minus_1", |b| {
        b.iter(|| black_box(n_minus_1(&mut cloud, &force, true, &mut |_, _, _| {}).len()))
    });
    let mut scratch = Scratch::default();
    g.bench_function("one_host_failure", |b| {
        b.iter(|| black_box(failures::survives(&mut cloud, &[HostIdx(17)], &force, &mut scratch)))
    });
    g.bench_function("growth_24_months", |b| {
        b.iter(|| {
            black_box(
                growth::project(&mut cloud, 3.0, 24, &mut scratch, &mut |_, _| {})
                    .monthly
                    .len(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, whatif);
criterion_main!(benches);
