//! The registry's text and rules, the one copy that server, client, shim and manager share
//! (spec/registry.md §1, §3, §8).
//!
//! * Words: `%q` quoting and `String->unquoted` ([`quote()`], [`unquote`]).
//! * Service lines: [`ServiceLine`], [`push_line`], [`register_line`], [`format_pairs`],
//!   [`parse_services`] (a whole `index` or `find` reply, as registries(2) reads it).
//! * Rules: [`check_name`], [`RESERVED_NAMES`], [`persists`].
//! * Diagnostics: [`Diagnostic`], Inferno's error texts as one enum.
//! * The change feed's request and records: [`FeedRequest`], [`FeedRecord`] (spec/feed.md).
//! * The TCP shim's lines: [`ShimPorts`], [`READY`], the line limits and [`RecordReader`].
//!
//! Nothing here depends on any other module of the crate.

mod diagnostic;
mod feed;
#[cfg(feature = "json")]
mod json;
mod line;
mod names;
mod quote;
mod record_reader;
mod services;
mod shim;

pub use diagnostic::Diagnostic;
pub use feed::{
    FEED_ANAME, FeedKind, FeedRecord, FeedRequest, FeedStart, format_compacted, parse_compacted,
    push_change, push_synced,
};
#[cfg(feature = "json")]
pub use json::{change_json, service_json};
pub use line::{
    ServiceLine, format_event, format_pairs, pairs, parse_event, parse_pairs, push_line,
    register_line,
};
pub use names::{PERSIST, RESERVED_NAMES, check_name, limbo_int_nonzero, persists};
pub use quote::{needs_quote, push_quoted, quote, quote_words, unquote};
pub use record_reader::RecordReader;
#[cfg(feature = "client")]
pub(crate) use services::each_service;
pub use services::parse_services;
pub use shim::{MAX_EVENT_LINE, MAX_FIND_REPLY, MAX_LINE, READY, ShimPorts};
