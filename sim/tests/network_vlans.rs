//! Guest network VLANs come from the core's network model: a zone's guest
//! VLAN range gives each new guest network the lowest free tag, and every VM's
//! domain spec and NIC plug carry its network's tag to the host (the simulated
//! host records it as a real one tags its OVS port).

mod common;

use common::*;
use stratus_core::cloud::{NetworkSpec, ZoneSpec};
use stratus_core::controller::JobStatus;
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::effects::Mac;
use stratus_core::ids::{NetworkId, ZoneId};

#[test]
fn two_guest_networks_get_two_tags_and_their_vms_carry_them() {
    let (mut e, ids) = lab();
    // The lab's zone has no guest VLAN range: its network is untagged.
    let untagged = e.ctl.cloud().inv.networks.iter().find(|n| n.id == ids.network).unwrap();
    assert_eq!(untagged.vlan, None);

    // A zone with the range 100-101 takes its networks' tags from it.
    let mut spec = ZoneSpec::advanced("tagged");
    spec.guest_vlans = Some((100, 101));
    let now = e.ctl.now();
    let tagged = ZoneId(e.ctl.admin(AdminChange::CreateZone { spec }, None, now).unwrap().id);
    let mut net = |name: &str, zone: ZoneId, vlan: Option<u16>| {
        let spec = NetworkSpec {
            name: name.into(),
            zone,
            cidr: "10.9.0.0/24".into(),
            account: Some(ids.account),
            vlan,
        };
        let display_text = name.to_string();
        e.ctl
            .admin(AdminChange::CreateNetwork { spec, display_text }, None, now)
            .map(|c| NetworkId(c.id))
    };
    let a = net("a", tagged, None).unwrap();
    let b = net("b", tagged, None).unwrap();
    let full = net("c", tagged, None).unwrap_err().to_string();
    assert!(
        full.contains("no free VLAN left in the zone's guest range 100-101"),
        "{full}"
    );
    let taken = net("d", tagged, Some(100)).unwrap_err().to_string();
    assert!(taken.contains("VLAN 100 is already used"), "{taken}");
    assert!(net("e", tagged, Some(4095)).is_err(), "4095 is not a VLAN id");
    // The lab's zone has its own (empty) set of tags: 101 is free there once.
    let x = net("explicit", ids.zone, Some(101)).unwrap();
    assert!(
        net("explicit-2", ids.zone, Some(101)).is_err(),
        "101 is taken in this zone now"
    );

    let inv = &e.ctl.cloud().inv;
    let tag = |id| inv.networks.iter().find(|n| n.id == id).unwrap().vlan;
    assert_eq!((tag(a), tag(b)), (Some(100), Some(101)));
    assert_eq!(
        inv.zones.iter().find(|z| z.id == tagged).unwrap().guest_vlans,
        Some((100, 101))
    );

    // VMs on the tagged network and on the untagged one: the world's domains
    // (DefineDomain's NIC details) carry their network's tag, or none.
    let mut vm_on = |name: &str, network| {
        let mut req = deploy_req(&ids, name);
        if let stratus_core::controller::Request::Deploy(d) = &mut req {
            d.network = Some(network);
        }
        let job = e.submit(req).unwrap();
        run(&mut e);
        assert_eq!(e.ctl.job(job).unwrap().status, JobStatus::Succeeded, "{name}");
        vm_of(&e, job)
    };
    let on_x = vm_on("on-x", x);
    let on_plain = vm_on("on-plain", ids.network);
    let domain_vlans = |vm| -> Vec<u16> {
        e.world
            .hosts
            .values()
            .filter_map(|h| h.domains.get(&vm))
            .flat_map(|d| d.nic_vlans.iter().map(|(_, v)| *v))
            .collect()
    };
    assert_eq!(domain_vlans(on_x), [101]);
    assert!(domain_vlans(on_plain).is_empty());
    let mac = e.ctl.cloud().vm(on_x).unwrap().nic.unwrap().mac;
    let recorded: Vec<Mac> = e
        .world
        .hosts
        .values()
        .filter_map(|h| h.domains.get(&on_x))
        .flat_map(|d| d.nic_vlans.iter().map(|(m, _)| *m))
        .collect();
    assert_eq!(recorded, [Mac(mac)]);
    assert_clean(&mut e, "tagged and untagged guests");
}
