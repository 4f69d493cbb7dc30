//! cargo-fuzz target: `kafka_proxy::fuzzing::batch_body` (the invariants are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kafka_proxy::fuzzing::batch_body(data));
