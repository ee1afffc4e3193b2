//! From parsed flags to a running server: the engine, the API, TLS and the chosen
//! runtime. Everything here is wiring; behaviour lives in core and the adapters.

use crate::certs::{self, ClientCertMode};
use crate::flags::{Options, Runtime, VERSION};
use crate::kubeconfig::{self, Auth, RestConfig, Scheme, TokenSource};
use metrics_core::api::discovery::{self, VersionInfo};
use metrics_core::api::dispatch::{Api, ApiConfig};
use metrics_core::api::selector::LabelSelector;
use metrics_core::cluster::{self as cluster, AddressType};
use metrics_core::driver::{
    self, ApiService, ClientConfig, ServerConfig, TokenSource as CoreToken,
};
use metrics_core::engine::{Engine, EngineConfig};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

fn err(context: &str) -> impl Fn(&dyn fmt::Display) -> RunError + '_ {
    move |e| RunError(format!("{context}: {e}"))
}

/// Everything needed to start serving, built from the flags.
pub struct Prepared {
    pub engine_config: EngineConfig,
    pub listen: SocketAddr,
    pub server_tls: Arc<rustls::ServerConfig>,
    pub kubelet_tls: Option<Arc<rustls::ClientConfig>>,
    pub apiserver_tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    )>,
    pub client: ClientConfig,
    pub api: Arc<Api>,
    pub shutdown_grace: Duration,
    pub runtime: Runtime,
    /// `--max-requests-inflight` (0: unlimited).
    pub max_requests_inflight: usize,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("listen", &self.listen)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

fn token_source(auth: &Auth) -> Result<Option<CoreToken>, RunError> {
    let source = match auth {
        Auth::None | Auth::Basic { .. } => return Ok(None),
        Auth::Bearer {
            token,
            token_file: None,
        } => TokenSource::fixed(token.clone()),
        Auth::Bearer {
            token,
            token_file: Some(file),
        } => {
            let initial = (!token.is_empty()).then(|| token.clone());
            TokenSource::from_file(file.clone(), initial, std::time::Instant::now())
                .map_err(|e| err("reading the token file")(&e))?
        }
    };
    // Re-read (at most once a minute) when a request needs it: rotated tokens are used.
    Ok(Some(Arc::new(move || {
        Some(source.token()).filter(|t| !t.is_empty())
    })))
}

/// Builds the engine, TLS and API configuration from flags and the kubeconfig (or the
/// in-cluster configuration).
pub fn prepare(options: &Options) -> Result<Prepared, RunError> {
    let rest: RestConfig = kubeconfig::rest_config(options.kubeconfig.as_deref())
        .map_err(|e| err("unable to load the cluster configuration")(&e))?;
    let kubelet = kubeconfig::kubelet_client_config(&rest, &options.kubelet);
    let kubelet_tls =
        certs::kubelet_client_config(&kubelet).map_err(|e| err("kubelet client TLS")(&e))?;
    let apiserver_tls = match rest.server.scheme {
        Scheme::Https => {
            let config =
                certs::client_config(&rest.tls).map_err(|e| err("apiserver client TLS")(&e))?;
            let name = certs::server_name_for(&rest.tls, &rest.server.host)
                .map_err(|e| err("apiserver server name")(&e))?;
            Some((config, name))
        }
        Scheme::Http => None,
    };

    let ca_files: Vec<&Path> = [
        options
            .authentication
            .requestheader
            .client_ca_file
            .as_deref(),
        options.authentication.client_ca_file.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let serving = certs::serving_tls(
        &options.serving,
        &ca_files,
        ClientCertMode::RequestOnly,
        SystemTime::now(),
    )
    .map_err(|e| err("serving certificate")(&e))?;

    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut engine_config = EngineConfig::new(options.metric_resolution, seed);
    engine_config.scrape.request_timeout = options.kubelet.request_timeout;
    engine_config.scrape.prefer_summary = options.kubelet.prefer_summary_api;
    engine_config.scrape.max_response_bytes =
        usize::try_from(options.kubelet.max_response_bytes).unwrap_or(usize::MAX);
    engine_config.resolve.preferred_types = options
        .kubelet
        .preferred_address_types
        .iter()
        .map(|t| AddressType::parse(t))
        .collect();
    engine_config.resolve.kubelet_port = options.kubelet.port;
    engine_config.resolve.use_node_status_port = options.kubelet.use_node_status_port;
    engine_config.resolve.scheme = match kubelet.scheme {
        Scheme::Http => cluster::Scheme::Http,
        Scheme::Https => cluster::Scheme::Https,
    };
    if !options.kubelet.node_selector.is_empty() {
        engine_config.node_selector = Some(
            LabelSelector::parse(&options.kubelet.node_selector)
                .map_err(|e| err("--node-selector")(&e))?,
        );
    }

    let mut client = ClientConfig::new(
        driver::default_user_agent(VERSION, "0000000"),
        rest.server.host.clone(),
        rest.server.port,
    );
    client.apiserver_token = token_source(&rest.auth)?;
    client.kubelet_token = token_source(&kubelet.auth)?;
    client.kubelet_limits.max_body_bytes = options.kubelet.max_response_bytes;

    let server_address = discovery::server_address("", "", options.serving.secure_port);
    let version = VersionInfo {
        git_version: VERSION.to_string(),
        ..VersionInfo::default()
    };
    let api = Arc::new(Api::new(ApiConfig {
        server_address,
        version,
        release: VERSION.to_string(),
    }));
    Ok(Prepared {
        engine_config,
        listen: SocketAddr::new(options.serving.bind_address, options.serving.secure_port),
        server_tls: serving.config,
        kubelet_tls,
        apiserver_tls,
        client,
        api,
        shutdown_grace: Duration::from_secs(30).max(options.serving.shutdown_delay),
        runtime: options.runtime,
        max_requests_inflight: usize::try_from(options.serving.max_requests_inflight)
            .unwrap_or(usize::MAX),
    })
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the server until `shutdown` resolves, on the runtime the flags chose.
pub fn run_prepared(prepared: Prepared, shutdown: Shutdown) -> Result<(), RunError> {
    match prepared.runtime {
        Runtime::Tokio => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| err("starting tokio")(&e))?;
            rt.block_on(run_tokio(prepared, shutdown))
        }
        Runtime::Smol => smol::block_on(run_smol(prepared, shutdown)),
    }
}

