//! Helpers for tests that run the `stratus` binary: child processes that die
//! with the test, free ports, and a client of the `stratus manage` control socket.
#![allow(dead_code)]

pub mod cs;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `stratus` binary cargo built for this test.
pub fn stratus() -> &'static str {
    env!("CARGO_BIN_EXE_stratus")
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `stratus <args>`, its stderr going to `dir/<name>.err`.
    pub fn start(dir: &Path, name: &str, args: &[String]) -> Proc {
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(stratus())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.into(),
            stderr,
        }
    }

    /// Starts another program (e.g. chromedriver), its stderr going to `dir/<name>.err`.
    pub fn start_program(dir: &Path, name: &str, program: &str, args: &[String]) -> Proc {
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Proc {
            child,
            name: name.into(),
            stderr,
        }
    }

    /// `kill -9`, and wait for it to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Panics (with its log) if the process exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A connection to the control socket.
pub struct Admin {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Admin {
    /// Connects, retrying until `within` has passed.
    pub fn connect(addr: &str, within: Duration) -> Option<Admin> {
        let until = Instant::now() + within;
        loop {
            if let Ok(s) = TcpStream::connect(addr) {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.set_nodelay(true).unwrap();
                return Some(Admin {
                    reader: BufReader::new(s.try_clone().unwrap()),
                    writer: s,
                });
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One request, one answer; an error if the connection broke.
    pub fn call(&mut self, req: &Value) -> std::io::Result<Value> {
        self.writer.write_all(format!("{req}\n").as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("the control socket closed"));
        }
        serde_json::from_str(&line).map_err(std::io::Error::other)
    }

    pub fn summary(&mut self) -> std::io::Result<Value> {
        self.call(&json!({ "summary": true }))
    }

    pub fn job_status(&mut self, job: &str) -> std::io::Result<Value> {
        self.call(&json!({ "job_status": job }))
    }

    /// Statuses of many jobs in one durable read, in order.
    pub fn job_statuses(&mut self, jobs: &[String]) -> std::io::Result<Vec<Value>> {
        let v = self.call(&json!({ "job_status": jobs }))?;
        match v["jobs"].as_array() {
            Some(list) => Ok(list.clone()),
            None => Err(std::io::Error::other(format!("unexpected answer {v}"))),
        }
    }
}

/// Waits until `ok` holds, checking every 50 ms, or panics after `within`.
pub fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `story` with a database URL in a fresh PostgreSQL schema of its own
/// (dropped afterwards), when `STRATUS_TEST_POSTGRES_URL` is set. Unset, the
/// test is skipped with a message, or fails when `STRATUS_CI` is set.
pub fn with_postgres_schema(test: &str, story: impl FnOnce(&str)) {
    let Ok(base) = std::env::var("STRATUS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRATUS_CI").is_none(),
            "STRATUS_CI is set but STRATUS_TEST_POSTGRES_URL is not"
        );
        eprintln!("postgres {test} skipped: STRATUS_TEST_POSTGRES_URL unset");
        return;
    };
    let schema = format!("t_{test}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = rt.block_on(sqlx::PgPool::connect(&base)).unwrap();
    let sql = |q: String| {
        rt.block_on(sqlx::query(sqlx::AssertSqlSafe(q)).execute(&admin))
            .unwrap()
    };
    sql(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    sql(format!("CREATE SCHEMA \"{schema}\""));
    let sep = if base.contains('?') { '&' } else { '?' };
    story(&format!("{base}{sep}options=-c%20search_path%3D{schema}"));
    sql(format!("DROP SCHEMA \"{schema}\" CASCADE"));
    rt.block_on(admin.close());
}
