//! A Sans-IO fake kube-apiserver serving Nodes and Pods, for tests, simulations and the
//! demo.
//!
//! It holds Node and Pod objects with resource versions and answers `GET` requests by path
//! and query, as a client-go reflector (or `metrics_core::cluster`) sends them:
//!
//! - `/api/v1/nodes`, `/api/v1/pods`, `/api/v1/namespaces/{ns}/pods`: lists (`NodeList`,
//!   `PodList`, or `PartialObjectMetadataList` when the `Accept` header asks for it),
//!   honouring `limit`/`continue` (consistent pages from a snapshot), `labelSelector`,
//!   `fieldSelector` (`metadata.name`, `metadata.namespace`, `spec.nodeName`,
//!   `status.phase`) and reporting `metadata.resourceVersion`;
//! - the same with `watch=true`: the watch is opened ([`Reply::Watch`]) and produces event
//!   lines (`ADDED`/`MODIFIED`/`DELETED`, `BOOKMARK`, `ERROR`) as the state changes, read
//!   with [`Apiserver::poll_watch`]. A watch from a resourceVersion replays the history
//!   after it; from `0` or none it starts with synthetic `ADDED` events of everything
//!   present. An object that stops (starts) matching a watch's selectors is sent as
//!   `DELETED` (`ADDED`), as the real apiserver does;
//! - `/api/v1/nodes/{name}`, `/api/v1/namespaces/{ns}/pods/{name}`: single objects.
//!
//! Failures are injected by the caller: closing watches, `ERROR` events, 410 Gone
//! (compaction: old resource versions and continue tokens expire), one-off failures of
//! matching requests ([`Apiserver::fail_next`]) and outages ([`Apiserver::set_outage`]).
//!
//! Nothing here reads a clock or performs IO: time-related behaviour (watch timeouts,
//! latency) belongs to the driver, which finds each watch's `timeoutSeconds` in
//! [`Apiserver::watch_info`]. [`Apiserver::sync_cluster`] mirrors a generator
//! [`Cluster`](crate::generator::Cluster) (nodes with their 127.x.y.z address, their pods as
//! Running), so every generator mutation becomes the matching watch events.
//!
//! Output is deterministic: objects are kept and listed in key order, events are produced
//! in the order of the changes, and nothing depends on hash order.

use crate::generator;
use metrics_core::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Write as _};
use std::time::Duration;

/// Kubelet port reported in `status.daemonEndpoints.kubeletEndpoint.Port`.
pub const KUBELET_PORT: u16 = 10250;

/// Continue-token snapshots kept at once (the oldest is forgotten, its token then
/// answers 410 Gone).
const MAX_SNAPSHOTS: usize = 64;

/// The two collections served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collection {
    Nodes,
    Pods,
}

impl Collection {
    fn kind(self) -> &'static str {
        match self {
            Collection::Nodes => "Node",
            Collection::Pods => "Pod",
        }
    }
}

/// One entry of a Node's `status.addresses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// `InternalIP`, `Hostname`, `ExternalIP`, ...
    pub kind: String,
    pub address: String,
}

/// A Node as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeObject {
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub addresses: Vec<NodeAddress>,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`.
    pub kubelet_port: u16,
    /// The `Ready` condition is `True` (else `False`).
    pub ready: bool,
    pub created: Timestamp,
    /// `status.capacity` (resource name to quantity, e.g. `cpu` to `8`); not rendered
    /// when empty.
    pub capacity: BTreeMap<String, String>,
    /// `status.allocatable` (what `kubectl top node` divides by); not rendered when empty.
    pub allocatable: BTreeMap<String, String>,
}

impl NodeObject {
    /// A Ready node with an `InternalIP` and a `Hostname` address and the kubelet on
    /// [`KUBELET_PORT`].
    pub fn new(name: &str, internal_ip: &str) -> NodeObject {
        NodeObject {
            name: name.to_owned(),
            uid: uid_for("node", name),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            addresses: vec![
                NodeAddress {
                    kind: "InternalIP".to_owned(),
                    address: internal_ip.to_owned(),
                },
                NodeAddress {
                    kind: "Hostname".to_owned(),
                    address: name.to_owned(),
                },
            ],
            kubelet_port: KUBELET_PORT,
            ready: true,
            created: Timestamp::default(),
            capacity: BTreeMap::new(),
            allocatable: BTreeMap::new(),
        }
    }

    /// The Node object of a generator node: its labels, InternalIP = its 127.x.y.z
    /// address, Hostname = its name, Ready, created at its boot time.
    pub fn from_generator(node: &generator::Node) -> NodeObject {
        let [a, b, c, d] = node.address;
        let mut obj = NodeObject::new(&node.name, &format!("{a}.{b}.{c}.{d}"));
        obj.labels = node.labels.iter().cloned().collect();
        obj.created = node.boot_time;
        obj
    }
}

/// A Pod as the fake stores it (the metadata, the node it runs on and its phase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodObject {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.nodeName`.
    pub node_name: String,
    /// `status.phase`: `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    pub created: Timestamp,
}

impl PodObject {
    /// A Running pod on `node_name`.
    pub fn new(namespace: &str, name: &str, node_name: &str) -> PodObject {
        PodObject {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid_for(namespace, name),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            node_name: node_name.to_owned(),
            phase: "Running".to_owned(),
            created: Timestamp::default(),
        }
    }

    /// The Pod object of a generator pod on `node`: Running, its uid and labels, created
    /// at its start time.
    pub fn from_generator(node: &generator::Node, pod: &generator::Pod) -> PodObject {
        let mut obj = PodObject::new(&pod.namespace, &pod.name, &node.name);
        obj.uid = pod.uid.clone();
        obj.labels = pod.labels.iter().cloned().collect();
        obj.created = pod.start_time;
        obj
    }
}

/// A deterministic UUID-shaped uid from a name (FNV-1a, twice).
fn uid_for(scope: &str, name: &str) -> String {
    let hash = |seed: u64| {
        let mut h = seed;
        for b in scope.bytes().chain([b'/']).chain(name.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let hi = hash(0xcbf2_9ce4_8422_2325);
    let lo = hash(0x8422_2325_cbf2_9ce4);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        lo >> 52,
        lo & 0xffff_ffff_ffff
    )
}

/// What a request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A whole response: a list page, an object, or an error `Status`.
    Complete {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A watch stream was opened (HTTP 200); its lines come from [`Apiserver::poll_watch`].
    Watch(WatchId),
    /// No HTTP answer: the connection failed (the driver reports a transport error).
    Unreachable(String),
}

impl Reply {
    /// The HTTP status, if there was an answer (200 for an opened watch).
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Complete { status, .. } => Some(*status),
            Reply::Watch(_) => Some(200),
            Reply::Unreachable(_) => None,
        }
    }
}

/// Identifies an open watch. Allocated by the fake, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(u64);

/// The next thing a watch stream delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutput {
    /// One JSON event, newline-terminated.
    Line(Vec<u8>),
    /// The server closed the stream cleanly; the watch is gone.
    End,
    /// The stream broke (reset, truncated chunk); the watch is gone.
    Broken(String),
}

/// What the fake knows of an open watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchInfo {
    pub collection: Collection,
    /// `timeoutSeconds`: the driver ends the watch ([`Apiserver::close_watch`]) after it.
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// Objects are `PartialObjectMetadata`.
    pub metadata_only: bool,
    /// The path and query that opened it.
    pub path_and_query: String,
}

/// How a failing request fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outage {
    /// No HTTP answer ([`Reply::Unreachable`]).
    Unreachable,
    /// An error `Status` with this code (e.g. 500, 503, 429, 410).
    Status(u16),
}

