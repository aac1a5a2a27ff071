//! Operator and account changes that are not sagas: inventory (zones, pods,
//! clusters, hosts, storage, offerings, templates, networks), accounts and
//! users, public IPs, and the host maintenance actions as API jobs. Each one
//! enters as `Input::Admin`, so it is journaled and recovered like a request;
//! who may make it is the API layer's business, whether it is valid is ours.

use super::admin_audit::event_type;
use super::directory::*;
use super::{Command, Controller, Job, JobId, JobStatus};
use crate::cloud::*;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::*;
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum AdminChange {
    CreateZone {
        spec: ZoneSpec,
    },
    UpdateZone {
        zone: ZoneId,
        name: Option<String>,
        allocation: Option<AllocationState>,
        #[serde(with = "crate::serde_util::opt_ip_text", default)]
        dns1: Option<Ipv4Addr>,
        #[serde(with = "crate::serde_util::opt_ip_text", default)]
        internal_dns1: Option<Ipv4Addr>,
    },
    CreatePod {
        spec: PodSpec,
    },
    AddCluster {
        name: String,
        pod: PodId,
        hypervisor: Hypervisor,
    },
    /// The host starts `Connecting` until its agent's first heartbeat.
    AddHost {
        spec: HostSpec,
    },
    /// deleteHost (`controller::remove`): Maintenance unless `forced`; never
    /// while VMs or volumes use it.
    DeleteHost {
        host: HostId,
        #[serde(default)]
        forced: bool,
    },
    /// deleteCluster: no hosts left; its empty cluster-scope pools go with it.
    DeleteCluster {
        cluster: ClusterId,
    },
    /// deletePod: no clusters left.
    DeletePod {
        pod: PodId,
    },
    UpdateHost {
        host: HostId,
        allocation: Option<AllocationState>,
        tags: Option<Vec<String>>,
    },
    /// A host's agent enrolled and reported its size (`HostFacts`): its
    /// capacity is what the hypervisor counts, not what `addHost` said.
    SetHostCapacity {
        host: HostId,
        cpu_cores: u32,
        cpu_mhz: u32,
        memory_bytes: u64,
    },
    /// updateCluster allocationstate: a Disabled cluster takes no new VM.
    UpdateCluster {
        cluster: ClusterId,
        allocation: AllocationState,
    },
    CreatePool {
        spec: PoolSpec,
    },
    AddImageStore {
        name: String,
        zone: Option<ZoneId>,
        url: String,
        capacity_bytes: u64,
    },
    CreateServiceOffering {
        spec: ServiceOfferingSpec,
        display_text: String,
    },
    CreateDiskOffering {
        spec: DiskOfferingSpec,
        display_text: String,
    },
    /// Renames an offering (service or disk, by UUID) and/or changes its display text.
    UpdateOffering {
        id: Uuid,
        name: Option<String>,
        display_text: Option<String>,
    },
    DeleteOffering {
        id: Uuid,
    },
    /// updateVirtualMachine: what the core stores of it (display name, HA flag).
    UpdateVm {
        vm: VmId,
        display_name: Option<String>,
        ha: Option<bool>,
    },
    /// `source`: the template is downloaded to these zones' secondary storage (they
    /// start Downloading); `spec.ready_in` zones are Ready at once (simulated images).
    RegisterTemplate {
        spec: TemplateSpec,
        display_text: String,
        #[serde(default)]
        source: Option<TemplateSource>,
    },
    /// The management server finished (or gave up) downloading a template to a zone.
    TemplateDownloaded {
        template: TemplateId,
        zone: ZoneId,
        outcome: DownloadOutcome,
    },
    CreateNetwork {
        spec: NetworkSpec,
        display_text: String,
    },
    CreateDomain {
        name: String,
        parent: Option<DomainId>,
    },
    /// An account and its first user.
    CreateAccount {
        name: String,
        domain: Option<DomainId>,
        account_type: AccountType,
        user: NewUser,
    },
    CreateUser {
        account: AccountId,
        user: NewUser,
    },
    SetUserKeys {
        user: UserId,
        api_key: String,
        secret_key: String,
    },
    CreateVlanRange {
        zone: ZoneId,
        vlan: String,
        #[serde(with = "crate::serde_util::ip_text")]
        gateway: Ipv4Addr,
        #[serde(with = "crate::serde_util::ip_text")]
        netmask: Ipv4Addr,
        #[serde(with = "crate::serde_util::ip_text")]
        start: Ipv4Addr,
        #[serde(with = "crate::serde_util::ip_text")]
        end: Ipv4Addr,
    },
    /// associateIpAddress (an async command in CloudStack; here it completes at once).
    AssociateIp {
        zone: ZoneId,
        account: AccountId,
        network: Option<NetworkId>,
    },
    DisassociateIp {
        ip: PublicIpId,
    },
    /// prepareHostForMaintenance as a job (done once the evacuation is planned).
    PrepareMaintenance {
        host: HostId,
    },
    CancelMaintenance {
        host: HostId,
    },
    /// A job run outside the controller starts (`runWhatIf`; see `external_jobs`).
    BeginExternalJob {
        command: Command,
    },
    /// That job ended: its result (JSON text) or its error.
    EndExternalJob {
        job: JobId,
        outcome: Result<String, String>,
    },
    /// A line in the audit trail (login, logout, key registration).
    Audit {
        kind: String,
        description: String,
        account: Option<AccountId>,
    },
}

