//! Conditional operations (`onlyIf`): R2Conditional and its HTTP-header form,
//! evaluated with RFC 7232's precedence as R2 does.

use hearth_core::calendar::{civil_from_days, days_from_civil};

use crate::error::R2Error;

/// One entity tag in a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum R2Etag {
    /// `"*"`: matches any existing object.
    Wildcard,
    /// A strong tag: `abc` or `"abc"`.
    Strong(String),
    /// A weak tag: `W/"abc"`. Never satisfies `etagMatches` (If-Match uses
    /// strong comparison) but does satisfy `etagDoesNotMatch`'s weak one.
    Weak(String),
}

/// Conditions under which `get` returns a body or `put` writes.
///
/// Times are milliseconds since the Unix epoch. With `seconds_granularity`
/// both sides of a time comparison are truncated to whole seconds (always so
/// for conditions built from HTTP headers, which carry seconds only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct R2Conditional {
    pub etag_matches: Option<Vec<R2Etag>>,
    pub etag_does_not_match: Option<Vec<R2Etag>>,
    pub uploaded_before: Option<u64>,
    pub uploaded_after: Option<u64>,
    pub seconds_granularity: bool,
}

impl R2Conditional {
    pub fn new() -> Self {
        Self::default()
    }

    /// `etagMatches` as the Workers object form takes it: one unquoted etag,
    /// or `*`. A quoted value is refused as the Workers runtime refuses it.
    pub fn etag_matches(mut self, etag: &str) -> Result<Self, R2Error> {
        self.etag_matches = Some(vec![single_etag(etag)?]);
        Ok(self)
    }

    /// `etagDoesNotMatch` in the object form; see [`Self::etag_matches`].
    pub fn etag_does_not_match(mut self, etag: &str) -> Result<Self, R2Error> {
        self.etag_does_not_match = Some(vec![single_etag(etag)?]);
        Ok(self)
    }

    pub fn uploaded_before(mut self, ms: u64) -> Self {
        self.uploaded_before = Some(ms);
        self
    }

    pub fn uploaded_after(mut self, ms: u64) -> Self {
        self.uploaded_after = Some(ms);
        self
    }

    /// The `Headers` form: `If-Match`, `If-None-Match` (comma-separated lists
    /// of quoted, `W/`-weak or bare etags, or `*`), `If-Modified-Since` and
    /// `If-Unmodified-Since` (HTTP dates). A date that does not parse is
    /// ignored, as RFC 7232 requires of a recipient.
    pub fn from_headers(
        if_match: Option<&str>,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
        if_unmodified_since: Option<&str>,
    ) -> Result<Self, R2Error> {
        Ok(Self {
            etag_matches: if_match.map(parse_etag_list).transpose()?,
            etag_does_not_match: if_none_match.map(parse_etag_list).transpose()?,
            uploaded_after: if_modified_since.and_then(parse_http_date),
            uploaded_before: if_unmodified_since.and_then(parse_http_date),
            seconds_granularity: true,
        })
    }

    /// Whether the condition holds for an object with this etag and upload
    /// time, or for a missing object when `object` is None.
    ///
    /// R2 follows RFC 7232 section 6: If-Match before If-Unmodified-Since,
    /// If-None-Match before If-Modified-Since. A date condition is skipped when
    /// the matching etag condition is present and passes.
    pub fn passes(&self, object: Option<(&str, u64)>) -> bool {
        let Some((etag, uploaded)) = object else {
            // Nothing to match: only "must exist" style conditions fail.
            return self.etag_matches.is_none() && self.uploaded_after.is_none();
        };
        let trunc = |ms: u64| {
            if self.seconds_granularity {
                ms / 1000 * 1000
            } else {
                ms
            }
        };
        let uploaded = trunc(uploaded);
        let if_match = match &self.etag_matches {
            None => true,
            Some(list) => contains_etag(list, etag, false),
        };
        let if_none_match = match &self.etag_does_not_match {
            None => true,
            Some(list) => !contains_etag(list, etag, true),
        };
        let if_modified_since = match self.uploaded_after {
            None => true,
            Some(after) => {
                trunc(after) < uploaded || (self.etag_does_not_match.is_some() && if_none_match)
            }
        };
        let if_unmodified_since = match self.uploaded_before {
            None => true,
            Some(before) => uploaded < trunc(before) || (self.etag_matches.is_some() && if_match),
        };
        if_match && if_none_match && if_modified_since && if_unmodified_since
    }
}

