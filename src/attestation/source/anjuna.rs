//! The `anjuna[=URL]` attester: a client of an endpoint speaking the Anjuna Nitro Runtime
//! attestation API (`GET …/api/v1/attestation/report?publicKey=…&userData=…&nonce=…`).
//!
//! Fields go out as padded base64url, as Anjuna's Go client sends them, and absent fields are
//! left out of the query. A 200 carries the raw COSE_Sign1 bytes; any other status may carry
//! a JSON object whose `error` field explains it. The endpoint is plain HTTP because it listens
//! on loopback inside the enclave, so `https://` URLs are rejected.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{AttestFuture, AttestationRequest, Attester, AttesterError};

/// Largest response body read, in bytes. NSM documents are at most 12 KiB (the driver's
/// response buffer), so anything larger is not a document.
pub const ANJUNA_MAX_RESPONSE_LEN: usize = 16 * 1024;

/// Maximum wait for a whole response, from connecting to the last body byte.
pub const ANJUNA_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum length of the `error` text from the endpoint repeated in our messages, in characters.
const MAX_ERROR_TEXT_CHARS: usize = 300;

/// Reason the Anjuna-compatible endpoint returned no document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnjunaError {
    #[error("invalid anjuna URL {url:?}: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("cannot connect to attestation endpoint {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with attestation endpoint {endpoint} failed: {detail}")]
    Http { endpoint: String, detail: String },
    #[error("attestation endpoint {endpoint} returned {status}: {message}")]
    Status {
        endpoint: String,
        status: StatusCode,
        message: String,
    },
    #[error(
        "attestation endpoint {endpoint} sent more than {limit} bytes; an attestation \
         document is at most 12 KiB"
    )]
    TooLarge { endpoint: String, limit: usize },
    #[error("attestation endpoint {endpoint} returned no complete response within {} ms", .after.as_millis())]
    TimedOut { endpoint: String, after: Duration },
    #[error("attestation endpoint {endpoint} returned an empty document")]
    EmptyDocument { endpoint: String },
}

/// A client of one Anjuna-compatible attestation endpoint.
#[derive(Debug, Clone)]
pub struct AnjunaAttester {
    /// `http://host:port/path`, without query, for messages.
    endpoint: String,
    host: String,
    port: u16,
    authority: String,
    path: String,
    timeout: Duration,
}

impl AnjunaAttester {
    /// Checks `url` (an `http://` URL without query or fragment) without connecting.
    pub fn new(url: &str) -> Result<Self, AnjunaError> {
        let invalid = |detail: &str| AnjunaError::InvalidUrl {
            url: url.to_owned(),
            detail: detail.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|error: http::uri::InvalidUri| invalid(&format!("not a URL: {error}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => {
                return Err(invalid(
                    "only http:// is supported: the endpoint listens on loopback inside the \
                     enclave",
                ));
            }
            None => return Err(invalid("missing scheme; expected http://HOST:PORT/PATH")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("missing host"))?
            .clone();
        if authority.as_str().contains('@') {
            return Err(invalid("user information in the URL is not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid(
                "the URL must not have a query; publicKey, userData and nonce are added per \
                 request",
            ));
        }
        // IPv6 literals keep their brackets in the authority but not in the host.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(80);
        let path = match uri.path() {
            "" => "/".to_owned(),
            path => path.to_owned(),
        };
        Ok(Self {
            endpoint: format!("http://{authority}{path}"),
            host,
            port,
            authority: authority.to_string(),
            path,
            timeout: ANJUNA_DEFAULT_TIMEOUT,
        })
    }

    /// Sets the longest wait for a whole response.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Returns the endpoint URL without query.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Builds the request target: the path and the query with the present fields.
    fn target(&self, request: &AttestationRequest) -> Result<String, AttesterError> {
        let checked = request.checked()?;
        let fields = [
            ("publicKey", checked.public_key()),
            ("userData", checked.user_data()),
            ("nonce", checked.nonce()),
        ];
        let query: Vec<String> = fields
            .into_iter()
            .filter_map(|(name, value)| value.map(|bytes| (name, bytes)))
            .map(|(name, bytes)| format!("{name}={}", URL_SAFE.encode(bytes)))
            .collect();
        if query.is_empty() {
            Ok(self.path.clone())
        } else {
            Ok(format!("{}?{}", self.path, query.join("&")))
        }
    }

    /// Connects, sends one GET for `target` and reads the document.
    async fn fetch(&self, target: String) -> Result<Vec<u8>, AnjunaError> {
        // 1. Connect and start the HTTP/1.1 connection on its own task, which ends when
        //    this function returns or is cancelled.
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| AnjunaError::Connect {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| self.http_error(&error))?;
        let _connection = AbortOnDrop(tokio::spawn(connection));

        // 2. Send the request.
        let request = Request::get(target)
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, "application/octet-stream")
            .body(Empty::<Bytes>::new())
            .map_err(|error| self.http_error(&error))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| self.http_error(&error))?;

        // 3. Read at most ANJUNA_MAX_RESPONSE_LEN bytes of body, whatever the status.
        let status = response.status();
        let too_large = || AnjunaError::TooLarge {
            endpoint: self.endpoint.clone(),
            limit: ANJUNA_MAX_RESPONSE_LEN,
        };
        let declared_len = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared_len.is_some_and(|len| len > ANJUNA_MAX_RESPONSE_LEN as u64) {
            return Err(too_large());
        }
        let body = Limited::new(response.into_body(), ANJUNA_MAX_RESPONSE_LEN)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    AnjunaError::Http {
                        endpoint: self.endpoint.clone(),
                        detail: error.to_string(),
                    }
                }
            })?
            .to_bytes();

        // 4. A 200 carries the document; anything else an explanation.
        if status != StatusCode::OK {
            return Err(AnjunaError::Status {
                endpoint: self.endpoint.clone(),
                status,
                message: error_message(&body),
            });
        }
        if body.is_empty() {
            return Err(AnjunaError::EmptyDocument {
                endpoint: self.endpoint.clone(),
            });
        }
        Ok(body.to_vec())
    }

    fn http_error(&self, error: &dyn std::fmt::Display) -> AnjunaError {
        AnjunaError::Http {
            endpoint: self.endpoint.clone(),
            detail: error.to_string(),
        }
    }
}

