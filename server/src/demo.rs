//! `metrics-server demo`: a simulated cluster on loopback with the real server running
//! against it, so that `kubectl top` can be tried without a cluster.
//!
//! ```text
//!  kubectl ──HTTPS, token──▶ fake apiserver, 127.0.0.1:<free port>
//!                              ├─ /api, /apis, /api/v1, /version: discovery
//!                              ├─ /api/v1/nodes, pods: list and watch (testdata::apiserver)
//!                              ├─ ConfigMap kube-system/extension-apiserver-authentication
//!                              ├─ TokenReview, SubjectAccessReview (for the server)
//!                              └─ /apis/metrics.k8s.io/…: proxied as the aggregator does ─┐
//!                                 (front-proxy client certificate, X-Remote-User/-Group)  │
//!  metrics server, 127.0.0.1:<free port>, on the --runtime chosen  ◀──────────────────────┘
//!    ├─ lists and watches nodes and pods ──▶ fake apiserver (its own kubeconfig and token)
//!    └─ scrapes ──HTTPS, token──▶ fake kubelets, one per node on its own 127.x.y.z:10250,
//!                                 rendering testdata::generator at the wall-clock time
//! ```
//!
//! Everything the demo writes (a throw-away CA and certificates, the server's kubeconfig
//! and the one for kubectl) lives in a temporary directory removed on exit; only a
//! kubeconfig asked for with `--kubeconfig-out` stays. The fake servers are plain threads
//! with blocking sockets and rustls, speaking HTTP through `metrics_core::http`; only the
//! server runs on the async runtime, so the demo exercises either runtime against the
//! same cluster. Working sets are held steady ([`Cluster::set_steady_memory`]), so memory
//! matches the generator exactly, and every container uses CPU at a constant rate.
//!
//! Server flags given before `demo` (runtime, resolution, logging, `--prefer-summary-api`,
//! `--node-selector`, ...) apply to the server, except those the demo must set to point
//! it at its cluster: `--kubeconfig` and the authentication and authorization
//! kubeconfigs, the serving address and certificates, and the kubelet port, address type
//! and TLS settings. The CA flags are cleared: as in a cluster, the server reads them
//! from the fake apiserver's ConfigMap, and asks it to review tokens and access (kubectl's
//! user is authorized by review, not by `system:masters`).
//!
//! Where 127.x.y.z:10250 cannot be bound (the port is taken, or the system routes only
//! 127.0.0.1 to loopback), a kubelet listens on another port, announced in its Node's
//! `status.daemonEndpoints`, and the server runs with `--kubelet-use-node-status-port`.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use metrics_core::api::json;
use metrics_core::api::selector::LabelSelector;
use metrics_core::http::{
    BodyEncoder, BodyLength, BodyMode, ClientEvent, HeaderValue, Limits, Method, Request, Response,
    ResponseHead, ResponseLimits, ResponseParser, ServerEvent, StatusCode, encode_continue,
    encode_rejection, encode_request, encode_response, header,
};
use metrics_core::time::{Timestamp, go_duration};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::{ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::ServerName;
use testdata::apiserver::{Apiserver, KUBELET_PORT, NodeObject, Reply, WatchId, WatchOutput};
use testdata::generator::{self, Cluster, ClusterSpec, Format};

use crate::certs::{self, write_atomically};
use crate::flags::{DemoOptions, Mode, Options};
use crate::kubeconfig::{PemSource, TlsSettings};
use crate::run::{self, RunError, Shutdown};

/// How often a thread blocked on a socket looks at the stop flag.
const POLL: Duration = Duration::from_millis(250);
/// A kept-alive connection with nothing to do for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a watch without `timeoutSeconds` stays open.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Connecting to the metrics server, and waiting for its answer, when proxying.
const PROXY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PROXY_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once by one listener; more are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// Connection threads only parse, render and copy bytes.
const THREAD_STACK: usize = 512 * 1024;
/// When to say that readiness is taking unusually long.
const READY_HINT_AFTER: Duration = Duration::from_secs(60);

const METRICS_GROUP: &str = "/apis/metrics.k8s.io";
const NODE_METRICS: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const POD_METRICS: &str = "/apis/metrics.k8s.io/v1beta1/pods";
/// The common name the server's `--requestheader-allowed-names` accepts.
const FRONT_PROXY_CN: &str = "front-proxy-client";
/// Where kube-apiserver publishes its client and front-proxy CAs for aggregated servers.
const AUTHENTICATION_CONFIGMAP: &str =
    "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication";
const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const SUBJECT_ACCESS_REVIEW_PATH: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// Prints a line on stdout. A closed stdout (`demo | head`) is no reason to stop.
macro_rules! say {
    () => {
        say(format_args!(""))
    };
    ($($arg:tt)*) => {
        say(format_args!($($arg)*))
    };
}

fn say(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Runs the demo until Ctrl-C, SIGTERM or `--exit-after`: builds the simulated cluster,
/// starts the fake apiserver and kubelets, writes the kubeconfigs, prints what to try,
/// then runs the real server against it all (on `options.runtime`) and tears everything
/// down once the server has stopped.
pub fn run(options: &Options, demo: &DemoOptions) -> Result<(), RunError> {
    // First, so that a signal during start-up already stops the demo cleanly.
    let shutdown = shutdown_signal(demo.exit_after);
    let started = Instant::now();
    let work = WorkDir::create()?;
    let cluster = Arc::new(simulated_cluster(demo));
    let pki = Pki::generate().map_err(fail("generating certificates"))?;
    let tokens = Tokens::generate();
    let mut servers = Servers::default();

    // One kubelet per node, on its own loopback address when possible.
    let mut endpoints = Vec::with_capacity(cluster.nodes().len());
    for (index, node) in cluster.nodes().iter().enumerate() {
        let listener = bind_kubelet(node).map_err(fail("binding a kubelet"))?;
        let address = listener.local_addr().map_err(fail("binding a kubelet"))?;
        let tls = pki
            .kubelet_tls(&node.name, address.ip())
            .map_err(fail("kubelet certificate"))?;
        let kubelet = Kubelet {
            cluster: Arc::clone(&cluster),
            node: index,
            authorization: format!("Bearer {}", tokens.metrics_server),
        };
        servers.spawn(&node.name, listener, tls, Arc::new(kubelet))?;
        endpoints.push(address);
    }
    let use_node_status_port = endpoints.iter().any(|e| e.port() != KUBELET_PORT);

    // The apiserver, and where the metrics server will listen (it binds the port itself).
    let metrics_server = free_loopback_address().map_err(fail("choosing a port"))?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(fail("binding"))?;
    let apiserver_address = listener.local_addr().map_err(fail("binding"))?;
    let apiserver = Arc::new(FakeApiserver {
        objects: Mutex::new(apiserver_objects(&cluster, &endpoints)),
        address: apiserver_address,
        tokens: tokens.clone(),
        metrics_server,
        proxy_tls: pki.front_proxy_client_tls()?,
        authentication_configmap: authentication_configmap(&pki),
    });
    let tls = pki
        .serving_tls("kube-apiserver", IpAddr::V4(Ipv4Addr::LOCALHOST))
        .map_err(fail("apiserver certificate"))?;
    servers.spawn(
        "apiserver",
        listener,
        tls,
        Arc::clone(&apiserver) as Arc<dyn Handler>,
    )?;

    let files = work.write_files(&pki, &tokens, apiserver_address, demo)?;
    let server_options = server_options(options, &files, metrics_server, use_node_status_port);
    let expected = Expected::new(&cluster, &server_options);
    print_banner(&Banner {
        demo,
        options: &server_options,
        cluster: &cluster,
        apiserver: apiserver_address,
        metrics_server,
        kubelets: &endpoints,
        files: &files,
        expected,
    });
    let stop = Arc::clone(&servers.stop);
    let watcher = spawn_thread("demo-ready", move || {
        announce_readiness(&apiserver, expected, &stop, started);
    });

    let result =
        run::prepare(&server_options).and_then(|prepared| run::run_prepared(prepared, shutdown));
    servers.shut_down();
    if let Ok(watcher) = watcher {
        let _ = watcher.join();
    }
    drop(work);
    if result.is_ok() {
        say!("metrics-server demo stopped");
    }
    result
}

fn fail<E: fmt::Display>(context: &str) -> impl FnOnce(E) -> RunError + '_ {
    move |e| RunError(format!("demo: {context}: {e}"))
}

/// Ctrl-C or SIGTERM, or the end of `--exit-after`.
fn shutdown_signal(exit_after: Option<Duration>) -> Shutdown {
    let signal = run::termination_signal();
    match exit_after {
        None => signal,
        Some(after) => Box::pin(smol::future::or(signal, async move {
            smol::Timer::after(after).await;
        })),
    }
}

/// The generator's cluster for the flags, as if it had started now, with steady memory.
fn simulated_cluster(demo: &DemoOptions) -> Cluster {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let spec = ClusterSpec {
        epoch: Timestamp::from_unix_secs(i64::try_from(now).unwrap_or(i64::MAX)),
        ..ClusterSpec::new(demo.seed, demo.nodes as usize, demo.pods_per_node as usize)
    };
    let mut cluster = Cluster::new(&spec);
    cluster.set_steady_memory(true);
    cluster
}

/// A port nothing listens on now (the server binds it a moment later).
fn free_loopback_address() -> io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// The node's own address on the kubelet port, else its address on any port, else
/// 127.0.0.1 on any port.
fn bind_kubelet(node: &generator::Node) -> io::Result<TcpListener> {
    let own = Ipv4Addr::from(node.address);
    TcpListener::bind((own, KUBELET_PORT))
        .or_else(|_| TcpListener::bind((own, 0)))
        .or_else(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
}

/// What the apiserver serves: the cluster's nodes (at the addresses their kubelets
/// listen on, with a capacity so that `kubectl top node` shows percentages) and pods.
fn apiserver_objects(cluster: &Cluster, kubelets: &[SocketAddr]) -> Apiserver {
    let mut objects = Apiserver::from_cluster(cluster);
    for (node, kubelet) in cluster.nodes().iter().zip(kubelets) {
        let mut object = NodeObject::from_generator(node);
        for address in &mut object.addresses {
            if address.kind == "InternalIP" {
                address.address = kubelet.ip().to_string();
            }
        }
        object.kubelet_port = kubelet.port();
        // Cores: at least 8, a multiple of 4, about twice the usage (as the generator
        // sizes memory). Allocatable keeps a little back, as a kubelet does.
        let cores = (node.cpu_nanocores() * 2).div_ceil(4_000_000_000).max(2) * 4;
        let memory_ki = node.memory_capacity_bytes / 1024;
        let resources = |cpu: String, memory_ki: u64| {
            BTreeMap::from([
                ("cpu".to_owned(), cpu),
                ("memory".to_owned(), format!("{memory_ki}Ki")),
                ("pods".to_owned(), "110".to_owned()),
            ])
        };
        object.capacity = resources(cores.to_string(), memory_ki);
        object.allocatable = resources(
            format!("{}m", cores * 1000 - 100),
            memory_ki.saturating_sub(512 * 1024),
        );
        objects.upsert_node(object);
    }
    objects
}

/// The server's flags: the user's, pointed at the demo cluster.
fn server_options(
    options: &Options,
    files: &Files,
    listen: SocketAddr,
    use_node_status_port: bool,
) -> Options {
    let mut o = options.clone();
    o.mode = Mode::Serve;
    o.kubeconfig = Some(files.server_kubeconfig.clone());
    o.serving.bind_address = listen.ip();
    o.serving.secure_port = listen.port();
    o.serving.cert_dir = files.dir.clone();
    o.serving.tls_cert_file = Some(files.serving_cert.clone());
    o.serving.tls_private_key_file = Some(files.serving_key.clone());
    // Authentication settings come from the fake apiserver's ConfigMap, and reviews go to
    // it, as in a cluster; the flags that would bypass either are reset.
    o.authentication.kubeconfig = Some(files.server_kubeconfig.clone());
    o.authorization.kubeconfig = Some(files.server_kubeconfig.clone());
    o.authentication.requestheader.client_ca_file = None;
    o.authentication.client_ca_file = None;
    o.authentication.skip_lookup = false;
    let kubelet = &mut o.kubelet;
    kubelet.completely_insecure = false;
    kubelet.client_certificate = None;
    kubelet.client_key = None;
    kubelet.certificate_authority = (!kubelet.insecure_tls).then(|| files.ca.clone());
    kubelet.preferred_address_types = vec!["InternalIP".to_owned()];
    kubelet.port = KUBELET_PORT;
    kubelet.use_node_status_port = use_node_status_port;
    o
}

// ---------------------------------------------------------------------------------------
// Files and credentials
// ---------------------------------------------------------------------------------------

/// The demo's temporary directory, removed when dropped.
#[derive(Debug)]
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<WorkDir, RunError> {
        let path = std::env::temp_dir().join(format!("metrics-server-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&path)
            .map_err(fail(&format!("creating {}", path.display())))?;
        Ok(WorkDir(path))
    }

    /// Writes the certificates the server reads and both kubeconfigs.
    fn write_files(
        &self,
        pki: &Pki,
        tokens: &Tokens,
        apiserver: SocketAddr,
        demo: &DemoOptions,
    ) -> Result<Files, RunError> {
        let dir = &self.0;
        let files = Files {
            dir: dir.clone(),
            ca: dir.join("ca.crt"),
            front_proxy_ca: dir.join("front-proxy-ca.crt"),
            serving_cert: dir.join("metrics-server.crt"),
            serving_key: dir.join("metrics-server.key"),
            server_kubeconfig: dir.join("metrics-server.kubeconfig"),
            kubeconfig: demo
                .kubeconfig_out
                .clone()
                .unwrap_or_else(|| dir.join("kubeconfig")),
        };
        let serving = pki
            .leaf(
                "metrics-server",
                &[SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))],
                ExtendedKeyUsagePurpose::ServerAuth,
                &KeyPair::generate().map_err(fail("generating a key"))?,
            )
            .map_err(fail("serving certificate"))?;
        let server = format!("https://{apiserver}");
        let write = |path: &Path, text: &str, mode: u32| {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(fail(&format!("creating {}", parent.display())))?;
            }
            write_atomically(path, text.as_bytes(), mode).map_err(fail("writing"))
        };
        write(&files.ca, &pki.ca.pem(), 0o644)?;
        write(&files.front_proxy_ca, &pki.front_proxy_ca.pem(), 0o644)?;
        write(&files.serving_cert, &serving.cert_pem, 0o644)?;
        write(&files.serving_key, &serving.key_pem, 0o600)?;
        let ca = pki.ca.pem();
        let for_server = kubeconfig(&server, &ca, "metrics-server", &tokens.metrics_server);
        write(&files.server_kubeconfig, &for_server, 0o600)?;
        let for_kubectl = kubeconfig(&server, &ca, "demo-admin", &tokens.admin);
        write(&files.kubeconfig, &for_kubectl, 0o600)?;
        Ok(files)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the demo's files are.
#[derive(Debug)]
struct Files {
    dir: PathBuf,
    ca: PathBuf,
    front_proxy_ca: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    server_kubeconfig: PathBuf,
    kubeconfig: PathBuf,
}

fn kubeconfig(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    let ca = BASE64_STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: metrics-server-demo
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: metrics-server-demo
  context:
    cluster: metrics-server-demo
    user: {user}
current-context: metrics-server-demo
"
    )
}

/// Bearer tokens: kubectl's (an administrator) and the server's (its service account;
/// the kubelets accept only this one).
#[derive(Clone)]
struct Tokens {
    admin: String,
    metrics_server: String,
}

impl Tokens {
    fn generate() -> Tokens {
        Tokens {
            admin: random_token(),
            metrics_server: random_token(),
        }
    }
}

/// 32 hex digits nobody can guess (std's `RandomState` is keyed from the operating
/// system's randomness); enough for credentials that live on loopback for one run.
fn random_token() -> String {
    let mut token = String::with_capacity(32);
    for _ in 0..2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0);
        let _ = write!(token, "{:016x}", hasher.finish());
    }
    token
}

