//! The ledger itself: opening, appending, cutting blocks, queries, receipts,
//! chain verification and export.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs;
use std::io::Write;
use std::iter::Peekable;
use std::ops::{Bound, Range, RangeBounds};
use std::path::{Path, PathBuf};

use protocol::{ContentHash, JobId, PublicKey, SecretKey, Timestamp, codec, hex};
use rocksdb::{ColumnFamily, DB, DBIterator, Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::Serialize;

use crate::block::{BlockHeader, HEADER_VERSION, SignedHeader};
use crate::error::{Error, Result};
use crate::merkle::{self, MerkleTree};
use crate::receipt::{BalanceProof, Receipt};
use crate::state::{self, Account};
use crate::store::{self, PendingTx, TxLocation};
use crate::tx::{Credit, MAX_TX_BYTES, Tx};

/// When `append` and block cuts reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// fsync the write-ahead log before a write returns: an acknowledged write
    /// survives power loss. The default.
    #[default]
    EveryWrite,
    /// Hand writes to the OS without fsync: they survive a process crash but
    /// the last few may be lost on power failure. For tests and benchmarks.
    Never,
}

/// How a ledger writes and when it cuts blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// fsync policy.
    pub sync: FsyncPolicy,
    /// The most transactions in one block; a full pool is cut at once.
    pub max_block_txs: usize,
    /// A pending transaction older than this (ms) makes [`Ledger::maybe_cut_blocks`] cut.
    pub max_block_age_ms: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            sync: FsyncPolicy::EveryWrite,
            max_block_txs: 1000,
            max_block_age_ms: 2000,
        }
    }
}

/// One of a prover's transactions, with where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// In a block, or still pending.
    pub location: TxLocation,
    /// The transaction.
    pub tx: Tx,
}

/// What [`Ledger::verify_chain`] found on a sound ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The tip's height.
    pub height: u64,
    /// The tip's hash (hex).
    pub tip_hash: String,
    /// Blocks checked, genesis included.
    pub blocks: u64,
    /// Transactions in blocks.
    pub txs: u64,
    /// Credits in blocks.
    pub credits: u64,
    /// Payout bindings in blocks.
    pub bindings: u64,
    /// Penalties in blocks.
    pub penalties: u64,
    /// Transactions in the pending pool (checked too).
    pub pending: u64,
    /// Accounts at the tip.
    pub accounts: u64,
    /// Sum of all balances at the tip.
    pub total_balance: u128,
}

/// One row of a balance export.
#[derive(Debug, Serialize)]
struct ExportRow {
    prover: String,
    balance: u64,
    payout: String,
}

/// The JSON balance export: the tip it is valid at, then every account.
#[derive(Debug, Serialize)]
struct ExportDoc {
    distributor: String,
    height: u64,
    block_hash: String,
    balance_root: String,
    accounts: Vec<ExportRow>,
}

/// A compensation ledger on RocksDB.
///
/// Writes take `&mut self`; a node shares one behind a mutex. Reads take
/// `&self`. Open it read-only ([`Ledger::open_read_only`]) to inspect a
/// ledger, even while its distributor runs.
pub struct Ledger {
    db: DB,
    path: PathBuf,
    distributor: PublicKey,
    signer: Option<SecretKey>,
    config: LedgerConfig,
    write_opts: WriteOptions,
    poisoned: bool,
    tip: SignedHeader,
    /// Accounts as of the tip block (mirrors the `balances` column family).
    committed: BTreeMap<PublicKey, Account>,
    /// The balance tree of `committed` (its root is the tip's balance root),
    /// kept so a balance proof costs a path, not a rebuild.
    balance_tree: MerkleTree,
    /// `committed`'s keys in order: a prover's leaf index by binary search.
    balance_keys: Vec<PublicKey>,
    /// The pending pool in order (mirrors the `pending` column family).
    pending: VecDeque<(u64, PendingTx)>,
    /// Accounts touched by pending transactions, as they stand after them.
    pending_accounts: HashMap<PublicKey, Account>,
    next_seq: u64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("distributor", &self.distributor)
            .field("height", &self.height())
            .field("pending", &self.pending.len())
            .field("read_only", &self.signer.is_none())
            .finish()
    }
}

/// What is found at a ledger path before opening it.
enum Found {
    Nothing,
    Database,
}

fn inspect(path: &Path) -> Result<Found> {
    let foreign = |reason: &str| Error::Foreign {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Nothing),
        Err(e) => Err(foreign(&format!("cannot read it: {e}"))),
        Ok(meta) if !meta.is_dir() => Err(foreign("it is a file, not a directory")),
        Ok(_) => {
            let mut entries =
                fs::read_dir(path).map_err(|e| foreign(&format!("cannot list it: {e}")))?;
            if entries.next().is_none() {
                Ok(Found::Nothing)
            } else if path.join("CURRENT").is_file() {
                Ok(Found::Database)
            } else {
                Err(foreign("the directory is not empty and holds no database"))
            }
        }
    }
}

impl Ledger {
    /// Opens the ledger at `path` as its distributor, creating it (with a
    /// signed genesis block recording `distributor`'s key) if the directory
    /// is missing or empty. Refuses a ledger created by another key, and
    /// anything that is not a ledger.
    pub fn open(
        path: impl AsRef<Path>,
        distributor: &SecretKey,
        config: LedgerConfig,
    ) -> Result<Self> {
        let path = path.as_ref().to_owned();
        if config.max_block_txs == 0 || config.max_block_txs > u32::MAX as usize {
            return Err(Error::InvalidConfig(format!(
                "max_block_txs must be 1 to {}, not {}",
                u32::MAX,
                config.max_block_txs
            )));
        }
        let db = match inspect(&path)? {
            Found::Nothing => {
                fs::create_dir_all(&path).map_err(|e| Error::Foreign {
                    path: path.clone(),
                    reason: format!("cannot create the directory: {e}"),
                })?;
                Self::open_db(&path, true)?
            }
            Found::Database => Self::open_db(&path, false)?,
        };
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(config.sync == FsyncPolicy::EveryWrite);
        let meta = cf(&db, store::CF_META);
        let magic = db
            .get_cf(meta, store::META_MAGIC)
            .map_err(|source| Error::Db {
                path: path.clone(),
                source,
            })?;
        if magic.is_none() {
            // Either brand new, or a creation that crashed before its one
            // initial write: both are empty in every column family.
            if !all_empty(&db) {
                return Err(Error::Foreign {
                    path,
                    reason: "it has the ledger's column families but no ledger header".into(),
                });
            }
            init(&db, &path, distributor, &write_opts)?;
        }
        let mut ledger = Self::load(db, path, Some(distributor.clone()), config)?;
        ledger.write_opts = write_opts;
        if ledger.distributor != distributor.public() {
            return Err(Error::WrongDistributor {
                path: ledger.path.clone(),
                recorded: ledger.distributor,
                offered: distributor.public(),
            });
        }
        Ok(ledger)
    }

