//! What makes a prover's pay claimable on chain, and the alarm when it is
//! not.
//!
//! - The balance proof: with each receipt the distributor serves the
//!   prover's balance proof at its ledger's last block. The newest one that
//!   checks (the distributor's signature, this prover's leaf, a block at or
//!   above the receipt's) is kept in `<data_dir>/balance-proof`: what
//!   `crowdprove claim` sends to the Payouts contract, with nothing needed
//!   from the distributor's disk.
//! - The watch: with `[chain] rpc_url` and `payouts` set, the prover reads
//!   the contract's last anchored height every [`WATCH_EVERY`] and raises
//!   the alarm (a warning, `/status` `anchoring.overdue`, the gauge
//!   `crowdprove_unanchored_credit_seconds`) when a block holding its credits
//!   has waited past `[prover] anchor_deadline_secs`: a distributor that
//!   stops anchoring is seen. Once the kept balance proof's block is
//!   anchored, it checks that the anchored balance root is the one the
//!   distributor signed; one that is not (an operator anchoring a root of
//!   its own making, to pay accounts that never earned) raises the alarm at
//!   once (an error, `/status` `anchoring.forged_anchor`, the gauge
//!   `crowdprove_anchor_mismatch`).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{Context, bail};
use ledger::BalanceProof;
use protocol::{ContentHash, PayoutBinding, PublicKey, Timestamp};
use tracing::{error, info, warn};

use super::Shared;
use crate::chain::Payouts;
use crate::status_doc::AnchoringView;

/// The file under the data dir that keeps the newest balance proof.
pub const BALANCE_PROOF_FILE: &str = "balance-proof";
/// The file under the data dir that keeps the newest balance proof whose
/// block the watch saw anchored with the root the distributor signed.
pub const ANCHORED_FILE: &str = "balance-proof-anchored";
/// How often the watch reads the Payouts contract.
pub const WATCH_EVERY: Duration = Duration::from_secs(10);
/// Unanchored blocks remembered; past it the newest stands for the rest.
const UNANCHORED_KEPT: usize = 1024;
/// The longest a read of the contract may take.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A kept balance proof, as the prover remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// Its block.
    pub height: u64,
    /// The cumulative balance it proves.
    pub balance: u64,
    /// The block's balance root, as the distributor signed it.
    pub root: ContentHash,
}

/// The balance proof kept in `data_dir` under `name`, if one is there and
/// checks against `distributor`.
pub fn kept(data_dir: &Path, name: &str, distributor: &PublicKey) -> Option<Kept> {
    let proof = BalanceProof::decode(&std::fs::read(data_dir.join(name)).ok()?).ok()?;
    let account = ledger::verify_balance_proof(&proof, distributor).ok()?;
    let header = &proof.header.header;
    Some(Kept {
        height: header.height,
        balance: account.balance,
        root: header.balance_root,
    })
}

/// A balance proof whose leaf pays an address this prover did not bind: a
/// claim against it would pay someone else.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayoutDiverted(String);

/// Checks that `account`, this prover's leaf, pays where it may: nowhere yet
/// (unbound), the address of `binding` (the one this prover signed last),
/// or an older binding of its own still in the ledger (a lower sequence
/// number: the newest is recorded with the next credit). Anything else pays
/// someone this prover never named.
pub fn check_payout(
    account: &ledger::Account,
    binding: Option<&PayoutBinding>,
) -> Result<(), PayoutDiverted> {
    let (to, seq) = (account.payout, account.payout_seq);
    match binding {
        _ if to.is_unbound() => Ok(()),
        Some(b) if to == b.address || seq < b.seq => Ok(()),
        Some(b) => Err(PayoutDiverted(format!(
            "the distributor's balance proof pays {to} (binding {seq}), not {}, the address this \
             prover bound (binding {}): a claim would pay someone else",
            b.address, b.seq
        ))),
        None => Err(PayoutDiverted(format!(
            "the distributor's balance proof pays {to}, and this prover bound no address: a \
             claim would pay someone else"
        ))),
    }
}

