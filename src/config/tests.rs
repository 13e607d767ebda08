use super::*;

fn err(text: &str) -> ConfigError {
    let dir = tempfile::tempdir().expect("tempdir");
    Config::from_toml(text, dir.path()).expect_err("config should be refused")
}

#[test]
fn an_empty_file_takes_the_defaults() {
    let config = Config::from_toml("", Path::new(".")).expect("valid");
    assert_eq!(config.crawl.lookback, Duration::from_secs(3600));
    assert_eq!(config.crawl.concurrency, 8);
    assert_eq!(config.crawl.max_decompressed_bytes, 2 << 30);
    assert_eq!(
        config.crawl.start_from,
        StartFrom::Ago(Duration::from_secs(86400))
    );
    assert!(config.rules.builtin);
    assert!(config.server.is_none());
}

#[test]
fn unknown_fields_name_their_path() {
    let e = err("[crawl]\npoll_intervall = \"60s\"\n");
    assert_eq!(e.path, "crawl.poll_intervall", "{e}");
    assert!(e.reason.contains("unknown field"), "{e}");
    let e = err(
        "[[sinks]]\ntype = \"stdout\"\n[[sinks]]\ntype = \"file\"\npath = \"x\"\napi_kee = 1\n",
    );
    assert_eq!(e.path, "sinks[1].api_kee", "{e}");
}

#[test]
fn wrong_types_name_their_path_and_line() {
    let e = err("[crawl]\nconcurrency = \"eight\"\n");
    assert_eq!(e.path, "crawl.concurrency", "{e}");
    assert!(e.reason.contains("line 2"), "{e}");
}

#[test]
fn bad_durations_and_sizes() {
    let e = err("[crawl]\nlookback = \"1 hour\"\n");
    assert_eq!(e.path, "crawl.lookback");
    assert!(e.reason.contains("1 hour"), "{e}");
    let e = err("[crawl]\nmax_decompressed_bytes = \"2 GiBs\"\n");
    assert_eq!(e.path, "crawl.max_decompressed_bytes", "{e}");
    let e = err("[crawl]\nstart_from = \"yesterday\"\n");
    assert_eq!(e.path, "crawl.start_from", "{e}");
    let ok = Config::from_toml(
        "[crawl]\nstart_from = \"2026-11-01T00:00:00Z\"\nmax_decompressed_bytes = 1048576\n",
        Path::new("."),
    )
    .expect("valid");
    assert_eq!(ok.crawl.max_decompressed_bytes, 1 << 20);
}

#[test]
fn missing_secret_file_names_the_field_not_the_secret() {
    let e = err(
        "[[sinks]]\ntype = \"file\"\npath = \"a.jsonl\"\n[[sinks]]\ntype = \"datadog\"\napi_key_file = \"nope/dd-key\"\n",
    );
    assert_eq!(e.path, "sinks[1].api_key_file", "{e}");
    assert!(e.reason.contains("nope/dd-key"), "{e}");
}

#[test]
fn secrets_are_read_and_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("dd-key"), "0123456789abcdef\n").expect("write");
    let config = Config::from_toml(
        "[[sinks]]\ntype = \"datadog\"\nsite = \"datadoghq.eu\"\napi_key_file = \"dd-key\"\nmin_level = \"high\"\n",
        dir.path(),
    )
    .expect("valid");
    let SinkKind::Datadog { url, api_key, .. } = &config.sinks[0].kind else {
        panic!("datadog sink expected");
    };
    assert_eq!(url, "https://api.datadoghq.eu/api/v1/events");
    assert_eq!(api_key.expose(), "0123456789abcdef");
    assert_eq!(config.sinks[0].route.min_level, Some(Severity::High));
    assert!(!format!("{config:?}").contains("0123456789abcdef"));
}

#[test]
fn a_rules_directory_must_exist() {
    let e = err("[rules]\npaths = [\"does-not-exist\"]\n");
    assert_eq!(e.path, "rules.paths[0]", "{e}");
}

#[test]
fn sink_fields_must_belong_to_the_sink_type() {
    let e = err("[[sinks]]\ntype = \"file\"\npath = \"a\"\nsite = \"datadoghq.com\"\n");
    assert_eq!(e.path, "sinks[0].site", "{e}");
    let e = err("[[sinks]]\ntype = \"datadog\"\nsite = \"datadoghq.org\"\napi_key_env = \"X\"\n");
    assert_eq!(e.path, "sinks[0].site", "{e}");
    let e = err("[[sinks]]\ntype = \"kafka\"\n");
    assert_eq!(e.path, "sinks[0].type", "{e}");
    let e = err("[[sinks]]\ntype = \"stdout\"\nmin_level = \"severe\"\n");
    assert_eq!(e.path, "sinks[0].min_level", "{e}");
}

