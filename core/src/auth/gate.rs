//! The whole chain for one request, in the generic server's filter order: request info,
//! authentication, authorization (spec 4.3 steps 1–2).

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode, header};

use super::attributes::{RequestAttributes, RequestInfoError};
use super::authn::{
    Authenticator, AuthnConfig, AuthnOutcome, AuthnRequest, Identity, TokenHash,
    TokenReviewRequest, TokenVerdict,
};
use super::authz::{Authorizer, AuthzConfig, AuthzConfigError, AuthzOutcome, SarKey, SarRequest};
use super::response;
use crate::time::{Instant, Timestamp};

const AUDIT_ID: &str = "audit-id";
const NO_CACHE: &str = "no-cache, private";

/// Authentication and authorization of requests.
#[derive(Debug)]
pub struct Gate {
    pub authenticator: Authenticator,
    pub authorizer: Authorizer,
}

/// One request as the gate sees it.
#[derive(Debug, Clone, Copy)]
pub struct GateRequest<'a> {
    pub parts: &'a Parts,
    /// The client's certificate chain (DER, leaf first), as in
    /// [`Peer`](crate::driver::Peer).
    pub certificates: &'a [Vec<u8>],
    /// Wall-clock time (certificate validity).
    pub wall: Timestamp,
}

/// A refused request: the response to send (body in the caller's buffer) and why, for
/// the log: the authenticators' errors (401), the URI and the reviewer's reason (403),
/// the failure (500). The status says which, so the log line's message comes from it.
#[derive(Debug)]
pub struct Refusal {
    pub response: Response<()>,
    pub cause: String,
}

/// Review results one request has waited for, carried across its retries of
/// [`Gate::check_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// TokenReview verdicts (a request may carry a bearer token and a websocket one).
    pub tokens: Vec<(TokenHash, TokenVerdict)>,
    /// A SubjectAccessReview's outcome.
    pub access: Option<(SarKey, AuthzOutcome)>,
}

/// The result of [`Gate::check`].
#[derive(Debug)]
pub enum GateOutcome {
    /// Serve the request as this identity; strip the credentials with
    /// [`Authenticator::strip_headers`] if the handler could see them.
    Proceed(Identity),
    /// Answer with this (401, 403, 500 or 400); nothing else to do.
    Refuse(Refusal),
    /// Send the review, [`Gate::complete_token_review`], then check again.
    NeedsTokenReview(TokenReviewRequest),
    /// Send the review, [`Gate::complete_sar`], then check again.
    NeedsSubjectAccessReview(SarRequest),
}

impl Gate {
    pub fn new(authn: AuthnConfig, authz: AuthzConfig) -> Result<Gate, AuthzConfigError> {
        Ok(Gate {
            authenticator: Authenticator::new(authn),
            authorizer: Authorizer::new(authz)?,
        })
    }

    /// Runs request info, authentication and authorization. A refusal's body is written
    /// into `body` (cleared first); `now` is monotonic, for the caches.
    pub fn check(
        &self,
        request: &GateRequest<'_>,
        now: Instant,
        body: &mut Vec<u8>,
    ) -> GateOutcome {
        self.check_with(request, now, body, &Resolved::default())
    }

    /// [`check`](Self::check), with the reviews this request already waited for (used
    /// when the caches no longer hold their results).
    pub fn check_with(
        &self,
        request: &GateRequest<'_>,
        now: Instant,
        body: &mut Vec<u8>,
        resolved: &Resolved,
    ) -> GateOutcome {
        body.clear();
        let parts = request.parts;
        let attrs = match RequestAttributes::from_parts(parts) {
            Ok(attrs) => attrs,
            Err(RequestInfoError::InvalidEscape(e)) => {
                body.extend_from_slice(b"400 Bad Request");
                let mut response = Response::new(());
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(response::TEXT_PLAIN),
                );
                return refuse(parts, response, format!("invalid URL escape {e:?}"));
            }
            Err(e @ RequestInfoError::NoKind(_)) => {
                let cause = format!("failed to create RequestInfo: {e}");
                let uri = response::request_uri(parts);
                let response = response::internal_error_response(&uri, &cause, body);
                return refuse(parts, response, cause);
            }
        };
        let authn = AuthnRequest {
            certificates: request.certificates,
            headers: &parts.headers,
            wall: request.wall,
        };
        let identity = match self
            .authenticator
            .authenticate_with(&authn, now, &resolved.tokens)
        {
            AuthnOutcome::Authenticated(identity) => identity,
            AuthnOutcome::Anonymous => Identity::anonymous(),
            AuthnOutcome::NeedsTokenReview(review) => {
                return GateOutcome::NeedsTokenReview(review);
            }
            AuthnOutcome::Unauthorized(e) => {
                let response = response::unauthorized_response(parts, body);
                return refuse(parts, response, e.to_string());
            }
        };
        match self
            .authorizer
            .authorize_with(&identity, &attrs, now, resolved.access.as_ref())
        {
            AuthzOutcome::Allowed => GateOutcome::Proceed(identity),
            AuthzOutcome::Denied(reason) => {
                let response =
                    response::forbidden_response(parts, &attrs, &identity.name, &reason, body);
                let cause = format!("{}, reason: {reason:?}", response::request_uri(parts));
                refuse(parts, response, cause)
            }
            AuthzOutcome::NeedsSubjectAccessReview(review) => {
                GateOutcome::NeedsSubjectAccessReview(review)
            }
            AuthzOutcome::Failed(e) => {
                let uri = response::request_uri(parts);
                let response = response::internal_error_response(&uri, &e, body);
                refuse(parts, response, e)
            }
        }
    }

    /// See [`Authenticator::complete_token_review`].
    pub fn complete_token_review(
        &mut self,
        token_hash: &TokenHash,
        response: Result<&[u8], &str>,
        now: Instant,
    ) -> TokenVerdict {
        self.authenticator
            .complete_token_review(token_hash, response, now)
    }

    /// See [`Authorizer::complete_sar`].
    pub fn complete_sar(
        &mut self,
        key: &SarKey,
        response: Result<&[u8], &str>,
        now: Instant,
    ) -> AuthzOutcome {
        self.authorizer.complete_sar(key, response, now)
    }
}

/// Adds `Cache-Control: no-cache, private` when missing and echoes the request's `Audit-ID` (the runtime adds a fresh one when absent), as the
/// API's own responses do.
fn refuse(parts: &Parts, mut response: Response<()>, cause: String) -> GateOutcome {
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    }
    if let Some(id) = parts.headers.get(AUDIT_ID).filter(|id| !id.is_empty()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(AUDIT_ID), id.clone());
    }
    GateOutcome::Refuse(Refusal { response, cause })
}
