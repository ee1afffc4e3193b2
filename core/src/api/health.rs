//! The health endpoints `/healthz`, `/livez` and `/readyz` (spec `metrics-api.md` 4.10,
//! `kubelet-and-storage.md` 5.2).
//!
//! Each endpoint runs an ordered list of named checks, as the generic Kubernetes API
//! server does for metrics-server, and answers with byte-exact bodies: the upstream
//! end-to-end test compares them. Pass or fail is decided only from [`HealthInputs`],
//! which the caller fills from the engine's state and its monotonic clock.
//!
//! Paths:
//! * `/<endpoint>`: all checks; `?verbose` (presence counts, whatever its value) lists
//!   them on success, `?exclude=<check>` (repeatable) skips some.
//! * `/<endpoint>/<check>` for every check in that endpoint's list: that check alone.
//!
//! Any HTTP method gets the same answer, so [`respond`] takes none.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::goquote::push_go_quoted;
use http::StatusCode;

/// `Content-Type` of every health response.
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Headers of the aggregate endpoints and of every failure (Go's `http.Error` sets both).
const PLAIN_NOSNIFF: &[(&str, &str)] = &[
    ("Content-Type", CONTENT_TYPE),
    ("X-Content-Type-Options", "nosniff"),
];

/// Headers of a passing per-check path: upstream writes `ok` without setting any header,
/// so Go's content sniffing adds only the `Content-Type`.
const PLAIN: &[(&str, &str)] = &[("Content-Type", CONTENT_TYPE)];

/// Every health path, registered order (each endpoint, then its per-check paths). All are
/// "listed" paths of the index document, which sorts them.
pub const PATHS: [&str; 22] = [
    "/healthz",
    "/healthz/ping",
    "/healthz/log",
    "/healthz/poststarthook/max-in-flight-filter",
    "/healthz/poststarthook/storage-object-count-tracker-hook",
    "/healthz/metadata-informer-sync",
    "/livez",
    "/livez/ping",
    "/livez/log",
    "/livez/poststarthook/max-in-flight-filter",
    "/livez/poststarthook/storage-object-count-tracker-hook",
    "/livez/metric-collection-timely",
    "/livez/metadata-informer-sync",
    "/readyz",
    "/readyz/ping",
    "/readyz/log",
    "/readyz/poststarthook/max-in-flight-filter",
    "/readyz/poststarthook/storage-object-count-tracker-hook",
    "/readyz/metric-storage-ready",
    "/readyz/metric-informer-sync",
    "/readyz/metadata-informer-sync",
    "/readyz/shutdown",
];

/// The state the checks are evaluated against. `Default` is a process in which nothing
/// has happened yet (nothing synced, no store, hooks not finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthInputs {
    /// The Node informer has synced.
    pub node_informer_synced: bool,
    /// The Pod informer has synced.
    pub pod_informer_synced: bool,
    /// The store has a servable node pair and a servable container pair (`Snapshot::ready`).
    pub storage_ready: bool,
    /// Monotonic instant at which the most recent scrape cycle started; `None` before the
    /// first one.
    pub last_tick_started: Option<Duration>,
    /// The current monotonic instant, on the same clock as `last_tick_started`.
    pub now: Duration,
    /// `--metric-resolution`.
    pub resolution: Duration,
    /// The termination signal has been received.
    pub shutting_down: bool,
    /// The log flusher has not completed a flush for 2 minutes.
    pub log_blocked: bool,
    /// Both post-start hooks have finished.
    pub post_start_hooks_done: bool,
}

/// One of the three health endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/healthz` (legacy, all-purpose).
    Healthz,
    /// `/livez` (liveness probe).
    Livez,
    /// `/readyz` (readiness probe).
    Readyz,
}

impl Endpoint {
    /// All endpoints.
    pub const ALL: [Endpoint; 3] = [Endpoint::Healthz, Endpoint::Livez, Endpoint::Readyz];

