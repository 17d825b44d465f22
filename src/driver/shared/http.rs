//! The HTTP client every REST driver uses, and the one rule that sorts its failures into
//! `ErrorKind`s.
//!
//! The rule (the same for every REST engine, so the runner's lost-engine stop and the
//! error counts in results mean the same thing for each):
//!
//! | failure | kind |
//! |---|---|
//! | connection refused, reset or closed before an answer; DNS; TLS; HTTP 502, 503 | `Unreachable` |
//! | no answer within the timeout (connect or request); HTTP 408, 504 | `Timeout` |
//! | HTTP 401, 403 (credentials missing or refused) | `Auth` |
//! | HTTP 429 (the engine sheds load) | `Rejected` |
//! | any other 4xx or 5xx | `Rejected` |
//! | a 2xx body that cannot be decoded | `Protocol` |
//!
//! Why 502 and 503 are `Unreachable`: they come from a proxy or the server itself saying
//! the engine behind it cannot serve at all; twenty in a row mean the rest of the phase
//! would only measure a dead engine. Why 429 is `Rejected` and not its own kind: the engine
//! is alive and answered that request on purpose, as it does a bad query; the status code
//! stays in the message, so the samples in results show which it was. Why 401/403 are
//! `Auth`: a refused credential is a configuration error that fails the engine, never an
//! absent server to skip.
//!
//! This module must never see or print credentials: headers carrying them are marked
//! sensitive by the driver, and URLs are stripped from reqwest's errors.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};

use crate::driver::EngineConfig;
use crate::error::{DriverError, ErrorKind};

/// A pooled keep-alive client with Nagle off (requests are small and latency-bound).
/// `timeout` bounds a whole request when the driver sets none per request.
pub fn client(
    cfg: &EngineConfig,
    headers: HeaderMap,
    connect_timeout: Duration,
    timeout: Option<Duration>,
) -> Result<Client, String> {
    let mut builder = Client::builder()
        .default_headers(headers)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .connect_timeout(connect_timeout);
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    builder.build().map_err(|e| format!("engines.{}: cannot build the HTTP client: {e}", cfg.name))
}

/// The kind of a non-2xx answer.
pub fn status_kind(status: StatusCode) -> ErrorKind {
    match status {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Unreachable,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorKind::Timeout,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Auth,
        _ => ErrorKind::Rejected,
    }
}

/// A non-2xx answer as an error: `<engine> <what>: HTTP <code>: <the engine's reason>`.
pub fn status_error(engine: &str, what: &str, status: StatusCode, reason: &str) -> DriverError {
    DriverError::new(status_kind(status), format!("{engine} {what}: HTTP {}: {reason}", status.as_u16()))
}

/// A failure below HTTP (or a body that could not be read or decoded) as an error, with
/// the causes reqwest wraps ("connection refused", "connection reset by peer") spelled out.
pub fn transport_error(engine: &str, what: &str, e: reqwest::Error) -> DriverError {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::Protocol
    } else if e.is_builder() {
        ErrorKind::Other
    } else {
        // Connect failures, resets, connections closed before or during the answer: the
        // engine is not answering.
        ErrorKind::Unreachable
    };
    let mut msg = format!("{engine} {what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        source = s.source();
    }
    DriverError::new(kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_sort_by_the_documented_rule() {
        let kind = |c: u16| status_kind(StatusCode::from_u16(c).expect("status"));
        assert_eq!(kind(502), ErrorKind::Unreachable);
        assert_eq!(kind(503), ErrorKind::Unreachable);
        assert_eq!(kind(408), ErrorKind::Timeout);
        assert_eq!(kind(504), ErrorKind::Timeout);
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        assert_eq!(kind(429), ErrorKind::Rejected);
        assert_eq!(kind(400), ErrorKind::Rejected);
        assert_eq!(kind(500), ErrorKind::Rejected);
        let e = status_error("chroma", "query", StatusCode::SERVICE_UNAVAILABLE, "down");
        assert_eq!(e.message, "chroma query: HTTP 503: down");
    }
}
