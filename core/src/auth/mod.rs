//! Delegated authentication and authorization, as the generic Kubernetes API server does
//! it for an aggregated API (spec 5): who is calling, and may they do this?
//!
//! Sans-IO like the rest of the core: the TLS layer's peer chain, the request head and the
//! time come in; decisions come out. When a decision needs kube-apiserver — a TokenReview
//! for a bearer token, a SubjectAccessReview for a permission — the outcome is a request
//! for the engine to send ([`TokenReviewRequest`], [`SarRequest`]); the engine feeds the
//! answer back ([`Authenticator::complete_token_review`], [`Authorizer::complete_sar`])
//! and asks again, which is then answered from the cache.
//!
//! ```text
//!  RequestAttributes::from_parts ─ error ─▶ 500 text          (request info, before authn)
//!  Authenticator::authenticate
//!     front proxy (request-header CA + allowed CN, X-Remote-* headers)
//!     client certificate (client CA: user = CN, groups = O)
//!     bearer token / websocket token ─ miss ─▶ NeedsTokenReview ─▶ complete_token_review
//!     anonymous (system:anonymous, system:unauthenticated)
//!     any error and no success ─▶ 401 Status
//!  Authorizer::authorize
//!     system:masters ─▶ allowed        always-allow paths ─▶ allowed
//!     SubjectAccessReview ─ miss ─▶ NeedsSubjectAccessReview ─▶ complete_sar
//!     denied / no opinion ─▶ 403 Status      review failed ─▶ 500 text
//! ```
//!
//! [`Gate`] runs the whole chain for one request and writes the refusals.
//! [`configmap`] turns the `kube-system/extension-apiserver-authentication` ConfigMap and
//! the flags into the authentication settings (spec 5.3).
//!
//! Results of a review that completed with an error are not cached (as upstream), but they
//! are visible to lookups made at the same [`Instant`](crate::time::Instant) as the
//! completion, so the engine answers the requests that waited for that review by asking
//! again with the `now` it passed to `complete_*`. The same holds for reviews completed
//! with a TTL of zero.

pub mod attributes;
pub mod authn;
pub mod authz;
mod cache;
pub mod configmap;
pub mod gate;
pub mod response;
mod text;
pub mod x509;

pub use attributes::{
    RequestAttributes, RequestInfoError, ResourceAttributes, SelectorRequirement,
};
pub use authn::{
    Authenticator, AuthnConfig, AuthnError, AuthnOutcome, AuthnRequest, Identity,
    RequestHeaderConfig, TokenHash, TokenReviewRequest, TokenVerdict,
};
pub use authz::{Authorizer, AuthzConfig, AuthzConfigError, AuthzOutcome, SarKey, SarRequest};
pub use gate::{Gate, GateOutcome, GateRequest, Refusal, Resolved};
pub use x509::{CaBundle, CaBundleError, Subject, VerifyError};
