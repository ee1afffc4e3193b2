//! Client configuration for the kube-apiserver: kubeconfig files (`--kubeconfig`,
//! `--authentication-kubeconfig`, `--authorization-kubeconfig`) and the in-cluster
//! service-account configuration, resolved into one [`RestConfig`]; a [`TokenSource`]
//! that re-reads a rotating token file; and the kubelet client settings derived from
//! both, as upstream derives them.
//!
//! Every file read here is bounded ([`MAX_FILE_BYTES`]) and every malformed input is an
//! error naming what was wrong, never a panic.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use crate::flags::KubeletOptions;

/// Largest kubeconfig, token or PEM file read (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Where the service-account files live, relative to the filesystem root.
pub const SERVICE_ACCOUNT_DIR: &str = "var/run/secrets/kubernetes.io/serviceaccount";

/// How often a token file is re-read (client-go's cached file token source: one minute).
pub const TOKEN_REFRESH_PERIOD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a configuration could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not running in a cluster (the service environment variables are missing).
    NotInCluster,
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_FILE_BYTES`].
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The kubeconfig is not valid YAML of the expected shape.
    Parse {
        /// The file, when it came from one.
        path: Option<PathBuf>,
        /// The parser's message.
        message: String,
    },
    /// The configuration is well-formed but unusable.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotInCluster => f.write_str(
                "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined",
            ),
            ConfigError::Io { path, source } => {
                write!(f, "unable to read {}: {source}", path.display())
            }
            ConfigError::TooLarge { path } => write!(
                f,
                "{} is larger than {MAX_FILE_BYTES} bytes",
                path.display()
            ),
            ConfigError::Parse {
                path: Some(path),
                message,
            } => {
                let message = message.lines().next().unwrap_or_default();
                write!(f, "unable to parse kubeconfig {}: {message}", path.display())
            }
            ConfigError::Parse {
                path: None,
                message,
            } => {
                let message = message.lines().next().unwrap_or_default();
                write!(f, "unable to parse kubeconfig: {message}")
            }
            ConfigError::Invalid(message) => write!(f, "invalid configuration: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// Reads a whole file, refusing more than `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

// ---------------------------------------------------------------------------------------
// The kubeconfig document
// ---------------------------------------------------------------------------------------

/// A kubeconfig document (the fields a client needs; the rest is ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Kubeconfig {
    /// `current-context`.
    #[serde(rename = "current-context", deserialize_with = "null_default")]
    pub current_context: String,
    /// `clusters`.
    #[serde(deserialize_with = "null_default")]
    pub clusters: Vec<NamedCluster>,
    /// `users`.
    #[serde(deserialize_with = "null_default")]
    pub users: Vec<NamedUser>,
    /// `contexts`.
    #[serde(deserialize_with = "null_default")]
    pub contexts: Vec<NamedContext>,
}

/// An entry of `clusters`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NamedCluster {
    /// `name`.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `cluster`.
    #[serde(deserialize_with = "null_default")]
    pub cluster: Cluster,
}

/// A cluster: where the apiserver is and how to trust it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Cluster {
    /// `server`: `https://host:port[/path]`.
    #[serde(deserialize_with = "null_default")]
    pub server: String,
    /// `certificate-authority`: a PEM file.
    #[serde(deserialize_with = "null_default")]
    pub certificate_authority: String,
    /// `certificate-authority-data`: base64 of a PEM bundle (wins over the file).
    #[serde(deserialize_with = "null_default")]
    pub certificate_authority_data: String,
    /// `insecure-skip-tls-verify`.
    #[serde(deserialize_with = "null_default")]
    pub insecure_skip_tls_verify: bool,
    /// `tls-server-name`: the name to verify instead of the host.
    #[serde(deserialize_with = "null_default")]
    pub tls_server_name: String,
    /// `proxy-url` (not supported; refused when set).
    #[serde(deserialize_with = "null_default")]
    pub proxy_url: String,
}

/// An entry of `users`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NamedUser {
    /// `name`.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `user`.
    #[serde(deserialize_with = "null_default")]
    pub user: User,
}

/// A user: client certificate and/or token, or basic auth.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct User {
    /// `client-certificate`: a PEM file.
    #[serde(deserialize_with = "null_default")]
    pub client_certificate: String,
    /// `client-certificate-data`: base64 PEM (wins over the file).
    #[serde(deserialize_with = "null_default")]
    pub client_certificate_data: String,
    /// `client-key`: a PEM file.
    #[serde(deserialize_with = "null_default")]
    pub client_key: String,
    /// `client-key-data`: base64 PEM (wins over the file).
    #[serde(deserialize_with = "null_default")]
    pub client_key_data: String,
    /// `token`: a bearer token.
    #[serde(deserialize_with = "null_default")]
    pub token: String,
    /// `tokenFile`: a file holding the bearer token, re-read periodically.
    #[serde(rename = "tokenFile", deserialize_with = "null_default")]
    pub token_file: String,
    /// `username` (basic auth).
    #[serde(deserialize_with = "null_default")]
    pub username: String,
    /// `password` (basic auth).
    #[serde(deserialize_with = "null_default")]
    pub password: String,
    /// `exec` (credential plugins are not supported; refused when present).
    pub exec: Option<IgnoredAny>,
    /// `auth-provider` (not supported; refused when present).
    pub auth_provider: Option<IgnoredAny>,
}

