//! Scenario tests of the watchers: deterministic, no sockets, virtual time.

use super::*;
use std::time::Duration;

fn t(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

fn node_json(name: &str, rv: u32, labels: &[(&str, &str)]) -> String {
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!(
        r#"{{"kind":"Node","apiVersion":"v1","metadata":{{"name":"{name}","resourceVersion":"{rv}","labels":{{{}}}}},"status":{{"addresses":[{{"type":"InternalIP","address":"10.0.0.{rv}"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":10250}}}}}}}}"#,
        labels.join(",")
    )
}

fn pod_json(ns: &str, name: &str, rv: u32) -> String {
    format!(
        r#"{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{{"name":"{name}","namespace":"{ns}","resourceVersion":"{rv}","labels":{{"app":"{name}"}}}}}}"#
    )
}

fn list_json(items: &[String], rv: &str, continue_token: Option<&str>) -> String {
    let cont = continue_token
        .map(|c| format!(r#","continue":"{c}""#))
        .unwrap_or_default();
    format!(
        r#"{{"kind":"List","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"{cont}}},"items":[{}]}}"#,
        items.join(",")
    )
}

fn event(kind: &str, object: &str) -> String {
    format!(r#"{{"type":"{kind}","object":{object}}}"#)
}

fn bookmark(rv: &str) -> String {
    event(
        "BOOKMARK",
        &format!(r#"{{"kind":"Node","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"}}}}"#),
    )
}

fn error_event(code: u16, reason: &str) -> String {
    event(
        "ERROR",
        &format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"m","reason":"{reason}","code":{code}}}"#
        ),
    )
}

fn drain<T: ClusterObject>(w: &mut Watcher<T>) -> Vec<ClusterAction> {
    std::iter::from_fn(|| w.poll_action()).collect()
}

fn only_request(actions: &[ClusterAction]) -> ClusterRequest {
    let sends: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            ClusterAction::Send(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sends.len(),
        1,
        "expected exactly one request in {actions:#?}"
    );
    sends.into_iter().next().expect("checked length")
}

fn failures(actions: &[ClusterAction]) -> Vec<(WatchError, Retry, Duration)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ClusterAction::Event(ClusterEvent::Failed {
                error,
                retry,
                delay,
                ..
            }) => Some((error.clone(), *retry, *delay)),
            _ => None,
        })
        .collect()
}

fn cancels(actions: &[ClusterAction]) -> Vec<RequestId> {
    actions
        .iter()
        .filter_map(|a| match a {
            ClusterAction::Cancel(id) => Some(*id),
            _ => None,
        })
        .collect()
}

