//! Every SigmaHQ CloudTrail rule loads, compiles and runs over every dataset
//! record; a user's rule that cannot be supported is refused with a reason
//! that names the file, the line and the construct, and the others load.

mod common;

use trailwatch::event::Record;
use trailwatch::rules::{load_dir, load_rule_set};

#[test]
fn all_57_sigmahq_cloudtrail_rules_load_and_run() {
    let loaded = load_dir(&common::sigma_dir());
    assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
    assert_eq!(loaded.rules.len(), 57);
    let (set, errors) = load_rule_set(false, &[common::sigma_dir()]);
    assert!(errors.is_empty());
    let mut fired = std::collections::BTreeSet::new();
    for (_, value) in common::all_records() {
        let text = value.to_string();
        let record = Record::parse(&text).expect("dataset records are objects");
        for rule in set.matches_full_scan(&record) {
            fired.insert(rule.id.clone());
        }
    }
    // Most rules find something in the public data (the rest have no sample).
    assert!(fired.len() >= 35, "only {} rules fired", fired.len());
}

#[test]
fn unsupported_rules_are_refused_with_file_line_and_construct() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        common::sigma_dir().join("aws_cloudtrail_disable_logging.yml"),
        dir.path().join("good.yml"),
    )
    .expect("copy a good rule");
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: Unknown modifier\nid: bad-1\nlogsource:\n  product: aws\n  service: cloudtrail\n\
         detection:\n  sel:\n    eventName|sounds_like: StopLogging\n  condition: sel\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("windows.yml"),
        "title: Windows\nid: win-1\nlogsource:\n  product: windows\n  category: process_creation\n\
         detection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("corr.yml"),
        "title: Many\nid: corr-1\ncorrelation:\n  type: event_count\n  rules: [bad-1]\n  group-by: [x]\n  timespan: 5m\n  condition:\n    gte: 3\n",
    )
    .expect("write");
    let loaded = load_dir(dir.path());
    assert_eq!(loaded.rules.len(), 1, "the good rule still loads");
    // The correlation loads as a document; building the engine finds that
    // the rule it uses did not load.
    assert_eq!(loaded.correlations.len(), 1);
    let (set, build_errors) = load_rule_set(false, &[dir.path().to_path_buf()]);
    assert_eq!(set.len(), 1);
    let mut errors: Vec<String> = build_errors.iter().map(|e| e.to_string()).collect();
    errors.sort();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("bad.yml:8:") && errors[0].contains("sounds_like"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("corr.yml:1:")
            && errors[1].contains("bad-1")
            && errors[1].contains("not loaded"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("windows.yml:3:") && errors[2].contains("product: windows"),
        "{}",
        errors[2]
    );
}