/// A user to create; the password is already hashed by the API layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub timezone: Option<String>,
}

/// What an admin change created or changed, and the job that records it for
/// commands CloudStack runs async.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: Uuid,
    pub job: Option<JobId>,
}

fn created(id: Uuid) -> CoreResult<Created> {
    Ok(Created { id, job: None })
}

impl Controller {
    /// Applies one admin change; an error changes nothing.
    pub fn admin(&mut self, change: AdminChange, by: Option<UserId>, now: Millis) -> CoreResult<Created> {
        self.tick(now);
        let kind = event_type(&change);
        let out = self.admin_inner(change, by)?;
        if let Some(kind) = kind {
            let account = by.and_then(|u| self.directory.user(u)).map(|u| u.account);
            self.audit(kind.to_string(), format!("{kind} {}", out.id), account, by);
        }
        Ok(out)
    }

    fn admin_inner(&mut self, change: AdminChange, by: Option<UserId>) -> CoreResult<Created> {
        let now = self.now;
        match change {
            AdminChange::CreateZone { spec } => {
                let id = self.cloud.add_zone(spec)?;
                self.stamp(id.0, None)
            }
            AdminChange::UpdateZone {
                zone,
                name,
                allocation,
                dns1,
                internal_dns1,
            } => {
                let z = self.cloud.zone_idx(zone)?;
                if let Some(n) = &name {
                    non_empty("name", n)?;
                    if self.cloud.inv.zones.iter().any(|o| o.id != zone && o.name == *n) {
                        return Err(CoreError::Duplicate {
                            kind: "zone",
                            name: n.clone(),
                            scope: "the cloud".into(),
                        });
                    }
                }
                let zr = &mut self.cloud.inv.zones[z.ix()];
                if let Some(n) = name {
                    zr.name = n;
                }
                if let Some(d) = dns1 {
                    zr.dns1 = d;
                }
                if let Some(d) = internal_dns1 {
                    zr.internal_dns1 = d;
                }
                if let Some(a) = allocation {
                    self.cloud.set_zone_allocation(zone, a)?;
                }
                created(zone.0)
            }
            AdminChange::CreatePod { spec } => {
                let id = self.cloud.add_pod(spec)?;
                self.stamp(id.0, None)
            }
            AdminChange::AddCluster { name, pod, hypervisor } => {
                non_empty("clustername", &name)?;
                let id = self.cloud.add_cluster(&name, pod, hypervisor)?;
                self.stamp(id.0, None)
            }
            AdminChange::AddHost { spec } => {
                non_empty("name", &spec.name)?;
                if spec.cpu_cores == 0 || spec.cpu_mhz == 0 || spec.memory_bytes == 0 {
                    return Err(CoreError::invalid(
                        "url",
                        "a host needs cores, MHz and memory above zero",
                    ));
                }
                let id = self.cloud.add_host(spec)?;
                self.cloud.set_host_status(id, HostStatus::Connecting)?;
                self.stamp(id.0, None)
            }
            AdminChange::DeleteHost { host, forced } => self.delete_host(host, forced).map(|_| created(host.0))?,
            AdminChange::DeleteCluster { cluster } => self.delete_cluster(cluster).map(|_| created(cluster.0))?,
            AdminChange::DeletePod { pod } => self.delete_pod(pod).map(|_| created(pod.0))?,
            AdminChange::UpdateHost { host, allocation, tags } => {
                let h = self.cloud.host_idx(host)?;
                if let Some(a) = allocation {
                    let rs = self.cloud.inv.host(h).resource_state;
                    if !matches!(rs, ResourceState::Enabled | ResourceState::Disabled) {
                        return Err(CoreError::InvalidState {
                            entity: "host",
                            name: self.cloud.inv.host(h).name.clone(),
                            state: rs.to_string(),
                            op: "change its allocation state",
                        });
                    }
                    let to = match a {
                        AllocationState::Enabled => ResourceState::Enabled,
                        AllocationState::Disabled => ResourceState::Disabled,
                    };
                    self.cloud.set_host_resource_state(host, to)?;
                }
                if let Some(t) = tags {
                    let set = self.cloud.inv.tags.set(&t);
                    self.cloud.inv.host_mut(h).tags = set;
                    self.cloud.refresh_policy();
                }
                created(host.0)
            }
            AdminChange::SetHostCapacity {
                host,
                cpu_cores,
                cpu_mhz,
                memory_bytes,
            } => {
                self.cloud.set_host_capacity(host, cpu_cores, cpu_mhz, memory_bytes)?;
                created(host.0)
            }
            AdminChange::UpdateCluster { cluster, allocation } => {
                self.cloud.set_cluster_allocation(cluster, allocation)?;
                created(cluster.0)
            }
            AdminChange::CreatePool { spec } => {
                non_empty("name", &spec.name)?;
                let id = self.cloud.add_pool(spec)?;
                self.stamp(id.0, None)
            }
            AdminChange::AddImageStore {
                name,
                zone,
                url,
                capacity_bytes,
            } => {
                let id = self.cloud.add_image_store(&name, zone, &url, capacity_bytes)?;
                self.stamp(id.0, None)
            }
            AdminChange::CreateServiceOffering { spec, display_text } => {
                non_empty("name", &spec.name)?;
                let id = self.cloud.add_service_offering(spec)?;
                self.stamp(id.0, Some(display_text))
            }
            AdminChange::CreateDiskOffering { spec, display_text } => {
                non_empty("name", &spec.name)?;
                let id = self.cloud.add_disk_offering(spec)?;
                self.stamp(id.0, Some(display_text))
            }
            AdminChange::UpdateOffering { id, name, display_text } => {
                self.live_offering(id)?;
                if let Some(n) = name {
                    non_empty("name", &n)?;
                    let inv = &mut self.cloud.inv;
                    if let Some(o) = inv.service_offerings.iter_mut().find(|o| o.id.0 == id) {
                        o.name = n;
                    } else if let Some(o) = inv.disk_offerings.iter_mut().find(|o| o.id.0 == id) {
                        o.name = n;
                    }
                }
                if let Some(t) = display_text {
                    self.directory.display_text.insert(id, t);
                }
                created(id)
            }
            AdminChange::DeleteOffering { id } => {
                self.live_offering(id)?;
                self.directory.removed.insert(id, now);
                created(id)
            }
            AdminChange::UpdateVm { vm, display_name, ha } => {
                self.cloud.update_vm(vm, display_name, ha)?;
                created(vm.0)
            }
            AdminChange::RegisterTemplate {
                spec,
                display_text,
                source,
            } => {
                non_empty("name", &spec.name)?;
                let plan = match &source {
                    Some(s) => self.cloud.check_template_source(s, &spec.ready_in)?,
                    None => Vec::new(),
                };
                let id = self.cloud.add_template(spec)?;
                if let Some(s) = source {
                    self.cloud.attach_template_downloads(id, s, plan);
                }
                self.stamp(id.0, Some(display_text))
            }
            AdminChange::TemplateDownloaded {
                template,
                zone,
                outcome,
            } => {
                self.cloud.finish_template_download(template, zone, outcome)?;
                created(template.0)
            }
            AdminChange::CreateNetwork { spec, display_text } => {
                non_empty("name", &spec.name)?;
                let id = self.cloud.add_network(spec)?;
                self.stamp(id.0, Some(display_text))
            }
            AdminChange::CreateDomain { name, parent } => {
                non_empty("name", &name)?;
                let id = self.cloud.add_domain(&name, parent)?;
                self.stamp(id.0, None)
            }
            AdminChange::CreateAccount {
                name,
                domain,
                account_type,
                user,
            } => {
                non_empty("account", &name)?;
                let d = domain.unwrap_or_else(|| self.cloud.root_domain());
                self.check_new_user(&user, d)?;
                let a = self.cloud.add_account(&name, Some(d), account_type)?;
                self.stamp(a.0, None)?;
                self.push_user(a, user);
                created(a.0)
            }
            AdminChange::CreateUser { account, user } => {
                let ai = self.cloud.account_idx(account)?;
                let d = self.cloud.inv.domain(self.cloud.inv.account(ai).domain).id;
                self.check_new_user(&user, d)?;
                let id = self.push_user(account, user);
                created(id.0)
            }
            AdminChange::SetUserKeys {
                user,
                api_key,
                secret_key,
            } => {
                if self
                    .directory
                    .users
                    .iter()
                    .any(|u| u.id != user && u.api_key.as_deref() == Some(&api_key))
                {
                    return Err(CoreError::invalid("apikey", "this API key is already in use"));
                }
                let u = self
                    .directory
                    .users
                    .iter_mut()
                    .find(|u| u.id == user)
                    .ok_or_else(|| not_found("user", user))?;
                u.api_key = Some(api_key);
                u.secret_key = Some(secret_key);
                created(user.0)
            }
            AdminChange::CreateVlanRange {
                zone,
                vlan,
                gateway,
                netmask,
                start,
                end,
            } => self.create_vlan_range(zone, vlan, gateway, netmask, start, end),
            AdminChange::AssociateIp { zone, account, network } => {
                self.cloud.zone_idx(zone)?;
                self.cloud.account_idx(account)?;
                let ip = self
                    .directory
                    .public_ips
                    .iter_mut()
                    .find(|p| p.zone == zone && p.account.is_none())
                    .ok_or_else(|| CoreError::InvalidParameter {
                        param: "zoneid".into(),
                        message: "no free public IP address left in this zone".into(),
                    })?;
                ip.account = Some(account);
                ip.network = network;
                ip.allocated = Some(now);
                let id = ip.id.0;
                self.instant_job(Command::AssociateIpAddress, id, by)
            }
            AdminChange::DisassociateIp { ip } => {
                let p = self
                    .directory
                    .public_ips
                    .iter_mut()
                    .find(|p| p.id == ip && p.account.is_some())
                    .ok_or_else(|| not_found("allocated public IP address", ip))?;
                p.account = None;
                p.network = None;
                p.allocated = None;
                self.instant_job(Command::DisassociateIpAddress, ip.0, by)
            }
            AdminChange::PrepareMaintenance { host } => {
                self.prepare_maintenance(host, now)?;
                self.instant_job(Command::PrepareHostForMaintenance, host.0, by)
            }
            AdminChange::CancelMaintenance { host } => {
                self.cancel_maintenance(host, now)?;
                self.instant_job(Command::CancelHostMaintenance, host.0, by)
            }
            AdminChange::BeginExternalJob { command } => Ok(self.begin_external_job(command, by)),
            AdminChange::EndExternalJob { job, outcome } => self.end_external_job(job, outcome),
            AdminChange::Audit {
                kind,
                description,
                account,
            } => {
                let id = self.audit(kind, description, account, by);
                created(id.0)
            }
        }
    }

