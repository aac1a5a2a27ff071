//! Storage: qcow2 images made and copied with `qemu-img` (paths, or
//! `nfs://` URLs through qemu's own NFS client), template copies with
//! progress and cancel, snapshots and templates on secondary storage, and
//! heartbeat lease files on shared pools.

use super::cmd::run;
use super::{Kvm, KvmBackend, VolumeLocation, virt_error};
use crate::{CopyProgress, DriverOutcome, StorageDriver};
use async_trait::async_trait;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use stratus_wire::ids::*;
use stratus_wire::{DriverError, ErrorKind, ImageSource, PoolSpec};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

const QEMU_IMG: Duration = Duration::from_secs(600);

/// A template copy in progress.
#[derive(Debug, Default)]
pub struct CopyState {
    done: AtomicU64,
    total: AtomicU64,
    cancel: Notify,
}

/// Whether qemu can open an image (it exists).
async fn exists(loc: &VolumeLocation) -> bool {
    run("qemu-img", &["info", "-U", &loc.qemu_name()], Duration::from_secs(60))
        .await
        .is_ok()
}

/// An image's virtual size (bytes).
async fn virtual_size(loc: &VolumeLocation) -> Result<u64, DriverError> {
    let out = run(
        "qemu-img",
        &["info", "-U", "--output=json", &loc.qemu_name()],
        Duration::from_secs(60),
    )
    .await?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| DriverError::refused(format!("qemu-img info: {e}")))?;
    v["virtual-size"]
        .as_u64()
        .ok_or_else(|| DriverError::refused("qemu-img info: no virtual-size"))
}

/// The backing image of a qcow2 overlay (`None`: none, or no such volume:
/// libvirt then says what is missing when the domain starts).
pub(crate) async fn backing_of(loc: &VolumeLocation) -> Result<Option<VolumeLocation>, DriverError> {
    let Ok(out) = run(
        "qemu-img",
        &["info", "-U", "--output=json", &loc.qemu_name()],
        Duration::from_secs(60),
    )
    .await
    else {
        return Ok(None);
    };
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| DriverError::refused(format!("qemu-img info: {e}")))?;
    let Some(name) = v["full-backing-filename"].as_str().or(v["backing-filename"].as_str()) else {
        return Ok(None);
    };
    Ok(Some(match name.strip_prefix("nfs://") {
        Some(rest) => {
            let (server, path) = rest.split_once('/').unwrap_or((rest, ""));
            let path = path.split('?').next().unwrap_or_default();
            VolumeLocation::Nfs {
                server: server.to_string(),
                path: format!("/{path}"),
            }
        }
        None => VolumeLocation::File(name.to_string()),
    }))
}

/// The checksum CloudStack's form asks for: `{SHA-256}hex`, `{MD5}hex` or bare hex.
fn checksum_tool(checksum: &str) -> Result<(&'static str, String), DriverError> {
    let (algo, hex) = match checksum.strip_prefix('{').and_then(|r| r.split_once('}')) {
        Some((a, h)) => (a.to_ascii_uppercase(), h.to_ascii_lowercase()),
        None => (String::new(), checksum.to_ascii_lowercase()),
    };
    let tool = match algo.as_str() {
        "SHA-256" | "SHA256" => "sha256sum",
        "SHA-512" | "SHA512" => "sha512sum",
        "SHA-1" | "SHA1" => "sha1sum",
        "MD5" => "md5sum",
        "" => match hex.len() {
            32 => "md5sum",
            40 => "sha1sum",
            64 => "sha256sum",
            128 => "sha512sum",
            n => {
                return Err(DriverError::refused(format!(
                    "checksum of {n} hex digits: unknown algorithm"
                )));
            }
        },
        other => {
            return Err(DriverError::refused(format!(
                "checksum algorithm {other} is not supported"
            )));
        }
    };
    Ok((tool, hex))
}

/// Parses the last `(12.50/100%)` of `qemu-img convert -p` output.
fn last_percent(text: &str) -> Option<f64> {
    let end = text.rfind("/100%)")?;
    let start = text[..end].rfind('(')? + 1;
    text[start..end].trim().parse().ok()
}

