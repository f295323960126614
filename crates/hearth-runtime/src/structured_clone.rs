//! The persisted structured-clone format as the host sees it.
//!
//! The codec itself is JavaScript in `hearth-webapi` (`js/41_serialize.js`,
//! where the format is specified), evaluated once per isolate: Durable
//! Object storage and RPC, service-binding RPC, queue messages sent with
//! `contentType: "v8"` and Workflow params, step outputs and event payloads
//! all go through it. The host only writes a few values itself (an error
//! answer for a failed call, a JSON body from the CLI) and reads values back
//! as plain JSON for display; those few shapes live here, next to nothing
//! else, so every writer of the format is in one of these two places.

use serde_json::{Map, Value, json};

/// The format version every value written now carries (`{"$sc": 1, ...}`).
pub const FORMAT_VERSION: u64 = 1;

/// The longest array [`to_plain_json`] expands holes into: a hostile hole
/// count must not make the CLI allocate without bound.
const MAX_DISPLAY_ARRAY: usize = 100_000;

/// A JSON value that has no form in the format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StructuredCloneError {
    #[error("number {0} is out of range")]
    NumberOutOfRange(String),
}

/// The persisted text of a JSON value, as the structured clone of what
/// `JSON.parse` would give.
pub fn encode_json(v: &Value) -> Result<String, StructuredCloneError> {
    Ok(json!({ "$sc": FORMAT_VERSION, "v": tree(v)? }).to_string())
}

fn tree(v: &Value) -> Result<Value, StructuredCloneError> {
    Ok(match v {
        Value::Array(items) => {
            let items: Result<Vec<Value>, _> = items.iter().map(tree).collect();
            json!({ "$": "a", "v": items? })
        }
        Value::Object(map) => {
            let mut fields = Map::new();
            for (k, x) in map {
                fields.insert(k.clone(), tree(x)?);
            }
            json!({ "$": "o", "v": fields })
        }
        Value::Number(n) => match n.as_f64() {
            None => return Err(StructuredCloneError::NumberOutOfRange(n.to_string())),
            Some(f) if f == 0.0 && f.is_sign_negative() => json!({ "$": "n", "v": "-0" }),
            Some(_) => v.clone(),
        },
        other => other.clone(),
    })
}

/// The persisted text of an `Error` named `name` (a built-in class name comes
/// back as that class), which a caller of a Durable Object or service throws.
pub(crate) fn error_text(name: &str, message: &str) -> String {
    json!({ "$sc": FORMAT_VERSION, "v": { "$": "e", "n": name, "m": message } }).to_string()
}

/// A stored queue or Workflow value (this format, or the one written before
/// the version marker) as plain JSON for display: `undefined` as null, maps
/// as entry lists, sets as arrays, bytes as `{"bytes": base64}`, errors as
/// `{name, message}`, a reference as `"[circular]"`, dates through `date`
/// (milliseconds since the epoch; `None` keeps the number). `None` if the bytes are not JSON.
pub fn to_plain_json(bytes: &[u8], date: &dyn Fn(f64) -> Option<Value>) -> Option<Value> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    Some(match doc.get("$sc") {
        Some(_) => plain(doc.get("v").unwrap_or(&Value::Null), date),
        None => plain_legacy(&doc, date),
    })
}

fn date_of(
    v: &Value,
    date: &dyn Fn(f64) -> Option<Value>,
    nested: &dyn Fn(&Value) -> Value,
) -> Value {
    match v.as_f64().and_then(date) {
        Some(shown) => shown,
        None => nested(v),
    }
}

fn plain(v: &Value, date: &dyn Fn(f64) -> Option<Value>) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    let field = |k: &str| o.get(k).cloned().unwrap_or(Value::Null);
    let list = |k: &str| {
        o.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let p = |x: &Value| plain(x, date);
    match o.get("$").and_then(Value::as_str).unwrap_or("") {
        "u" => Value::Null,
        "n" | "bi" => field("v"),
        "w" => p(&field("v")),
        "d" => date_of(&field("v"), date, &p),
        "o" => Value::Object(
            o.get("v")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, x)| (k.clone(), p(x))).collect())
                .unwrap_or_default(),
        ),
        "a" => {
            let mut out = Vec::new();
            for x in list("v") {
                if out.len() >= MAX_DISPLAY_ARRAY {
                    break;
                }
                if x.get("$").and_then(Value::as_str) == Some("h") {
                    let n = x.get("n").and_then(Value::as_u64).unwrap_or(1) as usize;
                    let n = n.min(MAX_DISPLAY_ARRAY - out.len());
                    out.extend(std::iter::repeat_n(Value::Null, n));
                } else {
                    out.push(p(&x));
                }
            }
            Value::Array(out)
        }
        "m" => Value::Array(
            list("v")
                .iter()
                .map(|e| {
                    json!([
                        p(e.get(0).unwrap_or(&Value::Null)),
                        p(e.get(1).unwrap_or(&Value::Null))
                    ])
                })
                .collect(),
        ),
        "s" => Value::Array(list("v").iter().map(p).collect()),
        "re" => regexp(&field("s"), &field("f")),
        "ab" => json!({ "bytes": field("v") }),
        "v" => p(&field("b")),
        "e" | "de" => json!({ "name": field("n"), "message": field("m") }),
        "ref" => json!("[circular]"),
        _ => v.clone(),
    }
}

