//! What the bench needs from the operating system: resident memory, descriptor limits, free ports.

use std::time::Duration;

/// Resident set size of process `pid` in bytes, from `/proc/<pid>/status` (`VmRSS`); `None` where
/// there is no such file (not Linux, or the process is gone).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The resident size of `pid` once it has settled: a garbage-collected server (etcd) frees in the
/// background, so wait a little and take the smallest of a few readings.
pub async fn settled_rss(pid: u32) -> Option<u64> {
    let mut best: Option<u64> = None;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rss_bytes(pid)?;
        best = Some(best.map_or(now, |b| b.min(now)));
    }
    best
}

/// A loopback TCP port that was free a moment ago (for servers that take a port number, not a
/// listening socket).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// CPU time (user plus system, all threads) used so far by process `pid`, from
/// `/proc/<pid>/stat`; `None` where it cannot be read. Its resolution is the clock tick (10 ms),
/// so callers measure spans of many operations. Unlike wall time it does not grow when other
/// programs share the machine's cores, which makes it the steadier figure on a busy machine.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// Measures the CPU time `pid` spends from now until [`CpuSpan::per_op`] is called.
#[derive(Debug, Clone, Copy)]
pub struct CpuSpan {
    pid: Option<u32>,
    start: Option<Duration>,
}

impl CpuSpan {
    /// Starts measuring `pid` (nothing when `None`).
    pub fn start(pid: Option<u32>) -> CpuSpan {
        CpuSpan {
            pid,
            start: pid.and_then(cpu_time),
        }
    }

    /// CPU time since the start, divided by `ops`, in microseconds.
    pub fn per_op(&self, ops: usize) -> Option<f64> {
        let now = cpu_time(self.pid?)?;
        let used = now.checked_sub(self.start?)?;
        (ops > 0).then(|| used.as_secs_f64() * 1e6 / ops as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(cpu_time(me).is_some());
    }
}
