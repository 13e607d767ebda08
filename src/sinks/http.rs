//! One HTTP delivery attempt and how its outcome is classified: delivered,
//! transient (connect errors, timeouts, 408, 429, 5xx; retried, honouring
//! `Retry-After` and `X-RateLimit-Reset`), or permanent (other 4xx: dead letter).
//! A refusal of our credentials (401, 403, 407) is the sink's failure, not the
//! alert's: the alerts wait in the outbox until the key, the secret or this
//! host's clock (webhook signatures carry the time) is put right.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    Transient {
        reason: String,
        /// The HTTP status, when the receiver answered.
        status: Option<u16>,
        /// What the receiver asked us to wait.
        wait: Option<Duration>,
        /// The request may have reached the receiver (timeout after sending).
        outcome_unknown: bool,
    },
    Permanent {
        status: u16,
        body: String,
    },
}

impl Attempt {
    /// For metrics: the HTTP status, or `timeout` / `error`.
    pub fn status_label(&self) -> String {
        match self {
            Attempt::Delivered => "2xx".into(),
            Attempt::Permanent { status, .. } => status.to_string(),
            Attempt::Transient {
                status: Some(s), ..
            } => s.to_string(),
            Attempt::Transient {
                outcome_unknown: true,
                ..
            } => "timeout".into(),
            Attempt::Transient { .. } => "error".into(),
        }
    }
}

/// Sends a built request and classifies the outcome. Never logs the request
/// (its headers hold the API key).
pub async fn send(request: reqwest::RequestBuilder) -> Attempt {
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                return Attempt::Delivered;
            }
            let wait = wait_hint(response.headers());
            let code = status.as_u16();
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(2048).collect();
            if code == 408 || code == 429 || status.is_server_error() {
                Attempt::Transient {
                    reason: format!("HTTP {code}: {}", body.trim()),
                    status: Some(code),
                    wait,
                    outcome_unknown: false,
                }
            } else if matches!(code, 401 | 403 | 407) {
                Attempt::Transient {
                    reason: format!(
                        "HTTP {code}: {} (the receiver refuses our credentials: check the API \
                         key or webhook secret, and this host's clock, which signatures carry)",
                        body.trim()
                    ),
                    status: Some(code),
                    wait,
                    outcome_unknown: false,
                }
            } else {
                Attempt::Permanent { status: code, body }
            }
        }
        Err(e) => Attempt::Transient {
            reason: describe(&e),
            status: None,
            wait: None,
            // A timeout may strike after the body was sent.
            outcome_unknown: e.is_timeout(),
        },
    }
}

/// An error's text without the URL's query (which could carry a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// `Retry-After` (seconds, or an HTTP date) or `X-RateLimit-Reset` (seconds
/// until the window resets, as Datadog sends it), capped at 10 minutes.
pub fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = get("retry-after")
        .and_then(|v| {
            v.parse::<f64>().ok().or_else(|| {
                let when = httpdate(v)?;
                Some((when - time::OffsetDateTime::now_utc()).as_seconds_f64())
            })
        })
        .or_else(|| get("x-ratelimit-reset").and_then(|v| v.parse::<f64>().ok()))?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(600.0)))
}

fn httpdate(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, &format)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer with `status` from a one-shot server on loopback.
    async fn answered(status: u16) -> Attempt {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = "{\"error\": \"no\"}";
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
            }
        });
        send(
            reqwest::Client::new()
                .post(format!("http://{addr}/hook"))
                .body("{}"),
        )
        .await
    }

    /// Found by the chaos suite: after the host's clock stepped back five
    /// minutes, the receiver refused every webhook signature (401) and each
    /// alert became a dead letter, never delivered. A refused credential is
    /// now the sink's failure: retried, the alerts waiting in the outbox.
    #[tokio::test]
    async fn a_refused_signature_after_a_clock_step_is_retried_not_dead_lettered() {
        for status in [401, 403, 407] {
            match answered(status).await {
                Attempt::Transient {
                    reason, status: s, ..
                } => {
                    assert_eq!(s, Some(status));
                    assert!(reason.contains("clock"), "{reason}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(
            answered(400).await,
            Attempt::Permanent { status: 400, .. }
        ));
        assert!(matches!(
            answered(422).await,
            Attempt::Permanent { status: 422, .. }
        ));
    }

    #[test]
    fn wait_hints() {
        let mut h = HeaderMap::new();
        assert_eq!(wait_hint(&h), None);
        h.insert("x-ratelimit-reset", "7".parse().expect("header"));
        assert_eq!(wait_hint(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", "2".parse().expect("header"));
        assert_eq!(
            wait_hint(&h),
            Some(Duration::from_secs(2)),
            "Retry-After wins"
        );
        h.insert("retry-after", "99999".parse().expect("header"));
        assert_eq!(wait_hint(&h), Some(Duration::from_secs(600)));
        let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        h.insert(
            "retry-after",
            soon.format(&format).expect("date").parse().expect("header"),
        );
        let w = wait_hint(&h).expect("a date");
        assert!(
            w <= Duration::from_secs(31) && w >= Duration::from_secs(28),
            "{w:?}"
        );
    }
}
