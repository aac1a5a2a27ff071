//! Host commands (`qemu-img`, `ovs-vsctl`, `nfs-cp`, `curl`, `ip`) with a
//! timeout, their failures typed as driver errors.

use std::process::Stdio;
use std::time::Duration;
use stratus_wire::DriverError;
use tokio::process::Command;

/// Runs `program args…`; its stdout on success. A missing program or a
/// non-zero exit is `Refused` (it did not happen, or undid itself); running
/// past `timeout` is `InDoubt` (it was killed, it may have happened).
pub async fn run(program: &str, args: &[&str], timeout: Duration) -> Result<String, DriverError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| DriverError::refused(format!("{program}: cannot run: {e}")))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(DriverError::in_doubt(format!(
            "{program} {}: no answer within {} s",
            args.join(" "),
            timeout.as_secs()
        ))),
        Ok(Err(e)) => Err(DriverError::refused(format!("{program}: {e}"))),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(Ok(out)) => Err(DriverError::refused(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}