fn accept(r: &ClusterRequest) -> &str {
    r.headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn node_names(w: &NodeWatcher) -> Vec<String> {
    w.cache().iter().map(|n| n.name.to_string()).collect()
}

const OK: http::StatusCode = http::StatusCode::OK;

/// A node watcher that has listed `names` at resourceVersion "10" and is watching.
fn watching_nodes(names: &[&str]) -> (NodeWatcher, RequestId) {
    let mut w = NodeWatcher::new(WatcherConfig::default(), t(0));
    let list = only_request(&drain(&mut w));
    let items: Vec<_> = names.iter().map(|n| node_json(n, 1, &[])).collect();
    w.on_response(t(10), list.id, OK, list_json(&items, "10", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    assert_eq!(watch.kind, RequestKind::Watch);
    (w, watch.id)
}

/// Waits out the backoff and returns the request that follows.
fn after_backoff<T: ClusterObject>(w: &mut Watcher<T>) -> ClusterRequest {
    let at = w.poll_timeout().expect("backing off");
    w.handle_timeout(at);
    only_request(&drain(w))
}

#[test]
fn list_then_watch_then_events() {
    let mut w = NodeWatcher::new(WatcherConfig::default(), t(0));
    assert!(!w.synced());
    let list = only_request(&drain(&mut w));
    assert_eq!(list.kind, RequestKind::List);
    assert_eq!(list.method, http::Method::GET);
    assert_eq!(
        list.path_and_query,
        "/api/v1/nodes?limit=500&resourceVersion=0"
    );
    assert_eq!(accept(&list), "application/json");
    assert_eq!(w.poll_timeout(), Some(t(60_000)), "list deadline");

    let body = list_json(
        &[node_json("b", 2, &[("zone", "x")]), node_json("a", 1, &[])],
        "10",
        None,
    );
    w.on_response(t(5), list.id, OK, body.as_bytes());
    assert!(w.synced());
    let actions = drain(&mut w);
    assert!(matches!(
        actions[0],
        ClusterAction::Event(ClusterEvent::Listed {
            resource: Resource::Nodes,
            objects: 2,
            pages: 1,
            first: true
        })
    ));
    let watch = only_request(&actions);
    assert_eq!(
        watch.path_and_query,
        "/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds=290&watch=true"
    );
    assert_eq!(node_names(&w), ["a", "b"]);
    assert_eq!(w.resource_version(), Some("10"));
    let g = w.generation();

    w.on_watch_event(
        t(6),
        watch.id,
        event("ADDED", &node_json("c", 11, &[])).as_bytes(),
    );
    let modified = event("MODIFIED", &node_json("a", 12, &[("role", "gpu")])) + "\r\n";
    w.on_watch_event(t(7), watch.id, modified.as_bytes());
    w.on_watch_event(
        t(8),
        watch.id,
        event("DELETED", &node_json("b", 13, &[])).as_bytes(),
    );
    w.on_watch_event(t(9), watch.id, b"  \n");
    assert!(drain(&mut w).is_empty());
    assert_eq!(node_names(&w), ["a", "c"]);
    assert_eq!(
        w.cache().get("", "a").and_then(|n| n.labels.get("role")),
        Some("gpu")
    );
    assert_eq!(w.resource_version(), Some("13"));
    assert_eq!(w.generation(), g + 3);
    // Deleting what is not there changes nothing but the version.
    w.on_watch_event(
        t(10),
        watch.id,
        event("DELETED", &node_json("zz", 14, &[])).as_bytes(),
    );
    assert_eq!(w.generation(), g + 3);
    assert_eq!(w.resource_version(), Some("14"));
}

#[test]
fn pagination_across_three_pages() {
    let cfg = WatcherConfig {
        page_size: 2,
        ..WatcherConfig::default()
    };
    let mut w = PodWatcher::new(cfg, t(0));
    let p1 = only_request(&drain(&mut w));
    assert_eq!(
        p1.path_and_query,
        "/api/v1/pods?fieldSelector=status.phase%3DRunning&limit=2&resourceVersion=0"
    );
    assert_eq!(
        accept(&p1),
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    );
    let page = |items: &[(&str, &str)], cont: Option<&str>| {
        let items: Vec<_> = items.iter().map(|(ns, n)| pod_json(ns, n, 1)).collect();
        list_json(&items, "30", cont)
    };
    w.on_response(
        t(1),
        p1.id,
        OK,
        page(&[("a", "1"), ("b", "1")], Some("c1+/=")).as_bytes(),
    );
    let p2 = only_request(&drain(&mut w));
    assert_eq!(
        p2.path_and_query,
        "/api/v1/pods?continue=c1%2B%2F%3D&fieldSelector=status.phase%3DRunning&limit=2",
        "continued pages carry the token and no resourceVersion"
    );
    assert!(
        !w.synced() && w.cache().is_empty(),
        "nothing visible mid-list"
    );
    w.on_response(
        t(2),
        p2.id,
        OK,
        page(&[("a", "2"), ("c", "1")], Some("c2")).as_bytes(),
    );
    let p3 = only_request(&drain(&mut w));
    assert!(p3.path_and_query.starts_with("/api/v1/pods?continue=c2&"));
    w.on_response(t(3), p3.id, OK, page(&[("a", "0")], None).as_bytes());
    let actions = drain(&mut w);
    assert!(matches!(
        actions[0],
        ClusterAction::Event(ClusterEvent::Listed {
            objects: 5,
            pages: 3,
            ..
        })
    ));
    let watch = only_request(&actions);
    assert_eq!(
        watch.path_and_query,
        "/api/v1/pods?allowWatchBookmarks=true&fieldSelector=status.phase%3DRunning&resourceVersion=30&timeoutSeconds=290&watch=true"
    );
    assert_eq!(
        accept(&watch),
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    );
    assert!(w.synced());
    let keys: Vec<_> = w
        .cache()
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    assert_eq!(keys, ["a/0", "a/1", "a/2", "b/1", "c/1"]);
}

#[test]
fn bookmark_moves_resource_version_only() {
    let (mut w, watch) = watching_nodes(&["a"]);
    let g = w.generation();
    w.on_watch_event(t(20), watch, bookmark("57").as_bytes());
    assert_eq!(w.resource_version(), Some("57"));
    assert_eq!(w.generation(), g);
    assert_eq!(node_names(&w), ["a"]);
    // The next watch resumes from the bookmark.
    w.on_watch_end(t(5_000), watch);
    let next = only_request(&drain(&mut w));
    assert!(next.path_and_query.contains("&resourceVersion=57&"));
}

#[test]
fn gone_on_watch_relists_and_replaces_cache() {
    let (mut w, watch) = watching_nodes(&["a", "b"]);
    let status =
        br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410}"#;
    w.on_response(t(20), watch, http::StatusCode::GONE, status);
    let actions = drain(&mut w);
    let f = failures(&actions);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].0.clone(), f[0].1), (WatchError::Gone, Retry::Relist));
    assert!(
        cancels(&actions).is_empty(),
        "the response is complete, nothing to cancel"
    );
    let at = w.poll_timeout().expect("backing off");
    assert_eq!(at, t(20).saturating_add(f[0].2));
    w.handle_timeout(t(21));
    assert!(drain(&mut w).is_empty(), "early timeout does nothing");
    let relist = after_backoff(&mut w);
    assert_eq!(
        relist.path_and_query, "/api/v1/nodes?limit=500",
        "a relist reads the latest state"
    );
    assert_eq!(
        node_names(&w),
        ["a", "b"],
        "old cache served while relisting"
    );
    let body = list_json(
        &[node_json("b", 3, &[]), node_json("c", 4, &[])],
        "99",
        None,
    );
    w.on_response(at, relist.id, OK, body.as_bytes());
    let actions = drain(&mut w);
    assert!(matches!(
        actions[0],
        ClusterAction::Event(ClusterEvent::Listed { first: false, .. })
    ));
    assert_eq!(node_names(&w), ["b", "c"]);
    assert!(
        only_request(&actions)
            .path_and_query
            .contains("resourceVersion=99")
    );
}

