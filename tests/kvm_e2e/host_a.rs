//! Step 5's host-A plumbing for tests/kvm_e2e.rs: killing and restarting host A's
//! libvirtd the way `.ci/kvm-setup.sh` runs it, fencing with `.ci/kvm-fence-qemu.sh`,
//! counting the guest's QEMU processes on the whole machine, OVS ports.

use super::need;
use super::support::wait_until;
use std::path::Path;
use std::time::{Duration, Instant};

/// Host A's libvirtd pidfile and its QEMU pidfile directory, as `.ci/kvm-setup.sh`
/// starts it (host B's QEMU pidfiles live under `$KVM_DIR/hostb/run/qemu`).
const LIBVIRTD_A_PIDFILE: &str = "/run/libvirtd.pid";
pub const QEMU_PIDS_A: &str = "/run/libvirt/qemu";

pub fn qemu_pids_b() -> String {
    format!("{}/hostb/run/qemu", need("STRATUS_TEST_KVM_DIR"))
}

/// The fence device of the CI hosts: kills the QEMU processes whose pidfiles are in `pid_dir`.
pub fn fence_command(pid_dir: &str) -> String {
    format!("bash {}/.ci/kvm-fence-qemu.sh {pid_dir}", env!("CARGO_MANIFEST_DIR"))
}

pub fn libvirtd_a_answers() -> bool {
    std::process::Command::new("virsh")
        .args(["-c", &need("STRATUS_TEST_LIBVIRT_A"), "version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts host A's libvirtd the way `.ci/kvm-setup.sh` does, unless it answers;
/// true once it answers (within 90 s).
pub fn ensure_libvirtd_a() -> bool {
    if libvirtd_a_answers() {
        return true;
    }
    let started = std::process::Command::new("/usr/sbin/libvirtd")
        .arg("-d")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let until = Instant::now() + Duration::from_secs(90);
    while started && Instant::now() < until {
        if libvirtd_a_answers() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Restarts host A's libvirtd when step 5 ends early, so the services stay usable.
pub struct LibvirtdAGuard;

impl Drop for LibvirtdAGuard {
    fn drop(&mut self) {
        if !ensure_libvirtd_a() {
            eprintln!("could not restart host A's libvirtd: run .ci/kvm-setup.sh");
        }
    }
}

pub fn exe_of(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `kill -9` of host A's libvirtd (its QEMU processes live on, as after a crash).
pub fn kill_libvirtd_a() {
    let pid = std::fs::read_to_string(LIBVIRTD_A_PIDFILE).unwrap();
    let pid = pid.trim();
    assert!(
        exe_of(pid).ends_with("libvirtd"),
        "{LIBVIRTD_A_PIDFILE}: {pid} is not libvirtd"
    );
    let killed = std::process::Command::new("kill").args(["-9", pid]).status().unwrap();
    assert!(killed.success(), "kill -9 {pid}");
    wait_until("host A's libvirtd gone", Duration::from_secs(10), || {
        !exe_of(pid).ends_with("libvirtd")
    });
}

/// Live QEMU processes (any host) running the domain `name`.
pub fn qemu_copies(name: &str) -> usize {
    let needle = format!("guest={name},");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(&needle)
                && exe_of(&e.file_name().to_string_lossy()).contains("qemu")
        })
        .count()
}

pub fn console_bytes(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("{name}.log"))).unwrap_or_default()
}

pub fn interface_port(xml: &str) -> Option<String> {
    xml.split("<interface")
        .nth(1)
        .and_then(|nic| nic.split("<target dev='").nth(1))
        .and_then(|r| r.split('\'').next())
        .filter(|p| p.starts_with("vnet") || p.starts_with("tap"))
        .map(str::to_string)
}

pub fn ovs_ports() -> String {
    let out = std::process::Command::new("ovs-vsctl")
        .args(["list-ports", &need("STRATUS_TEST_OVS_BRIDGE")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
