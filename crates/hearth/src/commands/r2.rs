//! `hearth r2 object put|get|delete <bucket>/<key>`.

use std::fs::File;
use std::io::{self, Read, Write};

use anyhow::{Context, Result, bail};
use hearth_r2::{R2GetOptions, R2HttpMetadata, R2PutOptions};

use crate::cli::{R2Command, R2ObjectCommand};
use crate::progress;
use crate::project::{Project, split_object_path};

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
                    ..R2HttpMetadata::default()
                }),
                ..R2PutOptions::default()
            };
            let object = match file {
                Some(path) => {
                    let f =
                        File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let bar = progress::bar(len, "bytes");
                    let object = bucket.put(key, bar.wrap_read(f), &options)?;
                    bar.finish_and_clear();
                    object
                }
                None => bucket.put(key, io::stdin().lock(), &options)?,
            };
            match object {
                Some(o) => eprintln!(
                    "Uploaded {object_path} ({} bytes, etag {}).",
                    o.size, o.etag
                ),
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
            let Some(found) = bucket.get(key, &R2GetOptions::default())? else {
                bail!("object {object_path} not found");
            };
            let Some(body) = found.into_body() else {
                bail!("object {object_path} has no body");
            };
            let size = body.object.size;
            let mut reader = body.body;
            // Default like wrangler: a file named after the key in the current directory.
            let target = match (file, pipe) {
                (_, true) => None,
                (Some(path), false) => Some(path),
                (None, false) => Some(
                    std::path::Path::new(key)
                        .file_name()
                        .map(std::path::PathBuf::from)
                        .context("the key has no file name part; use --file or --pipe")?,
                ),
            };
            match target {
                None => {
                    let mut out = io::stdout().lock();
                    io::copy(&mut reader, &mut out)?;
                    out.flush()?;
                }
                Some(path) => {
                    let bar = progress::bar(size, "bytes");
                    let mut out = hearth_core::fs::AtomicFile::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    io::copy(&mut bar.wrap_read(&mut reader as &mut dyn Read), &mut out)?;
                    out.commit()?;
                    bar.finish_and_clear();
                    eprintln!("Downloaded {object_path} to {}.", path.display());
                }
            }
        }
        R2ObjectCommand::Delete {
            object_path,
            project,
        } => {
            let (bucket_name, key) = split_object_path(&object_path)?;
            let bucket = Project::load(&project)?.r2_bucket(bucket_name)?;
            bucket.delete(key)?;
            eprintln!("Deleted {object_path}.");
        }
    }
    Ok(())
}
