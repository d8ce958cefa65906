//! The JSON form of services and changes, one shape for every tool: the HTTP API
//! (`/v1/services`, `/v1/changes`), `registry query --json` and `registry watch --json`.
//!
//! * A service: `{"name": N, "attrs": [[attr, val], ...], "persist": bool}`, attributes in the
//!   service's order, with `"owner": U` where the owner is known (the HTTP API and a 9P
//!   registry always know it; the TCP shim does not carry it).
//! * A change: `{"rev": R, "change": "added"|"changed"|"removed", "name": N, "attrs": [...],
//!   "persist": bool}`; `rev` only when the registry numbers its changes (a real Inferno
//!   registry does not).

use super::persists;
use serde_json::{Map, Value, json};

/// A service as JSON.
pub fn service_json<'a>(
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    owner: Option<&str>,
) -> Value {
    let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    let attrs: Vec<Value> = pairs.iter().map(|(a, v)| json!([a, v])).collect();
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert("attrs".into(), Value::Array(attrs));
    if let Some(owner) = owner {
        m.insert("owner".into(), owner.into());
    }
    m.insert("persist".into(), persists(pairs.into_iter()).into());
    Value::Object(m)
}

/// A change as JSON (`kind`: `added`, `changed` or `removed`).
pub fn change_json<'a>(
    rev: Option<u64>,
    kind: &str,
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Value {
    let mut m = Map::new();
    if let Some(rev) = rev {
        m.insert("rev".into(), rev.into());
    }
    m.insert("change".into(), kind.into());
    if let Value::Object(s) = service_json(name, pairs, None) {
        m.extend(s);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let pairs = [("proto", "styx"), ("persist", "1")];
        assert_eq!(
            service_json("tcp!h!1", pairs, Some("alice")).to_string(),
            r#"{"name":"tcp!h!1","attrs":[["proto","styx"],["persist","1"]],"owner":"alice","persist":true}"#
        );
        assert_eq!(
            change_json(Some(7), "removed", "x", [("a", "b")]).to_string(),
            r#"{"rev":7,"change":"removed","name":"x","attrs":[["a","b"]],"persist":false}"#
        );
    }
}
