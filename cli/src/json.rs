//! The JSON the client subcommands print for scripts (`--json`): the shapes of
//! [`registries::wire::service_json`] and [`registries::wire::change_json`], which the HTTP API
//! of `registry serve --http` prints too.

use serde_json::Value;

/// A service as JSON, with its owner when known.
pub fn service<'a>(
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    owner: Option<&String>,
) -> Value {
    registries::wire::service_json(name, pairs, owner.map(String::as_str))
}

/// A change as `registry watch --json` prints it; `rev` only when the registry numbers its
/// changes.
pub fn change<'a>(
    rev: Option<u64>,
    kind: &str,
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Value {
    registries::wire::change_json(rev, kind, name, pairs)
}
