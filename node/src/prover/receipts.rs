//! Receipts: after an accepted proof the prover asks for the signed receipt
//! of its credit once the block holding it is cut, checks it and keeps it on
//! disk, where `crowdprove ledger check-receipt` can verify it offline.
//!
//! A receipt is kept only if it verifies against the distributor's key and
//! is the credit the `Accepted` verdict promised: this job, this prover, the
//! reward the verdict named, the hash of the proof this prover sent. One
//! that is not is refused — logged as an error naming the job and what
//! differs, counted (`crowdprove_receipts_refused_total`, `/status`) — and the
//! job stays owed. A receipt still owed [`RECEIPT_OVERDUE`] after its
//! `Accepted` raises the alarm: a warning naming the job, `/status`'s
//! `receipts_overdue`, and the `crowdprove_receipts_overdue` gauge.
//!
//! The jobs whose receipts are still owed are kept on disk too
//! (`<receipts dir>/owed`, one job a line with what was promised, replaced
//! atomically), so a prover that restarts — or is killed — between
//! `Accepted` and its receipt still asks for it, and still checks it. A
//! receipt is written and synced (file and folder) before its job leaves
//! that list.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use protocol::messages::{AnyMessage, ReceiptReply, ReceiptRequest};
use protocol::{ContentHash, JobId, PublicKey, Timestamp};
use tracing::{debug, error, warn};

use super::client::CallError;
use super::{Shared, anchoring};
use crate::disk::write_durably;

/// How long after its `Accepted` a receipt may be owed before the alarm.
pub const RECEIPT_OVERDUE: Duration = Duration::from_secs(600);

/// What an `Accepted` verdict promised for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promise {
    /// The reward it named.
    pub reward: u64,
    /// The hash of the proof this prover sent.
    pub proof_hash: ContentHash,
}

/// A job whose receipt is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The job.
    pub job: JobId,
    /// What its `Accepted` promised; `None` for a job listed by an older
    /// prover, which recorded only the job (its receipt is checked for job,
    /// prover and signature only).
    pub promise: Option<Promise>,
    /// When the proof was accepted, by the wall clock (for an older
    /// listing: when it was read): kept in the owed list across restarts.
    pub since: Timestamp,
    /// How long it had been owed when this run took it up (0 for one owed
    /// during this run; by the wall clock for one read from the list).
    pub owed_before: Duration,
    /// When this run took it up, on [`super::monotonic_now`]'s clock: its
    /// age grows from here whatever the wall clock does.
    pub counted_from: Timestamp,
    /// Whether the alarm was raised for it (it is raised once).
    pub overdue: bool,
    /// Why the last receipt offered for it was refused (logged once).
    pub refused: Option<String>,
}

impl Owed {
    /// The receipt of `job` is owed from now, as `promise` says.
    pub fn new(job: JobId, promise: Promise) -> Self {
        Self {
            job,
            promise: Some(promise),
            since: Timestamp::now(),
            owed_before: Duration::ZERO,
            counted_from: super::monotonic_now(),
            overdue: false,
            refused: None,
        }
    }

    /// How long it has been owed at `now` (on [`super::monotonic_now`]'s
    /// clock).
    pub fn age(&self, now: Timestamp) -> Duration {
        self.owed_before + Duration::from_millis(now.millis_since(self.counted_from))
    }

    /// Its line in the owed list: `<job> <reward> <proof hash> <since ms>`.
    fn line(&self) -> String {
        match self.promise {
            Some(p) => format!(
                "{} {} {} {}",
                self.job, p.reward, p.proof_hash, self.since.0
            ),
            None => format!("{}", self.job),
        }
    }