    /// Records the creation time (and display text) of a new entity.
    fn stamp(&mut self, id: Uuid, display_text: Option<String>) -> CoreResult<Created> {
        self.directory.created.insert(id, self.now);
        if let Some(t) = display_text {
            self.directory.display_text.insert(id, t);
        }
        created(id)
    }

    fn live_offering(&self, id: Uuid) -> CoreResult<()> {
        let inv = &self.cloud.inv;
        let known =
            inv.service_offerings.iter().any(|o| o.id.0 == id) || inv.disk_offerings.iter().any(|o| o.id.0 == id);
        if !known || self.directory.is_removed(id) {
            return Err(not_found("offering", id));
        }
        Ok(())
    }

    fn check_new_user(&self, u: &NewUser, domain: DomainId) -> CoreResult<()> {
        non_empty("username", &u.username)?;
        let inv = &self.cloud.inv;
        let taken = self.directory.users.iter().any(|o| {
            o.username == u.username
                && inv
                    .find_account(o.account)
                    .is_some_and(|a| inv.domain(inv.account(a).domain).id == domain)
        });
        if taken {
            return Err(CoreError::Duplicate {
                kind: "user",
                name: u.username.clone(),
                scope: "this domain".into(),
            });
        }
        Ok(())
    }

    fn push_user(&mut self, account: AccountId, u: NewUser) -> UserId {
        let id = UserId(self.cloud.new_uuid());
        self.directory.users.push(User {
            id,
            account,
            username: u.username,
            password_hash: u.password_hash,
            first_name: u.first_name,
            last_name: u.last_name,
            email: u.email,
            timezone: u.timezone,
            api_key: None,
            secret_key: None,
            enabled: true,
            created: self.now,
        });
        id
    }

