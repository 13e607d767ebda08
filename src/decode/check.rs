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
                assert!(
                    e.offset() <= read + 1,
                    "offset {} past {} bytes read",
                    e.offset(),
                    read
                );
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

/// The record count serde_json sees, for the two shapes it can judge alone:
/// an array of objects, or an object whose first member is `Records`, where
/// every `Records` member (a repeated name included) is an array of objects.
fn reference_count(data: &[u8]) -> Option<usize> {
    let top: Top = serde_json::from_slice(data).ok()?;
    let mut total = 0;
    match top {
        Top::Array(items) => {
            return items.iter().all(|i| i.is_object()).then_some(items.len());
        }
        Top::Members(members) => {
            if members.first().map(|(k, _)| k.as_str()) != Some("Records") {
                return None;
            }
            for (key, value) in members {
                if key == "Records" {
                    let items = value.as_array()?;
                    if !items.iter().all(|i| i.is_object()) {
                        return None;
                    }
                    total += items.len();
                }
            }
        }
    }
    Some(total)
}

/// A top-level document with its object members kept in order, duplicates included.
enum Top {
    Array(Vec<serde_json::Value>),
    Members(Vec<(String, serde_json::Value)>),
}

impl<'de> serde::Deserialize<'de> for Top {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object or an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Top::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Top::Members(members))
            }
        }
        d.deserialize_any(V)
    }
}
