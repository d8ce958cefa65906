//! Which files make up a database: attrdb(6)'s `database` entry, as Inferno's `Db.open`
//! (`appl/lib/attrdb.b`) builds the logical database that `ndb/registry -f dbfile` loads.
//!
//! What Inferno does, and so what we do:
//! * The named file (`-f`) is opened first; if it cannot be, the registry stops with
//!   `can't open FILE: reason` (`registry.b`, `init`). Here that is the [`std::io::Error`] of
//!   [`open_with`], which the server turns into that message.
//! * Only that file is searched for the database entry: the first entry in which some line has
//!   the pair `database` with an empty value (`database=` or a bare `database`); `database=x`
//!   does not count. The entry is the whole entry, all its lines (`Db.open` calls `findpair` on
//!   a database holding only the named file).
//! * The `file=` values of all that entry's lines, in order, name the database's files
//!   (`Db.open` with `flatten` over `Dbentry.find`). Without such an entry, or with one that has
//!   no `file=` pairs, the database is the named file alone.
//! * A `file=` value that equals, as text, the name the database was opened by stands for the
//!   already open named file, at that place in the order; only its first such occurrence does, a
//!   later one opens the file again, so its entries are seen twice. If the named file is not in
//!   the list, it comes first (also attrdb(6): "if it does not appear at all, it is assumed to be
//!   first").
//! * Every other value is opened as written (`Dbf.open` of the name): a relative name is
//!   resolved against the process's current directory, *not* against the directory of the file
//!   that names it, and a name listed twice is read twice.
//! * A file that cannot be opened is left out and the rest still load. Inferno says nothing at
//!   all; we keep its behaviour and add a [`DbNote::Unreadable`] diagnostic.
//! * The `database` entries of the other files are not followed (only the named file is searched
//!   for one), so includes do not nest and a cycle (`a` names `b`, `b` names `a`) cannot loop:
//!   it reads `a` then `b`. Inferno is silent; we add a [`DbNote::NotFollowed`] diagnostic when
//!   another file holds a database entry that names files.
//! * The database's entries are the files' entries, concatenated in that order (`nextentry`
//!   walks the file list), and the `database` entry itself stays an ordinary entry.
//!
//! The files are read through a closure, so [`open_with`] does no I/O of its own; [`open`] is the
//! wrapper over the real file system.

use super::parse::{AttrdbError, Entry, parse_lenient};
use std::io;
use std::path::{Path, PathBuf};

/// One physical file of a database, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFile {
    /// The name it was opened by: the database's own name, or a `file=` value as written.
    pub path: PathBuf,
    /// Its entries in file order.
    pub entries: Vec<Entry>,
    /// The lines Inferno skips, with why.
    pub errors: Vec<AttrdbError>,
}

/// Something Inferno passes over in silence while forming a database (so no Inferno text).
#[derive(Debug, thiserror::Error)]
pub enum DbNote {
    /// A `file=` name that cannot be read; the database is formed without it.
    #[error("can't open {path}: {source} (file left out of the database)")]
    Unreadable {
        /// The name as the database entry gives it.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: io::Error,
    },
    /// A file other than the named one holds a `database` entry naming files; it is read as an
    /// ordinary entry, as only the named file's database entry is followed.
    #[error("{path}: its database entry is not followed (only {main}'s is)")]
    NotFollowed {
        /// The file holding the database entry.
        path: PathBuf,
        /// The name the database was opened by.
        main: PathBuf,
    },
}

/// A logical database: its files in the order they are searched.
#[derive(Debug)]
pub struct Database {
    /// The name the database was opened by.
    pub path: PathBuf,
    /// The files that could be read, in order.
    pub files: Vec<DbFile>,
    /// What was passed over while forming it.
    pub notes: Vec<DbNote>,
}

impl Database {
    /// All entries of all files, in database order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.files.iter().flat_map(|f| f.entries.iter())
    }

    /// Every diagnostic as one line of text: the skipped lines of the named file as
    /// `line N: why`, those of other files prefixed with their name, then the notes.
    pub fn diagnostics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.files {
            for e in &f.errors {
                if f.path == self.path {
                    out.push(e.to_string());
                } else {
                    out.push(format!("{}: {e}", f.path.display()));
                }
            }
        }
        out.extend(self.notes.iter().map(ToString::to_string));
        out
    }
}

