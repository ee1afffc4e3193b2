//! YAML output: the JSON document re-emitted as YAML with keys sorted, as upstream's
//! JSON-to-YAML round trip does. Only scalars, maps and sequences occur in our objects.

use serde_json::Value;

/// Converts a JSON document to YAML; `None` if the bytes are not JSON.
pub fn from_json(json: &[u8]) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(json).ok()?;
    let mut out = String::new();
    write_value(&mut out, &value, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Some(out.into_bytes())
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => return None,
    })
}

/// Plain when unambiguous, else single-quoted (YAML's simplest safe quoting).
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !s.starts_with(['-', '.'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn write_value(out: &mut String, v: &Value, indent: usize, in_sequence: bool) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (i, (k, val)) in map.iter().enumerate() {
                // The first key of a mapping inside a sequence shares the `- ` line.
                if !(in_sequence && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&quote(k));
                out.push(':');
                match scalar(val) {
                    Some(s) => {
                        out.push(' ');
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        let nested = if matches!(val, Value::Array(_)) {
                            indent
                        } else {
                            indent + 2
                        };
                        write_value(out, val, nested, false);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match scalar(item) {
                    Some(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => write_value(out, item, indent + 2, true),
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other).unwrap_or_default());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn objects_lists_and_quoting() {
        let yaml = super::from_json(br#"{"kind":"X","metadata":{},"items":[{"name":"a","usage":{"cpu":"1","memory":"5Mi"}}],"n":"true"}"#).expect("json");
        let want = "items:\n- name: a\n  usage:\n    cpu: '1'\n    memory: 5Mi\nkind: X\nmetadata: {}\n'n': 'true'\n";
        assert_eq!(String::from_utf8(yaml).expect("utf-8"), want);
    }
}