    /// Reads a line written by [`Self::line`], or an older one (the job alone).
    fn parse(line: &str, now: Timestamp) -> anyhow::Result<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let job: JobId = fields
            .first()
            .unwrap_or(&"")
            .parse()
            .context("not a job id")?;
        let (promise, since) = match fields[1..] {
            [] => (None, now),
            [reward, hash, since] => (
                Some(Promise {
                    reward: reward.parse().context("not a reward")?,
                    proof_hash: hash.parse().context("not a proof hash")?,
                }),
                Timestamp(since.parse().context("not a time")?),
            ),
            _ => bail!("expected <job> <reward> <proof hash> <since ms>"),
        };
        Ok(Self {
            job,
            promise,
            since,
            // The wall clock is all that spans a restart; a negative wait
            // (a clock stepped back since) counts as none.
            owed_before: Duration::from_millis(now.millis_since(since)),
            counted_from: super::monotonic_now(),
            overdue: false,
            refused: None,
        })
    }
}

/// Receipts asked for in one poll, at most: a distributor that stops cutting
/// blocks leaves many owed, and asking for all of them every poll would run
/// into its rate limit. The polls take turns through the list.
const RECEIPTS_PER_POLL: usize = 16;

/// Asks for the receipts of paid jobs whose block has been cut, checks each
/// and keeps it on disk; raises the alarm for those owed too long.
pub async fn fetch(shared: &Shared) {
    sweep_overdue(shared, super::monotonic_now());
    let waiting = {
        let mut t = shared.tally();
        let owed = &t.awaiting_receipts;
        let start = t.receipt_turn % owed.len().max(1);
        let turn: Vec<Owed> = owed
            .iter()
            .cycle()
            .skip(start)
            .take(owed.len().min(RECEIPTS_PER_POLL))
            .cloned()
            .collect();
        t.receipt_turn = start + turn.len();
        turn
    };
    for owed in waiting {
        let job = owed.job;
        let kept = match shared.client.call(&ReceiptRequest { job }).await {
            Ok(AnyMessage::ReceiptReply(reply)) if reply.receipt.is_empty() => continue,
            Ok(AnyMessage::ReceiptReply(reply)) => offered(shared, &owed, &reply),
            Ok(other) => Err(anyhow!("asked for a receipt, got a {}", other.kind())),
            Err(CallError::Network(_) | CallError::Busy(_)) => return,
            Err(e) => Err(anyhow!("{e}")),
        };
        match kept {
            Ok(Some(height)) => {
                let mut t = shared.tally();
                t.receipts += 1;
                t.awaiting_receipts.retain(|o| o.job != job);
                t.kept_receipt(job, height);
                save_owed_logged(&shared.receipts_dir, &t.awaiting_receipts);
                drop(t);
                shared
                    .client
                    .metrics()
                    .receipts_overdue
                    .set(overdue_count(shared));
            }
            Ok(None) => {}
            Err(e) => warn!(target: "prover", %job, error = %format!("{e:#}"), "receipt not kept"),
        }
    }
}

/// Keeps the balance proof served with a receipt of block `height`, if it
/// checks; one that does not is logged (the receipt stands on its own).
fn keep_balance_proof(shared: &Shared, bytes: &[u8], height: u64) {
    if bytes.is_empty() {
        return;
    }
    let client = &shared.client;
    match anchoring::keep_balance_proof(
        &shared.data_dir,
        bytes,
        &client.distributor(),
        &client.me(),
        shared.payout.as_ref(),
        height,
    ) {
        Ok(kept) => shared.tally().kept_proof = Some(kept),
        Err(e) => match e.downcast_ref::<anchoring::PayoutDiverted>() {
            Some(diverted) => payout_diverted(shared, diverted, bytes),
            None => warn!(target: "prover", error = %format!("{e:#}"), "balance proof not kept"),
        },
    }
}