impl Attester for AnjunaAttester {
    fn attest<'a>(&'a self, request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async move {
            let target = self.target(request)?;
            match tokio::time::timeout(self.timeout, self.fetch(target)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(AnjunaError::TimedOut {
                    endpoint: self.endpoint.clone(),
                    after: self.timeout,
                }
                .into()),
            }
        })
    }

    fn name(&self) -> &'static str {
        "anjuna"
    }
}

/// Returns the `error` field of a JSON error body, shortened and with control characters
/// replaced, or a note that there is none.
fn error_message(body: &[u8]) -> String {
    let error = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("error")?.as_str().map(str::to_owned));
    match error {
        Some(text) => {
            let mut clean: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(MAX_ERROR_TEXT_CHARS)
                .collect();
            if text.chars().count() > MAX_ERROR_TEXT_CHARS {
                clean.push('…');
            }
            clean
        }
        None => format!(
            "no JSON error field in the {} byte response body",
            body.len()
        ),
    }
}

/// Aborts the connection task when the request ends, including on timeout.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_padded_base64url_query() {
        let attester = AnjunaAttester::new("http://127.0.0.1:9/api/v1/attestation/report").unwrap();
        let request = AttestationRequest {
            public_key: Some(vec![0xfb, 0xff]),
            user_data: None,
            nonce: Some(b"n".to_vec()),
        };
        assert_eq!(
            attester.target(&request).unwrap(),
            "/api/v1/attestation/report?publicKey=-_8=&nonce=bg=="
        );
    }

    #[test]
    fn leaves_out_absent_fields() {
        let attester = AnjunaAttester::new("http://127.0.0.1:9/report").unwrap();
        let target = attester.target(&AttestationRequest::default()).unwrap();
        assert_eq!(target, "/report");
    }

    #[test]
    fn rejects_unsupported_urls() {
        for url in [
            "https://127.0.0.1:50123/api/v1/attestation/report",
            "127.0.0.1:50123",
            "http://127.0.0.1:50123/report?x=1",
            "http://user@127.0.0.1/report",
            "not a url",
        ] {
            let error = AnjunaAttester::new(url).unwrap_err();
            assert!(matches!(error, AnjunaError::InvalidUrl { .. }), "{url}");
        }
    }

    #[test]
    fn parses_ipv6_loopback_url() {
        let attester = AnjunaAttester::new("http://[::1]:8080/r").unwrap();
        assert_eq!(attester.host, "::1");
        assert_eq!(attester.port, 8080);
        assert_eq!(attester.endpoint(), "http://[::1]:8080/r");
    }

    #[test]
    fn error_message_reads_json_error_field() {
        assert_eq!(error_message(br#"{"error":"bad\nthing"}"#), "bad thing");
        assert_eq!(
            error_message(b"oops"),
            "no JSON error field in the 4 byte response body"
        );
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(400));
        assert_eq!(error_message(long.as_bytes()).chars().count(), 301);
    }
}
