//! registerTemplate for a real hypervisor downloads the image to the zone's secondary
//! storage: checksum verified, Ready per zone, and refused for internal addresses
//! unless `secstorage.allowed.internal.sites` allows them (checked on the resolved
//! address). The images come from a small HTTP server inside the test; the last test
//! uses the CI's guest template and NFS export when `.ci/kvm-setup.sh` ran.

mod common;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::TestServer;
use md5::Md5;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stratus_api::ApiConfig;
use stratus_api::secstorage::SecondaryMount;

const STORE_URL: &str = "nfs://192.0.2.20/export/secondary";
const TOP: &str = "registertemplateresponse";

/// A small valid-looking QCOW2 image: header with a 64 MiB virtual size, then filler.
fn image() -> Vec<u8> {
    let mut v = b"QFI\xfb".to_vec();
    v.extend_from_slice(&3u32.to_be_bytes());
    v.extend_from_slice(&[0; 16]);
    v.extend_from_slice(&(64u64 << 20).to_be_bytes());
    v.extend((0..300_000u32).map(|i| (i % 251) as u8));
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serves `/t.qcow2`, `/moved` (a redirect to it) and `/page.html` (not an image).
async fn image_server() -> SocketAddr {
    let app = axum::Router::new()
        .route("/t.qcow2", get(|| async { image() }))
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/t.qcow2")]).into_response() }),
        )
        .route("/page.html", get(|| async { "<html>not an image</html>".repeat(4) }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

async fn server(store_url: &str, dir: &Path) -> TestServer {
    let config = ApiConfig {
        secondary_mounts: vec![SecondaryMount {
            url: store_url.into(),
            dir: dir.to_path_buf(),
        }],
        ..ApiConfig::default()
    };
    let s = TestServer::start_with(config).await;
    let (st, v) = s
        .admin(&[
            ("command", "addImageStore"),
            ("provider", "NFS"),
            ("url", store_url),
            ("zoneid", &s.ids.zone),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
    s
}

async fn register(s: &TestServer, name: &str, url: &str, checksum: Option<&str>) -> (u16, Value) {
    let os = stratus_api::ostypes::id_of("Other Linux (64-bit)").to_string();
    let mut p = vec![
        ("command", "registerTemplate"),
        ("name", name),
        ("format", "QCOW2"),
        ("hypervisor", "KVM"),
        ("ostypeid", os.as_str()),
        ("url", url),
        ("zoneid", s.ids.zone.as_str()),
    ];
    if let Some(c) = checksum {
        p.push(("checksum", c));
    }
    s.admin(&p).await
}

async fn allow(s: &TestServer, cidrs: &str) {
    let (st, v) = s
        .admin(&[
            ("command", "updateConfiguration"),
            ("name", "secstorage.allowed.internal.sites"),
            ("value", cidrs),
        ])
        .await;
    assert_eq!(st, 200, "{v}");
}

/// Polls listTemplates until the zone's row is no longer downloading; returns it.
async fn settled(s: &TestServer, id: &str) -> Value {
    for _ in 0..300 {
        let (_, v) = s
            .admin(&[("command", "listTemplates"), ("templatefilter", "all"), ("id", id)])
            .await;
        let row = v["listtemplatesresponse"]["template"][0].clone();
        let status = row["status"].as_str().unwrap_or_default().to_string();
        if row["isready"] == Value::Bool(true) || !(status == "Downloading" || status.ends_with("Downloaded")) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("template {id} still downloading after 30 s");
}

fn stored(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("template/tmpl/{id}/{id}.qcow2"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_until_allowed_then_downloaded_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(STORE_URL, dir.path()).await;
    let web = image_server().await;
    let url = format!("http://{web}/t.qcow2");
    let before = s.state();
    // Refused by default, whether the URL names the address or a name resolving to it.
    for u in [url.clone(), format!("http://localhost:{}/t.qcow2", web.port())] {
        let (st, v) = register(&s, "refused", &u, None).await;
        assert_eq!(st, 431, "{u}: {v}");
        let text = v[TOP]["errortext"].as_str().unwrap();
        assert!(
            text.contains("internal address") && text.contains("secstorage.allowed.internal.sites"),
            "{text}"
        );
    }
    assert_eq!(s.state(), before, "a refusal changes nothing");
    let (st, _) = s
        .admin(&[
            ("command", "updateConfiguration"),
            ("name", "secstorage.allowed.internal.sites"),
            ("value", "127.0.0.0/33"),
        ])
        .await;
    assert_eq!(st, 431, "not a CIDR");

    allow(&s, "127.0.0.0/8").await;
    let img = image();
    let sha = format!("{{SHA-256}}{}", hex(&Sha256::digest(&img)));
    let (st, v) = register(&s, "tiny-kvm", &url, Some(&sha)).await;
    assert_eq!(st, 200, "{v}");
    let row = &v[TOP]["template"][0];
    assert_eq!(row["isready"], false, "not ready before the download: {v}");
    let id = row["id"].as_str().unwrap().to_string();
    let row = settled(&s, &id).await;
    assert_eq!(
        (row["isready"].clone(), row["status"].clone()),
        (Value::Bool(true), "Download Complete".into()),
        "{row}"
    );
    assert_eq!(row["size"], 64 << 20, "size is the image's virtual size");
    assert_eq!(row["physicalsize"], img.len(), "{row}");
    assert_eq!(
        std::fs::read(stored(dir.path(), &id)).unwrap(),
        img,
        "stored in CloudStack's layout"
    );
    // Deployable now.
    let (st, v) = s.deploy(&s.admin, &[("templateid", id.as_str())]).await;
    assert_ne!(st, 431, "the template is Ready: {v}");

    // Plain hex is MD5; a redirect is followed (and its target checked the same way).
    let md5 = hex(&Md5::digest(&img));
    let (st, v) = register(&s, "tiny-md5", &format!("http://{web}/moved"), Some(&md5)).await;
    assert_eq!(st, 200, "{v}");
    let id = v[TOP]["template"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&s, &id).await["status"], "Download Complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_downloads_show_why_and_are_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(STORE_URL, dir.path()).await;
    let web = image_server().await;
    allow(&s, "127.0.0.1/32").await;
    let cases = [
        (
            "bad-sum",
            format!("http://{web}/t.qcow2"),
            Some(format!("{{SHA-256}}{}", "0".repeat(64))),
            "checksum mismatch",
        ),
        ("missing", format!("http://{web}/nope.qcow2"), None, "HTTP 404"),
        ("html", format!("http://{web}/page.html"), None, "not a QCOW2 image"),
    ];
    for (name, url, sum, why) in cases {
        let (st, v) = register(&s, name, &url, sum.as_deref()).await;
        assert_eq!(st, 200, "{v}");
        let id = v[TOP]["template"][0]["id"].as_str().unwrap().to_string();
        let row = settled(&s, &id).await;
        assert_eq!(row["isready"], false, "{row}");
        assert!(row["status"].as_str().unwrap().contains(why), "{name}: {row}");
        assert!(!stored(dir.path(), &id).exists(), "nothing stored for {name}");
        let (st, _) = s.deploy(&s.admin, &[("templateid", id.as_str())]).await;
        assert_eq!(st, 431, "{name}: not deployable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let web = image_server().await;
    let url = format!("http://{web}/t.qcow2");
    // No image store in the zone.
    let bare = TestServer::start().await;
    let before = bare.state();
    let (st, v) = register(&bare, "t", &url, None).await;
    assert_eq!(st, 431, "{v}");
    assert!(
        v[TOP]["errortext"].as_str().unwrap().contains("no secondary storage"),
        "{v}"
    );
    assert_eq!(bare.state(), before);
    // An image store this server has not mounted.
    let s = server("nfs://192.0.2.99/other", dir.path()).await;
    let (st, _) = s
        .admin(&[
            ("command", "addImageStore"),
            ("provider", "NFS"),
            ("url", "nfs://192.0.2.21/unmounted"),
            ("zoneid", &s.ids.zone),
        ])
        .await;
    assert_eq!(st, 200);
    allow(&s, "127.0.0.0/8").await;
    let before = s.state();
    for bad in ["abc", "{SHA-256}1234", "{CRC32}12345678"] {
        let (st, v) = register(&s, "t", &url, Some(bad)).await;
        assert_eq!(st, 431, "checksum {bad}: {v}");
    }
    let (st, _) = register(&s, "t", "ftp://example.org/t.qcow2", None).await;
    assert_eq!(st, 431);
    assert_eq!(s.state(), before);
    // Simulator templates are still Ready at once, no download.
    let os = stratus_api::ostypes::id_of("Other Linux (64-bit)").to_string();
    let (st, v) = s
        .admin(&[
            ("command", "registerTemplate"),
            ("name", "sim"),
            ("format", "QCOW2"),
            ("hypervisor", "Simulator"),
            ("ostypeid", &os),
            ("url", "http://10.0.0.1/never-fetched.qcow2"),
            ("zoneid", &s.ids.zone),
        ])
        .await;
    assert_eq!(
        (st, v[TOP]["template"][0]["isready"].clone()),
        (200, Value::Bool(true)),
        "{v}"
    );
}

/// With the CI's KVM services (.ci/kvm-setup.sh): the guest template from its loopback
/// HTTP server lands on the NFS secondary export, readable by a host over NFS at
/// `<store url>/template/tmpl/<id>/<id>.qcow2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_template_lands_on_nfs_secondary_storage() {
    let Ok(url) = std::env::var("STRATUS_TEST_TEMPLATE_URL") else {
        assert!(
            std::env::var_os("STRATUS_CI").is_none(),
            "STRATUS_CI is set but STRATUS_TEST_TEMPLATE_URL is not (.ci/setup.d/30-kvm.sh)"
        );
        eprintln!("skipped: no STRATUS_TEST_TEMPLATE_URL (run .ci/kvm-setup.sh)");
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let store_url = format!(
        "nfs://{}{}",
        var("STRATUS_TEST_NFS_SERVER"),
        var("STRATUS_TEST_NFS_SECONDARY_EXPORT")
    );
    let dir = PathBuf::from(var("STRATUS_TEST_NFS_SECONDARY_DIR"));
    let s = server(&store_url, &dir).await;
    allow(&s, "127.0.0.0/8").await;
    let sum = format!("{{SHA-256}}{}", var("STRATUS_TEST_TEMPLATE_SHA256"));
    let name = format!("ci-guest-{}", std::process::id());
    let (st, v) = register(&s, &name, &url, Some(&sum)).await;
    assert_eq!(st, 200, "{v}");
    let id = v[TOP]["template"][0]["id"].as_str().unwrap().to_string();
    let row = settled(&s, &id).await;
    assert_eq!(row["status"], "Download Complete", "{row}");
    let nfs_url = format!("{store_url}/template/tmpl/{id}/{id}.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", &nfs_url])
        .output()
        .expect("qemu-img runs");
    let _ = std::fs::remove_dir_all(dir.join(format!("template/tmpl/{id}")));
    assert!(
        out.status.success(),
        "qemu-img info {nfs_url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(
        info["virtual-size"], row["size"],
        "listTemplates' size is the image's virtual size"
    );
}
