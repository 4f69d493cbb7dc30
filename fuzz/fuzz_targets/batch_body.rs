//! cargo-fuzz target: `hubgate_core::fuzzing::batch_body` (the invariants are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubgate_core::fuzzing::batch_body(data));