impl KvmBackend {
    async fn remove(&self, loc: &VolumeLocation) -> DriverOutcome {
        let Some(path) = self.local_file(loc) else {
            return Err(DriverError::refused(format!(
                "{}: no NFS client here can unlink it (configure the export's local path)",
                loc.qemu_name()
            )));
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriverError::refused(format!("{path}: {e}"))),
        }
    }

    /// Creates the directory of a secondary-storage file when this host sees it.
    async fn make_parent(&self, loc: &VolumeLocation) {
        if let Some(p) = self.local_file(loc)
            && let Some(dir) = std::path::Path::new(&p).parent()
        {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
    }

    fn secondary(&self, relative: &str) -> Result<VolumeLocation, DriverError> {
        self.config
            .secondary
            .as_ref()
            .map(|s| s.location(relative))
            .ok_or_else(|| DriverError::refused("no secondary storage configured on this host"))
    }

    /// Whether a running domain on this host uses `file`.
    async fn in_use(self: &Arc<Self>, file: String) -> Result<bool, DriverError> {
        self.blocking(move |_, conn| {
            let domains = conn
                .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                .map_err(|e| virt_error("list domains", e))?;
            Ok(domains.iter().any(|d| d.xml_desc(0).is_ok_and(|x| x.contains(&file))))
        })
        .await
    }

    /// `qemu-img convert -p`, progress into `state`, stopped by its cancel.
    async fn convert(&self, args: &[String], state: &CopyState, total: u64) -> DriverOutcome {
        let mut child = tokio::process::Command::new("qemu-img")
            .arg("convert")
            .arg("-p")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DriverError::refused(format!("qemu-img: cannot run: {e}")))?;
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let progress = async {
            let mut buf = [0u8; 512];
            let mut tail = String::new();
            while let Ok(n) = out.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.push_str(&String::from_utf8_lossy(&buf[..n]));
                if let Some(p) = last_percent(&tail) {
                    state.done.store((total as f64 * p / 100.0) as u64, Relaxed);
                }
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 64);
                }
            }
        };
        let waited = async {
            progress.await;
            let mut e = String::new();
            let _ = err.read_to_string(&mut e).await;
            (child.wait().await, e)
        };
        tokio::select! {
            _ = state.cancel.notified() => Err(DriverError::refused("copy cancelled")),
            _ = tokio::time::sleep(self.config.copy_timeout) => Err(DriverError::refused("copy took too long: stopped")),
            (status, stderr) = waited => match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(DriverError::refused(format!("qemu-img convert: {s}: {}", stderr.trim()))),
                Err(e) => Err(DriverError::refused(format!("qemu-img convert: {e}"))),
            },
        }
    }

    /// Downloads an http(s) image into the staging directory, checked.
    async fn download(
        &self,
        src: &ImageSource,
        template: TemplateId,
        state: &CopyState,
    ) -> Result<String, DriverError> {
        let file = format!("{}/stratus-download-{template}", self.config.staging_dir);
        let mut child = tokio::process::Command::new("curl")
            .args(["-fsSL", "--proto", "=http,https", "-o", &file, &src.url])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DriverError::refused(format!("curl: cannot run: {e}")))?;
        let mut err = child.stderr.take().expect("piped");
        let poll = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Ok(m) = tokio::fs::metadata(&file).await {
                    state.done.store(m.len(), Relaxed);
                }
            }
        };
        let done = tokio::select! {
            _ = state.cancel.notified() => Err(DriverError::refused("copy cancelled")),
            _ = poll => unreachable!("polls until the download ends"),
            s = child.wait() => Ok(s),
        };
        let status = match done {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_file(&file).await;
                return Err(e);
            }
        };
        let mut msg = String::new();
        let _ = err.read_to_string(&mut msg).await;
        if !status.is_ok_and(|s| s.success()) {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(DriverError::refused(format!("download {}: {}", src.url, msg.trim())));
        }
        if let Some(sum) = &src.checksum {
            let (tool, want) = checksum_tool(sum)?;
            let out = run(tool, &[&file], QEMU_IMG).await?;
            let got = out.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
            if got != want {
                let _ = tokio::fs::remove_file(&file).await;
                return Err(DriverError::refused(format!(
                    "checksum mismatch for {}: expected {want}, got {got}",
                    src.url
                )));
            }
        }
        Ok(file)
    }

    async fn copy(
        &self,
        pool: PoolId,
        template: TemplateId,
        size: u64,
        src: Option<&ImageSource>,
        state: &CopyState,
    ) -> DriverOutcome {
        let dest = self.volume_location(pool, &KvmBackend::template_file(template))?;
        if exists(&dest).await {
            return Ok(());
        }
        state.total.store(size, Relaxed);
        let (from, format, staged) = match src {
            Some(s) if s.url.starts_with("http://") || s.url.starts_with("https://") => {
                let f = self.download(s, template, state).await?;
                (f.clone(), s.format.qemu_name(), Some(f))
            }
            Some(s) => (s.url.clone(), s.format.qemu_name(), None),
            None => (
                self.secondary(&format!("template/tmpl/{template}/{template}.qcow2"))?
                    .qemu_name(),
                "qcow2",
                None,
            ),
        };
        let args: Vec<String> = ["-f", format, "-O", "qcow2", &from, &dest.qemu_name()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = self.convert(&args, state, size).await;
        if let Some(f) = staged {
            let _ = tokio::fs::remove_file(&f).await;
        }
        if r.is_err() {
            // A partial base image must not look like a finished one.
            let _ = self.remove(&dest).await;
        }
        r
    }
}

