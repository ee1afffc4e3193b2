//! HTTP/1.1 codec on httparse and the `http` types (server and client sides).
//!
//! Bytes in, events out, nothing else: no sockets, no clock, no threads. The caller
//! reads from its transport, hands every chunk to a parser with `feed`, then drains
//! `poll_event` until it returns `None`. Input may be split anywhere; a parser keeps
//! only the unfinished part of a message head between calls and copies body bytes
//! straight into the body it is building.
//!
//! Server side ([`RequestParser`], [`ResponseHead`], [`encode_response`]):
//!
//! ```text
//!  bytes ──feed──▶ RequestParser ──poll_event──▶ Continue            write encode_continue
//!                                               Request{request,…}  answer with ResponseHead
//!                                               Reject(error)       write encode_rejection, close
//! ```
//!
//! Client side ([`encode_request`], [`ResponseParser`]):
//!
//! ```text
//!  Request ──encode_request──▶ bytes
//!  bytes ──feed / feed_eof──▶ ResponseParser ──poll_event──▶ Head, then Body (Buffered)
//!                                                           or Line… (Lines), then End | Error
//! ```
//!
//! Every buffer has a limit ([`Limits`], [`ResponseLimits`]); crossing one is an error
//! event, never a panic or an unbounded allocation.
//!
//! Serving a connection:
//!
//! ```
//! use metrics_core::http::{Limits, RequestParser, Response, ServerEvent};
//! use metrics_core::http::{encode_continue, encode_rejection, encode_response};
//!
//! let mut parser = RequestParser::new(Limits::default());
//! let mut out = Vec::new();
//! parser.feed(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
//! while let Some(event) = parser.poll_event() {
//!     match event {
//!         ServerEvent::Continue => encode_continue(&mut out),
//!         ServerEvent::Request { request, context } => {
//!             let response = Response::new(b"ok".to_vec());
//!             let keep_alive = encode_response(&context, &response, &mut out);
//!             assert!(keep_alive && request.uri() == "/healthz");
//!         }
//!         ServerEvent::Reject(error) => encode_rejection(&error, &mut out),
//!     }
//! }
//! assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
//! ```
//!
//! Asking a kubelet:
//!
//! ```
//! use metrics_core::http::{BodyMode, ClientEvent, Request, ResponseLimits, ResponseParser};
//! use metrics_core::http::encode_request;
//!
//! let request = Request::get("https://10.0.0.1:10250/metrics/resource").body(Vec::new())?;
//! let mut out = Vec::new();
//! encode_request(&request, &mut out)?;
//! let limits = ResponseLimits::default();
//! let mut parser = ResponseParser::new(request.method(), BodyMode::Buffered, limits);
//! parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
//! assert!(matches!(parser.poll_event(), Some(ClientEvent::Head(head)) if head.status() == 200));
//! assert!(matches!(parser.poll_event(), Some(ClientEvent::Body(body)) if body == b"ok"));
//! assert!(matches!(parser.poll_event(), Some(ClientEvent::End { keep_alive: true })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chunked;
mod client;
mod server;

use std::fmt;

/// The `http` types this codec speaks, re-exported (as hyper does) so users need not
/// depend on a matching version of the crate themselves.
pub use ::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header,
};
/// httparse, whose errors [`HeadError::Syntax`] carries.
pub use httparse;

pub use client::{BodyMode, ClientEvent, ResponseLimits, ResponseParser, encode_request};
pub use server::{
    BodyEncoder, BodyLength, Limits, RequestParser, ResponseContext, ResponseHead, ServerEvent,
    encode_continue, encode_rejection, encode_response,
};

