//! NodeMetrics and PodMetrics (single objects and lists) in every representation the API
//! negotiates: JSON, Table, PartialObjectMetadata(List), protobuf and YAML.
//!
//! Lists stream into the caller's buffer item by item: no intermediate document, no
//! per-item allocation (text pieces go through one reused scratch string).

use super::json::write_str;
use super::negotiate::{Conversion, Format, MetaVersion};
use super::objects::Labels;
use super::protobuf::{self, Writer};
use crate::quantity::Quantity;
use crate::time::{Timestamp, write_go_duration};
use std::time::Duration;

pub const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// Usage by resource name, in name order.
#[derive(Debug, Clone, Copy)]
pub enum Resources<'a> {
    /// What the server measures.
    CpuMemory { cpu: Quantity, memory: Quantity },
    /// Any other set (upstream's encoders are generic over resource names).
    Custom(&'a [(&'a str, Quantity)]),
}

impl Resources<'_> {
    fn for_each(&self, mut visit: impl FnMut(&str, &Quantity)) {
        match self {
            Resources::CpuMemory { cpu, memory } => {
                visit("cpu", cpu);
                visit("memory", memory);
            }
            Resources::Custom(list) => list.iter().for_each(|(name, q)| visit(name, q)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct NodeItem<'a> {
    pub name: &'a str,
    pub labels: &'a Labels,
    pub timestamp: Timestamp,
    pub window: Duration,
    pub usage: Resources<'a>,
}

#[derive(Debug, Clone, Copy)]
pub struct ContainerItem<'a> {
    pub name: &'a str,
    pub usage: Resources<'a>,
}

#[derive(Debug, Clone, Copy)]
pub struct PodItem<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: &'a Labels,
    pub timestamp: Timestamp,
    pub window: Duration,
    pub containers: &'a [ContainerItem<'a>],
}

/// One object to encode.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Node(NodeItem<'a>),
    Pod(PodItem<'a>),
}

impl<'a> Item<'a> {
    fn name(&self) -> &'a str {
        match self {
            Item::Node(n) => n.name,
            Item::Pod(p) => p.name,
        }
    }

    fn namespace(&self) -> Option<&'a str> {
        match self {
            Item::Node(_) => None,
            Item::Pod(p) => Some(p.namespace),
        }
    }

    fn labels(&self) -> &'a Labels {
        match self {
            Item::Node(n) => n.labels,
            Item::Pod(p) => p.labels,
        }
    }

    fn window(&self) -> Duration {
        match self {
            Item::Node(n) => n.window,
            Item::Pod(p) => p.window,
        }
    }

    fn timestamp(&self) -> Timestamp {
        match self {
            Item::Node(n) => n.timestamp,
            Item::Pod(p) => p.timestamp,
        }
    }
}

/// Receives the items of a list, one call per item.
pub type ItemSink<'s> = dyn FnMut(&Item<'_>) + 's;

/// Which object kind a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    Pod,
}

impl Kind {
    fn object(self) -> &'static str {
        match self {
            Kind::Node => "NodeMetrics",
            Kind::Pod => "PodMetrics",
        }
    }

    fn list(self) -> &'static str {
        match self {
            Kind::Node => "NodeMetricsList",
            Kind::Pod => "PodMetricsList",
        }
    }
}

/// The Table's `includeObject` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parses the query value; `Err` carries upstream's message.
    pub fn parse(value: Option<&str>) -> Result<IncludeObject, String> {
        match value {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!(
                "Unable to convert to Table as requested: includeObject=\"{other}\" is not a supported value (None, Metadata, Object)"
            )),
        }
    }
}

/// Everything that shapes the body apart from the items.
#[derive(Debug, Clone, Copy)]
pub struct Encoding {
    pub format: Format,
    pub conversion: Conversion,
    pub include_object: IncludeObject,
    /// Response-build time: every object's `creationTimestamp`.
    pub now: Timestamp,
}

