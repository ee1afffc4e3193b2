//! The whole HTTP surface through `api::dispatch::Api::handle` only: discovery, health,
//! `/metrics`, OpenAPI, `/version`, routing-level errors (spec `metrics-api.md` 4.7) and
//! the headers every response carries (4.13). Tests named `api_case_NN` follow the
//! conformance cases of section 10.

mod common;

use common::*;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response};
use metrics_core::api::discovery::{self, VersionInfo};
use metrics_core::api::dispatch::{Api, ApiConfig, RequestState};
use metrics_core::api::health::HealthInputs;
use metrics_core::api::objects::ObjectSet;
use metrics_core::api::router::Context;
use metrics_core::api::selfmetrics::{self, SelfMetrics};
use metrics_core::storage::Snapshot;
use serde_json::{Value, json};

const RESOLUTION: Duration = Duration::from_secs(15);

const GROUP: &str = "/apis/metrics.k8s.io";
const GROUP_VERSION: &str = "/apis/metrics.k8s.io/v1beta1";
const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const PODS: &str = "/apis/metrics.k8s.io/v1beta1/pods";
const AGGREGATOR_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
const NOT_ACCEPTABLE_MESSAGE: &str = "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf";

// ---------------------------------------------------------------------------------------
// Fixtures (snapshots from tests/common).

fn healthy() -> HealthInputs {
    HealthInputs {
        node_informer_synced: true,
        pod_informer_synced: true,
        storage_ready: true,
        last_tick_started: Some(Duration::from_secs(1000)),
        now: Duration::from_secs(1005),
        resolution: RESOLUTION,
        shutting_down: false,
        log_blocked: false,
        post_start_hooks_done: true,
    }
}

/// Everything a request is served from: fixture B of section 10 (Running pods
/// `other/pod1`, `other/pod2`, `testValue/pod3` with metrics, `other/pod4` without) on
/// node `worker`, a healthy process, and an API advertising `":10250"`.
struct World {
    api: Api,
    objects: ObjectSet,
    snapshot: Arc<Snapshot>,
    health: HealthInputs,
    metrics: SelfMetrics,
}

impl World {
    fn new() -> World {
        let mut objects = ObjectSet::default();
        objects.add_node("worker", &[("kubernetes.io/hostname", "worker")]);
        objects.add_pod("other", "pod1", &[("labelKey", "labelValue")]);
        objects.add_pod("other", "pod2", &[("otherKey", "labelValue")]);
        objects.add_pod("testValue", "pod3", &[("labelKey", "otherValue")]);
        objects.add_pod("other", "pod4", &[]);
        let snapshot = snapshot_with(
            &["worker"],
            &[("other", "pod1"), ("other", "pod2"), ("testValue", "pod3")],
        );
        World {
            api: Api::new(ApiConfig {
                server_address: discovery::server_address("", "", 10250),
                version: VersionInfo::default(),
                release: "v0.9.0-rc.1".into(),
            }),
            objects,
            snapshot,
            health: healthy(),
            metrics: SelfMetrics::new(RESOLUTION),
        }
    }

    /// Serves one request; freshness observations go both to the answer and to the
    /// world's self-metrics, as the server wires them.
    fn send(&self, method: Method, target: &str, headers: &[(&str, &str)]) -> Answer {
        let mut builder = Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let parts = builder.body(()).expect("valid request").into_parts().0;
        let seen = RefCell::new(Vec::new());
        let observe = |age: f64| {
            seen.borrow_mut().push(age);
            self.metrics.observe_freshness(age);
        };
        let state = RequestState {
            ctx: Context {
                now: at(25),
                snapshot: &self.snapshot,
                objects: &self.objects,
                observe_freshness: &observe,
            },
            health: &self.health,
            metrics: &self.metrics,
        };
        let mut body = b"stale bytes from a previous request".to_vec();
        let head = self.api.handle(&parts, &state, &mut body);
        Answer {
            head,
            body,
            freshness: seen.into_inner(),
        }
    }

