//! The KMS endpoint: the endpoint variables checked before the AWS SDK reads them, and the
//! one URL every request goes to.
//!
//! The SDK logs a warning for an `AWS_ENDPOINT_URL` it cannot parse and then uses the
//! regional AWS endpoint, so a typo would send the request to AWS KMS. The broker rejects
//! such values before the SDK reads them.

use std::ffi::OsString;

use aws_sdk_kms::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};

use super::KmsError;
use crate::transport::Target;

/// The shared endpoint variable of the AWS SDKs, used by every service.
pub const SHARED_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL";

/// The KMS-only endpoint variable; it takes precedence over `AWS_ENDPOINT_URL`.
pub const KMS_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_KMS";

/// Origin of the endpoint in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    /// `AWS_ENDPOINT_URL_KMS`.
    KmsVariable,
    /// `AWS_ENDPOINT_URL` or `endpoint_url` in the AWS profile.
    SharedSetting,
    /// Nothing configured: the regional AWS KMS endpoint.
    AwsDefault,
}

/// The endpoint every KMS request goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    pub url: String,
    pub source: EndpointSource,
}

/// Checks `AWS_ENDPOINT_URL_KMS` and `AWS_ENDPOINT_URL` in the process environment and
/// returns the valid value of `AWS_ENDPOINT_URL_KMS`, if set. A variable that is set but
/// empty is invalid.
///
/// `endpoint_url` in the AWS profile is checked by `profile::check_profile_endpoint`.
pub fn read_endpoint_variables() -> Result<Option<String>, KmsError> {
    let kms = std::env::var_os(KMS_ENDPOINT_VARIABLE);
    let shared = std::env::var_os(SHARED_ENDPOINT_VARIABLE);
    check_endpoint_variables(kms, shared)
}

/// True when `AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL` is set; the SDK then ignores
/// `endpoint_url` in the AWS profile.
pub fn is_endpoint_variable_set() -> bool {
    std::env::var_os(KMS_ENDPOINT_VARIABLE).is_some()
        || std::env::var_os(SHARED_ENDPOINT_VARIABLE).is_some()
}

/// Checks the variable values given, as `read_endpoint_variables` does for the environment.
fn check_endpoint_variables(
    kms: Option<OsString>,
    shared: Option<OsString>,
) -> Result<Option<String>, KmsError> {
    if let Some(value) = shared {
        parse_endpoint_variable(SHARED_ENDPOINT_VARIABLE, value)?;
    }
    kms.map(|value| parse_endpoint_variable(KMS_ENDPOINT_VARIABLE, value))
        .transpose()
}

/// Returns `value` when it is an absolute `http://` or `https://` URL with a host and, if a
/// port is given, a port from 1 to 65535.
fn parse_endpoint_variable(variable: &'static str, value: OsString) -> Result<String, KmsError> {
    let value = value
        .into_string()
        .map_err(|value| KmsError::InvalidEndpointUrl {
            variable,
            value: value.to_string_lossy().into_owned(),
            problem: "not valid UTF-8",
        })?;
    match endpoint_url_problem(&value) {
        None => Ok(value),
        Some(problem) => Err(KmsError::InvalidEndpointUrl {
            variable,
            value,
            problem,
        }),
    }
}

/// Names what is wrong with `value` as an endpoint URL, or returns `None` when it is valid.
pub(super) fn endpoint_url_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return Some("the value is empty");
    }
    let Ok(uri) = value.parse::<http::Uri>() else {
        return Some("not a URL");
    };
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "https") => {}
        Some(_) => return Some("the scheme is not http or https"),
        None => return Some("the scheme is missing"),
    }
    let Some(authority) = uri.authority() else {
        return Some("the host is missing");
    };
    if uri.host().is_none_or(str::is_empty) {
        return Some("the host is missing");
    }
    if authority.as_str().contains('@') {
        return Some("it contains user information (user@), which an endpoint must not carry");
    }

    // The authority is HOST or HOST:PORT here; an IPv6 host is in brackets.
    let authority = authority.as_str();
    let port = match authority.rfind(']') {
        Some(end) => authority[end + 1..].strip_prefix(':'),
        None => authority.rsplit_once(':').map(|(_, port)| port),
    };
    match port.map(str::parse::<u16>) {
        None | Some(Ok(1..)) => {}
        Some(_) => return Some("the port is not a number from 1 to 65535"),
    }
    // The SDK parses endpoint URLs with the `url` crate, which is stricter than `http::Uri`
    // about hosts (`127.0.0.1.4566`, `localhost.4566`, `127.0.0.256`). A value it rejects
    // would be dropped for AWS KMS, so it is rejected here too.
    match url::Url::parse(value) {
        Ok(url) if url.host().is_some() => None,
        _ => Some("the host is not a valid host name or IP address"),
    }
}

