//! Templates, ISOs and guest OS types.
//!
//! The core's templates have no owner: in this version every template and ISO
//! is public, featured and owned by the `admin` account, whoever registered
//! it. The `templatefilter`/`isofilter` values are answered from that.
//! A template for the Simulator hypervisor (and an ISO) is Ready at once in each
//! zone, like the simulator's mock images (size: the simulator's default 1 GiB).
//! A template for a real hypervisor is downloaded by this server to each zone's
//! secondary storage (`crate::secstorage`) and is Ready there once stored and
//! verified; its URL must not lead to an internal address unless
//! `secstorage.allowed.internal.sites` allows it.

use super::prelude::*;
use crate::ostypes;
use crate::registry::Param;
use crate::secstorage;
use stratus_core::cloud::{TemplateSource, TemplateSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::ids::ImageStoreId;
use stratus_core::inventory::{Hypervisor, ImageFormat, Template, TemplateZoneState};
use stratus_runtime::download::{Checksum, check_url as check_download_url, resolve_checked};

const IMAGE_SIZE: u64 = 1 << 30;
const ISO_OS: &str = "Other (64-bit)";
const FILTERS: &[&str] = &[
    "featured",
    "self",
    "selfexecutable",
    "sharedexecutable",
    "executable",
    "community",
    "all",
];

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter_value(text)
}

/// `zoneid` (a UUID, or `-1` for every zone) or `zoneids`.
fn zones(c: &Ctx<'_>, ctl: &Controller) -> Result<Vec<ZoneId>, ApiError> {
    let inv = &ctl.cloud().inv;
    let known = |z: Uuid| {
        inv.find_zone(ZoneId(z))
            .map(|_| ZoneId(z))
            .ok_or_else(|| not_found("zone", z))
    };
    if let Some(list) = c.p.opt_uuid_list("zoneids")? {
        return list.into_iter().map(known).collect();
    }
    match c.p.opt_str("zoneid").filter(|z| !z.is_empty()) {
        None => Err(c.p.missing("zoneid")),
        Some("-1") => Ok(inv.zones.iter().map(|z| z.id).collect()),
        Some(z) => match Uuid::try_parse(z) {
            Ok(u) if z.len() == 36 => Ok(vec![known(u)?]),
            _ => Err(invalid(format!("Invalid parameter zoneid value={z}"))),
        },
    }
}

fn check_url(c: &Ctx<'_>) -> Result<(), ApiError> {
    let url = c.p.req_str("url")?;
    let ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        ["http", "https"].contains(&scheme.to_ascii_lowercase().as_str()) && !rest.is_empty()
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Unsupported url {url}: only http and https URLs are supported"
        )))
    }
}

fn os_type(c: &Ctx<'_>) -> Result<Option<String>, ApiError> {
    match c.p.opt_uuid("ostypeid")? {
        None => Ok(None),
        Some(id) => ostypes::by_id(id)
            .map(|d| Some(d.to_string()))
            .ok_or_else(|| not_found("OS type", id)),
    }
}

fn display_text(c: &Ctx<'_>, name: &str) -> String {
    match c.p.opt_str("displaytext") {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => name.to_string(),
    }
}

/// Registers a template or ISO and answers the list-shaped body CloudStack
/// gives (`{count, template|iso: [one row per zone]}`).
async fn register(
    c: &Ctx<'_>,
    spec: TemplateSpec,
    source: Option<TemplateSource>,
    object: &'static str,
) -> Result<Obj, ApiError> {
    let display_text = display_text(c, &spec.name);
    let iso = spec.is_iso;
    let downloads = source.is_some();
    let made = c
        .api
        .admin(
            Some(c.caller),
            AdminChange::RegisterTemplate {
                spec,
                display_text,
                source,
            },
        )
        .await?;
    if downloads {
        c.api.resume_downloads();
    }
    c.api.read(|ctl| {
        let inv = &ctl.cloud().inv;
        let t = inv
            .find_template(TemplateId(made.id))
            .map(|i| inv.template(i))
            .ok_or_else(|| not_found(object, made.id))?;
        let rows: Vec<Obj> = t.zones.iter().map(|(z, _)| row(c, ctl, t, *z, iso)).collect();
        Ok(render::list_body(object, rows.len(), rows))
    })
}

fn row(c: &Ctx<'_>, ctl: &Controller, t: &Template, z: ZoneIdx, iso: bool) -> Obj {
    let mut obj = if iso {
        iso_view(ctl, t, z)
    } else {
        views::template(ctl, t, Some(z))
    };
    // A download's live progress is this server's, not the controller's.
    if t.state_in(z) == Some(TemplateZoneState::Downloading) {
        let zone = ctl.cloud().inv.zone(z).id;
        let text = secstorage::status_text(
            TemplateZoneState::Downloading,
            c.api.downloads.progress(t.id, zone),
            None,
        );
        for (k, v) in obj.0.iter_mut() {
            if k == "status" {
                *v = crate::render::Val::Str(text.clone());
            }
        }
    }
    obj
}