    fn get(&self, target: &str) -> Answer {
        self.send(Method::GET, target, &[])
    }

    fn get_with(&self, target: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::GET, target, headers)
    }
}

struct Answer {
    head: Response<()>,
    body: Vec<u8>,
    freshness: Vec<f64>,
}

impl Answer {
    fn status(&self) -> u16 {
        self.head.status().as_u16()
    }

    fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name).map(|v| v.to_str().expect("ASCII"))
    }

    fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts a compact JSON Status (plus newline) with this code, reason and message.
    fn assert_status(&self, code: u16, reason: &str, message: &str) -> Value {
        assert_eq!(self.status(), code, "{}", self.text());
        assert_eq!(self.content_type(), Some("application/json"));
        let v = self.json();
        assert_eq!(
            (v["kind"].as_str(), v["apiVersion"].as_str()),
            (Some("Status"), Some("v1"))
        );
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], reason);
        assert_eq!(v["message"], message);
        assert_eq!(v["code"], code);
        v
    }

    /// `namespace/name` of each list item.
    fn names(&self) -> Vec<String> {
        self.json()["items"]
            .as_array()
            .expect("items array")
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["metadata"]["namespace"].as_str().unwrap_or(""),
                    i["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    fn is_pretty(&self) -> bool {
        self.text().contains("\n  ") && !self.text().ends_with('\n')
    }
}

/// The spec's examples with the readability whitespace removed (no string in them
/// contains a space), plus the serializer's newline.
fn spec_compact(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------
// Discovery (cases 40-45).

#[test]
fn api_case_40_api_resource_list() {
    let a = World::new().get(GROUP_VERSION);
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), Some("application/json"));
    assert_eq!(
        a.text(),
        spec_compact(
            r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1","resources":[
 {"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics","verbs":["get","list"]},
 {"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]}"#
        )
    );
}

#[test]
fn api_case_41_api_group() {
    let a = World::new().get(GROUP);
    assert_eq!(a.status(), 200);
    assert_eq!(
        a.text(),
        spec_compact(
            r#"{"kind":"APIGroup","apiVersion":"v1","name":"metrics.k8s.io",
 "versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],
 "preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}}"#
        )
    );
}

#[test]
fn api_case_42_legacy_api_group_list() {
    let w = World::new();
    let a = w.get_with("/apis", &[("Accept", "application/json")]);
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), Some("application/json"));
    assert_eq!(a.header("cache-control"), Some("no-cache, private"));
    assert_eq!(
        a.text(),
        spec_compact(
            r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"metrics.k8s.io",
 "versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],
 "preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"},
 "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":":10250"}]}]}"#
        )
    );
    // `/apis/` is the same route; no Accept at all also means the legacy list.
    assert_eq!(w.get("/apis/").body, a.body);
    assert_eq!(w.get("/apis").body, a.body);
}

