//! Natives behind `node:zlib`: deflate/inflate in the raw, zlib and gzip
//! formats (flate2 over miniz_oxide) and brotli (the `brotli` crate), as
//! stateful codecs the JS side feeds chunk by chunk.
//!
//! `zlibCodec(kind, level, windowBits)` returns `{ push(input, flush, limit) }`;
//! `push` consumes all of `input` and returns what it produced, throwing
//! Node's errors (`Z_DATA_ERROR`, `Z_BUF_ERROR`, `ERR_BUFFER_TOO_LARGE`).
//! Output grows by at most one window's worth past `limit` before the
//! check, so a hostile stream cannot make one call allocate without bound.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};
use rquickjs::{Ctx, Exception, Function, Object, Result, Value};

use crate::util::{bytes, u8array};

/// zlib's flush values, as node:zlib's constants name them.
const Z_SYNC_FLUSH: i32 = 2;
const Z_FULL_FLUSH: i32 = 3;
const Z_FINISH: i32 = 4;
/// Output space added per step.
const STEP: usize = 64 * 1024;
/// Brotli input is fed in pieces this small so output is checked often.
const BROTLI_PIECE: usize = 256;

/// A Node.js zlib error: message, `code` and `errno`.
struct ZError {
    message: String,
    code: &'static str,
    errno: Option<i32>,
}

fn data_error(message: &str) -> ZError {
    ZError {
        message: message.to_string(),
        code: "Z_DATA_ERROR",
        errno: Some(-3),
    }
}

fn unexpected_end() -> ZError {
    ZError {
        message: "unexpected end of file".to_string(),
        code: "Z_BUF_ERROR",
        errno: Some(-5),
    }
}

fn too_large(limit: usize) -> ZError {
    ZError {
        message: format!("Cannot create a Buffer larger than {limit} bytes"),
        code: "ERR_BUFFER_TOO_LARGE",
        errno: None,
    }
}

fn check(out: &[u8], limit: usize) -> std::result::Result<(), ZError> {
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(())
}

/// A `Write` whose bytes the codec takes back after each call.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Raw,
    Zlib,
    Gzip,
    /// gzip or zlib, told apart by the first bytes (node's Unzip).
    Auto,
}

struct Deflater {
    c: Compress,
    /// gzip: the header still to write, and the CRC and length of the data.
    gzip: Option<(Option<Vec<u8>>, Crc)>,
    finished: bool,
}

impl Deflater {
    fn new(format: Format, level: u32) -> Deflater {
        let gzip = (format == Format::Gzip).then(|| {
            // As zlib writes it: no name or time, "extra flags" from the
            // level, operating system Unix.
            let xfl = match level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            (Some(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]), Crc::new())
        });
        Deflater {
            c: Compress::new(Compression::new(level), format == Format::Zlib),
            gzip,
            finished: false,
        }
    }

    fn push(
        &mut self,
        input: &[u8],
        flush: i32,
        limit: usize,
    ) -> std::result::Result<Vec<u8>, ZError> {
        let mut out = Vec::new();
        if let Some((header, crc)) = &mut self.gzip {
            if let Some(h) = header.take() {
                out.extend_from_slice(&h);
            }
            crc.update(input);
        }
        if self.finished {
            return Ok(out);
        }
        let mode = match flush {
            Z_FINISH => FlushCompress::Finish,
            Z_SYNC_FLUSH => FlushCompress::Sync,
            Z_FULL_FLUSH => FlushCompress::Full,
            _ => FlushCompress::None,
        };
        let mut pos = 0usize;
        loop {
            out.reserve(STEP);
            let (before_in, before_out) = (self.c.total_in(), self.c.total_out());
            let status = self
                .c
                .compress_vec(&input[pos..], &mut out, mode)
                .map_err(|e| data_error(&e.to_string()))?;
            pos += (self.c.total_in() - before_in) as usize;
            check(&out, limit)?;
            let full = out.len() == out.capacity();
            let stalled = self.c.total_in() == before_in && self.c.total_out() == before_out;
            match status {
                Status::StreamEnd => {
                    self.finished = true;
                    break;
                }
                _ if pos >= input.len() && !full && mode != FlushCompress::Finish => break,
                _ if stalled && !full => break,
                _ => {}
            }
        }
        if self.finished
            && let Some((_, crc)) = &self.gzip
        {
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&crc.amount().to_le_bytes());
        }
        Ok(out)
    }
}

#[derive(PartialEq, Eq)]
enum Stage {
    /// gzip: collecting the member's header.
    Header,
    Body,
    /// gzip: collecting the CRC and length after the data.
    Trailer,
    /// The stream (or gzip member) ended.
    Done,
}

struct Inflater {
    d: Decompress,
    format: Format,
    stage: Stage,
    /// Header or trailer bytes gathered so far.
    buf: Vec<u8>,
    crc: Crc,
}

