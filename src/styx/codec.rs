//! Byte-exact 9P2000 encoding and bounded decoding.
//!
//! Every message is `size[4] type[1] tag[2] ...`, little-endian, strings as `len[2] utf8`.
//! Decoding checks `size` against the negotiated msize before anything is allocated for the
//! message, and every field against the end of the message: hostile bytes give a
//! [`DecodeError`], never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::msg::{Body, MAXWELEM, Msg, Qid, Stat};

/// Bytes of `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;
/// Fixed part of a stat entry after its own `size[2]` field, without the four strings' bytes.
const STAT_FIXED: usize = 2 + 4 + 13 + 4 + 4 + 4 + 8 + 4 * 2;

/// Why bytes are not a 9P2000 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The size field exceeds the negotiated msize.
    #[error("message size {size} exceeds msize {msize}")]
    TooBig {
        /// The size field.
        size: u32,
        /// The negotiated limit.
        msize: u32,
    },
    /// The size field is smaller than a header.
    #[error("message size {0} is smaller than a header")]
    TooSmall(u32),
    /// Fewer bytes than the size field announces.
    #[error("truncated message: size {size} but {have} bytes")]
    Truncated {
        /// The size field.
        size: u32,
        /// Bytes present.
        have: usize,
    },
    /// A field, string or counted array runs past the end of the message.
    #[error("{field} runs past the end of the message")]
    Overrun {
        /// Which field.
        field: &'static str,
    },
    /// A Twalk or Rwalk with more than 16 elements.
    #[error("{0} walk elements (at most 16)")]
    TooManyWalkElements(u16),
    /// A string that is not UTF-8.
    #[error("{field} is not UTF-8")]
    BadUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// A type byte that is not a 9P2000 message (Terror included).
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// Bytes left over after the last field.
    #[error("{0} bytes after the end of a {1}")]
    Trailing(usize, &'static str),
    /// A stat entry whose own size disagrees with the bytes around it.
    #[error("malformed stat entry")]
    BadStat,
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string longer than 65535 bytes.
    #[error("string too long")]
    StringTooLong,
    /// More than 16 walk elements, or more than 65535 of anything counted.
    #[error("too many walk elements")]
    TooManyElements,
    /// Data or a stat that does not fit its count field.
    #[error("data too long")]
    DataTooLong,
}

impl Msg {
    /// Appends the wire form of this message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = buf.len();
        buf.put_u32_le(0);
        buf.put_u8(self.body.type_id());
        buf.put_u16_le(self.tag);
        if let Err(e) = encode_body(&self.body, buf) {
            buf.truncate(start);
            return Err(e);
        }
        let size = u32::try_from(buf.len() - start).map_err(|_| EncodeError::DataTooLong)?;
        buf[start..start + 4].copy_from_slice(&size.to_le_bytes());
        Ok(())
    }

    /// The wire form of this message as one buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(64);
        self.encode(&mut buf)?;
        Ok(buf.freeze())
    }

    /// Decodes one whole message. `frame` must hold exactly the bytes its size field announces.
    /// Rread/Twrite data share `frame`'s storage.
    pub fn decode(frame: Bytes, msize: u32) -> Result<Msg, DecodeError> {
        let size = check_size(&frame, msize)?;
        if frame.len() < size as usize {
            return Err(DecodeError::Truncated {
                size,
                have: frame.len(),
            });
        }
        if frame.len() > size as usize {
            return Err(DecodeError::Trailing(frame.len() - size as usize, "frame"));
        }
        let mut r = Reader {
            buf: frame.slice(4..),
        };
        let ty = r.u8("type")?;
        let tag = r.u16("tag")?;
        let body = decode_body(ty, &mut r)?;
        if !r.buf.is_empty() {
            return Err(DecodeError::Trailing(r.buf.len(), body.name()));
        }
        Ok(Msg { tag, body })
    }

    /// Decodes from the front of a byte slice (copying it), for tests and fuzzing.
    pub fn decode_slice(bytes: &[u8], msize: u32) -> Result<Msg, DecodeError> {
        let size = check_size(bytes, msize)?;
        let frame = bytes.get(..size as usize).ok_or(DecodeError::Truncated {
            size,
            have: bytes.len(),
        })?;
        Msg::decode(Bytes::copy_from_slice(frame), msize)
    }
}

