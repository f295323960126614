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
    #[value(name = "do-counter-1")]
    DoCounter1,
    #[value(name = "do-counter-1000")]
    DoCounter1000,
    #[value(name = "do-read-1")]
    DoRead1,
    #[value(name = "queue-produce-consume")]
    Queue,
    #[value(name = "workflow-5-step")]
    Workflow,
}

pub const ALL: [CaseId; 10] = [
    CaseId::Hello,
    CaseId::JsonEcho,
    CaseId::Kv,
    CaseId::D1Select,
    CaseId::D1Insert,
    CaseId::DoCounter1,
    CaseId::DoCounter1000,
    CaseId::DoRead1,
    CaseId::Queue,
    CaseId::Workflow,
];

/// Objects the 1000-object counter case spreads its requests over (the
/// number is also written in its wrk script).
pub const DO_OBJECTS: u32 = 1_000;

/// What a scenario whose work goes on after the response (a queue consumer,
/// a workflow run) counts at its `GET /stats` route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// What one unit of finished work is, for the report ("messages
    /// consumed").
    pub unit: &'static str,
}

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
            Self::DoCounter1 => "Durable Object counter, one object (RPC, storage get + put)",
            Self::DoCounter1000 => {
                "Durable Object counter, 1000 objects (idFromName of a random one per request)"
            }
            Self::DoRead1 => "Durable Object read, one object (RPC, storage get)",
            Self::Queue => "Queue produce-to-consume (send per request, batches of 100 acked)",
            Self::Workflow => "Workflow, 5 steps (one instance created per request)",
        }
    }

    /// The directory under `bench/workers/` holding the worker.
    pub fn worker(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::JsonEcho => "json-echo",
            Self::Kv => "kv",
            Self::D1Select | Self::D1Insert => "d1",
            Self::DoCounter1 | Self::DoCounter1000 | Self::DoRead1 => "do-counter",
            Self::Queue => "queue",
            Self::Workflow => "workflow",
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
            Self::DoCounter1 => Some("do-counter-1.lua"),
            Self::DoCounter1000 => Some("do-counter-1000.lua"),
            Self::DoRead1 => Some("do-read-1.lua"),
            Self::Queue => Some("queue-send.lua"),
            Self::Workflow => Some("workflow-create.lua"),
        }
    }

    pub fn uses_kv(self) -> bool {
        self == Self::Kv
    }

    pub fn uses_d1(self) -> bool {
        matches!(self, Self::D1Select | Self::D1Insert)
    }

    /// Durable Objects, queues and workflows: bindings that plain workerd
    /// has no local implementation of.
    pub fn uses_platform(self) -> bool {
        matches!(
            self,
            Self::DoCounter1 | Self::DoCounter1000 | Self::DoRead1 | Self::Queue | Self::Workflow
        )
    }

    /// For scenarios whose work finishes after the response: what their
    /// `/stats` route counts.
    pub fn completion(self) -> Option<Completion> {
        match self {
            Self::Queue => Some(Completion {
                unit: "messages consumed",
            }),
            Self::Workflow => Some(Completion {
                unit: "instances completed",
            }),
            _ => None,
        }
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
            Self::Hello
            | Self::JsonEcho
            | Self::DoCounter1
            | Self::DoCounter1000
            | Self::DoRead1
            | Self::Queue
            | Self::Workflow => Vec::new(),
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
            // Each server starts empty, so the first increment answers 1.
            Self::DoCounter1 => vec![get("/c/0", b"1".to_vec()), get("/c/0", b"2".to_vec())],
            Self::DoCounter1000 => vec![
                get("/c/0", b"1".to_vec()),
                get(&format!("/c/{}", DO_OBJECTS - 1), b"1".to_vec()),
            ],
            // One increment, then reads of the value it committed.
            Self::DoRead1 => vec![get("/c/0", b"1".to_vec()), get("/r/0", b"1".to_vec())],
            // What the message or instance then does is checked by waiting
            // for the count at /stats to reach what was produced.
            Self::Queue => vec![Probe {
                method: "POST",
                path: "/send".to_owned(),
                body: Some(("text/plain", b"probe".to_vec())),
                expect_status: 200,
                expect_body: Some(b"ok".to_vec()),
            }],
            Self::Workflow => vec![Probe {
                method: "POST",
                path: "/start".to_owned(),
                body: None,
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
            assert_eq!(
                toml.contains("[[durable_objects.bindings]]"),
                case.uses_platform()
            );
            assert_eq!(toml.contains("[[queues.consumers]]"), case == CaseId::Queue);
            assert_eq!(toml.contains("[[workflows]]"), case == CaseId::Workflow);
            // The end-to-end scenarios count finished work at /stats.
            let js = std::fs::read_to_string(dir.join("index.js")).unwrap();
            assert_eq!(js.contains("\"/stats\""), case.completion().is_some());
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

    #[test]
    fn the_thousand_objects_script_draws_from_every_name() {
        let lua = std::fs::read_to_string(bench_dir().join("wrk/do-counter-1000.lua")).unwrap();
        assert!(lua.contains(&format!("local objects = {DO_OBJECTS}")));
        let last = CaseId::DoCounter1000.checks().pop().unwrap();
        assert_eq!(last.path, "/c/999");
    }

    #[test]
    fn scenario_names_on_the_command_line() {
        let names: Vec<String> = ALL
            .iter()
            .filter_map(|c| c.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        assert_eq!(
            names[5..],
            [
                "do-counter-1",
                "do-counter-1000",
                "do-read-1",
                "queue-produce-consume",
                "workflow-5-step"
            ]
        );
    }
}
