//! From parsed flags to a running server: the engine, the API, TLS and the chosen
//! runtime. Everything here is wiring; behaviour lives in core and the adapters.

use crate::certs::{self, ClientCertMode};
use crate::flags::{Options, Runtime, VERSION};
use crate::kubeconfig::{self, Auth, RestConfig, Scheme, TokenSource};
use metrics_core::api::discovery::{self, VersionInfo};
use metrics_core::api::dispatch::{Api, ApiConfig};
use metrics_core::api::selector::LabelSelector;
use metrics_core::auth::configmap::{
    AuthSources, AuthenticationOptions as AuthnSourceOptions, Lookup,
    RequestHeaderOptions as RequestHeaderSource,
};
use metrics_core::auth::{AuthnConfig, AuthzConfig, Gate};
use metrics_core::cluster::{self as cluster, AddressType};
use metrics_core::driver::{
    self, ApiService, ClientConfig, Completion, ConfigMapFollow, DelegatedRequest, DelegatedTarget,
    Delegation, DelegationConfig, DelegationEvent, Exchange, ServerConfig,
    TokenSource as CoreToken, Upstream,
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
    /// TLS to the apiserver reviewing tokens (`client.authentication` has its address).
    pub authentication_tls: Option<ApiserverTls>,
    /// TLS to the apiserver reviewing access (`client.authorization`).
    pub authorization_tls: Option<ApiserverTls>,
    /// The authentication flags, files read.
    pub authn_sources: AuthnSourceOptions,
    /// Authentication settings other than the CAs (which [`AuthSources`] decides).
    pub authn: AuthnConfig,
    /// Authorization settings.
    pub authz: AuthzConfig,
    /// `--client-ca-file` and `--requestheader-client-ca-file`, re-read while serving.
    pub ca_files: CaFiles,
}

/// CA bundle files given by flag.
#[derive(Debug, Clone, Default)]
pub struct CaFiles {
    pub client_ca: Option<std::path::PathBuf>,
    pub request_header: Option<std::path::PathBuf>,
}

/// How often CA files given by flag are read again (upstream's file controllers also
/// check about once a minute).
pub const CA_FILE_RELOAD: Duration = Duration::from_secs(60);

/// A client TLS configuration and the name to verify.
pub type ApiserverTls = (
    Arc<rustls::ClientConfig>,
    rustls_pki_types::ServerName<'static>,
);

/// How often the authentication ConfigMap is read again after start-up.
pub const CONFIGMAP_REFRESH: Duration = Duration::from_secs(30);
/// How long the start-up read of the ConfigMap may take.
const CONFIGMAP_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The address, token and TLS of the apiserver a delegated kubeconfig (or the in-cluster
/// configuration) points at.
fn delegated_target(
    kubeconfig: Option<&Path>,
    which: &str,
) -> Result<(DelegatedTarget, Option<ApiserverTls>), RunError> {
    let context = format!("failed to get delegated {which} kubeconfig");
    let rest = kubeconfig::rest_config(kubeconfig).map_err(|e| err(&context)(&e))?;
    let tls = match rest.server.scheme {
        Scheme::Https => {
            let config = certs::client_config(&rest.tls).map_err(|e| err(&context)(&e))?;
            let name = certs::server_name_for(&rest.tls, &rest.server.host)
                .map_err(|e| err(&context)(&e))?;
            Some((config, name))
        }
        Scheme::Http => None,
    };
    let target = DelegatedTarget {
        host: rest.server.host.clone(),
        port: rest.server.port,
        token: token_source(&rest.auth)?,
    };
    Ok((target, tls))
}

/// Reads a CA bundle flag's file.
fn read_ca(path: &Path, flag: &str) -> Result<Vec<u8>, RunError> {
    kubeconfig::read_bounded(path, kubeconfig::MAX_FILE_BYTES)
        .map_err(|e| RunError(format!("{flag}: {e}")))
}

/// The authentication flags as the core decides on them, CA files read.
fn authn_sources(options: &Options) -> Result<AuthnSourceOptions, RunError> {
    let a = &options.authentication;
    let client_ca_file = match &a.client_ca_file {
        Some(path) => Some(read_ca(path, "--client-ca-file")?),
        None => None,
    };
    let rh = &a.requestheader;
    let request_header = match &rh.client_ca_file {
        Some(path) => Some(RequestHeaderSource {
            client_ca_file: read_ca(path, "--requestheader-client-ca-file")?,
            allowed_names: rh.allowed_names.clone(),
            username_headers: rh.username_headers.clone(),
            uid_headers: rh.uid_headers.clone(),
            group_headers: rh.group_headers.clone(),
            extra_header_prefixes: rh.extra_headers_prefix.clone(),
        }),
        None => None,
    };
    Ok(AuthnSourceOptions {
        client_ca_file,
        request_header,
        skip_lookup: a.skip_lookup,
        tolerate_lookup_failure: a.tolerate_lookup_failure,
    })
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
    let (authentication, authentication_tls) = delegated_target(
        options.authentication.kubeconfig.as_deref(),
        "authentication",
    )?;
    let (authorization, authorization_tls) =
        delegated_target(options.authorization.kubeconfig.as_deref(), "authorization")?;
    client.authentication = Some(authentication);
    client.authorization = Some(authorization);
    let authn = AuthnConfig {
        token_cache_ttl: options.authentication.token_webhook_cache_ttl,
        ..AuthnConfig::default()
    };
    let authz = AuthzConfig {
        always_allow_paths: options.authorization.always_allow_paths.clone(),
        authorized_ttl: options.authorization.webhook_cache_authorized_ttl,
        unauthorized_ttl: options.authorization.webhook_cache_unauthorized_ttl,
        ..AuthzConfig::default()
    };
    // A bad always-allow path is a start-up error, found before anything is started.
    Gate::new(authn.clone(), authz.clone())
        .map_err(|e| err("--authorization-always-allow-paths")(&e))?;

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
        authentication_tls,
        authorization_tls,
        authn_sources: authn_sources(options)?,
        authn,
        authz,
        ca_files: CaFiles {
            client_ca: options.authentication.client_ca_file.clone(),
            request_header: options.authentication.requestheader.client_ca_file.clone(),
        },
    })
}

