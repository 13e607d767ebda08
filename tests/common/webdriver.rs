//! A small W3C WebDriver client over HTTP, for driving Debian's headless
//! Chromium through chromedriver (both installed by `scripts/test.sh`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Driver {
    /// Starts chromedriver and a headless Chromium session that downloads
    /// into `downloads`.
    pub async fn start(downloads: &Path) -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver; make test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
                "prefs": {"download.default_directory": downloads.display().to_string(),
                          "download.prompt_for_download": false}
            }
        }}});
        let mut driver = Driver {
            child,
            base,
            session: String::new(),
            http,
        };
        let v = driver.call("POST", "/session", caps).await;
        driver.session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        driver
    }

    /// Clicks an element that loads a new page, and waits until the page it
    /// was on is gone (the element goes stale) and the new one has loaded.
    pub async fn click_to_load(&self, element: &str) {
        self.click(element).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = format!(
                "{}/session/{}/element/{element}/name",
                self.base, self.session
            );
            let v: Value = match self.http.get(&url).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            if !v["value"]["error"].is_null() {
                break;
            }
            assert!(Instant::now() < deadline, "the click loaded no page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while self
            .call(
                "POST",
                "/execute/sync",
                json!({"script": "return document.readyState", "args": []}),
            )
            .await
            != "complete"
        {
            assert!(Instant::now() < deadline, "the page did not load");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let v: Value = request
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver JSON");
        assert!(
            v["value"]["error"].is_null(),
            "webdriver {method} {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The ids of the elements a CSS selector finds.
    pub async fn all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )
        .await
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
    }

    pub async fn one(&self, css: &str) -> String {
        match self.all(css).await.into_iter().next() {
            Some(e) => e,
            None => {
                let source = self.call("GET", "/source", json!({})).await;
                panic!(
                    "no element {css} at {}: {}",
                    self.url().await,
                    source
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(2000)
                        .collect::<String>()
                )
            }
        }
    }

    pub async fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call(
            "GET",
            &format!("/element/{element}/attribute/{name}"),
            json!({}),
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// The page's visible text.
    pub async fn body_text(&self) -> String {
        let body = self.one("body").await;
        self.text(&body).await
    }

    /// A PNG screenshot of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", json!({})).await;
        base64_decode(v.as_str().expect("base64"))
    }

    pub async fn quit(&self) {
        let _ = self.call("DELETE", "", json!({})).await;
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let Some(v) = TABLE.iter().position(|&t| t == c) else {
            continue; // padding, line breaks
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
