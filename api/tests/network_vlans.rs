//! Guest VLANs over HTTP: createZone `vlan` (the guest range), createNetwork
//! taking the lowest free tag or a root admin's explicit `vlan`, listNetworks
//! and listZones showing them; bad input is refused and changes nothing.

mod common;
#[path = "common/tenants.rs"]
mod tenants;

use common::TestServer;
use serde_json::Value;
use stratus_api::cmds::network::DEFAULT_OFFERING_ID;
use tenants::*;

async fn zone(s: &TestServer, name: &str, vlan: &str) -> (u16, Value) {
    s.admin(&[
        ("command", "createZone"),
        ("name", name),
        ("networktype", "Advanced"),
        ("dns1", "8.8.8.8"),
        ("internaldns1", "10.0.0.2"),
        ("guestcidraddress", "10.60.0.0/16"),
        ("vlan", vlan),
    ])
    .await
}

async fn network(
    s: &TestServer,
    keys: &(String, String),
    zone: &str,
    name: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut ps = vec![
        ("command", "createNetwork"),
        ("name", name),
        ("networkofferingid", DEFAULT_OFFERING_ID),
        ("zoneid", zone),
    ];
    ps.extend_from_slice(extra);
    s.call(keys, &ps).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_networks_take_their_tags_from_the_zone_range() {
    let s = TestServer::start().await;
    let alice = tenant(&s, "alice").await;

    for bad in ["abc", "0-5", "200-100", "4000-4095"] {
        let before = hash(&s);
        let (st, v) = zone(&s, "bad", bad).await;
        assert_eq!(st, 431, "vlan={bad}: {v}");
        assert_eq!(hash(&s), before, "vlan={bad} changed something");
    }
    let (st, v) = zone(&s, "tagged", "700-701").await;
    assert_eq!(st, 200, "{v}");
    let z = v["createzoneresponse"]["zone"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["createzoneresponse"]["zone"]["vlan"], "700-701");

    let (st, v) = network(&s, &alice.keys, &z, "a", &[]).await;
    assert_eq!(st, 200, "{v}");
    let a = &v["createnetworkresponse"]["network"];
    assert_eq!(
        (a["vlan"].as_str(), a["broadcasturi"].as_str()),
        (Some("700"), Some("vlan://700"))
    );
    // A tenant cannot choose a tag; a root admin can, once per zone.
    let (st, v) = network(&s, &alice.keys, &z, "mine", &[("vlan", "900")]).await;
    assert_eq!(st, 531, "{v}");
    let (st, v) = network(
        &s,
        &s.admin,
        &z,
        "b",
        &[("vlan", "701"), ("account", "alice"), ("domainid", &alice.domain_id)],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let before = hash(&s);
    let (st, v) = network(&s, &alice.keys, &z, "c", &[]).await;
    assert_eq!(st, 431, "the range is used up: {v}");
    assert!(v.to_string().contains("no free VLAN"), "{v}");
    let (st, v) = network(
        &s,
        &s.admin,
        &z,
        "d",
        &[("vlan", "701"), ("account", "alice"), ("domainid", &alice.domain_id)],
    )
    .await;
    assert_eq!(st, 431, "701 is taken: {v}");
    assert_eq!(hash(&s), before, "refusals change nothing");

    let (_, v) = s
        .call(&alice.keys, &[("command", "listNetworks"), ("zoneid", &z)])
        .await;
    let mut tags: Vec<&str> = v["listnetworksresponse"]["network"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["vlan"].as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["700", "701"]);
}
