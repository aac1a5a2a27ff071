//! A restart on the same Store keeps users, keys, jobs and the inventory;
//! an old session gets 401 (sessions live in memory), never a 500.

mod common;
use common::{TestServer, enc, gateway_at, small_cloud};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_keys_and_jobs_and_refuses_old_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("restart.db").display());
    let (cloud, ids) = small_cloud();
    let s = TestServer::on(gateway_at(cloud, &url).await, ids.clone()).await;
    let (st, _, body) = s
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
    let vm = s.stopped_vm(&s.admin.clone(), "survivor").await;
    let (_, jobs) = s.admin(&[("command", "listAsyncJobs")]).await;
    let job = jobs["listasyncjobsresponse"]["asyncjobs"][0]["jobid"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = s.admin.clone();
    s.api.gw.halt();
    drop(s);

    let (cloud, _) = small_cloud();
    let s = TestServer::on(gateway_at(cloud, &url).await, ids).await;
    assert_eq!(s.admin, keys, "the admin's keys are the recovered ones");
    let (st, v) = s.admin(&[("command", "queryAsyncJobResult"), ("jobid", &job)]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["queryasyncjobresultresponse"]["jobstatus"], 1);
    let (_, v) = s.admin(&[("command", "listVirtualMachines"), ("id", &vm)]).await;
    assert_eq!(
        v["listvirtualmachinesresponse"]["virtualmachine"][0]["name"],
        "survivor"
    );
    let cookie = format!("sessionkey={key}");
    let q = format!("command=listZones&response=json&sessionkey={}", enc(&key));
    let (st, _, _) = s.raw("GET", &q, "", &[("Cookie", &cookie)]).await;
    assert_eq!(st, 401, "an old session is refused cleanly after a restart");
    // Logging in again works with the same password.
    let (st, _, _) = s
        .raw(
            "POST",
            "",
            "command=login&username=admin&password=admin-password-1&response=json",
            &[],
        )
        .await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    let s = TestServer::start().await;
    s.admin(&[("command", "listZones")]).await;
    s.admin(&[("command", "listZones"), ("id", "bad")]).await;
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("stratus_api_requests_total{command=\"listZones\",status=\"200\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("stratus_api_requests_total{command=\"listZones\",status=\"431\"} 1"),
        "{out}"
    );
    assert!(out.contains("# TYPE stratus_job_duration_seconds histogram"));
    assert!(out.contains("stratus_capacity{zone=\"z1\""), "{out}");
}
