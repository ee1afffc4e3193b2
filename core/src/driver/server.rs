//! One accepted connection, after TLS: requests in, responses out, in order.
//! See [`ServerConnection`].

use std::collections::VecDeque;
use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response};

use crate::http::{
    Error as HttpError, Limits, RequestParser, ServerEvent, encode_continue, encode_rejection,
    encode_response,
};
use crate::time::{Instant, Timestamp};

/// How long an adapter waits after a failed `accept` (e.g. out of file descriptors)
/// before accepting again.
pub const ACCEPT_ERROR_DELAY: Duration = Duration::from_millis(100);

/// Limits and timeouts of the serving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Request head, header count and body limits (431 / 413 beyond them).
    pub limits: Limits,
    /// From accepting the TCP connection to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// From the first byte of a request (or the end of the handshake) to the whole
    /// request having arrived. Go's `ReadHeaderTimeout`, extended to the (small) body.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request, and how long one
    /// response may take to be written.
    pub idle_timeout: Duration,
    /// After the last response of a closing connection, how long to keep reading (and
    /// discarding) before closing, so the close does not reset the connection before the
    /// client has read that response (Go's `rstAvoidanceDelay`).
    pub linger: Duration,
}

impl ServerConfig {
    /// 10 s handshake, 32 s request read (the Kubernetes apiserver's read-header
    /// timeout), 90 s idle, 500 ms linger, default codec limits.
    pub const DEFAULT: ServerConfig = ServerConfig {
        limits: Limits::DEFAULT,
        handshake_timeout: Duration::from_secs(10),
        header_read_timeout: Duration::from_secs(32),
        idle_timeout: Duration::from_secs(90),
        linger: Duration::from_millis(500),
    };
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::DEFAULT
    }
}

/// Who is on the other end, as the TLS layer verified it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The client's certificate chain in DER, leaf first; empty when it sent none (the
    /// server asks for one but does not require it).
    pub certificates: Vec<Vec<u8>>,
}

/// One request, handed to a [`Service`].
#[derive(Debug)]
pub struct IncomingRequest<'a> {
    /// Method, URI, version and headers.
    pub parts: &'a Parts,
    /// The decoded body (empty for the GETs the API serves).
    pub body: &'a [u8],
    /// The connection's client.
    pub peer: &'a Peer,
    /// Monotonic time at which the request is answered.
    pub now: Instant,
    /// Wall-clock time at which the request is answered.
    pub wall: Timestamp,
}

/// What a [`Service`] says to a request.
#[derive(Debug)]
pub enum Answer {
    /// The response head (its body is in the buffer the service was given).
    Respond(Response<()>),
    /// Not yet (e.g. a review with kube-apiserver is under way): the connection keeps
    /// the request and asks again once [`Service::poll_wake`] is ready.
    Wait,
}

/// Answers requests: writes the body into `body` (empty on entry) and returns the head,
/// or asks to be called again later.
///
/// Called on the connection's own task; it must not block. Any
/// `FnMut(&IncomingRequest, &mut Vec<u8>) -> Response<()>` is a service that never waits.
pub trait Service {
    /// Answers one request, or [`Answer::Wait`]s.
    fn answer(&mut self, request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Answer;

    /// After [`Answer::Wait`]: ready when the request may be asked again; otherwise `cx`
    /// is woken then.
    fn poll_wake(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl<F> Service for F
where
    F: FnMut(&IncomingRequest<'_>, &mut Vec<u8>) -> Response<()>,
{
    fn answer(&mut self, request: &IncomingRequest<'_>, body: &mut Vec<u8>) -> Answer {
        Answer::Respond(self(request, body))
    }
}

/// Why a connection is (to be) closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed its side, and every request it sent has been answered.
    PeerClosed,
    /// The last request asked for `Connection: close` (or was HTTP/1.0 without keep-alive).
    Requested,
    /// The input broke the protocol or a limit; the rejection was the last response.
    Rejected(HttpError),
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// A request did not fully arrive in time.
    ReadTimeout,
    /// No new request arrived on a kept-alive connection in time.
    IdleTimeout,
    /// A response could not be written in time.
    WriteTimeout,
    /// The server is shutting down; in-flight requests were answered first.
    Shutdown,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("client closed the connection"),
            CloseReason::Requested => f.write_str("client asked to close"),
            CloseReason::Rejected(e) => write!(f, "request rejected: {e}"),
            CloseReason::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            CloseReason::ReadTimeout => f.write_str("request read timed out"),
            CloseReason::IdleTimeout => f.write_str("idle connection timed out"),
            CloseReason::WriteTimeout => f.write_str("response write timed out"),
            CloseReason::Shutdown => f.write_str("server shutting down"),
        }
    }
}

/// Where the connection stands for its read deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    /// Waiting for the first byte of the next request.
    Idle,
    /// Part of a request has arrived.
    Reading,
    /// Complete requests are queued or their responses are being written.
    Answering,
}

