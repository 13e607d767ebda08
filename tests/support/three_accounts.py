#!/usr/bin/env python3
"""Builds, on a fresh moto server, an AWS Organizations "Control Tower" layout with
ENFORCED IAM, for trailwatch's multi-account tests (boto3; run with
localstack/.venv-moto's Python).

    three_accounts.py MOTO_URL [POLICIES_JSON]
    three_accounts.py MOTO_URL --apply POLICIES_JSON
    three_accounts.py MOTO_URL --put-log BUCKET PREFIX ACCOUNT TAG

POLICIES_JSON, if given, is a file {"discovery": policy, "reader": policy,
"member": policy} whose documents replace the built-in role policies (any key may
be left out). `--apply` replaces policies afterwards: the file is {"roles":
[{"account", "name", "policy"}], "user": policy} (the daemon user's); `--put-log`
writes one more log object (stamped now, its records' ids ending in TAG) for
ACCOUNT under PREFIX in BUCKET. Both switch authentication off for their own
calls only and on again after.

Objects are stamped with the current minute (key time and records), so a crawl
that starts a day back reads them whatever the date.

The world (region us-east-1, partition aws):

    S  security account (not an org member): IAM user `trailwatch` with a static
       access key; its only permission is sts:AssumeRole on trailwatch-* roles.
    M  management account 123456789012: the organization (FeatureSet ALL), OUs
       Root>Security, Root>Workloads>Prod, organisation trail `org-trail` (logging)
       writing to L's bucket; role `trailwatch-discovery`.
    L  log archive (OU Security): bucket `org-trail-logs` with one gzipped
       CloudTrail object each for M and W; roles `trailwatch-reader`,
       `trailwatch-member`.
    W  workload (OU Workloads/Prod): own trail `member-trail` (logging) on its own
       bucket `member-trail-logs` with one object; role `trailwatch-member`.
    E  empty (OU Security): no trail, no objects; role `trailwatch-member`.

Setup runs with moto's authentication switched off (POST /moto-api/reset-auth
"inf"); at the end auth is switched on for every later request (reset-auth "0"),
so INITIAL_NO_AUTH_ACTION_COUNT on the server does not matter, and the script
checks that enforcement is live before printing one JSON object on stdout.

moto notes (5.2.5): the account of a request is the account whose IAM backend
holds the access key (assumed-role keys live in the role's account); setup uses
the `x-moto-account-id` header instead.  Only identity policies of IAM users and
assumed roles are evaluated; trust policies only when caller and role are in the
same account, and resource (bucket) policies never.  Resource elements are
matched only for S3 (arn:aws:s3:::bucket[/key]) and sts:AssumeRole (role ARN);
every other service checks against resource "*", so their statements must use
"Resource": "*".  S3 HeadBucket is checked as the (non-AWS) action s3:HeadBucket.
"""

from __future__ import annotations

import datetime
import gzip
import json
import sys
import urllib.request

import boto3
import botocore.config
from botocore.exceptions import ClientError

