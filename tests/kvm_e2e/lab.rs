//! A two-host KVM lab through the API for tests/kvm_hostmon.rs: `stratus serve`
//! with its agent listener, one KVM cluster with hosts A and B of
//! `.ci/kvm-setup.sh`, NFS primary and secondary storage, a VLAN guest network,
//! the guest template Ready and an HA service offering. The agents are started
//! by the test (`agent_args` builds their command lines).

use super::support::cs::{Cs, session_keys};
use super::support::{Proc, free_port, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PASSWORD: &str = "kvm-hostmon-admin-password-1";

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn need(name: &str) -> String {
    env(name).unwrap_or_else(|| panic!("{name} is not set (source .ci/kvm-setup.sh's env.sh)"))
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// Waits for an async job; panics unless it succeeded.
pub fn job(cs: &Cs, answer: &Value) -> Value {
    let id = s(&answer["jobid"]);
    let mut last = Value::Null;
    wait_until("the job to end", Duration::from_secs(240), || {
        last = cs.ok(&[("command", "queryAsyncJobResult"), ("jobid", &id)]);
        last["jobstatus"] != 0
    });
    assert_eq!(last["jobstatus"], 1, "job failed: {last}");
    last
}

pub fn vm(cs: &Cs, id: &str) -> Value {
    cs.list(
        &[("command", "listVirtualMachines"), ("id", id), ("listall", "true")],
        "virtualmachine",
    )
    .into_iter()
    .next()
    .unwrap_or(Value::Null)
}

pub fn host(cs: &Cs, id: &str) -> Value {
    cs.list(&[("command", "listHosts"), ("id", id)], "host")
        .into_iter()
        .next()
        .unwrap_or(Value::Null)
}

pub fn virsh(uri: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("virsh")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `--pool` argument of both hosts' agents (and host monitors).
pub fn pool_arg(pool: &str) -> String {
    format!(
        "{pool}=nfs://{}{}#{}",
        need("STRATUS_TEST_NFS_SERVER"),
        need("STRATUS_TEST_NFS_PRIMARY_EXPORT"),
        need("STRATUS_TEST_NFS_PRIMARY_DIR")
    )
}

/// The lab: the server, the admin's API keys and what was created.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub console_dir: PathBuf,
    pub server: Proc,
    pub admin: Cs,
    pub agent_addr: String,
    pub zone: String,
    pub hosts: Vec<String>,
    pub tokens: Vec<String>,
    pub uris: Vec<String>,
    pub pool: String,
    pub net: String,
}

impl Lab {
    /// The server, zone, pod, KVM cluster, hosts A and B (not connected yet),
    /// NFS primary pool, NFS image store and a guest network.
    pub fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let console_dir =
            Path::new(&need("STRATUS_TEST_KVM_DIR")).join(format!("hostmon-console-{}", std::process::id()));
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
            &format!("sqlite://{}/hostmon.db", dir.path().display()),
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
        let mut server = Proc::start(dir.path(), "serve", &args);
        wait_until("the API to listen", Duration::from_secs(60), || {
            server.assert_alive();
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let admin = session_keys(&format!("127.0.0.1:{port}"), "admin", PASSWORD);
        let zone = s(&admin.ok(&[
            ("command", "createZone"),
            ("name", "hostmon-zone"),
            ("networktype", "Advanced"),
            ("dns1", "8.8.8.8"),
            ("internaldns1", "10.0.0.2"),
            ("guestcidraddress", "10.231.0.0/16"),
        ])["zone"]["id"]);
        let pod = s(&admin.ok(&[
            ("command", "createPod"),
            ("name", "hostmon-pod"),
            ("zoneid", &zone),
            ("gateway", "172.16.40.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "172.16.40.10"),
            ("endip", "172.16.40.200"),
        ])["pod"]["id"]);
        let cluster = s(&admin.ok(&[
            ("command", "addCluster"),
            ("clustername", "hostmon-cluster"),
            ("clustertype", "CloudManaged"),
            ("hypervisor", "KVM"),
            ("podid", &pod),
            ("zoneid", &zone),
        ])["cluster"][0]["id"]);
        let (mut tokens, mut hosts) = (Vec::new(), Vec::new());
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
            ("name", "hostmon-nfs"),
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
            ("name", "hostmon-guests"),
            ("displaytext", "guests"),
            ("networkofferingid", &offering),
            ("zoneid", &zone),
        ])["network"]["id"]);
        Lab {
            dir,
            console_dir,
            server,
            admin,
            agent_addr: format!("127.0.0.1:{agent_port}"),
            zone,
            hosts,
            tokens,
            uris: vec![need("STRATUS_TEST_LIBVIRT_A"), need("STRATUS_TEST_LIBVIRT_B")],
            pool,
            net,
        }
    }

    /// `stratus agent --libvirt` for host `i` (0: A, 1: B), plus `extra` arguments.
    pub fn agent_args(&self, i: usize, extra: &[String]) -> Vec<String> {
        let name = ["hosta", "hostb"][i];
        let mut args: Vec<String> = [
            "agent",
            "--server",
            &self.agent_addr,
            "--token",
            &self.tokens[i],
            "--name",
            name,
            "--libvirt",
            &self.uris[i],
            "--domain-type",
            &need("STRATUS_TEST_LIBVIRT_DOMAIN_TYPE"),
            "--pool",
            &pool_arg(&self.pool),
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
            &format!("{}=100", self.net),
            "--console-dir",
            self.console_dir.to_str().unwrap(),
            "--shutdown-timeout",
            "2",
            "--migration-uri",
            &self.uris[i],
            "--migration-data-uri",
            &need("STRATUS_TEST_MIGRATE_URI"),
            "--state",
            self.creds(i).to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        args
    }

    /// Host `i`'s agent credentials file (its `--state`).
    pub fn creds(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.creds", ["hosta", "hostb"][i]))
    }

    /// Registers the CI guest template and waits until it is Ready.
    pub fn template(&self) -> String {
        let ostype = s(&self
            .admin
            .list(&[("command", "listOsTypes"), ("keyword", "Linux")], "ostype")[0]["id"]);
        let template = s(&self.admin.ok(&[
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
            ("zoneid", &self.zone),
        ])["template"][0]["id"]);
        wait_until("the template Ready", Duration::from_secs(120), || {
            let t = self.admin.list(
                &[
                    ("command", "listTemplates"),
                    ("templatefilter", "all"),
                    ("id", &template),
                    ("zoneid", &self.zone),
                ],
                "template",
            );
            t.first().is_some_and(|t| t["isready"] == true)
        });
        template
    }

    /// Deploys an HA VM named `name` on host `i`; its id.
    pub fn deploy_ha(&self, template: &str, i: usize, name: &str) -> String {
        let so = s(&self.admin.ok(&[
            ("command", "createServiceOffering"),
            ("name", "tiny-ha"),
            ("displaytext", "1 vCPU, 128 MiB, HA"),
            ("cpunumber", "1"),
            ("cpuspeed", "500"),
            ("memory", "128"),
            ("offerha", "true"),
        ])["serviceoffering"]["id"]);
        let deployed = job(
            &self.admin,
            &self.admin.ok(&[
                ("command", "deployVirtualMachine"),
                ("zoneid", &self.zone),
                ("serviceofferingid", &so),
                ("templateid", template),
                ("networkids", &self.net),
                ("hostid", &self.hosts[i]),
                ("name", name),
            ]),
        );
        s(&deployed["jobresult"]["virtualmachine"]["id"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.console_dir);
    }
}