    /// Opens an existing ledger for reading only (balances, history,
    /// receipts, verification, export), trusting the distributor key it
    /// records; compare [`Ledger::distributor`] with the key you expect.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        if let Found::Nothing = inspect(&path)? {
            return Err(Error::Foreign {
                path,
                reason: "there is no ledger there (missing or empty directory)".into(),
            });
        }
        let db = DB::open_cf_for_read_only(
            &store::db_options(false),
            &path,
            store::COLUMN_FAMILIES,
            false,
        )
        .map_err(|e| Self::open_error(&path, e))?;
        Self::load(db, path, None, LedgerConfig::default())
    }

    fn open_db(path: &Path, create: bool) -> Result<DB> {
        let opts = store::db_options(create);
        if !create {
            let families = DB::list_cf(&opts, path).map_err(|e| Error::Corrupt {
                path: path.to_owned(),
                reason: format!("cannot read the database manifest: {e}"),
            })?;
            let missing: Vec<&str> = store::COLUMN_FAMILIES
                .iter()
                .copied()
                .filter(|name| !families.iter().any(|f| f == name))
                .collect();
            if !missing.is_empty() {
                return Err(Error::Foreign {
                    path: path.to_owned(),
                    reason: format!(
                        "a RocksDB database without the ledger's column families {missing:?} \
                         (another program's database, or a ledger whose MANIFEST is damaged)"
                    ),
                });
            }
        }
        DB::open_cf_descriptors(&opts, path, store::descriptors())
            .map_err(|e| Self::open_error(path, e))
    }

    fn open_error(path: &Path, e: rocksdb::Error) -> Error {
        let text = e.to_string();
        if text.contains("Invalid argument") && text.contains("olumn famil") {
            Error::Foreign {
                path: path.to_owned(),
                reason: format!("RocksDB refused its column families: {text}"),
            }
        } else if text.contains("lock") {
            Error::Db {
                path: path.to_owned(),
                source: e,
            }
        } else {
            Error::Corrupt {
                path: path.to_owned(),
                reason: text,
            }
        }
    }

    /// Reads the tip, the committed accounts and the pending pool into memory.
    fn load(
        db: DB,
        path: PathBuf,
        signer: Option<SecretKey>,
        config: LedgerConfig,
    ) -> Result<Self> {
        let (distributor, next_seq) = Self::load_meta(&db, &path)?;
        let tip = Self::load_tip(&db, &path, &distributor)?;
        let committed = Self::load_balances(&db, &path)?;
        let pending = Self::load_pending(&db, &path, next_seq)?;
        let pending_accounts = state::apply_all(pending.iter().map(|(_, p)| &p.tx), |pk| {
            committed.get(pk).copied().unwrap_or_default()
        })
        .map_err(|e| corrupt_at(&path)(format!("the pending pool does not replay: {e}")))?;
        let balance_tree = state::balance_tree(&committed);
        let balance_keys = committed.keys().copied().collect();

        Ok(Self {
            db,
            path,
            distributor,
            signer,
            config,
            write_opts: WriteOptions::default(),
            poisoned: false,
            tip,
            committed,
            balance_tree,
            balance_keys,
            pending,
            pending_accounts,
            next_seq,
        })
    }

    /// The meta column family: the format marker, then the distributor's key
    /// and the next pending sequence number.
    fn load_meta(db: &DB, path: &Path) -> Result<(PublicKey, u64)> {
        let corrupt = corrupt_at(path);
        let dberr = dberr_at(path);
        let meta = cf(db, store::CF_META);
        match db.get_cf(meta, store::META_MAGIC).map_err(&dberr)? {
            Some(m) if m == store::MAGIC => {}
            Some(m) if m.starts_with(b"crowdprove-ledger") => {
                return Err(Error::Foreign {
                    path: path.to_owned(),
                    reason: format!(
                        "its format is {:?}; this build reads {:?}",
                        String::from_utf8_lossy(&m),
                        String::from_utf8_lossy(store::MAGIC)
                    ),
                });
            }
            _ => {
                return Err(Error::Foreign {
                    path: path.to_owned(),
                    reason: "no CrowdProve ledger header in its meta column family".into(),
                });
            }
        }
        let distributor = db
            .get_cf(meta, store::META_DISTRIBUTOR)
            .map_err(&dberr)?
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .map(PublicKey)
            .ok_or_else(|| corrupt("the distributor key record is missing or damaged".into()))?;
        let next_seq = db
            .get_cf(meta, store::META_NEXT_SEQ)
            .map_err(&dberr)?
            .and_then(|b| store::parse_u64(&b))
            .ok_or_else(|| corrupt("the next-sequence record is missing or damaged".into()))?;
        Ok((distributor, next_seq))
    }

    /// The last block's header, stored under its height and signed by `distributor`.
    fn load_tip(db: &DB, path: &Path, distributor: &PublicKey) -> Result<SignedHeader> {
        let corrupt = corrupt_at(path);
        let (key, value) = db
            .iterator_cf(cf(db, store::CF_BLOCKS), IteratorMode::End)
            .next()
            .ok_or_else(|| corrupt("no blocks, not even genesis".into()))?
            .map_err(dberr_at(path))?;
        let tip =
            SignedHeader::decode(&value).map_err(|e| corrupt(format!("tip block header: {e}")))?;
        if store::parse_u64(&key) != Some(tip.header.height) {
            return Err(corrupt(format!(
                "the last block is stored under the wrong key for height {}",
                tip.header.height
            )));
        }
        tip.verify(distributor)
            .map_err(|e| corrupt(format!("tip block {}: {e}", tip.header.height)))?;
        Ok(tip)
    }

    /// The accounts as of the tip block.
    fn load_balances(db: &DB, path: &Path) -> Result<BTreeMap<PublicKey, Account>> {
        let corrupt = corrupt_at(path);
        let mut committed = BTreeMap::new();
        for item in db.iterator_cf(cf(db, store::CF_BALANCES), IteratorMode::Start) {
            let (key, value) = item.map_err(dberr_at(path))?;
            let prover = <[u8; 32]>::try_from(&key[..])
                .map(PublicKey)
                .map_err(|_| corrupt("a balance key is not a public key".into()))?;
            let account: Account = codec::decode(&value, 64)
                .map_err(|e| corrupt(format!("balance of {prover:?}: {e}")))?;
            committed.insert(prover, account);
        }
        Ok(committed)
    }

    /// The pending pool in sequence order, every number below `next_seq`.
    fn load_pending(db: &DB, path: &Path, next_seq: u64) -> Result<VecDeque<(u64, PendingTx)>> {
        let corrupt = corrupt_at(path);
        let mut pending = VecDeque::new();
        for item in db.iterator_cf(cf(db, store::CF_PENDING), IteratorMode::Start) {
            let (key, value) = item.map_err(dberr_at(path))?;
            let seq = store::parse_u64(&key)
                .ok_or_else(|| corrupt("a pending key is not a sequence number".into()))?;
            let entry: PendingTx = codec::decode(&value, MAX_TX_BYTES + 16)
                .map_err(|e| corrupt(format!("pending transaction {seq}: {e}")))?;
            if seq >= next_seq {
                return Err(corrupt(format!(
                    "pending transaction {seq} is past the next sequence {next_seq}"
                )));
            }
            pending.push_back((seq, entry));
        }
        Ok(pending)
    }

    /// The ledger's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The distributor whose key signs this ledger's blocks.
    pub fn distributor(&self) -> PublicKey {
        self.distributor
    }

    /// The configuration in force.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The height of the last block (0: only genesis).
    pub fn height(&self) -> u64 {
        self.tip.header.height
    }

    /// The last block's signed header.
    pub fn tip(&self) -> &SignedHeader {
        &self.tip
    }

    /// The latest time the ledger has recorded: the newest pending
    /// transaction's, or the last block's. A writer whose clock resumes
    /// from here never goes back in time, whatever the wall clock did.
    pub fn latest_time(&self) -> Timestamp {
        let pending = self.pending.back().map(|(_, p)| p.appended_at);
        pending.map_or(self.tip.header.timestamp, |at| {
            at.max(self.tip.header.timestamp)
        })
    }

    /// Transactions appended but not yet in a block.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A prover's account, pending transactions included.
    pub fn account(&self, prover: &PublicKey) -> Account {
        self.pending_accounts
            .get(prover)
            .or_else(|| self.committed.get(prover))
            .copied()
            .unwrap_or_default()
    }

    /// A prover's balance, pending transactions included.
    pub fn balance(&self, prover: &PublicKey) -> u64 {
        self.account(prover).balance
    }

    /// `prover`'s account as of the tip block with its path to the tip's
    /// balance root: what a claim on the payout contract carries. `None`
    /// for a prover without an account at the tip.
    pub fn balance_proof(&self, prover: &PublicKey) -> Option<BalanceProof> {
        let account = *self.committed.get(prover)?;
        let index = self.balance_keys.binary_search(prover).ok()?;
        let path = self.balance_tree.proof(index)?;
        Some(BalanceProof {
            prover: *prover,
            account,
            index: index as u64,
            path,
            header: self.tip.clone(),
        })
    }

    /// A prover's balance as of the tip block (what the balance root commits to).
    pub fn committed_balance(&self, prover: &PublicKey) -> u64 {
        self.committed.get(prover).map_or(0, |a| a.balance)
    }

    fn dberr(&self) -> impl Fn(rocksdb::Error) -> Error + '_ {
        |source| Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        cf(&self.db, name)
    }

    fn signer(&self) -> Result<&SecretKey> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
            });
        }
        self.signer.as_ref().ok_or_else(|| Error::ReadOnly {
            path: self.path.clone(),
        })
    }

    fn write(&mut self, batch: WriteBatch) -> Result<()> {
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|source| {
                self.poisoned = true;
                Error::Db {
                    path: self.path.clone(),
                    source,
                }
            })
    }

    /// Appends `txs` at the current time; see [`Ledger::append_at`].
    pub fn append(&mut self, txs: &[Tx]) -> Result<Range<u64>> {
        self.append_at(txs, Timestamp::now())
    }

    /// Validates `txs` in order against the ledger and each other, then
    /// writes all of them to the pending pool in one atomic write (fsynced
    /// under [`FsyncPolicy::EveryWrite`]), or none of them. Once this returns `Ok`,
    /// every credited job counts as credited for good, crash or not.
    /// Returns the transactions' sequence numbers in the pool.
    pub fn append_at(&mut self, txs: &[Tx], now: Timestamp) -> Result<Range<u64>> {
        self.signer()?;
        let first = self.next_seq;
        if txs.is_empty() {
            return Ok(first..first);
        }
        for tx in txs {
            tx.check_well_formed()?;
        }
        let mut jobs = HashSet::new();
        let mut keys = Vec::new();
        for tx in txs {
            if let Tx::Credit(c) = tx {
                if !jobs.insert(c.job) {
                    return Err(Error::AlreadyCredited { job: c.job });
                }
                keys.push((c.job, store::job_key(c.job)));
            }
        }
        let found = self.db.batched_multi_get_cf(
            self.cf(store::CF_INDEX),
            keys.iter().map(|(_, k)| k),
            false,
        );
        for ((job, _), hit) in keys.iter().zip(found) {
            if hit.map_err(self.dberr())?.is_some() {
                return Err(Error::AlreadyCredited { job: *job });
            }
        }
        let touched = state::apply_all(txs, |pk| self.account(pk))?;

        let mut batch = WriteBatch::default();
        let mut seq = first;
        for tx in txs {
            let entry = PendingTx {
                appended_at: now,
                tx: tx.clone(),
            };
            batch.put_cf(
                self.cf(store::CF_PENDING),
                store::height_key(seq),
                codec::encode(&entry),
            );
            if let Tx::Credit(c) = tx {
                let location = TxLocation::Pending { seq };
                batch.put_cf(
                    self.cf(store::CF_INDEX),
                    store::job_key(c.job),
                    codec::encode(&location),
                );
            }
            self.pending.push_back((seq, entry));
            seq += 1;
        }
        batch.put_cf(
            self.cf(store::CF_META),
            store::META_NEXT_SEQ,
            seq.to_be_bytes(),
        );
        if let Err(e) = self.write(batch) {
            self.pending.truncate(self.pending.len() - txs.len());
            return Err(e);
        }
        self.pending_accounts.extend(touched);
        self.next_seq = seq;
        Ok(first..seq)
    }

    /// Cuts a block now from the oldest pending transactions; see [`Ledger::cut_block_at`].
    pub fn cut_block(&mut self) -> Result<Option<SignedHeader>> {
        self.cut_block_at(Timestamp::now())
    }

    /// Cuts one block from up to `max_block_txs` of the oldest pending
    /// transactions, signs it, and writes it with its transactions, Merkle
    /// tree, indexes, balance updates and pool removals in one atomic write.
    /// `None` if the pool is empty.
    pub fn cut_block_at(&mut self, now: Timestamp) -> Result<Option<SignedHeader>> {
        let signer = self.signer()?.clone();
        if self.pending.is_empty() {
            return Ok(None);
        }
        let count = self.pending.len().min(self.config.max_block_txs);
        let block: Vec<&(u64, PendingTx)> = self.pending.iter().take(count).collect();
        let touched = state::apply_all(block.iter().map(|(_, p)| &p.tx), |pk| {
            self.committed.get(pk).copied().unwrap_or_default()
        })
        .map_err(|e| self.corrupt(format!("the pending pool no longer applies: {e}")))?;
        let mut accounts = self.committed.clone();
        accounts.extend(touched.iter().map(|(k, v)| (*k, *v)));

        let tree = MerkleTree::from_leaves(block.iter().map(|(_, p)| p.tx.leaf_hash()).collect());
        let balance_tree = state::balance_tree(&accounts);
        let height = self.height() + 1;
        let header = BlockHeader {
            version: HEADER_VERSION,
            height,
            prev_hash: self.tip.hash(),
            timestamp: now.max(self.tip.header.timestamp),
            tx_count: count as u32,
            tx_root: tree.root(),
            balance_root: balance_tree.root(),
            account_count: accounts.len() as u64,
            distributor: self.distributor,
        };
        let signed = header.sign(&signer);
        let batch = self.block_batch(&signed, &tree, &block, &touched);
        self.write(batch)?;

        self.balance_keys = accounts.keys().copied().collect();
        self.committed = accounts;
        self.balance_tree = balance_tree;
        self.pending.drain(..count);
        self.pending_accounts = state::apply_all(self.pending.iter().map(|(_, p)| &p.tx), |pk| {
            self.committed.get(pk).copied().unwrap_or_default()
        })
        .map_err(|e| self.corrupt(format!("the pending pool no longer applies: {e}")))?;
        self.tip = signed.clone();
        Ok(Some(signed))
    }

    /// The one atomic write that stores block `signed` (cut from `block`, the
    /// oldest pending entries, with Merkle tree `tree`): header, tree,
    /// transactions, history and job indexes, pool removals, and the
    /// `touched` balances.
    fn block_batch(
        &self,
        signed: &SignedHeader,
        tree: &MerkleTree,
        block: &[&(u64, PendingTx)],
        touched: &HashMap<PublicKey, Account>,
    ) -> WriteBatch {
        let height = signed.header.height;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(store::CF_BLOCKS),
            store::height_key(height),
            signed.encode(),
        );
        batch.put_cf(
            self.cf(store::CF_TREES),
            store::height_key(height),
            tree.to_bytes(),
        );
        for (index, (seq, entry)) in block.iter().enumerate() {
            let index = index as u32;
            let tx = &entry.tx;
            batch.put_cf(
                self.cf(store::CF_TXS),
                store::tx_key(height, index),
                tx.encode(),
            );
            batch.put_cf(
                self.cf(store::CF_HISTORY),
                store::history_key(tx.prover(), height, index),
                [],
            );
            if let Tx::Credit(c) = tx {
                let location = TxLocation::Block { height, index };
                batch.put_cf(
                    self.cf(store::CF_INDEX),
                    store::job_key(c.job),
                    codec::encode(&location),
                );
            }
            batch.delete_cf(self.cf(store::CF_PENDING), store::height_key(*seq));
        }
        for (prover, account) in touched {
            batch.put_cf(
                self.cf(store::CF_BALANCES),
                prover.0,
                codec::encode(account),
            );
        }
        batch
    }

    /// Whether the policy calls for a block at `now`: a full block's worth
    /// pending, or a pending transaction older than `max_block_age_ms`.
    pub fn block_due(&self, now: Timestamp) -> bool {
        match self.pending.front() {
            None => false,
            Some((_, oldest)) => {
                self.pending.len() >= self.config.max_block_txs
                    || now.millis_since(oldest.appended_at) >= self.config.max_block_age_ms
            }
        }
    }

    /// Cuts blocks while [`Ledger::block_due`] says so; returns them in order.
    pub fn maybe_cut_blocks(&mut self, now: Timestamp) -> Result<Vec<SignedHeader>> {
        let mut cut = Vec::new();
        while self.block_due(now) {
            match self.cut_block_at(now)? {
                Some(header) => cut.push(header),
                None => break,
            }
        }
        Ok(cut)
    }

    /// Where the credit for `job` lives, if it was ever credited.
    pub fn credit_location(&self, job: JobId) -> Result<Option<TxLocation>> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(store::CF_INDEX), store::job_key(job))
            .map_err(self.dberr())?
        else {
            return Ok(None);
        };
        codec::decode(&bytes, 32)
            .map(Some)
            .map_err(|e| self.corrupt(format!("index entry of job {job}: {e}")))
    }

    /// Whether `job` has been credited (in a block or pending).
    pub fn is_credited(&self, job: JobId) -> Result<bool> {
        Ok(self.credit_location(job)?.is_some())
    }

    /// The credit of `job` (in a block or pending), if it was credited:
    /// what it paid, to whom, for which proof.
    pub fn credit(&self, job: JobId) -> Result<Option<Credit>> {
        let tx = match self.credit_location(job)? {
            None => return Ok(None),
            Some(TxLocation::Block { height, index }) => self.tx(height, index)?,
            Some(TxLocation::Pending { seq }) => {
                let bytes = self
                    .db
                    .get_pinned_cf(self.cf(store::CF_PENDING), store::height_key(seq))
                    .map_err(self.dberr())?;
                match bytes {
                    None => None,
                    Some(bytes) => Some(
                        codec::decode::<PendingTx>(&bytes, MAX_TX_BYTES + 16)
                            .map_err(|e| self.corrupt(format!("pending transaction {seq}: {e}")))?
                            .tx,
                    ),
                }
            }
        };
        match tx {
            Some(Tx::Credit(credit)) if credit.job == job => Ok(Some(credit)),
            _ => Err(self.corrupt(format!(
                "the index points job {job} at a transaction that is not its credit"
            ))),
        }
    }

    /// The signed header of the block at `height`.
    pub fn header(&self, height: u64) -> Result<Option<SignedHeader>> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(store::CF_BLOCKS), store::height_key(height))
            .map_err(self.dberr())?
        else {
            return Ok(None);
        };
        SignedHeader::decode(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(format!("header of block {height}: {e}")))
    }

    /// The transaction at `index` in block `height`.
    pub fn tx(&self, height: u64, index: u32) -> Result<Option<Tx>> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(store::CF_TXS), store::tx_key(height, index))
            .map_err(self.dberr())?
        else {
            return Ok(None);
        };
        Tx::decode(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(format!("transaction {index} of block {height}: {e}")))
    }

    /// The transactions of block `height`, in order.
    pub fn block_txs(&self, height: u64) -> Result<Vec<Tx>> {
        let prefix = store::height_key(height);
        let mut txs = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(store::CF_TXS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(self.dberr())?;
            if !key.starts_with(&prefix) {
                break;
            }
            txs.push(
                Tx::decode(&value)
                    .map_err(|e| self.corrupt(format!("a transaction of block {height}: {e}")))?,
            );
        }
        Ok(txs)
    }

    /// `prover`'s transactions in blocks whose height is in `heights`, oldest
    /// first; when `heights` has no upper end, pending ones follow.
    pub fn history(
        &self,
        prover: &PublicKey,
        heights: impl RangeBounds<u64>,
    ) -> Result<Vec<HistoryEntry>> {
        let start = match heights.start_bound() {
            Bound::Included(&h) => h,
            Bound::Excluded(&h) => h.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let from = store::history_key(prover, start, 0);
        let mut entries = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(store::CF_HISTORY),
            IteratorMode::From(&from, Direction::Forward),
        );
        for item in iter {
            let (key, _) = item.map_err(self.dberr())?;
            if !key.starts_with(&prover.0) {
                break;
            }
            let (height, index) = store::parse_tx_key(&key[32..])
                .ok_or_else(|| self.corrupt("a history key is malformed".into()))?;
            if !heights.contains(&height) {
                break;
            }
            let tx = self.tx(height, index)?.ok_or_else(|| {
                self.corrupt(format!(
                    "history names missing transaction {height}/{index}"
                ))
            })?;
            entries.push(HistoryEntry {
                location: TxLocation::Block { height, index },
                tx,
            });
        }
        if let Bound::Unbounded = heights.end_bound() {
            entries.extend(
                self.pending
                    .iter()
                    .filter(|(_, p)| p.tx.prover() == prover)
                    .map(|(seq, p)| HistoryEntry {
                        location: TxLocation::Pending { seq: *seq },
                        tx: p.tx.clone(),
                    }),
            );
        }
        Ok(entries)
    }

    /// The receipt for `job`'s credit: the credit, its inclusion proof and its
    /// block's signed header. [`Error::NotYetInBlock`] while the credit waits
    /// in the pending pool, [`Error::NotCredited`] if there is none.
    pub fn receipt(&self, job: JobId) -> Result<Receipt> {
        let (height, index) = match self.credit_location(job)? {
            None => return Err(Error::NotCredited { job }),
            Some(TxLocation::Pending { .. }) => return Err(Error::NotYetInBlock { job }),
            Some(TxLocation::Block { height, index }) => (height, index),
        };
        let header = self
            .header(height)?
            .ok_or_else(|| self.corrupt(format!("job {job} points at missing block {height}")))?;
        let credit = match self.tx(height, index)? {
            Some(Tx::Credit(c)) if c.job == job => c,
            _ => {
                return Err(self.corrupt(format!(
                    "job {job} points at {height}/{index}, which is not its credit"
                )));
            }
        };
        let tree_bytes = self
            .db
            .get_pinned_cf(self.cf(store::CF_TREES), store::height_key(height))
            .map_err(self.dberr())?
            .ok_or_else(|| self.corrupt(format!("block {height} has no stored Merkle tree")))?;
        let proof = tree_proof(&tree_bytes, header.header.tx_count as usize, index as usize)
            .ok_or_else(|| {
                self.corrupt(format!(
                    "the stored Merkle tree of block {height} is damaged"
                ))
            })?;
        let leaf = Tx::Credit(credit.clone()).leaf_hash();
        // A damaged stored tree must not yield a receipt that fails later, offline.
        if !merkle::verify_proof(
            leaf,
            u64::from(index),
            u64::from(header.header.tx_count),
            &proof,
            &header.header.tx_root,
        ) {
            return Err(self.corrupt(format!(
                "the stored Merkle tree of block {height} does not match its root"
            )));
        }
        Ok(Receipt {
            credit,
            index,
            proof,
            header,
        })
    }

    /// Walks every block from genesis: heights contiguous, hashes chained,
    /// signatures valid, timestamps non-decreasing, every transaction's rules
    /// (a job credited once, no negative balance, signed payout bindings in
    /// sequence), transaction and balance roots recomputed, stored trees and
    /// indexes consistent; then the stored balances and the pending pool.
    /// Reports the first bad height.
    pub fn verify_chain(&self) -> Result<ChainReport> {
        let mut walk = ChainWalk::new(self);
        for item in self
            .db
            .iterator_cf(self.cf(store::CF_BLOCKS), IteratorMode::Start)
        {
            let (key, value) = item.map_err(self.dberr())?;
            walk.block(&key, &value)?;
        }
        let tip = walk.tip()?;
        let tip_height = tip.header.height;
        let stored = walk.stored_balances(tip_height)?;
        walk.check_history_index(tip_height)?;
        let pending_credits = walk.pending_pool(tip_height)?;
        walk.check_job_index(tip_height, pending_credits)?;

        let mut report = walk.report;
        report.height = tip_height;
        report.tip_hash = tip.hash().to_hex();
        report.accounts = stored.len() as u64;
        report.total_balance = stored.values().map(|a| u128::from(a.balance)).sum();
        Ok(report)
    }

    /// The error [`Ledger::verify_chain`] reports for the first bad height.
    fn invalid(&self, height: u64, reason: String) -> Error {
        Error::InvalidChain {
            path: self.path.clone(),
            height,
            reason,
        }
    }

    /// A fault in the pending pool, reported at the height above the tip.
    fn invalid_pool(&self, tip_height: u64, reason: String) -> Error {
        self.invalid(tip_height + 1, format!("pending pool: {reason}"))
    }

    fn export_doc(&self) -> ExportDoc {
        ExportDoc {
            distributor: self.distributor.to_hex(),
            height: self.height(),
            block_hash: self.tip.hash().to_hex(),
            balance_root: self.tip.header.balance_root.to_hex(),
            accounts: self
                .committed
                .iter()
                .map(|(prover, a)| ExportRow {
                    prover: prover.to_hex(),
                    balance: a.balance,
                    payout: a.payout.to_string(),
                })
                .collect(),
        }
    }

    /// Writes every account's balance as of the tip block as JSON, with the
    /// tip's height, hash and balance root to settle against.
    pub fn export_json(&self, mut out: impl Write) -> Result<()> {
        serde_json::to_writer_pretty(&mut out, &self.export_doc()).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    /// Writes every account's balance as of the tip block as CSV
    /// (`prover,balance,payout`, sorted by prover; the payout address is
    /// the zero address while none is bound).
    pub fn export_csv(&self, mut out: impl Write) -> Result<()> {
        writeln!(out, "prover,balance,payout")?;
        for row in self.export_doc().accounts {
            writeln!(out, "{},{},{}", row.prover, row.balance, row.payout)?;
        }
        Ok(())
    }
}

