//! Starts the Apache Kafka cluster a test run shares (scripts/test): `kafka-cluster [nodes]`
//! (default 3) prints `<bootstrap> <data dir>` on one line once every node listens, and
//! stops the cluster when its standard input closes (the script that started it ended).
//! `kafka-cluster <nodes> --secured` starts one whose clients connect over SASL_SSL
//! (SCRAM-SHA-512, a private CA) and prints `<bootstrap> <data dir> <config file>`: the
//! values of `HUBGATE_TEST_KAFKA_BOOTSTRAP`, `_DIR` and `_CONFIG` to run the shared tests
//! as against a secured cluster (MSK, Confluent).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test tool: a panic is a failed start

use std::io::{Read, Write};

fn main() {
    let nodes = std::env::args()
        .nth(1)
        .map_or(3, |n| n.parse().expect("kafka-cluster [nodes]"));
    let mut out = std::io::stdout();
    let secured = std::env::args().nth(2).is_some_and(|a| a == "--secured");
    let cluster = if secured {
        let s = hubgate_tests::SecuredCluster::start(nodes);
        writeln!(
            out,
            "{} {} {}",
            s.bootstrap(),
            s.cluster.data_dir().display(),
            s.config_file.display()
        )
        .unwrap();
        s.cluster
    } else {
        let c = hubgate_tests::KafkaCluster::start(nodes);
        writeln!(out, "{} {}", c.bootstrap(), c.data_dir().display()).unwrap();
        c
    };
    out.flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(cluster);
}
