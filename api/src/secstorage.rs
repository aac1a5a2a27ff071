//! Secondary storage on the management server: where each image store is reachable
//! locally (its mount point), and the template downloads into it.
//!
//! A template registered for a real hypervisor is downloaded by this server, once per
//! zone, into `<mount of the zone's image store>/template/tmpl/<id>/<id>.<ext>`
//! (CloudStack's layout), so a host reads it as `<store url>/template/tmpl/...`.
//! The progress of a running download lives here (listTemplates shows it); how a
//! download ended is an admin change (`TemplateDownloaded`), durable like any other.
//! Downloads still running when the server stopped start again at boot.

use crate::api::Api;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use stratus_core::cloud::DownloadOutcome;
use stratus_core::controller::Input;
use stratus_core::controller::admin::AdminChange;
use stratus_core::ids::{TemplateId, ZoneId};
use stratus_core::inventory::{ImageFormat, TemplateZoneState};
use stratus_core::settings::Scope;
use stratus_runtime::download::{AddressPolicy, Checksum, download};
use stratus_runtime::hosts::Gateway;

/// The setting (CloudStack's name) listing internal networks downloads may reach.
pub const ALLOWED_INTERNAL_SITES: &str = "secstorage.allowed.internal.sites";

/// An image store's URL (as given to addImageStore) and the local directory where
/// this management server has it mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryMount {
    pub url: String,
    pub dir: PathBuf,
}

impl SecondaryMount {
    /// `URL=DIR`, e.g. `nfs://10.0.0.5/export/secondary=/mnt/secondary`.
    pub fn parse(s: &str) -> Result<SecondaryMount, String> {
        let (url, dir) = s
            .rsplit_once('=')
            .filter(|(u, d)| !u.is_empty() && !d.is_empty())
            .ok_or_else(|| format!("{s}: expected URL=DIR (an image store URL and its local mount point)"))?;
        Ok(SecondaryMount {
            url: url.trim_end_matches('/').to_string(),
            dir: PathBuf::from(dir),
        })
    }
}

/// Bytes received so far and the total if the server said it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// Running downloads: progress per (template, zone).
#[derive(Debug, Default)]
pub struct Downloads {
    progress: Mutex<BTreeMap<(TemplateId, ZoneId), Progress>>,
}

impl Downloads {
    pub fn progress(&self, t: TemplateId, z: ZoneId) -> Option<Progress> {
        self.lock().get(&(t, z)).copied()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(TemplateId, ZoneId), Progress>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Claims (template, zone); false if a download of it is already running.
    fn claim(&self, t: TemplateId, z: ZoneId) -> bool {
        let mut m = self.lock();
        if m.contains_key(&(t, z)) {
            return false;
        }
        m.insert((t, z), Progress::default());
        true
    }
}

/// The status text listTemplates shows for a zone, CloudStack's wording.
pub fn status_text(state: TemplateZoneState, progress: Option<Progress>, error: Option<&str>) -> String {
    match state {
        TemplateZoneState::Ready => "Download Complete".into(),
        TemplateZoneState::Error => error.unwrap_or("Download Error").to_string(),
        TemplateZoneState::Downloading => match progress {
            Some(Progress { done, total: Some(t) }) if t > 0 => format!("{}% Downloaded", done * 100 / t),
            Some(Progress { done, total: None }) if done > 0 => format!("{done} bytes Downloaded"),
            _ => "Downloading".into(),
        },
    }
}

impl Api {
    /// The local directory of an image store, if this server has it mounted.
    pub fn store_dir(&self, store_url: &str) -> Option<PathBuf> {
        let url = store_url.trim_end_matches('/');
        self.config
            .secondary_mounts
            .iter()
            .find(|m| m.url == url)
            .map(|m| m.dir.clone())
    }

    /// The address policy in force now.
    pub fn download_policy(&self) -> AddressPolicy {
        self.read(|ctl| AddressPolicy::from_setting(&ctl.cloud().settings.text(ALLOWED_INTERNAL_SITES, Scope::Global)))
    }

    /// Starts the downloads of every template zone that is Downloading (at boot, and
    /// after a registration). A download already running is left alone.
    pub fn resume_downloads(&self) {
        struct Job {
            template: TemplateId,
            zone: ZoneId,
            url: String,
            checksum: Option<String>,
            format: ImageFormat,
            dest: Option<PathBuf>,
        }
        let jobs: Vec<Job> = self.read(|ctl| {
            let inv = &ctl.cloud().inv;
            inv.templates
                .iter()
                .flat_map(|t| {
                    t.downloads
                        .iter()
                        .filter(|d| t.state_in(d.zone) == Some(TemplateZoneState::Downloading))
                        .map(|d| Job {
                            template: t.id,
                            zone: inv.zone(d.zone).id,
                            url: t.url.clone(),
                            checksum: t.checksum.clone(),
                            format: t.format,
                            dest: inv
                                .image_stores
                                .get(d.store.0 as usize)
                                .and_then(|s| self.store_dir(&s.url))
                                .map(|dir| dir.join(&d.path)),
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        });
        for j in jobs {
            if !self.downloads.claim(j.template, j.zone) {
                continue;
            }
            let gw = self.gw.clone();
            let downloads = self.downloads.clone();
            let limits = self.config.download_limits.clone();
            let policy = self.download_policy();
            tokio::spawn(async move {
                let outcome = match j.dest {
                    None => DownloadOutcome::Failed {
                        error: "this management server has no mount of the zone's secondary storage".into(),
                    },
                    Some(dest) => {
                        let checksum = match j.checksum.as_deref().map(Checksum::parse).transpose() {
                            Ok(c) => c,
                            Err(e) => {
                                finish(
                                    &gw,
                                    &downloads,
                                    j.template,
                                    j.zone,
                                    DownloadOutcome::Failed { error: e },
                                )
                                .await;
                                return;
                            }
                        };
                        tracing::info!(template = %j.template, zone = %j.zone, url = %j.url, dest = %dest.display(), "template download started");
                        let progress = |done, total| {
                            downloads.lock().insert((j.template, j.zone), Progress { done, total });
                        };
                        match download(&j.url, &dest, j.format, checksum.as_ref(), &policy, &limits, progress).await {
                            Ok(d) => DownloadOutcome::Complete {
                                virtual_bytes: d.virtual_bytes,
                                physical_bytes: d.physical_bytes,
                            },
                            Err(e) => DownloadOutcome::Failed { error: e.0 },
                        }
                    }
                };
                finish(&gw, &downloads, j.template, j.zone, outcome).await;
            });
        }
    }
}

async fn finish(
    gw: &Gateway,
    downloads: &Arc<Downloads>,
    template: TemplateId,
    zone: ZoneId,
    outcome: DownloadOutcome,
) {
    match &outcome {
        DownloadOutcome::Complete { physical_bytes, .. } => {
            tracing::info!(%template, %zone, bytes = physical_bytes, "template download complete")
        }
        DownloadOutcome::Failed { error } => tracing::warn!(%template, %zone, %error, "template download failed"),
    }
    let change = AdminChange::TemplateDownloaded {
        template,
        zone,
        outcome,
    };
    if let Err(e) = gw.input(Input::Admin { change, by: None }).await {
        tracing::error!(%template, %zone, error = ?e, "cannot record the end of a template download");
    }
    downloads.lock().remove(&(template, zone));
}
