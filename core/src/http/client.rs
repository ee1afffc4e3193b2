//! Client side: requests out, responses in, bodies buffered whole or streamed as lines
//! (Kubernetes watch streams: one JSON event per line, chunk boundaries anywhere).
//!
//! ```text
//!  ──▶ Head ──(1xx)──▶ Head
//!        │
//!        ├─(final head)─▶ Head event ──▶ Body ──(end / EOF)──▶ Body | Line… ──▶ End
//!        │                                 │
//!        └──── limit / malformed / early EOF ─────────────────────▶ Error
//! ```

use std::collections::VecDeque;

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode, Version};

use super::chunked::{BodyDecoder, ChunkedDecoder};
use super::{
    Error, HeadError, HeaderFacts, INITIAL_BODY_RESERVE, STACK_HEADER_SLOTS, find_head_end,
    header_map, skip_blank_lines, write_decimal, write_header,
};

/// Appends `request` to `out` as HTTP/1.1 (or HTTP/1.0 if the request says so).
///
/// The request line carries the URI's path and query; `Host` comes from a Host
/// header if present, else from the URI's authority. A non-empty body, or any body
/// of POST, PUT or PATCH, is framed with `Content-Length`; Content-Length and
/// Transfer-Encoding headers in `request` are ignored.
pub fn encode_request<B: AsRef<[u8]>>(
    request: &Request<B>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let uri = request.uri();
    let host = match (request.headers().get(HOST), uri.authority()) {
        (Some(host), _) => host.as_bytes(),
        // Credentials in the authority never belong in Host.
        (None, Some(authority)) => authority
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .as_bytes(),
        (None, None) => return Err(Error::NoAuthority),
    };
    let target = uri.path_and_query().map_or("/", |target| target.as_str());
    let body = request.body().as_ref();

    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(if request.version() == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    write_header(out, b"host", host);
    for (name, value) in request.headers() {
        if name != HOST && name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            write_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let method = request.method();
    if !body.is_empty()
        || *method == Method::POST
        || *method == Method::PUT
        || *method == Method::PATCH
    {
        out.extend_from_slice(b"content-length: ");
        write_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(())
}

/// Limits on what one response may make the client hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Status line plus header fields, in bytes.
    pub max_head_bytes: usize,
    /// Header fields per response.
    pub max_headers: usize,
    /// Body bytes when the body is buffered whole.
    pub max_body_bytes: u64,
    /// Bytes of one line (excluding its LF) when the body is streamed as lines.
    pub max_line_bytes: usize,
}

impl ResponseLimits {
    /// 64 KiB of head, 100 header fields, 16 MiB of body, 16 MiB per line.
    pub const DEFAULT: ResponseLimits = ResponseLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 100,
        max_body_bytes: 16 * 1024 * 1024,
        max_line_bytes: 16 * 1024 * 1024,
    };
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits::DEFAULT
    }
}

/// How a response body is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Whole, as one [`ClientEvent::Body`], within `max_body_bytes`.
    Buffered,
    /// For watch streams: each newline-terminated line of a 2xx body as a
    /// [`ClientEvent::Line`] as soon as it is complete, within `max_line_bytes` per
    /// line and with no limit on the whole stream. Other statuses carry an error
    /// object, not a stream, so their body is buffered as in `Buffered`.
    Lines,
}

/// What a response brought.
#[derive(Debug)]
pub enum ClientEvent {
    /// The final status and headers (interim 1xx heads are skipped). Always first.
    Head(Response<()>),
    /// The whole body; exactly once, just before `End`, unless the body is streamed.
    Body(Vec<u8>),
    /// One line of a streamed body, without its LF (or CRLF). Empty lines are
    /// skipped; an unterminated last line is delivered when the body ends.
    Line(Vec<u8>),
    /// The response is complete.
    End {
        /// Whether the connection may carry another request.
        keep_alive: bool,
    },
    /// The response is unusable and so is the connection; nothing follows.
    Error(Error),
}

