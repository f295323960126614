//! Tokens and cost of an answer, read from the provider's own usage fields
//! (OpenAI's `usage.prompt_tokens`/`completion_tokens`, Anthropic's
//! `usage.input_tokens`/`output_tokens`), in plain JSON bodies and in
//! server-sent event streams.

use serde_json::Value;

use crate::config::Price;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub tokens_in: u64,
    pub tokens_out: u64,
}

fn add_from(usage: &Value, u: &mut Usage) {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64);
    if let Some(x) = n("prompt_tokens").or(n("input_tokens")) {
        u.tokens_in = u.tokens_in.max(x);
    }
    if let Some(x) = n("completion_tokens").or(n("output_tokens")) {
        u.tokens_out = u.tokens_out.max(x);
    }
}

fn from_value(v: &Value, u: &mut Usage, model: &mut Option<String>) {
    if let Some(usage) = v.get("usage") {
        add_from(usage, u);
    }
    // Anthropic's stream carries usage inside `message` on message_start.
    if let Some(msg) = v.get("message") {
        if let Some(usage) = msg.get("usage") {
            add_from(usage, u);
        }
        if model.is_none() {
            *model = msg.get("model").and_then(Value::as_str).map(str::to_owned);
        }
    }
    if model.is_none() {
        *model = v.get("model").and_then(Value::as_str).map(str::to_owned);
    }
}

/// Usage and model of a whole answer, JSON or SSE.
pub fn read(body: &[u8], streamed: bool) -> (Usage, Option<String>) {
    let mut u = Usage::default();
    let mut model = None;
    if streamed {
        for line in body.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) {
                from_value(&v, &mut u, &mut model);
            }
        }
    } else if let Ok(v) = serde_json::from_slice::<Value>(body) {
        from_value(&v, &mut u, &mut model);
    }
    (u, model)
}

/// The model a request names.
pub fn request_model(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("model")?
        .as_str()
        .map(str::to_owned)
}

/// `cf-aig-custom-cost`: `{"per_token_in": x, "per_token_out": y}` or
/// `{"total_cost": z}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CustomCost {
    PerToken { input: f64, output: f64 },
    Total(f64),
}

impl CustomCost {
    pub fn parse(s: &str) -> Result<Self, String> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| format!("cf-aig-custom-cost is not JSON: {e}"))?;
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if let Some(t) = num("total_cost") {
            return if ok(t) {
                Ok(Self::Total(t))
            } else {
                Err("cf-aig-custom-cost: total_cost must be a non-negative number".into())
            };
        }
        match (num("per_token_in"), num("per_token_out")) {
            (Some(i), Some(o)) if ok(i) && ok(o) => Ok(Self::PerToken {
                input: i,
                output: o,
            }),
            _ => Err(
                "cf-aig-custom-cost needs total_cost, or per_token_in and per_token_out (non-negative numbers)"
                    .into(),
            ),
        }
    }
}

pub fn cost(prices: &[Price], model: Option<&str>, u: Usage, custom: Option<CustomCost>) -> f64 {
    match custom {
        Some(CustomCost::Total(t)) => t,
        Some(CustomCost::PerToken { input, output }) => {
            input * u.tokens_in as f64 + output * u.tokens_out as f64
        }
        None => model
            .and_then(|m| prices.iter().find(|p| p.model == m))
            .map_or(0.0, |p| {
                (p.input * u.tokens_in as f64 + p.output * u.tokens_out as f64) / 1_000_000.0
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_and_anthropic_shapes() {
        let (u, m) = read(
            br#"{"model":"gpt-4o","usage":{"prompt_tokens":12,"completion_tokens":5}}"#,
            false,
        );
        assert_eq!(
            (u.tokens_in, u.tokens_out, m.as_deref()),
            (12, 5, Some("gpt-4o"))
        );
        let sse = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-3\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n";
        let (u, m) = read(sse, true);
        assert_eq!(
            (u.tokens_in, u.tokens_out, m.as_deref()),
            (9, 7, Some("claude-3"))
        );
    }

    #[test]
    fn cost_from_prices_or_custom() {
        let prices = vec![Price {
            model: "m".into(),
            input: 1.0,
            output: 2.0,
        }];
        let u = Usage {
            tokens_in: 1_000_000,
            tokens_out: 500_000,
        };
        assert_eq!(cost(&prices, Some("m"), u, None), 2.0);
        assert_eq!(cost(&prices, Some("x"), u, None), 0.0);
        let c = CustomCost::parse(r#"{"per_token_in":0.000001,"per_token_out":0.000002}"#).unwrap();
        assert!((cost(&prices, Some("m"), u, Some(c)) - 2.0).abs() < 1e-9);
        assert_eq!(
            CustomCost::parse(r#"{"total_cost":0.5}"#),
            Ok(CustomCost::Total(0.5))
        );
        assert!(CustomCost::parse("{}").is_err());
    }
}
