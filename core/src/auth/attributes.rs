//! Authorization attributes of a request, as the generic server's `RequestInfoFactory`
//! derives them from method, path and query (API prefixes `api` and `apis`), with the
//! selector requirements of the `AuthorizeWithSelectors` feature (on by default).

use std::fmt;

use http::Method;
use http::request::Parts;

use super::text::{self, first_value};
use crate::api::dispatch::decode_path;
use crate::api::selector::{FieldOperator, FieldSelector, LabelSelector, Operator};

/// What is being asked: a resource request (`resource` is `Some`) or a non-resource
/// request on `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAttributes {
    /// `get`, `list`, `watch`, `create`, ... for resource requests; the lower-cased HTTP
    /// method for non-resource requests. May be empty (an unusual method on a resource).
    pub verb: String,
    /// The decoded URL path, without the query.
    pub path: String,
    pub resource: Option<ResourceAttributes>,
}

/// The resource part of [`RequestAttributes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// Empty for the legacy `/api` prefix.
    pub group: String,
    pub version: String,
    /// Empty for cluster-scoped requests and all-namespace lists.
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    /// The object name; for a list whose field selector requires `metadata.name=<x>`,
    /// that `x`.
    pub name: String,
    /// `fieldSelector` requirements of a list, watch or deletecollection, as sent in a
    /// SubjectAccessReview (`In`/`NotIn`).
    pub field_selector: Vec<SelectorRequirement>,
    /// `labelSelector` requirements of a list, watch or deletecollection, as sent in a
    /// SubjectAccessReview (`In`/`NotIn`/`Exists`/`DoesNotExist`).
    pub label_selector: Vec<SelectorRequirement>,
}

/// One selector requirement of a SubjectAccessReview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: &'static str,
    /// Omitted from the JSON when empty.
    pub values: Vec<String>,
}

/// A request the request-info step refuses before authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestInfoError {
    /// A malformed `%` escape in the path (Go's server answers 400 before any handler).
    InvalidEscape(String),
    /// `/{prefix}/{group}/{version}/watch` or `/proxy` with nothing after it; the text is
    /// the request URL. Upstream answers 500.
    NoKind(String),
}

impl fmt::Display for RequestInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestInfoError::InvalidEscape(e) => write!(f, "invalid URL escape {e:?}"),
            RequestInfoError::NoKind(url) => {
                write!(f, "unable to determine kind and namespace from url, {url}")
            }
        }
    }
}

impl std::error::Error for RequestInfoError {}

/// Verbs whose selectors are authorized (upstream `verbsWithSelectors`).
const VERBS_WITH_SELECTORS: [&str; 3] = ["list", "watch", "deletecollection"];

impl RequestAttributes {
    /// The attributes of a request head: the path is decoded as Go's `URL.Path`.
    pub fn from_parts(parts: &Parts) -> Result<RequestAttributes, RequestInfoError> {
        let raw = parts.uri.path();
        let path = decode_path(raw).map_err(|e| RequestInfoError::InvalidEscape(e.0))?;
        let url = || match parts.uri.query() {
            Some(q) => format!("{raw}?{q}"),
            None => raw.to_owned(),
        };
        RequestAttributes::build(&parts.method, &path, parts.uri.query(), url)
    }

