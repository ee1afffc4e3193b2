//! Routing and the resource endpoints of `metrics.k8s.io/v1beta1`.
//!
//! Handling order follows upstream because it decides which error wins: route, method,
//! media type (406), query validation (400), `watch` (405), then the lookup (200/404).

use super::encode::{
    ContainerItem, Encoder, Encoding, IncludeObject, Item, Kind, NodeItem, PodItem, Resources,
};
use super::negotiate::{self, Format, NotAcceptable};
use super::objects::{Labels, Objects};
use super::selector::{FieldSelector, LabelSelector};
use super::status::Status;
use super::{json, yaml};
use crate::quantity::Quantity;
use crate::storage::{PodRecord, Snapshot};
use crate::time::Timestamp;
use http::{HeaderValue, Method, Response, StatusCode, header};
use std::borrow::Cow;

const API_ROOT: &str = "/apis/metrics.k8s.io/v1beta1";

/// Per-request inputs that change over time.
pub struct Context<'a> {
    /// Wall-clock time of the request (objects' `creationTimestamp`, freshness).
    pub now: Timestamp,
    pub snapshot: &'a Snapshot,
    pub objects: &'a dyn Objects,
    /// Called once per served item with now − its timestamp, in seconds.
    pub observe_freshness: &'a dyn Fn(f64),
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A resource route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'p> {
    ListNodes,
    GetNode(&'p str),
    ListPods(Option<&'p str>),
    GetPod(&'p str, &'p str),
    /// Under the group-version root but no such resource.
    Unknown,
}

/// Matches a path below `/apis/metrics.k8s.io/v1beta1/`.
pub fn resource_route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix(API_ROOT)?.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    Some(match segments.as_slice() {
        ["nodes"] => Route::ListNodes,
        ["nodes", name] if !name.is_empty() => Route::GetNode(name),
        ["pods"] => Route::ListPods(None),
        ["namespaces", ns, "pods"] if !ns.is_empty() => Route::ListPods(Some(ns)),
        ["namespaces", ns, "pods", name] if !ns.is_empty() && !name.is_empty() => {
            Route::GetPod(ns, name)
        }
        _ => Route::Unknown,
    })
}

/// Decoded query parameters (`+` is a space, `%XX` escapes decoded; malformed escapes
/// are kept literally).
pub fn parse_query(query: Option<&str>) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn query_value<'q>(query: &'q [(Cow<'q, str>, Cow<'q, str>)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

/// The head of a response; the body is in the caller's buffer.
pub type Head = Response<()>;

fn head(status: u16, content_type: &str) -> Head {
    let mut response = Response::new(());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

/// Writes a Status in the negotiated format (`None`: indented JSON, used when no format
/// could be negotiated).
pub fn write_status(status: &Status, format: Option<(Format, bool)>, body: &mut Vec<u8>) -> Head {
    body.clear();
    match format {
        Some((Format::Protobuf, _)) => {
            status.write_protobuf(body);
            head(status.code, negotiate::PROTOBUF)
        }
        Some((Format::Yaml, _)) => {
            let mut json = Vec::new();
            status.write_json(&mut json);
            *body = yaml::from_json(&json).unwrap_or(json);
            head(status.code, "application/yaml")
        }
        Some((Format::Json, false)) => {
            status.write_json(body);
            body.push(b'\n');
            head(status.code, "application/json")
        }
        Some((Format::Json, true)) | None => {
            let mut json = Vec::new();
            status.write_json(&mut json);
            *body = json::indent(&json);
            head(status.code, "application/json")
        }
    }
}

/// Finishes a JSON/YAML/protobuf body written by the encoder.
fn finish_body(format: Format, pretty: bool, body: &mut Vec<u8>) -> Head {
    match format {
        Format::Protobuf => head(200, negotiate::PROTOBUF),
        Format::Yaml => {
            if let Some(y) = yaml::from_json(body) {
                *body = y;
            }
            head(200, "application/yaml")
        }
        Format::Json if pretty => {
            *body = json::indent(body);
            head(200, "application/json")
        }
        Format::Json => {
            body.push(b'\n');
            head(200, "application/json")
        }
    }
}

fn label_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    selector.matches(labels)
}

fn cpu_memory(cpu_nanocores: u64, memory_bytes: u64) -> Resources<'static> {
    Resources::CpuMemory {
        cpu: Quantity::cpu_nanocores(cpu_nanocores),
        memory: Quantity::memory_bytes(memory_bytes),
    }
}

