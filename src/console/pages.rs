//! The console's pages: alerts (with CSV and JSON exports of the same
//! filter), an alert, activity, a principal, trails, rules; and signing in
//! and out. Reads go to the store on the blocking pool.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::auth::COOKIE;
use super::views::{self, page};
use super::{Console, Who, who_of};
use crate::lookup::{Format, Query, output};
use crate::state::{ActivityRow, Filter, Page, StatusTable, StoredAlert};

type Me = Option<Extension<Who>>;

/// The query string as (name, value) pairs, in order.
fn pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(_, v)| !v.trim().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn all_of(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

fn one_of(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The lookup the query string asks (the same names as the command's flags).
fn query_of(pairs: &[(String, String)], default_limit: usize) -> Query {
    Query {
        since: one_of(pairs, "since"),
        until: one_of(pairs, "until"),
        rules: all_of(pairs, "rule"),
        levels: all_of(pairs, "level"),
        principals: all_of(pairs, "principal"),
        targets: all_of(pairs, "target"),
        ips: all_of(pairs, "ip"),
        accounts: all_of(pairs, "account"),
        regions: all_of(pairs, "region"),
        events: all_of(pairs, "event"),
        sources: all_of(pairs, "source"),
        user_agents: all_of(pairs, "user_agent"),
        limit: one_of(pairs, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(default_limit),
        before: one_of(pairs, "before"),
    }
}

/// The query string again, without some names, with others added.
fn requery(pairs: &[(String, String)], drop: &[&str], add: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| !drop.contains(&k.as_str())) {
        s.append_pair(k, v);
    }
    for (k, v) in add {
        s.append_pair(k, v);
    }
    s.finish()
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// The zone the query names, else the console's.
fn zone_of(console: &Console, pairs: &[(String, String)]) -> Result<jiff::tz::TimeZone, String> {
    match one_of(pairs, "tz") {
        Some(name) => crate::lookup::zone::zone(Some(&name)).map_err(|e| format!("tz: {e}")),
        None => Ok(console.tz.clone()),
    }
}

/// Runs a store read on the blocking pool.
async fn read<T: Send + 'static>(
    console: &Arc<Console>,
    f: impl FnOnce(&crate::state::StateStore) -> Result<T, crate::state::StateError> + Send + 'static,
) -> Result<T, String> {
    let state = Arc::clone(&console.state);
    tokio::task::spawn_blocking(move || f(&state).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

fn html_page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn failed(me: &Me, title: &str, why: &str) -> Response {
    html_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        page(title, who_name(me), views::error(why)),
    )
}

fn who_name(me: &Me) -> Option<&str> {
    who_of(me).filter(|w| w.session).map(|w| w.name.as_str())
}

pub async fn home() -> Redirect {
    Redirect::to("/alerts")
}

pub async fn alerts(State(c): State<Arc<Console>>, me: Me, RawQuery(raw): RawQuery) -> Response {
    let pairs = pairs(&raw);
    let form = views::filters("/alerts", &pairs, true);
    let bad = |why: String| {
        html_page(
            StatusCode::BAD_REQUEST,
            page(
                "Alerts",
                who_name(&me),
                html! { h1 { "Alerts" } (views::error(&why)) (form) },
            ),
        )
    };
    let (filter, tz) = match (query_of(&pairs, 50).filter(now()), zone_of(&c, &pairs)) {
        (Ok(f), Ok(tz)) => (f, tz),
        (Err(e), _) => return bad(e.to_string()),
        (_, Err(e)) => return bad(e),
    };
    let f = filter.clone();
    let rows = match read(&c, move |s| s.lookup_alerts(&f)).await {
        Ok(rows) => rows,
        Err(e) => return failed(&me, "Alerts", &e),
    };
    let next = next_page(&rows, filter.limit, |a| Page {
        at: a.at,
        row: a.seq,
    });
    let exports = requery(&pairs, &["before", "limit"], &[]);
    let body = html! {
        h1 { "Alerts" }
        (form)
        div.actions {
            span { (rows.len()) " alerts, newest first" }
            a href=(format!("/alerts.csv?{exports}")) download { "Export CSV" }
            a href=(format!("/alerts.json?{exports}")) download { "Export JSON" }
            @if let Some(token) = &next {
                a.older href=(format!("/alerts?{}", requery(&pairs, &["before"], &[("before", token)]))) { "Older →" }
            }
        }
        (views::alerts_table(&rows, &tz))
    };
    html_page(StatusCode::OK, page("Alerts", who_name(&me), body))
}

/// The next page's position, when this page is full.
fn next_page<T>(rows: &[T], limit: usize, at: impl Fn(&T) -> Page) -> Option<String> {
    (rows.len() == limit)
        .then(|| rows.last().map(|r| at(r).token()))
        .flatten()
}

/// The current filter's alerts, up to 10,000, as a file.
async fn export(c: Arc<Console>, raw: Option<String>, format: Format) -> Response {
    let pairs = pairs(&raw);
    let (filter, tz) = match (
        query_of(&pairs, crate::lookup::query::MAX_LIMIT).filter(now()),
        zone_of(&c, &pairs),
    ) {
        (Ok(f), Ok(tz)) => (f, tz),
        (Err(e), _) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        (_, Err(e)) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let rows = match read(&c, move |s| s.lookup_alerts(&filter)).await {
        Ok(rows) => rows,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let mut body = Vec::new();
    if let Err(e) = output::write_alerts(&mut body, &rows, format, &tz) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    let (kind, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "trailwatch-alerts.csv"),
        _ => ("application/x-ndjson", "trailwatch-alerts.jsonl"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (StatusCode::OK, headers, body).into_response()
}

pub async fn alerts_csv(State(c): State<Arc<Console>>, RawQuery(raw): RawQuery) -> Response {
    export(c, raw, Format::Csv).await
}

pub async fn alerts_json(State(c): State<Arc<Console>>, RawQuery(raw): RawQuery) -> Response {
    export(c, raw, Format::Json).await
}

/// The principal's activity and alerts within an hour of `at`.
fn around(principal: &str, at: i64, limit: usize) -> Filter {
    Filter {
        since: at - 3600,
        until: at + 3601,
        principals: vec![principal.to_owned()],
        limit,
        ..Filter::default()
    }
}

pub async fn alert(State(c): State<Arc<Console>>, me: Me, Path(id): Path<String>) -> Response {
    let wanted = id.clone();
    let found = match read(&c, move |s| s.alert_by_id(&wanted)).await {
        Ok(found) => found,
        Err(e) => return failed(&me, "Alert", &e),
    };
    let Some(a) = found else {
        return html_page(
            StatusCode::NOT_FOUND,
            page(
                "Alert",
                who_name(&me),
                views::error(&format!("no alert {id} in the store")),
            ),
        );
    };
    let principal = a.alert.event.principal.clone();
    let (activity, others) = match &principal {
        Some(p) => {
            let (f, g) = (around(p, a.at, 200), around(p, a.at, 50));
            let act = read(&c, move |s| s.lookup_activity(&f)).await;
            let alr = read(&c, move |s| s.lookup_alerts(&g)).await;
            (act.unwrap_or_default(), alr.unwrap_or_default())
        }
        None => (Vec::new(), Vec::new()),
    };
    let body = alert_body(&a, &activity, &others, &c.tz);
    html_page(
        StatusCode::OK,
        page(&a.alert.rule.title, who_name(&me), body),
    )
}

fn alert_body(
    a: &StoredAlert,
    activity: &[ActivityRow],
    others: &[StoredAlert],
    tz: &jiff::tz::TimeZone,
) -> Markup {
    let e = &a.alert.event;
    let record = a
        .context
        .record
        .as_deref()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| r.to_owned())
        })
        .unwrap_or_default();
    let keys = crate::state::AlertKeys::of(&a.alert, &a.context);
    html! {
        h1 { (a.alert.rule.title) }
        dl #alert {
            dt { "Alert" } dd { (a.alert.id) }
            dt { "Rule" } dd { (a.alert.rule.id) " (" (a.alert.rule.source) ")" }
            dt { "Level" } dd class=(format!("level-{}", a.alert.rule.severity)) { (a.alert.rule.severity) }
            dt { "Tags" } dd { (a.alert.rule.tags.join(", ")) }
            dt { "What to check" } dd { (a.context.description.as_deref().unwrap_or("")) }
            dt { "False positives" } dd { (a.context.falsepositives.join("; ")) }
            dt { "Time" } dd { (crate::lookup::zone::show(a.at, tz)) }
            dt { "Event" } dd { (e.name.as_deref().unwrap_or("")) " · " (e.source.as_deref().unwrap_or("")) }
            dt { "Principal" } dd { (views::principal_link(e.principal.as_deref())) " " (e.principal_type.as_deref().unwrap_or("")) }
            dt { "Target" } dd { (keys.target.unwrap_or_default()) }
            dt { "Source IP" } dd { (e.source_ip.as_deref().unwrap_or("")) }
            dt { "User agent" } dd { (e.user_agent.as_deref().unwrap_or("")) }
            dt { "Error" } dd { (e.error_code.as_deref().unwrap_or("")) }
            dt { "Account · region" } dd { (e.account_id.as_deref().unwrap_or("")) " · " (e.region.as_deref().unwrap_or("")) }
            dt { "S3 object" } dd { @if let Some(o) = &a.alert.object { "s3://" (o.bucket) "/" (o.key) } }
            dt { "Count" } dd { (a.alert.count) }
            dt { "Related events" } dd { (a.alert.related_event_ids.join(", ")) }
        }
        h2 { "The record" }
        pre #record { (record) }
        h2 { "The principal's alerts within an hour" }
        (views::alerts_table(others, tz))
        h2 { "The principal's activity within an hour" }
        (views::activity_table(activity, tz))
    }
}

pub async fn activity(State(c): State<Arc<Console>>, me: Me, RawQuery(raw): RawQuery) -> Response {
    let pairs = pairs(&raw);
    let form = views::filters("/activity", &pairs, false);
    let (filter, tz) = match (query_of(&pairs, 100).filter(now()), zone_of(&c, &pairs)) {
        (Ok(f), Ok(tz)) => (f, tz),
        (Err(e), _) => return bad_page(&me, "Activity", &e.to_string(), form),
        (_, Err(e)) => return bad_page(&me, "Activity", &e, form),
    };
    let f = filter.clone();
    let rows = match read(&c, move |s| s.lookup_activity(&f)).await {
        Ok(rows) => rows,
        Err(e) => return failed(&me, "Activity", &e),
    };
    let next = next_page(&rows, filter.limit, |r| Page {
        at: r.activity.at,
        row: r.id,
    });
    let body = html! {
        h1 { "Activity" }
        @if c.instance_only {
            p.note { "The activity this instance read: with shared state, each instance keeps the activity of the objects it read." }
        }
        (form)
        div.actions {
            span { (rows.len()) " records, newest first" }
            @if let Some(token) = &next {
                a.older href=(format!("/activity?{}", requery(&pairs, &["before"], &[("before", token)]))) { "Older →" }
            }
        }
        (views::activity_table(&rows, &tz))
    };
    html_page(StatusCode::OK, page("Activity", who_name(&me), body))
}

fn bad_page(me: &Me, title: &str, why: &str, form: Markup) -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        page(
            title,
            who_name(me),
            html! { h1 { (title) } (views::error(why)) (form) },
        ),
    )
}

pub async fn principal(State(c): State<Arc<Console>>, me: Me, RawQuery(raw): RawQuery) -> Response {
    let pairs = pairs(&raw);
    let Some(who) = one_of(&pairs, "who") else {
        return bad_page(
            &me,
            "Principal",
            "which principal? (?who=ARN, name or access key)",
            html! {},
        );
    };
    let mut query = query_of(&pairs, 200);
    query.principals = vec![who.clone()];
    let (filter, tz) = match (query.filter(now()), zone_of(&c, &pairs)) {
        (Ok(f), Ok(tz)) => (f, tz),
        (Err(e), _) => return bad_page(&me, "Principal", &e.to_string(), html! {}),
        (_, Err(e)) => return bad_page(&me, "Principal", &e, html! {}),
    };
    let (f, g, h) = (filter.clone(), filter.clone(), filter.clone());
    let alerts = read(&c, move |s| s.lookup_alerts(&f)).await;
    let activity = read(&c, move |s| s.lookup_activity(&g)).await;
    let facets = read(&c, move |s| s.activity_facets(&h, 20)).await;
    let (alerts, activity, facets) = match (alerts, activity, facets) {
        (Ok(a), Ok(b), Ok(f)) => (a, b, f),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failed(&me, "Principal", &e),
    };
    let body = html! {
        h1 #principal { (who) }
        p.note { "From " (crate::lookup::zone::show(filter.since, &tz)) " to " (crate::lookup::zone::show(filter.until - 1, &tz)) }
        p.note { "Accounts, source IPs and user agents of the newest " (crate::state::FACET_ROWS) " calls at most." }
        (views::counts("Accounts", &facets.accounts))
        (views::counts("Source IPs", &facets.ips))
        (views::counts("User agents", &facets.user_agents))
        h2 { "Alerts" }
        (views::alerts_table(&alerts, &tz))
        h2 { "Activity" }
        (views::activity_table(&activity, &tz))
    };
    html_page(StatusCode::OK, page("Principal", who_name(&me), body))
}

pub async fn trails(State(c): State<Arc<Console>>, me: Me) -> Response {
    let trails = read(&c, |s| s.statuses(StatusTable::Trails)).await;
    let targets = read(&c, |s| s.statuses(StatusTable::Targets)).await;
    let (trails, targets) = match (trails, targets) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return failed(&me, "Trails", &e),
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let body = html! {
        h1 { "Trails" }
        table #trails {
            thead { tr { th { "Trail" } th { "Logging" } th { "Bucket" } th { "Prefix" } th { "Organisation" } th { "Last delivery error" } } }
            tbody {
                @for (arn, t) in &trails {
                    tr {
                        td { (text(&t["name"])) br; span.note { (arn) } }
                        td { @if t["logging"].as_bool() == Some(true) { "yes" } @else { strong { "no" } } }
                        td { (text(&t["bucket"])) }
                        td { (text(&t["prefix"])) }
                        td { (if t["organization"].as_bool() == Some(true) { "yes" } else { "no" }) }
                        td { (text(&t["latest_delivery_error"])) }
                    }
                }
            }
        }
        h2 { "Buckets and cursors (the last pass)" }
        table #targets {
            thead { tr { th { "Bucket / prefix" } th { "Region" } th { "Lag" } th { "Cursors (account/region: lag)" } th { "Last error" } } }
            tbody {
                @for (id, t) in &targets {
                    tr {
                        td { (id) }
                        td { (text(&t["region"])) }
                        td { (t["lag_seconds"].as_i64().map(|s| format!("{s} s")).unwrap_or_default()) }
                        td {
                            @if let Some(lags) = t["cursor_lag_seconds"].as_object() {
                                @for (cursor, lag) in lags { (cursor) ": " (text(lag)) " s" br; }
                            }
                        }
                        td { (t["errors"].as_array().and_then(|e| e.first()).map(text).unwrap_or_default()) }
                    }
                }
            }
        }
    };
    html_page(StatusCode::OK, page("Trails", who_name(&me), body))
}

