//! Golden JSON fixtures of the wire vocabulary: one file per variant of
//! `DriverCall`, `DriverResult` (one per `ErrorKind` for `Failed`), `AgentMsg`
//! and `ServerMsg`, under `tests/fixtures/<enum>/<variant>.json`. Each holds
//! the exact bytes sent: the value's compact JSON (for messages, the whole
//! protocol line with its `v`) and a newline.
//!
//! The test serializes a fixed example of every variant and compares it byte
//! for byte with its fixture, then parses every fixture back to an equal
//! value. Exhaustive by construction: each `fixture_*` function is a `match`
//! with no wildcard, so a new variant does not compile until it is named
//! there; and the variant list serde itself reports must equal the examples',
//! so a variant without an example fails the test.
//!
//! `STRATUS_BLESS=1 cargo test -p stratus-wire --test fixtures` rewrites the
//! fixtures (and prints what changed); any other value writes nothing.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use stratus_wire::ids::*;
use stratus_wire::protocol::{AgentMsg, GREETING_VERSION, PROTOCOL_VERSION, ServerMsg, decode, encode};
use stratus_wire::{
    BridgeKind, DomainSpec, DriverCall, DriverError, DriverResult, ErrorKind, HostFacts, Mac, PoolSpec,
};
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

// ---- names: exhaustive matches (no wildcard) ----

fn fixture_driver_call(c: &DriverCall) -> &'static str {
    match c {
        DriverCall::DefineDomain { .. } => "DefineDomain",
        DriverCall::UndefineDomain { .. } => "UndefineDomain",
        DriverCall::StartDomain { .. } => "StartDomain",
        DriverCall::StopDomain { .. } => "StopDomain",
        DriverCall::RebootDomain { .. } => "RebootDomain",
        DriverCall::MigrateDomain { .. } => "MigrateDomain",
        DriverCall::CopyTemplate { .. } => "CopyTemplate",
        DriverCall::CancelCopy { .. } => "CancelCopy",
        DriverCall::CreateTemplate { .. } => "CreateTemplate",
        DriverCall::EnsurePool { .. } => "EnsurePool",
        DriverCall::EnsureNetwork { .. } => "EnsureNetwork",
        DriverCall::RevertSnapshot { .. } => "RevertSnapshot",
        DriverCall::CreateVolume { .. } => "CreateVolume",
        DriverCall::DeleteVolume { .. } => "DeleteVolume",
        DriverCall::AttachDisk { .. } => "AttachDisk",
        DriverCall::DetachDisk { .. } => "DetachDisk",
        DriverCall::CreateSnapshot { .. } => "CreateSnapshot",
        DriverCall::DeleteSnapshot { .. } => "DeleteSnapshot",
        DriverCall::CheckLease { .. } => "CheckLease",
        DriverCall::PingNeighbour { .. } => "PingNeighbour",
        DriverCall::PowerOff { .. } => "PowerOff",
        DriverCall::PlugNic { .. } => "PlugNic",
        DriverCall::UnplugNic { .. } => "UnplugNic",
    }
}

fn fixture_driver_result(r: &DriverResult) -> &'static str {
    match r {
        DriverResult::Ok => "ok",
        DriverResult::Failed(e) => match e.kind {
            ErrorKind::NotFound => "failed_not_found",
            ErrorKind::Unavailable => "failed_unavailable",
            ErrorKind::Refused => "failed_refused",
            ErrorKind::InDoubt => "failed_in_doubt",
        },
        DriverResult::Lease { .. } => "lease",
        DriverResult::Reachable { .. } => "reachable",
    }
}

fn fixture_agent_msg(m: &AgentMsg) -> &'static str {
    match m {
        AgentMsg::Enroll { .. } => "enroll",
        AgentMsg::Hello { .. } => "hello",
        AgentMsg::Heartbeat { .. } => "heartbeat",
        AgentMsg::VmReport { .. } => "vm_report",
        AgentMsg::Reply { .. } => "reply",
    }
}

