//! One entry point for every request path: [`Api::handle`] (spec 4.1, 4.7, 4.12, 4.13).
//!
//! Routing, in the order upstream's handler chain decides it:
//!
//! | Decoded path | Methods | Answer |
//! |---|---|---|
//! | `/apis`, `/apis/` | GET | aggregated v2 discovery, legacy `APIGroupList` or 406, by Accept |
//! | `/apis/metrics.k8s.io` | GET | `APIGroup` |
//! | `/apis/metrics.k8s.io/v1beta1` | GET | `APIResourceList` |
//! | below `/apis/metrics.k8s.io/v1beta1/` | GET | [`router::serve_resource`] (its own 404/405/406) |
//! | other paths at or below `/apis/metrics.k8s.io/` | — | 404 Status |
//! | `/version` | GET | version document; `/version/...` → 404 Status |
//! | `/openapi/v2`, `/openapi/v3`, `/openapi/v3/...` | any | [`OpenApi::respond`] |
//! | `/healthz`, `/livez`, `/readyz` and their checks | any | [`health::respond`] |
//! | `/metrics` | any | [`SelfMetrics::encode`] |
//! | `/`, `/index.html` | any | index document, 200 |
//! | anything else | any | index document, 404 |
//!
//! The discovery and `/version` routes are go-restful routes upstream, so their errors
//! follow go-restful's order: method (405), then Accept (406 `406: Not Acceptable` when no
//! clause names a type the route produces), each written as a Status negotiated without
//! conversions (indented JSON when nothing is acceptable). Matching is exact: a trailing
//! slash (`/apis/metrics.k8s.io/`) is another path, as with go-restful ≥ 3.10.2.
//!
//! Every response gets `Cache-Control: no-cache, private` unless its handler set one, and
//! echoes the request's `Audit-ID` (see [`Api::handle`]).

use std::borrow::Cow;
use std::fmt;

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use super::discovery::{self, DiscoveryRequest, VersionInfo};
use super::health::{self, HealthInputs, HealthResponse};
use super::negotiate;
use super::openapi::{OpenApi, OpenApiRequest};
use super::router::{self, Context};
use super::selfmetrics::{self, SelfMetrics};
use super::status::Status;

/// Root of the API group; go-restful owns every path at or below it.
const GROUP_ROOT: &str = "/apis/metrics.k8s.io";
/// Root of the served group-version.
const VERSION_ROOT: &str = "/apis/metrics.k8s.io/v1beta1";
const VERSION_PATH: &str = "/version";
const METRICS_PATH: &str = "/metrics";
/// The generic server's default for handlers that set no cache policy (spec 4.13).
const NO_CACHE: &str = "no-cache, private";
const AUDIT_ID: &str = "audit-id";
const JSON: &str = "application/json";
/// What the group and group-version discovery routes declare they produce.
const DISCOVERY_PRODUCES: [&str; 3] = [JSON, "application/yaml", negotiate::PROTOBUF];
/// What the `/version` route declares it produces.
const VERSION_PRODUCES: [&str; 1] = [JSON];

/// Settings fixed for the life of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `serverAddress` advertised in the `APIGroupList` (see [`discovery::server_address`]).
    pub server_address: String,
    /// The `/version` document.
    pub version: VersionInfo,
    /// The release tag, for the OpenAPI `info.version` (see [`super::openapi::info_version`]).
    pub release: String,
}

/// The whole HTTP surface of the server, built once at start and shared by reference.
#[derive(Debug)]
pub struct Api {
    config: ApiConfig,
    openapi: OpenApi,
    /// The index document (`/`, `/index.html` and unknown non-API paths).
    index: Vec<u8>,
}

/// Per-request inputs that change over time.
#[derive(Debug)]
pub struct RequestState<'a> {
    /// Time, snapshot, objects and the freshness observer for resource routes; `now`
    /// also dates OpenAPI `Expires` headers.
    pub ctx: Context<'a>,
    /// What the health checks are evaluated against.
    pub health: &'a HealthInputs,
    /// The registry printed on `/metrics`.
    pub metrics: &'a SelfMetrics,
}

/// A malformed `%` escape in a request path; the text holds the escape as far as it goes
/// (at most three bytes), as Go's `url.EscapeError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEscape(pub String);

