//! CloudTrail's S3 key layout, parsed and built:
//! `[<prefix>/]AWSLogs/[o-<org>/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/`
//! `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz`.
//! The time in the name is the delivery time; listing selects by it.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A key time as written in object names: `YYYYMMDDTHHMMZ` (sorts as time).
pub type KeyTime = String;

/// Formats an instant as a key time (minute precision, rounded down).
pub fn key_time(at: OffsetDateTime) -> KeyTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}Z",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// Parses `YYYYMMDDTHHMMZ`.
pub fn parse_key_time(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u32>().ok();
    let date = Date::from_calendar_date(
        num(0..4)? as i32,
        Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let time = Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, 0).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// The folder of one cursor: `<root><account>/CloudTrail/<region>/`, where
/// `root` is `[<prefix>/]AWSLogs/[o-<org>/]`.
pub fn cursor_folder(root: &str, account: &str, region: &str) -> String {
    format!("{root}{account}/CloudTrail/{region}/")
}

/// The day folder under a cursor folder.
pub fn day_folder(cursor_folder: &str, day: Date) -> String {
    format!(
        "{cursor_folder}{:04}/{:02}/{:02}/",
        day.year(),
        day.month() as u8,
        day.day()
    )
}

/// The `StartAfter` key that selects objects delivered at or after `from`
/// within its day folder: every name of that minute or later sorts after it.
pub fn start_after(
    cursor_folder: &str,
    account: &str,
    region: &str,
    from: OffsetDateTime,
) -> String {
    let day = day_folder(cursor_folder, from.date());
    let stamp = key_time(from);
    format!("{day}{account}_CloudTrail_{region}_{stamp}")
}

/// Every day from `from`'s date to `to`'s date, both included.
pub fn days(from: OffsetDateTime, to: OffsetDateTime) -> Vec<Date> {
    let mut out = Vec::new();
    let mut day = from.date();
    let last = to.date();
    while day <= last {
        out.push(day);
        match day.checked_add(Duration::days(1)) {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// The delivery time in a log object's name, if the name has CloudTrail's form.
pub fn object_key_time(key: &str) -> Option<KeyTime> {
    let name = key.rsplit('/').next()?;
    // <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz
    let mut parts = name.split('_');
    let _account = parts.next()?;
    if parts.next()? != "CloudTrail" {
        return None;
    }
    let _region = parts.next()?;
    let stamp = parts.next()?;
    parse_key_time(stamp).map(|_| stamp.to_owned())
}

/// Where a log object's key puts it, under `awslogs` (`[<prefix>/]AWSLogs/`):
/// (root, account, region), the root with its `o-<org>/` folder when the key
/// has one; None when the key is not a log object's below `awslogs`.
pub fn log_folder_of(key: &str, awslogs: &str) -> Option<(String, String, String)> {
    let rest = key.strip_prefix(awslogs)?;
    let (root, rest) = match rest.split_once('/') {
        Some((org, tail)) if classify_awslogs_child(org) == AwsLogsChild::Organization => {
            (format!("{awslogs}{org}/"), tail)
        }
        _ => (awslogs.to_owned(), rest),
    };
    let mut parts = rest.split('/');
    let account = parts.next()?;
    if classify_awslogs_child(account) != AwsLogsChild::Account || parts.next()? != "CloudTrail" {
        return None;
    }
    let region = parts.next()?;
    object_key_time(key)?;
    Some((root, account.to_owned(), region.to_owned()))
}

/// The account-root folders under `AWSLogs/`: `o-<org>/` children are roots of
/// their own (organisation trails); 12-digit names are accounts.
pub fn classify_awslogs_child(name: &str) -> AwsLogsChild {
    let name = name.trim_end_matches('/');
    if name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit()) {
        AwsLogsChild::Account
    } else if name.starts_with("o-") {
        AwsLogsChild::Organization
    } else {
        AwsLogsChild::Other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsLogsChild {
    Account,
    Organization,
    Other,
}

/// `[<prefix>/]AWSLogs/`.
pub fn awslogs_root(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) if !p.is_empty() => format!("{}/AWSLogs/", p.trim_matches('/')),
        _ => "AWSLogs/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_key_names_its_folder() {
        let name = "111122223333_CloudTrail_eu-west-1_20261206T0605Z_AbCd.json.gz";
        let key = format!("logs/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/06/{name}");
        assert_eq!(
            log_folder_of(&key, "logs/AWSLogs/"),
            Some((
                "logs/AWSLogs/".into(),
                "111122223333".into(),
                "eu-west-1".into()
            ))
        );
        let org = format!("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/12/06/{name}");
        assert_eq!(
            log_folder_of(&org, "AWSLogs/").map(|f| f.0),
            Some("AWSLogs/o-abc123/".into())
        );
        assert_eq!(log_folder_of(&key, "AWSLogs/"), None);
        let digest = key.replace("/CloudTrail/", "/CloudTrail-Digest/");
        assert_eq!(log_folder_of(&digest, "logs/AWSLogs/"), None);
        assert_eq!(
            log_folder_of(
                "logs/AWSLogs/111122223333/CloudTrail/eu-west-1/notes.txt",
                "logs/AWSLogs/"
            ),
            None
        );
    }

    #[test]
    fn key_times_round_trip_and_sort() {
        let t = datetime!(2026-11-21 09:05:59 UTC);
        assert_eq!(key_time(t), "20261121T0905Z");
        assert_eq!(
            parse_key_time("20261121T0905Z"),
            Some(datetime!(2026-11-21 09:05 UTC))
        );
        assert_eq!(parse_key_time("20261321T0905Z"), None);
        assert!(
            key_time(datetime!(2026-11-21 09:05 UTC)) < key_time(datetime!(2026-11-21 10:00 UTC))
        );
    }

    #[test]
    fn object_names() {
        let key = "org/AWSLogs/o-abc/111111111111/CloudTrail/eu-west-1/2026/11/21/\
                   111111111111_CloudTrail_eu-west-1_20261121T0905Z_AbCdEf0123456789.json.gz";
        assert_eq!(object_key_time(key).as_deref(), Some("20261121T0905Z"));
        assert_eq!(
            object_key_time("AWSLogs/1/CloudTrail-Digest/x/1_CloudTrail-Digest_x.json.gz"),
            None
        );
    }

    #[test]
    fn start_after_selects_the_minute_and_later() {
        let folder = cursor_folder("AWSLogs/", "111111111111", "us-east-1");
        let sa = start_after(
            &folder,
            "111111111111",
            "us-east-1",
            datetime!(2026-11-21 09:05 UTC),
        );
        let same_minute = format!(
            "{}111111111111_CloudTrail_us-east-1_20261121T0905Z_x.json.gz",
            day_folder(&folder, datetime!(2026-11-21 0:00 UTC).date())
        );
        let earlier = same_minute.replace("T0905Z", "T0904Z");
        assert!(same_minute.as_str() > sa.as_str());
        assert!(earlier.as_str() < sa.as_str());
    }

    #[test]
    fn days_cross_midnight() {
        let d = days(
            datetime!(2026-11-20 23:30 UTC),
            datetime!(2026-11-21 00:10 UTC),
        );
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn awslogs_children() {
        assert_eq!(
            classify_awslogs_child("111111111111/"),
            AwsLogsChild::Account
        );
        assert_eq!(
            classify_awslogs_child("o-exampleorg1/"),
            AwsLogsChild::Organization
        );
        assert_eq!(
            classify_awslogs_child("CloudTrail-Digest/"),
            AwsLogsChild::Other
        );
        assert_eq!(awslogs_root(Some("/org/")), "org/AWSLogs/");
        assert_eq!(awslogs_root(None), "AWSLogs/");
    }
}
