//! Scripted-bytes tests of the driver: no sockets, virtual time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Response, StatusCode};

use super::*;
use crate::cluster::{RequestKind, Resource};
use crate::engine::{Action, Engine, EngineConfig};
use crate::http::Limits;
use crate::scrape::{self, Failure, Source};

fn t(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

const WALL: Timestamp = Timestamp::from_unix_secs(1_750_000_000);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------------------

/// Echoes the path (and the number of peer certificates) as the body.
fn echo(request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Response<()> {
    body.extend_from_slice(request.parts.uri.path().as_bytes());
    if !request.peer.certificates.is_empty() {
        body.extend_from_slice(format!(" certs={}", request.peer.certificates.len()).as_bytes());
    }
    Response::new(())
}

type Echo = fn(&IncomingRequest<'_>, &mut Vec<u8>) -> Response<()>;

fn open(config: ServerConfig, now: Instant) -> ServerConnection<Echo> {
    let mut conn = ServerConnection::new(config, echo as Echo, now);
    conn.handle_handshake(now, Peer::default());
    conn
}

/// Everything the connection wants written now, marking each write complete.
fn transmit<S: Service>(conn: &mut ServerConnection<S>, now: Instant) -> String {
    let mut out = Vec::new();
    while let Some(bytes) = conn.poll_transmit(now, WALL) {
        out.extend_from_slice(&bytes);
        conn.handle_transmitted(now);
    }
    text(&out)
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn ok_close(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn driver_server_answers_and_keeps_alive() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    assert_eq!(
        conn.poll_timeout(),
        Some(t(32_000)),
        "request read deadline"
    );
    conn.feed(t(5), b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(transmit(&mut conn, t(6)), ok("/healthz"));
    assert!(!conn.wants_close());
    assert_eq!(conn.poll_timeout(), Some(t(90_006)), "idle deadline");
    assert_eq!(conn.requests_served(), 1);
}

#[test]
fn driver_server_pipelined_requests_are_answered_in_order_one_at_a_time() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(
        t(1),
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTT",
    );
    let first = conn.poll_transmit(t(2), WALL).expect("first response");
    assert_eq!(text(&first), ok("/a"));
    assert!(
        conn.poll_transmit(t(2), WALL).is_none(),
        "one response in flight at a time"
    );
    assert_eq!(conn.poll_timeout(), Some(t(90_002)), "write deadline");
    conn.handle_transmitted(t(3));
    assert_eq!(transmit(&mut conn, t(3)), ok("/b"));
    conn.feed(t(4), b"P/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(transmit(&mut conn, t(5)), ok_close("/c"));
    assert!(conn.wants_close());
    assert_eq!(conn.close_reason(), Some(&CloseReason::Requested));
}

#[test]
fn driver_server_output_is_the_same_for_every_split_of_the_input() {
    let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let whole = {
        let mut conn = open(ServerConfig::DEFAULT, t(0));
        conn.feed(t(0), input);
        transmit(&mut conn, t(0))
    };
    assert_eq!(whole, format!("{}{}{}", ok("/a"), ok("/b"), ok_close("/c")));
    for step in 1..input.len() {
        let mut conn = open(ServerConfig::DEFAULT, t(0));
        let mut out = String::new();
        for piece in input.chunks(step) {
            conn.feed(t(0), piece);
            out.push_str(&transmit(&mut conn, t(0)));
        }
        assert_eq!(out, whole, "step {step}");
        assert!(conn.wants_close());
    }
}

#[test]
fn driver_server_rejects_a_huge_head_with_431_and_closes() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.resize(70 * 1024, b'a');
    conn.feed(t(1), &request);
    let out = transmit(&mut conn, t(1));
    assert!(
        out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{out}"
    );
    assert!(out.contains("connection: close\r\n"));
    assert!(conn.wants_close());
    assert!(matches!(
        conn.close_reason(),
        Some(CloseReason::Rejected(
            crate::http::Error::HeadTooLarge { .. }
        ))
    ));
    conn.feed(t(2), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        conn.poll_transmit(t(2), WALL).is_none(),
        "nothing after a rejection"
    );
}

#[test]
fn driver_server_continue_then_the_answer() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.handle_timeout(t(1));
    conn.feed(t(10), b"\r\n");
    conn.feed(
        t(100),
        b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(transmit(&mut conn, t(101)), "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(
        conn.poll_timeout(),
        Some(t(32_000)),
        "the body is due by the read deadline armed at the handshake"
    );
    conn.feed(t(200), b"ok");
    assert_eq!(transmit(&mut conn, t(201)), ok("/up"));
}

#[test]
fn driver_server_deadlines() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(100),
        header_read_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(300),
        linger: Duration::ZERO,
        limits: Limits::DEFAULT,
    };

    // Handshake.
    let mut conn = ServerConnection::new(config, echo as Echo, t(0));
    assert_eq!(conn.poll_timeout(), Some(t(100)));
    conn.handle_timeout(t(99));
    assert!(!conn.wants_close(), "early calls do nothing");
    conn.handle_timeout(t(100));
    assert_eq!(conn.close_reason(), Some(&CloseReason::HandshakeTimeout));
    assert!(conn.wants_close());
    assert_eq!(conn.poll_timeout(), None);

    // A request trickling in (slowloris): the deadline is set by its first byte only.
    let mut conn = open(config, t(0));
    conn.feed(t(10), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    transmit(&mut conn, t(10));
    assert_eq!(conn.poll_timeout(), Some(t(310)));
    conn.feed(t(50), b"GET / HT");
    assert_eq!(conn.poll_timeout(), Some(t(250)));
    conn.feed(t(240), b"TP/1.1\r\n");
    assert_eq!(
        conn.poll_timeout(),
        Some(t(250)),
        "more bytes do not extend it"
    );
    conn.handle_timeout(t(250));
    assert_eq!(conn.close_reason(), Some(&CloseReason::ReadTimeout));

    // Idle keep-alive.
    let mut conn = open(config, t(0));
    conn.feed(t(10), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    transmit(&mut conn, t(20));
    conn.handle_timeout(t(319));
    assert!(!conn.wants_close());
    conn.handle_timeout(t(320));
    assert_eq!(conn.close_reason(), Some(&CloseReason::IdleTimeout));

    // A response the client does not read.
    let mut conn = open(config, t(0));
    conn.feed(
        t(10),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(conn.poll_transmit(t(10), WALL).is_some());
    assert_eq!(conn.poll_timeout(), Some(t(310)));
    assert!(!conn.wants_close(), "still writing");
    conn.handle_timeout(t(310));
    assert_eq!(conn.close_reason(), Some(&CloseReason::WriteTimeout));
    assert!(conn.wants_close());
    assert!(
        conn.poll_transmit(t(311), WALL).is_none(),
        "the queued request is dropped"
    );
}

#[test]
fn driver_server_hands_the_peer_chain_to_the_service() {
    let mut conn = ServerConnection::new(ServerConfig::DEFAULT, echo as Echo, t(0));
    let peer = Peer {
        certificates: vec![vec![0x30, 1], vec![0x30, 2]],
    };
    conn.feed(t(0), b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        conn.poll_transmit(t(0), WALL).is_none(),
        "nothing before the handshake"
    );
    conn.handle_handshake(t(1), peer.clone());
    assert_eq!(conn.peer(), &peer);
    conn.feed(t(2), b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(transmit(&mut conn, t(2)), ok("/who certs=2"));
}

#[test]
fn driver_server_service_sees_time_and_body() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let service = move |request: &IncomingRequest<'_>, body: &mut Vec<u8>| {
        if let Ok(mut log) = log.lock() {
            log.push((request.now, request.wall, request.body.to_vec()));
        }
        body.extend_from_slice(b"{}");
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::CREATED;
        head
    };
    let mut conn = ServerConnection::new(ServerConfig::DEFAULT, service, t(0));
    conn.handle_handshake(t(0), Peer::default());
    conn.feed(
        t(3),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody",
    );
    let out = transmit(&mut conn, t(7));
    assert_eq!(out, "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}");
    let seen = seen.lock().expect("not poisoned");
    assert_eq!(seen.as_slice(), &[(t(7), WALL, b"body".to_vec())]);
}

#[test]
fn driver_server_head_requests_get_no_body() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(t(0), b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        transmit(&mut conn, t(0)),
        "HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n"
    );
}

#[test]
fn driver_server_shutdown_closes_idle_and_finishes_in_flight() {
    // Idle: at once.
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(t(1), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    transmit(&mut conn, t(1));
    conn.begin_shutdown(t(2));
    assert!(conn.wants_close());
    assert_eq!(conn.close_reason(), Some(&CloseReason::Shutdown));

    // A request arriving: it is answered, announcing the close.
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(t(1), b"GET /slow HTTP/1.1\r\nHo");
    conn.begin_shutdown(t(2));
    assert!(!conn.wants_close());
    conn.feed(t(3), b"st: x\r\n\r\n");
    assert_eq!(transmit(&mut conn, t(4)), ok_close("/slow"));
    assert!(conn.wants_close());
    assert_eq!(conn.close_reason(), Some(&CloseReason::Shutdown));

    // Queued pipelined requests: all answered, the last one closes.
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(
        t(1),
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    conn.begin_shutdown(t(2));
    assert_eq!(
        transmit(&mut conn, t(3)),
        format!("{}{}", ok("/1"), ok_close("/2"))
    );
    assert!(conn.wants_close());

    // Mid-handshake: at once.
    let mut conn = ServerConnection::new(ServerConfig::DEFAULT, echo as Echo, t(0));
    conn.begin_shutdown(t(1));
    assert!(conn.wants_close());
}

/// Waits on paths starting with `/wait` until `open` is set, echoing like [`echo`].
struct Gated {
    open: Arc<std::sync::atomic::AtomicBool>,
    polls: Arc<AtomicUsize>,
}

impl Service for Gated {
    fn answer(&mut self, request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Answer {
        if request.parts.uri.path().starts_with("/wait") && !self.open.load(Ordering::SeqCst) {
            return Answer::Wait;
        }
        Answer::Respond(echo(request, body))
    }

    fn poll_wake(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if self.open.load(Ordering::SeqCst) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

#[test]
fn driver_server_a_waiting_request_keeps_its_place_and_its_connection() {
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let service = Gated {
        open: Arc::clone(&open),
        polls: Arc::clone(&polls),
    };
    let mut conn = ServerConnection::new(ServerConfig::DEFAULT, service, t(0));
    conn.handle_handshake(t(0), Peer::default());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(conn.poll_wake(&mut cx).is_pending(), "nothing waits yet");
    assert_eq!(
        polls.load(Ordering::SeqCst),
        0,
        "the service is not asked then"
    );

    conn.feed(
        t(1),
        b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        transmit(&mut conn, t(1)),
        "",
        "the first waits; the second stays behind it"
    );
    assert!(conn.poll_wake(&mut cx).is_pending());
    assert!(
        !conn.wants_read(),
        "nothing more is read while a request waits"
    );
    // No read deadline runs while a request waits (the review has its own timeout).
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(t(600_000));
    assert!(!conn.wants_close());

    // Shutdown while waiting: the answers still come, the last announcing the close.
    conn.begin_shutdown(t(2));
    assert!(!conn.wants_close());
    open.store(true, Ordering::SeqCst);
    assert!(conn.poll_wake(&mut cx).is_ready());
    assert!(
        conn.poll_wake(&mut cx).is_pending(),
        "ready once, then nothing waits"
    );
    assert!(conn.wants_read());
    assert_eq!(
        transmit(&mut conn, t(3)),
        format!("{}{}", ok("/wait"), ok_close("/after"))
    );
    assert!(conn.wants_close());
    assert_eq!(conn.requests_served(), 2);
}

#[test]
fn driver_server_peer_close_after_pipelined_requests() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(
        t(1),
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3",
    );
    conn.feed_eof(t(1));
    assert!(!conn.wants_close(), "complete requests are still answered");
    assert_eq!(
        transmit(&mut conn, t(2)),
        format!("{}{}", ok("/1"), ok("/2"))
    );
    assert!(conn.wants_close());
    assert_eq!(conn.close_reason(), Some(&CloseReason::PeerClosed));

    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed_eof(t(1));
    assert!(conn.wants_close());
}

#[test]
fn driver_server_http10_closes_by_default() {
    let mut conn = open(ServerConfig::DEFAULT, t(0));
    conn.feed(t(1), b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(transmit(&mut conn, t(1)), ok_close("/old"));
    assert!(conn.wants_close());
}

// ---------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new("ua/1".into(), "10.96.0.1".into(), 443);
    config.kubelet_token = Some(Arc::new(|| Some("kt".into())));
    config.apiserver_token = Some(Arc::new(|| Some("at".into())));
    config
}

fn scrape_request(host: &str) -> scrape::Request {
    scrape::Request {
        id: scrape::RequestId(7),
        node: "n1".into(),
        host: host.into(),
        port: 10250,
        path_and_query: "/metrics/resource".into(),
        source: Source::Resource,
        deadline: t(10_000),
    }
}

fn drain(exchange: &mut Exchange) -> Vec<Completion> {
    std::iter::from_fn(|| exchange.poll_completion()).collect()
}

fn kubelet_result(completions: &[Completion]) -> Result<(u16, Vec<u8>), Failure> {
    match completions {
        [Completion::Kubelet { id, result }] => {
            assert_eq!(*id, scrape::RequestId(7));
            result.clone()
        }
        other => panic!("expected one kubelet completion, got {other:?}"),
    }
}

#[test]
fn driver_client_kubelet_request_bytes_and_response() {
    let mut exchange = Exchange::kubelet(&scrape_request("10.0.0.5"), &client_config());
    assert_eq!(exchange.key(), RequestKey::Kubelet(scrape::RequestId(7)));
    assert_eq!(
        exchange.endpoint(),
        &Endpoint {
            upstream: Upstream::Kubelet,
            host: "10.0.0.5".into(),
            port: 10250
        }
    );
    assert_eq!(
        text(exchange.request_bytes()),
        "GET /metrics/resource HTTP/1.1\r\nhost: 10.0.0.5:10250\r\nuser-agent: ua/1\r\nauthorization: Bearer kt\r\nconnection: keep-alive\r\n\r\n"
    );
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    for (i, byte) in response.iter().enumerate() {
        assert!(!exchange.is_finished(), "finished early at byte {i}");
        exchange.feed(std::slice::from_ref(byte));
    }
    assert!(exchange.is_finished());
    assert!(exchange.reusable());
    assert_eq!(
        kubelet_result(&drain(&mut exchange)),
        Ok((200, b"hello".to_vec()))
    );
}

#[test]
fn driver_client_kubelet_failures() {
    let config = client_config();

    // Any status is the scheduler's to judge.
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &config);
    exchange.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert!(exchange.is_finished() && !exchange.reusable());
    assert_eq!(kubelet_result(&drain(&mut exchange)), Ok((401, Vec::new())));

    // Over the body limit.
    let mut small = config.clone();
    small.kubelet_limits.max_body_bytes = 4;
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &small);
    exchange.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    assert!(exchange.is_finished() && !exchange.reusable());
    assert_eq!(
        kubelet_result(&drain(&mut exchange)),
        Err(Failure::TooLarge { limit: 4 })
    );
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &small);
    exchange.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n");
    assert_eq!(
        kubelet_result(&drain(&mut exchange)),
        Err(Failure::TooLarge { limit: 4 })
    );

    // Cut short.
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &config);
    exchange.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
    exchange.feed_eof();
    assert!(!exchange.wants_retry(), "a fresh connection is not retried");
    assert!(matches!(
        kubelet_result(&drain(&mut exchange)).as_ref().map_err(|f| f.to_string()),
        Err(reason) if reason.contains("closed before the response was complete")
    ));

    // Garbage.
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &config);
    exchange.feed(b"SSH-2.0-OpenSSH\r\n\r\n");
    assert!(matches!(
        kubelet_result(&drain(&mut exchange)),
        Err(Failure::Transport(reason)) if reason.starts_with("malformed response")
    ));

    // Transport.
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &config);
    exchange.handle_transport_error("connection refused");
    assert_eq!(
        kubelet_result(&drain(&mut exchange)),
        Err(Failure::Transport("connection refused".into()))
    );
    exchange.handle_transport_error("again");
    assert!(
        drain(&mut exchange).is_empty(),
        "one completion per request"
    );
}

#[test]
fn driver_client_dead_pooled_connection_is_retried_once_fresh() {
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &client_config());
    exchange.set_reused(true);
    exchange.feed_eof();
    assert!(exchange.wants_retry() && exchange.is_finished());
    assert!(drain(&mut exchange).is_empty(), "no completion for a retry");
    exchange.retry_on_fresh_connection();
    assert!(!exchange.is_finished());
    exchange.handle_transport_error("connection reset");
    assert!(
        !exchange.wants_retry(),
        "a fresh connection failing is reported"
    );
    assert!(kubelet_result(&drain(&mut exchange)).is_err());

    // Once bytes arrived the failure is real.
    let mut exchange = Exchange::kubelet(&scrape_request("n"), &client_config());
    exchange.set_reused(true);
    exchange.feed(b"HTTP/1.1 200 OK\r\n");
    exchange.feed_eof();
    assert!(!exchange.wants_retry());
    assert!(kubelet_result(&drain(&mut exchange)).is_err());
}

