//! Where the authentication settings come from (spec 5.3): the flags, or the ConfigMap
//! `kube-system/extension-apiserver-authentication` that kube-apiserver publishes.
//!
//! Only the decisions live here; the engine reads the files and the ConfigMap:
//!
//! ```text
//!  opts.needs_lookup()? ── yes ─▶ GET the ConfigMap ─▶ Lookup::{Found, NotFound, Failed}
//!  opts.resolve(lookup) ─▶ Ok(AuthSources) | Err(start-up error)
//!  on a watch event: ExtensionAuthentication::from_json ─▶ Authenticator::set_*
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::authn::RequestHeaderConfig;
use super::x509::CaBundle;

pub const CONFIGMAP_NAMESPACE: &str = "kube-system";
pub const CONFIGMAP_NAME: &str = "extension-apiserver-authentication";
/// The ConfigMap's API path on kube-apiserver.
pub const CONFIGMAP_PATH: &str =
    "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication";

pub const CLIENT_CA_KEY: &str = "client-ca-file";
pub const REQUESTHEADER_CA_KEY: &str = "requestheader-client-ca-file";
pub const ALLOWED_NAMES_KEY: &str = "requestheader-allowed-names";
pub const USERNAME_HEADERS_KEY: &str = "requestheader-username-headers";
pub const UID_HEADERS_KEY: &str = "requestheader-uid-headers";
pub const GROUP_HEADERS_KEY: &str = "requestheader-group-headers";
pub const EXTRA_PREFIXES_KEY: &str = "requestheader-extra-headers-prefix";

/// Largest ConfigMap document read (kube-apiserver caps objects at about 1.5 MiB).
pub const MAX_CONFIGMAP_BYTES: usize = 4 * 1024 * 1024;

/// The authentication flags (files already read by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticationOptions {
    /// Contents of `--client-ca-file`.
    pub client_ca_file: Option<Vec<u8>>,
    /// `--requestheader-client-ca-file` and its companion flags; `None` when the CA
    /// file flag is not given (the other flags are then unused).
    pub request_header: Option<RequestHeaderOptions>,
    /// `--authentication-skip-lookup`.
    pub skip_lookup: bool,
    /// `--authentication-tolerate-lookup-failure`.
    pub tolerate_lookup_failure: bool,
}

/// The `--requestheader-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderOptions {
    /// Contents of `--requestheader-client-ca-file`.
    pub client_ca_file: Vec<u8>,
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_header_prefixes: Vec<String>,
}

impl RequestHeaderOptions {
    /// The flag defaults around a CA file's contents.
    pub fn with_defaults(client_ca_file: Vec<u8>) -> RequestHeaderOptions {
        RequestHeaderOptions {
            client_ca_file,
            allowed_names: Vec::new(),
            username_headers: vec!["x-remote-user".to_owned()],
            uid_headers: Vec::new(),
            group_headers: vec!["x-remote-group".to_owned()],
            extra_header_prefixes: vec!["x-remote-extra-".to_owned()],
        }
    }
}

/// What reading the ConfigMap gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The ConfigMap object as JSON.
    Found(&'a [u8]),
    NotFound,
    /// Forbidden or any other error, with its text.
    Failed(&'a str),
}

/// The settings [`AuthenticationOptions::resolve`] decided on, for
/// [`AuthnConfig`](super::AuthnConfig).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSources {
    pub request_header: Option<RequestHeaderConfig>,
    pub client_ca: Option<CaBundle>,
    /// Non-fatal problems to log (a lookup failure tolerated, an unusable CA bundle).
    pub warnings: Vec<String>,
}

/// A start-up error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSourceError(pub String);

impl fmt::Display for AuthSourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthSourceError {}

impl AuthenticationOptions {
    /// Whether the ConfigMap must be read: unless skipped, whenever the client CA or the
    /// request-header settings do not come from flags.
    pub fn needs_lookup(&self) -> bool {
        !self.skip_lookup && (self.client_ca_file.is_none() || self.request_header.is_none())
    }

