//! Natives behind TextEncoder/TextDecoder, atob/btoa and random bytes.

use encoding_rs::{CoderResult, Decoder, DecoderResult, Encoding, UTF_8};
use rquickjs::{
    Array, Class, Ctx, Exception, Function, JsLifetime, Object, Result, TypedArray, Value,
    class::Trace,
};

use crate::util::{bytes, throw_dom, u8array, usv};

/// Largest request `crypto.getRandomValues` accepts, in bytes.
pub const MAX_RANDOM_BYTES: usize = 65536;

fn utf8_encode<'js>(ctx: Ctx<'js>, s: Value<'js>) -> Result<Value<'js>> {
    let s = if s.is_undefined() {
        String::new()
    } else {
        usv(&ctx, &s)?
    };
    u8array(&ctx, s.into_bytes())
}

/// `utf8EncodeInto(str, dest)` -> [read (UTF-16 units), written (bytes)].
fn utf8_encode_into<'js>(
    ctx: Ctx<'js>,
    s: Value<'js>,
    dest: TypedArray<'js, u8>,
) -> Result<Value<'js>> {
    let s = usv(&ctx, &s)?;
    let (mut read, mut written) = (0usize, 0usize);
    if let Some(raw) = dest.as_raw() {
        // SAFETY: no JS runs while the slice is alive.
        let out: &mut [u8] = unsafe { &mut *raw.as_ptr() };
        let mut buf = [0u8; 4];
        for ch in s.chars() {
            let enc = ch.encode_utf8(&mut buf);
            if written + enc.len() > out.len() {
                break;
            }
            out[written..written + enc.len()].copy_from_slice(enc.as_bytes());
            written += enc.len();
            read += ch.len_utf16();
        }
    }
    let a = Array::new(ctx)?;
    a.set(0, read)?;
    a.set(1, written)?;
    Ok(a.into_value())
}

/// `encodingName(label)` -> canonical lowercase name, or null for an unknown
/// label (and for "replacement", which TextDecoder must refuse).
fn encoding_name(label: String) -> Option<String> {
    let enc = Encoding::for_label(label.trim().as_bytes())?;
    if enc == encoding_rs::REPLACEMENT {
        return None;
    }
    Some(enc.name().to_ascii_lowercase())
}

#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeDecoder")]
pub struct NativeDecoder {
    #[qjs(skip_trace)]
    enc: &'static Encoding,
    #[qjs(skip_trace)]
    ignore_bom: bool,
    #[qjs(skip_trace)]
    dec: Option<Decoder>,
}

fn new_decoder(enc: &'static Encoding, ignore_bom: bool) -> Decoder {
    if ignore_bom {
        enc.new_decoder_without_bom_handling()
    } else {
        enc.new_decoder_with_bom_removal()
    }
}

fn decoder_new<'js>(
    ctx: Ctx<'js>,
    label: String,
    ignore_bom: bool,
) -> Result<Class<'js, NativeDecoder>> {
    let enc = Encoding::for_label(label.as_bytes()).unwrap_or(UTF_8);
    Class::instance(
        ctx,
        NativeDecoder {
            enc,
            ignore_bom,
            dec: None,
        },
    )
}

// workerd's text for a fatal decoder, whatever the encoding.
fn decode_err(ctx: &Ctx<'_>, _enc: &'static Encoding) -> rquickjs::Error {
    Exception::throw_type(ctx, "Failed to decode input.")
}

