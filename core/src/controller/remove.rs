//! deleteHost, deleteCluster, deletePod as controller changes: CloudStack's
//! preconditions, then the ledger removal (`cloud::remove`), then what the
//! controller itself keeps per host (health, leftovers) is forgotten.

use super::Controller;
use super::kinds::EventKind;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::inventory::ResourceState;

impl Controller {
    /// deleteHost. Without `forced` the host must be in Maintenance (CloudStack's
    /// `canDeleteHost`); `forced` skips that, never the ledger's rule: a host
    /// that VMs or volumes still use is refused, forced or not (Stratus does
    /// not stop or move VMs as a side effect of a delete; migrate them or put
    /// the host into maintenance first). A host being evacuated or in a
    /// rolling maintenance is refused too (cancel it first).
    pub(crate) fn delete_host(&mut self, host: HostId, forced: bool) -> CoreResult<()> {
        let h = self.cloud.host_idx(host)?;
        let rec = self.cloud.inv.host(h);
        let (name, rs, status) = (rec.name.clone(), rec.resource_state, rec.status);
        if !forced && rs != ResourceState::Maintenance {
            return Err(CoreError::Refused(format!(
                "Host {host} ({name}) cannot be deleted as it is not in maintenance mode ({rs}). Either put the host into maintenance or perform a forced deletion."
            )));
        }
        let rolling = self
            .rolling
            .values()
            .any(|r| r.current == Some(host) || r.queue.contains(&host));
        if self.evacuations.contains_key(&host) || rolling || rs == ResourceState::PrepareForMaintenance {
            return Err(CoreError::Refused(format!(
                "Host {host} ({name}) cannot be deleted while it is being prepared for maintenance; cancel the maintenance first"
            )));
        }
        self.cloud.remove_host(host)?;
        if let Some(hh) = self.health.get_mut(h.ix()) {
            *hh = Default::default();
        }
        self.probe_ops.retain(|_, (x, _)| *x != h);
        self.leftovers.retain(|_, l| l.call.host() != Some(host));
        self.event(
            EventKind::HostState,
            name,
            format!(
                "{status} -> Removed: deleteHost{}",
                if forced { " (forced)" } else { "" }
            ),
        );
        Ok(())
    }

    pub(crate) fn delete_cluster(&mut self, cluster: ClusterId) -> CoreResult<()> {
        self.cloud.remove_cluster(cluster)?;
        Ok(())
    }

    pub(crate) fn delete_pod(&mut self, pod: PodId) -> CoreResult<()> {
        self.cloud.remove_pod(pod)?;
        Ok(())
    }
}
