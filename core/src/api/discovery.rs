//! Discovery documents of `metrics.k8s.io`, `/version` and the root index.
//!
//! Everything here is a pure function of its arguments. Bodies are byte-for-byte what
//! upstream's generic API server sends (spec 4.2, 4.9, 4.12): compact JSON plus `\n`,
//! or, when `pretty`, two-space indentation without a trailing newline (spec 2.6). Key
//! order is Go's struct order. Constant documents are built once per process.
//!
//! `GET /apis` is negotiated the way upstream's aggregated-discovery wrapper does it
//! ([`negotiate_apis`]): an Accept clause asking for `apidiscovery.k8s.io/v2`
//! `APIGroupDiscoveryList` wins wherever it appears in the list; otherwise the legacy
//! `APIGroupList` is served, or 406 when no plain JSON/YAML/protobuf clause is left.
//! With the v0.36 libraries `v2beta1` is no longer served; [`DiscoveryRequest`] can
//! turn it back on (older releases did).

use std::fmt::Write as _;
use std::sync::OnceLock;

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use sha2::{Digest, Sha512};

use super::json;
use super::negotiate::Format;
use super::status::Status;
use super::yaml;

/// The API group served.
pub const GROUP: &str = "metrics.k8s.io";
/// The only served version of [`GROUP`].
pub const VERSION: &str = "v1beta1";
/// `<group>/<version>`.
pub const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// Paths this module and [`super::openapi`] register as "listed" for the index document
/// (spec 4.12). Health, `/metrics` and `/statusz` come from their own modules.
pub const LISTED_PATHS: [&str; 7] = [
    "/apis",
    "/apis/metrics.k8s.io",
    "/apis/metrics.k8s.io/v1beta1",
    "/openapi/v2",
    "/openapi/v3",
    "/openapi/v3/",
    "/version",
];

/// Response `Content-Type` of aggregated discovery v2.
pub const AGGREGATED_V2_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Response `Content-Type` of aggregated discovery v2beta1 (only when enabled).
pub const AGGREGATED_V2BETA1_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

const JSON: &str = "application/json";
/// The generic server's default for handlers that set no cache policy (spec 4.13).
const NO_CACHE: &str = "no-cache, private";

// ---------------------------------------------------------------------------------------
// Wire types. Field order is the JSON key order.

/// One served resource; both discovery flavours are rendered from this table.
struct Resource {
    name: &'static str,
    kind: &'static str,
    namespaced: bool,
}

const RESOURCES: [Resource; 2] = [
    Resource {
        name: "nodes",
        kind: "NodeMetrics",
        namespaced: false,
    },
    Resource {
        name: "pods",
        kind: "PodMetrics",
        namespaced: true,
    },
];

/// Upstream's storages implement neither watch nor any write verb.
const VERBS: [&str; 2] = ["get", "list"];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiResource {
    name: &'static str,
    // Upstream's storages return "" on purpose; clients then derive it from the kind.
    singular_name: &'static str,
    namespaced: bool,
    kind: &'static str,
    verbs: [&'static str; 2],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiResourceList {
    kind: &'static str,
    api_version: &'static str,
    group_version: &'static str,
    resources: Vec<ApiResource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupVersionForDiscovery {
    group_version: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct ServerAddressByClientCidr<'a> {
    #[serde(rename = "clientCIDR")]
    client_cidr: &'static str,
    #[serde(rename = "serverAddress")]
    server_address: &'a str,
}

/// `APIGroup`; inside an `APIGroupList` the type meta is absent (Go's `omitempty`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroup<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'static str>,
    name: &'static str,
    versions: [GroupVersionForDiscovery; 1],
    preferred_version: GroupVersionForDiscovery,
    #[serde(
        rename = "serverAddressByClientCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    server_address_by_client_cidrs: Option<[ServerAddressByClientCidr<'a>; 1]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroupList<'a> {
    kind: &'static str,
    api_version: &'static str,
    groups: [ApiGroup<'a>; 1],
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct NameOnly {
    name: &'static str,
}

#[derive(Serialize)]
struct GroupVersionKind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDiscovery {
    resource: &'static str,
    response_kind: GroupVersionKind,
    scope: &'static str,
    singular_resource: &'static str,
    verbs: [&'static str; 2],
}

#[derive(Serialize)]
struct VersionDiscovery {
    version: &'static str,
    resources: Vec<ResourceDiscovery>,
    freshness: &'static str,
}

#[derive(Serialize)]
struct GroupDiscovery {
    metadata: NameOnly,
    versions: [VersionDiscovery; 1],
}

/// `APIGroupDiscoveryList`. Upstream hashes the list before the serializer fills in the
/// type meta, so the ETag input lacks `kind`/`apiVersion`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDiscoveryList {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'static str>,
    metadata: Empty,
    items: [GroupDiscovery; 1],
}

fn group_version() -> GroupVersionForDiscovery {
    GroupVersionForDiscovery {
        group_version: GROUP_VERSION,
        version: VERSION,
    }
}

fn api_group_value(type_meta: bool, server_address: Option<&str>) -> ApiGroup<'_> {
    ApiGroup {
        kind: type_meta.then_some("APIGroup"),
        api_version: type_meta.then_some("v1"),
        name: GROUP,
        versions: [group_version()],
        preferred_version: group_version(),
        server_address_by_client_cidrs: server_address.map(|server_address| {
            [ServerAddressByClientCidr {
                client_cidr: "0.0.0.0/0",
                server_address,
            }]
        }),
    }
}

fn discovery_list(api_version: Option<&'static str>) -> GroupDiscoveryList {
    let resources = RESOURCES
        .iter()
        .map(|r| ResourceDiscovery {
            resource: r.name,
            // Copied from the APIResource, whose group and version are unset.
            response_kind: GroupVersionKind {
                group: "",
                version: "",
                kind: r.kind,
            },
            scope: if r.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            },
            singular_resource: "",
            verbs: VERBS,
        })
        .collect();
    GroupDiscoveryList {
        kind: api_version.map(|_| "APIGroupDiscoveryList"),
        api_version,
        metadata: Empty {},
        items: [GroupDiscovery {
            metadata: NameOnly { name: GROUP },
            versions: [VersionDiscovery {
                version: VERSION,
                resources,
                freshness: "Current",
            }],
        }],
    }
}

// ---------------------------------------------------------------------------------------
// Encoding.

/// Go's `json.Marshal`: compact, no trailing newline, HTML-safe.
pub(crate) fn marshal<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing plain structs, string-keyed maps and `serde_json::Value` cannot fail.
    let out =
        serde_json::to_vec(value).expect("JSON documents built in this module always serialize");
    html_escape(out)
}

