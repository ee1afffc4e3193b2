//! Label and field selectors: `LabelSelector::parse`, `FieldSelector::parse` and
//! `FieldSelector::parse_unchecked` on UTF-8 input, with parse → print → parse stability.
//!
//! - Label selectors: the printed form must parse again, print the same text (it is
//!   upstream's canonical `String()`), and match exactly the same label sets.
//! - Field selectors: the printed form must parse again to the same requirements; since
//!   `==` prints as `=`, the text may re-sort once, after which it is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_core::api::selector::{FieldRequirement, FieldSelector, LabelSelector, SelectorError};

fn label_sets(sel: &LabelSelector) -> Vec<Vec<(String, String)>> {
    // Label sets built from the selector's own keys and values (and a few others), so
    // that matching is exercised on both outcomes.
    let mut sets = vec![Vec::new()];
    let mut all = Vec::new();
    for r in sel.requirements() {
        let key = r.key().to_owned();
        let value = r.values().first().cloned().unwrap_or_default();
        sets.push(vec![(key.clone(), value.clone())]);
        sets.push(vec![(key.clone(), "1".to_owned())]);
        all.push((key, value));
    }
    all.sort();
    all.dedup_by(|a, b| a.0 == b.0);
    sets.push(all);
    sets
}

fn check_labels(input: &str) {
    let Ok(sel) = LabelSelector::parse(input) else {
        return;
    };
    let printed = sel.to_string();
    let again = LabelSelector::parse(&printed).unwrap_or_else(|e| {
        panic!("printed label selector {printed:?} (from {input:?}) does not parse: {e}")
    });
    assert_eq!(
        again.to_string(),
        printed,
        "label selector print is not a fixed point (input {input:?})"
    );
    for labels in label_sets(&sel) {
        assert_eq!(
            sel.matches(&labels),
            again.matches(&labels),
            "{input:?} and its printed form {printed:?} disagree on {labels:?}"
        );
    }
    // AND with itself denotes the same set.
    let both = sel.and(&again);
    for labels in label_sets(&sel) {
        assert_eq!(sel.matches(&labels), both.matches(&labels));
    }
}

fn sorted(sel: &FieldSelector) -> Vec<FieldRequirement> {
    let mut r = sel.requirements().to_vec();
    r.sort();
    r
}

fn check_fields(input: &str, parse: fn(&str) -> Result<FieldSelector, SelectorError>) {
    let Ok(sel) = parse(input) else {
        return;
    };
    let printed = sel.to_string();
    let again = parse(&printed).unwrap_or_else(|e| {
        panic!("printed field selector {printed:?} (from {input:?}) does not parse: {e}")
    });
    assert_eq!(
        sorted(&sel),
        sorted(&again),
        "field selector {input:?} and its printed form {printed:?} differ"
    );
    let printed2 = again.to_string();
    let third = parse(&printed2).unwrap_or_else(|e| {
        panic!("reprinted field selector {printed2:?} (from {input:?}) does not parse: {e}")
    });
    assert_eq!(
        third.to_string(),
        printed2,
        "field selector print is not a fixed point"
    );
    for r in sel.requirements() {
        let v = r.value();
        assert_eq!(sel.matches(v, v), again.matches(v, v));
        assert_eq!(sel.matches(v, ""), again.matches(v, ""));
    }
    let _ = sel.requires_exact_match("metadata.name");
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    check_labels(input);
    check_fields(input, FieldSelector::parse);
    check_fields(input, FieldSelector::parse_unchecked);
});