impl fmt::Display for InvalidEscape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid URL escape {:?}", self.0)
    }
}

impl std::error::Error for InvalidEscape {}

/// Go's `URL.Path` of a raw (still percent-encoded) request path: every `%XX` is decoded,
/// `%2F` included, and `+` stays a `+`. A `%` not followed by two hex digits is an error,
/// which Go's server answers with 400 before any handler runs. Decoded bytes that are not
/// UTF-8 become U+FFFD: no object name can contain them, and Go's JSON encoder would
/// replace them the same way in any message that echoes them.
///
/// Authorization must see the same path, so the runtime can call this too.
pub fn decode_path(raw: &str) -> Result<Cow<'_, str>, InvalidEscape> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: u8| (b as char).to_digit(16);
        let decoded = match bytes.get(i + 1..i + 3) {
            Some(&[h, l]) => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        let Some(byte) = decoded else {
            let end = (i + 3).min(bytes.len());
            return Err(InvalidEscape(
                String::from_utf8_lossy(&bytes[i..end]).into_owned(),
            ));
        };
        out.push(byte);
        i += 3;
    }
    Ok(Cow::Owned(match String::from_utf8(out) {
        Ok(path) => path,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// Every path the index document lists, unsorted: discovery and OpenAPI, the health
/// endpoints and their checks, and `/metrics`. Debug paths and `/statusz` are not served.
pub fn listed_paths() -> Vec<&'static str> {
    let mut paths = Vec::with_capacity(discovery::LISTED_PATHS.len() + health::PATHS.len() + 1);
    paths.extend_from_slice(&discovery::LISTED_PATHS);
    paths.extend_from_slice(&health::PATHS);
    paths.push(METRICS_PATH);
    paths
}

/// The request fields routing looks at. Headers are the first value of each name (Go's
/// `Header.Get`); bytes that are not UTF-8 are replaced rather than dropping the header.
struct Request<'r> {
    method: &'r Method,
    path: &'r str,
    query: Option<&'r str>,
    accept: Option<Cow<'r, str>>,
    user_agent: Option<Cow<'r, str>>,
    if_none_match: Option<Cow<'r, str>>,
}

impl<'r> Request<'r> {
    fn new(parts: &'r Parts, path: &'r str) -> Request<'r> {
        let header = |name: HeaderName| {
            parts
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
        };
        Request {
            method: &parts.method,
            path,
            query: parts.uri.query(),
            accept: header(header::ACCEPT),
            user_agent: header(header::USER_AGENT),
            if_none_match: header(header::IF_NONE_MATCH),
        }
    }

    fn accept(&self) -> Option<&str> {
        self.accept.as_deref()
    }

    /// Indentation by the `pretty` query value or the User-Agent (spec 2.6);
    /// `media_pretty` is the negotiated clause's `pretty=1`.
    fn pretty(&self, media_pretty: bool) -> bool {
        let query = router::parse_query(self.query);
        let pretty = query
            .iter()
            .find(|(key, _)| key == "pretty")
            .map(|(_, value)| value.as_ref());
        negotiate::wants_pretty(pretty, self.user_agent.as_deref(), media_pretty)
    }

    fn discovery(&self) -> DiscoveryRequest<'_> {
        DiscoveryRequest {
            accept: self.accept(),
            if_none_match: self.if_none_match.as_deref(),
            pretty: self.pretty(false),
            // v0.36 behaviour: the beta discovery type is switched off (spec 4.2).
            serve_v2beta1: false,
        }
    }
}

/// A discovery or version route (go-restful upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Document {
    Apis,
    ApiGroup,
    ApiResourceList,
    Version,
}

impl Api {
    /// Builds the OpenAPI documents and the index once.
    pub fn new(config: ApiConfig) -> Api {
        let openapi = OpenApi::new(&config.release);
        let index = discovery::index_document(&listed_paths());
        Api {
            config,
            openapi,
            index,
        }
    }

