//! Command-line flags with upstream metrics-server's names, defaults and validation.
//!
//! [`parse`] is the whole entry point. It takes the process arguments (the first item is
//! the program name, as `std::env::args()` yields it) and returns typed [`Options`] plus
//! warnings to log, or a [`FlagError`] whose `Display` is ONE line ready to print as
//! `Error: <line>` (what cobra prints upstream) before exiting with
//! [`FlagError::exit_code`].
//!
//! How upstream's flag forms map here (upstream parses with Go's `pflag`):
//! - value flags: `--name=value` and `--name value`; the next argument is taken as the
//!   value even when it starts with `-` (as pflag does, so `--kubelet-request-timeout -1s`
//!   reaches validation);
//! - booleans: `--name`, `--name=true`, `--name=false` (Go's `strconv.ParseBool` spellings:
//!   `1 t T TRUE true True 0 f F FALSE false False`); `--name false` is NOT a value;
//! - lists: comma separated (CSV, as pflag's `StringSlice`), repeatable; the first use
//!   replaces the default and later uses append; `--name=` gives an empty list;
//! - durations: Go's `time.ParseDuration` grammar ([`parse_go_duration`]);
//! - integers: Go's `strconv.ParseInt(s, 0, 64)` (so `0x10` and `010` are hex and octal);
//! - a flag given twice: the last value wins;
//! - verbosity: `-v 2`, `-v=2`, `-v2`, `--v=2`.
//!
//! Flags upstream accepts that only tune Go internals or features this server does not
//! have (klog's `--log_file`, `--alsologtostderr`, `--vmodule`, audit logging, HTTP/2
//! tuning, ...; see [`IGNORED_FLAGS`]) are removed by a pre-pass before clap sees the
//! arguments, each with a warning, so a manifest written for upstream still starts. Both
//! `_` and `-` spellings are recognised, and so is a single leading dash
//! (`-logtostderr`, which pflag would otherwise read as `-l ogtostderr`). Any other
//! unknown flag is an error, as upstream.
//!
//! Validation runs in upstream's order and reports the first failure only
//! (metrics-api spec 6.2): kubelet-client combinations, `--metric-resolution`, the
//! resolution / timeout ratio, logging, generic server options, then this server's own
//! checks (serving TLS settings, `--node-selector` syntax). `--version` skips validation,
//! as upstream prints the version before validating.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// The release string `--version` prints (upstream prints e.g. `v0.9.0`).
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Default `--kubelet-preferred-address-types` (upstream's `DefaultAddressTypePriority`).
pub const DEFAULT_ADDRESS_TYPES: [&str; 5] = [
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// Smallest accepted `--metric-resolution`.
pub const MIN_METRIC_RESOLUTION: Duration = Duration::from_secs(10);

/// Default cap on one kubelet response body (`--kubelet-max-response-bytes`), 64 MiB.
pub const DEFAULT_KUBELET_MAX_RESPONSE_BYTES: u64 = 64 << 20;

// ---------------------------------------------------------------------------------------
// Public option types
// ---------------------------------------------------------------------------------------

/// Everything the command line says, typed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Serve (the default) or run the embedded demo cluster.
    pub mode: Mode,
    /// `--version`: print [`VERSION`] and exit 0 (validation was skipped).
    pub show_version: bool,
    /// `--metric-resolution` (default 1m0s, at least 10s).
    pub metric_resolution: Duration,
    /// `--kubeconfig`; `None` means the in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// Kubelet client flags.
    pub kubelet: KubeletOptions,
    /// Secure serving and generic server flags.
    pub serving: ServingOptions,
    /// Delegated authentication flags.
    pub authentication: AuthenticationOptions,
    /// Delegated authorization flags.
    pub authorization: AuthorizationOptions,
    /// `-v` and `--logging-format`.
    pub logging: LoggingOptions,
    /// `--profiling` (default true upstream; no effect here, there is no pprof).
    pub profiling: bool,
    /// `--contention-profiling` (no effect here).
    pub contention_profiling: bool,
    /// `--runtime` (this server's own flag): which async runtime drives the core.
    pub runtime: Runtime,
}

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run the metrics server.
    Serve,
    /// `metrics-server demo`: an embedded simulated cluster on loopback.
    Demo(DemoOptions),
}

/// Flags of the `demo` subcommand.
///
/// The demo also has its own defaults for two server flags when they are not given:
/// `--metric-resolution` [`DEMO_METRIC_RESOLUTION`] and `--kubelet-request-timeout`
/// [`DEMO_KUBELET_REQUEST_TIMEOUT`] (already applied in [`Options`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// `--nodes` (default 3, at least 1).
    pub nodes: u32,
    /// `--pods-per-node` (default 10).
    pub pods_per_node: u32,
    /// `--seed` (default 1): the simulated cluster's seed (names, rates, sizes).
    pub seed: u64,
    /// `--kubeconfig-out`: where to write the kubeconfig for kubectl (`None`: in the
    /// demo's temporary directory).
    pub kubeconfig_out: Option<PathBuf>,
    /// `--exit-after`: stop by itself after this long (`None`: at Ctrl-C or SIGTERM).
    pub exit_after: Option<Duration>,
}

/// `--metric-resolution` in the demo when not given (the server's default is 1m0s).
pub const DEMO_METRIC_RESOLUTION: Duration = Duration::from_secs(10);

/// `--kubelet-request-timeout` in the demo when not given (it must stay below 90% of the
/// resolution; the fake kubelets are on loopback).
pub const DEMO_KUBELET_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Kubelet client flags (kubelet-and-storage spec 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletOptions {
    /// `--kubelet-port` (default 10250).
    pub port: u16,
    /// `--kubelet-use-node-status-port`.
    pub use_node_status_port: bool,
    /// `--kubelet-preferred-address-types`, in priority order, case-sensitive, unvalidated
    /// (unknown names never match, as upstream).
    pub preferred_address_types: Vec<String>,
    /// `--kubelet-insecure-tls`.
    pub insecure_tls: bool,
    /// `--kubelet-certificate-authority`.
    pub certificate_authority: Option<PathBuf>,
    /// `--kubelet-client-certificate`.
    pub client_certificate: Option<PathBuf>,
    /// `--kubelet-client-key`.
    pub client_key: Option<PathBuf>,
    /// `--kubelet-request-timeout` (default 10s, positive).
    pub request_timeout: Duration,
    /// `--deprecated-kubelet-completely-insecure`: plain HTTP, no credentials.
    pub completely_insecure: bool,
    /// `-l` / `--node-selector` as given ("" selects every node); its syntax was checked.
    pub node_selector: String,
    /// `--prefer-summary-api` (this server's own): scrape `/stats/summary` instead of
    /// `/metrics/resource`.
    pub prefer_summary_api: bool,
    /// `--kubelet-max-response-bytes` (this server's own): a larger body fails the node.
    pub max_response_bytes: u64,
}

/// Secure serving and generic server flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingOptions {
    /// `--bind-address` (default 0.0.0.0).
    pub bind_address: IpAddr,
    /// `--secure-port` (default 443; 0 means do not serve HTTPS, as upstream).
    pub secure_port: u16,
    /// `--cert-dir` (default `apiserver.local.config/certificates`); empty means a
    /// generated certificate stays in memory.
    pub cert_dir: PathBuf,
    /// `--tls-cert-file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `--tls-private-key-file`.
    pub tls_private_key_file: Option<PathBuf>,
    /// `--tls-min-version` (default TLS 1.2; 1.0 and 1.1 are raised to 1.2 with a warning).
    pub tls_min_version: TlsMinVersion,
    /// `--tls-cipher-suites`: Go (IANA) names, each known to Go; empty means defaults.
    /// TLS 1.3 suites are always enabled, as in Go. See `certs::cipher_suites`.
    pub tls_cipher_suites: Vec<String>,
    /// `--max-requests-inflight` (default 400, 0 = unlimited).
    pub max_requests_inflight: u32,
    /// `--shutdown-delay-duration` (default 0): `/readyz` fails during this delay while
    /// requests are still served.
    pub shutdown_delay: Duration,
    /// `--advertise-address` (used only in `/apis` `serverAddressByClientCIDRs`).
    pub advertise_address: Option<IpAddr>,
    /// `--external-hostname` (used only in `/apis` `serverAddressByClientCIDRs`).
    pub external_hostname: Option<String>,
}