    /// `healthz`, `livez` or `readyz`, as printed in `<name> check passed`.
    pub const fn name(self) -> &'static str {
        match self {
            Endpoint::Healthz => "healthz",
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
        }
    }

    /// `/healthz`, `/livez` or `/readyz`.
    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::Healthz => "/healthz",
            Endpoint::Livez => "/livez",
            Endpoint::Readyz => "/readyz",
        }
    }

    /// The endpoint's checks, in the order they run and print.
    pub const fn checks(self) -> &'static [Check] {
        use Check::*;
        match self {
            Endpoint::Healthz => &[
                Ping,
                Log,
                MaxInFlightFilter,
                StorageObjectCountTrackerHook,
                MetadataInformerSync,
            ],
            Endpoint::Livez => &[
                Ping,
                Log,
                MaxInFlightFilter,
                StorageObjectCountTrackerHook,
                MetricCollectionTimely,
                MetadataInformerSync,
            ],
            Endpoint::Readyz => &[
                Ping,
                Log,
                MaxInFlightFilter,
                StorageObjectCountTrackerHook,
                MetricStorageReady,
                MetricInformerSync,
                MetadataInformerSync,
                Shutdown,
            ],
        }
    }

    fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }
}

/// A named health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// `ping`: never fails.
    Ping,
    /// `log`: fails while logging is blocked.
    Log,
    /// `poststarthook/max-in-flight-filter`.
    MaxInFlightFilter,
    /// `poststarthook/storage-object-count-tracker-hook`.
    StorageObjectCountTrackerHook,
    /// `metric-collection-timely` (livez): the scrape loop is not stuck.
    MetricCollectionTimely,
    /// `metric-storage-ready` (readyz): there is something to serve.
    MetricStorageReady,
    /// `metric-informer-sync` (readyz): Node and Pod informers have synced.
    MetricInformerSync,
    /// `metadata-informer-sync` (all endpoints): never fails, as upstream's (it inspects
    /// an informer factory in which nothing is ever registered).
    MetadataInformerSync,
    /// `shutdown` (readyz): fails once termination has begun.
    Shutdown,
}

impl Check {
    /// The check's name as printed and as used in `exclude=` and per-check paths.
    pub const fn name(self) -> &'static str {
        match self {
            Check::Ping => "ping",
            Check::Log => "log",
            Check::MaxInFlightFilter => "poststarthook/max-in-flight-filter",
            Check::StorageObjectCountTrackerHook => {
                "poststarthook/storage-object-count-tracker-hook"
            }
            Check::MetricCollectionTimely => "metric-collection-timely",
            Check::MetricStorageReady => "metric-storage-ready",
            Check::MetricInformerSync => "metric-informer-sync",
            Check::MetadataInformerSync => "metadata-informer-sync",
            Check::Shutdown => "shutdown",
        }
    }

    /// Runs the check: `Err` carries upstream's internal error text, which only per-check
    /// paths print (aggregate endpoints withhold it; callers may log it).
    pub fn evaluate(self, inputs: &HealthInputs) -> Result<(), &'static str> {
        let fail = |failed: bool, text| if failed { Err(text) } else { Ok(()) };
        match self {
            Check::Ping | Check::MetadataInformerSync => Ok(()),
            Check::Log => fail(inputs.log_blocked, "logging blocked"),
            Check::MaxInFlightFilter | Check::StorageObjectCountTrackerHook => {
                fail(!inputs.post_start_hooks_done, "not finished")
            }
            Check::MetricCollectionTimely => fail(
                !collection_timely(inputs),
                "metric collection didn't finish on time",
            ),
            Check::MetricStorageReady => fail(!inputs.storage_ready, "no metrics to serve"),
            Check::MetricInformerSync => {
                fail(
                    !inputs.node_informer_synced,
                    "cache for node informer has not synced",
                )?;
                fail(
                    !inputs.pod_informer_synced,
                    "cache for pod informer has not synced",
                )
            }
            Check::Shutdown => fail(inputs.shutting_down, "process is shutting down"),
        }
    }
}

