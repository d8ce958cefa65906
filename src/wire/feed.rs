//! The change feed's text (spec/feed.md): the request a watcher writes, the records it reads,
//! and the error that says a revision is no longer kept.
//!
//! * Request: one line of `%q`-quoted words, `START [attr val]...`, where START is `now` (the
//!   changes after this moment), `snapshot` (every matching service as `added`, a `synced`
//!   record, then the changes after it) or a revision (the changes from that one on).
//! * Records: `REV added LINE`, `REV changed LINE`, `REV removed LINE` (LINE is the service line
//!   as `index` prints it, without its newline), and `REV synced` at the end of a snapshot; each
//!   record ends in a newline.
//! * A revision that is no longer kept, or a reader that fell too far behind:
//!   `compacted: oldest revision kept is N`.

use super::{Diagnostic, ServiceLine, pairs, push_line, unquote};
use std::fmt;

/// The attach name of the change feed's tree; every other attach name gives Inferno's tree,
/// so an Inferno client never meets the feed.
pub const FEED_ANAME: &str = "feed";

/// Where a watcher starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStart {
    /// With the changes after the request.
    Now,
    /// With every matching service as `added`, then `synced`, then the changes after that.
    Snapshot,
    /// With the changes whose revision is this one or later.
    From(u64),
}

/// What a watcher asks for: where to start and which services (`find`'s rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRequest {
    /// Where to start.
    pub start: FeedStart,
    /// The query: every pair must match, `*` any value; empty matches every service.
    pub query: Vec<(String, String)>,
}

impl FeedRequest {
    /// Parses a request line (a trailing newline is allowed).
    // Not nom: a match on the first of `unquote`'s words, then pairs.
    pub fn parse(text: &str) -> Result<FeedRequest, Diagnostic> {
        let mut words = unquote(text);
        if words.is_empty() {
            return Err(Diagnostic::BadSyntax);
        }
        let start = match words.remove(0).as_str() {
            "now" => FeedStart::Now,
            "snapshot" => FeedStart::Snapshot,
            rev => FeedStart::From(rev.parse().map_err(|_| Diagnostic::BadSyntax)?),
        };
        Ok(FeedRequest {
            start,
            query: pairs(words)?,
        })
    }

    /// The request line, without a newline.
    pub fn format(&self) -> String {
        let start = match self.start {
            FeedStart::Now => "now".to_string(),
            FeedStart::Snapshot => "snapshot".to_string(),
            FeedStart::From(rev) => rev.to_string(),
        };
        let mut words = vec![start];
        for (a, v) in &self.query {
            words.push(a.clone());
            words.push(v.clone());
        }
        super::quote_words(words.iter().map(String::as_str))
    }
}

/// What happened to a service, as one watcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// It appeared, or started to match the watcher's query.
    Added,
    /// Its attributes changed and it still matches.
    Changed,
    /// It went, or stopped matching.
    Removed,
}

impl FeedKind {
    /// The record's word for it.
    pub fn word(self) -> &'static str {
        match self {
            FeedKind::Added => "added",
            FeedKind::Changed => "changed",
            FeedKind::Removed => "removed",
        }
    }
}

/// One record of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedRecord {
    /// A change: its revision, its kind, the service (for `removed`, as it last was).
    Change {
        /// The revision.
        rev: u64,
        /// Added, changed or removed.
        kind: FeedKind,
        /// The service.
        service: ServiceLine,
    },
    /// The end of a snapshot, taken at this revision.
    Synced(u64),
}

/// Appends a change record for `name` and `attrs` to `out`.
pub fn push_change<'a>(
    out: &mut String,
    rev: u64,
    kind: FeedKind,
    name: &str,
    attrs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    use fmt::Write as _;
    let _ = write!(out, "{rev} {} ", kind.word());
    push_line(out, name, attrs);
    out.push('\n');
}

/// Appends the `synced` record for `rev` to `out`.
pub fn push_synced(out: &mut String, rev: u64) {
    use fmt::Write as _;
    let _ = writeln!(out, "{rev} synced");
}

impl FeedRecord {
    /// Parses one record line (without or with its newline).
    // Not nom: two `split_once` and a match; the service is `ServiceLine::parse`'s.
    pub fn parse(line: &str) -> Result<FeedRecord, Diagnostic> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let (rev, rest) = line.split_once(' ').ok_or(Diagnostic::BadSyntax)?;
        let rev: u64 = rev.parse().map_err(|_| Diagnostic::BadSyntax)?;
        if rest == "synced" {
            return Ok(FeedRecord::Synced(rev));
        }
        let (kind, service) = rest.split_once(' ').ok_or(Diagnostic::BadSyntax)?;
        let kind = match kind {
            "added" => FeedKind::Added,
            "changed" => FeedKind::Changed,
            "removed" => FeedKind::Removed,
            _ => return Err(Diagnostic::BadSyntax),
        };
        Ok(FeedRecord::Change {
            rev,
            kind,
            service: ServiceLine::parse(service)?,
        })
    }
}

/// The error text for a revision older than `oldest`, the oldest one kept.
pub fn format_compacted(oldest: u64) -> String {
    format!("compacted: oldest revision kept is {oldest}")
}

/// The oldest revision kept, from an error text made by [`format_compacted`].
// Not nom: one fixed prefix and a number.
pub fn parse_compacted(text: &str) -> Option<u64> {
    text.strip_prefix("compacted: oldest revision kept is ")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for text in ["now", "snapshot proto styx", "17 auth *", "0 text 'a b'"] {
            let r = FeedRequest::parse(text).unwrap();
            assert_eq!(r.format(), text);
        }
        let r = FeedRequest::parse("42 proto styx\n").unwrap();
        assert_eq!(r.start, FeedStart::From(42));
        assert_eq!(r.query, [("proto".to_string(), "styx".to_string())]);
    }

    #[test]
    fn bad_requests_are_refused() {
        assert_eq!(FeedRequest::parse(""), Err(Diagnostic::BadSyntax));
        assert_eq!(FeedRequest::parse("later"), Err(Diagnostic::BadSyntax));
        assert_eq!(FeedRequest::parse("-1"), Err(Diagnostic::BadSyntax));
        assert_eq!(FeedRequest::parse("now odd"), Err(Diagnostic::OddPairs));
    }

    #[test]
    fn records_round_trip() {
        let mut out = String::new();
        push_change(&mut out, 7, FeedKind::Changed, "tcp!a!1", [("k", "it's")]);
        push_synced(&mut out, 8);
        assert_eq!(out, "7 changed tcp!a!1 k 'it''s'\n8 synced\n");
        let mut lines = out.lines();
        let FeedRecord::Change { rev, kind, service } =
            FeedRecord::parse(lines.next().unwrap()).unwrap()
        else {
            panic!("not a change");
        };
        assert_eq!(
            (rev, kind, service.name.as_str()),
            (7, FeedKind::Changed, "tcp!a!1")
        );
        assert_eq!(service.attrs, [("k".to_string(), "it's".to_string())]);
        assert_eq!(
            FeedRecord::parse(lines.next().unwrap()),
            Ok(FeedRecord::Synced(8))
        );
        assert!(FeedRecord::parse("x added a").is_err());
        assert!(FeedRecord::parse("1 moved a").is_err());
    }

    #[test]
    fn compacted_round_trips() {
        assert_eq!(parse_compacted(&format_compacted(99)), Some(99));
        assert_eq!(parse_compacted("file does not exist"), None);
    }
}
