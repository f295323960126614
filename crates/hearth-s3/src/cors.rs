//! Per-bucket CORS: preflight answers and the headers added to responses,
//! from rules set by `PutBucketCors` or `hearth r2 bucket cors put`.

use http::{HeaderValue, Response, StatusCode};

use crate::credentials::CorsRule;
use crate::error::S3Error;
use crate::server::{Body, Req, State, empty, error_response};
use crate::xml::{Element, Writer};

/// Most rules per bucket (S3's limit).
pub const MAX_RULES: usize = 100;

fn matches_pattern(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(value),
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len()
                && value[..pre.len()].eq_ignore_ascii_case(pre)
                && value[value.len() - post.len()..].eq_ignore_ascii_case(post)
        }
    }
}

fn rule_for<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| matches_pattern(o, origin))
            && r.allowed_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
            && headers
                .iter()
                .all(|h| r.allowed_headers.iter().any(|a| matches_pattern(a, h)))
    })
}

fn rules(state: &State, bucket: &str) -> Vec<CorsRule> {
    match state.credentials.cors(bucket) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            tracing::error!("S3 endpoint: CORS rules of {bucket}: {e}");
            Vec::new()
        }
    }
}

fn set(r: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// Answers an `OPTIONS` preflight (no signature needed, as on S3).
pub(crate) fn preflight(state: &State, req: &Req) -> Response<Body> {
    let refuse = |why: &str| {
        error_response(
            &S3Error::access_denied(format!("CORSResponse: {why}")),
            &req.resource(),
            "",
            false,
        )
    };
    let (Some(bucket), Some(origin), Some(method)) = (
        req.bucket.as_deref(),
        req.header("origin"),
        req.header("access-control-request-method"),
    ) else {
        return refuse("a preflight needs a bucket, Origin and Access-Control-Request-Method");
    };
    let headers: Vec<String> = req
        .header("access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let rules = rules(state, bucket);
    let Some(rule) = rule_for(&rules, origin, method, &headers) else {
        return refuse("This CORS request is not allowed.");
    };
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::OK;
    set(&mut r, "access-control-allow-origin", origin);
    set(
        &mut r,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !headers.is_empty() {
        set(&mut r, "access-control-allow-headers", &headers.join(", "));
    }
    if !rule.expose_headers.is_empty() {
        set(
            &mut r,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set(&mut r, "access-control-max-age", &age.to_string());
    }
    set(
        &mut r,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
    r
}

/// Adds the CORS headers of the rule that allows this origin and method.
pub(crate) fn decorate(state: &State, bucket: &str, origin: &str, r: &mut Response<Body>) {
    let rules = rules(state, bucket);
    // The method of the actual request is not at hand here; any rule for
    // the origin decides, as browsers check the method at preflight.
    let Some(rule) = rules
        .iter()
        .find(|r| r.allowed_origins.iter().any(|o| matches_pattern(o, origin)))
    else {
        return;
    };
    set(r, "access-control-allow-origin", origin);
    if !rule.expose_headers.is_empty() {
        set(
            r,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    set(r, "vary", "Origin");
}

/// Checks rules as `PutBucketCors` and the CLI take them.
pub fn validate(rules: &[CorsRule]) -> Result<(), S3Error> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::malformed_xml(format!(
            "a CORS configuration has 1 to {MAX_RULES} rules, not {}",
            rules.len()
        )));
    }
    for (i, r) in rules.iter().enumerate() {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(S3Error::malformed_xml(format!(
                "CORS rule {}: AllowedOrigin and AllowedMethod are required",
                i + 1
            )));
        }
        for m in &r.allowed_methods {
            if !["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&m.as_str()) {
                return Err(S3Error::invalid_request(format!(
                    "CORS rule {}: Found unsupported HTTP method in CORS config. Unsupported method is {m}",
                    i + 1
                )));
            }
        }
        for o in r.allowed_origins.iter().chain(&r.allowed_headers) {
            if o.matches('*').count() > 1 {
                return Err(S3Error::invalid_request(format!(
                    "CORS rule {}: {o:?} can not have more than one wildcard.",
                    i + 1
                )));
            }
        }
    }
    Ok(())
}

pub fn from_xml(root: &Element) -> Result<Vec<CorsRule>, S3Error> {
    if root.name != "CORSConfiguration" {
        return Err(S3Error::malformed_xml("expected <CORSConfiguration>"));
    }
    let texts = |r: &Element, name: &str| -> Vec<String> {
        r.children_named(name)
            .map(|c| c.text.trim().to_string())
            .collect()
    };
    let mut out = Vec::new();
    for r in root.children_named("CORSRule") {
        let max_age = match r.child_text("MaxAgeSeconds") {
            None => None,
            Some(t) => Some(t.parse().map_err(|_| {
                S3Error::malformed_xml(format!("MaxAgeSeconds {t:?} is not a number"))
            })?),
        };
        out.push(CorsRule {
            allowed_origins: texts(r, "AllowedOrigin"),
            allowed_methods: texts(r, "AllowedMethod"),
            allowed_headers: texts(r, "AllowedHeader")
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            expose_headers: texts(r, "ExposeHeader"),
            max_age_seconds: max_age,
        });
    }
    validate(&out)?;
    Ok(out)
}

pub fn to_xml(rules: &[CorsRule]) -> String {
    let mut w = Writer::new();
    w.root("CORSConfiguration");
    for r in rules {
        w.open("CORSRule");
        for o in &r.allowed_origins {
            w.leaf("AllowedOrigin", o);
        }
        for m in &r.allowed_methods {
            w.leaf("AllowedMethod", m);
        }
        for h in &r.allowed_headers {
            w.leaf("AllowedHeader", h);
        }
        for h in &r.expose_headers {
            w.leaf("ExposeHeader", h);
        }
        if let Some(a) = r.max_age_seconds {
            w.leaf("MaxAgeSeconds", &a.to_string());
        }
        w.close("CORSRule");
    }
    w.close("CORSConfiguration");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_origin_method_and_headers() {
        let rules = vec![CorsRule {
            allowed_origins: vec!["https://*.example.com".into()],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["content-type".into(), "x-amz-*".into()],
            ..CorsRule::default()
        }];
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            rule_for(
                &rules,
                "https://a.example.com",
                "PUT",
                &h(&["content-type", "x-amz-date"])
            )
            .is_some()
        );
        assert!(rule_for(&rules, "https://example.org", "GET", &[]).is_none());
        assert!(rule_for(&rules, "https://a.example.com", "DELETE", &[]).is_none());
        assert!(
            rule_for(
                &rules,
                "https://a.example.com",
                "GET",
                &h(&["authorization"])
            )
            .is_none()
        );
        let xml = to_xml(&rules);
        let back = from_xml(&crate::xml::parse(xml.as_bytes()).unwrap()).unwrap();
        assert_eq!(back, rules);
    }
}
