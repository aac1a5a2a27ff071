//! The host monitor on real KVM hosts (`.ci/kvm-setup.sh`'s libvirt A and B,
//! OVS, nfs-ganesha), through the CloudStack API: host A runs
//! `stratus agent --host-monitor-dir` beside `stratus hostmon`, host B a plain
//! agent. An HA VM runs on A.
//!
//! 1. `kill -9` of A's agent only: the monitor keeps A's lease on the NFS pool
//!    fresh, so for 30 s (past ha.lease.timeout plus the proof margin, when
//!    an agent-only lease writer would have let HA restart the VM on B while
//!    its QEMU still runs on A) A is Disconnected or Alert, never Down, the VM
//!    stays Running on A, one QEMU copy. The agent restarts: A is Up again
//!    with its VM still Running there.
//! 2. `kill -9` of A's monitor only: the agent logs the loss, renews the lease
//!    itself (the lease file keeps advancing), no HA restart; the monitor
//!    restarts and the agent hands the lease back.
//!
//! Skips without `STRATUS_TEST_LIBVIRT_A` (fails then under `STRATUS_CI=1`).
//! Run it under `flock /work/kvm.lock` on shared machines.
#![cfg(feature = "kvm")]

#[path = "kvm_e2e/host_a.rs"]
#[allow(dead_code)]
mod host_a;
#[path = "kvm_e2e/lab.rs"]
mod lab;
mod support;

use host_a::{ensure_libvirtd_a, qemu_copies};
use lab::{Lab, env, host, job, need, virsh, vm};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Proc, wait_until};

/// Host A's lease value on the NFS pool (wall-clock ms of its last renewal).
fn lease_a(lab: &Lab) -> Option<u64> {
    let path = Path::new(&need("STRATUS_TEST_NFS_PRIMARY_DIR")).join(format!("stratus-hb-{}.lease", lab.hosts[0]));
    let bytes = std::fs::read(path).ok()?;
    String::from_utf8_lossy(&bytes)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .parse()
        .ok()
}

