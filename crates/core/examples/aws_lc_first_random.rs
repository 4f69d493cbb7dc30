//! Prints how long aws-lc's first random-number request takes in this workspace's build
//! (see `.cargo/config.toml`: `AWS_LC_SYS_NO_JITTER_ENTROPY`). Not a test: a measurement.

#![allow(clippy::unwrap_used)] // a measurement tool: a panic is a clear failure

use std::time::Instant;

fn main() {
    let mut buf = [0u8; 32];
    let t = Instant::now();
    aws_lc_rs::rand::fill(&mut buf).unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    aws_lc_rs::rand::fill(&mut buf).unwrap();
    let second = t.elapsed();
    println!(
        "aws-lc first random fill: {:.3} ms (second: {:.3} ms)",
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3
    );
}
