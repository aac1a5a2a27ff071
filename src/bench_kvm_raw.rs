//! The raw side of `stratus bench kvm`: the same kind of domain Stratus
//! deploys (a qcow2 overlay on the template on NFS primary storage through
//! qemu's `nfs://` client, one e1000 NIC on the OVS bridge with a VLAN tag,
//! boot from disk, 128 MiB), driven with `virsh` and `qemu-img` only. It
//! replaces `.ci/kvm-raw-bench.sh`: the two sides run in one process, at one
//! load, so their ratio means something.

use crate::bench_kvm::{Env, Samples, ms_since, wait_marker};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn run(what: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: cannot run {}", args[0]))?;
    if !out.status.success() {
        bail!(
            "{what}: `{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn virsh(uri: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["virsh", "-q", "-c", uri];
    all.extend_from_slice(args);
    run(&format!("virsh {}", args[0]), &all)
}

/// The domain, written as an operator would for this host set (cf. the XML
/// the KVM driver generates: same disk, NIC and console shape).
fn domain_xml(env: &Env, name: &str, vol_dir: &str, console: &Path) -> String {
    let nfs = &env.nfs_server;
    format!(
        "<domain type='{dt}'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source protocol='nfs' name='{vol_dir}/root.qcow2'><host name='{nfs}'/><identity user='root' group='root'/></source>
      <backingStore type='network'>
        <format type='qcow2'/>
        <source protocol='nfs' name='{vol_dir}/base.qcow2'><host name='{nfs}'/><identity user='root' group='root'/></source>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='{bridge}'/>
      <virtualport type='openvswitch'/>
      <vlan><tag id='100'/></vlan>
      <model type='e1000'/>
    </interface>
    <serial type='pty'><log file='{console}' append='off'/></serial>
    <console type='pty'/>
  </devices>
</domain>
",
        dt = env.domain_type,
        bridge = env.ovs_bridge,
        console = console.display(),
    )
}

/// Removes the domain (either host) and its files, whatever state a failed round left.
struct Cleanup<'a> {
    env: &'a Env,
    name: String,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for uri in [&self.env.libvirt_b, &self.env.libvirt_a] {
            let _ = virsh(uri, &["destroy", &self.name]);
            let _ = virsh(uri, &["undefine", &self.name]);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `rounds` raw rounds: per round define + start on A until the marker,
/// `migrate --live` A → B, `destroy` on B, `start` on B, then an untimed
/// destroy + undefine. `copy_template` (qemu-img convert of the template
/// onto the pool) is timed once per round too, as its own file.
pub fn rounds(env: &Env, rounds: usize, progress: &dyn Fn(String)) -> anyhow::Result<Samples> {
    let name = format!("stratus-raw-bench-{}", std::process::id());
    let vol_dir = format!("{}/{name}", env.nfs_primary_export);
    let local_vol_dir = PathBuf::from(&env.nfs_primary_dir).join(&name);
    let work = PathBuf::from(&env.kvm_dir).join("test").join(&name);
    let _cleanup = Cleanup {
        env,
        name: name.clone(),
        dirs: vec![local_vol_dir.clone(), work.clone()],
    };
    std::fs::create_dir_all(&work).with_context(|| format!("mkdir {}", work.display()))?;
    std::fs::create_dir_all(&local_vol_dir).with_context(|| format!("mkdir {}", local_vol_dir.display()))?;
    let console = work.join("console.log");
    let xml_path = work.join("domain.xml");
    std::fs::write(&xml_path, domain_xml(env, &name, &vol_dir, &console))?;
    let xml = xml_path.to_str().context("work path is not UTF-8")?;
    let base = format!("nfs://{}{vol_dir}/base.qcow2", env.nfs_server);
    let root = format!("nfs://{}{vol_dir}/root.qcow2", env.nfs_server);
    let (a, b) = (env.libvirt_a.as_str(), env.libvirt_b.as_str());
    let mut s = Samples::default();
    for r in 1..=rounds {
        let _ = std::fs::remove_file(local_vol_dir.join("base.qcow2"));
        let t = Instant::now();
        let tmpl = env.template_path.as_str();
        run(
            "copy template",
            &["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", tmpl, &base],
        )?;
        s.add("copy_template", ms_since(t));
        let _ = std::fs::remove_file(&console);
        let t = Instant::now();
        run(
            "overlay",
            &[
                "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &base, &root,
            ],
        )?;
        s.add("create_overlay", ms_since(t));
        let t = Instant::now();
        virsh(a, &["define", xml])?;
        virsh(a, &["start", &name])?;
        s.add("define_start", ms_since(t));
        wait_marker(&console, &env.marker, t)?;
        s.add("define_start_to_marker", ms_since(t));
        let t = Instant::now();
        virsh(
            a,
            &[
                "migrate",
                "--live",
                "--undefinesource",
                "--persistent",
                &name,
                b,
                &env.migrate_uri,
            ],
        )?;
        s.add("migrate_live", ms_since(t));
        let t = Instant::now();
        virsh(b, &["destroy", &name])?;
        s.add("destroy", ms_since(t));
        let t = Instant::now();
        virsh(b, &["start", &name])?;
        s.add("start", ms_since(t));
        virsh(b, &["destroy", &name])?;
        virsh(b, &["undefine", &name])?;
        let _ = std::fs::remove_file(local_vol_dir.join("root.qcow2"));
        progress(format!("raw round {r}/{rounds}: {}", s.last_line()));
    }
    Ok(s)
}