#[test]
fn driver_client_ipv6_hosts_are_bracketed_and_tokens_reread() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let mut config = client_config();
    config.kubelet_token = Some(Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        Some(format!("token-{n}"))
    }));
    let first = Exchange::kubelet(&scrape_request("fd00::5"), &config);
    let second = Exchange::kubelet(&scrape_request("fd00::5"), &config);
    assert!(text(first.request_bytes()).contains("host: [fd00::5]:10250\r\n"));
    assert!(text(first.request_bytes()).contains("Bearer token-0\r\n"));
    assert!(text(second.request_bytes()).contains("Bearer token-1\r\n"));
    assert_eq!(first.endpoint().host, "fd00::5");

    // No token, or an invalid one.
    config.kubelet_token = None;
    let plain = Exchange::kubelet(&scrape_request("n"), &config);
    assert!(!text(plain.request_bytes()).contains("authorization"));
    config.kubelet_token = Some(Arc::new(|| Some("bad\ntoken".into())));
    let mut bad = Exchange::kubelet(&scrape_request("n"), &config);
    assert!(bad.is_finished());
    assert!(matches!(
        kubelet_result(&drain(&mut bad)),
        Err(Failure::Transport(reason)) if reason.contains("bearer token")
    ));
}

fn cluster_request(kind: RequestKind) -> crate::cluster::ClusterRequest {
    let mut engine = Engine::new(EngineConfig::new(Duration::from_secs(15), 1), t(0));
    engine.handle_timeout(t(0), WALL);
    let mut found = None;
    while let Some(action) = engine.poll_action(t(0), WALL) {
        if let Action::Apiserver(request) = action {
            found.get_or_insert(request);
        }
    }
    let mut request = found.expect("the engine lists nodes first");
    request.kind = kind;
    request
}

