//! Directory reads: whole stat entries packed into a read's count, with 9P offsets.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use super::super::codec::{encode_stat, stat_len};
use super::super::msg::Stat;

/// Packs the entries of a directory read at byte `offset` with at most `count` bytes.
///
/// The offset of an entry is the sum of the wire lengths of the entries before it (read(5)):
/// a read returns only whole entries, starting with the first whose offset is at least
/// `offset`, as many as fit. An entry longer than `count` ends the read (an empty read means
/// end of directory, as in Plan 9). Offsets are only meaningful against the same list: see
/// [`DirReader`] for a per-fid snapshot.
pub fn pack_dir(entries: &[Stat], offset: u64, count: u32) -> Bytes {
    let mut out = BytesMut::new();
    let mut pos: u64 = 0;
    let mut room = count as usize;
    for e in entries {
        let n = stat_len(e);
        if pos >= offset {
            if n > room {
                break;
            }
            // An entry that cannot be encoded (a name over 64k) is skipped, not sent broken.
            let mark = out.len();
            if encode_stat(e, &mut out).is_err() {
                out.truncate(mark);
            } else {
                room -= n;
            }
        }
        pos += n as u64;
    }
    out.freeze()
}

/// A per-fid directory snapshot: taken afresh at offset 0, reused for later offsets, so the
/// offsets a client holds stay meaningful while the directory changes underneath
/// (Inferno's styxservers keeps the same kind of cursor).
#[derive(Debug, Default)]
pub struct DirReader {
    snapshot: Mutex<Vec<Stat>>,
}

impl DirReader {
    /// A reader with an empty snapshot.
    pub fn new() -> DirReader {
        DirReader::default()
    }

    /// Answers a directory read; `list` is called for the entries when `offset` is 0.
    pub fn read(&self, offset: u64, count: u32, list: impl FnOnce() -> Vec<Stat>) -> Bytes {
        let mut snap = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        if offset == 0 {
            *snap = list();
        }
        pack_dir(&snap, offset, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::styx::codec::decode_dir;

    fn entry(name: &str) -> Stat {
        Stat {
            name: name.into(),
            uid: "u".into(),
            gid: "g".into(),
            muid: "m".into(),
            ..Stat::default()
        }
    }

    #[test]
    fn reads_whole_entries_and_continues_at_offsets() {
        let list: Vec<Stat> = ["a", "bb", "ccc"].iter().map(|n| entry(n)).collect();
        let one = stat_len(&list[0]) as u32;
        let first = pack_dir(&list, 0, one + 5);
        assert_eq!(decode_dir(&first).unwrap(), vec![list[0].clone()]);
        let rest = pack_dir(&list, first.len() as u64, 8192);
        assert_eq!(decode_dir(&rest).unwrap(), list[1..].to_vec());
        let end = pack_dir(&list, (first.len() + rest.len()) as u64, 8192);
        assert!(end.is_empty());
    }

    #[test]
    fn snapshot_is_kept_between_offsets() {
        let r = DirReader::new();
        let a = r.read(0, 8192, || vec![entry("x")]);
        let b = r.read(a.len() as u64, 8192, || vec![entry("y"), entry("z")]);
        assert!(b.is_empty());
    }
}
