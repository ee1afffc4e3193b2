//! Go's `%q` (`strconv.Quote`), for the messages that must read exactly as upstream's
//! (selector errors, health check names, authorization refusals).

/// Go's `%q` of a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_go_quoted(&mut out, s.as_bytes());
    // Escapes are ASCII and kept characters whole, so the output is UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Go's `%q` of a byte string, appended to `out`: printable characters kept, `"` and `\`
/// escaped, control characters as `\n`-style or `\xNN`, other non-printable characters as
/// `\uNNNN` or `\UNNNNNNNN`, and each byte of invalid UTF-8 as `\xNN`.
pub(crate) fn push_go_quoted(out: &mut Vec<u8>, mut s: &[u8]) {
    out.push(b'"');
    while !s.is_empty() {
        let (valid, bad) = match std::str::from_utf8(s) {
            Ok(all) => (all, 0),
            Err(e) => {
                let valid = std::str::from_utf8(&s[..e.valid_up_to()]).unwrap_or_default();
                (valid, e.error_len().unwrap_or(s.len() - e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            push_escaped_char(out, c);
        }
        let rest = &s[valid.len()..];
        for &b in &rest[..bad] {
            push_hex(out, b"\\x", u32::from(b), 2);
        }
        s = &rest[bad..];
    }
    out.push(b'"');
}

fn push_escaped_char(out: &mut Vec<u8>, c: char) {
    let mut utf8 = [0; 4];
    match c {
        '"' | '\\' => {
            out.push(b'\\');
            out.push(c as u8);
        }
        ' '..='~' => out.push(c as u8),
        '\u{7}' => out.extend_from_slice(b"\\a"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\u{b}' => out.extend_from_slice(b"\\v"),
        '\0'..='\u{1f}' | '\u{7f}' => push_hex(out, b"\\x", c as u32, 2),
        _ if go_is_print(c) => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        _ if (c as u32) < 0x1_0000 => push_hex(out, b"\\u", c as u32, 4),
        _ => push_hex(out, b"\\U", c as u32, 8),
    }
}

/// Go's `unicode.IsPrint` for a non-ASCII character. Go prints letters, marks, numbers,
/// punctuation and symbols; Rust's `escape_debug` escapes exactly the complement (control,
/// format, surrogate, private-use, unassigned and separator characters), except that it
/// also escapes a grapheme extender at the start of a string, hence the leading `a`.
fn go_is_print(c: char) -> bool {
    let mut buf = [0u8; 5];
    buf[0] = b'a';
    let len = 1 + c.encode_utf8(&mut buf[1..]).len();
    std::str::from_utf8(&buf[..len]).is_ok_and(|s| s.escape_debug().nth(1) == Some(c))
}

fn push_hex(out: &mut Vec<u8>, prefix: &[u8], value: u32, width: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(prefix);
    for shift in (0..width).rev() {
        out.push(HEX[(value >> (shift * 4) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_quote_like_go() {
        assert_eq!(go_quote("jane"), r#""jane""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("t\tn\n\x01"), r#""t\tn\n\x01""#);
        assert_eq!(go_quote("é"), "\"é\"");
        assert_eq!(go_quote("\u{200b}"), r#""\u200b""#);
        assert_eq!(
            go_quote("é\u{7f}\x01\t\u{a0}\u{301}\u{10ffff}"),
            "\"é\\x7f\\x01\\t\\u00a0\u{301}\\U0010ffff\""
        );
    }

    #[test]
    fn byte_strings_quote_like_go() {
        let q = |s: &[u8]| {
            let mut out = Vec::new();
            push_go_quoted(&mut out, s);
            String::from_utf8(out).expect("quoted output is UTF-8")
        };
        assert_eq!(q(b""), r#""""#);
        assert_eq!(q(b"plain-name"), r#""plain-name""#);
        assert_eq!(
            q(b"\x07\x08\x0c\x0b\r\0\x1f\x7f"),
            r#""\a\b\f\v\r\x00\x1f\x7f""#
        );
        assert_eq!(q(b"\xe2\x82"), r#""\xe2\x82""#);
        assert_eq!(q(b"a\xffb\xc3\xa9"), "\"a\\xffb\u{e9}\"");
        assert_eq!(
            q("\u{a0}\u{200b}\u{feff}".as_bytes()),
            r#""\u00a0\u200b\ufeff""#
        );
        assert_eq!(q("\u{f0000}".as_bytes()), r#""\U000f0000""#);
        assert_eq!(q("日本 ✓ 😀".as_bytes()), "\"日本 ✓ 😀\"");
    }
}