    /// The attributes of `method` on the decoded `path` with the raw (still escaped)
    /// `query`.
    pub fn new(
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Result<RequestAttributes, RequestInfoError> {
        let url = || match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        RequestAttributes::build(method, path, query, url)
    }

    /// Whether this is a resource request.
    pub fn is_resource_request(&self) -> bool {
        self.resource.is_some()
    }

    fn build(
        method: &Method,
        path: &str,
        query: Option<&str>,
        url: impl FnOnce() -> String,
    ) -> Result<RequestAttributes, RequestInfoError> {
        let non_resource = || RequestAttributes {
            verb: method.as_str().to_ascii_lowercase(),
            path: path.to_owned(),
            resource: None,
        };
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return Ok(non_resource());
        }
        let mut current = &parts[1..];
        let mut group = "";
        if parts[0] == "apis" {
            if current.len() < 3 {
                return Ok(non_resource());
            }
            group = current[0];
            current = &current[1..];
        }
        let version = current[0];
        current = &current[1..];

        let mut verb_via_path = false;
        let mut verb: &str = if matches!(current[0], "proxy" | "watch") {
            if current.len() < 2 {
                return Err(RequestInfoError::NoKind(url()));
            }
            verb_via_path = true;
            let verb = current[0];
            current = &current[1..];
            verb
        } else {
            match method.as_str() {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
        };

        let mut namespace = "";
        if current[0] == "namespaces" && current.len() > 1 {
            namespace = current[1];
            if current.len() > 2 && !matches!(current[2], "status" | "finalize") {
                current = &current[2..];
            }
        }
        let subresource = match current.get(2) {
            Some(s) if verb != "proxy" => *s,
            _ => "",
        };
        let mut name = current.get(1).copied().unwrap_or_default().to_owned();
        let resource = current.first().copied().unwrap_or_default();

        let pairs = text::parse_query(query);
        if name.is_empty() && verb == "get" {
            let (watch, field_selector) = match decode_list_options(&pairs) {
                Some(options) => options,
                None => (first_value(&pairs, "watch").is_some_and(go_true), None),
            };
            verb = if watch { "watch" } else { "list" };
            if let Some(exact) = field_selector
                .as_ref()
                .and_then(|f| f.requires_exact_match("metadata.name"))
                .filter(|n| valid_path_segment_name(n))
            {
                name = exact.to_owned();
            }
        }
        if name.is_empty() && verb == "delete" {
            verb = "deletecollection";
        }

        let mut attrs = ResourceAttributes {
            group: group.to_owned(),
            version: version.to_owned(),
            namespace: namespace.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            name,
            ..ResourceAttributes::default()
        };
        if !verb_via_path && VERBS_WITH_SELECTORS.contains(&verb) {
            if let Some(raw) = first_value(&pairs, "fieldSelector").filter(|s| !s.is_empty()) {
                attrs.field_selector = field_requirements(raw);
            }
            if let Some(raw) = first_value(&pairs, "labelSelector").filter(|s| !s.is_empty()) {
                attrs.label_selector = label_requirements(raw);
            }
        }
        Ok(RequestAttributes {
            verb: verb.to_owned(),
            path: path.to_owned(),
            resource: Some(attrs),
        })
    }
}

/// `Convert_Slice_string_To_bool`: anything but `0` and `false` (any case) is true,
/// the empty string included.
fn go_true(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// The parts of `metav1.ListOptions` decoding that request info uses: `(watch, field
/// selector)`, or `None` when any option fails to decode (upstream then keeps only
/// `watch`, read again from the raw query).
fn decode_list_options(
    pairs: &[(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)],
) -> Option<(bool, Option<FieldSelector>)> {
    if let Some(labels) = first_value(pairs, "labelSelector") {
        LabelSelector::parse(labels).ok()?;
    }
    let fields = match first_value(pairs, "fieldSelector") {
        Some(raw) => Some(FieldSelector::parse_unchecked(raw).ok()?),
        None => None,
    };
    // Empty integers are accepted, as the resource handler's own decoding does.
    for key in ["limit", "timeoutSeconds"] {
        if let Some(v) = first_value(pairs, key).filter(|v| !v.is_empty()) {
            v.parse::<i64>().ok()?;
        }
    }
    let watch = first_value(pairs, "watch").is_some_and(go_true);
    Some((watch, fields))
}

/// `path.IsValidPathSegmentName`.
fn valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains(['/', '%'])
}

/// `fieldSelectorToAuthorizationAPI`: `=`/`==` → `In`, `!=` → `NotIn`; a selector that
/// does not parse contributes nothing.
fn field_requirements(raw: &str) -> Vec<SelectorRequirement> {
    let Ok(selector) = FieldSelector::parse_unchecked(raw) else {
        return Vec::new();
    };
    selector
        .requirements()
        .iter()
        .map(|r| SelectorRequirement {
            key: r.field().to_owned(),
            operator: match r.operator() {
                FieldOperator::Equals => "In",
                FieldOperator::NotEquals => "NotIn",
            },
            values: vec![r.value().to_owned()],
        })
        .collect()
}

/// `labelSelectorToAuthorizationAPI`: `>`/`<` requirements are dropped (requirements
/// are ANDed, so dropping one only widens the check); a selector that does not parse
/// contributes nothing.
fn label_requirements(raw: &str) -> Vec<SelectorRequirement> {
    let Ok(selector) = LabelSelector::parse(raw) else {
        return Vec::new();
    };
    selector
        .requirements()
        .iter()
        .filter_map(|r| {
            let operator = match r.operator() {
                Operator::Equals | Operator::DoubleEquals | Operator::In => "In",
                Operator::NotEquals | Operator::NotIn => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
                Operator::GreaterThan | Operator::LessThan => return None,
            };
            Some(SelectorRequirement {
                key: r.key().to_owned(),
                operator,
                values: r.values().to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "/apis/metrics.k8s.io/v1beta1";

    fn attrs(method: &str, path: &str, query: Option<&str>) -> RequestAttributes {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        RequestAttributes::new(&method, path, query).expect("request info")
    }

    fn resource(a: &RequestAttributes) -> &ResourceAttributes {
        a.resource.as_ref().expect("resource request")
    }

    #[test]
    fn metrics_resources() {
        let a = attrs("GET", &format!("{V}/nodes"), None);
        assert_eq!(a.verb, "list");
        let r = resource(&a);
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.resource.as_str()),
            ("metrics.k8s.io", "v1beta1", "nodes")
        );
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("", ""));

        let a = attrs("GET", &format!("{V}/namespaces/team/pods/web"), None);
        assert_eq!(a.verb, "get");
        let r = resource(&a);
        assert_eq!(
            (r.namespace.as_str(), r.resource.as_str(), r.name.as_str()),
            ("team", "pods", "web")
        );

        let a = attrs("HEAD", &format!("{V}/namespaces/team/pods"), None);
        assert_eq!(
            (a.verb.as_str(), resource(&a).namespace.as_str()),
            ("list", "team")
        );

        let a = attrs("GET", &format!("{V}/nodes/n1/extra"), None);
        assert_eq!(resource(&a).subresource, "extra");
        assert_eq!(resource(&a).name, "n1");
    }

    #[test]
    fn watch_values_like_go_bool_conversion() {
        for (q, verb) in [
            ("watch=true", "watch"),
            ("watch=1", "watch"),
            ("watch", "watch"),
            ("watch=no", "watch"),
            ("watch=false", "list"),
            ("watch=FALSE", "list"),
            ("watch=0", "list"),
            ("watch=0&watch=1", "list"),
            ("limit=abc&watch=true", "watch"),
        ] {
            assert_eq!(
                attrs("GET", &format!("{V}/pods"), Some(q)).verb,
                verb,
                "{q}"
            );
        }
    }

    #[test]
    fn list_name_from_field_selector() {
        let a = attrs(
            "GET",
            &format!("{V}/pods"),
            Some("fieldSelector=metadata.name%3Dweb"),
        );
        let r = resource(&a);
        assert_eq!(r.name, "web");
        assert_eq!(
            r.field_selector,
            vec![SelectorRequirement {
                key: "metadata.name".into(),
                operator: "In",
                values: vec!["web".into()],
            }]
        );
        // Not a valid path segment name: no name, the requirement stays.
        let a = attrs(
            "GET",
            &format!("{V}/pods"),
            Some("fieldSelector=metadata.name%3Da%2Fb"),
        );
        assert_eq!(resource(&a).name, "");
        assert_eq!(resource(&a).field_selector.len(), 1);
        // Another option that does not decode loses the name, not the selector.
        let a = attrs(
            "GET",
            &format!("{V}/pods"),
            Some("fieldSelector=metadata.name%3Dweb&limit=x"),
        );
        assert_eq!(resource(&a).name, "");
        assert_eq!(resource(&a).field_selector.len(), 1);
        let a = attrs(
            "GET",
            &format!("{V}/pods"),
            Some("fieldSelector=metadata.name!%3Dweb"),
        );
        assert_eq!(resource(&a).name, "");
        assert_eq!(resource(&a).field_selector[0].operator, "NotIn");
        // A GET of one object has no selectors.
        let a = attrs(
            "GET",
            &format!("{V}/nodes/n1"),
            Some("fieldSelector=metadata.name%3Dweb"),
        );
        assert!(resource(&a).field_selector.is_empty());
    }

    #[test]
    fn label_selector_requirements() {
        let a = attrs(
            "GET",
            &format!("{V}/pods"),
            Some("labelSelector=app+in+(b,a),tier!%3Dfe,x>5,!gone,has"),
        );
        let got: Vec<(&str, &str, Vec<&str>)> = resource(&a)
            .label_selector
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.operator,
                    r.values.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("app", "In", vec!["a", "b"]),
                ("gone", "DoesNotExist", vec![]),
                ("has", "Exists", vec![]),
                ("tier", "NotIn", vec!["fe"]),
            ]
        );
        let a = attrs("GET", &format!("{V}/pods"), Some("labelSelector=%3D%3D"));
        assert!(resource(&a).label_selector.is_empty());
    }

