//! A webhook receiver on loopback for the delivery tests: it answers 503
//! until `open_at` (now: never), then 200, and counts each alert id it
//! accepted, and every request under `requests`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::AsyncWriteExt;

pub type Counts = Arc<Mutex<HashMap<String, u32>>>;

/// Its URL and its counts.
pub async fn start(open_at: Instant) -> (String, Counts) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let counts: Counts = Arc::default();
    let seen = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Some((_, body)) = super::one_request::read(&mut s).await else {
                    return;
                };
                *seen
                    .lock()
                    .expect("counts")
                    .entry("requests".to_owned())
                    .or_default() += 1;
                let answer: &[u8] = if Instant::now() < open_at {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                } else {
                    if let Ok(alert) = serde_json::from_slice::<serde_json::Value>(&body)
                        && let Some(id) = alert["id"].as_str()
                    {
                        *seen
                            .lock()
                            .expect("counts")
                            .entry(id.to_owned())
                            .or_default() += 1;
                    }
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                };
                let _ = s.write_all(answer).await;
            });
        }
    });
    (url, counts)
}