/// Upstream's liveness rule: fails only when a cycle has started and the latest start is
/// more than 1.5 × resolution ago; a clock reading before the start counts as timely.
fn collection_timely(inputs: &HealthInputs) -> bool {
    let Some(started) = inputs.last_tick_started else {
        return true;
    };
    // Go computes `time.Duration(1.5 * float64(resolution))`, exact for any realistic
    // resolution and equal to this truncating integer form.
    let max_wait = inputs.resolution.as_nanos() * 3 / 2;
    inputs
        .now
        .checked_sub(started)
        .is_none_or(|waited| waited.as_nanos() <= max_wait)
}

/// A health answer: status, headers to set, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthResponse {
    /// 200 or 500.
    pub status: StatusCode,
    /// Headers to set, in order (`Content-Type`, and `X-Content-Type-Options: nosniff`
    /// wherever upstream sends it).
    pub headers: &'static [(&'static str, &'static str)],
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// Checks that failed with their internal error texts, for the caller to log (the
    /// aggregate bodies say only "reason withheld"). Excluded checks are not run.
    pub failures: Vec<(Check, &'static str)>,
}

/// Whether `path` is one of the three endpoints that every caller, even anonymous, may
/// read without authorization. Per-check sub-paths are not; query strings do not matter,
/// so pass the path alone.
pub fn always_allowed(path: &str) -> bool {
    Endpoint::from_path(path).is_some()
}

/// Answers a health request, or `None` when `path` is not a health path (the router then
/// goes on, ending in a 404).
///
/// `path` is the decoded request path (Go's `URL.Path`), matched exactly: `/readyz/`
/// and `/readyz/nope` are not health paths. `query` is the raw query string without the
/// `?`, parsed as Go's `url.ParseQuery` does.
pub fn respond(path: &str, query: Option<&str>, inputs: &HealthInputs) -> Option<HealthResponse> {
    if let Some(endpoint) = Endpoint::from_path(path) {
        return Some(respond_endpoint(endpoint, query.unwrap_or(""), inputs));
    }
    let check = Endpoint::ALL.into_iter().find_map(|endpoint| {
        let name = path.strip_prefix(endpoint.path())?.strip_prefix('/')?;
        endpoint.checks().iter().copied().find(|c| c.name() == name)
    })?;
    Some(match check.evaluate(inputs) {
        Ok(()) => HealthResponse {
            status: StatusCode::OK,
            headers: PLAIN,
            body: b"ok".to_vec(),
            failures: Vec::new(),
        },
        Err(text) => {
            let mut body = Vec::with_capacity(24 + text.len());
            body.extend_from_slice(b"internal server error: ");
            body.extend_from_slice(text.as_bytes());
            body.push(b'\n');
            HealthResponse {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                headers: PLAIN_NOSNIFF,
                body,
                failures: vec![(check, text)],
            }
        }
    })
}