#[test]
fn driver_client_apiserver_list() {
    let request = cluster_request(RequestKind::List);
    assert_eq!(request.id.resource(), Resource::Nodes);
    let mut exchange = Exchange::apiserver(&request, &client_config());
    assert_eq!(exchange.endpoint(), &client_config().apiserver());
    let sent = text(exchange.request_bytes());
    assert!(sent.starts_with(&format!("GET {} HTTP/1.1\r\nhost: 10.96.0.1:443\r\naccept: application/json\r\nuser-agent: ua/1\r\nauthorization: Bearer at\r\nconnection: keep-alive\r\n\r\n", request.path_and_query)), "{sent}");
    exchange.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"items\":[]}");
    assert!(exchange.reusable());
    match drain(&mut exchange).as_slice() {
        [Completion::ApiserverResponse { id, status, body }] => {
            assert_eq!(*id, request.id);
            assert_eq!(*status, StatusCode::OK);
            assert_eq!(body, b"{\"items\":[]}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn driver_client_apiserver_watch_lines_then_end() {
    let request = cluster_request(RequestKind::Watch);
    let mut exchange = Exchange::apiserver(&request, &client_config());
    exchange.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    exchange.feed(b"6\r\n{\"a\":1\r\n");
    exchange.feed(b"9\r\n}\n{\"b\":2}\r\n");
    let lines: Vec<String> = drain(&mut exchange)
        .into_iter()
        .map(|c| match c {
            Completion::ApiserverLine { line, .. } => text(&line),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lines, ["{\"a\":1}"]);
    exchange.feed(b"1\r\n\n\r\n0\r\n\r\n");
    let rest = drain(&mut exchange);
    assert!(matches!(
        rest.as_slice(),
        [Completion::ApiserverLine { line, .. }, Completion::ApiserverEnd { id }]
            if line == b"{\"b\":2}" && *id == request.id
    ));
    assert!(exchange.reusable());
}

#[test]
fn driver_client_apiserver_watch_errors() {
    // Refused: one response with the Status body.
    let request = cluster_request(RequestKind::Watch);
    let mut exchange = Exchange::apiserver(&request, &client_config());
    exchange.feed(b"HTTP/1.1 410 Gone\r\nContent-Length: 2\r\n\r\n{}");
    assert!(matches!(
        drain(&mut exchange).as_slice(),
        [Completion::ApiserverResponse { status, body, .. }] if *status == StatusCode::GONE && body == b"{}"
    ));

    // Dropped mid-stream: the lines so far, then an error.
    let mut exchange = Exchange::apiserver(&request, &client_config());
    exchange.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}\n\r\n");
    exchange.feed_eof();
    let completions = drain(&mut exchange);
    assert!(
        matches!(
            completions.as_slice(),
            [Completion::ApiserverLine { .. }, Completion::ApiserverError { reason, .. }]
                if reason.contains("closed before")
        ),
        "{completions:?}"
    );
    assert!(!exchange.reusable());

    // A line over the limit.
    let mut config = client_config();
    config.apiserver_limits.max_line_bytes = 4;
    let mut exchange = Exchange::apiserver(&request, &config);
    exchange.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n123456\r\n");
    assert!(matches!(
        drain(&mut exchange).as_slice(),
        [Completion::ApiserverError { reason, .. }] if reason.contains("streamed event exceeds")
    ));
}

#[test]
fn driver_client_user_agent_shape() {
    let ua = default_user_agent("v0.8.0", "abc123");
    assert!(ua.starts_with("metrics-server/v0.8.0 ("), "{ua}");
    assert!(ua.ends_with(") kubernetes/abc123"), "{ua}");
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        assert_eq!(ua, "metrics-server/v0.8.0 (linux/amd64) kubernetes/abc123");
    }
}

// ---------------------------------------------------------------------------------------
// Pool and engine driver
// ---------------------------------------------------------------------------------------

fn endpoint(host: &str) -> Endpoint {
    Endpoint {
        upstream: Upstream::Kubelet,
        host: host.into(),
        port: 10250,
    }
}

#[test]
fn driver_pool_lifo_bounded_and_expiring() {
    let mut pool = Pool::new(2, Duration::from_secs(90));
    pool.checkin(endpoint("a"), 1, t(0));
    pool.checkin(endpoint("a"), 2, t(10));
    pool.checkin(endpoint("a"), 3, t(20));
    pool.checkin(endpoint("b"), 4, t(30));
    assert_eq!(pool.len(), 3, "at most two per endpoint: the oldest went");
    assert_eq!(pool.poll_timeout(), Some(t(90_010)));
    assert_eq!(
        pool.checkout(&endpoint("a"), t(40)),
        Some(3),
        "newest first"
    );
    assert_eq!(pool.checkout(&endpoint("a"), t(90_010)), None, "expired");
    assert_eq!(pool.checkout(&endpoint("c"), t(40)), None);
    pool.expire(t(90_030));
    assert!(pool.is_empty());

    let mut off = Pool::new(0, Duration::from_secs(90));
    off.checkin(endpoint("a"), 1, t(0));
    assert!(off.is_empty());
}

fn node_list(port: u16) -> Vec<u8> {
    format!(
        r#"{{"kind":"NodeList","apiVersion":"v1","metadata":{{"resourceVersion":"5"}},"items":[{{"metadata":{{"name":"n1","resourceVersion":"5"}},"status":{{"addresses":[{{"type":"InternalIP","address":"10.0.0.9"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}},"conditions":[{{"type":"Ready","status":"True"}}]}}}}]}}"#
    )
    .into_bytes()
}

const POD_LIST: &[u8] = br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"6"},"items":[]}"#;

