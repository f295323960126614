//! The scenarios: which worker, which load, which data to write first, and
//! the exact bytes one request must return on every server.

use clap::ValueEnum;

/// The `compatibility_date` of every benchmark worker (each wrangler.toml
/// says the same; workerd and miniflare get it from here).
pub const COMPATIBILITY_DATE: &str = "2025-09-01";

/// Rows written into the D1 table before the D1 cases.
pub const D1_ROWS: u32 = 10_000;

/// Keys written into KV before the KV case, in batches of [`KV_SEED_BATCH`]
/// (one invocation stays far below the 1000-operation limit).
pub const KV_KEYS: u32 = 1_000;
pub const KV_SEED_BATCH: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum CaseId {
    Hello,
    JsonEcho,
    Kv,
    D1Select,
    D1Insert,
}

pub const ALL: [CaseId; 5] = [
    CaseId::Hello,
    CaseId::JsonEcho,
    CaseId::Kv,
    CaseId::D1Select,
    CaseId::D1Insert,
];

/// One request with the status and body every server must answer.
#[derive(Debug, Clone)]
pub struct Probe {
    pub method: &'static str,
    pub path: String,
    pub body: Option<(&'static str, Vec<u8>)>,
    pub expect_status: u16,
    /// `None` where only the status is checked (seeding).
    pub expect_body: Option<Vec<u8>>,
}

const ECHO_PROBE: &str = r#"{"a":[1,"two",{"b":null,"c":true}],"d":"x"}"#;

impl CaseId {
    pub fn title(self) -> &'static str {
        match self {
            Self::Hello => "Hello world (GET, 12-byte text)",
            Self::JsonEcho => "JSON echo (POST 10 KB, parse + serialize)",
            Self::Kv => "KV read-heavy (95% get / 5% put, 1000 keys, 100 B values)",
            Self::D1Select => "D1 point select (primary key, 10,000 rows)",
            Self::D1Insert => "D1 insert (one row per request)",
        }
    }

    /// The directory under `bench/workers/` holding the worker.
    pub fn worker(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::JsonEcho => "json-echo",
            Self::Kv => "kv",
            Self::D1Select | Self::D1Insert => "d1",
        }
    }

    /// The wrk script under `bench/wrk/`, if the case needs one.
    pub fn script(self) -> Option<&'static str> {
        match self {
            Self::Hello => None,
            Self::JsonEcho => Some("json-echo.lua"),
            Self::Kv => Some("kv-95-5.lua"),
            Self::D1Select => Some("d1-select.lua"),
            Self::D1Insert => Some("d1-insert.lua"),
        }
    }

    pub fn uses_kv(self) -> bool {
        self == Self::Kv
    }

    pub fn uses_d1(self) -> bool {
        matches!(self, Self::D1Select | Self::D1Insert)
    }

    /// Requests that write the case's data before the warm-up.
    pub fn seed(self) -> Vec<Probe> {
        let post = |path: String| Probe {
            method: "POST",
            path,
            body: Some(("text/plain", Vec::new())),
            expect_status: 200,
            expect_body: Some(b"ok".to_vec()),
        };
        match self {
            Self::Hello | Self::JsonEcho => Vec::new(),
            Self::Kv => (0..KV_KEYS)
                .step_by(KV_SEED_BATCH as usize)
                .map(|from| post(format!("/seed?from={from}&count={KV_SEED_BATCH}")))
                .collect(),
            Self::D1Select | Self::D1Insert => vec![post(format!("/seed?rows={D1_ROWS}"))],
        }
    }

    /// Requests whose answers must be the same bytes on every server.
    pub fn checks(self) -> Vec<Probe> {
        let get = |path: &str, body: Vec<u8>| Probe {
            method: "GET",
            path: path.to_owned(),
            body: None,
            expect_status: 200,
            expect_body: Some(body),
        };
        match self {
            Self::Hello => vec![get("/", b"Hello World!".to_vec())],
            Self::JsonEcho => vec![Probe {
                method: "POST",
                path: "/".to_owned(),
                body: Some(("application/json", ECHO_PROBE.as_bytes().to_vec())),
                expect_status: 200,
                expect_body: Some(ECHO_PROBE.as_bytes().to_vec()),
            }],
            Self::Kv => vec![
                get("/k/7", kv_seed_value()),
                Probe {
                    method: "PUT",
                    path: "/k/8".to_owned(),
                    body: Some(("text/plain", kv_seed_value())),
                    expect_status: 200,
                    expect_body: Some(b"ok".to_vec()),
                },
            ],
            Self::D1Select => vec![get("/select?id=7", d1_row(7).into_bytes())],
            Self::D1Insert => vec![Probe {
                method: "POST",
                path: "/insert".to_owned(),
                body: Some((
                    "application/json",
                    br#"{"name":"probe","price":1}"#.to_vec(),
                )),
                expect_status: 200,
                expect_body: Some(b"ok".to_vec()),
            }],
        }
    }
}

/// The value the KV worker's seed writes (and that a put in the load
/// replaces with a value of the same size).
pub fn kv_seed_value() -> Vec<u8> {
    vec![b'v'; 100]
}

/// Row `id` of the seeded D1 table, as the worker serializes it.
pub fn d1_row(id: u64) -> String {
    format!(
        r#"{{"id":{id},"name":"item-{id}","price":{}}}"#,
        id * 7 % 1000
    )
}

/// Scenarios no server here runs yet, listed so the table shows the gap.
pub const NOT_YET: &[(&str, &str)] = &[
    (
        "Durable Object counter, one object",
        "Hearth does not serve Durable Objects yet",
    ),
    (
        "Durable Object counter, 1000 objects",
        "Hearth does not serve Durable Objects yet",
    ),
    (
        "Queue produce-to-consume",
        "Hearth does not serve Queues yet",
    ),
    ("Workflow, 5 steps", "Hearth does not serve Workflows yet"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn bench_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_case_has_its_worker_and_script() {
        for case in ALL {
            let dir = bench_dir().join("workers").join(case.worker());
            assert!(dir.join("index.js").is_file(), "{case:?}");
            let toml = std::fs::read_to_string(dir.join("wrangler.toml")).unwrap();
            assert!(
                toml.contains(&format!("compatibility_date = \"{COMPATIBILITY_DATE}\"")),
                "{case:?}"
            );
            assert_eq!(toml.contains("[[kv_namespaces]]"), case.uses_kv());
            assert_eq!(toml.contains("[[d1_databases]]"), case.uses_d1());
            if let Some(script) = case.script() {
                assert!(bench_dir().join("wrk").join(script).is_file(), "{script}");
            }
        }
    }

    #[test]
    fn seeds_cover_every_key() {
        let seed = CaseId::Kv.seed();
        assert_eq!(seed.len(), 10);
        assert_eq!(seed[9].path, "/seed?from=900&count=100");
        assert_eq!(d1_row(7), r#"{"id":7,"name":"item-7","price":49}"#);
    }
}
