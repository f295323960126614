//! `hearth r2 object put|get|delete <bucket>/<key>`, `r2 object list`,
//! `r2 bucket create|list|delete|info|cors`, `r2 credentials
//! create|list|revoke`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use hearth_r2::{R2GetOptions, R2HttpMetadata, R2PutOptions};

use crate::cli::{
    R2BucketCommand, R2Command, R2CorsCommand, R2CredentialsCommand, R2ObjectCommand,
};
use crate::commands::ignore_broken_pipe;
use crate::progress;
use crate::project::{Project, split_object_path};

/// wrangler's message for a `get` of a key that does not exist.
const NO_SUCH_KEY: &str = "The specified key does not exist.";

pub fn run(command: R2Command) -> Result<()> {
    let command = match command {
        R2Command::Object { command } => command,
        R2Command::Bucket { command } => return bucket(command),
        R2Command::Credentials { command } => return credentials(command),
    };
    match command {
        R2ObjectCommand::List {
            bucket,
            prefix,
            delimiter,
            project,
        } => {
            let b = Project::load(&project)?.r2_bucket(&bucket)?;
            let mut cursor = None;
            loop {
                let page = b.list(&hearth_r2::R2ListOptions {
                    prefix: prefix.clone(),
                    delimiter: delimiter.clone(),
                    cursor: cursor.take(),
                    ..hearth_r2::R2ListOptions::default()
                })?;
                for p in &page.delimited_prefixes {
                    super::print_stdout(&format!("{:>12}  {:24}  {p}", "PRE", ""))?;
                }
                for o in &page.objects {
                    super::print_stdout(&format!(
                        "{:>12}  {:24}  {}",
                        o.size,
                        hearth_s3::time::iso8601(o.uploaded),
                        o.key
                    ))?;
                }
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        R2ObjectCommand::Put {
            object_path,
            file,
            pipe: _,
            content_type,
            content_disposition,
            content_encoding,
            content_language,
            cache_control,
            expires,
            project,
        } => {
            let (bucket_name, key) = split_object_path(&object_path)?;
            let bucket = Project::load(&project)?.r2_bucket(bucket_name)?;
            let options = R2PutOptions {
                http_metadata: Some(R2HttpMetadata {
                    content_type,
                    content_disposition,
                    content_encoding,
                    content_language,
                    cache_control,
                    cache_expiry: expires,
                }),
                ..R2PutOptions::default()
            };
            let object = match file {
                Some(path) => {
                    let f = File::open(&path).with_context(|| {
                        format!("The file \"{}\" does not exist.", path.display())
                    })?;
                    eprintln!("Creating object \"{key}\" in bucket \"{bucket_name}\".");
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let bar = progress::bar(len, "bytes");
                    let object = bucket.put(key, bar.wrap_read(f), &options)?;
                    bar.finish_and_clear();
                    object
                }
                None => {
                    eprintln!("Creating object \"{key}\" in bucket \"{bucket_name}\".");
                    bucket.put(key, io::stdin().lock(), &options)?
                }
            };
            match object {
                Some(o) => eprintln!("Upload complete ({} bytes, etag {}).", o.size, o.etag),
                None => bail!("precondition failed; {object_path} was not written"),
            }
        }
        R2ObjectCommand::Get {
            object_path,
            file,
            pipe,
            project,
        } => {
            let (bucket_name, key) = split_object_path(&object_path)?;
            let bucket = Project::load(&project)?.r2_bucket(bucket_name)?;
            // Decided before reading so a bad key fails before any output.
            let target = match (file, pipe) {
                (_, true) => None,
                (Some(path), false) => Some(path),
                (None, false) => Some(default_download_path(key)?),
            };
            if target.is_some() {
                eprintln!("Downloading \"{key}\" from \"{bucket_name}\".");
            }
            let Some(found) = bucket.get(key, &R2GetOptions::default())? else {
                bail!(NO_SUCH_KEY);
            };
            let Some(body) = found.into_body() else {
                bail!(NO_SUCH_KEY);
            };
            let size = body.object.size;
            let mut reader = body.body;
            match target {
                None => {
                    let mut out = io::stdout().lock();
                    ignore_broken_pipe(io::copy(&mut reader, &mut out).and_then(|_| out.flush()))?;
                }
                Some(path) => {
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    let bar = progress::bar(size, "bytes");
                    let mut out = hearth_core::fs::AtomicFile::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    io::copy(&mut bar.wrap_read(&mut reader as &mut dyn Read), &mut out)?;
                    out.commit()?;
                    bar.finish_and_clear();
                    eprintln!("Download complete ({}).", path.display());
                }
            }
        }
        R2ObjectCommand::Delete {
            object_path,
            project,
        } => {
            let (bucket_name, key) = split_object_path(&object_path)?;
            let bucket = Project::load(&project)?.r2_bucket(bucket_name)?;
            eprintln!("Deleting object \"{key}\" from bucket \"{bucket_name}\".");
            bucket.delete(key)?;
            eprintln!("Delete complete.");
        }
    }
    Ok(())
}

/// Like wrangler, a download without --file or --pipe goes to the key's own
/// path under the current directory; unlike it, a key that would climb out
/// of that directory (`..`, absolute) is refused.
fn default_download_path(key: &str) -> Result<PathBuf> {
    let path = Path::new(key);
    let safe = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe || path.file_name().is_none() {
        bail!("The key \"{key}\" is not a safe relative file path; give --file or --pipe.");
    }
    Ok(path.to_path_buf())
}

fn bucket(command: R2BucketCommand) -> Result<()> {
    match command {
        R2BucketCommand::Create { name, project } => {
            let p = Project::load(&project)?;
            super::s3::buckets(std::slice::from_ref(&p), true).create(&name)?;
            eprintln!("Created bucket '{name}'.");
        }
        R2BucketCommand::List { project } => {
            let p = Project::load(&project)?;
            for (name, created) in super::s3::buckets(std::slice::from_ref(&p), true).list() {
                super::print_stdout(&format!(
                    "name:           {name}\ncreation_date:  {}\n",
                    hearth_s3::time::iso8601(created)
                ))?;
            }
        }
        R2BucketCommand::Delete { name, project } => {
            let p = Project::load(&project)?;
            super::s3::buckets(std::slice::from_ref(&p), true).delete(&name)?;
            let store = super::s3::credentials(&p)?;
            store.delete_cors(&name)?;
            eprintln!("Deleted bucket '{name}'.");
        }
        R2BucketCommand::Info { name, project } => {
            let p = Project::load(&project)?;
            let buckets = super::s3::buckets(std::slice::from_ref(&p), true);
            let b = buckets.get(&name)?;
            let created = buckets
                .list()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c)
                .unwrap_or(0);
            let (mut count, mut size, mut cursor) = (0u64, 0u64, None);
            loop {
                let page = b.list(&hearth_r2::R2ListOptions {
                    cursor: cursor.take(),
                    ..hearth_r2::R2ListOptions::default()
                })?;
                count += page.objects.len() as u64;
                size += page.objects.iter().map(|o| o.size).sum::<u64>();
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let uploads = b.list_multipart_uploads("", None, 10_000)?.len();
            super::print_stdout(&format!(
                "name:                  {name}\ncreated:               {}\nobject_count:          {count}\nbucket_size:           {size} bytes\nmultipart_in_progress: {uploads}",
                hearth_s3::time::iso8601(created)
            ))?;
        }
        R2BucketCommand::Cors { command } => cors(command)?,
    }
    Ok(())
}

/// wrangler's CORS file: `{"rules": [{"allowed": {"origins", "methods",
/// "headers"}, "exposeHeaders", "maxAgeSeconds"}]}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CorsFile {
    rules: Vec<CorsFileRule>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CorsFileRule {
    allowed: CorsAllowed,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default)]
    max_age_seconds: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CorsAllowed {
    origins: Vec<String>,
    methods: Vec<String>,
    #[serde(default)]
    headers: Vec<String>,
}

fn cors(command: R2CorsCommand) -> Result<()> {
    match command {
        R2CorsCommand::Put {
            bucket,
            file,
            project,
        } => {
            let p = Project::load(&project)?;
            super::s3::buckets(std::slice::from_ref(&p), true).get(&bucket)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let parsed: CorsFile = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: expected {{\"rules\": [{{\"allowed\": {{\"origins\": [...], \"methods\": [...], \"headers\": [...]}}, \"exposeHeaders\": [...], \"maxAgeSeconds\": N}}]}}",
                    file.display()
                )
            })?;
            let rules: Vec<hearth_s3::CorsRule> = parsed
                .rules
                .into_iter()
                .map(|r| hearth_s3::CorsRule {
                    allowed_origins: r.allowed.origins,
                    allowed_methods: r.allowed.methods,
                    allowed_headers: r
                        .allowed
                        .headers
                        .into_iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                    expose_headers: r.expose_headers,
                    max_age_seconds: r.max_age_seconds,
                })
                .collect();
            hearth_s3::cors::validate(&rules)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message))?;
            super::s3::credentials(&p)?.put_cors(&bucket, &rules)?;
            eprintln!(
                "Set CORS rules for bucket '{bucket}' ({} rules).",
                rules.len()
            );
        }
        R2CorsCommand::List { bucket, project } => {
            let p = Project::load(&project)?;
            match super::s3::credentials(&p)?.cors(&bucket)? {
                None => eprintln!("The bucket '{bucket}' has no CORS rules."),
                Some(rules) => {
                    super::print_stdout(&serde_json::to_string_pretty(&rules)?)?;
                }
            }
        }
        R2CorsCommand::Delete { bucket, project } => {
            let p = Project::load(&project)?;
            super::s3::credentials(&p)?.delete_cors(&bucket)?;
            eprintln!("Removed the CORS rules of bucket '{bucket}'.");
        }
    }
    Ok(())
}