/// For a real hypervisor: the image store of each zone this server has mounted, the
/// checksum's form and the URL's resolved address are checked before anything is
/// registered.
async fn download_source(c: &Ctx<'_>, url: &str, zones: &[ZoneId]) -> Result<TemplateSource, ApiError> {
    let checksum = match c.p.opt_str("checksum").filter(|s| !s.trim().is_empty()) {
        Some(s) => {
            Checksum::parse(s).map_err(invalid)?;
            Some(s.trim().to_string())
        }
        None => None,
    };
    let download_in = c.api.read(|ctl| {
        let inv = &ctl.cloud().inv;
        zones
            .iter()
            .map(|zid| {
                let z = inv.find_zone(*zid).ok_or_else(|| not_found("zone", zid.0))?;
                let name = &inv.zone(z).name;
                let stores: Vec<_> = inv.image_stores.iter().filter(|s| s.zone == Some(z)).collect();
                if stores.is_empty() {
                    return Err(invalid(format!(
                        "Zone {name} has no secondary storage; add one with addImageStore first"
                    )));
                }
                stores
                    .iter()
                    .find(|s| c.api.store_dir(&s.url).is_some())
                    .map(|s| (*zid, ImageStoreId(s.id.0)))
                    .ok_or_else(|| {
                        invalid(format!(
                            "Secondary storage {} of zone {name} is not mounted on this management server \
                             (start it with --secondary-mount URL=DIR)",
                            stores[0].url
                        ))
                    })
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })?;
    let uri = check_download_url(url).map_err(|e| invalid(e.0))?;
    resolve_checked(&uri, &c.api.download_policy())
        .await
        .map_err(|e| invalid(format!("Unable to download from {url}: {e}")))?;
    Ok(TemplateSource {
        url: url.to_string(),
        checksum,
        download_in,
    })
}

fn register_template<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let name = c.p.req_str("name")?.to_string();
        check_url(c)?;
        let f = c.p.req_str("format")?;
        let format = ImageFormat::parse(f)
            .filter(|f| *f != ImageFormat::Iso)
            .ok_or_else(|| invalid(format!("Image format {f} is not supported; use QCOW2, RAW, VHD or OVA")))?;
        let h = c.p.req_str("hypervisor")?;
        let hypervisor =
            Hypervisor::parse(h).ok_or_else(|| invalid(format!("Hypervisor type {h} is not supported")))?;
        let os = os_type(c)?.ok_or_else(|| c.p.missing("ostypeid"))?;
        let in_zones = c.api.read(|ctl| zones(c, ctl))?;
        // Simulated hosts use mock images: Ready at once, nothing to download.
        let (ready_in, source) = if hypervisor == Hypervisor::Simulator {
            (in_zones, None)
        } else {
            let url = c.p.req_str("url")?;
            (Vec::new(), Some(download_source(c, url, &in_zones).await?))
        };
        let spec = TemplateSpec {
            name,
            format,
            // Replaced by the image's virtual size when the first download completes
            // (listTemplates shows 0 until then).
            size_bytes: IMAGE_SIZE,
            os_type: os,
            hypervisor,
            is_iso: false,
            ready_in,
        };
        register(c, spec, source, "template").await
    })
}

fn register_iso<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let name = c.p.req_str("name")?.to_string();
        check_url(c)?;
        let os = os_type(c)?.unwrap_or_else(|| ISO_OS.to_string());
        let ready_in = c.api.read(|ctl| zones(c, ctl))?;
        let spec = TemplateSpec {
            name,
            format: ImageFormat::Iso,
            size_bytes: IMAGE_SIZE,
            os_type: os,
            // An ISO has no hypervisor; the core's record wants one and it is not shown.
            hypervisor: Hypervisor::Simulator,
            is_iso: true,
            ready_in,
        };
        register(c, spec, None, "iso").await
    })
}

/// Whether `filter` shows public, admin-owned images to this caller.
fn filter_shows(c: &Ctx<'_>, ctl: &Controller, filter: &str) -> Result<bool, ApiError> {
    let own = c.caller.account == ctl.cloud().admin_account();
    match filter.to_ascii_lowercase().as_str() {
        "featured" | "executable" => Ok(true),
        "self" | "selfexecutable" => Ok(own),
        "sharedexecutable" | "community" => Ok(false),
        "all" if c.caller.is_admin() => Ok(true),
        "all" => Err(invalid("Filter all can be specified by admin only")),
        _ => Err(invalid(format!(
            "Invalid filter {filter}; valid values are {}",
            FILTERS.join(", ")
        ))),
    }
}

