//! The JSON tree the loader walks, and the helpers that report problems by JSON path.
//!
//! `serde_json::Value` keeps only the last of two equal object keys, so a policy such as
//! `{"pcrs": {"0": A, "0": B}}` would load silently as B. [`Node`] keeps every member in
//! document order, and [`ObjectReader`] reports each repeated key as a problem.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::Problem;

/// A parsed JSON value whose objects keep every member, duplicates included, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Parses JSON text. Trailing characters after the value are an error.
    pub(crate) fn parse(text: &str) -> Result<Node, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON type of this value with its article, for "expected …, found …" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::String(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }

    /// Returns the path of every object member whose key an earlier member of the same
    /// object already used, in document order. `serde_json::Value` silently keeps the last
    /// of such members, so inputs read through it are checked with this first.
    pub(crate) fn duplicate_key_paths(&self) -> Vec<String> {
        let mut found = Vec::new();
        collect_duplicate_keys(self, &JsonPath::root(), &mut found);
        found
    }
}

fn collect_duplicate_keys(node: &Node, path: &JsonPath, found: &mut Vec<String>) {
    match node {
        Node::Object(members) => {
            for (position, (name, value)) in members.iter().enumerate() {
                let member_path = path.member(name);
                let repeated = members[..position]
                    .iter()
                    .any(|(earlier, _)| earlier == name);
                if repeated {
                    found.push(member_path.to_string());
                }
                collect_duplicate_keys(value, &member_path, found);
            }
        }
        Node::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_duplicate_keys(item, &path.item(index), found);
            }
        }
        Node::Null | Node::Bool(_) | Node::Number(_) | Node::String(_) => {}
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Node, E> {
        Ok(Node::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Node, E> {
        Ok(Node::Number(value.into()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Node, E> {
        Ok(Node::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Node, E> {
        // serde_json never produces NaN or infinity from JSON text, so this only fails for
        // input that did not come from a JSON document.
        serde_json::Number::from_f64(value)
            .map(Node::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Node, E> {
        Ok(Node::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Node, E> {
        Ok(Node::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            members.push((key, value));
        }
        Ok(Node::Object(members))
    }
}

/// A location inside the policy document, printed as `keys.app.allow[0].pcrs.8`.
///
/// Member names made of ASCII letters, digits, `_` and `-` are joined with a dot. Any other
/// name is printed as a quoted JSON string in brackets (`encryption_context["a.b"]`), so that
/// a printed path points to exactly one place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JsonPath(String);

impl JsonPath {
    pub(crate) fn root() -> JsonPath {
        JsonPath(String::new())
    }

    pub(crate) fn member(&self, name: &str) -> JsonPath {
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        let mut path = self.0.clone();
        if plain {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
        } else {
            // Serializing a string to JSON cannot fail: it has no map keys that could be
            // rejected, and writing into a String performs no I/O.
            let quoted = serde_json::to_string(name).unwrap_or_default();
            path.push('[');
            path.push_str(&quoted);
            path.push(']');
        }
        JsonPath(path)
    }

    pub(crate) fn item(&self, index: usize) -> JsonPath {
        JsonPath(format!("{}[{index}]", self.0))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(top level)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Every problem found so far while walking one policy document.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// Parses a whole policy document, and records a problem at the top level when the text
    /// is not JSON.
    pub(crate) fn parse_document(&mut self, text: &str) -> Option<Node> {
        match Node::parse(text) {
            Ok(root) => Some(root),
            Err(error) => {
                self.push(&JsonPath::root(), format!("invalid JSON: {error}"));
                None
            }
        }
    }

    /// Returns the value when it is a string, and records a problem otherwise.
    pub(crate) fn expect_str<'a>(&mut self, node: &'a Node, path: &JsonPath) -> Option<&'a str> {
        match node {
            Node::String(text) => Some(text),
            other => {
                self.push(path, format!("expected a string, found {}", other.kind()));
                None
            }
        }
    }

    /// Returns the value when it is a boolean, and records a problem otherwise.
    pub(crate) fn expect_bool(&mut self, node: &Node, path: &JsonPath) -> Option<bool> {
        match node {
            Node::Bool(value) => Some(*value),
            other => {
                self.push(
                    path,
                    format!("expected true or false, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// Returns the items when the value is an array, and records a problem otherwise.
    pub(crate) fn expect_array<'a>(
        &mut self,
        node: &'a Node,
        path: &JsonPath,
    ) -> Option<&'a [Node]> {
        match node {
            Node::Array(items) => Some(items),
            other => {
                self.push(path, format!("expected an array, found {}", other.kind()));
                None
            }
        }
    }

    /// Returns the members of an object whose member names the policy author chooses (rule
    /// names, PCR indexes, encryption context keys). Records a problem when the value is not
    /// an object and for every repeated member name; only the first of equal names is kept.
    pub(crate) fn expect_map<'a>(
        &mut self,
        node: &'a Node,
        path: &JsonPath,
    ) -> Option<Vec<&'a (String, Node)>> {
        let Node::Object(members) = node else {
            self.push(path, format!("expected an object, found {}", node.kind()));
            return None;
        };
        let mut unique: Vec<&(String, Node)> = Vec::with_capacity(members.len());
        for member in members {
            if unique.iter().any(|(name, _)| *name == member.0) {
                self.push(
                    &path.member(&member.0),
                    "duplicate key; JSON parsers disagree on which value wins, so each key may \
                     appear only once",
                );
            } else {
                unique.push(member);
            }
        }
        Some(unique)
    }

    /// Opens an object with a fixed set of fields. Records a problem when the value is not an
    /// object, for every repeated field and for every field not in `known`.
    pub(crate) fn expect_object<'a>(
        &mut self,
        node: &'a Node,
        path: &JsonPath,
        known: &'static [&'static str],
    ) -> Option<ObjectReader<'a>> {
        let members = self.expect_map(node, path)?;
        for (name, _) in &members {
            if !known.contains(&name.as_str()) {
                self.push(
                    &path.member(name),
                    format!("unknown field; expected one of {}", known.join(", ")),
                );
            }
        }
        Some(ObjectReader {
            path: path.clone(),
            members,
        })
    }
}

/// The members of one object with known fields, as opened by [`Problems::expect_object`].
pub(crate) struct ObjectReader<'a> {
    path: JsonPath,
    members: Vec<&'a (String, Node)>,
}

impl<'a> ObjectReader<'a> {
    pub(crate) fn path(&self) -> &JsonPath {
        &self.path
    }

    /// The path of one field of this object.
    pub(crate) fn field_path(&self, name: &str) -> JsonPath {
        self.path.member(name)
    }

    /// The value of an optional field, or `None` when it is absent.
    pub(crate) fn optional(&self, name: &str) -> Option<&'a Node> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, value)| value)
    }

    /// The value of a required field; records a problem when it is absent.
    pub(crate) fn required(&self, name: &str, problems: &mut Problems) -> Option<&'a Node> {
        let value = self.optional(name);
        if value.is_none() {
            problems.push(&self.field_path(name), "missing required field");
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keeps_duplicate_object_keys() {
        let node = Node::parse(r#"{"a": 1, "a": 2}"#).unwrap();
        let Node::Object(members) = node else {
            panic!("expected an object");
        };
        assert_eq!(members.len(), 2);
    }

    #[test]
    fn path_quotes_names_with_dots() {
        let path = JsonPath::root().member("secrets").item(1).member("a.b");
        assert_eq!(path.to_string(), r#"secrets[1]["a.b"]"#);
    }

    #[test]
    fn path_joins_plain_names_with_dots() {
        let path = JsonPath::root()
            .member("keys")
            .member("app")
            .member("allow")
            .item(0)
            .member("pcrs")
            .member("8");
        assert_eq!(path.to_string(), "keys.app.allow[0].pcrs.8");
    }

    #[test]
    fn root_path_prints_as_top_level() {
        assert_eq!(JsonPath::root().to_string(), "(top level)");
    }
}