/// The files named by the first database entry (some line has `database` with an empty value):
/// its `file=` values in order. `None` when there is no such entry.
pub fn database_files(entries: &[Entry]) -> Option<Vec<String>> {
    let db = entries.iter().find(|e| {
        e.lines
            .iter()
            .any(|l| l.pairs.iter().any(|(a, v)| a == "database" && v.is_empty()))
    })?;
    Some(
        db.pairs()
            .filter(|(a, _)| a == "file")
            .map(|(_, v)| v.clone())
            .collect(),
    )
}

/// Parses bytes as Inferno's bufio reads them: UTF-8, bad sequences replaced.
fn parse_file(path: PathBuf, bytes: &[u8]) -> DbFile {
    let (entries, errors) = parse_lenient(&String::from_utf8_lossy(bytes));
    DbFile {
        path,
        entries,
        errors,
    }
}

/// Forms the database named `path` as Inferno's `Db.open` does, reading every file through
/// `read` (given a name as written, it returns the file's bytes). Fails only when `path` itself
/// cannot be read; see the module doc for everything else.
pub fn open_with<R>(path: &Path, mut read: R) -> io::Result<Database>
where
    R: FnMut(&Path) -> io::Result<Vec<u8>>,
{
    let mut main = Some(parse_file(path.to_path_buf(), &read(path)?));
    let names = main
        .as_ref()
        .and_then(|m| database_files(&m.entries))
        .unwrap_or_default();
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for name in names {
        // Inferno compares the names as strings, not as paths.
        if std::ffi::OsStr::new(&name) == path.as_os_str()
            && let Some(m) = main.take()
        {
            files.push(m);
            continue;
        }
        let name = PathBuf::from(name);
        match read(&name) {
            Ok(bytes) => {
                let f = parse_file(name, &bytes);
                if database_files(&f.entries).is_some_and(|n| !n.is_empty()) {
                    notes.push(DbNote::NotFollowed {
                        path: f.path.clone(),
                        main: path.to_path_buf(),
                    });
                }
                files.push(f);
            }
            Err(source) => notes.push(DbNote::Unreadable { path: name, source }),
        }
    }
    if let Some(m) = main {
        files.insert(0, m);
    }
    Ok(Database {
        path: path.to_path_buf(),
        files,
        notes,
    })
}