/// An entry of `contexts`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NamedContext {
    /// `name`.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `context`.
    #[serde(deserialize_with = "null_default")]
    pub context: Context,
}

/// A context: a cluster and a user by name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Context {
    /// `cluster`.
    #[serde(deserialize_with = "null_default")]
    pub cluster: String,
    /// `user`.
    #[serde(deserialize_with = "null_default")]
    pub user: String,
    /// `namespace`.
    #[serde(deserialize_with = "null_default")]
    pub namespace: String,
}

/// `key: null` (which `kubectl config view` writes for empty lists) means the default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Kubeconfig {
    /// Parses kubeconfig YAML (or JSON) text.
    pub fn parse(text: &str) -> Result<Kubeconfig, ConfigError> {
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: None,
            message: e.to_string(),
        })
    }

    /// Reads and parses a kubeconfig file (at most [`MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Kubeconfig, ConfigError> {
        let bytes = read_bounded(path, MAX_FILE_BYTES)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| ConfigError::Parse {
            path: Some(path.to_path_buf()),
            message: format!("not UTF-8: {e}"),
        })?;
        Kubeconfig::parse(text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })
    }

    /// Resolves `context` (or `current-context`) into a client configuration. Relative
    /// file paths are taken relative to `base_dir` (the kubeconfig's directory, as
    /// client-go does). Token files are not read here (see [`RestConfig::token_source`]).
    pub fn resolve(
        &self,
        context: Option<&str>,
        base_dir: Option<&Path>,
    ) -> Result<RestConfig, ConfigError> {
        let context_name = context.unwrap_or(&self.current_context);
        if context_name.is_empty() {
            return Err(invalid("no current-context is set"));
        }
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .map(|c| &c.context)
            .ok_or_else(|| invalid(format!("context {context_name:?} does not exist")))?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .map(|c| &c.cluster)
            .ok_or_else(|| {
                invalid(format!(
                    "context {context_name:?} refers to cluster {:?}, which does not exist",
                    ctx.cluster
                ))
            })?;
        let default_user = User::default();
        let user = if ctx.user.is_empty() {
            &default_user
        } else {
            self.users
                .iter()
                .find(|u| u.name == ctx.user)
                .map(|u| &u.user)
                .ok_or_else(|| {
                    invalid(format!(
                        "context {context_name:?} refers to user {:?}, which does not exist",
                        ctx.user
                    ))
                })?
        };
        let path = |p: &str| -> PathBuf {
            let p = Path::new(p);
            match base_dir {
                Some(base) if p.is_relative() => base.join(p),
                _ => p.to_path_buf(),
            }
        };
        let source =
            |data: &str, file: &str, what: &str| -> Result<Option<PemSource>, ConfigError> {
                if !data.is_empty() {
                    return decode_base64(data)
                        .map(|b| Some(PemSource::Inline(b)))
                        .map_err(|e| invalid(format!("{what}-data: {e}")));
                }
                Ok((!file.is_empty()).then(|| PemSource::File(path(file))))
            };

        if !cluster.proxy_url.is_empty() {
            return Err(invalid(format!(
                "cluster {:?}: proxy-url is not supported",
                ctx.cluster
            )));
        }
        if user.exec.is_some() {
            return Err(invalid(format!(
                "user {:?}: exec credential plugins are not supported",
                ctx.user
            )));
        }
        if user.auth_provider.is_some() {
            return Err(invalid(format!(
                "user {:?}: auth-provider is not supported",
                ctx.user
            )));
        }

        let ca = source(
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
            "certificate-authority",
        )?;
        let client_cert = source(
            &user.client_certificate_data,
            &user.client_certificate,
            "client-certificate",
        )?;
        let client_key = source(&user.client_key_data, &user.client_key, "client-key")?;
        if client_cert.is_some() != client_key.is_some() {
            return Err(invalid(format!(
                "user {:?}: client-certificate and client-key must be given together",
                ctx.user
            )));
        }
        if cluster.insecure_skip_tls_verify && ca.is_some() {
            return Err(invalid(
                "specifying a root certificates file with the insecure flag is not allowed",
            ));
        }
        let has_token = !user.token.is_empty() || !user.token_file.is_empty();
        let has_basic = !user.username.is_empty() || !user.password.is_empty();
        if has_token && has_basic {
            return Err(invalid(
                "username/password or bearer token may be set, but not both",
            ));
        }
        let auth = if has_token {
            Auth::Bearer {
                token: user.token.trim().to_owned(),
                token_file: (!user.token_file.is_empty()).then(|| path(&user.token_file)),
            }
        } else if has_basic {
            Auth::Basic {
                username: user.username.clone(),
                password: user.password.clone(),
            }
        } else {
            Auth::None
        };
        let tls = TlsSettings {
            ca,
            client_cert,
            client_key,
            insecure: cluster.insecure_skip_tls_verify,
            server_name: (!cluster.tls_server_name.is_empty())
                .then(|| cluster.tls_server_name.clone()),
        };
        let default_tls = tls.ca.is_some()
            || tls.client_cert.is_some()
            || tls.insecure
            || tls.server_name.is_some();
        if cluster.server.is_empty() {
            return Err(invalid(format!("cluster {:?} has no server", ctx.cluster)));
        }
        let server = ServerUrl::parse(&cluster.server, default_tls)?;
        Ok(RestConfig { server, tls, auth })
    }
}

