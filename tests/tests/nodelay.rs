//! TCP_NODELAY on the Kafka connections, checked from outside hubgate's code. Its own test
//! binary (process): the check reads every socket of the process, and another test's Kafka
//! handle would sweep this test's sockets too.
#![allow(clippy::unwrap_used)]

use hubgate_tests::{
    KafkaCluster, SharedKafka, kafka_with as kafka, text_record as record, unique,
};

/// Every TCP connection from this process to the brokers of `bootstrap`, and whether it has
/// TCP_NODELAY. Checked independently of hubgate's sweep (same kernel interface, separate
/// code).
#[cfg(target_os = "linux")]
fn broker_connections_nodelay(bootstrap: &str) -> Vec<bool> {
    use rustix::net::{SocketAddrAny, getpeername, sockopt};
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
    let ports: Vec<u16> = bootstrap
        .split(',')
        .map(|s| s.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse() else {
            continue;
        };
        let Ok(dup) = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let peer = getpeername(&dup).ok().flatten();
        let to_broker = peer
            .and_then(|p: SocketAddrAny| std::net::SocketAddr::try_from(p).ok())
            .is_some_and(|a| ports.contains(&a.port()) && a.ip().is_loopback());
        if to_broker {
            out.push(sockopt::tcp_nodelay(&dup).unwrap());
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kafka_connections_get_tcp_nodelay_ok() {
    let bootstrap = SharedKafka::get().bootstrap();
    let k = kafka(&bootstrap, |_| {});
    let topic = &unique("nd");
    k.create_topic(topic, 1, 1, &[]).await.unwrap();
    k.produce(topic, 0, vec![record("x")]).await.unwrap();
    let conns = broker_connections_nodelay(&bootstrap);
    assert!(!conns.is_empty(), "no connection to the broker found");
    assert!(conns.iter().all(|nd| *nd), "{conns:?}");

    // Without the setting, rskafka's connections keep Nagle on: the sweep is what sets it.
    // (Dropping `k` ends its background sweeper, which would touch every socket.)
    drop(k);
    // A broker of its own: `k`'s connections may outlive it for a moment.
    let broker2 = KafkaCluster::start(1);
    let plain = kafka(&broker2.bootstrap(), |c| c.tcp_nodelay = false);
    plain.create_topic("nd", 1, 1, &[]).await.unwrap();
    plain.produce("nd", 0, vec![record("x")]).await.unwrap();
    let conns = broker_connections_nodelay(&broker2.bootstrap());
    assert!(!conns.is_empty());
    assert!(conns.iter().all(|nd| !*nd), "{conns:?}");
}
