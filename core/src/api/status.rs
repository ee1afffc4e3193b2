//! `Status` error objects (apiVersion `v1`) exactly as the Kubernetes API machinery
//! writes them: keys `kind`, `apiVersion`, `metadata`, `status`, `message`, `reason`,
//! `details`, `code`; `details` keys `name`, `group`, `kind`, each omitted when empty.

use super::json::write_str;

/// `details` of a Status; `None` in [`Status::details`] omits the key, all-empty
/// details print `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
}

/// A failure Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<StatusDetails>,
}

impl Status {
    fn new(
        code: u16,
        reason: &'static str,
        message: impl Into<String>,
        details: Option<StatusDetails>,
    ) -> Status {
        Status {
            code,
            reason,
            message: message.into(),
            details,
        }
    }

    fn details(name: &str, group: &str, kind: &str) -> Option<StatusDetails> {
        Some(StatusDetails {
            name: name.into(),
            group: group.into(),
            kind: kind.into(),
        })
    }

    /// A Node object that does not exist.
    pub fn node_not_found(name: &str) -> Status {
        Status::new(
            404,
            "NotFound",
            format!("node \"{name}\" not found"),
            Status::details(name, "", "node"),
        )
    }

    /// A Node that exists but has no servable metrics.
    pub fn node_metrics_not_found(name: &str) -> Status {
        Status::new(
            404,
            "NotFound",
            format!("nodemetrics.metrics.k8s.io \"{name}\" not found"),
            Status::details(name, "metrics.k8s.io", "nodemetrics"),
        )
    }

    /// A pod that does not exist, is not Running, or lives in another namespace.
    pub fn pod_not_found(name: &str) -> Status {
        Status::new(
            404,
            "NotFound",
            format!("pods \"{name}\" not found"),
            Status::details(name, "", "pods"),
        )
    }

    /// A Running pod without servable metrics.
    pub fn pod_metrics_not_found(namespace: &str, name: &str) -> Status {
        let full = format!("{namespace}/{name}");
        Status::new(
            404,
            "NotFound",
            format!("podmetrics.metrics.k8s.io \"{full}\" not found"),
            Status::details(&full, "metrics.k8s.io", "podmetrics"),
        )
    }

    /// An unknown path under a served API root.
    pub fn path_not_found() -> Status {
        Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(StatusDetails::default()),
        )
    }

    pub fn method_not_allowed() -> Status {
        Status::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(StatusDetails::default()),
        )
    }

    /// `watch=true` on a list (`resource` is `nodes` or `pods`).
    pub fn watch_not_supported(resource: &str) -> Status {
        Status::new(
            405,
            "MethodNotAllowed",
            format!("watch is not supported on resources of kind \"{resource}.metrics.k8s.io\""),
            Status::details("", "metrics.k8s.io", resource),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(400, "BadRequest", message, None)
    }

    /// The serializer could not produce any acceptable media type.
    pub fn not_acceptable() -> Status {
        Status::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            None,
        )
    }

    /// The router found no producible media type at all in Accept.
    pub fn route_not_acceptable() -> Status {
        Status::new(
            406,
            "NotAcceptable",
            "406: Not Acceptable",
            Some(StatusDetails::default()),
        )
    }

    pub fn unauthorized() -> Status {
        Status::new(401, "Unauthorized", "Unauthorized", None)
    }

    /// Appends the compact JSON (no trailing newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"#,
        );
        write_str(out, &self.message);
        out.extend_from_slice(br#","reason":"#);
        write_str(out, self.reason);
        if let Some(d) = &self.details {
            out.extend_from_slice(br#","details":{"#);
            let mut first = true;
            for (key, value) in [("name", &d.name), ("group", &d.group), ("kind", &d.kind)] {
                if value.is_empty() {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_str(out, key);
                out.push(b':');
                write_str(out, value);
            }
            out.push(b'}');
        }
        out.extend_from_slice(format!(",\"code\":{}}}", self.code).as_bytes());
    }

    /// The Status as protobuf: `k8s\0` + `runtime.Unknown` wrapping `v1.Status`.
    pub fn write_protobuf(&self, out: &mut Vec<u8>) {
        super::protobuf::write_envelope(out, "v1", "Status", |s| {
            s.empty_list_meta(1);
            s.string(2, "Failure");
            s.string(3, &self.message);
            s.string(4, self.reason);
            if let Some(d) = &self.details {
                s.nested(5, |m| {
                    m.string(1, &d.name);
                    m.string(2, &d.group);
                    m.string(3, &d.kind);
                    // retryAfterSeconds and uid are non-pointer: always written.
                    m.int(5, 0);
                    m.string(6, "");
                });
            }
            s.int(6, i64::from(self.code));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &Status) -> String {
        let mut out = Vec::new();
        s.write_json(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            json(&Status::pod_metrics_not_found("default", "web")),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"podmetrics.metrics.k8s.io \"default/web\" not found","reason":"NotFound","details":{"name":"default/web","group":"metrics.k8s.io","kind":"podmetrics"},"code":404}"#
        );
        assert_eq!(
            json(&Status::unauthorized()),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
        assert!(
            json(&Status::node_not_found("node9"))
                .contains(r#""details":{"name":"node9","kind":"node"}"#)
        );
        assert!(json(&Status::method_not_allowed()).contains(r#""details":{},"code":405"#));
        assert!(
            json(&Status::watch_not_supported("pods"))
                .contains(r#""details":{"group":"metrics.k8s.io","kind":"pods"}"#)
        );
        assert!(!json(&Status::bad_request("x")).contains("details"));
    }
}