/// Decodes a `*-data` field: standard base64, line breaks and spaces ignored.
fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64_STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("invalid base64: {e}"))
}

// ---------------------------------------------------------------------------------------
// Resolved client configuration
// ---------------------------------------------------------------------------------------

/// How to reach and authenticate to the kube-apiserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// The apiserver's URL.
    pub server: ServerUrl,
    /// TLS material.
    pub tls: TlsSettings,
    /// Credentials.
    pub auth: Auth,
}

/// TLS material for a client connection (files are read when the TLS config is built;
/// see `certs::client_config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// CA bundle to verify the server with.
    pub ca: Option<PemSource>,
    /// Client certificate chain.
    pub client_cert: Option<PemSource>,
    /// Client private key.
    pub client_key: Option<PemSource>,
    /// Skip server certificate verification.
    pub insecure: bool,
    /// Name to verify instead of the connection's host (`tls-server-name`).
    pub server_name: Option<String>,
}

/// PEM data inline or in a file.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file, read (bounded) when needed.
    File(PathBuf),
    /// The bytes themselves.
    Inline(Vec<u8>),
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(p) => f.debug_tuple("File").field(p).finish(),
            // Keys can be inline: never print the bytes.
            PemSource::Inline(b) => write!(f, "Inline({} bytes)", b.len()),
        }
    }
}

impl PemSource {
    /// The PEM bytes (reading the file, at most [`MAX_FILE_BYTES`]).
    pub fn load(&self) -> Result<Vec<u8>, ConfigError> {
        match self {
            PemSource::File(path) => read_bounded(path, MAX_FILE_BYTES),
            PemSource::Inline(bytes) => Ok(bytes.clone()),
        }
    }
}

/// Credentials sent to the server.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// None (client certificates only, or anonymous).
    None,
    /// `Authorization: Bearer <token>`; with a file, the file is re-read periodically
    /// and wins over `token` once read (as client-go does).
    Bearer {
        /// The token known now (may be empty until the file is read).
        token: String,
        /// The file to re-read.
        token_file: Option<PathBuf>,
    },
    /// `Authorization: Basic ...`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer { token, token_file } => f
                .debug_struct("Bearer")
                .field("token", &format_args!("<{} bytes>", token.len()))
                .field("token_file", token_file)
                .finish(),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &format_args!("<redacted>"))
                .finish(),
        }
    }
}

impl RestConfig {
    /// For a bearer token with a file and no inline token, reads the file now (client-go
    /// fails at start-up when it cannot). Returns the token source to use for requests.
    pub fn token_source(&self) -> Result<Option<TokenSource>, ConfigError> {
        match &self.auth {
            Auth::Bearer {
                token,
                token_file: Some(file),
            } => {
                let initial = if token.is_empty() {
                    None
                } else {
                    Some(token.clone())
                };
                TokenSource::from_file(file.clone(), initial, Instant::now()).map(Some)
            }
            Auth::Bearer {
                token,
                token_file: None,
            } => Ok(Some(TokenSource::fixed(token.clone()))),
            _ => Ok(None),
        }
    }
}

/// Loads `--kubeconfig`: reads and parses the file and resolves its current context
/// with paths relative to the file's directory.
pub fn load_kubeconfig(path: &Path) -> Result<RestConfig, ConfigError> {
    let config = Kubeconfig::load(path)?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    config.resolve(None, base.or(Some(Path::new("."))))
}

/// The in-cluster configuration (client-go's `rest.InClusterConfig`), reading the
/// service-account files under `root` (`/` in production, a temporary directory in
/// tests) and the service address from `env`.
pub fn in_cluster_config(
    root: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<RestConfig, ConfigError> {
    let host = env("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_default();
    if host.is_empty() || port.is_empty() {
        return Err(ConfigError::NotInCluster);
    }
    let port: u16 = port
        .trim()
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid(format!("KUBERNETES_SERVICE_PORT {port:?} is not a port")))?;
    let host = host.trim();
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    validate_host(bare_host)?;

    let dir = root.join(SERVICE_ACCOUNT_DIR);
    let token_file = dir.join("token");
    let token_bytes = read_bounded(&token_file, MAX_FILE_BYTES)?;
    let token = String::from_utf8_lossy(&token_bytes).trim().to_owned();
    let ca_file = dir.join("ca.crt");
    let ca_bytes = read_bounded(&ca_file, MAX_FILE_BYTES)?;
    if !ca_bytes
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(invalid(format!(
            "expected to load root CA config from {}, but it holds no certificate",
            ca_file.display()
        )));
    }
    Ok(RestConfig {
        server: ServerUrl {
            scheme: Scheme::Https,
            host: bare_host.to_owned(),
            port,
            path: String::new(),
        },
        tls: TlsSettings {
            ca: Some(PemSource::File(ca_file)),
            ..TlsSettings::default()
        },
        auth: Auth::Bearer {
            token,
            token_file: Some(token_file),
        },
    })
}

