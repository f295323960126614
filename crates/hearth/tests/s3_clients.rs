//! R2's S3-compatible endpoint of `hearth serve --s3-listen`, driven by the
//! real clients from PyPI (boto3, awscli) and by a small SigV4 client for
//! what needs byte-level control: a SIGKILL in the middle of a multipart
//! upload, and the memory bound of a large streamed upload and download.

mod s3_support;
mod web_support;

use std::io::Write;
use std::process::Command;

use md5::Digest as _;
use s3_support::{Signer, Site, complete_body, xml_value};

#[test]
fn boto3_every_operation() {
    let Some(python) = s3_support::python() else {
        return;
    };
    let site = Site::new();
    let (server, s3) = site.serve();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/boto3_suite.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("S3_ENDPOINT", format!("http://{s3}"))
        .env("WORKER_URL", format!("http://{}", server.addr))
        .env("HEARTH_BIN", s3_support::hearth())
        .env("HEARTH_CONFIG", site.config())
        .env("HEARTH_DATA_DIR", site.data())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("boto3 suite: ok"),
        "boto3 suite failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log.lock().unwrap().join("\n")
    );
    // Keys that look like paths were stored as keys: nothing was written
    // outside the data directory.
    assert!(!site.dir.path().join("escape").exists());
    assert!(!site.data().join("escape").exists());
}