fn fixture_server_msg(m: &ServerMsg) -> &'static str {
    match m {
        ServerMsg::Enrolled { .. } => "enrolled",
        ServerMsg::Welcome { .. } => "welcome",
        ServerMsg::Pong { .. } => "pong",
        ServerMsg::Resync { .. } => "resync",
        ServerMsg::Request { .. } => "request",
        ServerMsg::Error { .. } => "error",
    }
}

// ---- fixed examples ----

fn driver_calls() -> Vec<DriverCall> {
    let (vm, host, to) = (VmId(id(0x11)), HostId(id(0x21)), HostId(id(0x22)));
    let (pool, volume, template) = (PoolId(id(0x31)), VolumeId(id(0x41)), TemplateId(id(0x51)));
    let (network, snapshot) = (NetworkId(id(0x61)), SnapshotId(id(0x71)));
    let mac = Mac([0x02, 0x00, 0x0a, 0x0b, 0x0c, 0x0d]);
    vec![
        DriverCall::DefineDomain {
            vm,
            host,
            spec: DomainSpec {
                name: "i-2-7-VM".into(),
                cpu: 2,
                mhz: 2000,
                memory_mb: 4096,
                disks: vec![(volume, pool)],
                nics: vec![(mac, network)],
                devices: Default::default(),
            },
        },
        DriverCall::UndefineDomain { vm, host },
        DriverCall::StartDomain { vm, host },
        DriverCall::StopDomain { vm, host, forced: true },
        DriverCall::RebootDomain { vm, host },
        DriverCall::MigrateDomain {
            vm,
            from: host,
            to,
            to_uri: None,
        },
        DriverCall::CopyTemplate {
            template,
            pool,
            size_bytes: 2 << 30,
            source: None,
        },
        DriverCall::CreateVolume {
            volume,
            pool,
            size_bytes: 20 << 30,
            template: Some(template),
        },
        DriverCall::DeleteVolume { volume, pool },
        DriverCall::AttachDisk { vm, host, volume, pool },
        DriverCall::DetachDisk { vm, host, volume },
        DriverCall::CreateSnapshot { volume, pool, snapshot },
        DriverCall::DeleteSnapshot { snapshot },
        DriverCall::CheckLease { host, pool },
        DriverCall::PingNeighbour { from: to, target: host },
        DriverCall::PowerOff { host },
        DriverCall::PlugNic {
            vm,
            host,
            network,
            mac,
            ip: Ipv4Addr::new(10, 1, 0, 17),
            vlan: Some(100),
        },
        DriverCall::UnplugNic { vm, host, network, mac },
        DriverCall::CancelCopy { template, pool },
        DriverCall::CreateTemplate { volume, pool, template },
        DriverCall::EnsurePool {
            host,
            pool,
            spec: PoolSpec::QemuNfs {
                server: "127.0.0.1".into(),
                export: "/primary".into(),
                local_path: None,
            },
        },
        DriverCall::EnsureNetwork {
            host,
            network,
            bridge: "cloudbr0".into(),
            kind: BridgeKind::OvsNetdev,
        },
        DriverCall::RevertSnapshot { volume, pool, snapshot },
    ]
}

fn driver_results() -> Vec<DriverResult> {
    vec![
        DriverResult::Ok,
        DriverResult::Failed(DriverError::not_found("domain not defined")),
        DriverResult::Failed(DriverError::unavailable("storage pool ps1 is unavailable")),
        DriverResult::Failed(DriverError::refused("volume is in use by a domain")),
        DriverResult::Failed(DriverError::in_doubt("timed out waiting for the host")),
        DriverResult::Lease {
            renewed_at: Some(606_183),
        },
        DriverResult::Reachable { reachable: true },
    ]
}

