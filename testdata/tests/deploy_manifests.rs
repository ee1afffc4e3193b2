//! The deployment files in `deploy/`: the two plain manifests reproduce upstream's
//! release manifests (objects, names, flags, probes, security settings), their RBAC grants
//! exactly what this server calls, and the Helm chart agrees with them. The chart is
//! checked statically (values, references, block structure, its RBAC rules) and, when a
//! `helm` binary is available (`$HELM` or `helm` on `PATH`), rendered and checked too.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const NS: &str = "kube-system";
const SA: &str = "metrics-server";
const IMAGE: &str = "ghcr.io/example/metrics-server-rs:v0.1.0";

/// Upstream's container args, in upstream's order.
const UPSTREAM_ARGS: [&str; 5] = [
    "--cert-dir=/tmp",
    "--secure-port=10250",
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    "--kubelet-use-node-status-port",
    "--metric-resolution=15s",
];

/// One RBAC permission: (API group, resource, verb).
type Grant = (String, String, String);

/// What the server itself calls, and nothing else:
/// node informer (list/watch; get kept as upstream), pod metadata informer (list/watch),
/// kubelet `/metrics/resource` (nodes/metrics) and the Summary API fallback
/// `/stats/summary` (nodes/stats).
fn server_grants() -> BTreeSet<Grant> {
    grants(&[
        ("", "nodes", &["get", "list", "watch"]),
        ("", "nodes/metrics", &["get"]),
        ("", "nodes/stats", &["get"]),
        ("", "pods", &["list", "watch"]),
    ])
}

/// What users get from `system:aggregated-metrics-reader`.
fn reader_grants() -> BTreeSet<Grant> {
    grants(&[
        ("metrics.k8s.io", "pods", &["get", "list", "watch"]),
        ("metrics.k8s.io", "nodes", &["get", "list", "watch"]),
    ])
}

fn grants(spec: &[(&str, &str, &[&str])]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for (group, resource, verbs) in spec {
        for verb in *verbs {
            out.insert((group.to_string(), resource.to_string(), verb.to_string()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Loading and lookup helpers.

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn chart_dir() -> PathBuf {
    deploy_dir().join("helm/metrics-server")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every non-empty document of a multi-document YAML text.
fn parse_docs(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: invalid YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn load(file: &str) -> Vec<Value> {
    let docs = parse_docs(&read(&deploy_dir().join(file)), file);
    assert!(!docs.is_empty(), "{file}: no documents");
    docs
}

fn components() -> Vec<Value> {
    load("components.yaml")
}

fn high_availability() -> Vec<Value> {
    load("high-availability.yaml")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

fn opt_str<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("nothing at {pointer} in {v}"))
}

fn kind(doc: &Value) -> &str {
    str_at(doc, "/kind")
}

fn name(doc: &Value) -> &str {
    str_at(doc, "/metadata/name")
}

/// The single object of this kind and name.
fn find<'a>(docs: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == kind_ && name(d) == name_)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind_} {name_}");
    found[0]
}

/// The single object of this kind.
fn only<'a>(docs: &'a [Value], kind_: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| kind(d) == kind_).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind_}");
    found[0]
}

fn container(deployment: &Value) -> &Value {
    let containers = at(deployment, "/spec/template/spec/containers")
        .as_array()
        .expect("containers is a list");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn args(deployment: &Value) -> Vec<&str> {
    at(container(deployment), "/args")
        .as_array()
        .expect("args is a list")
        .iter()
        .map(|a| a.as_str().expect("arg is a string"))
        .collect()
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{what} holds a non-string: {s}"))
                .to_string()
        })
        .collect()
}

/// A role's rules as (group, resource, verb) triples, refusing anything a triple cannot
/// express (resourceNames, nonResourceURLs, wildcards) and duplicates.
fn rule_grants(rules: &Value, what: &str) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in rules
        .as_array()
        .unwrap_or_else(|| panic!("{what}: rules is not a list"))
    {
        let map = rule
            .as_object()
            .unwrap_or_else(|| panic!("{what}: rule is not a map"));
        for key in map.keys() {
            assert!(
                ["apiGroups", "resources", "verbs"].contains(&key.as_str()),
                "{what}: unexpected rule field {key}"
            );
        }
        for group in strings(&rule["apiGroups"], "apiGroups") {
            for resource in strings(&rule["resources"], "resources") {
                for verb in strings(&rule["verbs"], "verbs") {
                    for part in [&group, &resource, &verb] {
                        assert!(!part.contains('*'), "{what}: wildcard in {rule}");
                    }
                    let triple = (group.clone(), resource.clone(), verb);
                    assert!(
                        out.insert(triple.clone()),
                        "{what}: {triple:?} granted twice"
                    );
                }
            }
        }
    }
    out
}

