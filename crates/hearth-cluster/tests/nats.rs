//! The node's NATS connection: a server that is not there, or a prefix
//! that cannot be part of a stream name, is refused at start with the
//! reason, so a node never runs with Queues it cannot reach.

use std::net::TcpListener;

use hearth_cluster::{Nats, NatsError};

#[test]
fn an_unreachable_server_is_named_at_start() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let e = Nats::connect(&url, "hearth").unwrap_err();
    assert!(matches!(e, NatsError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot connect to NATS at {url}: ")),
        "{e}"
    );
}

#[test]
fn a_prefix_that_cannot_name_a_stream_is_refused() {
    for prefix in ["", "a.b", "a b", "a*", "a>"] {
        let e = Nats::connect("nats://127.0.0.1:4222", prefix).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("NATS prefix {prefix:?} is not allowed: use a-z, A-Z, 0-9 and '_'")
        );
    }
}