/// Reads the size field of a message at the front of `bytes` and checks it against `msize`.
/// Needs only the first four bytes; this is the check done before a buffer is allocated.
pub fn check_size(bytes: &[u8], msize: u32) -> Result<u32, DecodeError> {
    let head: [u8; 4] =
        bytes
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Truncated {
                size: 0,
                have: bytes.len(),
            })?;
    let size = u32::from_le_bytes(head);
    if size > msize {
        return Err(DecodeError::TooBig { size, msize });
    }
    if (size as usize) < HEADER_LEN {
        return Err(DecodeError::TooSmall(size));
    }
    Ok(size)
}

/// Takes one whole message off the front of `buf` if it is all there (stream framing).
/// Returns `Ok(None)` while more bytes are needed; errors as [`Msg::decode`].
pub fn decode_frame(buf: &mut BytesMut, msize: u32) -> Result<Option<Msg>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = check_size(buf, msize)? as usize;
    if buf.len() < size {
        return Ok(None);
    }
    Msg::decode(buf.split_to(size).freeze(), msize).map(Some)
}

fn put_str(buf: &mut BytesMut, s: &str) -> Result<(), EncodeError> {
    let n = u16::try_from(s.len()).map_err(|_| EncodeError::StringTooLong)?;
    buf.put_u16_le(n);
    buf.put_slice(s.as_bytes());
    Ok(())
}

fn put_qid(buf: &mut BytesMut, q: &Qid) {
    buf.put_u8(q.ty);
    buf.put_u32_le(q.version);
    buf.put_u64_le(q.path);
}

/// Bytes of `stat`'s wire form including its leading `size[2]`.
pub fn stat_len(stat: &Stat) -> usize {
    2 + STAT_FIXED + stat.name.len() + stat.uid.len() + stat.gid.len() + stat.muid.len()
}

/// Appends the wire form of a stat entry (`size[2]` then the fields), as in a directory read.
pub fn encode_stat(stat: &Stat, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let n = u16::try_from(stat_len(stat) - 2).map_err(|_| EncodeError::DataTooLong)?;
    buf.put_u16_le(n);
    buf.put_u16_le(stat.ty);
    buf.put_u32_le(stat.dev);
    put_qid(buf, &stat.qid);
    buf.put_u32_le(stat.mode);
    buf.put_u32_le(stat.atime);
    buf.put_u32_le(stat.mtime);
    buf.put_u64_le(stat.length);
    put_str(buf, &stat.name)?;
    put_str(buf, &stat.uid)?;
    put_str(buf, &stat.gid)?;
    put_str(buf, &stat.muid)
}

/// Rstat and Twstat wrap the stat entry in one more count: `n[2] stat[n]`.
fn put_wrapped_stat(buf: &mut BytesMut, stat: &Stat) -> Result<(), EncodeError> {
    let n = u16::try_from(stat_len(stat)).map_err(|_| EncodeError::DataTooLong)?;
    buf.put_u16_le(n);
    encode_stat(stat, buf)
}

fn put_data(buf: &mut BytesMut, data: &[u8]) -> Result<(), EncodeError> {
    let n = u32::try_from(data.len()).map_err(|_| EncodeError::DataTooLong)?;
    buf.put_u32_le(n);
    buf.put_slice(data);
    Ok(())
}