/// Checks `bytes`, a balance proof served with the receipt of a credit in
/// block `receipt_height`, and keeps it in `data_dir` unless the kept one is
/// as new. One that shows a lower balance than the kept one is refused (a
/// claim against the kept one's block pays more once it is anchored), and
/// so is one that pays an address other than this prover's `binding`
/// ([`check_payout`]). Returns the proof kept now.
pub fn keep_balance_proof(
    data_dir: &Path,
    bytes: &[u8],
    distributor: &PublicKey,
    me: &PublicKey,
    binding: Option<&PayoutBinding>,
    receipt_height: u64,
) -> anyhow::Result<Kept> {
    let proof = BalanceProof::decode(bytes).context("undecodable balance proof")?;
    let account = ledger::verify_balance_proof(&proof, distributor)
        .context("the balance proof does not check against the distributor's key")?;
    let header = &proof.header.header;
    let height = header.height;
    if proof.prover != *me {
        bail!("the balance proof is another prover's");
    }
    check_payout(account, binding)?;
    if height < receipt_height {
        bail!("the balance proof is of block {height}, older than the receipt's {receipt_height}");
    }
    let offered = Kept {
        height,
        balance: account.balance,
        root: header.balance_root,
    };
    match kept(data_dir, BALANCE_PROOF_FILE, distributor) {
        Some(kept) if kept.height >= height => return Ok(kept),
        Some(kept) if kept.balance > offered.balance => bail!(
            "the distributor signed a balance of {} at block {height}, below the {} it signed at block {}: the older proof stays",
            offered.balance,
            kept.balance,
            kept.height
        ),
        _ => {}
    }
    write(data_dir, BALANCE_PROOF_FILE, bytes)?;
    Ok(offered)
}