/// Serves a resource route (`resource_route` matched). `method`, `accept`,
/// `user_agent` and `query` come from the request.
pub fn serve_resource(
    route: &Route<'_>,
    method: &Method,
    accept: Option<&str>,
    user_agent: Option<&str>,
    query: Option<&str>,
    ctx: &Context<'_>,
    body: &mut Vec<u8>,
) -> Head {
    body.clear();
    if *route == Route::Unknown {
        return write_status(
            &Status::path_not_found(),
            negotiate::negotiate(accept, false)
                .ok()
                .map(|n| (n.format, false)),
            body,
        );
    }
    if method != Method::GET {
        return write_status(
            &Status::method_not_allowed(),
            negotiate::negotiate(accept, false)
                .ok()
                .map(|n| (n.format, false)),
            body,
        );
    }
    let is_list = matches!(route, Route::ListNodes | Route::ListPods(_));
    let negotiated = match negotiate::negotiate(accept, is_list) {
        Ok(n) => n,
        Err(NotAcceptable::Route) => {
            return write_status(&Status::route_not_acceptable(), None, body);
        }
        Err(NotAcceptable::Serializer) => {
            return write_status(&Status::not_acceptable(), None, body);
        }
    };
    let params = parse_query(query);
    let pretty = negotiate::wants_pretty(
        query_value(&params, "pretty"),
        user_agent,
        negotiated.pretty,
    );
    let error_format = Some((negotiated.format, pretty));
    let include_object = match negotiated.conversion {
        negotiate::Conversion::Table(_) => {
            match IncludeObject::parse(query_value(&params, "includeObject")) {
                Ok(i) => i,
                Err(message) => {
                    return write_status(&Status::bad_request(message), error_format, body);
                }
            }
        }
        _ => IncludeObject::Metadata,
    };
    let encoding = Encoding {
        format: negotiated.format,
        conversion: negotiated.conversion,
        include_object,
        now: ctx.now,
    };
    let mut encoder = Encoder::default();
    match route {
        Route::GetNode(name) => {
            let Some(labels) = ctx.objects.node_labels(name) else {
                return write_status(&Status::node_not_found(name), error_format, body);
            };
            let Some(usage) = ctx.snapshot.node(name) else {
                return write_status(&Status::node_metrics_not_found(name), error_format, body);
            };
            observe(ctx, usage.timestamp);
            let item = Item::Node(NodeItem {
                name,
                labels,
                timestamp: usage.timestamp,
                window: usage.window,
                usage: cpu_memory(usage.cpu_nanocores, usage.memory_bytes),
            });
            encoder.single(body, &encoding, &item);
        }
        Route::GetPod(namespace, name) => {
            let Some(labels) = ctx.objects.pod_labels(namespace, name) else {
                return write_status(&Status::pod_not_found(name), error_format, body);
            };
            let Some(record) = ctx.snapshot.pod(namespace, name) else {
                return write_status(
                    &Status::pod_metrics_not_found(namespace, name),
                    error_format,
                    body,
                );
            };
            let mut containers = Vec::with_capacity(record.containers().len());
            let Some(item) = pod_item(&record, labels, &mut containers) else {
                return write_status(
                    &Status::pod_metrics_not_found(namespace, name),
                    error_format,
                    body,
                );
            };
            observe(ctx, item_timestamp(&item));
            encoder.single(body, &encoding, &item);
        }
        Route::ListNodes | Route::ListPods(_) => {
            let selectors = match list_selectors(&params) {
                Ok(s) => s,
                Err(status) => return write_status(&status, error_format, body),
            };
            if query_value(&params, "watch").and_then(negotiate::parse_go_bool) == Some(true) {
                let resource = if *route == Route::ListNodes {
                    "nodes"
                } else {
                    "pods"
                };
                return write_status(&Status::watch_not_supported(resource), error_format, body);
            }
            match route {
                Route::ListNodes => list_nodes(&mut encoder, body, &encoding, &selectors, ctx),
                Route::ListPods(namespace) => {
                    list_pods(&mut encoder, body, &encoding, &selectors, *namespace, ctx)
                }
                _ => {}
            }
        }
        Route::Unknown => {}
    }
    finish_body(negotiated.format, pretty, body)
}

fn observe(ctx: &Context<'_>, timestamp: Timestamp) {
    let age = (ctx.now.unix_nanos().saturating_sub(timestamp.unix_nanos())) as f64 / 1e9;
    (ctx.observe_freshness)(age);
}

fn item_timestamp(item: &Item<'_>) -> Timestamp {
    match item {
        Item::Node(n) => n.timestamp,
        Item::Pod(p) => p.timestamp,
    }
}

