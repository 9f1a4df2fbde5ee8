//! The AWS region: checked when the KMS client is set up, so a missing or empty region fails
//! before a key is generated instead of inside the SDK at the first request.

use super::KmsError;

/// The region variables the AWS SDK reads, in its order of precedence.
const REGION_VARIABLES: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

/// Rejects a region variable that is set but empty. `aws-config` 1.13 accepts an empty
/// `AWS_REGION`, and the request then fails only after the key and the document are made.
pub fn check_region_variables() -> Result<(), KmsError> {
    for variable in REGION_VARIABLES {
        if let Some(value) = std::env::var_os(variable) {
            check_region_variable(variable, &value.to_string_lossy())?;
        }
    }
    Ok(())
}

fn check_region_variable(variable: &'static str, value: &str) -> Result<(), KmsError> {
    if value.trim().is_empty() {
        return Err(KmsError::EmptyRegionVariable {
            variable,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Returns the region the AWS configuration resolved, when there is one and its name can
/// be part of a host name (letters, digits and `-`, as in `us-east-1`).
pub fn check_region(region: Option<&aws_config::Region>) -> Result<String, KmsError> {
    let region = region.ok_or(KmsError::NoRegion)?.as_ref();
    let is_valid = !region.is_empty()
        && region
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-');
    if !is_valid {
        return Err(KmsError::InvalidRegion {
            region: region.to_owned(),
        });
    }
    Ok(region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_region_variable() {
        for value in ["", " "] {
            let error = check_region_variable("AWS_REGION", value).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("AWS_REGION"), "{message}");
            assert!(message.contains("empty"), "{message}");
            assert_eq!(error.exit_code(), 2);
        }
        assert!(check_region_variable("AWS_DEFAULT_REGION", "eu-west-1").is_ok());
    }

    #[test]
    fn rejects_missing_region() {
        let error = check_region(None).unwrap_err();
        assert!(matches!(error, KmsError::NoRegion));
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn rejects_region_that_cannot_be_a_host_label() {
        for name in ["", "us east 1", "us-east-1/", "eu-west-1.evil.example"] {
            let region = aws_config::Region::new(name.to_owned());
            let error = check_region(Some(&region)).unwrap_err();
            assert!(
                matches!(error, KmsError::InvalidRegion { .. }),
                "{name:?}: {error}"
            );
            assert_eq!(error.exit_code(), 2);
        }
    }

    #[test]
    fn accepts_region_names() {
        for name in ["us-east-1", "cn-north-1", "us-gov-west-1"] {
            let region = aws_config::Region::new(name);
            assert_eq!(check_region(Some(&region)).unwrap(), name);
        }
    }
}