/// Who a request is, by its token (what the proxy tells the server in its headers).
#[derive(Debug, Clone, Copy)]
struct User {
    name: &'static str,
    groups: &'static [&'static str],
}

/// Not in `system:masters`: the server asks the fake apiserver (SubjectAccessReview)
/// whether this user may read metrics.
const ADMIN: User = User {
    name: "demo-admin",
    groups: &[METRICS_VIEWERS, "system:authenticated"],
};

/// The group the fake apiserver's authorizer lets read metrics (as the
/// `system:aggregated-metrics-reader` role would).
const METRICS_VIEWERS: &str = "demo:metrics-viewers";

const METRICS_SERVER: User = User {
    name: "system:serviceaccount:kube-system:metrics-server",
    groups: &[
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
    ],
};

fn bearer_token<B>(request: &Request<B>) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// The demo's throw-away certificate authorities.
struct Pki {
    /// Signs the apiserver's, the kubelets' and the server's serving certificates.
    ca: CertifiedIssuer<'static, KeyPair>,
    /// Signs the aggregator's client certificate (`--requestheader-client-ca-file`).
    front_proxy_ca: CertifiedIssuer<'static, KeyPair>,
    /// One key for every kubelet (each has its own certificate).
    kubelet_key: KeyPair,
    front_proxy_key: KeyPair,
}