#[test]
fn api_case_43_aggregated_discovery() {
    let a = World::new().get_with("/apis", &[("Accept", AGGREGATOR_ACCEPT)]);
    assert_eq!(a.status(), 200);
    assert_eq!(
        a.content_type(),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let etag = a.header("etag").expect("ETag");
    assert!(etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(a.header("vary"), Some("Accept"));
    assert_eq!(
        a.header("cache-control"),
        Some("public"),
        "the handler's own policy is kept"
    );
    let v = a.json();
    assert_eq!(v["kind"], "APIGroupDiscoveryList");
    assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2");
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "metrics.k8s.io");
    let version = &items[0]["versions"][0];
    assert_eq!(version["version"], "v1beta1");
    assert_eq!(version["freshness"], "Current");
    let resources: Vec<(&str, &str, &str)> = version["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap_or(""),
                r["scope"].as_str().unwrap_or(""),
                r["responseKind"]["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        resources,
        [
            ("nodes", "Cluster", "NodeMetrics"),
            ("pods", "Namespaced", "PodMetrics")
        ]
    );
}

#[test]
fn api_case_44_if_none_match_is_304() {
    let w = World::new();
    let first = w.get_with("/apis", &[("Accept", AGGREGATOR_ACCEPT)]);
    let etag = first.header("etag").expect("ETag").to_owned();
    let a = w.get_with(
        "/apis",
        &[("Accept", AGGREGATOR_ACCEPT), ("If-None-Match", &etag)],
    );
    assert_eq!(a.status(), 304);
    assert!(a.body.is_empty(), "stale buffer contents are cleared");
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    assert_eq!(a.header("cache-control"), Some("public"));
    // A stale tag gets the document again.
    let a = w.get_with(
        "/apis",
        &[("Accept", AGGREGATOR_ACCEPT), ("If-None-Match", "\"OLD\"")],
    );
    assert_eq!(a.status(), 200);
    assert_eq!(a.body, first.body);
}

#[test]
fn api_case_45_v2beta1_only_is_406() {
    let w = World::new();
    let a = w.get_with(
        "/apis",
        &[(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        )],
    );
    a.assert_status(406, "NotAcceptable", NOT_ACCEPTABLE_MESSAGE);
    assert!(a.is_pretty(), "written indented: {}", a.text());
    // With plain JSON also acceptable, the legacy list is served instead.
    let a = w.get_with(
        "/apis",
        &[(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        )],
    );
    assert_eq!(a.status(), 200);
    assert_eq!(a.json()["kind"], "APIGroupList");
}

#[test]
fn discovery_pretty_follows_query_and_user_agent() {
    let w = World::new();
    let curl = w.get_with(GROUP, &[("User-Agent", "curl/8.0")]);
    assert_eq!(curl.status(), 200);
    assert!(curl.is_pretty(), "{}", curl.text());
    assert!(curl.text().starts_with("{\n  \"kind\": \"APIGroup\""));
    assert_eq!(
        serde_json::from_slice::<Value>(&curl.body).expect("JSON"),
        w.get(GROUP).json()
    );
    let off = w.get_with(
        &format!("{GROUP}?pretty=false"),
        &[("User-Agent", "curl/8.0")],
    );
    assert_eq!(off.body, w.get(GROUP).body);
    assert!(w.get(&format!("{GROUP_VERSION}?pretty=true")).is_pretty());
    let apis = w.get_with("/apis", &[("User-Agent", "Mozilla/5.0 (X11)")]);
    assert!(apis.is_pretty());
}

// ---------------------------------------------------------------------------------------
// Resource routes through dispatch.

#[test]
fn resource_routes_are_served_by_the_router() {
    let w = World::new();
    let a = w.get(PODS);
    assert_eq!(a.status(), 200);
    assert_eq!(a.json()["kind"], "PodMetricsList");
    assert_eq!(
        a.names(),
        ["other/pod1", "other/pod2", "testValue/pod3"],
        "case 11 through dispatch"
    );
    assert_eq!(
        a.freshness,
        [5.0, 5.0, 5.0],
        "the observer is passed through"
    );
    let a = w.get(&format!("{GROUP_VERSION}/namespaces/other/pods/pod4"));
    a.assert_status(
        404,
        "NotFound",
        "podmetrics.metrics.k8s.io \"other/pod4\" not found",
    );
    let a = w.get(&format!("{NODES}/worker"));
    assert_eq!(a.status(), 200);
    assert_eq!(a.json()["kind"], "NodeMetrics");
}

#[test]
fn percent_encoded_path_resolves_like_the_decoded_one() {
    let w = World::new();
    let plain = w.get(&format!("{GROUP_VERSION}/namespaces/other/pods/pod1"));
    let encoded = w.get(&format!("{GROUP_VERSION}/namespaces/other/pods/pod%31"));
    assert_eq!(plain.status(), 200);
    assert_eq!(encoded.status(), 200);
    assert_eq!(encoded.body, plain.body);
    assert_eq!(encoded.json()["metadata"]["name"], "pod1");
    // Escapes anywhere count, as in Go's `URL.Path`, `%2F` included.
    let a = w.get("/apis%2Fmetrics.k8s.io%2fv1beta1");
    assert_eq!(a.status(), 200);
    assert_eq!(a.json()["kind"], "APIResourceList");
    let a = w.get(&format!("{GROUP_VERSION}/namespaces/a%2Fb/pods/pod1"));
    a.assert_status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    let a = w.get(&format!("{GROUP_VERSION}/namespaces/other/pods/no%20such"));
    a.assert_status(404, "NotFound", "pods \"no such\" not found");
}

#[test]
fn malformed_escape_is_400_plain_text() {
    let w = World::new();
    for target in [format!("{NODES}/%zz"), format!("{NODES}/x%4")] {
        let a = w.send(Method::GET, &target, &[("Audit-ID", "a-1")]);
        assert_eq!(a.status(), 400, "{target}");
        assert_eq!(a.content_type(), Some("text/plain; charset=utf-8"));
        assert_eq!(a.text(), "400 Bad Request");
        assert_eq!(a.header("audit-id"), Some("a-1"));
    }
}

// ---------------------------------------------------------------------------------------
// Routing-level errors (4.7).

#[test]
fn unknown_path_under_the_group_is_404_status() {
    let w = World::new();
    for path in [
        "/apis/metrics.k8s.io/v1",
        "/apis/metrics.k8s.io/",
        "/apis/metrics.k8s.io/v1beta1x",
        "/apis/metrics.k8s.io/v1beta1/",
        "/apis/metrics.k8s.io/v1beta1/watch/pods",
        "/apis/metrics.k8s.io/v1beta1/nodes/x/y",
        "/apis/metrics.k8s.io/v1beta1/namespaces/x",
        "/version/",
        "/version/x",
    ] {
        let a = w.get(path);
        let v = a.assert_status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        assert_eq!(v["details"], json!({}), "{path}");
        assert!(a.text().ends_with("}\n"), "compact: {path}");
        assert_eq!(a.header("cache-control"), Some("no-cache, private"));
    }
    // Errors honour `pretty` like any negotiated Status.
    let a = w.get_with("/apis/metrics.k8s.io/v1", &[("User-Agent", "curl/8.0")]);
    assert_eq!(a.status(), 404);
    assert!(a.is_pretty(), "{}", a.text());
}

#[test]
fn unknown_non_api_path_is_the_index_with_404() {
    let w = World::new();
    let index = w.get("/");
    assert_eq!(index.status(), 200);
    assert_eq!(index.content_type(), Some("application/json"));
    assert!(index.is_pretty());
    assert_eq!(w.send(Method::POST, "/index.html", &[]).body, index.body);
    let paths: Vec<String> = index.json()["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().expect("string").to_owned())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for listed in [
        "/apis",
        "/apis/metrics.k8s.io",
        "/apis/metrics.k8s.io/v1beta1",
        "/healthz",
        "/livez/metric-collection-timely",
        "/metrics",
        "/openapi/v2",
        "/openapi/v3",
        "/openapi/v3/",
        "/readyz",
        "/readyz/shutdown",
        "/version",
    ] {
        assert!(paths.iter().any(|p| p == listed), "{listed} listed");
    }
    assert!(!paths.iter().any(|p| p.starts_with("/debug")));
    for path in [
        "/foo",
        "/apis/other.io/v1",
        "/apis/metrics.k8s.iox",
        "/api",
        "/debug/pprof",
        "/debug/pprof/",
        "/healthz/",
        "/readyz/nope",
        "/metrics/x",
        "/openapi/v2/x",
        "/versionx",
    ] {
        let a = w.get(path);
        assert_eq!(a.status(), 404, "{path}");
        assert_eq!(a.content_type(), Some("application/json"), "{path}");
        assert_eq!(a.body, index.body, "{path}: the index, not a Status");
    }
}

#[test]
fn non_get_on_discovery_and_version_is_405() {
    let w = World::new();
    for (method, path) in [
        (Method::POST, GROUP_VERSION),
        (Method::PUT, GROUP),
        (Method::DELETE, "/apis"),
        (Method::HEAD, "/apis/"),
        (Method::OPTIONS, GROUP_VERSION),
        (Method::PATCH, "/version"),
    ] {
        let a = w.send(method.clone(), path, &[]);
        let v = a.assert_status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        assert_eq!(v["details"], json!({}), "{method} {path}");
        assert!(a.header("allow").is_none(), "no Allow header");
    }
}

#[test]
fn api_case_34_non_get_on_resource_paths_is_405() {
    let w = World::new();
    for (method, path) in [
        (Method::DELETE, format!("{NODES}/worker")),
        (Method::POST, NODES.to_owned()),
        (
            Method::PUT,
            format!("{GROUP_VERSION}/namespaces/other/pods/pod1"),
        ),
        (Method::HEAD, PODS.to_owned()),
    ] {
        let a = w.send(method.clone(), &path, &[]);
        let v = a.assert_status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        assert_eq!(v["details"], json!({}), "{method} {path}");
    }
}

#[test]
fn accept_matching_no_producible_type_is_route_level_406() {
    let w = World::new();
    for path in [
        format!("{NODES}/worker"),
        PODS.to_owned(),
        GROUP.to_owned(),
        GROUP_VERSION.to_owned(),
        "/version".to_owned(),
    ] {
        let a = w.get_with(&path, &[("Accept", "text/html")]);
        assert_eq!(a.status(), 406, "{path}");
        assert_eq!(a.content_type(), Some("application/json"));
        assert!(a.is_pretty(), "indented JSON: {}", a.text());
        let v = a.json();
        assert_eq!(v["reason"], "NotAcceptable");
        assert_eq!(v["message"], "406: Not Acceptable");
        assert_eq!(v["details"], json!({}));
        assert_eq!(v["code"], 406);
    }
    // On a discovery route a known type with refused parameters is the serializer's 406.
    let a = w.get_with(
        GROUP_VERSION,
        &[("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
    );
    a.assert_status(406, "NotAcceptable", NOT_ACCEPTABLE_MESSAGE);
}

// ---------------------------------------------------------------------------------------
// /version and OpenAPI.

#[test]
fn version_document() {
    let w = World::new();
    let a = w.get("/version?pretty=false");
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), Some("application/json"));
    assert!(a.is_pretty(), "always indented: {}", a.text());
    // Key order from the text (serde_json's map would sort it).
    let keys: Vec<&str> = a
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once('"').map(|(key, _)| key))
        .collect();
    assert_eq!(
        keys,
        [
            "major",
            "minor",
            "emulationMajor",
            "emulationMinor",
            "minCompatibilityMajor",
            "minCompatibilityMinor",
            "gitVersion",
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
            "platform"
        ]
    );
    assert_eq!(a.json()["minor"], "36");
}

#[test]
fn openapi_v2_with_etag_and_304() {
    let w = World::new();
    let a = w.get_with("/openapi/v2", &[("Accept", "application/json")]);
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), Some("application/json"));
    let etag = a.header("etag").expect("ETag").to_owned();
    let v = a.json();
    assert_eq!(v["info"]["title"], "Kubernetes metrics-server");
    assert_eq!(v["info"]["version"], "v0.9.0", "release cut at '-'");
    let again = w.get_with(
        "/openapi/v2",
        &[("Accept", "application/json"), ("If-None-Match", &etag)],
    );
    assert_eq!(again.status(), 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("cache-control"), Some("no-cache, private"));
}

