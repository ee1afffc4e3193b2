//! HTTP/1.1 codec properties: parsing does not depend on how input is split, no input
//! panics a parser, and what the encoders write parses back to what went in.

use metrics_core::http::{
    BodyLength, BodyMode, ClientEvent, Error, HeaderMap, HeaderName, HeaderValue, Limits, Method,
    Request, RequestParser, ResponseContext, ResponseHead, ResponseLimits, ResponseParser,
    ServerEvent, StatusCode, Version, encode_request, header, httparse,
};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------- generators

/// A header name that is neither framing nor Host, so tests know which fields the
/// codec writes itself.
fn header_name() -> impl Strategy<Value = String> {
    "x-[a-z0-9-]{1,12}"
}

/// A header value without leading or trailing whitespace (which parsers trim).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]", "[!-~][ -~]{0,24}[!-~]"]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((header_name(), header_value()), 0..6)
}

fn target() -> impl Strategy<Value = String> {
    "/[a-z0-9/._-]{0,24}(\\?[a-z0-9=&]{1,12})?"
}

#[derive(Debug, Clone)]
enum BodySpec {
    None,
    Length(Vec<u8>),
    Chunked {
        data: Vec<u8>,
        cuts: Vec<Index>,
        extensions: bool,
        trailers: bool,
    },
}

impl BodySpec {
    fn data(&self) -> &[u8] {
        match self {
            BodySpec::None => &[],
            BodySpec::Length(data) | BodySpec::Chunked { data, .. } => data,
        }
    }
}

fn body_spec() -> impl Strategy<Value = BodySpec> {
    let data = prop::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        Just(BodySpec::None),
        data.clone().prop_map(BodySpec::Length),
        (
            data,
            prop::collection::vec(any::<Index>(), 0..5),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(data, cuts, extensions, trailers)| BodySpec::Chunked {
                data,
                cuts,
                extensions,
                trailers,
            }),
    ]
}

#[derive(Debug, Clone)]
struct RequestSpec {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: BodySpec,
    expect_continue: bool,
    /// HTTP/1.0 with `Connection: keep-alive` (its body is always Content-Length framed).
    http10: bool,
    /// Blank lines before the request line, which servers skip.
    leading_blank_lines: usize,
}

fn request_spec() -> impl Strategy<Value = RequestSpec> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
        target(),
        headers(),
        body_spec(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        0usize..2,
    )
        .prop_map(
            |(method, target, headers, body, expect_continue, http10, leading_blank_lines)| {
                let body = match body {
                    BodySpec::Chunked { data, .. } if http10 => BodySpec::Length(data),
                    body => body,
                };
                RequestSpec {
                    method,
                    target,
                    headers,
                    body,
                    expect_continue,
                    http10,
                    leading_blank_lines,
                }
            },
        )
}

/// Splits `data` at the given positions into non-empty pieces.
fn pieces<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