/// The server side of one connection, after TLS: requests in, responses out, in order.
///
/// ```text
///  Handshake ──handle_handshake──▶ Reading ──feed (request complete)──▶ Answering
///     │                            ▲     │                                 │
///     │          feed (first byte) │     │       poll_transmit /           │
///     │                            │     │       handle_transmitted,       │
///     │                           Idle ◀─┼────── all answered ─────────────┘
///     │                            │     │                                 │
///     └─ deadline ─────────────────┴─────┴─ deadline / close / reject ─────┴─▶ Closed
/// ```
///
/// Deadlines (each a [`ServerConfig`] duration, all visible through
/// [`ServerConnection::poll_timeout`]): the TLS handshake; reading a request once its first
/// byte arrived (head and body); waiting for the next request on a kept-alive
/// connection; and writing one response.
#[derive(Debug)]
pub struct ServerConnection<S> {
    config: ServerConfig,
    service: S,
    parser: RequestParser,
    peer: Peer,
    phase: Phase,
    /// Parsed events not answered yet (one response is produced per `poll_transmit`, so
    /// a burst of pipelined requests never holds more than one response in memory).
    queue: VecDeque<ServerEvent>,
    read_deadline: Option<Instant>,
    /// Set while bytes handed out by `poll_transmit` are being written.
    write_deadline: Option<Instant>,
    /// The service asked to wait with the front request (see [`Answer::Wait`]).
    waiting: bool,
    peer_closed: bool,
    draining: bool,
    /// Close once the queued output has been written.
    close: Option<CloseReason>,
    /// Reused body buffer.
    scratch: Vec<u8>,
    served: u64,
}

impl<S: Service> ServerConnection<S> {
    /// A connection accepted at `now`; its first deadline is the TLS handshake's.
    pub fn new(config: ServerConfig, service: S, now: Instant) -> Self {
        ServerConnection {
            config,
            service,
            parser: RequestParser::new(config.limits),
            peer: Peer::default(),
            phase: Phase::Handshake,
            queue: VecDeque::new(),
            read_deadline: Some(now.saturating_add(config.handshake_timeout)),
            write_deadline: None,
            waiting: false,
            peer_closed: false,
            draining: false,
            close: None,
            scratch: Vec::new(),
            served: 0,
        }
    }

    /// The TLS handshake finished (or there is none); `peer` is what it verified.
    pub fn handle_handshake(&mut self, now: Instant, peer: Peer) {
        if self.phase != Phase::Handshake || self.close.is_some() {
            return;
        }
        self.peer = peer;
        if self.draining {
            self.close_with(CloseReason::Shutdown);
            return;
        }
        // Go's server starts the read-header clock when it starts reading a request.
        self.phase = Phase::Reading;
        self.read_deadline = Some(now.saturating_add(self.config.header_read_timeout));
    }

    /// The client's verified certificate chain (empty before the handshake).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Requests answered so far.
    pub fn requests_served(&self) -> u64 {
        self.served
    }

    /// Hands in decrypted bytes read from the client, split anywhere.
    pub fn feed(&mut self, now: Instant, bytes: &[u8]) {
        if self.close.is_some() || self.phase == Phase::Handshake || bytes.is_empty() {
            return;
        }
        self.parser.feed(bytes);
        let mut complete = false;
        while let Some(event) = self.parser.poll_event() {
            complete |= !matches!(event, ServerEvent::Continue);
            self.queue.push_back(event);
        }
        if complete {
            self.phase = Phase::Answering;
            self.read_deadline = None;
        } else if self.phase == Phase::Idle {
            // The first bytes of a request: from now on it must arrive in time.
            self.phase = Phase::Reading;
            self.read_deadline = Some(now.saturating_add(self.config.header_read_timeout));
        }
    }

    /// The client closed its sending side. Requests already received are still
    /// answered; a request cut short is dropped.
    pub fn feed_eof(&mut self, _now: Instant) {
        self.parser.feed_eof();
        self.peer_closed = true;
        if self.queue.is_empty() && self.write_deadline.is_none() {
            self.close_with(CloseReason::PeerClosed);
        }
    }

