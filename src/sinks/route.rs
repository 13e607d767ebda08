//! Which alerts a sink receives.

use crate::alert::Alert;
use crate::config::Route;

/// Whether `route` selects `alert`: several values of one field match any of
/// them; different fields must all match.
pub fn selects(route: &Route, alert: &Alert) -> bool {
    if let Some(min) = route.min_level
        && alert.severity().is_none_or(|s| s < min)
    {
        return false;
    }
    let any = |values: &[String], value: Option<&str>| {
        values.is_empty() || value.is_some_and(|v| values.iter().any(|x| x == v))
    };
    any(&route.rule_ids, Some(&alert.rule.id))
        && (route.rule_tags.is_empty()
            || alert.rule.tags.iter().any(|t| route.rule_tags.contains(t)))
        && any(&route.accounts, alert.event.account_id.as_deref())
        && any(&route.regions, alert.event.region.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertEvent, Severity};

    fn alert(severity: &str, account: &str) -> Alert {
        let mut alert = Alert::sample();
        alert.rule.severity = severity.into();
        alert.rule.tags = vec!["attack.t1".into()];
        alert.event = AlertEvent {
            account_id: Some(account.into()),
            account_name: None,
            account_ou_path: None,
            region: Some("us-east-1".into()),
            ..AlertEvent::default()
        };
        alert
    }

    #[test]
    fn fields_and_values() {
        let mut route = Route::default();
        assert!(selects(&route, &alert("low", "1")));
        route.min_level = Some(Severity::Medium);
        assert!(!selects(&route, &alert("low", "1")));
        assert!(selects(&route, &alert("high", "1")));
        route.accounts = vec!["1".into(), "2".into()];
        assert!(selects(&route, &alert("high", "2")));
        assert!(!selects(&route, &alert("high", "3")));
        route.rule_tags = vec!["attack.t2".into()];
        assert!(!selects(&route, &alert("high", "2")));
        route.rule_tags = vec!["attack.t1".into()];
        route.regions = vec!["eu-west-1".into()];
        assert!(!selects(&route, &alert("high", "2")));
    }
}