fn regexp(source: &Value, flags: &Value) -> Value {
    json!(format!(
        "/{}/{}",
        source.as_str().unwrap_or(""),
        flags.as_str().unwrap_or("")
    ))
}

/// The queue and Workflow encoding before the version marker: entry lists
/// for arrays and objects, "r" a back-reference, "er" an error.
fn plain_legacy(v: &Value, date: &dyn Fn(f64) -> Option<Value>) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    let field = |k: &str| o.get(k).cloned().unwrap_or(Value::Null);
    let entries = || {
        o.get("e")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let p = |x: &Value| plain_legacy(x, date);
    let second = |e: &Value| p(e.get(1).unwrap_or(&Value::Null));
    match o.get("$").and_then(Value::as_str).unwrap_or("") {
        "u" => Value::Null,
        "n" | "bi" | "bio" | "so" => field("v"),
        "bo" | "no" => p(&field("v")),
        "d" => date_of(&field("v"), date, &p),
        "a" => Value::Array(entries().iter().map(second).collect()),
        "o" => Value::Object(
            entries()
                .iter()
                .filter_map(|e| Some((e.get(0)?.as_str()?.to_string(), second(e))))
                .collect(),
        ),
        "m" => Value::Array(
            entries()
                .iter()
                .map(|e| json!([p(e.get(0).unwrap_or(&Value::Null)), second(e)]))
                .collect(),
        ),
        "s" => Value::Array(entries().iter().map(p).collect()),
        "re" => regexp(&field("s"), &field("f")),
        "ab" => json!({ "bytes": field("v") }),
        "v" => p(&field("b")),
        "er" => json!({ "name": field("n"), "message": field("m") }),
        "r" => json!("[circular]"),
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: f64) -> Option<Value> {
        Some(json!(format!("ms:{ms}")))
    }

    /// The exact text of what the host writes; the JS codec's golden tests
    /// pin the same tags (hearth-webapi/tests/serialize.rs).
    #[test]
    fn golden_text_of_host_written_values() {
        let v = json!({"a": [1, "x", null, true], "z": -0.0, "o": {}});
        assert_eq!(
            encode_json(&v).unwrap(),
            r#"{"$sc":1,"v":{"$":"o","v":{"a":{"$":"a","v":[1,"x",null,true]},"z":{"$":"n","v":"-0"},"o":{"$":"o","v":{}}}}}"#
        );
        assert_eq!(
            error_text("TypeError", "no \"such\" method"),
            r#"{"$sc":1,"v":{"$":"e","n":"TypeError","m":"no \"such\" method"}}"#
        );
    }

    #[test]
    fn reads_both_formats_as_plain_json() {
        let v1 = r#"{"$sc":1,"v":{"$":"o","v":{"n":1,"d":{"$":"d","v":0},"u":{"$":"u"},
            "a":{"$":"a","v":["x",{"$":"h","n":2},{"$":"n","v":"NaN"}]},
            "m":{"$":"m","v":[[1,{"$":"bi","v":"7"}]]},"self":{"$":"ref","i":0}}}}"#;
        assert_eq!(
            to_plain_json(v1.as_bytes(), &ms).unwrap(),
            json!({"n": 1, "d": "ms:0", "u": null, "a": ["x", null, null, "NaN"], "m": [[1, "7"]], "self": "[circular]"})
        );
        let legacy = json!({"$": "o", "e": [
            ["n", 1], ["d", {"$": "d", "v": 0}], ["u", {"$": "u"}],
            ["a", {"$": "a", "l": 2, "e": [["0", "x"], ["1", {"$": "n", "v": "NaN"}]]}]
        ]});
        assert_eq!(
            to_plain_json(legacy.to_string().as_bytes(), &ms).unwrap(),
            json!({"n": 1, "d": "ms:0", "u": null, "a": ["x", "NaN"]})
        );
        assert_eq!(to_plain_json(b"not json", &ms), None);
    }

    #[test]
    fn hole_runs_are_bounded_for_display() {
        let v = r#"{"$sc":1,"v":{"$":"a","v":[{"$":"h","n":1000000000000}]}}"#;
        let out = to_plain_json(v.as_bytes(), &ms).unwrap();
        assert_eq!(out.as_array().map(Vec::len), Some(MAX_DISPLAY_ARRAY));
    }
}