    #[test]
    fn non_resource_requests() {
        for path in [
            "/",
            "/apis",
            "/apis/metrics.k8s.io",
            V,
            "/healthz",
            "/readyz/x",
            "/openapi/v3/apis/metrics.k8s.io/v1beta1",
        ] {
            let a = attrs("GET", path, None);
            assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", path));
            assert!(!a.is_resource_request(), "{path}");
        }
        let a = attrs("POST", "/metrics", None);
        assert_eq!(a.verb, "post");
        let a = attrs("BREW", "/metrics", None);
        assert_eq!(a.verb, "brew");
    }

    #[test]
    fn verbs_from_methods_and_paths() {
        assert_eq!(
            attrs("DELETE", &format!("{V}/nodes"), None).verb,
            "deletecollection"
        );
        assert_eq!(
            attrs("DELETE", &format!("{V}/nodes/a"), None).verb,
            "delete"
        );
        assert_eq!(attrs("POST", &format!("{V}/nodes"), None).verb, "create");
        assert_eq!(attrs("PUT", &format!("{V}/nodes/a"), None).verb, "update");
        assert_eq!(attrs("PATCH", &format!("{V}/nodes/a"), None).verb, "patch");
        assert_eq!(attrs("OPTIONS", &format!("{V}/nodes/a"), None).verb, "");
        let a = attrs(
            "GET",
            &format!("{V}/watch/pods"),
            Some("labelSelector=a%3Db"),
        );
        assert_eq!(a.verb, "watch");
        assert_eq!(resource(&a).resource, "pods");
        assert!(
            resource(&a).label_selector.is_empty(),
            "no selectors on verb-via-path"
        );
        let a = attrs("GET", &format!("{V}/proxy/nodes/n1/x/y"), None);
        assert_eq!(
            (a.verb.as_str(), resource(&a).subresource.as_str()),
            ("proxy", "")
        );
        assert_eq!(
            RequestAttributes::new(&Method::GET, &format!("{V}/watch"), Some("a=b")),
            Err(RequestInfoError::NoKind(format!("{V}/watch?a=b")))
        );
    }

