//! An HTTP client for the AWS SDK that sends each request through the route for its
//! `host:port`, with TLS terminated here.
//!
//! Each request opens its own connection (the broker makes a handful of calls at boot, so
//! no pool is kept). HTTP/1.1 only, which KMS and instance metadata both speak.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tracing::debug;

use super::connect::{Connector, Stream};
use super::limit::read_capped_body;
use super::{Route, Target};

/// Connection attempts give up after this long when the SDK sets no connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Root certificates for TLS to AWS endpoints.
#[derive(Clone)]
pub enum TlsRoots {
    /// Mozilla's root program as bundled by `webpki-roots`: an enclave image usually has
    /// no CA store of its own.
    Bundled,
    /// Only these certificates (DER). For tests against a local HTTPS server.
    Custom(Vec<Vec<u8>>),
}

/// Failure to build the routed client or to send a request through it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("no trusted CA roots loaded; TLS to KMS cannot be checked")]
    NoRoots,
    #[error("invalid root certificate {index}: {detail}")]
    InvalidRoot { index: usize, detail: String },
    #[error("two routes for {destination}; give each HOST:PORT one route")]
    DuplicateRoute { destination: String },
    #[error("{url}: {problem}")]
    InvalidUrl { url: String, problem: &'static str },
    #[error(
        "no route for {destination}; with --route given, every destination needs one \
         (add --route {destination}=vsock:CID:PORT)"
    )]
    NoRoute { destination: String },
    #[error("connecting to {target} (route for {destination}) failed: {source}")]
    Connect {
        target: Target,
        destination: String,
        source: std::io::Error,
    },
    #[error("connecting to {target} (route for {destination}) timed out after {} ms", timeout.as_millis())]
    ConnectTimeout {
        target: Target,
        destination: String,
        timeout: Duration,
    },
    #[error("TLS with {server_name} through {target} failed: {source}")]
    Tls {
        server_name: String,
        target: Target,
        source: std::io::Error,
    },
    #[error("HTTP exchange with {destination} failed: {source}")]
    Http {
        destination: String,
        source: hyper::Error,
    },
    #[error(
        "response from {destination} exceeds the {} MiB limit",
        limit / (1024 * 1024)
    )]
    ResponseTooLarge { destination: String, limit: usize },
}

/// The SDK HTTP client that honours `--route`.
#[derive(Clone)]
pub struct RoutedHttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    routes: HashMap<(String, u16), Target>,
    tls: Arc<rustls::ClientConfig>,
    connector: Arc<dyn Connector>,
    connect_timeout: Duration,
}

impl fmt::Debug for RoutedHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedHttpClient")
            .field("routes", &self.inner.routes.len())
            .finish_non_exhaustive()
    }
}

impl RoutedHttpClient {
    /// Builds a client over `routes`, trusting `roots`, connecting through `connector`.
    pub fn new(
        routes: &[Route],
        roots: TlsRoots,
        connector: Arc<dyn Connector>,
    ) -> Result<Self, TransportError> {
        let mut table = HashMap::new();
        for route in routes {
            let key = (route.host.to_ascii_lowercase(), route.port);
            if table.insert(key, route.target.clone()).is_some() {
                return Err(TransportError::DuplicateRoute {
                    destination: format!("{}:{}", route.host, route.port),
                });
            }
        }

        let store = root_store(roots)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TransportError::InvalidRoot {
                index: 0,
                detail: error.to_string(),
            })?
            .with_root_certificates(store)
            .with_no_client_auth();

        Ok(Self {
            inner: Arc::new(Inner {
                routes: table,
                tls: Arc::new(tls),
                connector,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            }),
        })
    }

    /// Checks that requests to `url` have a route, so a missing `--route` is reported before
    /// any work is done rather than at the first request.
    pub fn check_url(&self, url: &str) -> Result<(), TransportError> {
        let uri: http::Uri = url.parse().map_err(|_| TransportError::InvalidUrl {
            url: url.to_owned(),
            problem: "not a valid URL",
        })?;
        let destination = Destination::of(&uri)?;
        if self
            .inner
            .routes
            .contains_key(&(destination.host.clone(), destination.port))
        {
            return Ok(());
        }
        Err(TransportError::NoRoute {
            destination: destination.label(),
        })
    }

    /// Returns each route as its destination (`host:port`) and target.
    pub fn routes(&self) -> impl Iterator<Item = (String, &Target)> {
        self.inner
            .routes
            .iter()
            .map(|((host, port), target)| (format!("{host}:{port}"), target))
    }

    /// Wraps the client for `aws_config` and the SDK clients.
    pub fn into_shared(self) -> SharedHttpClient {
        SharedHttpClient::new(self)
    }
}

fn root_store(roots: TlsRoots) -> Result<RootCertStore, TransportError> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::Bundled => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsRoots::Custom(certificates) => {
            for (index, der) in certificates.into_iter().enumerate() {
                store
                    .add(der.into())
                    .map_err(|error| TransportError::InvalidRoot {
                        index,
                        detail: error.to_string(),
                    })?;
            }
        }
    }
    if store.is_empty() {
        return Err(TransportError::NoRoots);
    }
    Ok(store)
}

