//! Interrupting a read that waits: fuser (0.17) answers the kernel's FUSE_INTERRUPT with ENOSYS
//! (its `src/request.rs`: "TODO: handle FUSE_INTERRUPT"), and once a read has reached the file
//! system the kernel then waits for its answer whatever signal comes, SIGKILL included. So while
//! a read waits (an `event` read), the mount looks at its caller: when a signal is pending for
//! it, the read is dropped (which flushes it) and answered EINTR, as a file system that honours
//! interrupts would answer, and the signal is delivered.

use std::time::Duration;

/// How often a waiting read's caller is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Resolves once process (thread) `pid` has a signal pending that it does not block, or is gone.
pub async fn pending(pid: u32) {
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        if has_pending(pid) {
            return;
        }
    }
}

fn has_pending(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    pending_in(&status)
}

/// Whether a `/proc/PID/status` text shows a signal pending (for the thread or its process)
/// that is not blocked.
fn pending_in(status: &str) -> bool {
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    pending & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_signals_not_blocked_count() {
        let s = |pnd: &str, shd: &str, blk: &str| {
            format!("Name:\tcat\nSigPnd:\t{pnd}\nShdPnd:\t{shd}\nSigBlk:\t{blk}\nSigIgn:\t0\n")
        };
        assert!(!pending_in(&s("0000000000000000", "0000000000000000", "0")));
        // SIGTERM (15) pending for the process.
        assert!(pending_in(&s("0000000000000000", "0000000000004000", "0")));
        // SIGINT pending but blocked.
        assert!(!pending_in(&s(
            "0000000000000002",
            "0000000000000000",
            "0000000000000002"
        )));
        // SIGKILL for the thread.
        assert!(pending_in(&s("0000000000000100", "0000000000000000", "0")));
    }

    #[test]
    fn this_process_has_none_pending() {
        assert!(!has_pending(std::process::id()));
    }
}
