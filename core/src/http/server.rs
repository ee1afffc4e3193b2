//! Server side: requests in (with limits, keep-alive and pipelining), responses out.
//!
//! ```text
//!    ┌──────────────────────── keep-alive ───────────────────────┐
//!    ▼                                                            │
//!  Head ──(head parsed)──▶ Body ──(body read)──▶ Request event ──┴─(close)─▶ Closed
//!    │                       │                                                 ▲
//!    └──────────── limit / malformed ──────────▶ Reject event ─────────────────┘
//! ```

use std::collections::VecDeque;

use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};

use super::chunked::{BodyDecoder, ChunkedDecoder};
use super::{
    Error, HeadError, HeaderFacts, INITIAL_BODY_RESERVE, STACK_HEADER_SLOTS, find_head_end,
    header_map, list_items, skip_blank_lines, write_decimal, write_header,
};

/// Limits on what one request may make the server hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus header fields, in bytes; beyond it the answer is 431.
    pub max_head_bytes: usize,
    /// Header fields per request; beyond it the answer is 431.
    pub max_headers: usize,
    /// Decoded body bytes; beyond it the answer is 413.
    pub max_body_bytes: u64,
}

impl Limits {
    /// 64 KiB of head, 100 header fields, 1 MiB of body.
    pub const DEFAULT: Limits = Limits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
        max_body_bytes: 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What the response to one request must respect when it is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseContext {
    /// The request was HEAD: headers are sent, the body is not.
    pub head: bool,
    /// The request's version; an HTTP/1.0 client cannot read chunked bodies.
    pub version: Version,
    /// The client lets the connection serve another request after this response.
    pub keep_alive: bool,
}

impl ResponseContext {
    /// The context of a request built elsewhere (the parser hands one out with each
    /// request it yields).
    pub fn for_request<B>(request: &Request<B>) -> Self {
        let (mut close, mut keep_alive) = (false, false);
        for value in request.headers().get_all(CONNECTION) {
            for token in list_items(value.as_bytes()) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        let http11 = request.version() > Version::HTTP_10;
        ResponseContext {
            head: request.method() == Method::HEAD,
            version: request.version(),
            keep_alive: !close && (http11 || keep_alive),
        }
    }
}

impl Default for ResponseContext {
    /// A GET over HTTP/1.1 with keep-alive.
    fn default() -> Self {
        ResponseContext {
            head: false,
            version: Version::HTTP_11,
            keep_alive: true,
        }
    }
}

/// What the caller must do next on a server connection.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every event is a Request; boxing it would cost an allocation per request"
)]
pub enum ServerEvent {
    /// The client sent `Expect: 100-continue`: write [`encode_continue`] now, so it
    /// sends the body. The request itself follows once its body has arrived.
    Continue,
    /// A complete request. Answer it (in order) framed by `context`; when
    /// `context.keep_alive` is false, close the connection after the response.
    Request {
        /// Method, target, version, headers and the decoded body.
        request: Request<Vec<u8>>,
        /// How its response must be framed.
        context: ResponseContext,
    },
    /// The input broke a limit or the protocol. Write [`encode_rejection`] (status
    /// [`Error::status`], `Connection: close`) and close; no event follows.
    Reject(Error),
}

/// Incremental request parser for one server connection.
///
/// Feed it whatever the transport read, then drain [`poll_event`](Self::poll_event).
/// Pipelined requests come out one by one, in order. Only an unfinished head is kept
/// between calls; body bytes go straight into the request being built.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    /// Input not consumed yet: only ever the start of a head that has not fully arrived.
    pending: Vec<u8>,
    /// Where the search for the end of the pending head resumes, so a head fed byte
    /// by byte is scanned once.
    head_scan: usize,
    state: State,
    events: VecDeque<ServerEvent>,
}

#[derive(Debug)]
enum State {
    Head,
    Body(Box<InFlight>),
    /// Nothing more is parsed: a request asked to close, the input was rejected, or
    /// the peer closed.
    Closed,
}

/// A request whose head has been parsed and whose body is arriving.
#[derive(Debug)]
struct InFlight {
    request: Request<Vec<u8>>,
    context: ResponseContext,
    decoder: BodyDecoder,
}

/// A parsed head, ready to become a request once its body is read.
struct ParsedHead {
    request: Request<Vec<u8>>,
    context: ResponseContext,
    body: Option<BodyDecoder>,
    expect_continue: bool,
}