/// A certificate and its key, PEM encoded.
struct Pem {
    cert_pem: String,
    key_pem: String,
}

fn validity(params: &mut CertificateParams) {
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + Duration::from_secs(7 * 24 * 3600)).into();
}

fn new_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

impl Pki {
    fn generate() -> Result<Pki, rcgen::Error> {
        Ok(Pki {
            ca: new_ca("metrics-server-demo-ca")?,
            front_proxy_ca: new_ca("metrics-server-demo-front-proxy-ca")?,
            kubelet_key: KeyPair::generate()?,
            front_proxy_key: KeyPair::generate()?,
        })
    }

    /// A leaf for `key` signed by the cluster CA, or by the front-proxy CA for a client.
    fn leaf(
        &self,
        name: &str,
        sans: &[SanType],
        usage: ExtendedKeyUsagePurpose,
        key: &KeyPair,
    ) -> Result<Pem, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = sans.to_vec();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let issuer = match usage {
            ExtendedKeyUsagePurpose::ClientAuth => &self.front_proxy_ca,
            _ => &self.ca,
        };
        params.extended_key_usages = vec![usage];
        validity(&mut params);
        let cert = params.signed_by(key, issuer)?;
        Ok(Pem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving configuration for a certificate valid for `ip` (and `name` as a DNS name).
    fn serving_tls(&self, name: &str, ip: IpAddr) -> Result<Arc<ServerConfig>, RunError> {
        let key = KeyPair::generate().map_err(fail("generating a key"))?;
        self.server_config(name, ip, &key)
    }

    /// A kubelet's serving configuration: its own certificate for its address and name.
    fn kubelet_tls(&self, node: &str, ip: IpAddr) -> Result<Arc<ServerConfig>, RunError> {
        self.server_config(node, ip, &self.kubelet_key)
    }

    fn server_config(
        &self,
        name: &str,
        ip: IpAddr,
        key: &KeyPair,
    ) -> Result<Arc<ServerConfig>, RunError> {
        let dns = name.try_into().map_err(fail("certificate name"))?;
        let sans = [SanType::IpAddress(ip), SanType::DnsName(dns)];
        let pem = self
            .leaf(name, &sans, ExtendedKeyUsagePurpose::ServerAuth, key)
            .map_err(fail("generating a certificate"))?;
        let chain = certs::parse_certs_pem(pem.cert_pem.as_bytes(), "demo certificate")
            .map_err(fail("loading a certificate"))?;
        let key = certs::parse_key_pem(pem.key_pem.as_bytes(), "demo key")
            .map_err(fail("loading a key"))?;
        let mut config = ServerConfig::builder_with_provider(certs::provider())
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(fail("TLS configuration"))?;
        config.alpn_protocols = vec![certs::ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }

    /// The aggregator's client configuration towards the metrics server: the
    /// front-proxy certificate, and the cluster CA to verify the server with.
    fn front_proxy_client_tls(&self) -> Result<Arc<rustls::ClientConfig>, RunError> {
        let client = self
            .leaf(
                FRONT_PROXY_CN,
                &[],
                ExtendedKeyUsagePurpose::ClientAuth,
                &self.front_proxy_key,
            )
            .map_err(fail("front-proxy certificate"))?;
        let settings = TlsSettings {
            ca: Some(PemSource::Inline(self.ca.pem().into_bytes())),
            client_cert: Some(PemSource::Inline(client.cert_pem.into_bytes())),
            client_key: Some(PemSource::Inline(client.key_pem.into_bytes())),
            insecure: false,
            server_name: None,
        };
        certs::client_config(&settings).map_err(fail("front-proxy TLS configuration"))
    }
}

// ---------------------------------------------------------------------------------------
// Serving: one thread per listener, one per connection
// ---------------------------------------------------------------------------------------

type Tls = StreamOwned<ServerConnection, TcpStream>;

/// What a fake server answers a request with.
enum Answer {
    /// A whole response.
    Full(Response<Vec<u8>>),
    /// A watch was opened: `200` with a chunked body that [`Handler::stream`] writes;
    /// the connection closes when it ends.
    Watch(WatchId),
}

/// A fake server's behaviour.
trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request<Vec<u8>>) -> Answer;

