//! A minimal protobuf writer for the Kubernetes wire format: the `k8s\0` magic, a
//! `runtime.Unknown` envelope, and field-by-field encoding in ascending field order,
//! writing non-pointer scalars even when empty, as the generated Go marshalers do.
//!
//! Nested messages are written in place and their length is inserted afterwards, so a
//! large list is encoded into the output buffer once, without per-item buffers.

/// Writes fields of one message into a shared buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    fn tag(&mut self, field: u32, wire_type: u8) {
        varint(u64::from(field) << 3 | u64::from(wire_type), self.out);
    }

    /// A varint field (int32/int64; negative values take ten bytes, as in Go).
    pub fn int(&mut self, field: u32, value: i64) {
        self.tag(field, 0);
        varint(value as u64, self.out);
    }

    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        self.tag(field, 2);
        varint(value.len() as u64, self.out);
        self.out.extend_from_slice(value);
    }

    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A length-delimited field whose content `build` writes in place.
    pub fn nested(&mut self, field: u32, build: impl FnOnce(&mut Writer<'_>)) {
        self.tag(field, 2);
        // Room for a one-byte length (content under 128 bytes, most nested messages);
        // longer content moves over to make room for the rest of the varint.
        let at = self.out.len();
        self.out.push(0);
        build(&mut Writer { out: self.out });
        let len = (self.out.len() - at - 1) as u64;
        if len < 0x80 {
            self.out[at] = len as u8;
        } else {
            let mut prefix = Vec::with_capacity(10);
            varint(len, &mut prefix);
            self.out.splice(at..=at, prefix);
        }
    }

    /// One entry of a `map<string, string>` field.
    pub fn map_entry(&mut self, field: u32, key: &str, value: &str) {
        self.nested(field, |e| {
            e.string(1, key);
            e.string(2, value);
        });
    }

    /// `metav1.Time { seconds, nanos }`; upstream writes whole seconds and nanos 0.
    pub fn time(&mut self, field: u32, unix_seconds: i64) {
        self.nested(field, |t| {
            t.int(1, unix_seconds);
            t.int(2, 0);
        });
    }

    /// `metav1.ListMeta` with every field empty (its strings are non-pointer).
    pub fn empty_list_meta(&mut self, field: u32) {
        self.nested(field, |m| {
            m.string(1, "");
            m.string(2, "");
            m.string(3, "");
        });
    }
}

/// The magic prefix of Kubernetes protobuf bodies.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Writes `k8s\0` and a `runtime.Unknown` whose `raw` field `build_raw` fills in place.
pub fn write_envelope(
    out: &mut Vec<u8>,
    api_version: &str,
    kind: &str,
    build_raw: impl FnOnce(&mut Writer<'_>),
) {
    out.extend_from_slice(MAGIC);
    let mut w = Writer::new(out);
    w.nested(1, |t| {
        t.string(1, api_version);
        t.string(2, kind);
    });
    w.nested(2, build_raw);
    w.string(3, "");
    w.string(4, "");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_nesting() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.int(1, 150);
        w.nested(2, |m| m.string(1, "hi"));
        w.int(3, -1);
        assert_eq!(out[..3], [0x08, 0x96, 0x01]);
        assert_eq!(out[3..9], [0x12, 0x04, 0x0a, 0x02, b'h', b'i']);
        assert_eq!(out[9], 0x18);
        assert_eq!(out.len(), 10 + 10);

        // 127 and 128 bytes of content: one and two length bytes.
        for (n, prefix) in [(125usize, vec![0x7f]), (126, vec![0x80, 0x01])] {
            let mut out = Vec::new();
            Writer::new(&mut out).nested(1, |m| m.string(2, &"x".repeat(n)));
            assert_eq!(out[0], 0x0a);
            assert_eq!(out[1..1 + prefix.len()], prefix[..]);
            assert_eq!(out.len(), 1 + prefix.len() + 2 + n);
            assert_eq!(out[1 + prefix.len()..3 + prefix.len()], [0x12, n as u8]);
        }
    }

    #[test]
    fn long_nested_length_is_multibyte() {
        let mut out = Vec::new();
        Writer::new(&mut out).nested(1, |m| m.bytes(1, &[7u8; 300]));
        // tag, then varint(303) = 0xaf 0x02, then the inner field.
        assert_eq!(out[..3], [0x0a, 0xaf, 0x02]);
        assert_eq!(out.len(), 3 + 303);
    }

    #[test]
    fn envelope_starts_with_magic_and_type_meta() {
        let mut out = Vec::new();
        write_envelope(&mut out, "metrics.k8s.io/v1beta1", "NodeMetrics", |raw| {
            raw.string(1, "x")
        });
        assert_eq!(&out[..4], MAGIC);
        assert_eq!(out[4], 0x0a);
        let type_meta_len = out[5] as usize;
        let type_meta = &out[6..6 + type_meta_len];
        assert_eq!(&type_meta[2..2 + 22], b"metrics.k8s.io/v1beta1");
        assert!(type_meta.ends_with(b"NodeMetrics"));
    }
}