#[test]
fn openapi_v3_discovery_and_documents() {
    let w = World::new();
    let a = w.get("/openapi/v3");
    assert_eq!(a.status(), 200);
    let url = a.json()["paths"]["apis/metrics.k8s.io/v1beta1"]["serverRelativeURL"]
        .as_str()
        .expect("serverRelativeURL")
        .to_owned();
    assert!(url.starts_with("/openapi/v3/apis/metrics.k8s.io/v1beta1?hash="));
    let doc = w.get(&url);
    assert_eq!(doc.status(), 200);
    assert_eq!(
        doc.header("cache-control"),
        Some("public, immutable"),
        "the handler's own policy is kept"
    );
    assert!(doc.json()["openapi"].as_str().is_some());
    let plain = w.get("/openapi/v3/apis/metrics.k8s.io/v1beta1");
    assert_eq!(plain.body, doc.body);
    assert_eq!(plain.header("cache-control"), Some("no-cache, private"));
}

// ---------------------------------------------------------------------------------------
// Health (cases 54, 61-63) and /metrics (case 66).

#[test]
fn api_case_54_health_endpoints_answer_ok() {
    let w = World::new();
    for path in ["/livez", "/readyz", "/healthz"] {
        for method in [Method::GET, Method::POST, Method::HEAD] {
            let a = w.send(method.clone(), path, &[]);
            assert_eq!(a.status(), 200, "{method} {path}");
            assert_eq!(a.text(), "ok");
            assert_eq!(a.content_type(), Some("text/plain; charset=utf-8"));
            assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(a.header("cache-control"), Some("no-cache, private"));
        }
    }
    let a = w.get("/readyz/metric-storage-ready");
    assert_eq!((a.status(), a.text()), (200, "ok"));
}