/// The aggregate endpoint, as the generic API server's `handleRootHealth`.
fn respond_endpoint(endpoint: Endpoint, query: &str, inputs: &HealthInputs) -> HealthResponse {
    let mut verbose = false;
    // Sorted: the warn line lists leftovers in Go's `sets.List` (sorted) order.
    let mut excluded: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (key, value) in parse_query(query) {
        match key.as_slice() {
            b"verbose" => verbose = true,
            b"exclude" => {
                excluded.insert(value);
            }
            _ => {}
        }
    }

    let mut lines = Vec::with_capacity(400);
    let mut failures = Vec::new();
    for &check in endpoint.checks() {
        let name = check.name().as_bytes();
        if excluded.remove(name) {
            push_line(&mut lines, &[b"[+]", name, b" excluded: ok"]);
            continue;
        }
        match check.evaluate(inputs) {
            Ok(()) => push_line(&mut lines, &[b"[+]", name, b" ok"]),
            Err(text) => {
                push_line(&mut lines, &[b"[-]", name, b" failed: reason withheld"]);
                failures.push((check, text));
            }
        }
    }
    if !excluded.is_empty() {
        lines.extend_from_slice(b"warn: some health checks cannot be excluded: no matches for ");
        for (i, name) in excluded.iter().enumerate() {
            if i > 0 {
                lines.push(b',');
            }
            push_go_quoted(&mut lines, name);
        }
        lines.push(b'\n');
    }

    let name = endpoint.name().as_bytes();
    if !failures.is_empty() {
        // Failures are always verbose (Go's `http.Error` appends the newline).
        push_line(&mut lines, &[name, b" check failed"]);
        return HealthResponse {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            headers: PLAIN_NOSNIFF,
            body: lines,
            failures,
        };
    }
    let body = if verbose {
        push_line(&mut lines, &[name, b" check passed"]);
        lines
    } else {
        b"ok".to_vec()
    };
    HealthResponse {
        status: StatusCode::OK,
        headers: PLAIN_NOSNIFF,
        body,
        failures,
    }
}

fn push_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        out.extend_from_slice(part);
    }
    out.push(b'\n');
}

/// Go's `url.ParseQuery`, keeping what it keeps: `&`-separated pairs, a pair containing
/// `;` dropped, the first `=` splitting key from value, `+` as space, `%XX` decoded, and
/// a pair whose key or value has a bad escape dropped. Values are bytes (Go strings need
/// not be UTF-8).
fn parse_query(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape_query(key)?, unescape_query(value)?))
        })
}