/// One row per (image, zone), filtered by the common list parameters.
fn image_rows(c: &Ctx<'_>, ctl: &Controller, filter: &str, iso: bool) -> Result<Obj, ApiError> {
    let shows = filter_shows(c, ctl, filter)?;
    let inv = &ctl.cloud().inv;
    let id = c.p.opt_uuid("id")?;
    let zone = c.p.opt_uuid("zoneid")?;
    let name = c.p.opt_str("name").filter(|n| !n.is_empty());
    let hv = c.p.opt_str("hypervisor").filter(|h| !h.is_empty());
    let mut rows: Vec<(&Template, ZoneIdx)> = Vec::new();
    for t in inv.templates.iter().filter(|t| shows && t.is_iso == iso) {
        if id.is_some_and(|i| t.id.0 != i)
            || name.is_some_and(|n| t.name != n)
            || hv.is_some_and(|h| !iso && !t.hypervisor.as_str().eq_ignore_ascii_case(h))
            || !views::keyword_ok(c.p, &t.name)
        {
            continue;
        }
        for (z, _) in &t.zones {
            if zone.is_none_or(|u| inv.zone(*z).id.0 == u) {
                rows.push((t, *z));
            }
        }
    }
    let object = if iso { "iso" } else { "template" };
    let (count, page) = views::page(rows, c.p)?;
    let items = page.into_iter().map(|(t, z)| row(c, ctl, t, z, iso)).collect();
    Ok(render::list_body(object, count, items))
}

fn list_templates<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let filter = c.p.req_str("templatefilter")?;
        c.api.read(|ctl| image_rows(c, ctl, filter, false))
    })
}

fn list_isos<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        // CloudStack's default isofilter.
        let filter =
            c.p.opt_str("isofilter")
                .filter(|f| !f.is_empty())
                .unwrap_or("selfexecutable");
        c.api.read(|ctl| image_rows(c, ctl, filter, true))
    })
}

fn iso_view(ctl: &Controller, t: &Template, z: ZoneIdx) -> Obj {
    let cloud = ctl.cloud();
    let zone = cloud.inv.zone(z);
    let state = t.state_in(z);
    let display = ctl.directory().display_text.get(&t.id.0).cloned();
    Obj::new()
        .s("id", t.id.0.to_string())
        .s("name", t.name.clone())
        .s("displaytext", display.unwrap_or_else(|| t.name.clone()))
        .s("format", t.format.as_str())
        .i("size", t.size_bytes as i64)
        .s("ostypeid", ostypes::id_of(&t.os_type).to_string())
        .s("ostypename", t.os_type.clone())
        .b("isready", state == Some(TemplateZoneState::Ready))
        .opt_s("status", state.map(|s| s.as_str()))
        .b("ispublic", true)
        .b("isfeatured", true)
        .b("isextractable", false)
        .b("bootable", true)
        .b("crossZones", false)
        .s("account", "admin")
        .s("accountid", cloud.admin_account().0.to_string())
        .s("domainid", cloud.root_domain().0.to_string())
        .s("domain", "ROOT")
        .s("zoneid", zone.id.0.to_string())
        .s("zonename", zone.name.clone())
        .opt_date("created", ctl.directory().created_at(t.id.0).map(|m| m.0))
}

fn list_os_types<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let category = c.p.opt_uuid("oscategoryid")?;
        let description = c.p.opt_str("description").map(str::to_lowercase);
        let rows: Vec<&(&str, &str)> = ostypes::OS_TYPES
            .iter()
            .filter(|(d, _)| id.is_none_or(|i| ostypes::id_of(d) == i))
            .filter(|(_, cat)| category.is_none_or(|i| ostypes::category_id(cat) == i))
            .filter(|(d, _)| {
                description
                    .as_ref()
                    .is_none_or(|x| d.to_lowercase().contains(x.as_str()))
            })
            .filter(|(d, _)| views::keyword_ok(c.p, d))
            .collect();
        let (count, page) = views::page(rows, c.p)?;
        let items = page
            .into_iter()
            .map(|(d, cat)| {
                Obj::new()
                    .s("id", ostypes::id_of(d).to_string())
                    .s("description", *d)
                    .s("oscategoryid", ostypes::category_id(cat).to_string())
                    .s("oscategoryname", *cat)
                    .b("isuserdefined", false)
            })
            .collect();
        Ok(render::list_body("ostype", count, items))
    })
}

