//! Shared by the benchmarks: time measured as the bench thread's on-CPU time
//! (from `/proc/thread-self/schedstat`). The machines these run on are shared;
//! wall time would count the time the thread sat descheduled behind other
//! work. Set `BENCH_WALL=1` to measure wall time instead.

use std::time::{Duration, Instant};

/// Nanoseconds this thread has spent on a CPU, where Linux tells.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Times a loop in on-CPU time, or wall time when that is unavailable or
/// `BENCH_WALL` is set.
pub(crate) struct Stopwatch {
    wall: Instant,
    cpu: Option<u64>,
}

impl Stopwatch {
    /// Starts timing.
    pub(crate) fn start() -> Self {
        let cpu = if std::env::var_os("BENCH_WALL").is_some() {
            None
        } else {
            cpu_ns()
        };
        Self {
            cpu,
            wall: Instant::now(),
        }
    }

    /// Time since start.
    pub(crate) fn elapsed(&self) -> Duration {
        let wall = self.wall.elapsed();
        match (self.cpu, cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a).max(1)),
            _ => wall.max(Duration::from_nanos(1)),
        }
    }
}