/// [`open_with`] over the real file system: names are opened as written, so relative ones
/// resolve against the current directory, as in Inferno.
pub fn open(path: &Path) -> io::Result<Database> {
    open_with(path, |p| std::fs::read(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// In-memory files; records every name asked for, in order.
    struct Mem {
        files: HashMap<&'static str, &'static str>,
        asked: Vec<String>,
    }

    impl Mem {
        fn new(files: &[(&'static str, &'static str)]) -> Mem {
            Mem {
                files: files.iter().copied().collect(),
                asked: Vec::new(),
            }
        }

        fn open(&mut self, path: &str) -> io::Result<Database> {
            open_with(Path::new(path), |p| {
                let name = p.to_string_lossy().into_owned();
                self.asked.push(name.clone());
                self.files
                    .get(name.as_str())
                    .map(|t| t.as_bytes().to_vec())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file does not exist"))
            })
        }
    }

    fn names(db: &Database) -> Vec<String> {
        db.files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect()
    }

    fn services(db: &Database) -> Vec<String> {
        super::super::static_services(db.entries())
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn without_database_entry_the_file_is_alone() {
        let mut m = Mem::new(&[
            ("main", "service=a\nfile=other\n"),
            ("other", "service=b\n"),
        ]);
        let db = m.open("main").unwrap();
        assert_eq!(names(&db), ["main"]);
        assert_eq!(m.asked, ["main"]);
        // `database=x` is not a database entry: the value must be empty.
        let mut m = Mem::new(&[
            ("main", "database=x file=other\n"),
            ("other", "service=b\n"),
        ]);
        assert_eq!(names(&m.open("main").unwrap()), ["main"]);
        // An entry without `file=` pairs leaves the file alone too.
        let mut m = Mem::new(&[("main", "database=\n\tx=y\nservice=a\n")]);
        assert_eq!(names(&m.open("main").unwrap()), ["main"]);
    }

    #[test]
    fn files_in_listed_order_with_the_named_file_in_its_place() {
        let mut m = Mem::new(&[
            (
                "/db/main",
                "service=m1\n\
                 database=\n\tfile=/db/one\n\tfile=/db/main file=/db/two\n\
                 service=m2\n\
                 database=\n\tfile=/db/ignored\n",
            ),
            ("/db/one", "service=o1\nservice=o2\n"),
            ("/db/two", "service=t1\n"),
        ]);
        let db = m.open("/db/main").unwrap();
        assert_eq!(names(&db), ["/db/one", "/db/main", "/db/two"]);
        // The named file is read once; only the first database entry counts.
        assert_eq!(m.asked, ["/db/main", "/db/one", "/db/two"]);
        assert_eq!(services(&db), ["o1", "o2", "m1", "m2", "t1"]);
        assert!(db.notes.is_empty());
    }

    #[test]
    fn named_file_not_listed_comes_first() {
        // A bare `database` counts as `database=`.
        let mut m = Mem::new(&[
            ("main", "service=m\ndatabase file=a\n\tfile=b\n"),
            ("a", "service=a\n"),
            ("b", "service=b\n"),
        ]);
        let db = m.open("main").unwrap();
        assert_eq!(names(&db), ["main", "a", "b"]);
        assert_eq!(services(&db), ["m", "a", "b"]);
    }

    #[test]
    fn relative_names_are_used_as_written() {
        // Not resolved against the naming file's directory (that is the reader's business, and
        // the real one resolves against the current directory, as Inferno does).
        let mut m = Mem::new(&[
            (
                "dir/main",
                "database=\n\tfile=sub/x\n\tfile=./dir/main\n\tfile=dir/main\n",
            ),
            ("sub/x", "service=x\n"),
            ("./dir/main", "service=again\n"),
        ]);
        let db = m.open("dir/main").unwrap();
        // `./dir/main` is not the same text as `dir/main`, so it is read as another file.
        assert_eq!(names(&db), ["sub/x", "./dir/main", "dir/main"]);
        assert_eq!(m.asked, ["dir/main", "sub/x", "./dir/main"]);
    }

    #[test]
    fn named_file_listed_twice_is_read_twice() {
        let mut m = Mem::new(&[("m", "service=s\ndatabase=\n\tfile=m\n\tfile=m\n")]);
        let db = m.open("m").unwrap();
        assert_eq!(names(&db), ["m", "m"]);
        assert_eq!(m.asked, ["m", "m"]);
        assert_eq!(services(&db), ["s", "s"]);
        // The second copy's database entry is not followed again.
        assert!(matches!(&db.notes[..], [DbNote::NotFollowed { .. }]));
    }

    #[test]
    fn missing_file_is_left_out_with_a_note() {
        let mut m = Mem::new(&[
            ("main", "database=\n\tfile=gone\n\tfile=b\n"),
            ("b", "service=b\n\tbad='quote\n"),
        ]);
        let db = m.open("main").unwrap();
        assert_eq!(names(&db), ["main", "b"]);
        assert_eq!(services(&db), ["b"]);
        assert!(
            matches!(&db.notes[..], [DbNote::Unreadable { path, .. }] if path == Path::new("gone"))
        );
        assert_eq!(
            db.diagnostics(),
            [
                "b: line 2: missing quote",
                "can't open gone: file does not exist (file left out of the database)",
            ]
        );
        // The named file itself missing is an error: the registry cannot start.
        let err = m.open("nothere").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn cycle_reads_each_file_once() {
        let mut m = Mem::new(&[
            ("a", "database=\n\tfile=a\n\tfile=b\nservice=a\n"),
            ("b", "database=\n\tfile=a\n\tfile=b\nservice=b\n"),
        ]);
        let db = m.open("a").unwrap();
        assert_eq!(names(&db), ["a", "b"]);
        assert_eq!(m.asked, ["a", "b"]);
        assert_eq!(services(&db), ["a", "b"]);
        assert_eq!(
            db.diagnostics(),
            ["b: its database entry is not followed (only a's is)"]
        );
    }

    #[test]
    fn main_file_line_errors_are_unprefixed() {
        let mut m = Mem::new(&[("main", "service=a\n\t=x\n")]);
        assert_eq!(
            m.open("main").unwrap().diagnostics(),
            ["line 2: empty name"]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_reads_each_listed_name_at_most_once(
            main in "(?s).{0,120}",
            other in "(?s).{0,80}",
        ) {
            let main = format!("database=\n\tfile=o\n\tfile=m\n{main}");
            let mut asked = 0usize;
            let db = open_with(Path::new("m"), |p| {
                asked += 1;
                let text = if p == Path::new("m") { &main } else { &other };
                Ok(text.clone().into_bytes())
            })
            .unwrap();
            // One read for the named file, one per `file=` name at most.
            let named = db.files.iter().find(|f| f.path == Path::new("m")).unwrap();
            let listed = database_files(&named.entries).map_or(0, |n| n.len());
            proptest::prop_assert!(listed >= 2);
            proptest::prop_assert!(asked <= listed + 1);
            let _ = db.diagnostics();
        }
    }
}