/// Copies the kept balance proof to [`ANCHORED_FILE`] if it is still `at`
/// (the watch saw its block anchored with the root the distributor signed):
/// what a claim sends when newer blocks are not anchored.
pub fn keep_anchored(data_dir: &Path, at: Kept) -> anyhow::Result<()> {
    let path = data_dir.join(BALANCE_PROOF_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let proof = BalanceProof::decode(&bytes).context("undecodable balance proof")?;
    if proof.header.header.height != at.height || proof.header.header.balance_root != at.root {
        return Ok(());
    }
    write(data_dir, ANCHORED_FILE, &bytes)
}

fn write(data_dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = data_dir.join(name);
    crate::disk::write_durably(data_dir, &path, |file| {
        use std::io::Write;
        file.write_all(bytes)
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

/// What the watch reads: the chain and the contract.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The Payouts contract.
    pub payouts: Address,
    /// How long a block holding a credit may wait to be anchored.
    pub deadline: Duration,
}

/// The blocks holding this prover's credits that the chain has not anchored.
#[derive(Debug)]
pub struct Anchoring {
    payouts: Address,
    deadline: Duration,
    /// Heights of blocks with kept receipts not yet seen anchored, each with
    /// when its first receipt was kept; ascending.
    unanchored: VecDeque<(u64, Timestamp)>,
    /// The contract's last anchored height, once read.
    anchored: Option<u64>,
    /// The block the alarm was last raised for.
    alarmed: Option<u64>,
    /// Why the last read failed, while it fails.
    error: Option<String>,
    /// The last kept proof's block whose anchored root was compared.
    checked: Option<u64>,
    /// The first anchored balance root found to differ from the signed one.
    forged: Option<String>,
}

impl Anchoring {
    /// Nothing unanchored yet, watching `payouts` with `deadline`.
    pub fn new(payouts: Address, deadline: Duration) -> Self {
        Self {
            payouts,
            deadline,
            unanchored: VecDeque::new(),
            anchored: None,
            alarmed: None,
            error: None,
            checked: None,
            forged: None,
        }
    }

    /// Block `height`'s balance root as anchored on chain, against the one
    /// the distributor signed; true the first time one differs.
    pub fn compare_anchor(&mut self, height: u64, signed: ContentHash, anchored: [u8; 32]) -> bool {
        self.checked = Some(height);
        if anchored == signed.0 || self.forged.is_some() {
            return false;
        }
        self.forged = Some(format!(
            "block {height}: anchored balance root {}, signed {}",
            ContentHash(anchored).to_hex(),
            signed.to_hex()
        ));
        true
    }

    /// A receipt of a credit in block `height` was kept at `now`.
    pub fn credited(&mut self, height: u64, now: Timestamp) {
        if self.anchored.is_some_and(|a| height <= a) {
            return;
        }
        let at = self.unanchored.partition_point(|(h, _)| *h < height);
        let known = self.unanchored.get(at).is_some_and(|(h, _)| *h == height);
        if known {
            return;
        }
        if self.unanchored.len() < UNANCHORED_KEPT {
            self.unanchored.insert(at, (height, now));
        } else if let Some(newest) = self.unanchored.back_mut() {
            // Full: the newest entry stands for every block up to this one,
            // with its older time, so no credit goes unwatched.
            newest.0 = newest.0.max(height);
        }
    }

    /// The contract reads `height` as its last anchored block.
    pub fn anchored_to(&mut self, height: u64) {
        self.anchored = Some(height);
        self.error = None;
        while self.unanchored.front().is_some_and(|(h, _)| *h <= height) {
            self.unanchored.pop_front();
        }
    }

    /// The oldest block holding a credit that is not anchored, and how long
    /// it has waited at `now`.
    pub fn oldest(&self, now: Timestamp) -> Option<(u64, Duration)> {
        self.unanchored.front().map(|(height, since)| {
            (
                *height,
                Duration::from_millis(now.0.saturating_sub(since.0)),
            )
        })
    }

    /// The oldest unanchored block and its wait, the first time at `now`
    /// that it is past the deadline (once per block).
    pub fn newly_overdue(&mut self, now: Timestamp) -> Option<(u64, Duration)> {
        let (height, waited) = self.oldest(now).filter(|(_, w)| *w >= self.deadline)?;
        (self.alarmed.replace(height) != Some(height)).then_some((height, waited))
    }

    /// `/status` `anchoring`.
    pub fn view(&self, now: Timestamp) -> AnchoringView {
        let oldest = self.oldest(now);
        AnchoringView {
            payouts: self.payouts.to_string(),
            anchored_height: self.anchored,
            unanchored_blocks: self.unanchored.len() as u64,
            oldest_unanchored_height: oldest.map(|(h, _)| h),
            oldest_unanchored_ms: oldest.map(|(_, w)| w.as_millis() as u64),
            deadline_ms: self.deadline.as_millis() as u64,
            overdue: oldest.is_some_and(|(_, w)| w >= self.deadline),
            error: self.error.clone(),
            forged_anchor: self.forged.clone(),
        }
    }
}

/// Watches the Payouts contract until the prover stops.
pub async fn watch(shared: Arc<Shared>, settings: WatchSettings) {
    let provider = match crate::chain::reading_provider(&settings.rpc_url) {
        Ok(provider) => provider,
        Err(e) => {
            warn!(target: "prover", error = %e, "cannot watch the anchoring");
            if let Some(anchoring) = shared.tally().anchoring.as_mut() {
                anchoring.error = Some(format!("not watching: {e}"));
            }
            return;
        }
    };
    let contract = Payouts::new(settings.payouts, provider);
    info!(target: "prover", payouts = %settings.payouts, rpc = %settings.rpc_url, deadline_s = settings.deadline.as_secs(), "watching the anchoring of this prover's credits");
    let mut stop = shared.stop.clone();
    while !*stop.borrow() {
        let (kept, checked) = {
            let t = shared.tally();
            (t.kept_proof, t.anchoring.as_ref().and_then(|a| a.checked))
        };
        let read = tokio::time::timeout(READ_TIMEOUT, read_chain(&contract, kept, checked)).await;
        let read = match read {
            Ok(read) => read.map_err(|e| e.to_string()),
            Err(_) => Err("the chain did not answer in time".to_string()),
        };
        let seen = seen(&shared, read, kept, &settings);
        if let Some(anchored) = seen {
            promote(&shared, anchored).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

/// Records what the watch read, raises the alarms it calls for, sets the
/// gauges; returns the kept proof if its block was just seen anchored with
/// the signed root.
fn seen(
    shared: &Shared,
    read: Result<(u64, Option<[u8; 32]>), String>,
    kept: Option<Kept>,
    settings: &WatchSettings,
) -> Option<Kept> {
    let now = super::monotonic_now();
    let mut promoted = None;
    let (overdue, waited, forged) = {
        let mut t = shared.tally();
        let anchoring = t.anchoring.as_mut()?;
        let mut forged = None;
        match read {
            Ok((height, compared)) => {
                anchoring.anchored_to(height);
                if let (Some(anchored), Some(kept)) = (compared, kept) {
                    if anchoring.compare_anchor(kept.height, kept.root, anchored) {
                        forged = anchoring.forged.clone();
                    }
                    promoted = (anchored == kept.root.0).then_some(kept);
                }
            }
            Err(e) => report_error(anchoring, e),
        }
        let waited = anchoring.oldest(now).map_or(0, |(_, w)| w.as_secs());
        (anchoring.newly_overdue(now), waited, forged)
    };
    let metrics = shared.client.metrics();
    metrics.unanchored_credit_seconds.set(waited as i64);
    if let Some(forged) = forged {
        metrics.anchor_mismatch.set(1);
        error!(
            target: "prover",
            %forged,
            payouts = %settings.payouts,
            "the distributor anchored a balance root it did not sign: claims against that block pay what it made up, not this prover's signed balance"
        );
    }
    if let Some((height, waited)) = overdue {
        warn!(
            target: "prover",
            height,
            waited_s = waited.as_secs(),
            payouts = %settings.payouts,
            "the distributor has not anchored the ledger block holding this prover's credits: they cannot be claimed on chain"
        );
    }
    promoted
}

/// Keeps a copy of the proof of a block seen anchored (off the async
/// threads: it syncs a file).
async fn promote(shared: &Arc<Shared>, anchored: Kept) {
    let dir = shared.data_dir.clone();
    let kept = tokio::task::spawn_blocking(move || keep_anchored(&dir, anchored)).await;
    match kept {
        Ok(Ok(())) => shared.tally().anchored_proof = Some(anchored),
        Ok(Err(e)) => {
            warn!(target: "prover", error = %format!("{e:#}"), "the anchored balance proof is not kept")
        }
        Err(e) => warn!(target: "prover", error = %e, "the anchored balance proof is not kept"),
    }
}

/// What the watch reads from `contract`: the last anchored height and,
/// when the `kept` proof's block is anchored and was not `checked` yet, the
/// balance root anchored for it (for [`Anchoring::compare_anchor`]).
pub async fn read_chain(
    contract: &Payouts::PayoutsInstance<alloy::providers::DynProvider>,
    kept: Option<Kept>,
    checked: Option<u64>,
) -> Result<(u64, Option<[u8; 32]>), alloy::contract::Error> {
    let anchored = contract.lastHeight().call().await?;
    let due = kept.filter(|k| k.height <= anchored && Some(k.height) != checked);
    let Some(kept) = due else {
        return Ok((anchored, None));
    };
    let root = contract.balanceRoots(kept.height).call().await?;
    Ok((anchored, Some(root.0)))
}

/// Logs a failed read when its reason changes, and shows it on `/status`.
fn report_error(anchoring: &mut Anchoring, error: String) {
    if anchoring.error.as_ref() != Some(&error) {
        warn!(target: "prover", %error, "cannot read the Payouts contract's anchored height");
    }
    anchoring.error = Some(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    #[test]
    fn the_alarm_is_about_the_oldest_unanchored_block_and_rings_once() {
        let mut a = Anchoring::new(Address::ZERO, Duration::from_secs(60));
        a.credited(5, at(1_000));
        a.credited(3, at(2_000));
        a.credited(5, at(3_000));
        assert_eq!(a.oldest(at(2_000)), Some((3, Duration::ZERO)));
        assert_eq!(a.newly_overdue(at(61_000)), None, "block 3 waited 59 s");
        assert_eq!(
            a.newly_overdue(at(62_000)),
            Some((3, Duration::from_secs(60)))
        );
        assert_eq!(a.newly_overdue(at(90_000)), None, "rung once");
        assert!(a.view(at(90_000)).overdue);

        a.anchored_to(4);
        assert_eq!(a.oldest(at(90_000)), Some((5, Duration::from_secs(89))));
        assert_eq!(
            a.newly_overdue(at(90_000)),
            Some((5, Duration::from_secs(89))),
            "the next block rings on its own"
        );
        a.anchored_to(5);
        assert_eq!(a.oldest(at(90_000)), None);
        a.credited(5, at(91_000));
        assert_eq!(a.oldest(at(91_000)), None, "an anchored block is not owed");
        let view = a.view(at(91_000));
        assert_eq!(view.anchored_height, Some(5));
        assert!(!view.overdue);
    }

    #[test]
    fn a_leaf_paying_an_address_this_prover_did_not_bind_is_refused() {
        use protocol::{PayoutAddress, SecretKey};
        let key = SecretKey::from_seed([2; 32]);
        let (a, b) = (PayoutAddress([0xaa; 20]), PayoutAddress([0xbb; 20]));
        let leaf = |payout, payout_seq| ledger::Account {
            balance: 100,
            payout,
            payout_seq,
        };
        let bound = PayoutBinding::signed(&key, a, 5);
        let ok = |account, binding| check_payout(&account, binding).is_ok();
        // Unbound, or bound as this prover bound it: fine.
        assert!(ok(leaf(PayoutAddress::UNBOUND, 0), Some(&bound)));
        assert!(ok(leaf(PayoutAddress::UNBOUND, 0), None));
        assert!(ok(leaf(a, 5), Some(&bound)));
        // An older binding, before the newest is recorded: fine.
        assert!(ok(leaf(b, 4), Some(&bound)));
        // Another address at this binding's number or above, or any
        // address when this prover bound none: someone else's pay.
        let diverted = check_payout(&leaf(b, 5), Some(&bound)).unwrap_err();
        assert!(
            diverted.to_string().contains(&format!("pays {b}")),
            "{diverted}"
        );
        assert!(!ok(leaf(b, 9), Some(&bound)));
        assert!(!ok(leaf(b, 1), None));
    }

    #[test]
    fn only_this_provers_newest_checked_balance_proof_is_kept() {
        use ledger::{Credit, Ledger, LedgerConfig, Penalty, Tx};
        use protocol::{BatchId, JobId, SecretKey};
        let dir = tempfile::tempdir().unwrap();
        let distributor = SecretKey::from_seed([1; 32]);
        let (me, other) = (
            SecretKey::from_seed([2; 32]).public(),
            SecretKey::from_seed([3; 32]).public(),
        );
        let mut l =
            Ledger::open(dir.path().join("l"), &distributor, LedgerConfig::default()).unwrap();
        let mut proofs = Vec::new();
        for block in 0..2u32 {
            let credit = |prover, index: u32| {
                let job = JobId::new(BatchId(1), 2 * block + index);
                Tx::Credit(Credit::new(prover, job, 10, ContentHash::of(b"p")))
            };
            l.append(&[credit(me, 0), credit(other, 1)]).unwrap();
            l.cut_block().unwrap().expect("a block");
            proofs.push(l.balance_proof(&me).unwrap().encode());
        }
        let penalty = Penalty {
            prover: me,
            job: None,
            amount: 5,
            reason: "test".into(),
        };
        l.append(&[Tx::Penalty(penalty)]).unwrap();
        l.cut_block().unwrap().expect("a block");
        let lower = l.balance_proof(&me).unwrap().encode();

        let kept_dir = dir.path().join("prover");
        std::fs::create_dir(&kept_dir).unwrap();
        let d = distributor.public();
        let keep = |bytes: &[u8], who: &PublicKey, height: u64| {
            keep_balance_proof(&kept_dir, bytes, &d, who, None, height)
                .map(|k| (k.height, k.balance))
        };
        assert_eq!(keep(&proofs[1], &me, 2).unwrap(), (2, 20));
        assert_eq!(
            keep(&proofs[0], &me, 1).unwrap(),
            (2, 20),
            "the newer stays"
        );
        let refused = |bytes: &[u8], distributor: &PublicKey, me: &PublicKey, height: u64| {
            format!(
                "{:#}",
                keep_balance_proof(&kept_dir, bytes, distributor, me, None, height).unwrap_err()
            )
        };
        assert!(refused(&lower, &d, &me, 3).contains("below the 20 it signed at block 2"));
        assert!(refused(&proofs[0], &d, &me, 2).contains("older than the receipt"));
        assert!(refused(&proofs[1], &d, &other, 2).contains("another prover's"));
        let stranger = SecretKey::from_seed([9; 32]).public();
        assert!(refused(&proofs[1], &stranger, &me, 2).contains("distributor's key"));
        let mut forged = proofs[1].clone();
        let last = forged.len() - 70;
        forged[last] ^= 1;
        assert!(!refused(&forged, &d, &me, 2).is_empty());
        let kept_now = kept(&kept_dir, BALANCE_PROOF_FILE, &d).unwrap();
        assert_eq!((kept_now.height, kept_now.balance), (2, 20));

        // Seen anchored: copied aside, unless the kept one moved on.
        keep_anchored(
            &kept_dir,
            Kept {
                height: 1,
                ..kept_now
            },
        )
        .unwrap();
        assert_eq!(kept(&kept_dir, ANCHORED_FILE, &d), None, "not the kept one");
        keep_anchored(&kept_dir, kept_now).unwrap();
        assert_eq!(kept(&kept_dir, ANCHORED_FILE, &d), Some(kept_now));
    }

    #[test]
    fn an_anchored_root_other_than_the_signed_one_is_reported_once() {
        let mut a = Anchoring::new(Address::ZERO, Duration::from_secs(60));
        let signed = ContentHash([5; 32]);
        assert!(!a.compare_anchor(3, signed, [5; 32]), "the signed root");
        assert!(a.view(at(0)).forged_anchor.is_none());
        assert!(a.compare_anchor(4, signed, [6; 32]));
        assert!(!a.compare_anchor(5, signed, [7; 32]), "reported once");
        let forged = a.view(at(0)).forged_anchor.expect("reported");
        assert!(
            forged.starts_with("block 4: anchored balance root 0606"),
            "{forged}"
        );
    }

    #[test]
    fn unanchored_blocks_are_bounded() {
        let mut a = Anchoring::new(Address::ZERO, Duration::from_secs(60));
        for height in 1..=(UNANCHORED_KEPT as u64 + 10) {
            a.credited(height, at(height));
        }
        assert_eq!(a.unanchored.len(), UNANCHORED_KEPT);
        assert_eq!(a.oldest(at(1)), Some((1, Duration::ZERO)));
        let newest = a.unanchored.back().unwrap();
        assert_eq!(
            *newest,
            (UNANCHORED_KEPT as u64 + 10, at(UNANCHORED_KEPT as u64))
        );
        a.anchored_to(UNANCHORED_KEPT as u64 + 9);
        assert_eq!(
            a.oldest(at(2_000)).map(|(h, _)| h),
            Some(UNANCHORED_KEPT as u64 + 10),
            "still watched"
        );
    }
}
