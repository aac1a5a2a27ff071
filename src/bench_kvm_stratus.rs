//! The Stratus side of `stratus bench kvm`: this process serves the API on a
//! temporary SQLite Store; two `stratus agent --libvirt` children are hosts A
//! and B (the zone of tests/kvm_e2e.rs: one KVM cluster, NFS primary and
//! secondary storage, a guest network). Every step goes through the signed
//! CloudStack API, as an operator's client would.

use crate::bench_api_http::{Conn, Keys};
use crate::bench_kvm::{Env, Samples, ms_since, wait_marker};
use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stratus::serve::{Running, ServeOptions, start};
use stratus_api::secstorage::SecondaryMount;

const PASSWORD: &str = "kvm-bench-admin-password-1";
/// Host A's QEMU pidfiles (libvirtd as `.ci/kvm-setup.sh` runs it).
const QEMU_PIDS_A: &str = "/run/libvirt/qemu";

#[derive(Debug)]
pub struct Options {
    pub rounds: usize,
    pub ha: bool,
    pub libvirtd_a_pidfile: PathBuf,
    pub fence_script: PathBuf,
}

#[derive(Debug)]
pub struct Measured {
    pub samples: Samples,
    /// listHosts' size of each host once Up: what its agent reported at
    /// enrollment (`addHost` was given no numbers).
    pub hosts: Vec<serde_json::Value>,
    pub ha_restart_ms: Option<u64>,
    pub ha_down_ms: Option<u64>,
}

/// A child killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Client {
    conn: Conn,
    keys: Keys,
}

impl Client {
    async fn call(&mut self, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let v = self.conn.call(&self.keys, params).await?;
        // The answer's one field: `{"<command>response": {...}}`.
        v.as_object()
            .and_then(|o| o.values().next().cloned())
            .context("an empty answer")
    }