/// Kubernetes' JSON serializer: compact plus `\n`, or indented (Go's `MarshalIndent`
/// with two spaces, no trailing newline). serde_json's pretty printer matches Go's
/// byte for byte: `": "`, and `{}`/`[]` for empty containers.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Vec<u8> {
    if pretty {
        let out = serde_json::to_vec_pretty(value)
            .expect("JSON documents built in this module always serialize");
        html_escape(out)
    } else {
        let mut out = marshal(value);
        out.push(b'\n');
        out
    }
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; serde_json does not. In valid
/// JSON those bytes only occur inside strings, so a byte-level rewrite is exact.
fn html_escape(json: Vec<u8>) -> Vec<u8> {
    // 0xE2 also leads other characters; it only makes the slow path run.
    if !json.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xe2)) {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut i = 0;
    while i < json.len() {
        match &json[i..] {
            [b'<', ..] => out.extend_from_slice(b"\\u003c"),
            [b'>', ..] => out.extend_from_slice(b"\\u003e"),
            [b'&', ..] => out.extend_from_slice(b"\\u0026"),
            [0xe2, 0x80, last @ (0xa8 | 0xa9), ..] => {
                out.extend_from_slice(if *last == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            [b, ..] => out.push(*b),
            [] => break,
        }
        i += 1;
    }
    out
}

/// Uppercase hex SHA-512, as upstream's ETags and OpenAPI hashes (`%X` of the digest).
pub(crate) fn sha512_hex(data: &[u8]) -> String {
    let digest = Sha512::digest(data);
    let mut hex = String::with_capacity(128);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02X}");
    }
    hex
}

/// Compact and pretty renderings of one constant document.
struct Both {
    compact: Vec<u8>,
    pretty: Vec<u8>,
}

impl Both {
    fn of<T: Serialize>(value: &T) -> Both {
        Both {
            compact: encode(value, false),
            pretty: encode(value, true),
        }
    }

    fn get(&self, pretty: bool) -> &[u8] {
        if pretty { &self.pretty } else { &self.compact }
    }
}

// ---------------------------------------------------------------------------------------
// Legacy discovery documents.

/// `GET /apis/metrics.k8s.io/v1beta1`: the `APIResourceList` (spec 4.2, case 40).
pub fn api_resource_list(pretty: bool) -> &'static [u8] {
    static DOC: OnceLock<Both> = OnceLock::new();
    DOC.get_or_init(|| {
        Both::of(&ApiResourceList {
            kind: "APIResourceList",
            api_version: "v1",
            group_version: GROUP_VERSION,
            resources: RESOURCES
                .iter()
                .map(|r| ApiResource {
                    name: r.name,
                    singular_name: "",
                    namespaced: r.namespaced,
                    kind: r.kind,
                    verbs: VERBS,
                })
                .collect(),
        })
    })
    .get(pretty)
}

/// `GET /apis/metrics.k8s.io`: the `APIGroup`, without `serverAddressByClientCIDRs`
/// (spec 4.2, case 41).
pub fn api_group(pretty: bool) -> &'static [u8] {
    static DOC: OnceLock<Both> = OnceLock::new();
    DOC.get_or_init(|| Both::of(&api_group_value(true, None)))
        .get(pretty)
}

/// `GET /apis` without aggregated discovery: the `APIGroupList` whose single group
/// carries `serverAddressByClientCIDRs` with `server_address` (see [`server_address`]).
pub fn api_group_list(server_address: &str, pretty: bool) -> Vec<u8> {
    let list = ApiGroupList {
        kind: "APIGroupList",
        api_version: "v1",
        groups: [api_group_value(false, Some(server_address))],
    };
    encode(&list, pretty)
}

/// The `serverAddress` upstream advertises: `--external-hostname`, else
/// `--advertise-address`, else empty, joined with the secure port unless it already has
/// one (Go's `net.JoinHostPort`, so IPv6 gets brackets). Nothing set → `":10250"`.
pub fn server_address(
    external_hostname: &str,
    advertise_address: &str,
    secure_port: u16,
) -> String {
    let host = if external_hostname.is_empty() {
        advertise_address
    } else {
        external_hostname
    };
    if has_port(host) {
        host.to_owned()
    } else if host.contains(':') {
        format!("[{host}]:{secure_port}")
    } else {
        format!("{host}:{secure_port}")
    }
}

/// Whether Go's `net.SplitHostPort` accepts `addr` (`host:port`, `[v6]:port`).
fn has_port(addr: &str) -> bool {
    match addr.strip_prefix('[') {
        Some(rest) => rest.split_once(']').is_some_and(|(host, tail)| {
            !host.contains('[')
                && tail
                    .strip_prefix(':')
                    .is_some_and(|port| !port.contains([':', '[', ']']))
        }),
        None => addr.matches(':').count() == 1 && !addr.contains(['[', ']']),
    }
}

// ---------------------------------------------------------------------------------------
// Aggregated discovery.

/// The aggregated-discovery API version a client negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryVersion {
    /// `apidiscovery.k8s.io/v2`, the only one upstream serves with the v0.36 libraries.
    V2,
    /// `apidiscovery.k8s.io/v2beta1` (same shape), served by older releases.
    V2beta1,
}

impl DiscoveryVersion {
    /// The `Content-Type` of the response (g, v, as; no spaces).
    pub fn content_type(self) -> &'static str {
        match self {
            DiscoveryVersion::V2 => AGGREGATED_V2_CONTENT_TYPE,
            DiscoveryVersion::V2beta1 => AGGREGATED_V2BETA1_CONTENT_TYPE,
        }
    }

    /// The document's `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            DiscoveryVersion::V2 => "apidiscovery.k8s.io/v2",
            DiscoveryVersion::V2beta1 => "apidiscovery.k8s.io/v2beta1",
        }
    }

    fn from_param(v: &str, serve_v2beta1: bool) -> Option<DiscoveryVersion> {
        match v {
            "v2" => Some(DiscoveryVersion::V2),
            "v2beta1" if serve_v2beta1 => Some(DiscoveryVersion::V2beta1),
            _ => None,
        }
    }
}

struct Aggregated {
    /// One per [`DiscoveryVersion`], `V2` first.
    bodies: [Both; 2],
    etag: String,
    etag_header: HeaderValue,
}

