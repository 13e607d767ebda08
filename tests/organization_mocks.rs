//! Discovery across an organisation with mocked clients (aws-smithy-mocks),
//! for what moto does not model: a delegated administrator for the
//! organisation's calls, a member account whose trust policy refuses the
//! daemon, an organisation role denied `ListAccounts`, a suspended account,
//! an organisation trail seen again from a member.

mod common;

use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
use aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusOutput;
use aws_sdk_cloudtrail::types::Trail;
use aws_sdk_organizations::operation::list_accounts::{ListAccountsError, ListAccountsOutput};
use aws_sdk_organizations::operation::list_accounts_for_parent::ListAccountsForParentOutput;
use aws_sdk_organizations::operation::list_organizational_units_for_parent::ListOrganizationalUnitsForParentOutput;
use aws_sdk_organizations::operation::list_roots::ListRootsOutput;
use aws_sdk_organizations::types::{Account, AccountStatus, OrganizationalUnit, Root};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use trailwatch::config::RoleConfig;
use trailwatch::pipeline::Crawler;

const MANAGEMENT: &str = "arn:aws:iam::111111111111:role/trailwatch-discovery";
const DELEGATED: &str = "arn:aws:iam::999999999999:role/trailwatch-organization";
const READER: &str = "arn:aws:iam::222222222222:role/trailwatch-reader";
const ORG_TRAIL: &str = "arn:aws:cloudtrail:us-east-1:111111111111:trail/org";
const MEMBER_TRAIL: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/own";

fn role(arn: &str) -> RoleConfig {
    RoleConfig {
        arn: arn.into(),
        external_id: None,
    }
}

fn member(account: &str) -> RoleConfig {
    RoleConfig {
        arn: format!("arn:aws:iam::{account}:role/trailwatch-member"),
        external_id: Some("member-ext".into()),
    }
}

fn org_trail() -> Trail {
    Trail::builder()
        .name("org")
        .trail_arn(ORG_TRAIL)
        .home_region("us-east-1")
        .s3_bucket_name("aws-controltower-logs-222222222222-us-east-1")
        .is_organization_trail(true)
        .build()
}

fn member_trail() -> Trail {
    Trail::builder()
        .name("own")
        .trail_arn(MEMBER_TRAIL)
        .home_region("us-east-1")
        .s3_bucket_name("member-logs")
        .build()
}

/// A CloudTrail client that describes `trails` and says each logs.
fn cloudtrail(trails: Vec<Trail>) -> aws_sdk_cloudtrail::Client {
    let describe = mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(move || {
        DescribeTrailsOutput::builder()
            .set_trail_list(Some(trails.clone()))
            .build()
    });
    let status = mock!(aws_sdk_cloudtrail::Client::get_trail_status)
        .then_output(|| GetTrailStatusOutput::builder().is_logging(true).build());
    mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, [&describe, &status])
}

/// Credentials that cannot be had: the member's trust policy refuses.
#[derive(Debug)]
struct Refused;

impl aws_credential_types::provider::ProvideCredentials for Refused {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::provider_error(
                "AccessDenied: not authorized to perform sts:AssumeRole on trailwatch-member",
            ),
        ))
    }
}

fn refused_cloudtrail() -> aws_sdk_cloudtrail::Client {
    let conf = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(Refused)
        .build();
    aws_sdk_cloudtrail::Client::from_conf(conf)
}

fn account(id: &str, name: &str, status: AccountStatus) -> Account {
    Account::builder().id(id).name(name).status(status).build()
}