/// Minimum TLS version served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsMinVersion {
    /// TLS 1.2 (the default).
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Delegated authentication flags (metrics-api spec 5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationOptions {
    /// `--authentication-kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--authentication-skip-lookup`.
    pub skip_lookup: bool,
    /// `--authentication-tolerate-lookup-failure`.
    pub tolerate_lookup_failure: bool,
    /// `--authentication-token-webhook-cache-ttl` (default 10s; negative counts as 0).
    pub token_webhook_cache_ttl: Duration,
    /// `--client-ca-file`.
    pub client_ca_file: Option<PathBuf>,
    /// `--requestheader-*`.
    pub requestheader: RequestHeaderOptions,
}

/// `--requestheader-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderOptions {
    /// `--requestheader-client-ca-file`; when set, the other flags here are used instead
    /// of the `extension-apiserver-authentication` ConfigMap.
    pub client_ca_file: Option<PathBuf>,
    /// `--requestheader-allowed-names` (default empty = any CN the CA signed).
    pub allowed_names: Vec<String>,
    /// `--requestheader-username-headers` (default `x-remote-user`).
    pub username_headers: Vec<String>,
    /// `--requestheader-group-headers` (default `x-remote-group`).
    pub group_headers: Vec<String>,
    /// `--requestheader-extra-headers-prefix` (default `x-remote-extra-`).
    pub extra_headers_prefix: Vec<String>,
    /// `--requestheader-uid-headers` (default empty).
    pub uid_headers: Vec<String>,
}

/// Delegated authorization flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationOptions {
    /// `--authorization-kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--authorization-always-allow-paths` (default `/healthz,/readyz,/livez`).
    pub always_allow_paths: Vec<String>,
    /// `--authorization-webhook-cache-authorized-ttl` (default 10s).
    pub webhook_cache_authorized_ttl: Duration,
    /// `--authorization-webhook-cache-unauthorized-ttl` (default 10s).
    pub webhook_cache_unauthorized_ttl: Duration,
}

/// Logging flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggingOptions {
    /// `-v` / `--v` (klog verbosity, default 0). See `logging` for the level mapping.
    pub verbosity: u32,
    /// `--logging-format` (default text).
    pub format: LogFormat,
}

/// `--logging-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// `--runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// tokio (the default).
    Tokio,
    /// smol / async-io.
    Smol,
}

impl Runtime {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Tokio => "tokio",
            Runtime::Smol => "smol",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Runtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tokio" => Ok(Runtime::Tokio),
            "smol" => Ok(Runtime::Smol),
            _ => Err("must be one of: tokio, smol".to_owned()),
        }
    }
}

impl LogFormat {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Why the command line was refused (or `--help` was asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// `-h` / `--help`: the rendered help text; print it to stdout and exit 0.
    Help(String),
    /// A bad flag or value, or a failed validation: one line naming the flag and the
    /// reason, in upstream's wording where upstream has one. Exit status 2 (upstream
    /// panics, which also exits 2).
    Invalid(String),
}

impl FlagError {
    /// Process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            FlagError::Help(_) => 0,
            FlagError::Invalid(_) => 2,
        }
    }

    /// The message (help text or the one-line error).
    pub fn message(&self) -> &str {
        match self {
            FlagError::Help(s) | FlagError::Invalid(s) => s,
        }
    }

    fn invalid(msg: impl Into<String>) -> FlagError {
        FlagError::Invalid(msg.into())
    }
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for FlagError {}

