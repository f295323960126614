//! `hearth r2 object put|get|delete <bucket>/<key>`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use hearth_r2::{R2GetOptions, R2HttpMetadata, R2PutOptions};

use crate::cli::{R2Command, R2ObjectCommand};
use crate::commands::ignore_broken_pipe;
use crate::progress;
use crate::project::{Project, split_object_path};

/// wrangler's message for a `get` of a key that does not exist.
const NO_SUCH_KEY: &str = "The specified key does not exist.";

pub fn run(command: R2Command) -> Result<()> {
    let R2Command::Object { command } = command;
    match command {
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
