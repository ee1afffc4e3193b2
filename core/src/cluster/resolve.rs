//! Where to scrape a node: address, port, path and URL (spec `kubelet-and-storage.md` 5.4).

use super::escape::{host_escape, path_escape};
use super::objects::{AddressType, Node};
use std::fmt;

/// Path scraped when a node has no `metrics.k8s.io/resource-metrics-path` annotation.
pub const DEFAULT_METRICS_PATH: &str = "/metrics/resource";

/// Kubelet URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// `https` (the default).
    #[default]
    Https,
    /// `http`, with `--deprecated-kubelet-completely-insecure`.
    Http,
}

impl Scheme {
    /// `"https"` or `"http"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// The kubelet addressing flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveConfig {
    /// `--kubelet-preferred-address-types`, in order.
    pub preferred_types: Vec<AddressType>,
    /// `--kubelet-port`.
    pub kubelet_port: u16,
    /// `--kubelet-use-node-status-port`.
    pub use_node_status_port: bool,
    /// `http` with `--deprecated-kubelet-completely-insecure`, else `https`.
    pub scheme: Scheme,
}

impl Default for ResolveConfig {
    /// The binary's defaults.
    fn default() -> Self {
        ResolveConfig {
            preferred_types: AddressType::DEFAULT_PREFERENCE.to_vec(),
            kubelet_port: 10250,
            use_node_status_port: false,
            scheme: Scheme::Https,
        }
    }
}

/// Where and how to reach one node's kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletTarget {
    /// The address picked from `.status.addresses`, as reported (no brackets): what to
    /// connect to and the TLS server name.
    pub host: String,
    /// The port.
    pub port: u16,
    /// `host:port`, IPv6 addresses in brackets: the `Host` header.
    pub authority: String,
    /// Escaped path for the request line (always starts with `/`).
    pub path: String,
    /// The full URL, as upstream's `url.URL.String()` renders it.
    pub url: String,
}