/// `decoderDecode(decoder, bytes, stream, fatal)` -> string.
fn decoder_decode<'js>(
    ctx: Ctx<'js>,
    this: Class<'js, NativeDecoder>,
    input: Value<'js>,
    stream: bool,
    fatal: bool,
) -> Result<String> {
    let input = if input.is_undefined() {
        Vec::new()
    } else {
        bytes(&ctx, &input)?
    };
    let mut me = this.borrow_mut();
    let (enc, ignore_bom) = (me.enc, me.ignore_bom);
    let dec = me.dec.get_or_insert_with(|| new_decoder(enc, ignore_bom));
    let last = !stream;
    let mut out = String::with_capacity(
        dec.max_utf8_buffer_length(input.len())
            .unwrap_or(input.len() * 3),
    );
    if fatal {
        let (res, _) = dec.decode_to_string_without_replacement(&input, &mut out, last);
        match res {
            DecoderResult::InputEmpty => {}
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(_, _) => {
                me.dec = None;
                return Err(decode_err(&ctx, enc));
            }
        }
    } else {
        let (res, _, _) = dec.decode_to_string(&input, &mut out, last);
        debug_assert!(matches!(res, CoderResult::InputEmpty));
    }
    if last {
        me.dec = None;
    }
    Ok(out)
}

