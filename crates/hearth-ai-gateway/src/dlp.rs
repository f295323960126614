//! Data loss prevention: detectors over request and response bodies. A
//! match flags the log (by detector name, never the matched text) or blocks
//! the request.

use regex::Regex;
use serde::Deserialize;

/// Largest compiled size of one custom pattern.
const MAX_PATTERN_BYTES: usize = 1 << 20;
/// Bytes of a body the detectors read.
pub const MAX_SCANNED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlpAction {
    #[default]
    Flag,
    Block,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlpScope {
    Request,
    Response,
    #[default]
    Both,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpConfig {
    #[serde(default)]
    pub action: DlpAction,
    #[serde(default)]
    pub on: DlpScope,
    /// `credit_card`, `email`, `api_key`.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// Custom regular expressions (Rust `regex` syntax).
    #[serde(default)]
    pub patterns: Vec<String>,
}

#[derive(Debug)]
pub struct Dlp {
    pub action: DlpAction,
    pub on: DlpScope,
    credit_card: Option<Regex>,
    others: Vec<(String, Regex)>,
}

impl DlpConfig {
    pub fn compile(&self) -> Result<Dlp, String> {
        let build = |p: &str| {
            regex::RegexBuilder::new(p)
                .size_limit(MAX_PATTERN_BYTES)
                .build()
                .map_err(|e| format!("pattern {p:?}: {e}"))
        };
        let mut credit_card = None;
        let mut others = Vec::new();
        for d in &self.detectors {
            match d.as_str() {
                // 13 to 19 digits, spaces or dashes between groups.
                "credit_card" => credit_card = Some(build(r"\b\d(?:[ -]?\d){12,18}\b")?),
                "email" => others.push((
                    "email".to_owned(),
                    build(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")?,
                )),
                "api_key" => others.push((
                    "api_key".to_owned(),
                    build(
                        r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})",
                    )?,
                )),
                other => {
                    return Err(format!(
                        "detectors: {other:?} is not one of credit_card, email, api_key"
                    ));
                }
            }
        }
        for (i, p) in self.patterns.iter().enumerate() {
            others.push((format!("pattern_{i}"), build(p)?));
        }
        Ok(Dlp {
            action: self.action,
            on: self.on,
            credit_card,
            others,
        })
    }
}

impl Dlp {
    pub fn checks_requests(&self) -> bool {
        self.on != DlpScope::Response
    }

    pub fn checks_responses(&self) -> bool {
        self.on != DlpScope::Request
    }

    /// The names of the detectors that match `body`.
    pub fn scan(&self, body: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_SCANNED_BYTES)]);
        let mut found = Vec::new();
        if let Some(re) = &self.credit_card
            && re.find_iter(&text).any(|m| luhn(m.as_str()))
        {
            found.push("credit_card".to_owned());
        }
        for (name, re) in &self.others {
            if re.is_match(&text) {
                found.push(name.clone());
            }
        }
        found
    }
}

/// The Luhn checksum every card number carries.
pub fn luhn(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dlp(detectors: &[&str], patterns: &[&str]) -> Dlp {
        DlpConfig {
            action: DlpAction::Block,
            on: DlpScope::Both,
            detectors: detectors.iter().map(|s| s.to_string()).collect(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
        }
        .compile()
        .unwrap()
    }

    #[test]
    fn luhn_tells_card_numbers_from_other_digits() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234"));
    }

    #[test]
    fn detectors_flag_by_name() {
        let d = dlp(&["credit_card", "email", "api_key"], &["ACME-\\d{6}"]);
        assert_eq!(d.scan(b"card 4111111111111111 please"), vec!["credit_card"]);
        assert!(d.scan(b"order 4111111111111112 id").is_empty());
        assert_eq!(d.scan(b"write to ann@example.com"), vec!["email"]);
        assert_eq!(
            d.scan(b"key sk-abcdefghijklmnopqrstuvwxyz012345"),
            vec!["api_key"]
        );
        assert_eq!(d.scan(b"ticket ACME-123456"), vec!["pattern_0"]);
        assert!(d.scan(b"nothing to see").is_empty());
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad = DlpConfig {
            action: DlpAction::Flag,
            on: DlpScope::Both,
            detectors: vec!["ssn".into()],
            patterns: vec![],
        };
        assert!(bad.compile().unwrap_err().contains("\"ssn\""));
        let bad = DlpConfig {
            action: DlpAction::Flag,
            on: DlpScope::Both,
            detectors: vec![],
            patterns: vec!["(".into()],
        };
        assert!(bad.compile().unwrap_err().contains("pattern \"(\""));
    }
}
