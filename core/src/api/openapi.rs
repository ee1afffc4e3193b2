//! OpenAPI documents of the metrics API (spec 4.8) and the rules for serving them.
//!
//! * `/openapi/v2`: one Swagger 2.0 document with every route (discovery, the five
//!   resource routes, `/version`) and the definitions they reach.
//! * `/openapi/v3`: a discovery document mapping each web-service root (`apis`,
//!   `apis/metrics.k8s.io`, `apis/metrics.k8s.io/v1beta1`, `version`) to
//!   `/openapi/v3/<root>?hash=<HASH>`, and one OpenAPI 3.0 document per root.
//!
//! [`OpenApi::new`] builds every document once; bodies are deterministic (maps are
//! key-sorted) and each carries the uppercase hex SHA-512 of its bytes, upstream's ETag
//! and v3 hash. [`OpenApi::respond`] applies kube-openapi's handler rules: Accept
//! matching, `ETag`/`If-None-Match` (304), and for v3 the hash rules (matching hash →
//! `Cache-Control: public, immutable` and a one-year `Expires`; stale hash → 301).
//!
//! Departures: the gnostic protobuf encodings are not produced (a protobuf-only Accept
//! gets 406, otherwise JSON is served), and `Last-Modified`/`If-Modified-Since` and
//! `Range` are not implemented; no known client uses them.

use std::collections::BTreeSet;

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use super::discovery::{marshal, parse_accept, sha512_hex};
use crate::time::Timestamp;

/// `info.title` of every document.
pub const TITLE: &str = "Kubernetes metrics-server";

const METRICS: &str = "io.k8s.metrics.pkg.apis.metrics.v1beta1.";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";

const V2_PATH: &str = "/openapi/v2";
const V3_PATH: &str = "/openapi/v3";

/// `info.version`: the release tag cut at its first `-` (`v0.9.0-rc.1` → `v0.9.0`); an
/// unstamped build (empty tag) shows `v0.0.0`, as upstream's placeholder version does.
pub fn info_version(release: &str) -> &str {
    match release.split('-').next() {
        Some(cut) if !cut.is_empty() => cut,
        _ => "v0.0.0",
    }
}

// ---------------------------------------------------------------------------------------
// Schemas.

/// Swagger 2.0 or OpenAPI 3.0: where references point and how a reference with its own
/// description is written (3.0 ignores siblings of `$ref`, so kube-openapi wraps it in
/// `allOf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    /// Where this flavour keeps its schemas, as a `$ref` prefix.
    fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }

    fn reference(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }

    /// A property that is another definition, with its own description and, for
    /// embedded structs, `default: {}`.
    fn ref_property(self, name: &str, description: Option<&str>, default_object: bool) -> Value {
        let mut prop = Map::new();
        if let Some(description) = description {
            prop.insert("description".into(), description.into());
        }
        if default_object {
            prop.insert("default".into(), json!({}));
        }
        match self {
            Flavor::V3 if !prop.is_empty() => {
                prop.insert("allOf".into(), json!([self.reference(name)]));
            }
            _ => {
                if let Value::Object(reference) = self.reference(name) {
                    prop.extend(reference);
                }
            }
        }
        Value::Object(prop)
    }
}

fn string(description: &str) -> Value {
    json!({ "description": description, "type": "string" })
}

/// A string Go always writes (non-pointer, no `omitempty`): the schema has `default: ""`.
fn required_string(description: &str) -> Value {
    json!({ "description": description, "type": "string", "default": "" })
}

fn int64(description: &str) -> Value {
    json!({ "description": description, "type": "integer", "format": "int64" })
}

fn boolean(description: &str) -> Value {
    json!({ "description": description, "type": "boolean" })
}

fn string_map(description: &str) -> Value {
    json!({ "description": description, "type": "object", "additionalProperties": { "type": "string", "default": "" } })
}

fn array_of(items: Value, description: &str, list_type: &str) -> Value {
    json!({ "description": description, "type": "array", "items": items, "x-kubernetes-list-type": list_type })
}

fn kind_property() -> Value {
    string("The kind of object this is, in CamelCase; servers may infer it from the endpoint.")
}

fn api_version_property() -> Value {
    string("The versioned schema of this representation of an object.")
}

