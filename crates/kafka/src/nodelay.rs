//! `TCP_NODELAY` for rskafka's broker connections, which rskafka 0.6 does not set.
//!
//! Why: rskafka writes a frame through an 8 KiB `BufStream`. A frame larger than the
//! buffer leaves as two writes: the 4-byte length, then the body. With Nagle's algorithm
//! on, the kernel holds the body (if it is shorter than one segment, 64 KiB on loopback)
//! until the length segment is acknowledged, and the broker delays that ACK by up to
//! 40 ms. So every produce request of about 8-64 KB took 40 ms instead of 1 ms.
//!
//! How: rskafka gives no access to its sockets, and the fix belongs upstream (set
//! `TCP_NODELAY` in `connection/transport.rs`, or write length and body in one go). Until
//! then, [`sweep`] walks this process's open file descriptors (`/proc/self/fd`), takes a
//! duplicate of each socket it has not seen with `pidfd_getfd(2)` (Linux 5.6+; safe code,
//! no raw descriptor is ever borrowed), and sets `TCP_NODELAY` on TCP sockets. A duplicate
//! shares the socket, so the option applies to rskafka's connection; closing the duplicate
//! leaves the connection open. Every other TCP connection of hubgate (HTTP server, reqwest,
//! the AWS SDK) wants `TCP_NODELAY` as well, so the sweep does not need to tell them apart.
//!
//! [`Kafka`](crate::Kafka) sweeps after it opens a client or a partition client, and a
//! background task sweeps once a second for connections rskafka re-opened on its own.
//! Where the system refuses (`pidfd_getfd` blocked by a seccomp profile, or not Linux),
//! the sweep logs one warning and hubgate works as before, 40 ms stalls included.

use parking_lot::Mutex;
use std::collections::HashSet;

/// Socket inodes already handled, so each sweep only touches new connections.
#[derive(Debug, Default)]
pub struct NoDelay {
    seen: Mutex<HashSet<u64>>,
    warned: std::sync::atomic::AtomicBool,
}

impl NoDelay {
    /// Sets `TCP_NODELAY` on every TCP socket of this process not seen before; returns how
    /// many it changed.
    pub fn sweep(&self) -> usize {
        match imp::sweep(&self.seen) {
            Ok(n) => n,
            Err(e) => {
                if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot set TCP_NODELAY on Kafka connections; produce requests of 8-64 KB may wait ~40 ms");
                }
                0
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use parking_lot::Mutex;
    use std::collections::HashSet;

    use rustix::net::sockopt;
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    pub(super) fn sweep(seen: &Mutex<HashSet<u64>>) -> std::io::Result<usize> {
        // Inodes of the sockets open now: `/proc/self/fd/N` links to `socket:[INODE]`.
        let mut new = Vec::new();
        {
            let seen = seen.lock();
            for entry in std::fs::read_dir("/proc/self/fd")? {
                let Ok(entry) = entry else { continue };
                let Ok(target) = std::fs::read_link(entry.path()) else {
                    continue; // closed meanwhile
                };
                let Some(inode) = socket_inode(&target.to_string_lossy()) else {
                    continue;
                };
                if seen.contains(&inode) {
                    continue;
                }
                if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                    new.push((fd, inode));
                }
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        let pidfd = pidfd_open(getpid(), PidfdFlags::empty())?;
        let mut changed = 0;
        let mut handled = Vec::with_capacity(new.len());
        for (fd, inode) in new {
            // Our own copy of the descriptor: if the number was closed (or reused) since
            // the listing, we act on whatever it is now, which is checked below.
            let dup = match pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) {
                Ok(dup) => dup,
                Err(rustix::io::Errno::BADF) => continue,
                Err(e) => return Err(e.into()),
            };
            // Listening sockets and UDP/Unix sockets answer with an error or need nothing.
            if sockopt::socket_type(&dup) != Ok(rustix::net::SocketType::STREAM) {
                handled.push(inode);
                continue;
            }
            match sockopt::tcp_nodelay(&dup) {
                Ok(true) => handled.push(inode),
                Ok(false) => {
                    if sockopt::set_tcp_nodelay(&dup, true).is_ok() {
                        changed += 1;
                    }
                    handled.push(inode);
                }
                // Not TCP (a Unix stream socket).
                Err(_) => handled.push(inode),
            }
        }
        seen.lock().extend(handled);
        Ok(changed)
    }

    fn socket_inode(link: &str) -> Option<u64> {
        link.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn socket_inode_parses_proc_links_ok() {
            assert_eq!(socket_inode("socket:[12345]"), Some(12345));
            assert_eq!(socket_inode("pipe:[12345]"), None);
            assert_eq!(socket_inode("/dev/null"), None);
            assert_eq!(socket_inode("socket:[x]"), None);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use parking_lot::Mutex;
    use std::collections::HashSet;

    pub(super) fn sweep(_seen: &Mutex<HashSet<u64>>) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "only implemented on Linux",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_sets_nodelay_on_a_plain_tcp_socket_ok() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        assert!(!client.nodelay().unwrap(), "sockets start with Nagle on");
        let nd = NoDelay::default();
        assert!(nd.sweep() >= 1);
        assert!(client.nodelay().unwrap());
        // Seen sockets are not touched again.
        client.set_nodelay(false).unwrap();
        nd.sweep();
        assert!(!client.nodelay().unwrap());
    }
}
