//! The pipeline end to end over HTTP: envelopes, auth failures, jobs.

mod common;
use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_list_and_errors() {
    let s = TestServer::start().await;
    let (st, v) = s
        .admin(&[
            ("command", "queryAsyncJobResult"),
            ("jobid", "7d3d3d3d-0000-4000-8000-000000000000"),
        ])
        .await;
    assert_eq!(st, 431, "{v}");
    assert_eq!(v["queryasyncjobresultresponse"]["errorcode"], 431);
    let (st, v) = s.admin(&[("command", "queryAsyncJobResult")]).await;
    assert_eq!(st, 431);
    assert!(
        v["queryasyncjobresultresponse"]["errortext"]
            .as_str()
            .unwrap()
            .contains("missing parameter jobid")
    );
    let wrong = (s.admin.0.clone(), "not-the-secret".to_string());
    let (st, v) = s.call(&wrong, &[("command", "listAsyncJobs")]).await;
    assert_eq!(st, 401, "{v}");
    let (st, _) = s.admin(&[("command", "launchMissiles")]).await;
    assert_eq!(st, 401);
    let (st, v) = s.admin(&[("command", "listAsyncJobs")]).await;
    assert_eq!(st, 200);
    assert_eq!(v, serde_json::json!({"listasyncjobsresponse": {}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_login_needs_post_and_both_keys() {
    let s = TestServer::start().await;
    let (st, _, _) = s
        .raw(
            "GET",
            "command=login&username=admin&password=admin-password-1&response=json",
            "",
            &[],
        )
        .await;
    assert_eq!(st, 405);
    let (st, _, body) = s
        .raw(
            "POST",
            "",
            "command=login&username=admin&password=wrong&response=json",
            &[],
        )
        .await;
    assert_eq!(st, 531, "{body}");
    let (st, head, body) = s
        .raw(
            "POST",
            "",
            "command=login&username=admin&password=admin-password-1&response=json",
            &[],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let key = v["loginresponse"]["sessionkey"].as_str().unwrap().to_string();
    let jsession = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: JSESSIONID="))
        .map(|l| l.split(';').next().unwrap().to_string())
        .unwrap();
    let cookie = format!("JSESSIONID={jsession}; sessionkey={key}");
    let q = format!("command=listAsyncJobs&response=json&sessionkey={}", common::enc(&key));
    let (st, _, body) = s.raw("GET", &q, "", &[("Cookie", &cookie)]).await;
    assert_eq!(st, 200, "{body}");
    // The parameter alone (no cookie) is not enough.
    let (st, _, _) = s.raw("GET", &q, "", &[]).await;
    assert_eq!(st, 401);
    let (st, _, _) = s
        .raw(
            "GET",
            &format!("command=logout&response=json&sessionkey={}", common::enc(&key)),
            "",
            &[("Cookie", &cookie)],
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = s.raw("GET", &q, "", &[("Cookie", &cookie)]).await;
    assert_eq!(st, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_unless_json_is_asked_for() {
    let s = TestServer::start().await;
    let mut pairs = vec![
        ("command".to_string(), "listZones".to_string()),
        ("apiKey".to_string(), s.admin.0.clone()),
    ];
    let sig = stratus_api::sign::sign(&pairs, &s.admin.1);
    pairs.push(("signature".into(), sig));
    let (st, head, body) = s.raw("GET", &common::query(&pairs), "", &[]).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/xml; charset=utf-8"),
        "{head}"
    );
    assert!(
        body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><listzonesresponse cloud-stack-version="),
        "{body}"
    );
    assert!(body.contains("<count>1</count><zone><id>"), "{body}");
    assert!(body.contains("<name>z1</name>"), "{body}");
    // Errors in XML carry the same fields, and the HTTP status is the error code.
    pairs.retain(|(k, _)| k != "signature");
    pairs.push(("id".into(), "nope".into()));
    let sig = stratus_api::sign::sign(&pairs, &s.admin.1);
    pairs.push(("signature".into(), sig));
    let (st, head, body) = s.raw("GET", &common::query(&pairs), "", &[]).await;
    assert_eq!(st, 431, "{body}");
    assert!(body.contains("<errorcode>431</errorcode>"), "{body}");
    assert!(head.to_ascii_lowercase().contains("x-description:"), "{head}");
}
