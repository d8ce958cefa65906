//! A service as `registry serve --etcd` keeps it in etcd: the value of key `PREFIX svc/NAME`.
//!
//! One line of `%q`-quoted words (spec/etcd.md):
//! `registry/1 owner holder fid vers mtime name attr val ...`. `holder` is the front-end
//! that registered it (a random number drawn at its start) and `fid` the fid token there, so that
//! a front-end recognises its own registrations when they come back from etcd's watch.

use crate::wire;
use std::fmt;

/// The first word: the format and its version.
const MAGIC: &str = "registry/1";

/// One service as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The user that registered it.
    pub owner: String,
    /// The front-end that registered it.
    pub holder: u64,
    /// The creating fid's token on that front-end.
    pub fid: u64,
    /// Its change count (Inferno's `vers`).
    pub vers: u32,
    /// Last write, seconds since the epoch.
    pub mtime: u32,
    /// The service name.
    pub name: String,
    /// Its attributes in Inferno's list order.
    pub attrs: Vec<(String, String)>,
}

/// A value under the prefix that is not a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotARecord(pub &'static str);

impl fmt::Display for NotARecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Record {
    /// Whether it outlives its creator: `persist` as Inferno reads it.
    pub(crate) fn persists(&self) -> bool {
        wire::persists(self.attrs.iter().map(|(a, v)| (a.as_str(), v.as_str())))
    }

    /// The stored text.
    pub(crate) fn encode(&self) -> String {
        let nums = [
            self.holder.to_string(),
            self.fid.to_string(),
            self.vers.to_string(),
            self.mtime.to_string(),
        ];
        let head = [MAGIC, &self.owner]
            .into_iter()
            .chain(nums.iter().map(String::as_str))
            .chain(std::iter::once(self.name.as_str()));
        let pairs = self
            .attrs
            .iter()
            .flat_map(|(a, v)| [a.as_str(), v.as_str()]);
        wire::quote_words(head.chain(pairs))
    }

    /// Reads a stored text.
    // Not nom: `unquote`'s words read in a fixed order.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Record, NotARecord> {
        let text = std::str::from_utf8(bytes).map_err(|_| NotARecord("not UTF-8"))?;
        let mut words = wire::unquote(text).into_iter();
        if words.next().as_deref() != Some(MAGIC) {
            return Err(NotARecord("not a registry record"));
        }
        let mut next = || words.next().ok_or(NotARecord("record too short"));
        let owner = next()?;
        let num = |w: String| w.parse().map_err(|_| NotARecord("bad number in record"));
        let holder = num(next()?)?;
        let fid = num(next()?)?;
        let vers = u32::try_from(num(next()?)?).map_err(|_| NotARecord("bad vers"))?;
        let mtime = u32::try_from(num(next()?)?).map_err(|_| NotARecord("bad mtime"))?;
        let name = next()?;
        let rest: Vec<String> = words.collect();
        if !rest.len().is_multiple_of(2) {
            return Err(NotARecord("odd attribute/value pairs in record"));
        }
        if wire::check_name(&name).is_err() {
            return Err(NotARecord("bad service name in record"));
        }
        let attrs = rest
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        Ok(Record {
            owner,
            holder,
            fid,
            vers,
            mtime,
            name,
            attrs,
        })
    }
}

/// Parses a stored value, for the fuzz target: never panics.
#[cfg(feature = "fuzzing")]
pub fn fuzz_decode(bytes: &[u8]) {
    if let Ok(r) = Record::decode(bytes) {
        assert_eq!(Record::decode(r.encode().as_bytes()).as_ref(), Ok(&r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        Record {
            owner: "pat".into(),
            holder: 77,
            fid: 3,
            vers: 2,
            mtime: 1_700_000_000,
            name: "tcp!svc!1".into(),
            attrs: vec![
                ("a b".into(), "it's".into()),
                ("persist".into(), "1".into()),
            ],
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        assert_eq!(Record::decode(r.encode().as_bytes()), Ok(r.clone()));
        assert!(r.persists());
    }

    #[test]
    fn foreign_values_are_refused() {
        for bad in [
            &b"hello"[..],
            b"",
            b"\xff\xfe",
            b"registry/1 pat 1 2",
            b"registry/1 o x 1 1 1 n",
        ] {
            assert!(Record::decode(bad).is_err(), "{bad:?}");
        }
        let odd = "registry/1 o 1 1 1 1 n a";
        assert_eq!(
            Record::decode(odd.as_bytes()),
            Err(NotARecord("odd attribute/value pairs in record"))
        );
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            owner in "[a-z]{1,8}",
            holder: u64, fid: u64, vers: u32, mtime: u32,
            name in "[a-z!0-9]{1,12}",
            attrs in proptest::collection::vec(("\\PC{0,6}", "\\PC{0,6}"), 0..5),
        ) {
            let r = Record { owner, holder, fid, vers, mtime, name, attrs };
            prop_assert_eq!(Record::decode(r.encode().as_bytes()), Ok(r));
        }
    }
}