    /// Writes the events of a watch [`Handler::handle`] opened, until it ends.
    fn stream(&self, _watch: WatchId, _body: &mut WatchBody<'_>) {}
}

/// The listening fake servers.
#[derive(Default)]
struct Servers {
    stop: Arc<AtomicBool>,
    listeners: Vec<(SocketAddr, JoinHandle<()>)>,
}

impl Servers {
    /// Serves `listener` with `handler` over TLS from a thread of its own.
    fn spawn(
        &mut self,
        name: &str,
        listener: TcpListener,
        tls: Arc<ServerConfig>,
        handler: Arc<dyn Handler>,
    ) -> Result<(), RunError> {
        let address = listener.local_addr().map_err(fail("listening"))?;
        let stop = Arc::clone(&self.stop);
        let name = name.to_owned();
        let thread = spawn_thread(&format!("{name}-accept"), move || {
            accept_loop(&name, &listener, &tls, &handler, &stop);
        })
        .map_err(fail("starting a thread"))?;
        self.listeners.push((address, thread));
        Ok(())
    }

    /// Stops accepting (waking each listener with a connection) and tells every
    /// connection to finish; they close within [`POLL`].
    fn shut_down(self) {
        self.stop.store(true, Ordering::Relaxed);
        for (address, thread) in self.listeners {
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                let _ = thread.join();
            }
        }
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.to_owned())
        .stack_size(THREAD_STACK)
        .spawn(f)
}

/// Decrements the connection count when a connection thread ends.
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(
    name: &str,
    listener: &TcpListener,
    tls: &Arc<ServerConfig>,
    handler: &Arc<dyn Handler>,
    stop: &Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for tcp in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(tcp) = tcp else {
            thread::sleep(POLL);
            continue;
        };
        if active.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let guard = Active(Arc::clone(&active));
        let (tls, handler, stop) = (Arc::clone(tls), Arc::clone(handler), Arc::clone(stop));
        let spawned = spawn_thread(name, move || {
            let _guard = guard;
            serve_connection(tcp, tls, &*handler, &stop);
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "demo: cannot serve a connection");
        }
    }
}