/// [`in_cluster_config`] for the real process: root `/` and the process environment.
pub fn in_cluster_config_from_env() -> Result<RestConfig, ConfigError> {
    in_cluster_config(Path::new("/"), |k| std::env::var(k).ok())
}

/// Upstream's choice: `--kubeconfig` when given, else the in-cluster configuration.
pub fn rest_config(kubeconfig: Option<&Path>) -> Result<RestConfig, ConfigError> {
    match kubeconfig {
        Some(path) => load_kubeconfig(path),
        None => in_cluster_config_from_env(),
    }
}

// ---------------------------------------------------------------------------------------
// Server URL
// ---------------------------------------------------------------------------------------

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` / `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 / 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed `server:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// Path prefix without a trailing slash (usually empty).
    pub path: String,
}

impl ServerUrl {
    /// Parses a server URL. Without a scheme, `https` is assumed when `default_tls`
    /// (client-go: when any TLS setting is present), else `http`.
    pub fn parse(s: &str, default_tls: bool) -> Result<ServerUrl, ConfigError> {
        let bad = |why: &str| invalid(format!("server URL {s:?}: {why}"));
        let s_trim = s.trim();
        let (scheme, rest) = match s_trim.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = match scheme.to_ascii_lowercase().as_str() {
                    "https" => Scheme::Https,
                    "http" => Scheme::Http,
                    _ => return Err(bad("scheme must be http or https")),
                };
                (scheme, rest)
            }
            None if default_tls => (Scheme::Https, s_trim),
            None => (Scheme::Http, s_trim),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let path = tail.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/').to_owned();
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (host, after) = after
                .split_once(']')
                .ok_or_else(|| bad("unterminated IPv6 address"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("invalid IPv6 address"));
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after host"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        validate_host(host).map_err(|_| bad("invalid host"))?;
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("invalid port"))?,
        };
        Ok(ServerUrl {
            scheme,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `host:port`, with brackets around an IPv6 address (the `Host` header value).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

fn validate_host(host: &str) -> Result<(), ConfigError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("invalid host {host:?}")))
    }
}

// ---------------------------------------------------------------------------------------
// Token source
// ---------------------------------------------------------------------------------------

/// True when a token read at `read_at` should be read again at `now`.
pub fn token_needs_refresh(read_at: Instant, now: Instant, period: Duration) -> bool {
    now.saturating_duration_since(read_at) >= period
}

/// Reads a token file, trimmed; an empty file is an error (as client-go).
pub fn read_token_file(path: &Path) -> Result<String, ConfigError> {
    let bytes = read_bounded(path, MAX_FILE_BYTES)?;
    let token = std::str::from_utf8(&bytes)
        .map_err(|_| invalid(format!("token file {} is not UTF-8", path.display())))?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(invalid(format!(
            "read empty token from file {:?}",
            path.display().to_string()
        )));
    }
    Ok(token)
}

/// A bearer token that follows a rotating file (projected service-account tokens are
/// replaced about hourly): the file is re-read at most once per period, and a failed
/// read keeps the previous token (client-go's behaviour).
#[derive(Debug)]
pub struct TokenSource {
    file: Option<PathBuf>,
    period: Duration,
    state: Mutex<TokenState>,
}

#[derive(Debug, Clone)]
struct TokenState {
    token: String,
    read_at: Option<Instant>,
}

impl TokenSource {
    /// A token that never changes.
    pub fn fixed(token: String) -> TokenSource {
        TokenSource {
            file: None,
            period: TOKEN_REFRESH_PERIOD,
            state: Mutex::new(TokenState {
                token,
                read_at: None,
            }),
        }
    }

    /// A token read from `file` now and every [`TOKEN_REFRESH_PERIOD`]. With an
    /// `initial` token a failed first read is tolerated (the initial token is used).
    pub fn from_file(
        file: PathBuf,
        initial: Option<String>,
        now: Instant,
    ) -> Result<TokenSource, ConfigError> {
        let token = match (read_token_file(&file), initial) {
            (Ok(t), _) => t,
            (Err(_), Some(t)) => t,
            (Err(e), None) => return Err(e),
        };
        Ok(TokenSource {
            file: Some(file),
            period: TOKEN_REFRESH_PERIOD,
            state: Mutex::new(TokenState {
                token,
                read_at: Some(now),
            }),
        })
    }

    /// Changes the re-read period (tests use short ones).
    pub fn with_period(mut self, period: Duration) -> TokenSource {
        self.period = period;
        self
    }

    /// The current token, re-reading the file if the period has passed.
    pub fn token(&self) -> String {
        self.token_at(Instant::now())
    }

    /// [`TokenSource::token`] with the clock passed in.
    pub fn token_at(&self, now: Instant) -> String {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(file) = &self.file {
            let due = state
                .read_at
                .is_none_or(|at| token_needs_refresh(at, now, self.period));
            if due {
                match read_token_file(file) {
                    Ok(token) => state.token = token,
                    Err(e) => tracing::warn!(error = %e, "Unable to rotate token"),
                }
                state.read_at = Some(now);
            }
        }
        state.token.clone()
    }

    /// `Bearer <token>`, the `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token())
    }
}

