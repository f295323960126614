//! Native `JSON.parse` and `JSON.stringify`.
//!
//! QuickJS's own JSON spends most of a JSON echo's time (a token at a time
//! through its generic parser, and a property lookup for `toJSON` on every
//! value it writes). These replacements build and read QuickJS values
//! directly:
//!
//! * `parse` runs serde_json's parser with a visitor that creates the
//!   objects, arrays and strings as it goes. Anything it does not take (a
//!   syntax error, a reviver, a lone surrogate escape, nesting past
//!   serde_json's 128 levels, a number out of f64 range, non-UTF-8 bytes) is
//!   handed to QuickJS's original, which therefore produces every error
//!   message and every result the fast path does not.
//! * `stringify` walks plain objects and arrays whose properties are data
//!   properties and whose prototype chains hold no `toJSON`, without running
//!   any JS. On anything else (a replacer, indentation, `toJSON`, getters,
//!   proxies, wrapper objects, functions, BigInt, cycles, holes, more than
//!   [`MAX_DEPTH`] levels or [`MAX_OUTPUT`] bytes) it drops what it wrote and
//!   calls the original: since nothing observable happened, the result is
//!   exactly the original's, side effects and errors included.

use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem::MaybeUninit;

use rquickjs::{Ctx, Error, Function, Object, Result, TypedArray, Value, qjs};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deepest nesting the native writer follows; deeper values go to the
/// original, which has its own stack check.
const MAX_DEPTH: usize = 128;

/// Array elements gathered before the array is made (16 bytes each).
const GATHERED: usize = 1024;

/// Largest text the native writer builds outside QuickJS's heap (whose
/// memory limit does not see it); longer output goes to the original.
pub const MAX_OUTPUT: usize = 64 << 20;

/// Installs, on the Web APIs' natives object, `native.jsonParse(text)`, `native.jsonParseBytes(u8array)` and
/// `native.jsonStringify(value)`, which `hearth-webapi/js/00_prelude.js` puts behind
/// `JSON.parse`, `JSON.stringify` and `Body.json()`, keeping the originals
/// for what these leave. The closures hold no JS values (a value held there
/// is invisible to the cycle collector and would keep the context alive).
pub fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<()> {
    let realm = Realm::new(ctx)?;
    // `jsonParse(text)`: the value, or undefined when the original must
    // parse it (JSON never parses to undefined).
    native.set(
        "jsonParse",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, text: Value<'js>| -> Result<Value<'js>> {
                if !text.is_string() {
                    return Ok(Value::new_undefined(ctx));
                }
                answer(&ctx, parse_value(&ctx, &text), || {
                    Value::new_undefined(ctx.clone())
                })
            },
        )?,
    )?;
    // `jsonParseBytes(u8array)`: the same for a body's bytes; undefined also
    // when they need decoding first (a BOM, invalid UTF-8).
    native.set(
        "jsonParseBytes",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| -> Result<Value<'js>> {
                // SAFETY: the slice stays valid while it is read: building
                // values allocates but runs no JS, so nothing can detach or
                // resize the buffer.
                let Some(slice) = (unsafe { bytes.as_bytes() }) else {
                    return Ok(Value::new_undefined(ctx));
                };
                answer(&ctx, parse_bytes(&ctx, slice), || {
                    Value::new_undefined(ctx.clone())
                })
            },
        )?,
    )?;
    // `jsonStringify(value)`: the text, undefined for a value with no JSON
    // form, or null when the original must do it (JSON.stringify never
    // returns null).
    native.set(
        "jsonStringify",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, value: Value<'js>| -> Result<Value<'js>> {
                answer(&ctx, realm.stringify(&ctx, &value), || {
                    Value::new_null(ctx.clone())
                })
            },
        )?,
    )?;
    Ok(())
}

thread_local! {
    static COUNTS: std::cell::Cell<Counts> = const { std::cell::Cell::new(Counts { native: 0, fallback: 0 }) };
}

/// How many JSON calls on this thread the natives answered and how many
/// they left to the originals (for tests: a fast path that always gives up
/// would pass every comparison).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub native: u64,
    pub fallback: u64,
}

/// The counts so far on this thread.
pub fn counts() -> Counts {
    COUNTS.with(|c| c.get())
}

