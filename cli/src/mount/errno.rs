//! A registry's diagnostics as the errno a FUSE reply carries. The text itself cannot reach the
//! program that made the call, so every failure is also logged with it.

use fuser::Errno;
use registries::styx::Error;

/// The errno for what the registry (or the connection to it) said; `what` names the operation
/// for the log.
pub fn errno(what: &str, e: &Error) -> Errno {
    let code = match e {
        Error::Remote(text) => remote(text),
        Error::NotFound(_) => libc::ENOENT,
        Error::NoTags => libc::EAGAIN,
        _ => libc::EIO,
    };
    // A name that does not exist is what every shell's lookup of a dotfile meets: not news.
    if code == libc::ENOENT {
        tracing::debug!("mount: {what}: {e}");
    } else {
        tracing::info!("mount: {what}: {e}");
    }
    Errno::from_i32(code)
}

/// The errno for an `Rerror` text: Inferno's registry(4) diagnostics, then the 9P layer's.
fn remote(text: &str) -> i32 {
    match text {
        "file does not exist" | "file not found" => libc::ENOENT,
        "permission denied" | "read/write -- not open in suitable mode" => libc::EACCES,
        "duplicate service name" | "file already exists" => libc::EEXIST,
        "service name taken by another registry" => libc::EEXIST,
        "bad character in service name"
        | "bad service name"
        | "odd attribute/value pairs"
        | "bad syntax"
        | "bad argument"
        | "open/create -- unknown mode" => libc::EINVAL,
        "not a directory" => libc::ENOTDIR,
        "registry store unavailable" | "too many outstanding requests" => libc::EAGAIN,
        "too many fids" => libc::EMFILE,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_map_to_their_errno() {
        let r = |t: &str| remote(t);
        assert_eq!(r("file does not exist"), libc::ENOENT);
        assert_eq!(r("duplicate service name"), libc::EEXIST);
        assert_eq!(r("odd attribute/value pairs"), libc::EINVAL);
        assert_eq!(r("permission denied"), libc::EACCES);
        assert_eq!(r("registry store unavailable"), libc::EAGAIN);
        assert_eq!(r("buggy program!"), libc::EIO);
    }
}