fn labels(doc: &Value) -> &serde_json::Map<String, Value> {
    at(doc, "/metadata/labels")
        .as_object()
        .expect("labels is a map")
}

fn pod_labels(deployment: &Value) -> &serde_json::Map<String, Value> {
    at(deployment, "/spec/template/metadata/labels")
        .as_object()
        .expect("pod labels is a map")
}

/// `selector` (a label map) selects pods carrying `pod`.
fn selects(selector: &Value, pod: &serde_json::Map<String, Value>) -> bool {
    let selector = selector.as_object().expect("selector is a map");
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

// ---------------------------------------------------------------------------------------
// Plain manifests.

/// (apiVersion, kind, namespace, name) of every object upstream's release manifest has.
fn expected_objects() -> BTreeSet<(String, String, String, String)> {
    let ns = NS;
    [
        ("v1", "ServiceAccount", ns, "metrics-server"),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "",
            "system:aggregated-metrics-reader",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "",
            "system:metrics-server",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            ns,
            "metrics-server-auth-reader",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "",
            "metrics-server:system:auth-delegator",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "",
            "system:metrics-server",
        ),
        ("v1", "Service", ns, "metrics-server"),
        ("apps/v1", "Deployment", ns, "metrics-server"),
        (
            "apiregistration.k8s.io/v1",
            "APIService",
            "",
            "v1beta1.metrics.k8s.io",
        ),
    ]
    .into_iter()
    .map(|(a, k, n, m)| (a.into(), k.into(), n.into(), m.into()))
    .collect()
}

fn objects(docs: &[Value]) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for d in docs {
        let id = (
            str_at(d, "/apiVersion").to_string(),
            kind(d).to_string(),
            opt_str(d, "/metadata/namespace").unwrap_or("").to_string(),
            name(d).to_string(),
        );
        assert!(out.insert(id.clone()), "{id:?} appears twice");
    }
    out
}

#[test]
fn components_has_exactly_upstreams_objects() {
    assert_eq!(objects(&components()), expected_objects());
}

#[test]
fn high_availability_adds_only_a_pod_disruption_budget() {
    let mut expected = expected_objects();
    expected.insert((
        "policy/v1".into(),
        "PodDisruptionBudget".into(),
        NS.into(),
        "metrics-server".into(),
    ));
    assert_eq!(objects(&high_availability()), expected);
}

#[test]
fn every_object_carries_the_k8s_app_label() {
    for docs in [components(), high_availability()] {
        for d in &docs {
            assert_eq!(
                labels(d).get("k8s-app"),
                Some(&json!("metrics-server")),
                "{} {}",
                kind(d),
                name(d)
            );
        }
    }
}

#[test]
fn server_cluster_role_grants_exactly_what_the_server_calls() {
    for docs in [components(), high_availability()] {
        let role = find(&docs, "ClusterRole", "system:metrics-server");
        assert_eq!(
            rule_grants(at(role, "/rules"), "system:metrics-server"),
            server_grants()
        );
        assert!(
            role.get("aggregationRule").is_none(),
            "not an aggregated role"
        );
    }
}

