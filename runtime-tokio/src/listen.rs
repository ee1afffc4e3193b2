//! The serving side: accept, TLS handshake, then bytes between the stream and a
//! [`ServerConnection`].

use std::future::Future;
use std::sync::Arc;

use metrics_core::driver::{ACCEPT_ERROR_DELAY, Peer, ServerConnection, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::{Phase, RuntimeConfig, now, sleep_until, wall};

/// Bytes read from a client at once.
const READ_BUFFER: usize = 16 * 1024;

/// Accepts connections until `shutdown` resolves; returns the connection tasks.
pub(crate) async fn accept_until<S>(
    listener: TcpListener,
    config: &RuntimeConfig,
    service: S,
    phase: watch::Receiver<Phase>,
    shutdown: impl Future<Output = ()>,
) -> JoinSet<()>
where
    S: Service + Clone + Send + 'static,
{
    let acceptor = TlsAcceptor::from(Arc::clone(&config.server_tls));
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return conns,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_DELAY).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                    tracing::debug!("connection limit reached; closing a new connection");
                    continue;
                };
                let conn = ServerConnection::new(config.server, service.clone(), now());
                let task = serve(tcp, acceptor.clone(), conn, phase.clone(), permit);
                conns.spawn(task);
            }
        }
    }
}

/// Serves one connection until the driver wants it closed.
async fn serve<S: Service>(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    mut conn: ServerConnection<S>,
    mut phase: watch::Receiver<Phase>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::select! {
        result = acceptor.accept(tcp) => result,
        () = sleep_until(conn.poll_timeout()) => return,
    };
    let Ok(mut stream) = handshake else { return };
    let certificates = stream.get_ref().1.peer_certificates().unwrap_or_default();
    let certificates = certificates.iter().map(|c| c.as_ref().to_vec()).collect();
    conn.handle_handshake(now(), Peer { certificates });
    let mut draining = *phase.borrow_and_update() != Phase::Running;
    if draining {
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
            tokio::select! {
                result = write => match result {
                    Ok(()) => conn.handle_transmitted(now()),
                    Err(_) => return,
                },
                () = sleep_until(conn.poll_timeout()) => {
                    conn.handle_timeout(now());
                    return;
                }
            }
        }
        if conn.wants_close() {
            // Send close_notify and FIN, then read what the client still sends so that
            // closing does not reset the connection before it read the last response.
            let linger = async {
                stream.shutdown().await?;
                while stream.read(&mut buf).await? > 0 {}
                std::io::Result::Ok(())
            };
            let _ = tokio::time::timeout(conn.linger(), linger).await;
            return;
        }
        // Shutdown first, then timers, then reads: a request completing at the moment
        // shutdown begins must be answered with `Connection: close`, whatever the order
        // in which the events became ready.
        tokio::select! {
            biased;
            _ = phase.changed(), if !draining => {
                draining = true;
                conn.begin_shutdown(now());
            }
            () = sleep_until(conn.poll_timeout()) => conn.handle_timeout(now()),
            // A request waiting for a review may be answered now.
            () = std::future::poll_fn(|cx| conn.poll_wake(cx)) => {}
            read = stream.read(&mut buf), if !eof && conn.wants_read() => match read {
                Ok(0) => {
                    eof = true;
                    conn.feed_eof(now());
                }
                Ok(n) => conn.feed(now(), &buf[..n]),
                Err(_) => return,
            },
        }
    }
}