fn agent_msgs() -> Vec<AgentMsg> {
    let host_id = HostId(id(0x21));
    vec![
        AgentMsg::Enroll {
            token: "stratus1.abababababababababababababababababababababababababababababababab.c2VjcmV0".into(),
            host_name: "kvm1".into(),
            facts: HostFacts {
                cpu_cores: 32,
                cpu_mhz: 2400,
                memory_bytes: 256 << 30,
                hypervisor_version: "QEMU 8.2.2".into(),
                ..Default::default()
            },
            versions: vec![1],
        },
        AgentMsg::Hello {
            host_id,
            secret: "c2VjcmV0".into(),
            versions: vec![1],
        },
        AgentMsg::Heartbeat { host_id, seq: 42 },
        AgentMsg::VmReport {
            nonce: Some(7),
            running: vec![VmId(id(0x11)), VmId(id(0x12))],
        },
        AgentMsg::Reply {
            req_id: 9,
            result: DriverResult::Failed(DriverError::refused("domain is running")),
        },
    ]
}

fn server_msgs() -> Vec<ServerMsg> {
    let host_id = HostId(id(0x21));
    vec![
        ServerMsg::Enrolled {
            host_id,
            secret: "c2VjcmV0".into(),
            instance: "0a1b2c3d4e5f60718293a4b5".into(),
            ping_interval_ms: 3000,
            version: 1,
        },
        ServerMsg::Welcome {
            host_id,
            instance: "0a1b2c3d4e5f60718293a4b5".into(),
            ping_interval_ms: 3000,
            version: 1,
        },
        ServerMsg::Pong { seq: 42 },
        ServerMsg::Resync { nonce: 7 },
        ServerMsg::Request {
            req_id: 9,
            call: DriverCall::StartDomain {
                vm: VmId(id(0x11)),
                host: host_id,
            },
        },
        ServerMsg::Error {
            message: "unknown host or wrong secret".into(),
        },
    ]
}

// ---- machinery ----

/// Parses a fixture's text: does it give the example back?
type Parse = Box<dyn Fn(&str) -> Result<bool, String>>;

/// One fixture: where it lives, the bytes the example serializes to, and
/// whether parsing those bytes gives the example back.
struct Case {
    path: String,
    bytes: String,
    parse: Parse,
}

fn json_case<T>(dir: &str, name: &str, value: T) -> Case
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de> + PartialEq + 'static,
{
    let bytes = format!("{}\n", serde_json::to_string(&value).unwrap());
    Case {
        path: format!("{dir}/{name}.json"),
        bytes,
        parse: Box::new(move |s| {
            serde_json::from_str::<T>(s.trim_end())
                .map(|v| v == value)
                .map_err(|e| e.to_string())
        }),
    }
}

