//! Real KVM hosts end to end, through the CloudStack API only (issue 9's CI
//! proof): `stratus serve` with its agent listener open, two
//! `stratus agent --libvirt` processes for host A and host B of
//! `.ci/kvm-setup.sh` (libvirt A and B, OVS netdev bridge, nfs-ganesha, the
//! guest template on loopback HTTP). Skips without `STRATUS_TEST_LIBVIRT_A`,
//! fails then under `STRATUS_CI=1`. Steps, in order, each printed when it
//! passes: 1 template Ready; 2 deploy on A (marker, VLAN tag, NFS root);
//! 3 stop/start/reboot, data volume, snapshot; 4 maintenance on A migrates to B
//! and the guest keeps counting, cancel; 5 host A's agent and libvirtd killed and
//! A fenced (its QEMU processes killed by `.ci/kvm-fence-qemu.sh`): A goes Down
//! and HA restarts the VM on B, one copy only, the HA time printed; A's libvirtd
//! is then restarted as `.ci/kvm-setup.sh` starts it, then A's agent (its
//! reconciliation undefines the dead domain); 6 destroy + expunge leaves nothing.
#![cfg(feature = "kvm")]

#[path = "kvm_e2e/host_a.rs"]
mod host_a;
mod support;

use host_a::{
    LibvirtdAGuard, QEMU_PIDS_A, console_bytes, ensure_libvirtd_a, fence_command, interface_port, kill_libvirtd_a,
    libvirtd_a_answers, ovs_ports, qemu_copies, qemu_pids_b,
};

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::cs::{Cs, session_keys};
use support::{Proc, free_port, wait_until};

