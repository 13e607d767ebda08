//! The read-only web console: alerts and activity looked up with the same
//! filters as `trailwatch alerts` (`lookup`), an alert's page, a principal's
//! page, trails and rules. One axum router, server-rendered HTML (maud), no
//! script; for administrators only (`auth.rs`), every answer with a strict
//! Content-Security-Policy, every request logged. Nothing here changes state
//! but signing in and out.

mod alone;
pub mod auth;
mod pages;
mod server;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use jiff::tz::TimeZone;

use crate::config::ConsoleConfig;
use crate::state::StateStore;
pub use alone::{serve_alone, settings_or_default};
use auth::{COOKIE, Credentials, Failures, Sessions};

/// A loaded rule as the rules page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub id: String,
    pub level: String,
    pub title: String,
    pub source: String,
}

impl RuleRow {
    /// The rows of a loaded rule set.
    pub fn of(set: &crate::rules::RuleSet) -> Vec<RuleRow> {
        set.rules()
            .iter()
            .map(|r| RuleRow {
                id: r.id.clone(),
                level: r.meta.severity.as_str().to_owned(),
                title: r.meta.title.clone(),
                source: r.meta.origin.label().to_string(),
            })
            .collect()
    }
}

/// What the console reads and whom it lets in.
pub struct Console {
    state: Arc<StateStore>,
    credentials: Option<Credentials>,
    trusted_header: Option<String>,
    session_ttl: Duration,
    tz: TimeZone,
    rules: Box<dyn Fn() -> Vec<RuleRow> + Send + Sync>,
    sessions: Sessions,
    failures: Failures,
    /// Said on the activity page when instances share their state: the
    /// activity index is each instance's own.
    pub instance_only: bool,
}

/// Who a request comes from, once let in.
#[derive(Debug, Clone)]
struct Who {
    name: String,
    /// Signed in with the form (so a sign-out button is shown).
    session: bool,
}

impl Console {
    /// A console over `state` as `config` says; the credential file is
    /// read now (an error names the file and line).
    pub fn new(
        state: Arc<StateStore>,
        config: &ConsoleConfig,
        rules: Box<dyn Fn() -> Vec<RuleRow> + Send + Sync>,
    ) -> Result<Console, String> {
        let credentials = match &config.credentials_file {
            Some(path) => Some(Credentials::load(path)?),
            None => None,
        };
        let tz = crate::lookup::zone::zone(config.time_zone.as_deref())
            .map_err(|e| format!("console.time_zone: {e}"))?;
        Ok(Console {
            state,
            credentials,
            trusted_header: config.trusted_header.clone(),
            session_ttl: config.session_ttl,
            tz,
            rules,
            sessions: Sessions::default(),
            failures: Failures::default(),
            instance_only: false,
        })
    }

    /// Whether anyone who reaches the port may look (loopback, nothing set).
    fn open(&self) -> bool {
        self.credentials.is_none() && self.trusted_header.is_none()
    }

    /// Who sent this request, if anyone the console knows.
    fn identify(&self, req: &Request) -> Option<Who> {
        let headers = req.headers();
        if let Some(name) = &self.trusted_header
            && let Some(user) = headers.get(name.as_str()).and_then(|v| v.to_str().ok())
            && !user.trim().is_empty()
        {
            return Some(Who {
                name: user.trim().to_owned(),
                session: false,
            });
        }
        if let Some(creds) = &self.credentials {
            if let Some(token) = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                && let Some(name) = creds.check_token(token.trim())
            {
                return Some(Who {
                    name: format!("token:{name}"),
                    session: false,
                });
            }
            if let Some(id) = headers
                .get(header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|c| auth::cookie(c, COOKIE))
                && let Some(user) = self.sessions.user(id)
            {
                return Some(Who {
                    name: user,
                    session: true,
                });
            }
        }
        self.open().then(|| Who {
            name: "local".into(),
            session: false,
        })
    }
}

/// The console's router.
pub fn router(console: Arc<Console>) -> Router {
    let guarded = Router::new()
        .route("/", get(pages::home))
        .route("/alerts", get(pages::alerts))
        .route("/alerts.csv", get(pages::alerts_csv))
        .route("/alerts.json", get(pages::alerts_json))
        .route("/alerts/{id}", get(pages::alert))
        .route("/activity", get(pages::activity))
        .route("/principal", get(pages::principal))
        .route("/trails", get(pages::trails))
        .route("/rules", get(pages::rules))
        .route("/logout", post(pages::logout))
        .layer(middleware::from_fn_with_state(Arc::clone(&console), guard));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/static/console.css", get(stylesheet))
        .merge(guarded)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .layer(middleware::from_fn(access_log))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// Lets known people in; anyone else gets 401 and the sign-in form.
async fn guard(State(console): State<Arc<Console>>, mut req: Request, next: Next) -> Response {
    match console.identify(&req) {
        Some(who) => {
            req.extensions_mut().insert(who.clone());
            let mut response = next.run(req).await;
            response.extensions_mut().insert(who);
            response
        }
        None => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                Html(views::login(None).into_string()),
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trailwatch\""),
            );
            response
        }
    }
}

/// One line per request: who, what, the answer, how long (never a secret:
/// no header, cookie or form body).
async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let response = next.run(req).await;
    let who = response
        .extensions()
        .get::<Who>()
        .map(|w| w.name.clone())
        .unwrap_or_else(|| "-".into());
    tracing::info!(
        target: "trailwatch::console::access",
        %method, path, peer, user = %who, status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "console request"
    );
    response
}

/// Every answer: a strict CSP (no script at all, styles from this origin),
/// no sniffing, no framing, no referrer, no caching.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
}

/// Who is signed in, for the page header (and the access log).
fn who_of(who: &Option<Extension<Who>>) -> Option<&Who> {
    who.as_ref().map(|Extension(w)| w)
}

pub use server::serve;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio::sync::watch;

    #[tokio::test]
    async fn the_activity_page_says_when_it_is_this_instance_s_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = Arc::new(StateStore::open(&dir.path().join("s.db")).expect("open"));
        let settings = ConsoleConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            credentials_file: None,
            trusted_header: None,
            session_ttl: Duration::from_secs(3600),
            time_zone: Some("UTC".into()),
        };
        for only in [false, true] {
            let mut console =
                Console::new(Arc::clone(&state), &settings, Box::new(Vec::new)).expect("console");
            console.instance_only = only;
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (_stop, rx) = watch::channel(false);
            tokio::spawn(serve(listener, router(Arc::new(console)), rx));
            let body = reqwest::get(format!("http://{addr}/activity"))
                .await
                .expect("get")
                .text()
                .await
                .expect("body");
            assert!(body.contains("<h1>Activity</h1>"), "{body}");
            assert_eq!(body.contains("this instance read"), only, "{body}");
        }
    }
}