fn object(description: &str, properties: Value, required: &[&str]) -> Value {
    let mut schema =
        json!({ "description": description, "type": "object", "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn with_gvk(mut schema: Value, group: &str, version: &str, kind: &str) -> Value {
    schema["x-kubernetes-group-version-kind"] = json!([gvk(group, version, kind)]);
    schema
}

/// Every definition any route reaches, keyed by its OpenAPI name.
fn definitions(f: Flavor) -> Map<String, Value> {
    let meta = |name: &str| format!("{META}{name}");
    let metrics = |name: &str| format!("{METRICS}{name}");
    let mut d = Map::new();

    let quantity_description = "A fixed-point decimal number written as a string in canonical form, e.g. \"100m\" (0.1) or \"128Mi\" (128 x 2^20); see the Kubernetes resource.Quantity type.";
    d.insert(
        QUANTITY.into(),
        match f {
            Flavor::V2 => string(quantity_description),
            // 3.0 documents say a quantity may also be a bare JSON number.
            Flavor::V3 => json!({ "description": quantity_description, "oneOf": [{ "type": "string" }, { "type": "number" }] }),
        },
    );
    d.insert(meta("Time"), json!({ "description": "An instant, serialized as an RFC 3339 date-time in UTC with whole seconds.", "type": "string", "format": "date-time" }));
    d.insert(
        meta("Duration"),
        string("A duration, serialized the way Go's time.Duration prints it, e.g. \"15.012s\"."),
    );
    d.insert(meta("FieldsV1"), json!({ "description": "A set of fields encoded as a JSON trie, the structured-merge-diff format.", "type": "object" }));
    d.insert(
        meta("ManagedFieldsEntry"),
        object(
            "The fields one manager owns, as recorded by server-side apply.",
            json!({
                "apiVersion": string("The version of the object the field set applies to."),
                "fieldsType": string("The format of fieldsV1; only \"FieldsV1\" exists."),
                "fieldsV1": f.ref_property(&meta("FieldsV1"), Some("The set of fields."), false),
                "manager": string("The manager's identifier."),
                "operation": string("The operation that recorded the entry: \"Apply\" or \"Update\"."),
                "subresource": string("The subresource the change was made through, if any."),
                "time": f.ref_property(&meta("Time"), Some("When the entry was last changed."), false),
            }),
            &[],
        ),
    );
    let mut owner = object(
        "A reference to an object that owns the referring one.",
        json!({
            "apiVersion": required_string("The owner's API version."),
            "blockOwnerDeletion": boolean("Whether the owner cannot be deleted from the key-value store before this object is."),
            "controller": boolean("Whether the owner is the managing controller."),
            "kind": required_string("The owner's kind."),
            "name": required_string("The owner's name."),
            "uid": required_string("The owner's UID."),
        }),
        &["apiVersion", "kind", "name", "uid"],
    );
    owner["x-kubernetes-map-type"] = "atomic".into();
    d.insert(meta("OwnerReference"), owner);
    let mut owner_references = array_of(
        f.reference(&meta("OwnerReference")),
        "Objects this object depends on.",
        "map",
    );
    owner_references["x-kubernetes-list-map-keys"] = json!(["uid"]);
    owner_references["x-kubernetes-patch-merge-key"] = "uid".into();
    owner_references["x-kubernetes-patch-strategy"] = "merge".into();
    let mut finalizers = array_of(
        json!({ "type": "string", "default": "" }),
        "Conditions that must be cleared before the object is deleted.",
        "set",
    );
    finalizers["x-kubernetes-patch-strategy"] = "merge".into();
    d.insert(
        meta("ObjectMeta"),
        object(
            "Metadata that every persisted object has. Metrics objects carry name, namespace (pods only), creationTimestamp (the time of the response) and labels.",
            json!({
                "annotations": string_map("Arbitrary non-identifying metadata."),
                "creationTimestamp": f.ref_property(&meta("Time"), Some("When the object was created; for metrics objects, when the response was built."), false),
                "deletionGracePeriodSeconds": int64("Seconds allowed for graceful termination once deletion is requested."),
                "deletionTimestamp": f.ref_property(&meta("Time"), Some("When the object will be deleted."), false),
                "finalizers": finalizers,
                "generateName": string("A prefix the server uses to generate a unique name."),
                "generation": int64("A sequence number of the desired state."),
                "labels": string_map("Key-value pairs for organizing and selecting objects; copied from the Node or Pod."),
                "managedFields": array_of(f.reference(&meta("ManagedFieldsEntry")), "The field sets owned by each manager.", "atomic"),
                "name": string("The object's name, unique within its namespace."),
                "namespace": string("The namespace of a namespaced object."),
                "ownerReferences": owner_references,
                "resourceVersion": string("An opaque version of the object, for concurrency control."),
                "selfLink": string("Deprecated and never set."),
                "uid": string("A unique identifier of the object in time and space."),
            }),
            &[],
        ),
    );
    d.insert(
        meta("ShardInfo"),
        object(
            "The shard of a sharded list response.",
            json!({ "selector": required_string("The selector that defines the shard.") }),
            &["selector"],
        ),
    );
    d.insert(
        meta("ListMeta"),
        object(
            "Metadata of a list response. Metrics lists leave it empty.",
            json!({
                "continue": string("A token to fetch the next page; never set by this server."),
                "remainingItemCount": int64("How many items follow this page, when known."),
                "resourceVersion": string("The version of the collection."),
                "selfLink": string("Deprecated and never set."),
                "shardInfo": f.ref_property(&meta("ShardInfo"), Some("The shard this list covers, when sharded."), false),
            }),
            &[],
        ),
    );

    // Discovery types (registered as unversioned "v1" kinds).
    d.insert(
        meta("GroupVersionForDiscovery"),
        object(
            "A group/version pair a server serves.",
            json!({
                "groupVersion": required_string("\"group/version\"."),
                "version": required_string("The version alone."),
            }),
            &["groupVersion", "version"],
        ),
    );
    d.insert(
        meta("ServerAddressByClientCIDR"),
        object(
            "Where clients in a network should reach the server.",
            json!({
                "clientCIDR": required_string("The client network the address applies to."),
                "serverAddress": required_string("host:port of the server for those clients."),
            }),
            &["clientCIDR", "serverAddress"],
        ),
    );
    d.insert(
        meta("APIGroup"),
        with_gvk(
            object(
                "An API group, its versions and the preferred one.",
                json!({
                    "apiVersion": api_version_property(),
                    "kind": kind_property(),
                    "name": required_string("The group's name."),
                    "preferredVersion": f.ref_property(&meta("GroupVersionForDiscovery"), Some("The version clients should use."), true),
                    "serverAddressByClientCIDRs": array_of(f.reference(&meta("ServerAddressByClientCIDR")), "Addresses of the server by client network.", "atomic"),
                    "versions": array_of(f.reference(&meta("GroupVersionForDiscovery")), "The versions served.", "atomic"),
                }),
                &["name", "versions"],
            ),
            "",
            "v1",
            "APIGroup",
        ),
    );
    d.insert(
        meta("APIGroupList"),
        with_gvk(
            object(
                "The API groups a server serves.",
                json!({
                    "apiVersion": api_version_property(),
                    "groups": array_of(f.reference(&meta("APIGroup")), "The groups.", "atomic"),
                    "kind": kind_property(),
                }),
                &["groups"],
            ),
            "",
            "v1",
            "APIGroupList",
        ),
    );
    d.insert(
        meta("APIResource"),
        object(
            "A resource served in a group/version.",
            json!({
                "categories": array_of(json!({ "type": "string", "default": "" }), "Groupings the resource belongs to.", "atomic"),
                "group": string("The group of the resource's kind, when it differs from the containing group."),
                "kind": required_string("The kind of the resource's objects."),
                "name": required_string("The plural resource name."),
                "namespaced": json!({ "description": "Whether the resource is namespaced.", "type": "boolean", "default": false }),
                "shortNames": array_of(json!({ "type": "string", "default": "" }), "Abbreviations of the name.", "atomic"),
                "singularName": required_string("The singular name; empty here, clients derive it from the kind."),
                "storageVersionHash": string("A hash of the storage version, when exposed."),
                "verbs": json!({ "description": "The verbs the resource supports.", "type": "array", "items": { "type": "string", "default": "" } }),
                "version": string("The version of the resource's kind, when it differs from the containing version."),
            }),
            &["name", "singularName", "namespaced", "kind", "verbs"],
        ),
    );
    d.insert(
        meta("APIResourceList"),
        with_gvk(
            object(
                "The resources served in one group/version.",
                json!({
                    "apiVersion": api_version_property(),
                    "groupVersion": required_string("The group/version the resources belong to."),
                    "kind": kind_property(),
                    "resources": array_of(f.reference(&meta("APIResource")), "The resources.", "atomic"),
                }),
                &["groupVersion", "resources"],
            ),
            "",
            "v1",
            "APIResourceList",
        ),
    );
    d.insert(
        VERSION_INFO.into(),
        object(
            "Version information of the server: the Kubernetes library version it is built with.",
            json!({
                "buildDate": required_string("When the binary was built."),
                "compiler": required_string("The compiler that built the binary."),
                "emulationMajor": string("Major version of the emulated Kubernetes version."),
                "emulationMinor": string("Minor version of the emulated Kubernetes version."),
                "gitCommit": required_string("The commit the binary was built from."),
                "gitTreeState": required_string("Whether the tree was clean."),
                "gitVersion": required_string("The version string."),
                "goVersion": required_string("The toolchain version."),
                "major": required_string("Major version."),
                "minCompatibilityMajor": string("Major version of the oldest compatible release."),
                "minCompatibilityMinor": string("Minor version of the oldest compatible release."),
                "minor": required_string("Minor version."),
                "platform": required_string("OS/architecture."),
            }),
            &[
                "major",
                "minor",
                "gitVersion",
                "gitCommit",
                "gitTreeState",
                "buildDate",
                "goVersion",
                "compiler",
                "platform",
            ],
        ),
    );

    // The metrics API.
    let usage = json!({
        "description": "Usage by resource name: \"cpu\" in cores and \"memory\" (the working set) in bytes.",
        "type": "object",
        "additionalProperties": f.reference(QUANTITY),
    });
    let timestamp = f.ref_property(
        &meta("Time"),
        Some("The end of the interval the usage was measured over, [timestamp-window, timestamp]."),
        false,
    );
    let window = f.reference(&meta("Duration"));
    let object_meta = f.ref_property(&meta("ObjectMeta"), Some("The object's metadata."), true);
    let list_meta = f.ref_property(&meta("ListMeta"), Some("The list's metadata."), true);
    d.insert(
        metrics("ContainerMetrics"),
        object(
            "Resource usage of one container.",
            json!({
                "name": required_string("The container's name, as in pod.spec.containers."),
                "usage": usage,
            }),
            &["name", "usage"],
        ),
    );
    d.insert(
        metrics("NodeMetrics"),
        with_gvk(
            object(
                "Resource usage of a node.",
                json!({
                    "apiVersion": api_version_property(),
                    "kind": kind_property(),
                    "metadata": object_meta,
                    "timestamp": timestamp,
                    "usage": usage,
                    "window": window,
                }),
                &["timestamp", "window", "usage"],
            ),
            super::discovery::GROUP,
            super::discovery::VERSION,
            "NodeMetrics",
        ),
    );
    let containers = array_of(
        f.reference(&metrics("ContainerMetrics")),
        "Usage of each container, all measured over the same window.",
        "atomic",
    );
    d.insert(
        metrics("PodMetrics"),
        with_gvk(
            object(
                "Resource usage of a pod's containers.",
                json!({
                    "apiVersion": api_version_property(),
                    "containers": containers,
                    "kind": kind_property(),
                    "metadata": object_meta,
                    "timestamp": timestamp,
                    "window": window,
                }),
                &["timestamp", "window", "containers"],
            ),
            super::discovery::GROUP,
            super::discovery::VERSION,
            "PodMetrics",
        ),
    );
    for (list, item, what) in [
        ("NodeMetricsList", "NodeMetrics", "node"),
        ("PodMetricsList", "PodMetrics", "pod"),
    ] {
        d.insert(
            metrics(list),
            with_gvk(
                object(
                    &format!("A list of {item}."),
                    json!({
                        "apiVersion": api_version_property(),
                        "items": { "description": format!("The {what} metrics."), "type": "array", "items": f.reference(&metrics(item)) },
                        "kind": kind_property(),
                        "metadata": list_meta,
                    }),
                    &["items"],
                ),
                super::discovery::GROUP,
                super::discovery::VERSION,
                list,
            ),
        );
    }
    d
}

// ---------------------------------------------------------------------------------------
// Routes.

/// Which media types a route consumes and produces.
#[derive(Debug, Clone, Copy)]
enum Media {
    /// Discovery documents: the API machinery's three serializers.
    Discovery,
    Get,
    /// Lists also advertise the watch stream types (the storages do not implement watch,
    /// but the route is generic).
    List,
    Version,
}

const SERIALIZERS: [&str; 3] = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const LIST_TYPES: [&str; 5] = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];

impl Media {
    fn consumes(self) -> &'static [&'static str] {
        match self {
            Media::Discovery => &SERIALIZERS,
            Media::Get | Media::List => &["*/*"],
            Media::Version => &["application/json"],
        }
    }

    fn produces(self) -> &'static [&'static str] {
        match self {
            Media::Discovery | Media::Get => &SERIALIZERS,
            Media::List => &LIST_TYPES,
            Media::Version => &["application/json"],
        }
    }
}