/// What the start-up read of the authentication ConfigMap gave, as the core's lookup
/// takes it.
fn lookup_from(completions: &[Completion]) -> Result<Vec<u8>, Option<String>> {
    for completion in completions {
        if let Completion::Delegated { result, .. } = completion {
            return match result {
                Ok((status, body)) if status.is_success() => Ok(body.clone()),
                Ok((status, _)) if status.as_u16() == 404 => Err(None),
                Ok((status, body)) => Err(Some(format!(
                    "the apiserver answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(512)]).trim()
                ))),
                Err(reason) => Err(Some(reason.clone())),
            };
        }
    }
    Err(Some("timed out".to_owned()))
}

/// The start-up request for the ConfigMap, when the flags leave settings to it.
fn configmap_exchange(prepared: &Prepared) -> Option<Exchange> {
    if !prepared.authn_sources.needs_lookup() {
        return None;
    }
    let target = prepared.client.authentication.as_ref()?;
    Some(Exchange::delegated(
        &DelegatedRequest::configmap_read(),
        Upstream::Authentication,
        target,
        &prepared.client,
    ))
}

/// Decides the authentication settings from the flags and the ConfigMap read (start-up
/// errors as upstream's) and builds the delegation the server checks requests with.
fn delegation(
    prepared: &Prepared,
    completions: Option<&[Completion]>,
    now: metrics_core::time::Instant,
) -> Result<Arc<Delegation>, RunError> {
    let read = completions.map(lookup_from);
    let lookup = read.as_ref().map(|r| match r {
        Ok(body) => Lookup::Found(body),
        Err(None) => Lookup::NotFound,
        Err(Some(reason)) => Lookup::Failed(reason),
    });
    let AuthSources {
        request_header,
        client_ca,
        warnings,
    } = prepared.authn_sources.resolve(lookup).map_err(|e| {
        RunError(format!(
            "{e} (the server's service account may need the extension-apiserver-authentication-reader role in kube-system)"
        ))
    })?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let authn = AuthnConfig {
        request_header,
        client_ca,
        token_review: prepared.client.authentication.is_some(),
        ..prepared.authn.clone()
    };
    let gate = Gate::new(authn, prepared.authz.clone())
        .map_err(|e| err("--authorization-always-allow-paths")(&e))?;
    let sources = &prepared.authn_sources;
    let follow_configmap = sources.needs_lookup().then_some(ConfigMapFollow {
        client_ca: sources.client_ca_file.is_none(),
        request_header: sources.request_header.is_none(),
        interval: CONFIGMAP_REFRESH,
    });
    let config = DelegationConfig {
        follow_configmap,
        ..DelegationConfig::default()
    };
    let delegation = Delegation::new(gate, config, now).with_events(Arc::new(log_event));
    Ok(Arc::new(delegation))
}