fn tree_files(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn awscli_cp_sync_ls_and_the_worker_see_the_same_objects() {
    let Some(python) = s3_support::python() else {
        return;
    };
    let site = Site::new();
    let key = site.key();
    let (server, s3) = site.serve();
    let home = site.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let aws = |args: &[&str]| {
        let out = s3_support::aws(&python, &s3, &key, &home)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log.lock().unwrap().join("\n")
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // cp up (a file big enough for the CLI's multipart path), then down.
    let big: Vec<u8> = (0..(9 * 1024 * 1024 + 17) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let up = site.dir.path().join("big.bin");
    std::fs::write(&up, &big).unwrap();
    aws(&[
        "s3",
        "cp",
        up.to_str().unwrap(),
        "s3://files/uploads/big.bin",
    ]);
    let down = site.dir.path().join("big-back.bin");
    aws(&[
        "s3",
        "cp",
        "s3://files/uploads/big.bin",
        down.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&down).unwrap() == big,
        "cp round trip differs"
    );

    // The worker reads what aws-cli wrote...
    let r = server.get("/files/uploads/big.bin");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the worker read different bytes");
    // ...and aws-cli reads what the worker wrote.
    let r = server.request(
        "PUT",
        "/files/from-worker/note.txt",
        &[],
        b"hello from the worker",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let note = site.dir.path().join("note.txt");
    aws(&[
        "s3",
        "cp",
        "s3://files/from-worker/note.txt",
        note.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&note).unwrap(), b"hello from the worker");

    // sync a 200-file tree up, then down into an empty directory.
    let tree = site.dir.path().join("tree");
    for i in 0..200 {
        let p = tree.join(format!("d{}/sub{}/file-{i}.txt", i % 7, i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("file {i} ").repeat(i + 1)).unwrap();
    }
    aws(&["s3", "sync", tree.to_str().unwrap(), "s3://files/tree"]);
    let back = site.dir.path().join("tree-back");
    aws(&["s3", "sync", "s3://files/tree", back.to_str().unwrap()]);
    let (a, b) = (tree_files(&tree), tree_files(&back));
    assert_eq!(a.len(), 200);
    assert!(a == b, "the synced-back tree differs");
    // A second sync has nothing to do.
    let again = aws(&["s3", "sync", tree.to_str().unwrap(), "s3://files/tree"]);
    assert!(again.trim().is_empty(), "second sync uploaded: {again}");

    // ls with prefixes.
    let top = aws(&["s3", "ls", "s3://files/"]);
    for p in ["PRE tree/", "PRE uploads/", "PRE from-worker/"] {
        assert!(top.contains(p), "{p} missing from:\n{top}");
    }
    let d3 = aws(&["s3", "ls", "s3://files/tree/d3/"]);
    assert!(
        d3.contains("PRE sub0/") && d3.contains("PRE sub1/") && d3.contains("PRE sub2/"),
        "{d3}"
    );
    let recursive = aws(&["s3", "ls", "--recursive", "s3://files/tree/d0/"]);
    let expect = (0..200).filter(|i| i % 7 == 0).count();
    assert_eq!(recursive.lines().count(), expect, "{recursive}");
    let buckets = aws(&["s3", "ls"]);
    assert!(buckets.contains("files"), "{buckets}");
    // rm, and it is gone for the worker too.
    aws(&["s3", "rm", "s3://files/uploads/big.bin"]);
    assert_eq!(server.get("/files/uploads/big.bin").status, 404);
}

#[test]
fn rclone_copy_sync_check_and_the_worker_see_the_same_objects() {
    let Some(rclone) = s3_support::rclone() else {
        return;
    };
    let site = Site::new();
    let key = site.key();
    let (server, s3) = site.serve();
    let home = site.dir.path().join("rclone-home");
    std::fs::create_dir_all(&home).unwrap();
    let rc = |args: &[&str]| {
        let out = s3_support::rclone_cmd(&rclone, &s3, &key, &home)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rclone {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log.lock().unwrap().join("\n")
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // A tree of small files and one big enough for rclone's multipart path
    // (5 MiB parts below).
    let tree = site.dir.path().join("tree");
    for i in 0..40 {
        let p = tree.join(format!("d{}/file-{i}.txt", i % 4));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("rclone {i} ").repeat(i + 1)).unwrap();
    }
    let big: Vec<u8> = (0..(12 * 1024 * 1024 + 5) as u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    std::fs::create_dir_all(tree.join("blobs")).unwrap();
    std::fs::write(tree.join("blobs/big.bin"), &big).unwrap();
    let tree_arg = tree.to_str().unwrap();
    let multipart = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"];

    assert!(rc(&["lsd", "hearth:"]).contains(" files"));
    rc(&[&["copy", tree_arg, "hearth:files/tree"][..], &multipart[..]].concat());
    // check compares sizes and hashes; the multipart object's MD5 comes from
    // the metadata rclone stored with it.
    rc(&["check", tree_arg, "hearth:files/tree"]);
    let md5 = rc(&["md5sum", "hearth:files/tree/blobs"]);
    let want = hex::encode(md5::Md5::digest(&big));
    assert!(md5.starts_with(&want), "md5sum: {md5} (want {want})");
    rc(&["check", "--download", tree_arg, "hearth:files/tree"]);

    // The worker reads what rclone wrote, and rclone what the worker wrote.
    let r = server.get("/files/tree/blobs/big.bin");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the worker read different bytes");
    let r = server.request("PUT", "/files/from-worker.txt", &[], b"written by a worker");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        rc(&["cat", "hearth:files/from-worker.txt"]),
        "written by a worker"
    );

    // sync down into an empty directory: the same tree.
    let back = site.dir.path().join("back");
    rc(&["sync", "hearth:files/tree", back.to_str().unwrap()]);
    assert!(
        tree_files(&tree) == tree_files(&back),
        "synced-back tree differs"
    );

    // A deleted and a changed file: sync up deletes and replaces remotely.
    std::fs::remove_file(tree.join("d1/file-5.txt")).unwrap();
    std::fs::write(tree.join("d2/file-6.txt"), "changed").unwrap();
    rc(&["sync", tree_arg, "hearth:files/tree"]);
    assert_eq!(server.get("/files/tree/d1/file-5.txt").status, 404);
    assert_eq!(server.get("/files/tree/d2/file-6.txt").text(), "changed");
    let listed = rc(&["lsf", "-R", "--files-only", "hearth:files/tree"]);
    assert_eq!(listed.lines().count(), 40, "{listed}");
    rc(&["check", tree_arg, "hearth:files/tree"]);

    // Buckets: mkdir makes one, rmdir removes it; purge empties a prefix.
    rc(&["mkdir", "hearth:made-by-rclone"]);
    assert!(rc(&["lsd", "hearth:"]).contains(" made-by-rclone"));
    rc(&["rmdir", "hearth:made-by-rclone"]);
    assert!(!rc(&["lsd", "hearth:"]).contains(" made-by-rclone"));
    rc(&["purge", "hearth:files/tree"]);
    assert_eq!(rc(&["ls", "hearth:files/tree"]).trim(), "");
    assert_eq!(server.get("/files/tree/blobs/big.bin").status, 404);
    assert_eq!(server.get("/files/from-worker.txt").status, 200);
}

/// Part `n` of the kill -9 test's object: distinct, deterministic bytes.
fn part_bytes(n: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(n * 7)) as u8)
        .collect()
}

#[test]
fn kill9_in_the_middle_of_a_multipart_upload_then_complete_after_restart() {
    const PART: usize = 5 * 1024 * 1024;
    let site = Site::new();
    let key = site.key();
    let (server, s3) = site.serve();
    let c = Signer {
        endpoint: s3.clone(),
        key: key.clone(),
    };
    let r = c.send("POST", "/files/crash/object.bin", "uploads=", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let upload = xml_value(&r.text(), "UploadId").unwrap();
    let q = |n: u32| format!("partNumber={n}&uploadId={upload}");
    let p1 = part_bytes(1, PART);
    let r = c.send("PUT", "/files/crash/object.bin", &q(1), &p1);
    assert_eq!(r.status, 200, "{}", r.text());
    let e1 = r.header("etag").unwrap().to_string();
    // Part 2: half its bytes sent, then the server is killed.
    let p2 = part_bytes(2, PART);
    let mut s = c.start("PUT", "/files/crash/object.bin", &q(2), PART as u64);
    s.write_all(&p2[..PART / 2]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.kill9();
    drop(s);

    let (server, s3) = site.serve();
    let c = Signer { endpoint: s3, key };
    // The acknowledged part survived; the cut one left nothing.
    let r = c.send(
        "GET",
        "/files/crash/object.bin",
        &format!("uploadId={upload}"),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let listing = r.text().replace("&quot;", "\"");
    assert_eq!(listing.matches("<Part>").count(), 1, "{listing}");
    assert!(listing.contains(&format!("<ETag>{e1}</ETag>")), "{listing}");
    let r = c.send("PUT", "/files/crash/object.bin", &q(2), &p2);
    assert_eq!(r.status, 200);
    let e2 = r.header("etag").unwrap().to_string();
    let p3 = part_bytes(3, 1234);
    let r = c.send("PUT", "/files/crash/object.bin", &q(3), &p3);
    let e3 = r.header("etag").unwrap().to_string();
    let body = complete_body(&[(1, e1), (2, e2), (3, e3)]);
    let r = c.send(
        "POST",
        "/files/crash/object.bin",
        &format!("uploadId={upload}"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.send("GET", "/files/crash/object.bin", "", b"");
    assert_eq!(r.status, 200);
    let want: Vec<u8> = [p1, p2, p3].concat();
    assert!(r.body == want, "the completed object differs");
    // The worker sees it too.
    assert!(server.get("/files/crash/object.bin").body == want);
    // No stray part files: only the three parts of the upload remain.
    let dir = site.data().join("r2/files/multipart").join(&upload);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 3, "{:?}", files);
}

/// Deterministic bytes at any offset of the large object.
fn fill(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = offset + i as u64;
        *b = (x ^ (x >> 11) ^ (x >> 23)) as u8;
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The memory bound of streaming: a multipart upload of
/// `HEARTH_S3_STREAM_BYTES` (default 256 MiB, to keep CI short; the README's
/// figure was taken with 5 GiB: 41 MiB peak) in 64 MiB parts, then one GET
/// of the whole object, with the server's peak RSS (VmHWM from /proc) under
/// 64 MiB throughout.
#[test]
fn large_multipart_upload_and_download_stream_with_bounded_memory() {
    const PART: u64 = 64 * 1024 * 1024;
    const MAX_RSS_KIB: u64 = 64 * 1024;
    let total: u64 = std::env::var("HEARTH_S3_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256 * 1024 * 1024);
    let site = Site::new();
    let key = site.key();
    let (server, s3) = site.serve();
    let pid = server.child.id();
    if peak_rss_kib(pid).is_none() {
        eprintln!("skipping: /proc/<pid>/status is not readable here (not Linux?)");
        return;
    }
    let c = Signer { endpoint: s3, key };
    let r = c.send("POST", "/files/huge.bin", "uploads=", b"");
    let upload = xml_value(&r.text(), "UploadId").unwrap();
    let mut parts = Vec::new();
    let mut sent = 0u64;
    let mut whole = md5::Md5::new();
    let mut buf = vec![0u8; 1024 * 1024];
    for n in 1u32.. {
        if sent >= total {
            break;
        }
        let len = PART.min(total - sent);
        let mut s = c.start(
            "PUT",
            "/files/huge.bin",
            &format!("partNumber={n}&uploadId={upload}"),
            len,
        );
        let mut part_md5 = md5::Md5::new();
        let mut left = len;
        while left > 0 {
            let k = buf.len().min(left as usize);
            fill(sent + (len - left), &mut buf[..k]);
            part_md5.update(&buf[..k]);
            whole.update(&buf[..k]);
            s.write_all(&buf[..k]).unwrap();
            left -= k as u64;
        }
        let r = Signer::finish(s, None);
        assert_eq!(r.status, 200, "part {n}: {}", r.text());
        let etag = format!("\"{}\"", hex::encode(part_md5.finalize()));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        parts.push((n, etag));
        sent += len;
    }
    let body = complete_body(&parts);
    let r = c.send(
        "POST",
        "/files/huge.bin",
        &format!("uploadId={upload}"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after_upload = peak_rss_kib(pid).unwrap();

    struct Md5Sink(md5::Md5, u64);
    impl Write for Md5Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.update(b);
            self.1 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Md5Sink(md5::Md5::new(), 0);
    let s = c.start("GET", "/files/huge.bin", "", 0);
    let r = Signer::finish(s, Some(&mut sink));
    assert_eq!(r.status, 200);
    assert_eq!(sink.1, total);
    assert_eq!(
        sink.0.finalize(),
        whole.finalize(),
        "downloaded bytes differ"
    );
    let after_download = peak_rss_kib(pid).unwrap();
    eprintln!(
        "streamed {total} bytes up in {} parts and down: server peak RSS {after_upload} KiB after the upload, {after_download} KiB after the download",
        parts.len()
    );
    assert!(
        after_download < MAX_RSS_KIB,
        "peak RSS {after_download} KiB is over {MAX_RSS_KIB} KiB"
    );
}

#[test]
fn bucket_object_and_cors_verbs_work_on_the_data_the_endpoint_serves() {
    let site = Site::new();
    // Buckets: create (R2's naming rules), list, info, delete.
    site.r2(&["bucket", "create", "made-by-cli"]);
    let listed = site.r2(&["bucket", "list"]);
    assert!(listed.contains("name:           files"), "{listed}");
    assert!(listed.contains("name:           made-by-cli"), "{listed}");
    let bad = Command::new(s3_support::hearth())
        .args(["r2", "bucket", "create", "Bad_Name", "--config"])
        .arg(site.config())
        .arg("--data-dir")
        .arg(site.data())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid"));

    let file = site.dir.path().join("obj.txt");
    std::fs::write(&file, b"0123456789").unwrap();
    for key in ["a/1.txt", "a/2.txt", "b.txt"] {
        site.r2(&[
            "object",
            "put",
            &format!("files/{key}"),
            "--file",
            file.to_str().unwrap(),
        ]);
    }
    let info = site.r2(&["bucket", "info", "files"]);
    assert!(info.contains("object_count:          3"), "{info}");
    assert!(info.contains("bucket_size:           30 bytes"), "{info}");
    let list = site.r2(&["object", "list", "files", "--delimiter", "/"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].contains("PRE") && lines[0].ends_with("a/"),
        "{list}"
    );
    assert!(
        lines[1].ends_with("b.txt") && lines[1].contains("10"),
        "{list}"
    );
    let list = site.r2(&["object", "list", "files", "--prefix", "a/"]);
    assert_eq!(list.lines().count(), 2, "{list}");

    // CORS in wrangler's format, answered by the running endpoint.
    let cors = site.dir.path().join("cors.json");
    std::fs::write(
        &cors,
        r#"{"rules":[{"allowed":{"origins":["https://app.example"],"methods":["GET","PUT"],"headers":["Content-Type"]},"exposeHeaders":["ETag"],"maxAgeSeconds":300}]}"#,
    )
    .unwrap();
    site.r2(&[
        "bucket",
        "cors",
        "put",
        "files",
        "--file",
        cors.to_str().unwrap(),
    ]);
    assert!(
        site.r2(&["bucket", "cors", "list", "files"])
            .contains("https://app.example")
    );
    std::fs::write(
        &cors,
        r#"{"rules":[{"allowed":{"origins":["*"],"methods":["PATCH"]}}]}"#,
    )
    .unwrap();
    let refused = Command::new(s3_support::hearth())
        .args(["r2", "bucket", "cors", "put", "files", "--file"])
        .arg(&cors)
        .arg("--config")
        .arg(site.config())
        .arg("--data-dir")
        .arg(site.data())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PATCH"));

    let (server, s3) = site.serve();
    let preflight = |origin: &str, method: &str| {
        web_support::http(
            &s3,
            "OPTIONS",
            "/files/a/1.txt",
            &[
                ("host", &s3),
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", "content-type"),
            ],
            b"",
        )
    };
    let ok = preflight("https://app.example", "PUT");
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(ok.header("access-control-max-age"), Some("300"));
    assert_eq!(preflight("https://other.example", "PUT").status, 403);
    assert_eq!(preflight("https://app.example", "DELETE").status, 403);
    site.r2(&["bucket", "cors", "delete", "files"]);
    assert_eq!(preflight("https://app.example", "PUT").status, 403);

    // Deleting: a declared bucket never; a created one once empty.
    let declared = Command::new(s3_support::hearth())
        .args(["r2", "bucket", "delete", "files", "--config"])
        .arg(site.config())
        .arg("--data-dir")
        .arg(site.data())
        .output()
        .unwrap();
    assert!(!declared.status.success());
    assert!(String::from_utf8_lossy(&declared.stderr).contains("declared"));
    site.r2(&["bucket", "delete", "made-by-cli"]);
    assert!(!site.r2(&["bucket", "list"]).contains("made-by-cli"));
    drop(server);
}