#[test]
fn driver_engine_driver_runs_lists_pools_and_scrapes() {
    let mut engine_config = EngineConfig::new(Duration::from_secs(15), 3);
    engine_config.resolve.kubelet_port = 10250;
    let engine = Engine::new(engine_config, t(0));
    let mut driver: EngineDriver<u32> = EngineDriver::new(engine, client_config());
    let mut conns = 0u32;

    driver.handle_timeout(t(0), WALL);
    let mut starts = Vec::new();
    while let Some(command) = driver.poll_command(t(0), WALL) {
        match command {
            Command::Start {
                exchange,
                connection,
            } => {
                assert!(connection.is_none(), "the pool starts empty");
                starts.push(exchange);
            }
            Command::Abort(key) => panic!("unexpected abort of {key:?}"),
        }
    }
    assert_eq!(starts.len(), 2, "lists of nodes and pods");
    assert_eq!(driver.in_flight(), 2);

    // Answer both lists; each task hands its connection back.
    for mut exchange in starts {
        let body = match exchange.key() {
            RequestKey::Apiserver(id) if id.resource() == Resource::Nodes => node_list(10250),
            _ => POD_LIST.to_vec(),
        };
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        exchange.feed(&response);
        while let Some(c) = exchange.poll_completion() {
            driver.handle_report(t(5), Report::Completion(c));
        }
        conns += 1;
        driver.handle_report(
            t(5),
            Report::Finished {
                key: exchange.key(),
                endpoint: exchange.endpoint().clone(),
                connection: exchange.reusable().then_some(conns),
            },
        );
    }
    assert_eq!(driver.in_flight(), 0);
    assert_eq!(driver.idle_connections(), 2);
    assert!(driver.engine().synced());

    // Synced: the next wake-up is immediate, so the scrape loop starts.
    assert_eq!(driver.poll_timeout(), Some(t(0)));

    // Next: two watches, on the pooled connections, and (after the scrape tick) a scrape.
    driver.handle_timeout(t(5), WALL);
    let mut reused = 0;
    let mut scrapes = Vec::new();
    let mut now = t(5);
    for _ in 0..100 {
        while let Some(command) = driver.poll_command(now, WALL) {
            if let Command::Start {
                exchange,
                connection,
            } = command
            {
                match exchange.key() {
                    RequestKey::Apiserver(_) => {
                        assert!(connection.is_some(), "watches reuse the list connections");
                        assert!(text(exchange.request_bytes()).contains("watch=true"));
                        reused += 1;
                    }
                    RequestKey::Kubelet(_) => {
                        assert_eq!(exchange.endpoint(), &endpoint("10.0.0.9"));
                        scrapes.push(exchange);
                    }
                    RequestKey::Delegated(_) => panic!("no delegation configured"),
                }
            }
        }
        if !scrapes.is_empty() {
            break;
        }
        now = driver.poll_timeout().expect("the scrape delay is pending");
        driver.handle_timeout(now, WALL);
    }
    assert_eq!(reused, 2);
    assert_eq!(scrapes.len(), 1);
    assert_eq!(driver.idle_connections(), 0);

    // The scrape times out: the engine cancels it and the driver aborts its task.
    let mut aborted = None;
    for _ in 0..100 {
        now = driver
            .poll_timeout()
            .expect("the scrape deadline is pending");
        driver.handle_timeout(now, WALL);
        while let Some(command) = driver.poll_command(now, WALL) {
            if let Command::Abort(key) = command {
                aborted = Some(key);
            }
        }
        if aborted.is_some() {
            break;
        }
    }
    assert_eq!(aborted, Some(scrapes[0].key()));
    // A late report of the aborted request is ignored, and its connection not pooled.
    driver.handle_report(
        now,
        Report::Finished {
            key: scrapes[0].key(),
            endpoint: endpoint("10.0.0.9"),
            connection: Some(99),
        },
    );
    assert_eq!(driver.idle_connections(), 0);
}