/// A one-off failure for the next request that matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Only requests for this collection (`None`: any).
    pub collection: Option<Collection>,
    /// Only watches (`Some(true)`) or only lists and gets (`Some(false)`).
    pub watch: Option<bool>,
    pub outage: Outage,
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub path_and_query: String,
    /// `None` for a path the fake does not serve.
    pub collection: Option<Collection>,
    pub watch: bool,
    /// The `resourceVersion` parameter, if given.
    pub resource_version: Option<String>,
    /// Whether a `continue` token was given.
    pub continued: bool,
    /// The status answered; `None` when unreachable.
    pub status: Option<u16>,
}

/// A label selector requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl LabelReq {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelReq::Eq(k, v) => labels.get(k) == Some(v),
            LabelReq::Ne(k, v) => labels.get(k) != Some(v),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
        }
    }
}

/// A field selector requirement: (field, value, equal).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    field: String,
    value: String,
    equal: bool,
}

/// The filters of a list or watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

/// A stored object and the resourceVersion of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Object {
    Node(NodeObject),
    Pod(PodObject),
}

impl Object {
    fn collection(&self) -> Collection {
        match self {
            Object::Node(_) => Collection::Nodes,
            Object::Pod(_) => Collection::Pods,
        }
    }

    fn labels(&self) -> &BTreeMap<String, String> {
        match self {
            Object::Node(n) => &n.labels,
            Object::Pod(p) => &p.labels,
        }
    }

    fn field(&self, field: &str) -> Option<&str> {
        match (self, field) {
            (Object::Node(n), "metadata.name") => Some(&n.name),
            (Object::Pod(p), "metadata.name") => Some(&p.name),
            (Object::Pod(p), "metadata.namespace") => Some(&p.namespace),
            (Object::Pod(p), "spec.nodeName") => Some(&p.node_name),
            (Object::Pod(p), "status.phase") => Some(&p.phase),
            _ => None,
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Object::Node(_) => "",
            Object::Pod(p) => &p.namespace,
        }
    }

    fn matches(&self, filter: &Filter) -> bool {
        filter
            .namespace
            .as_deref()
            .is_none_or(|ns| ns == self.namespace())
            && filter.labels.iter().all(|r| r.matches(self.labels()))
            && filter
                .fields
                .iter()
                .all(|f| (self.field(&f.field).unwrap_or("") == f.value) == f.equal)
    }
}

/// One change in the history, for watch replay.
#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    old: Option<Object>,
    new: Option<Object>,
}

impl Change {
    fn collection(&self) -> Option<Collection> {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .map(Object::collection)
    }
}

#[derive(Debug)]
struct Watch {
    info: WatchInfo,
    filter: Filter,
    queue: VecDeque<WatchOutput>,
    /// An end (or break) is queued: nothing more is added.
    finished: bool,
}

/// The items of a paginated list, fixed at its first page.
#[derive(Debug)]
struct ListSnapshot {
    rv: u64,
    collection: Collection,
    items: Vec<(Object, u64)>,
}

/// The fake apiserver. See the module documentation.
#[derive(Debug, Default)]
pub struct Apiserver {
    nodes: BTreeMap<String, (NodeObject, u64)>,
    pods: BTreeMap<(String, String), (PodObject, u64)>,
    /// The newest resourceVersion handed out (etcd's revision, shared by all objects).
    rv: u64,
    history: Vec<Change>,
    /// Watches from a resourceVersion below this are answered 410 Gone.
    oldest_watchable: u64,
    watches: BTreeMap<WatchId, Watch>,
    next_watch: u64,
    snapshots: BTreeMap<u64, ListSnapshot>,
    next_snapshot: u64,
    faults: VecDeque<Fault>,
    outage: Option<Outage>,
    gone_as_status: bool,
    requests: Vec<RequestRecord>,
}

impl Apiserver {
    /// An empty apiserver at resourceVersion 1.
    pub fn new() -> Apiserver {
        Apiserver {
            rv: 1,
            ..Apiserver::default()
        }
    }

    /// An apiserver holding the cluster's nodes and their pods (see
    /// [`Apiserver::sync_cluster`]).
    pub fn from_cluster(cluster: &generator::Cluster) -> Apiserver {
        let mut api = Apiserver::new();
        api.sync_cluster(cluster);
        api
    }

    // ---- state -------------------------------------------------------------------------

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Nodes in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeObject> {
        self.nodes.values().map(|(n, _)| n)
    }

    pub fn node(&self, name: &str) -> Option<&NodeObject> {
        self.nodes.get(name).map(|(n, _)| n)
    }

    /// Pods in (namespace, name) order, whatever their phase.
    pub fn pods(&self) -> impl Iterator<Item = &PodObject> {
        self.pods.values().map(|(p, _)| p)
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodObject> {
        self.pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|(p, _)| p)
    }

    /// Adds or replaces a Node; returns whether anything changed (an identical object
    /// is a no-op, as on the real apiserver).
    pub fn upsert_node(&mut self, node: NodeObject) -> bool {
        let old = self.nodes.get(&node.name).map(|(n, _)| n.clone());
        if old.as_ref() == Some(&node) {
            return false;
        }
        let rv = self.bump();
        self.nodes.insert(node.name.clone(), (node.clone(), rv));
        self.record(Change {
            rv,
            old: old.map(Object::Node),
            new: Some(Object::Node(node)),
        });
        true
    }

    /// Deletes a Node; returns whether it existed.
    pub fn delete_node(&mut self, name: &str) -> bool {
        let Some((old, _)) = self.nodes.remove(name) else {
            return false;
        };
        let rv = self.bump();
        self.record(Change {
            rv,
            old: Some(Object::Node(old)),
            new: None,
        });
        true
    }

    /// Adds or replaces a Pod; returns whether anything changed.
    pub fn upsert_pod(&mut self, pod: PodObject) -> bool {
        let key = (pod.namespace.clone(), pod.name.clone());
        let old = self.pods.get(&key).map(|(p, _)| p.clone());
        if old.as_ref() == Some(&pod) {
            return false;
        }
        let rv = self.bump();
        self.pods.insert(key, (pod.clone(), rv));
        self.record(Change {
            rv,
            old: old.map(Object::Pod),
            new: Some(Object::Pod(pod)),
        });
        true
    }