/// A request parameter declared on a path.
#[derive(Debug, Clone, Copy)]
struct Param {
    name: &'static str,
    in_path: bool,
    ty: &'static str,
    description: &'static str,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        in_path: false,
        ty,
        description,
    }
}

const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', the output is indented. Defaults to 'false' unless the user-agent is a browser or a command-line HTTP tool (curl, wget).",
);
const NAMESPACE: Param = Param {
    name: "namespace",
    in_path: true,
    ty: "string",
    description: "The namespace of the objects.",
};

/// The list options every list route accepts (metav1.ListOptions); sorted by name.
const LIST_PARAMS: [Param; 11] = [
    query(
        "allowWatchBookmarks",
        "boolean",
        "Asks for BOOKMARK events on a watch; ignored here.",
    ),
    query(
        "continue",
        "string",
        "The token of the next page of a paginated list; accepted and ignored here (all items are returned).",
    ),
    query(
        "fieldSelector",
        "string",
        "Restricts the list by field: metadata.name and metadata.namespace, with =, == and !=.",
    ),
    query(
        "labelSelector",
        "string",
        "Restricts the list by label, in the Kubernetes label-selector syntax.",
    ),
    query(
        "limit",
        "integer",
        "The maximum number of items to return; accepted and ignored here (all items are returned).",
    ),
    PRETTY,
    query(
        "resourceVersion",
        "string",
        "The version of the collection to read from; accepted and ignored here.",
    ),
    query(
        "resourceVersionMatch",
        "string",
        "How resourceVersion applies: Exact or NotOlderThan.",
    ),
    query(
        "sendInitialEvents",
        "boolean",
        "Asks a watch to start with synthetic events for the current state; only valid with watch.",
    ),
    query(
        "timeoutSeconds",
        "integer",
        "A timeout for the list or watch call.",
    ),
    query(
        "watch",
        "boolean",
        "Asks for a stream of changes; not supported by this API (405).",
    ),
];

/// One GET route as the OpenAPI documents describe it.
#[derive(Debug)]
struct Route {
    path: &'static str,
    /// The v3 document (web-service root) the route belongs to.
    root: &'static str,
    operation_id: &'static str,
    description: String,
    tag: &'static str,
    response: String,
    media: Media,
    params: Vec<Param>,
    /// `x-kubernetes-action` and the kind for `x-kubernetes-group-version-kind`.
    action: Option<(&'static str, &'static str)>,
}

/// The v3 roots, in discovery order (sorted).
const ROOTS: [&str; 4] = [
    "apis",
    "apis/metrics.k8s.io",
    "apis/metrics.k8s.io/v1beta1",
    "version",
];

