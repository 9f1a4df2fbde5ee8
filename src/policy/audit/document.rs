//! Parsing a KMS key policy into normalised statements.
//!
//! IAM accepts several spellings of the same thing: `Statement` as one object or an array,
//! `Action` as a string or an array, `Principal` as `"*"` or `{"AWS": …}`, condition values as
//! strings, booleans, numbers or arrays of them. This module turns each into one form, so the
//! checks never see the variants. It also accepts the output of `aws kms get-key-policy`,
//! `{"Policy": "<the policy as a JSON string>", "PolicyName": "default"}`.

use serde_json::{Map, Value};

use crate::policy::json::Node;

/// Largest key policy read, in bytes. KMS limits key policies to 32 KiB; the margin allows
/// for the `get-key-policy` wrapper, which escapes the policy into a JSON string.
pub const MAX_KEY_POLICY_LEN: usize = 256 * 1024;

/// A key policy in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicyDocument {
    pub statements: Vec<Statement>,
}

/// One statement of a key policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Position in the `Statement` array (0 when `Statement` is a single object).
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Principals,
    pub actions: ActionList,
    pub resources: ResourceList,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Whom a statement applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    /// `Principal: "*"`, `{"AWS": "*"}` or any principal list that contains `*`.
    Everyone,
    /// The listed principals (every type: AWS, Service, Federated), as written.
    Listed(Vec<String>),
    /// `NotPrincipal`: everyone except the listed principals.
    AllExcept(Vec<String>),
}

/// The actions of a statement, as patterns that may contain `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionList {
    /// `Action`: the statement applies to actions that match any pattern.
    Only(Vec<String>),
    /// `NotAction`: the statement applies to actions that match no pattern.
    AllExcept(Vec<String>),
}

/// The resources of a statement, as written. In a key policy `"*"` means the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceList {
    /// `Resource`: the statement applies to resources that match any item.
    Only(Vec<String>),
    /// `NotResource`: the statement applies to resources that match no item.
    AllExcept(Vec<String>),
    /// Neither member. KMS rejects such a key policy. The audit treats the statement as
    /// applying to the key, except that such a Deny never counts as a safeguard.
    Missing,
}

impl ResourceList {
    /// True when the statement certainly applies to the key the policy is attached to: its
    /// `Resource` lists `"*"`. A specific ARN may name another key, and the audit is not given
    /// the key's ARN, so only `"*"` counts.
    pub fn covers_any_key(&self) -> bool {
        matches!(self, ResourceList::Only(items) if items.iter().any(|item| item == "*"))
    }
}

/// One condition: `"Condition": {operator: {key: values}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// Reason a key policy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditInputError {
    #[error("key policy is {length} bytes; the limit is {MAX_KEY_POLICY_LEN}")]
    TooLarge { length: usize },
    #[error("key policy is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("get-key-policy output: the Policy member is not valid JSON: {0}")]
    InvalidWrappedJson(String),
    #[error("{location}: {message}")]
    InvalidStructure { location: String, message: String },
    #[error(
        "duplicate key at {}; JSON parsers disagree on which value wins, so each key may \
         appear only once",
        paths.join(", ")
    )]
    DuplicateKeys { paths: Vec<String> },
}

impl KeyPolicyDocument {
    /// Parses a key policy, or the `aws kms get-key-policy` output that wraps one.
    pub fn parse(text: &str) -> Result<KeyPolicyDocument, AuditInputError> {
        if text.len() > MAX_KEY_POLICY_LEN {
            return Err(AuditInputError::TooLarge { length: text.len() });
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|error| AuditInputError::InvalidJson(error.to_string()))?;
        // serde_json keeps the last of repeated keys, so they are looked for separately.
        reject_duplicate_keys(text, "")?;

        // `get-key-policy` prints the policy as a string member named Policy.
        let value = match &value {
            Value::Object(members) if members.get("Statement").is_none() => {
                match members.get("Policy") {
                    Some(Value::String(inner)) => {
                        let inner_value = serde_json::from_str(inner).map_err(|error| {
                            AuditInputError::InvalidWrappedJson(error.to_string())
                        })?;
                        reject_duplicate_keys(inner, "Policy (the JSON string) ")?;
                        inner_value
                    }
                    _ => value,
                }
            }
            _ => value,
        };
        parse_policy(&value)
    }
}

