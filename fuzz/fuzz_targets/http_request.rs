//! Server-side HTTP/1.1 codec: `metrics_core::http::RequestParser`.
//!
//! Input layout: 4 control bytes, then the bytes "read from the connection".
//! - byte 0, bit 0: small limits (sizes from bits 1–3, header count from bits 6–7)
//! - byte 0, bit 4: signal EOF after the last piece
//! - byte 0, bit 5: feed one byte at a time instead of at the cut points
//! - bytes 1–3: cut points, each a fraction (n/255) of the payload length
//!
//! Every piece is fed and the events drained. The events must not depend on where the
//! input was cut (the parser accepts input "split anywhere"), nothing may follow a
//! `Reject`, and no body may exceed the limit. Responses and rejections are encoded to
//! exercise the encoders too.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use metrics_core::http::{Error, Version};
use metrics_core::http::{
    Limits, RequestParser, Response, ResponseContext, ServerEvent, encode_rejection,
    encode_response,
};

#[derive(Debug, PartialEq)]
enum Seen {
    Continue,
    Request {
        method: String,
        uri: String,
        version: Version,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        context: ResponseContext,
    },
    Reject(Error),
}

fn limits_from(ctl: u8) -> Limits {
    if ctl & 1 == 0 {
        return Limits::default();
    }
    let shift = (ctl >> 1) & 7;
    Limits {
        max_head_bytes: 16 << shift,
        max_headers: [0, 1, 4, 100][usize::from(ctl >> 6)],
        max_body_bytes: 8 << shift,
    }
}

fn run(limits: Limits, pieces: &[&[u8]], eof: bool) -> Vec<Seen> {
    let mut parser = RequestParser::new(limits);
    let mut seen = Vec::new();
    let mut rejected = false;
    let mut out = Vec::new();
    let mut drain = |parser: &mut RequestParser, seen: &mut Vec<Seen>| {
        while let Some(event) = parser.poll_event() {
            assert!(!rejected, "an event followed a Reject: {event:?}");
            out.clear();
            match event {
                ServerEvent::Continue => seen.push(Seen::Continue),
                ServerEvent::Request { request, context } => {
                    assert!(
                        request.body().len() as u64 <= limits.max_body_bytes,
                        "body of {} bytes over the limit {}",
                        request.body().len(),
                        limits.max_body_bytes
                    );
                    let response = Response::new(request.body().clone());
                    let _keep_alive = encode_response(&context, &response, &mut out);
                    let mut headers: Vec<(String, Vec<u8>)> = request
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                        .collect();
                    headers.sort();
                    seen.push(Seen::Request {
                        method: request.method().as_str().to_owned(),
                        uri: request.uri().to_string(),
                        version: request.version(),
                        headers,
                        body: request.into_body(),
                        context,
                    });
                }
                ServerEvent::Reject(error) => {
                    encode_rejection(&error, &mut out);
                    assert!(
                        parser.is_closed(),
                        "parser still open after Reject({error:?})"
                    );
                    rejected = true;
                    seen.push(Seen::Reject(error));
                }
            }
        }
    };
    for piece in pieces {
        parser.feed(piece);
        drain(&mut parser, &mut seen);
    }
    if eof {
        parser.feed_eof();
        drain(&mut parser, &mut seen);
        assert!(parser.is_closed());
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let Some((ctl, input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let limits = limits_from(ctl[0]);
    let eof = ctl[0] & 0x10 != 0;
    let bytewise = ctl[0] & 0x20 != 0;
    let split = run(limits, &common::pieces(input, &ctl[1..], bytewise), eof);
    let whole = run(limits, &[input], eof);
    assert_eq!(split, whole, "events depend on where the input was cut");
});
