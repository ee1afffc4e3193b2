//! Percent-encoding exactly as Go's `net/url` does it, so that the queries we send and the
//! kubelet URLs we build are byte-for-byte those of upstream.

use std::fmt::Write as _;

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~')
}

fn push_escaped(out: &mut String, c: u8) {
    let _ = write!(out, "%{c:02X}");
}

/// `url.QueryEscape`: unreserved bytes kept, space as `+`, everything else `%XX`.
pub(crate) fn query_escape(s: &str, out: &mut String) {
    for &c in s.as_bytes() {
        if unreserved(c) {
            out.push(char::from(c));
        } else if c == b' ' {
            out.push('+');
        } else {
            push_escaped(out, c);
        }
    }
}

/// `url.URL.EscapedPath` of a path set without a raw form (`encodePath` mode): reserved
/// characters other than `?` stay, everything else outside the unreserved set is escaped.
pub(crate) fn path_escape(path: &str, out: &mut String) {
    if path == "*" {
        out.push('*');
        return;
    }
    for &c in path.as_bytes() {
        if unreserved(c)
            || matches!(
                c,
                b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'
            )
        {
            out.push(char::from(c));
        } else {
            push_escaped(out, c);
        }
    }
}

/// `url.URL.String`'s escaping of the host part (`encodeHost` mode).
pub(crate) fn host_escape(host: &str, out: &mut String) {
    for &c in host.as_bytes() {
        let keep = unreserved(c)
            || matches!(
                c,
                b'!' | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b'<'
                    | b'>'
                    | b'"'
            );
        if keep {
            out.push(char::from(c));
        } else {
            push_escaped(out, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&str, &mut String), s: &str) -> String {
        let mut out = String::new();
        f(s, &mut out);
        out
    }

    #[test]
    fn matches_go() {
        // url.QueryEscape
        assert_eq!(
            run(query_escape, "status.phase=Running"),
            "status.phase%3DRunning"
        );
        assert_eq!(
            run(query_escape, "metrics-server-skip!=true,a in (b c)"),
            "metrics-server-skip%21%3Dtrue%2Ca+in+%28b+c%29"
        );
        assert_eq!(run(query_escape, "é~"), "%C3%A9~");
        // (&url.URL{Path: p}).EscapedPath()
        assert_eq!(run(path_escape, "/metrics/resource"), "/metrics/resource");
        assert_eq!(run(path_escape, "/a b?c#d%e"), "/a%20b%3Fc%23d%25e");
        assert_eq!(
            run(path_escape, "/x;y=z,@:$&+!*'()"),
            "/x;y=z,@:$&+%21%2A%27%28%29"
        );
        assert_eq!(run(path_escape, "*"), "*");
        // url.URL.String() host part
        assert_eq!(
            run(host_escape, "[fe80::1%eth0]:10250"),
            "[fe80::1%25eth0]:10250"
        );
        assert_eq!(
            run(host_escape, "node-1.example:10250"),
            "node-1.example:10250"
        );
        assert_eq!(run(host_escape, "a/b@c?"), "a%2Fb%40c%3F");
    }
}