#[test]
fn error_event_410_relists() {
    let (mut w, watch) = watching_nodes(&["a"]);
    w.on_watch_event(t(20), watch, error_event(410, "Expired").as_bytes());
    let actions = drain(&mut w);
    assert_eq!(cancels(&actions), [watch]);
    assert_eq!(failures(&actions)[0].1, Retry::Relist);
    assert_eq!(failures(&actions)[0].0, WatchError::Gone);
    // Anything still arriving on the cancelled stream is ignored.
    w.on_watch_event(
        t(21),
        watch,
        event("ADDED", &node_json("x", 50, &[])).as_bytes(),
    );
    w.on_watch_end(t(22), watch);
    assert!(drain(&mut w).is_empty());
    assert_eq!(node_names(&w), ["a"]);
    let relist = after_backoff(&mut w);
    assert_eq!(relist.kind, RequestKind::List);
    assert!(!relist.path_and_query.contains("resourceVersion"));
}

#[test]
fn other_error_event_rewatches_from_last_version() {
    let (mut w, watch) = watching_nodes(&["a"]);
    w.on_watch_event(t(20), watch, bookmark("33").as_bytes());
    w.on_watch_event(t(21), watch, error_event(500, "InternalError").as_bytes());
    let actions = drain(&mut w);
    assert_eq!(cancels(&actions), [watch]);
    let f = failures(&actions);
    assert!(matches!(
        &f[0].0,
        WatchError::ErrorEvent { code: Some(500), reason, .. } if &**reason == "InternalError"
    ));
    assert_eq!(f[0].1, Retry::Rewatch);
    let rewatch = after_backoff(&mut w);
    assert_eq!(rewatch.kind, RequestKind::Watch);
    assert!(rewatch.path_and_query.contains("&resourceVersion=33&"));
}