/// The length of the gzip header at the start of `b`, `Ok(None)` if more
/// bytes are needed.
fn gzip_header(b: &[u8]) -> std::result::Result<Option<usize>, ZError> {
    if b.len() >= 2 && (b[0] != 0x1f || b[1] != 0x8b) || (b.len() == 1 && b[0] != 0x1f) {
        return Err(data_error("incorrect header check"));
    }
    if b.len() < 10 {
        return Ok(None);
    }
    if b[2] != 8 {
        return Err(data_error("unknown compression method"));
    }
    let flags = b[3];
    let mut pos = 10usize;
    if flags & 4 != 0 {
        let Some(len) = b.get(pos..pos + 2) else {
            return Ok(None);
        };
        pos += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for bit in [8u8, 16u8] {
        if flags & bit != 0 {
            match b.get(pos..).and_then(|r| r.iter().position(|&c| c == 0)) {
                Some(i) => pos += i + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 2 != 0 {
        pos += 2;
    }
    Ok((pos <= b.len()).then_some(pos))
}

impl Inflater {
    fn new(format: Format) -> Inflater {
        let stage = if matches!(format, Format::Gzip | Format::Auto) {
            Stage::Header
        } else {
            Stage::Body
        };
        Inflater {
            d: Decompress::new(format == Format::Zlib),
            format,
            stage,
            buf: Vec::new(),
            crc: Crc::new(),
        }
    }

    /// Inflates from `input` into `out` until the input is used up or the
    /// stream ends; returns how much input was used.
    fn body(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> std::result::Result<usize, ZError> {
        // zlib's two header bytes: deflate, a window, and a check value.
        if self.format == Format::Zlib
            && self.d.total_in() == 0
            && let [cmf, flg, ..] = *input
            && (cmf & 0x0f != 8 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0)
        {
            return Err(data_error("incorrect header check"));
        }
        let mut pos = 0usize;
        loop {
            out.reserve(STEP);
            let (before_in, before_out) = (self.d.total_in(), out.len());
            let status = self
                .d
                .decompress_vec(&input[pos..], out, FlushDecompress::None)
                .map_err(|e| {
                    let m = e.to_string();
                    if m.contains("adler") || m.contains("checksum") {
                        data_error("incorrect data check")
                    } else {
                        data_error(&m)
                    }
                })?;
            pos += (self.d.total_in() - before_in) as usize;
            if self.format == Format::Gzip {
                self.crc.update(&out[before_out..]);
            }
            check(out, limit)?;
            if status == Status::StreamEnd {
                self.stage = if self.format == Format::Gzip {
                    Stage::Trailer
                } else {
                    Stage::Done
                };
                return Ok(pos);
            }
            let stalled = self.d.total_in() == before_in && out.len() == before_out;
            if (pos >= input.len() || stalled) && out.len() < out.capacity() {
                return Ok(pos);
            }
        }
    }

    fn push(
        &mut self,
        input: &[u8],
        finish: bool,
        limit: usize,
    ) -> std::result::Result<Vec<u8>, ZError> {
        let mut out = Vec::new();
        let mut rest: Vec<u8> = input.to_vec();
        loop {
            match self.stage {
                Stage::Header => {
                    self.buf.append(&mut rest);
                    if self.format == Format::Auto {
                        if self.buf.len() < 2 {
                            break;
                        }
                        if self.buf[0] == 0x1f && self.buf[1] == 0x8b {
                            self.format = Format::Gzip;
                        } else {
                            self.format = Format::Zlib;
                            self.d = Decompress::new(true);
                            self.stage = Stage::Body;
                            rest = std::mem::take(&mut self.buf);
                            continue;
                        }
                    }
                    match gzip_header(&self.buf)? {
                        Some(n) => {
                            rest = self.buf.split_off(n);
                            self.buf.clear();
                            self.stage = Stage::Body;
                        }
                        None => break,
                    }
                }
                Stage::Body => {
                    let used = self.body(&rest, &mut out, limit)?;
                    rest.drain(..used);
                    if self.stage == Stage::Body {
                        break;
                    }
                }
                Stage::Trailer => {
                    self.buf.append(&mut rest);
                    if self.buf.len() < 8 {
                        break;
                    }
                    let t = &self.buf[..8];
                    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                    let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                    if crc != self.crc.sum() || len != self.crc.amount() {
                        return Err(data_error("incorrect data check"));
                    }
                    rest = self.buf.split_off(8);
                    self.buf.clear();
                    self.stage = Stage::Done;
                }
                Stage::Done => {
                    // Another gzip member may follow; other formats end here.
                    if self.format != Format::Gzip || rest.is_empty() {
                        break;
                    }
                    self.d.reset(false);
                    self.crc.reset();
                    self.stage = Stage::Header;
                }
            }
        }
        if finish && self.stage != Stage::Done {
            return Err(unexpected_end());
        }
        Ok(out)
    }
}

enum Codec {
    Deflate(Box<Deflater>),
    Inflate(Box<Inflater>),
    BrotliEncode(Option<Box<brotli::CompressorWriter<Shared>>>, Shared),
    BrotliDecode(Box<brotli::DecompressorWriter<Shared>>, Shared, bool),
}

impl Codec {
    fn new(kind: &str, level: i32, window: i32) -> Option<Codec> {
        let zlevel = if (0..=9).contains(&level) {
            level as u32
        } else {
            6
        };
        Some(match kind {
            "deflate" => Codec::Deflate(Box::new(Deflater::new(Format::Zlib, zlevel))),
            "gzip" => Codec::Deflate(Box::new(Deflater::new(Format::Gzip, zlevel))),
            "deflateRaw" => Codec::Deflate(Box::new(Deflater::new(Format::Raw, zlevel))),
            "inflate" => Codec::Inflate(Box::new(Inflater::new(Format::Zlib))),
            "gunzip" => Codec::Inflate(Box::new(Inflater::new(Format::Gzip))),
            "inflateRaw" => Codec::Inflate(Box::new(Inflater::new(Format::Raw))),
            "unzip" => Codec::Inflate(Box::new(Inflater::new(Format::Auto))),
            "brotliCompress" => {
                let out = Shared::default();
                let quality = if (0..=11).contains(&level) { level } else { 11 } as u32;
                let lgwin = if (10..=24).contains(&window) {
                    window
                } else {
                    22
                } as u32;
                let w = brotli::CompressorWriter::new(out.clone(), 4096, quality, lgwin);
                Codec::BrotliEncode(Some(Box::new(w)), out)
            }
            "brotliDecompress" => {
                let out = Shared::default();
                let w = brotli::DecompressorWriter::new(out.clone(), 4096);
                Codec::BrotliDecode(Box::new(w), out, false)
            }
            _ => return None,
        })
    }

    fn push(
        &mut self,
        input: &[u8],
        flush: i32,
        limit: usize,
    ) -> std::result::Result<Vec<u8>, ZError> {
        match self {
            Codec::Deflate(d) => d.push(input, flush, limit),
            Codec::Inflate(i) => i.push(input, flush == Z_FINISH, limit),
            Codec::BrotliEncode(w, out) => {
                let Some(writer) = w.as_mut() else {
                    return Ok(Vec::new());
                };
                let failed = |_| ZError {
                    message: "Compression failed".to_string(),
                    code: "ERR_BROTLI_COMPRESSION_FAILED",
                    errno: None,
                };
                writer.write_all(input).map_err(failed)?;
                check(&out.0.borrow(), limit)?;
                if flush == Z_FINISH {
                    // Dropping the writer finishes the stream into `out`.
                    drop(w.take());
                } else if flush != 0 {
                    writer.flush().map_err(failed)?;
                }
                Ok(out.take())
            }
            Codec::BrotliDecode(w, out, done) => {
                for piece in input.chunks(BROTLI_PIECE) {
                    if *done {
                        break;
                    }
                    w.write_all(piece).map_err(|_| ZError {
                        message: "Decompression failed".to_string(),
                        code: "ERR_BROTLI_DECOMPRESSION_FAILED",
                        errno: None,
                    })?;
                    if out.len() > limit {
                        return Err(too_large(limit));
                    }
                }
                if flush == Z_FINISH && !*done {
                    w.close().map_err(|_| unexpected_end())?;
                    *done = true;
                }
                Ok(out.take())
            }
        }
    }
}

fn throw_zlib(ctx: &Ctx<'_>, e: ZError) -> rquickjs::Error {
    let build = || -> Result<Value<'_>> {
        let ex = Exception::from_message(ctx.clone(), &e.message)?;
        let obj = ex.as_object();
        obj.set("code", e.code)?;
        if let Some(errno) = e.errno {
            obj.set("errno", errno)?;
        }
        if e.code == "ERR_BUFFER_TOO_LARGE" {
            let range: Function = ctx.globals().get("RangeError")?;
            let proto: Object = range.get("prototype")?;
            obj.set_prototype(Some(&proto))?;
            obj.set("name", "RangeError")?;
        }
        Ok(ex.into_value())
    };
    match build() {
        Ok(v) => ctx.throw(v),
        Err(err) => err,
    }
}

/// `zlibCodec(kind, level, windowBits)` -> `{ push(input, flush, limit) }`.
fn zlib_codec<'js>(ctx: Ctx<'js>, kind: String, level: i32, window: i32) -> Result<Object<'js>> {
    let Some(codec) = Codec::new(&kind, level, window) else {
        return Err(rquickjs::Exception::throw_type(
            &ctx,
            &format!("Unknown zlib codec: {kind}"),
        ));
    };
    let codec = Rc::new(RefCell::new(codec));
    let obj = Object::new(ctx.clone())?;
    let push = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, input: Value<'js>, flush: i32, limit: f64| -> Result<Value<'js>> {
            let data = bytes(&ctx, &input)?;
            let limit = if limit.is_finite() && limit >= 0.0 {
                limit as usize
            } else {
                usize::MAX
            };
            let out = codec
                .borrow_mut()
                .push(&data, flush, limit)
                .map_err(|e| throw_zlib(&ctx, e))?;
            u8array(&ctx, out)
        },
    )?;
    obj.set("push", push)?;
    Ok(obj)
}

pub fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<()> {
    native.set("zlibCodec", Function::new(ctx.clone(), zlib_codec)?)?;
    Ok(())
}