/// Serves one connection: TLS, then requests in order (keep-alive), until the client
/// closes, goes idle, or the demo stops.
fn serve_connection(
    tcp: TcpStream,
    tls: Arc<ServerConfig>,
    handler: &dyn Handler,
    stop: &AtomicBool,
) {
    if tcp.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(tls) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, tcp);
    let mut parser = metrics_core::http::RequestParser::new(Limits::default());
    let mut buf = vec![0; 16 * 1024];
    let mut last_read = Instant::now();
    loop {
        while let Some(event) = parser.poll_event() {
            let mut out = Vec::new();
            let keep_alive = match event {
                ServerEvent::Continue => {
                    encode_continue(&mut out);
                    true
                }
                ServerEvent::Reject(error) => {
                    encode_rejection(&error, &mut out);
                    false
                }
                ServerEvent::Request { request, context } => match handler.handle(&request) {
                    Answer::Full(response) => encode_response(&context, &response, &mut out),
                    Answer::Watch(id) => {
                        let head =
                            ResponseHead::new(StatusCode::OK).with_content_type("application/json");
                        let body = head.encode(&context, BodyLength::Chunked, &mut out);
                        let healthy = send(&mut stream, &out).is_ok();
                        let mut body = WatchBody {
                            stream: &mut stream,
                            encoder: Some(body),
                            stop,
                            healthy,
                        };
                        handler.stream(id, &mut body);
                        body.finish();
                        close(&mut stream);
                        return;
                    }
                },
            };
            if send(&mut stream, &out).is_err() {
                return;
            }
            if !keep_alive {
                close(&mut stream);
                return;
            }
        }
        if parser.is_closed() || stop.load(Ordering::Relaxed) {
            close(&mut stream);
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                parser.feed(&buf[..n]);
                last_read = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_read.elapsed() > IDLE_TIMEOUT {
                    close(&mut stream);
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn send(stream: &mut Tls, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

fn close(stream: &mut Tls) {
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

/// The chunked body of a watch response.
struct WatchBody<'a> {
    stream: &'a mut Tls,
    encoder: Option<BodyEncoder>,
    stop: &'a AtomicBool,
    /// Every write so far succeeded.
    healthy: bool,
}

impl WatchBody<'_> {
    /// Sends one event line; false once the client is gone.
    fn send(&mut self, line: &[u8]) -> bool {
        let Some(encoder) = self.encoder.as_mut().filter(|_| self.healthy) else {
            return false;
        };
        let mut out = Vec::with_capacity(line.len() + 16);
        self.healthy = encoder.write(line, &mut out).is_ok() && send(self.stream, &out).is_ok();
        self.healthy
    }

    /// Ends the body cleanly (once).
    fn finish(&mut self) {
        if let Some(encoder) = self.encoder.take() {
            let mut out = Vec::new();
            if encoder.finish(&mut out).is_ok() && self.healthy {
                self.healthy = send(self.stream, &out).is_ok();
            }
        }
    }

    /// Ends the body abruptly: the stream breaks as a reset connection would.
    fn abort(&mut self) {
        self.encoder = None;
        self.healthy = false;
    }

    /// Waits up to [`POLL`] for the client to hang up (a watch client sends nothing);
    /// false once it has, or once a write failed.
    fn wait(&mut self) -> bool {
        let mut buf = [0; 512];
        match self.stream.read(&mut buf) {
            Ok(0) => self.healthy = false,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => self.healthy = false,
        }
        self.healthy
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Answer {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Answer::Full(response)
}

fn respond_json(body: String) -> Answer {
    respond(200, "application/json", body.into_bytes())
}

fn respond_text(status: u16, body: &str) -> Answer {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

/// A Kubernetes `Status` error.
fn respond_status(code: u16, reason: &str, message: &str) -> Answer {
    let mut body =
        br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"#
            .to_vec();
    json::write_str(&mut body, message);
    body.extend_from_slice(br#","reason":"#);
    json::write_str(&mut body, reason);
    body.extend_from_slice(format!(r#","code":{code}}}"#).as_bytes());
    body.push(b'\n');
    respond(code, "application/json", body)
}

// ---------------------------------------------------------------------------------------
// Fake kubelet
// ---------------------------------------------------------------------------------------

/// One node's kubelet: `/metrics/resource` and `/stats/summary` rendered by the
/// generator at the time of the request, for the server's token only.
struct Kubelet {
    cluster: Arc<Cluster>,
    node: usize,
    /// The `Authorization` value accepted.
    authorization: String,
}

impl Handler for Kubelet {
    fn handle(&self, request: &Request<Vec<u8>>) -> Answer {
        let authorized = request
            .headers()
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == self.authorization.as_bytes());
        if !authorized {
            return respond_text(401, "Unauthorized\n");
        }
        if request.method() != Method::GET {
            return respond_text(405, "405 method not allowed\n");
        }
        let (format, content_type) = match request.uri().path() {
            "/metrics/resource" => (Format::Resource, "text/plain; version=0.0.4; charset=utf-8"),
            "/stats/summary" => (Format::Summary, "application/json"),
            "/healthz" => return respond_text(200, "ok"),
            _ => return respond_text(404, "404 page not found\n"),
        };
        let mut body = Vec::with_capacity(64 * 1024);
        self.cluster
            .render(self.node, runtime_tokio::wall(), format, &mut body);
        respond(200, content_type, body)
    }
}

// ---------------------------------------------------------------------------------------
// Fake apiserver
// ---------------------------------------------------------------------------------------

/// Discovery, nodes and pods, and the aggregator's proxy to the metrics server.
struct FakeApiserver {
    objects: Mutex<Apiserver>,
    address: SocketAddr,
    tokens: Tokens,
    metrics_server: SocketAddr,
    proxy_tls: Arc<rustls::ClientConfig>,
    /// The `extension-apiserver-authentication` ConfigMap, as JSON.
    authentication_configmap: String,
}

/// Request headers the proxy passes on (credentials and hop-by-hop headers stay behind,
/// and so do identity headers a client might try to set itself).
const FORWARDED_REQUEST_HEADERS: &[&str] = &["accept", "content-type", "user-agent", "audit-id"];

/// Response headers the proxy does not pass back (the codec frames the response again).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
];

const API_GROUP_LIST: &str = r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}}]}"#;

const CORE_V1_RESOURCES: &str = r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"nodes","singularName":"node","namespaced":false,"kind":"Node","verbs":["get","list","watch"],"shortNames":["no"]},{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list","watch"],"shortNames":["po"],"categories":["all"]}]}"#;

const VERSION_INFO: &str = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0-metrics-server-demo","gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean","buildDate":"2025-06-10T09:40:00Z","goVersion":"go1.23.0","compiler":"gc","platform":"linux/amd64"}"#;

impl FakeApiserver {
    fn objects(&self) -> MutexGuard<'_, Apiserver> {
        match self.objects.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn authenticate(&self, request: &Request<Vec<u8>>) -> Option<User> {
        match bearer_token(request)? {
            t if t == self.tokens.admin => Some(ADMIN),
            t if t == self.tokens.metrics_server => Some(METRICS_SERVER),
            _ => None,
        }
    }

    /// Nodes and pods, by the Sans-IO fake.
    fn objects_answer(&self, request: &Request<Vec<u8>>) -> Answer {
        let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        match self.objects().get(path_and_query, accept) {
            Reply::Complete {
                status,
                content_type,
                body,
            } => respond(status, content_type, body),
            Reply::Watch(id) => Answer::Watch(id),
            Reply::Unreachable(reason) => respond_status(503, "ServiceUnavailable", &reason),
        }
    }

    /// What the aggregator does for an APIService: the request goes to the metrics
    /// server over TLS with the front-proxy client certificate, the caller's identity in
    /// `X-Remote-User` and `X-Remote-Group`, and no credentials of its own.
    fn forward(&self, request: &Request<Vec<u8>>, user: User) -> Result<Response<Vec<u8>>, String> {
        let target = self.metrics_server;
        let tcp = TcpStream::connect_timeout(&target, PROXY_CONNECT_TIMEOUT)
            .map_err(|e| format!("dial tcp {target}: {e}"))?;
        tcp.set_read_timeout(Some(PROXY_TIMEOUT))
            .and_then(|()| tcp.set_write_timeout(Some(PROXY_TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let conn =
            ClientConnection::new(Arc::clone(&self.proxy_tls), ServerName::from(target.ip()))
                .map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, tcp);

        let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let mut upstream = Request::builder()
            .method(request.method().clone())
            .uri(path_and_query)
            .header(header::HOST, target.to_string())
            .header(header::CONNECTION, "close")
            .header("x-remote-user", user.name);
        for group in user.groups {
            upstream = upstream.header("x-remote-group", *group);
        }
        for (name, value) in request.headers() {
            if FORWARDED_REQUEST_HEADERS.contains(&name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        let upstream = upstream
            .body(request.body().clone())
            .map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        encode_request(&upstream, &mut bytes).map_err(|e| e.to_string())?;
        stream
            .write_all(&bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| e.to_string())?;

        let mut parser = ResponseParser::new(
            request.method(),
            BodyMode::Buffered,
            ResponseLimits::default(),
        );
        let mut head = None;
        let mut body = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        let mut eof = false;
        loop {
            while let Some(event) = parser.poll_event() {
                match event {
                    ClientEvent::Head(h) => head = Some(h),
                    ClientEvent::Body(b) => body = b,
                    ClientEvent::Line(_) => {}
                    ClientEvent::End { .. } => {
                        let (mut parts, ()) = head.ok_or("a response without a head")?.into_parts();
                        for name in HOP_BY_HOP {
                            parts.headers.remove(*name);
                        }
                        return Ok(Response::from_parts(parts, body));
                    }
                    ClientEvent::Error(e) => return Err(e.to_string()),
                }
            }
            if eof {
                return Err("the connection closed before the response ended".to_owned());
            }
            match stream.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => parser.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => eof = true,
                Err(e) => return Err(e.to_string()),
            }
            if eof {
                parser.feed_eof();
            }
        }
    }

    /// How many metrics the API serves at `path` (a list), as the administrator.
    fn count_metrics(&self, path: &str) -> usize {
        let request = Request::builder()
            .uri(path)
            .header(header::ACCEPT, "application/json")
            .body(Vec::new());
        let Ok(request) = request else { return 0 };
        match self.forward(&request, ADMIN) {
            // Each NodeMetrics or PodMetrics item has exactly one `window`, and nothing
            // else in the list does.
            Ok(response) if response.status() == StatusCode::OK => response
                .body()
                .windows(b"\"window\":".len())
                .filter(|w| *w == b"\"window\":")
                .count(),
            _ => 0,
        }
    }
}

impl Handler for FakeApiserver {
    fn handle(&self, request: &Request<Vec<u8>>) -> Answer {
        let Some(user) = self.authenticate(request) else {
            return respond_status(401, "Unauthorized", "Unauthorized");
        };
        let path = request.uri().path();
        if path == METRICS_GROUP || path.starts_with("/apis/metrics.k8s.io/") {
            return match self.forward(request, user) {
                Ok(response) => Answer::Full(response),
                Err(error) => {
                    tracing::debug!(%error, "demo: proxying to the metrics server failed");
                    let message = format!("error trying to reach service: {error}");
                    respond_status(503, "ServiceUnavailable", &message)
                }
            };
        }
        if request.method() == Method::POST && path == TOKEN_REVIEW_PATH {
            return self.review_token(request.body());
        }
        if request.method() == Method::POST && path == SUBJECT_ACCESS_REVIEW_PATH {
            return review_access(request.body());
        }
        if request.method() != Method::GET {
            return respond_status(
                405,
                "MethodNotAllowed",
                "the demo apiserver only serves GET",
            );
        }
        match path.trim_end_matches('/') {
            "/api" => respond_json(format!(
                r#"{{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{{"clientCIDR":"0.0.0.0/0","serverAddress":"{}"}}]}}"#,
                self.address
            )),
            "/apis" => respond_json(API_GROUP_LIST.to_owned()),
            "/api/v1" => respond_json(CORE_V1_RESOURCES.to_owned()),
            "/version" => respond_json(VERSION_INFO.to_owned()),
            AUTHENTICATION_CONFIGMAP => respond_json(self.authentication_configmap.clone()),
            "/healthz" | "/livez" | "/readyz" => respond_text(200, "ok"),
            _ => self.objects_answer(request),
        }
    }

    fn stream(&self, watch: WatchId, body: &mut WatchBody<'_>) {
        let timeout = self
            .objects()
            .watch_info(watch)
            .and_then(|info| info.timeout)
            .unwrap_or(WATCH_TIMEOUT);
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = Vec::new();
            {
                let mut objects = self.objects();
                while let Some(output) = objects.poll_watch(watch) {
                    let last = !matches!(output, WatchOutput::Line(_));
                    pending.push(output);
                    if last {
                        break;
                    }
                }
            }
            for output in pending {
                match output {
                    WatchOutput::Line(line) => {
                        if !body.send(&line) {
                            self.objects().cancel_watch(watch);
                            return;
                        }
                    }
                    WatchOutput::End => return,
                    WatchOutput::Broken(_) => return body.abort(),
                }
            }
            if body.stopping() {
                self.objects().cancel_watch(watch);
                return;
            }
            if Instant::now() >= deadline {
                // Ends it cleanly: the next poll yields `End`.
                self.objects().close_watch(watch);
                continue;
            }
            if !body.wait() {
                self.objects().cancel_watch(watch);
                return;
            }
        }
    }
}

impl FakeApiserver {
    /// A TokenReview: the demo's two tokens are its two users; anything else is not
    /// authenticated.
    fn review_token(&self, body: &[u8]) -> Answer {
        let token = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["spec"]["token"].as_str().map(str::to_owned));
        let user = match token {
            Some(t) if t == self.tokens.admin => Some(ADMIN),
            Some(t) if t == self.tokens.metrics_server => Some(METRICS_SERVER),
            _ => None,
        };
        let status = match user {
            Some(user) => serde_json::json!({
                "authenticated": true,
                "user": {"username": user.name, "groups": user.groups},
            }),
            None => serde_json::json!({"authenticated": false}),
        };
        let review = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "status": status,
        });
        respond_json(review.to_string())
    }
}

/// A SubjectAccessReview: members of [`METRICS_VIEWERS`] may read metrics and GET any
/// non-resource path (discovery, OpenAPI); nobody else may do anything.
fn review_access(body: &[u8]) -> Answer {
    let review: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let spec = &review["spec"];
    let viewer = spec["groups"]
        .as_array()
        .is_some_and(|groups| groups.iter().any(|g| g == METRICS_VIEWERS));
    let resource = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    let reads_metrics = resource["group"] == "metrics.k8s.io"
        && matches!(resource["verb"].as_str(), Some("get" | "list" | "watch"));
    let reads_path = non_resource["verb"] == "get";
    let allowed = viewer && (reads_metrics || reads_path);
    let status = if allowed {
        serde_json::json!({"allowed": true, "reason": "demo: metrics viewers may read"})
    } else {
        serde_json::json!({"allowed": false})
    };
    let answer = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "status": status,
    });
    respond_json(answer.to_string())
}

