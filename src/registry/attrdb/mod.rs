//! attrdb(6) databases, as `ndb/registry -f dbfile` reads them (spec/registry.md §6).
//!
//! * [`parse`](mod@parse): one file's text into entries (Inferno's `parseline` and `readentry`), no I/O.
//! * [`files`]: which files make up a database (Inferno's `Db.open` and its `database` entry),
//!   through a reader closure; [`open`] is the real-file wrapper.

pub mod files;
pub mod parse;

pub use files::{Database, DbFile, DbNote, database_files, open, open_with};
pub use parse::{AttrdbError, Entry, Line, parse, parse_lenient, parse_line, static_services};
