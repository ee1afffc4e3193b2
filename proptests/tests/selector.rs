//! Label and field selectors: generated valid selectors parse and print in upstream's
//! canonical form, printing round-trips, matching agrees with a naive reference model, and
//! no input makes either parser panic.

use metrics_core::api::selector::{FieldOperator, FieldSelector, LabelSelector};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------------------------------
// Label selector model
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Eq(String),
    DoubleEq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(String),
    Lt(String),
}

#[derive(Debug, Clone)]
struct Req {
    key: String,
    op: Op,
}

/// Whitespace pieces: optional (`ws`) and mandatory (`ws1`) separators.
fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\t", "  ", "\n", "\r\n "])
}

fn ws1() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "\t", "  ", "\n", " \r\n"])
}

fn label_name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?",
        1 => "[A-Za-z0-9]{63}",
        1 => prop::sample::select(vec!["in".to_owned(), "notin".to_owned()]),
    ]
    .boxed()
}

fn any_key() -> BoxedStrategy<String> {
    let prefix = "[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?){0,2}";
    prop_oneof![
        3 => label_name(),
        1 => (prefix, label_name()).prop_map(|(p, n)| format!("{p}/{n}")),
    ]
    .boxed()
}

fn any_value() -> BoxedStrategy<String> {
    prop_oneof![
        1 => Just(String::new()),
        5 => "[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?",
        1 => "[A-Za-z0-9]{63}",
        1 => prop::sample::select(vec!["in".to_owned(), "notin".to_owned()]),
    ]
    .boxed()
}

fn any_int() -> BoxedStrategy<String> {
    prop_oneof![
        (0i64..1000).prop_map(|i| i.to_string()),
        "[0-9]{1,18}",
        "0[0-9]{1,3}",
    ]
    .boxed()
}

/// Small pools so that selectors and label sets actually meet.
fn pool_key() -> BoxedStrategy<String> {
    prop::sample::select(vec!["a", "b", "in", "x.io/c", "d"])
        .prop_map(str::to_owned)
        .boxed()
}

fn pool_value() -> BoxedStrategy<String> {
    prop::sample::select(vec!["", "v", "w", "in", "1", "5", "10", "007", "x"])
        .prop_map(str::to_owned)
        .boxed()
}

fn pool_int() -> BoxedStrategy<String> {
    prop::sample::select(vec!["0", "1", "5", "10", "007"])
        .prop_map(str::to_owned)
        .boxed()
}

fn req(
    key: BoxedStrategy<String>,
    value: BoxedStrategy<String>,
    int: BoxedStrategy<String>,
) -> impl Strategy<Value = Req> {
    let values = prop::collection::vec(value.clone(), 1..5);
    let op = prop_oneof![
        value.clone().prop_map(Op::Eq),
        value.clone().prop_map(Op::DoubleEq),
        value.prop_map(Op::NotEq),
        values.clone().prop_map(Op::In),
        values.prop_map(Op::NotIn),
        Just(Op::Exists),
        Just(Op::NotExists),
        int.clone().prop_map(Op::Gt),
        int.prop_map(Op::Lt),
    ];
    (key, op).prop_map(|(key, op)| Req { key, op })
}

/// A requirement with arbitrary legal whitespace (8 pieces, some of them mandatory).
fn render_req(r: &Req, w: &[&str], w1: &str) -> String {
    let k = &r.key;
    match &r.op {
        Op::Eq(v) => format!("{k}{}={}{v}", w[0], w[1]),
        Op::DoubleEq(v) => format!("{k}{}=={}{v}", w[0], w[1]),
        Op::NotEq(v) => format!("{k}{}!={}{v}", w[0], w[1]),
        Op::In(vs) | Op::NotIn(vs) => {
            let kw = if matches!(r.op, Op::In(_)) {
                "in"
            } else {
                "notin"
            };
            let sep = format!("{},{}", w[3], w[4]);
            format!("{k}{w1}{kw}{}({}{}{})", w[0], w[1], vs.join(&sep), w[2])
        }
        Op::Exists => k.clone(),
        Op::NotExists => format!("!{}{k}", w[0]),
        Op::Gt(v) => format!("{k}{}>{}{v}", w[0], w[1]),
        Op::Lt(v) => format!("{k}{}<{}{v}", w[0], w[1]),
    }
}

