//! One test per documented rule of Workers Static Assets.

use std::io::Read;
use std::path::Path;

use hearth_assets::{
    AssetError, AssetLimits, AssetOptions, AssetRequest, AssetResponse, AssetServer, CACHE_CONTROL,
    HtmlHandling, NotFoundHandling, Route, RunWorkerFirst,
};

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// index.html, about.html, blog/index.html, blog/post.html, app.js, 404.html, blog/404.html
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "index.html", "home");
    write(r, "about.html", "about");
    write(r, "blog/index.html", "blog");
    write(r, "blog/post.html", "post");
    write(r, "app.js", "console.log(1)");
    write(r, "404.html", "top 404");
    write(r, "blog/404.html", "blog 404");
    write(r, "_headers", "/*\n  X: y");
    dir
}

fn server(dir: &Path, html: HtmlHandling, nf: NotFoundHandling) -> AssetServer {
    let options = AssetOptions {
        html_handling: html,
        not_found_handling: nf,
        run_worker_first: RunWorkerFirst::All(false),
    };
    AssetServer::open(dir, options, AssetLimits::default()).unwrap()
}

fn get(s: &AssetServer, path: &str) -> AssetResponse {
    req(s, "GET", path, &[])
}

fn req(s: &AssetServer, method: &str, path: &str, headers: &[(&str, &str)]) -> AssetResponse {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    s.fetch(&AssetRequest {
        method,
        path,
        query,
        headers: &headers,
    })
    .unwrap()
}

fn body(r: AssetResponse) -> String {
    let mut out = String::new();
    if let Some((mut f, _)) = r.body {
        f.read_to_string(&mut out).unwrap();
    }
    out
}

fn served(s: &AssetServer, path: &str) -> (u16, String) {
    let r = get(s, path);
    (r.status, body(r))
}

fn redirected(s: &AssetServer, path: &str) -> Option<String> {
    let r = get(s, path);
    (r.status == 307).then(|| r.header("location").unwrap().to_string())
}

#[test]
fn auto_trailing_slash_serves_files_bare_and_folders_with_a_slash() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(served(&s, "/"), (200, "home".into()));
    assert_eq!(served(&s, "/about"), (200, "about".into()));
    assert_eq!(served(&s, "/blog/"), (200, "blog".into()));
    assert_eq!(served(&s, "/blog/post"), (200, "post".into()));
    assert_eq!(redirected(&s, "/about.html").as_deref(), Some("/about"));
    assert_eq!(redirected(&s, "/about/").as_deref(), Some("/about"));
    assert_eq!(redirected(&s, "/blog").as_deref(), Some("/blog/"));
    assert_eq!(
        redirected(&s, "/blog/index.html").as_deref(),
        Some("/blog/")
    );
    assert_eq!(redirected(&s, "/blog/index").as_deref(), Some("/blog/"));
    assert_eq!(redirected(&s, "/index.html").as_deref(), Some("/"));
    assert_eq!(redirected(&s, "/blog.html").as_deref(), Some("/blog/"));
    assert_eq!(served(&s, "/app.js"), (200, "console.log(1)".into()));
}

#[test]
fn redirects_keep_the_query() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(
        redirected(&s, "/about.html?x=1&y").as_deref(),
        Some("/about?x=1&y")
    );
}

#[test]
fn force_trailing_slash_serves_every_html_page_with_a_slash() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::ForceTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(served(&s, "/about/"), (200, "about".into()));
    assert_eq!(redirected(&s, "/about").as_deref(), Some("/about/"));
    assert_eq!(redirected(&s, "/about.html").as_deref(), Some("/about/"));
    assert_eq!(served(&s, "/blog/"), (200, "blog".into()));
    assert_eq!(redirected(&s, "/blog").as_deref(), Some("/blog/"));
    assert_eq!(served(&s, "/app.js"), (200, "console.log(1)".into()));
}

#[test]
fn drop_trailing_slash_serves_every_html_page_bare() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::DropTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(served(&s, "/blog"), (200, "blog".into()));
    assert_eq!(redirected(&s, "/blog/").as_deref(), Some("/blog"));
    assert_eq!(redirected(&s, "/blog/index.html").as_deref(), Some("/blog"));
    assert_eq!(served(&s, "/about"), (200, "about".into()));
    assert_eq!(redirected(&s, "/about/").as_deref(), Some("/about"));
    // The root keeps its slash.
    assert_eq!(served(&s, "/"), (200, "home".into()));
    assert_eq!(redirected(&s, "/index.html").as_deref(), Some("/"));
}

