//! Output media-type negotiation, as the generic Kubernetes API server does it.
//!
//! Producible types are JSON, YAML and Kubernetes protobuf. Media-type parameters
//! `as`/`g`/`v` ask for a server-side conversion (Table, PartialObjectMetadata[List]);
//! `pretty=1` asks for indentation. `*/*` and `application/*` mean JSON.

/// The wire format of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Protobuf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Yaml => "application/yaml",
            Format::Protobuf => PROTOBUF,
        }
    }
}

pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// `meta.k8s.io` version of a conversion target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVersion {
    V1,
    V1beta1,
}

impl MetaVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            MetaVersion::V1 => "meta.k8s.io/v1",
            MetaVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// A server-side conversion requested through `as`/`g`/`v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    None,
    Table(MetaVersion),
    PartialObjectMetadata(MetaVersion),
    PartialObjectMetadataList(MetaVersion),
}

/// The outcome of negotiation for a resource endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub format: Format,
    pub conversion: Conversion,
    /// The chosen media type carried `pretty=1`.
    pub pretty: bool,
}

/// Why no representation fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAcceptable {
    /// No media type in Accept (parameters stripped) is producible at all: the router
    /// answers `406: Not Acceptable`.
    Route,
    /// Types match but none with acceptable parameters: the serializer's 406.
    Serializer,
}

/// One clause of an Accept header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange<'a> {
    pub kind: &'a str,
    pub subtype: &'a str,
    pub params: Vec<(&'a str, &'a str)>,
    pub quality: f32,
}

impl<'a> MediaRange<'a> {
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Parses an Accept header into clauses ordered by quality (stable for equal quality);
/// clauses with `q=0` or unparsable syntax are dropped. An absent or blank header is
/// `*/*`.
pub fn parse_accept(accept: Option<&str>) -> Vec<MediaRange<'_>> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut ranges: Vec<MediaRange<'_>> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let (kind, subtype) = parts.next()?.trim().split_once('/')?;
            let (kind, subtype) = (kind.trim(), subtype.trim());
            if kind.is_empty() || subtype.is_empty() {
                return None;
            }
            let mut quality = 1.0f32;
            let mut params = Vec::new();
            for p in parts {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    quality = v.parse().ok().filter(|q: &f32| (0.0..=1.0).contains(q))?;
                } else if !k.is_empty() {
                    params.push((k, v));
                }
            }
            (quality > 0.0).then_some(MediaRange {
                kind,
                subtype,
                params,
                quality,
            })
        })
        .collect();
    ranges.sort_by(|a, b| b.quality.total_cmp(&a.quality));
    ranges
}

fn format_of(range: &MediaRange<'_>) -> Option<Format> {
    match (
        range.kind.to_ascii_lowercase().as_str(),
        range.subtype.to_ascii_lowercase().as_str(),
    ) {
        ("*", "*") | ("application", "*") | ("application", "json") => Some(Format::Json),
        ("application", "yaml") => Some(Format::Yaml),
        ("application", "vnd.kubernetes.protobuf") => Some(Format::Protobuf),
        _ => None,
    }
}

fn conversion_of(range: &MediaRange<'_>, format: Format, is_list: bool) -> Option<Conversion> {
    let (as_, group, version) = (range.param("as"), range.param("g"), range.param("v"));
    let Some(kind) = as_ else {
        // `g`/`v` without `as` name no conversion; upstream treats them as unknown.
        return Some(Conversion::None);
    };
    if group != Some("meta.k8s.io") {
        return None;
    }
    let version = match version {
        Some("v1") => MetaVersion::V1,
        Some("v1beta1") => MetaVersion::V1beta1,
        _ => return None,
    };
    match kind {
        // Tables exist only in JSON and YAML.
        "Table" if format != Format::Protobuf => Some(Conversion::Table(version)),
        // Served in JSON and YAML only here (upstream also has protobuf forms no client asks for).
        "PartialObjectMetadata" if !is_list && format != Format::Protobuf => {
            Some(Conversion::PartialObjectMetadata(version))
        }
        "PartialObjectMetadataList" if is_list && format != Format::Protobuf => {
            Some(Conversion::PartialObjectMetadataList(version))
        }
        _ => None,
    }
}

