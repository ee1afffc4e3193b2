//! Kubernetes label and field selectors.
//!
//! Both parsers reproduce k8s.io/apimachinery v0.36 (`labels.Parse`, `fields.ParseSelector`
//! plus the metrics API's field-label conversion): same accepted language, same matching,
//! same canonical text, and the same error text byte for byte, because that text becomes
//! the `message` of the 400 `Status` (spec 4.3, 4.5, cases 35–37).
//!
//! Both parsers are single-pass and linear apart from one sort of the requirements (label
//! selectors by key, field selectors by term text, as upstream), and never panic.

use crate::goquote::go_quote;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hash};
use std::str::FromStr;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Which stage rejected a selector. Every kind is a 400 `BadRequest` on the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelectorErrorKind {
    /// Label selector grammar outside a requirement (`found '', expected: identifier after ','`).
    LabelSyntax,
    /// A label requirement failed to parse or validate (`unable to parse requirement: ...`).
    LabelRequirement,
    /// Field selector grammar or escaping (`invalid selector: ...`, `invalid field selector: ...`).
    FieldSyntax,
    /// A syntactically valid field selector names a field other than `metadata.name` or
    /// `metadata.namespace`.
    UnknownField,
}

/// A rejected selector. `Display` is upstream's error text, i.e. the `Status` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    kind: SelectorErrorKind,
    message: String,
}

impl SelectorError {
    fn new(kind: SelectorErrorKind, message: String) -> SelectorError {
        SelectorError { kind, message }
    }

    /// The stage that rejected the selector.
    pub fn kind(&self) -> SelectorErrorKind {
        self.kind
    }

    /// Upstream's error text (the same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SelectorError {}

// ---------------------------------------------------------------------------------------
// Label lookup
// ---------------------------------------------------------------------------------------

/// Read access to an object's labels, by exact key.
///
/// Implemented for maps (`BTreeMap`, `HashMap`) and for slices, `Vec`s and arrays of
/// `(key, value)` pairs. Slices are searched by binary search, so they MUST be sorted by
/// key (byte order, as `String`'s `Ord`) with unique keys — the shape of a Kubernetes label
/// map kept as a sorted `Vec`.
pub trait Labels {
    /// The value of label `key`, if the object has that label.
    fn lookup(&self, key: &str) -> Option<&str>;
}

impl<L: Labels + ?Sized> Labels for &L {
    fn lookup(&self, key: &str) -> Option<&str> {
        (**self).lookup(key)
    }
}

impl<K: Borrow<str> + Ord, V: AsRef<str>> Labels for BTreeMap<K, V> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).map(AsRef::as_ref)
    }
}

impl<K: Borrow<str> + Hash + Eq, V: AsRef<str>, S: BuildHasher> Labels for HashMap<K, V, S> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).map(AsRef::as_ref)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .and_then(|i| self.get(i))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for Vec<(K, V)> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.as_slice().lookup(key)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Labels for [(K, V); N] {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.as_slice().lookup(key)
    }
}

// ---------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------

/// A label requirement operator (upstream `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `k=v`
    Equals,
    /// `k==v` (same meaning as `=`, but printed back as `==`)
    DoubleEquals,
    /// `k!=v`: also matches objects without the label.
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)`: also matches objects without the label.
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>5`: the label must exist and be a decimal integer greater than the value.
    GreaterThan,
    /// `k<5`: the label must exist and be a decimal integer less than the value.
    LessThan,
}

impl Operator {
    /// Upstream's operator string: `=`, `==`, `!=`, `in`, `notin`, `exists`, `!`, `gt`, `lt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One validated `key op values` term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and deduplicated, as upstream's `sets.String` leaves them: empty for
    /// `Exists`/`DoesNotExist`, exactly one for `=`, `==`, `!=`, `>`, `<`, at least one
    /// for `in`/`notin`.
    values: Vec<String>,
}

