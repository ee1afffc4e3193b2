//! Tokio adapter: TCP sockets, TLS streams (tokio-rustls), timers and tasks driving
//! `metrics-core`. Everything else (HTTP, timeouts, pooling, what to request and how to
//! answer) is in [`metrics_core::driver`]; this crate only moves bytes and sleeps.
//!
//! ```text
//!  listener ─accept─▶ task per connection: TLS handshake, ServerConnection, Service
//!  engine task: EngineDriver ─Command::Start─▶ task per request: connect/TLS, Exchange
//!                            ◀── Report ─────┘ (completions, pooled connection back)
//!  shutdown future ─▶ stop accepting, Engine::begin_shutdown, drain connections within
//!                     the grace period, stop the engine task, return
//! ```

mod conn;
mod driver;
mod listen;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics_core::driver::{
    ClientConfig, Completion, Delegation, EngineDriver, Exchange, Report, ServerConfig, Service,
};
use metrics_core::engine::Engine;
use metrics_core::time::{Instant, Timestamp};
use rustls_pki_types::ServerName;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How outgoing connections to one kind of peer are made.
#[derive(Debug, Clone)]
pub enum ClientTransport {
    /// TLS with `config` (ALPN `http/1.1`); `server_name` is the name to verify, or
    /// `None` to verify the host connected to (kubelets: their address).
    Tls {
        /// Roots, client certificate, verification (built by the server crate).
        config: Arc<rustls::ClientConfig>,
        /// Name to verify instead of the host.
        server_name: Option<ServerName<'static>>,
    },
    /// Plain HTTP (`--deprecated-kubelet-completely-insecure`).
    Plain,
}

/// Everything [`run`] needs besides the engine and the API service.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Bind address and `--secure-port`.
    pub listen: SocketAddr,
    /// The serving certificate, ALPN `http/1.1`, TLS 1.2+, client certificates requested
    /// but optional.
    pub server_tls: Arc<rustls::ServerConfig>,
    /// How kubelets are reached.
    pub kubelet_transport: ClientTransport,
    /// How the apiserver is reached (its address is in `client`).
    pub apiserver_transport: ClientTransport,
    /// How the apiserver reviewing tokens is reached (`client.authentication`).
    pub authentication_transport: ClientTransport,
    /// How the apiserver reviewing access is reached (`client.authorization`).
    pub authorization_transport: ClientTransport,
    /// Delegated authentication and authorization shared with the service: its reviews
    /// are sent by the engine task.
    pub delegation: Option<Arc<Delegation>>,
    /// Serving limits and timeouts (handshake, header read, idle).
    pub server: ServerConfig,
    /// Outgoing requests: apiserver address, tokens, user agent, limits, pooling.
    pub client: ClientConfig,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
}

/// Binds `config.listen` and serves until `shutdown` resolves; see [`run_on`].
pub async fn run<S>(
    config: RuntimeConfig,
    engine: Engine,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: Service + Clone + Send + 'static,
{
    let listener = TcpListener::bind(config.listen).await?;
    run_on(listener, config, engine, service, shutdown).await
}

/// Serves the API on `listener` with `service` (one clone per connection; the server
/// passes a [`metrics_core::driver::ApiService`] over `engine.reader()`) and drives
/// `engine`, until `shutdown` resolves. Then it stops accepting, begins the engine's
/// shutdown (`/readyz` fails), lets connections finish what they are answering for up
/// to `config.shutdown_grace`, stops the engine and returns.
///
/// Create the engine with [`now`] so that its clock and this adapter's agree.
pub async fn run_on<S>(
    listener: TcpListener,
    config: RuntimeConfig,
    engine: Engine,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: Service + Clone + Send + 'static,
{
    let (phase, phase_rx) = watch::channel(Phase::Running);
    let connector = Arc::new(conn::Connector {
        kubelet: config.kubelet_transport.clone(),
        apiserver: config.apiserver_transport.clone(),
        authentication: config.authentication_transport.clone(),
        authorization: config.authorization_transport.clone(),
    });
    let mut engine = EngineDriver::new(engine, config.client.clone());
    if let Some(delegation) = &config.delegation {
        engine = engine.with_delegation(Arc::clone(delegation));
    }
    let engine_task = tokio::spawn(driver::run_engine(engine, connector, phase_rx.clone()));

    let mut conns = listen::accept_until(listener, &config, service, phase_rx, shutdown).await;
    phase.send_replace(Phase::Draining);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            open = conns.len(),
            "shutdown grace period over; closing connections"
        );
    }
    conns.shutdown().await;
    phase.send_replace(Phase::Stopped);
    engine_task.await.map_err(io::Error::other)
}

/// Reports one [`perform`] may queue.
const PERFORM_QUEUE: usize = 8;

/// Performs one request outside the engine (a start-up read, before [`run`]) over
/// `transport`, giving up after `timeout`. Returns its completions in order (none when
/// it timed out).
pub async fn perform(
    exchange: Exchange,
    transport: ClientTransport,
    timeout: Duration,
) -> Vec<Completion> {
    let connector = Arc::new(conn::Connector {
        kubelet: transport.clone(),
        apiserver: transport.clone(),
        authentication: transport.clone(),
        authorization: transport,
    });
    // A buffered exchange reports one completion and `Finished`: the queue never fills.
    let (reports, mut inbox) = tokio::sync::mpsc::channel(PERFORM_QUEUE);
    let run = conn::exchange(exchange, None, connector, reports);
    let _ = tokio::time::timeout(timeout, run).await;
    let mut completions = Vec::new();
    while let Ok(report) = inbox.try_recv() {
        if let Report::Completion(completion) = report {
            completions.push(completion);
        }
    }
    completions
}

/// Where the process is in its life; connections and the engine task watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Stopped,
}

/// The adapter's clock origin: the first reading in the process.
fn origin() -> std::time::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// The monotonic time as the core counts it (create the [`Engine`] with it).
pub fn now() -> Instant {
    Instant::from_nanos(u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX))
}

/// The wall-clock time as the core counts it.
pub fn wall() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Timestamp::from_unix_nanos(nanos)
}

/// Sleeps until the core instant `at`, or forever for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at.and_then(|at| origin().checked_add(at.since_origin())) {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None if at.is_some() => tokio::time::sleep(Duration::from_secs(86_400)).await,
        None => std::future::pending().await,
    }
}