fn encode_body(body: &Body, buf: &mut BytesMut) -> Result<(), EncodeError> {
    match body {
        Body::Tversion { msize, version } | Body::Rversion { msize, version } => {
            buf.put_u32_le(*msize);
            put_str(buf, version)?;
        }
        Body::Tauth { afid, uname, aname } => {
            buf.put_u32_le(*afid);
            put_str(buf, uname)?;
            put_str(buf, aname)?;
        }
        Body::Rauth { aqid: qid } | Body::Rattach { qid } => put_qid(buf, qid),
        Body::Tattach {
            fid,
            afid,
            uname,
            aname,
        } => {
            buf.put_u32_le(*fid);
            buf.put_u32_le(*afid);
            put_str(buf, uname)?;
            put_str(buf, aname)?;
        }
        Body::Rerror { ename } => put_str(buf, ename)?,
        Body::Tflush { oldtag } => buf.put_u16_le(*oldtag),
        Body::Twalk {
            fid,
            newfid,
            wnames,
        } => {
            if wnames.len() > MAXWELEM {
                return Err(EncodeError::TooManyElements);
            }
            buf.put_u32_le(*fid);
            buf.put_u32_le(*newfid);
            buf.put_u16_le(wnames.len() as u16);
            for w in wnames {
                put_str(buf, w)?;
            }
        }
        Body::Rwalk { wqids } => {
            if wqids.len() > MAXWELEM {
                return Err(EncodeError::TooManyElements);
            }
            buf.put_u16_le(wqids.len() as u16);
            for q in wqids {
                put_qid(buf, q);
            }
        }
        Body::Topen { fid, mode } => {
            buf.put_u32_le(*fid);
            buf.put_u8(*mode);
        }
        Body::Ropen { qid, iounit } | Body::Rcreate { qid, iounit } => {
            put_qid(buf, qid);
            buf.put_u32_le(*iounit);
        }
        Body::Tcreate {
            fid,
            name,
            perm,
            mode,
        } => {
            buf.put_u32_le(*fid);
            put_str(buf, name)?;
            buf.put_u32_le(*perm);
            buf.put_u8(*mode);
        }
        Body::Tread { fid, offset, count } => {
            buf.put_u32_le(*fid);
            buf.put_u64_le(*offset);
            buf.put_u32_le(*count);
        }
        Body::Rread { data } => put_data(buf, data)?,
        Body::Twrite { fid, offset, data } => {
            buf.put_u32_le(*fid);
            buf.put_u64_le(*offset);
            put_data(buf, data)?;
        }
        Body::Rwrite { count } => buf.put_u32_le(*count),
        Body::Tclunk { fid } | Body::Tremove { fid } | Body::Tstat { fid } => buf.put_u32_le(*fid),
        Body::Rstat { stat } => put_wrapped_stat(buf, stat)?,
        Body::Twstat { fid, stat } => {
            buf.put_u32_le(*fid);
            put_wrapped_stat(buf, stat)?;
        }
        Body::Rflush | Body::Rclunk | Body::Rremove | Body::Rwstat => {}
    }
    Ok(())
}

/// A cursor over the rest of one message; every read checks the remaining length first.
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            Err(DecodeError::Overrun { field })
        } else {
            Ok(())
        }
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(2, field)?;
        Ok(self.buf.get_u16_le())
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(4, field)?;
        Ok(self.buf.get_u32_le())
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.need(8, field)?;
        Ok(self.buf.get_u64_le())
    }
    fn bytes(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, field)?;
        Ok(self.buf.split_to(n))
    }
    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let n = self.u16(field)? as usize;
        self.need(n, field)?;
        let s = std::str::from_utf8(&self.buf[..n])
            .map_err(|_| DecodeError::BadUtf8 { field })?
            .to_owned();
        self.buf.advance(n);
        Ok(s)
    }
    fn qid(&mut self, field: &'static str) -> Result<Qid, DecodeError> {
        self.need(13, field)?;
        Ok(Qid {
            ty: self.buf.get_u8(),
            version: self.buf.get_u32_le(),
            path: self.buf.get_u64_le(),
        })
    }
    fn data(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u32("count")? as usize;
        self.bytes(n, "data")
    }
    fn wrapped_stat(&mut self) -> Result<Stat, DecodeError> {
        let n = self.u16("stat count")? as usize;
        let inner = self.bytes(n, "stat")?;
        let mut r = Reader { buf: inner };
        let stat = r.stat()?;
        if !r.buf.is_empty() {
            return Err(DecodeError::BadStat);
        }
        Ok(stat)
    }
    /// One stat entry, `size[2]` first; the entry's size must match its fields exactly.
    fn stat(&mut self) -> Result<Stat, DecodeError> {
        let n = self.u16("stat size")? as usize;
        let inner = self.bytes(n, "stat")?;
        let mut r = Reader { buf: inner };
        let stat = Stat {
            ty: r.u16("stat type")?,
            dev: r.u32("stat dev")?,
            qid: r.qid("stat qid")?,
            mode: r.u32("stat mode")?,
            atime: r.u32("stat atime")?,
            mtime: r.u32("stat mtime")?,
            length: r.u64("stat length")?,
            name: r.string("stat name")?,
            uid: r.string("stat uid")?,
            gid: r.string("stat gid")?,
            muid: r.string("stat muid")?,
        };
        if !r.buf.is_empty() {
            return Err(DecodeError::BadStat);
        }
        Ok(stat)
    }
}

