//! One-line descriptions of driver calls for the event log (names, not UUIDs).

use super::effects::DriverCall;
use crate::Cloud;
use crate::ids::*;

pub(crate) fn describe_call(c: &Cloud, call: &DriverCall) -> String {
    let host = |h: HostId| {
        c.inv
            .find_host(h)
            .map(|i| c.inv.host(i).name.clone())
            .unwrap_or_default()
    };
    let vm = |v: VmId| c.vm(v).map(|x| x.name.clone()).unwrap_or_else(|| v.to_string());
    let pool = |p: PoolId| {
        c.inv
            .find_pool(p)
            .map(|i| c.inv.pool(i).name.clone())
            .unwrap_or_default()
    };
    match call {
        DriverCall::DefineDomain { vm: v, host: h, .. }
        | DriverCall::UndefineDomain { vm: v, host: h }
        | DriverCall::StartDomain { vm: v, host: h }
        | DriverCall::StopDomain { vm: v, host: h, .. }
        | DriverCall::RebootDomain { vm: v, host: h }
        | DriverCall::PlugNic { vm: v, host: h, .. }
        | DriverCall::UnplugNic { vm: v, host: h, .. } => format!("{} on {}", vm(*v), host(*h)),
        DriverCall::CreateSnapshot { volume, pool: p, .. } => {
            format!(
                "of {} on {}",
                c.volume(*volume).map(|v| v.name.clone()).unwrap_or_default(),
                pool(*p)
            )
        }
        DriverCall::DeleteSnapshot { snapshot } => c.snapshot(*snapshot).map(|s| s.name.clone()).unwrap_or_default(),
        DriverCall::CheckLease { host: h, pool: p } => format!("of {} on {}", host(*h), pool(*p)),
        DriverCall::PingNeighbour { from, target } => format!("{} -> {}", host(*from), host(*target)),
        DriverCall::PowerOff { host: h } => host(*h),
        DriverCall::AttachDisk {
            vm: v, host: h, volume, ..
        }
        | DriverCall::DetachDisk { vm: v, host: h, volume } => {
            let vol = c.volume(*volume).map(|x| x.name.clone()).unwrap_or_default();
            format!("{vol} to {} on {}", vm(*v), host(*h))
        }
        DriverCall::MigrateDomain { vm: v, from, to, .. } => format!("{} {} -> {}", vm(*v), host(*from), host(*to)),
        DriverCall::CopyTemplate { pool: p, .. } | DriverCall::CancelCopy { pool: p, .. } => {
            format!("to {}", pool(*p))
        }
        DriverCall::EnsurePool { host: h, pool: p, .. } => format!("{} on {}", pool(*p), host(*h)),
        DriverCall::EnsureNetwork { host: h, bridge, .. } => format!("{bridge} on {}", host(*h)),
        DriverCall::CreateVolume { volume, pool: p, .. }
        | DriverCall::DeleteVolume { volume, pool: p }
        | DriverCall::CreateTemplate { volume, pool: p, .. }
        | DriverCall::RevertSnapshot { volume, pool: p, .. } => {
            format!(
                "{} on {}",
                c.volume(*volume).map(|v| v.name.clone()).unwrap_or_default(),
                pool(*p)
            )
        }
    }
}