REGION = "us-east-1"
PARTITION = "aws"
MGMT = "123456789012"  # moto's default account
SECURITY = "111122223333"  # home of the daemon's IAM user; not an org member
ORG_BUCKET = "org-trail-logs"
MEMBER_BUCKET = "member-trail-logs"
DAEMON_USER = "trailwatch"
DISCOVERY_ROLE = "trailwatch-discovery"
READER_ROLE = "trailwatch-reader"
MEMBER_ROLE = "trailwatch-member"
NOW = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
DAY = NOW.strftime("%Y/%m/%d")
STAMP = NOW.strftime("%Y%m%dT%H%MZ")


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def s3_read(bucket: str) -> dict:
    return {
        "Sid": "ReadTrailBucket",
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation"],
        "Resource": [f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/*"],
    }


DEFAULT_POLICIES = {
    "discovery": policy(
        {
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "cloudtrail:DescribeTrails",
                "cloudtrail:GetTrailStatus",
                "organizations:DescribeOrganization",
                "organizations:ListAccounts",
                "organizations:ListParents",
                "organizations:DescribeOrganizationalUnit",
                "organizations:ListRoots",
                "organizations:ListOrganizationalUnitsForParent",
                "organizations:ListAccountsForParent",
            ],
            "Resource": "*",
        }
    ),
    "reader": policy(s3_read(ORG_BUCKET)),
    "member": policy(
        {
            "Sid": "Trails",
            "Effect": "Allow",
            "Action": ["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"],
            "Resource": "*",
        },
        s3_read(MEMBER_BUCKET),
    ),
}

DAEMON_POLICY = policy(
    {
        "Sid": "AssumeTrailwatchRoles",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": f"arn:{PARTITION}:iam::*:role/trailwatch-*",
    }
)


class World:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def client(self, service: str, account: str | None = None, **creds: str):
        c = boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=creds.get("key", "AKIASETUPSETUPSETUP0"),
            aws_secret_access_key=creds.get("secret", "setup"),
            aws_session_token=creds.get("token"),
            config=botocore.config.Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 1}
            ),
        )
        if account is not None:

            def pin(request, **_):
                request.headers["x-moto-account-id"] = account

            c.meta.events.register("before-sign.*.*", pin)
        return c

    def reset_auth(self, count: str) -> None:
        req = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            # not form-encoded, or Flask eats the body before moto reads it
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


def record(account: str, name: str, source: str, n: int, extra: dict) -> dict:
    r = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{account}EXAMPLE",
            "arn": f"arn:{PARTITION}:iam::{account}:user/alice",
            "accountId": account,
            "accessKeyId": "AKIAEXAMPLEEXAMPLE00",
            "userName": "alice",
        },
        "eventTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "eventID": f"00000000-0000-4000-8000-{account}",
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    r["eventID"] = r["eventID"][:-1] + str(n)
    r.update(extra)
    return r


def records_for(account: str, tag: str = "") -> bytes:
    recs = [
        record(
            account,
            "ConsoleLogin",
            "signin.amazonaws.com",
            1,
            {
                "eventType": "AwsConsoleSignIn",
                "responseElements": {"ConsoleLogin": "Success"},
                "additionalEventData": {"MFAUsed": "No"},
            },
        ),
        record(
            account,
            "StopLogging",
            "cloudtrail.amazonaws.com",
            2,
            {
                "requestParameters": {
                    "name": f"arn:{PARTITION}:cloudtrail:{REGION}:{account}:trail/x"
                }
            },
        ),
    ]
    for r in recs:
        r["eventID"] = r["eventID"][: len(r["eventID"]) - len(tag)] + tag if tag else r["eventID"]
    return gzip.compress(json.dumps({"Records": recs}).encode())


def object_key(prefix: str, account: str, suffix: str = "abc") -> str:
    return (
        f"{prefix}{account}/CloudTrail/{REGION}/{DAY}/"
        f"{account}_CloudTrail_{REGION}_{STAMP}_{suffix}.json.gz"
    )


def apply(w: World, path: str) -> None:
    with open(path) as f:
        docs = json.load(f)
    w.reset_auth("inf")
    try:
        for r in docs.get("roles", []):
            w.client("iam", r["account"]).put_role_policy(
                RoleName=r["name"], PolicyName=r["name"], PolicyDocument=json.dumps(r["policy"])
            )
        if "user" in docs:
            w.client("iam", SECURITY).put_user_policy(
                UserName=DAEMON_USER,
                PolicyName="trailwatch-assume",
                PolicyDocument=json.dumps(docs["user"]),
            )
    finally:
        w.reset_auth("0")


def put_log(w: World, bucket: str, prefix: str, account: str, tag: str) -> None:
    w.reset_auth("inf")
    try:
        s3 = w.client("s3")
        key = object_key(prefix, account, tag)
        s3.put_object(Bucket=bucket, Key=key, Body=records_for(account, tag))
        print(key)
    finally:
        w.reset_auth("0")


def make_role(w: World, account: str, name: str, doc: dict, trusted: str) -> str:
    iam = w.client("iam", account)
    trust = policy(
        {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}
    )
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(doc))
    return arn


def expect_denied(fn, what: str) -> None:
    try:
        fn()
    except ClientError as e:
        # moto answers JSON-protocol services (cloudtrail, organizations) with an
        # XML <ErrorResponse> body, so botocore reports Code "403" there.
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if status == 403:
            return
        raise SystemExit(f"{what}: expected a 403, got {status} {e.response['Error']}")
    raise SystemExit(f"{what}: succeeded, but IAM enforcement should deny it")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[2] == "--apply":
        return apply(World(sys.argv[1]), sys.argv[3])
    if len(sys.argv) == 7 and sys.argv[2] == "--put-log":
        return put_log(World(sys.argv[1]), *sys.argv[3:7])
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    w = World(sys.argv[1])
    policies = dict(DEFAULT_POLICIES)
    if len(sys.argv) == 3:
        with open(sys.argv[2]) as f:
            policies.update(json.load(f))

    w.reset_auth("inf")  # setup unauthenticated, whatever the server was told

    # Organization in M, member accounts, OUs.
    org = w.client("organizations", MGMT)
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root_id = org.list_roots()["Roots"][0]["Id"]
    ou = {}
    ou["Security"] = org.create_organizational_unit(ParentId=root_id, Name="Security")
    ou["Workloads"] = org.create_organizational_unit(ParentId=root_id, Name="Workloads")
    ou["Workloads/Prod"] = org.create_organizational_unit(
        ParentId=ou["Workloads"]["OrganizationalUnit"]["Id"], Name="Prod"
    )
    ou = {k: v["OrganizationalUnit"]["Id"] for k, v in ou.items()}

    def new_account(name: str, ou_path: str) -> str:
        st = org.create_account(AccountName=name, Email=f"{name}@example.com")
        acct = st["CreateAccountStatus"]["AccountId"]
        org.move_account(
            AccountId=acct, SourceParentId=root_id, DestinationParentId=ou[ou_path]
        )
        return acct

    log_archive = new_account("log-archive", "Security")
    workload = new_account("workload-prod", "Workloads/Prod")
    empty = new_account("audit-empty", "Security")
    accounts = {
        "management": MGMT,
        "log_archive": log_archive,
        "workload": workload,
        "empty": empty,
        "security": SECURITY,
    }
    if len(set(accounts.values())) != len(accounts):
        raise SystemExit(f"account id collision: {accounts}")

    # The daemon's base identity in S.
    iam_s = w.client("iam", SECURITY)
    user_arn = iam_s.create_user(UserName=DAEMON_USER)["User"]["Arn"]
    iam_s.put_user_policy(
        UserName=DAEMON_USER,
        PolicyName="trailwatch-assume",
        PolicyDocument=json.dumps(DAEMON_POLICY),
    )
    key = iam_s.create_access_key(UserName=DAEMON_USER)["AccessKey"]

    # Roles.
    roles = {
        "discovery": make_role(w, MGMT, DISCOVERY_ROLE, policies["discovery"], user_arn),
        "reader": make_role(w, log_archive, READER_ROLE, policies["reader"], user_arn),
        "member": {
            a: make_role(w, a, MEMBER_ROLE, policies["member"], user_arn)
            for a in (log_archive, workload, empty)
        },
    }

    # Log archive bucket in L with objects for M and W.
    s3_l = w.client("s3", log_archive)
    s3_l.create_bucket(Bucket=ORG_BUCKET)
    org_prefix = f"AWSLogs/{org_id}/"
    org_keys = {}
    for a in (MGMT, workload):
        k = object_key(org_prefix, a)
        s3_l.put_object(Bucket=ORG_BUCKET, Key=k, Body=records_for(a))
        org_keys[a] = k

    # Organisation trail in M, logging.
    ct_m = w.client("cloudtrail", MGMT)
    org_trail = ct_m.create_trail(
        Name="org-trail",
        S3BucketName=ORG_BUCKET,
        IsMultiRegionTrail=True,
        IsOrganizationTrail=True,
    )["TrailARN"]
    ct_m.start_logging(Name="org-trail")

    # W's own trail and bucket.
    s3_w = w.client("s3", workload)
    s3_w.create_bucket(Bucket=MEMBER_BUCKET)
    member_key = object_key("AWSLogs/", workload)
    s3_w.put_object(Bucket=MEMBER_BUCKET, Key=member_key, Body=records_for(workload))
    ct_w = w.client("cloudtrail", workload)
    member_trail = ct_w.create_trail(Name="member-trail", S3BucketName=MEMBER_BUCKET)[
        "TrailARN"
    ]
    ct_w.start_logging(Name="member-trail")

    # From here on every request is authenticated and authorised.
    w.reset_auth("0")
    bogus = w.client("sts", key="AKIABOGUSBOGUSBOGUS0", secret="bogus")
    expect_denied(bogus.get_caller_identity, "unknown access key")
    creds = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    who = w.client("sts", **creds).get_caller_identity()
    if who["Arn"] != user_arn:
        raise SystemExit(f"daemon key resolves to {who['Arn']}, not {user_arn}")
    expect_denied(
        w.client("cloudtrail", **creds).describe_trails, "daemon user DescribeTrails"
    )

    print(
        json.dumps(
            {
                "endpoint": w.url,
                "region": REGION,
                "partition": PARTITION,
                "auth_enforced": True,
                "accounts": accounts,
                "organization": {
                    "id": org_id,
                    "root_id": root_id,
                    "management_account": MGMT,
                    "ous": ou,
                    "account_ous": {
                        log_archive: "Security",
                        empty: "Security",
                        workload: "Workloads/Prod",
                    },
                },
                "daemon": {
                    "user_arn": user_arn,
                    "access_key_id": key["AccessKeyId"],
                    "secret_access_key": key["SecretAccessKey"],
                    "policy": DAEMON_POLICY,
                },
                "roles": {
                    "discovery": roles["discovery"],
                    "reader": roles["reader"],
                    "member": roles["member"],
                    "member_role_name": MEMBER_ROLE,
                },
                "policies": {k: policies[k] for k in ("discovery", "reader", "member")},
                "buckets": {
                    "org": {
                        "name": ORG_BUCKET,
                        "account": log_archive,
                        "prefix": org_prefix,
                        "keys": org_keys,
                    },
                    "member": {
                        "name": MEMBER_BUCKET,
                        "account": workload,
                        "keys": {workload: member_key},
                    },
                },
                "trails": {"org": org_trail, "member": member_trail},
                "stamp": STAMP,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