fn aggregated() -> &'static Aggregated {
    static DOC: OnceLock<Aggregated> = OnceLock::new();
    DOC.get_or_init(|| {
        let etag = format!("\"{}\"", sha512_hex(&marshal(&discovery_list(None))));
        Aggregated {
            bodies: [DiscoveryVersion::V2, DiscoveryVersion::V2beta1]
                .map(|v| Both::of(&discovery_list(Some(v.api_version())))),
            etag_header: HeaderValue::from_str(&etag)
                .expect("a quoted hex digest is a valid header value"),
            etag,
        }
    })
}

/// The v2 `APIGroupDiscoveryList` (compact plus `\n`) and its quoted ETag, both
/// computed once (spec 4.2, case 43).
pub fn aggregated_discovery() -> (&'static [u8], &'static str) {
    (
        aggregated_discovery_body(DiscoveryVersion::V2, false),
        aggregated_etag(),
    )
}

/// The aggregated-discovery body in `version`, compact or pretty.
pub fn aggregated_discovery_body(version: DiscoveryVersion, pretty: bool) -> &'static [u8] {
    let index = match version {
        DiscoveryVersion::V2 => 0,
        DiscoveryVersion::V2beta1 => 1,
    };
    aggregated().bodies[index].get(pretty)
}

/// The quoted ETag of aggregated discovery: `"` + uppercase hex SHA-512 of the list's
/// compact JSON (as hashed upstream, i.e. without `kind`/`apiVersion`) + `"`. The same
/// for every version and indentation.
pub fn aggregated_etag() -> &'static str {
    &aggregated().etag
}

/// Upstream's conditional-GET rule for aggregated discovery: the whole `If-None-Match`
/// value must equal the quoted ETag (no lists, no weak tags, no `*`).
pub fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match == Some(etag)
}

// ---------------------------------------------------------------------------------------
// Negotiation.

/// How `GET /apis` is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApisChoice {
    /// Aggregated discovery (JSON) in `version`; `pretty` when the clause had `pretty=1`.
    Aggregated {
        version: DiscoveryVersion,
        pretty: bool,
    },
    /// The legacy `APIGroupList` in `format`; `pretty` when the clause had `pretty=1`.
    Legacy { format: Format, pretty: bool },
    /// 406 with the serializer's `NotAcceptable` Status ([`not_acceptable_body`]).
    NotAcceptable,
}

/// Decides how `GET /apis` is answered from its raw Accept header, as upstream v0.36
/// does: aggregated v2 if any clause asks for it, else the legacy document, else 406
/// (e.g. a request whose only clause asks for v2beta1, case 45).
pub fn negotiate_apis(accept: Option<&str>) -> ApisChoice {
    negotiate_apis_with(accept, false)
}

/// [`negotiate_apis`], optionally also accepting the v2beta1 discovery type as older
/// upstream releases did.
pub fn negotiate_apis_with(accept: Option<&str>, serve_v2beta1: bool) -> ApisChoice {
    if let Some((_, Some(version), pretty)) = negotiate(accept, Endpoint::Apis { serve_v2beta1 }) {
        return ApisChoice::Aggregated { version, pretty };
    }
    match negotiate_legacy(accept) {
        Some((format, pretty)) => ApisChoice::Legacy { format, pretty },
        None => ApisChoice::NotAcceptable,
    }
}

/// Negotiation for the plain discovery documents (`/apis/metrics.k8s.io[/v1beta1]`, and
/// `/apis` when no aggregated type is asked for): any clause with `as`/`g`/`v` is
/// skipped. `None` means 406 ([`not_acceptable_body`]); `Some((format, pretty))`
/// otherwise, `pretty` meaning the clause had `pretty=1`.
pub fn negotiate_legacy(accept: Option<&str>) -> Option<(Format, bool)> {
    negotiate(accept, Endpoint::Plain).map(|(format, _, pretty)| (format, pretty))
}

/// The 406 Status of a failed negotiation, indented (upstream cannot render it in the
/// refused type either, so it falls back to `MarshalIndent`); `Content-Type:
/// application/json`.
pub fn not_acceptable_body() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut compact = Vec::new();
        Status::not_acceptable().write_json(&mut compact);
        json::indent(&compact)
    })
}

/// One clause of an Accept header, as `github.com/munnerz/goautoneg` parses it: type
/// and subtype compared case-sensitively, parameters kept verbatim, `q` defaulting to 1.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause<'a> {
    pub(crate) kind: &'a str,
    pub(crate) subtype: &'a str,
    pub(crate) q: f32,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> Clause<'a> {
    /// The last value of `key` (later duplicates overwrite earlier ones in Go's map).
    fn param(&self, key: &str) -> Option<&'a str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// How specifically this clause names `kind/subtype`: 2 exact, 1 `kind/*`, 0 `*/*`.
    fn specificity(&self, kind: &str, subtype: &str) -> Option<u8> {
        match (self.kind, self.subtype) {
            (k, s) if k == kind && s == subtype => Some(2),
            (k, "*") if k == kind => Some(1),
            ("*", "*") => Some(0),
            _ => None,
        }
    }

    /// goautoneg's ordering: higher q first, then concrete before wildcard type, then
    /// concrete before wildcard subtype. Not a strict weak order; only used by the
    /// insertion sort below, exactly as Go's sort runs it.
    fn less(&self, other: &Clause<'_>) -> bool {
        self.q > other.q
            || (self.kind != "*" && other.kind == "*")
            || (self.subtype != "*" && other.subtype == "*")
    }
}

/// Parses an Accept header like goautoneg's `ParseAccept`: comma-separated clauses,
/// spaces trimmed, clauses without `/` (other than `*`) dropped, an unparsable `q`
/// read as 0, then ordered by quality and specificity.
pub(crate) fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    for part in header.split(',') {
        let part = part.trim_matches(' ');
        let mut pieces = part.split(';');
        let range = pieces.next().unwrap_or_default();
        let mut halves = range.split('/');
        let kind = halves.next().unwrap_or_default().trim_matches(' ');
        let subtype = match (halves.next(), halves.next()) {
            (None, _) if kind == "*" => "*",
            (Some(sub), None) => sub.trim_matches(' '),
            _ => continue,
        };
        let mut clause = Clause {
            kind,
            subtype,
            q: 1.0,
            params: Vec::new(),
        };
        for param in pieces {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let key = key.trim_matches(' ');
            if key == "q" {
                clause.q = value.parse().unwrap_or(0.0);
            } else {
                clause.params.push((key, value.trim_matches(' ')));
            }
        }
        clauses.push(clause);
    }
    sort_clauses(&mut clauses);
    clauses
}