#[test]
fn aggregated_reader_grants_read_access_to_the_metrics_api_only() {
    for docs in [components(), high_availability()] {
        let role = find(&docs, "ClusterRole", "system:aggregated-metrics-reader");
        assert_eq!(
            rule_grants(at(role, "/rules"), "system:aggregated-metrics-reader"),
            reader_grants()
        );
        let labels = labels(role);
        for to in ["view", "edit", "admin"] {
            assert_eq!(
                labels.get(&format!("rbac.authorization.k8s.io/aggregate-to-{to}")),
                Some(&json!("true")),
                "aggregated into {to}"
            );
        }
    }
}

/// No other role or binding exists, and every binding gives one of the four roles to the
/// server's ServiceAccount and nobody else.
#[test]
fn bindings_give_the_expected_roles_to_the_service_account_only() {
    let expected: BTreeMap<(&str, &str), (&str, &str)> = [
        (
            ("ClusterRoleBinding", "system:metrics-server"),
            ("ClusterRole", "system:metrics-server"),
        ),
        (
            ("ClusterRoleBinding", "metrics-server:system:auth-delegator"),
            ("ClusterRole", "system:auth-delegator"),
        ),
        (
            ("RoleBinding", "metrics-server-auth-reader"),
            ("Role", "extension-apiserver-authentication-reader"),
        ),
    ]
    .into_iter()
    .collect();
    for docs in [components(), high_availability()] {
        let mut seen = BTreeMap::new();
        for d in docs
            .iter()
            .filter(|d| kind(d).ends_with("Binding") || kind(d) == "Role")
        {
            assert_ne!(kind(d), "Role", "no Role of our own is needed");
            assert_eq!(str_at(d, "/roleRef/apiGroup"), "rbac.authorization.k8s.io");
            assert_eq!(
                at(d, "/subjects"),
                &json!([{"kind": "ServiceAccount", "name": SA, "namespace": NS}]),
                "{} subjects",
                name(d)
            );
            seen.insert(
                (kind(d), name(d)),
                (str_at(d, "/roleRef/kind"), str_at(d, "/roleRef/name")),
            );
        }
        assert_eq!(seen, expected);
        // The built-in Role lives in kube-system, so must its binding.
        let rb = find(&docs, "RoleBinding", "metrics-server-auth-reader");
        assert_eq!(str_at(rb, "/metadata/namespace"), "kube-system");
        // And the ServiceAccount the pods run as is that subject.
        let deployment = only(&docs, "Deployment");
        assert_eq!(
            str_at(deployment, "/spec/template/spec/serviceAccountName"),
            SA
        );
        assert_eq!(
            str_at(find(&docs, "ServiceAccount", SA), "/metadata/namespace"),
            NS
        );
    }
}

#[test]
fn deployment_runs_the_upstream_args() {
    for docs in [components(), high_availability()] {
        let d = only(&docs, "Deployment");
        assert_eq!(args(d), UPSTREAM_ARGS);
        let c = container(d);
        assert_eq!(str_at(c, "/name"), "metrics-server");
        assert_eq!(str_at(c, "/image"), IMAGE);
        assert_eq!(str_at(c, "/imagePullPolicy"), "IfNotPresent");
        assert_eq!(
            at(c, "/ports"),
            &json!([{"name": "https", "containerPort": 10250, "protocol": "TCP"}])
        );
    }
}

#[test]
fn probes_use_the_health_endpoints_over_https() {
    for docs in [components(), high_availability()] {
        let c = container(only(&docs, "Deployment"));
        assert_eq!(
            at(c, "/readinessProbe"),
            &json!({
                "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                "initialDelaySeconds": 20,
                "periodSeconds": 10,
                "failureThreshold": 3,
            })
        );
        assert_eq!(
            at(c, "/livenessProbe"),
            &json!({
                "httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
                "periodSeconds": 10,
                "failureThreshold": 3,
            })
        );
    }
}

