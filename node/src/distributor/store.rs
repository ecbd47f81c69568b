//! The distributor's durable job store, on RocksDB and apart from the ledger:
//! batches, jobs with their witnesses (until their batch is proven) and
//! winning proofs, the rollup state,
//! and the scheduler's event log. What the distributor needs to resume after
//! a crash lives here. Writes are groups of [`Change`]s committed atomically
//! ([`JobStore::commit`]); only the journal thread writes, everyone reads.
//!
//! Column families and key layout stay inside this file:
//! - `meta`: `state` → rollup state bytes; `magic` → format tag;
//!   `pinned` → the [`Pinned`] settings the log is written under;
//!   `snapshot` → the scheduler's last [`Snapshot`]; `compacted` → the
//!   sequence number of the first event after it (the events before it are
//!   deleted);
//! - `batches`: batch id (u64 BE) → [`BatchRecord`];
//! - `jobs`: batch id (u64 BE) ‖ index (u32 BE) → [`JobRecord`];
//! - `winners`: the same key → [`WinnerRecord`], written with the job's
//!   winning proof: who won it and the proof's hash, read on the run loop
//!   without decoding the job's witness;
//! - `events`: sequence (u64 BE) → [`LrpEvent`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use protocol::codec;
use protocol::lrp::{
    LrpConfig, LrpConfigV5, LrpConfigV6, LrpEvent, LrpSnapshot, LrpSnapshotV3, ReservePolicy,
};
use protocol::{BatchId, ContentHash, JobId, PublicKey, RequestId, Timestamp};
use prover_core::PublicSignals;
use prover_core::witness::{PublicInputs, Root};
use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize};

use super::history::ProverStats;
use thiserror::Error;

const CF_META: &str = "meta";
const CF_BATCHES: &str = "batches";
const CF_JOBS: &str = "jobs";
const CF_EVENTS: &str = "events";
const CF_WINNERS: &str = "winners";
const CF_STATEMENTS: &str = "statements";
const FAMILIES: [&str; 6] = [
    CF_META,
    CF_BATCHES,
    CF_JOBS,
    CF_EVENTS,
    CF_WINNERS,
    CF_STATEMENTS,
];
const MAGIC_KEY: &[u8] = b"magic";
/// The format tag. v2: the scheduler applies probation (`protocol::lrp`), so
/// a v1 log would replay to other decisions than its provers were told, and
/// its snapshot lacks the accepted-proof counts. v3: a job's public inputs
/// are [`PublicSignals`] (transfer inputs or circom signals); a v2 store is
/// migrated when opened. v4: the scheduler learns job times (its knobs
/// gained a policy, its snapshot the learnt times); a v3 store is migrated
/// to the `lrp` policy it was written under, so its log replays as before.
/// v5: every completed job has a [`WinnerRecord`]; a v4 store's are written
/// from its job records when opened. v6: the scheduler bounds what new keys
/// hold and leave ([`LrpConfig::probation_hold_ms`],
/// [`LrpConfig::max_stale_probation_holders`],
/// [`LrpConfig::forget_struck_newcomers`]), and every job's statement is
/// indexed ([`JobStore::statement`]); a v5 store is migrated with those
/// knobs off, the rule its log was written under, and its jobs indexed.
/// v7: the crowd's typical job time learns only from trusted provers
/// ([`LrpConfig::median_from_trusted_only`]); a v6 (or older) store is
/// migrated with it off, so its log replays to the decisions it made.
const MAGIC: &[u8] = b"crowdprove-jobs-v7";
const MAGIC_V6: &[u8] = b"crowdprove-jobs-v6";
const MAGIC_V5: &[u8] = b"crowdprove-jobs-v5";
const MAGIC_V4: &[u8] = b"crowdprove-jobs-v4";
const MAGIC_V3: &[u8] = b"crowdprove-jobs-v3";
const MAGIC_V2: &[u8] = b"crowdprove-jobs-v2";
const MAGIC_V1: &[u8] = b"crowdprove-jobs-v1";
const STATE_KEY: &[u8] = b"state";
const SNAPSHOT_KEY: &[u8] = b"snapshot";
const COMPACTED_KEY: &[u8] = b"compacted";
const PINNED_KEY: &[u8] = b"pinned";
const PINNED_VK_KEY: &[u8] = b"pinned-verifying-key";
/// Largest snapshot decoded (open batches' jobs and every prover's counters).
const MAX_SNAPSHOT: usize = 256 << 20;
/// Largest record decoded from the store (a job with the longest witness
/// the network carries).
const MAX_RECORD: usize = protocol::messages::MAX_WITNESS_BYTES as usize + (4 << 20);

/// Job store errors. Each names the store's path.
#[derive(Debug, Error)]
pub enum StoreError {
    /// RocksDB failed (disk full, permissions, another process holds the lock).
    #[error("job store {path}: {cause}")]
    Db {
        /// The store's folder.
        path: PathBuf,
        /// The RocksDB error (in the message, not a second link of the
        /// chain: printed once).
        cause: rocksdb::Error,
    },
    /// A record does not decode or a needed one is missing.
    #[error("job store {path} is corrupt: {what}")]
    Corrupt {
        /// The store's folder.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The store was written by an earlier CrowdProve whose scheduler would
    /// replay its log to other decisions.
    #[error(
        "job store {path} was written by an earlier CrowdProve (its scheduler had no probation); \
         finish its open batches with that version, or start this one on a new data dir"
    )]
    Outdated {
        /// The store's folder.
        path: PathBuf,
    },
}

/// Job store results.
pub type Result<T> = std::result::Result<T, StoreError>;

/// One batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Its id.
    pub id: BatchId,
    /// State root before it.
    pub old_root: Root,
    /// State root after it.
    pub new_root: Root,
    /// How many jobs it was cut into.
    pub jobs: u32,
    /// Transactions applied.
    pub txs: u32,
    /// When it was cut.
    pub created: Timestamp,
    /// When its batch proof checked, once it has.
    pub proven: Option<Timestamp>,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The public inputs its proof must verify against.
    pub public: PublicSignals,
    /// The witness bytes sent to provers; empty once the job's batch is
    /// proven ([`Change::DropWitnesses`]).
    pub witness: Vec<u8>,
    /// The winning proof, once there is one.
    pub done: Option<DoneRecord>,
}