fn routes() -> Vec<Route> {
    let name = |kind: &'static str| Param {
        name: "name",
        in_path: true,
        ty: "string",
        description: if kind == "NodeMetrics" {
            "The name of the NodeMetrics."
        } else {
            "The name of the PodMetrics."
        },
    };
    let list_params = |namespaced: bool| {
        let mut params = LIST_PARAMS.to_vec();
        if namespaced {
            params.push(NAMESPACE);
            params.sort_by_key(|p| p.name);
        }
        params
    };
    let group_version = "apis/metrics.k8s.io/v1beta1";
    let resource = |path, operation_id, list: bool, kind: &'static str, params| Route {
        path,
        root: group_version,
        operation_id,
        description: if list {
            format!("list objects of kind {kind}")
        } else {
            format!("read the specified {kind}")
        },
        tag: "metrics_v1beta1",
        response: format!("{METRICS}{kind}{}", if list { "List" } else { "" }),
        media: if list { Media::List } else { Media::Get },
        params,
        action: Some((if list { "list" } else { "get" }, kind)),
    };
    let discovery =
        |path, root, operation_id, description: &str, tag, response: String, media| Route {
            path,
            root,
            operation_id,
            description: description.to_owned(),
            tag,
            response,
            media,
            params: Vec::new(),
            action: None,
        };
    vec![
        discovery(
            "/apis/",
            "apis",
            "getAPIVersions",
            "get available API versions",
            "apis",
            format!("{META}APIGroupList"),
            Media::Discovery,
        ),
        discovery(
            "/apis/metrics.k8s.io/",
            "apis/metrics.k8s.io",
            "getMetricsAPIGroup",
            "get information of a group",
            "metrics",
            format!("{META}APIGroup"),
            Media::Discovery,
        ),
        discovery(
            "/apis/metrics.k8s.io/v1beta1/",
            group_version,
            "getMetricsV1beta1APIResources",
            "get available resources",
            "metrics_v1beta1",
            format!("{META}APIResourceList"),
            Media::Discovery,
        ),
        resource(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
            "listMetricsV1beta1NamespacedPodMetrics",
            true,
            "PodMetrics",
            list_params(true),
        ),
        resource(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}",
            "readMetricsV1beta1NamespacedPodMetrics",
            false,
            "PodMetrics",
            vec![name("PodMetrics"), NAMESPACE, PRETTY],
        ),
        resource(
            "/apis/metrics.k8s.io/v1beta1/nodes",
            "listMetricsV1beta1NodeMetrics",
            true,
            "NodeMetrics",
            list_params(false),
        ),
        resource(
            "/apis/metrics.k8s.io/v1beta1/nodes/{name}",
            "readMetricsV1beta1NodeMetrics",
            false,
            "NodeMetrics",
            vec![name("NodeMetrics"), PRETTY],
        ),
        resource(
            "/apis/metrics.k8s.io/v1beta1/pods",
            "listMetricsV1beta1PodMetricsForAllNamespaces",
            true,
            "PodMetrics",
            list_params(false),
        ),
        discovery(
            "/version/",
            "version",
            "getCodeVersion",
            "get the code version",
            "version",
            VERSION_INFO.to_owned(),
            Media::Version,
        ),
    ]
}

fn parameter(f: Flavor, p: &Param) -> Value {
    // kube-openapi marks every parameter `uniqueItems: true`; kept for parity.
    let mut param = match f {
        Flavor::V2 => {
            json!({ "name": p.name, "in": if p.in_path { "path" } else { "query" }, "description": p.description, "type": p.ty, "uniqueItems": true })
        }
        Flavor::V3 => {
            json!({ "name": p.name, "in": if p.in_path { "path" } else { "query" }, "description": p.description, "schema": { "type": p.ty, "uniqueItems": true } })
        }
    };
    if p.in_path {
        param["required"] = true.into();
    }
    param
}

fn operation(f: Flavor, route: &Route) -> Value {
    let schema = f.reference(&route.response);
    let mut op = json!({
        "description": route.description,
        "operationId": route.operation_id,
        "tags": [route.tag],
    });
    match f {
        Flavor::V2 => {
            op["consumes"] = json!(route.media.consumes());
            op["produces"] = json!(route.media.produces());
            op["schemes"] = json!(["https"]);
            op["responses"] = json!({ "200": { "description": "OK", "schema": schema }, "401": { "description": "Unauthorized" } });
        }
        Flavor::V3 => {
            let content: Map<String, Value> = route
                .media
                .produces()
                .iter()
                .map(|mt| ((*mt).to_owned(), json!({ "schema": schema })))
                .collect();
            op["responses"] = json!({ "200": { "description": "OK", "content": content }, "401": { "description": "Unauthorized" } });
        }
    }
    if let Some((action, kind)) = route.action {
        op["x-kubernetes-action"] = action.into();
        op["x-kubernetes-group-version-kind"] =
            gvk(super::discovery::GROUP, super::discovery::VERSION, kind);
    }
    op
}

fn paths<'r>(f: Flavor, routes: impl Iterator<Item = &'r Route>) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let mut item = json!({ "get": operation(f, route) });
        if !route.params.is_empty() {
            item["parameters"] = route.params.iter().map(|p| parameter(f, p)).collect();
        }
        paths.insert(route.path.to_owned(), item);
    }
    Value::Object(paths)
}

/// Every `$ref` target named anywhere in `value`.
fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => {
                        out.insert(target.clone());
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The definitions `root` reaches, transitively (kube-openapi includes no others).
fn reachable(f: Flavor, all: &Map<String, Value>, root: &Value) -> Map<String, Value> {
    let prefix = f.ref_prefix();
    let mut out = Map::new();
    let mut pending = BTreeSet::new();
    collect_refs(root, &mut pending);
    while let Some(target) = pending.pop_first() {
        let Some(name) = target.strip_prefix(prefix) else {
            continue;
        };
        if out.contains_key(name) {
            continue;
        }
        // Every reference is built from `definitions`, so a miss is a bug; tests check it.
        let Some(schema) = all.get(name) else {
            continue;
        };
        collect_refs(schema, &mut pending);
        out.insert(name.to_owned(), schema.clone());
    }
    out
}

fn swagger(version: &str, routes: &[Route]) -> Value {
    let paths = paths(Flavor::V2, routes.iter());
    let definitions = reachable(Flavor::V2, &definitions(Flavor::V2), &paths);
    json!({ "swagger": "2.0", "info": { "title": TITLE, "version": version }, "paths": paths, "definitions": definitions })
}

fn openapi3(version: &str, routes: &[Route], root: &str, all: &Map<String, Value>) -> Value {
    let paths = paths(Flavor::V3, routes.iter().filter(|r| r.root == root));
    let schemas = reachable(Flavor::V3, all, &paths);
    json!({ "openapi": "3.0.0", "info": { "title": TITLE, "version": version }, "paths": paths, "components": { "schemas": schemas } })
}

// ---------------------------------------------------------------------------------------
// Serving.

/// A served document: compact JSON (no trailing newline, as `json.Marshal` gives), its
/// uppercase hex SHA-512 and the quoted ETag.
struct Document {
    body: Vec<u8>,
    hash: String,
    etag: HeaderValue,
}

impl Document {
    fn new(value: &Value) -> Document {
        let body = marshal(value);
        let hash = sha512_hex(&body);
        let etag = HeaderValue::from_str(&format!("\"{hash}\""))
            .expect("a quoted hex digest is a valid header value");
        Document { body, hash, etag }
    }

    fn etag(&self) -> &str {
        self.etag.to_str().expect("built from ASCII")
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("len", &self.body.len())
            .field("hash", &self.hash)
            .finish()
    }
}

/// What an OpenAPI request carries that decides its answer.
#[derive(Debug, Clone, Copy)]
pub struct OpenApiRequest<'a> {
    /// The request path without the query.
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The first `Accept` header, raw.
    pub accept: Option<&'a str>,
    /// The first `If-None-Match` header, raw.
    pub if_none_match: Option<&'a str>,
    /// The wall-clock time of the request (for `Expires`).
    pub now: Timestamp,
}

