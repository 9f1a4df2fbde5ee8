//! Requests to responses: the one route, the error bodies and the access log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::Semaphore;
use tower_service::Service;

use super::Limits;
use super::host::check_loopback_request;
use super::query::parse_report_query;
use crate::attestation::source::Attester;

/// The only path served.
pub const REPORT_PATH: &str = "/api/v1/attestation/report";

/// Maximum length of the request path written to the access log, in characters.
const MAX_LOGGED_PATH_CHARS: usize = 100;

/// The stable prefix of every error body, `{"error": "<code>: <message>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: a parameter is empty, repeated, not base64url or too large.
    InvalidParameter,
    /// 404: any path but [`REPORT_PATH`].
    NotFound,
    /// 405: any method but GET.
    MethodNotAllowed,
    /// 414: the request target is longer than [`Limits::max_uri_len`].
    UriTooLong,
    /// 421: the `Host` header or an absolute-form request target names a host that is not
    /// loopback, as in a DNS-rebinding attack from a web page.
    MisdirectedRequest,
    /// 500: the attester failed; the cause is in the server log only.
    AttestationFailed,
    /// 503: no document within [`Limits::request_timeout`].
    AttesterTimeout,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::MisdirectedRequest => "misdirected_request",
            ErrorCode::AttestationFailed => "attestation_failed",
            ErrorCode::AttesterTimeout => "attester_timeout",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameter => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorCode::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::AttestationFailed => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::AttesterTimeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Builds the JSON error response for `code`. Every error the endpoint returns goes through
/// here, so `message` must never carry attester internals or request values.
pub(super) fn error_response(code: ErrorCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": format!("{}: {message}", code.as_str()) });
    let mut response = (code.status(), body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if code == ErrorCode::MethodNotAllowed {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

#[derive(Clone)]
struct AppState {
    attester: Arc<dyn Attester>,
    permits: Arc<Semaphore>,
    request_timeout: Duration,
}

/// Builds the router: GET on [`REPORT_PATH`], 405 for other methods there (HEAD included,
/// because axum would otherwise run the GET handler for it), 404 elsewhere.
pub(super) fn router(attester: Arc<dyn Attester>, limits: &Limits) -> Router {
    let state = AppState {
        attester,
        permits: Arc::new(Semaphore::new(limits.max_concurrent_attestations.max(1))),
        request_timeout: limits.request_timeout,
    };
    let report_route = get(report)
        .head(method_not_allowed)
        .fallback(method_not_allowed);
    Router::new()
        .route(REPORT_PATH, report_route)
        .fallback(not_found)
        .with_state(state)
}

/// Handles one request from `peer`: checks the target length and, with
/// `loopback_hosts_only`, that the request is addressed to loopback, then routes and writes
/// one access-log line without the query.
pub(super) async fn handle<B>(
    mut router: Router,
    peer: SocketAddr,
    max_uri_len: usize,
    loopback_hosts_only: bool,
    request: Request<B>,
) -> Response<Body>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let path: String = request
        .uri()
        .path()
        .chars()
        .take(MAX_LOGGED_PATH_CHARS)
        .collect();
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());

    let not_loopback = if loopback_hosts_only {
        check_loopback_request(request.uri(), request.headers()).err()
    } else {
        None
    };

    let response = if target_len > max_uri_len {
        error_response(
            ErrorCode::UriTooLong,
            &format!("request target is {target_len} bytes, limit {max_uri_len}"),
        )
    } else if let Some(reason) = not_loopback {
        tracing::info!(%peer, ?reason, "request rejected: Host or target is not loopback");
        error_response(ErrorCode::MisdirectedRequest, reason.message())
    } else {
        // Router's future never fails (its error type is Infallible).
        match router.call(request.map(Body::new)).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };

    tracing::info!(
        target: "enclave_broker::access",
        %peer,
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

async fn report(State(state): State<AppState>, uri: Uri) -> Response<Body> {
    // 1. Parse the query; a client mistake is a 400 naming the parameter.
    let request = match parse_report_query(uri.query().unwrap_or("")) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(parameter = error.parameter(), %error, "invalid query");
            return error_response(ErrorCode::InvalidParameter, &error.to_string());
        }
    };

    // 2. Ask the attester, within the request deadline, including the wait for a slot. A
    //    source that never returns (a stuck device, a starved RNG) cannot hold the request.
    let attestation = async {
        let _permit = state.permits.acquire().await;
        state.attester.attest(&request).await
    };
    let attester = state.attester.name();
    match tokio::time::timeout(state.request_timeout, attestation).await {
        Ok(Ok(document)) => {
            let mut response = (StatusCode::OK, document).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        Ok(Err(error)) => {
            tracing::error!(attester, %error, "attestation failed");
            error_response(
                ErrorCode::AttestationFailed,
                "the attester could not produce a document; the cause is in the server log",
            )
        }
        Err(_) => {
            tracing::error!(
                attester,
                timeout_ms = state.request_timeout.as_millis() as u64,
                "attestation timed out"
            );
            error_response(
                ErrorCode::AttesterTimeout,
                "no attestation document within the request deadline; try again",
            )
        }
    }
}

async fn method_not_allowed(method: Method) -> Response<Body> {
    let method: String = method.as_str().chars().take(20).collect();
    error_response(
        ErrorCode::MethodNotAllowed,
        &format!("{method} is not allowed; use GET"),
    )
}

async fn not_found() -> Response<Body> {
    error_response(
        ErrorCode::NotFound,
        &format!("no such path; the attestation report is at GET {REPORT_PATH}"),
    )
}
