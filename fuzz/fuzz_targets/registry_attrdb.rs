//! Fuzzes the attrdb(6) parser behind `registry serve -f`: any text parses or gives an error,
//! never a panic, and the lenient parser agrees with the strict one on valid input. The input,
//! split at NUL bytes, is also a set of in-memory files `0`, `1`, ... forming a database opened
//! as `0` (its `database` entry may name the others, itself, or missing files): no file I/O.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registries::registry::attrdb;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (lenient, errors) = attrdb::parse_lenient(text);
        if let Ok(strict) = attrdb::parse(text) {
            assert!(errors.is_empty());
            assert_eq!(strict.len(), lenient.len());
        }
        let _ = attrdb::static_services(&lenient);
    }

    let files: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let mut reads = 0usize;
    let Ok(db) = attrdb::open_with(Path::new("0"), |p| {
        reads += 1;
        let name = p.to_str();
        (0..files.len())
            .find(|i| name == Some(i.to_string().as_str()))
            .and_then(|i| files.get(i))
            .map(|f| f.to_vec())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }) else {
        panic!("file 0 always exists");
    };
    // One read for `0` and at most one for each name its database entry lists.
    let main = db.files.iter().find(|f| f.path == Path::new("0"));
    let listed = main
        .and_then(|f| attrdb::database_files(&f.entries))
        .map_or(0, |n| n.len());
    assert!(reads <= listed + 1);
    assert!(db.files.len() <= listed + 1);
    let _ = db.diagnostics();
    let _ = attrdb::static_services(db.entries());
});