fn encode_spec(spec: &RequestSpec, close: bool, out: &mut Vec<u8>) {
    for _ in 0..spec.leading_blank_lines {
        out.extend_from_slice(b"\r\n");
    }
    let version = if spec.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    out.extend_from_slice(
        format!(
            "{} {} {version}\r\nHost: example\r\n",
            spec.method, spec.target
        )
        .as_bytes(),
    );
    for (name, value) in &spec.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if spec.http10 && !close {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    if spec.expect_continue {
        out.extend_from_slice(b"Expect: 100-continue\r\n");
    }
    match &spec.body {
        BodySpec::None => out.extend_from_slice(b"\r\n"),
        BodySpec::Length(data) => {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
        }
        BodySpec::Chunked {
            data,
            cuts,
            extensions,
            trailers,
        } => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in pieces(data, cuts) {
                out.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
                if *extensions {
                    out.extend_from_slice(b" ;name=\"v;\\\"x\" ;flag");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            if *trailers {
                out.extend_from_slice(b"X-Checksum: abc\r\nX-Other:\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A pipelined stream of requests; the last one may ask to close.
fn request_stream() -> impl Strategy<Value = (Vec<RequestSpec>, bool)> {
    (prop::collection::vec(request_spec(), 1..6), any::<bool>())
}

// ---------------------------------------------------------------- observation

/// A server event flattened for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    Continue,
    Request {
        method: String,
        uri: String,
        version: Version,
        headers: HeaderMap,
        body: Vec<u8>,
        context: ResponseContext,
    },
    Reject(Error),
}

fn served(event: ServerEvent) -> Served {
    match event {
        ServerEvent::Continue => Served::Continue,
        ServerEvent::Request { request, context } => Served::Request {
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            version: request.version(),
            headers: request.headers().clone(),
            body: request.body().clone(),
            context,
        },
        ServerEvent::Reject(error) => Served::Reject(error),
    }
}

fn serve_pieces<'a>(
    limits: Limits,
    input: impl IntoIterator<Item = &'a [u8]>,
    eof: bool,
) -> Vec<Served> {
    let mut parser = RequestParser::new(limits);
    let mut events = Vec::new();
    for piece in input {
        parser.feed(piece);
        events.extend(std::iter::from_fn(|| parser.poll_event()).map(served));
    }
    if eof {
        parser.feed_eof();
        events.extend(std::iter::from_fn(|| parser.poll_event()).map(served));
    }
    events
}

/// A client event flattened for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Received {
    Head(StatusCode, Version, HeaderMap),
    Body(Vec<u8>),
    Line(Vec<u8>),
    End(bool),
    Error(Error),
}

fn receive_pieces<'a>(
    method: &Method,
    mode: BodyMode,
    limits: ResponseLimits,
    input: impl IntoIterator<Item = &'a [u8]>,
    eof: bool,
) -> Vec<Received> {
    let mut parser = ResponseParser::new(method, mode, limits);
    let mut events = Vec::new();
    let mut drain = |parser: &mut ResponseParser| {
        while let Some(event) = parser.poll_event() {
            events.push(match event {
                ClientEvent::Head(head) => {
                    Received::Head(head.status(), head.version(), head.headers().clone())
                }
                ClientEvent::Body(body) => Received::Body(body),
                ClientEvent::Line(line) => Received::Line(line),
                ClientEvent::End { keep_alive } => Received::End(keep_alive),
                ClientEvent::Error(error) => Received::Error(error),
            });
        }
    };
    for piece in input {
        parser.feed(piece);
        drain(&mut parser);
    }
    if eof {
        parser.feed_eof();
        drain(&mut parser);
    }
    events
}

/// Terminal events end the stream: nothing may follow a rejection, an error or an end.
fn nothing_after_terminal<T>(events: &[T], is_terminal: impl Fn(&T) -> bool) -> bool {
    events
        .iter()
        .position(is_terminal)
        .is_none_or(|at| at == events.len() - 1)
}

// ---------------------------------------------------------------- fuzz inputs

/// Fragments of HTTP that random concatenation turns into deep, mostly-broken input.
const FRAGMENTS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\n",
    b"POST /x HTTP/1.0\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.0 204 No Content\r\n",
    b"Host: a\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b";ext=\"q\"",
    b"X-T: v\r\n",
    b"{\"type\":\"ADDED\"}\n",
    b" ",
    b":",
];

fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
                1 => prop::collection::vec(any::<u8>(), 1..4),
            ],
            0..40
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn small_limits() -> impl Strategy<Value = (Limits, ResponseLimits)> {
    prop_oneof![
        Just((Limits::DEFAULT, ResponseLimits::DEFAULT)),
        (1usize..64, 0usize..4, 0u64..16, 0usize..16).prop_map(|(head, headers, body, line)| {
            (
                Limits {
                    max_head_bytes: head,
                    max_headers: headers,
                    max_body_bytes: body,
                },
                ResponseLimits {
                    max_head_bytes: head,
                    max_headers: headers,
                    max_body_bytes: body,
                    max_line_bytes: line,
                },
            )
        }),
    ]
}

// ---------------------------------------------------------------- watch streams

#[derive(Debug, Clone)]
enum WatchFraming {
    Chunked(Vec<Index>),
    UntilClose,
}

fn watch_response() -> impl Strategy<Value = (Vec<String>, WatchFraming, bool)> {
    let event = concat!(
        "\\{\"type\":\"(ADDED|MODIFIED|DELETED|BOOKMARK)\",",
        "\"object\":\\{\"name\":\"[ -~]{0,60}\"\\}\\}",
    );
    (
        prop::collection::vec(event, 0..12),
        prop_oneof![
            prop::collection::vec(any::<Index>(), 0..12).prop_map(WatchFraming::Chunked),
            Just(WatchFraming::UntilClose),
        ],
        any::<bool>(),
    )
}

fn encode_watch(events: &[String], framing: &WatchFraming, crlf: bool) -> Vec<u8> {
    let newline = if crlf { "\r\n" } else { "\n" };
    let stream: String = events
        .iter()
        .map(|event| format!("{event}{newline}"))
        .collect();
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n".to_vec();
    match framing {
        WatchFraming::Chunked(cuts) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in pieces(stream.as_bytes(), cuts) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        WatchFraming::UntilClose => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(stream.as_bytes());
        }
    }
    out
}