/// Reads the CA files again every `interval` on a thread of its own and puts changed,
/// parseable bundles in use (an unreadable or broken file keeps the current bundle, with
/// a warning), until the delegation is gone. `last` holds the contents read at start-up.
fn reload_ca_files(
    files: CaFiles,
    mut last: (Option<Vec<u8>>, Option<Vec<u8>>),
    delegation: std::sync::Weak<Delegation>,
    interval: Duration,
) {
    if files.client_ca.is_none() && files.request_header.is_none() {
        return;
    }
    let reread = |path: &Path,
                  last: &mut Option<Vec<u8>>|
     -> Option<metrics_core::auth::CaBundle> {
        let bytes = match kubeconfig::read_bounded(path, kubeconfig::MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(file = %path.display(), err = %e, "Reading a CA file failed; keeping the current bundle");
                return None;
            }
        };
        if last.as_ref() == Some(&bytes) {
            return None;
        }
        let parsed = metrics_core::auth::CaBundle::parse(&bytes);
        *last = Some(bytes);
        match parsed {
            Ok(bundle) => Some(bundle),
            Err(e) => {
                tracing::warn!(file = %path.display(), err = %e, "A CA file holds no usable bundle; keeping the current one");
                None
            }
        }
    };
    let spawned = std::thread::Builder::new()
        .name("ca-file-reload".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(delegation) = delegation.upgrade() else {
                    return;
                };
                if let Some(path) = &files.client_ca
                    && let Some(bundle) = reread(path, &mut last.0)
                {
                    delegation.set_client_ca(Some(bundle));
                }
                if let Some(path) = &files.request_header
                    && let Some(bundle) = reread(path, &mut last.1)
                {
                    delegation.set_request_header_ca(bundle);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(err = %e, "CA files will not be reloaded: no thread");
    }
}

