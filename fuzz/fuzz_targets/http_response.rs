//! Client-side HTTP/1.1 codec: `metrics_core::http::ResponseParser`, in both body modes
//! (`Buffered` for list pages and kubelet scrapes, `Lines` for watch streams), over
//! Content-Length, chunked and close-delimited bodies.
//!
//! Input layout: 4 control bytes, then the bytes "read from the connection".
//! - byte 0, bit 0: `BodyMode::Lines` (else `Buffered`)
//! - byte 0, bit 1: the request was HEAD (else GET)
//! - byte 0, bit 2: small limits (sizes from bits 5–7)
//! - byte 0, bit 3: signal EOF after the last piece (ends a close-delimited body)
//! - byte 0, bit 4: feed one byte at a time instead of at the cut points
//! - bytes 1–3: cut points, each a fraction (n/255) of the payload length
//!
//! Checks the event grammar the parser documents (Head first, Body at most once and only
//! just before End, Lines only when streaming, nothing after End or Error), the limits,
//! and that the events do not depend on where the input was cut.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use metrics_core::http::{
    BodyMode, ClientEvent, Error, Method, ResponseLimits, ResponseParser, StatusCode, Version,
};

#[derive(Debug, PartialEq)]
enum Seen {
    Head {
        status: StatusCode,
        version: Version,
        headers: Vec<(String, Vec<u8>)>,
    },
    Body(Vec<u8>),
    Line(Vec<u8>),
    End(bool),
    Error(Error),
}

fn limits_from(ctl: u8) -> ResponseLimits {
    if ctl & 4 == 0 {
        return ResponseLimits::default();
    }
    let shift = ctl >> 5;
    ResponseLimits {
        max_head_bytes: 16 << shift,
        max_headers: 1 + usize::from(shift),
        max_body_bytes: 8 << shift,
        max_line_bytes: 4 << shift,
    }
}

fn check_next(seen: &[Seen], next: &Seen, mode: BodyMode, limits: &ResponseLimits) {
    match seen.last() {
        None => assert!(
            matches!(next, Seen::Head { .. } | Seen::Error(_)),
            "first event is not Head: {next:?}"
        ),
        Some(Seen::End(_) | Seen::Error(_)) => panic!("{next:?} after {:?}", seen.last()),
        Some(Seen::Body(_)) => assert!(
            matches!(next, Seen::End(_)),
            "Body not followed by End: {next:?}"
        ),
        Some(_) => assert!(
            !matches!(next, Seen::Head { .. }),
            "a second Head: {next:?}"
        ),
    }
    match next {
        Seen::Body(body) => assert!(body.len() as u64 <= limits.max_body_bytes),
        Seen::Line(line) => {
            assert_eq!(mode, BodyMode::Lines, "Line event in Buffered mode");
            assert!(!line.is_empty(), "empty Line event");
            assert!(
                !line.contains(&b'\n'),
                "Line event holds a newline: {line:?}"
            );
            assert!(line.len() <= limits.max_line_bytes, "line over the limit");
        }
        _ => {}
    }
}

fn run(
    method: &Method,
    mode: BodyMode,
    limits: ResponseLimits,
    pieces: &[&[u8]],
    eof: bool,
) -> Vec<Seen> {
    let mut parser = ResponseParser::new(method, mode, limits);
    let mut seen: Vec<Seen> = Vec::new();
    let drain = |parser: &mut ResponseParser, seen: &mut Vec<Seen>| {
        while let Some(event) = parser.poll_event() {
            let next = match event {
                ClientEvent::Head(head) => {
                    let mut headers: Vec<(String, Vec<u8>)> = head
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                        .collect();
                    headers.sort();
                    assert!(!head.status().is_informational(), "interim head surfaced");
                    Seen::Head {
                        status: head.status(),
                        version: head.version(),
                        headers,
                    }
                }
                ClientEvent::Body(body) => Seen::Body(body),
                ClientEvent::Line(line) => Seen::Line(line),
                ClientEvent::End { keep_alive } => Seen::End(keep_alive),
                ClientEvent::Error(error) => Seen::Error(error),
            };
            check_next(seen, &next, mode, &limits);
            if matches!(next, Seen::End(_) | Seen::Error(_)) {
                assert!(
                    parser.is_finished(),
                    "End/Error but the parser is not finished"
                );
            }
            seen.push(next);
        }
    };
    for piece in pieces {
        parser.feed(piece);
        drain(&mut parser, &mut seen);
    }
    if eof {
        parser.feed_eof();
        drain(&mut parser, &mut seen);
        assert!(parser.is_finished(), "not finished after EOF");
        assert!(
            matches!(seen.last(), Some(Seen::End(_) | Seen::Error(_))),
            "EOF left the response neither ended nor failed: {:?}",
            seen.last()
        );
    }
    if *method == Method::HEAD {
        assert!(
            !seen.iter().any(|s| matches!(s, Seen::Line(_)))
                && seen
                    .iter()
                    .all(|s| !matches!(s, Seen::Body(b) if !b.is_empty())),
            "a HEAD response carried a body"
        );
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let Some((ctl, input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let mode = if ctl[0] & 1 != 0 {
        BodyMode::Lines
    } else {
        BodyMode::Buffered
    };
    let method = if ctl[0] & 2 != 0 {
        Method::HEAD
    } else {
        Method::GET
    };
    let limits = limits_from(ctl[0]);
    let eof = ctl[0] & 8 != 0;
    let bytewise = ctl[0] & 0x10 != 0;
    let split = run(
        &method,
        mode,
        limits,
        &common::pieces(input, &ctl[1..], bytewise),
        eof,
    );
    let whole = run(&method, mode, limits, &[input], eof);
    assert_eq!(split, whole, "events depend on where the input was cut");
});
