//! Record encryption (spec/infpk1.md §6.4, §6.5): RC4, DES and IDEA in ECB or CBC, with state that
//! carries across records in one direction.

use crate::auth::AuthError;
use des::Des;
use des::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit, StreamCipher};
use idea::Idea;
use rc4::Rc4;

/// A cipher choice from an algorithm string (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    /// RC4 keyed with the first `key_len` bytes of the secret (5, 16 or 256).
    Rc4 {
        /// Most key bytes taken from the secret.
        key_len: usize,
    },
    /// DES; `forty` masks key bytes 0, 2, 4, 6 with 0x0F.
    Des {
        /// CBC (true) or ECB.
        cbc: bool,
        /// The 40-bit variant.
        forty: bool,
    },
    /// IDEA.
    Idea {
        /// CBC (true) or ECB.
        cbc: bool,
    },
}

impl CipherKind {
    /// devssl's name for this cipher (the long form where there are two).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rc4 { key_len: 256 } => "rc4_256",
            Self::Rc4 { key_len: 16 } => "rc4_128",
            Self::Rc4 { .. } => "rc4_40",
            Self::Des {
                cbc: true,
                forty: false,
            } => "des_56_cbc",
            Self::Des {
                cbc: false,
                forty: false,
            } => "des_56_ecb",
            Self::Des {
                cbc: true,
                forty: true,
            } => "des_40_cbc",
            Self::Des {
                cbc: false,
                forty: true,
            } => "des_40_ecb",
            Self::Idea { cbc: true } => "ideacbc",
            Self::Idea { cbc: false } => "ideaecb",
        }
    }

    /// Looks up an Inferno cipher name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rc4_256" => Self::Rc4 { key_len: 256 },
            "rc4_128" => Self::Rc4 { key_len: 16 },
            "rc4_40" | "rc4" => Self::Rc4 { key_len: 5 },
            "des_56_cbc" | "descbc" => Self::Des {
                cbc: true,
                forty: false,
            },
            "des_56_ecb" | "desecb" => Self::Des {
                cbc: false,
                forty: false,
            },
            "des_40_cbc" => Self::Des {
                cbc: true,
                forty: true,
            },
            "des_40_ecb" => Self::Des {
                cbc: false,
                forty: true,
            },
            "ideacbc" => Self::Idea { cbc: true },
            "ideaecb" => Self::Idea { cbc: false },
            _ => return None,
        })
    }

    /// The block length: 1 for RC4, 8 for DES and IDEA.
    pub fn block_len(self) -> usize {
        match self {
            Self::Rc4 { .. } => 1,
            _ => 8,
        }
    }
}

/// A block cipher and, for CBC, the running IV.
pub(crate) struct Blocks<C> {
    cipher: C,
    iv: Option<[u8; 8]>,
}