#[test]
fn html_handling_none_serves_exact_names_only() {
    let d = site();
    let s = server(d.path(), HtmlHandling::None, NotFoundHandling::None);
    assert_eq!(served(&s, "/about.html"), (200, "about".into()));
    assert_eq!(get(&s, "/about").status, 404);
    assert_eq!(get(&s, "/").status, 404);
    assert_eq!(served(&s, "/blog/index.html"), (200, "blog".into()));
}

#[test]
fn page_404_serves_the_nearest_404_html_with_status_404() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::Page404,
    );
    assert_eq!(served(&s, "/blog/missing"), (404, "blog 404".into()));
    assert_eq!(served(&s, "/nope/deeper/x"), (404, "top 404".into()));
}

#[test]
fn single_page_application_serves_the_root_index_for_misses() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::SinglePageApplication,
    );
    assert_eq!(served(&s, "/users/42"), (200, "home".into()));
}

#[test]
fn a_miss_without_not_found_handling_is_an_empty_404() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    let r = get(&s, "/missing.png");
    assert_eq!(r.status, 404);
    assert!(r.body.is_none());
}

#[test]
fn responses_carry_etag_content_type_and_cache_control() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    let r = get(&s, "/app.js");
    let etag = r.header("etag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r.header("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(
        get(&s, "/").header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // Same bytes, same ETag; different bytes, different ETag.
    assert_eq!(get(&s, "/app.js").header("etag").unwrap(), etag);
    assert_ne!(get(&s, "/about").header("etag").unwrap(), etag);
    // No browser caching for authorized requests.
    let r = req(&s, "GET", "/app.js", &[("Authorization", "Bearer x")]);
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn the_etag_follows_the_content_when_a_file_changes() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    let before = get(&s, "/app.js").header("etag").unwrap().to_string();
    write(d.path(), "app.js", "console.log(2); // longer now");
    let r = get(&s, "/app.js");
    assert_ne!(r.header("etag").unwrap(), before);
    assert_eq!(body(r), "console.log(2); // longer now");
}

#[test]
fn if_none_match_answers_304_for_strong_or_weak_tags() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    let etag = get(&s, "/app.js").header("etag").unwrap().to_string();
    let r = req(&s, "GET", "/app.js", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_none());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let weak = format!("W/{etag}");
    assert_eq!(
        req(&s, "GET", "/app.js", &[("If-None-Match", &weak)]).status,
        304
    );
    assert_eq!(
        req(&s, "GET", "/app.js", &[("If-None-Match", "\"other\"")]).status,
        200
    );
}

#[test]
fn head_has_headers_and_length_but_no_body() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    let r = req(&s, "HEAD", "/app.js", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_none());
    assert_eq!(r.content_length, Some(14));
    assert!(r.header("etag").is_some());
}

#[test]
fn other_methods_on_an_asset_get_405() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(req(&s, "POST", "/app.js", &[]).status, 405);
    assert_eq!(req(&s, "DELETE", "/", &[]).status, 405);
}

#[test]
fn paths_cannot_leave_the_directory() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret.txt"), "secret").unwrap();
    let root = outer.path().join("public");
    write(&root, "index.html", "home");
    write(&root, "sub/ok.txt", "ok");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outer.path().join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/ok.txt"), root.join("inside.txt")).unwrap();
    }
    let s = server(
        &root,
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/./index.html",
        "/leak.txt",
    ] {
        let r = get(&s, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.is_none(), "{path}");
    }
    #[cfg(unix)]
    assert_eq!(served(&s, "/inside.txt"), (200, "ok".into()));
}

#[test]
fn deployment_files_are_not_served() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(get(&s, "/_headers").status, 404);
}

#[test]
fn encoded_paths_match_decoded_names_and_redirect_to_the_canonical_spelling() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a b.txt", "space");
    write(d.path(), "[x].txt", "brackets");
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(served(&s, "/a%20b.txt"), (200, "space".into()));
    assert_eq!(served(&s, "/%5Bx%5D.txt"), (200, "brackets".into()));
    assert_eq!(redirected(&s, "/[x].txt").as_deref(), Some("/%5Bx%5D.txt"));
    assert_eq!(redirected(&s, "//a%20b.txt").as_deref(), Some("/a%20b.txt"));
}

fn route(s: &AssetServer, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = AssetRequest {
        method,
        path,
        query: None,
        headers: &headers,
    };
    match s.route(&r, true).unwrap() {
        Route::Worker => None,
        Route::Asset(a) => Some(a.status),
    }
}

