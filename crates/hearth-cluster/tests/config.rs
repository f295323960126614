//! The cluster file: what a node needs, defaults, and every problem named
//! as `<file>: <field>: <what is wrong>`.

use std::path::Path;

use hearth_cluster::config::DEFAULT_LEASE_MS;
use hearth_cluster::config::DEFAULT_NATS_ACK_WAIT_MS;
use hearth_cluster::{ClusterConfig, KvBackend, QueuesBackend, R2Backend, RateLimitBackend};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn parse(text: &str) -> Result<ClusterConfig, String> {
    ClusterConfig::parse(Path::new("/etc/hearth/cluster.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn a_complete_file_with_defaults() {
    let c = parse(&format!(
        r#"
node_id = "node-1"
advertise = "10.0.0.5:7800"
secret = "{SECRET}"
[postgres]
url = "postgres://hearth@db:5432/hearth"
[redis]
url = "redis://cache:6379"
"#
    ))
    .unwrap();
    assert_eq!(c.node_id, "node-1");
    assert_eq!(
        c.listen, c.advertise,
        "listen defaults to the advertised address"
    );
    assert_eq!(c.postgres.as_ref().unwrap().schema, "hearth");
    assert_eq!(c.redis.as_ref().unwrap().prefix, "hearth");
    assert_eq!(c.backends.kv, KvBackend::Postgres, "KV follows [postgres]");
    assert_eq!(
        c.backends.ratelimits,
        RateLimitBackend::Redis,
        "rate limits follow [redis]"
    );
    assert_eq!(c.durable_objects.lease_ms, DEFAULT_LEASE_MS);
    assert_eq!(
        c.durable_objects.snapshot_after_bytes,
        hearth_cluster::do_log::DEFAULT_SNAPSHOT_AFTER_BYTES
    );
}

#[test]
fn a_shared_object_directory_is_refused_now_that_commits_are_shipped() {
    let e = parse(&format!(
        r#"
node_id = "n"
advertise = "127.0.0.1:7800"
secret = "{SECRET}"
[postgres]
url = "postgres://db/x"
[durable_objects]
storage = "shared"
snapshot_after_bytes = 100
"#
    ))
    .unwrap_err();
    assert!(
        e.contains("/etc/hearth/cluster.toml: durable_objects.storage: no longer used"),
        "{e}"
    );
    assert!(
        e.contains("durable_objects.snapshot_after_bytes: 100 is out of range"),
        "{e}"
    );
}

#[test]
fn backends_can_be_chosen_per_binding() {
    let c = parse(&format!(
        r#"
node_id = "n"
advertise = "127.0.0.1:7800"
listen = "0.0.0.0:7800"
secret = "{SECRET}"
[postgres]
url = "postgres://db/x"
schema = "tenant_a"
[backends]
kv = "embedded"
ratelimits = "memory"
"#
    ))
    .unwrap();
    assert_eq!(c.backends.kv, KvBackend::Embedded);
    assert_eq!(c.backends.ratelimits, RateLimitBackend::Memory);
    assert_eq!(c.listen.to_string(), "0.0.0.0:7800");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = parse(
        r#"
node_id = "has space"
advertise = "nowhere"
secret = "short"
[postgres]
url = "mysql://db"
schema = "Bad-Schema"
[backends]
kv = "etcd"
ratelimits = "redis"
[durable_objects]
lease_ms = 10
"#,
    )
    .unwrap_err();
    let f = "/etc/hearth/cluster.toml";
    for expected in [
        format!("{f}: node_id: \"has space\" is not a node name"),
        format!("{f}: advertise: \"nowhere\" is not an IP address with a port"),
        format!("{f}: secret: 5 bytes is too short; use at least 32"),
        format!("{f}: postgres.url: \"mysql://db\" is not a postgres:// URL"),
        format!("{f}: postgres.schema: \"Bad-Schema\" is not a schema name"),
        format!("{f}: backends.kv: \"etcd\" is not a KV backend"),
        format!("{f}: backends.ratelimits: \"redis\" needs a [redis] section with its url"),
        format!("{f}: durable_objects.lease_ms: 10 is out of range"),
    ] {
        assert!(e.contains(&expected), "missing {expected:?} in:\n{e}");
    }
}

#[test]
fn unknown_fields_are_errors() {
    let e = parse(&format!(
        "node_id = \"n\"\nadvertise = \"127.0.0.1:1\"\nsecret = \"{SECRET}\"\nbackend = \"x\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("unknown field `backend`"), "{e}");
}

#[test]
fn the_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("node.secret"), format!("{SECRET}\n")).unwrap();
    let c = ClusterConfig::parse(
        &dir.path().join("cluster.toml"),
        "node_id = \"n\"\nadvertise = \"127.0.0.1:7800\"\nsecret_file = \"node.secret\"\n[postgres]\nurl = \"postgres://db/x\"\n",
    )
    .unwrap();
    assert_eq!(c.secret, SECRET.as_bytes(), "trailing newline dropped");
    let e = ClusterConfig::parse(
        &dir.path().join("cluster.toml"),
        "node_id = \"n\"\nadvertise = \"127.0.0.1:7800\"\nsecret_file = \"missing\"\n[postgres]\nurl = \"postgres://db/x\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("secret_file: cannot read"), "{e}");
}

#[test]
fn queues_follow_nats_and_can_stay_embedded() {
    let base = format!(
        "node_id = \"n\"\nadvertise = \"127.0.0.1:7800\"\nsecret = \"{SECRET}\"\n[postgres]\nurl = \"postgres://db/x\"\n"
    );
    let c = parse(&base).unwrap();
    assert_eq!(c.backends.queues, QueuesBackend::Embedded, "no [nats]");
    assert!(c.nats.is_none());
    let c = parse(&format!("{base}[nats]\nurl = \"nats://mq:4222\"\n")).unwrap();
    assert_eq!(
        c.backends.queues,
        QueuesBackend::JetStream,
        "follows [nats]"
    );
    let nats = c.nats.unwrap();
    assert_eq!(nats.prefix, "hearth");
    assert_eq!(nats.ack_wait_ms, DEFAULT_NATS_ACK_WAIT_MS);
    assert_eq!(nats.replicas, 1);
    let c = parse(&format!(
        "{base}[nats]\nurl = \"nats://mq:4222\"\nprefix = \"team_a\"\nack_wait_ms = 5000\n[backends]\nqueues = \"embedded\"\n"
    ))
    .unwrap();
    assert_eq!(c.backends.queues, QueuesBackend::Embedded);
    assert_eq!(c.nats.unwrap().ack_wait_ms, 5000);
}

#[test]
fn bad_queue_backends_are_named() {
    let base = format!(
        "node_id = \"n\"\nadvertise = \"127.0.0.1:7800\"\nsecret = \"{SECRET}\"\n[postgres]\nurl = \"postgres://db/x\"\n"
    );
    let f = "/etc/hearth/cluster.toml";
    let e = parse(&format!("{base}[backends]\nqueues = \"kafka\"\n")).unwrap_err();
    assert!(
        e.contains(&format!(
            "{f}: backends.queues: \"kafka\" is not a Queues backend: use \"jetstream\" or \"embedded\""
        )),
        "{e}"
    );
    let e = parse(&format!("{base}[backends]\nqueues = \"jetstream\"\n")).unwrap_err();
    assert!(
        e.contains(&format!(
            "{f}: backends.queues: \"jetstream\" needs a [nats] section with its url"
        )),
        "{e}"
    );
    let e = parse(&format!(
        "{base}[nats]\nurl = \"http://mq\"\nprefix = \"a.b\"\nack_wait_ms = 10\nreplicas = 7\n"
    ))
    .unwrap_err();
    for expected in [
        format!("{f}: nats.url: \"http://mq\" is not a nats:// URL"),
        format!("{f}: nats.prefix: \"a.b\" is not a prefix"),
        format!("{f}: nats.ack_wait_ms: 10 is out of range"),
        format!("{f}: nats.replicas: 7 is out of range"),
    ] {
        assert!(e.contains(&expected), "missing {expected:?} in {e}");
    }
    let e = parse(&format!(
        "{base}[nats]\nurl = \"nats://mq\"\nstream = \"x\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("unknown field `stream`"), "{e}");
}

#[test]
fn r2_follows_s3_and_its_keys_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s3.secret"), "wJalrXUtnFEMI\n").unwrap();
    let base = format!(
        "node_id = \"n\"\nadvertise = \"127.0.0.1:7800\"\nsecret = \"{SECRET}\"\n[postgres]\nurl = \"postgres://db/x\"\n"
    );
    let c = ClusterConfig::parse(
        &dir.path().join("cluster.toml"),
        &format!(
            "{base}[s3]\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"hearth-data\"\naccess_key_id = \"AKIA1\"\nsecret_access_key_file = \"s3.secret\"\nprefix = \"prod/\"\n"
        ),
    )
    .unwrap();
    assert_eq!(c.backends.r2, R2Backend::S3, "R2 follows [s3]");
    let s3 = c.s3.as_ref().unwrap();
    assert_eq!(
        s3.secret_access_key, "wJalrXUtnFEMI",
        "trailing newline dropped"
    );
    assert_eq!(s3.region, "us-east-1");
    assert_eq!(s3.prefix, "prod/");
    assert!(
        !format!("{c:?}").contains("wJalrXUtnFEMI"),
        "the secret key is not printed"
    );

    let c = parse(&format!("{base}[backends]\nr2 = \"embedded\"\n")).unwrap();
    assert_eq!(c.backends.r2, R2Backend::Embedded);
    assert!(c.s3.is_none());
}

#[test]
fn s3_problems_are_named() {
    let base = format!(
        "node_id = \"n\"\nadvertise = \"127.0.0.1:7800\"\nsecret = \"{SECRET}\"\n[postgres]\nurl = \"postgres://db/x\"\n"
    );
    let e = parse(&format!("{base}[backends]\nr2 = \"s3\"\n")).unwrap_err();
    let f = "/etc/hearth/cluster.toml";
    assert!(
        e.contains(&format!("{f}: backends.r2: \"s3\" needs an [s3] section")),
        "{e}"
    );
    let e = parse(&format!("{base}[backends]\nr2 = \"gcs\"\n")).unwrap_err();
    assert!(
        e.contains("backends.r2: \"gcs\" is not an R2 backend"),
        "{e}"
    );
    let e = parse(&format!(
        "{base}[s3]\nendpoint = \"ftp://x\"\nbucket = \"No_Such\"\naccess_key_id = \"a\"\naccess_key_id_file = \"b\"\nprefix = \"/abs\"\n"
    ))
    .unwrap_err();
    for expected in [
        format!("{f}: s3.endpoint: \"ftp://x\" is not an http:// or https:// URL"),
        format!("{f}: s3.bucket: \"No_Such\" is not an S3 bucket name"),
        format!("{f}: s3.access_key_id: give either access_key_id or access_key_id_file, not both"),
        format!("{f}: s3.secret_access_key: missing"),
        format!("{f}: s3.prefix: \"/abs\" must be empty or a path ending in '/'"),
    ] {
        assert!(e.contains(&expected), "missing {expected:?} in:\n{e}");
    }
}
