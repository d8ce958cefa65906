//! Codec tests: round trips (property), and each malformed input giving its own error.

use bytes::Bytes;
use proptest::prelude::*;

use super::codec::{DecodeError, decode_frame};
use super::msg::{Body, Msg, Qid, Stat};

fn qid() -> impl Strategy<Value = Qid> {
    (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(ty, version, path)| Qid {
        ty,
        version,
        path,
    })
}

fn name() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (
            any::<u16>(),
            any::<u32>(),
            qid(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
        ),
        (name(), name(), name(), name()),
    )
        .prop_map(
            |((ty, dev, qid, mode, atime, mtime, length), (name, uid, gid, muid))| Stat {
                ty,
                dev,
                qid,
                mode,
                atime,
                mtime,
                length,
                name,
                uid,
                gid,
                muid,
            },
        )
}

fn data() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (any::<u32>(), name()).prop_map(|(msize, version)| Body::Tversion { msize, version }),
        (any::<u32>(), name()).prop_map(|(msize, version)| Body::Rversion { msize, version }),
        (any::<u32>(), name(), name()).prop_map(|(afid, uname, aname)| Body::Tauth {
            afid,
            uname,
            aname
        }),
        qid().prop_map(|aqid| Body::Rauth { aqid }),
        (any::<u32>(), any::<u32>(), name(), name()).prop_map(|(fid, afid, uname, aname)| {
            Body::Tattach {
                fid,
                afid,
                uname,
                aname,
            }
        }),
        qid().prop_map(|qid| Body::Rattach { qid }),
        name().prop_map(|ename| Body::Rerror { ename }),
        any::<u16>().prop_map(|oldtag| Body::Tflush { oldtag }),
        Just(Body::Rflush),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(name(), 0..=16)
        )
            .prop_map(|(fid, newfid, wnames)| Body::Twalk {
                fid,
                newfid,
                wnames
            }),
        proptest::collection::vec(qid(), 0..=16).prop_map(|wqids| Body::Rwalk { wqids }),
        (any::<u32>(), any::<u8>()).prop_map(|(fid, mode)| Body::Topen { fid, mode }),
        (qid(), any::<u32>()).prop_map(|(qid, iounit)| Body::Ropen { qid, iounit }),
        (any::<u32>(), name(), any::<u32>(), any::<u8>()).prop_map(|(fid, name, perm, mode)| {
            Body::Tcreate {
                fid,
                name,
                perm,
                mode,
            }
        }),
        (qid(), any::<u32>()).prop_map(|(qid, iounit)| Body::Rcreate { qid, iounit }),
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(fid, offset, count)| Body::Tread {
            fid,
            offset,
            count
        }),
        data().prop_map(|data| Body::Rread { data }),
        (any::<u32>(), any::<u64>(), data()).prop_map(|(fid, offset, data)| Body::Twrite {
            fid,
            offset,
            data
        }),
        any::<u32>().prop_map(|count| Body::Rwrite { count }),
        any::<u32>().prop_map(|fid| Body::Tclunk { fid }),
        Just(Body::Rclunk),
        any::<u32>().prop_map(|fid| Body::Tremove { fid }),
        Just(Body::Rremove),
        any::<u32>().prop_map(|fid| Body::Tstat { fid }),
        stat().prop_map(|stat| Body::Rstat { stat }),
        (any::<u32>(), stat()).prop_map(|(fid, stat)| Body::Twstat { fid, stat }),
        Just(Body::Rwstat),
    ]
}

