//! The S3 endpoint of `hearth serve --s3-listen`, and what the `r2 bucket`
//! and `r2 credentials` commands share with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hearth_s3::{Buckets, CredentialStore, S3Options, S3Server};

use crate::project::Project;

/// The buckets of these projects: those they declare (each in its own data
/// directory) and, with `any_bucket`, those created under the first one's.
pub fn buckets(projects: &[Project], any_bucket: bool) -> Buckets {
    let mut declared = BTreeMap::new();
    for p in projects {
        for b in &p.config.r2_buckets {
            declared
                .entry(b.local_name().to_string())
                .or_insert_with(|| p.data_dir.r2_bucket(b.local_name()));
        }
    }
    Buckets::new(
        projects[0].data_dir.r2_buckets(),
        declared,
        any_bucket,
        projects[0].clock.clone(),
        projects[0].r2_limits.clone(),
    )
}

pub fn credentials(project: &Project) -> Result<CredentialStore> {
    let dir = &project.data_dir;
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("creating {}", dir.root().display()))?;
    Ok(CredentialStore::open(
        &dir.s3_credentials(),
        &dir.s3_key(),
        project.clock.clone(),
    )?)
}

/// Starts the endpoint on `runtime` when `--s3-listen` is given; it serves
/// until the process ends.
pub fn start(
    s3_listen: Option<&str>,
    any_bucket: bool,
    projects: &[Project],
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let Some(listen) = s3_listen else {
        return Ok(());
    };
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("--s3-listen {listen:?} is not an address like 127.0.0.1:9000"))?;
    if projects.is_empty() {
        bail!("--s3-listen needs a served worker");
    }
    let options = S3Options {
        listen,
        buckets: Arc::new(buckets(projects, any_bucket)),
        credentials: Arc::new(credentials(&projects[0])?),
        clock: projects[0].clock.clone(),
        max_connections: hearth_s3::DEFAULT_MAX_CONNECTIONS,
    };
    let server = runtime
        .block_on(S3Server::bind(options))
        .with_context(|| format!("--s3-listen {listen}"))?;
    let addr = server.local_addr()?;
    tracing::info!(
        "S3 endpoint listening at http://{addr} (R2 buckets; keys from `hearth r2 credentials create`)"
    );
    runtime.spawn(server.run());
    Ok(())
}