    /// Decides the settings. `lookup` is the ConfigMap read when
    /// [`needs_lookup`](Self::needs_lookup) (`None` when it was not read, e.g. no
    /// authentication kubeconfig: ConfigMap-based settings are then absent).
    ///
    /// * Flag-given settings win. An unreadable flag CA bundle is an error.
    /// * ConfigMap NotFound: no request-header settings, silently.
    /// * ConfigMap failure (or undecodable header lists): the error
    ///   `unable to load configmap based request-header-client-ca-file: ...`, unless
    ///   tolerated, in which case there are no ConfigMap-based settings.
    /// * ConfigMap CA bundles that are missing or unusable leave that authenticator
    ///   inactive (upstream ignores them at start-up and waits for an update).
    pub fn resolve(&self, lookup: Option<Lookup<'_>>) -> Result<AuthSources, AuthSourceError> {
        let mut sources = AuthSources::default();
        if let Some(ca) = &self.client_ca_file {
            let bundle = CaBundle::parse(ca)
                .map_err(|e| AuthSourceError(format!("unable to load client CA provider: {e}")))?;
            sources.client_ca = Some(bundle);
        }
        if let Some(rh) = &self.request_header {
            let bundle = CaBundle::parse(&rh.client_ca_file).map_err(|e| {
                AuthSourceError(format!("unable to load request-header CA file: {e}"))
            })?;
            sources.request_header = Some(RequestHeaderConfig {
                client_ca: bundle,
                allowed_names: rh.allowed_names.clone(),
                username_headers: rh.username_headers.clone(),
                uid_headers: rh.uid_headers.clone(),
                group_headers: rh.group_headers.clone(),
                extra_header_prefixes: rh.extra_header_prefixes.clone(),
            });
        }
        if self.skip_lookup || !self.needs_lookup() {
            return Ok(sources);
        }
        let Some(lookup) = lookup else {
            sources.warnings.push(format!(
                "no authentication kubeconfig to look up configmap/{CONFIGMAP_NAME} in {CONFIGMAP_NAMESPACE}: authentication settings from it won't work"
            ));
            return Ok(sources);
        };
        let found = match lookup {
            Lookup::NotFound => return Ok(sources),
            Lookup::Failed(e) => Err(e.to_owned()),
            Lookup::Found(json) => {
                ExtensionAuthentication::from_json(json).map_err(|e| e.to_string())
            }
        };
        let ext = match found {
            Ok(ext) => ext,
            Err(e) if self.tolerate_lookup_failure => {
                sources.warnings.push(format!(
                    "Error looking up in-cluster authentication configuration: {e}; continuing without authentication configuration, which may treat all requests as anonymous"
                ));
                return Ok(sources);
            }
            Err(e) => {
                return Err(AuthSourceError(format!(
                    "unable to load configmap based request-header-client-ca-file: {e}"
                )));
            }
        };
        sources.warnings.extend(ext.warnings.iter().cloned());
        if sources.client_ca.is_none() {
            sources.client_ca = ext.client_ca;
        }
        if sources.request_header.is_none() {
            sources.request_header = ext.request_header;
        }
        Ok(sources)
    }
}

/// The authentication settings in the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionAuthentication {
    /// `client-ca-file`, when present and usable.
    pub client_ca: Option<CaBundle>,
    /// `requestheader-*`, when `requestheader-client-ca-file` is present and usable.
    /// Header lists come from the ConfigMap only (missing key = empty list): the flag
    /// defaults are not used here.
    pub request_header: Option<RequestHeaderConfig>,
    /// Missing or unusable CA bundles.
    pub warnings: Vec<String>,
}

/// A ConfigMap whose request-header settings cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapError(pub String);

impl fmt::Display for ConfigMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigMapError {}

#[derive(Deserialize)]
struct ConfigMapDocument {
    #[serde(default)]
    data: Option<BTreeMap<String, String>>,
}

impl ExtensionAuthentication {
    /// Reads a ConfigMap object (JSON). The header lists must be JSON arrays of strings
    /// (an empty value counts as missing); anything else is an error, as upstream's
    /// request-header controller reports it.
    pub fn from_json(json: &[u8]) -> Result<ExtensionAuthentication, ConfigMapError> {
        if json.len() > MAX_CONFIGMAP_BYTES {
            return Err(ConfigMapError("configmap too large".to_owned()));
        }
        let doc: ConfigMapDocument = serde_json::from_slice(json)
            .map_err(|e| ConfigMapError(format!("invalid configmap: {e}")))?;
        let data = doc.data.unwrap_or_default();
        let list = |key: &str| -> Result<Vec<String>, ConfigMapError> {
            match data.get(key).map(String::as_str) {
                None | Some("") => Ok(Vec::new()),
                Some(raw) => serde_json::from_str::<Option<Vec<String>>>(raw)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| ConfigMapError(format!("{key}: {e}"))),
            }
        };
        let username_headers = list(USERNAME_HEADERS_KEY)?;
        let uid_headers = list(UID_HEADERS_KEY)?;
        let group_headers = list(GROUP_HEADERS_KEY)?;
        let extra_header_prefixes = list(EXTRA_PREFIXES_KEY)?;
        let allowed_names = list(ALLOWED_NAMES_KEY)?;

        let mut ext = ExtensionAuthentication::default();
        let mut bundle = |key: &str| match data.get(key).filter(|v| !v.is_empty()) {
            None => {
                ext.warnings
                    .push(format!("missing content for CA bundle {key:?}"));
                None
            }
            Some(pem) => match CaBundle::parse(pem.as_bytes()) {
                Ok(bundle) => Some(bundle),
                Err(e) => {
                    ext.warnings.push(format!("CA bundle {key:?}: {e}"));
                    None
                }
            },
        };
        let client_ca = bundle(CLIENT_CA_KEY);
        let request_header_ca = bundle(REQUESTHEADER_CA_KEY);
        ext.client_ca = client_ca;
        ext.request_header = request_header_ca.map(|client_ca| RequestHeaderConfig {
            client_ca,
            allowed_names,
            username_headers,
            uid_headers,
            group_headers,
            extra_header_prefixes,
        });
        Ok(ext)
    }
}