fn answer<'js>(
    _ctx: &Ctx<'js>,
    result: std::result::Result<Value<'js>, Stop>,
    fallback: impl FnOnce() -> Value<'js>,
) -> Result<Value<'js>> {
    let mut c = counts();
    let out = match result {
        Ok(v) => {
            c.native += 1;
            Ok(v)
        }
        Err(Stop::Exception) => Err(Error::Exception),
        Err(Stop::Fallback) => {
            c.fallback += 1;
            Ok(fallback())
        }
    };
    COUNTS.with(|cell| cell.set(c));
    out
}

/// Why the native path stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Not for the native path: call the original (nothing observable done).
    Fallback,
    /// QuickJS threw (out of memory); the exception is pending.
    Exception,
}

// ---------------------------------------------------------------- parse

fn parse_value<'js>(ctx: &Ctx<'js>, text: &Value<'js>) -> std::result::Result<Value<'js>, Stop> {
    let raw = ctx.as_raw().as_ptr();
    let mut len: qjs::size_t = 0;
    // SAFETY: `text` is a live string of this context; the returned buffer
    // is released below with `JS_FreeCString`.
    let ptr = unsafe { qjs::JS_ToCStringLen2(raw, &mut len, text.as_raw(), false) };
    if ptr.is_null() {
        return Err(Stop::Exception);
    }
    // SAFETY: QuickJS returned `len` readable bytes at `ptr` (UTF-8, with a
    // lone surrogate as its 3-byte form, which serde_json refuses).
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) };
    let result = parse_bytes(ctx, bytes);
    // SAFETY: `ptr` came from `JS_ToCStringLen2` and is freed once.
    unsafe { qjs::JS_FreeCString(raw, ptr) };
    result
}

fn parse_bytes<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> std::result::Result<Value<'js>, Stop> {
    let builder = Builder {
        ctx: ctx.as_raw().as_ptr(),
        thrown: std::cell::Cell::new(false),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = (&builder)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        // SAFETY: an owned value of this context, handed over.
        Ok(v) => Ok(unsafe { Value::from_raw(ctx.clone(), v.into_raw()) }),
        Err(_) if builder.thrown.get() => Err(Stop::Exception),
        Err(_) => Err(Stop::Fallback),
    }
}

/// An owned QuickJS value, freed unless handed over.
struct Owned {
    ctx: *mut qjs::JSContext,
    value: qjs::JSValue,
}

impl Owned {
    fn into_raw(self) -> qjs::JSValue {
        let value = self.value;
        std::mem::forget(self);
        value
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: we own one reference to `value`, in `ctx`.
        unsafe { qjs::JS_FreeValue(self.ctx, self.value) }
    }
}

/// An owned atom, freed on drop.
struct Atom {
    ctx: *mut qjs::JSContext,
    atom: qjs::JSAtom,
}

impl Drop for Atom {
    fn drop(&mut self) {
        // SAFETY: we own one reference to `atom`, in `ctx`.
        unsafe { qjs::JS_FreeAtom(self.ctx, self.atom) }
    }
}

/// Builds QuickJS values from serde_json's events.
struct Builder {
    ctx: *mut qjs::JSContext,
    /// Set when QuickJS threw, so the error is not mistaken for bad input.
    thrown: std::cell::Cell<bool>,
}

impl Builder {
    fn owned<E: de::Error>(&self, value: qjs::JSValue) -> std::result::Result<Owned, E> {
        // SAFETY: reading the tag of a value QuickJS returned.
        if unsafe { qjs::JS_VALUE_GET_NORM_TAG(value) } == qjs::JS_TAG_EXCEPTION {
            return Err(self.threw());
        }
        Ok(Owned {
            ctx: self.ctx,
            value,
        })
    }

    fn threw<E: de::Error>(&self) -> E {
        self.thrown.set(true);
        E::custom("exception")
    }

    fn number<E: de::Error>(&self, n: f64) -> std::result::Result<Owned, E> {
        // SAFETY: numbers need no allocation; the result is owned.
        self.owned(unsafe { qjs::JS_NewNumber(self.ctx, n) })
    }

    fn string<E: de::Error>(&self, s: &str) -> std::result::Result<Owned, E> {
        // SAFETY: `s` is valid UTF-8 of `s.len()` bytes; the result is owned.
        self.owned(unsafe { qjs::JS_NewStringLen(self.ctx, s.as_ptr().cast(), s.len() as _) })
    }
}