/// Go's `sort.Sort` is an insertion sort up to 12 elements, which is what real headers
/// have; it is reproduced exactly there. Longer lists get a stable sort on a total key
/// (Go's pdqsort order is not worth imitating).
fn sort_clauses(clauses: &mut [Clause<'_>]) {
    if clauses.len() <= 12 {
        for i in 1..clauses.len() {
            let mut j = i;
            while j > 0 && clauses[j].less(&clauses[j - 1]) {
                clauses.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        clauses.sort_by(|a, b| {
            b.q.total_cmp(&a.q)
                .then_with(|| (a.kind == "*").cmp(&(b.kind == "*")))
                .then_with(|| (a.subtype == "*").cmp(&(b.subtype == "*")))
        });
    }
}

/// Which endpoint restrictions apply (upstream's `EndpointRestrictions`).
#[derive(Clone, Copy)]
enum Endpoint {
    /// No conversion allowed (`DefaultEndpointRestrictions`).
    Plain,
    /// Only the aggregated-discovery conversion (`DiscoveryEndpointRestrictions`).
    Apis { serve_v2beta1: bool },
}

const FORMATS: [(Format, &str, &str); 3] = [
    (Format::Json, "application", "json"),
    (Format::Yaml, "application", "yaml"),
    (Format::Protobuf, "application", "vnd.kubernetes.protobuf"),
];

/// Upstream's `NegotiateMediaTypeOptions` over JSON, YAML and protobuf. Returns the
/// format, the aggregated-discovery version (only for [`Endpoint::Apis`]) and the
/// clause's `pretty=1`.
fn negotiate(
    accept: Option<&str>,
    endpoint: Endpoint,
) -> Option<(Format, Option<DiscoveryVersion>, bool)> {
    // Go's header reader trims surrounding whitespace; an empty Accept means JSON.
    let header = accept.unwrap_or_default().trim_matches([' ', '\t']);
    if header.is_empty() {
        return match endpoint {
            Endpoint::Plain => Some((Format::Json, None, false)),
            Endpoint::Apis { .. } => None,
        };
    }
    let clauses = parse_accept(header);
    // A format is refused when its most specific matching clause has q <= 0, so
    // `application/json;q=0, */*` refuses JSON but still allows the others.
    let refused = FORMATS.map(|(_, kind, subtype)| {
        let mut best: Option<(u8, bool)> = None;
        for clause in &clauses {
            if let Some(spec) = clause.specificity(kind, subtype)
                && best.is_none_or(|(b, _)| spec > b)
            {
                best = Some((spec, clause.q <= 0.0));
            }
        }
        best.is_some_and(|(_, refused)| refused)
    });
    for clause in clauses.iter().filter(|c| c.q > 0.0) {
        for (&(format, kind, subtype), refused) in FORMATS.iter().zip(refused) {
            if refused || clause.specificity(kind, subtype).is_none() {
                continue;
            }
            if let Some(accepted) = accept_options(clause, format, endpoint) {
                return Some(accepted);
            }
        }
    }
    None
}

/// Upstream's `acceptMediaTypeOptions`: whether the clause's parameters are allowed for
/// `format` on `endpoint`.
fn accept_options(
    clause: &Clause<'_>,
    format: Format,
    endpoint: Endpoint,
) -> Option<(Format, Option<DiscoveryVersion>, bool)> {
    // Only JSON and protobuf have stream serializers, and only `watch` is a schema.
    if let Some(stream) = clause.param("stream").filter(|s| !s.is_empty())
        && (stream != "watch" || format == Format::Yaml)
    {
        return None;
    }
    // No endpoint here allows choosing the server version.
    if clause.param("sv").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let conversion = ["as", "g", "v"].map(|k| clause.param(k));
    let pretty = clause.param("pretty") == Some("1");
    match (endpoint, conversion) {
        (_, [None, None, None]) => match endpoint {
            Endpoint::Plain => Some((format, None, pretty)),
            // Without a conversion the wrapper hands over to the legacy handler.
            Endpoint::Apis { .. } => None,
        },
        // Aggregated discovery is rendered in JSON only here; upstream could also encode
        // it in YAML or protobuf, which no client asks for (spec 4.2 allows skipping).
        (
            Endpoint::Apis { serve_v2beta1 },
            [
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io"),
                Some(v),
            ],
        ) if format == Format::Json => DiscoveryVersion::from_param(v, serve_v2beta1)
            .map(|version| (format, Some(version), pretty)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Responses.

/// What a discovery request carries that decides its answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscoveryRequest<'a> {
    /// The first `Accept` header, raw.
    pub accept: Option<&'a str>,
    /// The first `If-None-Match` header, raw.
    pub if_none_match: Option<&'a str>,
    /// Indentation asked for by the query string or the User-Agent (spec 2.6); a
    /// clause's `pretty=1` is added by negotiation.
    pub pretty: bool,
    /// Also serve aggregated discovery v2beta1 (older upstream releases did; v0.36
    /// answers such requests with 406 or the legacy list).
    pub serve_v2beta1: bool,
}

fn head(
    status: StatusCode,
    content_type: Option<&'static str>,
    cache_control: &'static str,
) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

fn not_acceptable(body: &mut Vec<u8>) -> Response<()> {
    body.extend_from_slice(not_acceptable_body());
    head(StatusCode::NOT_ACCEPTABLE, Some(JSON), NO_CACHE)
}

/// Writes a legacy document: JSON as given, YAML converted from the compact JSON.
/// Protobuf discovery is not produced (spec 4.2 allows skipping it; clients decode the
/// JSON they get), so it is answered in JSON.
fn legacy(
    format: Format,
    compact: &[u8],
    pretty: impl FnOnce() -> Vec<u8>,
    pretty_wanted: bool,
    body: &mut Vec<u8>,
) -> Response<()> {
    if format == Format::Yaml
        && let Some(yaml) = yaml::from_json(compact)
    {
        body.extend_from_slice(&yaml);
        return head(StatusCode::OK, Some("application/yaml"), NO_CACHE);
    }
    if pretty_wanted {
        body.extend_from_slice(&pretty());
    } else {
        body.extend_from_slice(compact);
    }
    head(StatusCode::OK, Some(JSON), NO_CACHE)
}

/// Answers `GET /apis` (and `/apis/`): aggregated discovery with `ETag`, `Vary: Accept`,
/// `Cache-Control: public` and 304 on a matching `If-None-Match`; or the legacy
/// `APIGroupList` advertising `server_address`; or 406. The body goes into `body`
/// (cleared first).
pub fn respond_apis(
    req: &DiscoveryRequest<'_>,
    server_address: &str,
    body: &mut Vec<u8>,
) -> Response<()> {
    body.clear();
    match negotiate_apis_with(req.accept, req.serve_v2beta1) {
        ApisChoice::Aggregated { version, pretty } => {
            let doc = aggregated();
            let status = if etag_matches(req.if_none_match, &doc.etag) {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::OK
            };
            let content_type = (status == StatusCode::OK).then(|| version.content_type());
            let mut response = head(status, content_type, "public");
            response
                .headers_mut()
                .insert(header::ETAG, doc.etag_header.clone());
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            if status == StatusCode::OK {
                body.extend_from_slice(aggregated_discovery_body(version, pretty || req.pretty));
            }
            response
        }
        ApisChoice::Legacy { format, pretty } => {
            let compact = api_group_list(server_address, false);
            legacy(
                format,
                &compact,
                || api_group_list(server_address, true),
                pretty || req.pretty,
                body,
            )
        }
        ApisChoice::NotAcceptable => not_acceptable(body),
    }
}

/// Answers `GET /apis/metrics.k8s.io` with the `APIGroup`, or 406.
pub fn respond_api_group(req: &DiscoveryRequest<'_>, body: &mut Vec<u8>) -> Response<()> {
    body.clear();
    match negotiate_legacy(req.accept) {
        Some((format, pretty)) => legacy(
            format,
            api_group(false),
            || api_group(true).to_vec(),
            pretty || req.pretty,
            body,
        ),
        None => not_acceptable(body),
    }
}

/// Answers `GET /apis/metrics.k8s.io/v1beta1` with the `APIResourceList`, or 406.
pub fn respond_api_resource_list(req: &DiscoveryRequest<'_>, body: &mut Vec<u8>) -> Response<()> {
    body.clear();
    match negotiate_legacy(req.accept) {
        Some((format, pretty)) => legacy(
            format,
            api_resource_list(false),
            || api_resource_list(true).to_vec(),
            pretty || req.pretty,
            body,
        ),
        None => not_acceptable(body),
    }
}

// ---------------------------------------------------------------------------------------
// /version

/// The `/version` document (`k8s.io/apimachinery/pkg/version.Info`). The defaults mirror
/// an upstream release binary, which reports the Kubernetes library version and
/// placeholder git fields (spec 4.9); the server sets `git_version` to its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub major: String,
    pub minor: String,
    /// Omitted when empty, as Go's `omitempty`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub emulation_major: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub emulation_minor: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub min_compatibility_major: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub min_compatibility_minor: String,
    pub git_version: String,
    pub git_commit: String,
    pub git_tree_state: String,
    pub build_date: String,
    pub go_version: String,
    pub compiler: String,
    pub platform: String,
}

impl Default for VersionInfo {
    fn default() -> Self {
        VersionInfo {
            major: "1".into(),
            minor: "36".into(),
            emulation_major: "1".into(),
            emulation_minor: "36".into(),
            min_compatibility_major: "1".into(),
            min_compatibility_minor: "35".into(),
            // component-base's unstamped placeholders.
            git_version: "v0.0.0-master+$Format:%H$".into(),
            git_commit: "$Format:%H$".into(),
            git_tree_state: String::new(),
            build_date: "1970-01-01T00:00:00Z".into(),
            // What the upstream v0.9 release binaries report.
            go_version: "go1.26.4".into(),
            compiler: "gc".into(),
            platform: go_platform(),
        }
    }
}

/// `GOOS/GOARCH` of the target this binary was compiled for.
fn go_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    format!("{os}/{arch}")
}

/// `GET /version`: always indented, no trailing newline, whatever the request asks.
pub fn version_document(info: &VersionInfo) -> Vec<u8> {
    encode(info, true)
}

/// Answers `GET /version` (200, `application/json`).
pub fn respond_version(info: &VersionInfo, body: &mut Vec<u8>) -> Response<()> {
    body.clear();
    body.extend_from_slice(&version_document(info));
    head(StatusCode::OK, Some(JSON), NO_CACHE)
}

// ---------------------------------------------------------------------------------------
// Index

#[derive(Serialize)]
struct RootPaths<'a> {
    paths: Vec<&'a str>,
}

/// The index document `{"paths":[...]}`, sorted and de-duplicated, indented. Pass
/// [`LISTED_PATHS`] plus the other modules' listed paths.
pub fn index_document(paths: &[&str]) -> Vec<u8> {
    let mut paths = paths.to_vec();
    paths.sort_unstable();
    paths.dedup();
    encode(&RootPaths { paths }, true)
}

/// Answers `/` and `/index.html` (200) or an unknown non-API path (404) with the index.
pub fn respond_index(paths: &[&str], status: StatusCode, body: &mut Vec<u8>) -> Response<()> {
    body.clear();
    body.extend_from_slice(&index_document(paths));
    head(status, Some(JSON), NO_CACHE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's examples with the readability whitespace removed (no string in them
    /// contains a space), plus the serializer's newline.
    fn spec_compact(text: &str) -> Vec<u8> {
        let mut out: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        out.push(b'\n');
        out
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("utf-8")
    }

    fn parse(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    /// Pretty output must be the compact document re-indented the way Go does.
    fn assert_pretty_of(pretty: &[u8], compact: &[u8]) {
        assert_ne!(
            pretty.last(),
            Some(&b'\n'),
            "no trailing newline when pretty"
        );
        assert_eq!(pretty, json::indent(compact).as_slice());
        assert!(
            text(pretty)
                .lines()
                .skip(1)
                .all(|l| (l.len() - l.trim_start().len()) % 2 == 0)
        );
    }

    const SPEC_RESOURCE_LIST: &str = r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1","resources":[
 {"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics","verbs":["get","list"]},
 {"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]}"#;

    const SPEC_GROUP: &str = r#"{"kind":"APIGroup","apiVersion":"v1","name":"metrics.k8s.io",
 "versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],
 "preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}}"#;

    const SPEC_GROUP_LIST: &str = r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"metrics.k8s.io",
 "versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],
 "preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"},
 "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":":10250"}]}]}"#;

    const SPEC_AGGREGATED: &str = r#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":[
 {"metadata":{"name":"metrics.k8s.io"},"versions":[{"version":"v1beta1","resources":[
  {"resource":"nodes","responseKind":{"group":"","version":"","kind":"NodeMetrics"},
   "scope":"Cluster","singularResource":"","verbs":["get","list"]},
  {"resource":"pods","responseKind":{"group":"","version":"","kind":"PodMetrics"},
   "scope":"Namespaced","singularResource":"","verbs":["get","list"]}],
  "freshness":"Current"}]}]}"#;

    const AGGREGATOR_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
    const V2BETA1_ONLY: &str =
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

    fn request(accept: Option<&str>) -> DiscoveryRequest<'_> {
        DiscoveryRequest {
            accept,
            ..DiscoveryRequest::default()
        }
    }

    fn header(response: &Response<()>, name: header::HeaderName) -> Option<&str> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    #[test]
    fn api_case_40_api_resource_list() {
        assert_eq!(
            api_resource_list(false),
            spec_compact(SPEC_RESOURCE_LIST).as_slice()
        );
        let mut body = Vec::new();
        let response =
            respond_api_resource_list(&request(Some("application/json, */*")), &mut body);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(body, api_resource_list(false));
        let doc = parse(&body);
        assert_eq!(doc["resources"][0]["namespaced"], false);
        assert_eq!(doc["resources"][1]["kind"], "PodMetrics");
        assert_eq!(doc["resources"][1]["singularName"], "");
    }

    #[test]
    fn api_case_41_api_group() {
        assert_eq!(api_group(false), spec_compact(SPEC_GROUP).as_slice());
        let mut body = Vec::new();
        let response = respond_api_group(&request(None), &mut body);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            parse(&body)["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
        assert!(!text(&body).contains("serverAddressByClientCIDRs"));
    }

    #[test]
    fn api_case_42_api_group_list_with_plain_json() {
        assert_eq!(
            negotiate_apis(Some("application/json")),
            ApisChoice::Legacy {
                format: Format::Json,
                pretty: false
            }
        );
        let address = server_address("", "", 10250);
        assert_eq!(address, ":10250");
        assert_eq!(
            api_group_list(&address, false),
            spec_compact(SPEC_GROUP_LIST)
        );
        let mut body = Vec::new();
        let response = respond_apis(&request(Some("application/json")), &address, &mut body);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(
            header(&response, header::CACHE_CONTROL),
            Some("no-cache, private")
        );
        assert_eq!(header(&response, header::ETAG), None);
        assert_eq!(body, spec_compact(SPEC_GROUP_LIST));
    }

    #[test]
    fn api_case_43_aggregated_v2() {
        let mut body = Vec::new();
        let response = respond_apis(&request(Some(AGGREGATOR_ACCEPT)), ":10250", &mut body);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
        );
        assert_eq!(header(&response, header::ETAG), Some(aggregated_etag()));
        assert_eq!(header(&response, header::VARY), Some("Accept"));
        assert_eq!(header(&response, header::CACHE_CONTROL), Some("public"));
        assert_eq!(body, spec_compact(SPEC_AGGREGATED));
        let doc = parse(&body);
        let version = &doc["items"][0]["versions"][0];
        assert_eq!(
            doc["items"][0]["metadata"],
            serde_json::json!({"name": "metrics.k8s.io"})
        );
        assert_eq!(
            (version["version"].as_str(), version["freshness"].as_str()),
            (Some("v1beta1"), Some("Current"))
        );
        assert_eq!(version["resources"][0]["scope"], "Cluster");
        assert_eq!(
            version["resources"][1]["responseKind"]["kind"],
            "PodMetrics"
        );
        // kubectl appends plain JSON; the aggregated type still wins.
        let kubectl = format!("{AGGREGATOR_ACCEPT},application/json");
        assert_eq!(
            negotiate_apis(Some(&kubectl)),
            ApisChoice::Aggregated {
                version: DiscoveryVersion::V2,
                pretty: false
            }
        );
        let (compact, etag) = aggregated_discovery();
        assert_eq!(
            (compact, etag),
            (spec_compact(SPEC_AGGREGATED).as_slice(), aggregated_etag())
        );
    }

    #[test]
    fn api_case_44_if_none_match_gives_304() {
        let mut body = Vec::new();
        let req = DiscoveryRequest {
            accept: Some(AGGREGATOR_ACCEPT),
            if_none_match: Some(aggregated_etag()),
            ..DiscoveryRequest::default()
        };
        let response = respond_apis(&req, ":10250", &mut body);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(header(&response, header::ETAG), Some(aggregated_etag()));
        assert_eq!(header(&response, header::CONTENT_TYPE), None);
        // Anything but the exact quoted tag is a miss upstream.
        let unquoted = aggregated_etag().trim_matches('"');
        let weak = format!("W/{}", aggregated_etag());
        for miss in [unquoted, weak.as_str(), "*", ""] {
            let req = DiscoveryRequest {
                if_none_match: Some(miss),
                ..req
            };
            assert_eq!(
                respond_apis(&req, ":10250", &mut body).status(),
                StatusCode::OK,
                "{miss}"
            );
        }
    }

    #[test]
    fn api_case_45_v2beta1_only_is_406() {
        assert_eq!(
            negotiate_apis(Some(V2BETA1_ONLY)),
            ApisChoice::NotAcceptable
        );
        let mut body = Vec::new();
        let response = respond_apis(&request(Some(V2BETA1_ONLY)), ":10250", &mut body);
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json")
        );
        let want = "{\n  \"kind\": \"Status\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {},\n  \"status\": \"Failure\",\n  \"message\": \"only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf\",\n  \"reason\": \"NotAcceptable\",\n  \"code\": 406\n}";
        assert_eq!(text(&body), want);
        // With plain JSON beside it the legacy list is served instead.
        let with_json = format!("{V2BETA1_ONLY},application/json");
        assert_eq!(
            negotiate_apis(Some(&with_json)),
            ApisChoice::Legacy {
                format: Format::Json,
                pretty: false
            }
        );
        assert_eq!(
            negotiate_apis(Some(&format!("{V2BETA1_ONLY}, */*"))),
            ApisChoice::Legacy {
                format: Format::Json,
                pretty: false
            }
        );
    }

    #[test]
    fn v2beta1_can_be_served_like_older_releases() {
        assert_eq!(
            negotiate_apis_with(Some(V2BETA1_ONLY), true),
            ApisChoice::Aggregated {
                version: DiscoveryVersion::V2beta1,
                pretty: false
            }
        );
        assert_eq!(
            negotiate_apis_with(Some(AGGREGATOR_ACCEPT), true),
            ApisChoice::Aggregated {
                version: DiscoveryVersion::V2,
                pretty: false
            }
        );
        let mut body = Vec::new();
        let req = DiscoveryRequest {
            accept: Some(V2BETA1_ONLY),
            serve_v2beta1: true,
            ..DiscoveryRequest::default()
        };
        let response = respond_apis(&req, ":10250", &mut body);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some(AGGREGATED_V2BETA1_CONTENT_TYPE)
        );
        assert_eq!(header(&response, header::ETAG), Some(aggregated_etag()));
        assert_eq!(parse(&body)["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let v2 = text(aggregated_discovery_body(DiscoveryVersion::V2, false));
        assert_eq!(
            text(&body),
            v2.replace("apidiscovery.k8s.io/v2\"", "apidiscovery.k8s.io/v2beta1\"")
        );
    }

    #[test]
    fn etag_is_quoted_uppercase_sha512_of_the_list_without_type_meta() {
        let etag = aggregated_etag();
        assert_eq!(etag.len(), 130);
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert!(
            etag[1..129]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        );
        let hashed = text(aggregated_discovery_body(DiscoveryVersion::V2, false))
            .trim_end()
            .replace(
                r#""kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","#,
                "",
            );
        assert!(hashed.starts_with(r#"{"metadata":{},"items":"#));
        assert_eq!(etag, format!("\"{}\"", sha512_hex(hashed.as_bytes())));
        assert_eq!(aggregated_etag(), etag, "stable");
    }

    #[test]
    fn sha512_known_answer() {
        assert_eq!(
            sha512_hex(b"abc"),
            "DDAF35A193617ABACC417349AE20413112E6FA4E89A97EA20A9EEEE64B55D39A2192992A274FC1A836BA3C23A3FEEBBD454D4423643CE80E2A9AC94FA54CA49F"
        );
    }

    #[test]
    fn pretty_variants() {
        assert_pretty_of(api_resource_list(true), api_resource_list(false));
        assert_pretty_of(api_group(true), api_group(false));
        assert_pretty_of(
            &api_group_list(":10250", true),
            &api_group_list(":10250", false),
        );
        assert_pretty_of(
            aggregated_discovery_body(DiscoveryVersion::V2, true),
            aggregated_discovery_body(DiscoveryVersion::V2, false),
        );
        let want = "{\n  \"kind\": \"APIGroup\",\n  \"apiVersion\": \"v1\",\n  \"name\": \"metrics.k8s.io\",\n  \"versions\": [\n    {\n      \"groupVersion\": \"metrics.k8s.io/v1beta1\",\n      \"version\": \"v1beta1\"\n    }\n  ],\n  \"preferredVersion\": {\n    \"groupVersion\": \"metrics.k8s.io/v1beta1\",\n    \"version\": \"v1beta1\"\n  }\n}";
        assert_eq!(text(api_group(true)), want);
        assert!(
            text(aggregated_discovery_body(DiscoveryVersion::V2, true))
                .contains("\"metadata\": {},\n")
        );
    }

    #[test]
    fn pretty_from_request_or_clause() {
        let mut body = Vec::new();
        let req = DiscoveryRequest {
            pretty: true,
            ..request(Some(AGGREGATOR_ACCEPT))
        };
        respond_apis(&req, ":10250", &mut body);
        assert_eq!(body, aggregated_discovery_body(DiscoveryVersion::V2, true));
        respond_api_resource_list(&request(Some("application/json;pretty=1")), &mut body);
        assert_eq!(body, api_resource_list(true));
        let pretty_clause =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;pretty=1";
        assert_eq!(
            negotiate_apis(Some(pretty_clause)),
            ApisChoice::Aggregated {
                version: DiscoveryVersion::V2,
                pretty: true
            }
        );
        respond_apis(
            &DiscoveryRequest {
                pretty: true,
                ..request(Some("*/*"))
            },
            ":10250",
            &mut body,
        );
        assert_eq!(body, api_group_list(":10250", true));
    }

    #[test]
    fn legacy_negotiation_follows_upstream() {
        let json = Some((Format::Json, false));
        assert_eq!(negotiate_legacy(None), json);
        assert_eq!(negotiate_legacy(Some("")), json);
        assert_eq!(negotiate_legacy(Some("*/*")), json);
        assert_eq!(negotiate_legacy(Some("application/*")), json);
        assert_eq!(
            negotiate_legacy(Some("application/yaml")),
            Some((Format::Yaml, false))
        );
        assert_eq!(
            negotiate_legacy(Some("application/vnd.kubernetes.protobuf, */*")),
            Some((Format::Protobuf, false))
        );
        assert_eq!(negotiate_legacy(Some("text/html")), None);
        assert_eq!(
            negotiate_legacy(Some("Application/JSON")),
            None,
            "case-sensitive, like upstream"
        );
        // Conversions are refused on discovery endpoints; the next clause is used.
        assert_eq!(
            negotiate_legacy(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/yaml"
            )),
            Some((Format::Yaml, false))
        );
        assert_eq!(
            negotiate_legacy(Some("application/json;as=Table;v=v1;g=meta.k8s.io")),
            None
        );
        assert_eq!(negotiate_legacy(Some("application/json;sv=v1")), None);
        assert_eq!(
            negotiate_legacy(Some(
                "application/yaml;stream=watch, application/json;stream=watch"
            )),
            json
        );
        // Quality: higher first; a specific q=0 refuses a type even under */*.
        assert_eq!(
            negotiate_legacy(Some("application/yaml;q=0.5, application/json")),
            json
        );
        assert_eq!(
            negotiate_legacy(Some("application/json;q=0, */*")),
            Some((Format::Yaml, false))
        );
        assert_eq!(negotiate_legacy(Some("application/json;q=0")), None);
        assert_eq!(
            negotiate_legacy(Some("*/*;q=0.1, application/yaml;q=0.2")),
            Some((Format::Yaml, false))
        );
        assert_eq!(
            negotiate_legacy(Some("bogus, application/yaml")),
            Some((Format::Yaml, false))
        );
    }

    #[test]
    fn aggregated_negotiation_edges() {
        let v2 = ApisChoice::Aggregated {
            version: DiscoveryVersion::V2,
            pretty: false,
        };
        assert_eq!(
            negotiate_apis(None),
            ApisChoice::Legacy {
                format: Format::Json,
                pretty: false
            }
        );
        assert_eq!(
            negotiate_apis(Some(&format!("application/json, {AGGREGATOR_ACCEPT}"))),
            v2
        );
        assert_eq!(
            negotiate_apis(Some(
                "*/*;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            )),
            v2
        );
        // Parameter order does not matter; incomplete or other kinds do.
        assert_eq!(
            negotiate_apis(Some(
                "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io"
            )),
            v2
        );
        assert_eq!(
            negotiate_apis(Some("application/json;as=APIGroupDiscoveryList;v=v2")),
            ApisChoice::NotAcceptable
        );
        assert_eq!(
            negotiate_apis(Some(
                "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"
            )),
            ApisChoice::NotAcceptable
        );
        // Aggregated YAML/protobuf are not produced here: the legacy list is the fallback.
        let proto = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate_apis(Some(proto)),
            ApisChoice::Legacy {
                format: Format::Json,
                pretty: false
            }
        );
        // A refused q=0 aggregated clause does not count.
        assert_eq!(
            negotiate_apis(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0, application/yaml"
            )),
            ApisChoice::Legacy {
                format: Format::Yaml,
                pretty: false
            }
        );
    }

    #[test]
    fn accept_parsing_like_goautoneg() {
        let clauses = parse_accept(
            "text/*;q=0.5, */*;q=0.5 ,application/json ;pretty=1;q=0.5, x, application/yaml;q=abc",
        );
        let order: Vec<(&str, &str)> = clauses.iter().map(|c| (c.kind, c.subtype)).collect();
        // Go's comparator lets a concrete q=0 clause pass wildcards of higher quality.
        assert_eq!(
            order,
            [
                ("application", "json"),
                ("application", "yaml"),
                ("text", "*"),
                ("*", "*")
            ]
        );
        assert_eq!(clauses[0].param("pretty"), Some("1"));
        assert_eq!(clauses[1].q, 0.0, "an unparsable q reads as 0");
        assert_eq!(
            parse_accept("*").first().map(|c| (c.kind, c.subtype)),
            Some(("*", "*"))
        );
        assert!(parse_accept("a/b/c,,").is_empty());
        let many = vec!["application/yaml;q=0.5"; 13].join(",") + ",application/json";
        assert_eq!(parse_accept(&many)[0].subtype, "json");
        assert_eq!(negotiate_legacy(Some(&many)), Some((Format::Json, false)));
    }

    #[test]
    fn yaml_and_protobuf_legacy_bodies() {
        let mut body = Vec::new();
        let response = respond_api_group(&request(Some("application/yaml")), &mut body);
        if let Some(yaml) = yaml::from_json(api_group(false)) {
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                Some("application/yaml")
            );
            assert_eq!(body, yaml);
        }
        let response = respond_api_group(
            &request(Some("application/vnd.kubernetes.protobuf")),
            &mut body,
        );
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(body, api_group(false));
    }

    #[test]
    fn not_acceptable_on_group_endpoints() {
        let mut body = Vec::new();
        for response in [
            respond_api_group(&request(Some("text/html")), &mut body),
            respond_api_resource_list(&request(Some("text/plain")), &mut body),
        ] {
            assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
            assert_eq!(body, not_acceptable_body());
        }
        assert_eq!(parse(not_acceptable_body())["reason"], "NotAcceptable");
    }

    #[test]
    fn server_address_rule() {
        assert_eq!(server_address("", "", 10250), ":10250");
        assert_eq!(
            server_address("metrics.example.com", "10.0.0.7", 10250),
            "metrics.example.com:10250"
        );
        assert_eq!(server_address("", "10.0.0.7", 4443), "10.0.0.7:4443");
        assert_eq!(server_address("", "fd00::7", 10250), "[fd00::7]:10250");
        assert_eq!(
            server_address("metrics.example.com:443", "", 10250),
            "metrics.example.com:443"
        );
        assert_eq!(server_address("[fd00::7]:443", "", 10250), "[fd00::7]:443");
        assert_eq!(server_address("[fd00::7]", "", 10250), "[[fd00::7]]:10250");
        let doc = parse(&api_group_list("10.0.0.7:4443", false));
        assert_eq!(
            doc["groups"][0]["serverAddressByClientCIDRs"][0]["serverAddress"],
            "10.0.0.7:4443"
        );
    }

    #[test]
    fn strings_are_escaped_like_go() {
        let body = text(&api_group_list("a<b>&\"c\u{2028}", false)).to_owned();
        assert!(
            body.contains(r#""serverAddress":"a\u003cb\u003e\u0026\"c\u2028""#),
            "{body}"
        );
        assert_eq!(
            parse(body.as_bytes())["groups"][0]["serverAddressByClientCIDRs"][0]["serverAddress"],
            "a<b>&\"c\u{2028}"
        );
    }

    #[test]
    fn version_document_keys_and_format() {
        let info = VersionInfo {
            git_version: "v0.9.0".into(),
            platform: "linux/amd64".into(),
            ..VersionInfo::default()
        };
        let want = "{\n  \"major\": \"1\",\n  \"minor\": \"36\",\n  \"emulationMajor\": \"1\",\n  \"emulationMinor\": \"36\",\n  \"minCompatibilityMajor\": \"1\",\n  \"minCompatibilityMinor\": \"35\",\n  \"gitVersion\": \"v0.9.0\",\n  \"gitCommit\": \"$Format:%H$\",\n  \"gitTreeState\": \"\",\n  \"buildDate\": \"1970-01-01T00:00:00Z\",\n  \"goVersion\": \"go1.26.4\",\n  \"compiler\": \"gc\",\n  \"platform\": \"linux/amd64\"\n}";
        assert_eq!(text(&version_document(&info)), want);
        let bare = VersionInfo {
            emulation_major: String::new(),
            emulation_minor: String::new(),
            min_compatibility_major: String::new(),
            min_compatibility_minor: String::new(),
            ..info
        };
        assert!(!text(&version_document(&bare)).contains("emulation"));
        let mut body = Vec::new();
        let response = respond_version(&bare, &mut body);
        assert_eq!(
            (response.status(), header(&response, header::CONTENT_TYPE)),
            (StatusCode::OK, Some("application/json"))
        );
        assert!(VersionInfo::default().platform.contains('/'));
    }

    #[test]
    fn index_is_sorted_deduplicated_and_indented() {
        assert_eq!(
            text(&index_document(&["/version", "/apis", "/healthz", "/apis"])),
            "{\n  \"paths\": [\n    \"/apis\",\n    \"/healthz\",\n    \"/version\"\n  ]\n}"
        );
        assert_eq!(text(&index_document(&[])), "{\n  \"paths\": []\n}");
        let mut all = LISTED_PATHS.to_vec();
        all.extend(["/healthz", "/livez", "/readyz", "/metrics"]);
        let doc = parse(&index_document(&all));
        let paths: Vec<&str> = doc["paths"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        for want in [
            "/apis",
            "/apis/metrics.k8s.io",
            "/apis/metrics.k8s.io/v1beta1",
            "/healthz",
            "/livez",
            "/metrics",
            "/readyz",
            "/version",
            "/openapi/v2",
            "/openapi/v3",
            "/openapi/v3/",
        ] {
            assert!(paths.contains(&want), "{want}");
        }
        let mut body = Vec::new();
        assert_eq!(
            respond_index(&all, StatusCode::NOT_FOUND, &mut body).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(body, index_document(&all));
    }
}