/// Incremental parser of the response to one request.
///
/// Feed it what the transport read and [`feed_eof`](Self::feed_eof) when the peer
/// closes, draining [`poll_event`](Self::poll_event) after each call. Create one per
/// request; bytes after the end of the response are ignored (a server sends none
/// before the next request).
#[derive(Debug)]
pub struct ResponseParser {
    limits: ResponseLimits,
    mode: BodyMode,
    /// Responses to HEAD have no body whatever their headers say.
    head_request: bool,
    /// Input not consumed yet: only ever the start of a head that has not fully arrived.
    pending: Vec<u8>,
    /// Where the search for the end of the pending head resumes.
    head_scan: usize,
    state: State,
    events: VecDeque<ClientEvent>,
}

#[derive(Debug)]
enum State {
    Head,
    Body {
        decoder: BodyDecoder,
        sink: Sink,
        keep_alive: bool,
    },
    Finished,
}

/// Where decoded body bytes go.
#[derive(Debug)]
enum Sink {
    Buffer { body: Vec<u8>, limit: u64 },
    Lines(LineSplitter),
}

impl Sink {
    fn accept(&mut self, data: &[u8], events: &mut VecDeque<ClientEvent>) -> Result<(), Error> {
        match self {
            Sink::Buffer { body, limit } => {
                if (body.len() + data.len()) as u64 > *limit {
                    return Err(Error::BodyTooLarge { limit: *limit });
                }
                body.extend_from_slice(data);
                Ok(())
            }
            Sink::Lines(lines) => lines.push(data, events),
        }
    }

    fn finish(self, events: &mut VecDeque<ClientEvent>) {
        match self {
            Sink::Buffer { body, .. } => events.push_back(ClientEvent::Body(body)),
            Sink::Lines(mut lines) => lines.finish(events),
        }
    }
}

/// Splits a byte stream into lines, holding at most one unfinished line.
#[derive(Debug)]
struct LineSplitter {
    partial: Vec<u8>,
    limit: usize,
}

impl LineSplitter {
    fn push(&mut self, mut data: &[u8], events: &mut VecDeque<ClientEvent>) -> Result<(), Error> {
        let too_large = Error::EventTooLarge { limit: self.limit };
        while let Some(newline) = memchr::memchr(b'\n', data) {
            let piece = &data[..newline];
            if self.partial.len() + piece.len() > self.limit {
                return Err(too_large);
            }
            let line = if self.partial.is_empty() {
                piece.to_vec()
            } else {
                self.partial.extend_from_slice(piece);
                std::mem::take(&mut self.partial)
            };
            emit_line(line, events);
            data = &data[newline + 1..];
        }
        if self.partial.len() + data.len() > self.limit {
            return Err(too_large);
        }
        self.partial.extend_from_slice(data);
        Ok(())
    }

    fn finish(&mut self, events: &mut VecDeque<ClientEvent>) {
        emit_line(std::mem::take(&mut self.partial), events);
    }
}

fn emit_line(mut line: Vec<u8>, events: &mut VecDeque<ClientEvent>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if !line.is_empty() {
        events.push_back(ClientEvent::Line(line));
    }
}

/// A parsed final head and how its body is delimited.
struct ParsedHead {
    response: Response<()>,
    /// `None` if the response has no body.
    body: Option<BodyDecoder>,
    /// The body is handed over line by line rather than buffered.
    streamed: bool,
    keep_alive: bool,
}