/// The ConfigMap kube-apiserver publishes for aggregated servers: the CA of client
/// certificates, and how to trust the front proxy.
fn authentication_configmap(pki: &Pki) -> String {
    let mut data = Vec::new();
    let entries = [
        ("client-ca-file", pki.ca.pem()),
        (
            "requestheader-allowed-names",
            format!(r#"["{FRONT_PROXY_CN}"]"#),
        ),
        ("requestheader-client-ca-file", pki.front_proxy_ca.pem()),
        (
            "requestheader-extra-headers-prefix",
            r#"["X-Remote-Extra-"]"#.to_owned(),
        ),
        (
            "requestheader-group-headers",
            r#"["X-Remote-Group"]"#.to_owned(),
        ),
        (
            "requestheader-username-headers",
            r#"["X-Remote-User"]"#.to_owned(),
        ),
    ];
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            data.push(b',');
        }
        json::write_str(&mut data, key);
        data.push(b':');
        json::write_str(&mut data, value);
    }
    format!(
        r#"{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"extension-apiserver-authentication","namespace":"kube-system","uid":"6c1d3a52-52c4-4f2e-9d5e-0c0ffee0d3a0","resourceVersion":"1","creationTimestamp":"2025-06-10T09:40:00Z"}},"data":{{{}}}}}"#,
        String::from_utf8_lossy(&data)
    )
}