/// The distributor signed a leaf paying someone else: refused like a false
/// receipt (logged once per reason, counted, kept as evidence, on
/// `/status`), and the kept proof stays.
fn payout_diverted(shared: &Shared, diverted: &anchoring::PayoutDiverted, bytes: &[u8]) {
    let reason = diverted.to_string();
    let mut t = shared.tally();
    if t.payout_diverted.as_ref() == Some(&reason) {
        return;
    }
    t.payout_diverted = Some(reason.clone());
    t.receipts_refused += 1;
    drop(t);
    shared.client.metrics().receipt_refused("payout_diverted");
    error!(target: "prover", "the distributor's balance proof is refused: {reason}");
    let _ = std::fs::create_dir_all(&shared.receipts_dir);
    let _ = std::fs::write(shared.receipts_dir.join("balance-proof.refused"), bytes);
}

/// Raises the alarm, once per job, for receipts owed past
/// [`RECEIPT_OVERDUE`] at `now` (on [`super::monotonic_now`]'s clock), and
/// sets the gauge.
pub(crate) fn sweep_overdue(shared: &Shared, now: Timestamp) {
    let newly = newly_overdue(&mut shared.tally().awaiting_receipts, now);
    for owed in newly {
        warn!(
            target: "prover",
            job = %owed.job,
            owed_s = owed.age(now).as_secs(),
            refused = owed.refused.as_deref().unwrap_or("no receipt offered"),
            "the distributor has not paid for this job: its receipt is overdue"
        );
    }
    shared
        .client
        .metrics()
        .receipts_overdue
        .set(overdue_count(shared));
}

/// Marks overdue the receipts owed past [`RECEIPT_OVERDUE`] at `now`;
/// returns those marked just now.
pub fn newly_overdue(owed: &mut [Owed], now: Timestamp) -> Vec<Owed> {
    owed.iter_mut()
        .filter(|o| !o.overdue && o.age(now) >= RECEIPT_OVERDUE)
        .map(|o| {
            o.overdue = true;
            o.clone()
        })
        .collect()
}

fn overdue_count(shared: &Shared) -> i64 {
    let t = shared.tally();
    t.awaiting_receipts.iter().filter(|o| o.overdue).count() as i64
}

/// A receipt the distributor offered for `owed`: kept (`Some(height)`) if
/// it checks, else refused — logged as an error (once per job), counted,
/// kept aside as evidence, and the job stays owed (`None`).
fn offered(shared: &Shared, owed: &Owed, reply: &ReceiptReply) -> anyhow::Result<Option<u64>> {
    let bytes = &reply.receipt;
    match judge(
        bytes,
        &shared.client.distributor(),
        &shared.client.me(),
        owed,
    ) {
        Ok((_, height)) => {
            keep(&shared.receipts_dir, owed.job, bytes)?;
            keep_balance_proof(shared, &reply.balance_proof, height);
            Ok(Some(height))
        }
        Err(refusal) => {
            let reason = format!("{refusal:#}");
            let mut t = shared.tally();
            let first = t
                .awaiting_receipts
                .iter_mut()
                .find(|o| o.job == owed.job)
                .is_some_and(|o| o.refused.replace(reason.clone()).as_ref() != Some(&reason));
            if first {
                t.receipts_refused += 1;
                drop(t);
                shared.client.metrics().receipt_refused(refusal.label());
                error!(target: "prover", job = %owed.job, "the distributor's receipt is refused: {reason}");
                let evidence = shared
                    .receipts_dir
                    .join(format!("b{}-j{}.refused", owed.job.batch.0, owed.job.index));
                let _ = std::fs::create_dir_all(&shared.receipts_dir);
                let _ = std::fs::write(evidence, bytes);
            } else {
                debug!(target: "prover", job = %owed.job, "the same receipt refused again: {reason}");
            }
            Ok(None)
        }
    }
}

/// Why a receipt offered for a job is refused.
#[derive(Debug)]
pub enum Refusal {
    /// It does not decode or verify against the distributor's key.
    Unverified(anyhow::Error),
    /// It verifies, but is not the credit promised: what differs, each as
    /// `<field> <receipt's> instead of <expected>`.
    Differs(Vec<String>),
}

