//! The audit trail of operator changes: CloudStack's event type of each
//! change and the bounded audit log they are written to.

use super::Controller;
use super::admin::AdminChange;
use super::directory::*;
use crate::cloud::*;
use crate::ids::*;

impl Controller {
    pub(super) fn audit(
        &mut self,
        kind: String,
        description: String,
        account: Option<AccountId>,
        user: Option<UserId>,
    ) -> AuditId {
        let id = AuditId(self.cloud.new_uuid());
        let a = &mut self.directory.audit;
        a.push_back(AuditEvent {
            id,
            kind,
            description,
            account,
            user,
            at: self.now,
        });
        while a.len() > AUDIT_KEEP {
            a.pop_front();
        }
        id
    }
}

/// CloudStack's event type of a change, for the audit trail.
pub(super) fn event_type(c: &AdminChange) -> Option<&'static str> {
    Some(match c {
        AdminChange::CreateZone { .. } => "ZONE.CREATE",
        AdminChange::UpdateZone { .. } => "ZONE.EDIT",
        AdminChange::CreatePod { .. } => "POD.CREATE",
        AdminChange::AddCluster { .. } => "CLUSTER.CREATE",
        AdminChange::AddHost { .. } => "HOST.ADD",
        AdminChange::UpdateHost { .. } | AdminChange::SetHostCapacity { .. } => "HOST.UPDATE",
        AdminChange::DeleteHost { .. } => "HOST.DELETE",
        AdminChange::DeleteCluster { .. } => "CLUSTER.DELETE",
        AdminChange::DeletePod { .. } => "POD.DELETE",
        AdminChange::UpdateCluster { .. } => "CLUSTER.UPDATE",
        AdminChange::CreatePool { .. } => "STORAGE.POOL.CREATE",
        AdminChange::AddImageStore { .. } => "IMAGE.STORE.ADD",
        AdminChange::CreateServiceOffering { .. } => "SERVICE.OFFERING.CREATE",
        AdminChange::CreateDiskOffering { .. } => "DISK.OFFERING.CREATE",
        AdminChange::UpdateOffering { .. } => "SERVICE.OFFERING.EDIT",
        AdminChange::DeleteOffering { .. } => "SERVICE.OFFERING.DELETE",
        AdminChange::UpdateVm { .. } => "VM.UPDATE",
        AdminChange::RegisterTemplate { .. } => "TEMPLATE.CREATE",
        AdminChange::TemplateDownloaded {
            outcome: DownloadOutcome::Complete { .. },
            ..
        } => "TEMPLATE.DOWNLOAD.SUCCESS",
        AdminChange::TemplateDownloaded { .. } => "TEMPLATE.DOWNLOAD.FAILED",
        AdminChange::CreateNetwork { .. } => "NETWORK.CREATE",
        AdminChange::CreateDomain { .. } => "DOMAIN.CREATE",
        AdminChange::CreateAccount { .. } => "ACCOUNT.CREATE",
        AdminChange::CreateUser { .. } => "USER.CREATE",
        AdminChange::SetUserKeys { .. } => "REGISTER.USER.KEY",
        AdminChange::CreateVlanRange { .. } => "VLAN.IP.RANGE.CREATE",
        AdminChange::AssociateIp { .. } => "NET.IPASSIGN",
        AdminChange::DisassociateIp { .. } => "NET.IPRELEASE",
        AdminChange::PrepareMaintenance { .. } => "MAINT.PREPARE",
        AdminChange::CancelMaintenance { .. } => "MAINT.CANCEL",
        AdminChange::BeginExternalJob { .. } | AdminChange::EndExternalJob { .. } => return None,
        AdminChange::Audit { .. } => return None,
    })
}
