//! List/watch machines against a fake apiserver: whatever happens (adds, modifications,
//! deletions, bookmarks, garbage lines, ended and expired watches, failed, hung and paged
//! lists, compaction), nothing panics, the cache equals the apiserver's truth whenever a
//! watch is open and caught up, and it converges to it once the faults stop. A second
//! property throws arbitrary input at a watcher and checks it never gets stuck.

use http::StatusCode;
use metrics_core::cluster::{
    ClusterAction, ClusterObject, Instant, Node, NodeWatcher, Pod, PodWatcher, RequestId,
    RequestKind, Watcher, WatcherConfig,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

type Key = (String, String);

/// What the fake apiserver stores per object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Obj {
    labels: BTreeMap<String, String>,
    /// Nodes: last octet of the InternalIP address.
    addr: u8,
}

#[derive(Debug, Clone)]
enum Fault {
    Transport,
    Status(u16),
    Garbage,
    Hang,
}

#[derive(Debug, Clone)]
enum Op {
    Upsert { key: usize, obj: Obj },
    Delete { key: usize },
    Bookmark,
    Garbage(Vec<u8>),
    EndWatch,
    ErrorEvent(u16),
    WatchTransportError,
    FailNext(Fault),
    Compact,
    Advance(u32),
}

const LABEL_KEYS: &[&str] = &["app", "tier", "kubernetes.io/os", "x"];
const LABEL_VALUES: &[&str] = &["", "web", "a\"b\\c", "é/ü", "v1"];

fn obj() -> impl Strategy<Value = Obj> {
    (
        prop::collection::btree_map(
            prop::sample::select(LABEL_KEYS).prop_map(String::from),
            prop::sample::select(LABEL_VALUES).prop_map(String::from),
            0..4,
        ),
        any::<u8>(),
    )
        .prop_map(|(labels, addr)| Obj { labels, addr })
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..40),
        prop::sample::select(vec![
            &b"{"[..],
            b"null",
            b"[]",
            b"{}",
            b"{\"type\":\"ADDED\"}",
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n0\",\"namespace\":\"a\"}}}",
            b"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
            b"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
            b"{\"type\":\"RESYNC\",\"object\":{}}",
            b"{\"type\":7,\"object\":{}}",
            b"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"p0\",\"namespace\":\"a\",\"resourceVersion\":\"9\",\"labels\":{\"a\":[1]}}}}",
        ])
        .prop_map(|b| b.to_vec()),
    ]
    // Blank lines are skipped by design, so they are not garbage.
    .prop_filter("not blank", |b| !b.trim_ascii().is_empty())
}

fn op(keys: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..keys, obj()).prop_map(|(key, obj)| Op::Upsert { key, obj }),
        4 => (0..keys).prop_map(|key| Op::Delete { key }),
        2 => Just(Op::Bookmark),
        1 => garbage().prop_map(Op::Garbage),
        1 => Just(Op::EndWatch),
        1 => prop::sample::select(vec![410u16, 500, 429]).prop_map(Op::ErrorEvent),
        1 => Just(Op::WatchTransportError),
        1 => prop_oneof![
            Just(Fault::Transport),
            prop::sample::select(vec![410u16, 500, 403]).prop_map(Fault::Status),
            Just(Fault::Garbage),
            Just(Fault::Hang),
        ]
        .prop_map(Op::FailNext),
        1 => Just(Op::Compact),
        3 => (0u32..400_000).prop_map(Op::Advance),
    ]
}

