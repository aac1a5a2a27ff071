//! An enrolling agent's `HostFacts` size its host: a KVM host's capacity is
//! what libvirt counts (cores, MHz, memory), not what `addHost` was told, as
//! CloudStack takes it from the agent's startup command.

use super::state::State;
use stratus_core::controller::Input;
use stratus_core::controller::admin::AdminChange;
use stratus_core::ids::HostId;
use stratus_wire::HostFacts;

/// Feeds the controller the host's reported size when it differs from the
/// inventory's (a simulated host reports its own inventory: nothing to feed).
/// Facts with a zero are not a size: the inventory keeps its figures.
pub(super) fn adopt(st: &mut State, host: HostId, facts: &HostFacts) {
    if facts.cpu_cores == 0 || facts.cpu_mhz == 0 || facts.memory_bytes == 0 {
        tracing::warn!(%host, ?facts, "agent reported an empty size; capacity stays as added");
        return;
    }
    let inv = &st.ctl.cloud().inv;
    let Some(h) = inv.find_host(host) else { return };
    let known = inv.host(h);
    if (known.cpu_cores, known.cpu_mhz_per_core, known.memory_bytes)
        == (facts.cpu_cores, facts.cpu_mhz, facts.memory_bytes)
    {
        return;
    }
    tracing::info!(
        %host,
        cores = facts.cpu_cores,
        mhz = facts.cpu_mhz,
        memory_mib = facts.memory_bytes >> 20,
        "host capacity from the agent's facts"
    );
    let change = AdminChange::SetHostCapacity {
        host,
        cpu_cores: facts.cpu_cores,
        cpu_mhz: facts.cpu_mhz,
        memory_bytes: facts.memory_bytes,
    };
    st.feed(Input::Admin { change, by: None }, None);
}