    /// Deletes a Pod; returns whether it existed.
    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some((old, _)) = self.pods.remove(&(namespace.to_owned(), name.to_owned())) else {
            return false;
        };
        let rv = self.bump();
        self.record(Change {
            rv,
            old: Some(Object::Pod(old)),
            new: None,
        });
        true
    }

    /// Makes the stored objects those of the generator cluster: its nodes
    /// ([`NodeObject::from_generator`]) and their pods as Running
    /// ([`PodObject::from_generator`]). Deletions come first (pods, then nodes), then
    /// additions and changes (nodes, then pods), each in key order. Returns the number of
    /// changes (each one resourceVersion and one watch event).
    pub fn sync_cluster(&mut self, cluster: &generator::Cluster) -> usize {
        let nodes: BTreeMap<String, NodeObject> = cluster
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), NodeObject::from_generator(n)))
            .collect();
        let pods: BTreeMap<(String, String), PodObject> = cluster
            .nodes()
            .iter()
            .flat_map(|n| n.pods().iter().map(move |p| (n, p)))
            .map(|(n, p)| {
                (
                    (p.namespace.clone(), p.name.clone()),
                    PodObject::from_generator(n, p),
                )
            })
            .collect();
        let mut changes = 0;
        let gone_pods: Vec<(String, String)> = self
            .pods
            .keys()
            .filter(|k| !pods.contains_key(*k))
            .cloned()
            .collect();
        for (ns, name) in gone_pods {
            changes += usize::from(self.delete_pod(&ns, &name));
        }
        let gone_nodes: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| !nodes.contains_key(*k))
            .cloned()
            .collect();
        for name in gone_nodes {
            changes += usize::from(self.delete_node(&name));
        }
        for node in nodes.into_values() {
            changes += usize::from(self.upsert_node(node));
        }
        for pod in pods.into_values() {
            changes += usize::from(self.upsert_pod(pod));
        }
        changes
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, change: Change) {
        for watch in self.watches.values_mut() {
            if watch.finished || Some(watch.info.collection) != change.collection() {
                continue;
            }
            if let Some(line) = event_for(&change, &watch.filter, watch.info.metadata_only) {
                watch.queue.push_back(WatchOutput::Line(line));
            }
        }
        self.history.push(change);
    }

    // ---- failures ----------------------------------------------------------------------

    /// Every request fails this way until cleared (`None`). Open watches are left alone
    /// (see [`Apiserver::break_watches`]).
    pub fn set_outage(&mut self, outage: Option<Outage>) {
        self.outage = outage;
    }

    /// The next request matching `fault` fails as it says (faults are used in order).
    pub fn fail_next(&mut self, fault: Fault) {
        self.faults.push_back(fault);
    }

    /// Answer a watch from a compacted resourceVersion with HTTP 410 instead of the
    /// default (HTTP 200 and an `ERROR` event with code 410, as the watch cache does).
    pub fn set_gone_as_status(&mut self, as_status: bool) {
        self.gone_as_status = as_status;
    }

    /// Compaction: watches from any resourceVersion older than now, and every continue
    /// token handed out so far, are answered 410 Gone from now on. Open watches go on.
    pub fn compact(&mut self) {
        self.oldest_watchable = self.rv;
        self.history.clear();
        self.snapshots.clear();
    }

    /// Compaction that also expires every open watch: each gets an `ERROR` event with code
    /// 410 (reason `Expired`) and ends.
    pub fn expire(&mut self) {
        let ids: Vec<WatchId> = self.watches.keys().copied().collect();
        for id in ids {
            let rv = self.rv;
            self.send_error(
                id,
                410,
                "Expired",
                &format!("too old resource version: {rv} ({})", rv + 1),
            );
        }
        // The compaction revision: every version handed out so far is now too old.
        self.bump();
        self.compact();
    }

    // ---- watches -----------------------------------------------------------------------

    /// Open watches, in the order they were opened.
    pub fn watches(&self) -> impl Iterator<Item = WatchId> + '_ {
        self.watches
            .iter()
            .filter(|(_, w)| !w.finished)
            .map(|(id, _)| *id)
    }

    pub fn watch_info(&self, id: WatchId) -> Option<&WatchInfo> {
        self.watches.get(&id).map(|w| &w.info)
    }

    /// The next output of a watch; `None` when nothing is pending (or the watch is gone).
    /// After `End` or `Broken` the watch is forgotten.
    pub fn poll_watch(&mut self, id: WatchId) -> Option<WatchOutput> {
        let watch = self.watches.get_mut(&id)?;
        let out = watch.queue.pop_front()?;
        if matches!(out, WatchOutput::End | WatchOutput::Broken(_)) {
            self.watches.remove(&id);
        }
        Some(out)
    }

    /// The client went away: forget the watch without any output.
    pub fn cancel_watch(&mut self, id: WatchId) {
        self.watches.remove(&id);
    }

    /// Ends a watch cleanly (as at `timeoutSeconds`, or an apiserver restart draining).
    pub fn close_watch(&mut self, id: WatchId) {
        self.finish(id, WatchOutput::End);
    }

    /// Ends every open watch of `collection` (`None`: all) cleanly.
    pub fn close_watches(&mut self, collection: Option<Collection>) {
        for id in self.matching_watches(collection) {
            self.close_watch(id);
        }
    }

    /// Breaks every open watch of `collection` (`None`: all), as a connection reset would.
    pub fn break_watches(&mut self, collection: Option<Collection>, reason: &str) {
        for id in self.matching_watches(collection) {
            self.finish(id, WatchOutput::Broken(reason.to_owned()));
        }
    }

    /// Sends an `ERROR` event (a `Status` with `code`, `reason`, `message`) and ends the
    /// watch.
    pub fn send_error(&mut self, id: WatchId, code: u16, reason: &str, message: &str) {
        let Some(watch) = self.watches.get_mut(&id) else {
            return;
        };
        if watch.finished {
            return;
        }
        let mut line = br#"{"type":"ERROR","object":"#.to_vec();
        write_status(&mut line, code, reason, message);
        line.extend_from_slice(b"}\n");
        watch.queue.push_back(WatchOutput::Line(line));
        self.finish(id, WatchOutput::End);
    }

    /// Sends a `BOOKMARK` with the current resourceVersion to every open watch that allowed
    /// bookmarks.
    pub fn bookmark(&mut self) {
        let rv = self.rv;
        for watch in self.watches.values_mut() {
            if watch.finished || !watch.info.bookmarks {
                continue;
            }
            let mut line = br#"{"type":"BOOKMARK","object":{"#.to_vec();
            type_meta(&mut line, watch.info.collection, watch.info.metadata_only);
            line.extend_from_slice(br#","metadata":{"resourceVersion":""#);
            push_u64(&mut line, rv);
            line.extend_from_slice(b"\"}}}\n");
            watch.queue.push_back(WatchOutput::Line(line));
        }
    }

    fn matching_watches(&self, collection: Option<Collection>) -> Vec<WatchId> {
        self.watches
            .iter()
            .filter(|(_, w)| !w.finished && collection.is_none_or(|c| c == w.info.collection))
            .map(|(id, _)| *id)
            .collect()
    }

    fn finish(&mut self, id: WatchId, last: WatchOutput) {
        if let Some(watch) = self.watches.get_mut(&id)
            && !watch.finished
        {
            watch.finished = true;
            watch.queue.push_back(last);
        }
    }

    // ---- requests ----------------------------------------------------------------------

    /// Every request so far, in order.
    pub fn requests(&self) -> &[RequestRecord] {
        &self.requests
    }

    /// Answers `GET path_and_query` with the given `Accept` header.
    pub fn get(&mut self, path_and_query: &str, accept: Option<&str>) -> Reply {
        let parsed = parse_request(path_and_query);
        let mut record = RequestRecord {
            path_and_query: path_and_query.to_owned(),
            collection: None,
            watch: false,
            resource_version: None,
            continued: false,
            status: None,
        };
        let reply = match parsed {
            Err(reply) => reply,
            Ok(req) => {
                record.collection = Some(req.collection);
                record.watch = req.watch;
                record.resource_version = req.resource_version.clone();
                record.continued = req.continue_token.is_some();
                self.serve(req, path_and_query, accept)
            }
        };
        record.status = reply.status();
        self.requests.push(record);
        reply
    }

    fn take_fault(&mut self, req: &Request) -> Option<Outage> {
        if let Some(outage) = &self.outage {
            return Some(outage.clone());
        }
        let at = self.faults.iter().position(|f| {
            f.collection.is_none_or(|c| c == req.collection)
                && f.watch.is_none_or(|w| w == req.watch)
        })?;
        self.faults.remove(at).map(|f| f.outage)
    }

    fn serve(&mut self, req: Request, path_and_query: &str, accept: Option<&str>) -> Reply {
        match self.take_fault(&req) {
            Some(Outage::Unreachable) => {
                return Reply::Unreachable("connection refused".to_owned());
            }
            Some(Outage::Status(code)) => {
                let (reason, message) = match code {
                    410 => ("Expired", "the resource version is too old"),
                    429 => (
                        "TooManyRequests",
                        "too many requests, please try again later",
                    ),
                    503 => (
                        "ServiceUnavailable",
                        "the server is currently unable to handle the request",
                    ),
                    _ => (
                        "InternalError",
                        "an error on the server has prevented the request from succeeding",
                    ),
                };
                return status_reply(code, reason, message);
            }
            None => {}
        }
        let metadata_only = accept.is_some_and(wants_metadata);
        if let Some(name) = &req.name {
            return self.serve_object(&req, name, metadata_only);
        }
        if req.watch {
            self.open_watch(req, path_and_query, metadata_only)
        } else {
            self.serve_list(&req, metadata_only)
        }
    }

    fn serve_object(&self, req: &Request, name: &str, metadata_only: bool) -> Reply {
        let found = match req.collection {
            Collection::Nodes => self
                .nodes
                .get(name)
                .map(|(n, rv)| (Object::Node(n.clone()), *rv)),
            Collection::Pods => self
                .pods
                .get(&(
                    req.filter.namespace.clone().unwrap_or_default(),
                    name.to_owned(),
                ))
                .map(|(p, rv)| (Object::Pod(p.clone()), *rv)),
        };
        match found {
            Some((obj, rv)) => {
                let mut body = Vec::new();
                write_object(&mut body, &obj, rv, metadata_only, true);
                json_reply(200, body)
            }
            None => {
                let resource = match req.collection {
                    Collection::Nodes => "nodes",
                    Collection::Pods => "pods",
                };
                status_reply(404, "NotFound", &format!("{resource} \"{name}\" not found"))
            }
        }
    }

    fn current(&self, collection: Collection, filter: &Filter) -> Vec<(Object, u64)> {
        match collection {
            Collection::Nodes => self
                .nodes
                .values()
                .map(|(n, rv)| (Object::Node(n.clone()), *rv))
                .filter(|(o, _)| o.matches(filter))
                .collect(),
            Collection::Pods => self
                .pods
                .values()
                .map(|(p, rv)| (Object::Pod(p.clone()), *rv))
                .filter(|(o, _)| o.matches(filter))
                .collect(),
        }
    }

    fn serve_list(&mut self, req: &Request, metadata_only: bool) -> Reply {
        let (snapshot_id, offset) = match &req.continue_token {
            Some(token) => match parse_token(token) {
                Some((id, offset))
                    if self
                        .snapshots
                        .get(&id)
                        .is_some_and(|s| s.collection == req.collection) =>
                {
                    (id, offset)
                }
                _ => {
                    return status_reply(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    );
                }
            },
            None => {
                let items = self.current(req.collection, &req.filter);
                let id = self.next_snapshot;
                self.next_snapshot += 1;
                self.snapshots.insert(
                    id,
                    ListSnapshot {
                        rv: self.rv,
                        collection: req.collection,
                        items,
                    },
                );
                while self.snapshots.len() > MAX_SNAPSHOTS {
                    self.snapshots.pop_first();
                }
                (id, 0)
            }
        };
        let Some(snapshot) = self.snapshots.get(&snapshot_id) else {
            return status_reply(500, "InternalError", "list snapshot lost");
        };
        let total = snapshot.items.len();
        let start = offset.min(total);
        let end = match req.limit {
            Some(limit) if limit > 0 => start.saturating_add(limit).min(total),
            _ => total,
        };
        let mut body = Vec::with_capacity(256 + 512 * (end - start));
        body.extend_from_slice(b"{");
        list_type_meta(&mut body, req.collection, metadata_only);
        body.extend_from_slice(br#","metadata":{"resourceVersion":""#);
        push_u64(&mut body, snapshot.rv);
        body.push(b'"');
        if end < total {
            body.extend_from_slice(br#","continue":""#);
            body.extend_from_slice(make_token(snapshot.rv, snapshot_id, end).as_bytes());
            body.extend_from_slice(br#"","remainingItemCount":"#);
            push_u64(&mut body, (total - end) as u64);
        }
        body.extend_from_slice(br#"},"items":["#);
        for (i, (obj, rv)) in snapshot.items[start..end].iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            // Typed lists carry no kind per item; metadata-only items do.
            write_object(&mut body, obj, *rv, metadata_only, metadata_only);
        }
        body.extend_from_slice(b"]}\n");
        if end == total {
            self.snapshots.remove(&snapshot_id);
        }
        json_reply(200, body)
    }

    fn open_watch(&mut self, req: Request, path_and_query: &str, metadata_only: bool) -> Reply {
        let from = match req.resource_version.as_deref() {
            None | Some("" | "0") => None,
            Some(rv) => match rv.parse::<u64>() {
                Ok(rv) => Some(rv),
                Err(_) => {
                    return status_reply(
                        400,
                        "BadRequest",
                        &format!("invalid resource version: {rv:?}"),
                    );
                }
            },
        };
        if let Some(rv) = from
            && rv < self.oldest_watchable
            && self.gone_as_status
        {
            return status_reply(
                410,
                "Expired",
                &format!("too old resource version: {rv} ({})", self.oldest_watchable),
            );
        }
        let id = WatchId(self.next_watch);
        self.next_watch += 1;
        let mut watch = Watch {
            info: WatchInfo {
                collection: req.collection,
                timeout: req.timeout,
                bookmarks: req.bookmarks,
                metadata_only,
                path_and_query: path_and_query.to_owned(),
            },
            filter: req.filter,
            queue: VecDeque::new(),
            finished: false,
        };
        match from {
            Some(rv) if rv < self.oldest_watchable => {
                let mut line = br#"{"type":"ERROR","object":"#.to_vec();
                write_status(
                    &mut line,
                    410,
                    "Expired",
                    &format!("too old resource version: {rv} ({})", self.oldest_watchable),
                );
                line.extend_from_slice(b"}\n");
                watch.queue.push_back(WatchOutput::Line(line));
                watch.queue.push_back(WatchOutput::End);
                watch.finished = true;
            }
            Some(rv) => {
                for change in self.history.iter().filter(|c| c.rv > rv) {
                    if change.collection() != Some(req.collection) {
                        continue;
                    }
                    if let Some(line) = event_for(change, &watch.filter, metadata_only) {
                        watch.queue.push_back(WatchOutput::Line(line));
                    }
                }
            }
            None => {
                for (obj, rv) in self.current(req.collection, &watch.filter) {
                    let mut line = br#"{"type":"ADDED","object":"#.to_vec();
                    write_object(&mut line, &obj, rv, metadata_only, true);
                    line.extend_from_slice(b"}\n");
                    watch.queue.push_back(WatchOutput::Line(line));
                }
            }
        }
        self.watches.insert(id, watch);
        Reply::Watch(id)
    }
}

// ---- request parsing -------------------------------------------------------------------

#[derive(Debug)]
struct Request {
    collection: Collection,
    /// A single object.
    name: Option<String>,
    watch: bool,
    resource_version: Option<String>,
    continue_token: Option<String>,
    limit: Option<usize>,
    filter: Filter,
    bookmarks: bool,
    timeout: Option<Duration>,
}

fn parse_request(path_and_query: &str) -> Result<Request, Reply> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (collection, namespace, name) = match segments.as_slice() {
        ["", "api", "v1", "nodes"] => (Collection::Nodes, None, None),
        ["", "api", "v1", "nodes", name] if !name.is_empty() => {
            (Collection::Nodes, None, Some(percent_decode(name, false)))
        }
        ["", "api", "v1", "pods"] => (Collection::Pods, None, None),
        ["", "api", "v1", "namespaces", ns, "pods"] if !ns.is_empty() => {
            (Collection::Pods, Some(percent_decode(ns, false)), None)
        }
        ["", "api", "v1", "namespaces", ns, "pods", name] if !ns.is_empty() && !name.is_empty() => {
            (
                Collection::Pods,
                Some(percent_decode(ns, false)),
                Some(percent_decode(name, false)),
            )
        }
        _ => {
            return Err(status_reply(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    let mut req = Request {
        collection,
        name,
        watch: false,
        resource_version: None,
        continue_token: None,
        limit: None,
        filter: Filter {
            namespace,
            ..Filter::default()
        },
        bookmarks: false,
        timeout: None,
    };
    let bad = |message: String| status_reply(400, "BadRequest", &message);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k, true);
        let value = percent_decode(v, true);
        match key.as_str() {
            "watch" => {
                req.watch =
                    parse_bool(&value).ok_or_else(|| bad(format!("invalid watch: {value:?}")))?
            }
            "allowWatchBookmarks" => {
                req.bookmarks = parse_bool(&value)
                    .ok_or_else(|| bad(format!("invalid allowWatchBookmarks: {value:?}")))?;
            }
            "resourceVersion" => req.resource_version = Some(value),
            "continue" => req.continue_token = Some(value).filter(|v| !v.is_empty()),
            "limit" => {
                let limit = value
                    .parse::<i64>()
                    .map_err(|_| bad(format!("invalid limit: {value:?}")))?;
                req.limit = usize::try_from(limit).ok().filter(|&l| l > 0);
            }
            "timeoutSeconds" => {
                let secs = value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("invalid timeoutSeconds: {value:?}")))?;
                req.timeout = Some(Duration::from_secs(secs)).filter(|d| !d.is_zero());
            }
            "labelSelector" => {
                req.filter.labels = parse_label_selector(&value).map_err(bad)?;
            }
            "fieldSelector" => {
                req.filter.fields = parse_field_selector(&value, collection).map_err(bad)?;
            }
            // Accepted and ignored: they do not change what this fake answers.
            _ => {}
        }
    }
    if req.watch && req.name.is_some() {
        return Err(status_reply(
            405,
            "MethodNotAllowed",
            "watch of a single object by path is not supported; use a fieldSelector",
        ));
    }
    Ok(req)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "1" | "True" | "TRUE" | "t" | "T" => Some(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" => Some(false),
        _ => None,
    }
}

/// Percent-decoding; with `form`, `+` is a space (query strings).
fn percent_decode(s: &str, form: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'+' if form => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| char::from(c).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
    };
    let mut reqs = Vec::new();
    for term in split_terms(s) {
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(
                inner
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect(),
            )
        };
        let req = if let Some(key) = term.strip_prefix('!') {
            LabelReq::NotExists(key.trim().to_owned())
        } else if let Some((key, rest)) = term.split_once(" notin ") {
            LabelReq::NotIn(
                key.trim().to_owned(),
                set(rest).ok_or_else(|| format!("invalid label selector term {term:?}"))?,
            )
        } else if let Some((key, rest)) = term.split_once(" in ") {
            LabelReq::In(
                key.trim().to_owned(),
                set(rest).ok_or_else(|| format!("invalid label selector term {term:?}"))?,
            )
        } else if let Some((key, value)) = term.split_once("!=") {
            LabelReq::Ne(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            LabelReq::Eq(key.trim().to_owned(), value.trim().to_owned())
        } else {
            LabelReq::Exists(term.to_owned())
        };
        let key = match &req {
            LabelReq::Eq(k, _)
            | LabelReq::Ne(k, _)
            | LabelReq::In(k, _)
            | LabelReq::NotIn(k, _)
            | LabelReq::Exists(k)
            | LabelReq::NotExists(k) => k,
        };
        if !valid_key(key) {
            return Err(format!("invalid label key {key:?}"));
        }
        reqs.push(req);
    }
    Ok(reqs)
}

fn parse_field_selector(s: &str, collection: Collection) -> Result<Vec<FieldReq>, String> {
    let supported: &[&str] = match collection {
        Collection::Nodes => &["metadata.name"],
        Collection::Pods => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "status.phase",
        ],
    };
    let mut reqs = Vec::new();
    for term in split_terms(s) {
        let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (f, v, true)
        } else {
            return Err(format!(
                "invalid selector: '{term}'; can't understand '{term}'"
            ));
        };
        let field = field.trim();
        if !supported.contains(&field) {
            return Err(format!("field label not supported: {field}"));
        }
        reqs.push(FieldReq {
            field: field.to_owned(),
            value: value.trim().to_owned(),
            equal,
        });
    }
    Ok(reqs)
}

