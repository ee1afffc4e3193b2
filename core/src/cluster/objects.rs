//! What the caches keep of a Node and of a Pod: only the fields the server reads.

use std::fmt;

/// Labels of an object: unique keys, sorted byte-wise (the order the API emits them in).
///
/// Built from the wire with "last duplicate wins", as Go's JSON decoder fills a map.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// Labels from `(key, value)` pairs in any order; a repeated key keeps its last value.
    pub fn new<I, K, V>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Box<str>>,
        V: Into<Box<str>>,
    {
        let mut all: Vec<(Box<str>, Box<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable sort keeps duplicates in input order, so the last of a run is the last given.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(all.len());
        for pair in all {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        Labels(out.into_boxed_slice())
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// `(key, value)` pairs in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels (the API then omits `metadata.labels`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of key and value text held.
    pub(crate) fn text_bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<Box<str>>, V: Into<Box<str>>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels::new(iter)
    }
}

/// A node address type (`.status.addresses[].type`, `--kubelet-preferred-address-types`).
///
/// Names are case-sensitive. Anything but the five known names is kept as
/// [`AddressType::Other`] so it can be printed back, and never matches anything, not even
/// an identical name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// `Hostname`.
    Hostname,
    /// `InternalIP`.
    InternalIP,
    /// `ExternalIP`.
    ExternalIP,
    /// `InternalDNS`.
    InternalDNS,
    /// `ExternalDNS`.
    ExternalDNS,
    /// Any other name, kept verbatim.
    Other(Box<str>),
}

impl AddressType {
    /// The binary's default `--kubelet-preferred-address-types`.
    pub const DEFAULT_PREFERENCE: &'static [AddressType] = &[
        AddressType::Hostname,
        AddressType::InternalDNS,
        AddressType::InternalIP,
        AddressType::ExternalDNS,
        AddressType::ExternalIP,
    ];

    /// The type named `name` (exact, case-sensitive match).
    pub fn parse(name: &str) -> AddressType {
        match name {
            "Hostname" => AddressType::Hostname,
            "InternalIP" => AddressType::InternalIP,
            "ExternalIP" => AddressType::ExternalIP,
            "InternalDNS" => AddressType::InternalDNS,
            "ExternalDNS" => AddressType::ExternalDNS,
            other => AddressType::Other(other.into()),
        }
    }

    /// The name as written on the wire and on the command line.
    pub fn as_str(&self) -> &str {
        match self {
            AddressType::Hostname => "Hostname",
            AddressType::InternalIP => "InternalIP",
            AddressType::ExternalIP => "ExternalIP",
            AddressType::InternalDNS => "InternalDNS",
            AddressType::ExternalDNS => "ExternalDNS",
            AddressType::Other(name) => name,
        }
    }

    /// Whether an address of type `self` satisfies a preference for `wanted`.
    pub(crate) fn matches(&self, wanted: &AddressType) -> bool {
        !matches!(wanted, AddressType::Other(_)) && self == wanted
    }
}

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `.status.addresses`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    /// `type`.
    pub kind: AddressType,
    /// `address`: an IP or a DNS name, as reported.
    pub address: Box<str>,
}

/// A Node as the server needs it.
///
/// `creationTimestamp` is not kept: NodeMetrics carries the response time instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// `metadata.name`.
    pub name: Box<str>,
    /// `metadata.labels` (copied into NodeMetrics, matched by selectors).
    pub labels: Labels,
    /// `.status.addresses`, in the order the node reports them.
    pub addresses: Box<[NodeAddress]>,
    /// `.status.daemonEndpoints.kubeletEndpoint.Port`; 0 when absent.
    pub kubelet_port: i32,
    /// The `metrics.k8s.io/resource-metrics-path` annotation when present and non-empty.
    pub resource_metrics_path: Option<Box<str>>,
    /// Whether the `Ready` condition's status is `True` (failures of other nodes are
    /// logged at a lower level).
    pub ready: bool,
}

/// A Running pod as the server needs it (metadata only).
///
/// No phase: the pod list/watch asks the apiserver for `status.phase=Running` pods, so every
/// cached pod is Running and a pod leaving that phase arrives as a deletion. No node name
/// or creation time either: metadata does not carry the first and the API never shows
/// the second.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pod {
    /// `metadata.namespace`.
    pub namespace: Box<str>,
    /// `metadata.name`.
    pub name: Box<str>,
    /// `metadata.labels`.
    pub labels: Labels,
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Node {}
    impl Sealed for super::Pod {}
}

/// An object a [`Watcher`](super::Watcher) caches: [`Node`] or [`Pod`].
pub trait ClusterObject: private::Sealed + fmt::Debug + Send + Sync + 'static {
    /// Namespace; empty for cluster-scoped objects.
    fn namespace(&self) -> &str;
    /// Name.
    fn name(&self) -> &str;
}

impl ClusterObject for Node {
    fn namespace(&self) -> &str {
        ""
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl ClusterObject for Pod {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_and_keep_last_duplicate() {
        let l = Labels::new([("b", "1"), ("a", "2"), ("b", "3"), ("c", "")]);
        let got: Vec<_> = l.iter().collect();
        assert_eq!(got, [("a", "2"), ("b", "3"), ("c", "")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("z"), None);
        assert_eq!(l.len(), 3);
        assert_eq!(format!("{l:?}"), r#"{"a": "2", "b": "3", "c": ""}"#);
    }

    #[test]
    fn address_types_parse_and_match() {
        for t in AddressType::DEFAULT_PREFERENCE {
            assert_eq!(&AddressType::parse(t.as_str()), t);
            assert!(t.matches(t));
        }
        assert_eq!(
            AddressType::parse("internalip"),
            AddressType::Other("internalip".into())
        );
        let other = AddressType::parse("Custom");
        assert!(!other.matches(&other), "unknown names never match");
        assert!(!AddressType::InternalIP.matches(&AddressType::ExternalIP));
    }
}