#[test]
fn pod_is_locked_down_and_sized_as_upstream() {
    for docs in [components(), high_availability()] {
        let d = only(&docs, "Deployment");
        let c = container(d);
        assert_eq!(
            at(c, "/securityContext"),
            &json!({
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "runAsUser": 1000,
                "allowPrivilegeEscalation": false,
                "seccompProfile": {"type": "RuntimeDefault"},
                "capabilities": {"drop": ["ALL"]},
            })
        );
        assert_eq!(
            at(c, "/resources"),
            &json!({"requests": {"cpu": "100m", "memory": "200Mi"}}),
            "requests only, no limits"
        );
        let pod = at(d, "/spec/template/spec");
        assert_eq!(str_at(pod, "/priorityClassName"), "system-cluster-critical");
        assert_eq!(
            at(pod, "/nodeSelector"),
            &json!({"kubernetes.io/os": "linux"})
        );
        assert_eq!(
            at(pod, "/volumes"),
            &json!([{"name": "tmp-dir", "emptyDir": {}}])
        );
        assert_eq!(
            at(c, "/volumeMounts"),
            &json!([{"name": "tmp-dir", "mountPath": "/tmp"}])
        );
        // The writable emptyDir is where the self-signed certificate goes.
        assert!(args(d).contains(&"--cert-dir=/tmp"));
    }
}

#[test]
fn service_and_deployment_select_the_pods() {
    for docs in [components(), high_availability()] {
        let d = only(&docs, "Deployment");
        let pod = pod_labels(d);
        assert_eq!(
            at(d, "/spec/selector/matchLabels"),
            &json!({"k8s-app": "metrics-server"})
        );
        assert!(selects(at(d, "/spec/selector/matchLabels"), pod));
        let s = find(&docs, "Service", "metrics-server");
        assert!(selects(at(s, "/spec/selector"), pod));
        assert_eq!(
            at(s, "/spec/ports"),
            &json!([{
                "name": "https",
                "port": 443,
                "protocol": "TCP",
                "targetPort": "https",
                "appProtocol": "https",
            }])
        );
    }
}

#[test]
fn api_service_routes_metrics_k8s_io_to_the_service() {
    for docs in [components(), high_availability()] {
        let a = find(&docs, "APIService", "v1beta1.metrics.k8s.io");
        assert!(a.pointer("/metadata/namespace").is_none(), "cluster-scoped");
        assert_eq!(
            at(a, "/spec"),
            &json!({
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": "metrics-server", "namespace": NS},
                "insecureSkipTLSVerify": true,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            })
        );
    }
}

#[test]
fn single_replica_rolls_without_losing_its_pod() {
    let docs = components();
    let d = only(&docs, "Deployment");
    assert!(d.pointer("/spec/replicas").is_none(), "defaults to 1");
    assert_eq!(
        at(d, "/spec/strategy"),
        &json!({"rollingUpdate": {"maxUnavailable": 0}})
    );
    assert!(d.pointer("/spec/template/spec/affinity").is_none());
}

#[test]
fn high_availability_spreads_two_replicas_and_keeps_one() {
    let docs = high_availability();
    let d = only(&docs, "Deployment");
    let pod = pod_labels(d);
    assert_eq!(at(d, "/spec/replicas"), &json!(2));
    assert_eq!(
        at(d, "/spec/strategy"),
        &json!({"rollingUpdate": {"maxUnavailable": 1}})
    );
    let terms = at(
        d,
        "/spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
    )
    .as_array()
    .expect("anti-affinity terms");
    assert_eq!(terms.len(), 1);
    assert_eq!(str_at(&terms[0], "/topologyKey"), "kubernetes.io/hostname");
    assert_eq!(at(&terms[0], "/namespaces"), &json!([NS]));
    assert!(selects(at(&terms[0], "/labelSelector/matchLabels"), pod));

    let pdb = find(&docs, "PodDisruptionBudget", "metrics-server");
    assert_eq!(str_at(pdb, "/apiVersion"), "policy/v1");
    assert_eq!(at(pdb, "/spec/minAvailable"), &json!(1));
    assert!(pdb.pointer("/spec/maxUnavailable").is_none());
    assert!(selects(at(pdb, "/spec/selector/matchLabels"), pod));
}