    fn create_vlan_range(
        &mut self,
        zone: ZoneId,
        vlan: String,
        gateway: Ipv4Addr,
        netmask: Ipv4Addr,
        start: Ipv4Addr,
        end: Ipv4Addr,
    ) -> CoreResult<Created> {
        self.cloud.zone_idx(zone)?;
        let (s, e) = (u32::from(start), u32::from(end));
        if e < s {
            return Err(CoreError::invalid(
                "endip",
                "the end address is below the start address",
            ));
        }
        if e - s >= 65_536 {
            return Err(CoreError::invalid("endip", "a range holds at most 65536 addresses"));
        }
        let mask = u32::from(netmask);
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return Err(CoreError::invalid("netmask", format!("{netmask} is not a netmask")));
        }
        let g = u32::from(gateway);
        if s & mask != g & mask || e & mask != g & mask {
            return Err(CoreError::invalid(
                "gateway",
                "start, end and gateway are not in one subnet",
            ));
        }
        let clash = self.directory.ranges.iter().any(|r| {
            let (rs, re) = (u32::from(r.start), u32::from(r.end));
            s <= re && rs <= e
        });
        if clash {
            return Err(CoreError::invalid(
                "startip",
                "the range overlaps an existing public IP range",
            ));
        }
        let id = VlanRangeId(self.cloud.new_uuid());
        self.directory.ranges.push(VlanRange {
            id,
            zone,
            vlan,
            gateway,
            netmask,
            start,
            end,
            created: self.now,
        });
        for a in s..=e {
            let ip = PublicIpId(self.cloud.new_uuid());
            self.directory.public_ips.push(PublicIp {
                id: ip,
                range: id,
                zone,
                address: Ipv4Addr::from(a),
                account: None,
                network: None,
                allocated: None,
            });
        }
        created(id.0)
    }

    /// A job for an async command whose work is done synchronously.
    fn instant_job(&mut self, command: Command, instance: Uuid, by: Option<UserId>) -> CoreResult<Created> {
        let id = JobId(self.cloud.new_uuid());
        self.push_job(Job {
            id,
            command,
            vm: None,
            volume: None,
            status: JobStatus::Succeeded,
            error: None,
            error_code: None,
            created: self.now,
            completed: Some(self.now),
            user: by,
            instance: Some(instance),
            result: None,
        });
        Ok(Created {
            id: instance,
            job: Some(id),
        })
    }

    /// Users, keys, public IPs and API metadata.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }
}

fn not_found(kind: &'static str, id: impl ToString) -> CoreError {
    CoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn non_empty(param: &str, v: &str) -> CoreResult<()> {
    if v.trim().is_empty() {
        return Err(CoreError::invalid(param, "must not be empty"));
    }
    Ok(())
}