/// Why a message could not be parsed or encoded.
///
/// Parse errors are final for their parser: after one, the parser yields nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The start line plus header fields exceed `limit` bytes.
    HeadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The head carries more than `limit` header fields.
    TooManyHeaders {
        /// The configured limit on header fields.
        limit: usize,
    },
    /// The body is longer than `limit` bytes; nothing beyond the limit was buffered.
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// One line of a streamed (watch) body is longer than `limit` bytes.
    EventTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The start line or a header field is not valid HTTP/1.x.
    InvalidHead(HeadError),
    /// A Content-Length value is not a decimal number, or several values disagree.
    InvalidContentLength,
    /// A request carries both Content-Length and Transfer-Encoding.
    ConflictingFraming,
    /// Transfer-Encoding does not end in `chunked`, repeats it, or is sent by HTTP/1.0.
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked` (e.g. gzip), which this codec cannot undo.
    UnsupportedTransferEncoding,
    /// The chunked framing of a body is broken.
    InvalidChunk(ChunkError),
    /// An `Expect` value other than `100-continue`.
    UnsupportedExpectation,
    /// The connection closed in the middle of a message.
    UnexpectedEof,
    /// A request to encode has neither a Host header nor an authority in its URI.
    NoAuthority,
    /// The body written through a [`BodyEncoder`] does not match its announced length.
    BodyLengthMismatch {
        /// The length announced in the head.
        declared: u64,
        /// The bytes offered so far.
        written: u64,
    },
}

/// What exactly is wrong with a message head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// httparse rejected the start line or a header line.
    Syntax(httparse::Error),
    /// The request method is not a valid token.
    Method,
    /// The request target is not a valid URI.
    Uri,
    /// The status code is outside 100..=999.
    Status,
    /// A header name the `http` crate does not accept.
    HeaderName,
    /// A header value the `http` crate does not accept.
    HeaderValue,
    /// An HTTP/1.1 request without a Host header.
    MissingHost,
    /// A request with more than one Host header.
    DuplicateHost,
    /// A `101 Switching Protocols` response, although no upgrade was asked for.
    UnexpectedUpgrade,
}

/// What exactly is wrong with a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkError {
    /// A chunk size that is missing or not hexadecimal.
    Size,
    /// A chunk size that does not fit in 64 bits.
    SizeOverflow,
    /// A framing line not ended by CRLF (bare LF or CR are refused to avoid smuggling).
    LineEnding,
    /// A control character inside a chunk extension.
    Extension,
    /// Chunk extensions longer in total than the codec skips for one message.
    ExtensionsTooLong,
    /// A trailer line that is not a header field.
    Trailer,
    /// Trailer fields longer in total than the head limit.
    TrailersTooLarge,
}

impl Error {
    /// The status a server answers this error with (always followed by closing).
    ///
    /// Only meaningful for errors from [`RequestParser`]; others map to 400.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::HeadTooLarge { .. }
            | Error::TooManyHeaders { .. }
            | Error::InvalidChunk(ChunkError::TrailersTooLarge) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Error::BodyTooLarge { .. } | Error::EventTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            // RFC 9112 §6.1: a server SHOULD answer a transfer coding it does not
            // understand with 501. (A missing final `chunked` is a 400, see
            // InvalidTransferEncoding, because the length cannot be determined.)
            Error::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            Error::UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
            Error::InvalidHead(_)
            | Error::InvalidContentLength
            | Error::ConflictingFraming
            | Error::InvalidTransferEncoding
            | Error::InvalidChunk(_)
            | Error::UnexpectedEof
            | Error::NoAuthority
            | Error::BodyLengthMismatch { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::HeadTooLarge { limit } => {
                write!(f, "message head exceeds the limit of {limit} bytes")
            }
            Error::TooManyHeaders { limit } => {
                write!(f, "message has more than {limit} header fields")
            }
            Error::BodyTooLarge { limit } => {
                write!(f, "message body exceeds the limit of {limit} bytes")
            }
            Error::EventTooLarge { limit } => {
                write!(f, "streamed event exceeds the limit of {limit} bytes")
            }
            Error::InvalidHead(e) => write!(f, "malformed message head: {e}"),
            Error::InvalidContentLength => f.write_str("invalid or conflicting Content-Length"),
            Error::ConflictingFraming => {
                f.write_str("both Content-Length and Transfer-Encoding are present")
            }
            Error::InvalidTransferEncoding => {
                f.write_str("Transfer-Encoding must end in a single chunked coding over HTTP/1.1")
            }
            Error::UnsupportedTransferEncoding => {
                f.write_str("transfer codings other than chunked are not supported")
            }
            Error::InvalidChunk(e) => write!(f, "malformed chunked body: {e}"),
            Error::UnsupportedExpectation => f.write_str("only Expect: 100-continue is supported"),
            Error::UnexpectedEof => f.write_str("connection closed in the middle of a message"),
            Error::NoAuthority => {
                f.write_str("request has neither a Host header nor an authority in its URI")
            }
            Error::BodyLengthMismatch { declared, written } => write!(
                f,
                "body of {written} bytes does not match the announced length of {declared}"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Syntax(e) => write!(f, "{e}"),
            HeadError::Method => f.write_str("invalid method"),
            HeadError::Uri => f.write_str("invalid request target"),
            HeadError::Status => f.write_str("invalid status code"),
            HeadError::HeaderName => f.write_str("invalid header name"),
            HeadError::HeaderValue => f.write_str("invalid header value"),
            HeadError::MissingHost => f.write_str("missing Host header"),
            HeadError::DuplicateHost => f.write_str("more than one Host header"),
            HeadError::UnexpectedUpgrade => f.write_str("unexpected 101 Switching Protocols"),
        }
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::Size => "invalid chunk size",
            ChunkError::SizeOverflow => "chunk size does not fit in 64 bits",
            ChunkError::LineEnding => "chunk framing line not ended by CRLF",
            ChunkError::Extension => "invalid byte in chunk extension",
            ChunkError::ExtensionsTooLong => "chunk extensions too long",
            ChunkError::Trailer => "invalid trailer field",
            ChunkError::TrailersTooLarge => "trailer fields too large",
        })
    }
}

/// Header slots parsed on the stack; a configured limit above this uses the heap.
const STACK_HEADER_SLOTS: usize = 100;

/// Body capacity reserved up front from a Content-Length, so a peer announcing a large
/// body and sending nothing does not make us allocate it; the Vec grows as data comes.
const INITIAL_BODY_RESERVE: u64 = 64 * 1024;

/// Number of empty lines (CRLF or LF) before a start line, which RFC 9112 §2.2 lets a
/// recipient ignore. A lone trailing CR is left in place: it may be half of a CRLF.
fn skip_blank_lines(input: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        match input.get(pos..pos + 2) {
            Some([b'\r', b'\n']) => pos += 2,
            _ if input.get(pos) == Some(&b'\n') => pos += 1,
            _ => return pos,
        }
    }
}

/// Finds the end of a header section (the index just past its empty line) in `head`,
/// resuming the search at `*scan` and leaving `*scan` where the next call should resume.
fn find_head_end(head: &[u8], scan: &mut usize) -> Option<usize> {
    let mut from = *scan;
    while let Some(offset) = head
        .get(from..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
    {
        let lf = from + offset;
        match head.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') => match head.get(lf + 2) {
                Some(b'\n') => return Some(lf + 3),
                Some(_) => {}
                None => {
                    *scan = lf;
                    return None;
                }
            },
            Some(_) => {}
            None => {
                *scan = lf;
                return None;
            }
        }
        from = lf + 1;
    }
    *scan = head.len();
    None
}

/// The framing and connection facts of one head, gathered in one pass over its fields.
#[derive(Debug, Default)]
struct HeaderFacts {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked_codings: usize,
    other_codings: usize,
    last_coding_chunked: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    hosts: usize,
}

impl HeaderFacts {
    fn gather(headers: &[httparse::Header<'_>]) -> Result<Self, Error> {
        let mut facts = HeaderFacts::default();
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                for item in header.value.split(|&b| b == b',') {
                    let length =
                        parse_decimal(trim_ows(item)).ok_or(Error::InvalidContentLength)?;
                    // RFC 9110 §8.6: repeated identical values are one value; any
                    // disagreement makes the framing ambiguous.
                    if facts.content_length.is_some_and(|seen| seen != length) {
                        return Err(Error::InvalidContentLength);
                    }
                    facts.content_length = Some(length);
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                facts.transfer_encoding = true;
                for coding in list_items(header.value) {
                    let chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if chunked {
                        facts.chunked_codings += 1;
                    } else {
                        facts.other_codings += 1;
                    }
                    facts.last_coding_chunked = chunked;
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in list_items(header.value) {
                    facts.close |= token.eq_ignore_ascii_case(b"close");
                    facts.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("expect") {
                let value = trim_ows(header.value);
                if value.eq_ignore_ascii_case(b"100-continue") {
                    facts.expect_continue = true;
                } else if !value.is_empty() {
                    facts.expect_other = true;
                }
            } else if name.eq_ignore_ascii_case("host") {
                facts.hosts += 1;
            }
        }
        Ok(facts)
    }

    /// Whether the body is chunked. Transfer-Encoding must be exactly `chunked`: a
    /// coding list whose last member is not `chunked`, or that repeats it, leaves the
    /// length undeterminable (400, RFC 9112 §6.3); `chunked` after other codings is
    /// well-formed but asks us to undo a coding we do not implement (501, §6.1).
    fn chunked(&self) -> Result<bool, Error> {
        if !self.transfer_encoding {
            return Ok(false);
        }
        if self.chunked_codings != 1 || !self.last_coding_chunked {
            return Err(Error::InvalidTransferEncoding);
        }
        if self.other_codings > 0 {
            return Err(Error::UnsupportedTransferEncoding);
        }
        Ok(true)
    }

    /// Whether the connection survives this message, given its minor version.
    fn keep_alive(&self, http11: bool) -> bool {
        !self.close && (http11 || self.keep_alive)
    }
}

/// Builds a header map from parsed fields, keeping repeated names in order.
fn header_map(headers: &[httparse::Header<'_>], limit: usize) -> Result<HeaderMap, Error> {
    let too_many = |_| Error::TooManyHeaders { limit };
    let mut map = HeaderMap::try_with_capacity(headers.len()).map_err(too_many)?;
    for header in headers {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| Error::InvalidHead(HeadError::HeaderName))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| Error::InvalidHead(HeadError::HeaderValue))?;
        map.try_append(name, value).map_err(too_many)?;
    }
    Ok(map)
}

/// Non-empty members of a comma-separated field value, whitespace trimmed.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// A non-empty run of ASCII digits as a u64; `None` on anything else or overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Appends one `name: value` line.
fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a decimal number without going through `fmt`.
fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // n % 10 < 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_head_end_is_found_across_calls() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        let mut scan = 0;
        for len in 0..27 {
            assert_eq!(find_head_end(&head[..len], &mut scan), None, "prefix {len}");
        }
        assert_eq!(find_head_end(&head[..27], &mut scan), Some(27));
        let mut scan = 0;
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n", &mut scan), Some(16));
    }

    #[test]
    fn http_blank_lines_before_a_start_line_are_skipped() {
        assert_eq!(skip_blank_lines(b"\r\n\nGET"), 3);
        assert_eq!(skip_blank_lines(b"\r\n\r"), 2);
        assert_eq!(skip_blank_lines(b"GET"), 0);
    }

    #[test]
    fn http_decimal_parsing_rejects_signs_spaces_and_overflow() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"1 2"), None);
        assert_eq!(parse_decimal(b""), None);
        let mut out = Vec::new();
        write_decimal(&mut out, 0);
        out.push(b' ');
        write_decimal(&mut out, u64::MAX);
        assert_eq!(out, b"0 18446744073709551615");
    }

    #[test]
    fn http_errors_map_to_statuses() {
        assert_eq!(Error::HeadTooLarge { limit: 1 }.status().as_u16(), 431);
        assert_eq!(Error::TooManyHeaders { limit: 1 }.status().as_u16(), 431);
        assert_eq!(Error::BodyTooLarge { limit: 1 }.status().as_u16(), 413);
        assert_eq!(Error::UnsupportedTransferEncoding.status().as_u16(), 501);
        assert_eq!(Error::InvalidTransferEncoding.status().as_u16(), 400);
        assert_eq!(Error::UnsupportedExpectation.status().as_u16(), 417);
        assert_eq!(
            Error::BodyTooLarge { limit: 16 }.to_string(),
            "message body exceeds the limit of 16 bytes"
        );
    }
}