#[test]
fn api_case_61_verbose_health() {
    let w = World::new();
    let a = w.get("/readyz?verbose");
    assert_eq!(a.status(), 200);
    assert_eq!(
        a.text(),
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n[+]metric-storage-ready ok\n\
         [+]metric-informer-sync ok\n[+]metadata-informer-sync ok\n[+]shutdown ok\n\
         readyz check passed\n"
    );
    let a = w.get("/livez?verbose");
    assert_eq!(
        a.text(),
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n[+]metric-collection-timely ok\n\
         [+]metadata-informer-sync ok\nlivez check passed\n"
    );
}

#[test]
fn api_case_62_store_not_ready() {
    let mut w = World::new();
    w.health.storage_ready = false;
    let a = w.get("/readyz");
    assert_eq!(a.status(), 500);
    assert_eq!(a.content_type(), Some("text/plain; charset=utf-8"));
    assert!(
        a.text()
            .contains("[-]metric-storage-ready failed: reason withheld\n")
    );
    assert!(a.text().ends_with("readyz check failed\n"));
    let a = w.get("/livez");
    assert_eq!((a.status(), a.text()), (200, "ok"));
    // Case 24's per-check path shows the reason.
    let a = w.get("/readyz/metric-storage-ready");
    assert_eq!(a.status(), 500);
    assert_eq!(a.text(), "internal server error: no metrics to serve\n");
}

