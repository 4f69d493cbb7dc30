//! kafka-proxy