/// Upstream's `String()` of the model: stable by key, sets sorted without duplicates.
fn canonical(reqs: &[Req]) -> String {
    let mut sorted: Vec<&Req> = reqs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let parts: Vec<String> = sorted
        .iter()
        .map(|r| {
            let k = &r.key;
            match &r.op {
                Op::Eq(v) => format!("{k}={v}"),
                Op::DoubleEq(v) => format!("{k}=={v}"),
                Op::NotEq(v) => format!("{k}!={v}"),
                Op::In(vs) | Op::NotIn(vs) => {
                    let mut vs = vs.clone();
                    vs.sort();
                    vs.dedup();
                    let kw = if matches!(r.op, Op::In(_)) {
                        "in"
                    } else {
                        "notin"
                    };
                    format!("{k} {kw} ({})", vs.join(","))
                }
                Op::Exists => k.clone(),
                Op::NotExists => format!("!{k}"),
                Op::Gt(v) => format!("{k}>{v}"),
                Op::Lt(v) => format!("{k}<{v}"),
            }
        })
        .collect();
    parts.join(",")
}

/// The reference semantics, written from the definition with a linear label scan.
fn reference_matches(reqs: &[Req], labels: &[(String, String)]) -> bool {
    reqs.iter().all(|r| {
        let found = labels
            .iter()
            .find(|(k, _)| *k == r.key)
            .map(|(_, v)| v.as_str());
        let int = |s: &str| s.parse::<i64>().ok();
        match &r.op {
            Op::Eq(v) | Op::DoubleEq(v) => found == Some(v.as_str()),
            Op::NotEq(v) => found != Some(v.as_str()),
            Op::In(vs) => found.is_some_and(|f| vs.iter().any(|v| v == f)),
            Op::NotIn(vs) => !found.is_some_and(|f| vs.iter().any(|v| v == f)),
            Op::Exists => found.is_some(),
            Op::NotExists => found.is_none(),
            Op::Gt(v) => matches!((found.and_then(int), int(v)), (Some(a), Some(b)) if a > b),
            Op::Lt(v) => matches!((found.and_then(int), int(v)), (Some(a), Some(b)) if a < b),
        }
    })
}

fn selector(
    key: BoxedStrategy<String>,
    value: BoxedStrategy<String>,
    int: BoxedStrategy<String>,
) -> impl Strategy<Value = (Vec<Req>, String)> {
    prop::collection::vec(
        (req(key, value, int), prop::collection::vec(ws(), 8), ws1()),
        0..6,
    )
    .prop_map(|items| {
        let text: Vec<String> = items
            .iter()
            .map(|(r, w, w1)| format!("{}{}{}", w[6], render_req(r, w, w1), w[7]))
            .collect();
        let reqs = items.into_iter().map(|(r, _, _)| r).collect();
        (reqs, text.join(","))
    })
}