/// How a job was completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    /// The paid prover.
    pub prover: PublicKey,
    /// The hand-out it answered.
    pub request: RequestId,
    /// The proof bytes.
    pub proof: Vec<u8>,
    /// When it arrived.
    pub at: Timestamp,
}

/// Who won a job, kept apart from its [`JobRecord`] (whose witness may be
/// a mebibyte): what a submission for a job the scheduler forgot is judged
/// by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinnerRecord {
    /// The paid prover.
    pub prover: PublicKey,
    /// The hand-out it answered.
    pub request: RequestId,
    /// The winning proof's hash: the one in its ledger credit.
    pub proof_hash: ContentHash,
}

impl WinnerRecord {
    /// The record of `done`.
    pub fn of(done: &DoneRecord) -> Self {
        Self {
            prover: done.prover,
            request: done.request,
            proof_hash: ContentHash::of(&done.proof),
        }
    }
}

/// The settings a log is written under: replaying it with others would
/// judge the same proofs differently, so they are stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// The scheduler's knobs.
    pub scheduler: LrpConfig,
    /// Ledger units paid per accepted proof.
    pub reward_per_job: u64,
}

/// [`Pinned`] as stores of formats 4 and 5 hold it.
#[derive(Debug, Serialize, Deserialize)]
struct PinnedV5 {
    scheduler: LrpConfigV5,
    reward_per_job: u64,
}

/// [`Pinned`] as stores of format 6 hold it.
#[derive(Debug, Serialize, Deserialize)]
struct PinnedV6 {
    scheduler: LrpConfigV6,
    reward_per_job: u64,
}

/// The scheduler's state at a point of its log: the LRP's and the
/// per-prover counters. With it stored, the events before that point go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The LRP state.
    pub lrp: LrpSnapshot,
    /// Per-prover counters.
    pub provers: Vec<(PublicKey, ProverStats)>,
}

/// One change to the store; a group of them commits atomically.
#[derive(Debug, Clone)]
pub enum Change {
    /// A scheduler event, appended to the log.
    Event(LrpEvent),
    /// A new batch: its record, its jobs and the rollup state after it.
    NewBatch {
        /// The batch.
        record: BatchRecord,
        /// Its jobs, in index order.
        jobs: Vec<JobRecord>,
        /// The rollup state once it is applied (none for a circom circuit,
        /// which has no state).
        state_after: Option<Vec<u8>>,
    },
    /// A batch record rewritten (marked proven).
    Batch(BatchRecord),
    /// A job record rewritten (its winning proof); its [`WinnerRecord`] is
    /// written with it.
    Job(JobId, JobRecord),
    /// A proven batch's jobs lose their witnesses (nothing reads them once
    /// the batch is proven: its proofs, public inputs and winners stay), so
    /// the store grows by proofs, not witnesses.
    DropWitnesses(BatchId, u32),
    /// The scheduler's state after every event before this change: stored,
    /// and the events it covers deleted (log compaction).
    Snapshot(Box<Snapshot>),
}

/// The store.
pub struct JobStore {
    db: DB,
    path: PathBuf,
    /// Where the log stands; held across a commit.
    log: Mutex<LogPosition>,
}

/// The event log's extent.
#[derive(Debug, Clone, Copy, Default)]
struct LogPosition {
    /// The sequence number of the next event.
    next: u64,
    /// The first event after the last snapshot (those before are deleted).
    compacted: u64,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore")
            .field("path", &self.path)
            .finish()
    }
}

fn batch_key(batch: BatchId) -> [u8; 8] {
    batch.0.to_be_bytes()
}

/// The statement a job's proof proves: its public signals, hashed. Two jobs
/// with one statement are proven by one proof.
pub fn statement_of(public: &PublicSignals) -> ContentHash {
    ContentHash::of(&codec::encode(public))
}

fn job_key(job: JobId) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&job.batch.0.to_be_bytes());
    key[8..].copy_from_slice(&job.index.to_be_bytes());
    key
}