// ---------------------------------------------------------------------------------------
// Kubelet client settings
// ---------------------------------------------------------------------------------------

/// How to talk to kubelets: derived from the apiserver client configuration and the
/// kubelet flags exactly as upstream's `KubeletClientOptions.Config` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletClientConfig {
    /// `https`, or `http` with `--deprecated-kubelet-completely-insecure`.
    pub scheme: Scheme,
    /// TLS material (`None` for plain HTTP).
    pub tls: Option<TlsSettings>,
    /// Credentials (none for plain HTTP, so nothing leaks to an unencrypted endpoint).
    pub auth: Auth,
}

/// Upstream's derivation: start from the apiserver config; completely-insecure drops TLS
/// and credentials; `--kubelet-insecure-tls` skips verification and drops the CA;
/// `--kubelet-certificate-authority`, `--kubelet-client-certificate` and
/// `--kubelet-client-key` replace the kubeconfig's. A `tls-server-name` in the
/// kubeconfig is kept (upstream copies the whole TLS config).
pub fn kubelet_client_config(rest: &RestConfig, k: &KubeletOptions) -> KubeletClientConfig {
    if k.completely_insecure {
        return KubeletClientConfig {
            scheme: Scheme::Http,
            tls: None,
            auth: Auth::None,
        };
    }
    let mut tls = rest.tls.clone();
    if k.insecure_tls {
        tls.insecure = true;
        tls.ca = None;
    }
    if let Some(ca) = &k.certificate_authority {
        tls.ca = Some(PemSource::File(ca.clone()));
    }
    if let Some(cert) = &k.client_certificate {
        tls.client_cert = Some(PemSource::File(cert.clone()));
    }
    if let Some(key) = &k.client_key {
        tls.client_key = Some(PemSource::File(key.clone()));
    }
    KubeletClientConfig {
        scheme: Scheme::Https,
        tls: Some(tls),
        auth: rest.auth.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let u = ServerUrl::parse("https://10.0.0.1:6443", false).expect("valid");
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.host, "10.0.0.1");
        assert_eq!(u.port, 6443);
        assert_eq!(u.to_string(), "https://10.0.0.1:6443");
        let u = ServerUrl::parse("https://[fd00::1]:6443/prefix/", false).expect("valid");
        assert_eq!(u.host, "fd00::1");
        assert_eq!(u.authority(), "[fd00::1]:6443");
        assert_eq!(u.path, "/prefix");
        let u = ServerUrl::parse("kubernetes.default.svc", true).expect("valid");
        assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
        let u = ServerUrl::parse("localhost:8080", false).expect("valid");
        assert_eq!((u.scheme, u.port), (Scheme::Http, 8080));
        let u = ServerUrl::parse("HTTPS://example.com", false).expect("valid");
        assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://:443",
            "https://h:0",
            "https://h:99999",
            "https://h:x",
            "https://u:p@h",
            "https://[::1",
            "https://[zz]:1",
            "https://h o",
            "https://[::1]x",
        ] {
            assert!(ServerUrl::parse(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refresh_rule() {
        let t0 = Instant::now();
        assert!(!token_needs_refresh(t0, t0, TOKEN_REFRESH_PERIOD));
        assert!(!token_needs_refresh(
            t0,
            t0 + Duration::from_secs(59),
            TOKEN_REFRESH_PERIOD
        ));
        assert!(token_needs_refresh(
            t0,
            t0 + Duration::from_secs(60),
            TOKEN_REFRESH_PERIOD
        ));
        // a clock that went backwards never triggers a read storm
        assert!(!token_needs_refresh(
            t0 + Duration::from_secs(5),
            t0,
            TOKEN_REFRESH_PERIOD
        ));
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let a = Auth::Bearer {
            token: "s3cret".into(),
            token_file: None,
        };
        assert!(!format!("{a:?}").contains("s3cret"));
        let a = Auth::Basic {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{a:?}").contains("s3cret"));
        let p = PemSource::Inline(b"-----BEGIN PRIVATE KEY-----".to_vec());
        assert!(!format!("{p:?}").contains("PRIVATE"));
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::flags::Options;
    use crate::test_support::TempDir;

    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn b64(s: &str) -> String {
        BASE64_STANDARD.encode(s.as_bytes())
    }

    fn inline_kubeconfig() -> String {
        format!(
            r#"
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: {ca}
    extensions: [{{name: x, extension: {{a: 1}}}}]
- name: dev-cluster
  cluster:
    server: https://dev.example:443/k8s
    insecure-skip-tls-verify: true
    tls-server-name: kubernetes.default
contexts:
- name: prod
  context: {{cluster: prod-cluster, user: admin, namespace: kube-system}}
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
- name: dev-user
  user:
    token: "  abc.def  "
preferences: {{}}
"#,
            ca = b64(CA_PEM),
            cert = b64("CERT"),
            key = b64("KEY")
        )
    }

    #[test]
    fn inline_data_and_current_context() {
        let kc = Kubeconfig::parse(&inline_kubeconfig()).expect("parses");
        assert_eq!(kc.current_context, "prod");
        assert_eq!(kc.clusters.len(), 2);
        let rc = kc.resolve(None, None).expect("resolves");
        assert_eq!(rc.server.to_string(), "https://10.0.0.1:6443");
        assert_eq!(
            rc.tls.ca,
            Some(PemSource::Inline(CA_PEM.as_bytes().to_vec()))
        );
        assert_eq!(
            rc.tls.client_cert,
            Some(PemSource::Inline(b"CERT".to_vec()))
        );
        assert_eq!(rc.tls.client_key, Some(PemSource::Inline(b"KEY".to_vec())));
        assert!(!rc.tls.insecure);
        assert_eq!(rc.auth, Auth::None);
    }

    #[test]
    fn explicit_context_insecure_and_token() {
        let kc = Kubeconfig::parse(&inline_kubeconfig()).expect("parses");
        let rc = kc.resolve(Some("dev"), None).expect("resolves");
        assert_eq!(rc.server.host, "dev.example");
        assert_eq!(rc.server.path, "/k8s");
        assert!(rc.tls.insecure);
        assert_eq!(rc.tls.ca, None);
        assert_eq!(rc.tls.server_name.as_deref(), Some("kubernetes.default"));
        assert_eq!(
            rc.auth,
            Auth::Bearer {
                token: "abc.def".into(),
                token_file: None
            }
        );
        let source = rc.token_source().expect("ok").expect("bearer");
        assert_eq!(source.authorization(), "Bearer abc.def");
    }

    #[test]
    fn file_references_are_relative_to_the_kubeconfig() {
        let dir = TempDir::new("kubeconfig-files");
        dir.write("pki/ca.crt", CA_PEM);
        dir.write("tok", "file-token\n");
        let path = dir.write(
            "config",
            r#"
current-context: c
clusters: [{name: k, cluster: {server: "https://api:6443", certificate-authority: pki/ca.crt}}]
users: [{name: u, user: {client-certificate: /abs/client.crt, client-key: client.key, tokenFile: tok}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
"#,
        );
        let rc = load_kubeconfig(&path).expect("loads");
        assert_eq!(
            rc.tls.ca,
            Some(PemSource::File(dir.path().join("pki/ca.crt")))
        );
        assert_eq!(
            rc.tls.client_cert,
            Some(PemSource::File(PathBuf::from("/abs/client.crt")))
        );
        assert_eq!(
            rc.tls.client_key,
            Some(PemSource::File(dir.path().join("client.key")))
        );
        assert_eq!(
            rc.tls.ca.as_ref().map(|c| c.load().expect("readable")),
            Some(CA_PEM.as_bytes().to_vec())
        );
        let source = rc.token_source().expect("ok").expect("bearer");
        assert_eq!(source.token(), "file-token");
    }

    #[test]
    fn null_lists_json_and_numbers() {
        // `kubectl config view` writes `null` for empty lists.
        let kc =
            Kubeconfig::parse("clusters: null\nusers: null\ncontexts:\ncurrent-context: \"\"\n")
                .expect("parses");
        assert!(kc.clusters.is_empty() && kc.users.is_empty() && kc.contexts.is_empty());
        assert!(kc.resolve(None, None).is_err());
        // kubeconfig can be JSON
        let kc = Kubeconfig::parse(
            r#"{"current-context":"c","clusters":[{"name":"k","cluster":{"server":"https://h:1","insecure-skip-tls-verify":true}}],"contexts":[{"name":"c","context":{"cluster":"k","user":""}}],"users":[]}"#,
        )
        .expect("parses");
        let rc = kc.resolve(None, None).expect("resolves");
        assert_eq!(rc.server.port, 1);
        assert_eq!(rc.auth, Auth::None);
    }

    #[test]
    fn resolution_errors_are_clear() {
        let base = |ctx: &str, extra_user: &str| {
            format!(
                r#"
current-context: {ctx}
clusters: [{{name: k, cluster: {{server: "https://h:6443", certificate-authority-data: {ca}}}}}]
contexts: [{{name: c, context: {{cluster: k, user: u}}}}, {{name: nocluster, context: {{cluster: gone, user: u}}}}, {{name: nouser, context: {{cluster: k, user: gone}}}}]
users: [{{name: u, user: {{{extra_user}}}}}]
"#,
                ca = b64(CA_PEM)
            )
        };
        let err = |ctx: &str, user: &str| -> String {
            match Kubeconfig::parse(&base(ctx, user)).and_then(|k| k.resolve(None, None)) {
                Ok(rc) => panic!("expected an error, got {rc:?}"),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(
            err("missing", ""),
            "invalid configuration: context \"missing\" does not exist"
        );
        assert_eq!(
            err("nocluster", ""),
            "invalid configuration: context \"nocluster\" refers to cluster \"gone\", which does not exist"
        );
        assert_eq!(
            err("nouser", ""),
            "invalid configuration: context \"nouser\" refers to user \"gone\", which does not exist"
        );
        assert!(err("c", "exec: {command: aws}").contains("exec credential plugins"));
        assert!(err("c", "auth-provider: {name: gcp}").contains("auth-provider"));
        assert!(err("c", "token: t, username: a, password: b").contains("not both"));
        assert!(err("c", "client-certificate-data: QQ==").contains("together"));
        assert!(err("c", "client-key-data: '!!notbase64'").contains("client-key-data"));
        assert!(Kubeconfig::parse("clusters: 5").is_err());
    }

    #[test]
    fn in_cluster_config_from_a_temp_root() {
        let root = TempDir::new("in-cluster");
        let env = |host: &'static str| {
            move |k: &str| match k {
                "KUBERNETES_SERVICE_HOST" => Some(host.to_owned()),
                "KUBERNETES_SERVICE_PORT" => Some("443".to_owned()),
                _ => None,
            }
        };
        // not in a cluster
        let e = in_cluster_config(root.path(), |_| None).expect_err("no env");
        assert!(matches!(e, ConfigError::NotInCluster));
        assert_eq!(
            e.to_string(),
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
        );
        // env but no token file
        let e = in_cluster_config(root.path(), env("10.96.0.1")).expect_err("no token");
        assert!(e.to_string().contains("serviceaccount/token"), "{e}");

        let token = root.write(&format!("{SERVICE_ACCOUNT_DIR}/token"), "sa-token\n");
        root.write(&format!("{SERVICE_ACCOUNT_DIR}/ca.crt"), CA_PEM);
        let rc = in_cluster_config(root.path(), env("10.96.0.1")).expect("in cluster");
        assert_eq!(rc.server.to_string(), "https://10.96.0.1:443");
        assert_eq!(
            rc.tls.ca,
            Some(PemSource::File(
                root.path().join(SERVICE_ACCOUNT_DIR).join("ca.crt")
            ))
        );
        assert_eq!(
            rc.auth,
            Auth::Bearer {
                token: "sa-token".into(),
                token_file: Some(token)
            }
        );
        let rc = in_cluster_config(root.path(), env("fd00::1")).expect("in cluster");
        assert_eq!(rc.server.to_string(), "https://[fd00::1]:443");
        // a CA file without a certificate
        root.write(&format!("{SERVICE_ACCOUNT_DIR}/ca.crt"), "garbage");
        assert!(in_cluster_config(root.path(), env("10.96.0.1")).is_err());
    }

    #[test]
    fn token_rotation() {
        let dir = TempDir::new("token");
        let path = dir.write("token", "first\n");
        let t0 = Instant::now();
        let source = TokenSource::from_file(path.clone(), None, t0).expect("readable");
        assert_eq!(source.token_at(t0), "first");
        dir.write("token", "second");
        // not re-read before the period
        assert_eq!(source.token_at(t0 + Duration::from_secs(30)), "first");
        assert_eq!(source.token_at(t0 + TOKEN_REFRESH_PERIOD), "second");
        // a failed read keeps the previous token
        std::fs::remove_file(&path).expect("removable");
        assert_eq!(source.token_at(t0 + 2 * TOKEN_REFRESH_PERIOD), "second");
        dir.write("token", "   \n");
        assert_eq!(source.token_at(t0 + 3 * TOKEN_REFRESH_PERIOD), "second");
        dir.write("token", "third");
        assert_eq!(source.token_at(t0 + 4 * TOKEN_REFRESH_PERIOD), "third");
        // a file that cannot be read at start is an error without an initial token...
        let missing = dir.path().join("missing");
        assert!(TokenSource::from_file(missing.clone(), None, t0).is_err());
        // ...and falls back to it with one
        let s = TokenSource::from_file(missing, Some("inline".into()), t0).expect("fallback");
        assert_eq!(s.token_at(t0), "inline");
        assert_eq!(TokenSource::fixed("x".into()).token(), "x");
    }

    #[test]
    fn kubelet_settings_follow_upstream() {
        let rest = RestConfig {
            server: ServerUrl::parse("https://10.96.0.1:443", true).expect("valid"),
            tls: TlsSettings {
                ca: Some(PemSource::File("/sa/ca.crt".into())),
                server_name: Some("pinned".into()),
                ..TlsSettings::default()
            },
            auth: Auth::Bearer {
                token: "t".into(),
                token_file: None,
            },
        };
        let mut k = Options::defaults().kubelet;
        let c = kubelet_client_config(&rest, &k);
        assert_eq!(c.scheme, Scheme::Https);
        assert_eq!(c.tls.as_ref(), Some(&rest.tls));
        assert_eq!(c.auth, rest.auth);

        k.insecure_tls = true;
        let c = kubelet_client_config(&rest, &k);
        let tls = c.tls.expect("tls");
        assert!(tls.insecure);
        assert_eq!(tls.ca, None);
        assert_eq!(tls.server_name.as_deref(), Some("pinned"));

        k.insecure_tls = false;
        k.certificate_authority = Some("/kubelet-ca.crt".into());
        k.client_certificate = Some("/c.crt".into());
        k.client_key = Some("/c.key".into());
        let tls = kubelet_client_config(&rest, &k).tls.expect("tls");
        assert_eq!(tls.ca, Some(PemSource::File("/kubelet-ca.crt".into())));
        assert_eq!(tls.client_cert, Some(PemSource::File("/c.crt".into())));
        assert_eq!(tls.client_key, Some(PemSource::File("/c.key".into())));

        let mut k = Options::defaults().kubelet;
        k.completely_insecure = true;
        let c = kubelet_client_config(&rest, &k);
        assert_eq!(c.scheme, Scheme::Http);
        assert_eq!(c.tls, None);
        assert_eq!(c.auth, Auth::None, "no credentials over plain HTTP");
    }

    /// A tiny deterministic generator for fuzz-like inputs (no extra dependencies).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn hostile_kubeconfigs_never_panic() {
        let mut inputs: Vec<String> = vec![
            String::new(),
            "\0\0\0".into(),
            "---\n---\n".into(),
            "[".into(),
            "{".into(),
            "clusters: [".into(),
            "clusters: [{name: a, cluster: 7}]".into(),
            "current-context: [a, b]".into(),
            "current-context: !!binary aGVsbG8=".into(),
            "clusters: &a [*a]".into(),
            "users: [{name: u, user: {token: 12345}}]".into(),
            "users: [{name: u, user: {token: 1e999}}]".into(),
            "clusters: [{name: k, cluster: {insecure-skip-tls-verify: maybe}}]".into(),
            "clusters: [{name: k, cluster: {server: \"https://[::1\"}}]\ncontexts: [{name: c, context: {cluster: k}}]\ncurrent-context: c".into(),
            "clusters: [{name: k, cluster: {server: \"https://h\", certificate-authority-data: \"\u{1F600}\"}}]\ncontexts: [{name: c, context: {cluster: k}}]\ncurrent-context: c".into(),
            "? [a]\n: b".into(),
            "a: !custom {x: 1}".into(),
            "\t\tclusters:\n\t- x".into(),
            format!("current-context: {}", "x".repeat(100_000)),
            format!("clusters: {}{}", "[".repeat(10_000), "]".repeat(10_000)),
            format!("clusters: {}", "- ".repeat(5_000)),
            format!("users: [{}]", "{name: u},".repeat(10_000)),
        ];
        // the billion laughs
        let mut laughs = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (i, prev) in ('b'..='j').zip('a'..='i') {
            laughs.push_str(&format!(
                "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        laughs.push_str("clusters: *j\n");
        inputs.push(laughs);
        // mutations of a valid document
        let valid = inline_kubeconfig();
        let mut rng = Lcg(0x5eed);
        for _ in 0..300 {
            let mut bytes = valid.clone().into_bytes();
            for _ in 0..(1 + rng.next() % 8) {
                let i = (rng.next() as usize) % bytes.len();
                match rng.next() % 3 {
                    0 => {
                        let alphabet = b"{}[]:-,&*!|>'\"\n #%@`";
                        bytes[i] = alphabet[(rng.next() as usize) % alphabet.len()];
                    }
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, (rng.next() % 128) as u8),
                }
            }
            inputs.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        for input in &inputs {
            if let Ok(kc) = Kubeconfig::parse(input) {
                let _ = kc.resolve(None, None);
                let _ = kc.resolve(Some("dev"), None);
            }
        }
        // not UTF-8, and too large
        let dir = TempDir::new("hostile");
        let p = dir.write("binary", [0xffu8, 0xfe, 0x00, 0x80]);
        assert!(matches!(
            Kubeconfig::load(&p),
            Err(ConfigError::Parse { .. })
        ));
        let p = dir.write("big", vec![b'#'; (MAX_FILE_BYTES + 1) as usize]);
        assert!(matches!(
            Kubeconfig::load(&p),
            Err(ConfigError::TooLarge { .. })
        ));
        assert!(matches!(
            load_kubeconfig(&dir.path().join("absent")),
            Err(ConfigError::Io { .. })
        ));
    }
}

#[cfg(test)]
mod scalar_tests {
    use super::*;

    #[test]
    fn numeric_scalars_read_as_strings() {
        let kc = Kubeconfig::parse(
            "current-context: 2024\ncontexts: [{name: 2024, context: {cluster: 1, user: 007}}]\nclusters: [{name: 1, cluster: {server: \"https://h:1\", insecure-skip-tls-verify: true}}]\nusers: [{name: 007, user: {token: 12345}}]\n",
        )
        .expect("parses");
        assert_eq!(kc.current_context, "2024");
        assert_eq!(kc.users[0].name, "007");
        assert_eq!(kc.users[0].user.token, "12345");
        let rc = kc.resolve(None, None).expect("resolves");
        assert_eq!(
            rc.auth,
            Auth::Bearer {
                token: "12345".into(),
                token_file: None
            }
        );
    }
}