fn label_set() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(pool_key(), pool_value(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

/// Text built from the label selector's own tokens and near-misses, so that arbitrary
/// inputs reach every parser state.
fn label_soup() -> impl Strategy<Value = String> {
    // Identifiers and separators repeat so that a fair share of the soup is accepted.
    let pieces = vec![
        "a", "a", "a", "b", "b", "in", "notin", "=", "=", "==", "!=", "!", "(", ")", ",", ",", ">",
        "<", " ", " ", "\t", "\0", "5", "5", "-1", "x.io/", "/", "_", ".", "é", "",
    ];
    prop::collection::vec(prop::sample::select(pieces), 0..24).prop_map(|p| p.concat())
}

fn assert_label_round_trip(sel: &LabelSelector) -> Result<(), TestCaseError> {
    let printed = sel.to_string();
    let again = LabelSelector::parse(&printed)
        .map_err(|e| TestCaseError::fail(format!("{printed:?} does not parse: {e}")))?;
    prop_assert_eq!(&again, sel, "{:?}", printed);
    prop_assert_eq!(again.to_string(), printed);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Field selector model
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Term {
    field: &'static str,
    op: &'static str,
    value: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

fn term() -> impl Strategy<Value = Term> {
    (
        prop::sample::select(vec!["metadata.name", "metadata.namespace"]),
        prop::sample::select(vec!["=", "==", "!="]),
        prop_oneof![
            prop::sample::select(vec!["", "a", "b", "a=b", "a,b", "\\"]).prop_map(str::to_owned),
            "[a-z0-9.=,\\\\ -]{0,6}",
        ],
    )
        .prop_map(|(field, op, value)| Term { field, op, value })
}

fn field_soup() -> impl Strategy<Value = String> {
    let pieces = vec![
        "metadata.name",
        "metadata.name",
        "metadata.namespace",
        "spec.x",
        "=",
        "=",
        "==",
        "!=",
        "!",
        ",",
        "\\",
        "a",
        "a",
        " ",
        "é",
        "",
    ];
    prop::collection::vec(prop::sample::select(pieces), 0..16).prop_map(|p| p.concat())
}

fn sorted_requirements(sel: &FieldSelector) -> Vec<(String, FieldOperator, String)> {
    let mut reqs: Vec<_> = sel
        .requirements()
        .iter()
        .map(|r| (r.field().to_owned(), r.operator(), r.value().to_owned()))
        .collect();
    reqs.sort();
    reqs
}

/// Printing keeps the requirements; the printed form is a fixed point once reparsed.
fn assert_field_round_trip(
    sel: &FieldSelector,
    parse: fn(&str) -> Result<FieldSelector, metrics_core::api::selector::SelectorError>,
) -> Result<(), TestCaseError> {
    let printed = sel.to_string();
    let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
    prop_assert_eq!(sorted_requirements(&again), sorted_requirements(sel));
    let reprinted = again.to_string();
    let third =
        parse(&reprinted).map_err(|e| TestCaseError::fail(format!("{reprinted:?}: {e}")))?;
    prop_assert_eq!(&third, &again);
    prop_assert_eq!(third.to_string(), reprinted);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn generated_label_selectors_parse_and_print_canonically(
        (reqs, text) in selector(any_key(), any_value(), any_int())
    ) {
        let sel = LabelSelector::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(sel.requirements().len(), reqs.len());
        prop_assert_eq!(sel.to_string(), canonical(&reqs), "{:?}", text);
        assert_label_round_trip(&sel)?;
    }

    #[test]
    fn label_matching_agrees_with_reference(
        (reqs, text) in selector(pool_key(), pool_value(), pool_int()),
        labels in label_set(),
    ) {
        let sel = LabelSelector::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        let expected = reference_matches(&reqs, &labels);
        prop_assert_eq!(sel.matches(&labels), expected, "{:?} on {:?}", text, labels);
        let btree: BTreeMap<String, String> = labels.iter().cloned().collect();
        let hash: HashMap<String, String> = labels.iter().cloned().collect();
        prop_assert_eq!(sel.matches(&btree), expected);
        prop_assert_eq!(sel.matches(&hash), expected);
    }

    #[test]
    fn arbitrary_label_input_never_panics_and_accepted_input_round_trips(
        text in prop_oneof![any::<String>(), label_soup()]
    ) {
        match LabelSelector::parse(&text) {
            Ok(sel) => assert_label_round_trip(&sel)?,
            Err(e) => prop_assert!(!e.message().is_empty()),
        }
    }

    #[test]
    fn generated_field_selectors_parse_match_and_print(
        terms in prop::collection::vec(term(), 0..5),
        name in prop::sample::select(vec!["", "a", "b", "a=b", "a,b", "\\"]),
        namespace in prop::sample::select(vec!["", "a", "b", "a=b", "a,b", "\\"]),
    ) {
        let raw: Vec<String> = terms
            .iter()
            .map(|t| format!("{}{}{}", t.field, t.op, escape(&t.value)))
            .collect();
        let text = raw.join(",");
        let sel = FieldSelector::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;

        // Upstream's order is that of the written terms; `==` prints as `=`.
        let mut order: Vec<(&String, &Term)> = raw.iter().zip(&terms).collect();
        order.sort_by(|a, b| a.0.cmp(b.0));
        let expected: Vec<String> = order
            .iter()
            .map(|(_, t)| {
                let op = if t.op == "!=" { "!=" } else { "=" };
                format!("{}{op}{}", t.field, escape(&t.value))
            })
            .collect();
        prop_assert_eq!(sel.to_string(), expected.join(","));

        let reference = terms.iter().all(|t| {
            let actual = if t.field == "metadata.name" { name } else { namespace };
            (actual == t.value) == (t.op != "!=")
        });
        prop_assert_eq!(sel.matches(name, namespace), reference);
        assert_field_round_trip(&sel, FieldSelector::parse)?;
    }

    #[test]
    fn arbitrary_field_input_never_panics_and_accepted_input_round_trips(
        text in prop_oneof![any::<String>(), field_soup()]
    ) {
        if let Ok(sel) = FieldSelector::parse_unchecked(&text) {
            assert_field_round_trip(&sel, FieldSelector::parse_unchecked)?;
        }
        if let Ok(sel) = FieldSelector::parse(&text) {
            assert_field_round_trip(&sel, FieldSelector::parse)?;
        }
    }
}