// ---------------------------------------------------------------- properties
//
// Each property is a plain function (so rustfmt and clippy see it whole); the
// `proptest!` block at the end only binds the strategies.

type Outcome = Result<(), TestCaseError>;

fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

/// (a) Any split of a pipelined request stream yields the requests that feeding it
/// whole yields, and those are the requests that were written.
fn request_stream_split_anywhere_parses_the_same(
    (specs, close_last): (Vec<RequestSpec>, bool),
    cuts: Vec<Index>,
) -> Outcome {
    let mut input = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        encode_spec(spec, close_last && i + 1 == specs.len(), &mut input);
    }
    let whole = serve_pieces(Limits::DEFAULT, [&input[..]], false);
    let split = serve_pieces(Limits::DEFAULT, pieces(&input, &cuts), false);
    prop_assert_eq!(&split, &whole);
    let bytewise = serve_pieces(Limits::DEFAULT, input.chunks(1), false);
    prop_assert_eq!(&bytewise, &whole);

    let requests: Vec<_> = whole
        .iter()
        .filter(|e| matches!(e, Served::Request { .. }))
        .collect();
    prop_assert_eq!(requests.len(), specs.len());
    for (spec, event) in specs.iter().zip(requests) {
        let Served::Request {
            method,
            uri,
            version,
            headers,
            body,
            context,
        } = event
        else {
            unreachable!("filtered to requests");
        };
        let expected_version = if spec.http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        prop_assert_eq!(method.as_str(), spec.method);
        prop_assert_eq!(uri, &spec.target);
        prop_assert_eq!(*version, expected_version);
        prop_assert_eq!(body.as_slice(), spec.body.data());
        prop_assert_eq!(context.head, spec.method == "HEAD");
        for (name, value) in &spec.headers {
            let values = headers.get_all(name.as_str());
            prop_assert!(values.iter().any(|v| v == value.as_str()));
        }
    }
    let continues = whole.iter().filter(|e| **e == Served::Continue).count();
    let has_body = |spec: &RequestSpec| match &spec.body {
        BodySpec::None => false,
        BodySpec::Length(data) => !data.is_empty(),
        BodySpec::Chunked { .. } => true,
    };
    let expected = specs
        .iter()
        .filter(|s| s.expect_continue && !s.http10 && has_body(s))
        .count();
    prop_assert_eq!(continues, expected);
    if let Some(Served::Request { context, .. }) = whole.last() {
        prop_assert_eq!(context.keep_alive, !close_last);
    }
    Ok(())
}

/// (b) No byte sequence panics the request parser, splitting changes nothing, and
/// nothing follows a rejection.
fn request_parser_survives_arbitrary_bytes(
    input: Vec<u8>,
    cuts: Vec<Index>,
    limits: Limits,
    eof: bool,
) -> Outcome {
    let whole = serve_pieces(limits, [&input[..]], eof);
    let split = serve_pieces(limits, pieces(&input, &cuts), eof);
    prop_assert_eq!(&split, &whole);
    prop_assert!(nothing_after_terminal(&whole, |e| matches!(
        e,
        Served::Reject(_)
    )));
    Ok(())
}

