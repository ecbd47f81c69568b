//! Seeded generator of realistic transfer batches: many accounts, skewed
//! activity (a few accounts send most transfers), amounts within balance.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::circuit::CircuitConfig;
use crate::eddsa::EddsaSecretKey;
use crate::error::Result;
use crate::rollup::Rollup;
use crate::workload::{Account, SignedTransfer, Transfer};

/// Makes accounts and signed transfers from a seed; same seed, same batches.
#[derive(Debug)]
pub struct TxGenerator {
    rng: StdRng,
    seed: u64,
    accounts: u32,
    /// Activity skew: sender = floor(n · u^skew), u uniform in [0, 1). 1 is
    /// uniform; 3 makes the first 10% of accounts send about 46% of transfers.
    skew: f64,
    keys: HashMap<u32, EddsaSecretKey>,
}

impl TxGenerator {
    /// A generator over `accounts` accounts with the default skew (3).
    pub fn new(seed: u64, accounts: u32) -> Self {
        Self::with_skew(seed, accounts, 3.0)
    }

    /// A generator with an explicit activity skew (≥ 1).
    pub fn with_skew(seed: u64, accounts: u32, skew: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            seed,
            accounts: accounts.max(2),
            skew: skew.max(1.0),
            keys: HashMap::new(),
        }
    }

    /// The signing key of account `index`, derived from the seed.
    pub fn key(&mut self, index: u32) -> &EddsaSecretKey {
        let seed = self.seed;
        self.keys.entry(index).or_insert_with(|| {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s[8..12].copy_from_slice(&index.to_le_bytes());
            EddsaSecretKey::from_seed(s)
        })
    }

    /// A state with every account funded with `balance`.
    pub fn genesis(&mut self, config: CircuitConfig, balance: u64) -> Result<Rollup> {
        let keys: Vec<EddsaSecretKey> = (0..self.accounts).map(|i| self.key(i).clone()).collect();
        let accounts = EddsaSecretKey::publics(&keys)
            .into_iter()
            .map(|pubkey| Account {
                pubkey,
                balance,
                nonce: 0,
            })
            .collect();
        Rollup::from_accounts(config, accounts)
    }

    /// `n` valid transfers against `state` (valid in order, within the batch).
    /// Accounts unknown to `state` are never used.
    pub fn batch(&mut self, state: &Rollup, n: usize) -> Vec<SignedTransfer> {
        let live = (self.accounts as usize).min(state.num_accounts()) as u32;
        let mut local: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut out = Vec::with_capacity(n);
        let mut attempts = 0usize;
        while out.len() < n && live >= 2 && attempts < n * 20 {
            attempts += 1;
            let u: f64 = self.rng.r#gen();
            let from = ((live as f64) * u.powf(self.skew)) as u32 % live;
            let mut to = self.rng.gen_range(0..live - 1);
            if to >= from {
                to += 1;
            }
            let view = |i: u32, local: &HashMap<u32, (u64, u64)>| {
                local.get(&i).copied().unwrap_or_else(|| {
                    let a = state.account(i).expect("index below num_accounts");
                    (a.balance, a.nonce)
                })
            };
            let (bal, nonce) = view(from, &local);
            if bal < 2 {
                continue;
            }
            let amount = self.rng.gen_range(1..=(bal / 20).max(1));
            let fee = self.rng.gen_range(0..=(bal - amount).min(10));
            let (rbal, rnonce) = view(to, &local);
            let Some(new_rbal) = rbal.checked_add(amount) else {
                continue;
            };
            let tx = Transfer {
                from,
                to,
                amount,
                fee,
                nonce,
            };
            out.push(tx.sign(self.key(from)));
            local.insert(from, (bal - amount - fee, nonce + 1));
            local.insert(to, (new_rbal, rnonce));
        }
        out
    }
}
