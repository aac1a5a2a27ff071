//! Which agent executes a driver call.

use super::state::State;
use stratus_core::controller::effects::{DriverCall, DriverError};
use stratus_core::ids::HostId;
use stratus_core::inventory::{HostStatus, PoolScope};

impl State {
    /// Calls for one host wait for it (until the controller's timeout);
    /// probes and storage/fencing calls go to a connected agent that can do
    /// them, or fail at once. A call nobody can take now surely did not
    /// happen (`Unavailable`).
    pub(crate) fn route(&self, op: u64, call: &DriverCall) -> Result<HostId, DriverError> {
        let inv = &self.ctl.cloud().inv;
        match call {
            DriverCall::PingNeighbour { from, .. } => {
                if self.conns.contains_key(from) {
                    Ok(*from)
                } else {
                    Err(DriverError::unavailable(format!(
                        "the agent of {} is not connected",
                        self.host_name(*from)
                    )))
                }
            }
            DriverCall::PowerOff { host } => {
                let Some(target) = inv.find_host(*host).map(|i| inv.host(i)) else {
                    return Err(DriverError::not_found("unknown host"));
                };
                let (cluster, zone) = (target.cluster, target.zone);
                let same_cluster = self.pick(op, *host, |h| inv.host(h).cluster == cluster);
                same_cluster
                    .or_else(|| self.pick(op, *host, |h| inv.host(h).zone == zone))
                    .ok_or_else(|| {
                        DriverError::unavailable(format!(
                            "no connected agent in the zone of {} can fence it",
                            target.name
                        ))
                    })
            }
            _ => match (call.host(), pool_of(call)) {
                (Some(h), _) => Ok(h),
                (None, Some((pool, exclude))) => {
                    let Some(p) = inv.find_pool(pool).map(|i| inv.pool(i)) else {
                        return Err(DriverError::not_found("unknown storage pool"));
                    };
                    let (scope, zone) = (p.scope, p.zone);
                    let exclude = exclude.unwrap_or(HostId(stratus_core::uuid::Uuid::nil()));
                    self.pick(op, exclude, |h| match scope {
                        PoolScope::Cluster(c) => inv.host(h).cluster == c,
                        PoolScope::Zone => inv.host(h).zone == zone,
                        PoolScope::Host(x) => h == x,
                    })
                    .ok_or_else(|| {
                        DriverError::unavailable(format!("no connected agent can reach storage pool {}", p.name))
                    })
                }
                // Secondary storage (snapshots) is reachable from any agent.
                (None, None) if matches!(call, DriverCall::DeleteSnapshot { .. }) => self
                    .pick(op, HostId(stratus_core::uuid::Uuid::nil()), |_| true)
                    .ok_or_else(|| DriverError::unavailable("no connected agent can reach secondary storage")),
                (None, None) => Err(DriverError::refused(format!("{} has no executor", call.name()))),
            },
        }
    }

    /// A connected agent (not `exclude`) passing `ok`, Up hosts first; spread by op id.
    fn pick(&self, op: u64, exclude: HostId, ok: impl Fn(stratus_core::ids::HostIdx) -> bool) -> Option<HostId> {
        let inv = &self.ctl.cloud().inv;
        let candidates: Vec<(HostId, bool)> = self
            .conns
            .keys()
            .filter(|h| **h != exclude)
            .filter_map(|h| inv.find_host(*h).map(|i| (*h, i)))
            .filter(|(_, i)| ok(*i))
            .map(|(h, i)| (h, inv.host(i).status == HostStatus::Up))
            .collect();
        let up: Vec<HostId> = candidates.iter().filter(|c| c.1).map(|c| c.0).collect();
        let all: Vec<HostId> = candidates.iter().map(|c| c.0).collect();
        let from = if up.is_empty() { all } else { up };
        (!from.is_empty()).then(|| from[(op % from.len() as u64) as usize])
    }
}

fn pool_of(call: &DriverCall) -> Option<(stratus_core::ids::PoolId, Option<HostId>)> {
    match call {
        DriverCall::CheckLease { host, pool } => Some((*pool, Some(*host))),
        other => other.pool().map(|p| (p, None)),
    }
}