impl Requirement {
    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and without duplicates (the empty string is a valid value).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether an object with `labels` satisfies this requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.lookup(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                // A label that is not an integer matches neither, as upstream.
                let (Some(label), Some(bound)) = (
                    value.and_then(parse_go_int),
                    self.values.first().and_then(|v| parse_go_int(v)),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    label > bound
                } else {
                    label < bound
                }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values
            .binary_search_by(|v| v.as_str().cmp(value))
            .is_ok()
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::Exists => return f.write_str(&self.key),
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            other => other.as_str(),
        };
        f.write_str(&self.key)?;
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_char('(')?;
        }
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            f.write_str(value)?;
        }
        if set {
            f.write_char(')')?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, sorted by key.
///
/// The default (and the parse of `""`) is the empty selector, which matches everything.
/// `Display` is upstream's `Selector.String()`: requirements by key joined with `,`,
/// `in`/`notin` values sorted, `=` and `==` kept as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the full Kubernetes label selector syntax (`labels.Parse`).
    pub fn parse(selector: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Parser::new(selector).parse()?;
        // Upstream sorts by key only; a stable sort keeps requirements of the same key in
        // written order (Go's sort does too up to 12 requirements, the insertion-sort cutoff).
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// The selector that matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// Whether the selector has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether an object with `labels` satisfies every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The AND of both selectors (upstream `Selector.Add`, used to apply `--node-selector`
    /// on top of a request's selector).
    pub fn and(&self, other: &LabelSelector) -> LabelSelector {
        let mut requirements =
            Vec::with_capacity(self.requirements.len() + other.requirements.len());
        requirements.extend_from_slice(&self.requirements);
        requirements.extend_from_slice(&other.requirements);
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            fmt::Display::fmt(r, f)?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<LabelSelector, SelectorError> {
        LabelSelector::parse(s)
    }
}

/// A label selector token. `In`/`NotIn` are keywords only where an operator is expected;
/// everywhere else they are identifiers (`in in (in)` is valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    End,
    Ident(&'a str),
    In,
    NotIn,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Greater,
    Less,
    OpenParen,
    CloseParen,
    Comma,
}

impl<'a> Token<'a> {
    /// The text upstream quotes in `found '...'` messages (empty at the end).
    fn literal(self) -> &'a str {
        match self {
            Token::End => "",
            Token::Ident(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Not => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::Greater => ">",
            Token::Less => "<",
            Token::OpenParen => "(",
            Token::CloseParen => ")",
            Token::Comma => ",",
        }
    }

    /// The token where keys and values are expected: keywords read as identifiers.
    fn as_value(self) -> Token<'a> {
        match self {
            Token::In => Token::Ident("in"),
            Token::NotIn => Token::Ident("notin"),
            other => other,
        }
    }
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's byte lexer, including its treatment of NUL: a NUL right after a token is
/// skipped, a NUL where a token would start ends the input.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn next_token(&mut self) -> Token<'a> {
        let bytes = self.s.as_bytes();
        while bytes.get(self.pos).copied().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        let Some(&first) = bytes.get(self.pos).filter(|&&b| b != 0) else {
            self.pos = bytes.len();
            return Token::End;
        };
        let token = if is_special(first) {
            self.pos += 1;
            // Longest match: `==` and `!=` are the only two-byte tokens.
            let second = bytes.get(self.pos).copied();
            match (first, second) {
                (b'=', Some(b'=')) => {
                    self.pos += 1;
                    Token::DoubleEquals
                }
                (b'!', Some(b'=')) => {
                    self.pos += 1;
                    Token::NotEquals
                }
                (b'=', _) => Token::Equals,
                (b'!', _) => Token::Not,
                (b'(', _) => Token::OpenParen,
                (b')', _) => Token::CloseParen,
                (b',', _) => Token::Comma,
                (b'>', _) => Token::Greater,
                _ => Token::Less,
            }
        } else {
            let start = self.pos;
            while bytes
                .get(self.pos)
                .is_some_and(|&b| b != 0 && !is_special(b) && !is_whitespace(b))
            {
                self.pos += 1;
            }
            // Both ends sit next to ASCII bytes (or the ends of the string): char boundaries.
            match &self.s[start..self.pos] {
                "in" => Token::In,
                "notin" => Token::NotIn,
                ident => Token::Ident(ident),
            }
        };
        if bytes.get(self.pos) == Some(&0) {
            self.pos += 1;
        }
        token
    }
}

