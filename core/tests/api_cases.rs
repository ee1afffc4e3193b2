//! The serving conformance cases of `metrics-api.md` section 10, each named by its
//! number (`api_case_NN`), through the pure resource handler: no sockets.

mod common;

use common::*;
use http::Method;
use metrics_core::api::objects::ObjectSet;
use metrics_core::api::router::{Context, Head, resource_route, serve_resource};
use metrics_core::kubelet::{ContainerPoint, MetricsPoint, NodeBatch, PodLevelUsage};
use metrics_core::storage::{Snapshot, Storage};
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// Fixture A: five nodes; the store has node1..node3.
fn fixture_a() -> (ObjectSet, Arc<Snapshot>) {
    let mut objects = ObjectSet::default();
    objects.add_node("node1", &[("labelKey", "labelValue")]);
    objects.add_node("node2", &[("otherKey", "labelValue")]);
    objects.add_node("node3", &[("labelKey", "otherValue")]);
    objects.add_node("node4", &[("otherKey", "otherValue")]);
    objects.add_node("node5", &[("skipKey", "skipValue")]);
    (objects, snapshot_with(&["node1", "node2", "node3"], &[]))
}

/// Fixture B: four Running pods; the store has three of them.
fn fixture_b() -> (ObjectSet, Arc<Snapshot>) {
    let mut objects = ObjectSet::default();
    objects.add_pod("other", "pod1", &[("labelKey", "labelValue")]);
    objects.add_pod("other", "pod2", &[("otherKey", "labelValue")]);
    objects.add_pod("testValue", "pod3", &[("labelKey", "otherValue")]);
    objects.add_pod("other", "pod4", &[]);
    (
        objects,
        snapshot_with(
            &["worker"],
            &[("other", "pod1"), ("other", "pod2"), ("testValue", "pod3")],
        ),
    )
}

struct Answer {
    head: Head,
    body: Vec<u8>,
    freshness: Vec<f64>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn status(&self) -> u16 {
        self.head.status().as_u16()
    }