impl<'de> DeserializeSeed<'de> for &Builder {
    type Value = Owned;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Owned, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &Builder {
    type Value = Owned;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> std::result::Result<Owned, E> {
        Ok(Owned {
            ctx: self.ctx,
            value: if b { qjs::JS_TRUE } else { qjs::JS_FALSE },
        })
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Owned, E> {
        Ok(Owned {
            ctx: self.ctx,
            value: qjs::JS_NULL,
        })
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Owned, E> {
        match i32::try_from(n) {
            Ok(i) => Ok(Owned {
                ctx: self.ctx,
                value: qjs::JS_MKVAL(qjs::JS_TAG_INT, i),
            }),
            // Rounds to nearest, ties to even: the Number value of the text.
            Err(_) => self.number(n as f64),
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Owned, E> {
        match i32::try_from(n) {
            Ok(i) => Ok(Owned {
                ctx: self.ctx,
                value: qjs::JS_MKVAL(qjs::JS_TAG_INT, i),
            }),
            Err(_) => self.number(n as f64),
        }
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Owned, E> {
        self.number(n)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Owned, E> {
        self.string(s)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Owned, A::Error> {
        // The first elements are gathered and handed over at once; a long
        // array is then extended one element at a time, so what is held
        // outside QuickJS's heap (and its memory limit) stays small.
        let mut items = Values {
            ctx: self.ctx,
            values: Vec::new(),
        };
        while items.values.len() < GATHERED {
            match seq.next_element_seed(self)? {
                Some(item) => items.values.push(item.into_raw()),
                None => break,
            }
        }
        let count = items.values.len();
        let values = std::mem::take(&mut items.values);
        // SAFETY: `JS_NewArrayFrom` takes ownership of every value (freeing
        // them if it fails); `values` outlives the call; `count` is at most
        // GATHERED.
        let array =
            self.owned(unsafe { qjs::JS_NewArrayFrom(self.ctx, count as i32, values.as_ptr()) })?;
        if count < GATHERED {
            return Ok(array);
        }
        let mut index = count as u32;
        while let Some(item) = seq.next_element_seed(self)? {
            // SAFETY: the array is live; the value's ownership passes over.
            let done = unsafe {
                qjs::JS_DefinePropertyValueUint32(
                    self.ctx,
                    array.value,
                    index,
                    item.into_raw(),
                    qjs::JS_PROP_C_W_E as i32,
                )
            };
            if done < 0 {
                return Err(self.threw());
            }
            index = index
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("array too long"))?;
        }
        Ok(array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Owned, A::Error> {
        // SAFETY: a new, owned object.
        let object = self.owned(unsafe { qjs::JS_NewObject(self.ctx) })?;
        while let Some(key) = map.next_key_seed(KeySeed(self))? {
            let value = map.next_value_seed(self)?;
            // Defined, not assigned: `__proto__` becomes an own property and
            // a repeated key keeps its first position with the last value.
            // SAFETY: the object and atom are live; the value's ownership
            // passes to QuickJS.
            let done = unsafe {
                qjs::JS_DefinePropertyValue(
                    self.ctx,
                    object.value,
                    key.atom,
                    value.into_raw(),
                    qjs::JS_PROP_C_W_E as i32,
                )
            };
            if done < 0 {
                return Err(self.threw());
            }
        }
        Ok(object)
    }
}

/// Values gathered for an array, freed if the array is never made.
struct Values {
    ctx: *mut qjs::JSContext,
    values: Vec<qjs::JSValue>,
}

impl Drop for Values {
    fn drop(&mut self) {
        for v in self.values.drain(..) {
            // SAFETY: each value is owned by this list.
            unsafe { qjs::JS_FreeValue(self.ctx, v) }
        }
    }
}

struct KeySeed<'a>(&'a Builder);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Atom;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Atom, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Atom;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Atom, E> {
        let b = self.0;
        let atom = if s.is_ascii() {
            // SAFETY: `s` is `s.len()` readable bytes.
            unsafe { qjs::JS_NewAtomLen(b.ctx, s.as_ptr().cast(), s.len() as _) }
        } else {
            // `JS_NewAtomLen` would match UTF-8 bytes against Latin-1 atoms
            // byte for byte; going through a string compares characters.
            let text = b.string::<E>(s)?;
            // SAFETY: `text` is a live string; the atom is owned.
            unsafe { qjs::JS_ValueToAtom(b.ctx, text.value) }
        };
        if atom == 0 {
            return Err(b.threw());
        }
        Ok(Atom { ctx: b.ctx, atom })
    }
}

// ------------------------------------------------------------ stringify

/// What the writer needs from the context, captured once per context. The
/// prototypes are held by pointer only: the context keeps its intrinsics
/// alive as long as it can call the native holding this.
#[derive(Clone, Copy)]
struct Realm {
    object_class: qjs::JSClassID,
    array_class: qjs::JSClassID,
    object_proto: *mut c_void,
    array_proto: *mut c_void,
}

impl Realm {
    fn new(ctx: &Ctx<'_>) -> Result<Self> {
        let object = Object::new(ctx.clone())?;
        let array = rquickjs::Array::new(ctx.clone())?;
        let proto = |o: &Object<'_>| -> Result<*mut c_void> {
            let p = o
                .get_prototype()
                .ok_or_else(|| Error::new_from_js("null", "prototype"))?;
            // SAFETY: an object value's payload is its pointer.
            Ok(unsafe { qjs::JS_VALUE_GET_PTR(p.as_raw()) })
        };
        // SAFETY: reading the class of live objects.
        let (object_class, array_class) = unsafe {
            (
                qjs::JS_GetClassID(object.as_raw()),
                qjs::JS_GetClassID(array.as_raw()),
            )
        };
        Ok(Realm {
            object_class,
            array_class,
            object_proto: proto(&object)?,
            array_proto: proto(array.as_object())?,
        })
    }

    fn stringify<'js>(
        &self,
        ctx: &Ctx<'js>,
        value: &Value<'js>,
    ) -> std::result::Result<Value<'js>, Stop> {
        let raw = ctx.as_raw().as_ptr();
        let to_json = b"toJSON";
        // SAFETY: a known ASCII name; the atom is owned by the guard.
        let atom = unsafe { qjs::JS_NewAtomLen(raw, to_json.as_ptr().cast(), to_json.len() as _) };
        if atom == 0 {
            return Err(Stop::Exception);
        }
        let to_json = Atom { ctx: raw, atom };
        let mut w = Writer {
            ctx: raw,
            realm: self,
            to_json: to_json.atom,
            out: Vec::new(),
            stack: Vec::new(),
            protos_ok: Vec::new(),
            keys: HashMap::default(),
            key_text: Vec::new(),
        };
        // The intrinsic prototypes are where a `toJSON` would usually come
        // from; checked once per call, then every object reaching them is
        // known to have none inherited.
        for proto in [self.object_proto, self.array_proto] {
            if w.has_own(qjs::JS_MKPTR(qjs::JS_TAG_OBJECT, proto), w.to_json)? {
                return Err(Stop::Fallback);
            }
        }
        if !w.value(value.as_raw())? {
            return Ok(Value::new_undefined(ctx.clone()));
        }
        // SAFETY: `out` is valid UTF-8 (lone surrogates were escaped).
        let s = unsafe { qjs::JS_NewStringLen(raw, w.out.as_ptr().cast(), w.out.len() as _) };
        // SAFETY: reading the tag of the returned value.
        if unsafe { qjs::JS_VALUE_GET_NORM_TAG(s) } == qjs::JS_TAG_EXCEPTION {
            return Err(Stop::Exception);
        }
        // SAFETY: an owned string of this context.
        Ok(unsafe { Value::from_raw(ctx.clone(), s) })
    }
}

/// Atoms are small integers already; hashing them again is wasted work.
#[derive(Default)]
struct AtomHasher(u64);

impl Hasher for AtomHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Writer<'r> {
    ctx: *mut qjs::JSContext,
    realm: &'r Realm,
    to_json: qjs::JSAtom,
    out: Vec<u8>,
    /// Objects being written, for cycles (left to the original's TypeError).
    stack: Vec<*mut c_void>,
    /// Prototypes already checked for an own `toJSON`.
    protos_ok: Vec<*mut c_void>,
    /// Each property name's `"name":` text, by atom, as a range of `key_text`.
    keys: HashMap<qjs::JSAtom, (u32, u32), BuildHasherDefault<AtomHasher>>,
    key_text: Vec<u8>,
}

type Step<T = ()> = std::result::Result<T, Stop>;

impl Writer<'_> {
    /// Writes `v`; `Ok(false)` when it serializes to nothing (undefined,
    /// a symbol), which the caller turns into a skipped key or `null`.
    fn value(&mut self, v: qjs::JSValue) -> Step<bool> {
        // SAFETY: reading the tag and payload of a live value.
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(v) };
        match tag {
            qjs::JS_TAG_INT => {
                // SAFETY: the tag says int.
                push_int(
                    &mut self.out,
                    i64::from(unsafe { qjs::JS_VALUE_GET_INT(v) }),
                );
            }
            qjs::JS_TAG_FLOAT64 => {
                // SAFETY: the tag says float64.
                push_number(&mut self.out, unsafe { qjs::JS_VALUE_GET_FLOAT64(v) });
            }
            qjs::JS_TAG_BOOL => {
                // SAFETY: the tag says bool.
                let b = unsafe { qjs::JS_VALUE_GET_BOOL(v) };
                self.out
                    .extend_from_slice(if b { b"true" } else { b"false" });
            }
            qjs::JS_TAG_NULL => self.out.extend_from_slice(b"null"),
            qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_SYMBOL => return Ok(false),
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => self.string(v)?,
            qjs::JS_TAG_OBJECT => {
                // SAFETY: the tag says object.
                let (class, ptr) = unsafe { (qjs::JS_GetClassID(v), qjs::JS_VALUE_GET_PTR(v)) };
                if self.stack.len() >= MAX_DEPTH || self.stack.contains(&ptr) {
                    return Err(Stop::Fallback);
                }
                let is_array = if class == self.realm.object_class {
                    false
                } else if class == self.realm.array_class {
                    true
                } else {
                    return Err(Stop::Fallback);
                };
                self.check_chain(v)?;
                self.stack.push(ptr);
                if is_array {
                    self.array(v)?
                } else {
                    self.object(v)?
                }
                self.stack.pop();
            }
            _ => return Err(Stop::Fallback),
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(Stop::Fallback);
        }
        Ok(true)
    }

    /// No own `toJSON` on the object or anything it inherits from, and
    /// nothing exotic on the way (a Proxy could run code when asked).
    fn check_chain(&mut self, v: qjs::JSValue) -> Step {
        if self.has_own(v, self.to_json)? {
            return Err(Stop::Fallback);
        }
        let mut proto = self.proto(v);
        loop {
            // SAFETY: reading the tag and pointer of a live value.
            let (tag, ptr) = unsafe {
                (
                    qjs::JS_VALUE_GET_NORM_TAG(proto.value),
                    qjs::JS_VALUE_GET_PTR(proto.value),
                )
            };
            if tag != qjs::JS_TAG_OBJECT
                || ptr == self.realm.object_proto
                || ptr == self.realm.array_proto
                || self.protos_ok.contains(&ptr)
            {
                return Ok(());
            }
            // SAFETY: the tag says object.
            let class = unsafe { qjs::JS_GetClassID(proto.value) };
            if (class != self.realm.object_class && class != self.realm.array_class)
                || self.has_own(proto.value, self.to_json)?
            {
                return Err(Stop::Fallback);
            }
            if self.protos_ok.len() < 16 {
                self.protos_ok.push(ptr);
            }
            proto = self.proto(proto.value);
        }
    }

    /// The prototype of an ordinary object (no trap can run).
    fn proto(&self, v: qjs::JSValue) -> Owned {
        // SAFETY: `v` is an ordinary object, for which this only reads its
        // shape; the result is owned.
        let value = unsafe { qjs::JS_GetPrototype(self.ctx, v) };
        Owned {
            ctx: self.ctx,
            value,
        }
    }

    fn has_own(&self, obj: qjs::JSValue, atom: qjs::JSAtom) -> Step<bool> {
        // SAFETY: `obj` is an ordinary object; no descriptor is filled.
        match unsafe { qjs::JS_GetOwnProperty(self.ctx, std::ptr::null_mut(), obj, atom) } {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ => Err(Stop::Exception),
        }
    }

    /// An own data property's value; `None` if absent (a hole), and a
    /// fallback for an accessor (its getter would run).
    fn own_value(&self, obj: qjs::JSValue, atom: qjs::JSAtom) -> Step<Option<Owned>> {
        let mut desc = MaybeUninit::<qjs::JSPropertyDescriptor>::uninit();
        // SAFETY: `obj` is an ordinary object; when found, every field of
        // `desc` is filled and owned by us.
        let found = unsafe { qjs::JS_GetOwnProperty(self.ctx, desc.as_mut_ptr(), obj, atom) };
        if found < 0 {
            return Err(Stop::Exception);
        }
        if found == 0 {
            return Ok(None);
        }
        // SAFETY: filled, as `found` is positive.
        let desc = unsafe { desc.assume_init() };
        let value = Owned {
            ctx: self.ctx,
            value: desc.value,
        };
        let getter = Owned {
            ctx: self.ctx,
            value: desc.getter,
        };
        let setter = Owned {
            ctx: self.ctx,
            value: desc.setter,
        };
        if desc.flags & qjs::JS_PROP_GETSET as i32 != 0 {
            drop((getter, setter));
            return Err(Stop::Fallback);
        }
        Ok(Some(value))
    }

    fn object(&mut self, obj: qjs::JSValue) -> Step {
        let mut tab = std::ptr::null_mut::<qjs::JSPropertyEnum>();
        let mut len = 0u32;
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
        // SAFETY: `obj` is an ordinary object, so listing runs no JS; the
        // table is freed below.
        if unsafe { qjs::JS_GetOwnPropertyNames(self.ctx, &mut tab, &mut len, obj, flags) } < 0 {
            return Err(Stop::Exception);
        }
        let result = (|| {
            let names: &[qjs::JSPropertyEnum] = if len == 0 {
                &[]
            } else {
                // SAFETY: QuickJS returned `len` entries at `tab`.
                unsafe { std::slice::from_raw_parts(tab, len as usize) }
            };
            self.out.push(b'{');
            let mut first = true;
            for name in names {
                let Some(value) = self.own_value(obj, name.atom)? else {
                    continue;
                };
                let mark = self.out.len();
                if !first {
                    self.out.push(b',');
                }
                self.key(name.atom)?;
                if self.value(value.value)? {
                    first = false;
                } else {
                    self.out.truncate(mark);
                }
            }
            self.out.push(b'}');
            Ok(())
        })();
        // SAFETY: the table and its atoms came from `JS_GetOwnPropertyNames`.
        unsafe { qjs::JS_FreePropertyEnum(self.ctx, tab, len) };
        result
    }

    fn array(&mut self, arr: qjs::JSValue) -> Step {
        let mut len = 0i64;
        // SAFETY: an Array's length is an own data property (no getter).
        if unsafe { qjs::JS_GetLength(self.ctx, arr, &mut len) } < 0 {
            return Err(Stop::Exception);
        }
        self.out.push(b'[');
        for i in 0..len {
            if i > 0 {
                self.out.push(b',');
            }
            let Ok(index) = u32::try_from(i) else {
                return Err(Stop::Fallback);
            };
            // SAFETY: indices up to 2^31-1 are tagged atoms (no allocation);
            // the guard frees any other.
            let atom = unsafe { qjs::JS_NewAtomUInt32(self.ctx, index) };
            let atom = Atom {
                ctx: self.ctx,
                atom,
            };
            if atom.atom == 0 {
                return Err(Stop::Exception);
            }
            // A hole reads through the prototype chain: left to the original.
            let Some(value) = self.own_value(arr, atom.atom)? else {
                return Err(Stop::Fallback);
            };
            if !self.value(value.value)? {
                self.out.extend_from_slice(b"null");
            }
        }
        self.out.push(b']');
        Ok(())
    }

    fn key(&mut self, atom: qjs::JSAtom) -> Step {
        if let Some(&(start, end)) = self.keys.get(&atom) {
            self.out
                .extend_from_slice(&self.key_text[start as usize..end as usize]);
            return Ok(());
        }
        let mut len: qjs::size_t = 0;
        // SAFETY: a live atom of this context; the buffer is freed below.
        let ptr = unsafe { qjs::JS_AtomToCStringLen(self.ctx, &mut len, atom) };
        if ptr.is_null() {
            return Err(Stop::Exception);
        }
        // SAFETY: QuickJS returned `len` readable bytes at `ptr`.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) };
        let start = self.key_text.len();
        quote(&mut self.key_text, bytes);
        self.key_text.push(b':');
        // SAFETY: `ptr` came from `JS_AtomToCStringLen`, freed once.
        unsafe { qjs::JS_FreeCString(self.ctx, ptr) };
        let end = self.key_text.len();
        self.out.extend_from_slice(&self.key_text[start..end]);
        // Atoms stay alive while the objects naming them are being written;
        // past 4 GiB of names the cache simply stops growing.
        if let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(end)) {
            self.keys.insert(atom, (s, e));
        }
        Ok(())
    }