/// Whether an `Accept` header asks for `PartialObjectMetadata(List)` first.
fn wants_metadata(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|range| {
        range.split(';').skip(1).any(|param| {
            matches!(
                param.trim(),
                "as=PartialObjectMetadata" | "as=PartialObjectMetadataList"
            )
        })
    })
}

/// Continue tokens look like the real ones in one way that matters: they hold characters
/// that must be escaped in a query (`/`, `+`, `=`).
fn make_token(rv: u64, snapshot: u64, offset: usize) -> String {
    format!("{rv}/{snapshot}+{offset}=")
}

fn parse_token(token: &str) -> Option<(u64, usize)> {
    let body = token.strip_suffix('=')?;
    let (_, rest) = body.split_once('/')?;
    let (snapshot, offset) = rest.split_once('+')?;
    Some((snapshot.parse().ok()?, offset.parse().ok()?))
}

// ---- rendering -------------------------------------------------------------------------

fn json_reply(status: u16, body: Vec<u8>) -> Reply {
    Reply::Complete {
        status,
        content_type: "application/json",
        body,
    }
}

fn status_reply(code: u16, reason: &str, message: &str) -> Reply {
    let mut body = Vec::new();
    write_status(&mut body, code, reason, message);
    body.push(b'\n');
    json_reply(code, body)
}

