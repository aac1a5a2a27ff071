//! Domains, accounts, users and keys over HTTP: envelopes, refusals, user
//! and domain admin boundaries.

mod common;
#[path = "common/tenants.rs"]
mod tenants;

use common::TestServer;
use serde_json::{Value, json};
use tenants::*;

fn users_of(v: &Value) -> Vec<Value> {
    v["listusersresponse"]["user"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_counts() {
    let s = TestServer::start().await;
    let (st, v) = s
        .admin(&[
            ("command", "createAccount"),
            ("accounttype", "0"),
            ("username", "alice"),
            ("password", "pass-word-1"),
            ("email", "a@example.com"),
            ("firstname", "Alice"),
            ("lastname", "Liddell"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let acc = &v["createaccountresponse"]["account"];
    assert_eq!(acc["name"], "alice", "account defaults to the username");
    assert_eq!(acc["accounttype"], 0);
    assert_eq!(acc["domain"], "ROOT");
    assert_eq!(acc["vmtotal"], 0);
    assert_eq!(acc["user"][0]["username"], "alice");
    assert!(acc["user"][0].get("secretkey").is_none());
    let user = acc["user"][0]["id"].as_str().unwrap().to_string();
    let (_, k) = s.admin(&[("command", "registerUserKeys"), ("id", &user)]).await;
    let keys = &k["registeruserkeysresponse"]["userkeys"];
    let a = (
        keys["apikey"].as_str().unwrap().to_string(),
        keys["secretkey"].as_str().unwrap().to_string(),
    );
    let b = tenant(&s, "bob").await;

    let (_, v) = s.admin(&[("command", "listAccounts")]).await;
    let names: Vec<&str> = v["listaccountsresponse"]["account"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    let (_, v) = s.call(&a, &[("command", "listAccounts")]).await;
    assert_eq!(v["listaccountsresponse"]["count"], 1);
    assert_eq!(v["listaccountsresponse"]["account"][0]["name"], "alice");
    let alice_id = v["listaccountsresponse"]["account"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = s.call(&b.keys, &[("command", "listAccounts"), ("id", &alice_id)]).await;
    assert_eq!(v, json!({"listaccountsresponse": {}}));

    let alice = Tenant {
        keys: a.clone(),
        user: user.clone(),
        account: "alice".into(),
        account_id: alice_id.clone(),
        domain_id: b.domain_id.clone(),
    };
    stopped_vm(&s, &alice, "vm1").await;
    let (_, v) = s.admin(&[("command", "listAccounts"), ("name", "alice")]).await;
    let acc = &v["listaccountsresponse"]["account"][0];
    assert_eq!(acc["vmtotal"], 1);
    assert_eq!(acc["vmstopped"], 1);
    assert_eq!(acc["vmrunning"], 0);
    assert_eq!(acc["volumetotal"], 1);

    // A second user of alice's account; alice sees her own key only.
    let (st, v) = s
        .admin(&[
            ("command", "createUser"),
            ("account", "alice"),
            ("username", "alice2"),
            ("password", "pass-word-2"),
            ("email", "a2@example.com"),
            ("firstname", "A"),
            ("lastname", "Two"),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    let user2 = v["createuserresponse"]["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["createuserresponse"]["user"]["account"], "alice");
    s.admin(&[("command", "registerUserKeys"), ("id", &user2)]).await;
    let (_, v) = s.call(&a, &[("command", "listUsers")]).await;
    let users = users_of(&v);
    assert_eq!(users.len(), 2);
    for u in &users {
        assert!(u.get("secretkey").is_none(), "{u}");
        let own = u["id"] == user.as_str();
        assert_eq!(u.get("apikey").is_some(), own, "{u}");
    }
    let (_, v) = s.admin(&[("command", "listUsers"), ("listall", "true")]).await;
    for u in users_of(&v) {
        assert!(u.get("secretkey").is_none());
        if u["id"] == user2.as_str() {
            assert!(u.get("apikey").is_some(), "admins see keys");
        }
    }
    // Marvin's bootstrap query.
    let (_, v) = s.admin(&[("command", "listUsers"), ("account", "admin")]).await;
    assert_eq!(users_of(&v).len(), 1);
    assert_eq!(users_of(&v)[0]["username"], "admin");

    let (_, v) = s.call(&b.keys, &[("command", "listUsers"), ("id", &user)]).await;
    assert_eq!(v, json!({"listusersresponse": {}}));
    let (_, v) = s.call(&b.keys, &[("command", "listUsers"), ("listall", "true")]).await;
    assert_eq!(users_of(&v).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let b = tenant(&s, "bob").await;
    let (st, v) = s.call(&a.keys, &[("command", "getUserKeys"), ("id", &a.user)]).await;
    assert_eq!(st, 200);
    let k = &v["getuserkeysresponse"]["userkeys"];
    assert_eq!(k["apikey"], a.keys.0.as_str());
    assert_eq!(k["secretkey"], a.keys.1.as_str());

    let before = hash(&s);
    for ps in [
        vec![("command", "getUserKeys"), ("id", &a.user)],
        vec![("command", "registerUserKeys"), ("id", &a.user)],
    ] {
        let (st, v) = s.call(&b.keys, &ps).await;
        assert_eq!(st, 431, "{ps:?}: {v}");
    }
    // Nor may a user touch another user of its own account.
    let (_, v) = s
        .admin(&[
            ("command", "createUser"),
            ("account", "alice"),
            ("username", "alice2"),
            ("password", "pass-word-2"),
            ("email", "a2@example.com"),
            ("firstname", "A"),
            ("lastname", "Two"),
        ])
        .await;
    let user2 = v["createuserresponse"]["user"]["id"].as_str().unwrap().to_string();
    let before2 = hash(&s);
    assert_ne!(before, before2);
    let (st, _) = s
        .call(&a.keys, &[("command", "registerUserKeys"), ("id", &user2)])
        .await;
    assert_eq!(st, 431);
    assert_eq!(before2, hash(&s));

    // Re-registering replaces the pair: the old one stops working.
    let (st, v) = s
        .call(&a.keys, &[("command", "registerUserKeys"), ("id", &a.user)])
        .await;
    assert_eq!(st, 200);
    let k = &v["registeruserkeysresponse"]["userkeys"];
    let fresh = (
        k["apikey"].as_str().unwrap().to_string(),
        k["secretkey"].as_str().unwrap().to_string(),
    );
    let (st, _) = s.call(&a.keys, &[("command", "listVolumes")]).await;
    assert_eq!(st, 401);
    let (st, _) = s.call(&fresh, &[("command", "listVolumes")]).await;
    assert_eq!(st, 200);
    let (_, v) = s.admin(&[("command", "getUserKeys"), ("id", &a.user)]).await;
    assert_eq!(v["getuserkeysresponse"]["userkeys"]["apikey"], fresh.0.as_str());
    // No keys yet: an empty userkeys object.
    let (_, v) = s.admin(&[("command", "getUserKeys"), ("id", &user2)]).await;
    assert_eq!(v, json!({"getuserkeysresponse": {"userkeys": {}}}));

    // The audit trail has the registrations.
    let (_, v) = s
        .admin(&[
            ("command", "listEvents"),
            ("type", "REGISTER.USER.KEY"),
            ("listall", "true"),
        ])
        .await;
    assert!(v["listeventsresponse"]["count"].as_i64().unwrap() >= 3, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_administer_and_bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let a = tenant(&s, "alice").await;
    let before = hash(&s);
    for cmd in ["createAccount", "createUser", "createDomain", "listDomains"] {
        let (st, v) = s.call(&a.keys, &[("command", cmd), ("name", "x")]).await;
        assert_eq!(st, 401, "{cmd}: {v}");
    }
    let base = [
        ("command", "createAccount"),
        ("password", "pw-123456"),
        ("email", "e@example.com"),
        ("firstname", "F"),
        ("lastname", "L"),
    ];
    for (extra, text) in [
        (vec![("accounttype", "0")], "missing parameter username"),
        (vec![("username", "u1")], "missing parameter accounttype"),
        (vec![("username", "u1"), ("accounttype", "7")], "Invalid account type"),
        (vec![("username", "u1"), ("roletype", "Wizard")], "Invalid role type"),
        (vec![("username", "u1"), ("accounttype", "x")], "accounttype"),
        (
            vec![
                ("username", "u1"),
                ("accounttype", "0"),
                ("domainid", "6b4d5c3e-0000-4000-8000-000000000001"),
            ],
            "Unable to find domain",
        ),
        // The core's refusal: the username is taken in ROOT.
        (
            vec![("username", "alice"), ("accounttype", "0"), ("account", "other")],
            "already exists",
        ),
    ] {
        let mut ps = base.to_vec();
        ps.extend_from_slice(&extra);
        let (st, v) = s.admin(&ps).await;
        assert_eq!(st, 431, "{extra:?}: {v}");
        let et = v["createaccountresponse"]["errortext"].as_str().unwrap();
        assert!(et.contains(text), "{extra:?}: {et}");
    }
    let (st, _) = s
        .admin(&[
            ("command", "createUser"),
            ("account", "nobody"),
            ("username", "x"),
            ("password", "p"),
            ("email", "e"),
            ("firstname", "f"),
            ("lastname", "l"),
        ])
        .await;
    assert_eq!(st, 431);
    assert_eq!(before, hash(&s));
    // roletype works in place of accounttype.
    let mut ps = base.to_vec();
    ps.extend_from_slice(&[("username", "dadmin"), ("roletype", "DomainAdmin")]);
    let (st, v) = s.admin(&ps).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["createaccountresponse"]["account"]["accounttype"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_admins_manage_their_subtree_only() {
    let s = TestServer::start().await;
    let alice = tenant(&s, "alice").await;
    let (st, v) = s.admin(&[("command", "createDomain"), ("name", "sales")]).await;
    assert_eq!(st, 200, "{v}");
    let d = &v["createdomainresponse"]["domain"];
    assert_eq!(d["path"], "ROOT/sales");
    assert_eq!(d["level"], 1);
    assert_eq!(d["parentdomainname"], "ROOT");
    let sales = d["id"].as_str().unwrap().to_string();
    let (_, v) = s
        .admin(&[("command", "createDomain"), ("name", "eu"), ("parentdomainid", &sales)])
        .await;
    let eu = v["createdomainresponse"]["domain"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["createdomainresponse"]["domain"]["level"], 2);
    let (_, v) = s.admin(&[("command", "listDomains")]).await;
    assert_eq!(v["listdomainsresponse"]["count"], 3);
    let (_, v) = s.admin(&[("command", "listDomains"), ("id", &sales)]).await;
    assert_eq!(v["listdomainsresponse"]["domain"][0]["haschild"], true);

    let admin = s.admin.clone();
    let dadmin = tenant_by(&s, &admin, "dadmin", &[("accounttype", "2"), ("domainid", &sales)])
        .await
        .unwrap();
    let k = &dadmin.keys;
    // Inside the subtree: fine, with or without domainid.
    tenant_by(&s, k, "seller", &[]).await.unwrap();
    let euro = tenant_by(&s, k, "euro", &[("domainid", &eu)]).await.unwrap();
    let (st, v) = s
        .call(
            k,
            &[
                ("command", "createDomain"),
                ("name", "apac"),
                ("parentdomainid", &sales),
            ],
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let before = hash(&s);
    let root = alice.domain_id.clone();
    for (extra, code) in [
        (vec![("domainid", root.as_str())], 531),
        (vec![("accounttype", "1")], 531),
    ] {
        let e = tenant_by(&s, k, "outsider", &extra).await.err().unwrap();
        assert_eq!(e.0, code, "{extra:?}: {}", e.1);
    }
    let (st, _) = s
        .call(
            k,
            &[("command", "createDomain"), ("name", "x"), ("parentdomainid", &root)],
        )
        .await;
    assert_eq!(st, 531);
    for ps in [
        vec![("command", "registerUserKeys"), ("id", alice.user.as_str())],
        vec![("command", "getUserKeys"), ("id", alice.user.as_str())],
    ] {
        let (st, _) = s.call(k, &ps).await;
        assert_eq!(st, 431, "{ps:?}");
    }
    let (st, _) = s
        .call(
            k,
            &[
                ("command", "createUser"),
                ("account", "admin"),
                ("domainid", &root),
                ("username", "mole"),
                ("password", "p"),
                ("email", "e"),
                ("firstname", "f"),
                ("lastname", "l"),
            ],
        )
        .await;
    assert_eq!(st, 531);
    assert_eq!(before, hash(&s));

    // Its lists stop at the subtree.
    let (_, v) = s.call(k, &[("command", "listDomains")]).await;
    assert_eq!(v["listdomainsresponse"]["count"], 1);
    let (_, v) = s.call(k, &[("command", "listDomains"), ("listall", "true")]).await;
    assert_eq!(v["listdomainsresponse"]["count"], 3, "sales, eu, apac: {v}");
    let (_, v) = s.call(k, &[("command", "listAccounts"), ("listall", "true")]).await;
    let names: Vec<&str> = v["listaccountsresponse"]["account"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dadmin", "seller", "euro"]);
    let (_, v) = s.call(k, &[("command", "listUsers"), ("listall", "true")]).await;
    assert_eq!(users_of(&v).len(), 3);
    let (_, v) = s.call(k, &[("command", "listUsers"), ("id", &alice.user)]).await;
    assert_eq!(v, json!({"listusersresponse": {}}));
    let (st, _) = s.call(k, &[("command", "listAccounts"), ("domainid", &root)]).await;
    assert_eq!(st, 531);
    // And it manages keys inside it.
    let (st, v) = s.call(k, &[("command", "getUserKeys"), ("id", &euro.user)]).await;
    assert_eq!(st, 200);
    assert_eq!(v["getuserkeysresponse"]["userkeys"]["apikey"], euro.keys.0.as_str());
}
