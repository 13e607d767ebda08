//! The background: a file of benign CloudTrail records (one per line, as
//! `scripts/benign_day.py` writes a day of an organisation's activity), cut
//! into the objects CloudTrail would have delivered (one per account, region
//! and delivery interval), ready to be replayed day after day.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use super::template::Template;
use crate::event::time::parse_rfc3339;

/// One object of the background period.
#[derive(Debug, Clone)]
pub struct PoolObject {
    pub account: String,
    pub region: String,
    /// Seconds from the start of the period to the end of the delivery
    /// interval (CloudTrail names an object by when it was delivered).
    pub delivered: i64,
    /// Indexes into [`Pool::templates`], in time order.
    pub records: Vec<u32>,
    /// Bytes of the object's records, separators included.
    pub bytes: u64,
}

/// The background records, as templates, and the objects they fall into.
#[derive(Debug)]
pub struct Pool {
    pub templates: Vec<Template>,
    /// Seconds from the start of the period (midnight UTC of the first
    /// record's day) to each record's time.
    pub offsets: Vec<i64>,
    /// Whole days the records span: a replay advances this much each time.
    pub period_days: i64,
    pub objects: Vec<PoolObject>,
}

/// A copy's fresh values are this long: UUIDs for both ids, a second-precision time.
pub const ID_LEN: usize = 36;
pub const TIME_LEN: usize = 20;

impl Pool {
    /// Reads `path` (JSON lines) and cuts it into objects of `interval`
    /// seconds. Errors name the file and line.
    pub fn load(path: &Path, interval: i64) -> Result<Pool, String> {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
        let mut templates = Vec::new();
        let mut times = Vec::new();
        let mut places = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let at = |reason: String| format!("{}:{}: {reason}", path.display(), n + 1);
            let line = line.map_err(|e| at(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| at(format!("not JSON: {e}")))?;
            let field = |name: &str| value.get(name).and_then(|v| v.as_str());
            let time = field("eventTime")
                .and_then(parse_rfc3339)
                .ok_or_else(|| at("no eventTime of the form YYYY-MM-DDTHH:MM:SSZ".into()))?;
            let account = field("recipientAccountId")
                .unwrap_or("123456789012")
                .to_owned();
            let region = field("awsRegion").unwrap_or("us-east-1").to_owned();
            templates.push(Template::new(value).map_err(at)?);
            times.push(time);
            places.push((account, region));
        }
        let Some(&first) = times.iter().min() else {
            return Err(format!("{}: no records", path.display()));
        };
        let start = first.div_euclid(86_400) * 86_400;
        let offsets: Vec<i64> = times.iter().map(|t| t - start).collect();
        let last = offsets.iter().copied().max().unwrap_or(0);
        let period_days = last / 86_400 + 1;

        // Objects: one per account, region and interval, in delivery order.
        let mut order: Vec<u32> = (0..templates.len() as u32).collect();
        order.sort_by_key(|&i| offsets[i as usize]);
        let mut grouped: BTreeMap<(i64, &str, &str), Vec<u32>> = BTreeMap::new();
        for i in order {
            let (account, region) = &places[i as usize];
            let slot = offsets[i as usize] / interval;
            grouped
                .entry((slot, account.as_str(), region.as_str()))
                .or_default()
                .push(i);
        }
        let objects = grouped
            .into_iter()
            .map(|((slot, account, region), records)| {
                let bytes = records
                    .iter()
                    .map(|&i| templates[i as usize].len_with(ID_LEN, TIME_LEN, ID_LEN) as u64 + 1)
                    .sum();
                PoolObject {
                    account: account.to_owned(),
                    region: region.to_owned(),
                    delivered: (slot + 1) * interval,
                    records,
                    bytes,
                }
            })
            .collect();
        Ok(Pool {
            templates,
            offsets,
            period_days,
            objects,
        })
    }

    /// Bytes of records in one period.
    pub fn period_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fall_into_objects_by_account_region_and_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("day.jsonl");
        let line = |t: &str, a: &str, r: &str| {
            format!(
                r#"{{"eventTime":"{t}","recipientAccountId":"{a}","awsRegion":"{r}","eventName":"X"}}"#
            )
        };
        let text = [
            line("2025-03-11T00:01:00Z", "111111111111", "us-east-1"),
            line("2025-03-11T00:04:59Z", "111111111111", "us-east-1"),
            line("2025-03-11T00:02:00Z", "222222222222", "us-east-1"),
            line("2025-03-11T00:06:00Z", "111111111111", "us-east-1"),
            String::new(),
        ]
        .join("\n");
        std::fs::write(&path, text).expect("write");
        let pool = Pool::load(&path, 300).expect("loads");
        assert_eq!(pool.period_days, 1);
        let shape: Vec<_> = pool
            .objects
            .iter()
            .map(|o| (o.account.as_str(), o.delivered, o.records.clone()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("111111111111", 300, vec![0, 1]),
                ("222222222222", 300, vec![2]),
                ("111111111111", 600, vec![3]),
            ]
        );

        std::fs::write(&path, "{\"eventTime\":\"2025-03-11T00:01:00Z\"}\n{oops\n").expect("write");
        let err = Pool::load(&path, 300).expect_err("line 2 is not JSON");
        assert!(err.contains("day.jsonl:2: not JSON"), "{err}");
    }
}
