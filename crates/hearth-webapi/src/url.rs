//! Natives behind `URL` and `URLSearchParams`: the `url` crate implements
//! WHATWG URL parsing, so JS only keeps the serialized href and components.

use rquickjs::{Array, Ctx, Function, Object, Result, Value, function::Opt};
use url::{Url, quirks};

use crate::util::usv;

fn components<'js>(ctx: &Ctx<'js>, u: &Url) -> Result<Value<'js>> {
    let a = Array::new(ctx.clone())?;
    let parts = [
        quirks::href(u).to_owned(),
        quirks::origin(u),
        quirks::protocol(u).to_owned(),
        quirks::username(u).to_owned(),
        quirks::password(u).to_owned(),
        quirks::host(u).to_owned(),
        quirks::hostname(u).to_owned(),
        quirks::port(u).to_owned(),
        quirks::pathname(u).to_owned(),
        quirks::search(u).to_owned(),
        quirks::hash(u).to_owned(),
    ];
    for (i, p) in parts.into_iter().enumerate() {
        a.set(i, p)?;
    }
    Ok(a.into_value())
}

fn parse<'js>(ctx: &Ctx<'js>, input: &Value<'js>, base: &Opt<Value<'js>>) -> Result<Option<Url>> {
    let input = usv(ctx, input)?;
    match base.0.as_ref().filter(|b| !b.is_undefined()) {
        Some(b) => {
            let b = usv(ctx, b)?;
            match Url::parse(&b) {
                Ok(base) => Ok(Url::options().base_url(Some(&base)).parse(&input).ok()),
                Err(_) => Ok(None),
            }
        }
        None => Ok(Url::parse(&input).ok()),
    }
}

/// `urlParse(input, base?)` -> component array, or null when parsing fails.
fn url_parse<'js>(ctx: Ctx<'js>, input: Value<'js>, base: Opt<Value<'js>>) -> Result<Value<'js>> {
    match parse(&ctx, &input, &base)? {
        Some(u) => components(&ctx, &u),
        None => Ok(Value::new_null(ctx)),
    }
}

/// `urlHref(input, base?)` -> serialized URL or null; the cheap path used by
/// `new Request(url)`.
fn url_href<'js>(ctx: Ctx<'js>, input: Value<'js>, base: Opt<Value<'js>>) -> Result<Value<'js>> {
    match parse(&ctx, &input, &base)? {
        Some(u) => Ok(rquickjs::String::from_str(ctx, u.as_str())?.into_value()),
        None => Ok(Value::new_null(ctx)),
    }
}

/// `urlSet(href, setter, value)` -> component array after running the setter.
/// Failing setters leave the URL unchanged, as the spec says.
fn url_set<'js>(
    ctx: Ctx<'js>,
    href: String,
    which: String,
    value: Value<'js>,
) -> Result<Value<'js>> {
    let mut u = match Url::parse(&href) {
        Ok(u) => u,
        Err(_) => return Ok(Value::new_null(ctx)),
    };
    let v = usv(&ctx, &value)?;
    match which.as_str() {
        "href" if quirks::set_href(&mut u, &v).is_err() => return Ok(Value::new_null(ctx)),
        "protocol" => drop(quirks::set_protocol(&mut u, &v)),
        "username" => drop(quirks::set_username(&mut u, &v)),
        "password" => drop(quirks::set_password(&mut u, &v)),
        "host" => drop(quirks::set_host(&mut u, &v)),
        "hostname" => drop(quirks::set_hostname(&mut u, &v)),
        "port" => drop(quirks::set_port(&mut u, &v)),
        "pathname" => quirks::set_pathname(&mut u, &v),
        "search" => quirks::set_search(&mut u, &v),
        "hash" => quirks::set_hash(&mut u, &v),
        _ => {}
    }
    components(&ctx, &u)
}

/// `formParse(string)` -> flat [name, value, name, value, ...].
fn form_parse<'js>(ctx: Ctx<'js>, input: Value<'js>) -> Result<Value<'js>> {
    let s = usv(&ctx, &input)?;
    let a = Array::new(ctx.clone())?;
    let mut i = 0;
    for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
        a.set(i, k.as_ref())?;
        a.set(i + 1, v.as_ref())?;
        i += 2;
    }
    Ok(a.into_value())
}

/// `formSerialize(flatPairs)` -> application/x-www-form-urlencoded string.
fn form_serialize<'js>(ctx: Ctx<'js>, pairs: Array<'js>) -> Result<String> {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    let n = pairs.len();
    let mut i = 0;
    while i + 1 < n {
        let k: Value = pairs.get(i)?;
        let v: Value = pairs.get(i + 1)?;
        ser.append_pair(&usv(&ctx, &k)?, &usv(&ctx, &v)?);
        i += 2;
    }
    Ok(ser.finish())
}

pub fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> Result<()> {
    native.set("urlParse", Function::new(ctx.clone(), url_parse)?)?;
    native.set("urlHref", Function::new(ctx.clone(), url_href)?)?;
    native.set("urlSet", Function::new(ctx.clone(), url_set)?)?;
    native.set("formParse", Function::new(ctx.clone(), form_parse)?)?;
    native.set("formSerialize", Function::new(ctx.clone(), form_serialize)?)?;
    Ok(())
}