impl RequestParser {
    /// A parser for a new connection.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            pending: Vec::new(),
            head_scan: 0,
            state: State::Head,
            events: VecDeque::new(),
        }
    }

    /// Hands in the next bytes read from the connection, split anywhere.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pending.is_empty() {
            let used = self.process(bytes);
            self.pending.extend_from_slice(&bytes[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(bytes);
            let used = self.process(&pending);
            pending.drain(..used);
            self.pending = pending;
        }
    }

    /// The peer closed its sending side. A request cut short is dropped without an
    /// answer; events already queued are still delivered.
    pub fn feed_eof(&mut self) {
        self.state = State::Closed;
        self.pending = Vec::new();
    }

    /// The next thing to do, in order; `None` once everything fed has been handled.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Whether the parser will yield no more requests beyond those already queued;
    /// the connection should close once their responses are flushed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Parses as much of `input` as possible; returns how much was consumed. Whatever
    /// is left is the start of a head that has not fully arrived.
    fn process(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            match &mut self.state {
                State::Closed => return input.len(),
                State::Head => {
                    let blank = skip_blank_lines(&input[pos..]);
                    pos += blank;
                    self.head_scan = self.head_scan.saturating_sub(blank);
                    if pos == input.len() {
                        return pos;
                    }
                    match self.start_request(&input[pos..]) {
                        Ok(Some(head_len)) => pos += head_len,
                        Ok(None) => return pos,
                        Err(error) => {
                            self.reject(error);
                            return input.len();
                        }
                    }
                }
                State::Body(in_flight) => {
                    if pos == input.len() {
                        return pos;
                    }
                    let InFlight {
                        request, decoder, ..
                    } = &mut **in_flight;
                    let body = request.body_mut();
                    let decoded = decoder.decode(&input[pos..], &mut |data| {
                        body.extend_from_slice(data);
                        Ok(())
                    });
                    match decoded {
                        Ok((used, finished)) => {
                            pos += used;
                            if finished {
                                let state = std::mem::replace(&mut self.state, State::Head);
                                if let State::Body(in_flight) = state {
                                    self.complete(in_flight.request, in_flight.context);
                                }
                            }
                        }
                        Err(error) => {
                            self.reject(error);
                            return input.len();
                        }
                    }
                }
            }
        }
    }

    /// Parses the head at the start of `input` if it is complete, queues what it
    /// implies, and returns its length; `None` if more bytes are needed.
    fn start_request(&mut self, input: &[u8]) -> Result<Option<usize>, Error> {
        let limit = self.limits.max_head_bytes;
        let (head_len, parsed) = loop {
            let Some(head_len) = find_head_end(input, &mut self.head_scan) else {
                // Without its terminator in the first `limit` bytes the head cannot fit.
                if input.len() >= limit {
                    return Err(Error::HeadTooLarge { limit });
                }
                return Ok(None);
            };
            if head_len > limit {
                return Err(Error::HeadTooLarge { limit });
            }
            match parse_request_head(&input[..head_len], &self.limits)? {
                Some(parsed) => break (head_len, parsed),
                // httparse wants more although an empty line ended the head: look
                // for a later one.
                None => self.head_scan = head_len,
            }
        };
        self.head_scan = 0;
        if parsed.expect_continue {
            self.events.push_back(ServerEvent::Continue);
        }
        match parsed.body {
            Some(decoder) => {
                self.state = State::Body(Box::new(InFlight {
                    request: parsed.request,
                    context: parsed.context,
                    decoder,
                }));
            }
            None => self.complete(parsed.request, parsed.context),
        }
        Ok(Some(head_len))
    }

    fn complete(&mut self, request: Request<Vec<u8>>, context: ResponseContext) {
        self.state = if context.keep_alive {
            State::Head
        } else {
            State::Closed
        };
        self.events
            .push_back(ServerEvent::Request { request, context });
    }

    fn reject(&mut self, error: Error) {
        self.state = State::Closed;
        self.events.push_back(ServerEvent::Reject(error));
    }
}

