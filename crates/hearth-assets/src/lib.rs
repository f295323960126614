//! Workers Static Assets over a directory on disk.
//!
//! One [`AssetServer`] answers both the HTTP front (which asks
//! [`AssetServer::route`] whether a request is served by a file or goes to
//! the worker) and `env.ASSETS.fetch()` (which calls
//! [`AssetServer::fetch`]). It follows Cloudflare's rules:
//!
//! - `html_handling` (`auto-trailing-slash` by default,
//!   `force-trailing-slash`, `drop-trailing-slash`, `none`) decides the
//!   canonical URL of each HTML file; other spellings get a 307 to it.
//! - `not_found_handling` (`none`, `404-page`, `single-page-application`)
//!   decides what a miss serves. With a worker in front, it applies to
//!   browser navigations (`Sec-Fetch-Mode: navigate`) only; other misses
//!   go to the worker.
//! - `run_worker_first`: `true` sends everything to the worker first;
//!   patterns send matching paths to it (`!pattern` keeps a path on assets).
//! - Responses carry a content `ETag`, a `Content-Type` by extension and
//!   `Cache-Control: public, max-age=0, must-revalidate`; `If-None-Match`
//!   answers 304; `HEAD` has no body; other methods on an asset get 405.
//!
//! Files are read from disk on each request, so edits show at once. A path
//! can never leave the directory: `..` and `.` segments (also percent-encoded)
//! are refused and symlinks are followed only to files inside it.
//!
//! Some files are never assets, whatever the directory: `.dev.vars` and
//! `.dev.vars.<env>` at any depth, whatever `.assetsignore` (gitignore
//! syntax, read from the top of the directory) excludes, `.assetsignore`
//! itself, and the paths the caller protects (the data directory and the
//! config files, see [`AssetServer::open_protecting`]).
//!
//! This crate knows no HTTP library: a request is a method, a raw path, a
//! query and header pairs; a response is a status, header pairs and a file.
//! `_headers` and `_redirects` files are not interpreted (and not served).

mod error;
mod fs;
pub mod ignore;
pub mod mime;
mod routing;
mod validate;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use error::AssetError;
pub use hearth_config::{HtmlHandling, NotFoundHandling, RunWorkerFirst};
pub use validate::{
    AssetLimits, IGNORED_ROOT_FILES, MAX_ASSET_BYTES, MAX_ASSET_COUNT, decode_path, encode_path,
    is_dev_vars, route_pattern_matches,
};

use crate::fs::AssetDir;
use crate::routing::{Intent, Resolver};

/// `Cache-Control` on asset responses: browsers may keep them but must
/// revalidate with the ETag.
pub const CACHE_CONTROL: &str = "public, max-age=0, must-revalidate";

/// How the directory is served; the `[assets]` section of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetOptions {
    pub html_handling: HtmlHandling,
    pub not_found_handling: NotFoundHandling,
    pub run_worker_first: RunWorkerFirst,
}

impl Default for AssetOptions {
    fn default() -> Self {
        Self {
            html_handling: HtmlHandling::AutoTrailingSlash,
            not_found_handling: NotFoundHandling::None,
            run_worker_first: RunWorkerFirst::All(false),
        }
    }
}

impl From<&hearth_config::Assets> for AssetOptions {
    fn from(a: &hearth_config::Assets) -> Self {
        Self {
            html_handling: a.html_handling,
            not_found_handling: a.not_found_handling,
            run_worker_first: a.run_worker_first.clone(),
        }
    }
}

/// A request as the asset server sees it.
#[derive(Debug, Clone, Copy)]
pub struct AssetRequest<'a> {
    pub method: &'a str,
    /// The raw (still percent-encoded) URL path, e.g. `/a%20b/`.
    pub path: &'a str,
    /// The query without `?`, kept on redirects.
    pub query: Option<&'a str>,
    pub headers: &'a [(String, String)],
}

impl AssetRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn search(&self) -> String {
        match self.query {
            Some(q) if !q.is_empty() => format!("?{q}"),
            _ => String::new(),
        }
    }
}

/// An answer from the assets.
#[derive(Debug)]
pub struct AssetResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The file to send, positioned at its start, with its length; `None`
    /// for redirects, 304, 404 without a page, 405 and `HEAD`.
    pub body: Option<(File, u64)>,
    /// The length a `HEAD` response announces.
    pub content_length: Option<u64>,
}

impl AssetResponse {
    fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
            content_length: Some(0),
        }
    }

    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where the front sends a request.
#[derive(Debug)]
pub enum Route {
    /// The worker answers.
    Worker,
    /// The assets answer with this.
    Asset(AssetResponse),
}

/// One assets directory and how it is served.
pub struct AssetServer {
    dir: AssetDir,
    shown_dir: PathBuf,
    options: AssetOptions,
    limits: AssetLimits,
    warnings: Vec<String>,
}

impl std::fmt::Debug for AssetServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssetServer")
            .field("dir", &self.dir.root())
            .field("options", &self.options)
            .finish()
    }
}

impl AssetServer {
    /// Opens `dir` and checks it against `limits` (file count and size),
    /// as wrangler does before an upload.
    pub fn open(
        dir: impl AsRef<Path>,
        options: AssetOptions,
        limits: AssetLimits,
    ) -> Result<AssetServer, AssetError> {
        Self::open_protecting(dir, options, limits, &[])
    }