/// Rejects JSON text in which any object repeats a key. `prefix` is put before each path.
fn reject_duplicate_keys(text: &str, prefix: &str) -> Result<(), AuditInputError> {
    let Ok(root) = Node::parse(text) else {
        // The text already parsed as a serde_json::Value, and Node accepts the same grammar.
        return Ok(());
    };
    let paths = root.duplicate_key_paths();
    if paths.is_empty() {
        return Ok(());
    }
    let paths = paths
        .into_iter()
        .map(|path| format!("{prefix}{path}"))
        .collect();
    Err(AuditInputError::DuplicateKeys { paths })
}

fn parse_policy(value: &Value) -> Result<KeyPolicyDocument, AuditInputError> {
    let members = value.as_object().ok_or_else(|| {
        structure(
            "(top level)",
            "expected a JSON object with a Statement member",
        )
    })?;
    let statement = members
        .get("Statement")
        .ok_or_else(|| structure("(top level)", "missing Statement"))?;
    let items: Vec<&Value> = match statement {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![statement],
        _ => return Err(structure("Statement", "expected an object or an array")),
    };

    let statements = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_statement(index, item))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeyPolicyDocument { statements })
}

fn parse_statement(index: usize, value: &Value) -> Result<Statement, AuditInputError> {
    let location = format!("Statement[{index}]");
    let members = value
        .as_object()
        .ok_or_else(|| structure(&location, "expected an object"))?;

    let sid = match members.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(structure(&location, "Sid is not a string")),
    };
    let location = match &sid {
        Some(sid) => format!("{location} (Sid {sid:?})"),
        None => location,
    };

    let effect = match members.get("Effect") {
        Some(Value::String(effect)) if effect == "Allow" => Effect::Allow,
        Some(Value::String(effect)) if effect == "Deny" => Effect::Deny,
        _ => return Err(structure(&location, "Effect must be \"Allow\" or \"Deny\"")),
    };

    let principal = match (members.get("Principal"), members.get("NotPrincipal")) {
        (Some(principal), None) => {
            let listed = principal_list(principal, &location)?;
            if listed.iter().any(|p| p == "*") {
                Principals::Everyone
            } else {
                Principals::Listed(listed)
            }
        }
        (None, Some(not_principal)) => {
            Principals::AllExcept(principal_list(not_principal, &location)?)
        }
        _ => {
            return Err(structure(
                &location,
                "a key policy statement needs exactly one of Principal and NotPrincipal",
            ));
        }
    };

    let actions = match (members.get("Action"), members.get("NotAction")) {
        (Some(action), None) => ActionList::Only(string_list(action, &location, "Action")?),
        (None, Some(not_action)) => {
            ActionList::AllExcept(string_list(not_action, &location, "NotAction")?)
        }
        _ => {
            return Err(structure(
                &location,
                "a statement needs exactly one of Action and NotAction",
            ));
        }
    };

    let resources = match (members.get("Resource"), members.get("NotResource")) {
        (Some(resource), None) => ResourceList::Only(string_list(resource, &location, "Resource")?),
        (None, Some(not_resource)) => {
            ResourceList::AllExcept(string_list(not_resource, &location, "NotResource")?)
        }
        (None, None) => ResourceList::Missing,
        (Some(_), Some(_)) => {
            return Err(structure(
                &location,
                "a statement may have Resource or NotResource, not both",
            ));
        }
    };

    let conditions = match members.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(operators)) => parse_conditions(operators, &location)?,
        Some(_) => return Err(structure(&location, "Condition is not an object")),
    };

    Ok(Statement {
        index,
        sid,
        effect,
        principal,
        actions,
        resources,
        conditions,
    })
}

/// Flattens `"*"`, `{"AWS": "…"}`, `{"AWS": ["…"], "Service": "…"}` into one list.
fn principal_list(value: &Value, location: &str) -> Result<Vec<String>, AuditInputError> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Object(types) => {
            let mut all = Vec::new();
            for (kind, names) in types {
                all.extend(string_list(names, location, &format!("Principal.{kind}"))?);
            }
            Ok(all)
        }
        _ => Err(structure(
            location,
            "Principal is not a string or an object",
        )),
    }
}