    /// The settings this API was built with.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Serves `parts` (method, URI, headers of an `http::Request`), writing the body into
    /// `body` (cleared first); returns the head. Never fails: every input gets an answer.
    ///
    /// * The path is decoded as Go's `URL.Path` ([`decode_path`]) before matching; a
    ///   malformed escape gets 400 `text/plain` `400 Bad Request`, as Go's server answers
    ///   it (which, unlike here, also skips the headers below).
    /// * `Cache-Control: no-cache, private` is added unless the handler set its own.
    /// * `Audit-Id` echoes the request's first `Audit-ID` header when it is non-empty. When
    ///   there is none it is left out: the runtime must add a fresh UUID, since the core
    ///   has no randomness source.
    /// * Bodies are produced for HEAD on the any-method paths too; the HTTP layer drops
    ///   them.
    pub fn handle(
        &self,
        parts: &Parts,
        state: &RequestState<'_>,
        body: &mut Vec<u8>,
    ) -> Response<()> {
        body.clear();
        let mut response = match decode_path(parts.uri.path()) {
            Ok(path) => self.route(&Request::new(parts, &path), state, body),
            Err(_) => {
                body.extend_from_slice(b"400 Bad Request");
                head(StatusCode::BAD_REQUEST, health::CONTENT_TYPE)
            }
        };
        let headers = response.headers_mut();
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
        }
        if let Some(id) = parts.headers.get(AUDIT_ID).filter(|id| !id.is_empty()) {
            headers.insert(HeaderName::from_static(AUDIT_ID), id.clone());
        }
        response
    }

    fn route(
        &self,
        req: &Request<'_>,
        state: &RequestState<'_>,
        body: &mut Vec<u8>,
    ) -> Response<()> {
        let path = req.path;
        if path == "/apis" || path == "/apis/" {
            return self.document(Document::Apis, req, body);
        }
        if let Some(rest) = below(path, GROUP_ROOT) {
            if rest.is_empty() {
                return self.document(Document::ApiGroup, req, body);
            }
            match below(path, VERSION_ROOT) {
                Some("") => return self.document(Document::ApiResourceList, req, body),
                Some(_) => {
                    if let Some(route) = router::resource_route(path) {
                        return router::serve_resource(
                            &route,
                            req.method,
                            req.accept(),
                            req.user_agent.as_deref(),
                            req.query,
                            &state.ctx,
                            body,
                        );
                    }
                }
                None => {}
            }
            return restful_error(&Status::path_not_found(), req, body);
        }
        if let Some(rest) = below(path, VERSION_PATH) {
            if rest.is_empty() {
                return self.document(Document::Version, req, body);
            }
            return restful_error(&Status::path_not_found(), req, body);
        }
        let openapi = OpenApiRequest {
            path,
            query: req.query,
            accept: req.accept(),
            if_none_match: req.if_none_match.as_deref(),
            now: state.ctx.now,
        };
        if let Some(response) = self.openapi.respond(&openapi, body) {
            return response;
        }
        // The failures' reasons are not logged here: the engine evaluates and logs them.
        if let Some(answer) = health::respond(path, req.query, state.health) {
            return health_response(answer, body);
        }
        if path == METRICS_PATH {
            state.metrics.encode(body);
            return head(StatusCode::OK, selfmetrics::CONTENT_TYPE);
        }
        let status = if path == "/" || path == "/index.html" {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        body.extend_from_slice(&self.index);
        head(status, JSON)
    }

    /// A discovery or version route: 405 for any method but GET, then go-restful's Accept
    /// filter (except on `/apis`, a plain handler upstream), then the document.
    fn document(&self, doc: Document, req: &Request<'_>, body: &mut Vec<u8>) -> Response<()> {
        if *req.method != Method::GET {
            return restful_error(&Status::method_not_allowed(), req, body);
        }
        let produces: &[&str] = match doc {
            Document::Apis => &[],
            Document::ApiGroup | Document::ApiResourceList => &DISCOVERY_PRODUCES,
            Document::Version => &VERSION_PRODUCES,
        };
        if doc != Document::Apis && !restful_accepts(req.accept(), produces) {
            return restful_error(&Status::route_not_acceptable(), req, body);
        }
        match doc {
            Document::Apis => {
                discovery::respond_apis(&req.discovery(), &self.config.server_address, body)
            }
            Document::ApiGroup => discovery::respond_api_group(&req.discovery(), body),
            Document::ApiResourceList => {
                discovery::respond_api_resource_list(&req.discovery(), body)
            }
            Document::Version => discovery::respond_version(&self.config.version, body),
        }
    }
}

