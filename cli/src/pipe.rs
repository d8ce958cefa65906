//! A closed standard output ends any command quietly, with status 0: `registry man | head`,
//! `registry query --all | head -1`, `registry watch | grep -m1 printer`.
//!
//! Rust starts every program with SIGPIPE ignored, so a write to a pipe whose reader has gone
//! fails with EPIPE instead of killing the process. Restoring SIGPIPE's default action would end
//! such commands silently too (as `cat` ends, status 141), but it would apply to every write of
//! the process: the standard library (under tokio) writes to Unix sockets with write(2) and
//! gathers TCP writes with writev(2), neither of which withholds SIGPIPE (MSG_NOSIGNAL), so
//! `serve`, `shim` or `mount` would die whenever one client hung up at the wrong moment. So
//! SIGPIPE stays ignored, and `main` treats the failure instead: an error (or a panic:
//! `println!`, clap_complete) that is EPIPE, while standard output is a pipe or socket with no
//! reader, ends the command with status 0 and no message. An EPIPE from a socket while standard
//! output is still read is reported as before.

use std::error::Error;

/// Whether standard output is a pipe or socket whose reading end is closed (poll(2) says
/// POLLERR or POLLHUP for it).
pub fn stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a timeout of 0: poll only looks.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Whether `e`, or an error it was caused by, is EPIPE (also when it was flattened into text).
fn is_epipe(e: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = e.source();
    }
    says_epipe(&e.to_string())
}

/// Whether a message is the text of an EPIPE error (`Broken pipe (os error 32)`, or the
/// `Debug` form that `expect` prints).
fn says_epipe(message: &str) -> bool {
    message.contains(&format!("(os error {})", libc::EPIPE))
        || message.contains("kind: BrokenPipe")
        || message.contains("Kind(BrokenPipe)")
}

/// Whether the command failed only because nobody reads its output any more: then it has done
/// all that anyone will see, and ends with status 0 and nothing said.
pub fn output_closed(e: &(dyn Error + 'static)) -> bool {
    is_epipe(e) && stdout_closed()
}

/// Makes a panic over a write to a closed standard output (`println!` panics on EPIPE, and so
/// do libraries that `expect` their writes) end the process with status 0 and nothing said.
/// Other panics are reported as before.
pub fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if says_epipe(message) && stdout_closed() {
            std::process::exit(0);
        }
        report(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epipe_is_seen_through_causes_and_text() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_epipe(&io));
        let os = std::io::Error::from_raw_os_error(libc::EPIPE);
        let flat: Box<dyn Error + Send + Sync> = format!("writing: {os}").into();
        assert!(is_epipe(flat.as_ref()));
        assert!(says_epipe(&format!("failed: {os:?}")));
        let other: Box<dyn Error + Send + Sync> = "connection refused".into();
        assert!(!is_epipe(other.as_ref()));
    }
}