#[async_trait]
impl StorageDriver for Kvm {
    async fn copy_template(
        &self,
        pool: PoolId,
        template: TemplateId,
        size: u64,
        source: Option<&ImageSource>,
    ) -> DriverOutcome {
        let state = Arc::new(CopyState::default());
        {
            let mut copies = self.0.copies.lock().expect("copies lock");
            if copies.contains_key(&(pool, template)) {
                return Err(DriverError::refused(
                    "this template is already being copied to this pool",
                ));
            }
            copies.insert((pool, template), state.clone());
        }
        let r = self.0.copy(pool, template, size, source, &state).await;
        self.0.copies.lock().expect("copies lock").remove(&(pool, template));
        r
    }

    async fn cancel_copy(&self, pool: PoolId, template: TemplateId) -> DriverOutcome {
        let copies = self.0.copies.lock().expect("copies lock");
        match copies.get(&(pool, template)) {
            Some(s) => {
                s.cancel.notify_one();
                Ok(())
            }
            None => Err(DriverError::not_found("no template copy in progress")),
        }
    }

    async fn copy_progress(&self, pool: PoolId, template: TemplateId) -> Option<CopyProgress> {
        let copies = self.0.copies.lock().expect("copies lock");
        copies.get(&(pool, template)).map(|s| CopyProgress {
            done_bytes: s.done.load(Relaxed),
            total_bytes: s.total.load(Relaxed),
        })
    }

