//! Fuzzes the streaming decoder: gzip detection, the record scanner, record
//! parsing and field access. The invariants live in the library
//! (`trailwatch::decode::check_decoder`) so that `tests/fuzz_regressions.rs`
//! replays every input kept in `fuzz/regressions/decode/` under `make test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    trailwatch::decode::check_decoder(data);
});