/// (b) No byte sequence panics the response parser, in either body mode; splitting
/// changes nothing; a head or an error comes first and nothing follows the end.
fn response_parser_survives_arbitrary_bytes(
    input: Vec<u8>,
    cuts: Vec<Index>,
    limits: ResponseLimits,
    mode: BodyMode,
    method: Method,
    eof: bool,
) -> Outcome {
    let whole = receive_pieces(&method, mode, limits, [&input[..]], eof);
    let split = receive_pieces(&method, mode, limits, pieces(&input, &cuts), eof);
    prop_assert_eq!(&split, &whole);
    prop_assert!(nothing_after_terminal(&whole, |e| matches!(
        e,
        Received::Error(_) | Received::End(_)
    )));
    if let Some(first) = whole.first() {
        prop_assert!(matches!(first, Received::Head(..) | Received::Error(_)));
    }
    Ok(())
}

/// (c) Any split of a chunked or close-delimited watch response yields the same
/// events: the head, then each line in order, then the end.
fn watch_stream_split_anywhere_yields_the_same_events(
    (events, framing, crlf): (Vec<String>, WatchFraming, bool),
    cuts: Vec<Index>,
) -> Outcome {
    let input = encode_watch(&events, &framing, crlf);
    let eof = matches!(framing, WatchFraming::UntilClose);
    let receive = |pieces: Vec<&[u8]>| {
        receive_pieces(
            &Method::GET,
            BodyMode::Lines,
            ResponseLimits::DEFAULT,
            pieces,
            eof,
        )
    };
    let whole = receive(vec![&input[..]]);
    let split = receive(pieces(&input, &cuts));
    prop_assert_eq!(&split, &whole);

    prop_assert!(matches!(
        whole.first(),
        Some(Received::Head(status, ..)) if *status == StatusCode::OK
    ));
    let lines: Vec<&[u8]> = whole
        .iter()
        .filter_map(|e| match e {
            Received::Line(line) => Some(line.as_slice()),
            _ => None,
        })
        .collect();
    let expected: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
    prop_assert_eq!(lines, expected);
    prop_assert_eq!(whole.last(), Some(&Received::End(!eof)));
    Ok(())
}

/// (d) An encoded request parses back with httparse to the same method, target,
/// headers and body.
fn encoded_requests_parse_back_with_httparse(
    method: Method,
    target: String,
    host: String,
    use_host_header: bool,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
) -> Outcome {
    let uri = if use_host_header {
        target.clone()
    } else {
        format!("https://{host}{target}")
    };
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    if use_host_header {
        builder = builder.header(header::HOST, host.as_str());
    }
    for (name, value) in &fields {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder.body(body.clone()).map_err(fail)?;
    let mut out = Vec::new();
    encode_request(&request, &mut out).map_err(fail)?;

    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(head_len) = parsed.parse(&out).map_err(fail)? else {
        return Err(fail("incomplete head"));
    };
    prop_assert_eq!(parsed.method, Some(method.as_str()));
    prop_assert_eq!(parsed.path, Some(target.as_str()));
    prop_assert_eq!(parsed.version, Some(1));
    let got: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    let mut expected = vec![("host".to_owned(), host.clone().into_bytes())];
    for (name, value) in request.headers() {
        if name != header::HOST {
            expected.push((name.to_string(), value.as_bytes().to_vec()));
        }
    }
    let sends_length =
        !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH);
    if sends_length {
        let length = body.len().to_string().into_bytes();
        expected.push(("content-length".to_owned(), length));
    }
    prop_assert_eq!(got, expected);
    prop_assert_eq!(&out[head_len..], body.as_slice());
    Ok(())
}

/// How an encoded response is framed and for which request.
#[derive(Debug, Clone)]
struct Exchange {
    chunked: bool,
    head: bool,
    keep_alive: bool,
    close: bool,
    http10: bool,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(chunked, head, keep_alive, close, http10)| Exchange {
            chunked,
            head,
            keep_alive,
            close,
            http10,
        })
}

