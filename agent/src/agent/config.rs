//! The agent's configuration and credentials.

use super::AgentError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_wire::HostFacts;
use stratus_wire::ids::{HostId, PoolId};
use stratus_wire::protocol::PROTOCOL_VERSIONS;
use stratus_wire::rng::DetRng;

/// What the agent keeps after enrollment (on disk for `stratus agent --state`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub host_id: HostId,
    pub secret: String,
    /// SHA-256 of the management CA certificate, hex.
    pub ca_fingerprint: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, secret hidden)", self.host_id)
    }
}

impl Credentials {
    /// Reads credentials kept by `save`; `None` if the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Credentials>, AgentError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| AgentError::Config(format!("{}: not agent credentials: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AgentError::Config(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the credentials (mode 0600 on Unix) and syncs the file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(path)?;
        f.write_all(
            serde_json::to_string_pretty(self)
                .expect("credentials serialize")
                .as_bytes(),
        )?;
        f.sync_all()
    }
}

/// How the agent works beside a host monitor (`stratus hostmon`).
#[derive(Clone, Debug)]
pub struct HostMonitorLink {
    /// The run directory shared with the monitor (stamp files).
    pub run_dir: PathBuf,
    /// The agent renews the leases itself once the monitor's stamp has not
    /// changed for this long.
    pub takeover_after: Duration,
}

/// Where credentials live between connections (and, for tests, across a
/// simulated host's restarts).
pub type CredentialStore = Arc<Mutex<Option<Credentials>>>;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `host:port` of the management server.
    pub server: String,
    pub host_name: String,
    /// One-time enrollment token; unused once credentials exist.
    pub token: Option<String>,
    pub facts: HostFacts,
    /// Protocol versions offered at the greeting (default: all this build speaks).
    pub versions: Vec<u32>,
    /// Heartbeat period; `None` follows the server's `ping.interval` (3 s until known).
    pub ping_interval: Option<Duration>,
    /// The link is dead after this many ping intervals without a word from the server.
    pub dead_after: u32,
    pub connect_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Seeds the backoff jitter (mixed with the host name).
    pub seed: u64,
    /// Answers kept for retried requests.
    pub cache_size: usize,
    /// Shared pools to renew a storage lease on; empty: no lease, no watchdog.
    pub lease_pools: Vec<PoolId>,
    /// Without a renewed lease **and** without a word from the management
    /// server for this long (`ha.lease.timeout`), the agent stops its VMs.
    pub lease_timeout: Duration,
    /// A host monitor (`stratus hostmon`) renews the leases and runs the
    /// watchdog in its own process; the agent stamps management contact for
    /// it and takes over while it is gone. `None`: the agent does it all.
    pub host_monitor: Option<HostMonitorLink>,
}

impl AgentConfig {
    pub fn new(server: impl Into<String>, host_name: impl Into<String>, facts: HostFacts) -> AgentConfig {
        AgentConfig {
            server: server.into(),
            host_name: host_name.into(),
            token: None,
            facts,
            versions: PROTOCOL_VERSIONS.to_vec(),
            ping_interval: None,
            dead_after: 3,
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            seed: 0,
            cache_size: 4096,
            lease_pools: Vec::new(),
            lease_timeout: Duration::from_secs(9),
            host_monitor: None,
        }
    }

    /// The `attempt`-th reconnect delay: doubling from `backoff_initial`,
    /// capped at `backoff_max`, uniformly jittered in its upper half.
    pub fn backoff(&self, attempt: u32, rng: &mut DetRng) -> Duration {
        let base = self.backoff_initial.as_millis() as u64;
        let cap = self.backoff_max.as_millis() as u64;
        let full = base.saturating_mul(1u64 << attempt.min(20)).min(cap).max(1);
        Duration::from_millis(full / 2 + rng.below((full - full / 2 + 1) as usize) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let facts = HostFacts {
            cpu_cores: 1,
            cpu_mhz: 1,
            memory_bytes: 1,
            hypervisor_version: String::new(),
            ..Default::default()
        };
        let c = AgentConfig::new("ms:1", "h1", facts);
        let mut rng = DetRng::new(1);
        for attempt in 0..30 {
            let full = (500u64 << attempt.min(20)).min(30_000);
            let d = c.backoff(attempt, &mut rng).as_millis() as u64;
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d} ms not in [{}, {full}]",
                full / 2
            );
        }
        let draws = |seed| {
            let mut r = DetRng::new(seed);
            (0..8).map(|a| c.backoff(a, &mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }

    #[test]
    fn credentials_survive_a_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("stratus-agent-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        assert_eq!(Credentials::load(&path).unwrap(), None);
        let c = Credentials {
            host_id: HostId(stratus_wire::uuid::Uuid::from_u128(5)),
            secret: "s3cret".into(),
            ca_fingerprint: "ab".repeat(32),
        };
        c.save(&path).unwrap();
        assert_eq!(Credentials::load(&path).unwrap(), Some(c));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not json").unwrap();
        assert!(Credentials::load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