/// The organisation: management 111, log archive 222, a member 333 under
/// Workloads/Prod, a member 444 whose trust policy refuses the daemon, a
/// suspended 666.
fn organizations() -> aws_sdk_organizations::Client {
    let list = mock!(aws_sdk_organizations::Client::list_accounts).then_output(|| {
        ListAccountsOutput::builder()
            .accounts(account("111111111111", "management", AccountStatus::Active))
            .accounts(account(
                "222222222222",
                "log-archive",
                AccountStatus::Active,
            ))
            .accounts(account(
                "333333333333",
                "payments-prod",
                AccountStatus::Active,
            ))
            .accounts(account("444444444444", "sandbox", AccountStatus::Active))
            .accounts(account("666666666666", "closed", AccountStatus::Suspended))
            .build()
    });
    let roots = mock!(aws_sdk_organizations::Client::list_roots).then_output(|| {
        ListRootsOutput::builder()
            .roots(Root::builder().id("r-root").build())
            .build()
    });
    // Root: Workloads and the management account; Workloads: Prod; Prod: 333.
    let units = |parent: &'static str, children: &'static [(&'static str, &'static str)]| {
        mock!(aws_sdk_organizations::Client::list_organizational_units_for_parent)
            .match_requests(move |r| r.parent_id() == Some(parent))
            .then_output(move || {
                let mut b = ListOrganizationalUnitsForParentOutput::builder();
                for (id, name) in children {
                    b = b.organizational_units(
                        OrganizationalUnit::builder().id(*id).name(*name).build(),
                    );
                }
                b.build()
            })
    };
    let in_unit = |parent: &'static str, ids: &'static [&'static str]| {
        mock!(aws_sdk_organizations::Client::list_accounts_for_parent)
            .match_requests(move |r| r.parent_id() == Some(parent))
            .then_output(move || {
                let mut b = ListAccountsForParentOutput::builder();
                for id in ids {
                    b = b.accounts(account(id, "", AccountStatus::Active));
                }
                b.build()
            })
    };
    let (u_root, u_work, u_prod) = (
        units("r-root", &[("ou-work", "Workloads")]),
        units("ou-work", &[("ou-prod", "Prod")]),
        units("ou-prod", &[]),
    );
    let (a_root, a_work, a_prod) = (
        in_unit("r-root", &["111111111111"]),
        in_unit("ou-work", &[]),
        in_unit("ou-prod", &["333333333333"]),
    );
    mock_client!(
        aws_sdk_organizations,
        RuleMode::MatchAny,
        [
            &list, &roots, &u_root, &u_work, &u_prod, &a_root, &a_work, &a_prod
        ]
    )
}

async fn crawler(dir: &std::path::Path, organization_role: bool) -> Crawler {
    let org_role = if organization_role {
        format!("role_arn = \"{DELEGATED}\"\n")
    } else {
        String::new()
    };
    common::offline::crawler(
        dir,
        &format!(
            "[discovery]\nregions = [\"us-east-1\"]\n\
             [[discovery.accounts]]\nrole_arn = \"{MANAGEMENT}\"\n\
             [discovery.organization]\n{org_role}member_role_name = \"trailwatch-member\"\nmember_external_id = \"member-ext\"\n\
             [[readers]]\nrole_arn = \"{READER}\"\nbuckets = [\"aws-controltower-logs-*\"]\n"
        ),
    )
    .await
}

#[tokio::test]
async fn members_are_entered_through_their_role_and_the_organisation_trail_is_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crawler = crawler(dir.path(), true).await;
    let c = &crawler.clients;
    c.set_organizations(Some(&role(DELEGATED)), organizations());
    c.set_cloudtrail(
        Some(&role(MANAGEMENT)),
        "us-east-1",
        cloudtrail(vec![org_trail()]),
    );
    // The organisation trail again, as its shadow in the member.
    c.set_cloudtrail(
        Some(&member("333333333333")),
        "us-east-1",
        cloudtrail(vec![org_trail(), member_trail()]),
    );
    c.set_cloudtrail(
        Some(&member("222222222222")),
        "us-east-1",
        cloudtrail(vec![]),
    );
    c.set_cloudtrail(
        Some(&member("444444444444")),
        "us-east-1",
        refused_cloudtrail(),
    );

    let found = crawler.discover_trails().await;
    let mut arns: Vec<&str> = found.trails.iter().map(|t| t.arn.as_str()).collect();
    arns.sort();
    assert_eq!(arns, [ORG_TRAIL, MEMBER_TRAIL], "{:?}", found.errors);
    let org = found
        .trails
        .iter()
        .find(|t| t.arn == ORG_TRAIL)
        .expect("org");
    assert_eq!(
        org.discovered_by.as_deref(),
        Some(MANAGEMENT),
        "its own account's view"
    );
    assert_eq!(org.read_by.as_deref(), Some(READER));
    let own = found
        .trails
        .iter()
        .find(|t| t.arn == MEMBER_TRAIL)
        .expect("member");
    let member_arn = member("333333333333").arn;
    assert_eq!(own.discovered_by.as_deref(), Some(member_arn.as_str()));
    assert_eq!(
        own.read_by.as_deref(),
        Some(member_arn.as_str()),
        "the member's role reads its own bucket"
    );
    assert_eq!(c.reader_of("member-logs"), Some(member("333333333333")));

    // The member whose trust policy refuses: named, the others unharmed.
    let refused = found
        .errors
        .get("444444444444/us-east-1")
        .expect("refused member");
    assert!(refused.contains("sts:AssumeRole"), "{refused}");
    // The management account is not entered twice; a suspended one never.
    assert!(
        !found
            .errors
            .keys()
            .any(|k| k.starts_with("111111111111/") || k.starts_with("666666666666/")),
        "{:?}",
        found.errors
    );
    assert_eq!(found.errors.len(), 1, "{:?}", found.errors);

    let accounts = found.organization.expect("organisation listed");
    let path = |id: &str| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.ou_path.clone())
    };
    assert_eq!(path("333333333333").as_deref(), Some("Workloads/Prod"));
    assert_eq!(path("111111111111").as_deref(), Some(""));
    assert!(
        !accounts
            .iter()
            .find(|a| a.id == "666666666666")
            .expect("666")
            .active()
    );
}