/// Chooses the representation of a resource response from the Accept header.
pub fn negotiate(accept: Option<&str>, is_list: bool) -> Result<Negotiated, NotAcceptable> {
    let ranges = parse_accept(accept);
    if !ranges.iter().any(|r| format_of(r).is_some()) {
        return Err(NotAcceptable::Route);
    }
    for range in &ranges {
        let Some(format) = format_of(range) else {
            continue;
        };
        if let Some(conversion) = conversion_of(range, format, is_list) {
            let pretty = range.param("pretty") == Some("1");
            return Ok(Negotiated {
                format,
                conversion,
                pretty,
            });
        }
    }
    Err(NotAcceptable::Serializer)
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether to indent JSON: `pretty=<bool>` in the query decides; without it, curl,
/// Wget and browsers get indentation, as upstream does for humans.
pub fn wants_pretty(
    pretty_query: Option<&str>,
    user_agent: Option<&str>,
    media_pretty: bool,
) -> bool {
    match pretty_query.filter(|v| !v.is_empty()) {
        Some(v) => parse_go_bool(v).unwrap_or(false),
        None => {
            media_pretty
                || user_agent.is_some_and(|ua| {
                    ua.starts_with("curl")
                        || ua.starts_with("Wget")
                        || ua.starts_with("Mozilla/5.0")
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_and_hpa_accept_headers() {
        let top =
            negotiate(Some("application/vnd.kubernetes.protobuf, */*"), true).expect("acceptable");
        assert_eq!(
            (top.format, top.conversion),
            (Format::Protobuf, Conversion::None)
        );
        let get = negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"), true).expect("acceptable");
        assert_eq!(get.conversion, Conversion::Table(MetaVersion::V1));
        assert_eq!(negotiate(None, false).map(|n| n.format), Ok(Format::Json));
        assert_eq!(
            negotiate(Some(""), false).map(|n| n.format),
            Ok(Format::Json)
        );
    }

    #[test]
    fn not_acceptable_kinds() {
        assert_eq!(
            negotiate(Some("text/html"), true),
            Err(NotAcceptable::Route)
        );
        // Metrics-API case 51: a protobuf Table is not producible.
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"),
                true
            ),
            Err(NotAcceptable::Serializer)
        );
        assert_eq!(
            negotiate(
                Some("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"),
                true
            ),
            Err(NotAcceptable::Serializer)
        );
        assert_eq!(
            negotiate(
                Some("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
                false
            ),
            Err(NotAcceptable::Serializer)
        );
        assert_eq!(
            negotiate(Some("application/json;as=Table;v=v2;g=meta.k8s.io"), true),
            Err(NotAcceptable::Serializer)
        );
    }

    #[test]
    fn quality_orders_and_zero_excludes() {
        let n =
            negotiate(Some("application/json;q=0.5, application/yaml"), false).expect("acceptable");
        assert_eq!(n.format, Format::Yaml);
        let n =
            negotiate(Some("application/yaml;q=0, application/json"), false).expect("acceptable");
        assert_eq!(n.format, Format::Json);
        assert_eq!(
            negotiate(Some("application/json;q=0"), false),
            Err(NotAcceptable::Route)
        );
    }

    #[test]
    fn pretty_rules() {
        assert!(wants_pretty(None, Some("curl/8.0"), false));
        assert!(!wants_pretty(Some("false"), Some("curl/8.0"), false));
        assert!(wants_pretty(Some("1"), None, false));
        assert!(!wants_pretty(Some("bogus"), None, false));
        assert!(wants_pretty(None, None, true));
        assert!(!wants_pretty(Some(""), Some("kubectl/v1.32"), false));
    }
}
