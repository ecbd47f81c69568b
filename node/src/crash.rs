//! Crash points, for the crash tests. With `CROWDPROVE_CRASH_AT=<point>:<n>`
//! in its environment a node SIGKILLs itself the n-th time it passes
//! `<point>`: exactly between two durable steps, a moment a kill from
//! outside hits only by luck. Unset — always, outside tests — a point costs
//! one read of an initialised static.
//!
//! The points, in a proof's order through the distributor:
//! - `batch-stored`: a new batch is durable, not yet announced;
//! - `verified`: a proof verified, its win not yet logged;
//! - `logged`: a journal group synced, its follow-ups (an assignment sent,
//!   a credit queued) not yet run;
//! - `credited`: credits durable in the ledger, their provers not yet told;
//! - `block-cut`: a block written, nothing else yet;
//! - `chain-sent` (with `[chain]` only): a chain transaction (a settlement,
//!   an anchor) sent, its receipt not yet seen.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

/// The environment variable that arms a crash point.
pub const ENV: &str = "CROWDPROVE_CRASH_AT";

/// A moment the node can be made to crash at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A new batch is durable, not yet announced.
    BatchStored,
    /// A proof verified, its win not yet logged.
    Verified,
    /// A journal group synced, its follow-ups not yet run.
    Logged,
    /// Credits durable in the ledger, their provers not yet told.
    Credited,
    /// A block written.
    BlockCut,
    /// A chain transaction sent, its receipt not yet seen.
    ChainSent,
}

impl Point {
    /// Every point.
    pub const ALL: [Point; 5] = [
        Point::BatchStored,
        Point::Verified,
        Point::Logged,
        Point::Credited,
        Point::BlockCut,
    ];

    /// The chain client's points (passed only with `[chain]` set).
    pub const CHAIN: [Point; 1] = [Point::ChainSent];

    /// The point's name in [`ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Point::BatchStored => "batch-stored",
            Point::Verified => "verified",
            Point::Logged => "logged",
            Point::Credited => "credited",
            Point::BlockCut => "block-cut",
            Point::ChainSent => "chain-sent",
        }
    }
}

struct Armed {
    point: Point,
    at: u64,
    passed: AtomicU64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

fn parse(value: &str) -> anyhow::Result<(Point, u64)> {
    let (name, n) = value.split_once(':').unwrap_or((value, "1"));
    let every = Point::ALL.into_iter().chain(Point::CHAIN);
    let point = every.clone().find(|p| p.name() == name).with_context(|| {
        let names: Vec<_> = every.map(|p| p.name()).collect();
        format!("unknown crash point {name:?}; one of {}", names.join(", "))
    })?;
    let at: u64 = n
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .with_context(|| format!("crash point count {n:?} must be a number from 1"))?;
    Ok((point, at))
}

/// Reads [`ENV`] once; a malformed value is an error naming it. Returns the
/// armed point, if any, so start-up can log it.
pub fn arm() -> anyhow::Result<Option<(Point, u64)>> {
    let parsed = match std::env::var(ENV) {
        Ok(value) if !value.is_empty() => {
            Some(parse(&value).with_context(|| format!("{ENV}={value}"))?)
        }
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => bail!("{ENV} is not UTF-8"),
    };
    let _ = ARMED.set(parsed.map(|(point, at)| Armed {
        point,
        at,
        passed: AtomicU64::new(0),
    }));
    Ok(parsed)
}

/// Passes `point`: kills the process here if it is the armed point's n-th
/// pass.
pub fn at(point: Point) {
    let Some(Some(armed)) = ARMED.get() else {
        return;
    };
    if armed.point == point && armed.passed.fetch_add(1, Ordering::SeqCst) + 1 == armed.at {
        tracing::warn!(target: "node", point = point.name(), "crash point reached: killing the process");
        // A real SIGKILL: no destructor, no flush, no exit handler runs.
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_point_parses_with_and_without_a_count() {
        assert_eq!(parse("credited:3").unwrap(), (Point::Credited, 3));
        assert_eq!(parse("block-cut").unwrap(), (Point::BlockCut, 1));
        let unknown = parse("nowhere:1").unwrap_err().to_string();
        assert!(
            unknown.contains("one of batch-stored, verified"),
            "{unknown}"
        );
        assert!(parse("verified:0").is_err());
        assert!(parse("verified:x").is_err());
    }
}
