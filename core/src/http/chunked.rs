//! Body framing: Content-Length, chunked (RFC 9112 §7.1) and read-until-close.
//!
//! The chunked decoder advances one grammar position per byte of framing and copies
//! chunk data in slices, so input may be split anywhere without rescanning.

use super::{ChunkError, Error};

/// Chunk extension bytes skipped per message before giving up. Extensions carry
/// nothing we use; the budget only bounds the work a peer can make us do (hyper uses
/// the same figure).
const MAX_CHUNK_EXTENSION_BYTES: usize = 16 * 1024;

/// How the end of a body is found.
#[derive(Debug)]
pub(super) enum BodyDecoder {
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(ChunkedDecoder),
    /// Everything until the peer closes (responses only).
    UntilEof,
}

impl BodyDecoder {
    /// Decodes body bytes from `input`, handing each run of data to `on_data`.
    /// Returns how much of `input` was consumed and whether the body is complete;
    /// bytes after the end of the body are left for the next message.
    pub(super) fn decode<'a>(
        &mut self,
        input: &'a [u8],
        on_data: &mut impl FnMut(&'a [u8]) -> Result<(), Error>,
    ) -> Result<(usize, bool), Error> {
        match self {
            BodyDecoder::Length(remaining) => {
                let take = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                if take > 0 {
                    on_data(&input[..take])?;
                }
                *remaining -= take as u64;
                Ok((take, *remaining == 0))
            }
            BodyDecoder::Chunked(chunked) => {
                let used = chunked.decode(input, on_data)?;
                Ok((used, chunked.is_done()))
            }
            BodyDecoder::UntilEof => {
                if !input.is_empty() {
                    on_data(input)?;
                }
                Ok((input.len(), false))
            }
        }
    }
}

/// One position in the chunked grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the size, which may only lead to an extension.
    SizeSpace,
    /// Skipping `;name=value` extensions up to CR.
    Extension,
    /// CR seen after the size line; LF must follow.
    SizeLf,
    /// Copying chunk data.
    Data,
    /// CR must follow chunk data.
    DataCr,
    /// LF must follow chunk data's CR.
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field line.
    Trailer { colon_seen: bool },
    /// CR seen at the end of a trailer line.
    TrailerLf,
    /// CR seen on the final empty line.
    EndLf,
    /// The whole chunked body, trailers included, has been read.
    Done,
}

/// Incremental decoder of a chunked body. Extensions and trailers are validated and
/// dropped: nothing in this server reads them.
#[derive(Debug)]
pub(super) struct ChunkedDecoder {
    state: State,
    /// The size being parsed, then the data left in the current chunk.
    chunk: u64,
    body_len: u64,
    max_body: u64,
    extension_bytes: usize,
    trailer_bytes: usize,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder refusing bodies over `max_body` bytes (checked as each chunk size is
    /// read, before its data) and trailer sections over `max_trailer_bytes`.
    pub(super) fn new(max_body: u64, max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            chunk: 0,
            body_len: 0,
            max_body,
            extension_bytes: 0,
            trailer_bytes: 0,
            max_trailer_bytes,
        }
    }

