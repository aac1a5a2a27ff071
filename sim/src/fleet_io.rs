//! What [`crate::fleet::SimFleet`] needs besides the agents: the link each
//! agent dials through (cut by a simulated partition) and the state file
//! that lets the simulated hosts outlive a restart of `stratus serve`.

use crate::world::World;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use stratus_agent::{Connector, Credentials, TokioConnector};
use stratus_core::ids::HostId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

type Tcp = <TokioConnector as Connector>::Conn;

/// Dials the management server over TCP unless the host is cut off: then
/// dialing fails and an open connection fails at its next read or write, as
/// a partition looks to the agent (the server sees the host fall silent).
#[derive(Clone, Debug)]
pub(crate) struct CutConnector {
    pub cut: Arc<AtomicBool>,
}

fn cut_off() -> io::Error {
    io::Error::new(io::ErrorKind::NetworkUnreachable, "simulated partition")
}

impl Connector for CutConnector {
    type Conn = CutStream;
    async fn connect(&self, addr: &str) -> io::Result<CutStream> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(cut_off());
        }
        let inner = TokioConnector.connect(addr).await?;
        Ok(CutStream {
            inner,
            cut: self.cut.clone(),
        })
    }
}

#[derive(Debug)]
pub(crate) struct CutStream {
    inner: Tcp,
    cut: Arc<AtomicBool>,
}

impl CutStream {
    fn check(&self) -> io::Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(cut_off())
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for CutStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        s.check()?;
        Pin::new(&mut s.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CutStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let s = self.get_mut();
        s.check()?;
        Pin::new(&mut s.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        s.check()?;
        Pin::new(&mut s.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        s.check()?;
        Pin::new(&mut s.inner).poll_shutdown(cx)
    }
}

/// One host's agent state that must survive a restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SavedAgent {
    /// Its per-host secret: without it the host would need a new token.
    pub credentials: Option<Credentials>,
    pub partitioned: bool,
}

/// The state file: JSON, written whole (temporary file, fsync, rename), mode 0600.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FleetFile {
    pub format: u32,
    pub world: World,
    pub agents: BTreeMap<HostId, SavedAgent>,
}

pub(crate) const FORMAT: u32 = 1;

impl FleetFile {
    /// `None` if there is no file yet.
    pub fn load(path: &Path) -> Result<Option<FleetFile>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let f: FleetFile = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a simulated fleet state file: {e}", path.display()))?;
        if f.format != FORMAT {
            return Err(format!(
                "{}: state file format {} (this build reads {FORMAT})",
                path.display(),
                f.format
            ));
        }
        Ok(Some(f))
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let bytes = serde_json::to_vec(self).map_err(|e| format!("cannot encode the fleet state: {e}"))?;
        crate::agent_world::write_atomic(path, &bytes, true).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Group commit of the state file: a call that changed the world waits for
/// a save that includes it (see [`crate::backend::Durability`]); waiting
/// wakes the saver at once, and one save answers every call it covers.
#[derive(Debug)]
pub(crate) struct SaveBarrier {
    pub wake: tokio::sync::Notify,
    saved: tokio::sync::watch::Sender<u64>,
}

impl SaveBarrier {
    pub fn new() -> SaveBarrier {
        SaveBarrier {
            wake: tokio::sync::Notify::new(),
            saved: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The world at `generation` is in the file.
    pub fn published(&self, generation: u64) {
        self.saved.send_if_modified(|s| {
            let newer = generation > *s;
            *s = (*s).max(generation);
            newer
        });
    }
}

impl crate::backend::Durability for SaveBarrier {
    fn saved(&self, generation: u64) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let mut rx = self.saved.subscribe();
            if *rx.borrow_and_update() >= generation {
                return;
            }
            self.wake.notify_one();
            // The sender lives as long as `self`.
            let _ = rx.wait_for(|s| *s >= generation).await;
        })
    }
}