const TEMPLATE_FIELDS: &[&str] = &[
    "id",
    "name",
    "displaytext",
    "format",
    "hypervisor",
    "size",
    "physicalsize",
    "ostypeid",
    "ostypename",
    "isready",
    "status",
    "ispublic",
    "isfeatured",
    "isextractable",
    "passwordenabled",
    "bootable",
    "crossZones",
    "templatetype",
    "account",
    "accountid",
    "domainid",
    "domain",
    "zoneid",
    "zonename",
    "created",
];

const IS_PUBLIC: Param = p("ispublic", Ty::Bool, "accepted; images are public in this version");
const IS_FEATURED: Param = p("isfeatured", Ty::Bool, "accepted; images are featured in this version");
const IS_EXTRACTABLE: Param = p("isextractable", Ty::Bool, "accepted; images are not extractable");
const CHECKSUM: Param = p(
    "checksum",
    Ty::Str,
    "the checksum of the image: hex MD5, or {SHA-1}, {SHA-256} or {SHA-512} followed by hex; verified after the download (Simulator templates and ISOs are not downloaded)",
);

pub static COMMANDS: &[Command] = &[
    Command {
        name: "registerTemplate",
        description: "Registers an existing template into the CloudStack cloud.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("name", Ty::Str, "the name of the template"),
            p(
                "displaytext",
                Ty::Str,
                "the display text of the template (default: the name)",
            ),
            req("format", Ty::Str, "the format for the template: QCOW2, RAW, VHD or OVA"),
            req("hypervisor", Ty::Str, "the target hypervisor for the template"),
            req(
                "ostypeid",
                Ty::Uuid,
                "the ID of the OS Type that best represents the OS of this template",
            ),
            req("url", Ty::Str, "the URL of where the template is hosted"),
            p(
                "zoneid",
                Ty::Str,
                "the ID of the zone the template is to be hosted on; -1 for every zone",
            ),
            p(
                "zoneids",
                Ty::List,
                "the IDs of the zones the template is to be hosted on",
            ),
            p("passwordenabled", Ty::Bool, "accepted; no password reset"),
            p("requireshvm", Ty::Bool, "accepted"),
            p("bits", Ty::Int, "accepted"),
            IS_PUBLIC,
            IS_FEATURED,
            IS_EXTRACTABLE,
            CHECKSUM,
        ],
        object: "template",
        fields: TEMPLATE_FIELDS,
        handler: register_template,
    },
    Command {
        name: "listTemplates",
        description: "List all public, private, and privileged templates.",
        is_async: false,
        min_role: Role::User,
        params: &[
            req(
                "templatefilter",
                Ty::Str,
                "featured, self, selfexecutable, sharedexecutable, executable, community or all",
            ),
            p("id", Ty::Uuid, "the template ID"),
            p("name", Ty::Str, "the template name"),
            p("zoneid", Ty::Uuid, "list templates by zoneId"),
            p("hypervisor", Ty::Str, "the hypervisor for which to restrict the search"),
        ],
        object: "template",
        fields: TEMPLATE_FIELDS,
        handler: list_templates,
    },
    Command {
        name: "registerIso",
        description: "Registers an existing ISO into the CloudStack Cloud.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("name", Ty::Str, "the name of the ISO"),
            p(
                "displaytext",
                Ty::Str,
                "the display text of the ISO (default: the name)",
            ),
            req("url", Ty::Str, "the URL to where the ISO is currently being hosted"),
            req(
                "zoneid",
                Ty::Str,
                "the ID of the zone you wish to register the ISO to; -1 for every zone",
            ),
            p(
                "ostypeid",
                Ty::Uuid,
                "the ID of the OS type that best represents the OS of this ISO",
            ),
            p("bootable", Ty::Bool, "accepted; ISOs are bootable"),
            IS_PUBLIC,
            IS_FEATURED,
            IS_EXTRACTABLE,
            CHECKSUM,
        ],
        object: "iso",
        fields: TEMPLATE_FIELDS,
        handler: register_iso,
    },
    Command {
        name: "listIsos",
        description: "Lists all available ISO files.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p(
                "isofilter",
                Ty::Str,
                "featured, self, selfexecutable (default), sharedexecutable, executable, community or all",
            ),
            p("id", Ty::Uuid, "list ISO by ID"),
            p("name", Ty::Str, "list all ISOs by name"),
            p("zoneid", Ty::Uuid, "the ID of the zone"),
        ],
        object: "iso",
        fields: TEMPLATE_FIELDS,
        handler: list_isos,
    },
    Command {
        name: "listOsTypes",
        description: "Lists all supported OS types for this cloud.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "list by OS type ID"),
            p("description", Ty::Str, "list OS types by description"),
            p("oscategoryid", Ty::Uuid, "list by OS category ID"),
        ],
        object: "ostype",
        fields: &["id", "description", "oscategoryid", "oscategoryname", "isuserdefined"],
        handler: list_os_types,
    },
];
