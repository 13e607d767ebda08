#!/usr/bin/env python3
"""Generate one day of benign CloudTrail activity, to measure false positives.

The output is JSON lines (one compact CloudTrail record a line, sorted by
``eventTime``) that ``trailwatch scan`` reads directly.  The built-in rule pack
at its default settings should raise next to nothing of level medium or above
on it: every record describes something a security team would not want to be
paged for.

What the day models
-------------------
One organisation with four accounts (an Identity Center / management account, a
shared-services account holding CI/CD, ECR and the Terraform state, a
production and a staging account), working mostly in us-east-1 and eu-west-1,
with AWS Config and GuardDuty on in four regions.  Account ids, names, IPs
(documentation and benchmarking ranges) and keys are fictional; ids and times
come from a random generator seeded with ``--seed``, so the same arguments give
a byte-identical file.

* Deploy pipelines: CodePipeline starts CodeBuild; the build role pushes images
  to ECR (docker user agent); a ``ci-deploy`` role, assumed across accounts
  (an AssumedRole, never a person), drives CloudFormation change sets, updates
  ECS services and Lambda code (``UpdateFunctionCode20150331v2``,
  ``PublishVersion``, ``UpdateAlias``) and polls until stable; CloudFormation
  and the ECS service-linked role act for it (``invokedBy``).
* Terraform runs from GitHub Actions (``AssumeRoleWithWebIdentity``, then a
  cross-account ``terraform`` role): plans that flood Describe/List/Get calls,
  and applies that create security groups open only to internal CIDRs or other
  groups (plus, at most once a day, a load balancer group open to the world on
  443 only), IAM roles and scoped policies (never AdministratorAccess or
  ``"Action": "*"``), S3 buckets with every Block Public Access setting on,
  versioning, encryption, access logging and sensible lifecycles, queue
  policies limited by ``aws:SourceArn``, alarms, log groups, parameters; and a
  nightly destroy of a preview environment in staging.
* People: a few legacy IAM users signing in to the console with MFA (one of
  them mistyping a password first), Identity Center users (sign-in, portal,
  ``AssumeRoleWithSAML`` and federated ``ConsoleLogin`` through
  ``AWSReservedSSO_*`` roles with a ``SamlProviderArn``), Okta SAML users,
  console browsing and CLI use, a few SSM sessions, routine ECS and alarm
  changes, an engineer re-registering her own MFA device, Identity Center
  provisioning a permission set through ``AWSServiceRoleForSSO``.
* AWS acting for itself: service-linked roles (Config, GuardDuty, Auto Scaling,
  ELB, RDS, ECS, SSO), ``AWSService`` identities with ``invokedBy``
  (STS ``AssumeRole`` for ECS tasks, Lambda, EC2, CodeBuild...; KMS
  ``GenerateDataKey``/``Decrypt`` for CloudTrail, S3, Secrets Manager, SSM),
  ``AwsServiceEvent`` records (Backup jobs, KMS key rotation), AWS Backup
  taking and expiring EBS/RDS snapshots at night, Auto Scaling following the
  load, the SSM and ECS agents' heartbeats, a patch maintenance window.
* Read-only dashboards: Grafana and Datadog integration roles, assumed from the
  vendors' accounts, polling CloudWatch ``GetMetricData``/``ListMetrics`` and
  Describe*/List* every minute, with the odd ``ThrottlingException``.
* Applications reading their own secrets at a steady rate (``GetSecretValue``
  by each app's role, ``GetParameters`` with decryption by ECS task execution
  roles), pulling images, decrypting with KMS, calling Bedrock, and (unless
  ``--no-data-events``) S3 ``GetObject``/``PutObject`` data events.
* A ``ci-key-rotation`` role (a scheduled Lambda) creating, deactivating and
  deleting access keys of service users, and the service users' own calls.
* Benign errors: AccessDenied from engineers using the wrong permission set,
  a mistyped parameter name, throttling.
* The Panther test records labelled ``expected: false``
  (``panther-tests/cloudtrail_tests.jsonl`` in the shared datasets), re-timed
  into the day with fresh eventIDs (``--no-panther`` leaves them out).  A few
  of them are byte-identical, but for eventID/eventTime, to records Panther
  labels ``expected: true`` for some rule (a root console login, a login
  without MFA, ``DeleteDeliveryChannel``, ``AttachUserPolicy`` with
  AdministratorAccess...), and some carry an attack tool's user agent
  (``stratus-red-team_``, TruffleHog); ``--panther-exclude-contested`` leaves
  those out and says how many and why.

Volumes scale with ``--records`` (default 200,000; that is the total, Panther
records included): discrete activity (deploys, Terraform runs, sign-ins...)
is scaled from its size at 200,000 records, and steady background traffic
(dashboards, agents, services, applications) fills the rest.  Engineers follow
a working-day curve, applications a diurnal load curve, pollers and services
are flat, backups and key rotation run at night.  Records average about 1.4 KB
(200,000 records: about 280 MB, 10 s).  Everything is built in memory and
sorted before writing (peak memory about 1.3 times the output size).  With
small ``--records`` the discrete activity alone can exceed the total; a random
sample of it is kept then.

Examples::

    scripts/benign_day.py --out target/benign/day.jsonl
    scripts/benign_day.py --out target/benign/day.jsonl --records 500000 --seed 7 \\
        --date 2025-03-11 --panther-exclude-contested
    target/debug/trailwatch scan --format jsonl target/benign/day.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS = Path(os.environ.get("TRAILWATCH_DATASETS", REPO.parent / "shared" / "datasets"))
PANTHER_FILE = "panther-tests/cloudtrail_tests.jsonl"

DAY = 86400.0
BASE_RECORDS = 200_000  # discrete activity is sized for this many records

# --------------------------------------------------------------------------
# The organisation
# --------------------------------------------------------------------------

ACCOUNTS = {
    "identity": "204518637924",  # management account, IAM Identity Center
    "shared": "318274659013",    # CI/CD, ECR, Terraform state
    "prod": "427391856024",
    "staging": "536402967135",
}
ORG_ID = "o-7h2kq9x4ma"
HOME = "us-east-1"
WORKLOAD_REGIONS = ("us-east-1", "eu-west-1")
WORKLOAD_WEIGHTS = (0.72, 0.28)
MONITORED_REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "eu-central-1")
GRAFANA_ACCOUNT = "701938245561"  # the dashboard vendors' accounts (fictional)
DATADOG_ACCOUNT = "812049356672"
VPC_CIDR = {"prod": "10.40.0.0/16", "staging": "10.50.0.0/16", "shared": "10.30.0.0/16"}
VPC_OCTET = {"prod": 40, "staging": 50, "shared": 30}
OFFICE_IP = "198.51.100.17"                      # office egress
NAT_IPS = {"prod": ["192.0.2.10", "192.0.2.11"], "staging": ["192.0.2.20"], "shared": ["192.0.2.30"]}
GITHUB_RUNNER_IPS = ["198.18.44.%d" % i for i in (12, 37, 90, 141, 203)]
GRAFANA_IPS = ["198.18.120.%d" % i for i in (5, 6, 7)]
DATADOG_IPS = ["198.18.200.%d" % i for i in (21, 22, 23, 24)]
IC_REGION = "us-east-1"
IC_INSTANCE = "ssoins-7223a1b9c0d4e5f6"
IDENTITY_STORE = "d-9067a1b2c3"
SSO_SAML_PROVIDER = "AWSSSO_3f9c1e7a2b4d6058_DO_NOT_DELETE"

PEOPLE = [  # name, permission set, home IP
    ("amelia.hart", "AdministratorAccess", "203.0.113.21"),
    ("bruno.silva", "PowerUserAccess", "203.0.113.34"),
    ("chen.wei", "PowerUserAccess", OFFICE_IP),
    ("dana.kowalski", "ReadOnlyAccess", OFFICE_IP),
    ("elif.demir", "PowerUserAccess", "203.0.113.58"),
    ("farid.haddad", "DataEngineer", "203.0.113.61"),
    ("grace.obi", "ReadOnlyAccess", OFFICE_IP),
    ("hiro.tanaka", "PowerUserAccess", "203.0.113.77"),
    ("ines.moreau", "DataEngineer", OFFICE_IP),
    ("jonas.berg", "PowerUserAccess", "203.0.113.89"),
    ("kavya.iyer", "ReadOnlyAccess", "203.0.113.93"),
    ("liam.oconnor", "PowerUserAccess", OFFICE_IP),
    ("maya.cohen", "AdministratorAccess", "203.0.113.102"),
    ("nils.andersen", "ReadOnlyAccess", "203.0.113.117"),
    ("olivia.nguyen", "PowerUserAccess", OFFICE_IP),
    ("pablo.ruiz", "DataEngineer", "203.0.113.130"),
    ("quinn.lee", "ReadOnlyAccess", "203.0.113.144"),
    ("rosa.marquez", "PowerUserAccess", OFFICE_IP),
    ("sam.patel", "PowerUserAccess", "203.0.113.158"),
    ("tara.walsh", "ReadOnlyAccess", "203.0.113.161"),
]
EMAIL_DOMAIN = "example.com"
PERMISSION_SET_SUFFIX = {
    "AdministratorAccess": "5c1f0e8a2d3b4c67",
    "PowerUserAccess": "a93e4b7c1d2f6e80",
    "ReadOnlyAccess": "0b7d2c9e4f1a3d58",
    "DataEngineer": "e24a6c8b0d1f3e75",
}
# Legacy IAM users who still sign in to the shared account's console, with MFA.
CONSOLE_IAM_USERS = [("k.nakamura", "203.0.113.180"), ("j.okafor", OFFICE_IP), ("m.rossi", "203.0.113.191")]
# Service users whose long-term keys ci-key-rotation rotates.
SERVICE_USERS = ["svc-sftp-partner", "svc-onprem-backup", "svc-legacy-reporting", "svc-erp-export"]

# Applications: name -> (runtime, language, secrets, parameters, buckets)
APPS = {
    "orders-api": ("ecs", "java", ["prod/orders-api/db", "prod/orders-api/stripe"],
                   ["/prod/orders-api/db-password", "/prod/orders-api/jwt-signing-key"], ["acme-prod-orders-exports"]),
    "payments-worker": ("ecs", "go", ["prod/payments/psp-api-key", "prod/payments/db"],
                        ["/prod/payments/webhook-secret"], ["acme-prod-payment-reports"]),
    "web-frontend": ("ecs", "node", ["prod/web/session-secret"],
                     ["/prod/web/cdn-signing-key", "/prod/web/recaptcha"], ["acme-prod-static-assets"]),
    "support-assistant": ("ecs", "python", ["prod/support-assistant/zendesk"],
                          ["/prod/support-assistant/slack-token"], ["acme-prod-support-attachments"]),
    "catalog-sync": ("lambda", "python", ["prod/catalog-sync/supplier-api"], ["/prod/catalog-sync/feed-url"],
                     ["acme-prod-catalog-feeds"]),
    "invoice-renderer": ("lambda", "python", ["prod/invoice-renderer/smtp"], ["/prod/invoice-renderer/template-key"],
                         ["acme-prod-invoices"]),
    "notifications": ("lambda", "node", ["prod/notifications/twilio"], ["/prod/notifications/sns-topic"],
                      ["acme-prod-notification-logs"]),
}
ECS_CLUSTERS = {"prod": "prod-main", "staging": "staging-main"}
LAMBDA_RUNTIME = {"python": "python3.12", "node": "nodejs20.x"}
BEDROCK_MODELS = ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-embed-text-v2:0"]

# --------------------------------------------------------------------------
# User agents (as real SDKs, tools and services write them)
# --------------------------------------------------------------------------

UA_CLI = ("aws-cli/2.15.40 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 "
          "md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#{cmd}")
UA_CLI_LINUX = ("aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#4.14.336-257.562.amzn2.x86_64 md/arch#x86_64 "
                "lang/python#3.11.8 md/pyimpl#CPython exec-env/AWS_ECS_EC2 cfg/retry-mode#standard "
                "md/installer#exe md/distrib#amzn.2 md/prompt#off md/command#{cmd}")
UA_BOTO_LAMBDA = ("Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.214-223.864.amzn2.x86_64 "
                  "md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
                  "cfg/retry-mode#legacy Botocore/1.34.84")
UA_BOTO_ECS = ("Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 "
               "lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard "
               "Botocore/1.34.84")
UA_JAVA = ("aws-sdk-java/2.25.31 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS "
           "Java/21.0.3 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy")
UA_GO = ("aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/{api} "
         "exec-env/AWS_ECS_FARGATE")
UA_NODE = ("aws-sdk-js/3.556.0 ua/2.1 os/linux#5.10.213-201.855.amzn2.x86_64 lang/js md/nodejs#20.12.2 "
           "api/{api}#3.556.0 exec-env/{env}")
UA_TERRAFORM = ("APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.46.0 "
                "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 ua/2.0 os/linux "
                "lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/{api}")
UA_GH_OIDC = ("aws-sdk-js/3.556.0 ua/2.1 os/linux#6.5.0-1018-azure lang/js md/nodejs#20.12.2 api/sts#3.556.0 "
              "configure-aws-credentials-for-github-actions")
UA_DOCKER = ("docker/24.0.9 go/go1.20.13 git-commit/fca702d kernel/4.14.336-257.562.amzn2.x86_64 os/linux "
             "arch/amd64 UpstreamClient(Docker-Client/24.0.9 \\(linux\\))")
UA_GRAFANA = "aws-sdk-go/1.51.21 (go1.21.9; linux; amd64) Grafana/10.4.2"
UA_DATADOG = ("Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux#5.15.0-1057-aws md/arch#x86_64 "
              "lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.34.54 datadog-aws-crawler")
UA_SSM_AGENT = "aws-sdk-go/1.44.302 (go1.21.10; linux; amd64) amazon-ssm-agent/3.3.380.0"
UA_ECS_AGENT = "aws-sdk-go/1.51.3 (go1.21.9; linux; amd64) amazon-ecs-agent/1.82.3"
UA_FARGATE = "aws-sdk-go/1.51.3 (go1.21.9; linux; amd64) Fargate/1.4.0"
BROWSERS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
]
# Substrings of attack tools' user agents (as in the built-in aws-attacker-tool-user-agent rule).
ATTACK_TOOL_UA = ("stratus-red-team", "pacu", "scoutsuite", "scout suite", "prowler", "cloudfox",
                  "enumerate-iam", "weirdaal", "aws_consoler", "kali", "parrot", "trufflehog")

# Diurnal curves (relative weight of each UTC hour): customers in the US and
# Europe for applications, engineers in Europe and on the US east coast.
APP_HOURS = [0.55, 0.45, 0.40, 0.38, 0.40, 0.48, 0.60, 0.75, 0.90, 1.00, 1.05, 1.10,
             1.15, 1.25, 1.35, 1.40, 1.40, 1.30, 1.20, 1.10, 1.00, 0.90, 0.80, 0.65]
WORK_HOURS = [0.02, 0.01, 0.01, 0.01, 0.02, 0.05, 0.15, 0.45, 0.80, 1.00, 1.00, 0.90,
              0.85, 1.00, 1.10, 1.10, 1.00, 0.90, 0.70, 0.50, 0.35, 0.20, 0.10, 0.05]

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
HEX = "0123456789abcdef"


def ua_cli(cmd: str) -> str:
    return UA_CLI.format(cmd=cmd)


def host_for(source: str, region: str) -> str:
    """The TLS host header a client sends for an event source."""
    svc = source.split(".")[0]
    if svc in ("iam", "organizations", "route53", "cloudfront"):
        return f"{svc}.amazonaws.com"
    if svc == "signin":
        return "signin.aws.amazon.com"
    if svc == "ecr":
        return f"api.ecr.{region}.amazonaws.com"
    if svc == "sso":
        return f"portal.sso.{region}.amazonaws.com"
    if svc == "bedrock":
        return f"bedrock-runtime.{region}.amazonaws.com"
    return f"{svc}.{region}.amazonaws.com"


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------

class Day:
    """Builds the records of one day; ``emit`` collects them as compact JSON."""

    def __init__(self, seed: int, date: dt.date, data_events: bool):
        self.rng = random.Random(seed)
        self.start = dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc)
        self.data_events = data_events
        self.out: list[tuple[float, int, str]] = []
        self.by_activity: Counter[str] = Counter()
        self.bytes_by_activity: Counter[str] = Counter()
        self.activity = "?"
        self._ids: dict[tuple, str] = {}
        self._keys: dict[tuple, str] = {}
        # Long-running ECS tasks (their ids are the role session names).
        self.tasks = {app: [self.hex(32) for _ in range(4)] for app, spec in APPS.items() if spec[0] == "ecs"}
        self.instances = {acct: [f"i-0{self.hex(16)}" for _ in range(n)]
                          for acct, n in (("prod", 24), ("staging", 8), ("shared", 6))}
        # A quarter of the production fleet runs in eu-west-1.
        self.instance_region = {i: "eu-west-1" if acct == "prod" and n % 4 == 3 else HOME
                                for acct, ids in self.instances.items() for n, i in enumerate(ids)}
        self.volumes = {acct: [f"vol-0{self.hex(16)}" for _ in range(n)]
                        for acct, n in (("prod", 30), ("staging", 8), ("shared", 6))}
        self.kms_keys = {acct: [str(self.uuid()) for _ in range(4)] for acct in ACCOUNTS}

    # ---- small random helpers -------------------------------------------------

    def hex(self, n: int) -> str:
        return "".join(self.rng.choices(HEX, k=n))

    def b32(self, n: int) -> str:
        return "".join(self.rng.choices(B32, k=n))

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def pick(self, seq):
        return self.rng.choice(seq)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def region(self) -> str:
        return self.rng.choices(WORKLOAD_REGIONS, WORKLOAD_WEIGHTS)[0]

    def at(self, hours=None) -> float:
        """A second of the day: uniform, or following an hourly weight curve."""
        if hours is None:
            return self.rng.uniform(0, DAY)
        h = self.rng.choices(range(24), hours)[0]
        return h * 3600 + self.rng.uniform(0, 3600)

    def iso(self, t: float) -> str:
        t = min(max(t, 0.0), DAY - 0.001)
        return (self.start + dt.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def aws_date(self, t: float) -> str:
        """A date as CloudTrail writes Date members of some services' parameters."""
        return (self.start + dt.timedelta(seconds=t)).strftime("%b %-d, %Y, %-I:%M:%S %p")

    def iso_any(self, t: float) -> str:
        """Like iso, but times before or after the day are allowed (creation dates, expiries)."""
        return (self.start + dt.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def stable_id(self, prefix: str, *key) -> str:
        """An IAM unique id (AROA..., AIDA...) that stays the same for one principal."""
        k = (prefix,) + key
        if k not in self._ids:
            self._ids[k] = prefix + self.b32(17)
        return self._ids[k]

    def session_key(self, *key) -> str:
        """A temporary access key id, the same for one session within an hour."""
        if key not in self._keys:
            self._keys[key] = "ASIA" + self.b32(16)
        return self._keys[key]

    # ---- identities ---------------------------------------------------------------

    def role(self, acct: str, role: str, session: str, t: float, *, path: str = "/", mfa: bool = False,
             invoked_by: str | None = None, since: float | None = None) -> dict:
        """An AssumedRole identity at time t.

        A session that started at ``since`` keeps its key and creation date; without
        ``since`` the session is a long-running one whose credentials renew hourly.
        """
        acct_id = ACCOUNTS.get(acct, acct)
        rid = self.stable_id("AROA", acct_id, role)
        if since is None:
            epoch = int(t // 3600)
            created = min(epoch * 3600 + 60 * (len(session) % 17), t)
        else:
            epoch = created = since
        ident = {
            "type": "AssumedRole",
            "principalId": f"{rid}:{session}",
            "arn": f"arn:aws:sts::{acct_id}:assumed-role/{role}/{session}",
            "accountId": acct_id,
            "accessKeyId": self.session_key(acct_id, role, session, epoch),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": rid,
                                  "arn": f"arn:aws:iam::{acct_id}:role{path}{role}",
                                  "accountId": acct_id, "userName": role},
                "webIdFederationData": {},
                "attributes": {"creationDate": self.iso_any(created),
                               "mfaAuthenticated": "true" if mfa else "false"},
            },
        }
        if invoked_by:
            ident["invokedBy"] = invoked_by
        return ident

    def slr(self, acct: str, service: str, role: str, session: str, t: float) -> dict:
        """A service-linked role acting for its service."""
        return self.role(acct, role, session, t, path=f"/aws-service-role/{service}/", invoked_by=service)

    def sso(self, acct: str, person: str, pset: str, t0: float) -> dict:
        role = f"AWSReservedSSO_{pset}_{PERMISSION_SET_SUFFIX[pset]}"
        return self.role(acct, role, f"{person}@{EMAIL_DOMAIN}", t0, since=t0,
                         path=f"/aws-reserved/sso.amazonaws.com/{IC_REGION}/")

    def iam_user(self, acct: str, name: str, *, console_t0: float | None = None, key: str | None = None) -> dict:
        acct_id = ACCOUNTS[acct]
        ident = {"type": "IAMUser", "principalId": self.stable_id("AIDA", acct_id, name),
                 "arn": f"arn:aws:iam::{acct_id}:user/{name}", "accountId": acct_id}
        if console_t0 is not None:
            ident["accessKeyId"] = self.session_key(acct_id, name, int(console_t0))
            ident["userName"] = name
            ident["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                                       "attributes": {"creationDate": self.iso(console_t0),
                                                      "mfaAuthenticated": "true"}}
        else:
            ident["accessKeyId"] = key or self.long_term_key(acct_id, name)
            ident["userName"] = name
        return ident

    def long_term_key(self, acct_id: str, name: str) -> str:
        k = ("AKIA", acct_id, name)
        if k not in self._ids:
            self._ids[k] = "AKIA" + self.b32(16)
        return self._ids[k]

    @staticmethod
    def service(invoked_by: str) -> dict:
        return {"type": "AWSService", "invokedBy": invoked_by}

    # ---- the record -----------------------------------------------------------------

    def emit(self, t: float, ident: dict, source: str, name: str, *, acct: str, region: str = HOME,
             ip: str | None = None, ua: str | None = None, req=None, resp=None, read_only: bool = True,
             error: tuple[str, str] | None = None, extra: dict | None = None, event_type: str = "AwsApiCall",
             data: bool = False, resources: list | None = None, vpce: str | None = None,
             console: bool = False, version: str = "1.09") -> None:
        """Write one record with the fields and key order CloudTrail uses."""
        by_service = ident.get("type") == "AWSService" or "invokedBy" in ident
        if ip is None:
            ip = ident.get("invokedBy", "AWS Internal") if by_service else "AWS Internal"
        if ua is None:
            ua = ident.get("invokedBy", "AWS Internal") if by_service else "AWS Internal"
        rec = {"eventVersion": "1.10" if data else version, "userIdentity": ident, "eventTime": self.iso(t),
               "eventSource": source, "eventName": name, "awsRegion": region,
               "sourceIPAddress": ip, "userAgent": ua}
        if error:
            rec["errorCode"] = error[0]
            if error[1] is not None:
                rec["errorMessage"] = error[1]
        rec["requestParameters"] = req
        rec["responseElements"] = resp
        if extra:
            rec.update(extra)
        rec["requestID"] = self.hex(16).upper() if source == "s3.amazonaws.com" else str(self.uuid())
        rec["eventID"] = str(self.uuid())
        rec["readOnly"] = read_only
        if resources:
            rec["resources"] = resources
        rec["eventType"] = event_type
        rec["managementEvent"] = not data
        rec["recipientAccountId"] = ACCOUNTS.get(acct, acct)
        if vpce:
            rec["vpcEndpointId"] = vpce
            rec["vpcEndpointAccountId"] = ACCOUNTS.get(acct, acct)
        rec["eventCategory"] = "Data" if data else "Management"
        if not by_service and event_type == "AwsApiCall" and ip != "AWS Internal":
            tls13 = self.rng.random() < 0.85
            rec["tlsDetails"] = {
                "tlsVersion": "TLSv1.3" if tls13 else "TLSv1.2",
                "cipherSuite": "TLS_AES_128_GCM_SHA256" if tls13 else "ECDHE-RSA-AES128-GCM-SHA256",
                "clientProvidedHostHeader": req["Host"] if isinstance(req, dict) and "Host" in req
                else host_for(source, region)}
        if console:
            rec["sessionCredentialFromConsole"] = "true"
        line = json.dumps(rec, separators=(",", ":"))
        self.out.append((t, len(self.out), line))
        self.by_activity[self.activity] += 1
        self.bytes_by_activity[self.activity] += len(line) + 1

    def service_event(self, t: float, source: str, name: str, *, acct: str, region: str = HOME,
                      details: dict | None = None, resources: list | None = None, read_only: bool = False) -> None:
        """An AwsServiceEvent: something AWS did on its own, not an API call."""
        extra = {"serviceEventDetails": details} if details else None
        self.emit(t, {"accountId": ACCOUNTS[acct], "invokedBy": source}, source, name, acct=acct,
                  region=region, ip=source, ua=source, extra=extra, event_type="AwsServiceEvent",
                  resources=resources, read_only=read_only)

    # ---- shared shapes --------------------------------------------------------------

    def assume_role_by_service(self, t: float, acct: str, region: str, service: str, role: str,
                               session: str) -> None:
        acct_id = ACCOUNTS[acct]
        arn = f"arn:aws:iam::{acct_id}:role/{role}"
        akid = "ASIA" + self.b32(16)
        self.emit(t, self.service(service), "sts.amazonaws.com", "AssumeRole", acct=acct, region=region,
                  req={"roleArn": arn, "roleSessionName": session},
                  resp={"credentials": {"accessKeyId": akid, 
                                        "expiration": self.iso_any(t + 3600 * (1 if service != "ec2.amazonaws.com" else 6))},
                        "assumedRoleUser": {"assumedRoleId": f"{self.stable_id('AROA', acct_id, role)}:{session}",
                                            "arn": f"arn:aws:sts::{acct_id}:assumed-role/{role}/{session}"}},
                  resources=[{"accountId": acct_id, "type": "AWS::IAM::Role", "ARN": arn}],
                  extra={"sharedEventID": str(self.uuid())} if service.endswith("amazonaws.com") and self.chance(0.3) else None)

    def cross_account_assume(self, t: float, acct: str, caller_acct: str, caller_role: str, caller_session: str,
                             role: str, session: str, ip: str, ua: str, external_id: bool = False) -> None:
        """AssumeRole into ``acct`` from another account (seen as an AWSAccount identity)."""
        acct_id = ACCOUNTS[acct]
        caller_id = ACCOUNTS.get(caller_acct, caller_acct)
        arn = f"arn:aws:iam::{acct_id}:role/{role}"
        req = {"roleArn": arn, "roleSessionName": session, "durationSeconds": 3600}
        if external_id:
            req["externalId"] = "HIDDEN_DUE_TO_SECURITY_REASONS"
        self.emit(t, {"type": "AWSAccount", "principalId": f"{self.stable_id('AROA', caller_id, caller_role)}:{caller_session}",
                      "accountId": caller_id}, "sts.amazonaws.com", "AssumeRole", acct=acct, region=HOME, ip=ip, ua=ua,
                  req=req,
                  resp={"credentials": {"accessKeyId": self.session_key(acct_id, role, session, int(t // 3600)),
                                        "expiration": self.iso_any(t + 3600)},
                        "assumedRoleUser": {"assumedRoleId": f"{self.stable_id('AROA', acct_id, role)}:{session}",
                                            "arn": f"arn:aws:sts::{acct_id}:assumed-role/{role}/{session}"}},
                  resources=[{"accountId": acct_id, "type": "AWS::IAM::Role", "ARN": arn}],
                  extra={"sharedEventID": str(self.uuid())})

    def kms_key_arn(self, acct: str, region: str, i: int | None = None) -> str:
        keys = self.kms_keys[acct]
        kid = keys[i % len(keys)] if i is not None else self.pick(keys)
        return f"arn:aws:kms:{region}:{ACCOUNTS[acct]}:key/{kid}"

    def kms_call(self, t: float, ident: dict, acct: str, region: str, name: str, context: dict, **kw) -> None:
        key = self.kms_key_arn(acct, region)
        req = {"encryptionContext": context, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if name.startswith("GenerateDataKey"):
            req = {"keyId": key, "encryptionContext": context, "keySpec": "AES_256"}
        elif name == "Decrypt" and self.chance(0.5):
            req["keyId"] = key
        self.emit(t, ident, "kms.amazonaws.com", name, acct=acct, region=region, req=req, resp=None,
                  resources=[{"accountId": ACCOUNTS[acct], "type": "AWS::KMS::Key", "ARN": key}], **kw)

    def read_params(self, source: str, name: str, acct: str, region: str, t: float = 0.0) -> dict | None:
        """Plausible requestParameters for the read calls dashboards, Config and Terraform make."""
        a = ACCOUNTS[acct]
        r = self.rng
        if name == "GetMetricData":
            ns, metric, dim = r.choice([
                ("AWS/ApplicationELB", "TargetResponseTime", ("LoadBalancer", f"app/{acct}-web/{self.hex(16)}")),
                ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", ("LoadBalancer", f"app/{acct}-web/{self.hex(16)}")),
                ("AWS/ECS", "CPUUtilization", ("ServiceName", r.choice(list(APPS)))),
                ("AWS/ECS", "MemoryUtilization", ("ServiceName", r.choice(list(APPS)))),
                ("AWS/RDS", "DatabaseConnections", ("DBInstanceIdentifier", f"{acct}-orders-db")),
                ("AWS/Lambda", "Errors", ("FunctionName", r.choice(["catalog-sync", "invoice-renderer", "notifications"]))),
                ("AWS/SQS", "ApproximateAgeOfOldestMessage", ("QueueName", f"{acct}-payments-events")),
                ("AWS/EC2", "CPUUtilization", ("AutoScalingGroupName", f"{acct}-ecs-capacity")),
            ])
            queries = []
            for i in range(1 if r.random() < 0.75 else 2):
                queries.append({"id": f"m{i}", "metricStat": {"metric": {"namespace": ns, "metricName": metric,
                                "dimensions": [{"name": dim[0], "value": dim[1]}]}, "period": 60,
                                "stat": r.choice(["Average", "Sum", "Maximum", "p99"])}, "returnData": True})
            end = t - t % 60
            return {"metricDataQueries": queries, "startTime": self.aws_date(end - 300), "endTime": self.aws_date(end)}
        if name == "ListMetrics":
            return {"namespace": r.choice(["AWS/EC2", "AWS/ECS", "AWS/RDS", "AWS/Lambda", "AWS/SQS", "AWS/ApplicationELB"]),
                    "recentlyActive": "PT3H"}
        if name == "DescribeAlarms":
            return {"maxRecords": 100, "alarmTypes": ["CompositeAlarm", "MetricAlarm"]}
        if name == "DescribeInstances":
            return {"instancesSet": {}, "filterSet": {"items": [{"name": "instance-state-name",
                    "valueSet": {"items": [{"value": "running"}, {"value": "stopped"}]}}]}}
        if name in ("DescribeSecurityGroups", "DescribeVpcs", "DescribeSubnets", "DescribeRouteTables",
                    "DescribeNetworkInterfaces", "DescribeVolumes", "DescribeNatGateways"):
            return {"filterSet": {}, "maxResults": 1000} if r.random() < 0.5 else {"filterSet": {"items": [
                {"name": "vpc-id", "valueSet": {"items": [{"value": f"vpc-0{self.hex(16)}"}]}}]}}
        if name == "GetResources":
            return {"resourcesPerPage": 100, "resourceTypeFilters": [r.choice(
                ["ec2:instance", "rds:db", "elasticloadbalancing:loadbalancer", "lambda:function", "sqs", "s3"])]}
        if name in ("DescribeTargetHealth", "DescribeTargetGroupAttributes"):
            return {"targetGroupArn": f"arn:aws:elasticloadbalancing:{region}:{a}:targetgroup/"
                                      f"{r.choice(list(APPS))[:20]}/{self.hex(16)}"}
        if name in ("DescribeServices",):
            return {"cluster": ECS_CLUSTERS.get(acct, "prod-main"), "services": [r.choice(list(APPS))]}
        if name in ("GetRole", "ListAttachedRolePolicies", "ListRolePolicies", "GetRolePolicy"):
            return {"roleName": r.choice([f"{app}-task" for app in APPS] + ["ci-deploy", "terraform"])}
        if name in ("GetBucketAcl", "GetBucketPolicy", "GetBucketVersioning", "GetBucketEncryption",
                    "GetBucketPublicAccessBlock", "GetBucketLogging", "GetBucketTagging", "GetBucketLocation",
                    "GetBucketLifecycle", "GetBucketOwnershipControls", "GetBucketPolicyStatus"):
            bucket = r.choice([b for spec in APPS.values() for b in spec[4]])
            p = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}
            p[name.replace("GetBucket", "").lower() or "acl"] = ""
            return p
        if name.startswith("GetFunction") or name.startswith("ListVersionsByFunction"):
            return {"functionName": r.choice(["catalog-sync", "invoice-renderer", "notifications"])}
        if name in ("DescribeDBInstances", "DescribeDBClusters"):
            return {"dBInstanceIdentifier": f"{acct}-orders-db"} if r.random() < 0.5 else None
        if name == "DescribeLogGroups":
            return {"logGroupNamePrefix": r.choice(["/ecs/", "/aws/lambda/", "/aws/codebuild/"])}
        if name == "DescribeKey" or name == "GetKeyRotationStatus" or name == "GetKeyPolicy":
            return {"keyId": self.kms_key_arn(acct, region)}
        return None


# --------------------------------------------------------------------------
# Activities: each adds the records of one piece of work
# --------------------------------------------------------------------------

DASHBOARD_CALLS = [  # (eventSource, eventName, weight)
    ("monitoring.amazonaws.com", "GetMetricData", 60),
    ("monitoring.amazonaws.com", "ListMetrics", 10),
    ("monitoring.amazonaws.com", "DescribeAlarms", 6),
    ("tagging.amazonaws.com", "GetResources", 6),
    ("ec2.amazonaws.com", "DescribeInstances", 4),
    ("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth", 3),
    ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers", 2),
    ("ecs.amazonaws.com", "DescribeServices", 2),
    ("rds.amazonaws.com", "DescribeDBInstances", 1),
    ("ec2.amazonaws.com", "DescribeVolumes", 1),
    ("lambda.amazonaws.com", "ListFunctions20150331", 1),
    ("health.amazonaws.com", "DescribeEvents", 1),
    ("sqs.amazonaws.com", "ListQueues", 1),
]


def dashboard_poll(d: Day) -> None:
    """Grafana or Datadog polling through their cross-account integration roles."""
    vendor = d.pick(("grafana", "grafana", "datadog"))
    acct = d.pick(("prod", "prod", "staging", "shared"))
    region = d.region()
    if vendor == "grafana":
        role, session, ip, ua = "grafana-cloudwatch-reader", "grafana", d.pick(GRAFANA_IPS), UA_GRAFANA
        calls = DASHBOARD_CALLS[:4]
    else:
        role, session, ip, ua = "DatadogIntegrationRole", "DatadogAWSIntegration", d.pick(DATADOG_IPS), UA_DATADOG
        calls = DASHBOARD_CALLS
    # Pollers run every minute, a few seconds after the minute.
    t = d.rng.randrange(1440) * 60 + d.rng.uniform(2, 9)
    src, name, _ = d.rng.choices(calls, [c[2] for c in calls])[0]
    ident = d.role(acct, role, session, t)
    error = None
    if d.chance(0.004):
        error = ("ThrottlingException", "Rate exceeded") if src != "ec2.amazonaws.com" else \
            ("Client.RequestLimitExceeded", "Request limit exceeded.")
    d.emit(t, ident, src, name, acct=acct, region=region, ip=ip, ua=ua, req=d.read_params(src, name, acct, region, t),
           error=error)
    if d.chance(0.01):  # the vendor renews its session
        d.cross_account_assume(t - 1, acct, GRAFANA_ACCOUNT if vendor == "grafana" else DATADOG_ACCOUNT,
                               "integration-poller", f"poller-{d.hex(8)}", role, session, ip, ua, external_id=True)


def agent_heartbeat(d: Day) -> None:
    """SSM and ECS agents on EC2 instances checking in with their instance profile."""
    acct = d.pick(("prod", "prod", "prod", "staging", "shared"))
    inst = d.pick(d.instances[acct])
    t = d.at()
    region = d.instance_region[inst]
    ident = d.role(acct, f"{acct}-ec2-instance", inst, t)
    ip = f"10.{VPC_OCTET[acct]}.{d.rng.randint(0, 63)}.{d.rng.randint(4, 250)}"
    vpce = f"vpce-0{d.hex(16)}" if d.chance(0.5) else None
    kind = d.rng.random()
    if kind < 0.40:
        d.emit(t, ident, "ssm.amazonaws.com", "UpdateInstanceInformation", acct=acct, region=region, ip=ip,
               ua=UA_SSM_AGENT, read_only=False, vpce=vpce,
               req={"instanceId": inst, "agentVersion": "3.3.380.0", "agentStatus": "Active",
                    "platformType": "Linux", "platformName": "Amazon Linux", "platformVersion": "2023",
                    "iPAddress": ip, "computerName": f"ip-{ip.replace('.', '-')}."
                                                    f"{'ec2' if region == HOME else region + '.compute'}.internal",
                    "agentName": "amazon-ssm-agent", "availabilityZone": f"{region}{d.pick('abc')}",
                    "availabilityZoneId": "use1-az4" if region == HOME else "euw1-az2"})
    elif kind < 0.70:
        d.emit(t, ident, "ssm.amazonaws.com", "ListInstanceAssociations", acct=acct, region=region, ip=ip,
               ua=UA_SSM_AGENT, req={"instanceId": inst, "maxResults": 50}, vpce=vpce)
    else:
        d.emit(t, ident, "ecs.amazonaws.com", "DiscoverPollEndpoint", acct=acct, region=region, ip=ip,
               ua=UA_ECS_AGENT, req={"containerInstance": f"arn:aws:ecs:{region}:{ACCOUNTS[acct]}:container-instance/"
                                                         f"{ECS_CLUSTERS.get(acct, 'shared-ci')}/{d.hex(32)}",
                                     "cluster": ECS_CLUSTERS.get(acct, "shared-ci")})


SLR_READS = {  # service -> (role, session, calls)
    "config.amazonaws.com": ("AWSServiceRoleForConfig", "AWSConfig-Describe", [
        ("ec2.amazonaws.com", "DescribeSecurityGroups"), ("ec2.amazonaws.com", "DescribeInstances"),
        ("ec2.amazonaws.com", "DescribeVpcs"), ("ec2.amazonaws.com", "DescribeSubnets"),
        ("ec2.amazonaws.com", "DescribeNetworkInterfaces"), ("ec2.amazonaws.com", "DescribeVolumes"),
        ("iam.amazonaws.com", "GetRole"), ("iam.amazonaws.com", "ListAttachedRolePolicies"),
        ("iam.amazonaws.com", "ListRolePolicies"), ("s3.amazonaws.com", "GetBucketAcl"),
        ("s3.amazonaws.com", "GetBucketPolicy"), ("s3.amazonaws.com", "GetBucketVersioning"),
        ("s3.amazonaws.com", "GetBucketEncryption"), ("s3.amazonaws.com", "GetBucketPublicAccessBlock"),
        ("lambda.amazonaws.com", "GetFunction20150331v2"), ("rds.amazonaws.com", "DescribeDBInstances"),
        ("kms.amazonaws.com", "DescribeKey"), ("kms.amazonaws.com", "GetKeyRotationStatus"),
        ("config.amazonaws.com", "PutEvaluations")]),
    "guardduty.amazonaws.com": ("AWSServiceRoleForAmazonGuardDuty", "AmazonGuardDuty", [
        ("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeImages"),
        ("ec2.amazonaws.com", "DescribeVpcEndpoints"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
        ("s3.amazonaws.com", "GetBucketPolicyStatus"), ("s3.amazonaws.com", "GetBucketPublicAccessBlock"),
        ("iam.amazonaws.com", "GetRole"), ("organizations.amazonaws.com", "DescribeOrganization")]),
    "elasticloadbalancing.amazonaws.com": ("AWSServiceRoleForElasticLoadBalancing", "ElasticLoadBalancing", [
        ("ec2.amazonaws.com", "DescribeNetworkInterfaces"), ("ec2.amazonaws.com", "DescribeSubnets"),
        ("ec2.amazonaws.com", "DescribeVpcs"), ("ec2.amazonaws.com", "DescribeInternetGateways")]),
    "rds.amazonaws.com": ("AWSServiceRoleForRDS", "RDS", [
        ("ec2.amazonaws.com", "DescribeNetworkInterfaces"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
        ("ec2.amazonaws.com", "DescribeAccountAttributes"), ("ec2.amazonaws.com", "DescribeSubnets")]),
    "ecs.amazonaws.com": ("AWSServiceRoleForECS", "ecs-service-scheduler", [
        ("ec2.amazonaws.com", "DescribeNetworkInterfaces"), ("elasticloadbalancing.amazonaws.com",
                                                              "DescribeTargetHealth")]),
    "autoscaling.amazonaws.com": ("AWSServiceRoleForAutoScaling", "AutoScaling", [
        ("ec2.amazonaws.com", "DescribeInstanceStatus"), ("ec2.amazonaws.com", "DescribeInstances"),
        ("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth")]),
}


def slr_read(d: Day) -> None:
    """A service-linked role reading configuration (Config, GuardDuty, ELB, RDS, ECS, Auto Scaling)."""
    service = d.rng.choices(list(SLR_READS), [40, 20, 12, 10, 10, 8])[0]
    role, session, calls = SLR_READS[service]
    acct = d.pick(("prod", "prod", "staging", "shared", "identity"))
    region = d.pick(MONITORED_REGIONS) if service in ("config.amazonaws.com", "guardduty.amazonaws.com") else d.region()
    t = d.at()
    src, name = d.pick(calls)
    if src in ("iam.amazonaws.com", "organizations.amazonaws.com"):
        region = HOME
    req = d.read_params(src, name, acct, region)
    read_only = name != "PutEvaluations"
    if name == "PutEvaluations":
        req = {"evaluations": [{"complianceResourceType": "AWS::EC2::SecurityGroup",
                                "complianceResourceId": f"sg-0{d.hex(16)}", "complianceType": "COMPLIANT",
                                "orderingTimestamp": d.iso(t - 60)}],
               "resultToken": "HIDDEN_DUE_TO_SECURITY_REASONS", "testMode": False}
    d.emit(t, d.slr(acct, service, role, session, t), src, name, acct=acct, region=region, req=req,
           read_only=read_only, resp={"failedEvaluations": []} if name == "PutEvaluations" else None)


def kms_by_service(d: Day) -> None:
    """KMS calls AWS services make: CloudTrail encrypting its logs, S3, Secrets Manager and SSM for callers."""
    t = d.at(APP_HOURS)
    kind = d.rng.random()
    acct = d.pick(("prod", "prod", "prod", "staging", "shared"))
    region = d.region()
    if kind < 0.3:
        trail = f"arn:aws:cloudtrail:{HOME}:{ACCOUNTS['identity']}:trail/org-trail"
        d.kms_call(t, d.service("cloudtrail.amazonaws.com"), acct, region, "GenerateDataKey",
                   {"aws:cloudtrail:arn": trail, "aws:s3:arn": f"arn:aws:s3:::acme-org-cloudtrail-logs/AWSLogs/"
                    f"{ORG_ID}/{ACCOUNTS[acct]}/CloudTrail/{region}/{d.iso(t)[:10].replace('-', '/')}/"
                    f"{ACCOUNTS[acct]}_CloudTrail_{region}_{d.iso(t)[:16].replace('-', '').replace(':', '')}Z_"
                    f"{d.b32(16)}.json.gz"}, read_only=True)
        return
    app = d.pick(list(APPS))
    runtime, _, secrets, params, buckets = APPS[app]
    role = f"{app}-task" if runtime == "ecs" else f"{app}-lambda"
    session = d.pick(d.tasks[app]) if runtime == "ecs" else app
    if kind < 0.45:
        via = "secretsmanager.amazonaws.com"
        ctx = {"SecretARN": f"arn:aws:secretsmanager:{region}:{ACCOUNTS['prod']}:secret:{d.pick(secrets)}-{d.b32(6)}",
               "SecretVersionId": str(d.uuid())}
    elif kind < 0.6:
        via = "ssm.amazonaws.com"
        ctx = {"PARAMETER_ARN": f"arn:aws:ssm:{region}:{ACCOUNTS['prod']}:parameter{d.pick(params)}"}
    else:
        via = "s3.amazonaws.com"
        ctx = {"aws:s3:arn": f"arn:aws:s3:::{d.pick(buckets)}"}
    name = "Decrypt" if d.chance(0.8) else "GenerateDataKey"
    d.kms_call(t, d.role("prod", role, session, t, invoked_by=via), "prod", region, name, ctx)


SERVICE_ASSUMERS = [  # (service, role, session maker, weight)
    ("ecs-tasks.amazonaws.com", "task", 35),
    ("lambda.amazonaws.com", "lambda", 30),
    ("ec2.amazonaws.com", "ec2", 12),
    ("codebuild.amazonaws.com", "codebuild", 4),
    ("events.amazonaws.com", "events", 5),
    ("scheduler.amazonaws.com", "scheduler", 3),
    ("states.amazonaws.com", "states", 3),
    ("monitoring.rds.amazonaws.com", "rds-monitoring", 8),
]


def sts_by_service(d: Day) -> None:
    """AWS services assuming the roles they run with (tasks, functions, instances...)."""
    t = d.at(APP_HOURS)
    service, kind, _ = d.rng.choices(SERVICE_ASSUMERS, [s[2] for s in SERVICE_ASSUMERS])[0]
    acct = "prod" if d.chance(0.7) else d.pick(("staging", "shared"))
    region = d.region()
    if kind == "task":
        app = d.pick([a for a, s in APPS.items() if s[0] == "ecs"])
        role, session = (f"{app}-task", d.pick(d.tasks[app])) if d.chance(0.8) else ("ecsTaskExecutionRole", d.pick(d.tasks[app]))
    elif kind == "lambda":
        app = d.pick([a for a, s in APPS.items() if s[0] == "lambda"] + ["iam-key-rotation"])
        role, session = (f"{app}-lambda", app) if app != "iam-key-rotation" else ("ci-key-rotation", app)
    elif kind == "ec2":
        acct = d.pick(("prod", "staging", "shared"))
        role, session = f"{acct}-ec2-instance", d.pick(d.instances[acct])
    elif kind == "codebuild":
        acct = "shared"
        role, session = "codebuild-app-build", f"AWSCodeBuild-{d.uuid()}"
    elif kind == "events":
        role, session = "eventbridge-invoke-targets", d.hex(32)
    elif kind == "scheduler":
        role, session = "scheduler-nightly-jobs", d.hex(32)
    elif kind == "states":
        role, session = "orders-fulfilment-sfn", d.hex(32)
    else:
        role, session = "rds-monitoring-role", d.hex(24)
    d.assume_role_by_service(t, acct, region, service, role, session)


def app_activity(d: Day) -> None:
    """Applications reading their own secrets and parameters, decrypting, pulling images, calling Bedrock."""
    t = d.at(APP_HOURS)
    app = d.pick(list(APPS))
    runtime, lang, secrets, params, buckets = APPS[app]
    region = d.region()
    acct_id = ACCOUNTS["prod"]
    if runtime == "ecs":
        role, session = f"{app}-task", d.pick(d.tasks[app])
        ua = {"java": UA_JAVA, "go": UA_GO, "node": UA_NODE, "python": UA_BOTO_ECS}[lang]
        ip = f"10.40.{d.rng.randint(64, 127)}.{d.rng.randint(4, 250)}"
        vpce = "vpce-0a1b2c3d4e5f60718"
    else:
        role, session = f"{app}-lambda", app
        ua = UA_BOTO_LAMBDA if lang == "python" else UA_NODE
        ip = d.pick(NAT_IPS["prod"])
        vpce = None
    env = "AWS_ECS_FARGATE" if runtime == "ecs" else f"AWS_Lambda_{LAMBDA_RUNTIME[lang]}"
    kind = d.rng.random()
    ident = d.role("prod", role, session, t)
    if kind < 0.10:
        secret = d.pick(secrets)
        arn = f"arn:aws:secretsmanager:{region}:{acct_id}:secret:{secret}-{d.b32(6)}"
        d.emit(t, ident, "secretsmanager.amazonaws.com", "GetSecretValue", acct="prod", region=region, ip=ip,
               ua=ua.format(api="secretsmanager#1.28.6" if lang == "go" else "secrets-manager", env=env),
               req={"secretId": secret}, vpce=vpce,
               resources=None if d.chance(0.5) else [{"accountId": acct_id, "type": "AWS::SecretsManager::Secret",
                                                       "ARN": arn}])
    elif kind < 0.20:
        # ECS resolves a task definition's secrets with the task execution role.
        names = [f"arn:aws:ssm:{region}:{acct_id}:parameter{p}" for p in params]
        exec_role = "ecsTaskExecutionRole" if runtime == "ecs" else role
        d.emit(t, d.role("prod", exec_role, session, t), "ssm.amazonaws.com", "GetParameters", acct="prod",
               region=region, ip=ip, ua=UA_FARGATE if runtime == "ecs" else ua.format(api="ssm", env=env),
               req={"names": names, "withDecryption": True}, vpce=vpce)
    elif kind < 0.50:
        d.kms_call(t, ident, "prod", region, "Decrypt", {"app": app, "purpose": "field-encryption"}, ip=ip,
                   ua=ua.format(api="kms#1.31.0" if lang == "go" else "kms", env=env), vpce=vpce)
    elif kind < 0.62 and runtime == "ecs":
        # Pulling the image for a new task.
        exec_ident = d.role("prod", "ecsTaskExecutionRole", session, t)
        d.emit(t, exec_ident, "ecr.amazonaws.com", "GetAuthorizationToken", acct="prod", region=region,
               ip=ip, ua=UA_FARGATE, req={"registryIds": [ACCOUNTS["shared"]]})
        d.emit(t + 0.4, exec_ident, "ecr.amazonaws.com", "BatchGetImage", acct="prod", region=region, ip=ip,
               ua=UA_FARGATE, req={"repositoryName": app, "registryId": ACCOUNTS["shared"],
                                   "imageIds": [{"imageTag": f"release-{d.hex(7)}"}],
                                   "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json",
                                                          "application/vnd.oci.image.manifest.v1+json"]},
               resources=[{"accountId": ACCOUNTS["shared"], "type": "AWS::ECR::Repository",
                           "ARN": f"arn:aws:ecr:{region}:{ACCOUNTS['shared']}:repository/{app}"}])
        for i in range(d.rng.randint(1, 3)):
            d.emit(t + 0.8 + i * 0.2, exec_ident, "ecr.amazonaws.com", "GetDownloadUrlForLayer", acct="prod",
                   region=region, ip=ip, ua=UA_FARGATE,
                   req={"repositoryName": app, "registryId": ACCOUNTS["shared"], "layerDigest": "sha256:" + d.hex(64)})
    elif kind < 0.65 and app == "support-assistant":
        d.emit(t, ident, "bedrock.amazonaws.com", "InvokeModel", acct="prod", region=HOME, ip=ip,
               ua=UA_BOTO_ECS, req={"modelId": d.pick(BEDROCK_MODELS)})
    elif kind < 0.85:
        if d.chance(0.1):  # SDK credential checks at start-up
            d.emit(t, ident, "sts.amazonaws.com", "GetCallerIdentity", acct="prod", region=region, ip=ip,
                   ua=ua.format(api="sts", env=env))
        else:
            d.emit(t, ident, "sqs.amazonaws.com", "GetQueueAttributes", acct="prod", region=region, ip=ip,
                   ua=ua.format(api="sqs", env=env), vpce=vpce,
                   req={"queueUrl": f"https://sqs.{region}.amazonaws.com/{acct_id}/prod-{app}-events",
                        "attributeNames": ["ApproximateNumberOfMessages"]})
    else:
        if runtime == "lambda":
            group = f"/aws/lambda/{app}"
            d.emit(t, ident, "logs.amazonaws.com", "CreateLogStream", acct="prod", region=region, ip=ip, ua=ua.format(
                api="cloudwatch-logs", env=env), read_only=False,
                   req={"logGroupName": group, "logStreamName": f"{d.iso(t)[:10].replace('-', '/')}/[$LATEST]{d.hex(32)}"})
        else:
            d.emit(t, ident, "sqs.amazonaws.com", "GetQueueUrl", acct="prod", region=region, ip=ip,
                   ua=ua.format(api="sqs", env=env), req={"queueName": f"prod-{app}-events"}, vpce=vpce)


def s3_data(d: Day) -> None:
    """S3 object reads and writes by applications and the service users (data events)."""
    t = d.at(APP_HOURS)
    app = d.pick(list(APPS))
    runtime, lang, _, _, buckets = APPS[app]
    region = d.region()
    bucket = d.pick(buckets)
    if d.chance(0.1):
        user = d.pick(("svc-onprem-backup", "svc-sftp-partner"))
        ident = d.iam_user("prod", user)
        ip, ua = ("198.51.100.200" if user == "svc-onprem-backup" else "198.18.77.9"), ua_cli("s3.cp")
        bucket = "acme-prod-onprem-backups" if user == "svc-onprem-backup" else "acme-prod-partner-drop"
        name = "PutObject"
    else:
        role, session = (f"{app}-task", d.pick(d.tasks[app])) if runtime == "ecs" else (f"{app}-lambda", app)
        ident = d.role("prod", role, session, t)
        ip, ua = f"10.40.{d.rng.randint(64, 127)}.{d.rng.randint(4, 250)}", UA_BOTO_ECS if lang != "java" else UA_JAVA
        name = d.rng.choices(["GetObject", "PutObject", "HeadObject"], [60, 30, 10])[0]
    key = f"{d.iso(t)[:10]}/{d.hex(8)}/{d.pick(['report.csv', 'part-00000.parquet', 'invoice.pdf', 'payload.json'])}"
    host = f"{bucket}.s3.{region}.amazonaws.com"
    req = {"bucketName": bucket, "Host": host, "key": key}
    if name == "PutObject":
        req["x-amz-server-side-encryption"] = "aws:kms"
    resp = {"x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": d.kms_key_arn("prod", region, 1)} if name == "PutObject" else None
    size = d.rng.randint(400, 4_000_000)
    d.emit(t, ident, "s3.amazonaws.com", name, acct="prod", region=region, ip=ip, ua=ua, req=req, resp=resp, data=True,
           read_only=name != "PutObject",
           extra={"additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                          "bytesTransferredIn": size if name == "PutObject" else 0,
                                          "AuthenticationMethod": "AuthHeader", "x-amz-id-2": d.b32(56),
                                          "bytesTransferredOut": 0 if name == "PutObject" else size}},
           resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                      {"accountId": ACCOUNTS["prod"], "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])


def service_user_call(d: Day) -> None:
    """Service users' own API calls with their long-term keys (reporting and ERP export jobs)."""
    t = d.at(APP_HOURS)
    user = d.pick(("svc-legacy-reporting", "svc-erp-export"))
    ident = d.iam_user("prod", user)
    ip = "198.51.100.200" if user == "svc-erp-export" else "198.51.100.201"
    if user == "svc-legacy-reporting":
        d.emit(t, ident, "monitoring.amazonaws.com", "GetMetricData", acct="prod", region=HOME, ip=ip,
               ua="aws-sdk-java/1.12.681 Linux/5.15.0-105-generic OpenJDK_64-Bit_Server_VM/11.0.22+7 java/11.0.22 "
                  "vendor/Ubuntu cfg/retry-mode/standard",
               req=d.read_params("monitoring.amazonaws.com", "GetMetricData", "prod", HOME, t))
    else:
        d.emit(t, ident, "sqs.amazonaws.com", "GetQueueAttributes", acct="prod", region=HOME, ip=ip, ua=ua_cli("sqs.get-queue-attributes"),
               req={"queueUrl": f"https://sqs.{HOME}.amazonaws.com/{ACCOUNTS['prod']}/prod-erp-export",
                    "attributeNames": ["All"]})


FILLERS = [  # (activity, function, weight, needs data events)
    ("dashboards", dashboard_poll, 28, False),
    ("agents", agent_heartbeat, 10, False),
    ("service-linked roles", slr_read, 13, False),
    ("kms by services", kms_by_service, 14, False),
    ("sts by services", sts_by_service, 18, False),
    ("applications", app_activity, 12, False),
    ("s3 data events", s3_data, 4, True),
    ("service users", service_user_call, 1, False),
]


# ---- discrete activities -------------------------------------------------------------

class Clock:
    """Moves forward through a burst of calls."""

    def __init__(self, d: Day, t: float):
        self.d, self.t = d, t

    def tick(self, lo: float = 0.05, hi: float = 1.5) -> float:
        self.t += self.d.rng.uniform(lo, hi)
        return self.t


TF_READS = [  # (eventSource, eventName, api) read by Terraform while refreshing state
    ("ec2.amazonaws.com", "DescribeVpcs", "ec2#1.156.0"), ("ec2.amazonaws.com", "DescribeSubnets", "ec2#1.156.0"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", "ec2#1.156.0"),
    ("ec2.amazonaws.com", "DescribeSecurityGroupRules", "ec2#1.156.0"),
    ("ec2.amazonaws.com", "DescribeRouteTables", "ec2#1.156.0"), ("ec2.amazonaws.com", "DescribeNatGateways", "ec2#1.156.0"),
    ("ec2.amazonaws.com", "DescribeVpcAttribute", "ec2#1.156.0"), ("ec2.amazonaws.com", "DescribeNetworkAcls", "ec2#1.156.0"),
    ("ec2.amazonaws.com", "DescribeLaunchTemplates", "ec2#1.156.0"), ("ec2.amazonaws.com", "DescribeTags", "ec2#1.156.0"),
    ("iam.amazonaws.com", "GetRole", "iam#1.32.0"), ("iam.amazonaws.com", "ListRolePolicies", "iam#1.32.0"),
    ("iam.amazonaws.com", "ListAttachedRolePolicies", "iam#1.32.0"), ("iam.amazonaws.com", "GetRolePolicy", "iam#1.32.0"),
    ("iam.amazonaws.com", "GetPolicy", "iam#1.32.0"), ("iam.amazonaws.com", "GetPolicyVersion", "iam#1.32.0"),
    ("s3.amazonaws.com", "GetBucketAcl", "s3#1.53.1"), ("s3.amazonaws.com", "GetBucketPolicy", "s3#1.53.1"),
    ("s3.amazonaws.com", "GetBucketVersioning", "s3#1.53.1"), ("s3.amazonaws.com", "GetBucketEncryption", "s3#1.53.1"),
    ("s3.amazonaws.com", "GetBucketPublicAccessBlock", "s3#1.53.1"), ("s3.amazonaws.com", "GetBucketLogging", "s3#1.53.1"),
    ("s3.amazonaws.com", "GetBucketTagging", "s3#1.53.1"), ("s3.amazonaws.com", "GetBucketLifecycle", "s3#1.53.1"),
    ("s3.amazonaws.com", "GetBucketOwnershipControls", "s3#1.53.1"), ("s3.amazonaws.com", "GetBucketLocation", "s3#1.53.1"),
    ("rds.amazonaws.com", "DescribeDBInstances", "rds#1.77.1"), ("rds.amazonaws.com", "DescribeDBSubnetGroups", "rds#1.77.1"),
    ("rds.amazonaws.com", "DescribeDBParameters", "rds#1.77.1"),
    ("ecs.amazonaws.com", "DescribeServices", "ecs#1.41.7"), ("ecs.amazonaws.com", "DescribeTaskDefinition", "ecs#1.41.7"),
    ("ecs.amazonaws.com", "DescribeClusters", "ecs#1.41.7"),
    ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers", "elastic-load-balancing-v2#1.30.5"),
    ("elasticloadbalancing.amazonaws.com", "DescribeTargetGroups", "elastic-load-balancing-v2#1.30.5"),
    ("elasticloadbalancing.amazonaws.com", "DescribeListeners", "elastic-load-balancing-v2#1.30.5"),
    ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancerAttributes", "elastic-load-balancing-v2#1.30.5"),
    ("elasticloadbalancing.amazonaws.com", "DescribeTargetGroupAttributes", "elastic-load-balancing-v2#1.30.5"),
    ("lambda.amazonaws.com", "GetFunction20150331v2", "lambda#1.54.0"),
    ("lambda.amazonaws.com", "ListVersionsByFunction20150331", "lambda#1.54.0"),
    ("lambda.amazonaws.com", "GetPolicy20150331v2", "lambda#1.54.0"),
    ("kms.amazonaws.com", "DescribeKey", "kms#1.31.0"), ("kms.amazonaws.com", "GetKeyPolicy", "kms#1.31.0"),
    ("kms.amazonaws.com", "GetKeyRotationStatus", "kms#1.31.0"), ("kms.amazonaws.com", "ListResourceTags", "kms#1.31.0"),
    ("logs.amazonaws.com", "DescribeLogGroups", "cloudwatch-logs#1.35.0"),
    ("logs.amazonaws.com", "ListTagsForResource", "cloudwatch-logs#1.35.0"),
    ("monitoring.amazonaws.com", "DescribeAlarms", "cloudwatch#1.37.0"),
    ("sqs.amazonaws.com", "GetQueueAttributes", "sqs#1.31.4"), ("sqs.amazonaws.com", "ListQueueTags", "sqs#1.31.4"),
    ("secretsmanager.amazonaws.com", "DescribeSecret", "secretsmanager#1.28.6"),
    ("secretsmanager.amazonaws.com", "GetResourcePolicy", "secretsmanager#1.28.6"),
    ("ssm.amazonaws.com", "GetParameter", "ssm#1.50.0"), ("ssm.amazonaws.com", "ListTagsForResource", "ssm#1.50.0"),
    ("route53.amazonaws.com", "GetHostedZone", "route53#1.40.4"),
    ("route53.amazonaws.com", "ListResourceRecordSets", "route53#1.40.4"),
    ("ecr.amazonaws.com", "DescribeRepositories", "ecr#1.27.4"), ("ecr.amazonaws.com", "GetLifecyclePolicy", "ecr#1.27.4"),
]


def policy(statements: list[dict]) -> str:
    """An IAM policy document as Terraform's jsonencode writes it (compact, keys sorted)."""
    return json.dumps({"Statement": statements, "Version": "2012-10-17"}, separators=(",", ":"), sort_keys=True)


class Terraform:
    """One Terraform run from GitHub Actions against one account."""

    def __init__(self, d: Day, t: float, acct: str, apply: bool, destroy: bool = False, public_alb: bool = False):
        self.d, self.acct, self.apply, self.destroy, self.public_alb = d, acct, apply, destroy, public_alb
        self.t0 = t
        self.clock = Clock(d, t)
        self.run_id = str(d.rng.randint(8_000_000_000, 8_999_999_999))
        self.session = f"terraform-run-{self.run_id}"
        self.ip = d.pick(GITHUB_RUNNER_IPS)
        self.region = HOME if acct != "prod" or d.chance(0.7) else "eu-west-1"
        self.acct_id = ACCOUNTS[acct]

    def ident(self) -> dict:
        return self.d.role(self.acct, "terraform", self.session, self.clock.t, since=self.t0)

    def call(self, src: str, name: str, api: str, req=None, resp=None, read_only=True, region=None, gap=(0.02, 0.4),
             error=None) -> None:
        if src in ("iam.amazonaws.com", "route53.amazonaws.com"):
            region = HOME
        self.d.emit(self.clock.tick(*gap), self.ident(), src, name, acct=self.acct, region=region or self.region,
                    ip=self.ip, ua=UA_TERRAFORM.format(api=api), req=req, resp=resp, read_only=read_only, error=error)

    def run(self) -> None:
        d = self.d
        d.activity = "terraform"
        # GitHub's OIDC token for the shared account, then the target account's terraform role.
        gh_sub = f"repo:acme/infrastructure:{'environment:' + self.acct if self.apply else 'pull_request'}"
        oidc = f"arn:aws:iam::{ACCOUNTS['shared']}:oidc-provider/token.actions.githubusercontent.com"
        t = self.clock.tick()
        d.emit(t, {"type": "WebIdentityUser", "principalId": f"{oidc}:sts.amazonaws.com:{gh_sub}",
                   "userName": gh_sub, "identityProvider": oidc},
               "sts.amazonaws.com", "AssumeRoleWithWebIdentity", acct="shared", region=HOME, ip=self.ip, ua=UA_GH_OIDC,
               req={"roleArn": f"arn:aws:iam::{ACCOUNTS['shared']}:role/github-actions-terraform",
                    "roleSessionName": f"GitHubActions-{self.run_id}", "durationSeconds": 3600},
               resp={"credentials": {"accessKeyId": "ASIA" + d.b32(16), 
                                     "expiration": d.iso_any(t + 3600)},
                     "subjectFromWebIdentityToken": gh_sub,
                     "assumedRoleUser": {"assumedRoleId": f"{d.stable_id('AROA', ACCOUNTS['shared'], 'github-actions-terraform')}"
                                                          f":GitHubActions-{self.run_id}",
                                         "arn": f"arn:aws:sts::{ACCOUNTS['shared']}:assumed-role/github-actions-terraform/"
                                                f"GitHubActions-{self.run_id}"},
                     "provider": oidc, "audience": "sts.amazonaws.com"},
               extra={"additionalEventData": {"identityProviderConnectionVerificationMethod": "IAMTrustStore"}})
        d.cross_account_assume(self.clock.tick(), self.acct, "shared", "github-actions-terraform",
                               f"GitHubActions-{self.run_id}", "terraform", self.session, self.ip, UA_TERRAFORM.format(api="sts#1.28.6"))
        self.call("sts.amazonaws.com", "GetCallerIdentity", "sts#1.28.6")
        # Terraform state in the shared account (data events).
        if d.data_events:
            self.state_object("GetObject")
        # Refresh: every resource read back, several calls each.
        n = int(d.rng.uniform(350, 1400))
        for _ in range(n):
            src, name, api = d.pick(TF_READS)
            req = d.read_params(src, name, self.acct, self.region)
            if name == "GetParameter":
                req = {"name": f"/{self.acct}/{d.pick(list(APPS))}/config", "withDecryption": False}
            self.call(src, name, api, req=req, gap=(0.005, 0.12))
        if self.apply:
            changes = [self.security_group, self.iam_role, self.bucket, self.ecs_service, self.log_group, self.alarm,
                       self.queue_policy, self.parameter, self.iam_policy_version, self.dns, self.kms_key,
                       self.lambda_permission]
            weights = [20, 14, 8, 16, 10, 14, 5, 10, 6, 8, 2, 3]
            for change in d.rng.choices(changes, weights, k=d.rng.randint(2, 7)):
                change()
            if self.public_alb:
                self.alb_security_group()
        if self.destroy:
            self.destroy_preview()
        if d.data_events and (self.apply or self.destroy):
            self.state_object("PutObject")

    def state_object(self, name: str) -> None:
        d = self.d
        bucket = "acme-terraform-state"
        key = f"{self.acct}/{d.pick(['network', 'platform', 'services'])}/terraform.tfstate"
        ident = d.role("shared", "github-actions-terraform", f"GitHubActions-{self.run_id}", self.clock.t, since=self.t0)
        size = d.rng.randint(80_000, 900_000)
        d.emit(self.clock.tick(), ident, "s3.amazonaws.com", name, acct="shared", ip=self.ip,
               ua=UA_TERRAFORM.format(api="s3#1.53.1"), data=True, read_only=name == "GetObject",
               req={"bucketName": bucket, "Host": f"{bucket}.s3.{HOME}.amazonaws.com", "key": key},
               resp={"x-amz-server-side-encryption": "aws:kms"} if name == "PutObject" else None,
               extra={"additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                              "bytesTransferredIn": size if name == "PutObject" else 0,
                                              "AuthenticationMethod": "AuthHeader", "x-amz-id-2": d.b32(56),
                                              "bytesTransferredOut": 0 if name == "PutObject" else size}},
               resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                          {"accountId": ACCOUNTS["shared"], "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])

    # ---- changes an apply makes -----------------------------------------------------

    def security_group(self) -> None:
        """A service's security group, open only to the VPC, a peer group or the office VPN."""
        d, api = self.d, "ec2#1.156.0"
        svc = d.pick(list(APPS))
        sg = f"sg-0{d.hex(16)}"
        vpc = f"vpc-0{d.hex(16)}"
        self.call("ec2.amazonaws.com", "CreateSecurityGroup", api, read_only=False,
                  req={"groupName": f"{self.acct}-{svc}", "groupDescription": f"{svc} tasks", "vpcId": vpc},
                  resp={"requestId": str(d.uuid()), "_return": True, "groupId": sg,
                        "securityGroupArn": f"arn:aws:ec2:{self.region}:{self.acct_id}:security-group/{sg}"})
        port = d.pick((443, 5432, 6379, 8080, 8443, 9090))
        source = d.rng.random()
        if source < 0.4:
            perm = {"ipProtocol": "tcp", "fromPort": port, "toPort": port,
                    "groups": {"items": [{"groupId": f"sg-0{d.hex(16)}", "description": "from the load balancer"}]},
                    "ipRanges": {}, "ipv6Ranges": {}, "prefixListIds": {}}
        else:
            cidr = d.pick((VPC_CIDR.get(self.acct, "10.30.0.0/16"), "10.0.0.0/8", "172.16.0.0/12", "10.200.0.0/24"))
            perm = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {},
                    "ipRanges": {"items": [{"cidrIp": cidr, "description": "internal"}]}, "ipv6Ranges": {},
                    "prefixListIds": {}}
        self.call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", api, read_only=False,
                  req={"groupId": sg, "ipPermissions": {"items": [perm]}},
                  resp={"requestId": str(d.uuid()), "_return": True, "securityGroupRuleSet": {"items": [
                      {"groupOwnerId": self.acct_id, "groupId": sg, "securityGroupRuleId": f"sgr-0{d.hex(16)}",
                       "isEgress": False, "ipProtocol": "tcp", "fromPort": port, "toPort": port}]}})
        self.call("ec2.amazonaws.com", "AuthorizeSecurityGroupEgress", api, read_only=False,
                  req={"groupId": sg, "ipPermissions": {"items": [{"ipProtocol": "-1", "groups": {}, "ipRanges": {
                      "items": [{"cidrIp": "0.0.0.0/0"}]}, "ipv6Ranges": {}, "prefixListIds": {}}]}},
                  resp={"requestId": str(d.uuid()), "_return": True})
        self.call("ec2.amazonaws.com", "CreateTags", api, read_only=False,
                  req={"resourcesSet": {"items": [{"resourceId": sg}]}, "tagSet": {"items": [
                      {"key": "Name", "value": f"{self.acct}-{svc}"}, {"key": "managed-by", "value": "terraform"}]}},
                  resp={"requestId": str(d.uuid()), "_return": True})

    def alb_security_group(self) -> None:
        """A public load balancer's group: the world on 443 only (HTTPS), nothing else."""
        d, api = self.d, "ec2#1.156.0"
        sg = f"sg-0{d.hex(16)}"
        self.call("ec2.amazonaws.com", "CreateSecurityGroup", api, read_only=False,
                  req={"groupName": f"{self.acct}-public-alb", "groupDescription": "Public HTTPS load balancer",
                       "vpcId": f"vpc-0{d.hex(16)}"},
                  resp={"requestId": str(d.uuid()), "_return": True, "groupId": sg,
                        "securityGroupArn": f"arn:aws:ec2:{self.region}:{self.acct_id}:security-group/{sg}"})
        for cidr_key, cidr in (("ipRanges", {"cidrIp": "0.0.0.0/0", "description": "HTTPS"}),
                               ("ipv6Ranges", {"cidrIpv6": "::/0", "description": "HTTPS"})):
            perm = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "groups": {}, "ipRanges": {},
                    "ipv6Ranges": {}, "prefixListIds": {}}
            perm[cidr_key] = {"items": [cidr]}
            self.call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", api, read_only=False,
                      req={"groupId": sg, "ipPermissions": {"items": [perm]}},
                      resp={"requestId": str(d.uuid()), "_return": True})

    def iam_role(self) -> None:
        """A task role trusted by ECS, with a scoped inline policy and an AWS managed policy."""
        d, api = self.d, "iam#1.32.0"
        name = f"{d.pick(list(APPS))}-{d.pick(['task', 'worker', 'reader'])}-{d.hex(4)}"
        trust = policy([{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                         "Condition": {"StringEquals": {"aws:SourceAccount": self.acct_id}}}])
        rid = d.stable_id("AROA", self.acct_id, name)
        self.call("iam.amazonaws.com", "CreateRole", api, read_only=False,
                  req={"roleName": name, "assumeRolePolicyDocument": trust, "description": "Managed by Terraform",
                       "maxSessionDuration": 3600, "tags": [{"key": "managed-by", "value": "terraform"}]},
                  resp={"role": {"path": "/", "roleName": name, "roleId": rid,
                                 "arn": f"arn:aws:iam::{self.acct_id}:role/{name}", "createDate": d.aws_date(self.clock.t),
                                 "assumeRolePolicyDocument": urllib.parse.quote(trust, safe=""),
                                 "tags": [{"key": "managed-by", "value": "terraform"}]}})
        bucket = d.pick([b for s in APPS.values() for b in s[4]])
        doc = policy([{"Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow",
                       "Resource": f"arn:aws:s3:::{bucket}/*"},
                      {"Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"], "Effect": "Allow",
                       "Resource": f"arn:aws:sqs:{self.region}:{self.acct_id}:{self.acct}-payments-events"},
                      {"Action": "secretsmanager:GetSecretValue", "Effect": "Allow",
                       "Resource": f"arn:aws:secretsmanager:{self.region}:{self.acct_id}:secret:{self.acct}/*"}])
        self.call("iam.amazonaws.com", "PutRolePolicy", api, read_only=False,
                  req={"roleName": name, "policyName": "app-access", "policyDocument": doc})
        managed = d.pick(["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
                          "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
                          "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
                          "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"])
        self.call("iam.amazonaws.com", "AttachRolePolicy", api, read_only=False,
                  req={"roleName": name, "policyArn": managed})
        self.call("iam.amazonaws.com", "GetRole", api, req={"roleName": name})

    def iam_policy_version(self) -> None:
        """A new default version of a customer managed policy (scoped actions), the oldest version deleted."""
        d, api = self.d, "iam#1.32.0"
        arn = f"arn:aws:iam::{self.acct_id}:policy/{d.pick(['ci-deploy-permissions', 'grafana-read', 'backup-operator'])}"
        doc = policy([{"Action": ["ecs:UpdateService", "ecs:DescribeServices", "ecs:RegisterTaskDefinition"],
                       "Effect": "Allow", "Resource": "*"},
                      {"Action": "iam:PassRole", "Effect": "Allow",
                       "Resource": f"arn:aws:iam::{self.acct_id}:role/*-task",
                       "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}])
        self.call("iam.amazonaws.com", "ListPolicyVersions", api, req={"policyArn": arn})
        self.call("iam.amazonaws.com", "DeletePolicyVersion", api, read_only=False,
                  req={"policyArn": arn, "versionId": f"v{d.rng.randint(2, 6)}"})
        self.call("iam.amazonaws.com", "CreatePolicyVersion", api, read_only=False,
                  req={"policyArn": arn, "policyDocument": doc, "setAsDefault": True},
                  resp={"policyVersion": {"versionId": f"v{d.rng.randint(7, 12)}", "isDefaultVersion": True,
                                          "createDate": d.aws_date(self.clock.t)}})

    def bucket(self) -> None:
        """A private, versioned, encrypted, logged bucket with Block Public Access on."""
        d, api = self.d, "s3#1.53.1"
        name = f"acme-{self.acct}-{d.pick(['exports', 'ml-features', 'reports', 'scratch', 'alb-logs'])}-{d.hex(6)}"
        host = f"{name}.s3.{self.region}.amazonaws.com"

        def s3(op, extra_req, resp=None):
            self.call("s3.amazonaws.com", op, api, read_only=False, req={"bucketName": name, "Host": host, **extra_req},
                      resp=resp)

        create = {} if self.region == HOME else {"CreateBucketConfiguration": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "LocationConstraint": self.region}}
        s3("CreateBucket", create)
        s3("PutBucketPublicAccessBlock", {"publicAccessBlock": "", "PublicAccessBlockConfiguration": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True}})
        s3("PutBucketOwnershipControls", {"ownershipControls": "", "OwnershipControls": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Rule": {"ObjectOwnership": "BucketOwnerEnforced"}}})
        s3("PutBucketEncryption", {"encryption": "", "ServerSideEncryptionConfiguration": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Rule": {"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": d.kms_key_arn(self.acct, self.region, 0)},
                "BucketKeyEnabled": True}}})
        s3("PutBucketVersioning", {"versioning": "", "VersioningConfiguration": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Status": "Enabled"}})
        s3("PutBucketLogging", {"logging": "", "BucketLoggingStatus": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
            "LoggingEnabled": {"TargetBucket": f"acme-{self.acct}-s3-access-logs", "TargetPrefix": f"{name}/"}}})
        # Deny plain HTTP (a Deny with Principal "*" is the usual TLS-only guard).
        deny_http = policy([{"Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Effect": "Deny",
                             "Principal": "*", "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                             "Sid": "DenyInsecureTransport"}])
        s3("PutBucketPolicy", {"policy": "", "bucketPolicy": json.loads(deny_http)})
        days = 7 if "scratch" in name else 90 if "alb-logs" in name else 365
        s3("PutBucketLifecycle", {"lifecycle": "", "LifecycleConfiguration": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Rule": {
                "ID": "expire-old-objects", "Status": "Enabled", "Filter": {"Prefix": ""},
                "Expiration": {"Days": days}, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}}})
        s3("PutBucketTagging", {"tagging": "", "Tagging": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                                                          "TagSet": {"Tag": [{"Key": "managed-by", "Value": "terraform"}]}}})

    def ecs_service(self) -> None:
        d, api = self.d, "ecs#1.41.7"
        app = d.pick([a for a, s in APPS.items() if s[0] == "ecs"])
        cluster = ECS_CLUSTERS.get(self.acct, "prod-main")
        self.call("ecs.amazonaws.com", "UpdateService", api, read_only=False,
                  req={"cluster": cluster, "service": app, "desiredCount": d.rng.randint(2, 8),
                       "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100,
                                                   "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
                       "enableExecuteCommand": False, "forceNewDeployment": False},
                  resp={"service": {"serviceArn": f"arn:aws:ecs:{self.region}:{self.acct_id}:service/{cluster}/{app}",
                                    "serviceName": app, "status": "ACTIVE", "launchType": "FARGATE"}})

    def log_group(self) -> None:
        d, api = self.d, "cloudwatch-logs#1.35.0"
        group = f"/ecs/{self.acct}/{d.pick(list(APPS))}-{d.hex(4)}"
        self.call("logs.amazonaws.com", "CreateLogGroup", api, read_only=False,
                  req={"logGroupName": group, "tags": {"managed-by": "terraform"}})
        self.call("logs.amazonaws.com", "PutRetentionPolicy", api, read_only=False,
                  req={"logGroupName": group, "retentionInDays": d.pick((30, 90, 365))})

    def alarm(self) -> None:
        d, api = self.d, "cloudwatch#1.37.0"
        app = d.pick(list(APPS))
        self.call("monitoring.amazonaws.com", "PutMetricAlarm", api, read_only=False,
                  req={"alarmName": f"{self.acct}-{app}-5xx", "alarmDescription": "Managed by Terraform",
                       "actionsEnabled": True, "alarmActions": [f"arn:aws:sns:{self.region}:{self.acct_id}:pagerduty"],
                       "metricName": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB",
                       "statistic": "Sum", "period": 60, "evaluationPeriods": 5, "threshold": 10.0,
                       "comparisonOperator": "GreaterThanThreshold", "treatMissingData": "notBreaching"})

    def queue_policy(self) -> None:
        """The standard SNS-to-SQS subscription policy: Principal "*" limited by aws:SourceArn."""
        d, api = self.d, "sqs#1.31.4"
        queue = f"{self.acct}-{d.pick(['payments-events', 'orders-events', 'notifications'])}"
        topic = f"arn:aws:sns:{self.region}:{self.acct_id}:{queue.replace('-events', '')}-topic"
        doc = policy([{"Action": "sqs:SendMessage", "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                       "Effect": "Allow", "Principal": "*",
                       "Resource": f"arn:aws:sqs:{self.region}:{self.acct_id}:{queue}"}])
        self.call("sqs.amazonaws.com", "SetQueueAttributes", api, read_only=False,
                  req={"queueUrl": f"https://sqs.{self.region}.amazonaws.com/{self.acct_id}/{queue}",
                       "attributes": {"Policy": doc}})

    def parameter(self) -> None:
        d, api = self.d, "ssm#1.50.0"
        self.call("ssm.amazonaws.com", "PutParameter", api, read_only=False,
                  req={"name": f"/{self.acct}/{d.pick(list(APPS))}/feature-flags", "type": "String", "overwrite": True,
                       "tier": "Standard", "dataType": "text"},
                  resp={"version": d.rng.randint(2, 60), "tier": "Standard"})

    def dns(self) -> None:
        d, api = self.d, "route53#1.40.4"
        self.call("route53.amazonaws.com", "ChangeResourceRecordSets", api, read_only=False,
                  req={"hostedZoneId": "Z0" + d.b32(18), "changeBatch": {"changes": [{"action": "UPSERT",
                       "resourceRecordSet": {"name": f"{d.pick(list(APPS))}.{self.acct}.acme.example.com", "type": "CNAME",
                                             "tTL": 300, "resourceRecords": [{"value": f"internal-{self.acct}-alb-"
                                                                              f"{d.rng.randint(10**8, 10**9)}.{self.region}"
                                                                              f".elb.amazonaws.com"}]}}]}},
                  resp={"changeInfo": {"id": "/change/C" + d.b32(20), "status": "PENDING",
                                       "submittedAt": d.aws_date(self.clock.t)}})

    def kms_key(self) -> None:
        """A customer managed key with the default key policy (the account root as principal)."""
        d, api = self.d, "kms#1.31.0"
        doc = json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{self.acct_id}:root"}, "Action": "kms:*", "Resource": "*"}]})
        kid = str(d.uuid())
        self.call("kms.amazonaws.com", "CreateKey", api, read_only=False,
                  req={"policy": doc, "description": "Managed by Terraform", "keyUsage": "ENCRYPT_DECRYPT",
                       "keySpec": "SYMMETRIC_DEFAULT", "bypassPolicyLockoutSafetyCheck": False,
                       "tags": [{"tagKey": "managed-by", "tagValue": "terraform"}]},
                  resp={"keyMetadata": {"aWSAccountId": self.acct_id, "keyId": kid,
                                        "arn": f"arn:aws:kms:{self.region}:{self.acct_id}:key/{kid}",
                                        "keyState": "Enabled", "keyManager": "CUSTOMER", "origin": "AWS_KMS",
                                        "multiRegion": False}})
        self.call("kms.amazonaws.com", "EnableKeyRotation", api, read_only=False, req={"keyId": kid})

    def lambda_permission(self) -> None:
        """EventBridge allowed to invoke a function (limited by the rule's ARN)."""
        d, api = self.d, "lambda#1.54.0"
        fn = d.pick(["catalog-sync", "invoice-renderer", "notifications"])
        rule = f"arn:aws:events:{self.region}:{self.acct_id}:rule/{fn}-schedule"
        self.call("lambda.amazonaws.com", "AddPermission20150331v2", api, read_only=False,
                  req={"functionName": fn, "statementId": "AllowExecutionFromEventBridge",
                       "action": "lambda:InvokeFunction", "principal": "events.amazonaws.com", "sourceArn": rule},
                  resp={"statement": json.dumps({"Sid": "AllowExecutionFromEventBridge", "Effect": "Allow",
                                                 "Principal": {"Service": "events.amazonaws.com"},
                                                 "Action": "lambda:InvokeFunction",
                                                 "Resource": f"arn:aws:lambda:{self.region}:{self.acct_id}:function:{fn}",
                                                 "Condition": {"ArnLike": {"AWS:SourceArn": rule}}})})

    def destroy_preview(self) -> None:
        """Tear down last night's preview environment (a pull request's stack in staging)."""
        d = self.d
        pr = d.rng.randint(1800, 2400)
        self.call("ecs.amazonaws.com", "DeleteService", "ecs#1.41.7", read_only=False,
                  req={"cluster": ECS_CLUSTERS["staging"], "service": f"preview-pr-{pr}", "force": True})
        role = f"preview-pr-{pr}-task"
        self.call("iam.amazonaws.com", "DetachRolePolicy", "iam#1.32.0", read_only=False,
                  req={"roleName": role, "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"})
        self.call("iam.amazonaws.com", "DeleteRolePolicy", "iam#1.32.0", read_only=False,
                  req={"roleName": role, "policyName": "app-access"})
        self.call("iam.amazonaws.com", "DeleteRole", "iam#1.32.0", read_only=False, req={"roleName": role})
        self.call("ec2.amazonaws.com", "DeleteSecurityGroup", "ec2#1.156.0", read_only=False,
                  req={"groupId": f"sg-0{d.hex(16)}"}, resp={"requestId": str(d.uuid()), "_return": True})
        self.call("logs.amazonaws.com", "DeleteLogGroup", "cloudwatch-logs#1.35.0", read_only=False,
                  req={"logGroupName": f"/ecs/staging/preview-pr-{pr}"})


def deploy(d: Day, t: float) -> None:
    """One release: CodePipeline, CodeBuild pushing an image to ECR, then CloudFormation/ECS or Lambda."""
    d.activity = "deploy pipelines"
    c = Clock(d, t)
    app = d.pick(list(APPS))
    runtime = APPS[app][0]
    target = "prod" if d.chance(0.45) else "staging"
    region = HOME if target == "staging" or d.chance(0.7) else "eu-west-1"
    sha = d.hex(40)
    pipeline = f"{app}-{target}"
    shared = ACCOUNTS["shared"]
    # A GitHub push starts the pipeline (through the CodeStar connection).
    d.emit(c.tick(), d.slr("shared", "codestar-connections.amazonaws.com", "AWSServiceRoleForCodeStarConnections",
                           "CodeStarConnections", c.t), "codepipeline.amazonaws.com", "StartPipelineExecution",
           acct="shared", read_only=False, req={"name": pipeline, "clientRequestToken": str(d.uuid())},
           resp={"pipelineExecutionId": str(d.uuid())})
    pipe = d.role("shared", "codepipeline-service-role", str(d.rng.randint(10**12, 10**13)), c.t, since=c.t)
    build_id = f"{app}-build:{d.uuid()}"
    d.emit(c.tick(2, 6), pipe, "codebuild.amazonaws.com", "StartBuild", acct="shared", ip="codepipeline.amazonaws.com",
           ua="codepipeline.amazonaws.com", read_only=False,
           req={"projectName": f"{app}-build", "sourceVersion": f"arn:aws:s3:::acme-shared-pipeline-artifacts/{pipeline}/"
                                                                  f"SourceArti/{d.b32(7)}"},
           resp={"build": {"id": build_id, "arn": f"arn:aws:codebuild:{HOME}:{shared}:build/{build_id}",
                           "buildNumber": d.rng.randint(200, 4000), "buildStatus": "IN_PROGRESS",
                           "projectName": f"{app}-build", "currentPhase": "QUEUED", "sourceVersion": sha}})
    d.assume_role_by_service(c.tick(20, 40), "shared", HOME, "codebuild.amazonaws.com", "codebuild-app-build",
                             f"AWSCodeBuild-{build_id.split(':')[1]}")
    build = d.role("shared", "codebuild-app-build", f"AWSCodeBuild-{build_id.split(':')[1]}", c.t, since=c.t)
    build_ip = f"10.30.{d.rng.randint(8, 15)}.{d.rng.randint(4, 250)}"
    d.emit(c.tick(1, 3), build, "logs.amazonaws.com", "CreateLogStream", acct="shared", ip=build_ip,
           ua="codebuild.amazonaws.com", read_only=False,
           req={"logGroupName": f"/aws/codebuild/{app}-build", "logStreamName": build_id.split(":")[1]})
    d.emit(c.tick(5, 20), build, "ecr.amazonaws.com", "GetAuthorizationToken", acct="shared", ip=build_ip,
           ua=UA_CLI_LINUX.format(cmd="ecr.get-login-password"))
    if runtime == "ecs":
        # docker push: layers checked, new layers uploaded in parts, the manifest put.
        repo = f"arn:aws:ecr:{HOME}:{shared}:repository/{app}"
        res = [{"accountId": shared, "type": "AWS::ECR::Repository", "ARN": repo}]
        layers = ["sha256:" + d.hex(64) for _ in range(d.rng.randint(4, 9))]
        d.emit(c.tick(60, 240), build, "ecr.amazonaws.com", "BatchCheckLayerAvailability", acct="shared",
               ip=build_ip, ua=UA_DOCKER, req={"repositoryName": app, "registryId": shared, "layerDigests": layers},
               resources=res)
        for layer in layers[: d.rng.randint(1, 3)]:
            upload = str(d.uuid())
            d.emit(c.tick(0.1, 1), build, "ecr.amazonaws.com", "InitiateLayerUpload", acct="shared", ip=build_ip,
                   ua=UA_DOCKER, read_only=False, req={"repositoryName": app, "registryId": shared},
                   resp={"uploadId": upload, "partSize": 10485760}, resources=res)
            for part in range(d.rng.randint(1, 4)):
                d.emit(c.tick(0.5, 3), build, "ecr.amazonaws.com", "UploadLayerPart", acct="shared", ip=build_ip,
                       ua=UA_DOCKER, read_only=False,
                       req={"repositoryName": app, "registryId": shared, "uploadId": upload,
                            "partFirstByte": part * 10485760, "partLastByte": part * 10485760 + 10485759},
                       resp={"registryId": shared, "repositoryName": app, "uploadId": upload,
                             "lastByteReceived": part * 10485760 + 10485759}, resources=res)
            d.emit(c.tick(0.2, 1), build, "ecr.amazonaws.com", "CompleteLayerUpload", acct="shared", ip=build_ip,
                   ua=UA_DOCKER, read_only=False,
                   req={"repositoryName": app, "registryId": shared, "uploadId": upload, "layerDigests": [layer]},
                   resp={"registryId": shared, "repositoryName": app, "uploadId": upload, "layerDigest": layer},
                   resources=res)
        d.emit(c.tick(0.5, 2), build, "ecr.amazonaws.com", "PutImage", acct="shared", ip=build_ip, ua=UA_DOCKER,
               read_only=False, req={"repositoryName": app, "registryId": shared, "imageTag": f"release-{sha[:7]}",
                                     "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"},
               resp={"image": {"registryId": shared, "repositoryName": app,
                               "imageId": {"imageDigest": "sha256:" + d.hex(64), "imageTag": f"release-{sha[:7]}"}}},
               resources=res)
    elif d.data_events:
        key = f"lambda/{app}/{sha}.zip"
        d.emit(c.tick(30, 90), build, "s3.amazonaws.com", "PutObject", acct="shared", ip=build_ip,
               ua=UA_CLI_LINUX.format(cmd="s3.cp"), data=True, read_only=False,
               req={"bucketName": "acme-shared-artifacts", "Host": f"acme-shared-artifacts.s3.{HOME}.amazonaws.com",
                    "key": key, "x-amz-server-side-encryption": "aws:kms"},
               resp={"x-amz-server-side-encryption": "aws:kms"},
               extra={"additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                              "bytesTransferredIn": d.rng.randint(10**6, 4 * 10**7),
                                              "AuthenticationMethod": "AuthHeader", "x-amz-id-2": d.b32(56),
                                              "bytesTransferredOut": 0}},
               resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::acme-shared-artifacts/{key}"},
                          {"accountId": shared, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::acme-shared-artifacts"}])
    # The deploy stage: CodeBuild assumes ci-deploy in the target account.
    session = f"codebuild-deploy-{d.hex(12)}"
    d.cross_account_assume(c.tick(5, 30), target, "shared", "codebuild-app-build",
                           f"AWSCodeBuild-{build_id.split(':')[1]}", "ci-deploy", session, build_ip,
                           UA_CLI_LINUX.format(cmd="sts.assume-role"))
    deployer = d.role(target, "ci-deploy", session, c.t + 1, since=c.t + 1)
    tid = ACCOUNTS[target]
    if runtime == "ecs":
        stack = f"{target}-{app}"
        cs = f"release-{sha[:7]}"
        cs_arn = f"arn:aws:cloudformation:{region}:{tid}:changeSet/{cs}/{d.uuid()}"
        stack_arn = f"arn:aws:cloudformation:{region}:{tid}:stack/{stack}/{d.uuid()}"
        d.emit(c.tick(1, 3), deployer, "cloudformation.amazonaws.com", "CreateChangeSet", acct=target, region=region,
               ip=build_ip, ua=UA_CLI_LINUX.format(cmd="cloudformation.deploy"), read_only=False,
               req={"stackName": stack, "templateURL": f"https://acme-shared-artifacts.s3.amazonaws.com/cfn/{app}/{sha}.yaml",
                    "parameters": [{"parameterKey": "ImageTag", "parameterValue": f"release-{sha[:7]}"},
                                   {"parameterKey": "DesiredCount", "usePreviousValue": True}],
                    "capabilities": ["CAPABILITY_IAM"], "changeSetName": cs, "changeSetType": "UPDATE",
                    "roleARN": f"arn:aws:iam::{tid}:role/cfn-exec"},
               resp={"id": cs_arn, "stackId": stack_arn})
        for _ in range(d.rng.randint(2, 5)):
            d.emit(c.tick(2, 6), deployer, "cloudformation.amazonaws.com", "DescribeChangeSet", acct=target,
                   region=region, ip=build_ip, ua=UA_CLI_LINUX.format(cmd="cloudformation.deploy"),
                   req={"changeSetName": cs_arn, "stackName": stack})
        d.emit(c.tick(1, 3), deployer, "cloudformation.amazonaws.com", "ExecuteChangeSet", acct=target, region=region,
               ip=build_ip, ua=UA_CLI_LINUX.format(cmd="cloudformation.deploy"), read_only=False,
               req={"changeSetName": cs_arn, "stackName": stack})
        cfn = d.role(target, "cfn-exec", "AWSCloudFormation", c.t, invoked_by="cloudformation.amazonaws.com", since=c.t)
        td = f"{target}-{app}"
        rev = d.rng.randint(100, 900)
        d.emit(c.tick(3, 8), cfn, "ecs.amazonaws.com", "RegisterTaskDefinition", acct=target, region=region,
               ip="cloudformation.amazonaws.com", ua="cloudformation.amazonaws.com", read_only=False,
               req={"family": td, "taskRoleArn": f"arn:aws:iam::{tid}:role/{app}-task",
                    "executionRoleArn": f"arn:aws:iam::{tid}:role/ecsTaskExecutionRole", "networkMode": "awsvpc",
                    "containerDefinitions": [{"name": app, "image": f"{shared}.dkr.ecr.{region}.amazonaws.com/{app}:"
                                                                    f"release-{sha[:7]}",
                                              "cpu": 512, "memory": 1024, "essential": True,
                                              "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                                              "environment": [{"name": "ENV", "value": target},
                                                              {"name": "LOG_LEVEL", "value": "info"}],
                                              "secrets": [{"name": "DB_PASSWORD", "valueFrom": f"arn:aws:ssm:{region}:{tid}"
                                                           f":parameter/{target}/{app}/db-password"}],
                                              "logConfiguration": {"logDriver": "awslogs", "options": {
                                                  "awslogs-group": f"/ecs/{target}/{app}", "awslogs-region": region,
                                                  "awslogs-stream-prefix": app}}}],
                    "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024"},
               resp={"taskDefinition": {"taskDefinitionArn": f"arn:aws:ecs:{region}:{tid}:task-definition/{td}:{rev}",
                                        "family": td, "revision": rev, "status": "ACTIVE"}})
        cluster = ECS_CLUSTERS[target]
        d.emit(c.tick(2, 5), cfn, "ecs.amazonaws.com", "UpdateService", acct=target, region=region,
               ip="cloudformation.amazonaws.com", ua="cloudformation.amazonaws.com", read_only=False,
               req={"cluster": cluster, "service": app, "taskDefinition": f"arn:aws:ecs:{region}:{tid}:task-definition/{td}:{rev}",
                    "forceNewDeployment": False},
               resp={"service": {"serviceName": app, "status": "ACTIVE", "desiredCount": 4,
                                 "serviceArn": f"arn:aws:ecs:{region}:{tid}:service/{cluster}/{app}"}})
        # ECS rolls the tasks: new ENIs and targets, then CloudFormation waits for stability.
        ecs = d.slr(target, "ecs.amazonaws.com", "AWSServiceRoleForECS", "ecs-service-scheduler", c.t)
        for _ in range(d.rng.randint(2, 4)):
            eni = f"eni-0{d.hex(16)}"
            d.emit(c.tick(5, 20), ecs, "ec2.amazonaws.com", "CreateNetworkInterface", acct=target, region=region,
                   read_only=False, req={"subnetId": f"subnet-0{d.hex(16)}", "description": "arn:aws:ecs:" + region,
                                         "groupSet": {"items": [{"groupId": f"sg-0{d.hex(16)}"}]}},
                   resp={"requestId": str(d.uuid()), "networkInterface": {"networkInterfaceId": eni, "status": "pending",
                                                                          "interfaceType": "interface"}})
            d.emit(c.tick(20, 60), ecs, "elasticloadbalancing.amazonaws.com", "RegisterTargets", acct=target,
                   region=region, read_only=False,
                   req={"targetGroupArn": f"arn:aws:elasticloadbalancing:{region}:{tid}:targetgroup/{app[:20]}/{d.hex(16)}",
                        "targets": [{"id": f"10.{40 if target == 'prod' else 50}.{d.rng.randint(64, 127)}."
                                           f"{d.rng.randint(4, 250)}", "port": 8080}]})
        for _ in range(d.rng.randint(6, 20)):
            d.emit(c.tick(10, 20), cfn, "ecs.amazonaws.com", "DescribeServices", acct=target, region=region,
                   ip="cloudformation.amazonaws.com", ua="cloudformation.amazonaws.com",
                   req={"cluster": cluster, "services": [app]})
        for _ in range(d.rng.randint(3, 12)):
            d.emit(c.tick(10, 30), deployer, "cloudformation.amazonaws.com", "DescribeStacks", acct=target,
                   region=region, ip=build_ip, ua=UA_CLI_LINUX.format(cmd="cloudformation.deploy"),
                   req={"stackName": stack})
    else:
        fn = app
        fn_arn = f"arn:aws:lambda:{region}:{tid}:function:{fn}"
        lang = APPS[app][1]
        ua = UA_CLI_LINUX.format(cmd="lambda.update-function-code")
        conf = {"functionName": fn, "functionArn": fn_arn, "runtime": LAMBDA_RUNTIME[lang],
                "role": f"arn:aws:iam::{tid}:role/{fn}-lambda", "handler": "app.handler" if lang == "python" else "index.handler",
                "codeSize": d.rng.randint(2 * 10**6, 4 * 10**7), "description": f"{fn} ({target})", "timeout": 60,
                "memorySize": 512, "lastModified": d.iso(c.t) .replace("Z", ".000+0000"),
                "codeSha256": d.b32(43) + "=", "version": "$LATEST",
                "vpcConfig": {"subnetIds": [f"subnet-0{d.hex(16)}", f"subnet-0{d.hex(16)}"],
                              "securityGroupIds": [f"sg-0{d.hex(16)}"], "ipv6AllowedForDualStack": False},
                "tracingConfig": {"mode": "Active"}, "revisionId": str(d.uuid()), "state": "Active",
                "lastUpdateStatus": "InProgress", "lastUpdateStatusReason": "The function is being created.",
                "lastUpdateStatusReasonCode": "Creating", "packageType": "Zip", "architectures": ["arm64"],
                "ephemeralStorage": {"size": 512}, "snapStart": {"applyOn": "None", "optimizationStatus": "Off"},
                "runtimeVersionConfig": {"runtimeVersionArn": f"arn:aws:lambda:{region}::runtime:{d.hex(64)}"},
                "loggingConfig": {"logFormat": "JSON", "applicationLogLevel": "INFO", "systemLogLevel": "WARN",
                                  "logGroup": f"/aws/lambda/{fn}"}}
        d.emit(c.tick(2, 10), deployer, "lambda.amazonaws.com", "UpdateFunctionCode20150331v2", acct=target,
               region=region, ip=build_ip, ua=ua, read_only=False,
               req={"functionName": fn, "s3Bucket": "acme-shared-artifacts", "s3Key": f"lambda/{fn}/{sha}.zip",
                    "publish": False, "dryRun": False, "architectures": ["arm64"]},
               resp=conf)
        for _ in range(d.rng.randint(1, 4)):
            d.emit(c.tick(2, 5), deployer, "lambda.amazonaws.com", "GetFunctionConfiguration20150331v2", acct=target,
                   region=region, ip=build_ip, ua=UA_CLI_LINUX.format(cmd="lambda.wait"), req={"functionName": fn})
        if d.chance(0.3):
            # The CI role also bumps the shared layer (an automation role, not a person).
            layer = f"arn:aws:lambda:{region}:{shared}:layer:acme-observability:{d.rng.randint(20, 60)}"
            d.emit(c.tick(1, 3), deployer, "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2",
                   acct=target, region=region, ip=build_ip, ua=UA_CLI_LINUX.format(cmd="lambda.update-function-configuration"),
                   read_only=False, req={"functionName": fn, "layers": [layer]},
                   resp={**conf, "layers": [{"arn": layer, "codeSize": 1843200}]})
        version = str(d.rng.randint(20, 400))
        d.emit(c.tick(2, 5), deployer, "lambda.amazonaws.com", "PublishVersion20150331", acct=target, region=region,
               ip=build_ip, ua=UA_CLI_LINUX.format(cmd="lambda.publish-version"), read_only=False,
               req={"functionName": fn, "description": f"release {sha[:7]}"},
               resp={**conf, "version": version, "functionArn": f"{fn_arn}:{version}", "lastUpdateStatus": "Successful"})
        d.emit(c.tick(1, 3), deployer, "lambda.amazonaws.com", "UpdateAlias20150331", acct=target, region=region,
               ip=build_ip, ua=UA_CLI_LINUX.format(cmd="lambda.update-alias"), read_only=False,
               req={"functionName": fn, "name": "live", "functionVersion": version},
               resp={"aliasArn": f"{fn_arn}:live", "name": "live", "functionVersion": version,
                     "revisionId": str(d.uuid())})
    # The pipeline records the result.
    d.emit(c.tick(5, 20), pipe, "codepipeline.amazonaws.com", "PutJobSuccessResult", acct="shared",
           ip="codepipeline.amazonaws.com", ua="codepipeline.amazonaws.com", read_only=False,
           req={"jobId": str(d.uuid()), "executionDetails": {"summary": f"Deployed release-{sha[:7]} to {target}"}})


CONSOLE_READS = [  # what people look at in the console
    ("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("ec2.amazonaws.com", "DescribeVolumes"), ("ec2.amazonaws.com", "DescribeSubnets"),
    ("ecs.amazonaws.com", "DescribeServices"), ("ecs.amazonaws.com", "ListServices"), ("ecs.amazonaws.com", "ListClusters"),
    ("ecs.amazonaws.com", "DescribeTasks"), ("ecs.amazonaws.com", "ListTasks"),
    ("logs.amazonaws.com", "DescribeLogGroups"), ("logs.amazonaws.com", "DescribeLogStreams"),
    ("logs.amazonaws.com", "GetLogEvents"), ("logs.amazonaws.com", "StartQuery"), ("logs.amazonaws.com", "GetQueryResults"),
    ("monitoring.amazonaws.com", "GetMetricData"), ("monitoring.amazonaws.com", "DescribeAlarms"),
    ("monitoring.amazonaws.com", "GetDashboard"), ("monitoring.amazonaws.com", "ListDashboards"),
    ("cloudformation.amazonaws.com", "DescribeStacks"), ("cloudformation.amazonaws.com", "DescribeStackEvents"),
    ("cloudformation.amazonaws.com", "ListStacks"),
    ("lambda.amazonaws.com", "GetFunction20150331v2"), ("lambda.amazonaws.com", "ListFunctions20150331"),
    ("rds.amazonaws.com", "DescribeDBInstances"), ("rds.amazonaws.com", "DescribeEvents"),
    ("s3.amazonaws.com", "ListBuckets"), ("s3.amazonaws.com", "GetBucketLocation"),
    ("sqs.amazonaws.com", "ListQueues"), ("sqs.amazonaws.com", "GetQueueAttributes"),
    ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers"),
    ("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth"),
    ("health.amazonaws.com", "DescribeEventAggregates"), ("ce.amazonaws.com", "GetCostAndUsage"),
    ("servicecatalog-appregistry.amazonaws.com", "ListApplications"),
    ("notifications.amazonaws.com", "ListNotificationEvents"),
]
CLI_READS = [
    ("ecs.amazonaws.com", "DescribeServices", "ecs.describe-services"),
    ("ecs.amazonaws.com", "ListTasks", "ecs.list-tasks"),
    ("logs.amazonaws.com", "FilterLogEvents", "logs.tail"),
    ("sts.amazonaws.com", "GetCallerIdentity", "sts.get-caller-identity"),
    ("ec2.amazonaws.com", "DescribeInstances", "ec2.describe-instances"),
    ("cloudformation.amazonaws.com", "DescribeStacks", "cloudformation.describe-stacks"),
    ("sqs.amazonaws.com", "GetQueueAttributes", "sqs.get-queue-attributes"),
    ("ssm.amazonaws.com", "GetParameter", "ssm.get-parameter"),
    ("ecr.amazonaws.com", "DescribeImages", "ecr.describe-images"),
    ("dynamodb.amazonaws.com", "DescribeTable", "dynamodb.describe-table"),
]


def browse(d: Day, c: Clock, ident: dict, acct: str, ip: str, browser: str, n: int, read_only_person: bool) -> None:
    """Console clicks: bursts of reads, now and then a routine change."""
    region = HOME if d.chance(0.75) else "eu-west-1"
    for _ in range(n):
        src, name = d.pick(CONSOLE_READS)
        internal = d.chance(0.3)
        req = d.read_params(src, name, acct, region, c.t)
        d.emit(c.tick(0.3, 25), ident, src, name, acct=acct, region=region,
               ip="AWS Internal" if internal else ip, ua="AWS Internal" if internal else browser,
               req=req, console=True)
    if read_only_person:
        return
    # A routine change made in the console.
    r = d.rng.random()
    tid = ACCOUNTS[acct]
    if r < 0.3:
        app = d.pick([a for a, s in APPS.items() if s[0] == "ecs"])
        d.emit(c.tick(5, 60), ident, "ecs.amazonaws.com", "UpdateService", acct=acct, region=region, ip=ip, ua=browser,
               read_only=False, console=True,
               req={"cluster": ECS_CLUSTERS.get(acct, "prod-main"), "service": app, "forceNewDeployment": True},
               resp={"service": {"serviceName": app, "status": "ACTIVE",
                                 "serviceArn": f"arn:aws:ecs:{region}:{tid}:service/{ECS_CLUSTERS.get(acct, 'prod-main')}/{app}"}})
    elif r < 0.5:
        d.emit(c.tick(5, 60), ident, "monitoring.amazonaws.com", "PutDashboard", acct=acct, region=region, ip=ip,
               ua=browser, read_only=False, console=True,
               req={"dashboardName": f"{d.pick(list(APPS))}-overview"}, resp={"dashboardValidationMessages": []})
    elif r < 0.6:
        d.emit(c.tick(5, 60), ident, "monitoring.amazonaws.com", "SetAlarmState", acct=acct, region=region, ip=ip,
               ua=browser, read_only=False, console=True,
               req={"alarmName": f"{acct}-{d.pick(list(APPS))}-5xx", "stateValue": "OK",
                    "stateReason": "Resetting after the incident was resolved"})
    elif r < 0.7 and acct == "staging":
        inst = d.pick(d.instances["staging"])
        d.emit(c.tick(5, 60), ident, "ec2.amazonaws.com", "RebootInstances", acct=acct, region=HOME, ip=ip,
               ua=browser, read_only=False, console=True,
               req={"instancesSet": {"items": [{"instanceId": inst}]}},
               resp={"requestId": str(d.uuid()), "_return": True})
    elif r < 0.78:
        d.emit(c.tick(5, 60), ident, "sqs.amazonaws.com", "StartMessageMoveTask", acct=acct, region=region, ip=ip,
               ua=browser, read_only=False, console=True,
               req={"sourceArn": f"arn:aws:sqs:{region}:{tid}:{acct}-payments-events-dlq"},
               resp={"taskHandle": d.b32(40)})


def sso_session(d: Day, t: float) -> None:
    """An Identity Center user signs in, then works in one account through the console or the CLI."""
    d.activity = "people"
    person, pset, ip = d.pick(PEOPLE)
    email = f"{person}@{EMAIL_DOMAIN}"
    browser = d.pick(BROWSERS)
    c = Clock(d, t)
    ic_user = {"type": "Unknown", "principalId": f"{IDENTITY_STORE}-{d.stable_id('U', person)[1:].lower()}",
               "accountId": ACCOUNTS["identity"], "accessKeyId": "", "userName": person}
    # Sign-in to the access portal (password, then TOTP) in the management account.
    flow = str(d.uuid())
    for name, details, extra in (
            ("CredentialChallenge", {"CredentialType": "PASSWORD"}, None),
            ("CredentialVerification", {"CredentialVerification": "Success", "CredentialType": "PASSWORD"}, None),
            ("CredentialChallenge", {"CredentialType": "TOTP"}, None),
            ("CredentialVerification", {"CredentialVerification": "Success", "CredentialType": "TOTP"}, None),
            ("UserAuthentication", {"UserAuthentication": "Success"}, {"CredentialType": "PASSWORD,TOTP"})):
        d.emit(c.tick(2, 12), ic_user, "signin.amazonaws.com", name, acct="identity", region=IC_REGION, ip=ip,
               ua=browser, event_type="AwsServiceEvent", read_only=False,
               extra={"serviceEventDetails": details,
                      "additionalEventData": {"AuthWorkflowID": flow, **(extra or {})}})
    for name in ("Authenticate", "ListApplications", "ListAccounts", "ListAccountRoles"):
        d.emit(c.tick(0.5, 4), ic_user, "sso.amazonaws.com", name, acct="identity", region=IC_REGION, ip=ip,
               ua=browser, read_only=name != "Authenticate")
    acct = d.rng.choices(["prod", "staging", "shared", "identity"], [35, 40, 20, 5])[0]
    if pset == "AdministratorAccess" and acct == "prod" and d.chance(0.5):
        pset_used = "ReadOnlyAccess"   # admins browse prod read-only
    else:
        pset_used = pset
    role = f"AWSReservedSSO_{pset_used}_{PERMISSION_SET_SUFFIX[pset_used]}"
    tid = ACCOUNTS[acct]
    cli = d.chance(0.4)
    d.emit(c.tick(1, 5), ic_user, "sso.amazonaws.com", "GetRoleCredentials" if cli else "Federate", acct="identity",
           region=IC_REGION, ip=ip, ua=ua_cli("sso.login") if cli else browser,
           req={"accountId": tid, "roleName": pset_used})
    # The member account sees the SAML assumption of the permission set's role.
    provider = f"arn:aws:iam::{tid}:saml-provider/{SSO_SAML_PROVIDER}"
    session_t = c.tick(0.5, 2)
    d.emit(session_t, {"type": "SAMLUser", "principalId": f"{d.stable_id('SAML', tid)}:{email}", "userName": email,
                       "identityProvider": d.stable_id("SAML", tid)},
           "sts.amazonaws.com", "AssumeRoleWithSAML", acct=acct, region=HOME, ip=ip,
           ua="aws-internal/3 aws-sdk-java/1.12.720 Linux/5.10.219-186.866.amzn2int.x86_64 "
              "OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS java/17.0.11 vendor/Amazon.com_Inc. cfg/retry-mode/standard",
           req={"sAMLAssertionID": "_" + d.hex(32), "roleSessionName": email, "durationSeconds": 43200,
                "roleArn": f"arn:aws:iam::{tid}:role/aws-reserved/sso.amazonaws.com/{IC_REGION}/{role}",
                "principalArn": provider},
           resp={"credentials": {"accessKeyId": "ASIA" + d.b32(16), 
                                 "expiration": d.iso_any(session_t + 43200)},
                 "assumedRoleUser": {"assumedRoleId": f"{d.stable_id('AROA', tid, role)}:{email}",
                                     "arn": f"arn:aws:sts::{tid}:assumed-role/{role}/{email}"},
                 "subject": email, "subjectType": "persistent", "issuer": f"https://portal.sso.{IC_REGION}.amazonaws.com/"
                 f"saml/assertion/{d.b32(32)}", "audience": "https://signin.aws.amazon.com/saml",
                 "nameQualifier": d.b32(28) + "="},
           resources=[{"accountId": tid, "type": "AWS::IAM::Role",
                       "ARN": f"arn:aws:iam::{tid}:role/aws-reserved/sso.amazonaws.com/{IC_REGION}/{role}"},
                      {"accountId": tid, "type": "AWS::IAM::SAMLProvider", "ARN": provider}])
    ident = d.sso(acct, person, pset_used, session_t)
    if not cli:
        d.emit(c.tick(1, 3), ident, "signin.amazonaws.com", "ConsoleLogin", acct=acct, region=HOME, ip=ip, ua=browser,
               resp={"ConsoleLogin": "Success"}, read_only=False, event_type="AwsConsoleSignIn",
               extra={"additionalEventData": {"LoginTo": f"https://console.aws.amazon.com/console/home?region={HOME}",
                                              "MobileVersion": "No", "MFAUsed": "No", "SamlProviderArn": provider}})
        browse(d, c, ident, acct, ip, browser, d.rng.randint(20, 220), pset_used == "ReadOnlyAccess")
        # An SSM shell on a staging instance for debugging.
        if acct == "staging" and pset_used == "PowerUserAccess" and d.chance(0.25):
            inst = d.pick(d.instances["staging"])
            d.emit(c.tick(10, 120), ident, "ssm.amazonaws.com", "StartSession", acct=acct, region=HOME, ip=ip,
                   ua=browser, read_only=False, console=True, req={"target": inst},
                   resp={"sessionId": f"{email}-{d.hex(17)}", "tokenValue": "Value hidden due to security reasons.",
                         "streamUrl": f"wss://ssmmessages.{HOME}.amazonaws.com/v1/data-channel/{email}-{d.hex(17)}"})
    else:
        for _ in range(d.rng.randint(5, 90)):
            src, name, cmd = d.pick(CLI_READS)
            region = HOME if d.chance(0.8) else "eu-west-1"
            req = d.read_params(src, name, acct, region)
            if name == "GetParameter":
                req = {"name": f"/{acct}/{d.pick(list(APPS))}/config"}
            d.emit(c.tick(1, 40), ident, src, name, acct=acct, region=region, ip=ip, ua=ua_cli(cmd), req=req)


def okta_session(d: Day, t: float) -> None:
    """A data analyst federated through Okta SAML into a read role, then the console."""
    d.activity = "people"
    person, _, ip = d.pick([p for p in PEOPLE if p[1] == "DataEngineer"])
    email = f"{person}@{EMAIL_DOMAIN}"
    acct = "prod"
    tid = ACCOUNTS[acct]
    provider = f"arn:aws:iam::{tid}:saml-provider/Okta"
    role = "okta-data-analyst"
    c = Clock(d, t)
    browser = d.pick(BROWSERS)
    d.emit(c.tick(), {"type": "SAMLUser", "principalId": f"{d.stable_id('OKTA', tid)}:{email}", "userName": email,
                      "identityProvider": d.stable_id("OKTA", tid)},
           "sts.amazonaws.com", "AssumeRoleWithSAML", acct=acct, region=HOME, ip=ip, ua=browser,
           req={"sAMLAssertionID": "id" + d.hex(32), "roleSessionName": email, "durationSeconds": 28800,
                "roleArn": f"arn:aws:iam::{tid}:role/{role}", "principalArn": provider},
           resp={"credentials": {"accessKeyId": "ASIA" + d.b32(16), 
                                 "expiration": d.iso_any(t + 28800)},
                 "assumedRoleUser": {"assumedRoleId": f"{d.stable_id('AROA', tid, role)}:{email}",
                                     "arn": f"arn:aws:sts::{tid}:assumed-role/{role}/{email}"},
                 "subject": email, "subjectType": "unspecified", "issuer": "http://www.okta.com/exk" + d.b32(17).lower(),
                 "audience": "https://signin.aws.amazon.com/saml", "nameQualifier": d.b32(28) + "="})
    ident = d.role(acct, role, email, c.t, since=c.t)
    d.emit(c.tick(1, 3), ident, "signin.amazonaws.com", "ConsoleLogin", acct=acct, region=HOME, ip=ip, ua=browser,
           resp={"ConsoleLogin": "Success"}, read_only=False, event_type="AwsConsoleSignIn",
           extra={"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/athena/home",
                                          "MobileVersion": "No", "MFAUsed": "No", "SamlProviderArn": provider}})
    for _ in range(d.rng.randint(10, 80)):
        name = d.pick(["StartQueryExecution", "GetQueryExecution", "GetQueryResults", "ListWorkGroups",
                       "GetWorkGroup", "ListDatabases", "ListTableMetadata"])
        req = {"queryString": "SELECT date, count(*) FROM orders_daily GROUP BY 1 ORDER BY 1 DESC LIMIT 30",
               "workGroup": "analysts"} if name == "StartQueryExecution" else \
            {"queryExecutionId": str(d.uuid())} if name.startswith("GetQuery") else {"workGroup": "analysts"}
        d.emit(c.tick(2, 40), ident, "athena.amazonaws.com", name, acct=acct, region=HOME, ip=ip, ua=browser,
               req=req, read_only=name != "StartQueryExecution", console=True)


def iam_console_user(d: Day, t: float, typo: bool) -> None:
    """A legacy IAM user signing in to the shared account with MFA (after a mistyped password, maybe)."""
    d.activity = "people"
    user, ip = d.pick(CONSOLE_IAM_USERS)
    acct_id = ACCOUNTS["shared"]
    browser = d.pick(BROWSERS)
    c = Clock(d, t)
    base = {"type": "IAMUser", "principalId": d.stable_id("AIDA", acct_id, user), "accountId": acct_id,
            "accessKeyId": "", "userName": user}
    signed_in = {"type": "IAMUser", "principalId": base["principalId"], "arn": f"arn:aws:iam::{acct_id}:user/{user}",
                 "accountId": acct_id, "userName": user}
    login_to = f"https://console.aws.amazon.com/console/home?region={HOME}&state=hashArgs%23&isauthcode=true"
    if typo:
        d.emit(c.tick(), base, "signin.amazonaws.com", "ConsoleLogin", acct="shared", region=HOME, ip=ip, ua=browser,
               resp={"ConsoleLogin": "Failure"}, error=None, read_only=False, event_type="AwsConsoleSignIn",
               extra={"additionalEventData": {"LoginTo": login_to, "MobileVersion": "No", "MFAUsed": "No"},
                      "errorMessage": "Failed authentication"})
    d.emit(c.tick(8, 30), signed_in, "signin.amazonaws.com",
           "ConsoleLogin", acct="shared", region=HOME, ip=ip, ua=browser, resp={"ConsoleLogin": "Success"},
           read_only=False, event_type="AwsConsoleSignIn",
           extra={"additionalEventData": {"LoginTo": login_to, "MobileVersion": "No",
                                          "MFAIdentifier": f"arn:aws:iam::{acct_id}:mfa/{user}", "MFAUsed": "Yes"}})
    ident = d.iam_user("shared", user, console_t0=c.t)
    browse(d, c, ident, "shared", ip, browser, d.rng.randint(15, 120), False)


def mfa_reregistration(d: Day, t: float) -> None:
    """A legacy IAM user replaces her own MFA device (new phone)."""
    d.activity = "people"
    user, ip = CONSOLE_IAM_USERS[0]
    acct_id = ACCOUNTS["shared"]
    c = Clock(d, t)
    ident = d.iam_user("shared", user, console_t0=t - 600)
    browser = BROWSERS[0]
    serial = f"arn:aws:iam::{acct_id}:mfa/{user}"
    for name, req, resp in (
            ("DeactivateMFADevice", {"userName": user, "serialNumber": serial}, None),
            ("DeleteVirtualMFADevice", {"serialNumber": serial}, None),
            ("CreateVirtualMFADevice", {"virtualMFADeviceName": user, "path": "/"},
             {"virtualMFADevice": {"serialNumber": serial}}),
            ("EnableMFADevice", {"userName": user, "serialNumber": serial}, None)):
        d.emit(c.tick(5, 40), ident, "iam.amazonaws.com", name, acct="shared", ip=ip, ua=browser, req=req, resp=resp,
               read_only=False, console=True)


def engineer_mistake(d: Day, t: float) -> None:
    """Benign errors: the wrong permission set, a mistyped name."""
    d.activity = "benign errors"
    person, pset, ip = d.pick([p for p in PEOPLE if p[1] in ("ReadOnlyAccess", "DataEngineer", "PowerUserAccess")])
    acct = d.pick(("prod", "staging"))
    used = "ReadOnlyAccess" if pset == "ReadOnlyAccess" else pset
    ident = d.sso(acct, person, used, t - d.rng.uniform(300, 3000))
    tid = ACCOUNTS[acct]
    arn = ident["arn"]
    r = d.rng.random()
    if r < 0.3:
        app = d.pick([a for a, s in APPS.items() if s[0] == "ecs"])
        d.emit(t, ident, "ecs.amazonaws.com", "UpdateService", acct=acct, ip=ip, ua=ua_cli("ecs.update-service"),
               read_only=False, req={"cluster": ECS_CLUSTERS[acct], "service": app, "forceNewDeployment": True},
               error=("AccessDenied", f"User: {arn} is not authorized to perform: ecs:UpdateService on resource: "
                                      f"arn:aws:ecs:{HOME}:{tid}:service/{ECS_CLUSTERS[acct]}/{app} because no "
                                      f"identity-based policy allows the ecs:UpdateService action"))
    elif r < 0.5:
        # Typo in a parameter name: not found, not denied.
        app = d.pick(list(APPS))
        d.emit(t, ident, "ssm.amazonaws.com", "GetParameter", acct=acct, ip=ip, ua=ua_cli("ssm.get-parameter"),
               req={"name": f"/{acct}/{app}/confg"}, error=("ParameterNotFound", None))
    elif r < 0.65:
        secret = d.pick(APPS[d.pick(list(APPS))][2])
        d.emit(t, ident, "secretsmanager.amazonaws.com", "GetSecretValue", acct=acct, ip=ip,
               ua=ua_cli("secretsmanager.get-secret-value"), req={"secretId": secret},
               error=("AccessDenied", f"User: {arn} is not authorized to perform: secretsmanager:GetSecretValue on "
                                      f"resource: {secret} because no identity-based policy allows the "
                                      f"secretsmanager:GetSecretValue action"))
    elif r < 0.85:
        inst = d.pick(d.instances[acct])
        d.emit(t, ident, "ec2.amazonaws.com", "StopInstances", acct=acct, ip=ip, ua=d.pick(BROWSERS), read_only=False,
               req={"instancesSet": {"items": [{"instanceId": inst}]}, "force": False}, console=True,
               error=("Client.UnauthorizedOperation", "You are not authorized to perform this operation. User: "
                      f"{arn} is not authorized to perform: ec2:StopInstances on resource: "
                      f"arn:aws:ec2:{HOME}:{tid}:instance/{inst} because no identity-based policy allows the "
                      "ec2:StopInstances action. Encoded authorization failure message: " + d.b32(120)))
    else:
        d.emit(t, ident, "logs.amazonaws.com", "StartQuery", acct=acct, ip=ip, ua=d.pick(BROWSERS), console=True,
               req={"logGroupNames": [f"/ecs/{acct}/payments-worker"], "queryString": "fields @timestamp, @message "
                    "| sort @timestamp desc | limit 20", "startTime": 1, "endTime": 2},
               error=("AccessDeniedException", f"User: {arn} is not authorized to perform: logs:StartQuery"))


def key_rotation(d: Day, t: float, users: list[str]) -> None:
    """The scheduled ci-key-rotation Lambda rotates the access keys of service users."""
    d.activity = "key rotation"
    c = Clock(d, t)
    d.assume_role_by_service(c.tick(), "prod", HOME, "lambda.amazonaws.com", "ci-key-rotation", "iam-key-rotation")
    ident = d.role("prod", "ci-key-rotation", "iam-key-rotation", c.t, since=c.t)
    ip = d.pick(NAT_IPS["prod"])
    acct_id = ACCOUNTS["prod"]
    for user in users:
        old, older = "AKIA" + d.b32(16), "AKIA" + d.b32(16)
        d.emit(c.tick(), ident, "iam.amazonaws.com", "ListAccessKeys", acct="prod", ip=ip, ua=UA_BOTO_LAMBDA,
               req={"userName": user})
        d.emit(c.tick(), ident, "iam.amazonaws.com", "DeleteAccessKey", acct="prod", ip=ip, ua=UA_BOTO_LAMBDA,
               read_only=False, req={"userName": user, "accessKeyId": older})
        new = "AKIA" + d.b32(16)
        d.emit(c.tick(), ident, "iam.amazonaws.com", "CreateAccessKey", acct="prod", ip=ip, ua=UA_BOTO_LAMBDA,
               read_only=False, req={"userName": user},
               resp={"accessKey": {"userName": user, "accessKeyId": new, "status": "Active",
                                   "createDate": d.aws_date(c.t)}})
        d.emit(c.tick(), ident, "secretsmanager.amazonaws.com", "PutSecretValue", acct="prod", ip=ip,
               ua=UA_BOTO_LAMBDA, read_only=False,
               req={"secretId": f"service-users/{user}/access-key", "clientRequestToken": str(d.uuid())},
               resp={"arn": f"arn:aws:secretsmanager:{HOME}:{acct_id}:secret:service-users/{user}/access-key-{d.b32(6)}",
                     "name": f"service-users/{user}/access-key", "versionId": str(d.uuid()),
                     "versionStages": ["AWSCURRENT"]})
        d.emit(c.tick(), ident, "iam.amazonaws.com", "UpdateAccessKey", acct="prod", ip=ip, ua=UA_BOTO_LAMBDA,
               read_only=False, req={"userName": user, "accessKeyId": old, "status": "Inactive"})
        d.emit(c.tick(), ident, "iam.amazonaws.com", "TagUser", acct="prod", ip=ip, ua=UA_BOTO_LAMBDA,
               read_only=False, req={"userName": user, "tags": [{"key": "last-rotated", "value": d.iso(c.t)[:10]}]})


def backups(d: Day, t: float, acct: str) -> None:
    """The nightly AWS Backup plan: EBS and RDS snapshots, expired recovery points deleted."""
    d.activity = "backups"
    c = Clock(d, t)
    tid = ACCOUNTS[acct]
    vault = f"arn:aws:backup:{HOME}:{tid}:backup-vault:{acct}-vault"
    role = d.role(acct, "AWSBackupDefaultServiceRole", "AWSBackup-AWSBackupDefaultServiceRole", c.t,
                  path="/service-role/", invoked_by="backup.amazonaws.com", since=t)
    for vol in d.volumes[acct]:
        job = str(d.uuid())
        snap = f"snap-0{d.hex(16)}"
        d.service_event(c.tick(1, 10), "backup.amazonaws.com", "BackupJobStarted", acct=acct,
                        details={"backupJobId": job, "backupVaultName": f"{acct}-vault", "resourceType": "EBS",
                                 "resourceArn": f"arn:aws:ec2:{HOME}:{tid}:volume/{vol}", "state": "RUNNING"})
        d.emit(c.tick(2, 20), role, "ec2.amazonaws.com", "CreateSnapshot", acct=acct, read_only=False,
               req={"volumeId": vol, "description": f"This snapshot is created by the AWS Backup service.",
                    "tagSpecificationSet": {"items": [{"resourceType": "snapshot", "tags": [
                        {"key": "aws:backup:source-resource", "value": f"{vol}:{job}"}]}]}},
               resp={"requestId": str(d.uuid()), "snapshotId": snap, "volumeId": vol, "status": "pending",
                     "startTime": d.iso(c.t), "progress": "", "ownerId": tid, "volumeSize": d.pick((20, 50, 100, 200)),
                     "encrypted": True, "kmsKeyId": d.kms_key_arn(acct, HOME, 0)})
        d.kms_call(c.tick(0.1, 1), d.role(acct, "AWSBackupDefaultServiceRole", "AWSBackup-AWSBackupDefaultServiceRole",
                                          c.t, path="/service-role/", invoked_by="ec2.amazonaws.com", since=t),
                   acct, HOME, "GenerateDataKeyWithoutPlaintext",
                   {"aws:ebs:id": snap}, read_only=True)
        d.service_event(c.tick(60, 600), "backup.amazonaws.com", "BackupJobCompleted", acct=acct,
                        details={"backupJobId": job, "backupVaultArn": vault, "state": "COMPLETED",
                                 "recoveryPointArn": f"arn:aws:ec2:{HOME}::snapshot/{snap}"})
        if d.chance(0.9):
            d.emit(c.tick(1, 5), role, "ec2.amazonaws.com", "DeleteSnapshot", acct=acct, read_only=False,
                   req={"snapshotId": f"snap-0{d.hex(16)}"}, resp={"requestId": str(d.uuid()), "_return": True})
    if acct in ("prod", "staging"):
        db = f"{acct}-orders-db"
        snap = f"awsbackup:job-{d.uuid()}"
        d.emit(c.tick(5, 30), role, "rds.amazonaws.com", "CreateDBSnapshot", acct=acct, read_only=False,
               req={"dBSnapshotIdentifier": snap, "dBInstanceIdentifier": db,
                    "tags": [{"key": "aws:backup:source-resource", "value": db}]},
               resp={"dBSnapshotIdentifier": snap, "dBInstanceIdentifier": db, "engine": "postgres",
                     "status": "creating", "encrypted": True, "snapshotType": "awsbackup",
                     "dBSnapshotArn": f"arn:aws:rds:{HOME}:{tid}:snapshot:{snap}"})
        d.emit(c.tick(60, 300), role, "rds.amazonaws.com", "DeleteDBSnapshot", acct=acct, read_only=False,
               req={"dBSnapshotIdentifier": f"awsbackup:job-{d.uuid()}"},
               resp={"status": "deleted", "snapshotType": "awsbackup", "dBInstanceIdentifier": db})


def autoscaling(d: Day, t: float) -> None:
    """Auto Scaling following the load: an instance launched or terminated."""
    d.activity = "auto scaling"
    acct = "prod" if d.chance(0.8) else "staging"
    tid = ACCOUNTS[acct]
    region = HOME
    ident = d.slr(acct, "autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling", "AutoScaling", t)
    c = Clock(d, t)
    if t > 14 * 3600 and t < 22 * 3600 or d.chance(0.5):
        inst = f"i-0{d.hex(16)}"
        d.emit(c.tick(), ident, "ec2.amazonaws.com", "RunInstances", acct=acct, region=region, read_only=False,
               req={"instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
                    "instanceType": d.pick(("m6i.large", "m6i.xlarge", "c6i.xlarge", "m7g.large")),
                    "launchTemplate": {"launchTemplateId": f"lt-0{d.hex(16)}", "version": "$Latest"},
                    "subnetId": f"subnet-0{d.hex(16)}", "clientToken": str(d.uuid()),
                    "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [
                        {"key": "aws:autoscaling:groupName", "value": f"{acct}-ecs-capacity"}]}]}},
               resp={"requestId": str(d.uuid()), "reservationId": f"r-0{d.hex(16)}", "ownerId": tid,
                     "requesterId": "940372691376", "instancesSet": {"items": [
                         {"instanceId": inst, "currentState": {"code": 0, "name": "pending"},
                          "privateIpAddress": f"10.40.{d.rng.randint(0, 63)}.{d.rng.randint(4, 250)}"}]}})
        d.emit(c.tick(30, 120), ident, "elasticloadbalancing.amazonaws.com", "RegisterTargets", acct=acct,
               region=region, read_only=False,
               req={"targetGroupArn": f"arn:aws:elasticloadbalancing:{region}:{tid}:targetgroup/{acct}-ecs/{d.hex(16)}",
                    "targets": [{"id": inst}]})
    else:
        inst = d.pick(d.instances[acct])
        d.emit(c.tick(), ident, "elasticloadbalancing.amazonaws.com", "DeregisterTargets", acct=acct, region=region,
               read_only=False, req={"targetGroupArn": f"arn:aws:elasticloadbalancing:{region}:{tid}:targetgroup/"
                                                       f"{acct}-ecs/{d.hex(16)}", "targets": [{"id": inst}]})
        d.emit(c.tick(60, 300), ident, "ec2.amazonaws.com", "TerminateInstances", acct=acct, region=region,
               read_only=False, req={"instancesSet": {"items": [{"instanceId": inst}]}},
               resp={"requestId": str(d.uuid()), "instancesSet": {"items": [
                   {"instanceId": inst, "currentState": {"code": 32, "name": "shutting-down"},
                    "previousState": {"code": 16, "name": "running"}}]}})


