//! The console in a real browser (Debian's headless Chromium through
//! chromedriver) over a store filled by a real crawl (`once` against
//! LocalStack): a 401 without credentials, signing in with the form,
//! filters OR/AND, the 90-day refusal, a CSV download parsed back by
//! Python's csv module, the alert and principal pages, hostile records
//! shown as text, and a screenshot of each page under
//! `target/console-screenshots/`, checked for content.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::emulators;
use common::webdriver::Driver;
use serde_json::{Value, json};

const BUCKET: &str = "tw-console-logs";
const SCRIPT_AGENT: &str = "<script>document.title='pwned'</script>";
const IMG_TARGET: &str = "\"><img src=x onerror=alert(1)>";
const PASSWORD: &str = "a long test passphrase";
const TOKEN: &str = "tw-test-token-0123456789";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn record(i: u32, who: &str, event: &str, agent: &str, when: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "eventID": format!("console-{i}-{}", std::process::id()),
        "eventTime": when,
        "eventSource": if event == "StopLogging" { "cloudtrail.amazonaws.com" } else { "s3.amazonaws.com" },
        "eventName": event,
        "awsRegion": "us-east-1",
        "sourceIPAddress": if who == "alice" { "198.51.100.1" } else { "203.0.113.9" },
        "userAgent": agent,
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/{who}"),
                         "userName": who, "accessKeyId": format!("AKIA{}", who.to_uppercase()),
                         "accountId": "111122223333"},
        "requestParameters": if event == "StopLogging" {
            json!({"name": if i == 1 { IMG_TARGET.to_owned() } else { format!("trail-{i}") }})
        } else {
            json!({"bucketName": "data"})
        }
    })
}