#[test]
fn watch_end_rewatches_from_last_version() {
    let (mut w, watch) = watching_nodes(&["a"]);
    w.on_watch_event(
        t(20),
        watch,
        event("ADDED", &node_json("b", 44, &[])).as_bytes(),
    );
    w.on_watch_end(t(30), watch);
    let next = only_request(&drain(&mut w));
    assert_eq!(next.kind, RequestKind::Watch);
    assert_ne!(next.id, watch);
    assert!(next.path_and_query.contains("&resourceVersion=44&"));
    // A quiet watch that lasted long enough also just restarts, without backoff.
    w.on_watch_end(t(300_000), next.id);
    let again = only_request(&drain(&mut w));
    assert_eq!(again.kind, RequestKind::Watch);
    // A watch closed at once with nothing in it is a failure: backoff, then rewatch.
    w.on_watch_end(t(300_100), again.id);
    let actions = drain(&mut w);
    assert_eq!(failures(&actions)[0].0, WatchError::ShortWatch);
    assert!(actions.iter().all(|a| !matches!(a, ClusterAction::Send(_))));
    assert_eq!(after_backoff(&mut w).kind, RequestKind::Watch);
    assert_eq!(node_names(&w), ["a", "b"]);
}

#[test]
fn whole_body_watch_response() {
    let (mut w, watch) = watching_nodes(&["a"]);
    let body = format!(
        "{}\n{}\n\n{}\n",
        event("ADDED", &node_json("b", 11, &[])),
        event("DELETED", &node_json("a", 12, &[])),
        bookmark("13")
    );
    w.on_response(t(2_000), watch, OK, body.as_bytes());
    assert_eq!(node_names(&w), ["b"]);
    assert_eq!(w.resource_version(), Some("13"));
    let next = only_request(&drain(&mut w));
    assert!(next.path_and_query.contains("&resourceVersion=13&"));
}

