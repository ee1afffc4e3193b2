//! JSON of list pages and watch events, decoded with serde into borrowed views, then into
//! the bounded [`Node`] / [`Pod`] the caches keep.
//!
//! Strings borrow from the input unless they contain escapes. Unknown fields are skipped;
//! annotations other than the metrics path are skipped without being materialised.

use super::objects::{AddressType, Labels, Node, NodeAddress, Pod};
use super::watcher::Limits;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Annotation overriding the kubelet metrics path of a node.
pub const RESOURCE_METRICS_PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";

/// Longest serde error message kept (they can quote input).
const MAX_ERROR_TEXT: usize = 200;

/// Why a list body or a watch line was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON of the expected shape (serde's message, shortened).
    Json(Box<str>),
    /// A required field is missing or empty.
    Missing(&'static str),
    /// A field is longer than the limit allows.
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// A field has more entries than the limit allows.
    TooMany {
        /// The field.
        field: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A number does not fit the field.
    OutOfRange(&'static str),
    /// A watch event type other than ADDED, MODIFIED, DELETED, BOOKMARK, ERROR.
    UnknownEventType(Box<str>),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(msg) => write!(f, "invalid JSON: {msg}"),
            DecodeError::Missing(field) => write!(f, "missing {field}"),
            DecodeError::TooLong { field, limit } => {
                write!(f, "{field} longer than {limit} bytes")
            }
            DecodeError::TooMany { field, limit } => {
                write!(f, "{field} has more than {limit} entries")
            }
            DecodeError::OutOfRange(field) => write!(f, "{field} out of range"),
            DecodeError::UnknownEventType(t) => write!(f, "unknown watch event type {t:?}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Json(truncated(&e.to_string(), MAX_ERROR_TEXT).into())
}

// ---- borrowed wire types -------------------------------------------------------------

/// A JSON string, borrowed from the input when it has no escapes.
#[derive(Debug)]
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// `metadata.labels` as pairs in wire order.
#[derive(Debug, Default)]
struct LabelPairs<'a>(Vec<(Str<'a>, Str<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for LabelPairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LabelPairs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry::<Str<'a>, Str<'a>>()? {
                    out.push(pair);
                }
                Ok(LabelPairs(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// `metadata.annotations`, keeping only the metrics-path annotation (last one wins).
#[derive(Debug, Default)]
struct MetricsPath<'a>(Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for MetricsPath<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MetricsPath<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut path = None;
                while let Some(key) = map.next_key::<Str<'a>>()? {
                    if key.0 == RESOURCE_METRICS_PATH_ANNOTATION {
                        path = Some(map.next_value::<Str<'a>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(MetricsPath(path))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    namespace: Option<Str<'a>>,
    #[serde(borrow, rename = "resourceVersion")]
    resource_version: Option<Str<'a>>,
    #[serde(borrow)]
    labels: Option<LabelPairs<'a>>,
    #[serde(borrow)]
    annotations: Option<MetricsPath<'a>>,
}

/// `.status`: an object's status map, or the `"Failure"` string of a `Status` object.
#[derive(Debug)]
enum StatusField<'a, S> {
    Object(S),
    Text(PhantomData<&'a ()>),
}

impl<'de: 'a, 'a, S: Deserialize<'de>> Deserialize<'de> for StatusField<'a, S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, S>(PhantomData<(&'a (), S)>);
        impl<'de: 'a, 'a, S: Deserialize<'de>> Visitor<'de> for V<'a, S> {
            type Value = StatusField<'a, S>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status object or string")
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(StatusField::Text(PhantomData))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                S::deserialize(MapAccessDeserializer::new(map)).map(StatusField::Object)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
struct WireAddress<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    address: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
struct WireCondition<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    status: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
struct KubeletEndpoint {
    #[serde(rename = "Port")]
    port: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct DaemonEndpoints {
    #[serde(rename = "kubeletEndpoint")]
    kubelet_endpoint: Option<KubeletEndpoint>,
}

#[derive(Debug, Deserialize)]
struct NodeStatus<'a> {
    #[serde(borrow)]
    addresses: Option<Vec<WireAddress<'a>>>,
    #[serde(rename = "daemonEndpoints")]
    daemon_endpoints: Option<DaemonEndpoints>,
    #[serde(borrow)]
    conditions: Option<Vec<WireCondition<'a>>>,
}

/// Any object on the wire: a Node, a (partial) Pod, a bookmark's stub or a `Status`.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a, S: Deserialize<'de>"))]
struct WireObject<'a, S> {
    #[serde(borrow)]
    metadata: Option<Meta<'a>>,
    status: Option<StatusField<'a, S>>,
    // `Status` fields (ERROR events).
    code: Option<i64>,
    #[serde(borrow)]
    reason: Option<Str<'a>>,
    #[serde(borrow)]
    message: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a, S: Deserialize<'de>"))]
struct WireEvent<'a, S> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    object: Option<WireObject<'a, S>>,
}

#[derive(Debug, Deserialize)]
struct ListMeta<'a> {
    #[serde(borrow, rename = "resourceVersion")]
    resource_version: Option<Str<'a>>,
    #[serde(borrow, rename = "continue")]
    continue_token: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "'de: 'a, S: Deserialize<'de>"))]
struct WireList<'a, S> {
    #[serde(borrow)]
    metadata: Option<ListMeta<'a>>,
    items: Option<Vec<WireObject<'a, S>>>,
}

// ---- decoded forms ---------------------------------------------------------------------

/// One list page.
#[derive(Debug)]
pub(crate) struct Page<T> {
    pub(crate) resource_version: Option<Box<str>>,
    pub(crate) continue_token: Option<Box<str>>,
    pub(crate) items: Vec<T>,
}

/// The `Status` of an ERROR event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorStatus {
    pub(crate) code: Option<i64>,
    pub(crate) reason: Box<str>,
    pub(crate) message: Box<str>,
}

/// One watch event.
#[derive(Debug)]
pub(crate) enum Event<T> {
    /// ADDED or MODIFIED.
    Apply {
        rv: Box<str>,
        object: T,
    },
    Delete {
        rv: Box<str>,
        namespace: Box<str>,
        name: Box<str>,
    },
    Bookmark {
        rv: Box<str>,
    },
    Error(ErrorStatus),
}

/// Decoding functions of one resource, chosen by the watcher's constructor.
#[derive(Debug)]
pub(crate) struct Codec<T> {
    pub(crate) list: fn(&[u8], &Limits) -> Result<Page<T>, DecodeError>,
    pub(crate) event: fn(&[u8], &Limits) -> Result<Event<T>, DecodeError>,
}

pub(crate) const NODE_CODEC: Codec<Node> = Codec {
    list: |body, limits| decode_list::<NodeStatus<'_>, Node>(body, limits),
    event: |line, limits| decode_event::<NodeStatus<'_>, Node>(line, limits),
};

pub(crate) const POD_CODEC: Codec<Pod> = Codec {
    list: |body, limits| decode_list::<IgnoredAny, Pod>(body, limits),
    event: |line, limits| decode_event::<IgnoredAny, Pod>(line, limits),
};

// ---- conversion ----------------------------------------------------------------------

/// Builds a cached object from its wire form.
trait FromWire<'a, S>: Sized {
    const NAMESPACED: bool;
    fn from_wire(obj: WireObject<'a, S>, limits: &Limits) -> Result<Self, DecodeError>;
}

fn bounded(s: Option<Str<'_>>, field: &'static str, limit: usize) -> Result<Box<str>, DecodeError> {
    let s = s.map(|s| s.0).unwrap_or_default();
    if s.len() > limit {
        return Err(DecodeError::TooLong { field, limit });
    }
    Ok(s.into())
}

fn required(
    s: Option<Str<'_>>,
    field: &'static str,
    limit: usize,
) -> Result<Box<str>, DecodeError> {
    let s = bounded(s, field, limit)?;
    if s.is_empty() {
        return Err(DecodeError::Missing(field));
    }
    Ok(s)
}

fn labels(wire: Option<LabelPairs<'_>>, limits: &Limits) -> Result<Labels, DecodeError> {
    let pairs = wire.unwrap_or_default().0;
    if pairs.len() > limits.max_labels {
        return Err(DecodeError::TooMany {
            field: "metadata.labels",
            limit: limits.max_labels,
        });
    }
    Ok(Labels::new(pairs.into_iter().map(|(k, v)| (k.0, v.0))))
}

fn check_size(bytes: usize, limits: &Limits) -> Result<(), DecodeError> {
    if bytes > limits.max_object_bytes {
        return Err(DecodeError::TooLong {
            field: "object",
            limit: limits.max_object_bytes,
        });
    }
    Ok(())
}

impl<'a> FromWire<'a, NodeStatus<'a>> for Node {
    const NAMESPACED: bool = false;

    fn from_wire(
        obj: WireObject<'a, NodeStatus<'a>>,
        limits: &Limits,
    ) -> Result<Node, DecodeError> {
        let meta = obj.metadata.ok_or(DecodeError::Missing("metadata"))?;
        let name = required(meta.name, "metadata.name", limits.max_object_bytes)?;
        let labels = labels(meta.labels, limits)?;
        let resource_metrics_path = meta
            .annotations
            .and_then(|a| a.0)
            .map(|p| p.0)
            .filter(|p| !p.is_empty())
            .map(Box::from);
        let status = match obj.status {
            Some(StatusField::Object(s)) => Some(s),
            _ => None,
        };
        let (wire_addresses, port, conditions) = match status {
            Some(s) => (
                s.addresses.unwrap_or_default(),
                s.daemon_endpoints
                    .and_then(|d| d.kubelet_endpoint)
                    .and_then(|k| k.port)
                    .unwrap_or(0),
                s.conditions.unwrap_or_default(),
            ),
            None => (Vec::new(), 0, Vec::new()),
        };
        if wire_addresses.len() > limits.max_addresses {
            return Err(DecodeError::TooMany {
                field: "status.addresses",
                limit: limits.max_addresses,
            });
        }
        let kubelet_port = i32::try_from(port)
            .map_err(|_| DecodeError::OutOfRange("status.daemonEndpoints.kubeletEndpoint.Port"))?;
        let mut addresses = Vec::with_capacity(wire_addresses.len());
        let mut bytes = name.len() + labels.text_bytes();
        for a in wire_addresses {
            let kind = AddressType::parse(&a.kind.map(|k| k.0).unwrap_or_default());
            let address: Box<str> = a.address.map(|s| s.0).unwrap_or_default().into();
            bytes += kind.as_str().len() + address.len();
            addresses.push(NodeAddress { kind, address });
        }
        bytes += resource_metrics_path.as_deref().map_or(0, str::len);
        check_size(bytes, limits)?;
        // Go's condition helper takes the first condition of the type.
        let ready = conditions
            .iter()
            .find(|c| c.kind.as_ref().is_some_and(|k| k.0 == "Ready"))
            .is_some_and(|c| c.status.as_ref().is_some_and(|s| s.0 == "True"));
        Ok(Node {
            name,
            labels,
            addresses: addresses.into_boxed_slice(),
            kubelet_port,
            resource_metrics_path,
            ready,
        })
    }
}

impl<'a> FromWire<'a, IgnoredAny> for Pod {
    const NAMESPACED: bool = true;

    fn from_wire(obj: WireObject<'a, IgnoredAny>, limits: &Limits) -> Result<Pod, DecodeError> {
        let meta = obj.metadata.ok_or(DecodeError::Missing("metadata"))?;
        let namespace = required(
            meta.namespace,
            "metadata.namespace",
            limits.max_object_bytes,
        )?;
        let name = required(meta.name, "metadata.name", limits.max_object_bytes)?;
        let labels = labels(meta.labels, limits)?;
        check_size(namespace.len() + name.len() + labels.text_bytes(), limits)?;
        Ok(Pod {
            namespace,
            name,
            labels,
        })
    }
}

fn resource_version(meta: &mut Option<Meta<'_>>, limits: &Limits) -> Result<Box<str>, DecodeError> {
    let rv = meta.as_mut().and_then(|m| m.resource_version.take());
    required(rv, "metadata.resourceVersion", limits.max_token_bytes)
}

fn decode_list<'a, S, T>(body: &'a [u8], limits: &Limits) -> Result<Page<T>, DecodeError>
where
    S: Deserialize<'a>,
    T: FromWire<'a, S>,
{
    let list: WireList<'a, S> = serde_json::from_slice(body).map_err(json_error)?;
    let (rv, token) = match list.metadata {
        Some(m) => (m.resource_version, m.continue_token),
        None => (None, None),
    };
    let resource_version = Some(bounded(
        rv,
        "metadata.resourceVersion",
        limits.max_token_bytes,
    )?)
    .filter(|s| !s.is_empty());
    let continue_token = Some(bounded(token, "metadata.continue", limits.max_token_bytes)?)
        .filter(|s| !s.is_empty());
    let wire_items = list.items.unwrap_or_default();
    if wire_items.len() > limits.max_objects {
        return Err(DecodeError::TooMany {
            field: "items",
            limit: limits.max_objects,
        });
    }
    let items = wire_items
        .into_iter()
        .map(|o| T::from_wire(o, limits))
        .collect::<Result<Vec<T>, _>>()?;
    Ok(Page {
        resource_version,
        continue_token,
        items,
    })
}

fn decode_event<'a, S, T>(line: &'a [u8], limits: &Limits) -> Result<Event<T>, DecodeError>
where
    S: Deserialize<'a>,
    T: FromWire<'a, S>,
{
    let event: WireEvent<'a, S> = serde_json::from_slice(line).map_err(json_error)?;
    let kind = event.kind.ok_or(DecodeError::Missing("type"))?;
    let mut object = event.object.ok_or(DecodeError::Missing("object"))?;
    match &*kind.0 {
        "ADDED" | "MODIFIED" => {
            let rv = resource_version(&mut object.metadata, limits)?;
            let object = T::from_wire(object, limits)?;
            Ok(Event::Apply { rv, object })
        }
        "DELETED" => {
            let rv = resource_version(&mut object.metadata, limits)?;
            let meta = object.metadata.ok_or(DecodeError::Missing("metadata"))?;
            let namespace = if T::NAMESPACED {
                required(
                    meta.namespace,
                    "metadata.namespace",
                    limits.max_object_bytes,
                )?
            } else {
                Box::default()
            };
            let name = required(meta.name, "metadata.name", limits.max_object_bytes)?;
            Ok(Event::Delete {
                rv,
                namespace,
                name,
            })
        }
        "BOOKMARK" => Ok(Event::Bookmark {
            rv: resource_version(&mut object.metadata, limits)?,
        }),
        "ERROR" => Ok(Event::Error(ErrorStatus {
            code: object.code,
            reason: truncated(object.reason.as_ref().map_or("", |s| &*s.0), MAX_ERROR_TEXT).into(),
            message: truncated(
                object.message.as_ref().map_or("", |s| &*s.0),
                MAX_ERROR_TEXT,
            )
            .into(),
        })),
        other => Err(DecodeError::UnknownEventType(truncated(other, 64).into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    const NODE: &str = r#"{"kind":"Node","apiVersion":"v1","metadata":{"name":"worker-1",
        "uid":"x","resourceVersion":"17","creationTimestamp":"2026-08-01T10:00:07Z",
        "labels":{"kubernetes.io/os":"linux","kubernetes.io/hostname":"worker-1"},
        "annotations":{"node.alpha.kubernetes.io/ttl":"0","metrics.k8s.io/resource-metrics-path":"/custom\u002fpath",
          "kubectl.kubernetes.io/last-applied-configuration":"{\"big\":[1,2,3]}"}},
        "spec":{"podCIDR":"10.0.0.0/24","taints":[{"key":"a","effect":"NoSchedule"}]},
        "status":{"capacity":{"cpu":"4"},"conditions":[
          {"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True","reason":"KubeletReady"}],
          "addresses":[{"type":"InternalIP","address":"10.0.0.1"},{"type":"Hostname","address":"worker-1"},
                       {"type":"InternalIP","address":"fd00::1"}],
          "daemonEndpoints":{"kubeletEndpoint":{"Port":10255}},
          "nodeInfo":{"kubeletVersion":"v1.32.0"},"images":[{"names":["a"],"sizeBytes":1}]}}"#;

    fn node_event(kind: &str, obj: &str) -> String {
        format!(r#"{{"type":"{kind}","object":{obj}}}"#)
    }

    #[test]
    fn node_fields() {
        let line = node_event("ADDED", NODE);
        let Ok(Event::Apply { rv, object: n }) = (NODE_CODEC.event)(line.as_bytes(), &limits())
        else {
            panic!("expected an apply event");
        };
        assert_eq!(&*rv, "17");
        assert_eq!(&*n.name, "worker-1");
        assert_eq!(n.labels.get("kubernetes.io/os"), Some("linux"));
        assert_eq!(n.labels.len(), 2);
        assert_eq!(n.resource_metrics_path.as_deref(), Some("/custom/path"));
        assert_eq!(n.kubelet_port, 10255);
        assert!(n.ready);
        let addrs: Vec<_> = n
            .addresses
            .iter()
            .map(|a| (a.kind.as_str(), &*a.address))
            .collect();
        assert_eq!(
            addrs,
            [
                ("InternalIP", "10.0.0.1"),
                ("Hostname", "worker-1"),
                ("InternalIP", "fd00::1")
            ]
        );
    }

    #[test]
    fn minimal_node_and_not_ready() {
        let obj = r#"{"metadata":{"name":"n","resourceVersion":"1","annotations":{"metrics.k8s.io/resource-metrics-path":""}},
            "status":{"conditions":[{"type":"Ready","status":"Unknown"},{"type":"Ready","status":"True"}]}}"#;
        let Ok(Event::Apply { object: n, .. }) =
            (NODE_CODEC.event)(node_event("MODIFIED", obj).as_bytes(), &limits())
        else {
            panic!("expected an apply event");
        };
        assert!(!n.ready, "first Ready condition decides");
        assert_eq!(
            n.resource_metrics_path, None,
            "empty annotation is no annotation"
        );
        assert_eq!(n.kubelet_port, 0);
        assert!(n.addresses.is_empty() && n.labels.is_empty());
    }

    #[test]
    fn partial_pod_list() {
        let body = br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1",
            "metadata":{"resourceVersion":"99","continue":"tok"},
            "items":[{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
                      "metadata":{"name":"web-1","namespace":"default","labels":{"app":"web"},"resourceVersion":"5"}},
                     {"metadata":{"name":"db","namespace":"data"},"status":{"phase":"Running"}}]}"#;
        let page = (POD_CODEC.list)(body, &limits()).expect("valid");
        assert_eq!(page.resource_version.as_deref(), Some("99"));
        assert_eq!(page.continue_token.as_deref(), Some("tok"));
        assert_eq!(page.items.len(), 2);
        assert_eq!(&*page.items[0].namespace, "default");
        assert_eq!(page.items[0].labels.get("app"), Some("web"));
        assert_eq!(&*page.items[1].name, "db");
    }

    #[test]
    fn bookmark_delete_and_error_events() {
        let bm = br#"{"type":"BOOKMARK","object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"12746","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        assert!(
            matches!((POD_CODEC.event)(bm, &limits()), Ok(Event::Bookmark { rv }) if &*rv == "12746")
        );
        let del = br#"{"type":"DELETED","object":{"metadata":{"name":"p","namespace":"ns","resourceVersion":"8"}}}"#;
        assert!(matches!(
            (POD_CODEC.event)(del, &limits()),
            Ok(Event::Delete { rv, namespace, name }) if &*rv == "8" && &*namespace == "ns" && &*name == "p"
        ));
        let err = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}"#;
        let Ok(Event::Error(s)) = (NODE_CODEC.event)(err, &limits()) else {
            panic!("expected an error event");
        };
        assert_eq!(s.code, Some(410));
        assert_eq!(&*s.reason, "Expired");
        assert_eq!(&*s.message, "too old resource version: 1 (2)");
    }

    #[test]
    fn rejects_malformed() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "invalid JSON"),
            (b"{", "invalid JSON"),
            (b"[]", "invalid JSON"),
            (b"{\"type\":\"ADDED\"}", "missing object"),
            (b"{\"object\":{}}", "missing type"),
            (b"{\"type\":\"SNOOZE\",\"object\":{}}", "unknown watch event type"),
            (
                b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\"}}}",
                "missing metadata.resourceVersion",
            ),
            (
                b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
                "missing metadata.name",
            ),
            (
                b"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
                "missing metadata.resourceVersion",
            ),
            (
                b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\",\"resourceVersion\":\"1\",\"labels\":{\"a\":1}}}}",
                "invalid JSON",
            ),
            (
                b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\",\"resourceVersion\":\"1\"},\"status\":{\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":4294967296}}}}}",
                "out of range",
            ),
            (
                b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\",\"resourceVersion\":\"1\"},\"status\":7}}",
                "invalid JSON",
            ),
        ];
        for (input, want) in cases {
            let err = (NODE_CODEC.event)(input, &limits()).expect_err("must fail");
            assert!(
                err.to_string().contains(want),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
        // Pods need a namespace.
        let no_ns = b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"1\"}}}";
        assert_eq!(
            (POD_CODEC.event)(no_ns, &limits()).expect_err("must fail"),
            DecodeError::Missing("metadata.namespace")
        );
    }

    #[test]
    fn enforces_limits() {
        let small = Limits {
            max_labels: 1,
            max_object_bytes: 16,
            max_token_bytes: 4,
            ..Limits::default()
        };
        let two_labels = br#"{"type":"ADDED","object":{"metadata":{"name":"p","namespace":"n","resourceVersion":"1","labels":{"a":"1","b":"2"}}}}"#;
        assert!(matches!(
            (POD_CODEC.event)(two_labels, &small),
            Err(DecodeError::TooMany { .. })
        ));
        let long = br#"{"type":"ADDED","object":{"metadata":{"name":"p","namespace":"n","resourceVersion":"1","labels":{"a":"0123456789abcdef"}}}}"#;
        assert!(matches!(
            (POD_CODEC.event)(long, &small),
            Err(DecodeError::TooLong {
                field: "object",
                ..
            })
        ));
        let long_rv = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12345"}}}"#;
        assert!(matches!(
            (POD_CODEC.event)(long_rv, &small),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn long_json_error_is_truncated() {
        let garbage = format!("{{\"type\":\"{}\",\"object\":{{}}}}", "x".repeat(10_000));
        let err = (POD_CODEC.event)(garbage.as_bytes(), &limits()).expect_err("unknown type");
        assert!(err.to_string().len() < 200);
        let bad = format!("{{\"type\":{}}}", "9".repeat(5000));
        let err = (POD_CODEC.event)(bad.as_bytes(), &limits()).expect_err("not a string");
        assert!(err.to_string().len() < 260);
    }
}