impl Options {
    /// The options an empty command line gives (upstream's binary defaults plus ours).
    pub fn defaults() -> Options {
        match parse(["metrics-server".to_owned()]) {
            Ok((options, _)) => options,
            // The defaults are constants checked by the tests; failing here is a bug.
            Err(e) => panic!("default flags must parse: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Flag tables
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Go boolean: `--x`, `--x=true|false`.
    Bool,
    /// One value: `--x=v` or `--x v`.
    Value,
    /// CSV list, repeatable.
    List,
}

struct Spec {
    name: &'static str,
    short: Option<char>,
    kind: Kind,
    /// Upstream's default, in the flag's own syntax ("" = none).
    default: &'static str,
    value_name: &'static str,
    heading: &'static str,
    /// Also accepted after the `demo` subcommand.
    global: bool,
    help: &'static str,
}

const H_MS: &str = "Metrics server flags";
const H_KUBELET: &str = "Kubelet client flags";
const H_SERVING: &str = "Apiserver secure serving flags";
const H_AUTHN: &str = "Apiserver authentication flags";
const H_AUTHZ: &str = "Apiserver authorization flags";
const H_GENERIC: &str = "Generic flags";
const H_FEATURES: &str = "Features flags";
const H_LOGGING: &str = "Logging flags";

const fn spec(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    value_name: &'static str,
    heading: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        name,
        short: None,
        kind,
        default,
        value_name,
        heading,
        global: false,
        help,
    }
}

const fn global(mut s: Spec) -> Spec {
    s.global = true;
    s
}

const fn short(mut s: Spec, c: char) -> Spec {
    s.short = Some(c);
    s
}

use Kind::{Bool, List, Value};

/// Every flag this server parses, with upstream's defaults.
#[rustfmt::skip]
const SPECS: &[Spec] = &[
    // metrics server
    spec("kubeconfig", Value, "", "string", H_MS, "The path to the kubeconfig used to connect to the Kubernetes API server and the Kubelets (defaults to in-cluster config)"),
    global(spec("metric-resolution", Value, "1m0s", "duration", H_MS, "The resolution at which metrics-server will retain metrics, must set value at least 10s.")),
    spec("version", Bool, "false", "bool", H_MS, "Show version"),
    global(spec("runtime", Value, "tokio", "tokio|smol", H_MS, "The async runtime that drives the server (this server's own flag).")),
    // kubelet client
    spec("deprecated-kubelet-completely-insecure", Bool, "false", "bool", H_KUBELET, "DEPRECATED: Do not use any encryption, authorization, or authentication when communicating with the Kubelet."),
    spec("kubelet-certificate-authority", Value, "", "string", H_KUBELET, "Path to the CA to use to validate the Kubelet's serving certificates."),
    spec("kubelet-client-certificate", Value, "", "string", H_KUBELET, "Path to a client cert file for TLS."),
    spec("kubelet-client-key", Value, "", "string", H_KUBELET, "Path to a client key file for TLS."),
    spec("kubelet-insecure-tls", Bool, "false", "bool", H_KUBELET, "Do not verify CA of serving certificates presented by Kubelets.  For testing purposes only."),
    spec("kubelet-port", Value, "10250", "int", H_KUBELET, "The port to use to connect to Kubelets."),
    spec("kubelet-preferred-address-types", List, "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP", "strings", H_KUBELET, "The priority of node address types to use when determining which address to use to connect to a particular node"),
    spec("kubelet-request-timeout", Value, "10s", "duration", H_KUBELET, "The length of time to wait before giving up on a single request to Kubelet. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h)."),
    spec("kubelet-use-node-status-port", Bool, "false", "bool", H_KUBELET, "Use the port in the node status. Takes precedence over --kubelet-port flag."),
    short(spec("node-selector", Value, "", "string", H_KUBELET, "Selector (label query) to filter on, not including uninitialized ones, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2)."), 'l'),
    spec("prefer-summary-api", Bool, "false", "bool", H_KUBELET, "Scrape the kubelet Summary API (/stats/summary) instead of /metrics/resource (this server's own flag)."),
    spec("kubelet-max-response-bytes", Value, "64Mi", "bytes", H_KUBELET, "Largest kubelet response body accepted; a larger one fails that node's scrape. Plain bytes or a Ki/Mi/Gi suffix (this server's own flag)."),
    // secure serving
    spec("bind-address", Value, "0.0.0.0", "ip", H_SERVING, "The IP address on which to listen for the --secure-port port. If blank or an unspecified address (0.0.0.0 or ::), all interfaces will be used."),
    spec("cert-dir", Value, "apiserver.local.config/certificates", "string", H_SERVING, "The directory where the TLS certs are located. If --tls-cert-file and --tls-private-key-file are provided, this flag will be ignored."),
    spec("secure-port", Value, "443", "int", H_SERVING, "The port on which to serve HTTPS with authentication and authorization. If 0, don't serve HTTPS at all."),
    spec("tls-cert-file", Value, "", "string", H_SERVING, "File containing the default x509 Certificate for HTTPS. (CA cert, if any, concatenated after server cert). If HTTPS serving is enabled, and --tls-cert-file and --tls-private-key-file are not provided, a self-signed certificate and key are generated for the public address and saved to the directory specified by --cert-dir."),
    spec("tls-cipher-suites", List, "", "strings", H_SERVING, "Comma-separated list of cipher suites for the server. If omitted, the default cipher suites will be used."),
    spec("tls-min-version", Value, "", "string", H_SERVING, "Minimum TLS version supported. Possible values: VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13"),
    spec("tls-private-key-file", Value, "", "string", H_SERVING, "File containing the default x509 private key matching --tls-cert-file."),
    // authentication
    spec("authentication-kubeconfig", Value, "", "string", H_AUTHN, "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create tokenreviews.authentication.k8s.io."),
    spec("authentication-skip-lookup", Bool, "false", "bool", H_AUTHN, "If false, the authentication-kubeconfig will be used to lookup missing authentication configuration from the cluster."),
    spec("authentication-token-webhook-cache-ttl", Value, "10s", "duration", H_AUTHN, "The duration to cache responses from the webhook token authenticator."),
    spec("authentication-tolerate-lookup-failure", Bool, "false", "bool", H_AUTHN, "If true, failures to look up missing authentication configuration from the cluster are not considered fatal. Note that this can result in authentication that treats all requests as anonymous."),
    spec("client-ca-file", Value, "", "string", H_AUTHN, "If set, any request presenting a client certificate signed by one of the authorities in the client-ca-file is authenticated with an identity corresponding to the CommonName of the client certificate."),
    spec("requestheader-allowed-names", List, "", "strings", H_AUTHN, "List of client certificate common names to allow to provide usernames in headers specified by --requestheader-username-headers. If empty, any client certificate validated by the authorities in --requestheader-client-ca-file is allowed."),
    spec("requestheader-client-ca-file", Value, "", "string", H_AUTHN, "Root certificate bundle to use to verify client certificates on incoming requests before trusting usernames in headers specified by --requestheader-username-headers."),
    spec("requestheader-extra-headers-prefix", List, "x-remote-extra-", "strings", H_AUTHN, "List of request header prefixes to inspect. X-Remote-Extra- is suggested."),
    spec("requestheader-group-headers", List, "x-remote-group", "strings", H_AUTHN, "List of request headers to inspect for groups. X-Remote-Group is suggested."),
    spec("requestheader-uid-headers", List, "", "strings", H_AUTHN, "List of request headers to inspect for UIDs. X-Remote-Uid is suggested."),
    spec("requestheader-username-headers", List, "x-remote-user", "strings", H_AUTHN, "List of request headers to inspect for usernames. X-Remote-User is common."),
    // authorization
    spec("authorization-always-allow-paths", List, "/healthz,/readyz,/livez", "strings", H_AUTHZ, "A list of HTTP paths to skip during authorization, i.e. these are authorized without contacting the 'core' kubernetes server."),
    spec("authorization-kubeconfig", Value, "", "string", H_AUTHZ, "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create subjectaccessreviews.authorization.k8s.io."),
    spec("authorization-webhook-cache-authorized-ttl", Value, "10s", "duration", H_AUTHZ, "The duration to cache 'authorized' responses from the webhook authorizer."),
    spec("authorization-webhook-cache-unauthorized-ttl", Value, "10s", "duration", H_AUTHZ, "The duration to cache 'unauthorized' responses from the webhook authorizer."),
    // generic
    spec("advertise-address", Value, "", "ip", H_GENERIC, "The IP address on which to advertise the apiserver to members of the cluster."),
    spec("external-hostname", Value, "", "string", H_GENERIC, "The hostname to use when generating externalized URLs for this master."),
    spec("max-requests-inflight", Value, "400", "int", H_GENERIC, "The maximum number of requests in flight at a given time. When the server exceeds this, it rejects requests. Zero for no limit."),
    spec("shutdown-delay-duration", Value, "0s", "duration", H_GENERIC, "Time to delay the termination. During that time the server keeps serving requests normally. The endpoints /healthz and /livez will return success, but /readyz immediately returns failure."),
    // features
    spec("contention-profiling", Bool, "false", "bool", H_FEATURES, "Enable lock contention profiling, if profiling is enabled (no effect in this server)"),
    spec("profiling", Bool, "true", "bool", H_FEATURES, "Enable profiling via web interface host:port/debug/pprof/ (no effect in this server)"),
    // logging
    global(spec("logging-format", Value, "text", "string", H_LOGGING, "Sets the log format. Permitted formats: \"json\", \"text\".")),
    global(short(spec("v", Value, "0", "Level", H_LOGGING, "number for the log level verbosity"), 'v')),
];

/// Flags of the `demo` subcommand.
#[rustfmt::skip]
const DEMO_SPECS: &[Spec] = &[
    spec("nodes", Value, "3", "int", "Demo flags", "Number of simulated nodes."),
    spec("pods-per-node", Value, "10", "int", "Demo flags", "Number of simulated pods on each node."),
    spec("seed", Value, "1", "int", "Demo flags", "Seed of the simulated cluster (names, usage rates, sizes)."),
    spec("kubeconfig-out", Value, "", "string", "Demo flags", "Where to write the kubeconfig for kubectl (default: in the demo's temporary directory)."),
    spec("exit-after", Value, "0s", "duration", "Demo flags", "Stop by itself after this long (0: run until Ctrl-C or SIGTERM)."),
];

/// Upstream flags accepted for compatibility and ignored with a warning: Go runtime and
/// klog tuning, audit logging, HTTP/2 and listener tuning, feature gates and other
/// generic apiserver knobs this server has no counterpart for. `true` = takes a value.
/// Names are listed with dashes; `_` spellings (klog's own) are recognised too.
pub const IGNORED_FLAGS: &[(&str, bool)] = &[
    // generic apiserver
    ("cors-allowed-origins", true),
    ("emulated-version", true),
    ("emulation-forward-compatible", false),
    ("feature-gates", true),
    ("goaway-chance", true),
    ("livez-grace-period", true),
    ("max-mutating-requests-inflight", true),
    ("min-compatibility-version", true),
    ("min-request-timeout", true),
    ("request-timeout", true),
    ("runtime-config-emulation-forward-compatible", false),
    ("shutdown-send-retry-after", false),
    ("shutdown-watch-termination-grace-period", true),
    ("storage-initialization-timeout", true),
    ("strict-transport-security-directives", true),
    ("enable-priority-and-fairness", false),
    ("debug-socket-path", true),
    // secure serving tuning
    ("disable-http2-serving", false),
    ("http2-max-streams-per-connection", true),
    ("permit-address-sharing", false),
    ("permit-port-sharing", false),
    ("tls-curve-preferences", true),
    ("tls-sni-cert-key", true),
    // audit
    ("audit-log-batch-buffer-size", true),
    ("audit-log-batch-max-size", true),
    ("audit-log-batch-max-wait", true),
    ("audit-log-batch-throttle-burst", true),
    ("audit-log-batch-throttle-enable", false),
    ("audit-log-batch-throttle-qps", true),
    ("audit-log-compress", false),
    ("audit-log-format", true),
    ("audit-log-maxage", true),
    ("audit-log-maxbackup", true),
    ("audit-log-maxsize", true),
    ("audit-log-mode", true),
    ("audit-log-path", true),
    ("audit-log-truncate-enabled", false),
    ("audit-log-truncate-max-batch-size", true),
    ("audit-log-truncate-max-event-size", true),
    ("audit-log-version", true),
    ("audit-policy-file", true),
    ("audit-webhook-batch-buffer-size", true),
    ("audit-webhook-batch-max-size", true),
    ("audit-webhook-batch-max-wait", true),
    ("audit-webhook-batch-throttle-burst", true),
    ("audit-webhook-batch-throttle-enable", false),
    ("audit-webhook-batch-throttle-qps", true),
    ("audit-webhook-config-file", true),
    ("audit-webhook-initial-backoff", true),
    ("audit-webhook-mode", true),
    ("audit-webhook-truncate-enabled", false),
    ("audit-webhook-truncate-max-batch-size", true),
    ("audit-webhook-truncate-max-event-size", true),
    ("audit-webhook-version", true),
    // logging (component-base and klog)
    ("log-flush-frequency", true),
    ("log-json-info-buffer-size", true),
    ("log-json-split-stream", false),
    ("log-text-info-buffer-size", true),
    ("log-text-split-stream", false),
    ("vmodule", true),
    ("add-dir-header", false),
    ("alsologtostderr", false),
    ("log-backtrace-at", true),
    ("log-dir", true),
    ("log-file", true),
    ("log-file-max-size", true),
    ("logtostderr", false),
    ("one-output", false),
    ("skip-headers", false),
    ("skip-log-headers", false),
    ("stderrthreshold", true),
    ("legacy-stderr-threshold-behavior", false),
    // client-go tuning found in manifests of other components
    ("kube-api-qps", true),
    ("kube-api-burst", true),
    ("kube-api-content-type", true),
];

/// Go cipher suite names `--tls-cipher-suites` accepts (Go's secure and insecure lists
/// plus the two legacy ChaCha aliases), as component-base does.
pub const GO_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_RC4_128_SHA",
];

// ---------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------

/// Parses and validates the command line. The first item is the program name.
///
/// Returns the options and warnings to log once logging is set up (ignored flags,
/// raised TLS minimum), or the error to print (see [`FlagError`]).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<(Options, Vec<String>), FlagError> {
    let args: Vec<String> = args.into_iter().collect();
    let (args, mut warnings) = strip_ignored(args)?;
    let matches = command()
        .try_get_matches_from(&args)
        .map_err(|e| clap_error(e, &args))?;
    let (options, raw) = convert(&matches, &mut warnings)?;
    if !options.show_version {
        validate_raw(&options, &raw)?;
    }
    Ok((options, warnings))
}

