//! Invariants of the decoder, checked on arbitrary input by the fuzz target
//! (`fuzz/fuzz_targets/decode.rs`) and by the regression tests that keep every
//! input the fuzzer once failed on (`tests/fuzz_regressions.rs`).

use std::io::Write;

use super::RecordReader;

/// Cap used when checking: small, so that the cap path is exercised too.
const CAP: u64 = 1 << 20;

/// Decodes `data` and panics if an invariant does not hold:
/// - decoding never panics, and stops at the first error;
/// - an error's offset lies within the bytes read;
/// - a plain JSON `{"Records": [objects]}` envelope or array of objects that
///   serde_json accepts is decoded to the same number of records, without error;
/// - the gzip of plain input decodes to the same records and the same outcome.
pub fn check_decoder(data: &[u8]) {
    let plain = decode(data);
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    if let Some(expected) = reference_count(data)
        && data.len() as u64 <= CAP
    {
        assert_eq!(
            plain,
            Outcome {
                records: expected,
                error: None
            },
            "a valid document decodes to every record"
        );
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip into a Vec");
    let gz = enc.finish().expect("gzip into a Vec");
    assert_eq!(decode(&gz), plain, "gzip changes nothing");
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    records: usize,
    error: Option<u64>,
}

fn decode(data: &[u8]) -> Outcome {
    let mut reader = match RecordReader::new(data, CAP) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                records: 0,
                error: Some(e.offset()),
            };
        }
    };
    let mut records = 0;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                records += 1;
                // Touch the accessors the rule engine and alerts use.
                let _ = (record.event_name(), record.principal(), record.account_id());
                let mut out = Vec::new();
                record.values_at("requestParameters.items.name", &mut out);
            }
            Ok(None) => {
                return Outcome {
                    records,
                    error: None,
                };
            }
            Err(e) => {
                let read = reader.decompressed_bytes();
                assert!(e.offset() <= read + 1, "offset {} past {} bytes read", e.offset(), read);
                assert!(
                    matches!(reader.next_record(), Ok(None)),
                    "decoding stops after an error"
                );
                return Outcome {
                    records,
                    error: Some(e.offset()),
                };
            }
        }
    }
}

/// The record count serde_json sees, for the two shapes it can judge alone.
fn reference_count(data: &[u8]) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    let items = match &value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) if map.len() == 1 => map.get("Records")?.as_array()?,
        _ => return None,
    };
    items.iter().all(|i| i.is_object()).then_some(items.len())
}
