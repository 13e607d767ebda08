//! A request read off a raw TCP stream by the tests' small receivers on
//! loopback: its path and body (by Content-Length), or None if the client
//! went away first.

use tokio::io::AsyncReadExt;

pub async fn read(s: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 8192];
    loop {
        let n = s.read(&mut piece).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&piece[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        if buf.len() < end + 4 + length {
            continue;
        }
        let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
        return Some((path, buf[end + 4..end + 4 + length].to_vec()));
    }
}
