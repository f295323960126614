#![allow(dead_code)]

use rquickjs::{CatchResultExt, Context, Runtime};

pub struct Js {
    pub rt: Runtime,
    pub ctx: Context,
}

impl Js {
    pub fn new() -> Self {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| hearth_webapi::install(&ctx).catch(&ctx).unwrap());
        Js { rt, ctx }
    }

    /// Sets a global string (used to hand test vectors to JS).
    pub fn set_global(&self, name: &str, value: &str) {
        self.ctx.with(|ctx| ctx.globals().set(name, value).unwrap());
    }

    pub fn drain(&self) {
        while self.rt.is_job_pending() {
            self.rt.execute_pending_job().unwrap();
        }
    }

    /// Runs `body` as an async function and returns JSON.stringify of its result,
    /// or "THROW <name>: <message>" when it rejects.
    pub fn run(&self, body: &str) -> String {
        let src = format!(
            "globalThis.__out = undefined; (async () => {{ {body} \n}})().then(\
             v => {{ const j = JSON.stringify(v); globalThis.__out = j === undefined ? 'undefined' : j; }},\
             e => {{ globalThis.__out = 'THROW ' + (e && e.name) + ': ' + (e && e.message); }});"
        );
        self.ctx.with(|ctx| {
            ctx.eval::<(), _>(src.as_str()).catch(&ctx).unwrap();
        });
        self.drain();
        self.ctx.with(|ctx| {
            let v: rquickjs::Value = ctx.globals().get("__out").unwrap();
            if v.is_undefined() {
                panic!("async body did not settle");
            }
            v.as_string()
                .map(|s| s.to_string().unwrap())
                .unwrap_or_else(|| "undefined".into())
        })
    }
}

pub fn wpt(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/testdata/wpt/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}