/// The clap command (for help rendering, completion generation and tests).
pub fn command() -> Command {
    let mut cmd = Command::new("metrics-server")
        .about("Launch metrics-server")
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .args_override_self(true)
        .dont_collapse_args_in_usage(true);
    for s in SPECS {
        cmd = cmd.arg(build_arg(s));
    }
    let mut demo = Command::new("demo")
        .about("Run an embedded simulated cluster on loopback (kubectl top works against it). Here --metric-resolution defaults to 10s and --kubelet-request-timeout to 5s.")
        .args_override_self(true);
    for s in DEMO_SPECS {
        demo = demo.arg(build_arg(s));
    }
    cmd.subcommand(demo)
}

fn build_arg(s: &Spec) -> Arg {
    let mut arg = Arg::new(s.name)
        .long(s.name)
        .help(s.help)
        .help_heading(s.heading)
        .value_name(s.value_name)
        .global(s.global);
    if let Some(c) = s.short {
        arg = arg.short(c);
    }
    match s.kind {
        Kind::Bool => {
            arg = arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .action(ArgAction::Set)
                .hide_default_value(s.default == "false");
        }
        Kind::Value => {
            arg = arg
                .num_args(1)
                .allow_hyphen_values(true)
                .action(ArgAction::Set);
        }
        Kind::List => {
            arg = arg
                .num_args(1)
                .allow_hyphen_values(true)
                .action(ArgAction::Append);
        }
    }
    if !s.default.is_empty() {
        arg = arg.default_value(s.default);
    }
    arg
}

// ---------------------------------------------------------------------------------------
// Pre-pass: ignored upstream flags
// ---------------------------------------------------------------------------------------

fn ignored_flag(name: &str) -> Option<bool> {
    let normalized = name.replace('_', "-");
    IGNORED_FLAGS
        .iter()
        .find(|(n, _)| *n == normalized)
        .map(|&(_, takes_value)| takes_value)
}

/// True if `name` is one of our value-taking flags (its next argument is its value).
fn takes_value(name: &str) -> bool {
    SPECS
        .iter()
        .chain(DEMO_SPECS)
        .any(|s| s.name == name && s.kind != Kind::Bool)
}

fn takes_value_short(c: char) -> bool {
    SPECS
        .iter()
        .any(|s| s.short == Some(c) && s.kind != Kind::Bool)
}

/// Removes the flags of [`IGNORED_FLAGS`] (and their values) and returns a warning for
/// each. Public for tests and for callers that want to inspect the cleaned arguments.
pub fn strip_ignored(args: Vec<String>) -> Result<(Vec<String>, Vec<String>), FlagError> {
    let mut out = Vec::with_capacity(args.len());
    let mut warnings = Vec::new();
    let mut it = args.into_iter();
    if let Some(program) = it.next() {
        out.push(program);
    }
    while let Some(arg) = it.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(it.by_ref());
            break;
        }
        // `-v`, `-l...`: shorthand (possibly with an attached value); multi-character
        // names after one dash are Go-flag style and only matter if ignored.
        let body = match arg.strip_prefix("--") {
            Some(b) => Some(b),
            None => arg.strip_prefix('-').filter(|b| b.chars().count() > 1),
        };
        let Some(body) = body else {
            let next_is_value = arg
                .strip_prefix('-')
                .and_then(|b| b.chars().next())
                .is_some_and(takes_value_short);
            out.push(arg);
            if next_is_value {
                out.extend(it.next());
            }
            continue;
        };
        let (name, inline_value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if let Some(needs_value) = ignored_flag(name) {
            if needs_value && inline_value.is_none() && it.next().is_none() {
                return Err(FlagError::invalid(format!(
                    "flag needs an argument: --{name}"
                )));
            }
            warnings.push(format!(
                "flag --{name} is not supported by this server and was ignored"
            ));
            continue;
        }
        let single_dash = !arg.starts_with("--");
        let value_follows = if single_dash {
            // `-l` alone takes the next argument; `-lfoo` carries its value.
            body.chars().count() == 1 && body.chars().next().is_some_and(takes_value_short)
        } else {
            inline_value.is_none() && takes_value(name)
        };
        out.push(arg);
        if value_follows {
            out.extend(it.next());
        }
    }
    Ok((out, warnings))
}

// ---------------------------------------------------------------------------------------
// clap errors -> one line
// ---------------------------------------------------------------------------------------

fn context_string(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        _ => None,
    }
}

fn clap_error(e: clap::Error, args: &[String]) -> FlagError {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return FlagError::Help(e.render().to_string());
        }
        ErrorKind::UnknownArgument => {
            if let Some(arg) = context_string(&e, ContextKind::InvalidArg) {
                if let Some(long) = arg.strip_prefix("--") {
                    let name = long.split('=').next().unwrap_or(long);
                    return FlagError::invalid(format!("unknown flag: --{name}"));
                }
                if let Some(short) = arg.strip_prefix('-') {
                    let c = short.chars().next().unwrap_or('-');
                    // pflag names the whole argument the shorthand came from.
                    let prefix = format!("-{c}");
                    let whole = args
                        .iter()
                        .skip(1)
                        .find(|a| a.starts_with(&prefix) && !a.starts_with("--"))
                        .map_or(arg.as_str(), String::as_str);
                    return FlagError::invalid(format!("unknown shorthand flag: '{c}' in {whole}"));
                }
                return FlagError::invalid(format!(
                    "unknown command {} for \"metrics-server\"",
                    go_quote(&arg)
                ));
            }
        }
        ErrorKind::InvalidSubcommand => {
            if let Some(sub) = context_string(&e, ContextKind::InvalidSubcommand) {
                return FlagError::invalid(format!(
                    "unknown command {} for \"metrics-server\"",
                    go_quote(&sub)
                ));
            }
        }
        ErrorKind::InvalidValue => {
            let value = context_string(&e, ContextKind::InvalidValue).unwrap_or_default();
            if value.is_empty() {
                // A missing value is always the last argument (anything else would have
                // been taken as the value).
                if let Some(last) = args.last().filter(|a| a.starts_with('-')) {
                    return FlagError::invalid(needs_argument(last));
                }
            }
        }
        _ => {}
    }
    // Anything else: clap's own first line, without its "error: " prefix.
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid command line");
    FlagError::invalid(first.strip_prefix("error: ").unwrap_or(first))
}

