//! The `pay` request: its raw wire fields and their validation into a [`Payment`].
//!
//! Fields arrive as raw JSON values so that every refusal names the field at fault.

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::protocol::MAX_AMOUNT;
use crate::protocol::{Action, Currency, Method};

/// Longest transaction id.
pub const MAX_ID_LEN: usize = 64;

/// The fields of a `pay` message, unvalidated.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PayOrder {
    /// POS-chosen key.
    #[serde(default)]
    pub id: Value,
    /// Terminal name.
    #[serde(default)]
    pub terminal: Value,
    /// Minor units.
    #[serde(default)]
    pub amount: Value,
    /// ISO 4217 alpha or numeric.
    #[serde(default)]
    pub currency: Value,
    /// `debit` (default) or `refund`.
    #[serde(default)]
    pub action: Value,
    /// `card` (default) or `check`.
    #[serde(default)]
    pub method: Value,
    /// `true` confirms a possible duplicate (contract §10).
    #[serde(default)]
    pub confirm_duplicate: Value,
    /// For a refund: the id of the debit it reverses (contract §10).
    #[serde(default)]
    pub refund_of: Value,
}

/// A validated payment order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// POS-chosen key.
    pub id: String,
    /// Terminal name.
    pub terminal: String,
    /// Minor units, 1..=MAX_AMOUNT.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// Debit or refund.
    pub action: Action,
    /// Card or cheque.
    pub method: Method,
    /// The cashier confirmed a possible duplicate.
    pub confirm_duplicate: bool,
    /// The debit this refund reverses.
    pub refund_of: Option<String>,
}

impl PayOrder {
    /// Validates every field (contract §5); the error names the first field at fault.
    pub fn validate(&self) -> Result<Payment, ApiError> {
        let id = transaction_id(&self.id, "id")?;
        let fail = |e: ApiError| e.with_id(&id);
        let terminal = required_str(&self.terminal, "terminal").map_err(fail)?;
        let amount = amount(&self.amount).map_err(fail)?;
        let currency = currency(&self.currency).map_err(fail)?;
        let action = choice(&self.action, "action", &["debit", "refund"]).map_err(fail)?;
        let methods = Method::ALL.map(Method::code);
        let method = choice(&self.method, "method", &methods).map_err(fail)?;
        let confirm_duplicate = flag(&self.confirm_duplicate, "confirm_duplicate").map_err(fail)?;
        let refund_of = match &self.refund_of {
            Value::Null => None,
            value => Some(transaction_id(value, "refund_of").map_err(fail)?),
        };
        if refund_of.is_some() && action != 1 {
            return Err(fail(ApiError::bad_request(
                "field `refund_of` is only for a refund (`action`: \"refund\")",
            )));
        }
        Ok(Payment {
            id: id.clone(),
            terminal,
            amount,
            currency,
            action: if action == 1 {
                Action::Refund
            } else {
                Action::Debit
            },
            // `choice` returns an index into `methods`, built from `Method::ALL`.
            method: Method::ALL[method],
            confirm_duplicate,
            refund_of,
        })
    }
}

/// Validates a transaction id in the field named `field`.
pub fn transaction_id(value: &Value, field: &str) -> Result<String, ApiError> {
    let id = required_str(value, field)?;
    let valid_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if id.is_empty() || id.len() > MAX_ID_LEN || !valid_chars {
        return Err(ApiError::bad_request(format!(
            "field `{field}` must be 1 to 64 characters among A-Z a-z 0-9 . _ : -"
        )));
    }
    Ok(id)
}

fn required_str(value: &Value, field: &str) -> Result<String, ApiError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Null => Err(ApiError::bad_request(format!("missing field `{field}`"))),
        _ => Err(ApiError::bad_request(format!(
            "field `{field}` must be a string"
        ))),
    }
}

/// An optional boolean; absent means `false`.
fn flag(value: &Value, field: &str) -> Result<bool, ApiError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(flag) => Ok(*flag),
        _ => Err(ApiError::bad_request(format!(
            "field `{field}` must be true or false"
        ))),
    }
}

fn amount(value: &Value) -> Result<u64, ApiError> {
    if value.is_null() {
        return Err(ApiError::bad_request("missing field `amount`"));
    }
    match value.as_u64() {
        Some(amount) if (1..=MAX_AMOUNT).contains(&amount) => Ok(amount),
        _ => Err(ApiError::bad_request(
            "field `amount` must be an integer number of minor units from 1 to 999999999999 \
             (1245 = 12.45 EUR)",
        )),
    }
}

fn currency(value: &Value) -> Result<Currency, ApiError> {
    let code = required_str(value, "currency")?;
    Currency::parse(&code).ok_or_else(|| {
        ApiError::bad_request(format!(
            "field `currency`: unknown ISO 4217 code {code:?}; use e.g. \"EUR\" or \"978\""
        ))
    })
}

/// Index of the value among `allowed`; absent means the first.
fn choice(value: &Value, field: &str, allowed: &[&str]) -> Result<usize, ApiError> {
    if value.is_null() {
        return Ok(0);
    }
    value
        .as_str()
        .and_then(|text| allowed.iter().position(|a| *a == text))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "field `{field}` must be one of: {}",
                allowed.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(value: Value) -> PayOrder {
        serde_json::from_value(value).unwrap()
    }

    fn message_of(value: Value) -> String {
        order(value).validate().unwrap_err().message
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = json!({"id": "a1", "terminal": "t", "amount": 100, "currency": "EUR"});
        let cases = [
            ("id", json!("has space")),
            ("id", json!("x".repeat(65))),
            ("id", json!(12)),
            ("terminal", Value::Null),
            ("amount", json!(12.45)),
            ("amount", json!(0)),
            ("amount", json!(1_000_000_000_000u64)),
            ("amount", json!("100")),
            ("action", json!("credit")),
            ("method", json!(3)),
            ("confirm_duplicate", json!("yes")),
            ("refund_of", json!("a b")),
        ];
        for (field, value) in cases {
            let mut message = base.clone();
            message[field] = value;
            let text = message_of(message);
            assert!(text.contains(&format!("`{field}`")), "{field}: {text}");
        }
    }

    #[test]
    fn missing_fields_say_missing() {
        assert_eq!(message_of(json!({})), "missing field `id`");
        let text = message_of(json!({"id": "a", "terminal": "t", "currency": "EUR"}));
        assert_eq!(text, "missing field `amount`");
    }

    #[test]
    fn errors_after_the_id_carry_it() {
        let error = order(json!({"id": "a1", "terminal": "t", "amount": 0}))
            .validate()
            .unwrap_err();
        assert_eq!(error.id.as_deref(), Some("a1"));
    }

    #[test]
    fn ids_accept_the_allowed_characters() {
        assert_eq!(
            transaction_id(&json!("A-z_0.9:x"), "id").unwrap(),
            "A-z_0.9:x"
        );
        assert!(transaction_id(&json!(""), "id").is_err());
    }

    #[test]
    fn refund_of_only_on_a_refund() {
        let debit =
            json!({"id": "r", "terminal": "t", "amount": 5, "currency": "EUR", "refund_of": "d"});
        assert!(message_of(debit).contains("`refund_of`"));
        let refund = json!({"id": "r", "terminal": "t", "amount": 5, "currency": "EUR",
            "action": "refund", "refund_of": "d", "confirm_duplicate": true});
        let payment = order(refund).validate().unwrap();
        assert_eq!(payment.refund_of.as_deref(), Some("d"));
        assert!(payment.confirm_duplicate);
    }
}