/// bob stops three trails (one named with markup, one with a script for a
/// user agent); alice stops one and lists buckets.
async fn upload(prefix: &str) {
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let when = |m: i64| {
        (t - time::Duration::minutes(m))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let mut records: Vec<Value> = (0..3)
        .map(|i| {
            let agent = if i == 2 { SCRIPT_AGENT } else { "aws-cli/2.15" };
            record(i, "bob", "StopLogging", agent, &when(i64::from(i)))
        })
        .collect();
    records.push(record(3, "alice", "StopLogging", "aws-cli/2.15", &when(3)));
    records.push(record(4, "alice", "ListBuckets", "aws-cli/2.15", &when(4)));
    let _ = emulators::put_log(BUCKET, prefix, t, "console", &records).await;
}

fn hash_password() -> String {
    let mut child = emulators::trailwatch(&["console", "--hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hash");
    writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}").expect("write");
    let out = child.wait_with_output().expect("hash");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn config(dir: &Path, prefix: &str, port: u16) -> PathBuf {
    use sha2::Digest;
    let users = dir.join("console-users");
    std::fs::write(
        &users,
        format!(
            "# console administrators\nuser admin {}\ntoken ci sha256:{}\n",
            hash_password(),
            hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
        ),
    )
    .expect("credentials");
    let path = dir.join("trailwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[state]\npath = \"state.db\"\n[aws]\nregion = \"us-east-1\"\n\
             endpoint_url = \"{}\"\n[discovery]\nenabled = false\n\
             [[trails]]\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\nregion = \"us-east-1\"\n\
             [crawl]\nstart_from = \"1h\"\n[rules.grouping]\nenabled = false\n\
             [[sinks]]\ntype = \"file\"\npath = \"alerts.jsonl\"\n\
             [console]\nlisten = \"127.0.0.1:{port}\"\ncredentials_file = \"console-users\"\ntime_zone = \"UTC\"\n",
            emulators::LOCALSTACK
        ),
    )
    .expect("config");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

const PNG_VARIETY: &str = r#"
import struct, sys, zlib
d = sys.stdin.buffer.read()
i, idat = 8, b""
while i < len(d):
    n = struct.unpack(">I", d[i:i + 4])[0]
    if d[i + 4:i + 8] == b"IDAT":
        idat += d[i + 8:i + 8 + n]
    i += 12 + n
print(len(set(zlib.decompress(idat))))
"#;

/// Distinct byte values in a PNG's decompressed image data (python3's
/// zlib): a blank page gives a handful, a page with text hundreds.
fn png_variety(png: &[u8]) -> usize {
    let mut child = Command::new("python3")
        .args(["-c", PNG_VARIETY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(png)
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

async fn shot(driver: &Driver, name: &str) {
    let dir = emulators::repo().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = driver.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    let variety = png_variety(&png);
    assert!(
        variety > 50,
        "{name}: the screenshot looks blank ({variety} distinct bytes)"
    );
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn rows(driver: &Driver, table: &str) -> usize {
    driver.all(&format!("#{table} tbody tr")).await.len()
}

fn python_csv(path: &Path) -> Vec<Vec<String>> {
    let out = Command::new("python3")
        .args(["-c", "import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline=''), strict=True))))"])
        .arg(path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "python's csv refused the download");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_browser() {
    emulators::require_emulators();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("console-{}", std::process::id());
    upload(&prefix).await;
    let port = free_port();
    let config = config(dir.path(), &prefix, port);
    let once = emulators::once(&config);
    assert!(
        once.status.success(),
        "once: {}",
        String::from_utf8_lossy(&once.stderr)
    );

    let log = std::fs::File::create(dir.path().join("console.log")).expect("log");
    let _console = Proc(
        emulators::trailwatch(&["console", "--config", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("console"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/login")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the console did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without credentials: 401; with the token: the alerts; a wrong token: 401.
    let anonymous = http
        .get(format!("{base}/alerts"))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status().as_u16(), 401);
    let csp = anonymous
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let bearer = http
        .get(format!("{base}/alerts.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(bearer.status().as_u16(), 200);
    let alerts: Vec<Value> = bearer
        .text()
        .await
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(alerts.len(), 4, "four StopLogging calls");
    let wrong = http
        .get(format!("{base}/alerts"))
        .bearer_auth("nope")
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(
        http.post(format!("{base}/alerts"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16(),
        405,
        "read-only"
    );

    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let driver = Driver::start(&downloads).await;

    // The sign-in form, then the alerts.
    driver.goto(&format!("{base}/alerts")).await;
    shot(&driver, "login").await;
    let user = driver.one("input[name=user]").await;
    driver.type_into(&user, "admin").await;
    let password = driver.one("input[name=password]").await;
    driver.type_into(&password, "wrong password").await;
    driver
        .click_to_load(&driver.one("button[type=submit]").await)
        .await;
    assert!(driver.body_text().await.contains("Wrong user or password"));
    let user = driver.one("input[name=user]").await;
    driver.type_into(&user, "admin").await;
    let password = driver.one("input[name=password]").await;
    driver.type_into(&password, PASSWORD).await;
    driver
        .click_to_load(&driver.one("button[type=submit]").await)
        .await;
    assert!(
        driver.url().await.ends_with("/alerts"),
        "{}",
        driver.url().await
    );
    assert_eq!(rows(&driver, "alerts").await, 4);
    shot(&driver, "alerts").await;

    // OR within a field, AND across fields.
    driver.goto(&format!("{base}/alerts?principal=bob")).await;
    assert_eq!(rows(&driver, "alerts").await, 3);
    driver
        .goto(&format!("{base}/alerts?principal=bob,AKIAALICE"))
        .await;
    assert_eq!(rows(&driver, "alerts").await, 4);
    driver
        .goto(&format!("{base}/alerts?principal=bob&principal=alice"))
        .await;
    assert_eq!(rows(&driver, "alerts").await, 4);
    driver
        .goto(&format!("{base}/alerts?principal=bob&ip=198.51.100.1"))
        .await;
    assert_eq!(
        rows(&driver, "alerts").await,
        0,
        "bob never came from alice's address"
    );
    driver
        .goto(&format!("{base}/alerts?principal=alice&event=StopLogging"))
        .await;
    assert_eq!(rows(&driver, "alerts").await, 1);

    // The form: filling a field narrows the table.
    driver.goto(&format!("{base}/alerts")).await;
    let field = driver.one("input[name=ip]").await;
    driver.type_into(&field, "203.0.113.9").await;
    driver
        .click_to_load(&driver.one("form.filters button").await)
        .await;
    assert_eq!(rows(&driver, "alerts").await, 3);

    // More than 90 days: refused, said on the page.
    driver.goto(&format!("{base}/alerts?since=91d")).await;
    let error = driver.text(&driver.one(".error").await).await;
    assert!(error.contains("at most 90 days"), "{error}");
    shot(&driver, "refused").await;

    // CSV of the current filter, downloaded by the browser, read by Python.
    driver.goto(&format!("{base}/alerts?principal=bob")).await;
    driver
        .click(&driver.one("a[href^='/alerts.csv']").await)
        .await;
    let csv = downloads.join("trailwatch-alerts.csv");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !csv.exists() {
        assert!(Instant::now() < deadline, "no download");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let table = python_csv(&csv);
    assert_eq!(table.len(), 4, "a header and bob's three alerts: {table:?}");
    let principal = table[0]
        .iter()
        .position(|h| h == "principal")
        .expect("column");
    assert!(
        table[1..]
            .iter()
            .all(|r| r[principal].ends_with("user/bob"))
    );

    // Hostile values are text: no image, no script ran, the markup shown.
    driver.goto(&format!("{base}/alerts?principal=bob")).await;
    let text = driver.body_text().await;
    assert!(text.contains(IMG_TARGET), "the markup is shown as text");
    assert!(
        driver.all("img").await.is_empty(),
        "no element made from a record"
    );
    let scripted = alerts
        .iter()
        .find(|a| a["event"]["user_agent"] == SCRIPT_AGENT)
        .expect("the alert with the script user agent");
    driver
        .goto(&format!(
            "{base}/alerts/{}",
            scripted["id"].as_str().expect("id")
        ))
        .await;
    let record = driver.text(&driver.one("#record").await).await;
    assert!(record.contains(SCRIPT_AGENT), "{record}");
    assert!(driver.all("main script").await.is_empty());
    let title = driver.text(&driver.one("h1").await).await;
    assert_eq!(title, "CloudTrail logging stopped");
    assert!(
        driver
            .body_text()
            .await
            .contains("aws-cloudtrail-stop-logging")
    );
    assert!(
        rows(&driver, "activity").await >= 3,
        "bob's activity within the hour"
    );
    shot(&driver, "alert").await;

    // The principal's page, from the alert's link.
    let link = driver.one("#alert a[href^='/principal']").await;
    driver.click_to_load(&link).await;
    let heading = driver.text(&driver.one("#principal").await).await;
    assert_eq!(heading, "arn:aws:iam::111122223333:user/bob");
    let page = driver.body_text().await;
    assert!(
        page.contains("203.0.113.9") && page.contains("Source IPs"),
        "{page}"
    );
    assert_eq!(rows(&driver, "alerts").await, 3);
    shot(&driver, "principal").await;

    // Trails and rules.
    driver.goto(&format!("{base}/trails")).await;
    assert!(driver.body_text().await.contains(BUCKET));
    shot(&driver, "trails").await;
    driver.goto(&format!("{base}/rules")).await;
    let rules_text = driver.body_text().await;
    assert!(rules_text.contains("aws-cloudtrail-stop-logging"));
    shot(&driver, "rules").await;

    // Signing out ends the session.
    driver
        .click_to_load(&driver.one("header form button").await)
        .await;
    driver.goto(&format!("{base}/alerts")).await;
    assert!(
        !driver.all("input[name=password]").await.is_empty(),
        "signed out: the form again"
    );
    driver.quit().await;

    // Every request was logged, and no secret was.
    let log = std::fs::read_to_string(dir.path().join("console.log")).expect("log");
    assert!(log.contains("console request"), "{log}");
    for secret in [PASSWORD, TOKEN] {
        assert!(!log.contains(secret), "a secret in the console's log");
    }
}