fn write_status(out: &mut Vec<u8>, code: u16, reason: &str, message: &str) {
    out.extend_from_slice(
        br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"#,
    );
    push_str(out, message);
    out.extend_from_slice(br#","reason":"#);
    push_str(out, reason);
    out.extend_from_slice(br#","code":"#);
    push_u64(out, u64::from(code));
    out.push(b'}');
}

/// The watch event a change means for a watch with `filter`, if any.
fn event_for(change: &Change, filter: &Filter, metadata_only: bool) -> Option<Vec<u8>> {
    let old = change.old.as_ref().filter(|o| o.matches(filter));
    let new = change.new.as_ref().filter(|o| o.matches(filter));
    let (kind, obj) = match (old, new) {
        (None, Some(n)) => ("ADDED", n),
        (Some(_), Some(n)) => ("MODIFIED", n),
        // Deleted, or no longer selected: the last state, at the change's version.
        (Some(o), None) => ("DELETED", change.new.as_ref().unwrap_or(o)),
        (None, None) => return None,
    };
    let mut line = br#"{"type":""#.to_vec();
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(br#"","object":"#);
    write_object(&mut line, obj, change.rv, metadata_only, true);
    line.extend_from_slice(b"}\n");
    Some(line)
}

fn type_meta(out: &mut Vec<u8>, collection: Collection, metadata_only: bool) {
    if metadata_only {
        out.extend_from_slice(br#""kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1""#);
    } else {
        out.extend_from_slice(br#""kind":""#);
        out.extend_from_slice(collection.kind().as_bytes());
        out.extend_from_slice(br#"","apiVersion":"v1""#);
    }
}

fn list_type_meta(out: &mut Vec<u8>, collection: Collection, metadata_only: bool) {
    if metadata_only {
        out.extend_from_slice(
            br#""kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1""#,
        );
    } else {
        out.extend_from_slice(br#""kind":""#);
        out.extend_from_slice(collection.kind().as_bytes());
        out.extend_from_slice(br#"List","apiVersion":"v1""#);
    }
}

fn write_object(out: &mut Vec<u8>, obj: &Object, rv: u64, metadata_only: bool, with_type: bool) {
    out.push(b'{');
    if with_type {
        type_meta(out, obj.collection(), metadata_only);
        out.push(b',');
    }
    out.extend_from_slice(br#""metadata":{"name":"#);
    match obj {
        Object::Node(n) => {
            push_str(out, &n.name);
            meta_tail(out, &n.uid, rv, n.created, &n.labels, &n.annotations);
        }
        Object::Pod(p) => {
            push_str(out, &p.name);
            out.extend_from_slice(br#","namespace":"#);
            push_str(out, &p.namespace);
            meta_tail(out, &p.uid, rv, p.created, &p.labels, &p.annotations);
        }
    }
    if metadata_only {
        out.push(b'}');
        return;
    }
    match obj {
        Object::Node(n) => {
            out.extend_from_slice(
                br#","spec":{},"status":{"conditions":[{"type":"Ready","status":"#,
            );
            push_str(out, if n.ready { "True" } else { "False" });
            out.extend_from_slice(br#","reason":"#);
            push_str(
                out,
                if n.ready {
                    "KubeletReady"
                } else {
                    "KubeletNotReady"
                },
            );
            out.extend_from_slice(br#"}],"addresses":["#);
            for (i, a) in n.addresses.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"type":"#);
                push_str(out, &a.kind);
                out.extend_from_slice(br#","address":"#);
                push_str(out, &a.address);
                out.push(b'}');
            }
            out.extend_from_slice(br#"],"daemonEndpoints":{"kubeletEndpoint":{"Port":"#);
            push_u64(out, u64::from(n.kubelet_port));
            out.extend_from_slice(b"}}");
            for (key, map) in [("capacity", &n.capacity), ("allocatable", &n.allocatable)] {
                if map.is_empty() {
                    continue;
                }
                out.extend_from_slice(b",\"");
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"\":");
                push_string_map(out, map);
            }
            out.extend_from_slice(br#","nodeInfo":{"kubeletVersion":"v1.31.0"}}}"#);
        }
        Object::Pod(p) => {
            out.extend_from_slice(br#","spec":{"nodeName":"#);
            push_str(out, &p.node_name);
            out.extend_from_slice(br#"},"status":{"phase":"#);
            push_str(out, &p.phase);
            out.extend_from_slice(b"}}");
        }
    }
}

fn meta_tail(
    out: &mut Vec<u8>,
    uid: &str,
    rv: u64,
    created: Timestamp,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) {
    out.extend_from_slice(br#","uid":"#);
    push_str(out, uid);
    out.extend_from_slice(br#","resourceVersion":""#);
    push_u64(out, rv);
    out.extend_from_slice(br#"","creationTimestamp":"#);
    push_str(out, &created.to_rfc3339_secs());
    for (key, map) in [("labels", labels), ("annotations", annotations)] {
        if map.is_empty() {
            continue;
        }
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        push_string_map(out, map);
    }
    out.push(b'}');
}

/// A JSON object of strings, in key order.
fn push_string_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, k);
        out.push(b':');
        push_str(out, v);
    }
    out.push(b'}');
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

/// A JSON string literal.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let mut text = String::with_capacity(s.len() + 2);
    text.push('"');
    for c in s.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(text, "\\u{:04x}", u32::from(c));
            }
            c => text.push(c),
        }
    }
    text.push('"');
    out.extend_from_slice(text.as_bytes());
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Collection::Nodes => "nodes",
            Collection::Pods => "pods",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{Cluster, ClusterSpec};
    use metrics_core::cluster::{
        Cluster as Watchers, ClusterAction, ClusterConfig, Instant, RequestKind,
    };
    use metrics_core::http::{StatusCode, header};
    use serde_json::Value;

    const PARTIAL_LIST: &str =
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

    fn cluster() -> Cluster {
        Cluster::new(&ClusterSpec::new(7, 3, 4))
    }

    fn complete(reply: Reply) -> (u16, Value) {
        match reply {
            Reply::Complete { status, body, .. } => {
                (status, serde_json::from_slice(&body).expect("a JSON body"))
            }
            other => panic!("expected a complete reply, got {other:?}"),
        }
    }

    fn watch(reply: Reply) -> WatchId {
        match reply {
            Reply::Watch(id) => id,
            other => panic!("expected a watch, got {other:?}"),
        }
    }

    /// Every pending line of a watch as (type, name, resourceVersion); `END` for the end.
    fn drain(api: &mut Apiserver, id: WatchId) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        while let Some(o) = api.poll_watch(id) {
            match o {
                WatchOutput::Line(l) => {
                    assert_eq!(l.last(), Some(&b'\n'));
                    let v: Value = serde_json::from_slice(&l).expect("event JSON");
                    let meta = &v["object"]["metadata"];
                    out.push((
                        v["type"].as_str().unwrap_or("").to_owned(),
                        meta["name"].as_str().unwrap_or("").to_owned(),
                        meta["resourceVersion"]
                            .as_str()
                            .or(v["object"]["code"].as_u64().map(|_| "status"))
                            .unwrap_or("")
                            .to_owned(),
                    ));
                }
                WatchOutput::End => out.push(("END".into(), String::new(), String::new())),
                WatchOutput::Broken(r) => out.push(("BROKEN".into(), r, String::new())),
            }
        }
        out
    }

    #[test]
    fn node_list_carries_what_the_scraper_needs() {
        let c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        let (status, v) = complete(api.get("/api/v1/nodes?limit=500&resourceVersion=0", None));
        assert_eq!(status, 200);
        assert_eq!(v["kind"], "NodeList");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(
            v["metadata"]["resourceVersion"],
            api.resource_version().to_string()
        );
        assert!(v["metadata"].get("continue").is_none());
        let items = v["items"].as_array().expect("items");
        assert_eq!(items.len(), 3);
        let first = &items[0];
        let n = &c.nodes()[0];
        assert_eq!(first["metadata"]["name"], n.name.as_str());
        assert_eq!(
            first["metadata"]["labels"]["kubernetes.io/hostname"],
            n.name.as_str()
        );
        let [a, b, cc, d] = n.address;
        assert_eq!(
            first["status"]["addresses"],
            serde_json::json!([
                {"type": "InternalIP", "address": format!("{a}.{b}.{cc}.{d}")},
                {"type": "Hostname", "address": n.name},
            ])
        );
        assert_eq!(
            first["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
            10250
        );
        assert_eq!(first["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(first["status"]["conditions"][0]["status"], "True");
        // Single object, with its kind.
        let (status, v) = complete(api.get(&format!("/api/v1/nodes/{}", n.name), None));
        assert_eq!((status, v["kind"].as_str()), (200, Some("Node")));
        let (status, v) = complete(api.get("/api/v1/nodes/nope", None));
        assert_eq!((status, v["reason"].as_str()), (404, Some("NotFound")));
        let (status, _) = complete(api.get("/apis/apps/v1/deployments", None));
        assert_eq!(status, 404);
    }

    #[test]
    fn node_capacity_and_allocatable_only_when_set() {
        let c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        let name = c.nodes()[0].name.clone();
        let path = format!("/api/v1/nodes/{name}");
        let (_, v) = complete(api.get(&path, None));
        assert!(v["status"].get("capacity").is_none());
        assert!(v["status"].get("allocatable").is_none());

        let mut node = api.node(&name).expect("the node").clone();
        node.capacity = [("cpu", "8"), ("memory", "16Gi")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        node.allocatable = [("cpu", "7900m")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert!(api.upsert_node(node));
        let (_, v) = complete(api.get(&path, None));
        assert_eq!(
            v["status"]["capacity"],
            serde_json::json!({"cpu": "8", "memory": "16Gi"})
        );
        assert_eq!(
            v["status"]["allocatable"],
            serde_json::json!({"cpu": "7900m"})
        );
        assert_eq!(v["status"]["nodeInfo"]["kubeletVersion"], "v1.31.0");
    }

    #[test]
    fn pods_as_partial_metadata_with_selectors() {
        let c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        let mut pending = PodObject::new("default", "waiting", &c.nodes()[0].name);
        pending.phase = "Pending".into();
        api.upsert_pod(pending);
        let (status, v) = complete(api.get(
            "/api/v1/pods?fieldSelector=status.phase%3DRunning&limit=500",
            Some(PARTIAL_LIST),
        ));
        assert_eq!(status, 200);
        assert_eq!(v["kind"], "PartialObjectMetadataList");
        assert_eq!(v["apiVersion"], "meta.k8s.io/v1");
        let items = v["items"].as_array().expect("items");
        assert_eq!(
            items.len(),
            12,
            "3 nodes x 4 pods, the Pending one left out"
        );
        assert_eq!(items[0]["kind"], "PartialObjectMetadata");
        assert!(items[0].get("spec").is_none() && items[0].get("status").is_none());
        let keys: Vec<(String, String)> = items
            .iter()
            .map(|i| {
                (
                    i["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                    i["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "listed in (namespace, name) order");
        // Without the Accept parameter: full pods.
        let (_, v) = complete(api.get("/api/v1/pods", Some("application/json")));
        assert_eq!(v["kind"], "PodList");
        assert_eq!(v["items"].as_array().map(Vec::len), Some(13));
        assert_eq!(v["items"][0]["status"]["phase"], "Running");
        // Namespaced list, label selectors.
        let (_, v) = complete(api.get(
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
            None,
        ));
        for item in v["items"].as_array().expect("items") {
            assert_eq!(item["metadata"]["namespace"], "default");
            assert_eq!(item["metadata"]["labels"]["app"], "web");
        }
        let (_, v) = complete(api.get(
            "/api/v1/pods?labelSelector=app+notin+%28web%29%2C%21nope",
            None,
        ));
        assert!(
            v["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|i| i["metadata"]["labels"]["app"] != "web")
        );
        let (status, v) = complete(api.get("/api/v1/pods?fieldSelector=spec.host%3Dx", None));
        assert_eq!(status, 400);
        assert_eq!(v["message"], "field label not supported: spec.host");
    }

    #[test]
    fn pages_are_consistent_and_tokens_expire() {
        let c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        let (_, first) = complete(api.get("/api/v1/pods?limit=5", None));
        assert_eq!(first["items"].as_array().map(Vec::len), Some(5));
        assert_eq!(first["metadata"]["remainingItemCount"], 7);
        let token = first["metadata"]["continue"].as_str().expect("a token");
        assert!(token.contains('/') && token.contains('+') && token.ends_with('='));
        let rv = first["metadata"]["resourceVersion"].clone();
        // A change between pages is not seen by the rest of the list.
        let removed = api.pods().nth(9).cloned().expect("a pod");
        api.delete_pod(&removed.namespace, &removed.name);
        let mut escaped = String::new();
        for b in token.bytes() {
            if b.is_ascii_alphanumeric() {
                escaped.push(char::from(b));
            } else {
                escaped.push_str(&format!("%{b:02X}"));
            }
        }
        let mut names = Vec::new();
        let mut next = Some(escaped);
        while let Some(t) = next.take() {
            let (status, page) =
                complete(api.get(&format!("/api/v1/pods?continue={t}&limit=5"), None));
            assert_eq!(status, 200);
            assert_eq!(
                page["metadata"]["resourceVersion"], rv,
                "the first page's version"
            );
            for i in page["items"].as_array().expect("items") {
                names.push(i["metadata"]["name"].as_str().unwrap_or("").to_owned());
            }
            next = page["metadata"]["continue"].as_str().map(|t| {
                t.bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            char::from(b).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect()
            });
        }
        assert_eq!(names.len(), 7);
        assert!(names.contains(&removed.name), "the snapshot still has it");
        // Compaction expires tokens.
        let (_, first) = complete(api.get("/api/v1/pods?limit=5", None));
        let token = first["metadata"]["continue"]
            .as_str()
            .expect("token")
            .to_owned();
        api.compact();
        let (status, v) = complete(api.get(
            &format!(
                    "/api/v1/pods?continue={}",
                    token
                        .replace('/', "%2F")
                        .replace('+', "%2B")
                        .replace('=', "%3D")
                ),
            None,
        ));
        assert_eq!((status, v["reason"].as_str()), (410, Some("Expired")));
    }

    #[test]
    fn watch_events_follow_changes() {
        let mut c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        let rv = api.resource_version();
        let id = watch(api.get(
            &format!(
                "/api/v1/pods?allowWatchBookmarks=true&fieldSelector=status.phase%3DRunning&resourceVersion={rv}&timeoutSeconds=290&watch=true"
            ),
            Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"),
        ));
        let info = api.watch_info(id).expect("open").clone();
        assert_eq!(info.collection, Collection::Pods);
        assert_eq!(info.timeout, Some(Duration::from_secs(290)));
        assert!(info.bookmarks && info.metadata_only);
        assert!(
            drain(&mut api, id).is_empty(),
            "nothing happened since {rv}"
        );

        // Generator mutations become events.
        let at = c.spec().epoch;
        let added = c.add_pod(0, at);
        c.set_pod_labels(1, 0, vec![("app".into(), "relabelled".into())]);
        let relabelled = c.nodes()[1].pods()[0].name.clone();
        let gone = c.nodes()[2].pods()[1].name.clone();
        c.remove_pod(2, 1, at);
        assert_eq!(api.sync_cluster(&c), 3);
        let events = drain(&mut api, id);
        let kinds: Vec<(&str, &str)> = events
            .iter()
            .map(|(t, n, _)| (t.as_str(), n.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("DELETED", gone.as_str()),
                ("MODIFIED", relabelled.as_str()),
                ("ADDED", added.name.as_str()),
            ]
        );
        let rvs: Vec<u64> = events.iter().map(|e| e.2.parse().expect("rv")).collect();
        assert!(rvs.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(rvs.last(), Some(&api.resource_version()));

        // Leaving the field selector is a deletion for this watch.
        let mut p = api
            .pod(&added.namespace, &added.name)
            .cloned()
            .expect("pod");
        p.phase = "Succeeded".into();
        api.upsert_pod(p);
        let e = drain(&mut api, id);
        assert_eq!(
            (e[0].0.as_str(), e[0].1.as_str()),
            ("DELETED", added.name.as_str())
        );

        api.bookmark();
        let e = drain(&mut api, id);
        assert_eq!(e[0].0, "BOOKMARK");
        assert_eq!(e[0].2, api.resource_version().to_string());

        api.close_watch(id);
        assert_eq!(
            drain(&mut api, id),
            [("END".into(), String::new(), String::new())]
        );
        assert!(api.watch_info(id).is_none(), "forgotten after its end");
    }

    #[test]
    fn replay_initial_events_errors_and_gone() {
        let c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        let old = api.resource_version();
        let node = c.nodes()[0].name.clone();
        let mut n = api.node(&node).cloned().expect("node");
        n.labels.insert("role".into(), "edge".into());
        api.upsert_node(n.clone());
        assert!(!api.upsert_node(n), "an identical update is no change");
        // Replay from an old version.
        let id = watch(api.get(
            &format!("/api/v1/nodes?resourceVersion={old}&watch=true"),
            None,
        ));
        let e = drain(&mut api, id);
        assert_eq!(
            (e.len(), e[0].0.as_str(), e[0].1.as_str()),
            (1, "MODIFIED", node.as_str())
        );
        // From 0: everything as ADDED.
        let all = watch(api.get("/api/v1/nodes?resourceVersion=0&watch=1", None));
        let e = drain(&mut api, all);
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|(t, _, _)| t == "ADDED"));
        // Expiry: every open watch gets ERROR 410, then ends; the old version is gone.
        api.expire();
        for w in [id, all] {
            let e = drain(&mut api, w);
            assert_eq!(e[0].0, "ERROR");
            assert_eq!(e[1].0, "END");
        }
        let again = watch(api.get(
            &format!("/api/v1/nodes?resourceVersion={old}&watch=true"),
            None,
        ));
        let mut lines = Vec::new();
        while let Some(o) = api.poll_watch(again) {
            lines.push(o);
        }
        let WatchOutput::Line(l) = &lines[0] else {
            panic!("an error line first");
        };
        let v: Value = serde_json::from_slice(l).expect("json");
        assert_eq!(v["object"]["code"], 410);
        assert_eq!(v["object"]["reason"], "Expired");
        assert_eq!(lines[1], WatchOutput::End);
        api.set_gone_as_status(true);
        let (status, _) = complete(api.get(
            &format!("/api/v1/nodes?resourceVersion={old}&watch=true"),
            None,
        ));
        assert_eq!(status, 410);
        // A fresh list's version can be watched.
        let (_, list) = complete(api.get("/api/v1/nodes", None));
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_owned();
        let fresh = watch(api.get(
            &format!("/api/v1/nodes?resourceVersion={rv}&watch=true"),
            None,
        ));
        assert!(drain(&mut api, fresh).is_empty());
        api.send_error(fresh, 500, "InternalError", "boom");
        let e = drain(&mut api, fresh);
        assert_eq!((e[0].0.as_str(), e[1].0.as_str()), ("ERROR", "END"));
        api.get(
            &format!("/api/v1/nodes?resourceVersion={rv}&watch=true"),
            None,
        );
        api.break_watches(None, "connection reset");
        let id = api.requests().len();
        assert!(id > 0);
    }

    #[test]
    fn outages_and_one_off_faults() {
        let c = cluster();
        let mut api = Apiserver::from_cluster(&c);
        api.set_outage(Some(Outage::Unreachable));
        assert!(matches!(
            api.get("/api/v1/nodes", None),
            Reply::Unreachable(_)
        ));
        api.set_outage(Some(Outage::Status(503)));
        let (status, v) = complete(api.get("/api/v1/nodes", None));
        assert_eq!((status, v["code"].as_u64()), (503, Some(503)));
        api.set_outage(None);
        api.fail_next(Fault {
            collection: Some(Collection::Pods),
            watch: Some(true),
            outage: Outage::Status(500),
        });
        assert_eq!(
            api.get("/api/v1/nodes?watch=true", None).status(),
            Some(200)
        );
        assert_eq!(api.get("/api/v1/pods", None).status(), Some(200));
        assert_eq!(api.get("/api/v1/pods?watch=true", None).status(), Some(500));
        assert_eq!(api.get("/api/v1/pods?watch=true", None).status(), Some(200));
        let statuses: Vec<Option<u16>> = api.requests().iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [None, Some(503), Some(200), Some(200), Some(500), Some(200)]
        );
        assert!(api.requests()[4].watch);
        assert_eq!(api.requests()[4].collection, Some(Collection::Pods));
    }

    #[test]
    fn selector_parsing() {
        let reqs =
            parse_label_selector("a=b,c!=d, e in (x, y),f notin (z),g,!h,i==j").expect("valid");
        assert_eq!(
            reqs,
            [
                LabelReq::Eq("a".into(), "b".into()),
                LabelReq::Ne("c".into(), "d".into()),
                LabelReq::In("e".into(), vec!["x".into(), "y".into()]),
                LabelReq::NotIn("f".into(), vec!["z".into()]),
                LabelReq::Exists("g".into()),
                LabelReq::NotExists("h".into()),
                LabelReq::Eq("i".into(), "j".into()),
            ]
        );
        assert!(parse_label_selector("a b").is_err());
        assert!(parse_field_selector("status.phase!=Failed", Collection::Pods).is_ok());
        assert!(parse_field_selector("status.phase", Collection::Pods).is_err());
        assert!(parse_field_selector("spec.nodeName=x", Collection::Nodes).is_err());
        assert_eq!(percent_decode("a%2Fb+c%zz%4", true), "a/b c%zz%4");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }

    /// The core's own list/watch machines, driven against the fake: they sync, follow
    /// changes, and relist after a 410.
    #[test]
    fn drives_the_core_watchers() {
        let mut c = Cluster::new(&ClusterSpec::new(3, 4, 3));
        let mut api = Apiserver::from_cluster(&c);
        let now = Instant::from_nanos(0);
        let mut config = ClusterConfig::with_seed(1);
        config.pods.page_size = 5;
        let mut w = Watchers::new(config, now);
        let mut open: Vec<(metrics_core::cluster::RequestId, WatchId)> = Vec::new();
        let pump = |w: &mut Watchers, api: &mut Apiserver, open: &mut Vec<_>| {
            for _ in 0..100 {
                let mut progress = false;
                while let Some(action) = w.poll_action() {
                    progress = true;
                    match action {
                        ClusterAction::Send(req) => {
                            let accept = req
                                .headers
                                .get(header::ACCEPT)
                                .and_then(|v| v.to_str().ok());
                            match api.get(&req.path_and_query, accept) {
                                Reply::Complete { status, body, .. } => w.on_response(
                                    now,
                                    req.id,
                                    StatusCode::from_u16(status).expect("status"),
                                    &body,
                                ),
                                Reply::Watch(id) => {
                                    assert_eq!(req.kind, RequestKind::Watch);
                                    open.push((req.id, id));
                                }
                                Reply::Unreachable(r) => w.on_error(now, req.id, &r),
                            }
                        }
                        ClusterAction::Cancel(id) => {
                            if let Some(at) = open.iter().position(|(r, _)| *r == id) {
                                api.cancel_watch(open.remove(at).1);
                            }
                        }
                        ClusterAction::Event(_) => {}
                    }
                }
                let mut still = Vec::new();
                for (rid, wid) in open.drain(..) {
                    let mut alive = true;
                    while let Some(o) = api.poll_watch(wid) {
                        progress = true;
                        match o {
                            WatchOutput::Line(l) => w.on_watch_event(now, rid, &l),
                            WatchOutput::End => {
                                w.on_watch_end(now, rid);
                                alive = false;
                            }
                            WatchOutput::Broken(r) => {
                                w.on_error(now, rid, &r);
                                alive = false;
                            }
                        }
                    }
                    if alive {
                        still.push((rid, wid));
                    }
                }
                *open = still;
                if !progress {
                    return;
                }
            }
            panic!("no quiescence");
        };
        pump(&mut w, &mut api, &mut open);
        assert!(w.synced());
        let view = w.view();
        assert_eq!(view.node_count(), 4);
        assert_eq!(view.pod_count(), 12);
        let node = view.node(&c.nodes()[2].name).expect("node");
        assert_eq!(node.kubelet_port, 10250);
        assert!(node.ready);
        assert_eq!(&*node.addresses[0].address, "127.1.0.3");
        assert_eq!(
            w.pods().resource_version(),
            Some(&*api.resource_version().to_string())
        );

        // Changes arrive through the watches.
        let at = c.spec().epoch;
        c.set_pod_labels(0, 1, vec![("tier".into(), "gold".into())]);
        c.remove_node(3);
        c.add_node(at);
        api.sync_cluster(&c);
        pump(&mut w, &mut api, &mut open);
        let view = w.view();
        assert_eq!(view.node_count(), 4);
        assert!(view.node("node-000004").is_some() && view.node("node-000003").is_none());
        let p = &c.nodes()[0].pods()[1];
        assert_eq!(
            view.pod(&p.namespace, &p.name)
                .map(|p| p.labels.get("tier")),
            Some(Some("gold"))
        );
        let lists_before = api.requests().iter().filter(|r| !r.watch).count();

        // 410: both watchers relist (a consistent read, without resourceVersion=0), and
        // what changed meanwhile is there.
        api.expire();
        c.set_pod_labels(1, 0, vec![("tier".into(), "silver".into())]);
        api.sync_cluster(&c);
        pump(&mut w, &mut api, &mut open);
        assert!(open.is_empty(), "both watches ended with their ERROR event");
        // The relist waits for the backoff; run the timers.
        let later = Instant::from_nanos(60_000_000_000);
        w.handle_timeout(later);
        let pump_later = |w: &mut Watchers, api: &mut Apiserver| {
            while let Some(action) = w.poll_action() {
                if let ClusterAction::Send(req) = action {
                    let accept = req
                        .headers
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    if let Reply::Complete { status, body, .. } =
                        api.get(&req.path_and_query, accept)
                    {
                        w.on_response(
                            later,
                            req.id,
                            StatusCode::from_u16(status).expect("status"),
                            &body,
                        );
                    }
                }
            }
        };
        pump_later(&mut w, &mut api);
        let relists: Vec<&RequestRecord> = api.requests()[..]
            .iter()
            .filter(|r| !r.watch)
            .skip(lists_before)
            .collect();
        assert!(!relists.is_empty());
        assert!(relists.iter().all(|r| r.resource_version.is_none()));
        let p = &c.nodes()[1].pods()[0];
        assert_eq!(
            w.view()
                .pod(&p.namespace, &p.name)
                .map(|p| p.labels.get("tier")),
            Some(Some("silver"))
        );
    }
}