/// Why a node cannot be scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// No address of any preferred type. Displays as upstream's
    /// `no address matched types [InternalIP ExternalIP Hostname]`.
    NoAddressMatched {
        /// The preference list, as configured.
        types: Vec<AddressType>,
    },
    /// The port to use is outside 1..=65535 (a bad node status port or a zero flag).
    InvalidPort(i64),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NoAddressMatched { types } => {
                // Go's %v of a slice: space-separated in brackets.
                f.write_str("no address matched types [")?;
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str(t.as_str())?;
                }
                f.write_str("]")
            }
            ResolveError::InvalidPort(p) => write!(f, "invalid kubelet port {p}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Resolves `node`'s kubelet endpoint as upstream does:
/// - address: for each preferred type in order, the first address of that type;
/// - port: the node's status port when `use_node_status_port` and it is non-zero, else
///   the flag;
/// - path: the non-empty `metrics.k8s.io/resource-metrics-path` annotation, else
///   `/metrics/resource`; always a path, so a `?` in it is escaped;
/// - URL: `scheme://host:port/path`, IPv6 addresses in brackets.
pub fn resolve(node: &Node, cfg: &ResolveConfig) -> Result<KubeletTarget, ResolveError> {
    let address = cfg
        .preferred_types
        .iter()
        .find_map(|wanted| node.addresses.iter().find(|a| a.kind.matches(wanted)))
        .ok_or_else(|| ResolveError::NoAddressMatched {
            types: cfg.preferred_types.clone(),
        })?;
    let port = if cfg.use_node_status_port && node.kubelet_port != 0 {
        i64::from(node.kubelet_port)
    } else {
        i64::from(cfg.kubelet_port)
    };
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or(ResolveError::InvalidPort(port))?;
    let host = String::from(&*address.address);
    // net.JoinHostPort brackets any host containing a colon.
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let raw_path = node
        .resource_metrics_path
        .as_deref()
        .unwrap_or(DEFAULT_METRICS_PATH);
    let mut path = String::with_capacity(raw_path.len() + 1);
    if !raw_path.starts_with('/') {
        // url.URL.String() adds the slash between a host and a relative path.
        path.push('/');
    }
    path_escape(raw_path, &mut path);
    let scheme = cfg.scheme.as_str();
    let mut url = String::with_capacity(scheme.len() + 3 + authority.len() + path.len());
    url.push_str(scheme);
    url.push_str("://");
    host_escape(&authority, &mut url);
    url.push_str(&path);
    Ok(KubeletTarget {
        host,
        port,
        authority,
        path,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::objects::{Labels, NodeAddress};

    fn node(addrs: &[(&str, &str)], port: i32, path: Option<&str>) -> Node {
        Node {
            name: "n1".into(),
            labels: Labels::default(),
            addresses: addrs
                .iter()
                .map(|(t, a)| NodeAddress {
                    kind: AddressType::parse(t),
                    address: (*a).into(),
                })
                .collect(),
            kubelet_port: port,
            resource_metrics_path: path.map(Into::into),
            ready: true,
        }
    }

    fn cfg(types: &[&str], port: u16, status_port: bool) -> ResolveConfig {
        ResolveConfig {
            preferred_types: types.iter().map(|t| AddressType::parse(t)).collect(),
            kubelet_port: port,
            use_node_status_port: status_port,
            scheme: Scheme::Https,
        }
    }

    const ADDRS: &[(&str, &str)] = &[
        ("ExternalIP", "203.0.113.7"),
        ("InternalIP", "10.0.0.1"),
        ("Hostname", "node-1"),
        ("InternalIP", "10.0.0.2"),
    ];

    #[test]
    fn section_5_4_preference_order_not_address_order() {
        let n = node(ADDRS, 0, None);
        let t = resolve(
            &n,
            &cfg(&["InternalIP", "ExternalIP", "Hostname"], 10250, false),
        )
        .expect("resolves");
        assert_eq!(
            t.host, "10.0.0.1",
            "first address of the first preferred type"
        );
        assert_eq!(t.url, "https://10.0.0.1:10250/metrics/resource");
        let t = resolve(&n, &ResolveConfig::default()).expect("resolves");
        assert_eq!(t.host, "node-1", "binary default prefers Hostname");
        assert_eq!(t.authority, "node-1:10250");
        assert_eq!(t.path, "/metrics/resource");
    }

    #[test]
    fn section_5_4_no_match_error_text() {
        let n = node(&[("Hostname", "h")], 0, None);
        let err = resolve(&n, &cfg(&["InternalIP", "ExternalIP"], 10250, false)).expect_err("none");
        assert_eq!(
            err.to_string(),
            "no address matched types [InternalIP ExternalIP]"
        );
        // Unknown names (and wrong case) never match, even an identical node address type.
        let n = node(&[("Custom", "1.2.3.4"), ("internalip", "5.6.7.8")], 0, None);
        let err = resolve(&n, &cfg(&["Custom", "internalip"], 10250, false)).expect_err("none");
        assert_eq!(
            err.to_string(),
            "no address matched types [Custom internalip]"
        );
        let err = resolve(&n, &cfg(&[], 10250, false)).expect_err("none");
        assert_eq!(err.to_string(), "no address matched types []");
    }

    #[test]
    fn section_5_4_status_port_versus_flag() {
        let types = ["InternalIP"];
        let n = node(ADDRS, 10255, None);
        assert_eq!(
            resolve(&n, &cfg(&types, 10250, false)).expect("ok").port,
            10250
        );
        assert_eq!(
            resolve(&n, &cfg(&types, 10250, true)).expect("ok").port,
            10255
        );
        let zero = node(ADDRS, 0, None);
        assert_eq!(
            resolve(&zero, &cfg(&types, 4443, true)).expect("ok").port,
            4443
        );
        let bad = node(ADDRS, 70_000, None);
        assert_eq!(
            resolve(&bad, &cfg(&types, 10250, true)),
            Err(ResolveError::InvalidPort(70_000))
        );
        assert_eq!(
            resolve(&zero, &cfg(&types, 0, false)),
            Err(ResolveError::InvalidPort(0))
        );
        // The address error wins over a bad port, as upstream only fails later on the port.
        let err = resolve(&bad, &cfg(&["ExternalDNS"], 10250, true)).expect_err("none");
        assert!(matches!(err, ResolveError::NoAddressMatched { .. }));
    }

    #[test]
    fn section_5_4_ipv6_in_brackets() {
        let n = node(&[("InternalIP", "fd00::1")], 0, None);
        let t = resolve(&n, &cfg(&["InternalIP"], 10250, false)).expect("ok");
        assert_eq!(t.host, "fd00::1");
        assert_eq!(t.authority, "[fd00::1]:10250");
        assert_eq!(t.url, "https://[fd00::1]:10250/metrics/resource");
        let n = node(&[("InternalIP", "fe80::1%eth0")], 0, None);
        let t = resolve(&n, &cfg(&["InternalIP"], 10250, false)).expect("ok");
        assert_eq!(t.url, "https://[fe80::1%25eth0]:10250/metrics/resource");
    }

    #[test]
    fn section_5_4_annotation_path() {
        let types = ["Hostname"];
        let n = node(ADDRS, 0, Some("/metrics/nodes/node-1/metrics/resource"));
        let t = resolve(&n, &cfg(&types, 10247, false)).expect("ok");
        assert_eq!(t.path, "/metrics/nodes/node-1/metrics/resource");
        assert_eq!(
            t.url,
            "https://node-1:10247/metrics/nodes/node-1/metrics/resource"
        );
        // A path only: '?' and spaces are escaped, a relative path gains its slash.
        let n = node(ADDRS, 0, Some("stats/x y?z=1"));
        let t = resolve(&n, &cfg(&types, 10250, false)).expect("ok");
        assert_eq!(t.path, "/stats/x%20y%3Fz=1");
        assert_eq!(t.url, "https://node-1:10250/stats/x%20y%3Fz=1");
        let http = ResolveConfig {
            scheme: Scheme::Http,
            ..cfg(&types, 10255, false)
        };
        assert_eq!(
            resolve(&node(ADDRS, 0, None), &http).expect("ok").url,
            "http://node-1:10255/metrics/resource"
        );
    }
}