impl JobStore {
    /// Opens the store at `path`, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let families = FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db =
            DB::open_cf_descriptors(&opts, &path, families).map_err(|cause| StoreError::Db {
                path: path.clone(),
                cause,
            })?;
        let store = Self {
            db,
            path,
            log: Mutex::new(LogPosition::default()),
        };
        match store.get_raw(CF_META, MAGIC_KEY)? {
            None => store.put_meta(MAGIC_KEY, MAGIC)?,
            Some(m) if m == MAGIC => {}
            Some(m) if m == MAGIC_V6 => store.migrate_v6()?,
            Some(m) if m == MAGIC_V5 => store.migrate_v5()?,
            Some(m) if m == MAGIC_V4 => {
                store.migrate_v4()?;
                store.migrate_v5()?;
            }
            Some(m) if m == MAGIC_V3 => {
                store.migrate_v3()?;
                store.migrate_v4()?;
                store.migrate_v5()?;
            }
            Some(m) if m == MAGIC_V2 => {
                store.migrate_v2()?;
                store.migrate_v3()?;
                store.migrate_v4()?;
                store.migrate_v5()?;
            }
            Some(m) if m == MAGIC_V1 => return Err(StoreError::Outdated { path: store.path }),
            Some(_) => return Err(store.corrupt("not a CrowdProve job store (bad magic)")),
        }
        let compacted = match store.get_raw(CF_META, COMPACTED_KEY)? {
            None => 0,
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| store.corrupt("the compaction mark is not 8 bytes"))?,
            ),
        };
        // Every event may be compacted away: the next one still comes after.
        let next = store.last_event_seq()?.map_or(0, |s| s + 1).max(compacted);
        *store.log.lock().expect("store lock") = LogPosition { next, compacted };
        Ok(store)
    }

    /// Rewrites a v2 store's jobs, whose public inputs were the transfer
    /// circuit's, as v3 records, and the tag with them in one atomic write.
    fn migrate_v2(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct JobRecordV2 {
            public: PublicInputs,
            witness: Vec<u8>,
            done: Option<DoneRecord>,
        }
        let mut batch = WriteBatch::default();
        let mut jobs = 0usize;
        for item in self.db.iterator_cf(self.cf(CF_JOBS), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            let old: JobRecordV2 = codec::decode_stored(&value, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("v2 job record: {e}")))?;
            let record = JobRecord {
                public: PublicSignals::Transfer(old.public),
                witness: old.witness,
                done: old.done,
            };
            batch.put_cf(self.cf(CF_JOBS), key, codec::encode(&record));
            jobs += 1;
        }
        batch.put_cf(self.cf(CF_META), MAGIC_KEY, MAGIC_V3);
        self.write(batch, true)?;
        tracing::info!(target: "distributor", jobs, path = %self.path.display(), "migrated the job store from format v2 to v3");
        Ok(())
    }

    /// Rewrites a v3 store's pinned settings (knobs without a policy: the
    /// fixed-age rule, [`ReservePolicy::Lrp`]) and its snapshot (no learnt
    /// job times) in the v4 layout, and the tag with them in one atomic
    /// write. Its log then replays to the decisions it made.
    fn migrate_v3(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct LrpConfigV3 {
            min_reserve_age_ms: u64,
            lease_ms: u64,
            max_live_holders: u32,
            max_held_per_prover: u32,
            strike_cooldown_ms: u64,
            max_strikes: u32,
            max_reserve_scan: u32,
            idle_retry_ms: u64,
            first_request_id: u64,
        }
        #[derive(Deserialize)]
        struct PinnedV3 {
            scheduler: LrpConfigV3,
            reward_per_job: u64,
        }
        #[derive(Deserialize)]
        struct SnapshotV3 {
            lrp: LrpSnapshotV3,
            provers: Vec<(PublicKey, ProverStats)>,
        }
        let mut batch = WriteBatch::default();
        if let Some(bytes) = self.get_raw(CF_META, PINNED_KEY)? {
            let old: PinnedV3 = codec::decode_stored(&bytes, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("v3 pinned settings: {e}")))?;
            let c = old.scheduler;
            let d = LrpConfig::default();
            let pinned = PinnedV5 {
                scheduler: LrpConfigV5 {
                    min_reserve_age_ms: c.min_reserve_age_ms,
                    lease_ms: c.lease_ms,
                    max_live_holders: c.max_live_holders,
                    max_held_per_prover: c.max_held_per_prover,
                    strike_cooldown_ms: c.strike_cooldown_ms,
                    max_strikes: c.max_strikes,
                    max_reserve_scan: c.max_reserve_scan,
                    idle_retry_ms: c.idle_retry_ms,
                    first_request_id: c.first_request_id,
                    policy: ReservePolicy::Lrp,
                    job_time_prior_ms: d.job_time_prior_ms,
                    overdue_percent: d.overdue_percent,
                    backup_percent: d.backup_percent,
                    heartbeat_silence_ms: d.heartbeat_silence_ms,
                    probation_lag_ms: d.probation_lag_ms,
                },
                reward_per_job: old.reward_per_job,
            };
            batch.put_cf(self.cf(CF_META), PINNED_KEY, codec::encode(&pinned));
        }
        if let Some(bytes) = self.get_raw(CF_META, SNAPSHOT_KEY)? {
            let old: SnapshotV3 = codec::decode_stored(&bytes, MAX_SNAPSHOT)
                .map_err(|e| self.corrupt(format!("v3 scheduler snapshot: {e}")))?;
            let snapshot = Snapshot {
                lrp: old.lrp.into(),
                provers: old.provers,
            };
            batch.put_cf(
                self.cf(CF_META),
                SNAPSHOT_KEY,
                codec::encode_stored(&snapshot),
            );
        }
        batch.put_cf(self.cf(CF_META), MAGIC_KEY, MAGIC_V4);
        self.write(batch, true)?;
        tracing::info!(target: "distributor", path = %self.path.display(), "migrated the job store from format v3 to v4 (its scheduler keeps the `lrp` policy it ran)");
        Ok(())
    }

    /// Writes a [`WinnerRecord`] for every completed job of a v4 store, and
    /// the tag with them in one atomic write (once: every job is read).
    fn migrate_v4(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mut winners = 0usize;
        for item in self.db.iterator_cf(self.cf(CF_JOBS), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            let record: JobRecord = codec::decode_stored(&value, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("v4 job record: {e}")))?;
            if let Some(done) = &record.done {
                let winner = WinnerRecord::of(done);
                batch.put_cf(self.cf(CF_WINNERS), key, codec::encode(&winner));
                winners += 1;
            }
        }
        batch.put_cf(self.cf(CF_META), MAGIC_KEY, MAGIC_V5);
        self.write(batch, true)?;
        tracing::info!(target: "distributor", winners, path = %self.path.display(), "migrated the job store from format v4 to v5 (a winner record per completed job)");
        Ok(())
    }

    /// Indexes a v5 store's job statements, rewrites its pinned settings
    /// with the scheduler's newer knobs off (the rule its log was written
    /// under), and the tag with them in one atomic write (once: every job
    /// is read).
    fn migrate_v5(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mut jobs = 0usize;
        // Newest first: of the jobs a statement repeats in (possible before
        // format 6), the oldest is written last and keeps it.
        for item in self.db.iterator_cf(self.cf(CF_JOBS), IteratorMode::End) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            let record: JobRecord = codec::decode_stored(&value, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("v5 job record: {e}")))?;
            batch.put_cf(self.cf(CF_STATEMENTS), statement_of(&record.public).0, key);
            jobs += 1;
        }
        if let Some(bytes) = self.get_raw(CF_META, PINNED_KEY)? {
            let old: PinnedV5 = codec::decode_stored(&bytes, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("v5 pinned settings: {e}")))?;
            let pinned = Pinned {
                scheduler: old.scheduler.into(),
                reward_per_job: old.reward_per_job,
            };
            batch.put_cf(self.cf(CF_META), PINNED_KEY, codec::encode(&pinned));
        }
        batch.put_cf(self.cf(CF_META), MAGIC_KEY, MAGIC);
        self.write(batch, true)?;
        tracing::info!(target: "distributor", jobs, path = %self.path.display(), "migrated the job store from format v5 to v7 (its jobs' statements indexed; its scheduler keeps the rule it ran: probation_hold_ms = 0, max_stale_probation_holders = 0, forget_struck_newcomers = false, median_from_trusted_only = false)");
        Ok(())
    }

    /// Rewrites a v6 store's pinned settings with
    /// [`LrpConfig::median_from_trusted_only`] off (the rule its log was
    /// written under), and the tag with them in one atomic write. A v5
    /// store goes straight to the current format ([`Self::migrate_v5`]).
    fn migrate_v6(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        if let Some(bytes) = self.get_raw(CF_META, PINNED_KEY)? {
            let old: PinnedV6 = codec::decode_stored(&bytes, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("v6 pinned settings: {e}")))?;
            let pinned = Pinned {
                scheduler: old.scheduler.into(),
                reward_per_job: old.reward_per_job,
            };
            batch.put_cf(self.cf(CF_META), PINNED_KEY, codec::encode(&pinned));
        }
        batch.put_cf(self.cf(CF_META), MAGIC_KEY, MAGIC);
        self.write(batch, true)?;
        tracing::info!(target: "distributor", path = %self.path.display(), "migrated the job store from format v6 to v7 (its scheduler keeps the rule it ran: median_from_trusted_only = false)");
        Ok(())
    }

    /// The store's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn db_error(&self, cause: rocksdb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            cause,
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column family opened")
    }

    fn get_raw(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(cf), key)
            .map_err(|e| self.db_error(e))
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        cf: &str,
        key: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Option<T>> {
        match self.get_raw(cf, key)? {
            None => Ok(None),
            Some(bytes) => codec::decode_stored(&bytes, MAX_RECORD)
                .map(Some)
                .map_err(|e| self.corrupt(format!("{}: {e}", what()))),
        }
    }

    fn put_meta(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_cf_opt(self.cf(CF_META), key, value, &synced())
            .map_err(|e| self.db_error(e))
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        let opts = if sync {
            synced()
        } else {
            WriteOptions::default()
        };
        self.db
            .write_opt(batch, &opts)
            .map_err(|e| self.db_error(e))
    }

    fn last_event_seq(&self) -> Result<Option<u64>> {
        let mut iter = self.db.iterator_cf(self.cf(CF_EVENTS), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(Err(e)) => Err(self.db_error(e)),
            Some(Ok((key, _))) => {
                let seq: [u8; 8] = key
                    .as_ref()
                    .try_into()
                    .map_err(|_| self.corrupt("event key is not 8 bytes"))?;
                Ok(Some(u64::from_be_bytes(seq)))
            }
        }
    }

    /// The saved rollup state, if any.
    pub fn rollup_state(&self) -> Result<Option<Vec<u8>>> {
        self.get_raw(CF_META, STATE_KEY)
    }

    /// Saves the genesis rollup state.
    pub fn save_genesis(&self, state: &[u8]) -> Result<()> {
        self.put_meta(STATE_KEY, state)
    }

    /// Writes `changes` in one atomic write, synced to disk if `sync`: a
    /// batch exists whole or not at all, a winning proof is stored with its
    /// completion event, and events keep the order they are given in.
    pub fn commit<'a>(
        &self,
        changes: impl IntoIterator<Item = &'a Change>,
        sync: bool,
    ) -> Result<()> {
        let mut log = self.log.lock().expect("store lock");
        let mut seq = log.next;
        let mut compacted = log.compacted;
        let mut batch = WriteBatch::default();
        let mut rewritten = HashMap::new();
        for change in changes {
            match change {
                Change::Event(event) => {
                    batch.put_cf(self.cf(CF_EVENTS), seq.to_be_bytes(), codec::encode(event));
                    seq += 1;
                }
                Change::NewBatch {
                    record,
                    jobs,
                    state_after,
                } => self.put_new_batch(&mut batch, record, jobs, state_after.as_deref()),
                Change::Batch(record) => {
                    batch.put_cf(
                        self.cf(CF_BATCHES),
                        batch_key(record.id),
                        codec::encode(record),
                    );
                }
                Change::Job(id, record) => {
                    self.put_job(&mut batch, *id, record);
                    rewritten.insert(*id, record);
                }
                Change::DropWitnesses(proven, jobs) => {
                    self.drop_witnesses(&mut batch, *proven, *jobs, &rewritten);
                }
                Change::Snapshot(snapshot) => {
                    batch.put_cf(
                        self.cf(CF_META),
                        SNAPSHOT_KEY,
                        codec::encode_stored(snapshot.as_ref()),
                    );
                    batch.put_cf(self.cf(CF_META), COMPACTED_KEY, seq.to_be_bytes());
                    // Only the events since the last snapshot: the ranges
                    // never overlap, so reads never wade through tombstones.
                    batch.delete_range_cf(
                        self.cf(CF_EVENTS),
                        compacted.to_be_bytes(),
                        seq.to_be_bytes(),
                    );
                    compacted = seq;
                }
            }
        }
        let snapshotted = compacted != log.compacted;
        self.write(batch, sync)?;
        *log = LogPosition {
            next: seq,
            compacted,
        };
        if snapshotted {
            // Write the memtables out, so a restart's WAL replay stays short
            // and the deleted events leave the disk.
            for name in FAMILIES {
                self.db
                    .flush_cf(self.cf(name))
                    .map_err(|e| self.db_error(e))?;
            }
        }
        Ok(())
    }

    /// Adds a new batch to `batch`: its record, its jobs (each with its
    /// statement indexed) and the rollup state after it.
    fn put_new_batch(
        &self,
        batch: &mut WriteBatch,
        record: &BatchRecord,
        jobs: &[JobRecord],
        state_after: Option<&[u8]>,
    ) {
        batch.put_cf(
            self.cf(CF_BATCHES),
            batch_key(record.id),
            codec::encode(record),
        );
        for (index, job) in jobs.iter().enumerate() {
            let id = JobId::new(record.id, index as u32);
            self.put_job(batch, id, job);
            self.index_statement(batch, id, job);
        }
        if let Some(state) = state_after {
            batch.put_cf(self.cf(CF_META), STATE_KEY, state);
        }
    }

    /// Rewrites the `jobs` jobs of `proven` into `batch` without their
    /// witnesses. A job `rewritten` earlier in the same commit is not on
    /// disk yet: its new record is the one kept. A record that cannot be
    /// read keeps its witness: dropping it is housekeeping, and the batch's
    /// proven record must not wait on it.
    fn drop_witnesses(
        &self,
        batch: &mut WriteBatch,
        proven: BatchId,
        jobs: u32,
        rewritten: &HashMap<JobId, &JobRecord>,
    ) {
        for index in 0..jobs {
            let id = JobId::new(proven, index);
            let record = match rewritten.get(&id) {
                Some(&record) => Some(record.clone()),
                None => self.job(id).unwrap_or_else(|e| {
                    tracing::warn!(target: "distributor", job = %id, error = %e, "a proven job's witness is kept: its record cannot be read");
                    None
                }),
            };
            if let Some(record) = record.filter(|r| !r.witness.is_empty()) {
                let record = JobRecord {
                    witness: Vec::new(),
                    ..record
                };
                self.put_job(batch, id, &record);
            }
        }
    }

    /// The job first stored with `statement`, if any ([`statement_of`]):
    /// one point read, whatever the store holds.
    pub fn statement(&self, statement: &ContentHash) -> Result<Option<JobId>> {
        let Some(key) = self.get_raw(CF_STATEMENTS, &statement.0)? else {
            return Ok(None);
        };
        let key: [u8; 12] = key
            .as_slice()
            .try_into()
            .map_err(|_| self.corrupt(format!("statement {}: not a job key", statement.short())))?;
        let batch = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
        let index = u32::from_be_bytes(key[8..].try_into().expect("4 bytes"));
        Ok(Some(JobId::new(BatchId(batch), index)))
    }

    /// Indexes a new job's statement (intake refuses one already indexed).
    fn index_statement(&self, batch: &mut WriteBatch, id: JobId, record: &JobRecord) {
        let statement = statement_of(&record.public);
        batch.put_cf(self.cf(CF_STATEMENTS), statement.0, job_key(id));
    }

    /// Adds `record` to `batch`, and its winner's record if it is done.
    fn put_job(&self, batch: &mut WriteBatch, id: JobId, record: &JobRecord) {
        batch.put_cf(self.cf(CF_JOBS), job_key(id), codec::encode(record));
        if let Some(done) = &record.done {
            let winner = WinnerRecord::of(done);
            batch.put_cf(self.cf(CF_WINNERS), job_key(id), codec::encode(&winner));
        }
    }

    /// The settings the log is written under, if recorded.
    pub fn pinned(&self) -> Result<Option<Pinned>> {
        self.read(CF_META, PINNED_KEY, || "the pinned settings".into())
    }

    /// Records the settings the log is written under from now on.
    pub fn pin(&self, pinned: &Pinned) -> Result<()> {
        self.put_meta(PINNED_KEY, &codec::encode(pinned))
    }

    /// The verifying key the open batches' proofs are judged by, if recorded
    /// (kept apart from [`Pinned`] so stores written before it still open).
    pub fn pinned_verifying_key(&self) -> Result<Option<ContentHash>> {
        match self.get_raw(CF_META, PINNED_VK_KEY)? {
            None => Ok(None),
            Some(bytes) => bytes
                .as_slice()
                .try_into()
                .map(|hash| Some(ContentHash(hash)))
                .map_err(|_| self.corrupt("the pinned verifying key is not 32 bytes")),
        }
    }

    /// Records the verifying key proofs are judged by from now on.
    pub fn pin_verifying_key(&self, key: ContentHash) -> Result<()> {
        self.put_meta(PINNED_VK_KEY, &key.0)
    }

    /// The last snapshot, if any, and the sequence number of the first event
    /// after it.
    pub fn snapshot(&self) -> Result<Option<(u64, Snapshot)>> {
        let compacted = self.log.lock().expect("store lock").compacted;
        match self.get_raw(CF_META, SNAPSHOT_KEY)? {
            None => Ok(None),
            Some(bytes) => codec::decode_stored(&bytes, MAX_SNAPSHOT)
                .map(|snapshot| Some((compacted, snapshot)))
                .map_err(|e| self.corrupt(format!("the scheduler snapshot: {e}"))),
        }
    }

    /// Every logged scheduler event, in order (after a compaction: those
    /// after the snapshot).
    pub fn events(&self) -> Result<Vec<LrpEvent>> {
        self.events_from(0)
    }

    /// The logged scheduler events from sequence number `first` on, in order.
    pub fn events_from(&self, first: u64) -> Result<Vec<LrpEvent>> {
        let mut out = Vec::new();
        let start = first.to_be_bytes();
        let mode = IteratorMode::From(&start, Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_EVENTS), mode) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            let event = codec::decode_stored(&value, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("event {}: {e}", protocol::hex::encode(&key))))?;
            out.push(event);
        }
        Ok(out)
    }

    /// One job.
    pub fn job(&self, job: JobId) -> Result<Option<JobRecord>> {
        self.read(CF_JOBS, &job_key(job), || format!("job {job}"))
    }

    /// Who won `job`, if it is done: a small record, read without the job's
    /// witness. `None` for a job not done and for one that does not exist.
    pub fn winner(&self, job: JobId) -> Result<Option<WinnerRecord>> {
        self.read(CF_WINNERS, &job_key(job), || {
            format!("the winner of job {job}")
        })
    }

    /// Every job of a batch, in index order.
    pub fn batch_jobs(&self, batch: BatchId) -> Result<Vec<JobRecord>> {
        let prefix = batch_key(batch);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_JOBS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let record = codec::decode_stored(&value, MAX_RECORD)
                .map_err(|e| self.corrupt(format!("a job of batch {batch}: {e}")))?;
            out.push(record);
        }
        Ok(out)
    }

    /// One batch.
    pub fn batch(&self, batch: BatchId) -> Result<Option<BatchRecord>> {
        self.read(CF_BATCHES, &batch_key(batch), || format!("batch {batch}"))
    }

    /// The newest `n` batches, oldest of them first.
    pub fn latest_batches(&self, n: usize) -> Result<Vec<BatchRecord>> {
        let mut out = Vec::with_capacity(n);
        for item in self
            .db
            .iterator_cf(self.cf(CF_BATCHES), IteratorMode::End)
            .take(n)
        {
            let (_, value) = item.map_err(|e| self.db_error(e))?;
            out.push(
                codec::decode_stored(&value, MAX_RECORD)
                    .map_err(|e| self.corrupt(format!("a batch record: {e}")))?,
            );
        }
        out.reverse();
        Ok(out)
    }

    /// Every batch, oldest first.
    pub fn batches(&self) -> Result<Vec<BatchRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_BATCHES), IteratorMode::Start)
        {
            let (_, value) = item.map_err(|e| self.db_error(e))?;
            out.push(
                codec::decode_stored(&value, MAX_RECORD)
                    .map_err(|e| self.corrupt(format!("a batch record: {e}")))?,
            );
        }
        Ok(out)
    }
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn root(b: u8) -> Root {
        Root([b; 32])
    }

    fn job(b: u8) -> JobRecord {
        JobRecord {
            public: PublicSignals::Transfer(PublicInputs {
                old_root: root(b),
                new_root: root(b + 1),
                tx_commitment: root(0),
                fees: 0,
            }),
            witness: vec![b; 10],
            done: None,
        }
    }

    #[test]
    fn a_v2_store_is_migrated_and_keeps_its_jobs() {
        #[derive(Serialize)]
        struct JobRecordV2 {
            public: PublicInputs,
            witness: Vec<u8>,
            done: Option<DoneRecord>,
        }
        let dir = tempfile::tempdir().unwrap();
        let id = JobId {
            batch: BatchId(1),
            index: 0,
        };
        let v3 = job(4);
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.put_meta(MAGIC_KEY, MAGIC_V2).unwrap();
            let old = JobRecordV2 {
                public: *v3.public.transfer().unwrap(),
                witness: v3.witness.clone(),
                done: None,
            };
            store
                .db
                .put_cf(store.cf(CF_JOBS), job_key(id), codec::encode(&old))
                .unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.job(id).unwrap(), Some(v3));
        assert_eq!(store.get_raw(CF_META, MAGIC_KEY).unwrap().unwrap(), MAGIC);
    }

    #[test]
    fn a_v3_store_is_migrated_to_the_lrp_policy_it_ran() {
        #[derive(Serialize)]
        struct PinnedV3 {
            scheduler: (u64, u64, u32, u32, u64, u32, u32, u64, u64),
            reward_per_job: u64,
        }
        let dir = tempfile::tempdir().unwrap();
        // A scheduler that learnt nothing yet: its v4 snapshot ends in the
        // six empty new fields (three empty lists, two zero counters, a zero
        // time: 8 zero bytes each), then the node's empty prover list (8
        // more); the v3 bytes are the same without those six.
        let mut lrp = protocol::lrp::Lrp::new(LrpConfig::default()).unwrap();
        lrp.apply(&LrpEvent::Submit {
            jobs: vec![JobId::new(BatchId(1), 0), JobId::new(BatchId(1), 1)],
        });
        let current = Snapshot {
            lrp: lrp.snapshot(),
            provers: Vec::new(),
        };
        let v4 = codec::encode_stored(&current);
        assert_eq!(v4[v4.len() - 56..], [0; 56]);
        let v3 = [&v4[..v4.len() - 56], &[0; 8]].concat();
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.put_meta(MAGIC_KEY, MAGIC_V3).unwrap();
            // min_reserve_age_ms, lease_ms, max_live_holders, ... as v3 wrote them.
            let old = PinnedV3 {
                scheduler: (7_000, 300_000, 3, 2, 60_000, 3, 64, 5_000, 1),
                reward_per_job: 100,
            };
            store.put_meta(PINNED_KEY, &codec::encode(&old)).unwrap();
            store.put_meta(SNAPSHOT_KEY, &v3).unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.get_raw(CF_META, MAGIC_KEY).unwrap().unwrap(), MAGIC);
        let pinned = store.pinned().unwrap().unwrap();
        assert_eq!(pinned.scheduler.policy, ReservePolicy::Lrp);
        assert_eq!(pinned.scheduler.min_reserve_age_ms, 7_000);
        assert_eq!(pinned.scheduler.probation_hold_ms, 0);
        assert!(!pinned.scheduler.median_from_trusted_only);
        assert_eq!(pinned.reward_per_job, 100);
        assert_eq!(store.snapshot().unwrap().unwrap().1, current);
    }

    #[test]
    fn a_v5_store_keeps_the_rule_its_log_was_written_under_and_gets_its_statements_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let d = LrpConfig::default();
        let old = PinnedV5 {
            scheduler: LrpConfigV5 {
                min_reserve_age_ms: 7_000,
                lease_ms: d.lease_ms,
                max_live_holders: d.max_live_holders,
                max_held_per_prover: d.max_held_per_prover,
                strike_cooldown_ms: d.strike_cooldown_ms,
                max_strikes: d.max_strikes,
                max_reserve_scan: d.max_reserve_scan,
                idle_retry_ms: d.idle_retry_ms,
                first_request_id: 41,
                policy: ReservePolicy::Adaptive,
                job_time_prior_ms: 9_000,
                overdue_percent: d.overdue_percent,
                backup_percent: d.backup_percent,
                heartbeat_silence_ms: d.heartbeat_silence_ms,
                probation_lag_ms: d.probation_lag_ms,
            },
            reward_per_job: 100,
        };
        let (id, record) = (JobId::new(BatchId(1), 0), job(4));
        let statement = statement_of(&record.public);
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.put_meta(MAGIC_KEY, MAGIC_V5).unwrap();
            store.put_meta(PINNED_KEY, &codec::encode(&old)).unwrap();
            // A v5 job: stored without an index entry.
            store.commit(&[Change::Job(id, record)], true).unwrap();
            assert_eq!(store.statement(&statement).unwrap(), None);
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.get_raw(CF_META, MAGIC_KEY).unwrap().unwrap(), MAGIC);
        assert_eq!(store.statement(&statement).unwrap(), Some(id), "indexed");
        let pinned = store.pinned().unwrap().unwrap();
        assert_eq!(
            pinned.scheduler,
            LrpConfig {
                min_reserve_age_ms: 7_000,
                first_request_id: 41,
                job_time_prior_ms: 9_000,
                probation_hold_ms: 0,
                max_stale_probation_holders: 0,
                forget_struck_newcomers: false,
                median_from_trusted_only: false,
                ..d
            }
        );
        assert_eq!(pinned.reward_per_job, 100);
        drop(store);
        // Opened again: already current, nothing rewritten.
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.pinned().unwrap().unwrap(), pinned);
    }

    #[test]
    fn a_v6_store_keeps_learning_the_crowds_time_from_every_proof() {
        let dir = tempfile::tempdir().unwrap();
        let d = LrpConfig::default();
        let old = PinnedV6 {
            scheduler: LrpConfigV6 {
                min_reserve_age_ms: 7_000,
                lease_ms: d.lease_ms,
                max_live_holders: d.max_live_holders,
                max_held_per_prover: d.max_held_per_prover,
                strike_cooldown_ms: d.strike_cooldown_ms,
                max_strikes: d.max_strikes,
                max_reserve_scan: d.max_reserve_scan,
                idle_retry_ms: d.idle_retry_ms,
                first_request_id: 41,
                policy: ReservePolicy::Adaptive,
                job_time_prior_ms: d.job_time_prior_ms,
                overdue_percent: d.overdue_percent,
                backup_percent: d.backup_percent,
                heartbeat_silence_ms: d.heartbeat_silence_ms,
                probation_lag_ms: d.probation_lag_ms,
                probation_hold_ms: 12_000,
                max_stale_probation_holders: d.max_stale_probation_holders,
                forget_struck_newcomers: d.forget_struck_newcomers,
            },
            reward_per_job: 100,
        };
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.put_meta(MAGIC_KEY, MAGIC_V6).unwrap();
            store.put_meta(PINNED_KEY, &codec::encode(&old)).unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.get_raw(CF_META, MAGIC_KEY).unwrap().unwrap(), MAGIC);
        let pinned = store.pinned().unwrap().unwrap();
        assert_eq!(
            pinned.scheduler,
            LrpConfig {
                min_reserve_age_ms: 7_000,
                first_request_id: 41,
                probation_hold_ms: 12_000,
                median_from_trusted_only: false,
                ..d
            }
        );
        assert_eq!(pinned.reward_per_job, 100);
        drop(store);
        // Opened again: already current, nothing rewritten.
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.pinned().unwrap().unwrap(), pinned);
    }

    #[test]
    fn a_completed_job_has_a_small_winner_record_and_a_v4_store_gets_them() {
        let dir = tempfile::tempdir().unwrap();
        let prover = protocol::SecretKey::from_seed([1; 32]).public();
        let (won, open) = (JobId::new(BatchId(1), 0), JobId::new(BatchId(1), 1));
        let done = DoneRecord {
            prover,
            request: RequestId(3),
            proof: vec![9; 128],
            at: Timestamp(7),
        };
        let winner = WinnerRecord {
            prover,
            request: RequestId(3),
            proof_hash: ContentHash::of(&[9; 128]),
        };
        let done_job = JobRecord {
            done: Some(done.clone()),
            ..job(1)
        };
        {
            let store = JobStore::open(dir.path()).unwrap();
            store
                .commit(&[Change::Job(won, done_job.clone())], true)
                .unwrap();
            store.commit(&[Change::Job(open, job(2))], true).unwrap();
            assert_eq!(store.winner(won).unwrap(), Some(winner));
            assert_eq!(store.winner(open).unwrap(), None, "not done");
            assert_eq!(store.winner(JobId::new(BatchId(9), 0)).unwrap(), None);
            // As a v4 store was: the job records alone.
            store
                .db
                .delete_cf(store.cf(CF_WINNERS), job_key(won))
                .unwrap();
            store.put_meta(MAGIC_KEY, MAGIC_V4).unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.get_raw(CF_META, MAGIC_KEY).unwrap().unwrap(), MAGIC);
        assert_eq!(store.winner(won).unwrap(), Some(winner), "migrated");
        assert_eq!(store.winner(open).unwrap(), None);
        assert_eq!(store.job(won).unwrap(), Some(done_job));
    }

    /// A proven batch's jobs keep their proofs, public inputs and winners
    /// and lose their witnesses, including a job whose winning proof is
    /// written in the same commit; other batches keep theirs.
    #[test]
    fn a_proven_batchs_witnesses_are_dropped_and_its_proofs_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let done = |job: JobRecord| JobRecord {
            done: Some(DoneRecord {
                prover: protocol::SecretKey::from_seed([1; 32]).public(),
                request: RequestId(3),
                proof: vec![9; 128],
                at: Timestamp(7),
            }),
            ..job
        };
        let (b1, b2) = (BatchId(1), BatchId(2));
        let ids = [JobId::new(b1, 0), JobId::new(b1, 1), JobId::new(b2, 0)];
        store
            .commit(&[Change::Job(ids[0], done(job(1)))], true)
            .unwrap();
        store.commit(&[Change::Job(ids[2], job(3))], true).unwrap();
        let changes = [
            Change::Job(ids[1], done(job(2))),
            Change::DropWitnesses(b1, 3), // a third job that does not exist
        ];
        store.commit(&changes, true).unwrap();
        for (id, from) in [(ids[0], 1), (ids[1], 2)] {
            let expected = JobRecord {
                witness: Vec::new(),
                ..done(job(from))
            };
            assert_eq!(store.job(id).unwrap(), Some(expected), "{id}");
            assert!(store.winner(id).unwrap().is_some(), "{id}");
        }
        assert_eq!(store.job(ids[2]).unwrap(), Some(job(3)), "another batch");
        assert_eq!(store.job(JobId::new(b1, 2)).unwrap(), None, "none made");
    }

    #[test]
    fn the_scheduler_reads_a_forgotten_jobs_winner_without_its_job_record() {
        use super::super::courier::Durable;
        use super::super::journal::Journal;
        use super::super::scheduler::Scheduler;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(dir.path()).unwrap());
        let prover = protocol::SecretKey::from_seed([1; 32]).public();
        let won = JobId::new(BatchId(1), 0);
        let done = DoneRecord {
            prover,
            request: RequestId(3),
            proof: vec![9; 128],
            at: Timestamp(7),
        };
        let record = JobRecord {
            done: Some(done),
            ..job(1)
        };
        store.commit(&[Change::Job(won, record)], true).unwrap();
        // The job record is unreadable (a witness too large to decode, say):
        // the winner's record alone answers.
        store
            .db
            .put_cf(store.cf(CF_JOBS), job_key(won), vec![0xff; 64])
            .unwrap();
        let space = crate::disk::Space::floor(dir.path(), 0);
        let (journal, thread) =
            Journal::start(store.clone(), space, |_: Durable| {}, |e| panic!("{e}")).unwrap();
        let config = LrpConfig::default();
        let mut scheduler = Scheduler::replay(config, None, &[], 100, journal).unwrap();
        assert_eq!(scheduler.winner(won, &store), Some((prover, RequestId(3))));
        assert!(scheduler.is_done(won, &store));
        // A job that never existed: not done, no winner, nothing decoded.
        let never = JobId::new(BatchId(7), 2);
        assert_eq!(scheduler.winner(never, &store), None);
        assert!(!scheduler.is_done(never, &store));
        assert!(!scheduler.holds(never, RequestId(3), &prover));
        scheduler.close_journal();
        drop(scheduler);
        thread.join();
    }

    /// A job record is read back with the store's own ceiling, not the
    /// network's 8 MiB one: a circom job of a million wires holds a 33 MB
    /// witness (a 2^20-constraint SHA-256 was handed out as "not readable
    /// from the store" before).
    #[test]
    fn a_job_whose_witness_is_past_the_network_decode_limit_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = BatchId(1);
        let big = JobRecord {
            witness: vec![7; protocol::codec::MAX_DECODE_BYTES + (1 << 20)],
            ..job(1)
        };
        {
            let store = JobStore::open(dir.path()).unwrap();
            let record = BatchRecord {
                id: b,
                old_root: root(1),
                new_root: root(1),
                jobs: 1,
                txs: 1,
                created: Timestamp(5),
                proven: None,
            };
            let new_batch = Change::NewBatch {
                record,
                jobs: vec![big.clone()],
                state_after: None,
            };
            store.commit(&[new_batch], true).unwrap();
            assert_eq!(store.job(JobId::new(b, 0)).unwrap().as_ref(), Some(&big));
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.job(JobId::new(b, 0)).unwrap(), Some(big));
    }

    #[test]
    fn batches_jobs_and_events_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let prover = protocol::SecretKey::from_seed([1; 32]).public();
        let b = BatchId(1);
        {
            let store = JobStore::open(dir.path()).unwrap();
            assert!(store.rollup_state().unwrap().is_none());
            let record = BatchRecord {
                id: b,
                old_root: root(1),
                new_root: root(3),
                jobs: 2,
                txs: 4,
                created: Timestamp(5),
                proven: None,
            };
            let submit = LrpEvent::Submit {
                jobs: vec![JobId::new(b, 0), JobId::new(b, 1)],
            };
            let new_batch = Change::NewBatch {
                record,
                jobs: vec![job(1), job(2)],
                state_after: Some(b"state-1".to_vec()),
            };
            store
                .commit(&[new_batch, Change::Event(submit)], true)
                .unwrap();
            let request = LrpEvent::Request {
                prover,
                now: Timestamp(6),
            };
            store.commit(&[Change::Event(request)], false).unwrap();
            let done = DoneRecord {
                prover,
                request: RequestId(1),
                proof: vec![9; 128],
                at: Timestamp(7),
            };
            let complete = LrpEvent::Complete {
                job: JobId::new(b, 0),
                request: RequestId(1),
                prover,
                now: Timestamp(7),
            };
            let done_job = JobRecord {
                done: Some(done),
                ..job(1)
            };
            store
                .commit(
                    &[
                        Change::Job(JobId::new(b, 0), done_job),
                        Change::Event(complete),
                    ],
                    true,
                )
                .unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        assert_eq!(store.rollup_state().unwrap().unwrap(), b"state-1");
        assert_eq!(store.events().unwrap().len(), 3);
        let jobs = store.batch_jobs(b).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].done.as_ref().unwrap().prover, prover);
        assert!(jobs[1].done.is_none());
        assert_eq!(store.batches().unwrap()[0].jobs, 2);
        assert!(store.batch_jobs(BatchId(2)).unwrap().is_empty());
    }

    #[test]
    fn a_snapshot_drops_the_events_before_it_and_the_log_goes_on_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let prover = protocol::SecretKey::from_seed([1; 32]).public();
        let request = |at| {
            Change::Event(LrpEvent::Request {
                prover,
                now: Timestamp(at),
            })
        };
        let snapshot = || {
            let lrp = protocol::lrp::Lrp::new(Default::default()).unwrap();
            Change::Snapshot(Box::new(Snapshot {
                lrp: lrp.snapshot(),
                provers: Vec::new(),
            }))
        };
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.commit(&[request(1), request(2)], false).unwrap();
            store.commit(&[snapshot(), request(3)], false).unwrap();
            store.commit(&[request(4), snapshot()], false).unwrap();
            assert_eq!(store.snapshot().unwrap().unwrap().0, 4);
            assert!(store.events().unwrap().is_empty());
        }
        // Reopened with every event compacted away: the next goes after them.
        let store = JobStore::open(dir.path()).unwrap();
        store.commit(&[request(5)], false).unwrap();
        let (first, _) = store.snapshot().unwrap().unwrap();
        let events = store.events_from(first).unwrap();
        assert!(matches!(
            events[..],
            [LrpEvent::Request {
                now: Timestamp(5),
                ..
            }]
        ));
    }

    #[test]
    fn a_foreign_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.put_meta(MAGIC_KEY, b"something-else").unwrap();
        }
        let err = JobStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad magic"), "{err}");
        // A store of the format before probation is named as such.
        let dir = tempfile::tempdir().unwrap();
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.put_meta(MAGIC_KEY, MAGIC_V1).unwrap();
        }
        let err = JobStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("earlier CrowdProve"), "{err}");
    }
}
