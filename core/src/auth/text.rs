//! Small string helpers reproducing Go's behaviour where authentication and authorization
//! messages or decisions depend on it.

use std::borrow::Cow;
use std::fmt::Write as _;

pub(crate) use crate::goquote::go_quote;

/// The generic server's response sanitizer: `&`, `<`, `>` become HTML entities.
pub(crate) fn html_escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Go's `url.QueryUnescape` (`plus` true) or `url.PathUnescape` (`plus` false): `%XX`
/// decoded, `+` a space only in queries; a malformed escape is an error. Bytes that are not
/// UTF-8 become U+FFFD.
pub(crate) fn unescape(s: &str, plus: bool) -> Option<Cow<'_, str>> {
    if !(s.contains('%') || plus && s.contains('+')) {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let h = hex_value(*bytes.get(i + 1)?)?;
                let l = hex_value(*bytes.get(i + 2)?)?;
                out.push(h * 16 + l);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Go's `url.ParseQuery`, keeping only what it keeps: pairs split at `&`, pairs with a `;`
/// or a malformed escape dropped, keys and values query-unescaped, order kept.
pub(crate) fn parse_query(query: Option<&str>) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let Some(query) = query else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(key), Some(value)) = (unescape(key, true), unescape(value, true)) else {
            continue;
        };
        pairs.push((key, value));
    }
    pairs
}

/// The first value of `name` in parsed query pairs (Go's `Query()[name][0]`).
pub(crate) fn first_value<'q>(
    pairs: &'q [(Cow<'q, str>, Cow<'q, str>)],
    name: &str,
) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

/// Go's `base64.RawURLEncoding.DecodeString`: URL alphabet, no padding; `\r` and `\n`
/// are skipped.
pub(crate) fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut count = 0usize;
    for &c in s.as_bytes() {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        acc = (acc << 6) | value(c)?;
        bits += 6;
        count += 1;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character carries fewer than eight bits: Go rejects it.
    (count % 4 != 1).then_some(out)
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape_three_characters() {
        assert_eq!(html_escape("a&b<c>d\"e"), "a&amp;b&lt;c&gt;d\"e");
        assert!(matches!(html_escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn query_like_go() {
        let q = parse_query(Some("a=1&b=x+y&c=%zz&d;e=2&&f&a=3&g=%41"));
        let got: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            got,
            vec![("a", "1"), ("b", "x y"), ("f", ""), ("a", "3"), ("g", "A")]
        );
        assert_eq!(first_value(&q, "a"), Some("1"));
        assert_eq!(unescape("a+b%2Fc", false).as_deref(), Some("a+b/c"));
        assert_eq!(unescape("%4", false), None);
    }

    #[test]
    fn base64url() {
        assert_eq!(
            base64url_decode("bXl0b2tlbg").as_deref(),
            Some(&b"mytoken"[..])
        );
        assert_eq!(base64url_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(base64url_decode("bXl0b2tlbg=="), None);
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(base64url_decode("").as_deref(), Some(&[][..]));
    }
}