/// Writes bodies, reusing one scratch string for numbers, times and quantities.
/// Writes bodies, reusing one scratch string for quantities. Times and windows repeat a
/// lot across items (every `creationTimestamp` is the same, samples share seconds), so
/// the last rendering of each is kept.
#[derive(Debug, Default)]
pub struct Encoder {
    scratch: String,
    /// The last two times rendered (every item has the list's creation time and its own
    /// sample time, so one slot would be rewritten twice per item).
    last_times: [Option<(i64, String)>; 2],
    /// Which slot was used last (the other is replaced on a miss).
    last_slot: usize,
    last_window: Option<(Duration, String)>,
}

impl Encoder {
    fn time(&mut self, out: &mut Vec<u8>, t: Timestamp) {
        let secs = t.unix_secs();
        let hit = self
            .last_times
            .iter()
            .position(|slot| slot.as_ref().is_some_and(|(s, _)| *s == secs));
        let slot = match hit {
            Some(slot) => slot,
            None => {
                let slot = 1 - self.last_slot;
                let mut text = self.last_times[slot]
                    .take()
                    .map(|(_, text)| text)
                    .unwrap_or_default();
                text.clear();
                t.write_rfc3339_secs(&mut text);
                self.last_times[slot] = Some((secs, text));
                slot
            }
        };
        self.last_slot = slot;
        if let Some((_, text)) = &self.last_times[slot] {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
    }

    fn duration(&mut self, out: &mut Vec<u8>, d: Duration) {
        if self.last_window.as_ref().is_none_or(|(w, _)| *w != d) {
            let mut text = String::with_capacity(16);
            write_go_duration(d, &mut text);
            self.last_window = Some((d, text));
        }
        if let Some((_, text)) = &self.last_window {
            write_str(out, text);
        }
    }

    fn quantity(&mut self, out: &mut Vec<u8>, q: &Quantity) {
        self.scratch.clear();
        q.write_canonical(&mut self.scratch);
        out.push(b'"');
        out.extend_from_slice(self.scratch.as_bytes());
        out.push(b'"');
    }

    fn metadata(&mut self, out: &mut Vec<u8>, item: &Item<'_>, now: Timestamp) {
        out.extend_from_slice(br#""metadata":{"name":"#);
        write_str(out, item.name());
        if let Some(ns) = item.namespace() {
            out.extend_from_slice(br#","namespace":"#);
            write_str(out, ns);
        }
        out.extend_from_slice(br#","creationTimestamp":"#);
        self.time(out, now);
        let labels = item.labels();
        if !labels.is_empty() {
            out.extend_from_slice(br#","labels":{"#);
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_str(out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }

    fn usage(&mut self, out: &mut Vec<u8>, usage: &Resources<'_>) {
        out.push(b'{');
        let mut first = true;
        usage.for_each(|name, q| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, name);
            out.push(b':');
            self.quantity(out, q);
        });
        out.push(b'}');
    }

    /// A NodeMetrics/PodMetrics object in JSON; `type_meta` adds `kind`/`apiVersion`
    /// (single objects and Table row objects have them, list items do not).
    fn object_json(&mut self, out: &mut Vec<u8>, item: &Item<'_>, now: Timestamp, type_meta: bool) {
        out.push(b'{');
        if type_meta {
            let kind = match item {
                Item::Node(_) => Kind::Node,
                Item::Pod(_) => Kind::Pod,
            };
            out.extend_from_slice(br#""kind":"#);
            write_str(out, kind.object());
            out.extend_from_slice(br#","apiVersion":""#);
            out.extend_from_slice(GROUP_VERSION.as_bytes());
            out.extend_from_slice(b"\",");
        }
        self.metadata(out, item, now);
        out.extend_from_slice(br#","timestamp":"#);
        self.time(out, item.timestamp());
        out.extend_from_slice(br#","window":"#);
        self.duration(out, item.window());
        match item {
            Item::Node(n) => {
                out.extend_from_slice(br#","usage":"#);
                self.usage(out, &n.usage);
            }
            Item::Pod(p) => {
                out.extend_from_slice(br#","containers":["#);
                for (i, c) in p.containers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(br#"{"name":"#);
                    write_str(out, c.name);
                    out.extend_from_slice(br#","usage":"#);
                    self.usage(out, &c.usage);
                    out.push(b'}');
                }
                out.push(b']');
            }
        }
        out.push(b'}');
    }

    fn partial_metadata(
        &mut self,
        out: &mut Vec<u8>,
        item: &Item<'_>,
        version: MetaVersion,
        now: Timestamp,
    ) {
        out.extend_from_slice(br#"{"kind":"PartialObjectMetadata","apiVersion":""#);
        out.extend_from_slice(version.api_version().as_bytes());
        out.extend_from_slice(b"\",");
        self.metadata(out, item, now);
        out.push(b'}');
    }

    /// A single object in the negotiated representation (compact JSON has no trailing
    /// newline yet; the caller finishes the body).
    pub fn single(&mut self, out: &mut Vec<u8>, enc: &Encoding, item: &Item<'_>) {
        match (enc.format, enc.conversion) {
            (Format::Protobuf, _) => self.object_protobuf_envelope(out, item, enc.now),
            (_, Conversion::Table(version)) => {
                let mut table = TableWriter::new(version, enc.include_object, enc.now);
                table.row(self, out, item);
                table.finish(out);
            }
            (_, Conversion::PartialObjectMetadata(version)) => {
                self.partial_metadata(out, item, version, enc.now)
            }
            _ => self.object_json(out, item, enc.now, true),
        }
    }

    /// A list: `produce` calls the sink once per item, in order.
    pub fn list(
        &mut self,
        out: &mut Vec<u8>,
        enc: &Encoding,
        kind: Kind,
        produce: &mut dyn FnMut(&mut ItemSink<'_>),
    ) {
        match (enc.format, enc.conversion) {
            (Format::Protobuf, _) => {
                protobuf::write_envelope(out, GROUP_VERSION, kind.list(), |list| {
                    list.empty_list_meta(1);
                    let scratch = &mut self.scratch;
                    produce(&mut |item| {
                        list.nested(2, |m| object_protobuf(m, item, enc.now, scratch));
                    });
                });
            }
            (_, Conversion::Table(version)) => {
                let mut table = TableWriter::new(version, enc.include_object, enc.now);
                produce(&mut |item| table.row(self, out, item));
                table.finish(out);
            }
            (_, Conversion::PartialObjectMetadataList(version)) => {
                out.extend_from_slice(br#"{"kind":"PartialObjectMetadataList","apiVersion":""#);
                out.extend_from_slice(version.api_version().as_bytes());
                out.extend_from_slice(br#"","metadata":{},"items":["#);
                let mut first = true;
                produce(&mut |item| {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    self.partial_metadata(out, item, version, enc.now);
                });
                out.extend_from_slice(b"]}");
            }
            _ => {
                out.extend_from_slice(br#"{"kind":""#);
                out.extend_from_slice(kind.list().as_bytes());
                out.extend_from_slice(br#"","apiVersion":""#);
                out.extend_from_slice(GROUP_VERSION.as_bytes());
                out.extend_from_slice(br#"","metadata":{},"items":["#);
                let mut first = true;
                produce(&mut |item| {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    self.object_json(out, item, enc.now, false);
                });
                out.extend_from_slice(b"]}");
            }
        }
    }

    fn object_protobuf_envelope(&mut self, out: &mut Vec<u8>, item: &Item<'_>, now: Timestamp) {
        let kind = match item {
            Item::Node(_) => Kind::Node,
            Item::Pod(_) => Kind::Pod,
        };
        let scratch = &mut self.scratch;
        protobuf::write_envelope(out, GROUP_VERSION, kind.object(), |m| {
            object_protobuf(m, item, now, scratch)
        });
    }
}

/// `ObjectMeta` as the generated marshaler writes it (non-pointer fields always).
fn object_meta_protobuf(m: &mut Writer<'_>, item: &Item<'_>, now: Timestamp) {
    m.string(1, item.name());
    m.string(2, "");
    m.string(3, item.namespace().unwrap_or(""));
    m.string(4, "");
    m.string(5, "");
    m.string(6, "");
    m.int(7, 0);
    m.time(8, now.unix_secs());
    for (k, v) in item.labels().iter() {
        m.map_entry(11, k, v);
    }
}

/// `scratch` is reused for each quantity's text.
fn usage_protobuf(m: &mut Writer<'_>, field: u32, usage: &Resources<'_>, scratch: &mut String) {
    usage.for_each(|name, q| {
        scratch.clear();
        q.write_canonical(scratch);
        m.nested(field, |entry| {
            entry.string(1, name);
            entry.nested(2, |quantity| quantity.string(1, scratch));
        });
    });
}

fn object_protobuf(m: &mut Writer<'_>, item: &Item<'_>, now: Timestamp, scratch: &mut String) {
    m.nested(1, |meta| object_meta_protobuf(meta, item, now));
    m.time(2, item.timestamp().unix_secs());
    m.nested(3, |d| {
        d.int(
            1,
            i64::try_from(item.window().as_nanos()).unwrap_or(i64::MAX),
        )
    });
    match item {
        Item::Node(n) => usage_protobuf(m, 4, &n.usage, scratch),
        Item::Pod(p) => {
            for c in p.containers {
                m.nested(4, |cm| {
                    cm.string(1, c.name);
                    usage_protobuf(cm, 2, &c.usage, scratch);
                });
            }
        }
    }
}

/// Streams a `meta.k8s.io` Table: columns come from the first row's resources, pod
/// cells are the sums over containers.
struct TableWriter {
    version: MetaVersion,
    include: IncludeObject,
    now: Timestamp,
    columns: Option<Vec<String>>,
}

impl TableWriter {
    fn new(version: MetaVersion, include: IncludeObject, now: Timestamp) -> TableWriter {
        TableWriter {
            version,
            include,
            now,
            columns: None,
        }
    }

    /// The row's resources summed per name, in name order.
    fn totals(item: &Item<'_>) -> Vec<(String, Quantity)> {
        let mut totals: Vec<(String, Quantity)> = Vec::new();
        let mut add = |name: &str, q: &Quantity| match totals
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
        {
            Ok(i) => totals[i].1 = totals[i].1.add(q),
            Err(i) => totals.insert(i, (name.to_string(), *q)),
        };
        match item {
            Item::Node(n) => n.usage.for_each(&mut add),
            Item::Pod(p) => p.containers.iter().for_each(|c| c.usage.for_each(&mut add)),
        }
        totals
    }

    fn row(&mut self, enc: &mut Encoder, out: &mut Vec<u8>, item: &Item<'_>) {
        let totals = TableWriter::totals(item);
        match &self.columns {
            None => {
                out.extend_from_slice(br#"{"kind":"Table","apiVersion":""#);
                out.extend_from_slice(self.version.api_version().as_bytes());
                out.extend_from_slice(br#"","metadata":{},"columnDefinitions":[{"name":"Name","type":"string","format":"name","description":"Name of the resource","priority":0}"#);
                for (name, _) in &totals {
                    out.extend_from_slice(br#",{"name":"#);
                    write_str(out, name);
                    out.extend_from_slice(
                        br#","type":"string","format":"quantity","description":"","priority":0}"#,
                    );
                }
                out.extend_from_slice(br#",{"name":"Window","type":"string","format":"duration","description":"","priority":0}],"rows":["#);
                self.columns = Some(totals.iter().map(|(n, _)| n.clone()).collect());
            }
            Some(_) => out.push(b','),
        }
        out.extend_from_slice(br#"{"cells":["#);
        write_str(out, item.name());
        for column in self.columns.iter().flatten() {
            out.push(b',');
            match totals.iter().find(|(n, _)| n == column) {
                Some((_, q)) => enc.quantity(out, q),
                // A later row without this resource: upstream leaves a zero-value cell.
                None => out.extend_from_slice(b"\"0\""),
            }
        }
        out.push(b',');
        enc.duration(out, item.window());
        out.extend_from_slice(br#"],"object":"#);
        match self.include {
            IncludeObject::None => out.extend_from_slice(b"null"),
            IncludeObject::Metadata => enc.partial_metadata(out, item, self.version, self.now),
            IncludeObject::Object => enc.object_json(out, item, self.now, true),
        }
        out.push(b'}');
    }

    fn finish(self, out: &mut Vec<u8>) {
        match self.columns {
            Some(_) => out.extend_from_slice(b"]}"),
            None => {
                out.extend_from_slice(br#"{"kind":"Table","apiVersion":""#);
                out.extend_from_slice(self.version.api_version().as_bytes());
                out.extend_from_slice(br#"","metadata":{},"columnDefinitions":null,"rows":null}"#);
            }
        }
    }
}
