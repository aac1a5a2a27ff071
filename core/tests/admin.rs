//! Admin changes through the one entry point: created entities, refusals that
//! change nothing, jobs for async-in-CloudStack commands, journal round trip.

use std::net::Ipv4Addr;
use stratus_core::cloud::*;
use stratus_core::controller::admin::{AdminChange, NewUser};
use stratus_core::controller::{Controller, Input, Reply, Request};
use stratus_core::ids::*;
use stratus_core::inventory::*;
use stratus_core::units::Millis;
use uuid::Uuid;

const T0: u64 = 1_700_000_000_000;

fn admin(c: &mut Controller, t: u64, change: AdminChange) -> Result<Uuid, String> {
    let input = Input::Admin { change, by: None };
    // Every admin input survives the journal's encoding unchanged.
    let input = Input::from_bytes(&input.to_bytes()).unwrap();
    match c.handle(Millis(T0 + t), input).reply {
        Reply::Created(r) => r.map(|c| c.id).map_err(|e| e.to_string()),
        other => panic!("unexpected reply {other:?}"),
    }
}

fn zone_with_host(c: &mut Controller) -> (ZoneId, HostId) {
    let z = ZoneId(
        admin(
            c,
            1,
            AdminChange::CreateZone {
                spec: ZoneSpec::advanced("z1"),
            },
        )
        .unwrap(),
    );
    let p = PodId(
        admin(
            c,
            2,
            AdminChange::CreatePod {
                spec: PodSpec::numbered("p1", z, 1),
            },
        )
        .unwrap(),
    );
    let cl = ClusterId(
        admin(
            c,
            3,
            AdminChange::AddCluster {
                name: "c1".into(),
                pod: p,
                hypervisor: Hypervisor::Simulator,
            },
        )
        .unwrap(),
    );
    let spec = HostSpec {
        name: "h1".into(),
        cluster: cl,
        cpu_cores: 4,
        cpu_mhz: 2000,
        memory_bytes: 8 << 30,
        tags: vec![],
    };
    let h = HostId(admin(c, 4, AdminChange::AddHost { spec }).unwrap());
    (z, h)
}

#[test]
fn a_new_host_is_connecting_until_its_first_ping() {
    let mut c = Controller::new(Cloud::new(7));
    c.handle(Millis(T0), Input::Boot);
    let (_, h) = zone_with_host(&mut c);
    let inv = &c.cloud().inv;
    assert_eq!(inv.host(inv.find_host(h).unwrap()).status, HostStatus::Connecting);
    c.handle(Millis(T0 + 10), Input::Pings { hosts: vec![h] });
    let inv = &c.cloud().inv;
    assert_eq!(inv.host(inv.find_host(h).unwrap()).status, HostStatus::Up);
    assert!(c.directory().created_at(h.0).is_some());
    assert!(c.directory().audit.iter().any(|e| e.kind == "HOST.ADD"));
}

#[test]
fn refusals_change_nothing() {
    let mut c = Controller::new(Cloud::new(7));
    let (z, _) = zone_with_host(&mut c);
    let before = c.state_hash();
    let bad = AdminChange::CreatePod {
        spec: PodSpec::numbered("p1", ZoneId(Uuid::nil()), 2),
    };
    assert!(admin(&mut c, 4, bad).is_err());
    let dup = AdminChange::UpdateZone {
        zone: z,
        name: Some(" ".into()),
        allocation: None,
        dns1: None,
        internal_dns1: None,
    };
    assert!(admin(&mut c, 4, dup).is_err());
    let range = AdminChange::CreateVlanRange {
        zone: z,
        vlan: "untagged".into(),
        gateway: Ipv4Addr::new(198, 51, 100, 1),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        start: Ipv4Addr::new(198, 51, 100, 20),
        end: Ipv4Addr::new(198, 51, 101, 10),
    };
    assert!(admin(&mut c, 4, range).unwrap_err().contains("subnet"));
    assert_eq!(c.state_hash(), before);
}

#[test]
fn public_ips_are_allocated_as_jobs_and_run_out_cleanly() {
    let mut c = Controller::new(Cloud::new(7));
    let (z, _) = zone_with_host(&mut c);
    let range = AdminChange::CreateVlanRange {
        zone: z,
        vlan: "untagged".into(),
        gateway: Ipv4Addr::new(198, 51, 100, 1),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        start: Ipv4Addr::new(198, 51, 100, 20),
        end: Ipv4Addr::new(198, 51, 100, 21),
    };
    admin(&mut c, 5, range).unwrap();
    let account = c.cloud().admin_account();
    for _ in 0..2 {
        let out = c.handle(
            Millis(T0 + 6),
            Input::Admin {
                change: AdminChange::AssociateIp {
                    zone: z,
                    account,
                    network: None,
                },
                by: None,
            },
        );
        let Reply::Created(Ok(created)) = out.reply else {
            panic!()
        };
        let job = c.job(created.job.unwrap()).unwrap();
        assert_eq!(job.instance, Some(created.id));
    }
    let third = admin(
        &mut c,
        7,
        AdminChange::AssociateIp {
            zone: z,
            account,
            network: None,
        },
    );
    assert!(third.unwrap_err().contains("no free public IP"));
}