impl HttpClient for RoutedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let mut client = self.clone();
        if let Some(timeout) = settings.connect_timeout() {
            let inner = Inner {
                routes: self.inner.routes.clone(),
                tls: Arc::clone(&self.inner.tls),
                connector: Arc::clone(&self.inner.connector),
                connect_timeout: timeout,
            };
            client = Self {
                inner: Arc::new(inner),
            };
        }
        SharedHttpConnector::new(client)
    }
}

impl HttpConnector for RoutedHttpClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = Arc::clone(&self.inner);
        HttpConnectorFuture::new(async move { inner.send(request).await })
    }
}

/// Destination of a request: scheme, host and port from its URI.
struct Destination {
    https: bool,
    host: String,
    port: u16,
}

impl Destination {
    fn of(uri: &http::Uri) -> Result<Self, TransportError> {
        let invalid = |problem| TransportError::InvalidUrl {
            url: uri.to_string(),
            problem,
        };
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("scheme is not http or https")),
        };
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Inner {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let request = request
            .try_into_http1x()
            .map_err(|error| ConnectorError::user(error.into()))?;
        let destination =
            Destination::of(request.uri()).map_err(|error| ConnectorError::user(error.into()))?;

        let target = self
            .routes
            .get(&(destination.host.clone(), destination.port))
            .ok_or_else(|| {
                ConnectorError::user(
                    TransportError::NoRoute {
                        destination: destination.label(),
                    }
                    .into(),
                )
            })?;

        let request = to_origin_form(request, &destination)?;
        let stream = self.open(&destination, target).await?;
        exchange(stream, request, &destination).await
    }

    /// Connects to the route target and, for https, runs the TLS handshake with the
    /// original host as server name.
    async fn open(
        &self,
        destination: &Destination,
        target: &Target,
    ) -> Result<Box<dyn Stream>, ConnectorError> {
        debug!(destination = %destination.label(), %target, "connecting through route");
        let connecting = self.connector.connect(target);
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ConnectorError::io(
                    TransportError::Connect {
                        target: target.clone(),
                        destination: destination.label(),
                        source,
                    }
                    .into(),
                ));
            }
            Err(_) => {
                return Err(ConnectorError::timeout(
                    TransportError::ConnectTimeout {
                        target: target.clone(),
                        destination: destination.label(),
                        timeout: self.connect_timeout,
                    }
                    .into(),
                ));
            }
        };
        if !destination.https {
            return Ok(stream);
        }

        let server_name = ServerName::try_from(destination.host.clone()).map_err(|_| {
            ConnectorError::user(
                TransportError::InvalidUrl {
                    url: destination.label(),
                    problem: "host is not a valid TLS server name",
                }
                .into(),
            )
        })?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let stream = tls.connect(server_name, stream).await.map_err(|source| {
            ConnectorError::io(
                TransportError::Tls {
                    server_name: destination.host.clone(),
                    target: target.clone(),
                    source,
                }
                .into(),
            )
        })?;
        Ok(Box::new(stream))
    }
}

/// Rewrites the request line to origin form (`/path?query`) and sets `Host` to the
/// original host, as an HTTP/1.1 client sending straight to the server does. SigV4 signs
/// that host, so it must not become the route target.
fn to_origin_form(
    request: http::Request<SdkBody>,
    destination: &Destination,
) -> Result<http::Request<SdkBody>, ConnectorError> {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        let default_port = if destination.https { 443 } else { 80 };
        let host = if destination.port == default_port {
            destination.host.clone()
        } else {
            destination.label()
        };
        let value = http::HeaderValue::from_str(&host)
            .map_err(|error| ConnectorError::user(error.into()))?;
        parts.headers.insert(http::header::HOST, value);
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    parts.uri = path
        .parse()
        .map_err(|error: http::uri::InvalidUri| ConnectorError::user(error.into()))?;
    Ok(http::Request::from_parts(parts, body))
}

/// Sends one request over an open stream with HTTP/1.1 and returns the response with its
/// whole body, read by `read_capped_body` so that a body over the limit fails without a
/// retry.
async fn exchange(
    stream: Box<dyn Stream>,
    request: http::Request<SdkBody>,
    destination: &Destination,
) -> Result<HttpResponse, ConnectorError> {
    let http_error = |source| {
        ConnectorError::io(
            TransportError::Http {
                destination: destination.label(),
                source,
            }
            .into(),
        )
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%error, "routed connection ended with an error");
        }
    });

    let response = sender.send_request(request).await.map_err(http_error)?;

    // A larger body is cut off instead of being held in enclave memory.
    read_capped_body(response, &destination.label(), |error| {
        match error.downcast::<hyper::Error>() {
            Ok(source) => http_error(*source),
            Err(other) => ConnectorError::io(other),
        }
    })
    .await
}