fn hostmon(lab: &Lab, run_dir: &Path) -> Proc {
    let args: Vec<String> = [
        "hostmon",
        "--libvirt",
        &lab.uris[0],
        "--pool",
        &lab::pool_arg(&lab.pool),
        "--state",
        lab.creds(0).to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::start(lab.dir.path(), "hostmon-a", &args)
}

fn agent_a(lab: &Lab, run_dir: &Path) -> Proc {
    let extra = vec!["--host-monitor-dir".to_string(), run_dir.display().to_string()];
    Proc::start(lab.dir.path(), "hosta", &lab.agent_args(0, &extra))
}

/// For `window`, every half second: the VM stays Running on A (one QEMU
/// copy) and A is never Down. Returns the host states seen, in order, once each.
fn vm_stays_on_a(lab: &Lab, vm_id: &str, domain: &str, window: Duration, during: &str) -> Vec<String> {
    let start = Instant::now();
    let mut states: Vec<String> = Vec::new();
    while start.elapsed() < window {
        let a = host(&lab.admin, &lab.hosts[0]);
        let state = a["state"].as_str().unwrap_or("?").to_string();
        assert_ne!(
            state,
            "Down",
            "{during}: A went Down after {:.1} s: {a}\n{}",
            start.elapsed().as_secs_f64(),
            lab.server.log()
        );
        if states.last() != Some(&state) {
            states.push(state);
        }
        let v = vm(&lab.admin, vm_id);
        assert!(
            v["state"] == "Running" && v["hostid"] == lab.hosts[0].as_str(),
            "{during}: the VM left A after {:.1} s: {v}",
            start.elapsed().as_secs_f64()
        );
        assert_eq!(qemu_copies(domain), 1, "{during}: exactly one QEMU copy");
        assert!(
            !virsh(&lab.uris[1], &["list", "--name"]).contains(domain),
            "{during}: the domain was started on B"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    states
}

#[test]
fn the_host_monitor_keeps_a_dead_agents_vms_in_place() {
    if env("STRATUS_TEST_LIBVIRT_A").is_none() {
        assert!(
            env("STRATUS_CI").is_none(),
            "STRATUS_CI=1 but no KVM services (STRATUS_TEST_LIBVIRT_A)"
        );
        eprintln!("skipped: STRATUS_TEST_LIBVIRT_A is not set");
        return;
    }
    assert!(ensure_libvirtd_a(), "host A's libvirtd does not answer");
    const NAME: &str = "hostmon-vm";
    for uri in [need("STRATUS_TEST_LIBVIRT_A"), need("STRATUS_TEST_LIBVIRT_B")] {
        virsh(&uri, &["destroy", NAME]);
        virsh(&uri, &["undefine", NAME]);
    }
    let lab = Lab::start();
    let run_dir: PathBuf = lab.dir.path().join("run-a");
    let mut agent = agent_a(&lab, &run_dir);
    let mut agent_b = Proc::start(lab.dir.path(), "hostb", &lab.agent_args(1, &[]));
    let mut monitor = hostmon(&lab, &run_dir);
    wait_until("both KVM hosts Up", Duration::from_secs(60), || {
        agent.assert_alive();
        agent_b.assert_alive();
        monitor.assert_alive();
        let hs = lab
            .admin
            .list(&[("command", "listHosts"), ("zoneid", &lab.zone)], "host");
        hs.len() == 2 && hs.iter().all(|h| h["state"] == "Up")
    });
    wait_until("the monitor renewing A's lease", Duration::from_secs(30), || {
        monitor.assert_alive();
        let stamp = std::fs::read_to_string(run_dir.join("hostmon")).unwrap_or_default();
        stamp.contains("lease_renewed_ms") && lease_a(&lab).is_some()
    });
    let template = lab.template();
    let vm_id = lab.deploy_ha(&template, 0, NAME);
    let v = vm(&lab.admin, &vm_id);
    assert!(v["state"] == "Running" && v["hostid"] == lab.hosts[0].as_str(), "{v}");
    let domain = lab::s(&v["name"]);
    assert_eq!(qemu_copies(&domain), 1);
    assert!(
        !agent.log().contains("agent.hostmon.gone"),
        "the agent never had to take over:\n{}",
        agent.log()
    );
    eprintln!("setup ok: A (agent + host monitor) and B Up, HA VM {NAME} Running on A");

    // 1. The agent dies, the monitor lives.
    let lease_before = lease_a(&lab).unwrap();
    agent.kill9();
    let states = vm_stays_on_a(&lab, &vm_id, &domain, Duration::from_secs(30), "agent A dead");
    let lease_after = lease_a(&lab).unwrap();
    assert!(
        lease_after >= lease_before + 20_000,
        "the monitor kept renewing: {lease_before} -> {lease_after}"
    );
    let a = host(&lab.admin, &lab.hosts[0]);
    assert!(
        a["state"] == "Disconnected" || a["state"] == "Alert",
        "A after 30 s without its agent: {a}"
    );
    eprintln!(
        "step 1 ok: agent A killed; 30 s later A is {} (states {states:?}), the VM still Running on A, one copy",
        a["state"]
    );
    agent = agent_a(&lab, &run_dir);
    wait_until("A Up again", Duration::from_secs(60), || {
        agent.assert_alive();
        host(&lab.admin, &lab.hosts[0])["state"] == "Up"
    });
    let v = vm(&lab.admin, &vm_id);
    assert!(v["state"] == "Running" && v["hostid"] == lab.hosts[0].as_str(), "{v}");
    assert_eq!(qemu_copies(&domain), 1);
    eprintln!("step 1 ok: agent A restarted: A Up, its VM Running on A");

    // 2. The monitor dies, the agent lives: it takes the lease over.
    monitor.kill9();
    wait_until("the agent taking over", Duration::from_secs(30), || {
        agent.assert_alive();
        agent.log().contains("agent.hostmon.gone")
    });
    let taken = lease_a(&lab).unwrap();
    let states = vm_stays_on_a(&lab, &vm_id, &domain, Duration::from_secs(30), "monitor A dead");
    assert!(
        lease_a(&lab).unwrap() >= taken + 20_000,
        "the agent renews the lease itself"
    );
    assert_eq!(states, vec!["Up".to_string()], "A stays Up while its agent answers");
    monitor = hostmon(&lab, &run_dir);
    wait_until("the agent handing the lease back", Duration::from_secs(30), || {
        monitor.assert_alive();
        agent.log().contains("agent.hostmon.back")
    });
    eprintln!("step 2 ok: monitor A killed: the agent renewed the lease, no HA restart; monitor back");

    job(
        &lab.admin,
        &lab.admin.ok(&[
            ("command", "destroyVirtualMachine"),
            ("id", &vm_id),
            ("expunge", "true"),
        ]),
    );
    wait_until("the domain gone", Duration::from_secs(60), || {
        !virsh(&lab.uris[0], &["list", "--all", "--name"]).contains(&domain)
    });
    monitor.kill9();
    agent.kill9();
    agent_b.kill9();
    for h in &lab.hosts {
        let _ = std::fs::remove_file(
            Path::new(&need("STRATUS_TEST_NFS_PRIMARY_DIR")).join(format!("stratus-hb-{h}.lease")),
        );
    }
}
