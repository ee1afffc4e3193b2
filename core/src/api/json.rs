//! Small JSON writing helpers that produce exactly what Go's `encoding/json` does:
//! HTML-safe string escaping and `json.Indent`-style pretty printing.

/// Bytes that may start an escape: quote, backslash, controls, `<`, `>`, `&`, and 0xE2
/// (the lead byte of U+2028/U+2029).
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xe2] = true;
    table
};

/// Appends `s` as a JSON string, escaping like Go: `"` `\` and control characters, and
/// `<`, `>`, `&`, U+2028 and U+2029 as `\u` sequences.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Names and label values almost never need escaping: copy them whole.
    if !bytes.iter().any(|&b| NEEDS_ESCAPE[usize::from(b)]) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            b'<' => Some(b"\\u003c"),
            b'>' => Some(b"\\u003e"),
            b'&' => Some(b"\\u0026"),
            0x00..=0x1f => None,
            // U+2028 / U+2029 are E2 80 A8 / E2 80 A9.
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                None
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => {
                out.extend_from_slice(e);
                start = i + 1;
            }
            None if b < 0x20 => {
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
            }
            None => {
                let code = if bytes[i + 2] == 0xa8 {
                    "\\u2028"
                } else {
                    "\\u2029"
                };
                out.extend_from_slice(code.as_bytes());
                start = i + 3;
            }
        }
    }
    // A skipped U+2028 leaves `start` past `i`; never slice backwards.
    if start <= bytes.len() {
        out.extend_from_slice(&bytes[start..]);
    }
    out.push(b'"');
}

/// Re-indents compact JSON with two spaces per level, as `json.Indent` does (empty
/// objects and arrays stay `{}` / `[]`); no trailing newline.
pub fn indent(compact: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 2));
    };
    while i < compact.len() {
        let b = compact[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                if compact.get(i + 1) == Some(&close) {
                    out.extend_from_slice(&[b, close]);
                    i += 2;
                    continue;
                }
                out.push(b);
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b' ' | b'\n' | b'\t' | b'\r' => {}
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn go_escaping() {
        assert_eq!(s("plain"), "\"plain\"");
        assert_eq!(s("we\"ird\\name"), "\"we\\\"ird\\\\name\"");
        assert_eq!(s("a<b>&c"), "\"a\\u003cb\\u003e\\u0026c\"");
        assert_eq!(s("line\nbreak\u{1}"), "\"line\\nbreak\\u0001\"");
        assert_eq!(s("x\u{2028}y\u{2029}"), "\"x\\u2028y\\u2029\"");
        assert_eq!(s("µs"), "\"µs\"");
    }

    #[test]
    fn indentation_like_go() {
        let compact = br#"{"kind":"X","metadata":{},"items":[],"a":[1,{"b":"c,:{"}]}"#;
        let want = "{\n  \"kind\": \"X\",\n  \"metadata\": {},\n  \"items\": [],\n  \"a\": [\n    1,\n    {\n      \"b\": \"c,:{\"\n    }\n  ]\n}";
        assert_eq!(String::from_utf8(indent(compact)).expect("utf-8"), want);
    }
}