/// Decodes a stat entry (`size[2]` first) from the front of `buf`, returning it and the bytes it
/// took: the unit of a directory read.
pub fn decode_stat(buf: &[u8]) -> Result<(Stat, usize), DecodeError> {
    let mut r = Reader {
        buf: Bytes::copy_from_slice(buf),
    };
    let stat = r.stat()?;
    Ok((stat, buf.len() - r.buf.len()))
}

/// Decodes all stat entries of a directory read's data.
pub fn decode_dir(mut data: &[u8]) -> Result<Vec<Stat>, DecodeError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (stat, used) = decode_stat(data)?;
        out.push(stat);
        data = data.get(used..).unwrap_or_default();
    }
    Ok(out)
}

fn decode_body(ty: u8, r: &mut Reader) -> Result<Body, DecodeError> {
    Ok(match ty {
        100 => Body::Tversion {
            msize: r.u32("msize")?,
            version: r.string("version")?,
        },
        101 => Body::Rversion {
            msize: r.u32("msize")?,
            version: r.string("version")?,
        },
        102 => Body::Tauth {
            afid: r.u32("afid")?,
            uname: r.string("uname")?,
            aname: r.string("aname")?,
        },
        103 => Body::Rauth {
            aqid: r.qid("aqid")?,
        },
        104 => Body::Tattach {
            fid: r.u32("fid")?,
            afid: r.u32("afid")?,
            uname: r.string("uname")?,
            aname: r.string("aname")?,
        },
        105 => Body::Rattach { qid: r.qid("qid")? },
        107 => Body::Rerror {
            ename: r.string("ename")?,
        },
        108 => Body::Tflush {
            oldtag: r.u16("oldtag")?,
        },
        109 => Body::Rflush,
        110 => {
            let fid = r.u32("fid")?;
            let newfid = r.u32("newfid")?;
            let n = r.u16("nwname")?;
            if n as usize > MAXWELEM {
                return Err(DecodeError::TooManyWalkElements(n));
            }
            let mut wnames = Vec::with_capacity(n as usize);
            for _ in 0..n {
                wnames.push(r.string("wname")?);
            }
            Body::Twalk {
                fid,
                newfid,
                wnames,
            }
        }
        111 => {
            let n = r.u16("nwqid")?;
            if n as usize > MAXWELEM {
                return Err(DecodeError::TooManyWalkElements(n));
            }
            let mut wqids = Vec::with_capacity(n as usize);
            for _ in 0..n {
                wqids.push(r.qid("wqid")?);
            }
            Body::Rwalk { wqids }
        }
        112 => Body::Topen {
            fid: r.u32("fid")?,
            mode: r.u8("mode")?,
        },
        113 => Body::Ropen {
            qid: r.qid("qid")?,
            iounit: r.u32("iounit")?,
        },
        114 => Body::Tcreate {
            fid: r.u32("fid")?,
            name: r.string("name")?,
            perm: r.u32("perm")?,
            mode: r.u8("mode")?,
        },
        115 => Body::Rcreate {
            qid: r.qid("qid")?,
            iounit: r.u32("iounit")?,
        },
        116 => Body::Tread {
            fid: r.u32("fid")?,
            offset: r.u64("offset")?,
            count: r.u32("count")?,
        },
        117 => Body::Rread { data: r.data()? },
        118 => Body::Twrite {
            fid: r.u32("fid")?,
            offset: r.u64("offset")?,
            data: r.data()?,
        },
        119 => Body::Rwrite {
            count: r.u32("count")?,
        },
        120 => Body::Tclunk { fid: r.u32("fid")? },
        121 => Body::Rclunk,
        122 => Body::Tremove { fid: r.u32("fid")? },
        123 => Body::Rremove,
        124 => Body::Tstat { fid: r.u32("fid")? },
        125 => Body::Rstat {
            stat: r.wrapped_stat()?,
        },
        126 => Body::Twstat {
            fid: r.u32("fid")?,
            stat: r.wrapped_stat()?,
        },
        127 => Body::Rwstat,
        other => return Err(DecodeError::UnknownType(other)),
    })
}