fn unescape_query(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOLUTION: Duration = Duration::from_secs(15);

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

    fn get(path_and_query: &str, inputs: &HealthInputs) -> HealthResponse {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        respond(path, query, inputs).unwrap_or_else(|| panic!("{path} is a health path"))
    }

    fn body(r: &HealthResponse) -> &str {
        std::str::from_utf8(&r.body).expect("health bodies are UTF-8")
    }

    const READYZ_VERBOSE: &str = "[+]ping ok\n\
        [+]log ok\n\
        [+]poststarthook/max-in-flight-filter ok\n\
        [+]poststarthook/storage-object-count-tracker-hook ok\n\
        [+]metric-storage-ready ok\n\
        [+]metric-informer-sync ok\n\
        [+]metadata-informer-sync ok\n\
        [+]shutdown ok\n\
        readyz check passed\n";

    const LIVEZ_VERBOSE: &str = "[+]ping ok\n\
        [+]log ok\n\
        [+]poststarthook/max-in-flight-filter ok\n\
        [+]poststarthook/storage-object-count-tracker-hook ok\n\
        [+]metric-collection-timely ok\n\
        [+]metadata-informer-sync ok\n\
        livez check passed\n";

    #[test]
    fn api_case_24_storage_not_ready_per_check_path() {
        let inputs = HealthInputs {
            storage_ready: false,
            ..healthy()
        };
        let r = get("/readyz/metric-storage-ready", &inputs);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body(&r), "internal server error: no metrics to serve\n");
        assert_eq!(r.headers, PLAIN_NOSNIFF);
        assert_eq!(
            r.failures,
            vec![(Check::MetricStorageReady, "no metrics to serve")]
        );
    }

    #[test]
    fn api_case_54_exact_roots_always_allowed_and_ok_when_healthy() {
        for path in ["/livez", "/readyz", "/healthz"] {
            assert!(always_allowed(path), "{path}");
            let r = get(path, &healthy());
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert_eq!(body(&r), "ok", "{path}");
            assert_eq!(r.headers, PLAIN_NOSNIFF);
        }
        for path in [
            "/readyz/metric-storage-ready",
            "/livez/ping",
            "/healthz/",
            "/readyz/",
            "/metrics",
            "/healthzz",
            "/readyz?verbose",
        ] {
            assert!(!always_allowed(path), "{path}");
        }
    }

    #[test]
    fn api_case_61_verbose_bodies_when_healthy() {
        let r = get("/readyz?verbose", &healthy());
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(body(&r), READYZ_VERBOSE);
        assert_eq!(r.headers, PLAIN_NOSNIFF);
        assert!(r.failures.is_empty());

        let r = get("/livez?verbose", &healthy());
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(body(&r), LIVEZ_VERBOSE);

        let r = get("/healthz?verbose", &healthy());
        assert_eq!(
            body(&r),
            "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
             [+]poststarthook/storage-object-count-tracker-hook ok\n\
             [+]metadata-informer-sync ok\nhealthz check passed\n"
        );
    }

    #[test]
    fn api_case_62_store_not_ready_fails_readyz_not_livez() {
        let inputs = HealthInputs {
            storage_ready: false,
            ..healthy()
        };
        let r = get("/readyz", &inputs);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers[0], ("Content-Type", "text/plain; charset=utf-8"));
        let text = body(&r);
        assert!(text.contains("[-]metric-storage-ready failed: reason withheld\n"));
        assert!(text.ends_with("readyz check failed\n"));
        // Always verbose on failure: every check is listed.
        assert_eq!(
            text,
            READYZ_VERBOSE
                .replace(
                    "[+]metric-storage-ready ok",
                    "[-]metric-storage-ready failed: reason withheld"
                )
                .replace("readyz check passed", "readyz check failed")
        );

        let r = get("/livez", &inputs);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(body(&r), "ok");
    }

    #[test]
    fn api_case_63_exclude_skips_a_failing_check_and_warns_on_unknown_names() {
        let inputs = HealthInputs {
            storage_ready: false,
            ..healthy()
        };
        let r = get("/readyz?exclude=metric-storage-ready&verbose", &inputs);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            body(&r),
            READYZ_VERBOSE.replace(
                "[+]metric-storage-ready ok",
                "[+]metric-storage-ready excluded: ok"
            )
        );
        assert!(r.failures.is_empty(), "an excluded check is not run");

        let r = get(
            "/readyz?exclude=metric-storage-ready&exclude=nope&verbose",
            &inputs,
        );
        assert_eq!(r.status, StatusCode::OK);
        assert!(body(&r).ends_with(
            "[+]shutdown ok\n\
             warn: some health checks cannot be excluded: no matches for \"nope\"\n\
             readyz check passed\n"
        ));
    }

    #[test]
    fn api_case_64_collection_timely() {
        let started = Duration::from_secs(500);
        let at = |now: Duration, last: Option<Duration>| HealthInputs {
            now,
            last_tick_started: last,
            ..healthy()
        };

        let stuck = at(started + 2 * RESOLUTION, Some(started));
        let r = get("/livez", &stuck);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body(&r).contains("[-]metric-collection-timely failed: reason withheld\n"),
            "{}",
            body(&r)
        );
        assert!(body(&r).ends_with("livez check failed\n"));
        let r = get("/livez/metric-collection-timely", &stuck);
        assert_eq!(
            body(&r),
            "internal server error: metric collection didn't finish on time\n"
        );
        // Readiness and healthz do not run the liveness check.
        assert_eq!(get("/readyz", &stuck).status, StatusCode::OK);
        assert_eq!(get("/healthz", &stuck).status, StatusCode::OK);

        for ok in [
            at(started + RESOLUTION, Some(started)),
            at(started, None),
            at(started + 100 * RESOLUTION, None),
            // Exactly 1.5 × resolution is not "more than".
            at(started + RESOLUTION * 3 / 2, Some(started)),
            // A reading before the start (never on a monotonic clock) is not a failure.
            at(started, Some(started + RESOLUTION)),
        ] {
            let r = get("/livez", &ok);
            assert_eq!(body(&r), "ok", "{ok:?}");
        }
        let just_over = at(
            started + RESOLUTION * 3 / 2 + Duration::from_nanos(1),
            Some(started),
        );
        assert_eq!(
            get("/livez", &just_over).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn api_case_65_shutdown_fails_readyz() {
        let inputs = HealthInputs {
            shutting_down: true,
            ..healthy()
        };
        let r = get("/readyz?verbose", &inputs);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body(&r).contains("[-]shutdown failed: reason withheld\n"));
        assert!(body(&r).ends_with("readyz check failed\n"));
        assert_eq!(get("/livez", &inputs).status, StatusCode::OK);
        assert_eq!(
            body(&get("/readyz/shutdown", &inputs)),
            "internal server error: process is shutting down\n"
        );
    }

    #[test]
    fn verbose_presence_counts_whatever_the_value() {
        for q in [
            "verbose",
            "verbose=",
            "verbose=false",
            "verbose=0",
            "a=b&verbose",
            "ver%62ose=1",
        ] {
            let r = get(&format!("/readyz?{q}"), &healthy());
            assert_eq!(body(&r), READYZ_VERBOSE, "{q}");
        }
        for q in [
            "",
            "verbosee",
            "v=verbose",
            "verbose;x",
            "verbose=%zz",
            "&&",
        ] {
            let r = get(&format!("/readyz?{q}"), &healthy());
            assert_eq!(body(&r), "ok", "{q}");
        }
    }

    #[test]
    fn non_verbose_success_with_exclude_is_plain_ok() {
        let r = get("/readyz?exclude=nope", &healthy());
        assert_eq!(body(&r), "ok");
    }

    #[test]
    fn warn_line_sorted_deduplicated_and_go_quoted() {
        let r = get(
            "/livez?verbose&exclude=zeta&exclude=metric-storage-ready&exclude=alpha&exclude=zeta\
             &exclude=&exclude=a%22b%5Cc&exclude=tab%09nl%0A&exclude=bad%FF&exclude=%C3%A9&exclude=a+b",
            &healthy(),
        );
        // metric-storage-ready is a readyz check only, so livez cannot exclude it.
        let want = "warn: some health checks cannot be excluded: no matches for \
                    \"\",\"a b\",\"a\\\"b\\\\c\",\"alpha\",\"bad\\xff\",\"metric-storage-ready\",\
                    \"tab\\tnl\\n\",\"zeta\",\"é\"\nlivez check passed\n";
        assert!(body(&r).ends_with(want), "{}", body(&r));
    }

    #[test]
    fn warn_line_precedes_the_failure_line() {
        let inputs = HealthInputs {
            log_blocked: true,
            ..healthy()
        };
        let r = get("/healthz?exclude=nope", &inputs);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body(&r),
            "[+]ping ok\n[-]log failed: reason withheld\n\
             [+]poststarthook/max-in-flight-filter ok\n\
             [+]poststarthook/storage-object-count-tracker-hook ok\n\
             [+]metadata-informer-sync ok\n\
             warn: some health checks cannot be excluded: no matches for \"nope\"\n\
             healthz check failed\n"
        );
        assert_eq!(r.failures, vec![(Check::Log, "logging blocked")]);
    }

    #[test]
    fn excluding_every_failing_check_passes() {
        let inputs = HealthInputs {
            post_start_hooks_done: false,
            ..healthy()
        };
        assert_eq!(
            get("/healthz", &inputs).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let r = get(
            "/healthz?exclude=poststarthook/max-in-flight-filter\
             &exclude=poststarthook%2Fstorage-object-count-tracker-hook",
            &inputs,
        );
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(body(&r), "ok");
    }

    #[test]
    fn every_per_check_path_answers_ok_when_healthy() {
        let mut n = 0;
        for endpoint in Endpoint::ALL {
            for check in endpoint.checks() {
                let path = format!("{}/{}", endpoint.path(), check.name());
                let r = get(&path, &healthy());
                assert_eq!(r.status, StatusCode::OK, "{path}");
                assert_eq!(body(&r), "ok", "{path}");
                assert_eq!(r.headers, PLAIN, "{path}");
                assert!(!always_allowed(&path));
                n += 1;
            }
        }
        assert_eq!(n, 19);
    }

    #[test]
    fn per_check_failure_texts() {
        let cases: &[(&str, HealthInputs, &str)] = &[
            (
                "/healthz/log",
                HealthInputs {
                    log_blocked: true,
                    ..healthy()
                },
                "logging blocked",
            ),
            (
                "/healthz/poststarthook/max-in-flight-filter",
                HealthInputs {
                    post_start_hooks_done: false,
                    ..healthy()
                },
                "not finished",
            ),
            (
                "/livez/poststarthook/storage-object-count-tracker-hook",
                HealthInputs {
                    post_start_hooks_done: false,
                    ..healthy()
                },
                "not finished",
            ),
            (
                "/readyz/metric-informer-sync",
                HealthInputs {
                    node_informer_synced: false,
                    pod_informer_synced: false,
                    ..healthy()
                },
                "cache for node informer has not synced",
            ),
            (
                "/readyz/metric-informer-sync",
                HealthInputs {
                    pod_informer_synced: false,
                    ..healthy()
                },
                "cache for pod informer has not synced",
            ),
        ];
        for (path, inputs, text) in cases {
            let r = get(path, inputs);
            assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert_eq!(
                body(&r),
                format!("internal server error: {text}\n"),
                "{path}"
            );
            assert_eq!(r.headers, PLAIN_NOSNIFF);
        }
    }

    #[test]
    fn fresh_process_fails_readiness_but_is_alive() {
        let fresh = HealthInputs::default();
        let r = get("/readyz?verbose", &fresh);
        assert_eq!(
            body(&r),
            "[+]ping ok\n[+]log ok\n\
             [-]poststarthook/max-in-flight-filter failed: reason withheld\n\
             [-]poststarthook/storage-object-count-tracker-hook failed: reason withheld\n\
             [-]metric-storage-ready failed: reason withheld\n\
             [-]metric-informer-sync failed: reason withheld\n\
             [+]metadata-informer-sync ok\n[+]shutdown ok\nreadyz check failed\n"
        );
        // Upstream's metadata-informer-sync never fails, even before any sync.
        assert_eq!(body(&get("/readyz/metadata-informer-sync", &fresh)), "ok");
        let alive = HealthInputs {
            post_start_hooks_done: true,
            ..fresh
        };
        assert_eq!(body(&get("/livez", &alive)), "ok");
    }

    #[test]
    fn non_health_paths_are_not_answered() {
        for path in [
            "/",
            "/healthz/",
            "/readyz/",
            "/livez//ping",
            "/readyz/nope",
            "/readyz/poststarthook",
            "/readyz/poststarthook/",
            "/livez/metric-storage-ready",
            "/healthz/metric-collection-timely",
            "/healthz/shutdown",
            "/readyzz",
            "/READYZ",
            "readyz",
            "/readyz/ping/",
            "/metrics",
        ] {
            assert!(respond(path, None, &healthy()).is_none(), "{path}");
        }
    }

    #[test]
    fn paths_list_every_endpoint_and_check() {
        let mut built = Vec::new();
        for endpoint in Endpoint::ALL {
            built.push(endpoint.path().to_string());
            for check in endpoint.checks() {
                built.push(format!("{}/{}", endpoint.path(), check.name()));
            }
        }
        assert_eq!(built, PATHS);
        for path in PATHS {
            assert!(respond(path, None, &healthy()).is_some(), "{path}");
        }
    }
}