/// How one resource looks on the wire and in the cache.
trait Kind: ClusterObject + Sized {
    fn watcher(cfg: WatcherConfig, now: Instant) -> Watcher<Self>;
    fn keys() -> Vec<Key>;
    fn json(key: &Key, obj: &Obj, rv: u64) -> String;
    fn model(&self) -> (Key, Obj);
    /// Drops what the resource does not carry.
    fn normalize(obj: Obj) -> Obj {
        obj
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            // Exercise escaped (owned) strings too.
            'é' => out.push_str("\\u00e9"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn labels_json(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

impl Kind for Node {
    fn watcher(cfg: WatcherConfig, now: Instant) -> Watcher<Node> {
        NodeWatcher::new(cfg, now)
    }
    fn keys() -> Vec<Key> {
        (0..6).map(|i| (String::new(), format!("n{i}"))).collect()
    }
    fn json(key: &Key, obj: &Obj, rv: u64) -> String {
        format!(
            r#"{{"kind":"Node","apiVersion":"v1","metadata":{{"name":{},"resourceVersion":"{rv}","labels":{},"annotations":{{"a":"b"}}}},"spec":{{}},"status":{{"addresses":[{{"type":"InternalIP","address":"10.0.0.{}"}}],"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#,
            json_str(&key.1),
            labels_json(&obj.labels),
            obj.addr
        )
    }
    fn model(&self) -> (Key, Obj) {
        let addr = self
            .addresses
            .first()
            .and_then(|a| a.address.rsplit('.').next()?.parse().ok())
            .unwrap_or(0);
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        ((String::new(), self.name.to_string()), Obj { labels, addr })
    }
}

impl Kind for Pod {
    fn watcher(cfg: WatcherConfig, now: Instant) -> Watcher<Pod> {
        PodWatcher::new(cfg, now)
    }
    fn keys() -> Vec<Key> {
        ["a", "b"]
            .iter()
            .flat_map(|ns| (0..4).map(move |i| (ns.to_string(), format!("p{i}"))))
            .collect()
    }
    fn json(key: &Key, obj: &Obj, rv: u64) -> String {
        format!(
            r#"{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{{"name":{},"namespace":{},"resourceVersion":"{rv}","labels":{}}}}}"#,
            json_str(&key.1),
            json_str(&key.0),
            labels_json(&obj.labels)
        )
    }
    fn model(&self) -> (Key, Obj) {
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let key = (self.namespace.to_string(), self.name.to_string());
        (key, Obj { labels, addr: 0 })
    }
    fn normalize(obj: Obj) -> Obj {
        Obj { addr: 0, ..obj }
    }
}

/// One watch-history entry: `(rv, type, key, object)`.
type Change = (u64, &'static str, Key, Obj);

/// A list snapshot: its objects, its resourceVersion, and whether compaction expired it.
struct Snapshot {
    objects: Vec<(Key, Obj)>,
    rv: u64,
    expired: bool,
}

/// The fake apiserver plus the watcher under test.
struct Harness<T: Kind> {
    w: Watcher<T>,
    now: Instant,
    keys: Vec<Key>,
    truth: BTreeMap<Key, Obj>,
    rv: u64,
    history: Vec<Change>,
    compacted: u64,
    /// List snapshots, by the id in their continue tokens.
    snapshots: Vec<Snapshot>,
    open_watch: Option<RequestId>,
    hung: Option<RequestId>,
    fail_next: Option<Fault>,
    transcript: Vec<String>,
}

const PAGE: usize = 2;

fn query(path: &str) -> BTreeMap<&str, &str> {
    path.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl<T: Kind> Harness<T> {
    fn new(seed: u64) -> Self {
        let cfg = WatcherConfig {
            page_size: PAGE as u32,
            seed,
            ..WatcherConfig::default()
        };
        let now = Instant::from_nanos(1_000_000_000);
        Harness {
            w: T::watcher(cfg, now),
            now,
            keys: T::keys(),
            truth: BTreeMap::new(),
            rv: 1,
            history: Vec::new(),
            compacted: 0,
            snapshots: Vec::new(),
            open_watch: None,
            hung: None,
            fail_next: None,
            transcript: Vec::new(),
        }
    }

    fn event_line(&self, kind: &str, key: &Key, obj: &Obj, rv: u64) -> String {
        format!(r#"{{"type":"{kind}","object":{}}}"#, T::json(key, obj, rv))
    }

    /// Answers everything the watcher asks until it waits for something.
    fn pump(&mut self) {
        // Bounded: a machine that never stops asking would fail here instead of hanging.
        for _ in 0..10_000 {
            let Some(action) = self.w.poll_action() else {
                return;
            };
            self.transcript.push(format!("{action:?}"));
            match action {
                ClusterAction::Send(req) => self.serve(req.id, req.kind, &req.path_and_query),
                ClusterAction::Cancel(id) => {
                    if self.open_watch == Some(id) {
                        self.open_watch = None;
                    }
                    if self.hung == Some(id) {
                        self.hung = None;
                    }
                }
                ClusterAction::Event(_) => {}
            }
        }
        panic!("the watcher keeps asking without waiting");
    }

    fn serve(&mut self, id: RequestId, kind: RequestKind, path: &str) {
        let now = self.now;
        if let Some(fault) = self.fail_next.take() {
            match fault {
                Fault::Transport => self.w.on_error(now, id, "connection reset"),
                Fault::Status(code) => self.w.on_response(now, id, status(code), b"{}"),
                Fault::Garbage => self.w.on_response(now, id, StatusCode::OK, b"{\"items\":"),
                Fault::Hang => self.hung = Some(id),
            }
            return;
        }
        let q = query(path);
        match kind {
            RequestKind::List => {
                let (snap, offset) = match q.get("continue") {
                    Some(tok) => {
                        let parsed = tok
                            .strip_prefix('s')
                            .and_then(|t| t.split_once('-'))
                            .and_then(|(s, o)| Some((s.parse::<usize>().ok()?, o.parse().ok()?)));
                        let Some((snap, offset)) = parsed else {
                            panic!("the watcher altered a continue token: {tok}");
                        };
                        if self.snapshots[snap].expired {
                            self.w.on_response(now, id, StatusCode::GONE, b"{}");
                            return;
                        }
                        (snap, offset)
                    }
                    None => {
                        let objects = self
                            .truth
                            .iter()
                            .map(|(k, o)| (k.clone(), o.clone()))
                            .collect();
                        self.snapshots.push(Snapshot {
                            objects,
                            rv: self.rv,
                            expired: false,
                        });
                        (self.snapshots.len() - 1, 0usize)
                    }
                };
                let Snapshot { objects, rv, .. } = &self.snapshots[snap];
                let end = (offset + PAGE).min(objects.len());
                let items: Vec<String> = objects[offset..end]
                    .iter()
                    .map(|(k, o)| T::json(k, o, *rv))
                    .collect();
                let cont = if end < objects.len() {
                    format!(r#","continue":"s{snap}-{end}""#)
                } else {
                    String::new()
                };
                let body = format!(
                    r#"{{"kind":"List","metadata":{{"resourceVersion":"{rv}"{cont}}},"items":[{}]}}"#,
                    items.join(",")
                );
                self.w.on_response(now, id, StatusCode::OK, body.as_bytes());
            }
            RequestKind::Watch => {
                assert_eq!(q.get("allowWatchBookmarks"), Some(&"true"));
                let from: u64 = q
                    .get("resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .expect("a watch names the version it resumes from");
                if from < self.compacted {
                    let gone =
                        br#"{"kind":"Status","status":"Failure","reason":"Expired","code":410}"#;
                    self.w.on_response(now, id, StatusCode::GONE, gone);
                    return;
                }
                self.open_watch = Some(id);
                let replay: Vec<String> = self
                    .history
                    .iter()
                    .filter(|c| c.0 > from)
                    .map(|(rv, kind, key, obj)| self.event_line(kind, key, obj, *rv))
                    .collect();
                for line in replay {
                    if self.open_watch != Some(id) {
                        break;
                    }
                    self.w.on_watch_event(now, id, line.as_bytes());
                }
            }
        }
    }

    fn change(&mut self, kind: &'static str, key: Key, obj: Obj) {
        self.rv += 1;
        self.history.push((self.rv, kind, key.clone(), obj.clone()));
        if let Some(id) = self.open_watch {
            let line = self.event_line(kind, &key, &obj, self.rv) + "\n";
            self.w.on_watch_event(self.now, id, line.as_bytes());
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Upsert { key, obj } => {
                let obj = T::normalize(obj);
                let key = self.keys[key % self.keys.len()].clone();
                let kind = if self.truth.contains_key(&key) {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                self.truth.insert(key.clone(), obj.clone());
                self.change(kind, key, obj);
            }
            Op::Delete { key } => {
                let key = self.keys[key % self.keys.len()].clone();
                if let Some(obj) = self.truth.remove(&key) {
                    self.change("DELETED", key, obj);
                }
            }
            Op::Bookmark => {
                if let Some(id) = self.open_watch {
                    let line = format!(
                        r#"{{"type":"BOOKMARK","object":{{"metadata":{{"resourceVersion":"{}"}}}}}}"#,
                        self.rv
                    );
                    self.w.on_watch_event(self.now, id, line.as_bytes());
                }
            }
            Op::Garbage(line) => {
                if let Some(id) = self.open_watch {
                    self.w.on_watch_event(self.now, id, &line);
                }
            }
            Op::EndWatch => {
                if let Some(id) = self.open_watch.take() {
                    self.w.on_watch_end(self.now, id);
                }
            }
            Op::ErrorEvent(code) => {
                if let Some(id) = self.open_watch {
                    let line = format!(
                        r#"{{"type":"ERROR","object":{{"kind":"Status","status":"Failure","reason":"R","code":{code}}}}}"#
                    );
                    self.w.on_watch_event(self.now, id, line.as_bytes());
                    // The apiserver closes the stream after an ERROR event.
                    if self.open_watch.take().is_some() {
                        self.w.on_watch_end(self.now, id);
                    }
                }
            }
            Op::WatchTransportError => {
                if let Some(id) = self.open_watch.take() {
                    self.w.on_error(self.now, id, "stream reset");
                }
            }
            Op::FailNext(fault) => self.fail_next = Some(fault),
            Op::Compact => {
                self.compacted = self.rv;
                for s in &mut self.snapshots {
                    s.expired = true;
                }
            }
            Op::Advance(ms) => {
                self.now = self
                    .now
                    .saturating_add(Duration::from_millis(u64::from(ms)));
                self.w.handle_timeout(self.now);
            }
        }
        self.pump();
        // After any input the machine has a way forward and no overdue timer.
        assert!(self.w.in_flight().is_some() || self.w.poll_timeout().is_some());
    }

    fn cache_model(&self) -> BTreeMap<Key, Obj> {
        self.w.cache().iter().map(T::model).collect()
    }

    /// A watch is open, current, and has seen everything.
    fn caught_up(&self) -> bool {
        self.open_watch.is_some() && self.open_watch == self.w.in_flight()
    }

    /// Stops injecting faults and lets time pass until the watcher is watching again.
    fn settle(&mut self) {
        self.fail_next = None;
        for _ in 0..200 {
            self.pump();
            if self.caught_up() {
                return;
            }
            if self.hung.is_some() || self.w.in_flight().is_none() {
                let Some(at) = self.w.poll_timeout() else {
                    panic!("stuck: nothing in flight and no timer");
                };
                self.now = self.now.max(at);
                self.w.handle_timeout(self.now);
            } else {
                panic!("a request is in flight but the fake has not answered it");
            }
        }
        panic!("did not settle");
    }
}

fn run<T: Kind>(seed: u64, ops: &[Op]) -> Vec<String> {
    let mut h = Harness::<T>::new(seed);
    h.pump();
    for op in ops {
        h.apply(op.clone());
        if h.caught_up() {
            assert_eq!(
                h.cache_model(),
                h.truth,
                "open watch, cache differs after {op:?}"
            );
        }
    }
    h.settle();
    assert!(h.w.synced());
    assert_eq!(h.cache_model(), h.truth, "after settling");
    // Caught up: the last version seen is the apiserver's current one.
    assert_eq!(h.w.resource_version(), Some(h.rv.to_string().as_str()));
    h.transcript
}

#[derive(Debug, Clone)]
enum Input {
    Response(u16, Vec<u8>),
    Line(Vec<u8>),
    End,
    Error,
    Advance(u32),
}

fn input() -> impl Strategy<Value = Input> {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        Just(br#"{"metadata":{"resourceVersion":"5","continue":"c"},"items":[]}"#.to_vec()),
        Just(br#"{"metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"n","namespace":"a"}}]}"#.to_vec()),
        Just(br#"{"type":"ADDED","object":{"metadata":{"name":"n","namespace":"a","resourceVersion":"6"}}}"#.to_vec()),
    ];
    prop_oneof![
        (prop::sample::select(vec![200u16, 410, 500]), body.clone())
            .prop_map(|(s, b)| Input::Response(s, b)),
        body.prop_map(Input::Line),
        Just(Input::End),
        Just(Input::Error),
        (0u32..500_000).prop_map(Input::Advance),
    ]
}

/// Arbitrary input (aimed at the request in flight) never panics, and after every call
/// the machine either has a request in flight or a timer set in the future.
fn never_stuck<T: Kind>(seed: u64, inputs: &[Input]) {
    let cfg = WatcherConfig {
        seed,
        ..WatcherConfig::default()
    };
    let mut now = Instant::from_nanos(0);
    let mut w = T::watcher(cfg, now);
    for input in inputs {
        while w.poll_action().is_some() {}
        let id = w.in_flight();
        match (input, id) {
            (Input::Response(s, body), Some(id)) => w.on_response(now, id, status(*s), body),
            (Input::Line(line), Some(id)) => w.on_watch_event(now, id, line),
            (Input::End, Some(id)) => w.on_watch_end(now, id),
            (Input::Error, Some(id)) => w.on_error(now, id, "boom"),
            (Input::Advance(ms), _) => {
                now = now.saturating_add(Duration::from_millis(u64::from(*ms)));
                w.handle_timeout(now);
                if let Some(at) = w.poll_timeout() {
                    assert!(
                        at > now || w.in_flight().is_some(),
                        "timer did not move forward"
                    );
                }
            }
            _ => {}
        }
        assert!(w.in_flight().is_some() || w.poll_timeout().is_some_and(|at| at > now));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn node_cache_matches_the_apiserver(seed in any::<u64>(), ops in prop::collection::vec(op(6), 0..80)) {
        let first = run::<Node>(seed, &ops);
        // Same seed and inputs: the same actions, byte for byte.
        prop_assert_eq!(first, run::<Node>(seed, &ops));
    }

    #[test]
    fn pod_cache_matches_the_apiserver(seed in any::<u64>(), ops in prop::collection::vec(op(8), 0..80)) {
        run::<Pod>(seed, &ops);
    }

    #[test]
    fn arbitrary_input_never_panics_or_sticks(seed in any::<u64>(), inputs in prop::collection::vec(input(), 0..60)) {
        never_stuck::<Node>(seed, &inputs);
        never_stuck::<Pod>(seed, &inputs);
    }
}