/// Returns the regional AWS KMS endpoint by the SDK's own endpoint rules, so that the
/// partitions with other domains (China, isolated regions) and the FIPS and dual-stack
/// settings give the URL the SDK would have used.
pub async fn aws_regional_endpoint(
    region: &str,
    use_fips: bool,
    use_dual_stack: bool,
) -> Result<String, KmsError> {
    let no_endpoint = |detail: String| KmsError::NoAwsEndpoint {
        region: region.to_owned(),
        detail,
    };
    let params = Params::builder()
        .region(region)
        .use_fips(use_fips)
        .use_dual_stack(use_dual_stack)
        .build()
        .map_err(|error| no_endpoint(error.to_string()))?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|error| no_endpoint(crate::error_text::one_line(&*error)))?;
    Ok(endpoint.url().to_owned())
}

/// Picks the endpoint the SDK would use: `AWS_ENDPOINT_URL_KMS`, then the shared endpoint
/// (`AWS_ENDPOINT_URL` or the profile's `endpoint_url`), then `aws_default`, the regional
/// AWS endpoint.
pub fn resolve_endpoint(
    kms_variable: Option<String>,
    shared_endpoint: Option<&str>,
    aws_default: String,
) -> ResolvedEndpoint {
    if let Some(url) = kms_variable {
        return ResolvedEndpoint {
            url,
            source: EndpointSource::KmsVariable,
        };
    }
    match shared_endpoint {
        Some(url) => ResolvedEndpoint {
            url: url.to_owned(),
            source: EndpointSource::SharedSetting,
        },
        None => ResolvedEndpoint {
            url: aws_default,
            source: EndpointSource::AwsDefault,
        },
    }
}

/// Domains of AWS service endpoints: `amazonaws.com`, `api.aws` (the dual-stack endpoints
/// such as `kms.us-east-1.api.aws`), `amazonaws.com.cn` (the China regions),
/// `amazonaws.eu` (the European Sovereign Cloud), and `c2s.ic.gov` and `sc2s.sgov.gov` (the
/// isolated regions).
const AWS_DOMAINS: [&str; 6] = [
    "amazonaws.com",
    "api.aws",
    "amazonaws.com.cn",
    "amazonaws.eu",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
];

/// True when the URL's host is an AWS service host (see `is_aws_host`). A URL that cannot
/// be parsed counts as not AWS.
pub fn is_aws_endpoint(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    uri.host().is_some_and(is_aws_host)
}

/// True when `host` is one of `AWS_DOMAINS` or a subdomain of one, in any letter case and
/// with or without a trailing dot.
///
/// NOTE: an IP address is never recognised, although it may belong to an AWS endpoint.
pub fn is_aws_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    AWS_DOMAINS
        .iter()
        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
}

/// Rejects, for a simulated enclave, a `--route` whose TCP target is an AWS host: the route
/// would carry requests for a local KMS to AWS KMS, which the endpoint check alone misses.
pub fn check_simulator_route(destination: &str, target: &Target) -> Result<(), KmsError> {
    let Target::Tcp { host, .. } = target else {
        return Ok(());
    };
    if !is_aws_host(host) {
        return Ok(());
    }
    Err(KmsError::SimulatorRouteToAws {
        destination: destination.to_owned(),
        target: target.to_string(),
    })
}

/// Rejects AWS KMS for a simulated enclave. Documents of the `sim` attester are signed by
/// a development root, not by AWS, so AWS KMS can never accept them. Failing here, before a
/// key is generated or a request is sent, points the user to the missing `AWS_ENDPOINT_URL`.
pub fn check_simulator_endpoint(endpoint: &ResolvedEndpoint) -> Result<(), KmsError> {
    if endpoint.source != EndpointSource::AwsDefault && !is_aws_endpoint(&endpoint.url) {
        return Ok(());
    }
    Err(KmsError::SimulatorWithAwsKms {
        endpoint: endpoint.url.clone(),
        configured: endpoint.source != EndpointSource::AwsDefault,
    })
}