impl Refusal {
    /// The metric label: `unverified` or `differs`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Unverified(_) => "unverified",
            Refusal::Differs(_) => "differs",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unverified(e) => write!(f, "{e:#}"),
            Refusal::Differs(what) => {
                write!(f, "it is not the credit promised: {}", what.join(", "))
            }
        }
    }
}

/// Checks a receipt offered for `owed`: it verifies against `distributor`,
/// and credits `me` for the job with the promised reward and proof hash.
pub fn judge(
    bytes: &[u8],
    distributor: &PublicKey,
    me: &PublicKey,
    owed: &Owed,
) -> Result<(ledger::Credit, u64), Refusal> {
    let (credit, height) = check(bytes, distributor).map_err(Refusal::Unverified)?;
    let mut differs = Vec::new();
    let mut compare = |field: &str, got: String, want: String| {
        if got != want {
            differs.push(format!("{field} {got} instead of {want}"));
        }
    };
    compare("job", credit.job.to_string(), owed.job.to_string());
    compare("prover", credit.prover.to_hex(), me.to_hex());
    if let Some(promise) = owed.promise {
        compare(
            "amount",
            credit.amount.to_string(),
            promise.reward.to_string(),
        );
        compare(
            "proof hash",
            credit.proof_hash.to_hex(),
            promise.proof_hash.to_hex(),
        );
    }
    if differs.is_empty() {
        Ok((credit, height))
    } else {
        Err(Refusal::Differs(differs))
    }
}

/// Decodes a receipt and checks it against the distributor's key: the
/// credit it proves and its block's height.
pub fn check(
    bytes: &[u8],
    distributor: &protocol::PublicKey,
) -> anyhow::Result<(ledger::Credit, u64)> {
    let receipt = ledger::Receipt::decode(bytes).context("not a receipt: it does not decode")?;
    let credit = ledger::verify_receipt(&receipt, distributor)
        .context("the receipt does not verify against the distributor's key")?;
    Ok((credit.clone(), receipt.header.header.height))
}

/// Writes the receipt of `job` durably: to a temporary file, synced,
/// renamed into place, and the folder synced — so that once its job leaves
/// the (synced) owed list, a crash cannot lose both.
fn keep(dir: &Path, job: JobId, bytes: &[u8]) -> anyhow::Result<()> {
    let path = receipt_path(dir, job);
    write_durably(dir, &path, |file| file.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))?;
    debug!(target: "prover", %job, path = %path.display(), "receipt kept");
    Ok(())
}

/// The file listing the jobs whose receipts are owed.
fn owed_path(dir: &Path) -> PathBuf {
    dir.join("owed")
}

/// The jobs whose receipts were owed when the prover last ran.
pub fn load_owed(dir: &Path) -> anyhow::Result<Vec<Owed>> {
    let path = owed_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let now = Timestamp::now();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Owed::parse(l, now).with_context(|| format!("{}: {l:?}", path.display())))
        .collect()
}

