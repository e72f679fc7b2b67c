//! Request parts as plain data: the query string, JSON bodies and the
//! `filters` parameter, parsed without hyper so they can be unit-tested and
//! fuzzed (`fuzz/`, target `api_request`).

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, Result};

/// `a=1&b=x%20y` → {a: 1, b: "x y"}; a repeated key keeps its last value.
pub fn query_pairs(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A JSON body; an empty (or all-whitespace) body is `T::default()`, as
/// dockerd takes it.
pub fn json_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// The `filters` parameter as JSON (`Null` when absent or empty).
pub fn filters(query: &HashMap<String, String>) -> Result<Value> {
    match query.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => serde_json::from_str(f)
            .map_err(|e| ApiError::BadRequest(format!("invalid filters: {e}"))),
        None => Ok(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_filters() {
        let q = query_pairs("all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D&x");
        assert_eq!(q["all"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(filters(&q).unwrap(), serde_json::json!({"label": ["a=b"]}));
        assert_eq!(filters(&query_pairs("filters=")).unwrap(), Value::Null);
        let e = filters(&query_pairs("filters=%7B")).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest(m) if m.starts_with("invalid filters")));
    }

    #[test]
    fn bodies() {
        let v: Value = json_body(b" \n").unwrap();
        assert_eq!(v, Value::Null);
        let v: Value = json_body(br#"{"Image":"x"}"#).unwrap();
        assert_eq!(v["Image"], "x");
        assert!(matches!(
            json_body::<Value>(b"{").unwrap_err(),
            ApiError::BadRequest(_)
        ));
        // Deep nesting is refused by serde_json's recursion limit, not a
        // stack overflow.
        let deep = "[".repeat(100_000);
        assert!(json_body::<Value>(deep.as_bytes()).is_err());
    }
}