/// One-shot decode for the common non-streaming case.
fn decode<'js>(
    ctx: Ctx<'js>,
    label: String,
    input: Value<'js>,
    fatal: bool,
    ignore_bom: bool,
) -> Result<String> {
    let input = if input.is_undefined() {
        Vec::new()
    } else {
        bytes(&ctx, &input)?
    };
    let enc = Encoding::for_label(label.as_bytes()).unwrap_or(UTF_8);
    let mut dec = new_decoder(enc, ignore_bom);
    let mut out = String::with_capacity(
        dec.max_utf8_buffer_length(input.len())
            .unwrap_or(input.len() * 3),
    );
    if fatal {
        let (res, _) = dec.decode_to_string_without_replacement(&input, &mut out, true);
        if let DecoderResult::Malformed(_, _) = res {
            return Err(decode_err(&ctx, enc));
        }
    } else {
        let _ = dec.decode_to_string(&input, &mut out, true);
    }
    Ok(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a') as u32 + 26),
        b'0'..=b'9' => Some((c - b'0') as u32 + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = match chunk.len() {
            3 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8 | chunk[2] as u32,
            2 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8,
            _ => (chunk[0] as u32) << 16,
        };
        let idx = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, v) in idx.iter().enumerate() {
            if i <= chunk.len() {
                out.push(B64[*v as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The WHATWG "forgiving-base64 decode" algorithm; None means failure.
pub fn forgiving_b64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut data: Vec<u8> = input
        .iter()
        .copied()
        .filter(|c| !matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .collect();
    if data.len().is_multiple_of(4) {
        if data.ends_with(b"==") {
            data.truncate(data.len() - 2);
        } else if data.ends_with(b"=") {
            data.truncate(data.len() - 1);
        }
    }
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in data {
        buf = (buf << 6) | b64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

const ATOB_MSG: &str = "atob() called with invalid base64-encoded data. (Only whitespace, '+', '/', alphanumeric ASCII, and up to two terminal '=' signs when the input data length is divisible by 4 are allowed.)";
const BTOA_MSG: &str =
    "btoa() can only operate on characters in the Latin1 (ISO/IEC 8859-1) range.";

fn atob<'js>(ctx: Ctx<'js>, input: Value<'js>) -> Result<Value<'js>> {
    let s = match input.as_string() {
        Some(s) => s.to_string().ok(),
        None => None,
    };
    let Some(s) = s else {
        return Err(throw_dom(&ctx, "InvalidCharacterError", ATOB_MSG));
    };
    let Some(decoded) = forgiving_b64_decode(s.as_bytes()) else {
        return Err(throw_dom(&ctx, "InvalidCharacterError", ATOB_MSG));
    };
    let latin1: String = decoded.iter().map(|&b| b as char).collect();
    Ok(rquickjs::String::from_str(ctx, &latin1)?.into_value())
}

fn btoa<'js>(ctx: Ctx<'js>, input: Value<'js>) -> Result<String> {
    // Non-Latin1 input is refused before any lone surrogate could matter.
    let s = match input.as_string() {
        Some(s) => s.to_string().ok(),
        None => None,
    };
    let Some(s) = s else {
        return Err(throw_dom(&ctx, "InvalidCharacterError", BTOA_MSG));
    };
    let mut raw = Vec::with_capacity(s.len());
    for ch in s.chars() {
        let c = ch as u32;
        if c > 0xff {
            return Err(throw_dom(&ctx, "InvalidCharacterError", BTOA_MSG));
        }
        raw.push(c as u8);
    }
    Ok(b64_encode(&raw))
}

/// Standard padded base64 of a buffer source (the structured-clone codec's
/// `ArrayBuffer` form).
fn b64_encode_bytes<'js>(ctx: Ctx<'js>, data: Value<'js>) -> Result<String> {
    Ok(b64_encode(&bytes(&ctx, &data)?))
}

fn b64url_encode<'js>(ctx: Ctx<'js>, data: Value<'js>) -> Result<String> {
    let d = bytes(&ctx, &data)?;
    Ok(b64_encode(&d)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_"))
}

/// base64url (or plain base64) to bytes; null when malformed.
fn b64url_decode<'js>(ctx: Ctx<'js>, s: String) -> Result<Value<'js>> {
    let std: String = s.replace('-', "+").replace('_', "/");
    if std
        .bytes()
        .any(|c| matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
    {
        return Ok(Value::new_null(ctx));
    }
    match forgiving_b64_decode(std.as_bytes()) {
        Some(v) => u8array(&ctx, v),
        None => Ok(Value::new_null(ctx)),
    }
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    // The OS source failing is not recoverable; zeros would be worse than a panic,
    // so fall back to a loud error path in the caller instead.
    if getrandom::fill(&mut v).is_err() {
        v.clear();
    }
    v
}

fn random<'js>(ctx: Ctx<'js>, n: usize) -> Result<Value<'js>> {
    if n > MAX_RANDOM_BYTES {
        return Err(throw_dom(
            &ctx,
            "QuotaExceededError",
            &format!(
                "getRandomValues() only accepts buffers of size <= {}K but provided {n} bytes.",
                MAX_RANDOM_BYTES / 1024
            ),
        ));
    }
    let v = random_bytes(n);
    if v.len() != n {
        return Err(throw_dom(
            &ctx,
            "OperationError",
            "The system random source failed.",
        ));
    }
    u8array(&ctx, v)
}

fn random_uuid() -> Result<String> {
    let mut b = random_bytes(16);
    if b.len() != 16 {
        return Err(rquickjs::Error::new_from_js_message(
            "random",
            "uuid",
            "random source failed",
        ));
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

pub fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<()> {
    native.set("utf8Encode", Function::new(ctx.clone(), utf8_encode)?)?;
    native.set(
        "utf8EncodeInto",
        Function::new(ctx.clone(), utf8_encode_into)?,
    )?;
    native.set("encodingName", Function::new(ctx.clone(), encoding_name)?)?;
    native.set("decoderNew", Function::new(ctx.clone(), decoder_new)?)?;
    native.set("decoderDecode", Function::new(ctx.clone(), decoder_decode)?)?;
    native.set("decode", Function::new(ctx.clone(), decode)?)?;
    native.set("atob", Function::new(ctx.clone(), atob)?.with_name("atob")?)?;
    native.set("btoa", Function::new(ctx.clone(), btoa)?.with_name("btoa")?)?;
    native.set("b64Encode", Function::new(ctx.clone(), b64_encode_bytes)?)?;
    native.set("b64urlEncode", Function::new(ctx.clone(), b64url_encode)?)?;
    native.set("b64urlDecode", Function::new(ctx.clone(), b64url_decode)?)?;
    native.set("random", Function::new(ctx.clone(), random)?)?;
    native.set("randomUUID", Function::new(ctx.clone(), random_uuid)?)?;
    Ok(())
}