/// The request's selectors, validated as upstream does (400 with the parser's text).
struct Selectors {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

fn list_selectors(params: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<Selectors, Status> {
    let labels = match query_value(params, "labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(LabelSelector::parse(s).map_err(|e| Status::bad_request(e.to_string()))?),
        None => None,
    };
    let fields = match query_value(params, "fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(FieldSelector::parse(s).map_err(|e| Status::bad_request(e.to_string()))?),
        None => None,
    };
    if let Some(limit) = query_value(params, "limit").filter(|s| !s.is_empty())
        && limit.parse::<i64>().is_err()
    {
        return Err(Status::bad_request(format!(
            "strconv.ParseInt: parsing {limit:?}: invalid syntax"
        )));
    }
    Ok(Selectors { labels, fields })
}

fn selected(selectors: &Selectors, name: &str, namespace: Option<&str>, labels: &Labels) -> bool {
    selectors
        .labels
        .as_ref()
        .is_none_or(|s| label_matches(s, labels))
        && selectors
            .fields
            .as_ref()
            .is_none_or(|f| f.matches(name, namespace.unwrap_or("")))
}

/// Nodes in name order: the Node objects merged with the snapshot's servable nodes.
fn list_nodes(
    encoder: &mut Encoder,
    body: &mut Vec<u8>,
    encoding: &Encoding,
    selectors: &Selectors,
    ctx: &Context<'_>,
) {
    let mut served = ctx.snapshot.nodes().peekable();
    encoder.list(body, encoding, Kind::Node, &mut |sink| {
        ctx.objects.for_each_node(&mut |name, labels| {
            let Some((_, usage)) = advance_to(&mut served, |(n, _)| (*n).cmp(name)) else {
                return;
            };
            if !selected(selectors, name, None, labels) {
                return;
            }
            observe(ctx, usage.timestamp);
            sink(&Item::Node(NodeItem {
                name,
                labels,
                timestamp: usage.timestamp,
                window: usage.window,
                usage: cpu_memory(usage.cpu_nanocores, usage.memory_bytes),
            }));
        });
    });
}

/// Running pods in (namespace, name) order, merged with the snapshot's servable pods.
fn list_pods(
    encoder: &mut Encoder,
    body: &mut Vec<u8>,
    encoding: &Encoding,
    selectors: &Selectors,
    namespace: Option<&str>,
    ctx: &Context<'_>,
) {
    let mut served = ctx.snapshot.pods(namespace).peekable();
    let mut containers: Vec<ContainerItem<'_>> = Vec::new();
    encoder.list(body, encoding, Kind::Pod, &mut |sink| {
        ctx.objects
            .for_each_pod(namespace, &mut |ns, name, labels| {
                let order = |p: &PodRecord<'_>| p.namespace.cmp(ns).then_with(|| p.name.cmp(name));
                let Some(record) = advance_to(&mut served, order) else {
                    return;
                };
                if !selected(selectors, name, Some(ns), labels) {
                    return;
                }
                containers.clear();
                if let Some(item) = pod_item(&record, labels, &mut containers) {
                    observe(ctx, item_timestamp(&item));
                    sink(&item);
                }
            });
    });
}

/// Merge-join step over a sorted iterator: skips entries ordered before the wanted key
/// and takes the one equal to it, comparing each entry once.
fn advance_to<I: Iterator>(
    iter: &mut std::iter::Peekable<I>,
    order: impl Fn(&I::Item) -> std::cmp::Ordering,
) -> Option<I::Item> {
    loop {
        match order(iter.peek()?) {
            std::cmp::Ordering::Less => {
                iter.next();
            }
            std::cmp::Ordering::Equal => return iter.next(),
            std::cmp::Ordering::Greater => return None,
        }
    }
}

/// A served pod as an encodable item; its containers go into the reused `containers`.
fn pod_item<'a: 'b, 'l: 'b, 'b>(
    record: &PodRecord<'a>,
    labels: &'l Labels,
    containers: &'b mut Vec<ContainerItem<'a>>,
) -> Option<Item<'b>> {
    let window = record.window?;
    for (name, u) in record.served_containers() {
        containers.push(ContainerItem {
            name,
            usage: cpu_memory(u.cpu_nanocores, u.memory_bytes),
        });
    }
    Some(Item::Pod(PodItem {
        namespace: record.namespace,
        name: record.name,
        labels,
        timestamp: window.timestamp,
        window: window.window,
        containers,
    }))
}
