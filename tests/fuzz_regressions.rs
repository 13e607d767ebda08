//! Every input the decoder fuzzer once failed on (fuzz/regressions/decode/),
//! replayed through the same invariants as the fuzz target.

use std::path::Path;

#[test]
fn decoder_fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/decode");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    inputs.sort();
    for input in inputs {
        let data = std::fs::read(&input).expect("read input");
        let result = std::panic::catch_unwind(|| trailwatch::decode::check_decoder(&data));
        assert!(
            result.is_ok(),
            "regression input {} fails again",
            input.display()
        );
    }
}

/// Hand-written edge cases of the same invariants: structure split across
/// the reader's buffer boundary, escapes, empty and odd documents.
#[test]
fn decoder_edge_cases() {
    let long = "x".repeat(128 * 1024 - 20);
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"   ".to_vec(),
        b"{}".to_vec(),
        b"[]".to_vec(),
        b"{\"Records\":[]}".to_vec(),
        b"{\"Records\":[{}]}".to_vec(),
        b"[{\"a\":\"\\\"]}\"}]".to_vec(),
        b"{\"Records\":[{\"a\":1}] , \"b\": [1,{\"c\":\"]\"}]}".to_vec(),
        b"{\"Records\":[1]}".to_vec(),
        b"{\"Records\":{}}".to_vec(),
        b"{\"Records\"".to_vec(),
        b"\x1f".to_vec(),
        b"\x1f\x8b".to_vec(),
        format!("{{\"Records\":[{{\"eventID\":\"{long}\\\"q\"}},{{\"eventID\":\"b\"}}]}}")
            .into_bytes(),
    ];
    for case in cases {
        let result = std::panic::catch_unwind(|| trailwatch::decode::check_decoder(&case));
        assert!(
            result.is_ok(),
            "edge case {:?} fails",
            String::from_utf8_lossy(&case[..case.len().min(80)])
        );
    }
}