const PASSWORD: &str = "kvm-e2e-admin-password-1";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn need(name: &str) -> String {
    env(name).unwrap_or_else(|| panic!("{name} is not set (source .ci/kvm-setup.sh's env.sh)"))
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

fn job(cs: &Cs, answer: &Value) -> Value {
    let id = s(&answer["jobid"]);
    let mut last = Value::Null;
    wait_until("the job to end", Duration::from_secs(240), || {
        last = cs.ok(&[("command", "queryAsyncJobResult"), ("jobid", &id)]);
        last["jobstatus"] != 0
    });
    assert_eq!(last["jobstatus"], 1, "job failed: {last}");
    last
}

fn vm(cs: &Cs, id: &str) -> Value {
    cs.list(
        &[("command", "listVirtualMachines"), ("id", id), ("listall", "true")],
        "virtualmachine",
    )
    .into_iter()
    .next()
    .unwrap_or(Value::Null)
}

fn console(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

fn heartbeats(text: &str) -> u64 {
    let prefix = need("STRATUS_TEST_GUEST_HEARTBEAT");
    text.lines()
        .filter_map(|l| l.split(&prefix).nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

fn virsh(uri: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("virsh")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[allow(clippy::too_many_arguments)]
fn agent(
    dir: &Path,
    name: &str,
    server: &str,
    token: &str,
    uri: &str,
    pool: &str,
    net: &str,
    console: &Path,
    fence: &str,
) -> Proc {
    let mut args: Vec<String> = [
        "agent",
        "--server",
        server,
        "--token",
        token,
        "--name",
        name,
        "--libvirt",
        uri,
        "--domain-type",
        &need("STRATUS_TEST_LIBVIRT_DOMAIN_TYPE"),
        "--pool",
        &format!(
            "{pool}=nfs://{}{}#{}",
            need("STRATUS_TEST_NFS_SERVER"),
            need("STRATUS_TEST_NFS_PRIMARY_EXPORT"),
            need("STRATUS_TEST_NFS_PRIMARY_DIR")
        ),
        "--secondary",
        &format!(
            "nfs://{}{}",
            need("STRATUS_TEST_NFS_SERVER"),
            need("STRATUS_TEST_NFS_SECONDARY_EXPORT")
        ),
        "--secondary-local",
        &need("STRATUS_TEST_NFS_SECONDARY_DIR"),
        "--bridge",
        &need("STRATUS_TEST_OVS_BRIDGE"),
        "--bridge-kind",
        "ovs-netdev",
        "--network-vlan",
        &format!("{net}=100"),
        "--console-dir",
        console.to_str().unwrap(),
        "--shutdown-timeout",
        "2",
        "--migration-uri",
        uri,
        "--migration-data-uri",
        &need("STRATUS_TEST_MIGRATE_URI"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--fence-command".into());
    args.push(fence.into());
    args.push("--state".into());
    args.push(dir.join(format!("{name}.creds")).display().to_string());
    Proc::start(dir, name, &args)
}

#[test]
fn kvm_hosts_through_the_api() {
    if env("STRATUS_TEST_LIBVIRT_A").is_none() {
        assert!(
            env("STRATUS_CI").is_none(),
            "STRATUS_CI=1 but no KVM services (STRATUS_TEST_LIBVIRT_A)"
        );
        eprintln!("skipped: STRATUS_TEST_LIBVIRT_A is not set");
        return;
    }
    let (uri_a, uri_b) = (need("STRATUS_TEST_LIBVIRT_A"), need("STRATUS_TEST_LIBVIRT_B"));
    // A run that failed in step 5 may have left host A's libvirtd dead.
    assert!(ensure_libvirtd_a(), "host A's libvirtd does not answer");
    // A failed earlier run of this test may have left its guest running.
    for uri in [&uri_a, &uri_b] {
        virsh(uri, &["destroy", "e2e-vm"]);
        virsh(uri, &["undefine", "e2e-vm"]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let console_dir = Path::new(&need("STRATUS_TEST_KVM_DIR")).join(format!("e2e-console-{}", std::process::id()));
    std::fs::create_dir_all(&console_dir).unwrap();
    let (port, agent_port) = (free_port(), free_port());
    let secondary = format!(
        "nfs://{}{}",
        need("STRATUS_TEST_NFS_SERVER"),
        need("STRATUS_TEST_NFS_SECONDARY_EXPORT")
    );
    let args: Vec<String> = [
        "serve",
        "--db",
        &format!("sqlite://{}/e2e.db", dir.display()),
        "--port",
        &port.to_string(),
        "--admin-password",
        PASSWORD,
        "--agent-listen",
        &format!("127.0.0.1:{agent_port}"),
        "--secondary-mount",
        &format!("{secondary}={}", need("STRATUS_TEST_NFS_SECONDARY_DIR")),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut server = Proc::start(dir, "serve", &args);
    wait_until("the API to listen", Duration::from_secs(60), || {
        server.assert_alive();
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let admin = session_keys(&format!("127.0.0.1:{port}"), "admin", PASSWORD);

    // The zone: one KVM cluster, NFS primary, NFS secondary, a guest network.
    let zone = s(&admin.ok(&[
        ("command", "createZone"),
        ("name", "kvm-zone"),
        ("networktype", "Advanced"),
        ("dns1", "8.8.8.8"),
        ("internaldns1", "10.0.0.2"),
        ("guestcidraddress", "10.231.0.0/16"),
    ])["zone"]["id"]);
    let pod = s(&admin.ok(&[
        ("command", "createPod"),
        ("name", "kvm-pod"),
        ("zoneid", &zone),
        ("gateway", "172.16.40.1"),
        ("netmask", "255.255.255.0"),
        ("startip", "172.16.40.10"),
        ("endip", "172.16.40.200"),
    ])["pod"]["id"]);
    let cluster = s(&admin.ok(&[
        ("command", "addCluster"),
        ("clustername", "kvm-cluster"),
        ("clustertype", "CloudManaged"),
        ("hypervisor", "KVM"),
        ("podid", &pod),
        ("zoneid", &zone),
    ])["cluster"][0]["id"]);
    let mut tokens = Vec::new();
    let mut hosts = Vec::new();
    for name in ["hosta", "hostb"] {
        let h = admin.ok(&[
            ("command", "addHost"),
            ("hypervisor", "KVM"),
            (
                "url",
                &format!("kvm://{name}/cpucore=2&cpuspeed=2000&memory=4294967296"),
            ),
            ("username", "root"),
            ("password", "unused"),
            ("zoneid", &zone),
            ("podid", &pod),
            ("clusterid", &cluster),
        ]);
        tokens.push(s(&h["host"][0]["enrollmenttoken"]));
        hosts.push(s(&h["host"][0]["id"]));
    }
    let pool = s(&admin.ok(&[
        ("command", "createStoragePool"),
        ("name", "kvm-nfs"),
        (
            "url",
            &format!(
                "nfs://{}{}",
                need("STRATUS_TEST_NFS_SERVER"),
                need("STRATUS_TEST_NFS_PRIMARY_EXPORT")
            ),
        ),
        ("zoneid", &zone),
        ("podid", &pod),
        ("clusterid", &cluster),
    ])["storagepool"]["id"]);
    admin.ok(&[
        ("command", "addImageStore"),
        ("provider", "NFS"),
        ("url", &secondary),
        ("zoneid", &zone),
    ]);
    admin.ok(&[
        ("command", "updateConfiguration"),
        ("name", "secstorage.allowed.internal.sites"),
        ("value", "127.0.0.1/32"),
    ]);
    let offering = s(&admin.list(&[("command", "listNetworkOfferings")], "networkoffering")[0]["id"]);
    let net = s(&admin.ok(&[
        ("command", "createNetwork"),
        ("name", "kvm-guests"),
        ("displaytext", "guests"),
        ("networkofferingid", &offering),
        ("zoneid", &zone),
    ])["network"]["id"]);

    let server_addr = format!("127.0.0.1:{agent_port}");
    let mut agent_a = agent(
        dir,
        "hosta",
        &server_addr,
        &tokens[0],
        &uri_a,
        &pool,
        &net,
        &console_dir,
        &format!("[ {{host}} = {} ] && {}", hosts[1], fence_command(&qemu_pids_b())),
    );
    let mut agent_b = agent(
        dir,
        "hostb",
        &server_addr,
        &tokens[1],
        &uri_b,
        &pool,
        &net,
        &console_dir,
        &format!("[ {{host}} = {} ] && {}", hosts[0], fence_command(QEMU_PIDS_A)),
    );
    wait_until("both KVM hosts Up", Duration::from_secs(60), || {
        agent_a.assert_alive();
        agent_b.assert_alive();
        let hs = admin.list(&[("command", "listHosts"), ("zoneid", &zone)], "host");
        hs.len() == 2 && hs.iter().all(|h| h["state"] == "Up")
    });

    // 1. The template from its URL becomes Ready.
    let ostype = s(&admin.list(&[("command", "listOsTypes"), ("keyword", "Linux")], "ostype")[0]["id"]);
    let template = s(&admin.ok(&[
        ("command", "registerTemplate"),
        ("name", "stratus-guest"),
        ("displaytext", "busybox guest"),
        ("url", &need("STRATUS_TEST_TEMPLATE_URL")),
        (
            "checksum",
            &format!("{{SHA-256}}{}", need("STRATUS_TEST_TEMPLATE_SHA256")),
        ),
        ("format", "QCOW2"),
        ("hypervisor", "KVM"),
        ("ostypeid", &ostype),
        ("zoneid", &zone),
    ])["template"][0]["id"]);
    let mut last = Value::Null;
    let ready = (0..240).any(|_| {
        let t = admin.list(
            &[
                ("command", "listTemplates"),
                ("templatefilter", "all"),
                ("id", &template),
                ("zoneid", &zone),
            ],
            "template",
        );
        last = t.first().cloned().unwrap_or(Value::Null);
        let ok = last["isready"] == true;
        if !ok {
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    });
    assert!(ready, "template not Ready: {last}\n{}", server.log());
    eprintln!("step 1 ok: template Ready");

    // 2. Deploy on A.
    let so = s(&admin.ok(&[
        ("command", "createServiceOffering"),
        ("name", "tiny-ha"),
        ("displaytext", "1 vCPU, 128 MiB, HA"),
        ("cpunumber", "1"),
        ("cpuspeed", "500"),
        ("memory", "128"),
        ("offerha", "true"),
    ])["serviceoffering"]["id"]);
    let deployed = job(
        &admin,
        &admin.ok(&[
            ("command", "deployVirtualMachine"),
            ("zoneid", &zone),
            ("serviceofferingid", &so),
            ("templateid", &template),
            ("networkids", &net),
            ("hostid", &hosts[0]),
            ("name", "e2e-vm"),
        ]),
    );
    let vm_id = s(&deployed["jobresult"]["virtualmachine"]["id"]);
    let v = vm(&admin, &vm_id);
    assert_eq!(v["state"], "Running", "{v}");
    let domain = s(&v["name"]); // the libvirt domain is named after the VM
    let marker = need("STRATUS_TEST_GUEST_MARKER");
    wait_until("the guest marker on the console", Duration::from_secs(90), || {
        console(&console_dir, &domain).contains(&marker)
    });
    let xml = virsh(&uri_a, &["dumpxml", &domain]);
    assert!(
        xml.contains("protocol='nfs'") || xml.contains("protocol=\"nfs\""),
        "root disk not on NFS: {xml}"
    );
    let port_name = interface_port(&xml).expect("an interface target");
    let tag = std::process::Command::new("ovs-vsctl")
        .args(["get", "port", &port_name, "tag"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tag.stdout).trim(), "100");
    eprintln!("step 2 ok: running on A, marker seen, OVS tag 100, root disk on NFS");

    // 3. Stop, start, reboot, data volume, snapshot.
    job(&admin, &admin.ok(&[("command", "stopVirtualMachine"), ("id", &vm_id)]));
    assert_eq!(vm(&admin, &vm_id)["state"], "Stopped");
    assert!(!virsh(&uri_a, &["list", "--all", "--name"]).contains(&domain));
    job(
        &admin,
        &admin.ok(&[
            ("command", "startVirtualMachine"),
            ("id", &vm_id),
            ("hostid", &hosts[0]),
        ]),
    );
    job(
        &admin,
        &admin.ok(&[("command", "rebootVirtualMachine"), ("id", &vm_id)]),
    );
    assert_eq!(vm(&admin, &vm_id)["state"], "Running");
    let disk_offering = s(&admin.ok(&[
        ("command", "createDiskOffering"),
        ("name", "small"),
        ("displaytext", "64 MiB... 1 GiB"),
        ("disksize", "1"),
    ])["diskoffering"]["id"]);
    let vol = job(
        &admin,
        &admin.ok(&[
            ("command", "createVolume"),
            ("name", "e2e-data"),
            ("zoneid", &zone),
            ("diskofferingid", &disk_offering),
        ]),
    );
    let vol_id = s(&vol["jobresult"]["volume"]["id"]);
    job(
        &admin,
        &admin.ok(&[
            ("command", "attachVolume"),
            ("id", &vol_id),
            ("virtualmachineid", &vm_id),
        ]),
    );
    assert!(
        virsh(&uri_a, &["dumpxml", &domain]).contains(&vol_id),
        "data disk not attached"
    );
    let root = s(&admin.list(
        &[
            ("command", "listVolumes"),
            ("virtualmachineid", &vm_id),
            ("type", "ROOT"),
        ],
        "volume",
    )[0]["id"]);
    let snap = job(&admin, &admin.ok(&[("command", "createSnapshot"), ("volumeid", &root)]));
    let snap_id = s(&snap["jobresult"]["snapshot"]["id"]);
    let snap_file = format!("{}/snapshot/{snap_id}.qcow2", need("STRATUS_TEST_NFS_SECONDARY_DIR"));
    assert!(Path::new(&snap_file).exists(), "{snap_file}");
    eprintln!("step 3 ok: stop, start, reboot, data volume attached, snapshot on secondary");

    // 4. Maintenance on A: the VM live-migrates to B and keeps counting.
    let before = heartbeats(&console(&console_dir, &domain));
    admin.ok(&[("command", "prepareHostForMaintenance"), ("id", &hosts[0])]);
    wait_until("A in Maintenance with the VM on B", Duration::from_secs(120), || {
        let h = admin.list(&[("command", "listHosts"), ("id", &hosts[0])], "host");
        h.first().is_some_and(|h| h["resourcestate"] == "Maintenance")
            && vm(&admin, &vm_id)["hostid"] == hosts[1].as_str()
    });
    assert!(virsh(&uri_b, &["list", "--name"]).contains(&domain));
    wait_until("the heartbeat continues on B", Duration::from_secs(30), || {
        heartbeats(&console(&console_dir, &domain)) > before + 3
    });
    admin.ok(&[("command", "cancelHostMaintenance"), ("id", &hosts[0])]);
    eprintln!("step 4 ok: live-migrated to B, heartbeat continued, A in Maintenance, cancelled");

    // 5. Host A dies: its agent and libvirtd are killed and it is fenced (its
    // QEMU processes killed, as a power-off would). The investigators declare A
    // Down and HA restarts the VM on B, with the default HA settings.
    // Back to A by stop + start: a live migration B -> A cannot work on this one
    // machine (host B's libvirtd resolves A's `qemu:///system` to its own socket).
    job(&admin, &admin.ok(&[("command", "stopVirtualMachine"), ("id", &vm_id)]));
    job(
        &admin,
        &admin.ok(&[
            ("command", "startVirtualMachine"),
            ("id", &vm_id),
            ("hostid", &hosts[0]),
        ]),
    );
    assert_eq!(vm(&admin, &vm_id)["hostid"], hosts[0].as_str());
    assert!(virsh(&uri_a, &["list", "--name"]).contains(&domain));
    assert_eq!(qemu_copies(&domain), 1);
    let port_a = interface_port(&virsh(&uri_a, &["dumpxml", &domain])).expect("an interface target on A");
    let ports_before: Vec<String> = ovs_ports().lines().map(str::to_string).collect();
    let libvirtd_guard = LibvirtdAGuard;
    let killed = Instant::now();
    agent_a.kill9();
    kill_libvirtd_a();
    let fence = std::process::Command::new("sh")
        .args(["-c", &fence_command(QEMU_PIDS_A)])
        .output()
        .unwrap();
    assert!(
        fence.status.success(),
        "fencing A failed: {}",
        String::from_utf8_lossy(&fence.stderr)
    );
    let fenced_after = killed.elapsed();
    assert_eq!(qemu_copies(&domain), 0, "A's guest survived the fence");
    let console_before = console_bytes(&console_dir, &domain).len();
    let mut down_after = None;
    let ha = loop {
        let a = admin.list(&[("command", "listHosts"), ("id", &hosts[0])], "host");
        if down_after.is_none() && a.first().is_some_and(|h| h["state"] == "Down") {
            down_after = Some(killed.elapsed());
        }
        let last = vm(&admin, &vm_id);
        if last["state"] == "Running" && last["hostid"] == hosts[1].as_str() {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(180),
            "HA did not restart the VM on B: {last}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let host_a = admin.list(
        &[("command", "listHosts"), ("id", &hosts[0]), ("details", "evidence")],
        "host",
    );
    assert_eq!(host_a[0]["state"], "Down", "{}", host_a[0]);
    // How management proved A fenced: A's lease on the NFS pool (read through B) went
    // stale, or B's fence command (`.ci/kvm-fence-qemu.sh`) when no lease could be read.
    let proof = host_a[0]["fenced"].clone();
    assert!(virsh(&uri_b, &["list", "--name"]).contains(&domain));
    wait_until("the marker on B's console", Duration::from_secs(90), || {
        let text = console_bytes(&console_dir, &domain);
        let fresh = text.get(console_before..).unwrap_or(&text);
        String::from_utf8_lossy(fresh).contains(&marker)
    });
    assert_eq!(qemu_copies(&domain), 1, "exactly one running copy");
    eprintln!(
        "step 5 HA time: {:.1} s from killing A's agent + libvirtd to Running on B per the API \
         (A's QEMU killed after {:.1} s, A Down after {}; management's proof: {proof}) with the default settings",
        ha.as_secs_f64(),
        fenced_after.as_secs_f64(),
        down_after.map_or("?".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
    // Host A comes back: libvirtd as .ci/kvm-setup.sh starts it (it finds its
    // guest dead: shut off, its OVS port gone), then the agent, whose start-up
    // reconciliation undefines the dead Stratus domain; A is Up again.
    drop(libvirtd_guard);
    assert!(libvirtd_a_answers(), "host A's libvirtd did not restart");
    // B may have reused the name of A's port for the restarted guest.
    let port_b = interface_port(&virsh(&uri_b, &["dumpxml", &domain])).expect("an interface target on B");
    wait_until("A's OVS port gone", Duration::from_secs(60), || {
        ovs_ports()
            .lines()
            .all(|p| p == port_b || (p != port_a && ports_before.iter().any(|b| b == p)))
    });
    agent_a = agent(
        dir,
        "hosta",
        &server_addr,
        &tokens[0],
        &uri_a,
        &pool,
        &net,
        &console_dir,
        &format!("[ {{host}} = {} ] && {}", hosts[1], fence_command(&qemu_pids_b())),
    );
    wait_until("A Up again, its dead domain undefined", Duration::from_secs(60), || {
        agent_a.assert_alive();
        let a = admin.list(&[("command", "listHosts"), ("id", &hosts[0])], "host");
        a.first().is_some_and(|h| h["state"] == "Up") && !virsh(&uri_a, &["list", "--all", "--name"]).contains(&domain)
    });
    let v = vm(&admin, &vm_id);
    assert!(v["state"] == "Running" && v["hostid"] == hosts[1].as_str(), "{v}");
    assert_eq!(qemu_copies(&domain), 1, "exactly one running copy");
    eprintln!("step 5 ok: A Down and fenced, HA restarted the VM on B (marker, one copy); A back and Up");

    // 6. Destroy and expunge: nothing left anywhere.
    job(&admin, &admin.ok(&[("command", "detachVolume"), ("id", &vol_id)]));
    job(&admin, &admin.ok(&[("command", "deleteSnapshot"), ("id", &snap_id)]));
    job(
        &admin,
        &admin.ok(&[
            ("command", "destroyVirtualMachine"),
            ("id", &vm_id),
            ("expunge", "true"),
        ]),
    );
    admin.ok(&[("command", "deleteVolume"), ("id", &vol_id)]);
    wait_until(
        "no domain, port, volume or snapshot left",
        Duration::from_secs(60),
        || {
            let files: Vec<String> = std::fs::read_dir(need("STRATUS_TEST_NFS_PRIMARY_DIR"))
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            !virsh(&uri_a, &["list", "--all", "--name"]).contains(&domain)
                && !virsh(&uri_b, &["list", "--all", "--name"]).contains(&domain)
                && !files.iter().any(|f| f.contains(&root) || f.contains(&vol_id))
                && !Path::new(&snap_file).exists()
        },
    );
    eprintln!("step 6 ok: destroyed and expunged, nothing left");
    agent_a.kill9();
    agent_b.kill9();
    server.kill9();
    let _ = std::fs::remove_dir_all(&console_dir);
}