/// Replaces the owed list with `owed`: written to a temporary file, synced,
/// renamed over the old one, the folder synced.
pub fn save_owed(dir: &Path, owed: &[Owed]) -> anyhow::Result<()> {
    let path = owed_path(dir);
    write_durably(dir, &path, |file| {
        owed.iter().try_for_each(|o| writeln!(file, "{}", o.line()))
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

/// [`save_owed`], a failure logged.
pub(crate) fn save_owed_logged(dir: &Path, owed: &[Owed]) {
    if let Err(e) = save_owed(dir, owed) {
        warn!(target: "prover", error = %format!("{e:#}"), "the owed-receipts list is not saved");
    }
}

/// What a prover's receipts folder shows: the receipts it holds (each
/// checked against the distributor's key), the files that do not check,
/// and the jobs whose receipts it is still owed.
#[derive(Debug, Default)]
pub struct Audit {
    /// Checked receipts: the credit and its block's height, by job.
    pub held: Vec<(ledger::Credit, u64)>,
    /// Receipt files that do not check, with the reason.
    pub bad: Vec<(PathBuf, String)>,
    /// Jobs accepted whose receipts are not yet fetched.
    pub owed: Vec<JobId>,
}

/// Reads and checks every receipt in `dir` against `distributor`.
pub fn audit(dir: &Path, distributor: &protocol::PublicKey) -> anyhow::Result<Audit> {
    let mut audit = Audit {
        owed: load_owed(dir)?.into_iter().map(|o| o.job).collect(),
        ..Audit::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(audit),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "receipt") {
            continue;
        }
        let checked = std::fs::read(&path)
            .context("cannot read")
            .and_then(|bytes| check(&bytes, distributor))
            .and_then(|(credit, height)| {
                if receipt_path(dir, credit.job) != path {
                    bail!(
                        "it is the receipt of job {}, filed under another name",
                        credit.job
                    );
                }
                Ok((credit, height))
            });
        match checked {
            Ok(held) => audit.held.push(held),
            Err(e) => audit.bad.push((path, format!("{e:#}"))),
        }
    }
    audit.held.sort_by_key(|(credit, _)| credit.job);
    audit.bad.sort();
    Ok(audit)
}

/// Where a prover keeps the receipt of `job`.
pub fn receipt_path(dir: &Path, job: JobId) -> PathBuf {
    dir.join(format!("b{}-j{}.receipt", job.batch.0, job.index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{BatchId, SecretKey};

    struct Ledgered {
        _dir: tempfile::TempDir,
        distributor: SecretKey,
        me: PublicKey,
        job: JobId,
        proof_hash: ContentHash,
    }

    /// A receipt, from a real ledger, crediting `amount` for `proof`.
    fn receipt(amount: u64, proof: &[u8]) -> (Ledgered, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let distributor = SecretKey::from_seed([1; 32]);
        let me = SecretKey::from_seed([2; 32]).public();
        let job = JobId::new(BatchId(3), 4);
        let config = ledger::LedgerConfig::default();
        let mut l = ledger::Ledger::open(dir.path().join("l"), &distributor, config).unwrap();
        let credit = ledger::Credit::new(me, job, amount, ContentHash::of(proof));
        l.append(&[ledger::Tx::Credit(credit)]).unwrap();
        l.cut_block().unwrap().expect("a block");
        let bytes = l.receipt(job).unwrap().encode();
        let at = Ledgered {
            _dir: dir,
            distributor,
            me,
            job,
            proof_hash: ContentHash::of(b"the proof sent"),
        };
        (at, bytes)
    }

    fn owed(at: &Ledgered, reward: u64) -> Owed {
        Owed::new(
            at.job,
            Promise {
                reward,
                proof_hash: at.proof_hash,
            },
        )
    }

    #[test]
    fn a_receipt_must_be_the_credit_the_verdict_promised() {
        let (at, good) = receipt(100, b"the proof sent");
        let key = at.distributor.public();
        let (credit, _) = judge(&good, &key, &at.me, &owed(&at, 100)).unwrap();
        assert_eq!(credit.amount, 100);

        // Less than the verdict said.
        let err = judge(&good, &key, &at.me, &owed(&at, 150)).unwrap_err();
        assert_eq!(err.label(), "differs");
        assert!(
            err.to_string().contains("amount 100 instead of 150"),
            "{err}"
        );

        // Another proof than the one sent.
        let (at2, other_proof) = receipt(100, b"someone else's proof");
        let err = judge(&other_proof, &key, &at2.me, &owed(&at2, 100)).unwrap_err();
        assert!(err.to_string().contains("proof hash"), "{err}");

        // Another prover, another job.
        let stranger = SecretKey::from_seed([9; 32]).public();
        let err = judge(&good, &key, &stranger, &owed(&at, 100)).unwrap_err();
        assert!(err.to_string().contains("prover"), "{err}");
        let mut elsewhere = owed(&at, 100);
        elsewhere.job = JobId::new(BatchId(3), 5);
        let err = judge(&good, &key, &at.me, &elsewhere).unwrap_err();
        assert!(
            err.to_string().contains("job b3/j4 instead of b3/j5"),
            "{err}"
        );

        // Not signed by the distributor this prover trusts.
        let err = judge(&good, &stranger, &at.me, &owed(&at, 100)).unwrap_err();
        assert_eq!(err.label(), "unverified");
        let err = judge(b"garbage", &key, &at.me, &owed(&at, 100)).unwrap_err();
        assert_eq!(err.label(), "unverified");
    }

    #[test]
    fn receipts_owed_too_long_raise_the_alarm_once() {
        let (at, _) = receipt(100, b"the proof sent");
        let mut list = vec![owed(&at, 100)];
        let from = list[0].counted_from;
        let soon = from.plus_millis(1_000);
        assert!(newly_overdue(&mut list, soon).is_empty());
        let late = from.plus_millis(RECEIPT_OVERDUE.as_millis() as u64);
        let raised = newly_overdue(&mut list, late);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].job, at.job);
        assert!(newly_overdue(&mut list, late).is_empty(), "raised once");

        let mut tally = super::super::status::Tally::default();
        tally.awaiting_receipts = list;
        let doc = tally.to_json();
        assert_eq!(doc["receipts_overdue"][0]["job"], "b3/j4");
        assert_eq!(doc["awaiting_receipts"], 1);
    }

    #[test]
    fn the_owed_list_keeps_the_promise_and_reads_the_old_form() {
        let dir = tempfile::tempdir().unwrap();
        let (at, _) = receipt(100, b"the proof sent");
        let list = vec![owed(&at, 100)];
        save_owed(dir.path(), &list).unwrap();
        let loaded = load_owed(dir.path()).unwrap();
        let kept = |o: &Owed| (o.job, o.promise, o.since);
        assert_eq!(
            loaded.iter().map(kept).collect::<Vec<_>>(),
            list.iter().map(kept).collect::<Vec<_>>()
        );
        // Across a restart the wall clock says how long it was owed; from
        // then on the monotonic clock does (a clock stepped back since
        // counts as no wait, not a negative one).
        let line =
            |since: Timestamp| format!("{} 100 {} {}\n", at.job, ContentHash::of(b"x"), since.0);
        let now = Timestamp::now();
        std::fs::write(dir.path().join("owed"), line(Timestamp(now.0 - 700_000))).unwrap();
        let mut late = load_owed(dir.path()).unwrap();
        assert!(late[0].owed_before >= Duration::from_secs(700));
        assert_eq!(
            newly_overdue(&mut late, super::super::monotonic_now()).len(),
            1
        );
        std::fs::write(dir.path().join("owed"), line(now.plus_millis(3_600_000))).unwrap();
        let ahead = load_owed(dir.path()).unwrap();
        assert_eq!(ahead[0].owed_before, Duration::ZERO);
        std::fs::write(dir.path().join("owed"), "b1/j2\n").unwrap();
        let old = load_owed(dir.path()).unwrap();
        assert_eq!(old[0].job, JobId::new(BatchId(1), 2));
        assert_eq!(old[0].promise, None);
        std::fs::write(dir.path().join("owed"), "b1/j2 7\n").unwrap();
        assert!(load_owed(dir.path()).is_err());
    }

    #[test]
    fn a_kept_receipt_is_in_place_with_no_temporary_left() {
        let dir = tempfile::tempdir().unwrap();
        let (at, bytes) = receipt(100, b"the proof sent");
        let receipts = dir.path().join("receipts");
        keep(&receipts, at.job, &bytes).unwrap();
        assert_eq!(
            std::fs::read(receipt_path(&receipts, at.job)).unwrap(),
            bytes
        );
        let names: Vec<_> = std::fs::read_dir(&receipts)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let audit = audit(&receipts, &at.distributor.public()).unwrap();
        assert_eq!(audit.held.len(), 1);
    }
}
