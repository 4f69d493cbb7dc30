//! cargo-fuzz target: `hubgate_core::fuzzing::sas_parse_verify` (the invariants are documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubgate_core::fuzzing::sas_parse_verify(data));