/// Accepts `https://` always and `http://` only when `allow_plain_http` is set.
pub fn check_endpoint_scheme(endpoint: &str, allow_plain_http: bool) -> Result<(), KmsError> {
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    if lower.starts_with("http://") && allow_plain_http {
        return Ok(());
    }
    Err(KmsError::InsecureEndpoint {
        endpoint: endpoint.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kms: Option<&str>, shared: Option<&str>) -> Result<Option<String>, KmsError> {
        check_endpoint_variables(kms.map(OsString::from), shared.map(OsString::from))
    }

    #[test]
    fn accepts_http_and_https_endpoint_urls() {
        for value in [
            "http://127.0.0.1:4566",
            "https://kms.us-east-1.amazonaws.com",
            "HTTP://localhost:4566/",
            "http://[::1]:4566",
            "https://kms.example/prefix",
        ] {
            assert_eq!(endpoint_url_problem(value), None, "{value}");
        }
    }

    #[test]
    fn rejects_invalid_endpoint_urls() {
        let cases = [
            ("", "empty"),
            ("not a url", "not a URL"),
            ("127.0.0.1:4677", "scheme"),
            ("localhost:4566", "scheme"),
            ("ftp://127.0.0.1:4566", "scheme"),
            ("http://127.0.0.1:99999", "port"),
            ("http://127.0.0.1:0", "port"),
            ("http://127.0.0.1:", "port"),
            ("http://:4566", "host"),
            ("/relative/path", "scheme"),
            ("http://user:secret@127.0.0.1:4566", "user information"),
        ];
        for (value, expected) in cases {
            let problem = endpoint_url_problem(value);
            assert!(
                problem.is_some_and(|problem| problem.contains(expected)),
                "{value:?}: {problem:?}"
            );
        }
    }

    #[test]
    fn rejects_invalid_shared_endpoint_variable() {
        let error = check(None, Some("not a url")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("AWS_ENDPOINT_URL=\"not a url\""),
            "{message}"
        );
        assert!(message.contains("http://"), "{message}");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn rejects_empty_kms_endpoint_variable() {
        let error = check(Some(""), None).unwrap_err();
        assert!(
            error.to_string().contains("AWS_ENDPOINT_URL_KMS=\"\""),
            "{error}"
        );
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn rejects_invalid_shared_endpoint_beside_kms_variable() {
        assert!(check(Some("http://127.0.0.1:4566"), Some("127.0.0.1:4566")).is_err());
    }

    #[test]
    fn returns_kms_variable_when_both_are_valid() {
        let value = check(Some("http://127.0.0.1:1"), Some("http://127.0.0.1:2")).unwrap();
        assert_eq!(value.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(check(None, None).unwrap(), None);
    }

    #[test]
    fn resolves_endpoint_in_sdk_order() {
        let aws = || "https://kms.eu-west-1.amazonaws.com".to_owned();
        let kms = resolve_endpoint(Some("http://a:1".into()), Some("http://b:2"), aws());
        assert_eq!(kms.url, "http://a:1");
        assert_eq!(kms.source, EndpointSource::KmsVariable);
        let shared = resolve_endpoint(None, Some("http://b:2"), aws());
        assert_eq!(shared.source, EndpointSource::SharedSetting);
        let default = resolve_endpoint(None, None, aws());
        assert_eq!(default.url, "https://kms.eu-west-1.amazonaws.com");
        assert_eq!(default.source, EndpointSource::AwsDefault);
    }

    #[tokio::test]
    async fn resolves_regional_endpoint_by_sdk_rules() {
        let cases = [
            (
                "eu-west-1",
                false,
                false,
                "https://kms.eu-west-1.amazonaws.com",
            ),
            (
                "cn-north-1",
                false,
                false,
                "https://kms.cn-north-1.amazonaws.com.cn",
            ),
            (
                "us-east-1",
                true,
                false,
                "https://kms-fips.us-east-1.amazonaws.com",
            ),
            ("us-east-1", false, true, "https://kms.us-east-1.api.aws"),
        ];
        for (region, fips, dual_stack, expected) in cases {
            let url = aws_regional_endpoint(region, fips, dual_stack)
                .await
                .unwrap();
            assert_eq!(
                url, expected,
                "{region} fips={fips} dual_stack={dual_stack}"
            );
            assert!(is_aws_endpoint(&url), "{url}");
        }
    }

    #[test]
    fn rejects_hosts_the_sdk_cannot_parse() {
        for value in [
            "http://127.0.0.1.4566",
            "http://localhost.4566",
            "https://localhost.4566",
            "http://127.0.0.256:4699",
            "http://1.2.3.4.5:4699",
        ] {
            assert_eq!(
                endpoint_url_problem(value),
                Some("the host is not a valid host name or IP address"),
                "{value}"
            );
        }
        assert_eq!(endpoint_url_problem("http://[::1]:4566"), None);
        assert_eq!(endpoint_url_problem("http://localhost:4566"), None);
    }

    #[test]
    fn recognizes_aws_hosts() {
        assert!(is_aws_endpoint("https://kms.us-east-1.amazonaws.com"));
        assert!(is_aws_endpoint(
            "https://KMS-FIPS.us-east-1.amazonaws.com:443/"
        ));
        assert!(is_aws_endpoint("https://kms.cn-north-1.amazonaws.com.cn"));
        assert!(is_aws_endpoint("https://kms.us-east-1.api.aws"));
        assert!(is_aws_endpoint("https://KMS.us-east-1.API.AWS./"));
        assert!(!is_aws_endpoint("http://127.0.0.1:4566"));
        assert!(!is_aws_endpoint("https://kms.notapi.aws"));
        assert!(!is_aws_endpoint("https://notamazonaws.com"));
        assert!(!is_aws_endpoint("https://amazonaws.com.example"));
    }

    #[test]
    fn rejects_aws_kms_for_simulator() {
        let default =
            resolve_endpoint(None, None, "https://kms.us-east-1.amazonaws.com".to_owned());
        let error = check_simulator_endpoint(&default).unwrap_err();
        assert!(error.to_string().contains("AWS_ENDPOINT_URL"), "{error}");
        assert_eq!(error.exit_code(), 2);

        let configured = resolve_endpoint(
            None,
            Some("https://kms.us-east-1.amazonaws.com"),
            "x".to_owned(),
        );
        assert!(check_simulator_endpoint(&configured).is_err());

        let local = resolve_endpoint(
            None,
            Some("http://127.0.0.1:4566"),
            "https://kms.us-east-1.amazonaws.com".to_owned(),
        );
        assert!(check_simulator_endpoint(&local).is_ok());
    }

    #[test]
    fn rejects_simulator_route_to_aws_host() {
        for host in [
            "kms.us-east-1.amazonaws.com",
            "KMS.us-east-1.AmazonAWS.com.",
            "kms.us-east-1.api.aws",
            "kms.cn-north-1.amazonaws.com.cn",
            "amazonaws.com",
        ] {
            let target = Target::Tcp {
                host: host.to_owned(),
                port: 443,
            };
            let error = check_simulator_route("127.0.0.1:4688", &target).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("127.0.0.1:4688"), "{message}");
            assert!(message.contains(host), "{message}");
            assert_eq!(error.exit_code(), 2);
        }
    }

    #[test]
    fn accepts_simulator_route_to_local_target() {
        let local = Target::Tcp {
            host: "127.0.0.1".to_owned(),
            port: 4566,
        };
        assert!(check_simulator_route("kms.us-east-1.amazonaws.com:443", &local).is_ok());
        let vsock = Target::Vsock { cid: 3, port: 8000 };
        assert!(check_simulator_route("kms.us-east-1.amazonaws.com:443", &vsock).is_ok());
    }

    #[test]
    fn rejects_plain_http_endpoint_without_simulator() {
        let error = check_endpoint_scheme("http://127.0.0.1:4566", false).unwrap_err();
        assert!(error.to_string().contains("http://127.0.0.1:4566"));
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn accepts_plain_http_endpoint_with_simulator() {
        assert!(check_endpoint_scheme("http://127.0.0.1:4566", true).is_ok());
        assert!(check_endpoint_scheme("HTTPS://kms.us-east-1.amazonaws.com", false).is_ok());
    }

    #[test]
    fn rejects_endpoint_without_scheme() {
        assert!(check_endpoint_scheme("kms.us-east-1.amazonaws.com", true).is_err());
    }
}
