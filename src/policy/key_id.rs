//! The forms a KMS `KeyId` may take in a key rule, and the check that distinguishes them.
//!
//! KMS accepts four forms (KMS API reference, `Decrypt` request, `KeyId`):
//! key ID `1234abcd-12ab-34cd-56ef-1234567890ab`,
//! key ARN `arn:aws:kms:us-east-2:111122223333:key/1234abcd-…`,
//! alias name `alias/ExampleAlias`, alias ARN `arn:aws:kms:us-east-2:111122223333:alias/ExampleAlias`.
//! Only a key ARN names one key in one account, so only then can the broker check the `KeyId`
//! of KMS responses. A string that starts with `arn:` but is not a well-formed KMS ARN is
//! rejected rather than treated as an alias, because a typo there would silently turn that
//! check off.

/// Maximum length of a `KeyId` (KMS API model, `KeyIdType`).
const MAX_KEY_ID_LEN: usize = 2048;

/// Maximum length of an alias name including its `alias/` prefix (KMS API model,
/// `AliasNameType`).
const MAX_ALIAS_LEN: usize = 256;

/// Form of a key rule's `key_id`: one of the four that KMS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyIdForm {
    KeyArn,
    AliasArn,
    AliasName,
    KeyId,
}

/// Classifies a `key_id`, or returns the reason it matches none of the forms KMS accepts.
pub(crate) fn classify_key_id(text: &str) -> Result<KeyIdForm, String> {
    if text.is_empty() {
        return Err(
            "must not be empty; give a KMS key ARN (recommended), an alias ARN, an \
                    alias name (alias/NAME) or a key ID"
                .to_owned(),
        );
    }
    if text.len() > MAX_KEY_ID_LEN {
        return Err(format!(
            "is {} characters long; KMS accepts at most {MAX_KEY_ID_LEN}",
            text.len()
        ));
    }

    if text.starts_with("arn:") {
        return classify_arn(text).map_err(|reason| {
            format!(
                "{text:?} is not a valid KMS ARN: {reason}; expected \
                 arn:aws:kms:REGION:ACCOUNT:key/KEY_ID"
            )
        });
    }
    if let Some(name) = text.strip_prefix("alias/") {
        check_alias_name(name)?;
        return Ok(KeyIdForm::AliasName);
    }
    if is_key_id(text) {
        return Ok(KeyIdForm::KeyId);
    }
    Err(format!(
        "{text:?} is not a KMS key ARN, alias ARN, alias name (alias/NAME) or key ID"
    ))
}

/// Checks `arn:PARTITION:kms:REGION:ACCOUNT:RESOURCE`.
fn classify_arn(text: &str) -> Result<KeyIdForm, String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [_arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err("it has fewer than six colon-separated parts".to_owned());
    };

    let partition_ok = partition
        .strip_prefix("aws")
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    if !partition_ok {
        return Err(format!(
            "partition {partition:?} is not an AWS partition such as aws or aws-cn"
        ));
    }
    if *service != "kms" {
        return Err(format!("service is {service:?}, expected kms"));
    }
    if !is_region_name(region) {
        return Err(format!(
            "region {region:?} is not a region name such as us-east-1"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account {account:?} is not 12 digits"));
    }

    if let Some(key) = resource.strip_prefix("key/") {
        if is_key_id(key) {
            return Ok(KeyIdForm::KeyArn);
        }
        return Err(format!(
            "key ID {key:?} may contain only letters, digits and -"
        ));
    }
    if let Some(name) = resource.strip_prefix("alias/") {
        check_alias_name(name)?;
        return Ok(KeyIdForm::AliasArn);
    }
    Err(format!(
        "resource {resource:?} is neither key/KEY_ID nor alias/NAME"
    ))
}

/// Region names look like `us-east-1`, `us-gov-west-1` or `ap-southeast-4`: two letters, one
/// or more words of lowercase letters, then a number, joined by `-`.
fn is_region_name(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// Key IDs are UUIDs, or `mrk-` and 32 hex digits for multi-Region keys. Any letters, digits
/// and `-` are accepted here; KMS rejects an ID that names no key.
fn is_key_id(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Alias names (after `alias/`) use letters, digits, `:`, `/`, `_` and `-`.
fn check_alias_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("alias name after alias/ is empty".to_owned());
    }
    if "alias/".len() + name.len() > MAX_ALIAS_LEN {
        return Err(format!(
            "alias is {} characters long; KMS accepts at most {MAX_ALIAS_LEN}",
            "alias/".len() + name.len()
        ));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-');
    if !name.bytes().all(allowed) {
        return Err(format!(
            "alias name {name:?} may contain only letters, digits, :, /, _ and -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ARN: &str =
        "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn recognises_key_arn() {
        assert_eq!(classify_key_id(KEY_ARN), Ok(KeyIdForm::KeyArn));
    }

    #[test]
    fn recognises_key_arn_in_other_partitions() {
        let china =
            "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef";
        let gov = "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd";
        assert_eq!(classify_key_id(china), Ok(KeyIdForm::KeyArn));
        assert_eq!(classify_key_id(gov), Ok(KeyIdForm::KeyArn));
    }

    #[test]
    fn recognises_alias_forms_and_key_id() {
        assert_eq!(classify_key_id("alias/app"), Ok(KeyIdForm::AliasName));
        assert_eq!(
            classify_key_id("arn:aws:kms:us-east-1:111122223333:alias/app"),
            Ok(KeyIdForm::AliasArn)
        );
        assert_eq!(
            classify_key_id("1234abcd-12ab-34cd-56ef-1234567890ab"),
            Ok(KeyIdForm::KeyId)
        );
    }

    #[test]
    fn rejects_arn_with_short_account() {
        let error = classify_key_id("arn:aws:kms:us-east-1:11112222333:key/abcd").unwrap_err();
        assert!(
            error.contains("account \"11112222333\" is not 12 digits"),
            "{error}"
        );
    }

    #[test]
    fn rejects_arn_of_other_service() {
        let error = classify_key_id("arn:aws:s3:us-east-1:111122223333:key/abcd").unwrap_err();
        assert!(error.contains("expected kms"), "{error}");
    }

    #[test]
    fn rejects_arn_with_malformed_region() {
        let error = classify_key_id("arn:aws:kms:useast1:111122223333:key/abcd").unwrap_err();
        assert!(error.contains("region"), "{error}");
    }

    #[test]
    fn rejects_truncated_arn() {
        assert!(classify_key_id("arn:aws:kms:us-east-1:111122223333").is_err());
    }

    #[test]
    fn rejects_empty_alias_name() {
        assert!(classify_key_id("alias/").is_err());
    }

    #[test]
    fn rejects_key_id_with_space() {
        assert!(classify_key_id("my key").is_err());
    }
}
