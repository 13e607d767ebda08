use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("write to Vec");
    enc.finish().expect("finish gzip")
}

/// Reads every record's eventID, and the error that stopped decoding.
fn decode(input: &[u8], cap: u64) -> (Vec<String>, Option<DecodeError>) {
    let mut ids = Vec::new();
    let mut reader = match RecordReader::new(input, cap) {
        Ok(r) => r,
        Err(e) => return (ids, Some(e)),
    };
    loop {
        match reader.next_record() {
            Ok(Some(record)) => ids.push(record.event_id().unwrap_or("?").to_owned()),
            Ok(None) => return (ids, None),
            Err(e) => return (ids, Some(e)),
        }
    }
}

const ENVELOPE: &[u8] = br#"{"Records":[{"eventID":"a","x":{"y":[1,"]}"]}},
  {"eventID":"b","s":"q\"uote\\"} , {"eventID":"c"}]}"#;

#[test]
fn envelope_plain_and_gzip() {
    let (ids, err) = decode(ENVELOPE, u64::MAX);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(ids, ["a", "b", "c"]);
    let (ids, err) = decode(&gzip(ENVELOPE), u64::MAX);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn multi_member_gzip_yields_every_member() {
    let mut data = gzip(br#"{"Records":[{"eventID":"a"}]}"#);
    data.extend(gzip(br#"{"Records":[{"eventID":"b"},{"eventID":"c"}]}"#));
    let (ids, err) = decode(&data, u64::MAX);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn array_and_json_lines_and_single_record() {
    let (ids, _) = decode(br#"[{"eventID":"a"},{"eventID":"b"}]"#, u64::MAX);
    assert_eq!(ids, ["a", "b"]);
    let (ids, _) = decode(b"{\"eventID\":\"a\"}\n{\"eventID\":\"b\"}\n", u64::MAX);
    assert_eq!(ids, ["a", "b"]);
    let (ids, err) = decode(b"  {\"eventID\": \"only\", \"Records2\": 1}  ", u64::MAX);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(ids, ["only"]);
    let (ids, err) = decode(b"", u64::MAX);
    assert!(ids.is_empty() && err.is_none());
    let (ids, err) = decode(br#"{"Records":[]}"#, u64::MAX);
    assert!(ids.is_empty() && err.is_none(), "{err:?}");
}

#[test]
fn a_repeated_records_member_is_read_too() {
    let (ids, err) = decode(
        br#"{"Records":[{"eventID":"a"}], "x": 1, "Records": [{"eventID":"b"}]}"#,
        u64::MAX,
    );
    assert!(err.is_none(), "{err:?}");
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn members_after_records_are_skipped() {
    let (ids, err) = decode(
        br#"{"Records":[{"eventID":"a"}], "extra": {"Records": [{"eventID":"no"}]}}"#,
        u64::MAX,
    );
    assert!(err.is_none(), "{err:?}");
    assert_eq!(ids, ["a"]);
}

#[test]
fn malformed_json_names_the_offset_and_keeps_earlier_records() {
    let input = br#"{"Records":[{"eventID":"a"},{"eventID":"b",,}]}"#;
    let (ids, err) = decode(input, u64::MAX);
    assert_eq!(ids, ["a"]);
    let err = err.expect("malformed record is an error");
    let at = input.windows(2).position(|w| w == b",,").expect("fixture") as u64 + 1;
    assert_eq!(err.offset(), at, "{err}");
    assert!(err.to_string().contains("malformed JSON"), "{err}");
}

#[test]
fn truncated_plain_json_is_an_error() {
    let (ids, err) = decode(br#"{"Records":[{"eventID":"a"},{"eventID":"b""#, u64::MAX);
    assert_eq!(ids, ["a"]);
    assert!(
        matches!(err, Some(DecodeError::Truncated { .. })),
        "{err:?}"
    );
}

#[test]
fn truncated_gzip_is_an_error_after_the_records_before_it() {
    let mut body = String::from("{\"Records\":[");
    for i in 0..2000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"eventID\":\"e{i}\",\"pad\":\"{}\"}}",
            i * 7919
        ));
    }
    body.push_str("]}");
    let data = gzip(body.as_bytes());
    let (ids, err) = decode(&data[..data.len() / 2], u64::MAX);
    assert!(!ids.is_empty() && ids.len() < 2000, "{} records", ids.len());
    assert_eq!(ids[0], "e0");
    let err = err.expect("a truncated gzip is an error");
    assert!(
        matches!(
            err,
            DecodeError::Gzip { .. } | DecodeError::Truncated { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn corrupt_gzip_names_the_compressed_offset() {
    let mut data = gzip(ENVELOPE);
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    data[mid + 1] ^= 0xff;
    let (_, err) = decode(&data, u64::MAX);
    match err {
        Some(DecodeError::Gzip {
            compressed_offset, ..
        }) => assert!(compressed_offset > 0),
        Some(DecodeError::Json { .. } | DecodeError::Truncated { .. }) => {}
        other => panic!("expected a gzip or JSON error, got {other:?}"),
    }
}

#[test]
fn the_cap_stops_a_gzip_bomb() {
    let zeros = vec![b' '; 10 * 1024 * 1024];
    let mut doc = b"{\"Records\":[".to_vec();
    doc.extend_from_slice(&zeros);
    doc.extend_from_slice(b"]}");
    let bomb = gzip(&doc);
    assert!(bomb.len() < 100 * 1024);
    let (_, err) = decode(&bomb, 1024 * 1024);
    assert!(
        matches!(err, Some(DecodeError::TooLarge { cap: 1048576, .. })),
        "{err:?}"
    );
    // Exactly at the cap passes.
    let (_, err) = decode(ENVELOPE, ENVELOPE.len() as u64);
    assert!(err.is_none(), "{err:?}");
    let (_, err) = decode(ENVELOPE, ENVELOPE.len() as u64 - 1);
    assert!(matches!(err, Some(DecodeError::TooLarge { .. })), "{err:?}");
}

#[test]
fn one_byte_reads_still_detect_gzip() {
    struct OneByte<'a>(&'a [u8]);
    impl std::io::Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let data = gzip(ENVELOPE);
    let mut reader = RecordReader::new(OneByte(&data), u64::MAX).expect("open");
    assert!(reader.is_gzip());
    let mut n = 0;
    while let Some(_record) = reader.next_record().expect("valid") {
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn digest_and_insight_keys_are_not_logs() {
    assert!(is_log_object(
        "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/111122223333_CloudTrail_us-east-1_20261121T1005Z_abc.json.gz"
    ));
    assert!(!is_log_object(
        "p/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21/x.json.gz"
    ));
    assert!(!is_log_object(
        "AWSLogs/o-abc/111122223333/CloudTrail-Insight/us-east-1/2026/11/21/x.json.gz"
    ));
}

#[test]
fn invalid_utf8_in_a_record_is_reported_where_it_is() {
    let mut data = br#"{"Records":[{"eventID":"a","ua":"caf"#.to_vec();
    data.extend_from_slice(&[0xc3, 0xa9]); // é: valid
    data.extend_from_slice(br#""},{"eventID":"b","ua":"x"#);
    let bad_at = data.len();
    data.push(0xff); // never valid in UTF-8
    data.extend_from_slice(br#""},{"eventID":"c"}]}"#);
    let (ids, err) = decode(&gzip(&data), u64::MAX);
    assert_eq!(ids, ["a"], "the record before the fault still comes out");
    match err {
        Some(DecodeError::Json { offset, reason }) => {
            assert_eq!(offset, bad_at as u64, "{reason}");
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// Every record's eventID, and the error that stopped decoding, by `open`.
fn decode_by(
    open: impl FnOnce() -> Result<RecordReader<'static>, DecodeError>,
) -> (Vec<String>, Option<String>) {
    let mut ids = Vec::new();
    let mut reader = match open() {
        Ok(r) => r,
        Err(e) => return (ids, Some(e.to_string())),
    };
    loop {
        match reader.next_record() {
            Ok(Some(record)) => ids.push(record.event_id().unwrap_or("?").to_owned()),
            Ok(None) => return (ids, None),
            Err(e) => return (ids, Some(e.to_string())),
        }
    }
}

#[test]
fn whole_object_inflate_reads_as_the_streaming_decoder_does() {
    // Records that cross the streaming decoder's 128 KiB buffers, with
    // escapes, in one envelope of about 600 KB.
    let mut json = b"{\"Records\":[".to_vec();
    for i in 0..2000 {
        if i > 0 {
            json.push(b',');
        }
        let pad = "x".repeat(i % 400);
        json.extend(
            format!(r#"{{"eventID":"e{i}","userAgent":"a\"b\\c {pad}","n":{i}}}"#).into_bytes(),
        );
    }
    json.extend_from_slice(b"]}");
    let one = gzip(&json);
    // The same text in two members, split inside a record.
    let mut two = gzip(&json[..json.len() / 3]);
    two.extend(gzip(&json[json.len() / 3..]));
    let mut cases: Vec<(String, Vec<u8>, u64)> = vec![
        ("one member".into(), one.clone(), u64::MAX),
        ("two members".into(), two.clone(), u64::MAX),
        ("cap exactly".into(), one.clone(), json.len() as u64),
        ("cap one short".into(), one.clone(), json.len() as u64 - 1),
        ("cap small".into(), two.clone(), 100_000),
    ];
    for at in [10, one.len() / 4, one.len() / 2, one.len() - 6] {
        let mut flipped = one.clone();
        flipped[at] ^= 0x20;
        cases.push((format!("flipped at {at}"), flipped, u64::MAX));
        cases.push((format!("cut at {at}"), one[..at].to_vec(), u64::MAX));
    }
    let mut trailing = two.clone();
    trailing.extend_from_slice(b"garbage");
    cases.push(("trailing garbage".into(), trailing, u64::MAX));
    let mut zeros = one.clone();
    zeros.extend_from_slice(&[0; 16]);
    cases.push(("trailing zeros".into(), zeros, u64::MAX));

    for (name, data, cap) in cases {
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let whole = decode_by(|| RecordReader::new(data, cap));
        let streamed = decode_by(|| RecordReader::streaming(data, cap));
        assert_eq!(whole.1, streamed.1, "{name}: the error");
        assert!(whole.0 == streamed.0, "{name}: the records differ");
        if name.starts_with("one") || name.starts_with("two") {
            assert_eq!((whole.0.len(), whole.1), (2000, None), "{name}");
        }
    }
}
