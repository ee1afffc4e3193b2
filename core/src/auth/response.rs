//! The answers of a refused request (spec 4.5): 401 and 403 Status objects in the
//! negotiated media type, and the 500 plain-text answer of a failed authorizer.

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};

use super::attributes::RequestAttributes;
use super::text::{go_quote, html_escape};
use crate::api::negotiate::{self, Format};
use crate::api::status::{Status, StatusDetails};
use crate::api::{discovery, router};

/// Content type of Go's `http.Error` answers.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const NOSNIFF: &str = "nosniff";
const NO_CACHE: &str = "no-cache, private";

/// The user-controlled part of a 403 message, `&<>` HTML-escaped:
/// `User "<user>" cannot <verb> resource "<resource>[/<subresource>]" in API group
/// "<group>" (in the namespace "<ns>" | at the cluster scope)`, or for non-resource
/// requests `User "<user>" cannot <verb> path "<path>"`.
pub fn forbidden_message(attrs: &RequestAttributes, user: &str) -> String {
    let user = go_quote(user);
    let message = match &attrs.resource {
        None => format!(
            "User {user} cannot {} path {}",
            attrs.verb,
            go_quote(&attrs.path)
        ),
        Some(r) => {
            let mut resource = r.resource.clone();
            if !r.subresource.is_empty() {
                resource.push('/');
                resource.push_str(&r.subresource);
            }
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {}", go_quote(&r.namespace))
            };
            format!(
                "User {user} cannot {} resource {} in API group {} {scope}",
                attrs.verb,
                go_quote(&resource),
                go_quote(&r.group)
            )
        }
    };
    html_escape(&message).into_owned()
}

/// The 403 Status (`apierrors.NewForbidden`): message
/// `<resource>.<group>[ "<name>"] is forbidden: <forbidden_message>[: <reason>]` (or
/// `forbidden: ...` for non-resource requests), details `{name?, group, kind: resource}`.
pub fn forbidden_status(attrs: &RequestAttributes, user: &str, reason: &str) -> Status {
    let mut cause = forbidden_message(attrs, user);
    if !reason.is_empty() {
        cause.push_str(": ");
        cause.push_str(reason);
    }
    let (group, resource, name) = match &attrs.resource {
        Some(r) => (r.group.as_str(), r.resource.as_str(), r.name.as_str()),
        None => ("", "", ""),
    };
    let message = if group.is_empty() && resource.is_empty() {
        format!("forbidden: {cause}")
    } else {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        if name.is_empty() {
            format!("{qualified} is forbidden: {cause}")
        } else {
            format!("{qualified} {} is forbidden: {cause}", go_quote(name))
        }
    };
    Status {
        code: 403,
        reason: "Forbidden",
        message,
        details: Some(StatusDetails {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: resource.to_owned(),
        }),
    }
}

/// 401 `Unauthorized` Status, negotiated from the request.
pub fn unauthorized_response(parts: &Parts, body: &mut Vec<u8>) -> Response<()> {
    write_negotiated(&Status::unauthorized(), parts, body)
}

/// 403 Status, negotiated from the request, with `X-Content-Type-Options: nosniff`.
pub fn forbidden_response(
    parts: &Parts,
    attrs: &RequestAttributes,
    user: &str,
    reason: &str,
    body: &mut Vec<u8>,
) -> Response<()> {
    let mut response = write_negotiated(&forbidden_status(attrs, user, reason), parts, body);
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static(NOSNIFF),
    );
    response
}

/// 500 as Go's `responsewriters.InternalError`: `text/plain; charset=utf-8`, `nosniff`,
/// body `Internal Server Error: "<request URI>": <error>` HTML-escaped, plus newline.
pub fn internal_error_response(request_uri: &str, error: &str, body: &mut Vec<u8>) -> Response<()> {
    body.clear();
    let text = format!("Internal Server Error: {}: {error}", go_quote(request_uri));
    body.extend_from_slice(html_escape(&text).as_bytes());
    body.push(b'\n');
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static(NOSNIFF),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    response
}

/// Go's `Request.RequestURI` as far as the head tells: the request target.
pub fn request_uri(parts: &Parts) -> String {
    match parts.uri.path_and_query() {
        Some(pq) if parts.uri.scheme().is_none() => pq.as_str().to_owned(),
        _ => parts.uri.to_string(),
    }
}

/// `ErrorNegotiated`: the Status in the media type negotiated without conversions,
/// honouring `pretty`, or indented JSON when none is acceptable.
fn write_negotiated(status: &Status, parts: &Parts, body: &mut Vec<u8>) -> Response<()> {
    let first = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let accept = first(header::ACCEPT);
    let user_agent = first(header::USER_AGENT);
    let query = router::parse_query(parts.uri.query());
    let pretty = query
        .iter()
        .find(|(k, _)| k == "pretty")
        .map(|(_, v)| v.as_ref());
    let format: Option<(Format, bool)> =
        discovery::negotiate_legacy(accept.as_deref()).map(|(format, media_pretty)| {
            (
                format,
                negotiate::wants_pretty(pretty, user_agent.as_deref(), media_pretty),
            )
        });
    router::write_status(status, format, body)
}