#[test]
fn driver_engine_driver_never_asks_to_spin() {
    let engine = Engine::new(EngineConfig::new(Duration::from_secs(15), 3), t(0));
    let mut driver: EngineDriver<u32> = EngineDriver::new(engine, client_config());
    driver.handle_timeout(t(0), WALL);
    while driver.poll_command(t(0), WALL).is_some() {}
    let next = driver.poll_timeout().expect("list deadlines");
    assert!(next > t(0));
    // Whatever the engine says, the next wake-up is after the last one handled.
    driver.handle_timeout(next, WALL);
    while driver.poll_command(next, WALL).is_some() {}
    if let Some(after) = driver.poll_timeout() {
        assert!(after > next, "{after:?} <= {next:?}");
    }
}

#[test]
fn driver_api_service_answers_from_the_engine_with_audit_ids() {
    use crate::api::discovery::VersionInfo;
    use crate::api::dispatch::{Api, ApiConfig};

    let engine = Engine::new(EngineConfig::new(Duration::from_secs(15), 3), t(0));
    let api = Arc::new(Api::new(ApiConfig {
        server_address: "10.0.0.1:443".into(),
        version: VersionInfo::default(),
        release: "v0.8.0".into(),
    }));
    let service = ApiService::new(api, engine.reader(), 9);
    let mut conn = ServerConnection::new(ServerConfig::DEFAULT, service.clone(), t(0));
    conn.handle_handshake(t(0), Peer::default());
    conn.feed(
        t(1),
        b"GET /apis/metrics.k8s.io/v1beta1/nodes HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nAudit-ID: mine\r\n\r\n",
    );
    let list = text(&conn.poll_transmit(t(2), WALL).expect("the list"));
    conn.handle_transmitted(t(2));
    assert!(list.starts_with("HTTP/1.1 200 OK\r\n"), "{list}");
    assert!(list.contains("\"kind\":\"NodeMetricsList\""), "{list}");
    let audit = list
        .lines()
        .find_map(|l| l.strip_prefix("audit-id: "))
        .expect("a generated Audit-Id");
    assert_eq!(audit.len(), 36);

    let readyz = text(&conn.poll_transmit(t(3), WALL).expect("readyz"));
    assert!(
        readyz.starts_with("HTTP/1.1 500 "),
        "not synced yet: {readyz}"
    );
    assert!(readyz.contains("audit-id: mine\r\n"), "{readyz}");

    // Another connection continues the same id sequence.
    let mut other = ServerConnection::new(ServerConfig::DEFAULT, service, t(0));
    other.handle_handshake(t(0), Peer::default());
    other.feed(t(4), b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n");
    let version = text(&other.poll_transmit(t(4), WALL).expect("version"));
    assert!(!version.contains(audit), "ids are not reused");
}
