//! Latency profiles: the simulated drivers' call latencies as measured on
//! real hosts. `stratus bench kvm --profile-out FILE` writes one from its raw
//! libvirt samples; the committed ones (`sim/profiles/*.toml`) are built in,
//! so a scenario selects one by name (`[latency] profile = "kvm-qemu-tcg"`)
//! and a run stays reproducible (no file is read at run time).

use super::model::Duration;
use serde::{Deserialize, Serialize};

/// The six latency ranges of the simulated drivers (uniform `[min, max]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRanges {
    pub start: (Duration, Duration),
    pub stop: (Duration, Duration),
    pub create_volume: (Duration, Duration),
    pub copy_template: (Duration, Duration),
    pub migrate: (Duration, Duration),
    pub other: (Duration, Duration),
}

impl Default for LatencyRanges {
    /// The built-in defaults (scenarios/README.md `[latency]`).
    fn default() -> Self {
        let r = |lo: u64, hi: u64| (Duration::from_ms(lo), Duration::from_ms(hi));
        LatencyRanges {
            start: r(2_000, 8_000),
            stop: r(1_000, 5_000),
            create_volume: r(500, 2_000),
            copy_template: r(20_000, 60_000),
            migrate: r(5_000, 30_000),
            other: r(50, 500),
        }
    }
}

/// One profile file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyProfile {
    pub name: String,
    /// The machine and hypervisor it was measured on.
    pub measured_on: String,
    /// The command that measured it.
    pub measured_by: String,
    pub rounds: u64,
    /// 1-minute load average when the measurement started.
    pub load_average: f64,
    /// Ranges not measured (kept from the built-in defaults), by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_measured: Vec<String>,
    pub latency: LatencyRanges,
}

/// The committed profiles, by name.
const BUILTIN: &[(&str, &str)] = &[("kvm-qemu-tcg", include_str!("../../profiles/kvm-qemu-tcg.toml"))];

impl LatencyProfile {
    pub fn parse(text: &str) -> Result<LatencyProfile, String> {
        let p: LatencyProfile = toml::from_str(text).map_err(|e| format!("latency profile: {e}"))?;
        let l = &p.latency;
        for ((lo, hi), k) in [
            (l.start, "start"),
            (l.stop, "stop"),
            (l.create_volume, "create_volume"),
            (l.copy_template, "copy_template"),
            (l.migrate, "migrate"),
            (l.other, "other"),
        ] {
            if lo > hi {
                return Err(format!("latency profile {}: {k} range [{lo}, {hi}] is empty", p.name));
            }
        }
        Ok(p)
    }

    pub fn to_toml(&self) -> Result<String, String> {
        let body = toml::to_string(self).map_err(|e| e.to_string())?;
        Ok(format!(
            "# Simulator latency profile: select it with `[latency] profile = \"{}\"`.\n\
             # Written by `{}`; ranges are [min, max] of the measured samples.\n{body}",
            self.name, self.measured_by
        ))
    }
}

/// The names of the committed profiles.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A committed profile by name.
pub fn builtin(name: &str) -> Result<LatencyProfile, String> {
    let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        format!(
            "unknown latency profile '{name}' (known: {})",
            builtin_names().join(", ")
        )
    })?;
    LatencyProfile::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_profile_parses_and_round_trips() {
        for name in builtin_names() {
            let p = builtin(name).unwrap();
            assert_eq!(p.name, name);
            assert!(p.rounds > 0);
            assert_eq!(LatencyProfile::parse(&p.to_toml().unwrap()).unwrap(), p);
        }
        assert!(builtin("nope").unwrap_err().contains("kvm-qemu-tcg"));
    }
}
