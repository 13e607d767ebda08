//! What an SQS message says about new objects, in every shape one reaches a
//! queue: S3's own event notification, the same wrapped by SNS (raw delivery
//! off; with it on the body is S3's own), EventBridge's `Object Created`, and
//! CloudTrail's SNS notification (`s3Bucket` with an `s3ObjectKey` list).
//! S3 and EventBridge URL-encode keys; CloudTrail does not.

use serde_json::Value;

/// One object a notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticedObject {
    pub bucket: String,
    pub key: String,
    /// The bucket's region when the notification says it.
    pub region: Option<String>,
    /// The object's size when the notification says it.
    pub size: Option<u64>,
}

/// A message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// New objects (an empty list: an event of another kind, such as a
    /// deletion, with nothing to read).
    Objects(Vec<NoticedObject>),
    /// `s3:TestEvent`, sent when a bucket's notification is set up.
    Test,
    /// Not a shape trailwatch knows; the reason says what was wrong.
    Unknown(String),
}

/// Reads a message body.
pub fn parse(body: &str) -> Notice {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => read(&v, 0),
        Err(e) => Notice::Unknown(format!("not JSON: {e}")),
    }
}

fn read(v: &Value, depth: u8) -> Notice {
    // SNS's envelope (raw delivery off): the notification is a JSON string.
    if v["Type"] == "Notification"
        && let Some(inner) = v["Message"].as_str()
    {
        if depth > 0 {
            return Notice::Unknown("an SNS envelope inside another".into());
        }
        return match serde_json::from_str::<Value>(inner) {
            Ok(m) => read(&m, depth + 1),
            Err(e) => Notice::Unknown(format!("SNS Message is not JSON: {e}")),
        };
    }
    if v["Event"] == "s3:TestEvent" {
        return Notice::Test;
    }
    if let Some(records) = v["Records"].as_array() {
        return Notice::Objects(records.iter().filter_map(s3_record).collect());
    }
    if v["source"] == "aws.s3" && v.get("detail-type").is_some() {
        return Notice::Objects(eventbridge(v).into_iter().collect());
    }
    if let (Some(bucket), Some(keys)) = (v["s3Bucket"].as_str(), v["s3ObjectKey"].as_array()) {
        return Notice::Objects(
            keys.iter()
                .filter_map(Value::as_str)
                .map(|key| NoticedObject {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    region: None,
                    size: None,
                })
                .collect(),
        );
    }
    Notice::Unknown("neither an S3, EventBridge nor CloudTrail notification".into())
}

/// One record of S3's event notification, when it tells of a new object.
fn s3_record(r: &Value) -> Option<NoticedObject> {
    if r["eventSource"] != "aws:s3" || !r["eventName"].as_str()?.starts_with("ObjectCreated:") {
        return None;
    }
    Some(NoticedObject {
        bucket: r["s3"]["bucket"]["name"].as_str()?.to_owned(),
        key: form_decode(r["s3"]["object"]["key"].as_str()?),
        region: r["awsRegion"].as_str().map(str::to_owned),
        size: r["s3"]["object"]["size"].as_u64(),
    })
}

/// EventBridge's `Object Created` event.
fn eventbridge(v: &Value) -> Option<NoticedObject> {
    if v["detail-type"] != "Object Created" {
        return None;
    }
    let detail = &v["detail"];
    Some(NoticedObject {
        bucket: detail["bucket"]["name"].as_str()?.to_owned(),
        key: form_decode(detail["object"]["key"].as_str()?),
        region: v["region"].as_str().map(str::to_owned),
        size: detail["object"]["size"].as_u64(),
    })
}

/// S3's key encoding: `%XX` escapes and `+` for a space.
fn form_decode(key: &str) -> String {
    form_urlencoded::parse(format!("k={key}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/06/111122223333_CloudTrail_us-east-1_20261206T0605Z_AbCd.json.gz";

    fn s3_body(key: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "logs"}, "object": {"key": key, "size": 1234}}
        }]})
        .to_string()
    }

    fn object(key: &str, region: Option<&str>, size: Option<u64>) -> NoticedObject {
        NoticedObject {
            bucket: "logs".into(),
            key: key.into(),
            region: region.map(str::to_owned),
            size,
        }
    }

    #[test]
    fn every_shape_names_its_objects() {
        let direct = s3_body(KEY);
        let want = Notice::Objects(vec![object(KEY, Some("eu-west-1"), Some(1234))]);
        assert_eq!(parse(&direct), want);
        let sns =
            serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:1:t",
            "Message": direct})
            .to_string();
        assert_eq!(parse(&sns), want);
        let eventbridge = serde_json::json!({"version": "0", "detail-type": "Object Created",
            "source": "aws.s3", "region": "eu-west-1",
            "detail": {"bucket": {"name": "logs"}, "object": {"key": KEY, "size": 1234}}})
        .to_string();
        assert_eq!(parse(&eventbridge), want);
        let cloudtrail = serde_json::json!({"s3Bucket": "logs", "s3ObjectKey": [KEY, "k2"]});
        assert_eq!(
            parse(&cloudtrail.to_string()),
            Notice::Objects(vec![object(KEY, None, None), object("k2", None, None)])
        );
        let cloudtrail_sns = serde_json::json!({"Type": "Notification",
            "Message": cloudtrail.to_string()})
        .to_string();
        assert_eq!(
            parse(&cloudtrail_sns),
            Notice::Objects(vec![object(KEY, None, None), object("k2", None, None)])
        );
    }

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        let encoded = "my+logs/AWSLogs/a%20b%2Bc.json.gz";
        assert_eq!(
            parse(&s3_body(encoded)),
            Notice::Objects(vec![object(
                "my logs/AWSLogs/a b+c.json.gz",
                Some("eu-west-1"),
                Some(1234)
            )])
        );
    }

    #[test]
    fn tests_deletions_and_strangers_are_told_apart() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"logs"}"#;
        assert_eq!(parse(test), Notice::Test);
        let wrapped = serde_json::json!({"Type": "Notification", "Message": test}).to_string();
        assert_eq!(parse(&wrapped), Notice::Test);
        let deleted = s3_body(KEY).replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(parse(&deleted), Notice::Objects(Vec::new()));
        assert!(matches!(parse("not json"), Notice::Unknown(r) if r.starts_with("not JSON")));
        assert!(matches!(parse(r#"{"hello": 1}"#), Notice::Unknown(_)));
        let twice = serde_json::json!({"Type": "Notification", "Message":
            serde_json::json!({"Type": "Notification", "Message": "{}"}).to_string()})
        .to_string();
        assert!(matches!(parse(&twice), Notice::Unknown(r) if r.contains("inside")));
    }
}