/// pflag's wording for a value flag given last without a value.
fn needs_argument(arg: &str) -> String {
    match arg.strip_prefix("--") {
        Some(long) => format!("flag needs an argument: --{long}"),
        None => {
            let c = arg.chars().nth(1).unwrap_or('-');
            format!("flag needs an argument: '{c}' in {arg}")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conversion of raw strings to typed options
// ---------------------------------------------------------------------------------------

/// Converts raw values, remembering the conversion error of the flag given first on the
/// command line (pflag stops at the first bad value).
struct Conv<'m> {
    root: &'m ArgMatches,
    sub: Option<&'m ArgMatches>,
    first_error: Option<(usize, FlagError)>,
}

impl<'m> Conv<'m> {
    /// The matches holding `id`'s explicit value (globals may sit in the subcommand).
    ///
    /// Which matches define `id` comes from the flag tables, not from
    /// `ArgMatches::try_contains_id`: that only rejects unknown ids in debug builds, so in
    /// a release build every id would look defined in the root too.
    fn matches_for(&self, id: &str) -> &'m ArgMatches {
        if let Some(sub) = self.sub {
            let demo_only = DEMO_SPECS.iter().any(|s| s.name == id);
            let global = SPECS.iter().any(|s| s.name == id && s.global);
            if demo_only || (global && sub.value_source(id) == Some(ValueSource::CommandLine)) {
                return sub;
            }
        }
        self.root
    }

    /// Whether `id` was given on the command line (rather than defaulted).
    fn explicit(&self, id: &str) -> bool {
        self.matches_for(id).value_source(id) == Some(ValueSource::CommandLine)
    }

    fn raw(&self, id: &str) -> String {
        self.matches_for(id)
            .try_get_one::<String>(id)
            .ok()
            .flatten()
            .cloned()
            .unwrap_or_default()
    }

    fn raw_list(&self, id: &str) -> Vec<String> {
        self.matches_for(id)
            .try_get_many::<String>(id)
            .ok()
            .flatten()
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    }

    fn fail(&mut self, id: &str, err: FlagError) {
        let index = self.matches_for(id).index_of(id).unwrap_or(usize::MAX);
        if self.first_error.as_ref().is_none_or(|(i, _)| index < *i) {
            self.first_error = Some((index, err));
        }
    }

    /// `invalid argument "<v>" for "<flag>" flag: <reason>` (pflag's wording).
    fn bad_value(&mut self, id: &str, value: &str, reason: impl fmt::Display) {
        let err = FlagError::invalid(invalid_argument(id, value, reason));
        self.fail(id, err);
    }

    fn string(&self, id: &str) -> String {
        self.raw(id)
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        let v = self.raw(id);
        (!v.is_empty()).then(|| PathBuf::from(v))
    }

    fn bool(&mut self, id: &str) -> bool {
        let v = self.raw(id);
        match parse_go_bool(&v) {
            Ok(b) => b,
            Err(e) => {
                self.bad_value(id, &v, e);
                false
            }
        }
    }

    fn duration(&mut self, id: &str) -> GoDuration {
        let v = self.raw(id);
        match parse_go_duration(&v) {
            Ok(d) => d,
            Err(e) => {
                self.bad_value(id, &v, e);
                GoDuration::ZERO
            }
        }
    }

    fn int(&mut self, id: &str) -> i64 {
        let v = self.raw(id);
        match parse_go_int(&v) {
            Ok(i) => i,
            Err(e) => {
                self.bad_value(id, &v, e);
                0
            }
        }
    }

    fn list(&mut self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        for occurrence in self.raw_list(id) {
            match parse_csv_list(&occurrence) {
                Ok(items) => out.extend(items),
                Err(e) => self.bad_value(id, &occurrence, e),
            }
        }
        out
    }

    fn ip(&mut self, id: &str, empty: Option<IpAddr>) -> Option<IpAddr> {
        let v = self.raw(id);
        let trimmed = v.trim();
        if trimmed.is_empty() {
            return empty;
        }
        match trimmed.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.bad_value(id, &v, format!("failed to parse IP: {}", go_quote(&v)));
                empty
            }
        }
    }
}

fn flag_display_name(id: &str) -> String {
    match SPECS.iter().chain(DEMO_SPECS).find(|s| s.name == id) {
        Some(Spec {
            short: Some(c),
            name,
            ..
        }) => format!("-{c}, --{name}"),
        _ => format!("--{id}"),
    }
}

fn invalid_argument(id: &str, value: &str, reason: impl fmt::Display) -> String {
    format!(
        "invalid argument {} for {} flag: {reason}",
        go_quote(value),
        go_quote(&flag_display_name(id))
    )
}

fn convert(m: &ArgMatches, warnings: &mut Vec<String>) -> Result<(Options, RawChecks), FlagError> {
    let sub = m.subcommand_matches("demo");
    let mut c = Conv {
        root: m,
        sub,
        first_error: None,
    };

    let show_version = c.bool("version");
    let mut metric_resolution = c.duration("metric-resolution");
    let kubeconfig = c.path("kubeconfig");

    let runtime_raw = c.raw("runtime");
    let runtime = match runtime_raw.parse::<Runtime>() {
        Ok(r) => r,
        Err(e) => {
            c.bad_value("runtime", &runtime_raw, e);
            Runtime::Tokio
        }
    };

    // kubelet
    let kubelet_port = c.int("kubelet-port");
    let kubelet_port = port_in_range(&mut c, "kubelet-port", kubelet_port, 1);
    let max_response_raw = c.raw("kubelet-max-response-bytes");
    let max_response_bytes = match parse_byte_size(&max_response_raw) {
        Ok(0) => {
            c.bad_value(
                "kubelet-max-response-bytes",
                &max_response_raw,
                "must be positive",
            );
            DEFAULT_KUBELET_MAX_RESPONSE_BYTES
        }
        Ok(n) => n,
        Err(e) => {
            c.bad_value("kubelet-max-response-bytes", &max_response_raw, e);
            DEFAULT_KUBELET_MAX_RESPONSE_BYTES
        }
    };
    let mut kubelet = RawKubelet {
        port: kubelet_port,
        use_node_status_port: c.bool("kubelet-use-node-status-port"),
        preferred_address_types: c.list("kubelet-preferred-address-types"),
        insecure_tls: c.bool("kubelet-insecure-tls"),
        certificate_authority: c.path("kubelet-certificate-authority"),
        client_certificate: c.path("kubelet-client-certificate"),
        client_key: c.path("kubelet-client-key"),
        request_timeout: c.duration("kubelet-request-timeout"),
        completely_insecure: c.bool("deprecated-kubelet-completely-insecure"),
        node_selector: c.string("node-selector"),
        prefer_summary_api: c.bool("prefer-summary-api"),
        max_response_bytes,
    };

    // serving
    let bind_address = c
        .ip("bind-address", Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let secure_port_raw = c.int("secure-port");
    let max_inflight = c.int("max-requests-inflight");
    let shutdown_delay = c.duration("shutdown-delay-duration");
    let advertise_address = c.ip("advertise-address", None);
    let external_hostname = Some(c.string("external-hostname")).filter(|s| !s.is_empty());
    let tls_min_version_raw = c.string("tls-min-version");
    let tls_cipher_suites = c.list("tls-cipher-suites");

    // authn / authz
    let authn_ttl = c.duration("authentication-token-webhook-cache-ttl");
    let authentication = AuthenticationOptions {
        kubeconfig: c.path("authentication-kubeconfig"),
        skip_lookup: c.bool("authentication-skip-lookup"),
        tolerate_lookup_failure: c.bool("authentication-tolerate-lookup-failure"),
        token_webhook_cache_ttl: authn_ttl.to_std_saturating(),
        client_ca_file: c.path("client-ca-file"),
        requestheader: RequestHeaderOptions {
            client_ca_file: c.path("requestheader-client-ca-file"),
            allowed_names: c.list("requestheader-allowed-names"),
            username_headers: c.list("requestheader-username-headers"),
            group_headers: c.list("requestheader-group-headers"),
            extra_headers_prefix: c.list("requestheader-extra-headers-prefix"),
            uid_headers: c.list("requestheader-uid-headers"),
        },
    };
    let authorization = AuthorizationOptions {
        kubeconfig: c.path("authorization-kubeconfig"),
        always_allow_paths: c.list("authorization-always-allow-paths"),
        webhook_cache_authorized_ttl: c
            .duration("authorization-webhook-cache-authorized-ttl")
            .to_std_saturating(),
        webhook_cache_unauthorized_ttl: c
            .duration("authorization-webhook-cache-unauthorized-ttl")
            .to_std_saturating(),
    };

    // logging
    let v_raw = c.raw("v");
    let verbosity = match parse_go_uint32(&v_raw) {
        Ok(v) => v,
        Err(e) => {
            c.bad_value("v", &v_raw, e);
            0
        }
    };
    let logging_format_raw = c.string("logging-format");
    let profiling = c.bool("profiling");
    let contention_profiling = c.bool("contention-profiling");

    // demo
    let mode = match sub {
        None => Mode::Serve,
        Some(_) => {
            let nodes = c.int("nodes");
            let pods = c.int("pods-per-node");
            let nodes = bounded_u32(&mut c, "nodes", nodes, 1, 100_000);
            let pods_per_node = bounded_u32(&mut c, "pods-per-node", pods, 0, 10_000);
            let seed = c.int("seed");
            let seed = u64::try_from(seed).unwrap_or_else(|_| {
                let raw = c.raw("seed");
                c.bad_value("seed", &raw, "must not be negative");
                0
            });
            let exit_after = c.duration("exit-after");
            if exit_after.as_nanos() < 0 {
                let raw = c.raw("exit-after");
                c.bad_value("exit-after", &raw, "must not be negative");
            }
            // The demo's own defaults: a fast scrape loop, kubelets on loopback.
            if !c.explicit("metric-resolution") {
                metric_resolution = GoDuration::from_std(DEMO_METRIC_RESOLUTION);
            }
            if !c.explicit("kubelet-request-timeout") {
                kubelet.request_timeout = GoDuration::from_std(DEMO_KUBELET_REQUEST_TIMEOUT);
            }
            Mode::Demo(DemoOptions {
                nodes,
                pods_per_node,
                seed,
                kubeconfig_out: c.path("kubeconfig-out"),
                exit_after: Some(exit_after.to_std_saturating()).filter(|d| !d.is_zero()),
            })
        }
    };

    if let Some((_, err)) = c.first_error.take() {
        return Err(err);
    }

    // What validation needs verbatim (signed values, unparsed names): the typed options
    // cannot hold a negative timeout or an unknown log format.
    let raw = RawChecks {
        metric_resolution,
        request_timeout: kubelet.request_timeout,
        max_requests_inflight: max_inflight,
        shutdown_delay,
        secure_port: secure_port_raw,
        logging_format: logging_format_raw.clone(),
        tls_min_version: tls_min_version_raw.clone(),
    };

    let tls_min_version = match tls_min_version_raw.as_str() {
        "VersionTLS10" | "VersionTLS11" => {
            warnings.push(format!(
                "--tls-min-version={tls_min_version_raw} is not supported; serving TLS 1.2 and later"
            ));
            TlsMinVersion::Tls12
        }
        "VersionTLS13" => TlsMinVersion::Tls13,
        _ => TlsMinVersion::Tls12,
    };

    let options = Options {
        mode,
        show_version,
        metric_resolution: metric_resolution.to_std_saturating(),
        kubeconfig,
        kubelet: KubeletOptions {
            port: kubelet.port,
            use_node_status_port: kubelet.use_node_status_port,
            preferred_address_types: kubelet.preferred_address_types,
            insecure_tls: kubelet.insecure_tls,
            certificate_authority: kubelet.certificate_authority,
            client_certificate: kubelet.client_certificate,
            client_key: kubelet.client_key,
            request_timeout: kubelet.request_timeout.to_std_saturating(),
            completely_insecure: kubelet.completely_insecure,
            node_selector: kubelet.node_selector,
            prefer_summary_api: kubelet.prefer_summary_api,
            max_response_bytes: kubelet.max_response_bytes,
        },
        serving: ServingOptions {
            bind_address,
            secure_port: u16::try_from(secure_port_raw).unwrap_or(0),
            cert_dir: PathBuf::from(c.raw("cert-dir")),
            tls_cert_file: c.path("tls-cert-file"),
            tls_private_key_file: c.path("tls-private-key-file"),
            tls_min_version,
            tls_cipher_suites,
            max_requests_inflight: u32::try_from(max_inflight).unwrap_or(u32::MAX),
            shutdown_delay: shutdown_delay.to_std_saturating(),
            advertise_address,
            external_hostname,
        },
        authentication,
        authorization,
        logging: LoggingOptions {
            verbosity,
            format: if logging_format_raw == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            },
        },
        profiling,
        contention_profiling,
        runtime,
    };
    Ok((options, raw))
}