/// What [`Ledger::verify_chain`] carries from one block to the next: the
/// counts so far, the balances and credited jobs replayed so far, the block
/// below, and the stored transactions not yet matched to a block.
struct ChainWalk<'a> {
    ledger: &'a Ledger,
    report: ChainReport,
    accounts: BTreeMap<PublicKey, Account>,
    jobs: HashSet<JobId>,
    prev: Option<SignedHeader>,
    txs: Peekable<DBIterator<'a>>,
    /// The height of the block being checked.
    height: u64,
}

impl<'a> ChainWalk<'a> {
    fn new(ledger: &'a Ledger) -> Self {
        Self {
            ledger,
            report: ChainReport::default(),
            accounts: BTreeMap::new(),
            jobs: HashSet::new(),
            prev: None,
            txs: ledger
                .db
                .iterator_cf(ledger.cf(store::CF_TXS), IteratorMode::Start)
                .peekable(),
            height: 0,
        }
    }

    /// An invalid-chain error at the block being checked.
    fn bad(&self, reason: String) -> Error {
        self.ledger.invalid(self.height, reason)
    }

    /// Checks the block stored under `key` with its transactions, then steps
    /// to the next height.
    fn block(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let signed = self.header(key, value)?;
        let leaves = self.transactions(signed.header.tx_count as usize)?;
        self.check_roots(&signed.header, leaves)?;
        self.report.txs += u64::from(signed.header.tx_count);
        self.report.blocks += 1;
        self.prev = Some(signed);
        self.height += 1;
        Ok(())
    }