/// (d) An encoded response, written whole or in pieces, parses back with
/// ResponseParser to the same status, headers and body.
fn encoded_responses_parse_back(
    status: u16,
    fields: Vec<(String, String)>,
    body_pieces: Vec<Vec<u8>>,
    exchange: Exchange,
    cuts: Vec<Index>,
) -> Outcome {
    let Exchange {
        chunked,
        head,
        keep_alive,
        close,
        http10,
    } = exchange;
    let status = StatusCode::from_u16(status).map_err(fail)?;
    let mut response = ResponseHead::new(status).with_close(close);
    for (name, value) in &fields {
        let name = HeaderName::try_from(name.as_str()).map_err(fail)?;
        let value = HeaderValue::try_from(value.as_str()).map_err(fail)?;
        response = response.with_header(name, value);
    }
    let body: Vec<u8> = body_pieces.concat();
    let context = ResponseContext {
        head,
        version: if http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        },
        keep_alive,
    };
    let length = if chunked {
        BodyLength::Chunked
    } else {
        BodyLength::Known(body.len() as u64)
    };
    let mut out = Vec::new();
    let mut encoder = response.encode(&context, length, &mut out);
    let reusable = encoder.keep_alive();
    let bodiless = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    for piece in &body_pieces {
        // A 204 or 304 refuses body bytes; HEAD silently drops them.
        let written = encoder.write(piece, &mut out);
        prop_assert_eq!(written.is_ok(), !bodiless || piece.is_empty() || head);
    }
    encoder.finish(&mut out).map_err(fail)?;
    let close_delimited = http10 && chunked && !bodiless;
    prop_assert_eq!(reusable, keep_alive && !close && !close_delimited);

    let method = if head { Method::HEAD } else { Method::GET };
    let limits = ResponseLimits::DEFAULT;
    let received = receive_pieces(
        &method,
        BodyMode::Buffered,
        limits,
        pieces(&out, &cuts),
        true,
    );
    let [
        Received::Head(got_status, _, got_headers),
        Received::Body(got_body),
        Received::End(_),
    ] = &received[..]
    else {
        return Err(fail(format!("unexpected events {received:?}")));
    };
    prop_assert_eq!(*got_status, status);
    let mut got_headers = got_headers.clone();
    for framing in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ] {
        got_headers.remove(framing);
    }
    prop_assert_eq!(&got_headers, &response.headers);
    let expected_body: &[u8] = if head || bodiless { &[] } else { &body };
    prop_assert_eq!(got_body.as_slice(), expected_body);
    Ok(())
}

fn body_mode() -> impl Strategy<Value = BodyMode> {
    prop_oneof![Just(BodyMode::Buffered), Just(BodyMode::Lines)]
}

fn request_method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ])
}

fn cut_points(max: usize) -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn request_streams_split_anywhere(stream in request_stream(), cuts in cut_points(16)) {
        request_stream_split_anywhere_parses_the_same(stream, cuts)?;
    }

    #[test]
    fn request_parser_never_panics(
        input in fuzz_input(),
        cuts in cut_points(8),
        limits in small_limits(),
        eof in any::<bool>(),
    ) {
        request_parser_survives_arbitrary_bytes(input, cuts, limits.0, eof)?;
    }

    #[test]
    fn response_parser_never_panics(
        input in fuzz_input(),
        cuts in cut_points(8),
        limits in small_limits(),
        mode in body_mode(),
        head in any::<bool>(),
        eof in any::<bool>(),
    ) {
        let method = if head { Method::HEAD } else { Method::GET };
        response_parser_survives_arbitrary_bytes(input, cuts, limits.1, mode, method, eof)?;
    }

    #[test]
    fn watch_streams_split_anywhere(watch in watch_response(), cuts in cut_points(24)) {
        watch_stream_split_anywhere_yields_the_same_events(watch, cuts)?;
    }

    #[test]
    fn requests_round_trip_through_httparse(
        method in request_method(),
        target in target(),
        host in "[a-z0-9][a-z0-9.-]{0,20}(:[1-9][0-9]{0,3})?",
        use_host_header in any::<bool>(),
        fields in headers(),
        body in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let host_header = use_host_header;
        encoded_requests_parse_back_with_httparse(method, target, host, host_header, fields, body)?;
    }

    #[test]
    fn responses_round_trip_through_the_parser(
        status in prop_oneof![
            prop::sample::select(vec![200u16, 201, 204, 304, 400, 404, 410, 500]),
            200u16..600,
        ],
        fields in headers(),
        body_pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..5),
        exchange in exchange(),
        cuts in cut_points(8),
    ) {
        encoded_responses_parse_back(status, fields, body_pieces, exchange, cuts)?;
    }
}