struct RawKubelet {
    port: u16,
    use_node_status_port: bool,
    preferred_address_types: Vec<String>,
    insecure_tls: bool,
    certificate_authority: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_key: Option<PathBuf>,
    request_timeout: GoDuration,
    completely_insecure: bool,
    node_selector: String,
    prefer_summary_api: bool,
    max_response_bytes: u64,
}

/// Signed / unparsed values the validation messages need verbatim.
struct RawChecks {
    metric_resolution: GoDuration,
    request_timeout: GoDuration,
    max_requests_inflight: i64,
    shutdown_delay: GoDuration,
    secure_port: i64,
    logging_format: String,
    tls_min_version: String,
}

fn port_in_range(c: &mut Conv<'_>, id: &str, v: i64, min: i64) -> u16 {
    match u16::try_from(v) {
        Ok(p) if i64::from(p) >= min => p,
        _ => {
            let raw = c.raw(id);
            c.bad_value(id, &raw, format!("must be between {min} and 65535"));
            0
        }
    }
}

fn bounded_u32(c: &mut Conv<'_>, id: &str, v: i64, min: u32, max: u32) -> u32 {
    match u32::try_from(v) {
        Ok(n) if (min..=max).contains(&n) => n,
        _ => {
            let raw = c.raw(id);
            c.bad_value(id, &raw, format!("must be between {min} and {max}"));
            min
        }
    }
}

// ---------------------------------------------------------------------------------------
// Validation (upstream's order, first error only)
// ---------------------------------------------------------------------------------------

/// Validates typed options as upstream does at start-up (for options built or changed in
/// code; [`parse`] already ran this).
pub fn validate(o: &Options) -> Result<(), FlagError> {
    let raw = RawChecks {
        metric_resolution: GoDuration::from_std(o.metric_resolution),
        request_timeout: GoDuration::from_std(o.kubelet.request_timeout),
        max_requests_inflight: i64::from(o.serving.max_requests_inflight),
        shutdown_delay: GoDuration::from_std(o.serving.shutdown_delay),
        secure_port: i64::from(o.serving.secure_port),
        logging_format: o.logging.format.as_str().to_owned(),
        tls_min_version: String::new(),
    };
    validate_raw(o, &raw)
}

