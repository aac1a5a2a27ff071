//! Real CloudStack clients against a running `stratus serve`: the `cs` client
//! (library and CLI) and apache-libcloud, from PyPI, in the Python that
//! `.ci/run` prepares (`STRATUS_TEST_PYTHON`). Run on SQLite, and on
//! PostgreSQL when `STRATUS_TEST_POSTGRES_URL` is set.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Proc, free_port, wait_until};

/// The Python with `cs` and `libcloud`; None (and the test is skipped) outside
/// CI, unless STRATUS_CI is set, when a missing client is a failure.
fn python() -> Option<String> {
    match std::env::var("STRATUS_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("STRATUS_CI").is_some() => {
            panic!("STRATUS_CI is set but STRATUS_TEST_PYTHON is not")
        }
        Err(_) => {
            eprintln!("client tests skipped: STRATUS_TEST_PYTHON unset (bash .ci/run sets it)");
            None
        }
    }
}

fn run_py(py: &str, script: &str, envs: &[(&str, String)]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = Command::new(py)
        .arg(&path)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    eprintln!("{text}");
}

fn serve(dir: &Path, db: &str, port: u16, password: &str) -> Proc {
    let args = [
        "serve".to_string(),
        "--db".into(),
        db.into(),
        "--port".into(),
        port.to_string(),
        "--admin-password".into(),
        password.into(),
        "--latency".into(),
        "5-30".into(),
    ];
    let mut p = Proc::start(dir, "serve", &args);
    wait_until("the API to listen", Duration::from_secs(60), || {
        p.assert_alive();
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    p
}

fn clients_against(db: &str) {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let password = "ci-admin-password-1";
    let mut server = serve(dir.path(), db, port, password);
    let url = format!("http://127.0.0.1:{port}/client/api");
    let keys = dir.path().join("alice.json");
    let envs = [
        ("STRATUS_URL", url.clone()),
        ("STRATUS_ADMIN_PASSWORD", password.to_string()),
        ("STRATUS_KEYS_OUT", keys.display().to_string()),
    ];
    run_py(&py, "cs_flow.py", &envs);
    let k: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    let envs = [
        ("STRATUS_URL", url),
        ("STRATUS_KEY", k["key"].as_str().unwrap().to_string()),
        ("STRATUS_SECRET", k["secret"].as_str().unwrap().to_string()),
    ];
    run_py(&py, "libcloud_flow.py", &envs);
    server.assert_alive();
}

#[test]
fn cs_and_libcloud_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("api.db").display());
    clients_against(&db);
}

#[test]
fn cs_and_libcloud_on_postgres() {
    support::with_postgres_schema("api_clients", clients_against);
}