#[test]
fn default_sink_names_are_unique() {
    let config = Config::from_toml(
        "[[sinks]]\ntype = \"file\"\npath = \"a\"\n[[sinks]]\ntype = \"file\"\npath = \"b\"\n[[sinks]]\ntype = \"stdout\"\n",
        Path::new("."),
    )
    .expect("valid");
    let names: Vec<_> = config.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["file-1", "file-2", "stdout"]);
}

#[test]
fn the_example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trailwatch.toml");
    // The example reads its Datadog key from this variable.
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("TRAILWATCH_EXAMPLE_DD_API_KEY", "example-key") };
    let text = std::fs::read_to_string(&example).expect("examples/trailwatch.toml exists");
    let config = Config::from_toml(&text, example.parent().expect("examples/"))
        .unwrap_or_else(|e| panic!("examples/trailwatch.toml: {e}"));
    assert!(!config.sinks.is_empty());
    assert!(config.server.is_some());
}

#[test]
fn allowlists_and_suppression() {
    let config = Config::from_toml(
        "[rules]\n[[rules.allow]]\nrules = [\"aws-iam-access-key-created-for-other-user\"]\n\
         reason = \"CI rotates keys\"\nmatch = { \"userIdentity.sessionContext.sessionIssuer.userName\" = \"ci-key-rotation\", \"requestParameters.userName\" = [\"svc-*\"] }\n\
         [rules.suppression]\nwindow = \"1h\"\n",
        Path::new("."),
    )
    .expect("valid");
    assert_eq!(config.rules.allow.len(), 1);
    assert_eq!(config.rules.allow[0].conditions.len(), 2);
    assert_eq!(
        config.rules.suppression.as_ref().map(|s| s.window),
        Some(Duration::from_secs(3600))
    );
    let e = err("[rules]\n[[rules.allow]]\nrules = [\"x\"]\nmatch = {}\n");
    assert_eq!(e.path, "rules.allow[0].match", "{e}");
    let e = err("[rules.suppression]\nwindow = \"soon\"\n");
    assert_eq!(e.path, "rules.suppression.window", "{e}");
}

#[test]
fn grouping_is_on_by_default_and_can_be_tuned_or_switched_off() {
    let parse = |text: &str| Config::from_toml(text, Path::new(".")).expect("valid");
    let default = parse("");
    let g = default.rules.suppression.expect("grouping on by default");
    assert_eq!(g.window, Duration::from_secs(3600));
    assert!(g.rules.is_empty() && g.exclude.is_empty());
    assert!(default.rules.deprecations.is_empty());

    let tuned = parse("[rules.grouping]\nwindow = \"15m\"\nexclude = [\"aws-root-login\"]\n");
    let g = tuned.rules.suppression.expect("on");
    assert_eq!(g.window, Duration::from_secs(900));
    assert_eq!(g.exclude, ["aws-root-login"]);

    assert!(
        parse("[rules.grouping]\nenabled = false\n")
            .rules
            .suppression
            .is_none()
    );

    // The old name is still read, with a deprecation.
    let old = parse("[rules.suppression]\nwindow = \"2h\"\n");
    assert_eq!(
        old.rules.suppression.map(|s| s.window),
        Some(Duration::from_secs(7200))
    );
    assert_eq!(old.rules.deprecations.len(), 1);
    let e = err("[rules.suppression]\nwindow = \"1h\"\n[rules.grouping]\nwindow = \"1h\"\n");
    assert_eq!(e.path, "rules.suppression", "{e}");
    let e = err("[rules.grouping]\nwindow = \"often\"\n");
    assert_eq!(e.path, "rules.grouping.window", "{e}");
}