/// Every OpenAPI document of the server, built once at start.
#[derive(Debug)]
pub struct OpenApi {
    v2: Document,
    v3_discovery: Document,
    /// `(root, document)` in [`ROOTS`] order.
    v3: Vec<(&'static str, Document)>,
}

impl OpenApi {
    /// Builds every document for the release tag `release` (see [`info_version`]).
    pub fn new(release: &str) -> OpenApi {
        let version = info_version(release);
        let routes = routes();
        let v2 = Document::new(&swagger(version, &routes));
        let all = definitions(Flavor::V3);
        let v3: Vec<(&'static str, Document)> = ROOTS
            .iter()
            .map(|root| {
                (
                    *root,
                    Document::new(&openapi3(version, &routes, root, &all)),
                )
            })
            .collect();
        // Go's url.Values.Encode would escape the hash; uppercase hex needs none.
        let discovery: Map<String, Value> = v3
            .iter()
            .map(|(root, doc)| {
                (
                    (*root).to_owned(),
                    json!({ "serverRelativeURL": v3_url(root, &doc.hash) }),
                )
            })
            .collect();
        let v3_discovery = Document::new(&json!({ "paths": discovery }));
        OpenApi {
            v2,
            v3_discovery,
            v3,
        }
    }

    /// The Swagger 2.0 document and its quoted ETag.
    pub fn v2(&self) -> (&[u8], &str) {
        (&self.v2.body, self.v2.etag())
    }

    /// The OpenAPI v3 discovery document and its quoted ETag.
    pub fn v3_discovery(&self) -> (&[u8], &str) {
        (&self.v3_discovery.body, self.v3_discovery.etag())
    }

    /// The OpenAPI 3.0 document of a root (`apis/metrics.k8s.io/v1beta1`, ...) and its
    /// hash (unquoted).
    pub fn v3(&self, root: &str) -> Option<(&[u8], &str)> {
        self.v3
            .iter()
            .find(|(r, _)| *r == root)
            .map(|(_, doc)| (doc.body.as_slice(), doc.hash.as_str()))
    }

    /// Answers `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<root>`; `None` for any other
    /// path. Like upstream's handlers it ignores the method. The body goes into `body`
    /// (cleared first).
    pub fn respond(&self, req: &OpenApiRequest<'_>, body: &mut Vec<u8>) -> Option<Response<()>> {
        body.clear();
        if req.path == V2_PATH {
            Some(self.respond_v2(req, body))
        } else if req.path == V3_PATH {
            Some(serve(
                &self.v3_discovery,
                req.if_none_match,
                head(StatusCode::OK),
                body,
            ))
        } else {
            let root = req.path.strip_prefix(V3_PATH)?.strip_prefix('/')?;
            Some(self.respond_v3_root(root, req, body))
        }
    }

    fn respond_v2(&self, req: &OpenApiRequest<'_>, body: &mut Vec<u8>) -> Response<()> {
        let response = vary_accept(head(StatusCode::OK));
        if accepts_json(&accept_or_any(req.accept)) {
            serve(&self.v2, req.if_none_match, response, body)
        } else {
            with_status(response, StatusCode::NOT_ACCEPTABLE)
        }
    }

    fn respond_v3_root(
        &self,
        root: &str,
        req: &OpenApiRequest<'_>,
        body: &mut Vec<u8>,
    ) -> Response<()> {
        let response = vary_accept(head(StatusCode::OK));
        let accept = accept_or_any(req.accept);
        // Upstream quirk: an Accept with no parsable clause gets an empty 200.
        if parse_accept(&accept).is_empty() {
            return response;
        }
        if !accepts_json(&accept) {
            return with_status(response, StatusCode::NOT_ACCEPTABLE);
        }
        // Upstream quirk: an unknown root gets an empty 200 (spec 4.8 allows a 404).
        let Some((_, doc)) = self.v3.iter().find(|(r, _)| *r == root) else {
            return response;
        };
        let mut response = response;
        if let Some(hash) =
            query_value(req.query.unwrap_or_default(), "hash").filter(|h| !h.is_empty())
        {
            if hash != doc.hash {
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                headers.insert(header::ETAG, doc.etag.clone());
                headers.insert(
                    header::LOCATION,
                    HeaderValue::from_str(&v3_url(root, &doc.hash))
                        .expect("known roots and hex are valid header bytes"),
                );
                return with_status(response, StatusCode::MOVED_PERMANENTLY);
            }
            let headers = response.headers_mut();
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            headers.insert(
                header::EXPIRES,
                HeaderValue::from_str(&expires_in_a_year(req.now)).expect("an HTTP date is ASCII"),
            );
        }
        serve(doc, req.if_none_match, response, body)
    }
}

/// `/openapi/v3/<root>?hash=<hash>`.
fn v3_url(root: &str, hash: &str) -> String {
    format!("{V3_PATH}/{root}?hash={hash}")
}

fn head(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    // The generic server's default for handlers that set no policy (spec 4.13).
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

fn vary_accept(mut response: Response<()>) -> Response<()> {
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

fn with_status(mut response: Response<()>, status: StatusCode) -> Response<()> {
    *response.status_mut() = status;
    response
}

/// kube-openapi serves JSON with its ETag and lets Go's `http.ServeContent` answer a
/// matching `If-None-Match` with 304 (no `Content-Type`, no body).
fn serve(
    doc: &Document,
    if_none_match: Option<&str>,
    mut response: Response<()>,
    body: &mut Vec<u8>,
) -> Response<()> {
    response
        .headers_mut()
        .insert(header::ETAG, doc.etag.clone());
    if not_modified(if_none_match, doc.etag()) {
        return with_status(response, StatusCode::NOT_MODIFIED);
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    body.extend_from_slice(&doc.body);
    response
}

fn accept_or_any(accept: Option<&str>) -> String {
    match accept.map(|a| a.trim_matches([' ', '\t'])) {
        Some(a) if !a.is_empty() => a.to_owned(),
        _ => "*/*".to_owned(),
    }
}

/// kube-openapi's matching: a clause accepts `application/json` when its type is
/// `application` or `*` and its subtype `json` or `*` (quality is not consulted). Its
/// protobuf alternatives are not produced here, so only JSON counts.
fn accepts_json(accept: &str) -> bool {
    parse_accept(accept)
        .iter()
        .any(|c| matches!(c.kind, "application" | "*") && matches!(c.subtype, "json" | "*"))
}

/// Go's `http.ServeContent` rule for `If-None-Match`: a comma-separated list of entity
/// tags compared weakly (`W/` ignored), or `*`.
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(mut rest) = if_none_match else {
        return false;
    };
    loop {
        rest = rest.trim_matches([' ', '\t', '\r', '\n']);
        if rest.is_empty() {
            return false;
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
            continue;
        }
        if rest.starts_with('*') {
            return true;
        }
        let Some((tag, after)) = scan_etag(rest) else {
            return false;
        };
        if tag.strip_prefix("W/").unwrap_or(tag) == etag.strip_prefix("W/").unwrap_or(etag) {
            return true;
        }
        rest = after;
    }
}

/// Splits one entity tag (`"..."` or `W/"..."`) off the front of `s`.
fn scan_etag(s: &str) -> Option<(&str, &str)> {
    let start = if s.starts_with("W/") { 2 } else { 0 };
    let bytes = s.as_bytes();
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    for (i, &b) in bytes.iter().enumerate().skip(start + 1) {
        match b {
            b'"' => return Some((&s[..=i], &s[i + 1..])),
            0x21 | 0x23..=0x7e | 0x80..=0xff => {}
            _ => return None,
        }
    }
    None
}

/// The first value of `key` in a query string, percent-decoded (`+` is a space), as Go's
/// `url.Values.Get`; pairs Go refuses (a `;` in them, bad escapes) are skipped.
fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (unescape(k)? == key).then(|| unescape(v)).flatten()
        })
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (hi, lo) = (hex(bytes.get(i + 1))?, hex(bytes.get(i + 2))?);
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Upstream's `Expires`: `now` plus one calendar year (Go's `AddDate(1, 0, 0)`, so 29
/// February becomes 1 March) in `time.RFC1123` layout with the zone the process runs in,
/// which is UTC in the container: `Sun, 01 Aug 2027 10:00:07 UTC`.
fn expires_in_a_year(now: Timestamp) -> String {
    let stamp = now.to_rfc3339_secs();
    let later = stamp
        .split_once('-')
        .and_then(|(year, rest)| {
            let next = year.parse::<i64>().ok()? + 1;
            let shifted = Timestamp::parse_rfc3339(&format!("{next:04}-{rest}"));
            // 29 February of a leap year: the day after 28 February of the next year.
            shifted.or_else(|| {
                Timestamp::parse_rfc3339(&format!(
                    "{next:04}-{}",
                    rest.replacen("02-29", "03-01", 1)
                ))
            })
        })
        .unwrap_or_else(|| now.saturating_add(std::time::Duration::from_secs(365 * 86_400)));
    rfc1123_utc(later)
}

fn rfc1123_utc(t: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `YYYY-MM-DDTHH:MM:SSZ`, all ASCII.
    let stamp = t.to_rfc3339_secs();
    let (date, time) = stamp
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or_default();
    let mut parts = date.rsplitn(3, '-');
    let (day, month, year) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let month = month
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[t.unix_secs().div_euclid(86_400).rem_euclid(7) as usize];
    format!("{weekday}, {day} {month} {year} {time} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openapi() -> OpenApi {
        OpenApi::new("v0.9.0-rc.1-dirty")
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    fn request(path: &str) -> OpenApiRequest<'_> {
        OpenApiRequest {
            path,
            query: None,
            accept: None,
            if_none_match: None,
            now: Timestamp::from_unix_secs(1_785_578_407),
        }
    }

    fn header(response: &Response<()>, name: header::HeaderName) -> Option<&str> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    /// Every `$ref` in `doc` names a schema present under `container`.
    fn assert_refs_resolve(doc: &Value, prefix: &str, container: &Value) {
        let mut refs = BTreeSet::new();
        collect_refs(doc, &mut refs);
        assert!(!refs.is_empty());
        for target in refs {
            let name = target
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{target} lacks {prefix}"));
            assert!(container.get(name).is_some(), "{target} does not resolve");
        }
    }

    const OPERATION_IDS: [&str; 5] = [
        "readMetricsV1beta1NodeMetrics",
        "listMetricsV1beta1NodeMetrics",
        "readMetricsV1beta1NamespacedPodMetrics",
        "listMetricsV1beta1NamespacedPodMetrics",
        "listMetricsV1beta1PodMetricsForAllNamespaces",
    ];

    fn operations(doc: &Value) -> Vec<(&str, &Value)> {
        doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(path, item)| (path.as_str(), &item["get"]))
            .collect()
    }