// ---------------------------------------------------------------------------------------
// Telling the user
// ---------------------------------------------------------------------------------------

/// How many nodes and pods the server should have metrics for.
#[derive(Debug, Clone, Copy)]
struct Expected {
    nodes: usize,
    pods: usize,
}

impl Expected {
    /// Those on nodes the server's `--node-selector` selects.
    fn new(cluster: &Cluster, options: &Options) -> Expected {
        let selector = LabelSelector::parse(&options.kubelet.node_selector)
            .unwrap_or_else(|_| LabelSelector::everything());
        let selected = cluster
            .nodes()
            .iter()
            .filter(|n| selector.matches(&n.labels));
        let (mut nodes, mut pods) = (0, 0);
        for node in selected {
            nodes += 1;
            pods += node.pods().len();
        }
        Expected { nodes, pods }
    }
}

/// Prints the `ready:` line once the metrics API serves every expected node and pod.
fn announce_readiness(
    api: &FakeApiserver,
    expected: Expected,
    stop: &AtomicBool,
    started: Instant,
) {
    let mut hinted = false;
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(500));
        let nodes = api.count_metrics(NODE_METRICS);
        let pods = if nodes > 0 {
            api.count_metrics(POD_METRICS)
        } else {
            0
        };
        if nodes > 0 && nodes >= expected.nodes && pods >= expected.pods {
            say!(
                "ready: the metrics API serves {nodes} nodes and {pods} pods ({:.1}s after start)",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if !hinted && started.elapsed() > READY_HINT_AFTER {
            hinted = true;
            say!(
                "still waiting for metrics: {nodes} of {} nodes and {pods} of {} pods so far (see the server's log)",
                expected.nodes,
                expected.pods
            );
        }
    }
}