def patch_window(d: Day, t: float) -> None:
    """The nightly SSM maintenance window patching the fleet (AWS-RunPatchBaseline, not a shell script)."""
    d.activity = "patching"
    acct = "prod"
    tid = ACCOUNTS[acct]
    c = Clock(d, t)
    ident = d.role(acct, "ssm-maintenance-window", "MaintenanceWindowTask", t, invoked_by="ssm.amazonaws.com",
                   since=t)
    d.emit(c.tick(), ident, "ssm.amazonaws.com", "SendCommand", acct=acct, read_only=False,
           req={"documentName": "AWS-RunPatchBaseline", "targets": [{"key": "tag:patch-group", "values": ["prod"]}],
                "parameters": {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
                "maxConcurrency": "10%", "maxErrors": "5%", "timeoutSeconds": 3600},
           resp={"command": {"commandId": str(d.uuid()), "documentName": "AWS-RunPatchBaseline", "status": "Pending",
                             "targetCount": len(d.instances[acct])}})
    for inst in d.instances[acct]:
        ip = f"10.40.{d.rng.randint(0, 63)}.{d.rng.randint(4, 250)}"
        inst_ident = d.role(acct, f"{acct}-ec2-instance", inst, c.t)
        d.emit(c.tick(5, 60), inst_ident, "ssm.amazonaws.com", "PutInventory", acct=acct, ip=ip, ua=UA_SSM_AGENT,
               read_only=False, req={"instanceId": inst, "items": [{"typeName": "AWS:PatchSummary",
                                                                   "schemaVersion": "1.0", "captureTime": d.iso(c.t)}]})
        d.emit(c.tick(0.5, 5), inst_ident, "ssm.amazonaws.com", "UpdateInstanceAssociationStatus", acct=acct, ip=ip,
               ua=UA_SSM_AGENT, read_only=False,
               req={"associationId": str(d.uuid()), "instanceId": inst,
                    "executionResult": {"status": "Success", "executionDate": d.iso(c.t)}})


def sso_provisioning(d: Day, t: float) -> None:
    """An admin re-provisions a permission set; Identity Center's service role updates the member account."""
    d.activity = "identity center"
    person = "maya.cohen"
    admin = d.sso("identity", person, "AdministratorAccess", t - 900)
    ps = f"arn:aws:sso:::permissionSet/{IC_INSTANCE}/ps-{PERMISSION_SET_SUFFIX['AdministratorAccess']}"
    c = Clock(d, t)
    d.emit(c.tick(), admin, "sso.amazonaws.com", "ProvisionPermissionSet", acct="identity", region=IC_REGION,
           ip=OFFICE_IP, ua=BROWSERS[0], read_only=False, console=True,
           req={"instanceArn": f"arn:aws:sso:::instance/{IC_INSTANCE}", "permissionSetArn": ps,
                "targetId": ACCOUNTS["staging"], "targetType": "AWS_ACCOUNT"},
           resp={"permissionSetProvisioningStatus": {"status": "IN_PROGRESS", "requestId": str(d.uuid())}})
    acct = "staging"
    tid = ACCOUNTS[acct]
    role = f"AWSReservedSSO_AdministratorAccess_{PERMISSION_SET_SUFFIX['AdministratorAccess']}"
    slr = d.slr(acct, "sso.amazonaws.com", "AWSServiceRoleForSSO", "AWS-SSO", c.t)
    for name, req in (
            ("GetRole", {"roleName": role}),
            ("ListAttachedRolePolicies", {"roleName": role}),
            ("UpdateAssumeRolePolicy", {"roleName": role, "policyDocument": json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
                    "Federated": f"arn:aws:iam::{tid}:saml-provider/{SSO_SAML_PROVIDER}"},
                    "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                    "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}]})}),
            ("AttachRolePolicy", {"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})):
        d.emit(c.tick(1, 5), slr, "iam.amazonaws.com", name, acct=acct, req=req, read_only=name.startswith(("Get", "List")))


# --------------------------------------------------------------------------
# Panther records
# --------------------------------------------------------------------------

def _identity_key(event: dict) -> str:
    """A record's JSON without eventID/eventTime, to compare records."""
    return json.dumps({k: v for k, v in event.items() if k not in ("eventID", "eventTime")}, sort_keys=True)


def attack_tool(event: dict) -> str | None:
    ua = str(event.get("userAgent") or "").lower()
    return next((tool for tool in ATTACK_TOOL_UA if tool in ua), None)


def panther_records(path: Path, exclude_contested: bool) -> tuple[list[dict], list[str]]:
    """The records Panther labels expected: false, and why each left-out one was left out."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    labelled_true: dict[str, list[str]] = {}
    for row in rows:
        if row["expected"]:
            labelled_true.setdefault(_identity_key(row["event"]), []).append(row["rule_id"])
    kept, reasons = [], []
    for row in rows:
        if row["expected"]:
            continue
        event = row["event"]
        if exclude_contested:
            true_for = labelled_true.get(_identity_key(event))
            tool = attack_tool(event)
            if true_for:
                other = sorted(set(true_for) - {row["rule_id"]})
                what = f"labelled true for {', '.join(other)}" if other else "labelled true for the same rule"
                reasons.append(f"{row['rule_id']} / {row['test_name']}: identical to a record {what}")
                continue
            if tool:
                reasons.append(f"{row['rule_id']} / {row['test_name']}: attack-tool user agent ({tool})")
                continue
        kept.append(event)
    return kept, reasons


def add_panther(d: Day, events: list[dict]) -> None:
    """Re-time the Panther records into the day (diurnal) with fresh event ids."""
    d.activity = "panther expected:false"
    for event in events:
        e = dict(event)
        t = d.at(APP_HOURS)
        for k in ("eventID", "eventid"):
            if k in e or k == "eventID":
                e[k] = str(d.uuid())
        for k in ("eventTime", "eventtime"):
            if k in e or k == "eventTime":
                e[k] = d.iso(t)
        line = json.dumps(e, separators=(",", ":"))
        d.out.append((t, len(d.out), line))
        d.by_activity[d.activity] += 1
        d.bytes_by_activity[d.activity] += len(line) + 1


# --------------------------------------------------------------------------
# The day
# --------------------------------------------------------------------------

def scaled(n: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


def build(d: Day, total: int, panther: list[dict]) -> None:
    scale = total / BASE_RECORDS
    # Discrete work, sized for 200,000 records and scaled.
    for _ in range(scaled(26, scale)):
        deploy(d, d.at(WORK_HOURS))
    for _ in range(scaled(14, scale)):  # plans on pull requests
        Terraform(d, d.at(WORK_HOURS), d.pick(("prod", "staging", "shared")), apply=False).run()
    for i in range(scaled(5, scale)):   # applies after merge; one adds a public HTTPS load balancer
        Terraform(d, d.at(WORK_HOURS), d.pick(("prod", "staging", "staging", "shared")), apply=True,
                  public_alb=i == 0).run()
    Terraform(d, 1.5 * 3600 + d.rng.uniform(0, 600), "staging", apply=False, destroy=True).run()
    for _ in range(scaled(70, scale)):
        sso_session(d, d.at(WORK_HOURS))
    for _ in range(scaled(6, scale)):
        okta_session(d, d.at(WORK_HOURS))
    for i in range(scaled(5, scale)):
        iam_console_user(d, d.at(WORK_HOURS), typo=i % 3 == 0)
    mfa_reregistration(d, 10 * 3600 + d.rng.uniform(0, 3600))
    for _ in range(scaled(14, scale)):
        engineer_mistake(d, d.at(WORK_HOURS))
    key_rotation(d, 3 * 3600 + 15 * 60, SERVICE_USERS[: max(1, min(len(SERVICE_USERS), round(2 * scale)))])
    for acct in ("prod", "staging", "shared"):
        backups(d, 5 * 3600 + d.rng.uniform(0, 300), acct)
    for _ in range(scaled(40, scale)):
        autoscaling(d, d.at(APP_HOURS))
    patch_window(d, 2 * 3600 + d.rng.uniform(0, 300))
    sso_provisioning(d, 11 * 3600 + d.rng.uniform(0, 3600))
    d.service_event(4 * 3600 + d.rng.uniform(0, 3600), "kms.amazonaws.com", "RotateKey", acct="prod",
                    resources=[{"accountId": ACCOUNTS["prod"], "type": "AWS::KMS::Key",
                                "ARN": d.kms_key_arn("prod", HOME, 2)}],
                    details={"keyId": d.kms_keys["prod"][2]})
    add_panther(d, panther)
    # Steady background traffic fills the rest.
    fillers = [f for f in FILLERS if d.data_events or not f[3]]
    weights = [f[2] for f in fillers]
    while len(d.out) < total:
        name, fn, _, _ = d.rng.choices(fillers, weights)[0]
        d.activity = name
        fn(d)
    if len(d.out) > total:  # small --records: keep a random sample of the day
        d.out = d.rng.sample(d.out, total)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}, expected YYYY-MM-DD") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output file (JSON lines)")
    p.add_argument("--records", type=int, default=200_000, help="records to write, Panther ones included (default 200000)")
    p.add_argument("--date", type=parse_date, default=dt.date(2025, 3, 11), help="the day, YYYY-MM-DD (default 2025-03-11)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--no-data-events", action="store_true", help="leave out S3 data events")
    p.add_argument("--no-panther", action="store_true", help="leave out the Panther expected:false records")
    p.add_argument("--panther-exclude-contested", action="store_true",
                   help="leave out Panther records identical to an expected:true record, or with an attack tool's user agent")
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                   help=f"shared datasets folder (default {DEFAULT_DATASETS}; env TRAILWATCH_DATASETS)")
    args = p.parse_args(argv)
    if args.records < 1:
        p.error("--records must be at least 1")

    # The user agents this generator writes must not look like attack tools.
    for ua in [v for k, v in globals().items() if k.startswith("UA_")] + BROWSERS:
        assert not any(tool in ua.lower() for tool in ATTACK_TOOL_UA), ua

    started = time.monotonic()
    panther, excluded = [], []
    if not args.no_panther:
        path = args.datasets / PANTHER_FILE
        if not path.exists():
            p.error(f"{path} not found (use --datasets or --no-panther)")
        panther, excluded = panther_records(path, args.panther_exclude_contested)
        panther = panther[: args.records]
    d = Day(args.seed, args.date, data_events=not args.no_data_events)
    build(d, args.records, panther)
    d.out.sort()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for _, _, line in d.out:
            f.write(line)
            f.write("\n")
            size += len(line) + 1
    took = time.monotonic() - started

    print(f"wrote {len(d.out)} records, {size / 1e6:.1f} MB ({size / max(1, len(d.out)):.0f} B/record) "
          f"to {args.out} in {took:.1f}s (seed {args.seed}, {args.date})", file=sys.stderr)
    print("  generated, by activity (before any sampling down to --records):", file=sys.stderr)
    for activity, n in d.by_activity.most_common():
        print(f"  {activity:26} {n:8} records {d.bytes_by_activity[activity] / n:6.0f} B/record", file=sys.stderr)
    if excluded:
        print(f"left out {len(excluded)} contested Panther records:", file=sys.stderr)
        for why in excluded:
            print(f"  {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
