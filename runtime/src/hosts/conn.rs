//! One agent connection: TLS, authentication (an enrollment's credentials are
//! durable before the agent hears it is enrolled), then messages until it ends.

use super::Shared;
use super::creds::{TokenEntry, save_host, save_token};
use std::sync::Arc;
use std::time::Duration;
use stratus_link::net::{FrameError, LineReader, Stream};
use stratus_wire::protocol::{AgentMsg, GREETING_VERSION, ServerMsg, decode, encode};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

/// Refuses a connection before authentication (a greeting-version line).
async fn write_error<W: AsyncWrite + Unpin>(w: &mut W, message: String) {
    let bytes = encode(GREETING_VERSION, &ServerMsg::Error { message });
    let _ = timeout(Duration::from_secs(5), async {
        w.write_all(&bytes).await?;
        w.flush().await?;
        w.shutdown().await
    })
    .await;
}

/// Writes one connection's messages: the greeting's answer in the greeting
/// version, everything else in the negotiated `version`.
async fn writer<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<ServerMsg>,
    limit: Duration,
    version: u32,
) {
    while let Some(msg) = rx.recv().await {
        let v = if msg.is_greeting() { GREETING_VERSION } else { version };
        let bytes = encode(v, &msg);
        let ok = timeout(limit, async {
            w.write_all(&bytes).await?;
            w.flush().await
        })
        .await;
        if !matches!(ok, Ok(Ok(()))) {
            return;
        }
    }
    let _ = timeout(limit, w.shutdown()).await;
}

pub(super) async fn connection<S: Stream>(shared: Arc<Shared>, sock: S) {
    let cfg = &shared.config;
    let Ok(Ok(tls)) = timeout(cfg.handshake_timeout, shared.ca.acceptor().accept(sock)).await else {
        return;
    };
    let (r, mut w) = tokio::io::split(tls);
    let mut reader = LineReader::new(r);
    let first = match timeout(cfg.handshake_timeout, reader.next_line()).await {
        Ok(Ok(Some(line))) => decode::<AgentMsg>(&line, GREETING_VERSION).and_then(|m| m.validate().map(|()| m)),
        Ok(Err(FrameError::Protocol(e))) => Err(e),
        _ => return,
    };
    let msg = match first {
        Ok(m) => m,
        Err(e) => {
            shared.lock().stats.malformed += 1;
            return write_error(&mut w, e.to_string()).await;
        }
    };
    let admitted = shared.lock().admit(msg, &cfg.secrets);
    let admitted = match admitted {
        Ok(a) => a,
        Err(why) => return write_error(&mut w, why).await,
    };
    if let (Some(store), Some((hash, auth))) = (&shared.store, &admitted.enrolled) {
        // The agent keeps its secret only if it hears of it: store it first.
        let host = admitted.host;
        let saved = match save_host(store, host, auth).await {
            Ok(()) => save_token(store, hash, &TokenEntry { host, used: true }).await,
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            let why = shared
                .lock()
                .unadmit(hash, format!("the enrollment could not be recorded: {e}"));
            return write_error(&mut w, why).await;
        }
    }
    let (host, version) = (admitted.host, admitted.version);
    let (tx, rx) = mpsc::unbounded_channel();
    let (kill, mut killed) = oneshot::channel();
    let enrolled_facts = admitted.enrolled.as_ref().map(|(_, auth)| auth.facts.clone());
    let conn = {
        let mut st = shared.lock();
        let conn = st.register(admitted, tx.clone(), kill);
        if let Some(facts) = &enrolled_facts {
            super::facts::adopt(&mut st, host, facts);
        }
        conn
    };
    let dead = Duration::from_millis(shared.lock().ping_ms() * u64::from(cfg.dead_after.max(1)));
    shared.spawn(writer(w, rx, dead, version));
    loop {
        let line = tokio::select! {
            biased;
            _ = &mut killed => break, // replaced by a newer connection
            r = timeout(dead, reader.next_line()) => r,
        };
        match line {
            Ok(Ok(Some(line))) => match decode::<AgentMsg>(&line, version).and_then(|m| m.validate().map(|()| m)) {
                Ok(msg) => shared.lock().on_agent(host, conn, msg),
                Err(e) => {
                    shared.lock().stats.malformed += 1;
                    let _ = tx.send(ServerMsg::Error { message: e.to_string() });
                }
            },
            Ok(Err(FrameError::Protocol(e))) => {
                shared.lock().stats.malformed += 1;
                let _ = tx.send(ServerMsg::Error { message: e.to_string() });
                break; // framing is lost
            }
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => break, // silent for too long
        }
    }
    shared.lock().closed(host, conn);
}