    async fn create_volume(
        &self,
        pool: PoolId,
        volume: VolumeId,
        size: u64,
        template: Option<TemplateId>,
    ) -> DriverOutcome {
        let dest = self.0.volume_location(pool, &KvmBackend::volume_file(volume))?;
        if exists(&dest).await {
            return Ok(());
        }
        let name = dest.qemu_name();
        match template {
            Some(t) => {
                let base = KvmBackend::template_file(t);
                let base_loc = self.0.volume_location(pool, &base)?;
                if !exists(&base_loc).await {
                    return Err(DriverError::not_found("template is not on the pool"));
                }
                // The backing image by its full name: qemu resolves a relative
                // name against an nfs:// overlay wrongly (the mount is refused).
                let base_name = base_loc.qemu_name();
                run(
                    "qemu-img",
                    &["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &base_name, &name],
                    QEMU_IMG,
                )
                .await?;
                if size > virtual_size(&base_loc).await? {
                    run("qemu-img", &["resize", "-q", &name, &size.to_string()], QEMU_IMG).await?;
                }
                Ok(())
            }
            None => run(
                "qemu-img",
                &["create", "-q", "-f", "qcow2", &name, &size.to_string()],
                QEMU_IMG,
            )
            .await
            .map(|_| ()),
        }
    }

    async fn delete_volume(&self, pool: PoolId, volume: VolumeId) -> DriverOutcome {
        let file = KvmBackend::volume_file(volume);
        let loc = self.0.volume_location(pool, &file)?;
        if self.0.in_use(file).await? {
            return Err(DriverError::refused("volume is in use by a domain"));
        }
        self.0.remove(&loc).await
    }

    async fn create_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome {
        let vol = self.0.volume_location(pool, &KvmBackend::volume_file(volume))?;
        let dest = self.0.secondary(&format!("snapshot/{snapshot}.qcow2"))?;
        if !exists(&vol).await {
            return Err(DriverError::not_found("volume not found on its pool"));
        }
        self.0.make_parent(&dest).await;
        // -U: a running guest's disk is read as it is (crash-consistent).
        run(
            "qemu-img",
            &["convert", "-U", "-O", "qcow2", &vol.qemu_name(), &dest.qemu_name()],
            QEMU_IMG,
        )
        .await
        .map(|_| ())
    }

    async fn delete_snapshot(&self, snapshot: SnapshotId) -> DriverOutcome {
        let loc = self.0.secondary(&format!("snapshot/{snapshot}.qcow2"))?;
        self.0.remove(&loc).await
    }

    async fn create_template(&self, pool: PoolId, volume: VolumeId, template: TemplateId) -> DriverOutcome {
        let file = KvmBackend::volume_file(volume);
        let vol = self.0.volume_location(pool, &file)?;
        if self.0.in_use(file).await? {
            return Err(DriverError::refused("volume is in use by a running domain"));
        }
        let dest = self
            .0
            .secondary(&format!("template/tmpl/{template}/{template}.qcow2"))?;
        self.0.make_parent(&dest).await;
        run(
            "qemu-img",
            &["convert", "-O", "qcow2", &vol.qemu_name(), &dest.qemu_name()],
            QEMU_IMG,
        )
        .await
        .map(|_| ())
    }

    async fn revert_snapshot(&self, pool: PoolId, volume: VolumeId, snapshot: SnapshotId) -> DriverOutcome {
        let file = KvmBackend::volume_file(volume);
        let vol = self.0.volume_location(pool, &file)?;
        let snap = self.0.secondary(&format!("snapshot/{snapshot}.qcow2"))?;
        if !exists(&snap).await {
            return Err(DriverError::not_found("snapshot not found"));
        }
        if self.0.in_use(file).await? {
            return Err(DriverError::refused("volume is in use by a running domain"));
        }
        run(
            "qemu-img",
            &["convert", "-O", "qcow2", &snap.qemu_name(), &vol.qemu_name()],
            QEMU_IMG,
        )
        .await
        .map(|_| ())
    }

    async fn ensure_pool(&self, _: HostId, pool: PoolId, spec: &PoolSpec) -> DriverOutcome {
        match spec {
            PoolSpec::Dir { path } => {
                tokio::fs::create_dir_all(path)
                    .await
                    .map_err(|e| DriverError::unavailable(format!("{path}: {e}")))?;
                self.0
                    .ensure_libvirt_pool(pool, "dir", format!("<target><path>{path}</path></target>"))
                    .await?;
            }
            PoolSpec::NetFs {
                server,
                export,
                mount_point,
            } => {
                let body = format!(
                    "<source><host name='{server}'/><dir path='{export}'/><format type='nfs'/></source><target><path>{mount_point}</path></target>"
                );
                self.0.ensure_libvirt_pool(pool, "netfs", body).await?;
            }
            PoolSpec::QemuNfs { server, export, .. } => {
                run("nfs-ls", &[&format!("nfs://{server}{export}")], Duration::from_secs(30))
                    .await
                    .map_err(|e| DriverError::unavailable(e.message))?;
            }
        }
        self.0.pools.lock().expect("pools lock").insert(pool, spec.clone());
        Ok(())
    }

    async fn heartbeat(&self, pool: PoolId, host: HostId) -> DriverOutcome {
        let loc = self.0.volume_location(pool, &format!("stratus-hb-{host}.lease"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let value = {
            let mut leases = self.0.leases.lock().expect("leases lock");
            let v = leases.get(&pool).map_or(now, |prev| now.max(prev + 1));
            leases.insert(pool, v);
            v
        };
        let unavailable = |e: String| DriverError::unavailable(format!("lease on pool {pool}: {e}"));
        // Per process: the host monitor and an agent taking over may both renew.
        let tmp = format!(
            "{}/stratus-hb-{host}-{pool}-{}.tmp",
            self.0.config.staging_dir,
            std::process::id()
        );
        tokio::fs::write(&tmp, format!("{value}\n"))
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let r = match &loc {
            VolumeLocation::File(path) => tokio::fs::rename(&tmp, path)
                .await
                .map_err(|e| unavailable(e.to_string())),
            // nfs-cp refuses to overwrite; qemu-img writes it whole (one
            // 512-byte sector: the value, then zeros).
            VolumeLocation::Nfs { .. } => run(
                "qemu-img",
                &["convert", "-f", "raw", "-O", "raw", &tmp, &loc.qemu_name()],
                Duration::from_secs(5),
            )
            .await
            .map(|_| ())
            .map_err(|e| unavailable(e.message)),
        };
        let _ = tokio::fs::remove_file(&tmp).await;
        r
    }

    async fn read_lease(&self, pool: PoolId, host: HostId) -> Result<Option<u64>, DriverError> {
        let loc = self.0.volume_location(pool, &format!("stratus-hb-{host}.lease"))?;
        let text = match &loc {
            VolumeLocation::File(path) => match tokio::fs::read_to_string(path).await {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(DriverError::unavailable(format!("{path}: {e}"))),
            },
            VolumeLocation::Nfs { .. } => match run("nfs-cat", &[&loc.qemu_name()], Duration::from_secs(5)).await {
                Ok(t) => t,
                Err(e) if e.kind == ErrorKind::Refused && e.message.contains("ENOENT") => return Ok(None),
                Err(e) if e.message.contains("No such file") || e.message.contains("Failed to open") => {
                    return Ok(None);
                }
                Err(e) => return Err(DriverError::unavailable(e.message)),
            },
        };
        Ok(text.trim_matches(|c: char| c == '\0' || c.is_whitespace()).parse().ok())
    }
}

impl KvmBackend {
    /// Defines and starts a libvirt pool named `stratus-<pool id>` unless it runs.
    async fn ensure_libvirt_pool(self: &Arc<Self>, pool: PoolId, kind: &'static str, body: String) -> DriverOutcome {
        self.blocking(move |_, conn| {
            let name = format!("stratus-{pool}");
            let p = match conn.lookup_storage_pool_by_name(&name) {
                Ok(p) => p,
                Err(_) => {
                    let xml = format!("<pool type='{kind}'><name>{name}</name>{body}</pool>");
                    conn.define_storage_pool_xml(&xml, 0)
                        .map_err(|e| virt_error("define pool", e))?
                }
            };
            if !p.is_active().unwrap_or(false) {
                p.create(0)
                    .map_err(|e| DriverError::unavailable(format!("start pool {name}: {}", e.message())))?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_in_cloudstacks_forms() {
        assert_eq!(checksum_tool("{SHA-256}AB").unwrap(), ("sha256sum", "ab".into()));
        assert_eq!(checksum_tool("{MD5}00").unwrap().0, "md5sum");
        assert_eq!(checksum_tool(&"a".repeat(32)).unwrap().0, "md5sum");
        assert_eq!(checksum_tool(&"a".repeat(64)).unwrap().0, "sha256sum");
        assert!(checksum_tool("{CRC32}00").is_err());
        assert!(checksum_tool("abc").is_err());
    }

    #[test]
    fn qemu_img_progress_is_read_from_its_last_mark() {
        assert_eq!(last_percent("    (0.00/100%)\r    (12.50/100%)\r"), Some(12.5));
        assert_eq!(last_percent("nothing yet"), None);
    }
}
