pub mod ai;
pub mod ai_gateway;
pub mod analytics;
pub mod build;
pub mod cluster;
pub mod d1;
pub mod dev;
pub mod edge;
pub mod events;
pub mod kv;
pub mod migrate;
pub mod queues;
pub mod r2;
pub mod s3;
pub mod serve;
pub mod vectorize;
pub mod workflows;

use std::io::Write;

/// Prints `text` and a newline to stdout; a reader that closed the pipe early
/// (`| head`) ends the output quietly instead of panicking as `println!` does.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    ignore_broken_pipe(
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    )
}

/// Treats a closed stdout pipe as success.
pub fn ignore_broken_pipe(result: std::io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