    /// An async command, polled every 50 ms until it ends: its `jobresult`.
    async fn job(&mut self, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let v = self.call(params).await?;
        let job = text(&v, &["jobid"])?;
        loop {
            let r = self
                .call(&[("command", "queryAsyncJobResult"), ("jobid", &job)])
                .await?;
            match r["jobstatus"].as_i64() {
                Some(1) => return Ok(r["jobresult"].clone()),
                Some(2) => bail!("{} failed: {}", params[0].1, r["jobresult"]),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

fn text(v: &Value, path: &[&str]) -> anyhow::Result<String> {
    let mut x = v;
    for p in path {
        x = match p.parse::<usize>() {
            Ok(i) => &x[i],
            Err(_) => &x[*p],
        };
    }
    match x {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bail!("no {} in {v}", path.join(".")),
    }
}

async fn wait(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    while !ok().await? {
        if Instant::now() > until {
            bail!("{what}: not within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The zone's ids.
struct Zone {
    zone: String,
    hosts: [String; 2],
    network: String,
    template: String,
    offering: String,
    ha_offering: String,
    pool: String,
}

#[allow(clippy::too_many_arguments)]
fn agent(
    env: &Env,
    work: &Path,
    name: &str,
    server: &str,
    token: &str,
    uri: &str,
    z: &Zone,
    fence: String,
) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("this binary's path")?;
    let console = work.join("console");
    let args: Vec<String> = vec![
        "agent".into(),
        "--server".into(),
        server.into(),
        "--token".into(),
        token.into(),
        "--name".into(),
        name.into(),
        "--libvirt".into(),
        uri.into(),
        "--domain-type".into(),
        env.domain_type.clone(),
        "--pool".into(),
        format!(
            "{}=nfs://{}{}#{}",
            z.pool, env.nfs_server, env.nfs_primary_export, env.nfs_primary_dir
        ),
        "--secondary".into(),
        format!("nfs://{}{}", env.nfs_server, env.nfs_secondary_export),
        "--secondary-local".into(),
        env.nfs_secondary_dir.clone(),
        "--bridge".into(),
        env.ovs_bridge.clone(),
        "--bridge-kind".into(),
        "ovs-netdev".into(),
        "--network-vlan".into(),
        format!("{}=100", z.network),
        "--console-dir".into(),
        console.display().to_string(),
        "--shutdown-timeout".into(),
        "2".into(),
        "--migration-uri".into(),
        uri.into(),
        "--migration-data-uri".into(),
        env.migrate_uri.clone(),
        "--fence-command".into(),
        fence,
        "--state".into(),
        work.join(format!("{name}.creds")).display().to_string(),
    ];
    let err = std::fs::File::create(work.join(format!("{name}.err")))?;
    let child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .context("cannot start an agent")?;
    Ok(Proc(child))
}

async fn setup(c: &mut Client, env: &Env) -> anyhow::Result<(Zone, [String; 2])> {
    let nfs = &env.nfs_server;
    let v = c
        .call(&[
            ("command", "createZone"),
            ("name", "bench-zone"),
            ("networktype", "Advanced"),
            ("dns1", "8.8.8.8"),
            ("internaldns1", "10.0.0.2"),
            ("guestcidraddress", "10.231.0.0/16"),
        ])
        .await?;
    let zone = text(&v, &["zone", "id"])?;
    let v = c
        .call(&[
            ("command", "createPod"),
            ("name", "bench-pod"),
            ("zoneid", &zone),
            ("gateway", "172.16.40.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "172.16.40.10"),
            ("endip", "172.16.40.200"),
        ])
        .await?;
    let pod = text(&v, &["pod", "id"])?;
    let v = c
        .call(&[
            ("command", "addCluster"),
            ("clustername", "bench-cluster"),
            ("clustertype", "CloudManaged"),
            ("hypervisor", "KVM"),
            ("podid", &pod),
            ("zoneid", &zone),
        ])
        .await?;
    let cluster = text(&v, &["cluster", "0", "id"])?;
    let mut hosts = Vec::new();
    let mut tokens = Vec::new();
    for name in ["hosta", "hostb"] {
        let url = format!("kvm://{name}");
        let v = c
            .call(&[
                ("command", "addHost"),
                ("hypervisor", "KVM"),
                ("url", &url),
                ("username", "root"),
                ("password", "unused"),
                ("zoneid", &zone),
                ("podid", &pod),
                ("clusterid", &cluster),
            ])
            .await?;
        hosts.push(text(&v, &["host", "0", "id"])?);
        tokens.push(text(&v, &["host", "0", "enrollmenttoken"])?);
    }
    let primary = format!("nfs://{nfs}{}", env.nfs_primary_export);
    let v = c
        .call(&[
            ("command", "createStoragePool"),
            ("name", "bench-nfs"),
            ("url", &primary),
            ("zoneid", &zone),
            ("podid", &pod),
            ("clusterid", &cluster),
        ])
        .await?;
    let pool = text(&v, &["storagepool", "id"])?;
    let secondary = format!("nfs://{nfs}{}", env.nfs_secondary_export);
    c.call(&[
        ("command", "addImageStore"),
        ("provider", "NFS"),
        ("url", &secondary),
        ("zoneid", &zone),
    ])
    .await?;
    c.call(&[
        ("command", "updateConfiguration"),
        ("name", "secstorage.allowed.internal.sites"),
        ("value", "127.0.0.1/32"),
    ])
    .await?;
    let v = c.call(&[("command", "listNetworkOfferings")]).await?;
    let net_offering = text(&v, &["networkoffering", "0", "id"])?;
    let v = c
        .call(&[
            ("command", "createNetwork"),
            ("name", "bench-guests"),
            ("displaytext", "guests"),
            ("networkofferingid", &net_offering),
            ("zoneid", &zone),
        ])
        .await?;
    let network = text(&v, &["network", "id"])?;
    let v = c.call(&[("command", "listOsTypes"), ("keyword", "Linux")]).await?;
    let ostype = text(&v, &["ostype", "0", "id"])?;
    let checksum = format!("{{SHA-256}}{}", env.template_sha256);
    let v = c
        .call(&[
            ("command", "registerTemplate"),
            ("name", "bench-guest"),
            ("displaytext", "busybox guest"),
            ("url", &env.template_url),
            ("checksum", &checksum),
            ("format", "QCOW2"),
            ("hypervisor", "KVM"),
            ("ostypeid", &ostype),
            ("zoneid", &zone),
        ])
        .await?;
    let template = text(&v, &["template", "0", "id"])?;
    let mut offerings = Vec::new();
    for (name, ha) in [("bench-tiny", "false"), ("bench-tiny-ha", "true")] {
        let v = c
            .call(&[
                ("command", "createServiceOffering"),
                ("name", name),
                ("displaytext", "1 vCPU, 128 MiB"),
                ("cpunumber", "1"),
                ("cpuspeed", "500"),
                ("memory", "128"),
                ("offerha", ha),
            ])
            .await?;
        offerings.push(text(&v, &["serviceoffering", "id"])?);
    }
    let z = Zone {
        zone,
        hosts: [hosts[0].clone(), hosts[1].clone()],
        network,
        template,
        offering: offerings[0].clone(),
        ha_offering: offerings[1].clone(),
        pool,
    };
    Ok((z, [tokens[0].clone(), tokens[1].clone()]))
}

async fn vm_state(c: &mut Client, vm: &str) -> anyhow::Result<(String, String)> {
    let v = c.call(&[("command", "listVirtualMachines"), ("id", vm)]).await?;
    let state = text(&v, &["virtualmachine", "0", "state"])?;
    let host = text(&v, &["virtualmachine", "0", "hostid"]).unwrap_or_default();
    Ok((state, host))
}

async fn deploy(c: &mut Client, z: &Zone, offering: &str, host: &str, name: &str) -> anyhow::Result<(String, String)> {
    let v = c
        .job(&[
            ("command", "deployVirtualMachine"),
            ("zoneid", &z.zone),
            ("serviceofferingid", offering),
            ("templateid", &z.template),
            ("networkids", &z.network),
            ("hostid", host),
            ("name", name),
        ])
        .await?;
    Ok((
        text(&v, &["virtualmachine", "id"])?,
        text(&v, &["virtualmachine", "name"])?,
    ))
}

async fn rounds(
    c: &mut Client,
    z: &Zone,
    opts: &Options,
    console: &Path,
    env: &Env,
    progress: &dyn Fn(String),
) -> anyhow::Result<Samples> {
    let mut s = Samples::default();
    for r in 1..=opts.rounds {
        let name = format!("bench-{}-{r}", std::process::id());
        let t = Instant::now();
        let (vm, vm_name) = deploy(c, z, &z.offering, &z.hosts[0], &name).await?;
        s.add("deploy", ms_since(t));
        wait_marker(&console.join(format!("{vm_name}.log")), &env.marker, t)?;
        s.add("deploy_to_marker", ms_since(t));
        let t = Instant::now();
        c.job(&[
            ("command", "migrateVirtualMachine"),
            ("virtualmachineid", &vm),
            ("hostid", &z.hosts[1]),
        ])
        .await?;
        s.add("migrate_live", ms_since(t));
        let t = Instant::now();
        c.job(&[("command", "stopVirtualMachine"), ("id", &vm), ("forced", "true")])
            .await?;
        s.add("stop_forced", ms_since(t));
        let t = Instant::now();
        c.job(&[("command", "startVirtualMachine"), ("id", &vm), ("hostid", &z.hosts[1])])
            .await?;
        s.add("start", ms_since(t));
        c.job(&[("command", "stopVirtualMachine"), ("id", &vm), ("forced", "true")])
            .await?;
        c.job(&[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")])
            .await?;
        progress(format!("stratus round {r}/{}: {}", opts.rounds, s.last_line()));
    }
    Ok(s)
}

fn libvirtd_a_answers(env: &Env) -> bool {
    Command::new("virsh")
        .args(["-c", &env.libvirt_a, "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts host A's libvirtd again (as `.ci/kvm-setup.sh` runs it) when the HA
/// step killed it, whatever happened after.
struct RestartLibvirtdA<'a>(&'a Env);

impl Drop for RestartLibvirtdA<'_> {
    fn drop(&mut self) {
        if libvirtd_a_answers(self.0) {
            return;
        }
        let _ = Command::new("/usr/sbin/libvirtd")
            .arg("-d")
            .stdin(Stdio::null())
            .status();
        let until = Instant::now() + Duration::from_secs(90);
        while !libvirtd_a_answers(self.0) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
        }
        if !libvirtd_a_answers(self.0) {
            eprintln!("bench kvm: host A's libvirtd did not come back: run .ci/kvm-setup.sh");
        }
    }
}

/// Host A dies with an HA VM on it: its agent, then its libvirtd, then its
/// QEMU processes (the fence a power-off would be). Times from the first kill
/// to A Down and to the VM Running on B, per the API (polled every 200 ms).
async fn ha_round(
    c: &mut Client,
    z: &Zone,
    opts: &Options,
    agent_a: &mut Proc,
    env: &Env,
) -> anyhow::Result<(u64, u64)> {
    let name = format!("bench-ha-{}", std::process::id());
    let (vm, _) = deploy(c, z, &z.ha_offering, &z.hosts[0], &name).await?;
    let pid = std::fs::read_to_string(&opts.libvirtd_a_pidfile)
        .with_context(|| format!("{}", opts.libvirtd_a_pidfile.display()))?;
    let pid = pid.trim().to_string();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    anyhow::ensure!(
        exe.ends_with("libvirtd"),
        "{}: {pid} is not libvirtd",
        opts.libvirtd_a_pidfile.display()
    );
    let _restart = RestartLibvirtdA(env);
    let killed = Instant::now();
    let _ = agent_a.0.kill();
    let _ = agent_a.0.wait();
    let _ = Command::new("kill").args(["-9", &pid]).status();
    // Its messages go to stderr: stdout is the report.
    let fenced = Command::new("bash")
        .arg(&opts.fence_script)
        .arg(QEMU_PIDS_A)
        .stdout(std::io::stderr())
        .status()?;
    anyhow::ensure!(fenced.success(), "the fence script failed");
    let mut down = None;
    loop {
        if down.is_none() {
            let v = c.call(&[("command", "listHosts"), ("id", &z.hosts[0])]).await?;
            if text(&v, &["host", "0", "state"])? == "Down" {
                down = Some(ms_since(killed));
            }
        }
        let (state, host) = vm_state(c, &vm).await?;
        if state == "Running" && host == z.hosts[1] {
            break;
        }
        if killed.elapsed() > Duration::from_secs(180) {
            bail!("the HA VM did not run on B within 180 s (state {state})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restarted = ms_since(killed);
    c.job(&[("command", "stopVirtualMachine"), ("id", &vm), ("forced", "true")])
        .await?;
    c.job(&[("command", "destroyVirtualMachine"), ("id", &vm), ("expunge", "true")])
        .await?;
    Ok((restarted, down.unwrap_or(restarted)))
}

pub async fn run(env: &Env, opts: &Options, progress: &dyn Fn(String)) -> anyhow::Result<Measured> {
    let work = work_dir(env)?;
    let _cleanup = Cleanup {
        env,
        work: work.clone(),
        leftovers: std::cell::RefCell::new(Vec::new()),
    };
    std::fs::create_dir_all(work.join("console"))?;
    let agent_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let running: Running = start(ServeOptions {
        db: format!("sqlite://{}/bench.db", work.display()),
        admin_password: Some(PASSWORD.into()),
        secondary_mounts: vec![
            SecondaryMount::parse(&format!(
                "nfs://{}{}={}",
                env.nfs_server, env.nfs_secondary_export, env.nfs_secondary_dir
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ],
        agent_listen: Some(([127, 0, 0, 1], agent_port).into()),
        ..ServeOptions::default()
    })
    .await?;
    let (key, secret) = stratus_api::bootstrap::ensure_keys(&running.api, running.admin.id())
        .await
        .map_err(|e| anyhow::anyhow!("admin keys: {}", e.text))?;
    let mut c = Client {
        conn: Conn::new(running.http),
        keys: Keys { key, secret },
    };
    let (z, tokens) = setup(&mut c, env).await?;
    _cleanup.leftovers.borrow_mut().extend(
        z.hosts
            .iter()
            .map(|h| format!("stratus-hb-{h}.lease"))
            .chain([format!("tmpl-{}.qcow2", z.template)]),
    );
    let server = format!("127.0.0.1:{agent_port}");
    let script = opts.fence_script.display();
    let qemu_b = format!("{}/hostb/run/qemu", env.kvm_dir);
    let fence_b = format!("[ {{host}} = {} ] && bash {script} {qemu_b}", z.hosts[1]);
    let fence_a = format!("[ {{host}} = {} ] && bash {script} {QEMU_PIDS_A}", z.hosts[0]);
    let mut agent_a = agent(env, &work, "hosta", &server, &tokens[0], &env.libvirt_a, &z, fence_b)?;
    let _agent_b = agent(env, &work, "hostb", &server, &tokens[1], &env.libvirt_b, &z, fence_a)?;
    let up = wait("both hosts Up", Duration::from_secs(60), async || {
        let v = c.call(&[("command", "listHosts"), ("zoneid", &z.zone)]).await?;
        let up = v["host"]
            .as_array()
            .map_or(0, |h| h.iter().filter(|h| h["state"] == "Up").count());
        Ok(up == 2)
    })
    .await;
    if let Err(e) = up {
        bail!("{e}\n{}", agent_logs(&work));
    }
    wait("the template Ready", Duration::from_secs(120), async || {
        let v = c
            .call(&[
                ("command", "listTemplates"),
                ("templatefilter", "all"),
                ("id", &z.template),
                ("zoneid", &z.zone),
            ])
            .await?;
        Ok(v["template"][0]["isready"] == true)
    })
    .await?;
    let v = c.call(&[("command", "listHosts"), ("zoneid", &z.zone)]).await?;
    let hosts: Vec<Value> = v["host"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    serde_json::json!({
                        "name": h["name"], "cpunumber": h["cpunumber"],
                        "cpuspeed": h["cpuspeed"], "memorytotal": h["memorytotal"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    progress(format!(
        "zone ready: two KVM hosts Up, template Ready; hosts as enrolled: {hosts:?}"
    ));
    let samples = rounds(&mut c, &z, opts, &work.join("console"), env, progress).await?;
    let (ha_restart_ms, ha_down_ms) = if opts.ha {
        let (r, d) = ha_round(&mut c, &z, opts, &mut agent_a, env).await?;
        progress(format!("HA: A Down after {d} ms, VM Running on B after {r} ms"));
        (Some(r), Some(d))
    } else {
        (None, None)
    };
    drop(agent_a);
    running.stop();
    Ok(Measured {
        samples,
        hosts,
        ha_restart_ms,
        ha_down_ms,
    })
}

/// The last lines of each agent's log (the work directory goes with the run).
fn agent_logs(work: &Path) -> String {
    ["hosta", "hostb"]
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(work.join(format!("{n}.err"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(8)..];
            format!("{n}'s agent log ends:\n  {}", tail.join("\n  "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Under the KVM state directory: libvirt (another user) writes the consoles there.
fn work_dir(env: &Env) -> anyhow::Result<PathBuf> {
    let dir = Path::new(&env.kvm_dir)
        .join("test")
        .join(format!("stratus-kvm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Removes the work directory and what the agents leave on primary storage
/// (their leases and the template's base copy).
struct Cleanup<'a> {
    env: &'a Env,
    work: PathBuf,
    leftovers: std::cell::RefCell<Vec<String>>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
        for name in self.leftovers.borrow().iter() {
            let _ = std::fs::remove_file(Path::new(&self.env.nfs_primary_dir).join(name));
        }
    }
}