#[test]
fn matching_files_skip_the_worker_and_misses_reach_it() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    assert_eq!(route(&s, "GET", "/app.js", &[]), Some(200));
    assert_eq!(route(&s, "GET", "/about.html", &[]), Some(307));
    assert_eq!(route(&s, "GET", "/api/users", &[]), None);
    // An asset path with another method is still the assets' (405).
    assert_eq!(route(&s, "POST", "/app.js", &[]), Some(405));
    assert_eq!(route(&s, "POST", "/api/users", &[]), None);
}

#[test]
fn with_a_worker_not_found_handling_applies_to_navigations_only() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::SinglePageApplication,
    );
    assert_eq!(
        route(&s, "GET", "/dashboard", &[("Sec-Fetch-Mode", "navigate")]),
        Some(200)
    );
    assert_eq!(
        route(&s, "GET", "/dashboard", &[("Sec-Fetch-Mode", "cors")]),
        None
    );
    assert_eq!(route(&s, "GET", "/dashboard", &[]), None);
}

#[test]
fn without_a_worker_every_miss_is_the_assets_answer() {
    let d = site();
    let s = server(
        d.path(),
        HtmlHandling::AutoTrailingSlash,
        NotFoundHandling::None,
    );
    let r = AssetRequest {
        method: "GET",
        path: "/missing",
        query: None,
        headers: &[],
    };
    match s.route(&r, false).unwrap() {
        Route::Asset(a) => assert_eq!(a.status, 404),
        Route::Worker => panic!("no worker to route to"),
    }
}

#[test]
fn run_worker_first_true_sends_everything_to_the_worker() {
    let d = site();
    let options = AssetOptions {
        run_worker_first: RunWorkerFirst::All(true),
        ..AssetOptions::default()
    };
    let s = AssetServer::open(d.path(), options, AssetLimits::default()).unwrap();
    assert_eq!(route(&s, "GET", "/app.js", &[]), None);
    assert_eq!(route(&s, "GET", "/", &[]), None);
}

#[test]
fn run_worker_first_patterns_include_and_exclude() {
    let d = site();
    write(d.path(), "api/docs.html", "docs");
    let options = AssetOptions {
        run_worker_first: RunWorkerFirst::Patterns(vec!["/api/*".into(), "!/api/docs*".into()]),
        ..AssetOptions::default()
    };
    let s = AssetServer::open(d.path(), options, AssetLimits::default()).unwrap();
    assert_eq!(route(&s, "GET", "/api/anything", &[]), None);
    assert_eq!(route(&s, "GET", "/api/docs", &[]), Some(200));
    // An excluded path stays on the assets even when it misses.
    assert_eq!(route(&s, "GET", "/api/docs-missing", &[]), Some(404));
    assert_eq!(route(&s, "GET", "/app.js", &[]), Some(200));
}

#[test]
fn a_missing_directory_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let err = AssetServer::open(
        d.path().join("nope"),
        AssetOptions::default(),
        AssetLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, AssetError::MissingDirectory(_)));
    assert!(err.to_string().starts_with(
        "The directory specified by the \"assets.directory\" field in your configuration file does not exist:"
    ));
}

#[test]
fn too_many_files_is_refused_with_wranglers_message() {
    let d = site();
    let limits = AssetLimits {
        max_asset_count: 3,
        ..AssetLimits::default()
    };
    let err = AssetServer::open(d.path(), AssetOptions::default(), limits).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "Maximum number of assets exceeded.\nCloudflare Workers supports up to 3 assets in a version. We found 4 files in the specified assets directory"
        ),
        "{msg}"
    );
    assert!(msg.ends_with("(limits.max_asset_count)"), "{msg}");
}

#[test]
fn a_file_over_the_size_limit_is_refused_with_wranglers_message() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "big.bin", &"x".repeat(3000));
    let limits = AssetLimits {
        max_asset_bytes: 2048,
        ..AssetLimits::default()
    };
    let err = AssetServer::open(d.path(), AssetOptions::default(), limits).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("Asset too large.\nCloudflare Workers supports assets with sizes of up to 2 KiB. We found a file "),
        "{msg}"
    );
    assert!(msg.contains("big.bin with a size of 2.9 KiB."), "{msg}");
    assert!(
        msg.ends_with(
            "conform with the Workers maximum size requirement. (limits.max_asset_bytes)"
        )
    );
    assert_eq!(AssetLimits::default().max_asset_bytes, 25 * 1024 * 1024);
    assert_eq!(AssetLimits::default().max_asset_count, 20_000);
}