#[test]
fn api_case_63_exclude() {
    let mut w = World::new();
    w.health.storage_ready = false;
    let a = w.get("/readyz?exclude=metric-storage-ready&verbose");
    assert_eq!(a.status(), 200);
    assert!(a.text().contains("[+]metric-storage-ready excluded: ok\n"));
    let a = w.get("/readyz?exclude=metric-storage-ready&exclude=nope&verbose");
    assert_eq!(a.status(), 200);
    assert!(
        a.text()
            .contains("warn: some health checks cannot be excluded: no matches for \"nope\"\n")
    );
}

/// The `metrics_server_*` families named by `# TYPE` lines.
fn families(exposition: &str) -> Vec<&str> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| name.starts_with("metrics_server_"))
        .collect()
}

#[test]
fn api_case_66_metrics_exposition() {
    let w = World::new();
    // A fresh process prints only the tick histogram (a plain histogram upstream).
    let a = w.get("/metrics");
    assert_eq!(a.status(), 200);
    assert_eq!(a.content_type(), Some(selfmetrics::CONTENT_TYPE));
    assert_eq!(
        families(a.text()),
        ["metrics_server_manager_tick_duration_seconds"]
    );

    // A few scrape cycles and one API list.
    for cycle in 0..3u64 {
        w.metrics.observe_kubelet_request(
            "worker",
            Duration::from_millis(40),
            cycle != 1,
            at(10 * cycle),
        );
        w.metrics.observe_tick(Duration::from_millis(60));
    }
    w.metrics.set_storage_points(w.snapshot.points());
    assert_eq!(w.get(PODS).freshness.len(), 3);

    let a = w.send(Method::POST, "/metrics", &[]);
    assert_eq!(a.status(), 200, "any method");
    let text = a.text();
    let mut expected = selfmetrics::FAMILIES.to_vec();
    expected.sort_unstable();
    assert_eq!(families(text), expected, "the six families, once each");
    assert_eq!(
        expected,
        [
            "metrics_server_api_metric_freshness_seconds",
            "metrics_server_kubelet_last_request_time_seconds",
            "metrics_server_kubelet_request_duration_seconds",
            "metrics_server_kubelet_request_total",
            "metrics_server_manager_tick_duration_seconds",
            "metrics_server_storage_points",
        ]
    );
    assert!(text.contains("metrics_server_api_metric_freshness_seconds_count 3\n"));
    assert!(text.contains("metrics_server_kubelet_request_total{success=\"false\"} 1\n"));
    assert_eq!(a.header("cache-control"), Some("no-cache, private"));
}