    /// The block's header: stored at its height, decodable, of this version,
    /// signed by the distributor and linked to the block below.
    fn header(&self, key: &[u8], value: &[u8]) -> Result<SignedHeader> {
        if store::parse_u64(key) != Some(self.height) {
            return Err(self.bad(format!(
                "block missing; next stored key is {}",
                hex::encode(key)
            )));
        }
        let signed = SignedHeader::decode(value)
            .map_err(|e| self.bad(format!("header does not decode: {e}")))?;
        let header = &signed.header;
        if header.height != self.height || header.version != HEADER_VERSION {
            return Err(self.bad(format!(
                "header claims height {} version {}",
                header.height, header.version
            )));
        }
        signed
            .verify(&self.ledger.distributor)
            .map_err(|e| self.bad(e.to_string()))?;
        self.check_link(header)?;
        Ok(signed)
    }

    /// Genesis starts the chain with nothing below it and no transactions;
    /// every later block links to the one below and is no older.
    fn check_link(&self, header: &BlockHeader) -> Result<()> {
        match &self.prev {
            None if header.prev_hash != ContentHash([0; 32]) || header.tx_count != 0 => {
                return Err(
                    self.bad("genesis must have a zero previous hash and no transactions".into())
                );
            }
            Some(p) if header.prev_hash != p.hash() => {
                return Err(self.bad("previous-hash link does not match the block below".into()));
            }
            Some(p) if header.timestamp < p.header.timestamp => {
                return Err(self.bad("timestamp earlier than the block below".into()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Replays the block's stored transactions in index order and returns
    /// their leaf hashes.
    fn transactions(&mut self, capacity: usize) -> Result<Vec<ContentHash>> {
        let mut leaves = Vec::with_capacity(capacity);
        while let Some((index, value)) = self.next_tx()? {
            if index as usize != leaves.len() {
                return Err(self.bad(format!("transaction {} missing", leaves.len())));
            }
            leaves.push(self.transaction(index, &value)?);
        }
        Ok(leaves)
    }

    /// The next stored transaction (its index and bytes) if it belongs to the
    /// block being checked; one stored below it has no block.
    fn next_tx(&mut self) -> Result<Option<(u32, Box<[u8]>)>> {
        let ledger = self.ledger;
        let height = self.height;
        let Some(item) = self.txs.peek() else {
            return Ok(None);
        };
        let (tx_height, index) = match item {
            Ok((k, _)) => store::parse_tx_key(k)
                .ok_or_else(|| ledger.invalid(height, "malformed transaction key".into()))?,
            Err(e) => return Err(ledger.dberr()(e.clone())),
        };
        if tx_height > height {
            return Ok(None);
        }
        if tx_height < height {
            return Err(ledger.invalid(
                tx_height,
                "transaction stored for a height with no block".into(),
            ));
        }
        let (_, value) = self.txs.next().expect("peeked").map_err(ledger.dberr())?;
        Ok(Some((index, value)))
    }

    /// Checks transaction `index` of the block: its rules against the
    /// balances so far, its history entry and, for a credit, the job index.
    /// Counts it and returns its leaf hash.
    fn transaction(&mut self, index: u32, value: &[u8]) -> Result<ContentHash> {
        let ledger = self.ledger;
        let height = self.height;
        let tx = Tx::decode(value)
            .map_err(|e| ledger.invalid(height, format!("transaction {index}: {e}")))?;
        let fault =
            |reason: String| ledger.invalid(height, format!("transaction {index}: {reason}"));
        tx.check_well_formed().map_err(|e| fault(e.to_string()))?;
        let account = self.accounts.entry(*tx.prover()).or_default();
        state::apply(&tx, account).map_err(|e| fault(e.to_string()))?;
        if ledger
            .db
            .get_pinned_cf(
                ledger.cf(store::CF_HISTORY),
                store::history_key(tx.prover(), height, index),
            )
            .map_err(ledger.dberr())?
            .is_none()
        {
            return Err(fault("missing from the prover's history index".into()));
        }
        match &tx {
            Tx::Credit(c) => {
                if !self.jobs.insert(c.job) {
                    return Err(fault(format!("job {} credited a second time", c.job)));
                }
                if ledger.credit_location(c.job)? != Some(TxLocation::Block { height, index }) {
                    return Err(fault(format!(
                        "job index does not point at the credit of {}",
                        c.job
                    )));
                }
                self.report.credits += 1;
            }
            Tx::BindPayout(_) => self.report.bindings += 1,
            Tx::Penalty(_) => self.report.penalties += 1,
        }
        Ok(tx.leaf_hash())
    }

    /// The header's transaction count and roots against the replay, and the
    /// stored Merkle tree against the one rebuilt from `leaves`.
    fn check_roots(&self, header: &BlockHeader, leaves: Vec<ContentHash>) -> Result<()> {
        if leaves.len() != header.tx_count as usize {
            return Err(self.bad(format!(
                "header says {} transactions, found {}",
                header.tx_count,
                leaves.len()
            )));
        }
        let tree = MerkleTree::from_leaves(leaves);
        if tree.root() != header.tx_root {
            return Err(self.bad("transaction root does not match the transactions".into()));
        }
        let stored = self
            .ledger
            .db
            .get_pinned_cf(
                self.ledger.cf(store::CF_TREES),
                store::height_key(self.height),
            )
            .map_err(self.ledger.dberr())?;
        if stored.as_deref() != Some(&tree.to_bytes()[..]) {
            return Err(self.bad("stored Merkle tree missing or different".into()));
        }
        if state::balance_root(&self.accounts) != header.balance_root
            || self.accounts.len() as u64 != header.account_count
        {
            return Err(self.bad("balance root does not match the replayed balances".into()));
        }
        Ok(())
    }

    /// After the last block: there was a genesis, no transaction is stored
    /// above the tip, and the tip is the one loaded at open. Returns the tip.
    fn tip(&mut self) -> Result<SignedHeader> {
        let ledger = self.ledger;
        let Some(tip) = self.prev.take() else {
            return Err(ledger.invalid(0, "no genesis block".into()));
        };
        if let Some(item) = self.txs.next() {
            let (key, _) = item.map_err(ledger.dberr())?;
            let at = store::parse_tx_key(&key).map_or(self.height, |(h, _)| h);
            return Err(ledger.invalid(at, "transactions stored above the tip".into()));
        }
        if tip != ledger.tip {
            return Err(ledger.invalid(
                tip.header.height,
                "the tip changed or differs from the one loaded at open".into(),
            ));
        }
        Ok(tip)
    }

    /// The stored balances, which must be exactly the replayed ones.
    fn stored_balances(&self, tip_height: u64) -> Result<BTreeMap<PublicKey, Account>> {
        let ledger = self.ledger;
        let mut stored = BTreeMap::new();
        for item in ledger
            .db
            .iterator_cf(ledger.cf(store::CF_BALANCES), IteratorMode::Start)
        {
            let (key, value) = item.map_err(ledger.dberr())?;
            let prover = <[u8; 32]>::try_from(&key[..]).map(PublicKey);
            let account = codec::decode::<Account>(&value, 64);
            match (prover, account) {
                (Ok(p), Ok(a)) => stored.insert(p, a),
                _ => {
                    return Err(
                        ledger.invalid(tip_height, "a stored balance does not decode".into())
                    );
                }
            };
        }
        if stored != self.accounts {
            return Err(ledger.invalid(
                tip_height,
                "stored balances differ from the replayed chain".into(),
            ));
        }
        Ok(stored)
    }

    /// The history index holds one entry per transaction in a block.
    fn check_history_index(&self, tip_height: u64) -> Result<()> {
        let ledger = self.ledger;
        let history_len = ledger
            .db
            .iterator_cf(ledger.cf(store::CF_HISTORY), IteratorMode::Start)
            .count() as u64;
        if history_len != self.report.txs {
            return Err(ledger.invalid(
                tip_height,
                format!(
                    "history index has {history_len} entries for {} transactions",
                    self.report.txs
                ),
            ));
        }
        Ok(())
    }

    /// Replays the pending pool on top of the tip, with its jobs indexed as
    /// pending; returns how many credits it holds.
    fn pending_pool(&mut self, tip_height: u64) -> Result<u64> {
        let ledger = self.ledger;
        let pool_bad = |reason: String| ledger.invalid_pool(tip_height, reason);
        let mut pending_credits = 0u64;
        let mut last_seq = None;
        for item in ledger
            .db
            .iterator_cf(ledger.cf(store::CF_PENDING), IteratorMode::Start)
        {
            let (key, value) = item.map_err(ledger.dberr())?;
            let seq = store::parse_u64(&key).ok_or_else(|| pool_bad("malformed key".into()))?;
            if self.pending_tx(tip_height, seq, &value)? {
                pending_credits += 1;
            }
            self.report.pending += 1;
            last_seq = Some(seq);
        }
        if last_seq.is_some_and(|s| s >= ledger.next_seq) {
            return Err(pool_bad(
                "a sequence number is past the recorded next one".into(),
            ));
        }
        Ok(pending_credits)
    }

    /// Replays pending transaction `seq` on the balances; whether it is a
    /// credit (whose job must be new and indexed as pending here).
    fn pending_tx(&mut self, tip_height: u64, seq: u64, value: &[u8]) -> Result<bool> {
        let ledger = self.ledger;
        let pool_bad = |reason: String| ledger.invalid_pool(tip_height, reason);
        let entry: PendingTx =
            codec::decode(value, MAX_TX_BYTES + 16).map_err(|e| pool_bad(format!("{seq}: {e}")))?;
        let tx = &entry.tx;
        tx.check_well_formed()
            .map_err(|e| pool_bad(format!("{seq}: {e}")))?;
        state::apply(tx, self.accounts.entry(*tx.prover()).or_default())
            .map_err(|e| pool_bad(format!("{seq}: {e}")))?;
        let Tx::Credit(c) = tx else {
            return Ok(false);
        };
        if !self.jobs.insert(c.job) {
            return Err(pool_bad(format!(
                "{seq}: job {} credited a second time",
                c.job
            )));
        }
        if ledger.credit_location(c.job)? != Some(TxLocation::Pending { seq }) {
            return Err(pool_bad(format!("{seq}: job index does not point here")));
        }
        Ok(true)
    }

    /// The job index holds one entry per credit, in blocks or pending.
    fn check_job_index(&self, tip_height: u64, pending_credits: u64) -> Result<()> {
        let ledger = self.ledger;
        let index_len = ledger
            .db
            .iterator_cf(ledger.cf(store::CF_INDEX), IteratorMode::Start)
            .count() as u64;
        if index_len != self.report.credits + pending_credits {
            return Err(ledger.invalid_pool(
                tip_height,
                format!(
                    "job index has {index_len} entries for {} credits",
                    self.report.credits + pending_credits
                ),
            ));
        }
        Ok(())
    }
}

/// The inclusion proof for leaf `index` read straight from a stored tree
/// (levels concatenated, leaves first) without decoding the whole of it.
fn tree_proof(bytes: &[u8], leaves: usize, index: usize) -> Option<Vec<ContentHash>> {
    let mut proof = Vec::new();
    let (mut offset, mut n, mut i) = (0usize, leaves, index);
    while n > 1 {
        let sibling = i ^ 1;
        if sibling < n {
            let at = (offset + sibling) * 32;
            proof.push(ContentHash(bytes.get(at..at + 32)?.try_into().ok()?));
        }
        offset += n;
        n = n.div_ceil(2);
        i /= 2;
    }
    (bytes.len() == (offset + n) * 32).then_some(proof)
}

fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .expect("every column family is opened or the open fails")
}

/// Makes [`Error::Corrupt`]s for the ledger at `path`.
fn corrupt_at(path: &Path) -> impl Fn(String) -> Error + '_ {
    |reason| Error::Corrupt {
        path: path.to_owned(),
        reason,
    }
}

/// Makes [`Error::Db`]s for the ledger at `path`.
fn dberr_at(path: &Path) -> impl Fn(rocksdb::Error) -> Error + '_ {
    |source| Error::Db {
        path: path.to_owned(),
        source,
    }
}

fn all_empty(db: &DB) -> bool {
    store::COLUMN_FAMILIES.iter().all(|name| {
        db.iterator_cf(cf(db, name), IteratorMode::Start)
            .next()
            .is_none()
    })
}

/// Writes the header records and the signed genesis block in one write.
fn init(db: &DB, path: &Path, distributor: &SecretKey, opts: &WriteOptions) -> Result<()> {
    let genesis = BlockHeader {
        version: HEADER_VERSION,
        height: 0,
        prev_hash: ContentHash([0; 32]),
        timestamp: Timestamp::now(),
        tx_count: 0,
        tx_root: merkle::empty_root(),
        balance_root: merkle::empty_root(),
        account_count: 0,
        distributor: distributor.public(),
    }
    .sign(distributor);
    let mut batch = WriteBatch::default();
    batch.put_cf(cf(db, store::CF_META), store::META_MAGIC, store::MAGIC);
    batch.put_cf(
        cf(db, store::CF_META),
        store::META_DISTRIBUTOR,
        distributor.public().0,
    );
    batch.put_cf(
        cf(db, store::CF_META),
        store::META_NEXT_SEQ,
        0u64.to_be_bytes(),
    );
    batch.put_cf(
        cf(db, store::CF_BLOCKS),
        store::height_key(0),
        genesis.encode(),
    );
    batch.put_cf(cf(db, store::CF_TREES), store::height_key(0), []);
    db.write_opt(batch, opts).map_err(|source| Error::Db {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Credit;
    use protocol::BatchId;

    fn distributor() -> SecretKey {
        SecretKey::from_seed([3; 32])
    }

    /// A ledger with three blocks of credits (and a payout binding) and two pending credits.
    fn sample(dir: &Path) -> Ledger {
        let config = LedgerConfig {
            sync: FsyncPolicy::Never,
            max_block_txs: 3,
            max_block_age_ms: 1000,
        };
        let mut l = Ledger::open(dir.join("l"), &distributor(), config).unwrap();
        let key = SecretKey::from_seed([9; 32]);
        let txs: Vec<Tx> = (0..8u32)
            .map(|i| {
                let job = JobId::new(BatchId(1), i);
                Tx::Credit(Credit::new(
                    key.public(),
                    job,
                    10,
                    ContentHash::of(&i.to_le_bytes()),
                ))
            })
            .collect();
        l.append(&txs[..6]).unwrap();
        let binding = protocol::PayoutBinding::signed(&key, protocol::PayoutAddress([7; 20]), 1);
        l.append(&[Tx::BindPayout(crate::BindPayout {
            prover: key.public(),
            binding,
        })])
        .unwrap();
        l.maybe_cut_blocks(Timestamp::now()).unwrap();
        l.cut_block().unwrap();
        l.append(&txs[6..]).unwrap();
        assert_eq!((l.height(), l.pending_len()), (3, 2));
        l.verify_chain().unwrap();
        l
    }

    fn fault_height(l: &Ledger) -> u64 {
        match l.verify_chain() {
            Err(Error::InvalidChain { height, .. }) => height,
            other => panic!("tampering went unnoticed: {other:?}"),
        }
    }

    #[test]
    fn a_credit_is_read_back_whether_in_a_block_or_pending() {
        let dir = tempfile::tempdir().unwrap();
        let l = sample(dir.path());
        for (i, where_) in [(0u32, "in a block"), (7, "pending")] {
            let job = JobId::new(BatchId(1), i);
            let credit = l.credit(job).unwrap().unwrap_or_else(|| panic!("{where_}"));
            assert_eq!((credit.job, credit.amount), (job, 10), "{where_}");
            assert_eq!(credit.proof_hash, ContentHash::of(&i.to_le_bytes()));
        }
        assert_eq!(l.credit(JobId::new(BatchId(9), 0)).unwrap(), None);
    }

    #[test]
    fn verify_chain_names_the_first_bad_height() {
        let dir = tempfile::tempdir().unwrap();
        let l = sample(dir.path());
        let txs = l.cf(store::CF_TXS);

        // a credit's amount changed in block 2
        let key = store::tx_key(2, 1);
        let original = l.db.get_cf(txs, key).unwrap().unwrap();
        let Tx::Credit(mut c) = Tx::decode(&original).unwrap() else {
            panic!()
        };
        c.amount += 1;
        l.db.put_cf(txs, key, Tx::Credit(c).encode()).unwrap();
        assert_eq!(fault_height(&l), 2);
        l.db.put_cf(txs, key, &original).unwrap();
        l.verify_chain().unwrap();

        // a transaction dropped from block 1 (a partial block)
        let key = store::tx_key(1, 2);
        let original = l.db.get_cf(txs, key).unwrap().unwrap();
        l.db.delete_cf(txs, key).unwrap();
        assert_eq!(fault_height(&l), 1);
        l.db.put_cf(txs, key, &original).unwrap();

        // a header re-signed by another key
        let blocks = l.cf(store::CF_BLOCKS);
        let original = l.db.get_cf(blocks, store::height_key(2)).unwrap().unwrap();
        let header = SignedHeader::decode(&original).unwrap().header;
        let forged = header.sign(&SecretKey::from_seed([4; 32]));
        l.db.put_cf(blocks, store::height_key(2), forged.encode())
            .unwrap();
        assert_eq!(fault_height(&l), 2);
        l.db.put_cf(blocks, store::height_key(2), &original)
            .unwrap();

        // a stored balance changed behind the chain's back
        let balances = l.cf(store::CF_BALANCES);
        let who = SecretKey::from_seed([9; 32]).public().0;
        let original = l.db.get_cf(balances, who).unwrap().unwrap();
        let mut account: Account = codec::decode(&original, 64).unwrap();
        account.balance += 1000;
        l.db.put_cf(balances, who, codec::encode(&account)).unwrap();
        assert_eq!(fault_height(&l), 3);
        l.db.put_cf(balances, who, &original).unwrap();

        // a pending credit whose job is also in a block
        let pending = l.cf(store::CF_PENDING);
        let first = l.pending[0].0;
        let mut entry = l.pending[0].1.clone();
        let Tx::Credit(c) = &mut entry.tx else {
            panic!()
        };
        c.job = JobId::new(BatchId(1), 0);
        l.db.put_cf(pending, store::height_key(first), codec::encode(&entry))
            .unwrap();
        assert_eq!(fault_height(&l), 4);
        l.db.put_cf(
            pending,
            store::height_key(first),
            codec::encode(&l.pending[0].1),
        )
        .unwrap();

        // a damaged stored Merkle tree
        let trees = l.cf(store::CF_TREES);
        let original = l.db.get_cf(trees, store::height_key(1)).unwrap().unwrap();
        let mut bad = original.clone();
        bad[32 + 5] ^= 1; // leaf 1: a sibling on leaf 0's proof
        l.db.put_cf(trees, store::height_key(1), &bad).unwrap();
        assert_eq!(fault_height(&l), 1);
        assert!(matches!(
            l.receipt(JobId::new(BatchId(1), 0)),
            Err(Error::Corrupt { .. })
        ));
        l.db.put_cf(trees, store::height_key(1), &original).unwrap();

        // a block removed from the middle
        l.db.delete_cf(blocks, store::height_key(1)).unwrap();
        assert_eq!(fault_height(&l), 1);
    }

    #[test]
    fn reopen_restores_pending_balances_and_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed([9; 32]);
        let (balance, account) = {
            let l = sample(dir.path());
            (l.balance(&key.public()), l.account(&key.public()))
        };
        let config = LedgerConfig {
            max_block_txs: 3,
            ..LedgerConfig::default()
        };
        let l = Ledger::open(dir.path().join("l"), &distributor(), config).unwrap();
        assert_eq!(l.balance(&key.public()), balance);
        assert_eq!(l.account(&key.public()), account);
        assert_eq!((l.height(), l.pending_len()), (3, 2));
        assert_eq!(l.committed_balance(&key.public()), 6 * 10);
        assert_eq!(account.payout, protocol::PayoutAddress([7; 20]));
    }

    #[test]
    fn stored_tree_proofs_match_the_tree() {
        for n in 1..30usize {
            let leaves: Vec<ContentHash> = (0..n as u32)
                .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
                .collect();
            let tree = MerkleTree::from_leaves(leaves);
            let bytes = tree.to_bytes();
            for i in 0..n {
                assert_eq!(tree_proof(&bytes, n, i), tree.proof(i));
            }
            assert_eq!(tree_proof(&bytes[..bytes.len() - 32], n, 0), None);
        }
    }
}
