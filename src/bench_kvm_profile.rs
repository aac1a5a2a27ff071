//! `stratus bench kvm --profile-out FILE`: the raw libvirt call latencies as
//! a simulator latency profile (`stratus_sim::scenario::profile`), so the
//! simulated drivers take the times this machine's real ones take.
//!
//! Raw operation → simulated call: `start` ← `virsh start` of a defined
//! domain and `define + start` (the controller's StartDomain follows a
//! DefineDomain), `stop` ← `virsh destroy` (a forced stop), `migrate` ←
//! `virsh migrate --live`, `create_volume` ← `qemu-img create` of the root
//! overlay, `copy_template` ← `qemu-img convert` of the template onto the pool.
//! `other` (define, undefine, NIC plugs, pings) is not measured: it keeps the
//! built-in default and the profile says so.

use crate::bench_kvm::Samples;
use stratus_sim::scenario::Duration;
use stratus_sim::scenario::profile::{LatencyProfile, LatencyRanges};

fn range(s: &Samples, ops: &[&str]) -> anyhow::Result<(Duration, Duration)> {
    let all: Vec<u64> = ops.iter().flat_map(|op| s.get(op).iter().copied()).collect();
    let (lo, hi) = (all.iter().min(), all.iter().max());
    match (lo, hi) {
        (Some(lo), Some(hi)) => Ok((Duration::from_ms(*lo), Duration::from_ms(*hi))),
        _ => anyhow::bail!("no samples of {}", ops.join(" / ")),
    }
}

pub fn profile(raw: &Samples, machine: &str, rounds: usize, load: f64, out: &str) -> anyhow::Result<LatencyProfile> {
    Ok(LatencyProfile {
        name: "kvm-qemu-tcg".into(),
        measured_on: machine.into(),
        measured_by: format!("stratus bench kvm --rounds {rounds} --profile-out {out}"),
        rounds: rounds as u64,
        load_average: load,
        not_measured: vec!["other".into()],
        latency: LatencyRanges {
            start: range(raw, &["start", "define_start"])?,
            stop: range(raw, &["destroy"])?,
            create_volume: range(raw, &["create_overlay"])?,
            copy_template: range(raw, &["copy_template"])?,
            migrate: range(raw, &["migrate_live"])?,
            other: LatencyRanges::default().other,
        },
    })
}

pub fn profile_toml(raw: &Samples, machine: &str, rounds: usize, load: f64, out: &str) -> anyhow::Result<String> {
    profile(raw, machine, rounds, load, out)?
        .to_toml()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_samples_become_a_profile_the_simulator_reads() {
        let mut s = Samples::default();
        for (op, v) in [
            ("start", [900, 1100]),
            ("define_start", [1300, 1200]),
            ("destroy", [150, 210]),
            ("create_overlay", [40, 60]),
            ("copy_template", [700, 800]),
            ("migrate_live", [2900, 3300]),
        ] {
            s.add(op, v[0]);
            s.add(op, v[1]);
        }
        let text = profile_toml(&s, "a test", 2, 1.5, "p.toml").unwrap();
        let p = LatencyProfile::parse(&text).unwrap();
        let ms = |r: (Duration, Duration)| (r.0.as_ms(), r.1.as_ms());
        assert_eq!(ms(p.latency.start), (900, 1300));
        assert_eq!(ms(p.latency.stop), (150, 210));
        assert_eq!(ms(p.latency.create_volume), (40, 60));
        assert_eq!(ms(p.latency.copy_template), (700, 800));
        assert_eq!(ms(p.latency.migrate), (2900, 3300));
        assert_eq!(p.latency.other, LatencyRanges::default().other);
        assert_eq!(p.not_measured, ["other"]);
        assert!(
            profile_toml(&Samples::default(), "x", 1, 0.0, "p.toml").is_err(),
            "no samples, no profile"
        );
    }
}