    fn content_type(&self) -> &str {
        self.head
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `namespace/name` (or `name`) of each list item.
    fn names(&self) -> Vec<String> {
        self.json()["items"]
            .as_array()
            .expect("items array")
            .iter()
            .map(|i| match i["metadata"]["namespace"].as_str() {
                Some(ns) => format!("{ns}/{}", i["metadata"]["name"].as_str().unwrap_or("")),
                None => i["metadata"]["name"].as_str().unwrap_or("").to_string(),
            })
            .collect()
    }
}

fn request(
    objects: &ObjectSet,
    snapshot: &Snapshot,
    method: Method,
    target: &str,
    accept: Option<&str>,
    user_agent: Option<&str>,
) -> Answer {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let route = resource_route(path).expect("a resource path");
    let seen = RefCell::new(Vec::new());
    let observe = |age: f64| seen.borrow_mut().push(age);
    let ctx = Context {
        now: at(25),
        snapshot,
        objects,
        observe_freshness: &observe,
    };
    let mut body = Vec::new();
    let head = serve_resource(&route, &method, accept, user_agent, query, &ctx, &mut body);
    Answer {
        head,
        body,
        freshness: seen.into_inner(),
    }
}

fn get(objects: &ObjectSet, snapshot: &Snapshot, target: &str) -> Answer {
    request(objects, snapshot, Method::GET, target, None, None)
}

const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";

#[test]
fn api_case_01_node_list() {
    let (o, s) = fixture_a();
    let a = get(&o, &s, NODES);
    assert_eq!(a.status(), 200);
    let v = a.json();
    assert_eq!(v["kind"], "NodeMetricsList");
    assert_eq!(v["metadata"], serde_json::json!({}));
    assert_eq!(a.names(), ["node1", "node2", "node3"]);
    assert_eq!(
        v["items"][0]["metadata"]["labels"],
        serde_json::json!({"labelKey": "labelValue"})
    );
    assert!(
        v["items"][0].get("kind").is_none(),
        "list items carry no kind"
    );
    assert_eq!(
        a.freshness,
        [5.0, 5.0, 5.0],
        "one freshness observation per item"
    );
}

#[test]
fn api_cases_02_to_06_node_selectors() {
    let (o, s) = fixture_a();
    assert!(
        get(
            &o,
            &s,
            &format!("{NODES}?fieldSelector=metadata.name%3Dnode4")
        )
        .names()
        .is_empty()
    );
    assert_eq!(
        get(
            &o,
            &s,
            &format!("{NODES}?fieldSelector=metadata.name%3Dnode2")
        )
        .names(),
        ["node2"]
    );
    assert_eq!(
        get(
            &o,
            &s,
            &format!("{NODES}?labelSelector=labelKey%3DlabelValue")
        )
        .names(),
        ["node1"]
    );
    assert_eq!(
        get(
            &o,
            &s,
            &format!(
                "{NODES}?fieldSelector=metadata.name%3Dnode3&labelSelector=labelKey%3DotherValue"
            )
        )
        .names(),
        ["node3"]
    );
    assert!(
        get(&o, &s, &format!("{NODES}?labelSelector=skipKey"))
            .names()
            .is_empty()
    );
}

#[test]
fn api_case_07_node_get() {
    let (o, s) = fixture_a();
    let a = get(&o, &s, &format!("{NODES}/node1"));
    assert_eq!(a.status(), 200);
    let v = a.json();
    assert_eq!(
        (v["kind"].as_str(), v["apiVersion"].as_str()),
        (Some("NodeMetrics"), Some("metrics.k8s.io/v1beta1"))
    );
    assert_eq!(v["metadata"]["name"], "node1");
    assert_eq!(
        v["metadata"]["labels"],
        serde_json::json!({"labelKey": "labelValue"})
    );
    assert_eq!(v["metadata"]["creationTimestamp"], "2026-08-01T10:00:25Z");
    assert_eq!(
        (v["usage"]["cpu"].as_str(), v["usage"]["memory"].as_str()),
        (Some("1"), Some("3Mi"))
    );
    assert_eq!(
        (v["timestamp"].as_str(), v["window"].as_str()),
        (Some("2026-08-01T10:00:20Z"), Some("10s"))
    );
    // Compact JSON with keys in Go struct order and a trailing newline.
    let text = String::from_utf8(a.body.clone()).expect("utf-8");
    assert!(text.starts_with(r#"{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"node1","creationTimestamp":"2026-08-01T10:00:25Z","labels":{"labelKey":"labelValue"}},"timestamp":"2026-08-01T10:00:20Z","window":"10s","usage":{"cpu":"1","memory":"3Mi"}}"#), "{text}");
    assert!(text.ends_with("}\n"));
}

#[test]
fn api_cases_08_to_10_node_not_found_messages() {
    let (o, s) = fixture_a();
    for (name, message, details) in [
        (
            "node4",
            "nodemetrics.metrics.k8s.io \"node4\" not found",
            serde_json::json!({"name": "node4", "group": "metrics.k8s.io", "kind": "nodemetrics"}),
        ),
        (
            "node5",
            "nodemetrics.metrics.k8s.io \"node5\" not found",
            serde_json::json!({"name": "node5", "group": "metrics.k8s.io", "kind": "nodemetrics"}),
        ),
        (
            "node9",
            "node \"node9\" not found",
            serde_json::json!({"name": "node9", "kind": "node"}),
        ),
    ] {
        let a = get(&o, &s, &format!("{NODES}/{name}"));
        assert_eq!(a.status(), 404);
        let v = a.json();
        assert_eq!(
            (
                v["reason"].as_str(),
                v["message"].as_str(),
                v["code"].as_u64()
            ),
            (Some("NotFound"), Some(message), Some(404))
        );
        assert_eq!(v["details"], details);
    }
}

#[test]
fn api_cases_11_to_17_pod_lists() {
    let (o, s) = fixture_b();
    let a = get(&o, &s, PODS);
    assert_eq!(a.json()["kind"], "PodMetricsList");
    assert_eq!(a.names(), ["other/pod1", "other/pod2", "testValue/pod3"]);
    assert_eq!(
        get(
            &o,
            &s,
            &format!("{PODS}?fieldSelector=metadata.namespace%3DtestValue")
        )
        .names(),
        ["testValue/pod3"]
    );
    assert!(
        get(
            &o,
            &s,
            &format!("{PODS}?fieldSelector=metadata.namespace%3Dunknown")
        )
        .names()
        .is_empty()
    );
    assert_eq!(
        get(
            &o,
            &s,
            &format!("{PODS}?labelSelector=labelKey%3DlabelValue")
        )
        .names(),
        ["other/pod1"]
    );
    assert_eq!(
        get(
            &o,
            &s,
            &format!(
                "{PODS}?fieldSelector=metadata.name%3Dpod3&labelSelector=labelKey%3DotherValue"
            )
        )
        .names(),
        ["testValue/pod3"]
    );
    assert_eq!(
        get(&o, &s, "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods").names(),
        ["other/pod1", "other/pod2"]
    );
    let empty = get(
        &o,
        &s,
        "/apis/metrics.k8s.io/v1beta1/namespaces/does-not-exist/pods",
    );
    assert_eq!(empty.status(), 200);
    assert!(empty.names().is_empty());
}

#[test]
fn api_cases_18_to_22_pod_get() {
    let (mut o, s) = fixture_b();
    let v = get(
        &o,
        &s,
        "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/pod1",
    )
    .json();
    assert_eq!(v["kind"], "PodMetrics");
    assert_eq!(v["metadata"]["namespace"], "other");
    assert_eq!(
        v["metadata"]["labels"],
        serde_json::json!({"labelKey": "labelValue"})
    );
    assert_eq!(
        v["containers"],
        serde_json::json!([{"name": "c", "usage": {"cpu": "250m", "memory": "5Mi"}}])
    );
    let v = get(
        &o,
        &s,
        "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/pod4",
    )
    .json();
    assert_eq!(
        v["message"],
        "podmetrics.metrics.k8s.io \"other/pod4\" not found"
    );
    assert_eq!(
        v["details"],
        serde_json::json!({"name": "other/pod4", "group": "metrics.k8s.io", "kind": "podmetrics"})
    );
    let v = get(
        &o,
        &s,
        "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/pod5",
    )
    .json();
    assert_eq!(v["message"], "pods \"pod5\" not found");
    assert_eq!(
        v["details"],
        serde_json::json!({"name": "pod5", "kind": "pods"})
    );
    assert_eq!(
        get(
            &o,
            &s,
            "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/pod3"
        )
        .json()["message"],
        "pods \"pod3\" not found"
    );
    // Case 22: the kubelet reports a pod that is not Running: it does not exist for the API.
    let s22 = snapshot_with(&["worker"], &[("default", "job-x")]);
    o.add_pod("default", "running", &[]);
    assert_eq!(
        get(
            &o,
            &s22,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/job-x"
        )
        .json()["message"],
        "pods \"job-x\" not found"
    );
    assert!(
        !get(&o, &s22, PODS)
            .names()
            .contains(&"default/job-x".to_string())
    );
}

#[test]
fn api_case_32_quantities_and_39_empty_items() {
    let (o, s) = fixture_b();
    let a = get(
        &o,
        &s,
        "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/pod1",
    );
    assert!(String::from_utf8_lossy(&a.body).contains(r#""usage":{"cpu":"250m","memory":"5Mi"}"#));
    let empty = get(&o, &s, &format!("{PODS}?labelSelector=nobody"));
    assert!(String::from_utf8_lossy(&empty.body).contains(r#""items":[]"#));
}

#[test]
fn api_case_33_watch_is_405() {
    let (o, s) = fixture_b();
    let a = get(&o, &s, &format!("{PODS}?watch=true"));
    assert_eq!(a.status(), 405);
    let v = a.json();
    assert_eq!(v["reason"], "MethodNotAllowed");
    assert_eq!(
        v["message"],
        "watch is not supported on resources of kind \"pods.metrics.k8s.io\""
    );
    assert_eq!(
        v["details"],
        serde_json::json!({"group": "metrics.k8s.io", "kind": "pods"})
    );
}

#[test]
fn api_case_34_non_get_methods_are_405() {
    let (o, s) = fixture_a();
    for (method, target) in [
        (Method::DELETE, format!("{NODES}/node1")),
        (Method::POST, NODES.to_string()),
        (Method::PUT, format!("{NODES}/node1")),
        (Method::PATCH, format!("{NODES}/node1")),
        (Method::HEAD, PODS.to_string()),
    ] {
        let a = request(&o, &s, method.clone(), &target, None, None);
        assert_eq!(a.status(), 405, "{method} {target}");
        let v = a.json();
        assert_eq!(
            v["message"],
            "the server does not allow this method on the requested resource"
        );
        assert_eq!(v["details"], serde_json::json!({}));
    }
}

#[test]
fn api_cases_35_to_37_selector_errors() {
    let (o, s) = fixture_b();
    let a = get(
        &o,
        &s,
        &format!("{PODS}?fieldSelector=spec.nodeName%3Dworker-1"),
    );
    assert_eq!(a.status(), 400);
    let v = a.json();
    assert_eq!(v["reason"], "BadRequest");
    assert_eq!(
        v["message"],
        "\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert!(v.get("details").is_none());
    assert_eq!(
        get(&o, &s, &format!("{PODS}?labelSelector=app%3Dweb%2C")).json()["message"],
        "found '', expected: identifier after ','"
    );
    assert_eq!(
        get(&o, &s, &format!("{NODES}?fieldSelector=metadata.name")).json()["message"],
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    );
}

#[test]
fn api_case_38_limit_is_ignored() {
    let (o, s) = fixture_a();
    let a = get(&o, &s, &format!("{NODES}?limit=1"));
    assert_eq!(a.names(), ["node1", "node2", "node3"]);
    assert_eq!(a.json()["metadata"], serde_json::json!({}));
}

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

#[test]
fn api_case_46_table_with_real_columns() {
    let (o, s) = fixture_a();
    let a = request(&o, &s, Method::GET, NODES, Some(TABLE), None);
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), "application/json");
    let v = a.json();
    assert_eq!(
        (v["kind"].as_str(), v["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "cpu", "memory", "Window"]);
    assert_eq!(
        v["rows"][0]["cells"],
        serde_json::json!(["node1", "1", "3Mi", "10s"])
    );
    assert_eq!(v["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(v["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
}

#[test]
fn api_case_48_empty_table() {
    let (o, s) = fixture_a();
    let a = request(
        &o,
        &s,
        Method::GET,
        &format!("{NODES}?labelSelector=none"),
        Some(TABLE),
        None,
    );
    assert!(String::from_utf8_lossy(&a.body).contains(r#""columnDefinitions":null,"rows":null"#));
}

#[test]
fn api_case_49_include_object() {
    let (o, s) = fixture_a();
    let v = request(
        &o,
        &s,
        Method::GET,
        &format!("{NODES}?includeObject=None"),
        Some(TABLE),
        None,
    )
    .json();
    assert!(
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["object"].is_null())
    );
    let v = request(
        &o,
        &s,
        Method::GET,
        &format!("{NODES}?includeObject=Object"),
        Some(TABLE),
        None,
    )
    .json();
    assert!(
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["object"]["kind"] == "NodeMetrics"
                && r["object"]["apiVersion"] == "metrics.k8s.io/v1beta1")
    );
    let a = request(
        &o,
        &s,
        Method::GET,
        &format!("{NODES}?includeObject=Bogus"),
        Some(TABLE),
        None,
    );
    assert_eq!(a.status(), 400);
    assert!(
        a.json()["message"]
            .as_str()
            .expect("message")
            .starts_with("Unable to convert to Table as requested")
    );
}

#[test]
fn api_case_50_protobuf() {
    let (o, s) = fixture_a();
    let a = request(
        &o,
        &s,
        Method::GET,
        &format!("{NODES}/node1"),
        Some("application/vnd.kubernetes.protobuf, */*"),
        None,
    );
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), "application/vnd.kubernetes.protobuf");
    assert_eq!(&a.body[..4], b"k8s\0");
    // runtime.Unknown.typeMeta = {apiVersion, kind}.
    let type_meta = &a.body[6..6 + a.body[5] as usize];
    assert_eq!(
        type_meta,
        [
            &[0x0a, 22][..],
            b"metrics.k8s.io/v1beta1",
            &[0x12, 11],
            b"NodeMetrics"
        ]
        .concat()
    );
}

#[test]
fn api_case_51_protobuf_table_not_acceptable() {
    let (o, s) = fixture_a();
    let a = request(
        &o,
        &s,
        Method::GET,
        NODES,
        Some("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"),
        None,
    );
    assert_eq!(a.status(), 406);
    assert_eq!(a.json()["reason"], "NotAcceptable");
}

#[test]
fn api_case_52_pretty_for_curl() {
    let (o, s) = fixture_a();
    let a = request(&o, &s, Method::GET, NODES, None, Some("curl/8.0"));
    let text = String::from_utf8(a.body.clone()).expect("utf-8");
    assert!(
        text.starts_with("{\n  \"kind\": \"NodeMetricsList\","),
        "{text}"
    );
    assert!(!text.ends_with('\n'));
    let a = request(
        &o,
        &s,
        Method::GET,
        &format!("{NODES}?pretty=false"),
        None,
        Some("curl/8.0"),
    );
    let text = String::from_utf8(a.body).expect("utf-8");
    assert!(text.starts_with(r#"{"kind":"NodeMetricsList""#) && text.ends_with("}\n"));
}

// ---------------------------------------------------------------------------------------
// Cases 23-31: the pairing rules as the API shows them (resolution 15 s unless stated).

fn node_snapshot(resolution: u64, points: &[MetricsPoint]) -> Arc<Snapshot> {
    let mut storage = Storage::new(Duration::from_secs(resolution));
    let mut snapshot = storage.snapshot();
    for p in points {
        snapshot = storage.store(vec![("n1".to_string(), NodeBatch::with_node(Some(*p)))]);
    }
    snapshot
}

fn one_node_objects() -> ObjectSet {
    let mut o = ObjectSet::default();
    o.add_node("n1", &[]);
    o
}

#[test]
fn api_case_23_node_usage_through_the_api() {
    let s = node_snapshot(
        15,
        &[
            point(None, at(10), 10 * CORE_SECOND, 2 * MIB),
            point(None, at(20), 20 * CORE_SECOND, 3 * MIB),
        ],
    );
    let v = get(&one_node_objects(), &s, &format!("{NODES}/n1")).json();
    assert_eq!(
        (
            v["usage"]["cpu"].as_str(),
            v["usage"]["memory"].as_str(),
            v["window"].as_str()
        ),
        (Some("1"), Some("3Mi"), Some("10s"))
    );
    assert_eq!(v["timestamp"], "2026-08-01T10:00:20Z");
}

#[test]
fn api_case_25_counter_decrease_hides_the_node() {
    let s = node_snapshot(
        15,
        &[
            point(None, at(15), 50 * CORE_SECOND, MIB),
            point(None, at(25), 10 * CORE_SECOND, MIB),
        ],
    );
    let o = one_node_objects();
    assert!(get(&o, &s, NODES).names().is_empty());
    assert_eq!(
        get(&o, &s, &format!("{NODES}/n1")).json()["message"],
        "nodemetrics.metrics.k8s.io \"n1\" not found"
    );
}

#[test]
fn api_case_26_sample_between_prev_and_last() {
    let s = node_snapshot(
        15,
        &[
            point(None, at(15), 10 * CORE_SECOND, MIB),
            point(None, at(35), 50 * CORE_SECOND, 4 * MIB),
            point(None, at(25), 35 * CORE_SECOND, 2 * MIB),
        ],
    );
    let v = get(&one_node_objects(), &s, &format!("{NODES}/n1")).json();
    assert_eq!(
        (v["timestamp"].as_str(), v["window"].as_str()),
        (Some("2026-08-01T10:00:25Z"), Some("10s"))
    );
    assert_eq!(
        (v["usage"]["cpu"].as_str(), v["usage"]["memory"].as_str()),
        (Some("2500m"), Some("2Mi"))
    );
}

/// Stores `scrapes` for pod ns1/pod1 (each scrape: (container, point) pairs).
fn pod_snapshot(resolution: u64, scrapes: &[&[(&str, MetricsPoint)]]) -> Arc<Snapshot> {
    let mut storage = Storage::new(Duration::from_secs(resolution));
    let mut snapshot = storage.snapshot();
    for scrape in scrapes {
        let mut batch = NodeBatch::default();
        batch.push_pod(
            "ns1",
            "pod1",
            PodLevelUsage::default(),
            scrape.iter().map(|(name, point)| ContainerPoint {
                name,
                point: *point,
                swap_usage_bytes: None,
            }),
        );
        snapshot = storage.store(vec![("worker".to_string(), batch)]);
    }
    snapshot
}

fn pod1_objects() -> ObjectSet {
    let mut o = ObjectSet::default();
    o.add_pod("ns1", "pod1", &[]);
    o
}

const POD1: &str = "/apis/metrics.k8s.io/v1beta1/namespaces/ns1/pods/pod1";

#[test]
fn api_case_27_restarted_fresh_container() {
    let s0 = Some(at(0));
    let s = pod_snapshot(
        15,
        &[
            &[("c1", point(s0, at(10), CORE_SECOND, 4 * MIB))],
            &[("c1", point(Some(at(15)), at(25), 5 * CORE_SECOND, 5 * MIB))],
        ],
    );
    let v = get(&pod1_objects(), &s, POD1).json();
    assert_eq!(
        (v["timestamp"].as_str(), v["window"].as_str()),
        (Some("2026-08-01T10:00:25Z"), Some("10s"))
    );
    assert_eq!(
        v["containers"],
        serde_json::json!([{"name": "c1", "usage": {"cpu": "500m", "memory": "5Mi"}}])
    );
}

#[test]
fn api_case_28_pod_timestamp_is_the_earliest_container() {
    let s0 = Some(t0().saturating_sub(Duration::from_secs(3600)));
    let s = pod_snapshot(
        15,
        &[
            &[
                ("c1", point(s0, at(110), CORE_SECOND, MIB)),
                ("c2", point(s0, at(115), CORE_SECOND, MIB)),
            ],
            &[
                ("c1", point(s0, at(120), 2 * CORE_SECOND, MIB)),
                ("c2", point(s0, at(125), 2 * CORE_SECOND, MIB)),
            ],
        ],
    );
    let v = get(&pod1_objects(), &s, POD1).json();
    assert_eq!(
        (v["timestamp"].as_str(), v["window"].as_str()),
        (Some("2026-08-01T10:02:00Z"), Some("10s"))
    );
}

#[test]
fn api_case_29_fresh_container_after_one_scrape() {
    let s = pod_snapshot(
        60,
        &[&[("c", point(Some(at(0)), at(10), 10 * CORE_SECOND, 4 * MIB))]],
    );
    let v = get(&pod1_objects(), &s, POD1).json();
    assert_eq!(v["window"], "10s");
    assert_eq!(
        v["containers"][0]["usage"],
        serde_json::json!({"cpu": "1", "memory": "4Mi"})
    );
}

#[test]
fn api_case_30_not_fresh_enough_or_too_old() {
    let o = pod1_objects();
    for (resolution, start, ts) in [(60, 0, 9), (60, 0, 120), (60, 20, 10)] {
        let s = pod_snapshot(
            resolution,
            &[&[(
                "c",
                point(Some(at(start)), at(ts), 10 * CORE_SECOND, 4 * MIB),
            )]],
        );
        assert_eq!(get(&o, &s, POD1).status(), 404, "start {start} ts {ts}");
    }
}

#[test]
fn api_case_31_added_container_hides_the_pod_for_a_cycle() {
    let s0 = Some(t0().saturating_sub(Duration::from_secs(3600)));
    let s = pod_snapshot(
        15,
        &[
            &[("c1", point(s0, at(110), CORE_SECOND, MIB))],
            &[
                ("c1", point(s0, at(120), 2 * CORE_SECOND, MIB)),
                ("c2", point(s0, at(120), CORE_SECOND, MIB)),
            ],
        ],
    );
    let o = pod1_objects();
    assert!(get(&o, &s, PODS).names().is_empty());
    assert_eq!(
        get(&o, &s, POD1).json()["message"],
        "podmetrics.metrics.k8s.io \"ns1/pod1\" not found"
    );
}

/// Case 47: a pod's Table cells are per-resource sums over its containers.
#[test]
fn api_case_47_pod_table_sums_containers() {
    let s0 = Some(t0().saturating_sub(Duration::from_secs(3600)));
    // c1: (2.5 - 0) cores-s over 10 s = 250m, 5 MiB; c2: 0.1 core = 100m, 3 MiB.
    let s = pod_snapshot(
        15,
        &[
            &[
                ("c1", point(s0, at(10), CORE_SECOND, 5 * MIB)),
                ("c2", point(s0, at(10), CORE_SECOND, 3 * MIB)),
            ],
            &[
                ("c1", point(s0, at(20), 3_500_000_000, 5 * MIB)),
                ("c2", point(s0, at(20), 2 * CORE_SECOND, 3 * MIB)),
            ],
        ],
    );
    let a = request(
        &pod1_objects(),
        &s,
        Method::GET,
        "/apis/metrics.k8s.io/v1beta1/namespaces/ns1/pods",
        Some(TABLE),
        None,
    );
    let v = a.json();
    assert_eq!(
        v["rows"][0]["cells"],
        serde_json::json!(["pod1", "350m", "8Mi", "10s"])
    );
}

/// Case 46 with upstream's table-test values: one resource named `res1` per node.
#[test]
fn api_case_46_table_columns_follow_the_resources() {
    use metrics_core::api::encode::{
        Encoder, Encoding, IncludeObject, Item, Kind, NodeItem, Resources,
    };
    use metrics_core::api::negotiate::{Conversion, Format, MetaVersion};
    use metrics_core::quantity::{Format as QFormat, Quantity};
    let labels = metrics_core::cluster::Labels::default();
    let values = [
        (
            "node1",
            [("res1", Quantity::from_u64(10, -3, QFormat::DecimalSi))],
            1000,
        ),
        (
            "node2",
            [("res1", Quantity::from_u64(5 * MIB, 0, QFormat::BinarySi))],
            2000,
        ),
        (
            "node3",
            [("res1", Quantity::from_u64(1, 0, QFormat::DecimalSi))],
            3000,
        ),
    ];
    let encoding = Encoding {
        format: Format::Json,
        conversion: Conversion::Table(MetaVersion::V1),
        include_object: IncludeObject::Metadata,
        now: at(0),
    };
    let mut out = Vec::new();
    Encoder::default().list(&mut out, &encoding, Kind::Node, &mut |sink| {
        for (name, usage, window_ns) in &values {
            sink(&Item::Node(NodeItem {
                name,
                labels: &labels,
                timestamp: at(0),
                window: Duration::from_nanos(*window_ns),
                usage: Resources::Custom(usage),
            }));
        }
    });
    let v: Value = serde_json::from_slice(&out).expect("json");
    let columns: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "res1", "Window"]);
    let rows: Vec<Value> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["cells"].clone())
        .collect();
    assert_eq!(
        rows,
        [
            serde_json::json!(["node1", "10m", "1\u{b5}s"]),
            serde_json::json!(["node2", "5Mi", "2\u{b5}s"]),
            serde_json::json!(["node3", "1", "3\u{b5}s"])
        ]
    );
    assert!(
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["object"]["kind"] == "PartialObjectMetadata"
                && r["object"]["apiVersion"] == "meta.k8s.io/v1")
    );
}