    #[test]
    fn info_version_is_cut_at_the_first_dash() {
        assert_eq!(info_version("v0.9.0"), "v0.9.0");
        assert_eq!(info_version("v0.9.0-rc.1-dirty"), "v0.9.0");
        assert_eq!(info_version("v0.0.0-master+$Format:%H$"), "v0.0.0");
        assert_eq!(info_version(""), "v0.0.0");
        let doc = parse(openapi().v2().0);
        assert_eq!(
            doc["info"],
            json!({ "title": "Kubernetes metrics-server", "version": "v0.9.0" })
        );
    }

    #[test]
    fn v2_document_shape() {
        let doc = parse(openapi().v2().0);
        assert_eq!(doc["swagger"], "2.0");
        let ops = operations(&doc);
        let ids: Vec<&str> = ops
            .iter()
            .filter_map(|(_, op)| op["operationId"].as_str())
            .collect();
        for id in OPERATION_IDS.iter().chain(&[
            "getAPIVersions",
            "getMetricsAPIGroup",
            "getMetricsV1beta1APIResources",
            "getCodeVersion",
        ]) {
            assert!(ids.contains(id), "{id}");
        }
        assert_eq!(ops.len(), 9);
        for (path, op) in &ops {
            assert_eq!(
                op["responses"]["401"]["description"], "Unauthorized",
                "{path}"
            );
            assert_eq!(op["schemes"], json!(["https"]));
            if path.contains("/nodes") || path.ends_with("/pods") || path.ends_with("{name}") {
                let kind = if path.contains("nodes") {
                    "NodeMetrics"
                } else {
                    "PodMetrics"
                };
                assert_eq!(
                    op["x-kubernetes-group-version-kind"],
                    json!({ "group": "metrics.k8s.io", "kind": kind, "version": "v1beta1" }),
                    "{path}"
                );
                assert_eq!(op["tags"], json!(["metrics_v1beta1"]));
            }
        }
        let list = &doc["paths"]["/apis/metrics.k8s.io/v1beta1/nodes"];
        assert_eq!(list["get"]["x-kubernetes-action"], "list");
        assert_eq!(
            list["get"]["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetricsList"
        );
        assert!(
            list["get"]["produces"]
                .as_array()
                .expect("produces")
                .contains(&json!("application/json;stream=watch"))
        );
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
            "timeoutSeconds",
            "watch",
            "pretty",
            "allowWatchBookmarks",
            "sendInitialEvents",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        let get = &doc["paths"]["/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}"];
        assert_eq!(get["get"]["x-kubernetes-action"], "get");
        let params = get["parameters"].as_array().expect("params");
        assert_eq!(
            params
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect::<Vec<_>>(),
            ["name", "namespace", "pretty"]
        );
        assert!(
            params
                .iter()
                .filter(|p| p["in"] == "path")
                .all(|p| p["required"] == true)
        );
        assert_eq!(
            doc["paths"]["/version/"]["get"]["produces"],
            json!(["application/json"])
        );
    }

    #[test]
    fn v2_definitions_and_refs() {
        let doc = parse(openapi().v2().0);
        let definitions = &doc["definitions"];
        assert_refs_resolve(&doc, "#/definitions/", definitions);
        for kind in [
            "NodeMetrics",
            "NodeMetricsList",
            "PodMetrics",
            "PodMetricsList",
        ] {
            let def = &definitions[format!("io.k8s.metrics.pkg.apis.metrics.v1beta1.{kind}")];
            assert_eq!(
                def["x-kubernetes-group-version-kind"],
                json!([{ "group": "metrics.k8s.io", "kind": kind, "version": "v1beta1" }]),
                "{kind}"
            );
        }
        let container = &definitions["io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics"];
        assert!(container.get("x-kubernetes-group-version-kind").is_none());
        assert_eq!(container["required"], json!(["name", "usage"]));
        let node = &definitions["io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"];
        assert_eq!(node["required"], json!(["timestamp", "window", "usage"]));
        assert_eq!(
            node["properties"]["usage"]["additionalProperties"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"
        );
        assert_eq!(
            node["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(
            definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"],
            "string"
        );
        assert_eq!(
            definitions["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
            "date-time"
        );
        let pod = &definitions["io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics"];
        assert_eq!(
            pod["properties"]["containers"]["x-kubernetes-list-type"],
            "atomic"
        );
        // Only reachable definitions are included.
        let mut pending = BTreeSet::new();
        collect_refs(&doc["paths"], &mut pending);
        let mut reached = BTreeSet::new();
        while let Some(target) = pending.pop_first() {
            let name = target.trim_start_matches("#/definitions/").to_owned();
            if reached.insert(name.clone()) {
                collect_refs(&definitions[&name], &mut pending);
            }
        }
        let defined: BTreeSet<String> = definitions
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(defined, reached);
        assert!(
            definitions
                .get("io.k8s.apimachinery.pkg.version.Info")
                .is_some()
        );
    }

    #[test]
    fn v3_documents() {
        let api = openapi();
        let discovery = parse(api.v3_discovery().0);
        let paths = discovery["paths"].as_object().expect("paths");
        assert_eq!(paths.keys().map(String::as_str).collect::<Vec<_>>(), ROOTS);
        for root in ROOTS {
            let (body, hash) = api.v3(root).expect("document");
            assert_eq!(
                paths[root]["serverRelativeURL"],
                format!("/openapi/v3/{root}?hash={hash}")
            );
            assert_eq!(hash, sha512_hex(body));
            assert_eq!(hash.len(), 128);
            let doc = parse(body);
            assert_eq!(doc["openapi"], "3.0.0");
            assert_eq!(doc["info"]["title"], TITLE);
            assert_refs_resolve(&doc, "#/components/schemas/", &doc["components"]["schemas"]);
        }
        let doc = parse(api.v3("apis/metrics.k8s.io/v1beta1").expect("document").0);
        let ids: Vec<&str> = operations(&doc)
            .iter()
            .filter_map(|(_, op)| op["operationId"].as_str())
            .collect();
        for id in OPERATION_IDS {
            assert!(ids.contains(&id), "{id}");
        }
        let schemas = &doc["components"]["schemas"];
        for kind in [
            "NodeMetrics",
            "NodeMetricsList",
            "PodMetrics",
            "PodMetricsList",
            "ContainerMetrics",
        ] {
            assert!(
                schemas
                    .get(format!("io.k8s.metrics.pkg.apis.metrics.v1beta1.{kind}"))
                    .is_some(),
                "{kind}"
            );
        }
        let node = &schemas["io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"];
        assert_eq!(
            node["properties"]["metadata"]["allOf"],
            json!([{ "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" }])
        );
        assert_eq!(node["properties"]["metadata"]["default"], json!({}));
        assert_eq!(
            node["properties"]["window"],
            json!({ "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Duration" })
        );
        assert_eq!(
            schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"],
            json!([{ "type": "string" }, { "type": "number" }])
        );
        let list = &doc["paths"]["/apis/metrics.k8s.io/v1beta1/pods"];
        assert_eq!(
            list["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList"
        );
        assert_eq!(
            list["parameters"][0]["schema"],
            json!({ "type": "boolean", "uniqueItems": true })
        );
        // Each root document holds only its own routes and what they reach.
        let version = parse(api.v3("version").expect("document").0);
        assert_eq!(version["paths"].as_object().map(|p| p.len()), Some(1));
        assert_eq!(
            version["components"]["schemas"]
                .as_object()
                .map(|s| s.keys().cloned().collect::<Vec<_>>()),
            Some(vec![VERSION_INFO.to_owned()])
        );
    }

    #[test]
    fn documents_are_deterministic_and_go_safe() {
        let (a, b) = (openapi(), openapi());
        assert_eq!(a.v2(), b.v2());
        assert_eq!(a.v3_discovery(), b.v3_discovery());
        for root in ROOTS {
            assert_eq!(a.v3(root), b.v3(root));
        }
        let (body, etag) = a.v2();
        assert_eq!(etag, format!("\"{}\"", sha512_hex(body)));
        assert_ne!(body.last(), Some(&b'\n'));
        // Nothing Go would escape differently: no HTML-special characters at all.
        for doc in [a.v2().0, a.v3_discovery().0]
            .into_iter()
            .chain(ROOTS.iter().filter_map(|r| a.v3(r).map(|d| d.0)))
        {
            assert!(!doc.iter().any(|b| matches!(b, b'<' | b'>' | b'&')));
        }
        assert_ne!(
            OpenApi::new("v0.9.1").v2().1,
            etag,
            "the version is part of the document"
        );
    }

    #[test]
    fn serving_v2() {
        let api = openapi();
        let mut body = Vec::new();
        let response = api
            .respond(&request("/openapi/v2"), &mut body)
            .expect("ours");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(header(&response, header::ETAG), Some(api.v2().1));
        assert_eq!(header(&response, header::VARY), Some("Accept"));
        assert_eq!(body, api.v2().0);
        let etag = api.v2().1.to_owned();
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".to_owned(),
        ] {
            let req = OpenApiRequest {
                if_none_match: Some(&inm),
                accept: Some("application/json"),
                ..request("/openapi/v2")
            };
            let response = api.respond(&req, &mut body).expect("ours");
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{inm}");
            assert!(body.is_empty());
            assert_eq!(header(&response, header::CONTENT_TYPE), None);
        }
        let req = OpenApiRequest {
            if_none_match: Some("\"stale\""),
            ..request("/openapi/v2")
        };
        assert_eq!(
            api.respond(&req, &mut body).map(|r| r.status()),
            Some(StatusCode::OK)
        );
        for (accept, status) in [
            (
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                StatusCode::NOT_ACCEPTABLE,
            ),
            ("text/html", StatusCode::NOT_ACCEPTABLE),
            (
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json",
                StatusCode::OK,
            ),
            ("*/*", StatusCode::OK),
            ("application/*", StatusCode::OK),
        ] {
            let req = OpenApiRequest {
                accept: Some(accept),
                ..request("/openapi/v2")
            };
            let response = api.respond(&req, &mut body).expect("ours");
            assert_eq!(response.status(), status, "{accept}");
            assert_eq!(body.is_empty(), status != StatusCode::OK);
        }
        assert!(api.respond(&request("/openapi/v2/"), &mut body).is_none());
        assert!(api.respond(&request("/openapi"), &mut body).is_none());
        assert!(api.respond(&request("/version"), &mut body).is_none());
    }

    #[test]
    fn serving_v3_discovery() {
        let api = openapi();
        let mut body = Vec::new();
        let response = api
            .respond(&request("/openapi/v3"), &mut body)
            .expect("ours");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(header(&response, header::ETAG), Some(api.v3_discovery().1));
        assert_eq!(body, api.v3_discovery().0);
        let req = OpenApiRequest {
            if_none_match: Some(api.v3_discovery().1),
            ..request("/openapi/v3")
        };
        assert_eq!(
            api.respond(&req, &mut body).map(|r| r.status()),
            Some(StatusCode::NOT_MODIFIED)
        );
    }

    #[test]
    fn v3_hash_rules() {
        let api = openapi();
        let root = "apis/metrics.k8s.io/v1beta1";
        let path = format!("/openapi/v3/{root}");
        let (doc, hash) = api.v3(root).expect("document");
        let mut body = Vec::new();

        // No hash: the document, cacheable only by ETag.
        let response = api.respond(&request(&path), &mut body).expect("ours");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, doc);
        assert_eq!(
            header(&response, header::CACHE_CONTROL),
            Some("no-cache, private")
        );
        assert_eq!(header(&response, header::EXPIRES), None);
        assert_eq!(
            header(&response, header::ETAG),
            Some(format!("\"{hash}\"").as_str())
        );

        // Current hash: immutable for a year.
        let query = format!("hash={hash}");
        let req = OpenApiRequest {
            query: Some(&query),
            ..request(&path)
        };
        let response = api.respond(&req, &mut body).expect("ours");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CACHE_CONTROL),
            Some("public, immutable")
        );
        assert_eq!(
            header(&response, header::EXPIRES),
            Some("Sun, 01 Aug 2027 10:00:07 UTC")
        );
        assert_eq!(header(&response, header::VARY), Some("Accept"));
        assert_eq!(body, doc);
        let etag = format!("\"{hash}\"");
        let conditional = OpenApiRequest {
            if_none_match: Some(&etag),
            ..req
        };
        let response = api.respond(&conditional, &mut body).expect("ours");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            header(&response, header::CACHE_CONTROL),
            Some("public, immutable")
        );
        assert!(body.is_empty());

        // Stale hash: 301 to the current URL, no body.
        let req = OpenApiRequest {
            query: Some("hash=0123ABCD&x=1"),
            ..request(&path)
        };
        let response = api.respond(&req, &mut body).expect("ours");
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            header(&response, header::LOCATION),
            Some(format!("/openapi/v3/{root}?hash={hash}").as_str())
        );
        assert!(body.is_empty());
        // An empty hash is no hash.
        let req = OpenApiRequest {
            query: Some("hash="),
            ..request(&path)
        };
        assert_eq!(
            api.respond(&req, &mut body).map(|r| r.status()),
            Some(StatusCode::OK)
        );
        assert_eq!(
            query_value("a=1;b=2&hash=%41%2B+", "hash").as_deref(),
            Some("A+ ")
        );
        assert_eq!(query_value("hash=%zz&hash=B", "hash").as_deref(), Some("B"));
    }