    /// Whether the terminating chunk and trailers have been read.
    pub(super) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input` until it runs out or the body ends; returns bytes consumed.
    pub(super) fn decode<'a>(
        &mut self,
        input: &'a [u8],
        on_data: &mut impl FnMut(&'a [u8]) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let mut pos = 0;
        while pos < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let available = input.len() - pos;
                let take = available.min(usize::try_from(self.chunk).unwrap_or(usize::MAX));
                on_data(&input[pos..pos + take])?;
                pos += take;
                self.chunk -= take as u64;
                if self.chunk == 0 {
                    self.state = State::DataCr;
                }
            } else {
                self.state = self.step(input[pos])?;
                pos += 1;
            }
        }
        Ok(pos)
    }

    /// The state after one framing byte.
    fn step(&mut self, byte: u8) -> Result<State, Error> {
        let invalid = |e| Err(Error::InvalidChunk(e));
        if let (State::SizeStart | State::Size, Some(digit)) = (self.state, hex_value(byte)) {
            self.chunk = match self.state {
                State::SizeStart => digit,
                _ => self
                    .chunk
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(digit))
                    .ok_or(Error::InvalidChunk(ChunkError::SizeOverflow))?,
            };
            return Ok(State::Size);
        }
        Ok(match (self.state, byte) {
            (State::SizeStart, _) => return invalid(ChunkError::Size),
            (State::Size | State::SizeSpace, b' ' | b'\t') => {
                self.count_extension_byte()?;
                State::SizeSpace
            }
            (State::Size | State::SizeSpace, b';') => {
                self.count_extension_byte()?;
                State::Extension
            }
            (State::Size | State::Extension, b'\r') => State::SizeLf,
            (State::Size | State::SizeSpace | State::Extension, b'\n') => {
                return invalid(ChunkError::LineEnding);
            }
            (State::Size | State::SizeSpace, _) => return invalid(ChunkError::Size),
            (State::Extension, _) => {
                if byte.is_ascii_control() && byte != b'\t' {
                    return invalid(ChunkError::Extension);
                }
                self.count_extension_byte()?;
                State::Extension
            }
            (State::SizeLf, b'\n') if self.chunk == 0 => State::TrailerStart,
            (State::SizeLf, b'\n') => {
                let body_len = self.body_len.saturating_add(self.chunk);
                if body_len > self.max_body {
                    return Err(Error::BodyTooLarge {
                        limit: self.max_body,
                    });
                }
                self.body_len = body_len;
                State::Data
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::SizeStart,
            (State::SizeLf | State::DataCr | State::DataLf, _) => {
                return invalid(ChunkError::LineEnding);
            }
            (State::TrailerStart, b'\r') => {
                self.count_trailer_byte()?;
                State::EndLf
            }
            (State::TrailerStart | State::Trailer { .. }, b'\n') => {
                return invalid(ChunkError::LineEnding);
            }
            // Obsolete line folding and empty field names are refused, as in heads.
            (State::TrailerStart, b' ' | b'\t' | b':') => return invalid(ChunkError::Trailer),
            (State::Trailer { colon_seen: false }, b'\r') => return invalid(ChunkError::Trailer),
            (State::Trailer { colon_seen: true }, b'\r') => {
                self.count_trailer_byte()?;
                State::TrailerLf
            }
            (State::TrailerStart | State::Trailer { .. }, _) => {
                if byte.is_ascii_control() && byte != b'\t' {
                    return invalid(ChunkError::Trailer);
                }
                self.count_trailer_byte()?;
                let colon_seen = matches!(self.state, State::Trailer { colon_seen: true });
                State::Trailer {
                    colon_seen: colon_seen || byte == b':',
                }
            }
            (State::TrailerLf, b'\n') => {
                self.count_trailer_byte()?;
                State::TrailerStart
            }
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return invalid(ChunkError::LineEnding),
            // `decode` copies data itself and stops at Done; neither reaches here.
            (State::Data | State::Done, _) => self.state,
        })
    }

    fn count_extension_byte(&mut self) -> Result<(), Error> {
        self.extension_bytes += 1;
        if self.extension_bytes > MAX_CHUNK_EXTENSION_BYTES {
            return Err(Error::InvalidChunk(ChunkError::ExtensionsTooLong));
        }
        Ok(())
    }

    fn count_trailer_byte(&mut self) -> Result<(), Error> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailer_bytes {
            return Err(Error::InvalidChunk(ChunkError::TrailersTooLarge));
        }
        Ok(())
    }
}

fn hex_value(byte: u8) -> Option<u64> {
    char::from(byte).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns data and bytes consumed.
    fn decode_in_steps(
        input: &[u8],
        step: usize,
        max_body: u64,
    ) -> Result<(Vec<u8>, usize), Error> {
        let mut decoder = ChunkedDecoder::new(max_body, 1024);
        let mut data = Vec::new();
        let mut consumed = 0;
        for piece in input.chunks(step) {
            let used = decoder.decode(piece, &mut |d: &[u8]| {
                data.extend_from_slice(d);
                Ok(())
            })?;
            consumed += used;
            if decoder.is_done() {
                return Ok((data, consumed));
            }
        }
        Err(Error::UnexpectedEof)
    }

    #[test]
    fn http_chunked_body_with_extensions_and_trailers_splits_anywhere() {
        let body = b"5;name=\"quoted; value\"\r\nhello\r\n6 ; ext\r\n world\r\n0;last\r\nX-Trailer: 1\r\nChecksum:abc\r\n\r\nNEXT";
        for step in 1..body.len() {
            let (data, used) = decode_in_steps(body, step, u64::MAX).expect("valid body");
            assert_eq!(data, b"hello world", "step {step}");
            assert_eq!(&body[used..], b"NEXT", "step {step}");
        }
    }

    #[test]
    fn http_chunked_sizes_are_hex_and_bounded() {
        let (data, _) = decode_in_steps(b"A\r\n0123456789\r\n00\r\n\r\n", 3, 10).expect("ok");
        assert_eq!(data.len(), 10);
        assert_eq!(
            decode_in_steps(b"B\r\n", 1, 10),
            Err(Error::BodyTooLarge { limit: 10 })
        );
        assert_eq!(
            decode_in_steps(b"10000000000000000\r\n", 1, u64::MAX),
            Err(Error::InvalidChunk(ChunkError::SizeOverflow))
        );
        assert_eq!(
            decode_in_steps(b"xyz\r\n", 1, 10),
            Err(Error::InvalidChunk(ChunkError::Size))
        );
        assert_eq!(
            decode_in_steps(b"5 \r\nhello\r\n0\r\n\r\n", 1, 10),
            Err(Error::InvalidChunk(ChunkError::Size))
        );
    }

    #[test]
    fn http_chunked_framing_requires_crlf() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"0\r\nX-A: 1\n\r\n",
        ] {
            assert_eq!(
                decode_in_steps(bad, 1, 100),
                Err(Error::InvalidChunk(ChunkError::LineEnding)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http_chunked_trailers_and_extensions_are_limited() {
        let trailer = format!("0\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(
            decode_in_steps(trailer.as_bytes(), 7, 100),
            Err(Error::InvalidChunk(ChunkError::TrailersTooLarge))
        );
        let extension = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_EXTENSION_BYTES));
        assert_eq!(
            decode_in_steps(extension.as_bytes(), 100, 100),
            Err(Error::InvalidChunk(ChunkError::ExtensionsTooLong))
        );
        assert_eq!(
            decode_in_steps(b"0\r\n folded\r\n\r\n", 1, 100),
            Err(Error::InvalidChunk(ChunkError::Trailer))
        );
        assert_eq!(
            decode_in_steps(b"0\r\nno-colon\r\n\r\n", 1, 100),
            Err(Error::InvalidChunk(ChunkError::Trailer))
        );
        assert_eq!(
            decode_in_steps(b"1;\x01\r\n", 1, 100),
            Err(Error::InvalidChunk(ChunkError::Extension))
        );
    }

    #[test]
    fn http_length_and_eof_bodies_stop_where_they_should() {
        let mut length = BodyDecoder::Length(3);
        let mut seen = Vec::new();
        let mut sink = |d: &[u8]| {
            seen.extend_from_slice(d);
            Ok(())
        };
        assert_eq!(length.decode(b"ab", &mut sink), Ok((2, false)));
        assert_eq!(length.decode(b"cdef", &mut sink), Ok((1, true)));
        let mut eof = BodyDecoder::UntilEof;
        assert_eq!(eof.decode(b"xyz", &mut sink), Ok((3, false)));
        assert_eq!(seen, b"abcxyz");
    }
}