    /// Like [`AssetServer::open`], and never serves `protected` paths nor
    /// anything below them (they need not exist yet). A protected path
    /// inside the directory is reported in [`AssetServer::warnings`].
    pub fn open_protecting(
        dir: impl AsRef<Path>,
        options: AssetOptions,
        limits: AssetLimits,
        protected: &[PathBuf],
    ) -> Result<AssetServer, AssetError> {
        let shown_dir = dir.as_ref().to_path_buf();
        let dir = AssetDir::open(&shown_dir, protected)?;
        let mut warnings: Vec<String> = dir
            .protected_inside()
            .map(|p| {
                format!(
                    "the assets directory {} contains {}; it is never served, but keep assets in a directory of their own",
                    shown_dir.display(),
                    p.display()
                )
            })
            .collect();
        dir.check(&limits, &shown_dir, &mut warnings)?;
        Ok(AssetServer {
            dir,
            shown_dir,
            options,
            limits,
            warnings,
        })
    }

    /// What opening found doubtful (protected paths inside the directory,
    /// symlinks leading out of it), one line each, for the caller to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The directory, with symlinks resolved.
    pub fn root(&self) -> &Path {
        self.dir.root()
    }

    pub fn options(&self) -> &AssetOptions {
        &self.options
    }

    pub fn limits(&self) -> &AssetLimits {
        &self.limits
    }

    /// Decides whether the worker or the assets answer a request reaching
    /// the front, and answers it when the assets do. `has_worker` is false
    /// for an assets-only project, where every miss is the assets' 404.
    pub fn route(&self, req: &AssetRequest<'_>, has_worker: bool) -> Result<Route, AssetError> {
        if has_worker {
            match &self.options.run_worker_first {
                RunWorkerFirst::All(true) => return Ok(Route::Worker),
                RunWorkerFirst::All(false) => {}
                RunWorkerFirst::Patterns(patterns) => {
                    let excluded = patterns.iter().any(|p| {
                        p.strip_prefix('!')
                            .is_some_and(|p| route_pattern_matches(p, req.path))
                    });
                    if excluded {
                        return self.fetch(req).map(Route::Asset);
                    }
                    let included = patterns
                        .iter()
                        .any(|p| !p.starts_with('!') && route_pattern_matches(p, req.path));
                    if included {
                        return Ok(Route::Worker);
                    }
                }
            }
            // Misses fall back to the worker unless a browser navigates,
            // when a 404 page or the SPA shell is what the user should see.
            let navigating = req
                .header("sec-fetch-mode")
                .is_some_and(|v| v.eq_ignore_ascii_case("navigate"));
            let not_found = if navigating {
                self.options.not_found_handling
            } else {
                NotFoundHandling::None
            };
            if self.respond(req, not_found)?.is_none() {
                return Ok(Route::Worker);
            }
        }
        self.fetch(req).map(Route::Asset)
    }

    /// What `env.ASSETS.fetch(request)` answers: the asset, a redirect to
    /// its canonical URL, the not-found handling's page, or an empty 404.
    pub fn fetch(&self, req: &AssetRequest<'_>) -> Result<AssetResponse, AssetError> {
        Ok(self
            .respond(req, self.options.not_found_handling)?
            .unwrap_or_else(|| AssetResponse::empty(404)))
    }

    /// `None` when no asset is meant (the request has no intent).
    fn respond(
        &self,
        req: &AssetRequest<'_>,
        not_found: NotFoundHandling,
    ) -> Result<Option<AssetResponse>, AssetError> {
        let decoded = decode_path(req.path);
        let resolver = Resolver {
            dir: &self.dir,
            html: self.options.html_handling,
            not_found,
        };
        let Some(intent) = resolver.intent(&decoded) else {
            return Ok(None);
        };
        let method = req.method.to_ascii_uppercase();
        if method != "GET" && method != "HEAD" {
            return Ok(Some(AssetResponse::empty(405)));
        }
        let (found, status) = match intent {
            Intent::Redirect(to) => return Ok(Some(redirect(&encode_path(&to), req))),
            Intent::Serve(found, status) => (found, status),
        };
        let canonical = encode_path(&decoded);
        if canonical != req.path {
            return Ok(Some(redirect(&canonical, req)));
        }
        self.serve_file(&found, status, req, method == "HEAD")
            .map(Some)
    }

    fn serve_file(
        &self,
        found: &fs::Found,
        status: u16,
        req: &AssetRequest<'_>,
        head: bool,
    ) -> Result<AssetResponse, AssetError> {
        let (file, len, etag) = self.dir.open_file(found)?;
        if len > self.limits.max_asset_bytes {
            return Err(AssetError::AssetTooLarge {
                dir: self.shown_dir.clone(),
                path: found.path.clone(),
                size: len,
                limit: self.limits.max_asset_bytes,
            });
        }
        let strong = format!("\"{etag}\"");
        let name = found
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut headers = vec![
            ("etag".to_string(), strong.clone()),
            ("content-type".to_string(), mime::content_type(&name)),
        ];
        if req.header("authorization").is_none() && req.header("range").is_none() {
            headers.push(("cache-control".to_string(), CACHE_CONTROL.to_string()));
        }
        if req
            .header("if-none-match")
            .is_some_and(|v| etag_matches(v, &strong))
        {
            return Ok(AssetResponse {
                status: 304,
                headers,
                body: None,
                content_length: None,
            });
        }
        Ok(AssetResponse {
            status,
            headers,
            body: if head { None } else { Some((file, len)) },
            content_length: Some(len),
        })
    }
}

fn redirect(location: &str, req: &AssetRequest<'_>) -> AssetResponse {
    let mut r = AssetResponse::empty(307);
    r.headers.push((
        "location".to_string(),
        format!("{location}{}", req.search()),
    ));
    r
}

/// `If-None-Match` against a strong ETag: a list of tags, each matching in
/// its strong or weak form, or `*`.
fn etag_matches(header: &str, strong: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag == strong || tag.strip_prefix("W/").is_some_and(|t| t == strong)
    })
}