fn credentials(command: R2CredentialsCommand) -> Result<()> {
    match command {
        R2CredentialsCommand::Create {
            name,
            buckets,
            read_only,
            project,
        } => {
            let p = Project::load(&project)?;
            for b in &buckets {
                hearth_s3::buckets::check_bucket_name(b)
                    .map_err(|e| anyhow::anyhow!("--bucket: {}", e.message))?;
            }
            let access = if read_only {
                hearth_s3::Access::Read
            } else {
                hearth_s3::Access::ReadWrite
            };
            let made = super::s3::credentials(&p)?.create(&name, buckets, access)?;
            super::print_stdout(&format!(
                "Access Key ID:     {}\nSecret Access Key: {}",
                made.info.access_key_id, made.secret_access_key
            ))?;
            eprintln!(
                "The secret is shown only now; store it. Scope: {}, {}.",
                scope(&made.info),
                made.info.access
            );
        }
        R2CredentialsCommand::List { project } => {
            let p = Project::load(&project)?;
            for c in super::s3::credentials(&p)?.list()? {
                let state = match c.revoked_ms {
                    Some(ms) => format!("revoked {}", hearth_s3::time::iso8601(ms)),
                    None => "active".to_string(),
                };
                super::print_stdout(&format!(
                    "{}  {:10}  {:8}  created {}  {}  {}",
                    c.access_key_id,
                    c.access.to_string(),
                    state.split(' ').next().unwrap_or(""),
                    hearth_s3::time::iso8601(c.created_ms),
                    scope(&c),
                    if c.name.is_empty() {
                        String::new()
                    } else {
                        format!("({})", c.name)
                    }
                ))?;
            }
        }
        R2CredentialsCommand::Revoke {
            access_key_id,
            project,
        } => {
            let p = Project::load(&project)?;
            super::s3::credentials(&p)?.revoke(&access_key_id)?;
            eprintln!("Revoked {access_key_id}.");
        }
    }
    Ok(())
}

fn scope(c: &hearth_s3::CredentialInfo) -> String {
    if c.buckets.is_empty() {
        "all buckets".to_string()
    } else {
        format!("buckets {}", c.buckets.join(", "))
    }
}
