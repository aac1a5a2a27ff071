//! Measured latency profiles: a scenario selects one by name, the simulated
//! world then draws its call latencies from the measured ranges, a range the
//! scenario gives overrides the profile's, and an unknown name is refused at
//! `latency.profile`.

use std::path::Path;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario::{self, profile};
use stratus_sim::world::Latencies;

fn as_world(r: &profile::LatencyRanges) -> Latencies {
    let ms = |p: (scenario::Duration, scenario::Duration)| (p.0.as_ms(), p.1.as_ms());
    Latencies {
        start: ms(r.start),
        stop: ms(r.stop),
        create_volume: ms(r.create_volume),
        copy_template: ms(r.copy_template),
        migrate: ms(r.migrate),
        other: ms(r.other),
    }
}

#[test]
fn the_measured_scenario_runs_on_the_committed_kvm_profile() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-lab-kvm-measured.toml");
    let (s, built) = scenario::load_and_build(&path).unwrap();
    let measured = profile::builtin("kvm-qemu-tcg").unwrap();
    assert!(
        measured.measured_by.starts_with("stratus bench kvm"),
        "{}",
        measured.measured_by
    );
    assert_ne!(
        measured.latency,
        profile::LatencyRanges::default(),
        "measured, not the defaults"
    );
    let mut runner = Runner::new(s, built.cloud, &RunOptions::default());
    assert_eq!(runner.engine.world.latency, as_world(&measured.latency));
    runner.run(&mut |_, _| {});
    let report = RunReport::build(&runner, "seed-lab-kvm-measured", 42, 0.0);
    assert!(report.passed(), "{}", report.to_text());
}

#[test]
fn a_scenario_range_overrides_the_profile_and_unknown_profiles_are_refused() {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-lab.toml")).unwrap();
    let with = |latency: &str| {
        let i = base.find("[[expect]]").unwrap();
        format!("{}{latency}\n\n{}", &base[..i], &base[i..])
    };
    let s = scenario::parse(
        &with("[latency]\nprofile = \"kvm-qemu-tcg\"\nmigrate = [\"1s\", \"2s\"]"),
        "override.toml",
    )
    .unwrap();
    let r = s.latency.resolve().unwrap();
    let measured = profile::builtin("kvm-qemu-tcg").unwrap().latency;
    assert_eq!((r.migrate.0.as_ms(), r.migrate.1.as_ms()), (1_000, 2_000));
    assert_eq!(r.start, measured.start, "the rest comes from the profile");

    let s = scenario::parse(&base, "seed-lab.toml").unwrap();
    assert_eq!(
        s.latency.resolve().unwrap(),
        profile::LatencyRanges::default(),
        "no table: the defaults"
    );

    let e = scenario::parse(&with("[latency]\nprofile = \"no-such-machine\""), "bad.toml").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("latency.profile") && text.contains("kvm-qemu-tcg"),
        "{text}"
    );
}