/// Upstream's log lines for authentication: refusals (401 as an error, as the generic
/// server logs it; 403 at DEBUG, shown from -v 2) and ConfigMap changes.
fn log_event(event: DelegationEvent<'_>) {
    match event {
        DelegationEvent::Refused { status, cause } => match status.as_u16() {
            401 => tracing::error!(err = cause, "Unable to authenticate the request"),
            403 => tracing::debug!(reason = cause, "Forbidden"),
            _ => tracing::error!(status = status.as_u16(), err = cause, "Request refused"),
        },
        DelegationEvent::ConfigMapApplied {
            client_ca,
            request_header,
        } => tracing::info!(
            client_ca,
            request_header,
            "Loaded new authentication settings from configmap kube-system/extension-apiserver-authentication"
        ),
        DelegationEvent::CaFileReloaded {
            client_ca,
            request_header,
        } => tracing::info!(client_ca, request_header, "Loaded a changed CA file"),
        DelegationEvent::ConfigMapFailed { reason } => tracing::warn!(
            err = reason,
            "Reading configmap kube-system/extension-apiserver-authentication failed; keeping the current settings"
        ),
    }
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

/// How each kind of peer is reached, in an adapter's own transport type `T`.
struct Transports<T> {
    kubelet: T,
    apiserver: T,
    authentication: T,
    authorization: T,
}

impl<T> Transports<T> {
    /// `tls(config, name to verify)` for TLS peers (kubelets verify the address they are
    /// reached at: no name), `plain` otherwise.
    fn new(
        prepared: &Prepared,
        tls: impl Fn(Arc<rustls::ClientConfig>, Option<rustls_pki_types::ServerName<'static>>) -> T,
        plain: impl Fn() -> T,
    ) -> Transports<T> {
        let apiserver = |pair: &Option<ApiserverTls>| match pair {
            Some((config, name)) => tls(Arc::clone(config), Some(name.clone())),
            None => plain(),
        };
        Transports {
            kubelet: match &prepared.kubelet_tls {
                Some(config) => tls(Arc::clone(config), None),
                None => plain(),
            },
            apiserver: apiserver(&prepared.apiserver_tls),
            authentication: apiserver(&prepared.authentication_tls),
            authorization: apiserver(&prepared.authorization_tls),
        }
    }
}

/// What both runtimes start from: the delegation (after the start-up ConfigMap read,
/// done with the runtime's `perform`), the engine and the API service.
async fn assemble<T: Clone, F: Future<Output = Vec<Completion>>>(
    prepared: &Prepared,
    transports: &Transports<T>,
    perform: impl FnOnce(Exchange, T, Duration) -> F,
    now: impl Fn() -> metrics_core::time::Instant,
) -> Result<(Arc<Delegation>, Engine, ApiService), RunError> {
    let lookup = match configmap_exchange(prepared) {
        Some(exchange) => Some(
            perform(
                exchange,
                transports.authentication.clone(),
                CONFIGMAP_LOOKUP_TIMEOUT,
            )
            .await,
        ),
        None => None,
    };
    let delegation = delegation(prepared, lookup.as_deref(), now())?;
    let initial = (
        prepared.authn_sources.client_ca_file.clone(),
        prepared
            .authn_sources
            .request_header
            .as_ref()
            .map(|rh| rh.client_ca_file.clone()),
    );
    reload_ca_files(
        prepared.ca_files.clone(),
        initial,
        Arc::downgrade(&delegation),
        CA_FILE_RELOAD,
    );
    let engine = Engine::new(prepared.engine_config.clone(), now());
    let service = ApiService::new(
        Arc::clone(&prepared.api),
        engine.reader(),
        prepared.engine_config.seed,
    )
    .with_max_inflight(prepared.max_requests_inflight)
    .with_delegation(Arc::clone(&delegation));
    Ok((delegation, engine, service))
}

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 4096;

/// The tokio runtime, inside an existing tokio context (the demo runs it this way).
pub async fn run_tokio(prepared: Prepared, shutdown: Shutdown) -> Result<(), RunError> {
    use runtime_tokio::{ClientTransport, RuntimeConfig};
    let transports = Transports::new(
        &prepared,
        |config, server_name| ClientTransport::Tls {
            config,
            server_name,
        },
        || ClientTransport::Plain,
    );
    let (delegation, engine, service) = assemble(
        &prepared,
        &transports,
        runtime_tokio::perform,
        runtime_tokio::now,
    )
    .await?;
    let config = RuntimeConfig {
        listen: prepared.listen,
        server_tls: Arc::clone(&prepared.server_tls),
        kubelet_transport: transports.kubelet,
        apiserver_transport: transports.apiserver,
        authentication_transport: transports.authentication,
        authorization_transport: transports.authorization,
        delegation: Some(delegation),
        server: ServerConfig::default(),
        client: prepared.client.clone(),
        max_connections: MAX_CONNECTIONS,
        shutdown_grace: prepared.shutdown_grace,
    };
    runtime_tokio::run(config, engine, service, shutdown)
        .await
        .map_err(|e| err("serving")(&e))
}

/// The smol runtime.
pub async fn run_smol(prepared: Prepared, shutdown: Shutdown) -> Result<(), RunError> {
    use runtime_smol::{ClientTransport, RuntimeConfig};
    let transports = Transports::new(
        &prepared,
        |config, server_name| ClientTransport::Tls {
            config,
            server_name,
        },
        || ClientTransport::Plain,
    );
    let (delegation, engine, service) = assemble(
        &prepared,
        &transports,
        runtime_smol::perform,
        runtime_smol::now,
    )
    .await?;
    let config = RuntimeConfig {
        listen: prepared.listen,
        server_tls: Arc::clone(&prepared.server_tls),
        kubelet_transport: transports.kubelet,
        apiserver_transport: transports.apiserver,
        authentication_transport: transports.authentication,
        authorization_transport: transports.authorization,
        delegation: Some(delegation),
        server: ServerConfig::default(),
        client: prepared.client.clone(),
        max_connections: MAX_CONNECTIONS,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags;
    use metrics_core::http::StatusCode;

    /// A scratch directory with a plain-HTTP kubeconfig, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("metrics-server-run-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("scratch dir");
            let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n";
            std::fs::write(dir.join("kubeconfig"), kubeconfig).expect("kubeconfig");
            Scratch(dir)
        }

        fn arg(&self, flag: &str, file: &str) -> String {
            format!("--{flag}={}", self.0.join(file).display())
        }

        fn options(&self, extra: &[&str]) -> Options {
            let args = [
                "metrics-server".to_owned(),
                self.arg("kubeconfig", "kubeconfig"),
                self.arg("cert-dir", "certs"),
                "--kubelet-insecure-tls".to_owned(),
            ];
            let args = args
                .into_iter()
                .chain(extra.iter().map(|s| (*s).to_owned()));
            flags::parse(args).expect("flags").0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn read(status: u16, body: &str) -> Vec<Completion> {
        vec![Completion::Delegated {
            id: DelegatedRequest::configmap_read().id,
            result: Ok((StatusCode::from_u16(status).expect("status"), body.into())),
        }]
    }

    fn now() -> metrics_core::time::Instant {
        metrics_core::time::Instant::from_nanos(0)
    }

    #[test]
    fn changed_ca_files_are_put_in_use_and_broken_ones_ignored() {
        let scratch = Scratch::new("ca-reload");
        let pem = |name: &str| {
            rcgen::generate_simple_self_signed(vec![name.to_owned()])
                .expect("certificate")
                .cert
                .pem()
        };
        let (first, second) = (pem("ca-one"), pem("ca-two"));
        let bundle = |pem: &str| metrics_core::auth::CaBundle::parse(pem.as_bytes()).expect("CA");
        let file = scratch.0.join("client-ca.crt");
        std::fs::write(&file, &first).expect("write");
        let authn = AuthnConfig {
            client_ca: Some(bundle(&first)),
            ..AuthnConfig::default()
        };
        let gate = Gate::new(authn, AuthzConfig::default()).expect("gate");
        let delegation = Arc::new(Delegation::new(gate, DelegationConfig::default(), now()));
        let files = CaFiles {
            client_ca: Some(file.clone()),
            request_header: None,
        };
        let interval = Duration::from_millis(20);
        let last = (Some(first.clone().into_bytes()), None);
        reload_ca_files(files, last, Arc::downgrade(&delegation), interval);
        let client_ca = || delegation.authn_config().client_ca;

        std::fs::write(&file, &second).expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while client_ca() != Some(bundle(&second)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the new CA was not loaded"
            );
            std::thread::sleep(interval);
        }
        // A broken file keeps the bundle in use.
        std::fs::write(&file, "not a certificate").expect("write");
        std::thread::sleep(interval * 10);
        assert_eq!(client_ca(), Some(bundle(&second)));
    }

    #[test]
    fn delegated_kubeconfigs_are_required_outside_a_cluster() {
        let scratch = Scratch::new("required");
        // This test process is not in a cluster (no KUBERNETES_SERVICE_HOST).
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return;
        }
        let error = prepare(&scratch.options(&[])).expect_err("refused");
        assert!(
            error
                .0
                .starts_with("failed to get delegated authentication kubeconfig"),
            "{error}"
        );
        let authn = scratch.arg("authentication-kubeconfig", "kubeconfig");
        let error = prepare(&scratch.options(&[&authn])).expect_err("refused");
        assert!(
            error
                .0
                .starts_with("failed to get delegated authorization kubeconfig"),
            "{error}"
        );
    }

    #[test]
    fn configmap_lookup_at_start_up_fails_unless_tolerated() {
        let scratch = Scratch::new("lookup");
        let authn = scratch.arg("authentication-kubeconfig", "kubeconfig");
        let authz = scratch.arg("authorization-kubeconfig", "kubeconfig");
        let prepared = prepare(&scratch.options(&[&authn, &authz])).expect("prepared");
        assert!(
            configmap_exchange(&prepared).is_some(),
            "no CA flags: lookup"
        );

        let forbidden = read(403, r#"{"kind":"Status","code":403}"#);
        let error = delegation(&prepared, Some(&forbidden), now()).expect_err("fatal");
        assert!(
            error
                .0
                .starts_with("unable to load configmap based request-header-client-ca-file"),
            "{error}"
        );
        let error = delegation(&prepared, Some(&[]), now()).expect_err("timed out: fatal");
        assert!(error.0.contains("timed out"), "{error}");
        // Not found: no request-header settings, silently.
        let delegation_404 = delegation(&prepared, Some(&read(404, "{}")), now()).expect("ok");
        assert_eq!(delegation_404.authn_config().request_header, None);

        let tolerate = "--authentication-tolerate-lookup-failure";
        let tolerant = prepare(&scratch.options(&[&authn, &authz, tolerate])).expect("prepared");
        let started = delegation(&tolerant, Some(&forbidden), now()).expect("tolerated");
        assert_eq!(started.authn_config().request_header, None);
        assert!(
            started.authn_config().token_review,
            "tokens are still reviewed"
        );

        let skip = "--authentication-skip-lookup";
        let skipping = prepare(&scratch.options(&[&authn, &authz, skip])).expect("prepared");
        assert!(configmap_exchange(&skipping).is_none());
    }
}