/// Recursive-descent parser over a one-token lookahead; the grammar, the order of checks
/// and every message follow upstream's `labels.Parser`.
struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Parser<'a> {
        Parser {
            lexer: Lexer { s, pos: 0 },
            peeked: None,
        }
    }

    fn peek(&mut self) -> Token<'a> {
        match self.peeked {
            Some(t) => t,
            None => {
                let t = self.lexer.next_token();
                self.peeked = Some(t);
                t
            }
        }
    }

    fn next(&mut self) -> Token<'a> {
        match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token(),
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let syntax = |message| Err(SelectorError::new(SelectorErrorKind::LabelSyntax, message));
        let mut requirements = Vec::new();
        loop {
            match self.peek().as_value() {
                Token::Ident(_) | Token::Not => {
                    let r = self.parse_requirement().map_err(|e| {
                        SelectorError::new(
                            SelectorErrorKind::LabelRequirement,
                            format!("unable to parse requirement: {e}"),
                        )
                    })?;
                    requirements.push(r);
                    match self.next().as_value() {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let t = self.peek().as_value();
                            if !matches!(t, Token::Ident(_) | Token::Not) {
                                return syntax(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        }
                        t => {
                            return syntax(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                t => {
                    return syntax(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    /// Errors are returned unwrapped; `parse` adds `unable to parse requirement: `.
    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let mut token = self.next().as_value();
        let negated = token == Token::Not;
        if negated {
            token = self.next().as_value();
        }
        let Token::Ident(key) = token else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        let key_errors = label_key_errors(key);
        if !key_errors.is_empty() {
            // Upstream validates the key here with a nil field path, printed `<nil>`.
            return Err(invalid_value("<nil>", key, &key_errors.join("; ")));
        }
        if negated {
            // `!k=v` yields `!k` and leaves `=` to the caller, which rejects it.
            return new_requirement(key, Operator::DoesNotExist, Vec::new());
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            return new_requirement(key, Operator::Exists, Vec::new());
        }
        let operator = match self.next() {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::Greater => Operator::GreaterThan,
            Token::Less => Operator::LessThan,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ));
            }
        };
        let values = if matches!(operator, Operator::In | Operator::NotIn) {
            self.parse_value_set()?
        } else {
            vec![self.parse_exact_value()?]
        };
        new_requirement(key, operator, values)
    }

    /// `( [value] {, [value]} )`; empty positions are the empty value.
    fn parse_value_set(&mut self) -> Result<Vec<String>, String> {
        let open = self.next().as_value();
        if open != Token::OpenParen {
            // Upstream's text really lacks the comma here.
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        let mut values = Vec::new();
        match self.peek().as_value() {
            Token::CloseParen => {
                self.next();
                values.push(String::new());
                return Ok(values);
            }
            Token::Ident(_) | Token::Comma => {}
            t => {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    t.literal()
                ));
            }
        }
        loop {
            match self.next().as_value() {
                Token::Ident(v) => {
                    values.push(v.to_owned());
                    match self.peek().as_value() {
                        Token::Comma => {}
                        Token::CloseParen => {
                            self.next();
                            return Ok(values);
                        }
                        t => {
                            return Err(format!("found '{}', expected: ',' or ')'", t.literal()));
                        }
                    }
                }
                Token::Comma => {
                    // A comma with nothing before it, before `)` or before another comma
                    // stands for the empty value.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek().as_value() {
                        Token::CloseParen => {
                            self.next();
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => values.push(String::new()),
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<String, String> {
        match self.peek().as_value() {
            Token::End | Token::Comma => Ok(String::new()),
            _ => match self.next().as_value() {
                Token::Ident(v) => Ok(v.to_owned()),
                t => Err(format!("found '{}', expected: identifier", t.literal())),
            },
        }
    }
}

/// Upstream's `NewRequirement` for parsed input: the key is already valid, the value count
/// is right by construction; values are checked and every error is reported.
fn new_requirement(
    key: &str,
    operator: Operator,
    mut values: Vec<String>,
) -> Result<Requirement, String> {
    values.sort_unstable();
    values.dedup();
    let mut errors: Vec<String> = Vec::new();
    if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
        for (i, v) in values.iter().enumerate() {
            if parse_go_int(v).is_none() {
                errors.push(invalid_value(
                    &format!("values[{i}]"),
                    v,
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let value_errors = label_value_errors(v);
        if !value_errors.is_empty() {
            errors.push(invalid_value(
                &format!("values[{i}][{key}]"),
                v,
                &value_errors.join("; "),
            ));
        }
    }
    // Upstream drops repeated messages; these cannot repeat (each names its own path).
    match errors.len() {
        0 => Ok(Requirement {
            key: key.to_owned(),
            operator,
            values,
        }),
        1 => Err(errors.swap_remove(0)),
        // An aggregate of several errors prints as `[e1, e2]`.
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, ASCII digits, no underscores, in range.
/// Rust's `i64::from_str` accepts exactly that language.
fn parse_go_int(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// A `field.Invalid` error printed by `field.Error.Error()`.
fn invalid_value(field: &str, value: &str, detail: &str) -> String {
    format!("{field}: Invalid value: {}: {detail}", go_quote(value))
}

const LABEL_KEY_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_KEY_SHAPE_MSG: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const LABEL_NAME_MAX_LEN: usize = 63;
const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn is_dns1123_subdomain(s: &str) -> bool {
    let lower_alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.split('.').all(|label| {
        let b = label.as_bytes();
        b.first().is_some_and(lower_alnum)
            && b.last().is_some_and(lower_alnum)
            && b.iter().all(|c| lower_alnum(c) || *c == b'-')
    })
}

/// `content.IsLabelKey`: the messages, in upstream's order, that reject `key`.
fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut parts = key.split('/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, _) => (None, name),
        (Some(prefix), Some(name), None) => (Some(prefix), name),
        _ => return vec![LABEL_KEY_SHAPE_MSG.to_owned()],
    };
    match prefix {
        Some("") => errors.push("prefix part must be non-empty".to_owned()),
        Some(prefix) => {
            if prefix.len() > DNS1123_SUBDOMAIN_MAX_LEN {
                errors.push(format!(
                    "prefix part must be no more than {DNS1123_SUBDOMAIN_MAX_LEN} bytes"
                ));
            }
            if !is_dns1123_subdomain(prefix) {
                errors.push(format!("prefix part {DNS1123_SUBDOMAIN_MSG}"));
            }
        }
        None => {}
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > LABEL_NAME_MAX_LEN {
        errors.push(format!(
            "name part must be no more than {LABEL_NAME_MAX_LEN} bytes"
        ));
    }
    if !is_label_name(name) {
        errors.push(format!("name part {LABEL_KEY_NAME_MSG}"));
    }
    errors
}

/// `content.IsLabelValue`: the messages, in upstream's order, that reject `value`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_NAME_MAX_LEN {
        errors.push(format!("must be no more than {LABEL_NAME_MAX_LEN} bytes"));
    }
    if !value.is_empty() && !is_label_name(value) {
        errors.push(LABEL_VALUE_MSG.to_owned());
    }
    errors
}

// ---------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------

/// The field names the metrics API accepts (`runtime.DefaultMetaV1FieldSelectorConversion`).
const KNOWN_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];

/// A field requirement operator. `==` parses as [`FieldOperator::Equals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One `field op value` term of a field selector; `value` is unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRequirement {
    field: String,
    operator: FieldOperator,
    value: String,
}

impl FieldRequirement {
    /// The field name (`metadata.name` or `metadata.namespace` after [`FieldSelector::parse`]).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The operator.
    pub fn operator(&self) -> FieldOperator {
        self.operator
    }

    /// The unescaped value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether an object named `name` in `namespace` satisfies this requirement (see
    /// [`FieldSelector::matches`]).
    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        let actual = match self.field.as_str() {
            "metadata.name" => name,
            "metadata.namespace" => namespace,
            // Upstream looks fields up in a set holding only these two; a missing one is "".
            _ => "",
        };
        (actual == self.value) == (self.operator == FieldOperator::Equals)
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field)?;
        f.write_str(match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        })?;
        for c in self.value.chars() {
            if matches!(c, '\\' | ',' | '=') {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// A parsed field selector: the AND of its requirements.
///
/// Requirements keep upstream's order: sorted by their text as written. `Display` is
/// upstream's `String()`: that order, `==` printed as `=`, values re-escaped. Because of the
/// `==` normalisation the printed form of a selector may sort differently when parsed
/// again; it denotes the same requirements and is itself a fixed point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a field selector as a metrics API list does: `fields.ParseSelector`, then the
    /// conversion that admits only `metadata.name` and `metadata.namespace`.
    pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
        let parsed = FieldSelector::parse_unchecked(selector)?;
        parsed.check_known_fields()?;
        Ok(parsed)
    }

    /// `fields.ParseSelector` alone: any field name is accepted. Useful where upstream
    /// parses without conversion (request attributes for authorization).
    pub fn parse_unchecked(selector: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = split_terms(selector);
        // Equal terms are interchangeable, so an unstable sort gives upstream's order.
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(SelectorError::new(
                    SelectorErrorKind::FieldSyntax,
                    format!("invalid selector: '{selector}'; can't understand '{term}'"),
                ));
            };
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Rejects the first requirement (in order) on a field other than `metadata.name` or
    /// `metadata.namespace`, with upstream's conversion error.
    pub fn check_known_fields(&self) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !KNOWN_FIELDS.contains(&r.field.as_str()))
        {
            None => Ok(()),
            Some(r) => Err(SelectorError::new(
                SelectorErrorKind::UnknownField,
                format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    go_quote(&r.field)
                ),
            )),
        }
    }

    /// The selector that matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Whether the selector has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in upstream's order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether an object named `name` in `namespace` satisfies every requirement. Pass
    /// `""` as the namespace of cluster-scoped objects (nodes): upstream finds no namespace
    /// field for them and compares `""`, so `metadata.namespace=x` matches no node and
    /// `metadata.namespace!=x` every node (for non-empty `x`).
    pub fn matches(&self, name: &str, namespace: &str) -> bool {
        self.requirements.iter().all(|r| r.matches(name, namespace))
    }

    /// The value the first `field=value` requirement demands (upstream
    /// `RequiresExactMatch`; e.g. the object name authorization uses for a list).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.operator == FieldOperator::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            fmt::Display::fmt(r, f)?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<FieldSelector, SelectorError> {
        FieldSelector::parse(s)
    }
}

/// Splits at commas not preceded by an escaping backslash; the escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, b) in selector.bytes().enumerate() {
        if escaped {
            // A backslash escapes one character; continuation bytes of a multi-byte one
            // are never `,` or `\`, so skipping its first byte is enough.
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits at the first operator (`!=`, then `==`, then `=` at each position); the field
/// part has no escaping.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    let b = term.as_bytes();
    let i = (0..b.len()).find(|&i| match b.get(i) {
        Some(b'=') => true,
        Some(b'!') => b.get(i + 1) == Some(&b'='),
        _ => false,
    })?;
    let (operator, len) = match (b.get(i), b.get(i + 1)) {
        (Some(b'!'), _) => (FieldOperator::NotEquals, 2),
        (_, Some(b'=')) => (FieldOperator::Equals, 2),
        _ => (FieldOperator::Equals, 1),
    };
    // Operators are ASCII, so both cuts are char boundaries.
    Some((&term[..i], operator, &term[i + len..]))
}

/// `fields.UnescapeValue`: `\\`, `\,` and `\=` are the only escapes, and bare `,` or `=`
/// are errors.
fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let err = |message| SelectorError::new(SelectorErrorKind::FieldSyntax, message);
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    )));
                }
                None => {
                    return Err(err(
                        "invalid field selector: invalid escape sequence: \\".to_owned()
                    ));
                }
            },
            // Upstream prints the rune with `%v`: its code point in decimal.
            ',' | '=' => {
                return Err(err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn label_err(s: &str) -> SelectorError {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e,
        }
    }

    fn field(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn field_err(s: &str) -> String {
        match FieldSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    fn set<'a>(pairs: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, &'a str> {
        pairs.iter().copied().collect()
    }

    const KEY_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    // ---- label syntax forms and canonical printing

    #[test]
    fn each_label_syntax_form_parses_and_prints() {
        for (input, printed, op) in [
            ("k=v", "k=v", Operator::Equals),
            ("k==v", "k==v", Operator::DoubleEquals),
            ("k!=v", "k!=v", Operator::NotEquals),
            ("k in (b,a)", "k in (a,b)", Operator::In),
            ("k notin (b,a,b)", "k notin (a,b)", Operator::NotIn),
            ("k", "k", Operator::Exists),
            ("!k", "!k", Operator::DoesNotExist),
            ("k>5", "k>5", Operator::GreaterThan),
            ("k<5", "k<5", Operator::LessThan),
        ] {
            let sel = label(input);
            assert_eq!(sel.to_string(), printed, "{input}");
            assert_eq!(sel.requirements().len(), 1);
            assert_eq!(sel.requirements()[0].operator(), op, "{input}");
            assert_eq!(sel.requirements()[0].key(), "k");
        }
    }

    #[test]
    fn upstream_good_strings_print_without_spaces() {
        // apimachinery's TestSelectorParse: String() equals the input minus spaces.
        for s in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ] {
            assert_eq!(label(s).to_string(), s.replace(' ', ""), "{s:?}");
        }
    }

    #[test]
    fn requirements_sort_by_key_stably() {
        assert_eq!(label("x=a,a=x").to_string(), "a=x,x=a");
        assert_eq!(label("a=x,x=a"), label("x=a,a=x"));
        assert_eq!(label("b,a!=2,a=1").to_string(), "a!=2,a=1,b");
        assert_eq!(label("b,a=1,a!=2").to_string(), "a=1,a!=2,b");
    }

    #[test]
    fn whitespace_is_skipped_between_tokens() {
        let sel = label(" \t\r\nk \t in\n( b ,\ta , ) ,\r\n! j , l  !=  x ");
        assert_eq!(sel.to_string(), "!j,k in (,a,b),l!=x");
        assert_eq!(label("k   notin(a)").to_string(), "k notin (a)");
        assert!(label("  \t ").is_empty());
    }

    #[test]
    fn empty_values_in_sets() {
        assert_eq!(label("k in ()").requirements()[0].values(), [""]);
        assert_eq!(label("k in (,)").to_string(), "k in ()");
        assert_eq!(label("k in (,a)").to_string(), "k in (,a)");
        assert_eq!(label("k in (a,)").to_string(), "k in (,a)");
        assert_eq!(label("k in (a,,b)").to_string(), "k in (,a,b)");
        assert_eq!(label("k in (a,,,)").to_string(), "k in (,a)");
        assert_eq!(label("k=,j").to_string(), "j,k=");
    }

    #[test]
    fn in_and_notin_are_identifiers_outside_operator_position() {
        assert_eq!(label("in in (in,notin)").to_string(), "in in (in,notin)");
        assert_eq!(label("notin=in").to_string(), "notin=in");
        assert_eq!(label("!in,notin").to_string(), "!in,notin");
        assert!(label("notin=in").matches(&set(&[("notin", "in")])));
    }

    #[test]
    fn nul_ends_input_at_a_token_start_and_is_skipped_after_a_token() {
        assert!(label("\0a=b").is_empty());
        assert_eq!(label("a=b \0c").to_string(), "a=b");
        assert_eq!(label("a=b,\0c").to_string(), "a=b,c");
        assert_eq!(
            label_err("a=b, \0c").to_string(),
            "found '', expected: identifier after ','"
        );
        assert_eq!(label("a\0").to_string(), "a");
        assert_eq!(label("a=\0b").to_string(), "a=b");
        assert_eq!(
            label_err("a\0b").to_string(),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn and_merges_sorted_by_key() {
        let request = label("z=1,b");
        let node = label("skipKey!=skipValue");
        let both = request.and(&node);
        assert_eq!(both.to_string(), "b,skipKey!=skipValue,z=1");
        assert!(both.matches(&set(&[("b", ""), ("z", "1")])));
        assert!(!both.matches(&set(&[("b", ""), ("z", "1"), ("skipKey", "skipValue")])));
    }

    // ---- label errors

    #[test]
    fn spec_label_syntax_errors() {
        let e = label_err("app=web,");
        assert_eq!(e.to_string(), "found '', expected: identifier after ','");
        assert_eq!(e.kind(), SelectorErrorKind::LabelSyntax);
        assert_eq!(
            label_err("=x").to_string(),
            "found '=', expected: !, identifier, or 'end of string'"
        );
    }

    #[test]
    fn label_grammar_errors() {
        for (input, message) in [
            (
                ",",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            ("a,,b", "found ',', expected: identifier after ','"),
            ("a,=b", "found '=', expected: identifier after ','"),
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("x==a==b", "found '==', expected: ',' or 'end of string'"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            (
                "!!a",
                "unable to parse requirement: found '!', expected: identifier",
            ),
            (
                "a!b",
                "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a(b)",
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "a in (",
                "unable to parse requirement: found '', expected: ',', ')' or identifier",
            ),
            (
                "a in (=",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (b c)",
                "unable to parse requirement: found 'c', expected: ',' or ')'",
            ),
            (
                "a in (b,",
                "unable to parse requirement: found '', expected: ',', or identifier",
            ),
            (
                "a in (b,=)",
                "unable to parse requirement: found '=', expected: ',', or identifier",
            ),
            ("a in (b)c", "found 'c', expected: ',' or 'end of string'"),
            (
                "a=(b)",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "a==!",
                "unable to parse requirement: found '!', expected: identifier",
            ),
            (
                "!=a",
                "found '!=', expected: !, identifier, or 'end of string'",
            ),
            (
                ")",
                "found ')', expected: !, identifier, or 'end of string'",
            ),
        ] {
            assert_eq!(label_err(input).to_string(), message, "{input:?}");
        }
    }

    #[test]
    fn label_key_validation_errors() {
        let e = label_err("a_=b");
        assert_eq!(e.kind(), SelectorErrorKind::LabelRequirement);
        assert_eq!(
            e.to_string(),
            format!("unable to parse requirement: <nil>: Invalid value: \"a_\": {KEY_NAME}")
        );
        let long = "a".repeat(64);
        assert_eq!(
            label_err(&long).to_string(),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 bytes"
            )
        );
        assert!(LabelSelector::parse(&"a".repeat(63)).is_ok());
        assert_eq!(
            label_err("example.com/").to_string(),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"example.com/\": name part must be non-empty; {KEY_NAME}"
            )
        );
        assert_eq!(
            label_err("/a").to_string(),
            "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
        );
        assert_eq!(
            label_err("Example.com/a").to_string(),
            "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        let long_prefix = format!(
            "{}.{}.{}.{}/a",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert_eq!(
            label_err(&long_prefix).to_string(),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long_prefix}\": prefix part must be no more than 253 bytes"
            )
        );
        assert_eq!(
            label_err("a/b/c").to_string(),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        // Key errors come before anything after the key is looked at.
        assert!(
            label_err("a_ b c")
                .to_string()
                .contains("Invalid value: \"a_\"")
        );
        assert!(LabelSelector::parse("example.com/My_Name.1=x").is_ok());
    }

    #[test]
    fn label_value_validation_errors() {
        assert_eq!(
            label_err("a=b_").to_string(),
            format!("unable to parse requirement: values[0][a]: Invalid value: \"b_\": {VALUE}")
        );
        // The index is the position among the sorted values.
        assert_eq!(
            label_err("k in (z, -y, a)").to_string(),
            format!("unable to parse requirement: values[0][k]: Invalid value: \"-y\": {VALUE}")
        );
        assert_eq!(
            label_err("k notin (a-, b-)").to_string(),
            format!(
                "unable to parse requirement: [values[0][k]: Invalid value: \"a-\": {VALUE}, values[1][k]: Invalid value: \"b-\": {VALUE}]"
            )
        );
        // `|` is no token: `a||y` is one (invalid) value.
        assert_eq!(
            label_err("x=a||y=b").to_string(),
            format!("unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {VALUE}")
        );
        let long = "v".repeat(64);
        assert_eq!(
            label_err(&format!("a={long}")).to_string(),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 bytes"
            )
        );
        let long_bad = format!("{long}-");
        assert_eq!(
            label_err(&format!("a={long_bad}")).to_string(),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long_bad}\": must be no more than 63 bytes; {VALUE}"
            )
        );
    }

    #[test]
    fn gt_lt_need_integers() {
        assert_eq!(
            label_err("x<a").to_string(),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            label_err("x>").to_string(),
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            label_err("x>99999999999999999999").to_string(),
            "unable to parse requirement: values[0]: Invalid value: \"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        // An integer that is not a label value, and a value that is neither.
        assert_eq!(
            label_err("x>-1").to_string(),
            format!("unable to parse requirement: values[0][x]: Invalid value: \"-1\": {VALUE}")
        );
        assert_eq!(
            label_err("x>a.").to_string(),
            format!(
                "unable to parse requirement: [values[0]: Invalid value: \"a.\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"a.\": {VALUE}]"
            )
        );
    }

    #[test]
    fn error_values_are_go_quoted() {
        assert_eq!(
            label_err("café").to_string(),
            format!("unable to parse requirement: <nil>: Invalid value: \"café\": {KEY_NAME}")
        );
    }

    // ---- label matching

    #[test]
    fn upstream_matching_cases() {
        type Case = (&'static str, &'static [(&'static str, &'static str)], bool);
        let cases: [Case; 20] = [
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
            ("foo=blah", &[("foo", "bar"), ("baz", "blah")], false),
            (
                "foo=bar,foobar=bar,baz=blah",
                &[("foo", "bar"), ("baz", "blah")],
                false,
            ),
            ("x==y", &[("x", "y")], true),
        ];
        for (selector, labels, expected) in cases {
            assert_eq!(
                label(selector).matches(&set(labels)),
                expected,
                "{selector:?} on {labels:?}"
            );
        }
    }

    #[test]
    fn absent_keys() {
        let none = set(&[]);
        assert!(label("k!=v").matches(&none));
        assert!(label("k notin (a)").matches(&none));
        assert!(label("!k").matches(&none));
        assert!(!label("k").matches(&none));
        assert!(!label("k=v").matches(&none));
        assert!(!label("k in (a)").matches(&none));
        assert!(!label("k>1").matches(&none));
        assert!(!label("k<1").matches(&none));
        // An empty value is a value: present-but-empty is not absent.
        assert!(label("k=").matches(&set(&[("k", "")])));
        assert!(!label("k=").matches(&none));
        assert!(label("k in ()").matches(&set(&[("k", "")])));
        assert!(!label("k notin ()").matches(&set(&[("k", "")])));
    }

    #[test]
    fn set_and_integer_matching() {
        let sel = label("k in (a,b)");
        assert!(sel.matches(&set(&[("k", "b")])));
        assert!(!sel.matches(&set(&[("k", "c")])));
        let sel = label("k notin (a,b)");
        assert!(!sel.matches(&set(&[("k", "a")])));
        assert!(sel.matches(&set(&[("k", "c")])));
        assert!(label("k>5").matches(&set(&[("k", "10")])));
        assert!(!label("k>5").matches(&set(&[("k", "5")])));
        assert!(label("k<5").matches(&set(&[("k", "-3")])));
        assert!(label("k>007").matches(&set(&[("k", "+8")])));
        assert!(!label("k>5").matches(&set(&[("k", "x")])));
        assert!(!label("k<5").matches(&set(&[("k", "")])));
    }

    #[test]
    fn every_label_container_agrees() {
        let sel = label("app in (web,db),tier!=cache,!legacy,team");
        let pairs = [("app", "web"), ("team", "a"), ("tier", "fe")];
        let sorted: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let btree: BTreeMap<String, String> = sorted.iter().cloned().collect();
        let hash: HashMap<String, String> = sorted.iter().cloned().collect();
        assert!(sel.matches(&pairs));
        assert!(sel.matches(&sorted));
        assert!(sel.matches(sorted.as_slice()));
        assert!(sel.matches(&btree));
        assert!(sel.matches(&hash));
        assert!(!sel.matches(&[("app", "web"), ("legacy", "1"), ("team", "a")]));
    }

    // ---- field selectors

    #[test]
    fn field_syntax_forms() {
        let sel = field("metadata.name=a,metadata.namespace==b,metadata.name!=c");
        assert_eq!(
            sel.to_string(),
            "metadata.name!=c,metadata.name=a,metadata.namespace=b"
        );
        assert_eq!(sel.requirements().len(), 3);
        assert_eq!(sel.requirements()[0].operator(), FieldOperator::NotEquals);
        assert!(field("").is_empty());
        assert!(field(",,").is_empty());
        assert_eq!(field("metadata.name=").to_string(), "metadata.name=");
        assert_eq!(sel.requires_exact_match("metadata.name"), Some("a"));
        assert_eq!(
            field("metadata.name!=a").requires_exact_match("metadata.name"),
            None
        );
    }

    #[test]
    fn field_escapes() {
        let sel = field(r"metadata.name=a\,b\=c\\d");
        assert_eq!(sel.requirements()[0].value(), r"a,b=c\d");
        assert_eq!(sel.to_string(), r"metadata.name=a\,b\=c\\d");
        assert_eq!(
            field_err(r"metadata.name=a\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            field_err(r"metadata.name=a\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            field_err("metadata.name=a=b"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            field_err("metadata.name!==b"),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn spec_field_errors() {
        let e = FieldSelector::parse("spec.nodeName=worker-1").expect_err("unknown field");
        assert_eq!(e.kind(), SelectorErrorKind::UnknownField);
        assert_eq!(
            e.to_string(),
            r#""spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        let e = FieldSelector::parse("metadata.name").expect_err("no operator");
        assert_eq!(e.kind(), SelectorErrorKind::FieldSyntax);
        assert_eq!(
            e.to_string(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
    }

    #[test]
    fn field_error_order() {
        // Terms are checked in sorted order; syntax errors of any term beat unknown fields.
        assert_eq!(
            field_err("b,a"),
            "invalid selector: 'b,a'; can't understand 'a'"
        );
        assert_eq!(
            field_err("spec.x=1,metadata.name"),
            "invalid selector: 'spec.x=1,metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            field_err("z=1,y=2"),
            r#""y" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        // No trimming: the space is part of the field.
        assert_eq!(
            field_err("metadata.name =x"),
            r#""metadata.name " is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        assert_eq!(
            field_err("=x"),
            r#""" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        assert!(FieldSelector::parse_unchecked("spec.nodeName=x").is_ok());
    }

    #[test]
    fn field_matching() {
        let pod = |s: &str, name: &str, ns: &str| field(s).matches(name, ns);
        assert!(pod("metadata.name=pod3", "pod3", "testValue"));
        assert!(!pod("metadata.name=pod3", "pod1", "other"));
        assert!(pod("metadata.namespace=testValue", "pod3", "testValue"));
        assert!(pod("metadata.name!=pod3", "pod1", "other"));
        assert!(pod(
            "metadata.name==pod3,metadata.namespace=testValue",
            "pod3",
            "testValue"
        ));
        assert!(!pod(
            "metadata.name==pod3,metadata.namespace=x",
            "pod3",
            "testValue"
        ));
        // Nodes: no namespace.
        assert!(!pod("metadata.namespace=x", "node1", ""));
        assert!(pod("metadata.namespace!=x", "node1", ""));
        assert!(pod("metadata.namespace=", "node1", ""));
        assert!(pod("", "anything", ""));
        // Unchecked selectors compare unknown fields against "".
        let sel = FieldSelector::parse_unchecked("spec.nodeName=").expect("parses");
        assert!(sel.matches("a", "b"));
    }

    // ---- bounds

    #[test]
    fn long_inputs_stay_linear() {
        let n = 200_000;
        let many = "a,".repeat(n) + "a";
        assert_eq!(label(&many).requirements().len(), n + 1);
        let values = format!("k in ({}x)", "v,".repeat(n));
        assert_eq!(label(&values).requirements()[0].values(), ["v", "x"]);
        assert!(LabelSelector::parse(&"(".repeat(n)).is_err());
        assert!(LabelSelector::parse(&"!".repeat(n)).is_err());
        assert!(LabelSelector::parse(&"=".repeat(n)).is_err());
        let ident = "a".repeat(n);
        assert!(LabelSelector::parse(&ident).is_err());
        assert!(FieldSelector::parse(&"\\".repeat(n)).is_err());
        assert!(FieldSelector::parse(&"metadata.name=x,".repeat(n)).is_ok());
        assert!(FieldSelector::parse(&format!("metadata.name={}", "\\,".repeat(n))).is_ok());
        assert!(FieldSelector::parse(&"!".repeat(n)).is_err());
    }
}