    #[test]
    fn v3_accept_and_unknown_roots() {
        let api = openapi();
        let mut body = Vec::new();
        let path = "/openapi/v3/apis/metrics.k8s.io/v1beta1";
        let cases = [
            (Some("text/html"), StatusCode::NOT_ACCEPTABLE, false),
            (
                Some("application/com.github.proto-openapi.spec.v3.v1.0+protobuf"),
                StatusCode::NOT_ACCEPTABLE,
                false,
            ),
            (Some("garbage"), StatusCode::OK, false),
            (Some("application/json"), StatusCode::OK, true),
            (Some(""), StatusCode::OK, true),
        ];
        for (accept, status, has_body) in cases {
            let req = OpenApiRequest {
                accept,
                ..request(path)
            };
            let response = api.respond(&req, &mut body).expect("ours");
            assert_eq!(
                (response.status(), !body.is_empty()),
                (status, has_body),
                "{accept:?}"
            );
            assert_eq!(header(&response, header::VARY), Some("Accept"));
        }
        for unknown in [
            "/openapi/v3/",
            "/openapi/v3/apis/metrics.k8s.io/v1beta1/",
            "/openapi/v3/apis/other.io/v1",
        ] {
            let response = api.respond(&request(unknown), &mut body).expect("ours");
            assert_eq!(
                (response.status(), body.is_empty()),
                (StatusCode::OK, true),
                "{unknown}"
            );
            assert_eq!(header(&response, header::CONTENT_TYPE), None);
        }
    }