// ---------------------------------------------------------------------------------------
// Headers on every response (4.13).

#[test]
fn cache_control_defaults_unless_the_handler_set_one() {
    let w = World::new();
    for path in [
        PODS,
        GROUP,
        GROUP_VERSION,
        "/apis",
        "/version",
        "/readyz",
        "/metrics",
        "/",
        "/foo",
        "/openapi/v2",
        "/apis/metrics.k8s.io/v1",
    ] {
        assert_eq!(
            w.get(path).header("cache-control"),
            Some("no-cache, private"),
            "{path}"
        );
    }
    let aggregated = w.get_with("/apis", &[("Accept", AGGREGATOR_ACCEPT)]);
    assert_eq!(aggregated.header("cache-control"), Some("public"));
    assert_eq!(
        aggregated.headers().get_all("cache-control").iter().count(),
        1
    );
}

#[test]
fn audit_id_is_echoed_when_present() {
    let w = World::new();
    let id = "0f0c1e8a-7b1d-4c7e-9a52-3c4a3d3b2e11";
    for (method, path) in [
        (Method::GET, PODS),
        (Method::GET, "/apis/metrics.k8s.io/v1"),
        (Method::POST, GROUP_VERSION),
        (Method::GET, "/foo"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
        (Method::GET, "/openapi/v2"),
    ] {
        let a = w.send(method.clone(), path, &[("Audit-ID", id)]);
        assert_eq!(a.header("audit-id"), Some(id), "{method} {path}");
        let a = w.send(method.clone(), path, &[]);
        assert!(
            a.header("audit-id").is_none(),
            "left to the runtime: {path}"
        );
    }
    let etag = w
        .get_with("/apis", &[("Accept", AGGREGATOR_ACCEPT)])
        .header("etag")
        .expect("ETag")
        .to_owned();
    let a = w.get_with(
        "/apis",
        &[
            ("Accept", AGGREGATOR_ACCEPT),
            ("If-None-Match", &etag),
            ("Audit-Id", "abc"),
        ],
    );
    assert_eq!((a.status(), a.header("audit-id")), (304, Some("abc")));
    // An empty header counts as absent (Go's `Header.Get` returns "").
    assert!(
        w.get_with("/readyz", &[("Audit-ID", "")])
            .header("audit-id")
            .is_none()
    );
    // Of repeated headers the first wins.
    let a = w.get_with("/readyz", &[("Audit-ID", "first"), ("Audit-ID", "second")]);
    assert_eq!(
        a.headers().get_all("audit-id").iter().collect::<Vec<_>>(),
        ["first"]
    );
}