impl ResponseParser {
    /// A parser for the response to a request with `request_method`.
    pub fn new(request_method: &Method, mode: BodyMode, limits: ResponseLimits) -> Self {
        ResponseParser {
            limits,
            mode,
            head_request: *request_method == Method::HEAD,
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

    /// The peer closed the connection: ends a body delimited by closing, and is an
    /// error anywhere else before the response is complete.
    pub fn feed_eof(&mut self) {
        self.pending = Vec::new();
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Body {
                decoder: BodyDecoder::UntilEof,
                sink,
                ..
            } => self.finish_body(sink, false),
            State::Head | State::Body { .. } => self.fail(Error::UnexpectedEof),
            State::Finished => {}
        }
    }

    /// The next event, in order; `None` until more input arrives.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Whether the response has ended or failed (its events may still be queued).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Parses as much of `input` as possible; returns how much was consumed. Whatever
    /// is left is the start of a head that has not fully arrived.
    fn process(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            match &mut self.state {
                State::Finished => return input.len(),
                State::Head => {
                    let blank = skip_blank_lines(&input[pos..]);
                    pos += blank;
                    self.head_scan = self.head_scan.saturating_sub(blank);
                    if pos == input.len() {
                        return pos;
                    }
                    match self.read_head(&input[pos..]) {
                        Ok(Some(head_len)) => pos += head_len,
                        Ok(None) => return pos,
                        Err(error) => {
                            self.fail(error);
                            return input.len();
                        }
                    }
                }
                State::Body {
                    decoder,
                    sink,
                    keep_alive,
                } => {
                    if pos == input.len() {
                        return pos;
                    }
                    let events = &mut self.events;
                    let decoded =
                        decoder.decode(&input[pos..], &mut |data| sink.accept(data, events));
                    let keep_alive = *keep_alive;
                    match decoded {
                        Ok((used, finished)) => {
                            pos += used;
                            if finished {
                                let state = std::mem::replace(&mut self.state, State::Finished);
                                if let State::Body { sink, .. } = state {
                                    self.finish_body(sink, keep_alive);
                                }
                            }
                        }
                        Err(error) => {
                            self.fail(error);
                            return input.len();
                        }
                    }
                }
            }
        }
    }