    #[test]
    fn if_none_match_parsing() {
        let etag = "\"ABC\"";
        assert!(not_modified(Some("\"ABC\""), etag));
        assert!(not_modified(Some(" W/\"ABC\" "), etag));
        assert!(not_modified(Some("\"x\",\"ABC\""), etag));
        assert!(not_modified(Some("*"), etag));
        assert!(!not_modified(Some("ABC"), etag));
        assert!(!not_modified(Some("\"ABD\""), etag));
        assert!(
            !not_modified(Some("\"A B\", \"ABC\""), etag),
            "a malformed tag stops the scan"
        );
        assert!(!not_modified(Some(""), etag));
        assert!(!not_modified(None, etag));
    }

    #[test]
    fn expires_is_one_calendar_year_later() {
        assert_eq!(
            expires_in_a_year(Timestamp::from_unix_secs(0)),
            "Fri, 01 Jan 1971 00:00:00 UTC"
        );
        let leap_day = Timestamp::parse_rfc3339("2028-02-29T12:30:00Z").expect("valid");
        assert_eq!(expires_in_a_year(leap_day), "Thu, 01 Mar 2029 12:30:00 UTC");
        let new_year = Timestamp::parse_rfc3339("2026-12-31T23:59:59Z").expect("valid");
        assert_eq!(expires_in_a_year(new_year), "Fri, 31 Dec 2027 23:59:59 UTC");
    }
}
