//! Micro-benchmarks of the scan pipeline's stages: gunzip, splitting and
//! checking records, parsing a record, and the rules over it.
//!
//!     cargo bench --bench pipeline
//!
//! Records: the background day `make bench` generates (bench/background-*.jsonl)
//! when it is there, else every record of ../shared/datasets (TRAILWATCH_DATASETS),
//! repeated to about 8 MB.

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailwatch::decode::RecordReader;
use trailwatch::event::Record;
use trailwatch::rules::load_rule_set;

const TARGET_BYTES: usize = 8 << 20;

fn datasets() -> PathBuf {
    if let Ok(dir) = std::env::var("TRAILWATCH_DATASETS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets")
}

/// Every JSON object with an `eventName` found in `value`.
fn collect_records(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if map.contains_key("eventName") => {
            out.push(value.to_string())
        }
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_records(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_records(v, out)),
        _ => {}
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                if let Ok(v) = serde_json::from_str(&text) {
                    collect_records(&v, out);
                }
            }
            Some("jsonl") => {
                for line in text.lines() {
                    if let Ok(v) = serde_json::from_str(line) {
                        collect_records(&v, out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn records() -> Vec<String> {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let background = std::fs::read_dir(&bench).ok().and_then(|entries| {
        entries.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("background-") && n.ends_with(".jsonl"))
        })
    });
    let mut out = Vec::new();
    if let Some(path) = background
        && let Ok(file) = std::fs::File::open(&path)
    {
        use std::io::BufRead;
        let mut bytes = 0;
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            bytes += line.len();
            out.push(line);
            if bytes >= TARGET_BYTES {
                break;
            }
        }
    } else {
        walk(&datasets(), &mut out);
    }
    assert!(!out.is_empty(), "no records found");
    let mut all = out.clone();
    while all.iter().map(String::len).sum::<usize>() < TARGET_BYTES {
        all.extend(out.iter().cloned());
    }
    all
}

fn stages(c: &mut Criterion) {
    let records = records();
    let envelope = format!("{{\"Records\":[{}]}}", records.join(","));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(envelope.as_bytes()).expect("gzip into memory");
    let gz = gz.finish().expect("gzip into memory");
    let (rules, errors) = load_rule_set(true, &[datasets().join("sigma-cloudtrail")]);
    assert!(errors.is_empty(), "{errors:?}");

    let mut group = c.benchmark_group("stage");
    group.throughput(Throughput::Bytes(envelope.len() as u64));
    group.sample_size(20);
    group.bench_function("gunzip_whole", |b| {
        b.iter(|| black_box(trailwatch::decode::inflate_whole(&gz).expect("inflates")))
    });
    group.bench_function("gunzip_streaming", |b| {
        let mut out = Vec::with_capacity(envelope.len());
        b.iter(|| {
            out.clear();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut out)
                .expect("gunzip");
            black_box(out.len())
        })
    });
    group.bench_function("split_and_check_plain", |b| {
        b.iter(|| {
            let mut reader = RecordReader::new(envelope.as_bytes(), u64::MAX).expect("reader");
            let mut n = 0;
            while let Ok(Some(record)) = reader.next_record() {
                n += usize::from(record.event_name().is_some());
            }
            black_box(n)
        })
    });
    group.bench_function("gunzip_split_and_check", |b| {
        b.iter(|| {
            let mut reader = RecordReader::new(&gz[..], u64::MAX).expect("reader");
            let mut n = 0;
            while let Ok(Some(record)) = reader.next_record() {
                n += usize::from(record.event_name().is_some());
            }
            black_box(n)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(20);
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut n = 0;
            for text in &records {
                let record = Record::parse(text).expect("record");
                n += usize::from(record.event_name().is_some());
            }
            black_box(n)
        })
    });
    group.bench_function("parse_and_match", |b| {
        let mut scratch = Vec::new();
        b.iter(|| {
            let mut n = 0;
            for text in &records {
                let record = Record::parse(text).expect("record");
                rules.for_each_match(&record, &mut scratch, |_| n += 1);
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
