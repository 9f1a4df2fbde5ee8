//! The cap on response bodies, applied by the routed client and by the SDK's default client
//! alike, so no KMS or instance-metadata response can fill the broker's memory.

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::TransportError;

/// Largest response body accepted, in bytes. KMS and instance metadata send a few KiB.
pub(super) const MAX_RESPONSE_LEN: usize = 1024 * 1024;

/// Reads the whole body of `response` and returns it as an SDK response. A body declared or
/// found to be over `MAX_RESPONSE_LEN` stops the read with `TransportError::ResponseTooLarge`.
///
/// The SDK retries errors met while it reads a body itself, so the body is read here: an
/// error without a kind (`other` with `None`) is not retried. `map_body_error` turns any other
/// read failure, such as a reset connection, into the connector error to return.
pub(super) async fn read_capped_body<B>(
    response: http::Response<B>,
    destination: &str,
    map_body_error: impl FnOnce(BoxError) -> ConnectorError,
) -> Result<HttpResponse, ConnectorError>
where
    B: hyper::body::Body + Send,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        ConnectorError::other(
            TransportError::ResponseTooLarge {
                destination: destination.to_owned(),
                limit: MAX_RESPONSE_LEN,
            }
            .into(),
            None,
        )
    };

    let declared_len = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > MAX_RESPONSE_LEN as u64) {
        return Err(too_large());
    }

    let (parts, body) = response.into_parts();
    let body = match Limited::new(body, MAX_RESPONSE_LEN).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(too_large()),
        Err(error) => return Err(map_body_error(error)),
    };

    let response = http::Response::from_parts(parts, SdkBody::from(body));
    HttpResponse::try_from(response).map_err(|error| ConnectorError::other(error.into(), None))
}

/// Builds the SDK's HTTPS client (hyper 1 with rustls and aws-lc, the default of
/// `aws-config` 1.13) with every response body capped at `MAX_RESPONSE_LEN`. Direct
/// connections, made when no `--route` is given, use this client.
///
/// NOTE: proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) are not read, so every
/// connection goes straight to its host.
pub fn default_https_client() -> SharedHttpClient {
    let sdk_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    SharedHttpClient::new(CappedHttpClient { inner: sdk_client })
}

/// Wraps another SDK HTTP client and reads each response body through `read_capped_body`.
#[derive(Debug, Clone)]
struct CappedHttpClient {
    inner: SharedHttpClient,
}

impl HttpClient for CappedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CappedConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct CappedConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for CappedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let destination = destination_label(request.uri());
        let sending = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let response = sending
                .await?
                .try_into_http1x()
                .map_err(|error| ConnectorError::other(error.into(), None))?;
            read_capped_body(response, &destination, ConnectorError::io).await
        })
    }
}

/// `host:port` of a request URI for messages, or the URI itself when it has no host.
fn destination_label(uri: &str) -> String {
    let Ok(uri) = uri.parse::<http::Uri>() else {
        return uri.to_owned();
    };
    let Some(host) = uri.host() else {
        return uri.to_string();
    };
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    format!("{host}:{}", uri.port_u16().unwrap_or(default_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_destination_with_default_port() {
        assert_eq!(
            destination_label("https://kms.us-east-1.amazonaws.com/"),
            "kms.us-east-1.amazonaws.com:443"
        );
        assert_eq!(destination_label("http://127.0.0.1:4566"), "127.0.0.1:4566");
    }

    #[tokio::test]
    async fn rejects_body_declared_over_limit() {
        let response = http::Response::builder()
            .header(http::header::CONTENT_LENGTH, "314572800")
            .body(SdkBody::from("{}"))
            .unwrap();
        let error = read_capped_body(response, "kms.test:443", ConnectorError::io)
            .await
            .unwrap_err();
        assert!(error.is_other(), "not retried: {error:?}");
        assert!(
            format!("{:?}", error).contains("ResponseTooLarge"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn rejects_body_read_over_limit() {
        let body = vec![b' '; MAX_RESPONSE_LEN + 1];
        let response = http::Response::new(SdkBody::from(body));
        let error = read_capped_body(response, "kms.test:443", ConnectorError::io)
            .await
            .unwrap_err();
        assert!(error.is_other(), "not retried: {error:?}");
    }

    #[tokio::test]
    async fn returns_body_at_limit() {
        let response = http::Response::new(SdkBody::from(vec![b' '; MAX_RESPONSE_LEN]));
        let response = read_capped_body(response, "kms.test:443", ConnectorError::io)
            .await
            .unwrap();
        assert_eq!(
            response.body().bytes().map(<[u8]>::len),
            Some(MAX_RESPONSE_LEN)
        );
    }
}