fn validate_raw(o: &Options, raw: &RawChecks) -> Result<(), FlagError> {
    let k = &o.kubelet;
    let fail = |m: &str| Err(FlagError::invalid(m));
    // 1. kubelet client (KubeletClientOptions.Validate)
    if k.certificate_authority.is_some() && k.insecure_tls {
        return fail("cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls");
    }
    if k.client_key.is_some() != k.client_certificate.is_some() {
        return fail("need both --kubelet-client-key and --kubelet-client-certificate");
    }
    if k.client_key.is_some() && k.completely_insecure {
        return fail(
            "cannot use both --kubelet-client-key and --deprecated-kubelet-completely-insecure",
        );
    }
    if k.client_certificate.is_some() && k.completely_insecure {
        return fail(
            "cannot use both --kubelet-client-certificate and --deprecated-kubelet-completely-insecure",
        );
    }
    if k.insecure_tls && k.completely_insecure {
        return fail(
            "cannot use both --kubelet-insecure-tls and --deprecated-kubelet-completely-insecure",
        );
    }
    if k.certificate_authority.is_some() && k.completely_insecure {
        return fail(
            "cannot use both --kubelet-certificate-authority and --deprecated-kubelet-completely-insecure",
        );
    }
    if raw.request_timeout.as_nanos() <= 0 {
        return fail("kubelet-request-timeout should be positive");
    }
    // 2. and 3. (Options.validate)
    if raw.metric_resolution < GoDuration::from_std(MIN_METRIC_RESOLUTION) {
        return Err(FlagError::invalid(format!(
            "metric-resolution should be a time duration at least 10s, but value {} provided",
            raw.metric_resolution
        )));
    }
    // Upstream computes resolution*9/10 in int64 nanoseconds; i128 avoids its overflow
    // for absurdly large resolutions and is otherwise identical.
    if i128::from(raw.metric_resolution.as_nanos()) * 9 / 10
        < i128::from(raw.request_timeout.as_nanos())
    {
        return Err(FlagError::invalid(format!(
            "metric-resolution should be larger than kubelet-request-timeout, but metric-resolution value {} kubelet-request-timeout value {} provided",
            raw.metric_resolution, raw.request_timeout
        )));
    }
    // 4. logging (logsapi.ValidateAndApply), then generic server options.
    if raw.logging_format != "text" && raw.logging_format != "json" {
        return Err(FlagError::invalid(format!(
            "format: Invalid value: {}: Unsupported log format",
            go_quote(&raw.logging_format)
        )));
    }
    if o.logging.verbosity > i32::MAX as u32 {
        return Err(FlagError::invalid(format!(
            "verbosity: Invalid value: {}: Must be <= {}",
            o.logging.verbosity,
            i32::MAX
        )));
    }
    if raw.max_requests_inflight < 0 {
        return fail("--max-requests-inflight can not be negative value");
    }
    if raw.max_requests_inflight > i64::from(u32::MAX) {
        return fail("--max-requests-inflight can not be larger than 4294967295");
    }
    if raw.shutdown_delay.as_nanos() < 0 {
        return fail("--shutdown-delay-duration can not be negative value");
    }
    // 5. secure serving (SecureServingOptions.ApplyTo and friends).
    if !(0..=65535).contains(&raw.secure_port) {
        return Err(FlagError::invalid(format!(
            "--secure-port {} must be between 0 and 65535, inclusive. 0 for turning off secure port",
            raw.secure_port
        )));
    }
    let s = &o.serving;
    if s.tls_cert_file.is_some() != s.tls_private_key_file.is_some() {
        return fail("need both --tls-cert-file and --tls-private-key-file");
    }
    match raw.tls_min_version.as_str() {
        "" | "VersionTLS10" | "VersionTLS11" | "VersionTLS12" | "VersionTLS13" => {}
        other => {
            return Err(FlagError::invalid(invalid_argument(
                "tls-min-version",
                other,
                format!("unknown tls version {}", go_quote(other)),
            )));
        }
    }
    for suite in &s.tls_cipher_suites {
        if !GO_CIPHER_SUITES.contains(&suite.as_str()) {
            return Err(FlagError::invalid(invalid_argument(
                "tls-cipher-suites",
                suite,
                format!("Cipher suite {suite} not supported or doesn't exist"),
            )));
        }
    }
    // 6. the node selector (upstream fails later, while building the server).
    if let Err(e) = metrics_core::api::selector::LabelSelector::parse(&k.node_selector) {
        return Err(FlagError::invalid(invalid_argument(
            "node-selector",
            &k.node_selector,
            e.message(),
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Go value grammars
// ---------------------------------------------------------------------------------------

/// A Go `time.Duration`: signed nanoseconds. `Display` is Go's `Duration.String()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

impl GoDuration {
    /// Zero.
    pub const ZERO: GoDuration = GoDuration(0);

    /// From signed nanoseconds.
    pub const fn from_nanos(nanos: i64) -> GoDuration {
        GoDuration(nanos)
    }

    /// Signed nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// From a std duration, saturating at Go's maximum (about 292 years).
    pub fn from_std(d: Duration) -> GoDuration {
        GoDuration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// As a std duration; `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }

    /// As a std duration, negative values becoming zero.
    pub fn to_std_saturating(self) -> Duration {
        self.to_std().unwrap_or(Duration::ZERO)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 < 0 {
            f.write_str("-")?;
        }
        f.write_str(&metrics_core::time::go_duration(abs))
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_go_duration(s)
    }
}

/// A duration Go's `time.ParseDuration` would refuse; `Display` is Go's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

const NANOS_PER: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // micro sign
    ("\u{3bc}s", 1_000), // Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration exactly as Go's `time.ParseDuration` does: an optional sign, then
/// one or more `[digits][.digits]unit` groups (`300ms`, `-1.5h`, `2h45m`, `+5s`, `.5s`,
/// `1.s`, `300us`, `300µs`), units `ns us µs μs ms s m h`; a bare `0` needs no unit.
/// Errors carry Go's messages (`time: unknown unit "d" in duration "1d"`).
pub fn parse_go_duration(input: &str) -> Result<GoDuration, DurationError> {
    const LIMIT: u64 = 1 << 63;
    let invalid = || DurationError(format!("time: invalid duration {}", time_quote(input)));
    let mut s = input.as_bytes();
    let mut neg = false;
    if let Some((&c, rest)) = s.split_first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = rest;
    }
    if s == b"0" {
        return Ok(GoDuration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while let Some(&c) = s.first() {
        if !(c == b'.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        // [0-9]*
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        // (\.[0-9]*)?
        let mut post = false;
        let (mut frac, mut scale) = (0u64, 1f64);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (f, sc, rest) = leading_fraction(s);
            (frac, scale, s) = (f, sc, rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        // unit: everything up to the next '.' or digit
        let end = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(DurationError(format!(
                "time: missing unit in duration {}",
                time_quote(input)
            )));
        }
        let unit_bytes = &s[..end];
        s = &s[end..];
        let Some(&(_, unit)) = NANOS_PER.iter().find(|(u, _)| u.as_bytes() == unit_bytes) else {
            return Err(DurationError(format!(
                "time: unknown unit {} in duration {}",
                time_quote_bytes(unit_bytes),
                time_quote(input)
            )));
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Go uses float64 here ("to be nanosecond accurate for fractions of hours").
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // total <= 2^63: its negation always fits (2^63 becomes i64::MIN).
        return Ok(GoDuration((total as i64).wrapping_neg()));
    }
    match i64::try_from(total) {
        Ok(n) => Ok(GoDuration(n)),
        Err(_) => Err(invalid()),
    }
}

/// Go's `leadingInt`: `None` on overflow.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if x > (1u64 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `leadingFraction`: stops accumulating precision on overflow.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        i += 1;
        if overflow {
            continue;
        }
        if x > (i64::MAX as u64) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Go's `time.quote`: non-ASCII and control bytes as `\xNN`.
fn time_quote(s: &str) -> String {
    time_quote_bytes(s.as_bytes())
}

fn time_quote_bytes(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        if !(b' '..0x80).contains(&b) {
            out.push_str(&format!("\\x{b:02x}"));
        } else {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(char::from(b));
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.Quote` (close enough: printable characters kept, the rest escaped).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` (what pflag's int flags use): optional sign, base
/// prefixes `0x`, `0o`, `0b`, a leading `0` for octal, `_` separators between digits.
pub fn parse_go_int(s0: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s0));
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s0)
        )
    };
    if s0.is_empty() {
        return Err(syntax());
    }
    let (neg, s) = match s0.as_bytes()[0] {
        b'+' => (false, &s0[1..]),
        b'-' => (true, &s0[1..]),
        _ => (false, s0),
    };
    let un = match parse_uint_base0(s) {
        Ok(u) => u,
        Err(UintError::Syntax) => return Err(syntax()),
        Err(UintError::Range) => return Err(range()),
    };
    let cutoff = 1u64 << 63;
    if !neg && un >= cutoff {
        return Err(range());
    }
    if neg && un > cutoff {
        return Err(range());
    }
    if neg {
        Ok((un as i64).wrapping_neg())
    } else {
        Ok(un as i64)
    }
}

enum UintError {
    Syntax,
    Range,
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint_base0(s: &str) -> Result<u64, UintError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(UintError::Syntax);
    }
    let (base, digits): (u64, &[u8]) = if b[0] == b'0' {
        match b.get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let mut underscores = false;
    let mut n: u64 = 0;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            c if c.is_ascii_alphabetic() => c.to_ascii_lowercase() - b'a' + 10,
            _ => return Err(UintError::Syntax),
        };
        if u64::from(d) >= base {
            return Err(UintError::Syntax);
        }
        n = n
            .checked_mul(base)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(UintError::Range)?;
    }
    if underscores && !underscore_ok(s) {
        return Err(UintError::Syntax);
    }
    Ok(n)
}

/// Go's `underscoreOK`: `_` only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let b = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 10, 32)` (the `-v` flag).
pub fn parse_go_uint32(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    s.parse::<u32>().map_err(|_| {
        format!(
            "strconv.ParseUint: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

/// One occurrence of a list flag, read as one CSV record (pflag's `StringSlice`): `""`
/// is the empty list, fields may be double-quoted with `""` as an escaped quote.
pub fn parse_csv_list(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut column = 0usize;
    loop {
        // start of a field
        if chars.peek() == Some(&'"') {
            chars.next();
            column += 1;
            loop {
                match chars.next() {
                    Some('"') => {
                        column += 1;
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            column += 1;
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => {
                        column += 1;
                        field.push(c);
                    }
                    None => {
                        return Err(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            column + 1
                        ));
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(',') => {
                    column += 1;
                    fields.push(std::mem::take(&mut field));
                }
                Some(_) => {
                    return Err(format!(
                        "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                        column + 1
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(std::mem::take(&mut field));
                        return Ok(fields);
                    }
                    Some(',') => {
                        column += 1;
                        fields.push(std::mem::take(&mut field));
                        break;
                    }
                    Some('"') => {
                        return Err(format!(
                            "parse error on line 1, column {}: bare \" in non-quoted-field",
                            column + 1
                        ));
                    }
                    Some('\n') | Some('\r') => {
                        // encoding/csv reads one record: the rest is ignored.
                        fields.push(std::mem::take(&mut field));
                        return Ok(fields);
                    }
                    Some(c) => {
                        column += 1;
                        field.push(c);
                    }
                }
            }
        }
    }
    Ok(fields)
}

/// A byte count: plain digits, or digits with a `Ki`, `Mi` or `Gi` suffix.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = if let Some(d) = s.strip_suffix("Ki") {
        (d, 10)
    } else if let Some(d) = s.strip_suffix("Mi") {
        (d, 20)
    } else if let Some(d) = s.strip_suffix("Gi") {
        (d, 30)
    } else {
        (s, 0)
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err("expected a byte count such as 67108864 or 64Mi".to_owned());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| "value out of range".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<i64, String> {
        parse_go_duration(s)
            .map(GoDuration::as_nanos)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn go_duration_grammar() {
        const S: i64 = 1_000_000_000;
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("-0"), Ok(0));
        assert_eq!(d("+0"), Ok(0));
        assert_eq!(d("5s"), Ok(5 * S));
        assert_eq!(d("300ms"), Ok(300_000_000));
        assert_eq!(d("-1.5h"), Ok(-5400 * S));
        assert_eq!(d("1.5h"), Ok(5400 * S));
        assert_eq!(d("2h45m"), Ok((2 * 3600 + 45 * 60) * S));
        assert_eq!(d("+5s"), Ok(5 * S));
        assert_eq!(d(".5s"), Ok(S / 2));
        assert_eq!(d("1.s"), Ok(S));
        assert_eq!(d("300us"), Ok(300_000));
        assert_eq!(d("300\u{b5}s"), Ok(300_000));
        assert_eq!(d("300\u{3bc}s"), Ok(300_000));
        assert_eq!(d("1ns"), Ok(1));
        assert_eq!(d("1h1m1s1ms1us1ns"), Ok(3661 * S + 1_001_001));
        assert_eq!(d("0.000000001s"), Ok(1));
        assert_eq!(d("0.0000000001s"), Ok(0));
        assert_eq!(d("1m0s"), Ok(60 * S));
        assert_eq!(d("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(d("-9223372036854775808ns"), Ok(i64::MIN));
        assert_eq!(d("2562047h47m16.854775807s"), Ok(i64::MAX));
    }

    #[test]
    fn go_duration_errors_use_go_wording() {
        assert_eq!(
            d("1d"),
            Err(r#"time: unknown unit "d" in duration "1d""#.into())
        );
        assert_eq!(d("5"), Err(r#"time: missing unit in duration "5""#.into()));
        assert_eq!(d(""), Err(r#"time: invalid duration """#.into()));
        assert_eq!(d("-"), Err(r#"time: invalid duration "-""#.into()));
        assert_eq!(d("."), Err(r#"time: invalid duration ".""#.into()));
        assert_eq!(d(".s"), Err(r#"time: invalid duration ".s""#.into()));
        assert_eq!(d("s"), Err(r#"time: invalid duration "s""#.into()));
        assert_eq!(
            d("1 s"),
            Err(r#"time: unknown unit " s" in duration "1 s""#.into())
        );
        assert_eq!(d(" 1s"), Err(r#"time: invalid duration " 1s""#.into()));
        assert_eq!(
            d("1M"),
            Err(r#"time: unknown unit "M" in duration "1M""#.into())
        );
        assert_eq!(
            d("3\u{e9}s"),
            Err(r#"time: unknown unit "\xc3\xa9s" in duration "3\xc3\xa9s""#.into())
        );
        assert_eq!(
            d("9223372036854775808ns"),
            Err(r#"time: invalid duration "9223372036854775808ns""#.into())
        );
        assert_eq!(
            d("2562048h"),
            Err(r#"time: invalid duration "2562048h""#.into())
        );
        assert_eq!(
            d("99999999999999999999s"),
            Err(r#"time: invalid duration "99999999999999999999s""#.into())
        );
        assert!(d("1s-1s").is_err());
    }

    #[test]
    fn go_duration_display_is_go_string() {
        for (s, want) in [
            ("15s", "15s"),
            ("60s", "1m0s"),
            ("-5s", "-5s"),
            ("1.5h", "1h30m0s"),
            ("300ms", "300ms"),
            ("0", "0s"),
            ("-9223372036854775808ns", "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(
                parse_go_duration(s).map(|d| d.to_string()),
                Ok(want.to_owned()),
                "{s}"
            );
        }
    }

    #[test]
    fn go_ints() {
        assert_eq!(parse_go_int("10250"), Ok(10250));
        assert_eq!(parse_go_int("0x10"), Ok(16));
        assert_eq!(parse_go_int("010"), Ok(8));
        assert_eq!(parse_go_int("0o17"), Ok(15));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("-1"), Ok(-1));
        assert_eq!(parse_go_int("+7"), Ok(7));
        assert_eq!(parse_go_int("1_000"), Ok(1000));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_go_int("abc"),
            Err(r#"strconv.ParseInt: parsing "abc": invalid syntax"#.into())
        );
        assert_eq!(
            parse_go_int(""),
            Err(r#"strconv.ParseInt: parsing "": invalid syntax"#.into())
        );
        assert_eq!(
            parse_go_int("9223372036854775808"),
            Err(r#"strconv.ParseInt: parsing "9223372036854775808": value out of range"#.into())
        );
        assert!(parse_go_int("1__0").is_err());
        assert!(parse_go_int("_1").is_err());
        assert!(parse_go_int("1_").is_err());
        assert!(parse_go_int("08").is_err());
        assert!(parse_go_int("1.5").is_err());
    }

    #[test]
    fn go_bools_and_uints() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Ok(false));
        }
        assert_eq!(
            parse_go_bool("yes"),
            Err(r#"strconv.ParseBool: parsing "yes": invalid syntax"#.into())
        );
        assert_eq!(parse_go_uint32("4"), Ok(4));
        assert_eq!(
            parse_go_uint32("-1"),
            Err(r#"strconv.ParseUint: parsing "-1": invalid syntax"#.into())
        );
        assert_eq!(
            parse_go_uint32("4294967296"),
            Err(r#"strconv.ParseUint: parsing "4294967296": value out of range"#.into())
        );
    }

    #[test]
    fn csv_lists() {
        assert_eq!(parse_csv_list(""), Ok(vec![]));
        assert_eq!(parse_csv_list("a"), Ok(vec!["a".to_owned()]));
        assert_eq!(
            parse_csv_list("a,,b"),
            Ok(vec!["a".to_owned(), String::new(), "b".to_owned()])
        );
        assert_eq!(
            parse_csv_list(r#""a,b",c"#),
            Ok(vec!["a,b".to_owned(), "c".to_owned()])
        );
        assert_eq!(
            parse_csv_list(r#""say ""hi""""#),
            Ok(vec![r#"say "hi""#.to_owned()])
        );
        assert_eq!(
            parse_csv_list(" a , b"),
            Ok(vec![" a ".to_owned(), " b".to_owned()])
        );
        assert!(parse_csv_list(r#"a"b"#).is_err());
        assert!(parse_csv_list(r#""ab"#).is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("64Mi"), Ok(64 << 20));
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("2Ki"), Ok(2048));
        assert_eq!(parse_byte_size("1Gi"), Ok(1 << 30));
        assert!(parse_byte_size("").is_err());
        assert!(parse_byte_size("Mi").is_err());
        assert!(parse_byte_size("1MB").is_err());
        assert!(parse_byte_size("99999999999999999999Gi").is_err());
    }

    #[test]
    fn flag_tables_are_consistent() {
        // No flag is both parsed and ignored, and every default converts.
        for s in SPECS {
            assert!(ignored_flag(s.name).is_none(), "{} is both", s.name);
        }
        let mut names: Vec<_> = SPECS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SPECS.len());
        command().debug_assert();
    }
}
