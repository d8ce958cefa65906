//! The three hash functions infpk1 uses for certificates (§3.5) and record MACs (§6.3).

use md4::Md4;
use md5::{Digest as _, Md5};
use ring::digest;

/// A hash algorithm by Inferno's names: `sha1`/`sha`, `md5`, `md4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1 (20 bytes); Inferno's `sha1` and `sha`.
    Sha1,
    /// MD5 (16 bytes).
    Md5,
    /// MD4 (16 bytes).
    Md4,
}

impl HashAlg {
    /// Looks up an Inferno hash name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" | "sha" => Some(Self::Sha1),
            "md5" => Some(Self::Md5),
            "md4" => Some(Self::Md4),
            _ => None,
        }
    }

    /// devssl's name for this hash.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Md5 => "md5",
            Self::Md4 => "md4",
        }
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Md5 | Self::Md4 => 16,
        }
    }

    /// Hashes the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                let mut c = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
                parts.iter().for_each(|p| c.update(p));
                c.finish().as_ref().to_vec()
            }
            Self::Md5 => {
                let mut h = Md5::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            Self::Md4 => {
                let mut h = Md4::new();
                parts.iter().for_each(|p| md4::Digest::update(&mut h, p));
                md4::Digest::finalize(h).to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&HashAlg::Sha1.digest(&[b"a", b"bc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&HashAlg::Md5.digest(&[b"abc"])),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex(&HashAlg::Md4.digest(&[b"abc"])),
            "a448017aaf21d8525fc10ae87aa6729d"
        );
    }
}