/// Removing the HA additions from high-availability.yaml gives components.yaml, so the
/// two cannot drift apart.
#[test]
fn high_availability_is_components_plus_the_ha_changes() {
    let mut ha: Vec<Value> = high_availability()
        .into_iter()
        .filter(|d| kind(d) != "PodDisruptionBudget")
        .collect();
    for d in ha.iter_mut().filter(|d| kind(d) == "Deployment") {
        let spec = d["spec"].as_object_mut().expect("spec is a map");
        spec.remove("replicas");
        spec.insert(
            "strategy".into(),
            json!({"rollingUpdate": {"maxUnavailable": 0}}),
        );
        let pod = d["spec"]["template"]["spec"]
            .as_object_mut()
            .expect("pod spec is a map");
        pod.remove("affinity");
    }
    assert_eq!(ha, components());
}

// ---------------------------------------------------------------------------------------
// Helm chart: static checks.

fn chart_values() -> Value {
    let docs = parse_docs(&read(&chart_dir().join("values.yaml")), "values.yaml");
    assert_eq!(docs.len(), 1, "values.yaml is one document");
    docs.into_iter().next().expect("one document")
}

fn templates() -> Vec<(String, String)> {
    let dir = chart_dir().join("templates");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 file name")
                .to_string();
            (file, read(&path))
        })
        .collect();
    out.sort();
    out
}

/// The text of every `{{ ... }}` action, without delimiters, trim markers and spaces.
fn actions(text: &str, file: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("{file}: unclosed {{{{"));
        let inner = after[..end].trim_start_matches('-').trim_end_matches('-');
        out.push(inner.trim().to_string());
        rest = &after[end + 2..];
    }
    assert!(!rest.contains("}}"), "{file}: stray }}}}");
    out
}

#[test]
fn chart_metadata_matches_the_manifests_image() {
    let docs = parse_docs(&read(&chart_dir().join("Chart.yaml")), "Chart.yaml");
    let chart = &docs[0];
    assert_eq!(str_at(chart, "/apiVersion"), "v2");
    assert_eq!(str_at(chart, "/name"), "metrics-server");
    assert_eq!(str_at(chart, "/type"), "application");
    assert!(!str_at(chart, "/version").is_empty());
    let values = chart_values();
    // Default image = repository + ":v" + appVersion = the manifests' image.
    assert_eq!(str_at(&values, "/image/tag"), "");
    assert_eq!(
        format!(
            "{}:v{}",
            str_at(&values, "/image/repository"),
            str_at(chart, "/appVersion")
        ),
        IMAGE
    );
}

#[test]
fn chart_values_default_to_the_manifests_settings() {
    let values = chart_values();
    let docs = components();
    let d = only(&docs, "Deployment");
    let c = container(d);
    let pod = at(d, "/spec/template/spec");

    // Required knobs exist with the documented defaults.
    for (pointer, default) in [
        ("/image/pullPolicy", json!("IfNotPresent")),
        ("/replicas", json!(1)),
        ("/args", json!([])),
        ("/highAvailability/enabled", json!(false)),
        ("/highAvailability/replicas", json!(2)),
        ("/highAvailability/antiAffinity", json!("required")),
        (
            "/highAvailability/topologyKey",
            json!("kubernetes.io/hostname"),
        ),
        ("/podDisruptionBudget/enabled", json!(false)),
        ("/podDisruptionBudget/minAvailable", json!(1)),
        ("/apiService/create", json!(true)),
        ("/apiService/insecureSkipTLSVerify", json!(true)),
        ("/serviceAccount/create", json!(true)),
        ("/rbac/create", json!(true)),
        ("/containerPort", json!(10250)),
        ("/service/port", json!(443)),
    ] {
        assert_eq!(at(&values, pointer), &default, "values{pointer}");
    }

    // --secure-port is derived from containerPort; the rest are defaultArgs.
    let mut chart_args = vec![format!("--secure-port={}", at(&values, "/containerPort"))];
    chart_args.extend(strings(at(&values, "/defaultArgs"), "defaultArgs"));
    let chart_args: BTreeSet<String> = chart_args.into_iter().collect();
    let manifest_args: BTreeSet<String> = args(d).into_iter().map(String::from).collect();
    assert_eq!(chart_args, manifest_args);

    for (value, manifest) in [
        ("/resources", at(c, "/resources")),
        ("/securityContext", at(c, "/securityContext")),
        ("/livenessProbe", at(c, "/livenessProbe")),
        ("/readinessProbe", at(c, "/readinessProbe")),
        ("/nodeSelector", at(pod, "/nodeSelector")),
        ("/priorityClassName", at(pod, "/priorityClassName")),
        ("/tmpVolume/emptyDir", &json!({})),
    ] {
        assert_eq!(at(&values, value), manifest, "values{value}");
    }
}