pub async fn rules(State(c): State<Arc<Console>>, me: Me, RawQuery(raw): RawQuery) -> Response {
    let pairs = pairs(&raw);
    let filter = match query_of(&pairs, 1).filter(now()) {
        Ok(f) => f,
        Err(e) => return bad_page(&me, "Rules", &e.to_string(), html! {}),
    };
    let (since, until) = (filter.since, filter.until);
    let counts = match read(&c, move |s| s.alerts_per_rule(since, until)).await {
        Ok(counts) => counts,
        Err(e) => return failed(&me, "Rules", &e),
    };
    let loaded = (c.rules)();
    let count_of = |id: &str| counts.iter().find(|(r, _)| r == id).map_or(0, |(_, n)| *n);
    let body = html! {
        h1 { "Rules" }
        p.note { (loaded.len()) " rules loaded; alerts since " (crate::lookup::zone::show(since, &c.tz)) }
        table #rules {
            thead { tr { th { "Rule" } th { "Level" } th { "Title" } th { "Source" } th { "Alerts" } } }
            tbody {
                @for r in &loaded {
                    tr {
                        td { a href=(format!("/alerts?{}", requery(&[], &[], &[("rule", &r.id)]))) { (r.id) } }
                        td class=(format!("level-{}", r.level)) { (r.level) }
                        td { (r.title) }
                        td { (r.source) }
                        td { (count_of(&r.id)) }
                    }
                }
            }
        }
    };
    html_page(StatusCode::OK, page("Rules", who_name(&me), body))
}