#[test]
fn the_console_needs_authentication_off_loopback_and_store_has_defaults() {
    let parse = |text: &str| Config::from_toml(text, Path::new(".")).expect("valid");
    let c = parse("[console]\n").console.expect("console");
    assert_eq!(c.listen.to_string(), DEFAULT_CONSOLE_LISTEN);
    assert_eq!(c.session_ttl, Duration::from_secs(12 * 3600));
    let e = err("[console]\nlisten = \"0.0.0.0:9878\"\n");
    assert_eq!(e.path, "console.listen", "{e}");
    assert!(e.reason.contains("not a loopback address"), "{e}");
    let with_users =
        parse("[console]\nlisten = \"0.0.0.0:9878\"\ncredentials_file = \"/run/credentials/x\"\n");
    assert!(
        with_users
            .console
            .is_some_and(|c| c.credentials_file.is_some())
    );
    let proxied =
        parse("[console]\nlisten = \"[::]:9878\"\ntrusted_header = \"X-Forwarded-User\"\n");
    assert_eq!(
        proxied.console.and_then(|c| c.trusted_header).as_deref(),
        Some("X-Forwarded-User")
    );
    assert_eq!(
        err("[console]\ntrusted_header = \"X Bad\"\n").path,
        "console.trusted_header"
    );
    assert!(parse("").console.is_none());

    let store = parse("").store;
    assert_eq!(
        (store.retention, store.activity, store.activity_retention),
        (
            Duration::from_secs(90 * 86_400),
            true,
            Duration::from_secs(7 * 86_400)
        )
    );
    let off = parse("[store]\nactivity = false\nretention = \"30d\"\n").store;
    assert_eq!(
        (off.activity, off.retention),
        (false, Duration::from_secs(30 * 86_400))
    );
    assert_eq!(
        err("[store]\nretention = \"soon\"\n").path,
        "store.retention"
    );
    assert_eq!(
        err("[[sinks]]\ntype = \"file\"\npath = \"a\"\nformat = \"xml\"\n").path,
        "sinks[0].format"
    );
    assert_eq!(
        err("[[sinks]]\ntype = \"datadog\"\napi_key_env = \"K\"\nformat = \"ocsf\"\n").path,
        "sinks[0].format"
    );
}

#[test]
fn roles_per_purpose_are_read_and_checked() {
    let c = Config::from_toml(
        r#"
[discovery]
regions = ["us-east-1"]
[[discovery.accounts]]
name = "management"
role_arn = "arn:aws:iam::111111111111:role/trailwatch-discovery"
external_id = "x1"
[discovery.organization]
member_role_name = "trailwatch-member"
[[accounts]]
id = "222222222222"
name = "log-archive"
buckets = ["aws-controltower-logs-*"]
[[readers]]
role_arn = "arn:aws:iam::222222222222:role/trailwatch-reader"
account = "222222222222"
[[readers]]
role_arn = "arn:aws-us-gov:iam::333333333333:role/reader"
buckets = ["gov-logs"]
[[trails]]
bucket = "static-logs"
role_arn = "arn:aws:iam::555555555555:role/static-reader"
"#,
        Path::new("/"),
    )
    .expect("valid");
    assert_eq!(
        c.discovery.accounts[0].role.external_id.as_deref(),
        Some("x1")
    );
    let org = c.discovery.organization.as_ref().expect("organization");
    assert_eq!(org.member_role_name.as_deref(), Some("trailwatch-member"));
    let reader = |b: &str| c.reader_for(b).map(|r| r.arn.clone());
    assert_eq!(
        reader("aws-controltower-logs-222222222222-us-east-1").as_deref(),
        Some("arn:aws:iam::222222222222:role/trailwatch-reader"),
        "matched through the account that owns the bucket"
    );
    assert_eq!(
        reader("gov-logs").as_deref(),
        Some("arn:aws-us-gov:iam::333333333333:role/reader")
    );
    assert_eq!(
        reader("static-logs").as_deref(),
        Some("arn:aws:iam::555555555555:role/static-reader")
    );
    assert_eq!(reader("other"), None);

    for (text, path) in [
        (
            "[[discovery.accounts]]\nrole_arn = \"arn:aws:iam::111:role/x\"\n",
            "discovery.accounts[0].role_arn",
        ),
        (
            "[[discovery.accounts]]\nrole_arn = \"arn:aws:s3:::bucket\"\n",
            "discovery.accounts[0].role_arn",
        ),
        (
            "[discovery.organization]\nmember_role_name = \"arn:aws:iam::111111111111:role/m\"\n",
            "discovery.organization.member_role_name",
        ),
        (
            "[discovery.organization]\nmember_external_id = \"x\"\n",
            "discovery.organization.member_external_id",
        ),
        (
            "[[readers]]\nrole_arn = \"arn:aws:iam::222222222222:role/r\"\n",
            "readers[0].buckets",
        ),
        (
            "[[readers]]\nrole_arn = \"arn:aws:iam::222222222222:role/r\"\naccount = \"222222222222\"\n",
            "readers[0].account",
        ),
        (
            "[[readers]]\nrole_arn = \"arn:aws:iam::222222222222:role/r\"\nbuckets = [\"a/b\"]\n",
            "readers[0].buckets[0]",
        ),
        (
            "[[trails]]\nbucket = \"b\"\nexternal_id = \"x\"\n",
            "trails[0].external_id",
        ),
        (
            "[blind_spots]\nsilence_floor = \"2h\"\nsilence_ceiling = \"1h\"\n",
            "blind_spots.silence_ceiling",
        ),
    ] {
        assert_eq!(err(text).path, path, "{text}");
    }
}
