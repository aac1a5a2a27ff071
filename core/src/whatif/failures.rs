//! Host failures replayed the way the controller's HA does it: every failed
//! host is Down first; then, host by host in order and VM by VM in the host's
//! VM list order, a VM is lost (its charge released) and, if HA-eligible,
//! restarted at once by the production allocator in HA mode.

use crate::allocator::{Explanation, Scratch};
use crate::cloud::{Cloud, Fork};
use crate::ids::*;
use crate::inventory::HostStatus;
use crate::rng::DetRng;
use crate::settings::Scope;
use crate::vm::{Charge, VmState, VolumeType};

/// What happened to one VM of a failed host.
#[derive(Debug)]
pub enum Fate {
    Restarted(HostIdx),
    /// HA-eligible but no destination: `None` when explanations were not asked for.
    Refused(Option<Box<Explanation>>),
    /// Not HA-enabled (or root on host-local storage): stays down.
    Lost,
}

/// Per cluster: `force.ha` (every VM of the cluster counts as HA).
pub fn force_ha(c: &Cloud) -> Vec<bool> {
    c.inv
        .clusters
        .iter()
        .map(|cl| c.settings.bool("force.ha", Scope::Cluster(cl.id)))
        .collect()
}

/// Would HA restart this VM if its host were fenced?
pub fn ha_eligible(c: &Cloud, force: &[bool], i: VmIdx) -> bool {
    let vm = c.vm_at(i);
    let Some(h) = vm.host else { return false };
    if !(vm.ha_enabled || force[c.inv.host(h).cluster.ix()]) {
        return false;
    }
    !vm.volumes.iter().any(|v| {
        let vol = c.volume_at(*v);
        vol.volume_type == VolumeType::Root && vol.pool.is_some_and(|p| c.inv.pool(p).is_local())
    })
}

#[allow(clippy::too_many_arguments)]
/// Fails `hosts` on the fork and restarts what HA would; calls `seen` for each
/// VM that was running on them. Stops early when `stop_at_first_refusal`.
pub fn fail_hosts(
    f: &mut Fork<'_>,
    hosts: &[HostIdx],
    force: &[bool],
    rng: &mut DetRng,
    scratch: &mut Scratch,
    explain: bool,
    stop_at_first_refusal: bool,
    seen: &mut dyn FnMut(&Cloud, HostIdx, VmIdx, &Fate),
) -> bool {
    for &h in hosts {
        f.set_host_status(h, HostStatus::Down);
    }
    let mut all_ok = true;
    for &h in hosts {
        let vms: Vec<VmIdx> = f.cloud().vms_on(h).to_vec();
        for i in vms {
            match f.cloud().vm_at(i).charge {
                Charge::Used { host } if host == h => {}
                Charge::Reserved { host, .. } if host == h => {
                    let state = f.cloud().vm_at(i).state;
                    f.set_vm(i, Charge::None, state, None);
                    continue;
                }
                _ => continue,
            }
            let eligible = ha_eligible(f.cloud(), force, i);
            f.set_vm(i, Charge::None, VmState::Stopped, None);
            let fate = if eligible {
                let mut req = f.cloud().request_for(i);
                req.preferred_host = None;
                req.own_reservation = None;
                req.ha_restart = true;
                let placed = if explain {
                    f.cloud().place_shared(&req, rng, scratch).map_err(Some)
                } else {
                    f.cloud().place_quiet(&req, rng, scratch).ok_or(None)
                };
                match placed {
                    Ok(p) => {
                        f.set_vm(i, Charge::Used { host: p.host }, VmState::Running, Some(p.host));
                        Fate::Restarted(p.host)
                    }
                    Err(e) => {
                        all_ok = false;
                        Fate::Refused(e)
                    }
                }
            } else {
                Fate::Lost
            };
            seen(f.cloud(), h, i, &fate);
            if stop_at_first_refusal && !all_ok {
                return false;
            }
        }
    }
    all_ok
}

/// Does every HA VM restart if all of `hosts` fail? The cloud is left as it was.
pub fn survives(c: &mut Cloud, hosts: &[HostIdx], force: &[bool], scratch: &mut Scratch) -> bool {
    let mut rng = c.allocator_rng();
    let mut f = c.fork();
    fail_hosts(
        &mut f,
        hosts,
        force,
        &mut rng,
        scratch,
        false,
        true,
        &mut |_, _, _, _| {},
    )
}