/// The tokio runtime, inside an existing tokio context (the demo runs it this way).
pub async fn run_tokio(prepared: Prepared, shutdown: Shutdown) -> Result<(), RunError> {
    use runtime_tokio::{ClientTransport, RuntimeConfig};
    let kubelet_transport = match &prepared.kubelet_tls {
        Some(config) => ClientTransport::Tls {
            config: Arc::clone(config),
            server_name: None,
        },
        None => ClientTransport::Plain,
    };
    let apiserver_transport = match &prepared.apiserver_tls {
        Some((config, name)) => ClientTransport::Tls {
            config: Arc::clone(config),
            server_name: Some(name.clone()),
        },
        None => ClientTransport::Plain,
    };
    let engine = Engine::new(prepared.engine_config.clone(), runtime_tokio::now());
    let service = ApiService::new(
        Arc::clone(&prepared.api),
        engine.reader(),
        prepared.engine_config.seed,
    )
    .with_max_inflight(prepared.max_requests_inflight);
    let config = RuntimeConfig {
        listen: prepared.listen,
        server_tls: Arc::clone(&prepared.server_tls),
        kubelet_transport,
        apiserver_transport,
        server: ServerConfig::default(),
        client: prepared.client.clone(),
        max_connections: 4096,
        shutdown_grace: prepared.shutdown_grace,
    };
    runtime_tokio::run(config, engine, service, shutdown)
        .await
        .map_err(|e| err("serving")(&e))
}

/// The smol runtime.
pub async fn run_smol(prepared: Prepared, shutdown: Shutdown) -> Result<(), RunError> {
    use runtime_smol::{ClientTransport, RuntimeConfig};
    let kubelet_transport = match &prepared.kubelet_tls {
        Some(config) => ClientTransport::Tls {
            config: Arc::clone(config),
            server_name: None,
        },
        None => ClientTransport::Plain,
    };
    let apiserver_transport = match &prepared.apiserver_tls {
        Some((config, name)) => ClientTransport::Tls {
            config: Arc::clone(config),
            server_name: Some(name.clone()),
        },
        None => ClientTransport::Plain,
    };
    let engine = Engine::new(prepared.engine_config.clone(), runtime_smol::now());
    let service = ApiService::new(
        Arc::clone(&prepared.api),
        engine.reader(),
        prepared.engine_config.seed,
    )
    .with_max_inflight(prepared.max_requests_inflight);
    let config = RuntimeConfig {
        listen: prepared.listen,
        server_tls: Arc::clone(&prepared.server_tls),
        kubelet_transport,
        apiserver_transport,
        server: ServerConfig::default(),
        client: prepared.client.clone(),
        max_connections: 4096,
        shutdown_grace: prepared.shutdown_grace,
    };
    runtime_smol::run(config, engine, service, shutdown)
        .await
        .map_err(|e| err("serving")(&e))
}

/// SIGTERM or SIGINT, watched on a small thread of its own so either runtime can wait
/// for it.
pub fn termination_signal() -> Shutdown {
    let (tx, rx) = smol::channel::bounded::<()>(1);
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        });
        let _ = tx.send_blocking(());
    });
    Box::pin(async move {
        let _ = rx.recv().await;
    })
}
