//! The console's pages as compiled templates (maud): every value is escaped
//! as HTML text, no inline script or style, usable without JavaScript.

use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, html};

use crate::lookup::zone;
use crate::state::{ActivityRow, StoredAlert};

/// The page around `body`; `user` is who is signed in (a logout button when
/// it came from a session).
pub fn page(title: &str, user: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · trailwatch" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header {
                    strong { "trailwatch" }
                    a href="/alerts" { "Alerts" }
                    a href="/activity" { "Activity" }
                    a href="/trails" { "Trails" }
                    a href="/rules" { "Rules" }
                    @if let Some(user) = user {
                        span.who { "signed in as " (user) }
                        form method="post" action="/logout" { button type="submit" { "Sign out" } }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Sign in · trailwatch" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                form.login method="post" action="/login" {
                    h1 { "trailwatch" }
                    @if let Some(e) = error { p.error { (e) } }
                    label { "User" input name="user" autocomplete="username" required; }
                    label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
            }
        }
    }
}

/// The filters' form; `values` are the query's (name, value) pairs.
pub fn filters(action: &str, values: &[(String, String)], alerts: bool) -> Markup {
    let value = |name: &str| -> String {
        values
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut fields: Vec<(&str, &str, &str)> = vec![
        ("since", "Since", "7d or 2026-11-21T10:00:00Z"),
        ("until", "Until", "now"),
    ];
    if alerts {
        fields.push(("rule", "Rule", "aws-cloudtrail-stop-logging"));
        fields.push(("level", "Level", "high, medium+"));
    }
    fields.extend([
        ("principal", "Principal", "ARN, name or access key"),
        ("target", "Target", "bucket, trail, secret…"),
        ("ip", "Source IP", "203.0.113.7"),
        ("account", "Account", "123456789012"),
        ("region", "Region", "us-east-1"),
        ("event", "Event", "StopLogging"),
        ("source", "Source", "cloudtrail.amazonaws.com"),
        ("user_agent", "User agent contains", "terraform"),
        ("tz", "Time zone", "UTC, +02:00, Europe/Paris"),
    ]);
    html! {
        form.filters method="get" action=(action) {
            @for (name, label, hint) in &fields {
                label { (label) input name=(name) value=(value(name)) placeholder=(hint); }
            }
            div.actions { button type="submit" { "Look up" } }
        }
        p.note { "Several values in one field (a,b) match any of them; different fields must all match. One lookup spans at most 90 days." }
    }
}

fn level_class(level: &str) -> String {
    format!("level-{level}")
}

/// Alerts as a table, each linked to its page.
pub fn alerts_table(rows: &[StoredAlert], tz: &TimeZone) -> Markup {
    html! {
        table #alerts {
            thead { tr {
                th { "Time" } th { "Level" } th { "Rule" } th { "Principal" } th { "Event" }
                th { "Target" } th { "Source IP" } th { "Account" } th { "Region" } th { "Count" }
            } }
            tbody {
                @for a in rows {
                    @let e = &a.alert.event;
                    @let target = crate::state::AlertKeys::of(&a.alert, &a.context).target;
                    tr {
                        td { a href=(format!("/alerts/{}", a.alert.id)) { (zone::show(a.at, tz)) } }
                        td class=(level_class(&a.alert.rule.severity)) { (a.alert.rule.severity) }
                        td { (a.alert.rule.title) br; span.note { (a.alert.rule.id) } }
                        td { (principal_link(e.principal.as_deref())) }
                        td { (e.name.as_deref().unwrap_or("")) }
                        td { (target.unwrap_or_default()) }
                        td { (e.source_ip.as_deref().unwrap_or("")) }
                        td { (e.account_id.as_deref().unwrap_or("")) }
                        td { (e.region.as_deref().unwrap_or("")) }
                        td { (a.alert.count) }
                    }
                }
            }
        }
    }
}

/// Activity rows as a table.
pub fn activity_table(rows: &[ActivityRow], tz: &TimeZone) -> Markup {
    html! {
        table #activity {
            thead { tr {
                th { "Time" } th { "Principal" } th { "Event" } th { "Source" } th { "Target" }
                th { "Source IP" } th { "User agent" } th { "Error" } th { "Account" } th { "Object" }
            } }
            tbody {
                @for r in rows {
                    @let a = &r.activity;
                    tr {
                        td { (zone::show(a.at, tz)) }
                        td { (principal_link(a.principal.as_deref())) }
                        td { (a.event_name.as_deref().unwrap_or("")) }
                        td { (a.event_source.as_deref().unwrap_or("")) }
                        td { (a.target.as_deref().unwrap_or("")) }
                        td { (a.source_ip.as_deref().unwrap_or("")) }
                        td { (a.user_agent.as_deref().unwrap_or("")) }
                        td { (a.error_code.as_deref().unwrap_or("")) }
                        td { (a.account.as_deref().unwrap_or("")) }
                        td.note { (r.key.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// A principal, linked to its page.
pub fn principal_link(principal: Option<&str>) -> Markup {
    match principal {
        Some(p) => {
            let href = format!(
                "/principal?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("who", p)
                    .finish()
            );
            html! { a href=(href) { (p) } }
        }
        None => html! {},
    }
}

/// A table of (value, count).
pub fn counts(title: &str, rows: &[(String, i64)]) -> Markup {
    html! {
        h2 { (title) }
        table {
            thead { tr { th { "Value" } th { "Records" } } }
            tbody { @for (v, n) in rows { tr { td { (v) } td { (n) } } } }
        }
    }
}

/// A failure the reader can act on (a bad filter).
pub fn error(text: &str) -> Markup {
    html! { p.error role="alert" { (text) } }
}