#[tokio::test]
async fn an_organisation_role_denied_list_accounts_leaves_discovery_standing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No organisation role: the first discovery account's role asks.
    let crawler = crawler(dir.path(), false).await;
    let c = &crawler.clients;
    let denied = mock!(aws_sdk_organizations::Client::list_accounts).then_error(|| {
        ListAccountsError::AccessDeniedException(
            aws_sdk_organizations::types::error::AccessDeniedException::builder()
                .message("not authorized to perform organizations:ListAccounts")
                .build(),
        )
    });
    c.set_organizations(
        Some(&role(MANAGEMENT)),
        mock_client!(aws_sdk_organizations, [&denied]),
    );
    c.set_cloudtrail(
        Some(&role(MANAGEMENT)),
        "us-east-1",
        cloudtrail(vec![org_trail()]),
    );
    let found = crawler.discover_trails().await;
    assert_eq!(found.trails.len(), 1);
    assert!(found.organization.is_none());
    let why = found.errors.get("organization").expect("named");
    assert!(
        why.contains("ListAccounts") && why.contains("not authorized"),
        "{why}"
    );
}

#[tokio::test]
async fn a_delegated_administrator_for_cloudtrail_describes_the_organisation_trail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = "arn:aws:iam::999999999999:role/trailwatch-cloudtrail-admin";
    let crawler = common::offline::crawler(
        dir.path(),
        &format!("[discovery]\nregions = [\"us-east-1\"]\n[[discovery.accounts]]\nrole_arn = \"{admin}\"\n"),
    )
    .await;
    // The delegated administrator sees the management account's trail and
    // asks its status itself.
    let status = mock!(aws_sdk_cloudtrail::Client::get_trail_status)
        .match_requests(|r| r.name() == Some(ORG_TRAIL))
        .then_output(|| GetTrailStatusOutput::builder().is_logging(true).build());
    let describe = mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(|| {
        DescribeTrailsOutput::builder()
            .trail_list(org_trail())
            .build()
    });
    crawler.clients.set_cloudtrail(
        Some(&role(admin)),
        "us-east-1",
        mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, [&describe, &status]),
    );
    let found = crawler.discover_trails().await;
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    assert_eq!(found.trails.len(), 1);
    assert!(found.trails[0].logging && found.trails[0].organization);
    assert_eq!(found.trails[0].discovered_by.as_deref(), Some(admin));
    assert_eq!(
        status.num_calls(),
        1,
        "the status asked through the administrator's role"
    );
    // No reader configured: the role that found it reads it.
    assert_eq!(found.trails[0].read_by.as_deref(), Some(admin));
}