struct Banner<'a> {
    demo: &'a DemoOptions,
    options: &'a Options,
    cluster: &'a Cluster,
    apiserver: SocketAddr,
    metrics_server: SocketAddr,
    kubelets: &'a [SocketAddr],
    files: &'a Files,
    expected: Expected,
}

fn print_banner(b: &Banner<'_>) {
    let kubectl = format!(
        "kubectl --kubeconfig {}",
        shell_quote(&b.files.kubeconfig.to_string_lossy())
    );
    let resolution = go_duration(b.options.metric_resolution);
    say!(
        "metrics-server demo: {} simulated nodes with {} pods each (seed {}); the server runs on {}",
        b.demo.nodes,
        b.demo.pods_per_node,
        b.demo.seed,
        b.options.runtime
    );
    say!("  apiserver       https://{}", b.apiserver);
    let (first, last) = (b.kubelets.first(), b.kubelets.last());
    if let (Some(first), Some(last)) = (first, last) {
        let range = if first == last {
            format!("https://{first}")
        } else {
            format!("https://{first} … https://{last}")
        };
        if b.options.kubelet.use_node_status_port {
            say!(
                "  kubelets        {range} (some could not bind 127.x.y.z:{KUBELET_PORT}; using node status ports)"
            );
        } else {
            say!("  kubelets        {range} (one loopback address per node)");
        }
    }
    say!(
        "  metrics-server  https://{} (--metric-resolution={resolution})",
        b.metrics_server
    );
    say!(
        "  work directory  {} (removed on exit)",
        b.files.dir.display()
    );
    say!("  kubeconfig      {}", b.files.kubeconfig.display());
    say!();
    say!(
        "Try these once the \"ready\" line appears (metrics need two scrapes, {resolution} apart):"
    );
    say!("  {kubectl} top nodes");
    say!("  {kubectl} top pods -A");
    let pod = b
        .cluster
        .nodes()
        .iter()
        .flat_map(|n| n.pods())
        .max_by_key(|p| p.containers().len());
    if let Some(pod) = pod {
        say!(
            "  {kubectl} top pod -n {} {} --containers",
            pod.namespace,
            pod.name
        );
    }
    say!("  {kubectl} get --raw {NODE_METRICS}");
    say!("  {kubectl} get nodes.metrics.k8s.io");
    say!(
        "Waiting for metrics of {} nodes and {} pods. Stop with Ctrl-C.",
        b.expected.nodes,
        b.expected.pods
    );
}

/// Quotes `s` for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@,%".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/tmp/a-b/kubeconfig"), "/tmp/a-b/kubeconfig");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let request = |value: &str| {
            Request::builder()
                .header(header::AUTHORIZATION, value)
                .body(())
                .expect("valid request")
        };
        assert_eq!(bearer_token(&request("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&request("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&request("Basic abc")), None);
    }

    #[test]
    fn kubeconfig_is_read_back_by_the_server() {
        let text = kubeconfig("https://127.0.0.1:6443", "PEM", "demo-admin", "t0ken");
        let parsed = crate::kubeconfig::Kubeconfig::parse(&text).expect("valid kubeconfig");
        let rest = parsed.resolve(None, None).expect("resolvable");
        assert_eq!(rest.server.port, 6443);
        assert_eq!(rest.tls.ca, Some(PemSource::Inline(b"PEM".to_vec())));
        assert!(
            matches!(rest.auth, crate::kubeconfig::Auth::Bearer { ref token, .. } if token == "t0ken")
        );
    }

    #[test]
    fn authentication_configmap_holds_both_cas_and_the_front_proxy_name() {
        let pki = Pki::generate().expect("certificates");
        let v: serde_json::Value =
            serde_json::from_str(&authentication_configmap(&pki)).expect("JSON");
        assert_eq!(v["kind"], "ConfigMap");
        assert_eq!(v["metadata"]["name"], "extension-apiserver-authentication");
        let data = &v["data"];
        assert_eq!(data["client-ca-file"], pki.ca.pem());
        assert_eq!(
            data["requestheader-client-ca-file"],
            pki.front_proxy_ca.pem()
        );
        let names: Vec<String> = serde_json::from_str(
            data["requestheader-allowed-names"]
                .as_str()
                .expect("a string"),
        )
        .expect("a JSON list");
        assert_eq!(names, [FRONT_PROXY_CN]);
    }

    #[test]
    fn nodes_get_their_kubelet_endpoint_and_a_capacity() {
        let cluster = Cluster::new(&ClusterSpec::new(1, 2, 3));
        let kubelets = [
            SocketAddr::from(([127, 1, 0, 1], KUBELET_PORT)),
            SocketAddr::from(([127, 0, 0, 1], 40_000)),
        ];
        let objects = apiserver_objects(&cluster, &kubelets);
        let nodes: Vec<&NodeObject> = objects.nodes().collect();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].kubelet_port, 40_000);
        assert!(
            nodes[1]
                .addresses
                .iter()
                .any(|a| a.kind == "InternalIP" && a.address == "127.0.0.1")
        );
        for node in nodes {
            let cores: u64 = node.capacity["cpu"].parse().expect("whole cores");
            assert!(cores >= 8 && cores.is_multiple_of(4));
            assert!(node.allocatable["memory"].ends_with("Ki"));
        }
        assert_eq!(objects.pods().count(), 6);
    }
}