    fn string(&mut self, v: qjs::JSValue) -> Step {
        let mut len: qjs::size_t = 0;
        // SAFETY: `v` is a live string; the buffer is freed below.
        let ptr = unsafe { qjs::JS_ToCStringLen2(self.ctx, &mut len, v, false) };
        if ptr.is_null() {
            return Err(Stop::Exception);
        }
        // SAFETY: QuickJS returned `len` readable bytes at `ptr`.
        quote(&mut self.out, unsafe {
            std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize)
        });
        // SAFETY: `ptr` came from `JS_ToCStringLen2`, freed once.
        unsafe { qjs::JS_FreeCString(self.ctx, ptr) };
        Ok(())
    }
}

/// Bytes that `QuoteJSONString` escapes (besides lone surrogates).
const fn escapes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    // Possible start of a surrogate's 3-byte form.
    t[0xED] = true;
    t
}

static ESCAPE: [bool; 256] = escapes();

/// ECMA-262 QuoteJSONString over QuickJS's UTF-8 form of a string, where a
/// lone surrogate appears as its own 3-byte sequence (ED A0..BF xx); paired
/// surrogates arrive as one 4-byte character and are copied as they are.
fn quote(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        if b == 0xED {
            match (s.get(i + 1), s.get(i + 2)) {
                (Some(&b1), Some(&b2)) if b1 >= 0xA0 => {
                    out.extend_from_slice(&s[start..i]);
                    let unit = 0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[((unit >> shift) & 0xF) as usize]);
                    }
                    i += 3;
                    start = i;
                }
                _ => i += 1,
            }
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// ECMA-262 Number::toString(x, 10) for a JSON text: non-finite values are
/// `null`, -0 is `0`. Rust's `{:e}` gives the shortest digits that round
/// trip (the spec's k digits); the spec's rules then place the point.
pub fn push_number(out: &mut Vec<u8>, x: f64) {
    use std::io::Write as _;
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if x == 0.0 {
        out.push(b'0');
        return;
    }
    // Integers below 2^53 print exactly as their digits.
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        push_int(out, x as i64);
        return;
    }
    let mut buf = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // 40 bytes hold any f64 in this form (17 digits, sign, point, e-324).
        let _ = write!(cursor, "{:e}", x.abs());
        cursor.position() as usize
    };
    let text = &buf[..len];
    let e_at = text.iter().position(|&c| c == b'e').unwrap_or(len);
    let mut digits = [0u8; 20];
    let mut k = 0;
    for &c in &text[..e_at] {
        if c.is_ascii_digit() && k < digits.len() {
            digits[k] = c;
            k += 1;
        }
    }
    let digits = &digits[..k];
    let exp: i32 = std::str::from_utf8(&text[(e_at + 1).min(len)..])
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let n = exp + 1;
    let k = k as i32;
    if x < 0.0 {
        out.push(b'-');
    }
    if k <= n && n <= 21 {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.extend_from_slice(&digits[..n as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-n) as usize));
        out.extend_from_slice(digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if n - 1 < 0 { b'-' } else { b'+' });
        push_int(out, i64::from((n - 1).abs()));
    }
}

#[cfg(test)]
mod tests {
    use super::push_number;

    fn show(x: f64) -> String {
        let mut out = Vec::new();
        push_number(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        assert_eq!(show(1e21), "1e+21");
        assert_eq!(show(1e20), "100000000000000000000");
        assert_eq!(show(5e-7), "5e-7");
        assert_eq!(show(0.000001), "0.000001");
        assert_eq!(show(-0.0), "0");
        assert_eq!(show(f64::NAN), "null");
        assert_eq!(show(f64::NEG_INFINITY), "null");
        assert_eq!(show(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(show(2f64.powi(60)), "1152921504606847000");
        assert_eq!(show(-1.5e-10), "-1.5e-10");
        assert_eq!(show(123.456), "123.456");
        assert_eq!(show(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(show(5e-324), "5e-324");
    }
}