    #[test]
    fn legacy_prefix_and_namespace_subresources() {
        let a = attrs("GET", "/api/v1/namespaces/x/pods", None);
        let r = resource(&a);
        assert_eq!(
            (
                r.group.as_str(),
                r.version.as_str(),
                r.namespace.as_str(),
                r.resource.as_str()
            ),
            ("", "v1", "x", "pods")
        );
        let a = attrs("PUT", "/apis/g/v/namespaces/x/status", None);
        let r = resource(&a);
        assert_eq!(
            (
                r.namespace.as_str(),
                r.resource.as_str(),
                r.name.as_str(),
                r.subresource.as_str()
            ),
            ("x", "namespaces", "x", "status")
        );
        let a = attrs("GET", "/apis/g/v/namespaces", None);
        assert_eq!(
            (a.verb.as_str(), resource(&a).resource.as_str()),
            ("list", "namespaces")
        );
        let a = attrs("GET", "/apis/g/v//x", None);
        assert_eq!(
            (resource(&a).resource.as_str(), resource(&a).name.as_str()),
            ("", "x")
        );
    }

    #[test]
    fn from_parts_decodes_the_path() {
        let req = http::Request::get(format!("{V}/namespaces/a%2Fb/pods?watch=1"))
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        let a = RequestAttributes::from_parts(&parts).expect("ok");
        // Upstream reads the decoded path: `%2F` splits the segment.
        assert_eq!(a.path, format!("{V}/namespaces/a/b/pods"));
        assert_eq!(a.verb, "get");
        let r = resource(&a);
        assert_eq!(
            (r.namespace.as_str(), r.resource.as_str(), r.name.as_str()),
            ("a", "b", "pods")
        );
        let req = http::Request::get("/x%zz").body(()).expect("request");
        let (parts, ()) = req.into_parts();
        assert_eq!(
            RequestAttributes::from_parts(&parts),
            Err(RequestInfoError::InvalidEscape("%zz".into()))
        );
    }
}