#[test]
fn a_deleted_offering_takes_no_new_deploys() {
    let mut c = Controller::new(Cloud::new(7));
    let (z, _) = zone_with_host(&mut c);
    let so = admin(
        &mut c,
        5,
        AdminChange::CreateServiceOffering {
            spec: ServiceOfferingSpec::fixed("small", 1, 500, 512),
            display_text: "Small".into(),
        },
    )
    .unwrap();
    admin(&mut c, 6, AdminChange::DeleteOffering { id: so }).unwrap();
    assert!(admin(&mut c, 7, AdminChange::DeleteOffering { id: so }).is_err());
    let spec = DeploySpec {
        name: "vm".into(),
        zone: Some(z),
        offering: Some(ServiceOfferingId(so)),
        ..Default::default()
    };
    let out = c.handle(
        Millis(T0 + 8),
        Input::Request {
            request: Request::Deploy(spec),
        },
    );
    let Reply::Job(Err(e)) = out.reply else {
        panic!("deploy with a deleted offering was accepted")
    };
    assert!(e.to_string().contains("offering"));
}

#[test]
fn users_and_keys() {
    let mut c = Controller::new(Cloud::new(7));
    let user = |n: &str| NewUser {
        username: n.into(),
        password_hash: "$argon2id$stub".into(),
        first_name: "F".into(),
        last_name: "L".into(),
        email: "e@example.org".into(),
        timezone: None,
    };
    let acct = admin(
        &mut c,
        1,
        AdminChange::CreateAccount {
            name: "acme".into(),
            domain: None,
            account_type: AccountType::User,
            user: user("alice"),
        },
    )
    .unwrap();
    let dup = AdminChange::CreateUser {
        account: AccountId(acct),
        user: user("alice"),
    };
    assert!(admin(&mut c, 2, dup).unwrap_err().contains("already exists"));
    let bob = admin(
        &mut c,
        3,
        AdminChange::CreateUser {
            account: AccountId(acct),
            user: user("bob"),
        },
    )
    .unwrap();
    let alice = c.directory().users.iter().find(|u| u.username == "alice").unwrap().id;
    admin(
        &mut c,
        4,
        AdminChange::SetUserKeys {
            user: alice,
            api_key: "k1".into(),
            secret_key: "s1".into(),
        },
    )
    .unwrap();
    let steal = AdminChange::SetUserKeys {
        user: stratus_core::controller::directory::UserId(bob),
        api_key: "k1".into(),
        secret_key: "s2".into(),
    };
    assert!(admin(&mut c, 5, steal).is_err());
    assert_eq!(c.directory().user_by_api_key("k1").unwrap().id, alice);
    // The directory is part of the state: a snapshot round trip keeps it.
    let back = Controller::from_state_bytes(&c.state_bytes()).unwrap();
    assert_eq!(back.state_hash(), c.state_hash());
    assert_eq!(back.directory().users.len(), 2);
}

#[test]
fn update_vm_sets_display_name_and_ha_only_where_offered() {
    let mut c = Controller::new(Cloud::new(7));
    let (z, _) = zone_with_host(&mut c);
    let so = admin(
        &mut c,
        5,
        AdminChange::CreateServiceOffering {
            spec: ServiceOfferingSpec::fixed("small", 1, 500, 512),
            display_text: "Small".into(),
        },
    )
    .unwrap();
    let tpl = TemplateSpec {
        name: "tiny".into(),
        format: ImageFormat::Qcow2,
        size_bytes: 1 << 30,
        os_type: "Other Linux (64-bit)".into(),
        hypervisor: Hypervisor::Simulator,
        is_iso: false,
        ready_in: vec![z],
    };
    let t = admin(
        &mut c,
        6,
        AdminChange::RegisterTemplate {
            spec: tpl,
            display_text: "tiny".into(),
            source: None,
        },
    )
    .unwrap();
    let spec = DeploySpec {
        name: "vm1".into(),
        account: Some(c.cloud().admin_account()),
        zone: Some(z),
        offering: Some(ServiceOfferingId(so)),
        template: Some(TemplateId(t)),
        start: false,
        ..Default::default()
    };
    let out = c.handle(
        Millis(T0 + 7),
        Input::Request {
            request: Request::Deploy(spec),
        },
    );
    let Reply::Job(Ok(job)) = out.reply else {
        panic!("deploy refused")
    };
    let vm = c.job(job).unwrap().vm.unwrap();
    let update = |display_name: Option<&str>, ha| AdminChange::UpdateVm {
        vm,
        display_name: display_name.map(String::from),
        ha,
    };
    admin(&mut c, 8, update(Some("web server"), Some(false))).unwrap();
    assert_eq!(c.cloud().vm(vm).unwrap().display_name, "web server");
    assert_eq!(c.cloud().vm(vm).unwrap().name, "vm1");
    let before = c.state_hash();
    assert!(admin(&mut c, 8, update(None, Some(true))).unwrap_err().contains("HA"));
    assert!(admin(&mut c, 8, update(Some(" "), None)).is_err());
    let ghost = AdminChange::UpdateVm {
        vm: VmId(Uuid::nil()),
        display_name: Some("x".into()),
        ha: None,
    };
    assert!(admin(&mut c, 8, ghost).is_err());
    assert_eq!(c.state_hash(), before);
}