fn contains_etag(list: &[R2Etag], etag: &str, weak_comparison: bool) -> bool {
    list.iter().any(|candidate| match candidate {
        R2Etag::Wildcard => true,
        R2Etag::Strong(v) => v == etag,
        R2Etag::Weak(v) => weak_comparison && v == etag,
    })
}

fn single_etag(etag: &str) -> Result<R2Etag, R2Error> {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        return Err(R2Error::invalid(format!(
            "Conditional ETag should not be wrapped in quotes ({etag})."
        )));
    }
    Ok(if etag == "*" {
        R2Etag::Wildcard
    } else {
        R2Etag::Strong(etag.to_string())
    })
}

/// Parses an If-Match / If-None-Match value. A wildcard anywhere makes the
/// whole list a wildcard. Bare (unquoted) tokens are taken as strong etags.
pub fn parse_etag_list(header: &str) -> Result<Vec<R2Etag>, R2Error> {
    let mut out = Vec::new();
    let mut rest = header;
    let mut need_comma = false;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        let Some(c) = rest.chars().next() else {
            return Ok(out);
        };
        if c == ',' {
            need_comma = false;
            rest = &rest[1..];
            continue;
        }
        if need_comma {
            let found = match c {
                '*' => "Encountered a wildcard character '*' instead.",
                '"' => {
                    "Encountered a double quote character '\"' instead. \
                     This would otherwise indicate the start of a new strong etag."
                }
                'W' => {
                    "Encountered a weak quotation character 'W' instead. \
                     This would otherwise indicate the start of a new weak etag."
                }
                _ => "",
            };
            return Err(R2Error::invalid(
                format!("Comma was expected to separate etags. {found}")
                    .trim_end()
                    .to_string(),
            ));
        }
        need_comma = true;
        if c == '*' {
            return Ok(vec![R2Etag::Wildcard]);
        }
        let (weak, body) = if let Some(after) = rest.strip_prefix("W/") {
            if !after.starts_with('"') {
                return Err(R2Error::invalid(
                    "Weak etags must start with W/ and their value must be quoted",
                ));
            }
            (true, after)
        } else if c == 'W' && !rest.starts_with("W/") && rest[1..].starts_with('"') {
            return Err(R2Error::invalid(
                "Weak etags must start with W/ and their value must be quoted",
            ));
        } else {
            (false, rest)
        };
        let (value, remaining) = if let Some(quoted) = body.strip_prefix('"') {
            let Some(end) = quoted.find('"') else {
                return Err(R2Error::invalid("Unclosed double quote for Etag"));
            };
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = body.find([',', ' ', '\t']).unwrap_or(body.len());
            (&body[..end], &body[end..])
        };
        out.push(if weak {
            R2Etag::Weak(value.to_string())
        } else {
            R2Etag::Strong(value.to_string())
        });
        rest = remaining;
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Parses an HTTP date in any of RFC 7231's three forms (IMF-fixdate,
/// RFC 850, asctime) into milliseconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let mut day = None;
    let mut month = None;
    let mut year = None;
    let mut time = None;
    for token in s
        .split([' ', ',', '-'])
        .filter(|t| !t.is_empty())
        .map(str::trim)
    {
        if token.contains(':') {
            let parts: Vec<u64> = token
                .split(':')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            if parts.len() != 3 || parts[0] > 23 || parts[1] > 59 || parts[2] > 60 {
                return None;
            }
            time = Some(parts[0] * 3600 + parts[1] * 60 + parts[2]);
        } else if let Some(m) = MONTHS
            .iter()
            .position(|m| token.len() == 3 && token.eq_ignore_ascii_case(m))
        {
            month = Some(m as u64 + 1);
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = token.parse().ok()?;
            match token.len() {
                1 | 2 if day.is_none() => day = Some(n),
                // RFC 850 two-digit years: 70..99 are 19xx, the rest 20xx.
                2 => year = Some(if n >= 70 { 1900 + n } else { 2000 + n }),
                4 => year = Some(n),
                _ => return None,
            }
        }
        // Weekday names and "GMT" carry nothing we need.
    }
    let (day, month, year, time) = (day?, month?, year?, time?);
    if !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + time;
    Some(secs * 1000)
}

/// Formats milliseconds since the epoch as an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the form of the `Expires` header.
pub fn format_http_date(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        d,
        capitalised_month(m),
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn capitalised_month(m: u32) -> String {
    let name = MONTHS[(m - 1) as usize];
    let mut out = name[..1].to_ascii_uppercase();
    out.push_str(&name[1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_all_three_forms() {
        let expect = Some(784_111_777_000);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expect);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expect);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expect);
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(
            format_http_date(784_111_777_000),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