/// `secret[from..from+8]` when the secret is long enough, else zeros (§6.5).
fn iv_from(secret: &[u8], from: usize) -> [u8; 8] {
    secret
        .get(from..from + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .unwrap_or([0; 8])
}

impl<C: BlockCipherEncrypt + BlockCipherDecrypt> Blocks<C> {
    fn encrypt(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_exact_mut(8) {
            if let Some(iv) = &self.iv {
                chunk.iter_mut().zip(iv).for_each(|(b, v)| *b ^= v);
            }
            let mut blk = Block::<C>::default();
            blk.copy_from_slice(chunk);
            self.cipher.encrypt_block(&mut blk);
            chunk.copy_from_slice(&blk);
            if let Some(iv) = &mut self.iv {
                iv.copy_from_slice(chunk);
            }
        }
    }

    fn decrypt(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_exact_mut(8) {
            let mut blk = Block::<C>::default();
            blk.copy_from_slice(chunk);
            let saved = blk.clone();
            self.cipher.decrypt_block(&mut blk);
            chunk.copy_from_slice(&blk);
            if let Some(iv) = &mut self.iv {
                chunk.iter_mut().zip(iv.iter()).for_each(|(b, v)| *b ^= v);
                iv.copy_from_slice(&saved);
            }
        }
    }
}

/// One direction's cipher state.
pub(crate) enum CipherState {
    Rc4(Box<Rc4>),
    Des(Blocks<Des>),
    Idea(Blocks<Idea>),
}

impl CipherState {
    /// Keys the cipher from the secret (§6.5).
    pub(crate) fn new(kind: CipherKind, secret: &[u8]) -> Result<Self, AuthError> {
        Ok(match kind {
            CipherKind::Rc4 { key_len } => {
                let key = secret.get(..secret.len().min(key_len)).unwrap_or_default();
                CipherState::Rc4(Box::new(
                    Rc4::new_from_slice(key).map_err(|_| AuthError::SecretTooShort)?,
                ))
            }
            CipherKind::Des { cbc, forty } => {
                let mut key: [u8; 8] = secret
                    .get(..8)
                    .and_then(|k| k.try_into().ok())
                    .ok_or(AuthError::SecretTooShort)?;
                if forty {
                    for i in [0, 2, 4, 6] {
                        key[i] &= 0x0f;
                    }
                }
                let cipher = Des::new_from_slice(&key).map_err(|_| AuthError::SecretTooShort)?;
                CipherState::Des(Blocks {
                    cipher,
                    iv: cbc.then(|| iv_from(secret, 8)),
                })
            }
            CipherKind::Idea { cbc } => {
                let key = secret.get(..16).ok_or(AuthError::SecretTooShort)?;
                let cipher = Idea::new_from_slice(key).map_err(|_| AuthError::SecretTooShort)?;
                CipherState::Idea(Blocks {
                    cipher,
                    iv: cbc.then(|| iv_from(secret, 16)),
                })
            }
        })
    }

    /// Encrypts a whole record body in place (block ciphers: a multiple of 8 bytes).
    pub(crate) fn encrypt(&mut self, buf: &mut [u8]) {
        match self {
            CipherState::Rc4(c) => c.apply_keystream(buf),
            CipherState::Des(b) => b.encrypt(buf),
            CipherState::Idea(b) => b.encrypt(buf),
        }
    }

    /// Decrypts a whole record body in place.
    pub(crate) fn decrypt(&mut self, buf: &mut [u8]) {
        match self {
            CipherState::Rc4(c) => c.apply_keystream(buf),
            CipherState::Des(b) => b.decrypt(buf),
            CipherState::Idea(b) => b.decrypt(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idea_test_vector() {
        // libsec/port/idea.c's vector (§6.4).
        let key: Vec<u8> = (1..=8u16).flat_map(|v| v.to_be_bytes()).collect();
        let mut st = CipherState::new(CipherKind::Idea { cbc: false }, &key).unwrap();
        let mut block = [0, 0, 0, 1, 0, 2, 0, 3];
        st.encrypt(&mut block);
        assert_eq!(block, [0x11, 0xfb, 0xed, 0x2b, 0x01, 0x98, 0x6d, 0xe5]);
    }

    #[test]
    fn cbc_round_trip_across_records() {
        let secret: Vec<u8> = (0..40).collect();
        for name in ["des_56_cbc", "des_40_cbc", "ideacbc", "desecb", "rc4_128"] {
            let kind = CipherKind::from_name(name).unwrap();
            let mut e = CipherState::new(kind, &secret).unwrap();
            let mut d = CipherState::new(kind, &secret).unwrap();
            for rec in 0..3u8 {
                let plain = [rec; 24];
                let mut buf = plain;
                e.encrypt(&mut buf);
                assert_ne!(buf, plain);
                d.decrypt(&mut buf);
                assert_eq!(buf, plain, "{name}");
            }
        }
        assert!(matches!(
            CipherState::new(CipherKind::Idea { cbc: true }, &secret[..15]),
            Err(AuthError::SecretTooShort)
        ));
    }
}
