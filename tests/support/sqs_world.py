#!/usr/bin/env python3
"""Sets up, on LocalStack, every path by which an S3 notification reaches an SQS
queue, for trailwatch's SQS tests (boto3; run with localstack/.venv-moto's Python).

    sqs_world.py --tag T [--endpoint URL] [--max-receive-count N]
    sqs_world.py --publish TOPIC_ARN MESSAGE     publish MESSAGE to an SNS topic

Creates, each named after the tag T:

    T-q, T-dlq                 the queue and its dead-letter queue (redrive after N
                               receives, default 2)
    T-direct                   bucket: S3 -> SQS
    T-sns                      bucket: S3 -> SNS (raw delivery off) -> SQS
    T-raw                      bucket: S3 -> SNS (raw delivery on) -> SQS
    T-eb                       bucket: S3 -> EventBridge -> SQS
    T-ct                       bucket with no notification; topic T-ct-topic stands
                               for a trail's own SNS topic (CloudTrail publishes
                               {"s3Bucket": ..., "s3ObjectKey": [...]} to it)
    T-quiet                    bucket with no notification path at all

and prints one JSON object: {"queue_url", "dlq_url", "ct_topic_arn", "buckets"}.
"""

from __future__ import annotations

import argparse
import json

import boto3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag")
    ap.add_argument("--publish", nargs=2, metavar=("TOPIC_ARN", "MESSAGE"))
    ap.add_argument("--endpoint", default="http://127.0.0.1:4566")
    ap.add_argument("--max-receive-count", type=int, default=2)
    args = ap.parse_args()
    kw = dict(
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3 = boto3.client("s3", **kw)
    sqs = boto3.client("sqs", **kw)
    sns = boto3.client("sns", **kw)
    events = boto3.client("events", **kw)
    if args.publish:
        sns.publish(TopicArn=args.publish[0], Message=args.publish[1])
        return
    if not args.tag:
        ap.error("--tag is required")
    t = args.tag

    dlq = sqs.create_queue(QueueName=f"{t}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"{t}-q",
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(args.max_receive_count)}
            )
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]

    buckets = {name: f"{t}-{name}" for name in ["direct", "sns", "raw", "eb", "ct", "quiet"]}
    for b in buckets.values():
        s3.create_bucket(Bucket=b)

    created = {"Events": ["s3:ObjectCreated:*"]}
    s3.put_bucket_notification_configuration(
        Bucket=buckets["direct"],
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, **created}]},
    )
    for name, raw in [("sns", "false"), ("raw", "true")]:
        topic = sns.create_topic(Name=f"{t}-{name}-topic")["TopicArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": raw},
        )
        s3.put_bucket_notification_configuration(
            Bucket=buckets[name],
            NotificationConfiguration={"TopicConfigurations": [{"TopicArn": topic, **created}]},
        )
    s3.put_bucket_notification_configuration(
        Bucket=buckets["eb"], NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events.put_rule(
        Name=f"{t}-eb-rule",
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [buckets["eb"]]}},
            }
        ),
    )
    events.put_targets(Rule=f"{t}-eb-rule", Targets=[{"Id": "queue", "Arn": queue_arn}])
    ct_topic = sns.create_topic(Name=f"{t}-ct-topic")["TopicArn"]
    sns.subscribe(
        TopicArn=ct_topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    print(
        json.dumps(
            {
                "queue_url": queue,
                "dlq_url": dlq,
                "ct_topic_arn": ct_topic,
                "buckets": buckets,
            }
        )
    )


if __name__ == "__main__":
    main()
