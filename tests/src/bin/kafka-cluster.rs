//! Starts the Apache Kafka cluster a test run shares (scripts/test): `kafka-cluster [nodes]`
//! (default 3) prints `<bootstrap> <data dir>` on one line once every node listens, and
//! stops the cluster when its standard input closes (the script that started it ended).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test tool: a panic is a failed start

use std::io::{Read, Write};

fn main() {
    let nodes = std::env::args()
        .nth(1)
        .map_or(3, |n| n.parse().expect("kafka-cluster [nodes]"));
    let cluster = hubgate_tests::KafkaCluster::start(nodes);
    let mut out = std::io::stdout();
    writeln!(
        out,
        "{} {}",
        cluster.bootstrap(),
        cluster.data_dir().display()
    )
    .unwrap();
    out.flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(cluster);
}