proptest! {
    #[test]
    fn round_trip(tag in any::<u16>(), body in body()) {
        let msg = Msg { tag, body };
        let bytes = msg.to_bytes().unwrap();
        let size = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        prop_assert_eq!(size as usize, bytes.len());
        let back = Msg::decode(bytes.clone(), 1 << 20).unwrap();
        prop_assert_eq!(&back, &msg);
        // Every strict prefix is truncated, never a panic and never a message.
        for cut in 0..bytes.len() {
            prop_assert!(Msg::decode_slice(&bytes[..cut], 1 << 20).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = Msg::decode_slice(&bytes, 8192);
    }
}

fn raw(ty: u8, tag: u16, rest: &[u8]) -> Vec<u8> {
    let mut v = ((7 + rest.len()) as u32).to_le_bytes().to_vec();
    v.push(ty);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(rest);
    v
}

#[test]
fn size_over_msize_is_refused_before_allocation() {
    let mut buf = bytes::BytesMut::from(&u32::MAX.to_le_bytes()[..]);
    assert_eq!(
        decode_frame(&mut buf, 8216),
        Err(DecodeError::TooBig {
            size: u32::MAX,
            msize: 8216
        })
    );
}

#[test]
fn each_malformation_has_its_own_error() {
    // Truncated: size says 100, 7 bytes present.
    let mut t = raw(120, 1, &[]);
    t[..4].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        Msg::decode_slice(&t, 8192),
        Err(DecodeError::Truncated { size: 100, .. })
    ));
    // Too small a size field.
    assert_eq!(
        Msg::decode_slice(&[3, 0, 0, 0, 0, 0, 0], 8192),
        Err(DecodeError::TooSmall(3))
    );
    // A string running past the end.
    let s = raw(107, 1, &[10, 0, b'a']);
    assert_eq!(
        Msg::decode_slice(&s, 8192),
        Err(DecodeError::Overrun { field: "ename" })
    );
    // A count running past the end.
    let c = raw(117, 1, &[0xff, 0xff, 0, 0, 1, 2]);
    assert_eq!(
        Msg::decode_slice(&c, 8192),
        Err(DecodeError::Overrun { field: "data" })
    );
    // 17 walk elements.
    let mut w = vec![1, 0, 0, 0, 2, 0, 0, 0, 17, 0];
    for _ in 0..17 {
        w.extend_from_slice(&[1, 0, b'x']);
    }
    assert_eq!(
        Msg::decode_slice(&raw(110, 1, &w), 8192),
        Err(DecodeError::TooManyWalkElements(17))
    );
    // Bad UTF-8.
    let u = raw(107, 1, &[2, 0, 0xff, 0xfe]);
    assert_eq!(
        Msg::decode_slice(&u, 8192),
        Err(DecodeError::BadUtf8 { field: "ename" })
    );
    // Terror (106) and others are unknown.
    assert_eq!(
        Msg::decode_slice(&raw(106, 1, &[]), 8192),
        Err(DecodeError::UnknownType(106))
    );
    assert_eq!(
        Msg::decode_slice(&raw(200, 1, &[]), 8192),
        Err(DecodeError::UnknownType(200))
    );
    // Trailing bytes.
    assert!(matches!(
        Msg::decode_slice(&raw(121, 1, &[0]), 8192),
        Err(DecodeError::Trailing(1, _))
    ));
}

#[test]
fn stat_matches_stat5_layout() {
    // Built by hand from stat(5): size[2] type[2] dev[4] qid[13] mode[4] atime[4] mtime[4]
    // length[8] name[s] uid[s] gid[s] muid[s], inside Rstat's own n[2].
    let stat = Stat {
        ty: 1,
        dev: 2,
        qid: Qid {
            ty: 0x80,
            version: 3,
            path: 4,
        },
        mode: 0x8000_01ed,
        atime: 5,
        mtime: 6,
        length: 7,
        name: "n".into(),
        uid: "u".into(),
        gid: "g".into(),
        muid: "m".into(),
    };
    let mut want = vec![];
    want.extend_from_slice(&(2 + 47u16 + 4).to_le_bytes()); // n = size[2] + size
    want.extend_from_slice(&(47u16 + 4).to_le_bytes()); // size
    want.extend_from_slice(&1u16.to_le_bytes());
    want.extend_from_slice(&2u32.to_le_bytes());
    want.push(0x80);
    want.extend_from_slice(&3u32.to_le_bytes());
    want.extend_from_slice(&4u64.to_le_bytes());
    want.extend_from_slice(&0x8000_01edu32.to_le_bytes());
    want.extend_from_slice(&5u32.to_le_bytes());
    want.extend_from_slice(&6u32.to_le_bytes());
    want.extend_from_slice(&7u64.to_le_bytes());
    for s in ["n", "u", "g", "m"] {
        want.extend_from_slice(&[1, 0]);
        want.extend_from_slice(s.as_bytes());
    }
    let msg = Msg {
        tag: 9,
        body: Body::Rstat { stat },
    };
    assert_eq!(msg.to_bytes().unwrap().as_ref(), &raw(125, 9, &want)[..]);
}