/// Parses one complete request head and decides its framing; `None` if httparse
/// still finds it incomplete.
fn parse_request_head(head: &[u8], limits: &Limits) -> Result<Option<ParsedHead>, Error> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADER_SLOTS];
    let mut heap = Vec::new();
    let slots = if limits.max_headers <= STACK_HEADER_SLOTS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize(limits.max_headers, httparse::EMPTY_HEADER);
        &mut heap[..]
    };
    let mut parsed = httparse::Request::new(slots);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        Err(error) => return Err(Error::InvalidHead(HeadError::Syntax(error))),
    }
    // A complete parse fills all three; the fallback only keeps this panic-free.
    let (Some(method), Some(path), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Error::InvalidHead(HeadError::Syntax(
            httparse::Error::Token,
        )));
    };
    let http11 = minor == 1;
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| Error::InvalidHead(HeadError::Method))?;
    let uri = Uri::try_from(path).map_err(|_| Error::InvalidHead(HeadError::Uri))?;
    let facts = HeaderFacts::gather(parsed.headers)?;

    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
    if facts.hosts > 1 {
        return Err(Error::InvalidHead(HeadError::DuplicateHost));
    }
    if http11 && facts.hosts == 0 {
        return Err(Error::InvalidHead(HeadError::MissingHost));
    }
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
    if facts.transfer_encoding && !http11 {
        return Err(Error::InvalidTransferEncoding);
    }
    let chunked = facts.chunked()?;
    // Both framings at once is the classic request-smuggling shape; refuse it.
    if chunked && facts.content_length.is_some() {
        return Err(Error::ConflictingFraming);
    }
    // RFC 9110 §10.1.1: HTTP/1.0 expectations are ignored.
    if http11 && facts.expect_other {
        return Err(Error::UnsupportedExpectation);
    }
    let max_body = limits.max_body_bytes;
    let body = match facts.content_length {
        _ if chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new(
            max_body,
            limits.max_head_bytes,
        ))),
        Some(length) if length > max_body => {
            return Err(Error::BodyTooLarge { limit: max_body });
        }
        Some(length) if length > 0 => Some(BodyDecoder::Length(length)),
        // A request without Content-Length or chunked coding has no body.
        _ => None,
    };
    let headers = header_map(parsed.headers, limits.max_headers)?;

    let reserve = facts.content_length.unwrap_or(0).min(INITIAL_BODY_RESERVE);
    let mut request = Request::new(Vec::with_capacity(usize::try_from(reserve).unwrap_or(0)));
    let context = ResponseContext {
        head: method == Method::HEAD,
        version: if http11 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        },
        keep_alive: facts.keep_alive(http11),
    };
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = context.version;
    *request.headers_mut() = headers;
    Ok(Some(ParsedHead {
        expect_continue: http11 && facts.expect_continue && body.is_some(),
        request,
        context,
        body,
    }))
}

/// How the body following a response head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// Exactly this many bytes (`Content-Length`).
    Known(u64),
    /// Written in pieces of unknown total (`Transfer-Encoding: chunked`, or until
    /// close for an HTTP/1.0 client).
    Chunked,
}

/// Status and headers of a response. `Content-Length`, `Transfer-Encoding` and
/// `Connection` are written by the encoder from the framing; values for them in
/// `headers` are ignored, except that `Connection: close` there acts like `close`.
/// No `Date` is added: core has no clock, so the caller passes one if it wants it.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// Header fields written in order (names in lowercase, as `http` stores them).
    pub headers: HeaderMap,
    /// Close the connection after this response even if the client would keep it.
    pub close: bool,
}

impl ResponseHead {
    /// A head with no headers that keeps the connection if the client does.
    pub fn new(status: StatusCode) -> Self {
        ResponseHead {
            status,
            headers: HeaderMap::new(),
            close: false,
        }
    }

    /// Adds a header field (repeated names are kept).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets `Content-Type`.
    ///
    /// # Panics
    ///
    /// If `content_type` is not visible ASCII, like [`HeaderValue::from_static`].
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    /// Asks for the connection to close after this response.
    pub fn with_close(mut self, close: bool) -> Self {
        self.close = close;
        self
    }

    /// Appends the head to `out` and returns the encoder for the body that follows.
    pub fn encode(
        &self,
        context: &ResponseContext,
        length: BodyLength,
        out: &mut Vec<u8>,
    ) -> BodyEncoder {
        encode_head(self.status, &self.headers, self.close, context, length, out)
    }

    /// Appends a complete response with a small body already in hand; returns whether
    /// the connection may serve another request.
    pub fn encode_with_body(
        &self,
        context: &ResponseContext,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        encode_complete(self.status, &self.headers, self.close, context, body, out)
    }
}

/// Appends a complete response built elsewhere (e.g. by the API handlers); returns
/// whether the connection may serve another request.
pub fn encode_response<B: AsRef<[u8]>>(
    context: &ResponseContext,
    response: &Response<B>,
    out: &mut Vec<u8>,
) -> bool {
    let body = response.body().as_ref();
    encode_complete(
        response.status(),
        response.headers(),
        false,
        context,
        body,
        out,
    )
}