#[test]
fn chart_has_a_template_for_every_object() {
    let all = templates();
    let files: BTreeSet<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
    for kind_ in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "RoleBinding",
        "Service",
        "Deployment",
        "APIService",
        "PodDisruptionBudget",
    ] {
        // A top-level `kind:` line (roleRef kinds are indented).
        let line = format!("kind: {kind_}");
        let count = all
            .iter()
            .filter(|(f, t)| f.ends_with(".yaml") && t.lines().any(|l| l == line))
            .count();
        let expected = match kind_ {
            "ClusterRole" | "ClusterRoleBinding" => 2,
            _ => 1,
        };
        assert_eq!(count, expected, "templates with {line:?}");
    }
    assert!(files.contains("_helpers.tpl"));
    assert!(files.contains("NOTES.txt"));
}

/// Block actions balance with `end`, every `include` names a defined template, and every
/// `.Values` path exists in values.yaml.
#[test]
fn chart_templates_reference_only_what_exists() {
    let values = chart_values();
    let all = templates();
    let mut defined = BTreeSet::new();
    for (file, text) in &all {
        for action in actions(text, file) {
            if let Some(rest) = action.strip_prefix("define \"") {
                let name = rest.split('"').next().expect("quoted name");
                assert!(defined.insert(name.to_string()), "{name} defined twice");
            }
        }
    }
    for (file, text) in &all {
        let mut depth = 0i32;
        for action in actions(text, file) {
            if action.starts_with("/*") {
                assert!(action.ends_with("*/"), "{file}: comment {action}");
                continue;
            }
            let word = action.split_whitespace().next().unwrap_or("");
            match word {
                "if" | "with" | "range" | "define" | "block" => depth += 1,
                "end" => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0, "{file}: unmatched end");
            for (i, _) in action.match_indices("include \"") {
                let name = action[i + 9..].split('"').next().expect("quoted name");
                assert!(
                    defined.contains(name),
                    "{file}: include of undefined {name}"
                );
            }
            for (i, _) in action.match_indices(".Values.") {
                let path: String = action[i + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    .collect();
                let pointer = format!("/{}", path.trim_end_matches('.').replace('.', "/"));
                assert!(
                    values.pointer(&pointer).is_some(),
                    "{file}: .Values.{path} is not in values.yaml"
                );
            }
        }
        assert_eq!(depth, 0, "{file}: unbalanced blocks");
    }
}

/// The rules of a ClusterRole template (plain YAML between `rules:` and the closing
/// action), as grants.
fn template_rules(file: &str) -> BTreeSet<Grant> {
    let text = read(&chart_dir().join("templates").join(file));
    let start = text
        .find("\nrules:\n")
        .unwrap_or_else(|| panic!("{file}: no rules"));
    let body = &text[start + 1..];
    let end = body.find("{{").unwrap_or(body.len());
    let docs = parse_docs(&body[..end], file);
    rule_grants(at(&docs[0], "/rules"), file)
}

#[test]
fn chart_rbac_grants_the_same_rules() {
    assert_eq!(template_rules("clusterrole.yaml"), server_grants());
    assert_eq!(
        template_rules("clusterrole-aggregated-reader.yaml"),
        reader_grants()
    );
    let all = templates();
    let text = |f: &str| {
        all.iter()
            .find(|(name, _)| name == f)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no template {f}"))
    };
    assert!(
        text("clusterrolebinding-auth-delegator.yaml").contains("name: system:auth-delegator\n")
    );
    let rb = text("rolebinding.yaml");
    assert!(rb.contains("name: extension-apiserver-authentication-reader\n"));
    assert!(
        rb.contains("namespace: kube-system\n"),
        "bound where the Role lives"
    );
}

// ---------------------------------------------------------------------------------------
// Helm chart: rendered, when helm is available.

/// `helm template` output, or None when no helm binary can be run.
fn helm_template(set: &[&str]) -> Option<Vec<Value>> {
    let helm = std::env::var_os("HELM").unwrap_or_else(|| "helm".into());
    let mut cmd = Command::new(&helm);
    cmd.args(["template", "metrics-server"])
        .arg(chart_dir())
        .args(["--namespace", NS]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping the rendered Helm checks: no helm binary ({helm:?})");
            return None;
        }
        Err(e) => panic!("running {helm:?}: {e}"),
    };
    assert!(
        out.status.success(),
        "helm template {set:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    Some(parse_docs(&text, "helm template"))
}

#[test]
fn chart_renders_like_the_manifests() {
    let Some(single) = helm_template(&[]) else {
        return;
    };
    let Some(ha) = helm_template(&["highAvailability.enabled=true"]) else {
        return;
    };
    for (docs, plain) in [(&single, components()), (&ha, high_availability())] {
        // Same kinds, same counts.
        let kinds = |d: &[Value]| {
            let mut m = BTreeMap::new();
            for x in d {
                *m.entry(kind(x).to_string()).or_insert(0) += 1;
            }
            m
        };
        assert_eq!(kinds(docs), kinds(&plain));

        let role = find(docs, "ClusterRole", "system:metrics-server");
        assert_eq!(
            rule_grants(at(role, "/rules"), "rendered role"),
            server_grants()
        );
        let d = only(docs, "Deployment");
        let p = only(&plain, "Deployment");
        let rendered_args: BTreeSet<&str> = args(d).into_iter().collect();
        let plain_args: BTreeSet<&str> = args(p).into_iter().collect();
        assert_eq!(rendered_args, plain_args);
        for pointer in [
            "/image",
            "/imagePullPolicy",
            "/ports",
            "/readinessProbe",
            "/livenessProbe",
            "/resources",
            "/securityContext",
            "/volumeMounts",
        ] {
            assert_eq!(
                at(container(d), pointer),
                at(container(p), pointer),
                "{pointer}"
            );
        }
        for pointer in [
            "/spec/replicas",
            "/spec/strategy",
            "/spec/template/spec/serviceAccountName",
            "/spec/template/spec/priorityClassName",
            "/spec/template/spec/nodeSelector",
            "/spec/template/spec/volumes",
        ] {
            let rendered = d.pointer(pointer).cloned().unwrap_or(json!(1));
            let manifest = p.pointer(pointer).cloned().unwrap_or(json!(1));
            assert_eq!(rendered, manifest, "{pointer}");
        }
        let api = find(docs, "APIService", "v1beta1.metrics.k8s.io");
        assert_eq!(at(api, "/spec/insecureSkipTLSVerify"), &json!(true));
        assert_eq!(str_at(api, "/spec/service/name"), "metrics-server");
        assert_eq!(str_at(api, "/spec/service/namespace"), NS);
        assert!(selects(
            at(find(docs, "Service", "metrics-server"), "/spec/selector"),
            pod_labels(d)
        ));
    }
    let d = only(&ha, "Deployment");
    let terms = at(
        d,
        "/spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
    );
    assert_eq!(str_at(terms, "/0/topologyKey"), "kubernetes.io/hostname");
    assert!(selects(
        at(terms, "/0/labelSelector/matchLabels"),
        pod_labels(d)
    ));
    let pdb = only(&ha, "PodDisruptionBudget");
    assert_eq!(at(pdb, "/spec/minAvailable"), &json!(1));
    assert!(selects(
        at(pdb, "/spec/selector/matchLabels"),
        pod_labels(d)
    ));
}
