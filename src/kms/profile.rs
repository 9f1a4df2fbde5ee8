//! `endpoint_url` in the AWS profile, checked as the endpoint variables are.
//!
//! The SDK logs a warning for a profile `endpoint_url` it cannot parse and then uses the
//! regional AWS endpoint, so a typo in `~/.aws/config` would send the request to AWS KMS.
//!
//! NOTE: a KMS `endpoint_url` in a `[services]` section of the profile is neither checked
//! nor used, because the broker sets the endpoint it resolved itself.

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

use super::KmsError;
use super::endpoint::endpoint_url_problem;

/// The profile key of the endpoint shared by every service; error messages spell it out.
const PROFILE_ENDPOINT_KEY: &str = "endpoint_url";

/// Checks `endpoint_url` of the selected profile (`AWS_PROFILE`, or `default`) in the AWS
/// config and credentials files. A profile without the key, or files that cannot be read,
/// pass: the SDK then uses no profile endpoint either.
pub async fn check_profile_endpoint() -> Result<(), KmsError> {
    check_profile_endpoint_in(&Env::real(), &Fs::real()).await
}

async fn check_profile_endpoint_in(env: &Env, fs: &Fs) -> Result<(), KmsError> {
    let Some(profiles) = load(env, fs, EnvConfigFiles::default()).await else {
        return Ok(());
    };
    let Some(value) = profiles.get(PROFILE_ENDPOINT_KEY) else {
        return Ok(());
    };
    let Some(problem) = endpoint_url_problem(value) else {
        return Ok(());
    };
    Err(KmsError::InvalidProfileEndpointUrl {
        file: file_with_value(env, fs, value).await,
        profile: profiles.selected_profile().to_owned(),
        value: value.to_owned(),
        problem,
    })
}

async fn load(env: &Env, fs: &Fs, files: EnvConfigFiles) -> Option<ProfileSet> {
    aws_config::profile::load(fs, env, &files, None).await.ok()
}

/// Names the file the value came from. The SDK merges the credentials file over the config
/// file, so the credentials file is looked at first.
async fn file_with_value(env: &Env, fs: &Fs, value: &str) -> String {
    let credentials = EnvConfigFiles::builder()
        .include_default_credentials_file(true)
        .build();
    let in_credentials = load(env, fs, credentials)
        .await
        .is_some_and(|profiles| profiles.get(PROFILE_ENDPOINT_KEY) == Some(value));
    if in_credentials {
        return file_name(env, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials");
    }
    file_name(env, "AWS_CONFIG_FILE", "~/.aws/config")
}

/// Returns the file `variable` names, or `default` when it is unset.
fn file_name(env: &Env, variable: &str, default: &str) -> String {
    env.get(variable).unwrap_or_else(|_| default.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: &str, credentials: &str, profile: Option<&str>) -> Result<(), KmsError> {
        let mut variables = vec![
            ("AWS_CONFIG_FILE", "/test/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/test/credentials"),
        ];
        if let Some(profile) = profile {
            variables.push(("AWS_PROFILE", profile));
        }
        let env = Env::from_slice(&variables);
        let fs = Fs::from_slice(&[("/test/config", config), ("/test/credentials", credentials)]);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(check_profile_endpoint_in(&env, &fs))
    }

    #[test]
    fn rejects_invalid_profile_endpoint_url() {
        let error = check("[default]\nendpoint_url = 127.0.0.1:4566\n", "", None).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("endpoint_url"), "{message}");
        assert!(message.contains("\"127.0.0.1:4566\""), "{message}");
        assert!(message.contains("/test/config"), "{message}");
        assert!(message.contains("profile default"), "{message}");
        assert!(message.contains("scheme"), "{message}");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn names_credentials_file_and_selected_profile() {
        let credentials = "[dev]\nendpoint_url = ftp://127.0.0.1\n";
        let error = check("", credentials, Some("dev")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/test/credentials"), "{message}");
        assert!(message.contains("profile dev"), "{message}");
    }

    #[test]
    fn accepts_valid_or_missing_profile_endpoint_url() {
        assert!(
            check(
                "[default]\nendpoint_url = http://127.0.0.1:4566\n",
                "",
                None
            )
            .is_ok()
        );
        assert!(check("[default]\nregion = us-east-1\n", "", None).is_ok());
        assert!(check("", "", None).is_ok());
        let other_profile = "[profile other]\nendpoint_url = not a url\n";
        assert!(check(other_profile, "", None).is_ok());
    }
}