pub async fn login_form(State(c): State<Arc<Console>>) -> Response {
    if c.open() {
        return Redirect::to("/alerts").into_response();
    }
    html_page(StatusCode::OK, views::login(None))
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
}

pub async fn login(
    State(c): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = peer.ip();
    if c.failures.blocked(ip) {
        tracing::warn!(target: "trailwatch::console::access", peer = %ip, "sign-in refused: too many failures");
        return html_page(
            StatusCode::TOO_MANY_REQUESTS,
            views::login(Some(
                "Too many failed sign-ins from this address; wait a few minutes.",
            )),
        );
    }
    let Some(creds) = &c.credentials else {
        return Redirect::to("/alerts").into_response();
    };
    let (user, password) = (form.user.clone(), form.password);
    let check = {
        let c = Arc::clone(&c);
        tokio::task::spawn_blocking(move || {
            c.credentials
                .as_ref()
                .is_some_and(|cr| cr.check_password(&user, &password))
        })
    };
    let ok = check.await.unwrap_or(false) && !creds.is_empty();
    if !ok {
        c.failures.failed(ip);
        tracing::warn!(target: "trailwatch::console::access", peer = %ip, user = %form.user, "sign-in failed");
        return html_page(
            StatusCode::UNAUTHORIZED,
            views::login(Some("Wrong user or password.")),
        );
    }
    let id = c.sessions.open(&form.user, c.session_ttl);
    tracing::info!(target: "trailwatch::console::access", peer = %ip, user = %form.user, "signed in");
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        c.session_ttl.as_secs()
    );
    let mut response = Redirect::to("/alerts").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::auth::cookie(v, COOKIE))
    {
        c.sessions.close(id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tw_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}
