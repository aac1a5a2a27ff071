//! Templates downloaded to secondary storage: where each zone's copy goes and how
//! its download ended. The download itself is the management server's IO; the core
//! only records the plan (at registration) and the outcome (an admin change).

use super::Cloud;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::*;
use serde::{Deserialize, Serialize};

/// What registerTemplate says about a template that is really downloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSource {
    pub url: String,
    /// CloudStack's `checksum` parameter as given (plain hex = MD5, or `{SHA-256}hex`, ...).
    pub checksum: Option<String>,
    /// Zones (and the secondary storage in each) the image is downloaded to.
    pub download_in: Vec<(ZoneId, ImageStoreId)>,
}

/// How one zone's download ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownloadOutcome {
    /// Stored; `virtual_bytes` is the disk size a volume from it has.
    Complete {
        virtual_bytes: u64,
        physical_bytes: u64,
    },
    Failed {
        error: String,
    },
}

fn extension(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Qcow2 => "qcow2",
        ImageFormat::Raw => "raw",
        ImageFormat::Vhd => "vhd",
        ImageFormat::Ova => "ova",
        ImageFormat::Iso => "iso",
    }
}

impl Cloud {
    /// Checks a download plan before anything is registered: every store is an image
    /// store of its zone, and no zone appears twice.
    pub fn check_template_source(
        &self,
        s: &TemplateSource,
        ready_in: &[ZoneId],
    ) -> CoreResult<Vec<(ZoneIdx, ImageStoreIdx)>> {
        if s.url.is_empty() {
            return Err(CoreError::invalid("url", "a downloaded template needs a URL"));
        }
        let mut out: Vec<(ZoneIdx, ImageStoreIdx)> = Vec::new();
        for (zone, store) in &s.download_in {
            let z = self.zone_idx(*zone)?;
            let st = self.inv.find_image_store(*store).ok_or_else(|| CoreError::NotFound {
                kind: "image store",
                id: store.to_string(),
            })?;
            if self.inv.image_store(st).zone != Some(z) {
                return Err(CoreError::invalid(
                    "zoneid",
                    format!("image store {store} is not secondary storage of zone {zone}"),
                ));
            }
            if ready_in.contains(zone) || out.iter().any(|(oz, _)| *oz == z) {
                return Err(CoreError::invalid("zoneid", format!("zone {zone} is listed twice")));
            }
            out.push((z, st));
        }
        Ok(out)
    }

    /// Records where a just-registered template is downloaded; those zones start Downloading.
    pub fn attach_template_downloads(
        &mut self,
        id: TemplateId,
        s: TemplateSource,
        plan: Vec<(ZoneIdx, ImageStoreIdx)>,
    ) {
        let Some(ti) = self.inv.find_template(id) else {
            return;
        };
        let t = &mut self.inv.templates[ti.0 as usize];
        let ext = extension(t.format);
        t.url = s.url;
        t.checksum = s.checksum;
        for (zone, store) in plan {
            t.zones.push((zone, TemplateZoneState::Downloading));
            t.downloads.push(TemplateDownload {
                zone,
                store,
                path: format!("template/tmpl/{id}/{id}.{ext}"),
                physical_bytes: None,
                error: None,
            });
        }
    }

    /// Records how a zone's download ended: Ready (the template's size becomes the
    /// image's virtual size) or Download Error with the reason.
    pub fn finish_template_download(
        &mut self,
        id: TemplateId,
        zone: ZoneId,
        outcome: DownloadOutcome,
    ) -> CoreResult<()> {
        let z = self.zone_idx(zone)?;
        let ti = self.inv.find_template(id).ok_or_else(|| CoreError::NotFound {
            kind: "template",
            id: id.to_string(),
        })?;
        let t = &mut self.inv.templates[ti.0 as usize];
        let state = t.state_in(z);
        if state != Some(TemplateZoneState::Downloading) || t.download_in(z).is_none() {
            return Err(CoreError::InvalidState {
                entity: "template",
                name: t.name.clone(),
                state: state.map_or("not in that zone", |s| s.as_str()).to_string(),
                op: "record a download",
            });
        }
        let (new_state, physical, error) = match outcome {
            DownloadOutcome::Complete {
                virtual_bytes,
                physical_bytes,
            } => {
                t.size_bytes = virtual_bytes;
                (TemplateZoneState::Ready, Some(physical_bytes), None)
            }
            DownloadOutcome::Failed { error } => (TemplateZoneState::Error, None, Some(error)),
        };
        if let Some((_, s)) = t.zones.iter_mut().find(|(tz, _)| *tz == z) {
            *s = new_state;
        }
        if let Some(d) = t.downloads.iter_mut().find(|d| d.zone == z) {
            d.physical_bytes = physical;
            d.error = error;
        }
        Ok(())
    }
}