    /// The bytes to write next, answering the next queued request; `None` when there is
    /// nothing to write. Write them, then call [`handle_transmitted`](Self::handle_transmitted).
    pub fn poll_transmit(&mut self, now: Instant, wall: Timestamp) -> Option<Vec<u8>> {
        if self.write_deadline.is_some() || self.waiting {
            return None;
        }
        let event = self.queue.pop_front()?;
        let mut out = Vec::new();
        match event {
            ServerEvent::Continue => encode_continue(&mut out),
            ServerEvent::Reject(error) => {
                encode_rejection(&error, &mut out);
                self.close_with(CloseReason::Rejected(error));
            }
            ServerEvent::Request {
                request,
                mut context,
            } => {
                let (parts, body) = request.into_parts();
                self.scratch.clear();
                let incoming = IncomingRequest {
                    parts: &parts,
                    body: &body,
                    peer: &self.peer,
                    now,
                    wall,
                };
                let head = match self.service.answer(&incoming, &mut self.scratch) {
                    Answer::Respond(head) => head,
                    Answer::Wait => {
                        let request = Request::from_parts(parts, body);
                        self.queue
                            .push_front(ServerEvent::Request { request, context });
                        self.waiting = true;
                        return None;
                    }
                };
                self.served += 1;
                // A draining server answers what it has, announcing the close.
                if self.draining && self.queue.is_empty() {
                    context.keep_alive = false;
                }
                let body = std::mem::take(&mut self.scratch);
                let response = Response::from_parts(head.into_parts().0, body);
                let keep_alive = encode_response(&context, &response, &mut out);
                self.scratch = response.into_body();
                if !keep_alive {
                    let reason = if self.draining {
                        CloseReason::Shutdown
                    } else {
                        CloseReason::Requested
                    };
                    self.close_with(reason);
                }
            }
        }
        self.write_deadline = Some(now.saturating_add(self.config.idle_timeout));
        Some(out)
    }

    /// Whether to read from the client now: not while a request waits for its service
    /// (as Go's server reads no further request while a handler runs), so a client
    /// pipelining behind a slow review cannot make the connection buffer without bound.
    pub fn wants_read(&self) -> bool {
        !self.waiting
    }

    /// Ready when the service that asked to wait may be asked again (then call
    /// [`poll_transmit`](Self::poll_transmit)); pending while it is not waiting (nothing
    /// to wake for), with `cx` woken when it may.
    pub fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.waiting {
            return Poll::Pending;
        }
        let ready = self.service.poll_wake(cx);
        if ready.is_ready() {
            self.waiting = false;
        }
        ready
    }

    /// The bytes from the last [`poll_transmit`](Self::poll_transmit) have been written.
    pub fn handle_transmitted(&mut self, now: Instant) {
        if self.write_deadline.take().is_none() || !self.queue.is_empty() || self.close.is_some() {
            return;
        }
        if self.peer_closed {
            self.close_with(CloseReason::PeerClosed);
        } else if self.phase == Phase::Answering {
            if self.draining {
                self.close_with(CloseReason::Shutdown);
            } else {
                self.phase = Phase::Idle;
                self.read_deadline = Some(now.saturating_add(self.config.idle_timeout));
            }
        }
        // Reading: a 100 Continue went out, the body is still due by the read deadline.
    }

    /// Stop taking requests: close now if idle, else after answering what has arrived
    /// (the last response says `Connection: close`). A request still arriving may finish
    /// within its read deadline.
    pub fn begin_shutdown(&mut self, _now: Instant) {
        self.draining = true;
        let idle = self.queue.is_empty() && self.write_deadline.is_none();
        if self.close.is_none() && idle && matches!(self.phase, Phase::Idle | Phase::Handshake) {
            self.close_with(CloseReason::Shutdown);
        }
    }

    /// Applies an expired deadline; early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.close.is_some() && self.write_deadline.is_none() {
            return;
        }
        if self.write_deadline.is_some_and(|d| d <= now) {
            self.write_deadline = None;
            self.queue.clear();
            self.close = Some(CloseReason::WriteTimeout);
            return;
        }
        if self.write_deadline.is_some() || !self.queue.is_empty() {
            return;
        }
        if self.read_deadline.is_some_and(|d| d <= now) {
            let reason = match self.phase {
                Phase::Handshake => CloseReason::HandshakeTimeout,
                Phase::Idle => CloseReason::IdleTimeout,
                Phase::Reading | Phase::Answering => CloseReason::ReadTimeout,
            };
            self.close_with(reason);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called (a write in
    /// progress must have finished by then too); `None` once closing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(deadline) = self.write_deadline {
            return Some(deadline);
        }
        if self.close.is_some() {
            return None;
        }
        self.read_deadline
    }

    /// Whether the connection should be closed now: everything to send has been handed
    /// out (or abandoned) and no more requests will be read.
    pub fn wants_close(&self) -> bool {
        self.close.is_some() && self.write_deadline.is_none() && self.queue.is_empty()
    }

    /// How long to linger once [`wants_close`](Self::wants_close): shut the sending side
    /// down, then read and discard until the peer closes or this much time has passed.
    pub fn linger(&self) -> Duration {
        self.config.linger
    }

    /// Why the connection closes, once decided.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close.as_ref()
    }

    /// Decides to close once the output handed out so far is written; nothing more is
    /// read or answered.
    fn close_with(&mut self, reason: CloseReason) {
        self.queue.clear();
        self.read_deadline = None;
        if self.close.is_none() {
            self.close = Some(reason);
        }
    }
}
