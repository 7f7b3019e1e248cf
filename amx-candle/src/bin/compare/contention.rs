//! How much CPU other processes took while a cell was measured, from Linux's `/proc`
//! counters (clock ticks, 100 per second): the machine's busy time (steal included)
//! minus this process's. On a shared 2-core machine a cell measured while another job
//! ran is off by up to 2-3x; `compare` measures such a cell again.

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/stat` and `/proc/self/stat` (`USER_HZ`, 100 on
/// every Linux architecture this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// The counters at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    machine_busy: u64,
    own: u64,
    at: Instant,
}

/// Busy ticks of all CPUs: user, nice, system, irq, softirq and steal of `/proc/stat`.
fn machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> =
        line.split_whitespace().skip(1).map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let at = |i: usize| v.get(i).copied();
    Some(at(0)? + at(1)? + at(2)? + at(5)? + at(6)? + at(7)?)
}

/// This process's user + system ticks (fields 14 and 15 of `/proc/self/stat`, counted
/// after the parenthesised command name, which may hold spaces).
fn own_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The counters now, or `None` where `/proc` cannot be read.
pub fn snapshot() -> Option<Snapshot> {
    let machine = std::fs::read_to_string("/proc/stat").ok()?;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    Some(Snapshot {
        machine_busy: machine_busy(&machine)?,
        own: own_ticks(&own)?,
        at: Instant::now(),
    })
}

/// CPUs' worth of time other processes (and the hypervisor) took between `before` and
/// `after`: 0.5 means half a core on average.
pub fn others(before: &Snapshot, after: &Snapshot) -> f64 {
    let wall = after.at.duration_since(before.at).max(Duration::from_millis(1)).as_secs_f64();
    let machine = after.machine_busy.saturating_sub(before.machine_busy);
    let own = after.own.saturating_sub(before.own);
    machine.saturating_sub(own) as f64 / TICKS_PER_SECOND / wall
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines() {
        let stat =
            "cpu  1018146 39382 109819 1112766 3910 0 597 326 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(machine_busy(stat), Some(1018146 + 39382 + 109819 + 597 + 326));
        assert_eq!(machine_busy("intr 1 2"), None);
        let own = "31379 (my (odd) name) R 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 1 0";
        assert_eq!(own_ticks(own), Some(267));
        assert_eq!(own_ticks("no parens"), None);
        if let (Some(a), Some(b)) = (snapshot(), snapshot()) {
            assert!(others(&a, &b) >= 0.0);
        }
    }
}