#[test]
fn backoff_grows_with_jitter_caps_and_resets() {
    let run = |seed: u64| {
        let cfg = WatcherConfig {
            seed,
            ..WatcherConfig::default()
        };
        let mut w = NodeWatcher::new(cfg, t(0));
        let mut now = t(0);
        let mut delays = Vec::new();
        let mut req = only_request(&drain(&mut w));
        for _ in 0..9 {
            w.on_error(now, req.id, "connection refused");
            let f = failures(&drain(&mut w));
            assert_eq!(f[0].0, WatchError::Transport("connection refused".into()));
            assert_eq!(f[0].1, Retry::ListPage);
            delays.push(f[0].2);
            now = w.poll_timeout().expect("backing off");
            req = after_backoff(&mut w);
        }
        (w, req, now, delays)
    };
    let (mut w, req, now, delays) = run(1);
    let bases = [
        800u64, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000,
    ];
    for (d, base) in delays.iter().zip(bases) {
        let base = Duration::from_millis(base);
        assert!(*d >= base && *d < base * 2, "{d:?} not in [{base:?}, 2x)");
    }
    assert!(
        delays.iter().all(|d| *d < Duration::from_secs(60)),
        "capped"
    );
    let jittered = delays
        .iter()
        .zip(bases)
        .filter(|(d, b)| d.as_millis() != u128::from(*b))
        .count();
    assert!(jittered >= 8, "jitter applied: {delays:?}");
    // Same seed, same delays; another seed, other delays.
    assert_eq!(run(1).3, delays);
    assert_ne!(run(2).3, delays);

    // Success, two healthy minutes, then a failure: back to the first delay.
    w.on_response(now, req.id, OK, list_json(&[], "5", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    w.on_watch_event(
        now.saturating_add(Duration::from_secs(1)),
        watch.id,
        bookmark("6").as_bytes(),
    );
    w.on_error(
        now.saturating_add(Duration::from_secs(200)),
        watch.id,
        "reset by peer",
    );
    let f = failures(&drain(&mut w));
    assert_eq!(f[0].1, Retry::Rewatch);
    assert!(f[0].2 >= Duration::from_millis(800) && f[0].2 < Duration::from_millis(1600));
}

#[test]
fn flapping_does_not_reset_backoff() {
    let (mut w, watch) = watching_nodes(&[]);
    let cfg_delay = |w: &mut NodeWatcher| failures(&drain(w))[0].2;
    w.on_error(t(100), watch, "x");
    let d1 = cfg_delay(&mut w);
    let req = after_backoff(&mut w);
    let now = t(100).saturating_add(d1);
    // A watch that delivers an event and fails a second later is not "healthy for long".
    w.on_watch_event(now, req.id, bookmark("11").as_bytes());
    w.on_error(now.saturating_add(Duration::from_secs(1)), req.id, "x");
    let d2 = cfg_delay(&mut w);
    assert!(d2 >= Duration::from_millis(1600), "{d1:?} then {d2:?}");
}

#[test]
fn malformed_event_relists_without_panic() {
    for garbage in [
        &b"{not json"[..],
        b"\xff\xfe",
        b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\"}}}",
        b"{\"type\":\"UPSERT\",\"object\":{}}",
        b"[1,2,3]",
        b"null",
    ] {
        let (mut w, watch) = watching_nodes(&["a"]);
        w.on_watch_event(t(20), watch, garbage);
        let actions = drain(&mut w);
        assert_eq!(cancels(&actions), [watch]);
        let f = failures(&actions);
        assert!(matches!(f[0].0, WatchError::Decode(_)), "{:?}", f[0].0);
        assert_eq!(f[0].1, Retry::Relist);
        assert_eq!(
            node_names(&w),
            ["a"],
            "cache kept until the relist completes"
        );
        assert_eq!(after_backoff(&mut w).kind, RequestKind::List);
    }
}

#[test]
fn malformed_list_relists() {
    let mut w = PodWatcher::new(WatcherConfig::default(), t(0));
    let list = only_request(&drain(&mut w));
    w.on_response(t(1), list.id, OK, b"<html>oops</html>");
    assert_eq!(failures(&drain(&mut w))[0].1, Retry::Relist);
    let list = after_backoff(&mut w);
    // A list without a resourceVersion cannot be watched from.
    w.on_response(t(5_000), list.id, OK, br#"{"items":[]}"#);
    let f = failures(&drain(&mut w));
    assert_eq!(
        f[0].0,
        WatchError::Decode(DecodeError::Missing("metadata.resourceVersion"))
    );
    assert!(!w.synced());
}

#[test]
fn expired_continue_token_restarts_the_list() {
    let cfg = WatcherConfig {
        page_size: 1,
        ..WatcherConfig::default()
    };
    let mut w = NodeWatcher::new(cfg, t(0));
    let p1 = only_request(&drain(&mut w));
    let body = list_json(&[node_json("a", 1, &[])], "5", Some("tok"));
    w.on_response(t(1), p1.id, OK, body.as_bytes());
    let p2 = only_request(&drain(&mut w));
    // A 5xx retries the same page...
    w.on_response(t(2), p2.id, http::StatusCode::SERVICE_UNAVAILABLE, b"");
    assert_eq!(failures(&drain(&mut w))[0].0, WatchError::Status(503));
    let p2b = after_backoff(&mut w);
    assert_eq!(p2b.path_and_query, "/api/v1/nodes?continue=tok&limit=1");
    // ...an expired token (410) starts over, reading the latest state.
    w.on_response(t(5_000), p2b.id, http::StatusCode::GONE, b"{}");
    assert_eq!(failures(&drain(&mut w))[0].1, Retry::Relist);
    let again = after_backoff(&mut w);
    assert_eq!(again.path_and_query, "/api/v1/nodes?limit=1");
    w.on_response(
        t(20_000),
        again.id,
        OK,
        list_json(&[], "9", None).as_bytes(),
    );
    assert!(w.synced());
    assert!(
        w.cache().is_empty(),
        "pages of the abandoned list are dropped"
    );
}

#[test]
fn deadlines_cancel_hung_requests() {
    let mut w = NodeWatcher::new(WatcherConfig::default(), t(0));
    let list = only_request(&drain(&mut w));
    w.handle_timeout(t(59_999));
    assert!(drain(&mut w).is_empty());
    w.handle_timeout(t(60_000));
    let actions = drain(&mut w);
    assert_eq!(cancels(&actions), [list.id]);
    assert_eq!(failures(&actions)[0].0, WatchError::Timeout);
    let now = w.poll_timeout().expect("backing off");
    let list = after_backoff(&mut w);
    assert_eq!(
        w.poll_timeout(),
        Some(now.saturating_add(Duration::from_secs(60)))
    );
    w.on_response(now, list.id, OK, list_json(&[], "1", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    // timeoutSeconds plus the request timeout of grace.
    assert_eq!(
        w.poll_timeout(),
        Some(now.saturating_add(Duration::from_secs(290 + 60)))
    );
    w.handle_timeout(now.saturating_add(Duration::from_secs(350)));
    let actions = drain(&mut w);
    assert_eq!(cancels(&actions), [watch.id]);
    assert_eq!(failures(&actions)[0].1, Retry::Rewatch);
}

#[test]
fn no_watch_timeout_means_no_deadline() {
    let cfg = WatcherConfig {
        watch_timeout: None,
        ..WatcherConfig::default()
    };
    let mut w = NodeWatcher::new(cfg, t(0));
    let list = only_request(&drain(&mut w));
    w.on_response(t(1), list.id, OK, list_json(&[], "1", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    assert_eq!(
        watch.path_and_query,
        "/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=1&watch=true"
    );
    assert_eq!(w.poll_timeout(), None);
}

#[test]
fn mismatched_and_unknown_input() {
    let mut w = NodeWatcher::new(WatcherConfig::default(), t(0));
    let list = only_request(&drain(&mut w));
    // Unknown ids are ignored.
    let stranger = RequestId {
        resource: Resource::Nodes,
        seq: 999,
    };
    w.on_response(t(1), stranger, OK, b"garbage");
    w.on_error(t(1), stranger, "x");
    assert!(drain(&mut w).is_empty());
    assert_eq!(w.in_flight(), Some(list.id));
    // Watch lines for a list are a misuse: cancel and retry.
    w.on_watch_event(t(2), list.id, b"{}");
    let actions = drain(&mut w);
    assert_eq!(cancels(&actions), [list.id]);
    assert_eq!(failures(&actions)[0].0, WatchError::UnexpectedInput);
    assert_eq!(w.in_flight(), None);
}

#[test]
fn label_selector_is_encoded_in_list_and_watch() {
    let cfg = WatcherConfig {
        label_selector: Some("metrics-server-skip!=true,tier in (a b)".into()),
        ..WatcherConfig::default()
    };
    let mut w = NodeWatcher::new(cfg, t(0));
    let list = only_request(&drain(&mut w));
    assert_eq!(
        list.path_and_query,
        "/api/v1/nodes?labelSelector=metrics-server-skip%21%3Dtrue%2Ctier+in+%28a+b%29&limit=500&resourceVersion=0"
    );
    w.on_response(t(1), list.id, OK, list_json(&[], "1", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    assert!(watch.path_and_query.starts_with(
        "/api/v1/nodes?allowWatchBookmarks=true&labelSelector=metrics-server-skip%21%3Dtrue%2Ctier+in+%28a+b%29&resourceVersion=1&"
    ));
    let req = watch.to_http().expect("valid request");
    assert_eq!(req.uri().path(), "/api/v1/nodes");
    assert_eq!(req.headers()[http::header::ACCEPT], "application/json");
}

#[test]
fn pods_leaving_running_are_deleted() {
    let mut w = PodWatcher::new(WatcherConfig::default(), t(0));
    let list = only_request(&drain(&mut w));
    let items = [pod_json("default", "web", 1), pod_json("jobs", "done", 2)];
    w.on_response(t(1), list.id, OK, list_json(&items, "3", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    // The apiserver filters by status.phase=Running: a pod that completes arrives as DELETED.
    w.on_watch_event(
        t(2),
        watch.id,
        event("DELETED", &pod_json("jobs", "done", 4)).as_bytes(),
    );
    let keys: Vec<_> = w
        .cache()
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    assert_eq!(keys, ["default/web"]);
    assert_eq!(
        w.cache()
            .get("default", "web")
            .and_then(|p| p.labels.get("app")),
        Some("web")
    );
}

#[test]
fn object_limit_is_an_error() {
    let cfg = WatcherConfig {
        limits: Limits {
            max_objects: 2,
            ..Limits::default()
        },
        ..WatcherConfig::default()
    };
    let mut w = NodeWatcher::new(cfg, t(0));
    let list = only_request(&drain(&mut w));
    let items = [node_json("a", 1, &[]), node_json("b", 1, &[])];
    w.on_response(t(1), list.id, OK, list_json(&items, "2", None).as_bytes());
    let watch = only_request(&drain(&mut w));
    // Replacing an existing object is fine; a third one is not.
    w.on_watch_event(
        t(2),
        watch.id,
        event("MODIFIED", &node_json("a", 3, &[])).as_bytes(),
    );
    w.on_watch_event(
        t(3),
        watch.id,
        event("ADDED", &node_json("c", 4, &[])).as_bytes(),
    );
    let f = failures(&drain(&mut w));
    assert_eq!(f[0].0, WatchError::TooManyObjects(2));
    assert_eq!(node_names(&w), ["a", "b"]);
}

#[test]
fn events_queue_is_bounded() {
    let mut w = NodeWatcher::new(WatcherConfig::default(), t(0));
    let mut now = t(0);
    // A caller that never drains: events stop queueing at 64, requests never do.
    for _ in 0..100 {
        let id = w.in_flight().expect("a request in flight");
        w.on_error(now, id, "x");
        now = w.poll_timeout().expect("backing off");
        w.handle_timeout(now);
    }
    let actions = drain(&mut w);
    let events = actions
        .iter()
        .filter(|a| matches!(a, ClusterAction::Event(_)))
        .count();
    let sends = actions
        .iter()
        .filter(|a| matches!(a, ClusterAction::Send(_)))
        .count();
    assert_eq!((events, sends), (64, 101));
    assert_eq!(w.dropped_events(), 36);
}

#[test]
fn cluster_routes_and_publishes_views() {
    let mut c = Cluster::new(ClusterConfig::with_seed(9), t(0));
    assert_eq!(c.view().informer_sync(), Err(NotSynced::Nodes));
    let reqs: Vec<_> = std::iter::from_fn(|| c.poll_action()).collect();
    assert_eq!(reqs.len(), 2);
    let (mut nodes_req, mut pods_req) = (None, None);
    for a in reqs {
        if let ClusterAction::Send(r) = a {
            match r.id.resource() {
                Resource::Nodes => nodes_req = Some(r),
                Resource::Pods => pods_req = Some(r),
            }
        }
    }
    let (nodes_req, pods_req) = (nodes_req.expect("node list"), pods_req.expect("pod list"));
    assert_eq!(nodes_req.id.to_string(), "nodes#1");
    c.on_response(
        t(1),
        nodes_req.id,
        OK,
        list_json(&[node_json("n1", 1, &[("k", "v")])], "5", None).as_bytes(),
    );
    assert_eq!(c.view().informer_sync(), Err(NotSynced::Pods));
    assert!(!c.synced());
    let items = [
        pod_json("ns", "b", 1),
        pod_json("ns", "a", 1),
        pod_json("kube-system", "x", 1),
    ];
    c.on_response(
        t(2),
        pods_req.id,
        OK,
        list_json(&items, "6", None).as_bytes(),
    );
    assert!(c.synced());
    let view = c.view();
    assert!(view.informer_sync().is_ok());
    assert_eq!(view.node("n1").and_then(|n| n.labels.get("k")), Some("v"));
    assert_eq!(
        view.pods_in("ns").map(|p| &*p.name).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(view.pods().count(), 3);
    let g = c.generation();

    let watches: Vec<_> = std::iter::from_fn(|| c.poll_action())
        .filter_map(|a| match a {
            ClusterAction::Send(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(watches.len(), 2);
    let pod_watch = watches
        .iter()
        .find(|r| r.id.resource() == Resource::Pods)
        .expect("pod watch");
    c.on_watch_event(
        t(3),
        pod_watch.id,
        event("DELETED", &pod_json("ns", "a", 7)).as_bytes(),
    );
    assert!(c.generation() > g);
    // The published view is a snapshot.
    assert!(view.pod("ns", "a").is_some());
    assert!(c.view().pod("ns", "a").is_none());
    let timeout = c.poll_timeout().expect("watch deadlines");
    assert_eq!(timeout, t(1).saturating_add(Duration::from_secs(350)));
}

#[test]
fn views_are_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<ClusterView>();
}