/// The rest of `path` after `root` when `path` is `root` or lies below it at a `/`
/// boundary (`""` or `/...`).
fn below<'p>(path: &'p str, root: &str) -> Option<&'p str> {
    path.strip_prefix(root)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// go-restful's Accept filter (`Route.matchesAccept`): an empty header accepts; otherwise
/// some comma-separated clause, parameters cut at the first `;` and spaces trimmed, must be
/// `*/*` or a type the route produces. Quality values are not consulted and `application/*`
/// does not match.
fn restful_accepts(accept: Option<&str>, produces: &[&str]) -> bool {
    let accept = accept.unwrap_or_default();
    accept.is_empty()
        || accept.split(',').any(|clause| {
            let media = clause.split_once(';').map_or(clause, |(media, _)| media);
            let media = media.trim_matches(' ');
            media == "*/*" || produces.contains(&media)
        })
}

/// A go-restful routing error as the generic server writes it (`ErrorNegotiated`): a
/// Status in the type negotiated without conversions, honouring `pretty`, or indented
/// JSON with the error's own code when no type is acceptable.
fn restful_error(status: &Status, req: &Request<'_>, body: &mut Vec<u8>) -> Response<()> {
    let format = discovery::negotiate_legacy(req.accept())
        .map(|(format, media_pretty)| (format, req.pretty(media_pretty)));
    router::write_status(status, format, body)
}

fn health_response(answer: HealthResponse, body: &mut Vec<u8>) -> Response<()> {
    body.extend_from_slice(&answer.body);
    let mut response = Response::new(());
    *response.status_mut() = answer.status;
    for &(name, value) in answer.headers {
        // The names are constants of the health module; `from_bytes` lower-cases them.
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

fn head(status: StatusCode, content_type: &'static str) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_path_like_go() {
        assert_eq!(decode_path("/a/b").as_deref(), Ok("/a/b"));
        assert!(matches!(decode_path("/a/b"), Ok(Cow::Borrowed(_))));
        assert_eq!(decode_path("/pod%31").as_deref(), Ok("/pod1"));
        assert_eq!(decode_path("/a%2Fb%2f").as_deref(), Ok("/a/b/"));
        assert_eq!(decode_path("/a+b").as_deref(), Ok("/a+b"));
        assert_eq!(decode_path("/%C3%A9").as_deref(), Ok("/é"));
        assert_eq!(decode_path("/%ff").as_deref(), Ok("/\u{FFFD}"));
        assert_eq!(decode_path("/%zz1"), Err(InvalidEscape("%zz".into())));
        assert_eq!(decode_path("/x%4"), Err(InvalidEscape("%4".into())));
        assert_eq!(decode_path("/x%"), Err(InvalidEscape("%".into())));
        assert_eq!(
            InvalidEscape("%zz".into()).to_string(),
            r#"invalid URL escape "%zz""#
        );
    }

    #[test]
    fn below_needs_a_slash_boundary() {
        assert_eq!(below("/version", "/version"), Some(""));
        assert_eq!(below("/version/x", "/version"), Some("/x"));
        assert_eq!(below("/versionx", "/version"), None);
        assert_eq!(below("/apis/metrics.k8s.io/", GROUP_ROOT), Some("/"));
    }

    #[test]
    fn restful_accept_filter() {
        let produces = &DISCOVERY_PRODUCES;
        assert!(restful_accepts(None, produces));
        assert!(restful_accepts(Some(""), produces));
        assert!(restful_accepts(Some("text/html, */*;q=0.1"), produces));
        assert!(restful_accepts(Some("application/yaml;q=0"), produces));
        assert!(restful_accepts(
            Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
            produces
        ));
        assert!(!restful_accepts(Some("text/html"), produces));
        assert!(!restful_accepts(Some("application/*"), produces));
        assert!(!restful_accepts(
            Some("application/yaml"),
            &VERSION_PRODUCES
        ));
    }

    #[test]
    fn index_lists_every_served_path_once() {
        let paths = listed_paths();
        let mut unique = paths.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), paths.len());
        assert!(paths.contains(&"/metrics") && paths.contains(&"/readyz/shutdown"));
        assert!(!paths.iter().any(|p| p.starts_with("/debug")));
    }
}