#[test]
fn a_file_grown_past_the_limit_after_start_is_an_error_not_a_truncation() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "f.txt", "small");
    let limits = AssetLimits {
        max_asset_bytes: 10,
        ..AssetLimits::default()
    };
    let s = AssetServer::open(d.path(), AssetOptions::default(), limits).unwrap();
    write(d.path(), "f.txt", "now far too large");
    let headers = [];
    let err = s
        .fetch(&AssetRequest {
            method: "GET",
            path: "/f.txt",
            query: None,
            headers: &headers,
        })
        .unwrap_err();
    assert!(matches!(err, AssetError::AssetTooLarge { .. }));
}

#[test]
fn secrets_ignored_files_and_protected_paths_are_never_served() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "index.html", "home");
    write(r, ".dev.vars", "API_KEY=1");
    write(r, ".dev.vars.production", "API_KEY=2");
    write(r, "sub/.dev.vars", "API_KEY=3");
    write(r, "wrangler.toml", "name = \"x\"");
    write(r, ".hearth/do/secret", "key");
    write(r, ".hearth/d1/db.sqlite", "sqlite");
    write(r, "src/index.js", "export default {}");
    write(r, "src/keep.js", "kept");
    write(r, "node_modules/x/index.js", "dep");
    write(r, "docs/page.html", "page");
    write(
        r,
        ".assetsignore",
        "/src/*\n!/src/keep.js\nnode_modules/\n*.md\n",
    );
    write(r, "README.md", "readme");
    #[cfg(unix)]
    std::os::unix::fs::symlink(r.join(".hearth"), r.join("state")).unwrap();
    let protected = vec![r.join(".hearth"), r.join("wrangler.toml")];
    let s = AssetServer::open_protecting(
        r,
        AssetOptions::default(),
        AssetLimits::default(),
        &protected,
    )
    .unwrap();
    for path in [
        "/.dev.vars",
        "/.dev.vars.production",
        "/sub/.dev.vars",
        "/wrangler.toml",
        "/.hearth/do/secret",
        "/.hearth/d1/db.sqlite",
        "/state/do/secret",
        "/src/index.js",
        "/node_modules/x/index.js",
        "/README.md",
        "/.assetsignore",
    ] {
        let resp = get(&s, path);
        assert_eq!(resp.status, 404, "{path}");
        assert!(resp.body.is_none(), "{path}");
    }
    assert_eq!(served(&s, "/"), (200, "home".into()));
    assert_eq!(served(&s, "/src/keep.js"), (200, "kept".into()));
    assert_eq!(served(&s, "/docs/page"), (200, "page".into()));
    let warnings = s.warnings().join("\n");
    assert!(warnings.contains(".hearth"), "{warnings}");
    assert!(warnings.contains("wrangler.toml"), "{warnings}");
}

#[test]
fn hidden_files_do_not_count_against_the_file_limit() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "index.html", "home");
    write(r, ".assetsignore", "big/\n");
    for i in 0..5 {
        write(r, &format!("big/{i}.txt"), "x");
    }
    let limits = AssetLimits {
        max_asset_count: 1,
        ..AssetLimits::default()
    };
    AssetServer::open(r, AssetOptions::default(), limits).unwrap();
}

#[cfg(unix)]
#[test]
fn the_scan_survives_symlink_loops_and_skips_links_leading_out() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("public");
    write(&root, "index.html", "home");
    write(&root, "sub/page.txt", "page");
    write(outer.path(), "outside/secret.txt", "secret");
    std::os::unix::fs::symlink(".", root.join("a")).unwrap();
    std::os::unix::fs::symlink(".", root.join("b")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("outside"), root.join("out")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();

    // With the loops followed, the walk would never end; with the link to
    // /etc followed, an unreadable file there would fail it.
    let (tx, rx) = std::sync::mpsc::channel();
    let r = root.clone();
    std::thread::spawn(move || {
        let limits = AssetLimits {
            max_asset_count: 2,
            ..AssetLimits::default()
        };
        let opened = AssetServer::open(&r, AssetOptions::default(), limits);
        let _ = tx.send(opened.map(|s| s.warnings().to_vec()));
    });
    let warnings = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the scan finished")
        .expect("the directory opened within two files");
    let joined = warnings.join("\n");
    assert!(joined.contains("out leads outside"), "{joined}");
    assert!(joined.contains("etc leads outside"), "{joined}");

    let s = AssetServer::open(&root, AssetOptions::default(), AssetLimits::default()).unwrap();
    assert_eq!(served(&s, "/a/b/a/sub/page.txt"), (200, "page".into()));
    assert_eq!(get(&s, "/out/secret.txt").status, 404);
    assert_eq!(get(&s, "/etc/passwd").status, 404);
}