/// Appends the interim `100 Continue` answer to [`ServerEvent::Continue`].
pub fn encode_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Appends the answer to [`ServerEvent::Reject`]: the error's status, its message as
/// plain text, and `Connection: close`.
pub fn encode_rejection(error: &Error, out: &mut Vec<u8>) {
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let message = format!("{error}\n");
    let context = ResponseContext {
        keep_alive: false,
        ..ResponseContext::default()
    };
    encode_complete(
        error.status(),
        &headers,
        true,
        &context,
        message.as_bytes(),
        out,
    );
}

fn encode_complete(
    status: StatusCode,
    headers: &HeaderMap,
    close: bool,
    context: &ResponseContext,
    body: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let encoder = encode_head(
        status,
        headers,
        close,
        context,
        BodyLength::Known(body.len() as u64),
        out,
    );
    if encoder.framing == Framing::Length {
        out.extend_from_slice(body);
    }
    encoder.keep_alive
}

fn encode_head(
    status: StatusCode,
    headers: &HeaderMap,
    close: bool,
    context: &ResponseContext,
    length: BodyLength,
    out: &mut Vec<u8>,
) -> BodyEncoder {
    let http10 = context.version <= Version::HTTP_10;
    let mut close = close || !context.keep_alive;
    for value in headers.get_all(CONNECTION) {
        close |= list_items(value.as_bytes()).any(|token| token.eq_ignore_ascii_case(b"close"));
    }
    // RFC 9110 §6.4.1: 1xx, 204 and 304 responses never carry a body or its framing.
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let (framing, declared) = match length {
        _ if bodiless => (Framing::Bodiless, 0),
        BodyLength::Known(length) => (Framing::Length, length),
        // An HTTP/1.0 client cannot read chunked framing: delimit by closing instead.
        BodyLength::Chunked if http10 => {
            close = true;
            (Framing::UntilClose, 0)
        }
        BodyLength::Chunked => (Framing::Chunked, 0),
    };

    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING && name != CONNECTION {
            write_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    match framing {
        Framing::Length => {
            out.extend_from_slice(b"content-length: ");
            write_decimal(out, declared);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => write_header(out, b"transfer-encoding", b"chunked"),
        Framing::UntilClose | Framing::Bodiless | Framing::Discard => {}
    }
    if close {
        write_header(out, b"connection", b"close");
    } else if http10 {
        write_header(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");

    BodyEncoder {
        // The head announces the body as for GET; only the bytes are left out.
        framing: if context.head {
            Framing::Discard
        } else {
            framing
        },
        declared,
        written: 0,
        keep_alive: !close,
    }
}

/// How a [`BodyEncoder`] puts body bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Raw bytes, exactly `declared` of them.
    Length,
    /// Each piece as one chunk, then the last chunk.
    Chunked,
    /// Raw bytes; the connection closes at the end.
    UntilClose,
    /// Counted and dropped: the response to HEAD.
    Discard,
    /// Nothing may be written: 1xx, 204, 304.
    Bodiless,
}

/// Writes the body announced by a head, piece by piece, straight into the caller's
/// buffer.
#[derive(Debug)]
#[must_use = "the body must be finished for the response to be complete"]
pub struct BodyEncoder {
    framing: Framing,
    declared: u64,
    written: u64,
    keep_alive: bool,
}

impl BodyEncoder {
    /// Appends a piece of the body. Fails without writing if the piece would run past
    /// the announced Content-Length or the status allows no body.
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let written = self.written.saturating_add(data.len() as u64);
        match self.framing {
            Framing::Length | Framing::Bodiless if written > self.declared => {
                return Err(Error::BodyLengthMismatch {
                    declared: self.declared,
                    written,
                });
            }
            Framing::Length | Framing::UntilClose => out.extend_from_slice(data),
            // An empty chunk would end the body, so empty pieces write nothing.
            Framing::Chunked if !data.is_empty() => {
                write_hex(out, data.len() as u64);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Framing::Chunked | Framing::Discard | Framing::Bodiless => {}
        }
        self.written = written;
        Ok(())
    }

    /// Ends the body. A Content-Length body cut short is an error: its framing is
    /// broken, so the connection must close rather than carry another response.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self.framing {
            Framing::Length if self.written != self.declared => Err(Error::BodyLengthMismatch {
                declared: self.declared,
                written: self.written,
            }),
            Framing::Chunked => {
                out.extend_from_slice(b"0\r\n\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether the connection may serve another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
}

fn write_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8], limits: Limits) -> Vec<ServerEvent> {
        let mut parser = RequestParser::new(limits);
        parser.feed(input);
        std::iter::from_fn(|| parser.poll_event()).collect()
    }

    fn one_request(input: &[u8]) -> (Request<Vec<u8>>, ResponseContext) {
        let mut events = parse_all(input, Limits::DEFAULT);
        assert_eq!(events.len(), 1, "{events:?}");
        match events.remove(0) {
            ServerEvent::Request { request, context } => (request, context),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn rejection(input: &[u8], limits: Limits) -> Error {
        let events = parse_all(input, limits);
        match events.last() {
            Some(ServerEvent::Reject(error)) => error.clone(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn status_of(input: &[u8]) -> u16 {
        rejection(input, Limits::DEFAULT).status().as_u16()
    }

    /// Requests (method, target, body, keep-alive) in event order; panics on others.
    fn summary(events: &[ServerEvent]) -> Vec<(String, String, Vec<u8>, bool)> {
        events
            .iter()
            .filter_map(|event| match event {
                ServerEvent::Request { request, context } => Some((
                    request.method().to_string(),
                    request.uri().to_string(),
                    request.body().clone(),
                    context.keep_alive,
                )),
                ServerEvent::Continue => None,
                ServerEvent::Reject(error) => panic!("unexpected rejection: {error}"),
            })
            .collect()
    }

    const PIPELINE: &[u8] = b"GET /apis/metrics.k8s.io/v1beta1/nodes?limit=5 HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n\
POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n\
GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\
GET /ignored HTTP/1.1\r\nHost: a\r\n\r\n";

    #[test]
    fn http_server_parses_a_simple_get() {
        let (request, context) =
            one_request(b"GET /healthz?verbose HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/healthz");
        assert_eq!(request.uri().query(), Some("verbose"));
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers()["host"], "example");
        assert_eq!(request.headers()["user-agent"], "t");
        assert!(request.body().is_empty());
        assert_eq!(context, ResponseContext::default());
    }

    #[test]
    fn http_server_pipelined_requests_come_out_in_order_and_stop_at_close() {
        let events = parse_all(PIPELINE, Limits::DEFAULT);
        let expected = vec![
            (
                "GET".to_owned(),
                "/apis/metrics.k8s.io/v1beta1/nodes?limit=5".to_owned(),
                vec![],
                true,
            ),
            ("POST".to_owned(), "/a".to_owned(), b"hello".to_vec(), true),
            ("POST".to_owned(), "/b".to_owned(), b"abcde".to_vec(), true),
            ("GET".to_owned(), "/last".to_owned(), vec![], false),
        ];
        assert_eq!(summary(&events), expected);
    }

    #[test]
    fn http_server_any_split_gives_the_same_requests() {
        let whole = summary(&parse_all(PIPELINE, Limits::DEFAULT));
        for step in 1..40 {
            let mut parser = RequestParser::new(Limits::DEFAULT);
            let mut events = Vec::new();
            for piece in PIPELINE.chunks(step) {
                parser.feed(piece);
                events.extend(std::iter::from_fn(|| parser.poll_event()));
            }
            assert_eq!(summary(&events), whole, "step {step}");
            assert!(parser.is_closed());
        }
    }

    #[test]
    fn http_server_keep_alive_rules_follow_the_version() {
        let (_, context) =
            one_request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n");
        assert!(!context.keep_alive);
        let (request, context) = one_request(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(request.version(), Version::HTTP_10);
        assert!(!context.keep_alive);
        let (_, context) = one_request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(context.keep_alive);
        assert_eq!(context.version, Version::HTTP_10);

        // After an HTTP/1.0 request without keep-alive the parser stops.
        let events = parse_all(
            b"GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
            Limits::DEFAULT,
        );
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn http_server_head_requests_are_flagged() {
        let (_, context) = one_request(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(context.head);
    }

    #[test]
    fn http_server_blank_lines_before_a_request_are_ignored() {
        let (request, _) = one_request(b"\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(request.uri(), "/");
        let mut parser = RequestParser::new(Limits::DEFAULT);
        for piece in [
            &b"\r"[..],
            b"\n\r",
            b"\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            parser.feed(piece);
        }
        assert!(matches!(
            parser.poll_event(),
            Some(ServerEvent::Request { .. })
        ));
    }

    #[test]
    fn http_server_content_length_variants() {
        let (request, _) = one_request(
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc",
        );
        assert_eq!(request.body(), b"abc");
        for bad in [
            &b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd",
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        ] {
            assert_eq!(
                rejection(bad, Limits::DEFAULT),
                Error::InvalidContentLength,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http_server_transfer_encoding_rules() {
        let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(
            rejection(chunked, Limits::DEFAULT),
            Error::ConflictingFraming
        );
        assert_eq!(status_of(chunked), 400);
        // chunked is not last: the length cannot be determined (400).
        let gzip = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(
            rejection(gzip, Limits::DEFAULT),
            Error::InvalidTransferEncoding
        );
        assert_eq!(status_of(gzip), 400);
        // Well-formed but a coding we do not implement (501).
        let gzip_chunked =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            rejection(gzip_chunked, Limits::DEFAULT),
            Error::UnsupportedTransferEncoding
        );
        assert_eq!(status_of(gzip_chunked), 501);
        let twice = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
        assert_eq!(status_of(twice), 400);
        let http10 = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(
            rejection(http10, Limits::DEFAULT),
            Error::InvalidTransferEncoding
        );
        let (request, _) = one_request(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1;a=b;c=\"d\"\r\nx\r\n0;z\r\nA: b\r\nC: d\r\n\r\n",
        );
        assert_eq!(request.body(), b"x");
    }

    #[test]
    fn http_server_malformed_input_is_400() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        ] {
            assert_eq!(status_of(bad), 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            rejection(b"GET / HTTP/1.1\r\n\r\n", Limits::DEFAULT),
            Error::InvalidHead(HeadError::MissingHost)
        );
    }

    #[test]
    fn http_server_head_limit_is_exact() {
        let limits = Limits::DEFAULT;
        let request_for_head_of = |size: usize| {
            let fixed = b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
            let filler = "f".repeat(size - fixed);
            format!("GET / HTTP/1.1\r\nHost: a\r\nX: {filler}\r\n\r\n")
        };
        let exact = request_for_head_of(limits.max_head_bytes);
        assert_eq!(exact.len(), 64 * 1024);
        one_request(exact.as_bytes());
        let over = request_for_head_of(limits.max_head_bytes + 1);
        assert_eq!(
            rejection(over.as_bytes(), limits),
            Error::HeadTooLarge { limit: 64 * 1024 }
        );
        assert_eq!(status_of(over.as_bytes()), 431);

        // A head that never ends is refused once the limit is reached, byte by byte too.
        let mut parser = RequestParser::new(limits);
        parser.feed(b"GET / HTTP/1.1\r\nX: ");
        for _ in 0..limits.max_head_bytes {
            parser.feed(b"y");
            if parser.is_closed() {
                break;
            }
        }
        assert!(matches!(
            parser.poll_event(),
            Some(ServerEvent::Reject(Error::HeadTooLarge { .. }))
        ));
        assert!(parser.pending.is_empty());
    }

    #[test]
    fn http_server_header_count_limit_is_exact() {
        let with_headers = |count: usize| {
            let mut text = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
            for i in 1..count {
                text.push_str(&format!("X-{i}: v\r\n"));
            }
            text.push_str("\r\n");
            text
        };
        let (request, _) = one_request(with_headers(100).as_bytes());
        assert_eq!(request.headers().len(), 100);
        let too_many = with_headers(101);
        assert_eq!(
            rejection(too_many.as_bytes(), Limits::DEFAULT),
            Error::TooManyHeaders { limit: 100 }
        );
        assert_eq!(status_of(too_many.as_bytes()), 431);
        // Above the stack slots the heap is used.
        let limits = Limits {
            max_headers: 150,
            ..Limits::DEFAULT
        };
        let events = parse_all(with_headers(150).as_bytes(), limits);
        assert!(matches!(events[..], [ServerEvent::Request { .. }]));
    }

    #[test]
    fn http_server_body_limit_is_exact() {
        let limit = Limits::DEFAULT.max_body_bytes;
        let body = vec![b'b'; 1024 * 1024];
        let mut exact =
            format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {limit}\r\n\r\n").into_bytes();
        exact.extend_from_slice(&body);
        let (request, _) = one_request(&exact);
        assert_eq!(request.body().len(), 1024 * 1024);

        let over = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            limit + 1
        );
        assert_eq!(
            rejection(over.as_bytes(), Limits::DEFAULT),
            Error::BodyTooLarge { limit }
        );
        assert_eq!(status_of(over.as_bytes()), 413);

        let mut chunked =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(format!("{:x}\r\n", limit).as_bytes());
        chunked.extend_from_slice(&body);
        chunked.extend_from_slice(b"\r\n1\r\n");
        assert_eq!(
            rejection(&chunked, Limits::DEFAULT),
            Error::BodyTooLarge { limit }
        );
    }

    #[test]
    fn http_server_limits_are_configurable() {
        let limits = Limits {
            max_head_bytes: 48,
            max_headers: 2,
            max_body_bytes: 4,
        };
        let long = b"GET /0123456789012345678901234 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(rejection(long, limits), Error::HeadTooLarge { limit: 48 });
        let headers = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            rejection(headers, limits),
            Error::TooManyHeaders { limit: 2 }
        );
        let body = b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(rejection(body, limits), Error::BodyTooLarge { limit: 4 });
    }

    #[test]
    fn http_server_expect_continue_comes_before_the_body() {
        let mut parser = RequestParser::new(Limits::DEFAULT);
        parser.feed(
            b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n",
        );
        assert!(matches!(parser.poll_event(), Some(ServerEvent::Continue)));
        assert!(parser.poll_event().is_none());
        parser.feed(b"data");
        match parser.poll_event() {
            Some(ServerEvent::Request { request, .. }) => assert_eq!(request.body(), b"data"),
            other => panic!("expected the request, got {other:?}"),
        }
        let mut out = Vec::new();
        encode_continue(&mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");

        // Too large: refused instead of inviting the body.
        let events = parse_all(
            b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
            Limits::DEFAULT,
        );
        assert!(matches!(
            events[..],
            [ServerEvent::Reject(Error::BodyTooLarge { .. })]
        ));
        // No body, or HTTP/1.0: nothing to continue.
        let events = parse_all(
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            Limits::DEFAULT,
        );
        assert!(matches!(events[..], [ServerEvent::Request { .. }]));
        let events = parse_all(
            b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
            Limits::DEFAULT,
        );
        assert!(matches!(events[..], [ServerEvent::Request { .. }]));
        // Unknown expectations are refused with 417.
        let weird = b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(status_of(weird), 417);
    }

    #[test]
    fn http_server_nothing_follows_a_rejection_or_eof() {
        let mut parser = RequestParser::new(Limits::DEFAULT);
        parser.feed(b"BROKEN\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(matches!(parser.poll_event(), Some(ServerEvent::Reject(_))));
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(parser.poll_event().is_none());
        assert!(parser.is_closed());

        let mut parser = RequestParser::new(Limits::DEFAULT);
        parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
        parser.feed_eof();
        assert!(parser.poll_event().is_none());
        assert!(parser.is_closed());
    }

    #[test]
    fn http_server_context_for_a_built_request() {
        let request = Request::builder()
            .method(Method::HEAD)
            .version(Version::HTTP_10)
            .header(CONNECTION, "keep-alive")
            .body(())
            .expect("valid request");
        let context = ResponseContext::for_request(&request);
        assert!(context.head && context.keep_alive);
        assert_eq!(context.version, Version::HTTP_10);
    }

    #[test]
    fn http_server_small_response_with_content_length() {
        let mut out = Vec::new();
        let head = ResponseHead::new(StatusCode::OK)
            .with_content_type("application/json")
            .with_header(
                HeaderName::from_static("date"),
                HeaderValue::from_static("Thu, 01 Jan 2026 00:00:00 GMT"),
            )
            .with_header(CONTENT_LENGTH, HeaderValue::from_static("999"));
        let keep_alive = head.encode_with_body(&ResponseContext::default(), b"{}", &mut out);
        assert!(keep_alive);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn http_server_close_is_announced() {
        let mut out = Vec::new();
        let head = ResponseHead::new(StatusCode::OK).with_close(true);
        assert!(!head.encode_with_body(&ResponseContext::default(), b"", &mut out));
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );

        out.clear();
        let client_closes = ResponseContext {
            keep_alive: false,
            ..ResponseContext::default()
        };
        assert!(!ResponseHead::new(StatusCode::OK).encode_with_body(&client_closes, b"", &mut out));
        assert!(out.ends_with(b"connection: close\r\n\r\n"));

        out.clear();
        let head = ResponseHead::new(StatusCode::OK)
            .with_header(CONNECTION, HeaderValue::from_static("Close"));
        assert!(!head.encode_with_body(&ResponseContext::default(), b"", &mut out));
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );

        out.clear();
        let http10 = ResponseContext {
            version: Version::HTTP_10,
            ..ResponseContext::default()
        };
        assert!(ResponseHead::new(StatusCode::OK).encode_with_body(&http10, b"", &mut out));
        assert!(out.ends_with(b"connection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn http_server_chunked_body_in_pieces() {
        let mut out = Vec::new();
        let mut body = ResponseHead::new(StatusCode::OK).encode(
            &ResponseContext::default(),
            BodyLength::Chunked,
            &mut out,
        );
        for piece in [&b"hello "[..], b"", &[b'w'; 20][..]] {
            body.write(piece, &mut out)
                .expect("chunked accepts any piece");
        }
        assert!(body.keep_alive());
        body.finish(&mut out).expect("chunked always finishes");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n14\r\n{}\r\n0\r\n\r\n",
                "w".repeat(20)
            )
        );
    }

    #[test]
    fn http_server_known_length_body_in_pieces_must_match() {
        let mut out = Vec::new();
        let context = ResponseContext::default();
        let mut body =
            ResponseHead::new(StatusCode::OK).encode(&context, BodyLength::Known(5), &mut out);
        body.write(b"abc", &mut out).expect("within length");
        assert_eq!(
            body.write(b"def", &mut out),
            Err(Error::BodyLengthMismatch {
                declared: 5,
                written: 6
            })
        );
        body.write(b"de", &mut out).expect("within length");
        body.finish(&mut out).expect("complete");
        assert!(out.ends_with(b"content-length: 5\r\n\r\nabcde"));

        let short =
            ResponseHead::new(StatusCode::OK).encode(&context, BodyLength::Known(5), &mut out);
        assert_eq!(
            short.finish(&mut out),
            Err(Error::BodyLengthMismatch {
                declared: 5,
                written: 0
            })
        );
    }

    #[test]
    fn http_server_head_responses_have_headers_but_no_body() {
        let head_context = ResponseContext {
            head: true,
            ..ResponseContext::default()
        };
        let mut out = Vec::new();
        assert!(ResponseHead::new(StatusCode::OK).encode_with_body(
            &head_context,
            b"body",
            &mut out
        ));
        assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n");

        out.clear();
        let mut body =
            ResponseHead::new(StatusCode::OK).encode(&head_context, BodyLength::Chunked, &mut out);
        body.write(b"dropped", &mut out).expect("HEAD discards");
        body.finish(&mut out).expect("HEAD discards");
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn http_server_bodiless_statuses_have_no_framing() {
        let mut out = Vec::new();
        let mut body = ResponseHead::new(StatusCode::NO_CONTENT).encode(
            &ResponseContext::default(),
            BodyLength::Known(3),
            &mut out,
        );
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\n\r\n");
        assert!(body.write(b"x", &mut out).is_err());
        body.finish(&mut out).expect("nothing to finish");
        out.clear();
        ResponseHead::new(StatusCode::NOT_MODIFIED).encode_with_body(
            &ResponseContext::default(),
            b"x",
            &mut out,
        );
        assert_eq!(out, b"HTTP/1.1 304 Not Modified\r\n\r\n");
    }

    #[test]
    fn http_server_http10_clients_get_close_delimited_streams() {
        let http10 = ResponseContext {
            version: Version::HTTP_10,
            keep_alive: true,
            head: false,
        };
        let mut out = Vec::new();
        let mut body =
            ResponseHead::new(StatusCode::OK).encode(&http10, BodyLength::Chunked, &mut out);
        assert!(!body.keep_alive());
        body.write(b"raw", &mut out).expect("raw bytes");
        body.finish(&mut out).expect("ends by closing");
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nraw");
    }

    #[test]
    fn http_server_encodes_a_built_response_and_rejections() {
        let response = Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(CONTENT_TYPE, "application/json")
            .body(b"{\"kind\":\"Status\"}".to_vec())
            .expect("valid response");
        let mut out = Vec::new();
        assert!(encode_response(
            &ResponseContext::default(),
            &response,
            &mut out
        ));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{\"kind\":\"Status\"}"
        );

        out.clear();
        encode_rejection(&Error::TooManyHeaders { limit: 100 }, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 40\r\nconnection: close\r\n\r\nmessage has more than 100 header fields\n"
        );
    }
}