fn string_list(value: &Value, location: &str, field: &str) -> Result<Vec<String>, AuditInputError> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(structure(
                    location,
                    &format!("{field} holds a non-string item"),
                )),
            })
            .collect(),
        _ => Err(structure(
            location,
            &format!("{field} is not a string or an array of strings"),
        )),
    }
}

fn parse_conditions(
    operators: &Map<String, Value>,
    location: &str,
) -> Result<Vec<Condition>, AuditInputError> {
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            return Err(structure(
                location,
                &format!("Condition.{operator} is not an object of condition keys"),
            ));
        };
        for (key, values) in keys {
            let values = condition_values(values).ok_or_else(|| {
                structure(
                    location,
                    &format!("Condition.{operator}.{key} is not a string, number, boolean or an array of them"),
                )
            })?;
            conditions.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                values,
            });
        }
    }
    Ok(conditions)
}

fn condition_values(value: &Value) -> Option<Vec<String>> {
    let scalar = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|value| vec![value]),
    }
}

fn structure(location: &str, message: &str) -> AuditInputError {
    AuditInputError::InvalidStructure {
        location: location.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_single_statement_and_string_action() {
        let document = KeyPolicyDocument::parse(
            r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}}"#,
        )
        .unwrap();
        assert_eq!(document.statements.len(), 1);
        assert_eq!(document.statements[0].principal, Principals::Everyone);
        assert_eq!(
            document.statements[0].actions,
            ActionList::Only(vec!["kms:Decrypt".to_owned()])
        );
    }

    #[test]
    fn aws_star_in_a_list_means_everyone() {
        let document = KeyPolicyDocument::parse(
            r#"{"Statement": [{"Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam::111122223333:root", "*"]}, "Action": ["kms:Decrypt"]}]}"#,
        )
        .unwrap();
        assert_eq!(document.statements[0].principal, Principals::Everyone);
    }

    #[test]
    fn condition_values_become_strings() {
        let document = KeyPolicyDocument::parse(
            r#"{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
                "Condition": {"Null": {"kms:RecipientAttestation:ImageSha384": true}}}]}"#,
        )
        .unwrap();
        assert_eq!(document.statements[0].conditions[0].values, ["true"]);
    }

    #[test]
    fn unwraps_get_key_policy_output() {
        let inner = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:DescribeKey","Resource":"*"}]}"#;
        let wrapped = serde_json::json!({"Policy": inner, "PolicyName": "default"}).to_string();
        let document = KeyPolicyDocument::parse(&wrapped).unwrap();
        assert_eq!(document.statements[0].sid.as_deref(), Some("A"));
    }

    #[test]
    fn rejects_duplicate_effect_by_path() {
        let error = KeyPolicyDocument::parse(
            r#"{"Statement": [{"Effect": "Allow", "Effect": "Deny", "Principal": "*",
                "Action": "kms:Decrypt", "Resource": "*"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            error,
            AuditInputError::DuplicateKeys {
                paths: vec!["Statement[0].Effect".to_owned()]
            }
        );
    }

    #[test]
    fn rejects_duplicate_key_inside_wrapped_policy() {
        let inner = r#"{"Statement":[{"Sid":"A","Sid":"B","Effect":"Allow","Principal":"*","Action":"kms:DescribeKey","Resource":"*"}]}"#;
        let wrapped = serde_json::json!({"Policy": inner, "PolicyName": "default"}).to_string();
        let error = KeyPolicyDocument::parse(&wrapped).unwrap_err();
        assert_eq!(
            error,
            AuditInputError::DuplicateKeys {
                paths: vec!["Policy (the JSON string) Statement[0].Sid".to_owned()]
            }
        );
    }

    #[test]
    fn rejects_duplicate_condition_key_with_quoted_path() {
        let error = KeyPolicyDocument::parse(
            r#"{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
                "Resource": "*", "Condition": {"Null": {
                "kms:RecipientAttestation:ImageSha384": "true",
                "kms:RecipientAttestation:ImageSha384": "false"}}}]}"#,
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message
                .contains(r#"Statement[0].Condition.Null["kms:RecipientAttestation:ImageSha384"]"#),
            "{message}"
        );
    }

    #[test]
    fn rejects_statement_without_effect() {
        let error = KeyPolicyDocument::parse(
            r#"{"Statement": [{"Principal": "*", "Action": "kms:Decrypt"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(error, AuditInputError::InvalidStructure { .. }));
    }
}
