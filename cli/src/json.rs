//! The JSON the client subcommands print for scripts (`--json`): the shapes of
//! [`registries::wire::service_json`] and [`registries::wire::change_json`], which the HTTP API
//! of `registry serve --http` prints too.

use serde_json::Value;

/// A service as JSON (a `find` reply does not say who owns it).
pub fn service<'a>(name: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    registries::wire::service_json(name, pairs, None)
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
