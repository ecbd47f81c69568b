//! Test helper for the kill test (`tests/kill.rs`): appends credits and
//! payout bindings to a ledger in a loop and reports, one line each, everything
//! the ledger acknowledged, until it is killed.
//!
//! Usage: `ledger-crash-child <dir> <run> <seed> [<dup-batch> <dup-index>]`
//!
//! Lines on stdout (flushed one by one, so a line read means acknowledged):
//! - `OPEN <height> <pending>` once the ledger is open;
//! - `DUP <batch> <index>` once a re-credit of that earlier job was refused;
//! - `ACK <batch> <first> <count>` when credits for jobs `first..first+count`
//!   of batch `batch` were appended;
//! - `BACK <prover> <seq>` when prover number `prover`'s payout binding with
//!   that sequence number was appended;
//! - `BLOCK <height>` when a block was cut.

use std::io::Write;
use std::process::ExitCode;

use ledger::{BindPayout, Credit, Error, FsyncPolicy, Ledger, LedgerConfig, Tx};
use protocol::{BatchId, ContentHash, JobId, PayoutAddress, PayoutBinding, SecretKey};

/// The distributor key every run uses.
const DISTRIBUTOR_SEED: [u8; 32] = [42; 32];
/// How many prover identities the runs pay.
const PROVERS: u8 = 8;
/// The block size the runs cut at.
const BLOCK_TXS: usize = 50;

/// xorshift64*: the helper may not depend on `rand`, and needs no quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn prover(i: u8) -> SecretKey {
    SecretKey::from_seed([i + 1; 32])
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger-crash-child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command line: the ledger directory, the run number (also the batch
/// its credits are for), the random stream, and the job to re-credit, if any.
struct Args {
    dir: String,
    run: u64,
    rng: Rng,
    dup: Option<JobId>,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> Result<u64, String> {
        args.get(i)
            .ok_or("usage: ledger-crash-child <dir> <run> <seed> [<dup-batch> <dup-index>]")?
            .parse::<u64>()
            .map_err(|e| format!("argument {i}: {e}"))
    };
    let dir = args.first().ok_or("missing <dir>")?;
    let run = num(1)?;
    let rng = Rng(num(2)? | 1);
    let dup = if args.len() >= 5 {
        Some(JobId::new(BatchId(num(3)?), num(4)? as u32))
    } else {
        None
    };
    Ok(Args {
        dir: dir.clone(),
        run,
        rng,
        dup,
    })
}

/// Standard output, one flushed line per acknowledgement.
struct Out(std::io::StdoutLock<'static>);

impl Out {
    fn say(&mut self, line: String) -> Result<(), String> {
        writeln!(self.0, "{line}")
            .and_then(|()| self.0.flush())
            .map_err(|e| e.to_string())
    }
}

fn run() -> Result<(), String> {
    let Args {
        dir,
        run,
        mut rng,
        dup,
    } = parse_args()?;
    let config = LedgerConfig {
        sync: FsyncPolicy::EveryWrite,
        max_block_txs: BLOCK_TXS,
        max_block_age_ms: 60_000,
    };
    let distributor = SecretKey::from_seed(DISTRIBUTOR_SEED);
    let mut ledger = Ledger::open(&dir, &distributor, config).map_err(|e| e.to_string())?;
    let mut out = Out(std::io::stdout().lock());
    out.say(format!("OPEN {} {}", ledger.height(), ledger.pending_len()))?;

    if let Some(job) = dup {
        recredit(&mut ledger, job, &mut out)?;
    }

    let batch = BatchId(run);
    let mut next_index = 0u32;
    for _ in 0..100_000 {
        let count = 1 + rng.below(30) as u32;
        let credits: Vec<Tx> = (next_index..next_index + count)
            .map(|index| credit(&mut rng, run, JobId::new(batch, index)))
            .collect();
        ledger.append(&credits).map_err(|e| e.to_string())?;
        out.say(format!("ACK {} {} {}", batch.0, next_index, count))?;
        next_index += count;

        if rng.below(3) == 0 {
            bind(&mut ledger, &mut rng, &mut out)?;
        }
        cut_blocks(&mut ledger, &mut rng, &mut out)?;
    }
    Ok(())
}

/// Credits `job` again, which the ledger must refuse.
fn recredit(ledger: &mut Ledger, job: JobId, out: &mut Out) -> Result<(), String> {
    let again = Tx::Credit(Credit::new(
        prover(0).public(),
        job,
        1,
        ContentHash::of(b"again"),
    ));
    match ledger.append(&[again]) {
        Err(Error::AlreadyCredited { job: j }) if j == job => {
            out.say(format!("DUP {} {}", job.batch.0, job.index))
        }
        other => Err(format!("re-crediting {job} gave {other:?}")),
    }
}

/// A credit for `job` of run `run` to a random prover.
fn credit(rng: &mut Rng, run: u64, job: JobId) -> Tx {
    let p = prover(rng.below(u64::from(PROVERS)) as u8).public();
    let proof = ContentHash::of(&[run.to_le_bytes(), u64::from(job.index).to_le_bytes()].concat());
    Tx::Credit(Credit::new(p, job, 1 + rng.below(100), proof))
}

/// A random prover with an account binds a new payout address.
fn bind(ledger: &mut Ledger, rng: &mut Rng, out: &mut Out) -> Result<(), String> {
    let who = rng.below(u64::from(PROVERS)) as u8;
    let key = prover(who);
    let account = ledger.account(&key.public());
    if account.balance > 0 {
        let seq = account.payout_seq + 1 + rng.below(3);
        let address = PayoutAddress([1 + rng.below(255) as u8; 20]);
        let binding = PayoutBinding::signed(&key, address, seq);
        let tx = Tx::BindPayout(BindPayout {
            prover: key.public(),
            binding,
        });
        ledger.append(&[tx]).map_err(|e| e.to_string())?;
        out.say(format!("BACK {who} {seq}"))?;
    }
    Ok(())
}

/// Mostly cut by count; now and then cut a short block at once.
fn cut_blocks(ledger: &mut Ledger, rng: &mut Rng, out: &mut Out) -> Result<(), String> {
    let blocks = if rng.below(5) == 0 {
        ledger
            .cut_block()
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect()
    } else {
        ledger
            .maybe_cut_blocks(protocol::Timestamp::now())
            .map_err(|e| e.to_string())?
    };
    for header in blocks {
        out.say(format!("BLOCK {}", header.header.height))?;
    }
    Ok(())
}
