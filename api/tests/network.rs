//! Network offerings, networks, public IP ranges and addresses, and the empty
//! rule lists over HTTP.

mod common;
#[path = "common/tenants.rs"]
mod tenants;

use common::TestServer;
use serde_json::{Value, json};
use stratus_api::cmds::network::DEFAULT_OFFERING_ID;
use tenants::*;

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn create_network(s: &TestServer, keys: &(String, String), name: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut ps = vec![
        ("command", "createNetwork"),
        ("name", name),
        ("displaytext", "a network"),
        ("networkofferingid", DEFAULT_OFFERING_ID),
        ("zoneid", s.ids.zone.as_str()),
    ];
    ps.extend_from_slice(extra);
    s.call(keys, &ps).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_offerings() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let (st, v) = s.call(&a.keys, &[("command", "listNetworkOfferings")]).await;
    assert_eq!(st, 200);
    let l = &v["listnetworkofferingsresponse"];
    assert_eq!(l["count"], 1);
    let o = &l["networkoffering"][0];
    assert_eq!(o["id"], DEFAULT_OFFERING_ID);
    assert_eq!(o["name"], "DefaultIsolatedNetworkOffering");
    assert_eq!(o["guestiptype"], "Isolated");
    assert_eq!(o["state"], "Enabled");
    assert_eq!(o["traffictype"], "Guest");
    let services: Vec<&str> = o["service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["Dhcp", "Dns", "UserData"]);
    for ps in [
        vec![("command", "listNetworkOfferings"), ("guestiptype", "Shared")],
        vec![
            ("command", "listNetworkOfferings"),
            ("id", "6b4d5c3e-0000-4000-8000-000000000001"),
        ],
        vec![("command", "listNetworkOfferings"), ("forvpc", "true")],
    ] {
        let (_, v) = s.call(&a.keys, &ps).await;
        assert_eq!(v, json!({"listnetworkofferingsresponse": {}}), "{ps:?}");
    }
    let (st, _) = s
        .call(&a.keys, &[("command", "listNetworkOfferings"), ("id", "x")])
        .await;
    assert_eq!(st, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let b = tenant(&s, "bob").await;
    let (st, v) = create_network(&s, &a.keys, "net1", &[]).await;
    assert_eq!(st, 200, "{v}");
    let n = &v["createnetworkresponse"]["network"];
    assert_eq!(n["cidr"], "10.1.0.0/24", "the first free /24 of the guest CIDR");
    assert_eq!(n["gateway"], "10.1.0.1");
    assert_eq!(n["netmask"], "255.255.255.0");
    assert_eq!(n["account"], "alice");
    assert_eq!(n["type"], "Isolated");
    assert_eq!(n["networkofferingid"], DEFAULT_OFFERING_ID);
    assert_eq!(n["displaytext"], "a network");
    let net1 = n["id"].as_str().unwrap().to_string();
    let (_, v) = create_network(&s, &a.keys, "net2", &[]).await;
    assert_eq!(v["createnetworkresponse"]["network"]["cidr"], "10.1.1.0/24");
    let (_, v) = create_network(
        &s,
        &a.keys,
        "net3",
        &[("gateway", "10.9.0.1"), ("netmask", "255.255.255.0")],
    )
    .await;
    assert_eq!(v["createnetworkresponse"]["network"]["cidr"], "10.9.0.0/24");

    let before = hash(&s);
    let unknown = "6b4d5c3e-0000-4000-8000-000000000001";
    for (extra, code) in [
        (vec![("gateway", "10.9.1.5"), ("netmask", "255.255.255.0")], 431),
        (vec![("gateway", "10.9.1.1")], 431),
        (vec![("gateway", "10.9.1.1"), ("netmask", "255.0.255.0")], 431),
        (vec![("gateway", "not-an-ip"), ("netmask", "255.255.255.0")], 431),
        (vec![("account", "bob")], 531),
    ] {
        let (st, v) = create_network(&s, &a.keys, "bad", &extra).await;
        assert_eq!(st, code, "{extra:?}: {v}");
    }
    let (st, _) = s
        .call(
            &a.keys,
            &[
                ("command", "createNetwork"),
                ("name", "x"),
                ("displaytext", "x"),
                ("networkofferingid", unknown),
                ("zoneid", &s.ids.zone),
            ],
        )
        .await;
    assert_eq!(st, 431);
    let (st, v) = s
        .call(
            &a.keys,
            &[
                ("command", "createNetwork"),
                ("name", "x"),
                ("displaytext", "x"),
                ("networkofferingid", DEFAULT_OFFERING_ID),
            ],
        )
        .await;
    assert_eq!(st, 431);
    assert!(
        v["createnetworkresponse"]["errortext"]
            .as_str()
            .unwrap()
            .contains("missing parameter zoneid")
    );
    assert_eq!(before, hash(&s));

    let (_, v) = s.call(&a.keys, &[("command", "listNetworks")]).await;
    assert_eq!(v["listnetworksresponse"]["count"], 3);
    let (_, v) = s
        .call(&a.keys, &[("command", "listNetworks"), ("keyword", "net1")])
        .await;
    assert_eq!(v["listnetworksresponse"]["count"], 1);
    for ps in [
        vec![("command", "listNetworks")],
        vec![("command", "listNetworks"), ("id", &net1)],
        vec![("command", "listNetworks"), ("listall", "true")],
    ] {
        let (_, v) = s.call(&b.keys, &ps).await;
        assert_eq!(v, json!({"listnetworksresponse": {}}), "{ps:?}");
    }
    let (_, v) = s.admin(&[("command", "listNetworks"), ("id", &net1)]).await;
    assert_eq!(v["listnetworksresponse"]["count"], 1);
    let (_, v) = s.admin(&[("command", "listNetworks")]).await;
    assert_eq!(
        v,
        json!({"listnetworksresponse": {}}),
        "the admin's own account has none"
    );
    let (_, v) = s
        .admin(&[("command", "listNetworks"), ("listall", "true"), ("type", "Shared")])
        .await;
    assert_eq!(v, json!({"listnetworksresponse": {}}));
}

async fn add_range(s: &TestServer) -> (u16, Value) {
    s.admin(&[
        ("command", "createVlanIpRange"),
        ("zoneid", &s.ids.zone),
        ("vlan", "untagged"),
        ("gateway", "203.0.113.1"),
        ("netmask", "255.255.255.0"),
        ("startip", "203.0.113.10"),
        ("endip", "203.0.113.12"),
        ("forvirtualnetwork", "true"),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlan_ranges() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let (st, v) = add_range(&s).await;
    assert_eq!(st, 200, "{v}");
    let r = &v["createvlaniprangeresponse"]["vlan"];
    assert_eq!(r["startip"], "203.0.113.10");
    assert_eq!(r["endip"], "203.0.113.12");
    assert_eq!(r["forvirtualnetwork"], true);
    let (_, v) = s.admin(&[("command", "listVlanIpRanges")]).await;
    assert_eq!(v["listvlaniprangesresponse"]["count"], 1);
    assert_eq!(v["listvlaniprangesresponse"]["vlaniprange"][0]["id"], r["id"]);

    let before = hash(&s);
    // An overlapping range is the core's refusal.
    let (st, v) = add_range(&s).await;
    assert_eq!(st, 431, "{v}");
    let (st, v) = s
        .admin(&[
            ("command", "createVlanIpRange"),
            ("zoneid", &s.ids.zone),
            ("netmask", "255.255.255.0"),
            ("startip", "198.51.100.10"),
        ])
        .await;
    assert_eq!(st, 431);
    assert!(
        v["createvlaniprangeresponse"]["errortext"]
            .as_str()
            .unwrap()
            .contains("missing parameter gateway")
    );
    let (st, _) = s
        .admin(&[
            ("command", "createVlanIpRange"),
            ("zoneid", &s.ids.zone),
            ("gateway", "198.51.100.1"),
            ("netmask", "255.255.255.0"),
            ("startip", "198.51.100.10"),
            ("forvirtualnetwork", "false"),
        ])
        .await;
    assert_eq!(st, 431);
    // Users may not.
    let (st, _) = s
        .call(&a.keys, &[("command", "createVlanIpRange"), ("zoneid", &s.ids.zone)])
        .await;
    assert_eq!(st, 401);
    let (st, _) = s.call(&a.keys, &[("command", "listVlanIpRanges")]).await;
    assert_eq!(st, 401);
    assert_eq!(before, hash(&s));
}

async fn associate(s: &TestServer, keys: &(String, String), extra: &[(&str, &str)]) -> (u16, Value) {
    let mut ps = vec![("command", "associateIpAddress")];
    ps.extend_from_slice(extra);
    s.call(keys, &ps).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_ips() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let b = tenant(&s, "bob").await;
    add_range(&s).await;
    let zone = s.ids.zone.clone();
    let (st, v) = associate(&s, &a.keys, &[("zoneid", &zone)]).await;
    assert_eq!(st, 200, "{v}");
    let r = &v["associateipaddressresponse"];
    assert_eq!(keys_of(r), ["id", "jobid"]);
    let ip = r["id"].as_str().unwrap().to_string();
    let j = s.wait_job(&a.keys, r["jobid"].as_str().unwrap()).await;
    assert_eq!(j["jobstatus"], 1, "{j}");
    assert_eq!(j["jobinstancetype"], "IpAddress");
    let obj = &j["jobresult"]["ipaddress"];
    assert_eq!(obj["id"], ip.as_str());
    assert_eq!(obj["state"], "Allocated");
    assert_eq!(obj["account"], "alice");
    assert_eq!(obj["ipaddress"], "203.0.113.10");

    let (_, v) = s.call(&a.keys, &[("command", "listPublicIpAddresses")]).await;
    assert_eq!(v["listpublicipaddressesresponse"]["count"], 1);
    let (_, v) = s
        .call(
            &a.keys,
            &[("command", "listPublicIpAddresses"), ("ipaddress", "203.0.113.10")],
        )
        .await;
    assert_eq!(v["listpublicipaddressesresponse"]["count"], 1);
    // Free addresses are the root admin's view.
    let (_, v) = s
        .admin(&[
            ("command", "listPublicIpAddresses"),
            ("allocatedonly", "false"),
            ("listall", "true"),
        ])
        .await;
    assert_eq!(v["listpublicipaddressesresponse"]["count"], 3);

    let before = hash(&s);
    for ps in [
        vec![("command", "listPublicIpAddresses")],
        vec![("command", "listPublicIpAddresses"), ("id", &ip)],
        vec![("command", "listPublicIpAddresses"), ("allocatedonly", "false")],
    ] {
        let (_, v) = s.call(&b.keys, &ps).await;
        assert_eq!(v, json!({"listpublicipaddressesresponse": {}}), "{ps:?}");
    }
    let (st, _) = s
        .call(&b.keys, &[("command", "disassociateIpAddress"), ("id", &ip)])
        .await;
    assert_eq!(st, 431);
    let (st, _) = associate(&s, &b.keys, &[("zoneid", &zone), ("account", "alice")]).await;
    assert_eq!(st, 531);
    let (st, _) = associate(&s, &b.keys, &[]).await;
    assert_eq!(st, 431, "no zone and no network");
    assert_eq!(before, hash(&s));

    // Into a network: alice's own only.
    let (_, v) = create_network(&s, &a.keys, "anet", &[]).await;
    let net = v["createnetworkresponse"]["network"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = associate(&s, &b.keys, &[("networkid", &net)]).await;
    assert_eq!(st, 431);
    let (st, v) = associate(&s, &a.keys, &[("networkid", &net)]).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s
        .call(
            &a.keys,
            &[("command", "listPublicIpAddresses"), ("associatednetworkid", &net)],
        )
        .await;
    assert_eq!(v["listpublicipaddressesresponse"]["count"], 1);
    let (st, _) = associate(&s, &b.keys, &[("zoneid", &zone)]).await;
    assert_eq!(st, 200);
    // The range is used up: the core refuses, nothing changes.
    let before = hash(&s);
    let (st, v) = associate(&s, &a.keys, &[("zoneid", &zone)]).await;
    assert_eq!(st, 431, "{v}");
    assert_eq!(before, hash(&s));

    let (st, v) = s
        .call(&a.keys, &[("command", "disassociateIpAddress"), ("id", &ip)])
        .await;
    assert_eq!(st, 200, "{v}");
    let r = &v["disassociateipaddressresponse"];
    assert_eq!(keys_of(r), ["jobid"]);
    let j = s.wait_job(&a.keys, r["jobid"].as_str().unwrap()).await;
    assert_eq!(j["jobresult"], json!({"success": true}));
    let (_, v) = s
        .call(&a.keys, &[("command", "listPublicIpAddresses"), ("id", &ip)])
        .await;
    assert_eq!(v, json!({"listpublicipaddressesresponse": {}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_lists_are_empty() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    for cmd in [
        "listPortForwardingRules",
        "listIpForwardingRules",
        "listFirewallRules",
        "listLoadBalancerRules",
        "listSecurityGroups",
        "listAffinityGroups",
        "listSSHKeyPairs",
        "listTags",
        "listResourceDetails",
    ] {
        let (st, v) = s.call(&a.keys, &[("command", cmd), ("listall", "True")]).await;
        assert_eq!(st, 200, "{cmd}: {v}");
        assert_eq!(v, json!({ format!("{}response", cmd.to_lowercase()): {} }));
    }
}

/// Deploys without networkids, at once, for accounts with no network yet:
/// one default network each, not one per deploy (found by
/// tests/api_kill9.rs, 200 concurrent deploys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_share_one_default_network() {
    let s = std::sync::Arc::new(TestServer::start().await);
    for round in 0..8 {
        let keys = s
            .account(
                &format!("racer{round}"),
                None,
                stratus_core::inventory::AccountType::User,
            )
            .await;
        let deploys: Vec<_> = (0..16)
            .map(|i| {
                let (s, keys) = (s.clone(), keys.clone());
                tokio::spawn(async move { s.deploy(&keys, &[("name", &format!("racer-{i}"))]).await })
            })
            .collect();
        for d in deploys {
            let (st, v) = d.await.unwrap();
            assert_eq!(st, 200, "{v}");
        }
        let (_, v) = s.call(&keys, &[("command", "listNetworks")]).await;
        assert_eq!(v["listnetworksresponse"]["count"], 1, "round {round}: {v}");
    }
}