    /// Reads the head at the start of `input` if complete and returns its length;
    /// `None` if more bytes are needed.
    fn read_head(&mut self, input: &[u8]) -> Result<Option<usize>, Error> {
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
            match self.parse_head(&input[..head_len])? {
                Some(parsed) => break (head_len, parsed),
                // httparse wants more although an empty line ended the head: look
                // for a later one.
                None => self.head_scan = head_len,
            }
        };
        self.head_scan = 0;
        let status = parsed.response.status();
        if status.is_informational() {
            // Interim responses (100 Continue, 103 Early Hints) precede the real one.
            // 101 would switch protocols, which we never ask for.
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(Error::InvalidHead(HeadError::UnexpectedUpgrade));
            }
            return Ok(Some(head_len));
        }
        self.events.push_back(ClientEvent::Head(parsed.response));
        let sink = if parsed.streamed {
            Sink::Lines(LineSplitter {
                partial: Vec::new(),
                limit: self.limits.max_line_bytes,
            })
        } else {
            let limit = self.limits.max_body_bytes;
            let reserve = match parsed.body {
                Some(BodyDecoder::Length(length)) if length > limit => {
                    return Err(Error::BodyTooLarge { limit });
                }
                Some(BodyDecoder::Length(length)) => length.min(INITIAL_BODY_RESERVE),
                _ => 0,
            };
            Sink::Buffer {
                body: Vec::with_capacity(usize::try_from(reserve).unwrap_or(0)),
                limit,
            }
        };
        match parsed.body {
            None => self.finish_body(sink, parsed.keep_alive),
            Some(decoder) => {
                self.state = State::Body {
                    decoder,
                    sink,
                    keep_alive: parsed.keep_alive,
                };
            }
        }
        Ok(Some(head_len))
    }

    /// Parses one complete response head; `None` if httparse still finds it incomplete.
    fn parse_head(&self, head: &[u8]) -> Result<Option<ParsedHead>, Error> {
        let max_headers = self.limits.max_headers;
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADER_SLOTS];
        let mut heap = Vec::new();
        let slots = if max_headers <= STACK_HEADER_SLOTS {
            &mut stack[..max_headers]
        } else {
            heap.resize(max_headers, httparse::EMPTY_HEADER);
            &mut heap[..]
        };
        let mut parsed = httparse::Response::new(slots);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::TooManyHeaders { limit: max_headers });
            }
            Err(error) => return Err(Error::InvalidHead(HeadError::Syntax(error))),
        }
        // A complete parse fills both; the fallback only keeps this panic-free.
        let (Some(code), Some(minor)) = (parsed.code, parsed.version) else {
            return Err(Error::InvalidHead(HeadError::Syntax(
                httparse::Error::Status,
            )));
        };
        let status =
            StatusCode::from_u16(code).map_err(|_| Error::InvalidHead(HeadError::Status))?;
        let http11 = minor == 1;
        let facts = HeaderFacts::gather(parsed.headers)?;
        let headers = header_map(parsed.headers, max_headers)?;
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = if http11 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        *response.headers_mut() = headers;

        let mut keep_alive = facts.keep_alive(http11);
        // RFC 9112 §6.3: HEAD responses and 1xx, 204 and 304 never have a body.
        let bodiless = self.head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let streamed = self.mode == BodyMode::Lines && status.is_success();
        // A stream has no overall limit, only the one per line.
        let max_body = if streamed {
            u64::MAX
        } else {
            self.limits.max_body_bytes
        };
        let body = if bodiless {
            None
        } else if facts.chunked()? {
            // RFC 9112 §6.3: chunked overrides Content-Length, but such a message (or
            // chunked from HTTP/1.0) may be a smuggling attempt: do not reuse.
            keep_alive &= facts.content_length.is_none() && http11;
            Some(BodyDecoder::Chunked(ChunkedDecoder::new(
                max_body,
                self.limits.max_head_bytes,
            )))
        } else {
            match facts.content_length {
                Some(0) => None,
                Some(length) => Some(BodyDecoder::Length(length)),
                None => {
                    keep_alive = false;
                    Some(BodyDecoder::UntilEof)
                }
            }
        };
        Ok(Some(ParsedHead {
            response,
            body,
            streamed,
            keep_alive,
        }))
    }

    fn finish_body(&mut self, sink: Sink, keep_alive: bool) {
        self.state = State::Finished;
        sink.finish(&mut self.events);
        self.events.push_back(ClientEvent::End { keep_alive });
    }

    fn fail(&mut self, error: Error) {
        self.state = State::Finished;
        self.events.push_back(ClientEvent::Error(error));
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http::header::{ACCEPT, AUTHORIZATION, USER_AGENT};

    use super::*;

    /// Everything a response produced, flattened for comparison.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Head(u16, Vec<(String, String)>),
        Body(Vec<u8>),
        Line(String),
        End(bool),
        Error(Error),
    }

    fn drain(parser: &mut ResponseParser, seen: &mut Vec<Seen>) {
        while let Some(event) = parser.poll_event() {
            seen.push(match event {
                ClientEvent::Head(head) => Seen::Head(
                    head.status().as_u16(),
                    head.headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                ),
                ClientEvent::Body(body) => Seen::Body(body),
                ClientEvent::Line(line) => Seen::Line(String::from_utf8_lossy(&line).into_owned()),
                ClientEvent::End { keep_alive } => Seen::End(keep_alive),
                ClientEvent::Error(error) => Seen::Error(error),
            });
        }
    }

    fn parse_with(
        method: &Method,
        mode: BodyMode,
        limits: ResponseLimits,
        input: &[u8],
        step: usize,
        eof: bool,
    ) -> Vec<Seen> {
        let mut parser = ResponseParser::new(method, mode, limits);
        let mut seen = Vec::new();
        for piece in input.chunks(step.max(1)) {
            parser.feed(piece);
            drain(&mut parser, &mut seen);
        }
        if eof {
            parser.feed_eof();
            drain(&mut parser, &mut seen);
        }
        seen
    }

    fn parse(input: &[u8], eof: bool) -> Vec<Seen> {
        parse_with(
            &Method::GET,
            BodyMode::Buffered,
            ResponseLimits::DEFAULT,
            input,
            input.len(),
            eof,
        )
    }

    /// Same events for every split of `input`.
    fn parse_every_split(method: &Method, mode: BodyMode, input: &[u8], eof: bool) -> Vec<Seen> {
        let whole = parse_with(
            method,
            mode,
            ResponseLimits::DEFAULT,
            input,
            input.len(),
            eof,
        );
        for step in 1..input.len() {
            let split = parse_with(method, mode, ResponseLimits::DEFAULT, input, step, eof);
            assert_eq!(split, whole, "step {step}");
        }
        whole
    }

    fn head(status: u16, headers: &[(&str, &str)]) -> Seen {
        Seen::Head(
            status,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn http_client_content_length_response() {
        let input =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";
        assert_eq!(
            parse_every_split(&Method::GET, BodyMode::Buffered, input, false),
            vec![
                head(
                    200,
                    &[("content-type", "text/plain"), ("content-length", "11")]
                ),
                Seen::Body(b"hello world".to_vec()),
                Seen::End(true),
            ]
        );
    }

    #[test]
    fn http_client_chunked_response_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=1\r\nwiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
        assert_eq!(
            parse_every_split(&Method::GET, BodyMode::Buffered, input, false),
            vec![
                head(200, &[("transfer-encoding", "chunked")]),
                Seen::Body(b"wikipedia".to_vec()),
                Seen::End(true),
            ]
        );
    }

    #[test]
    fn http_client_close_delimited_body_ends_at_eof() {
        let input = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
        let seen = parse_every_split(&Method::GET, BodyMode::Buffered, input, true);
        assert_eq!(
            seen,
            vec![
                head(200, &[]),
                Seen::Body(b"until the end".to_vec()),
                Seen::End(false)
            ]
        );
        // Without EOF the body never ends.
        assert_eq!(parse(input, false), vec![head(200, &[])]);
    }

    #[test]
    fn http_client_bodiless_responses() {
        let with_length = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(
            parse_with(
                &Method::HEAD,
                BodyMode::Buffered,
                ResponseLimits::DEFAULT,
                with_length,
                100,
                false
            ),
            vec![
                head(200, &[("content-length", "10")]),
                Seen::Body(vec![]),
                Seen::End(true)
            ]
        );
        for status in [204, 304] {
            let input = format!("HTTP/1.1 {status} X\r\n\r\n");
            assert_eq!(
                parse(input.as_bytes(), false),
                vec![head(status, &[]), Seen::Body(vec![]), Seen::End(true)]
            );
        }
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            vec![
                head(200, &[("content-length", "0")]),
                Seen::Body(vec![]),
                Seen::End(true)
            ]
        );
    }

    #[test]
    fn http_client_interim_responses_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            parse_every_split(&Method::POST, BodyMode::Buffered, input, false),
            vec![
                head(201, &[("content-length", "2")]),
                Seen::Body(b"ok".to_vec()),
                Seen::End(true),
            ]
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                false
            ),
            vec![Seen::Error(Error::InvalidHead(
                HeadError::UnexpectedUpgrade
            ))]
        );
    }

    #[test]
    fn http_client_keep_alive_rules() {
        let keep = |input: &[u8]| match parse(input, false).last() {
            Some(Seen::End(keep_alive)) => *keep_alive,
            other => panic!("no end: {other:?}"),
        };
        assert!(keep(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!keep(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(keep(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!keep(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
    }

    #[test]
    fn http_client_body_limit_is_exact_and_nothing_is_buffered_past_it() {
        let limits = ResponseLimits {
            max_body_bytes: 10,
            ..ResponseLimits::DEFAULT
        };
        let run = |input: &[u8], eof: bool| {
            parse_with(&Method::GET, BodyMode::Buffered, limits, input, 3, eof)
        };
        assert_eq!(
            run(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
                false
            )[1],
            Seen::Body(b"0123456789".to_vec())
        );
        // Known length: refused before any body byte arrives.
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", false),
            vec![
                head(200, &[("content-length", "11")]),
                Seen::Error(Error::BodyTooLarge { limit: 10 })
            ]
        );
        assert_eq!(
            run(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n",
                false
            )[1],
            Seen::Error(Error::BodyTooLarge { limit: 10 })
        );
        let mut parser = ResponseParser::new(&Method::GET, BodyMode::Buffered, limits);
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n0123456789");
        parser.feed(b"X");
        let mut seen = Vec::new();
        drain(&mut parser, &mut seen);
        assert_eq!(seen[1], Seen::Error(Error::BodyTooLarge { limit: 10 }));
        assert!(matches!(parser.state, State::Finished));

        let default = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 16777217\r\n\r\n",
            false,
        );
        assert_eq!(
            default[1],
            Seen::Error(Error::BodyTooLarge {
                limit: 16 * 1024 * 1024
            })
        );
        assert_eq!(
            Error::BodyTooLarge {
                limit: 16 * 1024 * 1024
            }
            .to_string(),
            "message body exceeds the limit of 16777216 bytes"
        );
    }

    #[test]
    fn http_client_head_limits() {
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "x".repeat(64 * 1024));
        assert_eq!(
            parse(big.as_bytes(), false),
            vec![Seen::Error(Error::HeadTooLarge { limit: 64 * 1024 })]
        );
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..101 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(
            parse(many.as_bytes(), false),
            vec![Seen::Error(Error::TooManyHeaders { limit: 100 })]
        );
    }

    #[test]
    fn http_client_malformed_responses() {
        for (input, error) in [
            (
                &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
                Error::InvalidHead(HeadError::Syntax(httparse::Error::Status)),
            ),
            (
                b"HTTP/1.1 099 Low\r\n\r\n",
                Error::InvalidHead(HeadError::Status),
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                Error::InvalidHead(HeadError::Syntax(httparse::Error::Version)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                Error::InvalidContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Error::UnsupportedTransferEncoding,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n",
                Error::InvalidChunk(crate::http::ChunkError::Size),
            ),
        ] {
            assert_eq!(
                parse(input, false).last(),
                Some(&Seen::Error(error)),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn http_client_early_eof_is_an_error() {
        for input in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        ] {
            assert_eq!(
                parse(input, true).last(),
                Some(&Seen::Error(Error::UnexpectedEof))
            );
        }
    }

    #[test]
    fn http_client_nothing_follows_the_end() {
        let mut parser =
            ResponseParser::new(&Method::GET, BodyMode::Buffered, ResponseLimits::DEFAULT);
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 500 Oops\r\n\r\n");
        parser.feed_eof();
        let mut seen = Vec::new();
        drain(&mut parser, &mut seen);
        assert_eq!(seen.len(), 3);
        assert!(parser.is_finished());
    }

    const WATCH_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

    /// A chunked watch body whose chunk boundaries cut through lines.
    fn chunked_watch(events: &[&str], chunk_size: usize) -> Vec<u8> {
        let stream: String = events.iter().map(|event| format!("{event}\n")).collect();
        let mut body = WATCH_HEAD.to_vec();
        for chunk in stream.as_bytes().chunks(chunk_size) {
            body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        body
    }

    #[test]
    fn http_client_watch_lines_across_chunk_boundaries() {
        let events = [
            r#"{"type":"ADDED","object":{"kind":"Node","metadata":{"name":"a"}}}"#,
            r#"{"type":"MODIFIED","object":{"kind":"Node","metadata":{"name":"b"}}}"#,
            r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"#,
        ];
        for chunk_size in [1, 7, 30, 200] {
            let input = chunked_watch(&events, chunk_size);
            let seen = parse_every_split(&Method::GET, BodyMode::Lines, &input, false);
            let mut expected = vec![head(
                200,
                &[
                    ("content-type", "application/json"),
                    ("transfer-encoding", "chunked"),
                ],
            )];
            expected.extend(events.iter().map(|e| Seen::Line((*e).to_owned())));
            expected.push(Seen::End(true));
            assert_eq!(seen, expected, "chunk size {chunk_size}");
        }
    }

    #[test]
    fn http_client_watch_lines_come_out_as_soon_as_complete() {
        let mut parser =
            ResponseParser::new(&Method::GET, BodyMode::Lines, ResponseLimits::DEFAULT);
        let mut seen = Vec::new();
        parser.feed(WATCH_HEAD);
        drain(&mut parser, &mut seen);
        assert!(
            matches!(seen[..], [Seen::Head(200, _)]),
            "head before any event"
        );
        parser.feed(b"5\r\n{\"a\":\r\n");
        drain(&mut parser, &mut seen);
        assert_eq!(seen.len(), 1);
        parser.feed(b"6\r\n1}\n{\"b\r\n");
        drain(&mut parser, &mut seen);
        assert_eq!(seen[1..], [Seen::Line("{\"a\":1}".to_owned())]);
        parser.feed(b"4\r\n\":2}\r\n");
        drain(&mut parser, &mut seen);
        assert_eq!(seen.len(), 2);
        parser.feed(b"1\r\n\n\r\n");
        drain(&mut parser, &mut seen);
        assert_eq!(seen[2..], [Seen::Line("{\"b\":2}".to_owned())]);
        parser.feed(b"0\r\n\r\n");
        drain(&mut parser, &mut seen);
        assert_eq!(seen[3..], [Seen::End(true)]);
    }

    #[test]
    fn http_client_close_delimited_watch_flushes_the_last_line_at_eof() {
        let input = b"HTTP/1.1 200 OK\r\n\r\n{\"1\":1}\n\n{\"2\":2}\r\n{\"3\":";
        assert_eq!(
            parse_every_split(&Method::GET, BodyMode::Lines, input, true),
            vec![
                head(200, &[]),
                Seen::Line("{\"1\":1}".to_owned()),
                Seen::Line("{\"2\":2}".to_owned()),
                Seen::Line("{\"3\":".to_owned()),
                Seen::End(false),
            ]
        );
    }

    #[test]
    fn http_client_watch_event_limit() {
        let limits = ResponseLimits {
            max_line_bytes: 8,
            max_body_bytes: 4,
            ..ResponseLimits::DEFAULT
        };
        let input = b"HTTP/1.1 200 OK\r\n\r\n12345678\n123456789\n";
        let seen = parse_with(&Method::GET, BodyMode::Lines, limits, input, 2, true);
        assert_eq!(
            seen[1..],
            [
                Seen::Line("12345678".to_owned()),
                Seen::Error(Error::EventTooLarge { limit: 8 })
            ]
        );
        // A line without its newline is refused once over the limit, not buffered on.
        let seen = parse_with(
            &Method::GET,
            BodyMode::Lines,
            limits,
            b"HTTP/1.1 200 OK\r\n\r\n123456789",
            100,
            false,
        );
        assert_eq!(seen[1..], [Seen::Error(Error::EventTooLarge { limit: 8 })]);
    }

    #[test]
    fn http_client_watch_errors_are_buffered_not_streamed() {
        let input =
            b"HTTP/1.1 410 Gone\r\nContent-Length: 29\r\n\r\n{\"kind\":\"Status\",\n\"code\":410}";
        let seen = parse_with(
            &Method::GET,
            BodyMode::Lines,
            ResponseLimits::DEFAULT,
            input,
            5,
            false,
        );
        assert_eq!(
            seen,
            vec![
                head(410, &[("content-length", "29")]),
                Seen::Body(b"{\"kind\":\"Status\",\n\"code\":410}".to_vec()),
                Seen::End(true),
            ]
        );
    }

    #[test]
    fn http_client_encodes_requests() {
        let request = Request::builder()
            .uri("https://user:pw@10.0.0.1:10250/metrics/resource?x=1")
            .header(AUTHORIZATION, "Bearer token")
            .header(USER_AGENT, "metrics-server/0.1")
            .header(ACCEPT, "text/plain")
            .header(CONTENT_LENGTH, "99")
            .body(Vec::new())
            .expect("valid request");
        let mut out = Vec::new();
        encode_request(&request, &mut out).expect("has authority");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "GET /metrics/resource?x=1 HTTP/1.1\r\nhost: 10.0.0.1:10250\r\nauthorization: Bearer token\r\nuser-agent: metrics-server/0.1\r\naccept: text/plain\r\n\r\n"
        );

        let post = Request::builder()
            .method(Method::POST)
            .uri("/apis/authentication.k8s.io/v1/tokenreviews")
            .header(HOST, HeaderValue::from_static("kubernetes.default.svc"))
            .body(b"{}".to_vec())
            .expect("valid request");
        out.clear();
        encode_request(&post, &mut out).expect("has host");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /apis/authentication.k8s.io/v1/tokenreviews HTTP/1.1\r\nhost: kubernetes.default.svc\r\ncontent-length: 2\r\n\r\n{}"
        );

        let empty_post = Request::builder()
            .method(Method::POST)
            .uri("http://a/")
            .body(Vec::new())
            .expect("valid request");
        out.clear();
        encode_request(&empty_post, &mut out).expect("has authority");
        assert!(out.ends_with(b"content-length: 0\r\n\r\n"));

        let nowhere = Request::builder()
            .uri("/x")
            .body(Vec::new())
            .expect("valid request");
        assert_eq!(encode_request(&nowhere, &mut out), Err(Error::NoAuthority));
    }
}
