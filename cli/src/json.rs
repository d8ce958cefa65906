//! The JSON the client subcommands print for scripts (`--json`): a service is
//! `{"name": ..., "attrs": [[attr, val], ...]}`, attributes in the service's order.

use serde_json::{Value, json};

/// A service as JSON.
pub fn service<'a>(name: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let attrs: Vec<Value> = pairs.into_iter().map(|(a, v)| json!([a, v])).collect();
    json!({ "name": name, "attrs": attrs })
}

/// A change as `registry watch --json` prints it: `{"rev": N, "change": "added", "name": ...,
/// "attrs": [...]}`; `rev` only when the registry numbers its changes.
pub fn change<'a>(
    rev: Option<u64>,
    kind: &str,
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Value {
    let mut v = service(name, pairs);
    if let Value::Object(m) = &mut v {
        m.insert("change".into(), kind.into());
        if let Some(rev) = rev {
            m.insert("rev".into(), rev.into());
        }
    }
    v
}