/// An organisation of `ids`, every account active and under the root.
fn flat_organization(ids: &'static [&'static str]) -> aws_sdk_organizations::Client {
    let list = mock!(aws_sdk_organizations::Client::list_accounts).then_output(move || {
        let mut b = ListAccountsOutput::builder();
        for id in ids {
            b = b.accounts(account(id, &format!("account-{id}"), AccountStatus::Active));
        }
        b.build()
    });
    let roots = mock!(aws_sdk_organizations::Client::list_roots).then_output(|| {
        ListRootsOutput::builder()
            .roots(Root::builder().id("r-root").build())
            .build()
    });
    let units = mock!(aws_sdk_organizations::Client::list_organizational_units_for_parent)
        .then_output(|| ListOrganizationalUnitsForParentOutput::builder().build());
    let under_root =
        mock!(aws_sdk_organizations::Client::list_accounts_for_parent).then_output(move || {
            let mut b = ListAccountsForParentOutput::builder();
            for id in ids {
                b = b.accounts(account(id, "", AccountStatus::Active));
            }
            b.build()
        });
    mock_client!(
        aws_sdk_organizations,
        RuleMode::MatchAny,
        [&list, &roots, &units, &under_root]
    )
}

#[tokio::test]
async fn accounts_joining_and_leaving_are_picked_up_at_the_next_discovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crawler = crawler(dir.path(), true).await;
    let c = &crawler.clients;
    c.set_cloudtrail(
        Some(&role(MANAGEMENT)),
        "us-east-1",
        cloudtrail(vec![org_trail()]),
    );
    // 333 has a trail of its own; 555 joins later with one of its own.
    let joined_trail = "arn:aws:cloudtrail:us-east-1:555555555555:trail/new";
    let describe_333 = mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(|| {
        DescribeTrailsOutput::builder()
            .trail_list(member_trail())
            .build()
    });
    let describe_555 = mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(move || {
        DescribeTrailsOutput::builder()
            .trail_list(
                Trail::builder()
                    .name("new")
                    .trail_arn(joined_trail)
                    .home_region("us-east-1")
                    .s3_bucket_name("newcomer-logs")
                    .build(),
            )
            .build()
    });
    let status = || {
        mock!(aws_sdk_cloudtrail::Client::get_trail_status)
            .then_output(|| GetTrailStatusOutput::builder().is_logging(true).build())
    };
    let (status_333, status_555) = (status(), status());
    c.set_cloudtrail(
        Some(&member("333333333333")),
        "us-east-1",
        mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::MatchAny,
            [&describe_333, &status_333]
        ),
    );
    c.set_cloudtrail(
        Some(&member("555555555555")),
        "us-east-1",
        mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::MatchAny,
            [&describe_555, &status_555]
        ),
    );

    let trails_of = |found: &trailwatch::aws::discovery::Discovery| {
        let mut arns: Vec<String> = found.trails.iter().map(|t| t.arn.clone()).collect();
        arns.sort();
        arns
    };
    let named = |found: &trailwatch::aws::discovery::Discovery| {
        let mut ids: Vec<String> = found
            .organization
            .as_ref()
            .expect("organisation listed")
            .iter()
            .map(|a| a.id.clone())
            .collect();
        ids.sort();
        ids
    };

    c.set_organizations(
        Some(&role(DELEGATED)),
        flat_organization(&["111111111111", "333333333333"]),
    );
    let first = crawler.discover_trails().await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(trails_of(&first), [ORG_TRAIL, MEMBER_TRAIL]);
    assert_eq!(named(&first), ["111111111111", "333333333333"]);
    assert_eq!(describe_555.num_calls(), 0, "not a member yet");

    // 333 leaves, 555 joins: the next discovery follows.
    c.set_organizations(
        Some(&role(DELEGATED)),
        flat_organization(&["111111111111", "555555555555"]),
    );
    let asked_333 = describe_333.num_calls();
    let second = crawler.discover_trails().await;
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(trails_of(&second), [ORG_TRAIL, joined_trail]);
    assert_eq!(named(&second), ["111111111111", "555555555555"]);
    assert_eq!(
        describe_333.num_calls(),
        asked_333,
        "a former member is not entered"
    );
    assert_eq!(describe_555.num_calls(), 1);
    let newcomer = second
        .trails
        .iter()
        .find(|t| t.arn == joined_trail)
        .expect("joined");
    let role_555 = member("555555555555").arn;
    assert_eq!(newcomer.discovered_by.as_deref(), Some(role_555.as_str()));
    assert_eq!(newcomer.read_by.as_deref(), Some(role_555.as_str()));
}