/// A protocol line: greetings travel with `GREETING_VERSION`, the rest with
/// the negotiated version (this build's newest in the fixtures).
fn line_case<T>(dir: &str, name: &str, v: u32, value: T) -> Case
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de> + PartialEq + 'static,
{
    let bytes = String::from_utf8(encode(v, &value)).unwrap();
    Case {
        path: format!("{dir}/{name}.json"),
        bytes,
        parse: Box::new(move |s| {
            decode::<T>(s.trim_end().as_bytes(), v)
                .map(|m| m == value)
                .map_err(|e| e.to_string())
        }),
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for c in driver_calls() {
        out.push(json_case("driver_call", fixture_driver_call(&c), c));
    }
    for r in driver_results() {
        out.push(json_case("driver_result", fixture_driver_result(&r), r));
    }
    for m in agent_msgs() {
        let v = match m {
            AgentMsg::Enroll { .. } | AgentMsg::Hello { .. } => GREETING_VERSION,
            _ => PROTOCOL_VERSION,
        };
        out.push(line_case("agent_msg", fixture_agent_msg(&m), v, m));
    }
    for m in server_msgs() {
        let v = match m {
            ServerMsg::Enrolled { .. } | ServerMsg::Welcome { .. } => GREETING_VERSION,
            _ => PROTOCOL_VERSION,
        };
        out.push(line_case("server_msg", fixture_server_msg(&m), v, m));
    }
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The variant names serde knows, from its "unknown variant" error.
fn serde_variants<T: for<'de> serde::Deserialize<'de> + std::fmt::Debug>(probe: &str) -> BTreeSet<String> {
    let err = serde_json::from_str::<T>(probe)
        .expect_err("the probe names no variant")
        .to_string();
    let list = err
        .split_once("expected one of ")
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("unexpected serde error {err:?}"));
    list.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn every_variant_has_an_example() {
    let names = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<BTreeSet<_>>();
    let calls = names(driver_calls().iter().map(fixture_driver_call).collect());
    assert_eq!(calls, serde_variants::<DriverCall>(r#"{"call":"?"}"#));
    assert_eq!(calls.len(), driver_calls().len(), "one example per DriverCall variant");

    let results = driver_results();
    let tags: BTreeSet<String> = results
        .iter()
        .map(|r| serde_json::to_value(r).unwrap()["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tags, serde_variants::<DriverResult>(r#"{"result":"?"}"#));
    let kinds: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.error().map(|e| e.kind.as_str().to_string()))
        .collect();
    assert_eq!(
        kinds,
        serde_variants::<ErrorKind>(r#""?""#),
        "one Failed example per ErrorKind"
    );
    let files = names(results.iter().map(fixture_driver_result).collect());
    assert_eq!(files.len(), results.len(), "one example per fixture");

    let agent = names(agent_msgs().iter().map(fixture_agent_msg).collect());
    assert_eq!(agent, serde_variants::<AgentMsg>(r#"{"type":"?"}"#));
    assert_eq!(agent.len(), agent_msgs().len());
    let server = names(server_msgs().iter().map(fixture_server_msg).collect());
    assert_eq!(server, serde_variants::<ServerMsg>(r#"{"type":"?"}"#));
    assert_eq!(server.len(), server_msgs().len());
}

#[test]
fn fixtures_match_byte_for_byte_and_parse_back() {
    let bless = std::env::var("STRATUS_BLESS").as_deref() == Ok("1");
    let root = root();
    let cases = cases();
    let mut problems = Vec::new();
    let mut changed = Vec::new();
    for c in &cases {
        let path = root.join(&c.path);
        let on_disk = std::fs::read_to_string(&path).ok();
        if on_disk.as_deref() != Some(c.bytes.as_str()) {
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &c.bytes).unwrap();
                match &on_disk {
                    Some(old) => changed.push(format!("updated {}:\n  was {}  now {}", c.path, old, c.bytes)),
                    None => changed.push(format!("created {}:\n  now {}", c.path, c.bytes)),
                }
            } else {
                match &on_disk {
                    Some(old) => problems.push(format!(
                        "{} differs:\n  fixture    {}  serialized {}",
                        c.path, old, c.bytes
                    )),
                    None => problems.push(format!("{} is missing; serialized {}", c.path, c.bytes)),
                }
            }
        }
        // Parse the fixture as stored (what older peers send), not just our bytes.
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| c.bytes.clone());
        match (c.parse)(&text) {
            Ok(true) => {}
            Ok(false) => problems.push(format!("{} parses to a different value", c.path)),
            Err(e) => problems.push(format!("{} does not parse: {e}", c.path)),
        }
    }
    // Fixtures no example produces any more.
    let expected: BTreeSet<PathBuf> = cases.iter().map(|c| root.join(&c.path)).collect();
    for dir in ["driver_call", "driver_result", "agent_msg", "server_msg"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !expected.contains(&p) {
                if bless {
                    std::fs::remove_file(&p).unwrap();
                    changed.push(format!("removed {}", p.display()));
                } else {
                    problems.push(format!("{} matches no variant", p.display()));
                }
            }
        }
    }
    if bless {
        if changed.is_empty() {
            println!("fixtures: nothing changed");
        }
        for c in &changed {
            println!("fixtures: {c}");
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(if the change is intended: STRATUS_BLESS=1 cargo test -p stratus-wire --test fixtures)",
        problems.join("\n")
    );
}
