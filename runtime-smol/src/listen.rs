//! The serving side: accept, TLS handshake, then bytes between the stream and a
//! [`ServerConnection`].

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;

use futures_rustls::TlsAcceptor;
use metrics_core::driver::{ACCEPT_ERROR_DELAY, Peer, ServerConnection, Service};
use smol::future::{self, FutureExt};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::{Task, Timer};

use crate::{Draining, RuntimeConfig, now, sleep_until, timeout, until, wall};

/// Bytes read from a client at once.
const READ_BUFFER: usize = 16 * 1024;

/// Accepts connections until `shutdown` resolves; returns the connection tasks.
pub(crate) async fn accept_until<S>(
    listener: TcpListener,
    config: &RuntimeConfig,
    service: S,
    draining: Draining,
    shutdown: impl Future<Output = ()>,
) -> Vec<Task<()>>
where
    S: Service + Clone + Send + 'static,
{
    let acceptor = TlsAcceptor::from(Arc::clone(&config.server_tls));
    let mut conns: Vec<Task<()>> = Vec::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = future::or(
            async {
                shutdown.as_mut().await;
                None
            },
            async { Some(listener.accept().await) },
        );
        let tcp = match accepted.await {
            None => return conns,
            Some(Ok((tcp, _))) => tcp,
            Some(Err(error)) => {
                tracing::warn!(%error, "accept failed");
                Timer::after(ACCEPT_ERROR_DELAY).await;
                continue;
            }
        };
        conns.retain(|conn| !conn.is_finished());
        if conns.len() >= config.max_connections {
            tracing::debug!("connection limit reached; closing a new connection");
            continue;
        }
        let conn = ServerConnection::new(config.server, service.clone(), now());
        let task = serve(tcp, acceptor.clone(), conn, draining.clone());
        // A panic ends only its connection (awaiting a panicked task would resume it).
        conns.push(smol::spawn(async move {
            let _ = AssertUnwindSafe(task).catch_unwind().await;
        }));
    }
}

/// What a connection waits for.
enum Event {
    Read(io::Result<usize>),
    Timeout,
    Wake,
    Draining,
}

/// Serves one connection until the driver wants it closed.
async fn serve<S: Service>(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    mut conn: ServerConnection<S>,
    draining: Draining,
) {
    let _ = tcp.set_nodelay(true);
    let Some(Ok(mut stream)) = until(conn.poll_timeout(), acceptor.accept(tcp)).await else {
        return;
    };
    let certificates = stream.get_ref().1.peer_certificates().unwrap_or_default();
    let certificates = certificates.iter().map(|c| c.as_ref().to_vec()).collect();
    conn.handle_handshake(now(), Peer { certificates });
    let mut watching = !draining.started();
    if !watching {
        conn.begin_shutdown(now());
    }
    let mut buf = vec![0; READ_BUFFER];
    let mut eof = false;
    loop {
        while let Some(bytes) = conn.poll_transmit(now(), wall()) {
            let write = async {
                stream.write_all(&bytes).await?;
                stream.flush().await
            };
            match until(conn.poll_timeout(), write).await {
                Some(Ok(())) => conn.handle_transmitted(now()),
                Some(Err(_)) => return,
                None => {
                    conn.handle_timeout(now());
                    return;
                }
            }
        }
        if conn.wants_close() {
            // Send close_notify and FIN, then read what the client still sends so that
            // closing does not reset the connection before it read the last response.
            let linger = async {
                stream.close().await?;
                while stream.read(&mut buf).await? > 0 {}
                io::Result::Ok(())
            };
            let _ = timeout(conn.linger(), linger).await;
            return;
        }
        let deadline = conn.poll_timeout();
        let drain = async {
            if watching {
                draining.wait().await;
                Event::Draining
            } else {
                future::pending().await
            }
        };
        let timer = async {
            sleep_until(deadline).await;
            Event::Timeout
        };
        let reading = !eof && conn.wants_read();
        // A request waiting for a review may be answered now.
        let wake = async {
            std::future::poll_fn(|cx| conn.poll_wake(cx)).await;
            Event::Wake
        };
        let read = async {
            if !reading {
                future::pending().await
            } else {
                Event::Read(stream.read(&mut buf).await)
            }
        };
        // `or` is biased to its first future: begin draining before reading more (so the
        // answer announces the close), and enforce deadlines on a flooding client.
        let event = future::or(drain, future::or(timer, future::or(wake, read))).await;
        match event {
            Event::Read(Ok(0)) => {
                eof = true;
                conn.feed_eof(now());
            }
            Event::Read(Ok(n)) => conn.feed(now(), &buf[..n]),
            Event::Read(Err(_)) => return,
            Event::Timeout => conn.handle_timeout(now()),
            Event::Wake => {}
            Event::Draining => {
                watching = false;
                conn.begin_shutdown(now());
            }
        }
    }
}
