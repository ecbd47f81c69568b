//! The transfer rollup's data: accounts, transfers, and the rules every
//! transfer must obey (shared by the batch builder and the witness checker).

use ark_ed_on_bn254::{EdwardsAffine, Fr as JubFr};
use ark_ff::{PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use serde::{Deserialize, Serialize};

use crate::eddsa::{EddsaPublicKey, EddsaSecretKey, EddsaSignature};
use crate::error::Rule;
use crate::poseidon::{self, F};

/// One account: leaf = `poseidon(pk.x, pk.y, balance, nonce)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AccountWire", into = "AccountWire")]
pub struct Account {
    /// The owner's signing key.
    pub pubkey: EddsaPublicKey,
    /// Spendable balance.
    pub balance: u64,
    /// Number of transfers sent so far; the next transfer must carry it.
    pub nonce: u64,
}

impl Account {
    /// The account's Merkle leaf.
    pub fn leaf(&self) -> F {
        let (x, y) = self.pubkey.xy();
        poseidon::hash(&[x, y, F::from(self.balance), F::from(self.nonce)])
    }
}

/// Serialized form of an [`Account`]: the key compressed.
#[derive(Serialize, Deserialize)]
pub(crate) struct AccountWire {
    pubkey: [u8; 32],
    balance: u64,
    nonce: u64,
}

impl From<Account> for AccountWire {
    fn from(a: Account) -> Self {
        Self {
            pubkey: a.pubkey.to_bytes(),
            balance: a.balance,
            nonce: a.nonce,
        }
    }
}

impl TryFrom<AccountWire> for Account {
    type Error = String;
    fn try_from(w: AccountWire) -> Result<Self, String> {
        let pubkey = EddsaPublicKey::from_bytes(&w.pubkey)
            .ok_or_else(|| "account key is not a valid subgroup point".to_string())?;
        Ok(w.with_key(pubkey))
    }
}

impl AccountWire {
    /// The account, its key parsed as one this node checked when it took
    /// it in ([`EddsaPublicKey::from_checked_bytes`]).
    pub(crate) fn into_checked(self) -> Result<Account, String> {
        let pubkey = EddsaPublicKey::from_checked_bytes(&self.pubkey)
            .ok_or_else(|| "account key is not a curve point".to_string())?;
        Ok(self.with_key(pubkey))
    }

    fn with_key(&self, pubkey: EddsaPublicKey) -> Account {
        Account {
            pubkey,
            balance: self.balance,
            nonce: self.nonce,
        }
    }
}

/// An unsigned transfer between two account indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    /// Sender's account index.
    pub from: u32,
    /// Receiver's account index.
    pub to: u32,
    /// Amount moved to the receiver.
    pub amount: u64,
    /// Fee taken from the sender, collected by the operator.
    pub fee: u64,
    /// Must equal the sender's current nonce.
    pub nonce: u64,
}

impl Transfer {
    /// The signed message `poseidon(from, to, amount, fee, nonce)`.
    pub fn message(&self) -> F {
        poseidon::hash(&[
            F::from(self.from as u64),
            F::from(self.to as u64),
            F::from(self.amount),
            F::from(self.fee),
            F::from(self.nonce),
        ])
    }

    /// Signs the transfer.
    pub fn sign(self, key: &EddsaSecretKey) -> SignedTransfer {
        SignedTransfer {
            sig: key.sign(self.message()),
            tx: self,
        }
    }
}

/// A transfer with its sender's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SignedTransferWire", into = "SignedTransferWire")]
pub struct SignedTransfer {
    /// The transfer.
    pub tx: Transfer,
    /// EdDSA signature on [`Transfer::message`].
    pub sig: EddsaSignature,
}

/// Serialized form of a [`SignedTransfer`]: the signature as compressed `R`
/// and little-endian `s`.
#[derive(Serialize, Deserialize)]
pub(crate) struct SignedTransferWire {
    pub(crate) tx: Transfer,
    pub(crate) sig_r: [u8; 32],
    pub(crate) sig_s: [u8; 32],
}

impl From<SignedTransfer> for SignedTransferWire {
    fn from(s: SignedTransfer) -> Self {
        let (sig_r, sig_s) = signature_to_bytes(&s.sig);
        Self {
            tx: s.tx,
            sig_r,
            sig_s,
        }
    }
}

impl TryFrom<SignedTransferWire> for SignedTransfer {
    type Error = String;
    fn try_from(w: SignedTransferWire) -> Result<Self, String> {
        Ok(Self {
            tx: w.tx,
            sig: signature_from_bytes(&w.sig_r, &w.sig_s)?,
        })
    }
}

/// Encodes a signature as (compressed R, canonical little-endian s).
pub(crate) fn signature_to_bytes(sig: &EddsaSignature) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    sig.r
        .serialize_compressed(&mut r[..])
        .expect("32-byte point");
    sig.s
        .serialize_compressed(&mut s[..])
        .expect("32-byte scalar");
    (r, s)
}

/// Decodes a signature; `R` must be a subgroup point, `s` canonical.
pub(crate) fn signature_from_bytes(r: &[u8; 32], s: &[u8; 32]) -> Result<EddsaSignature, String> {
    let r = EdwardsAffine::deserialize_compressed(&r[..])
        .map_err(|e| format!("signature R is not a subgroup point: {e}"))?;
    let s = JubFr::deserialize_compressed(&s[..])
        .map_err(|e| format!("signature s is not a canonical scalar: {e}"))?;
    Ok(EddsaSignature { r, s })
}

/// Decodes a canonical little-endian field element.
pub(crate) fn field_from_bytes(bytes: &[u8; 32]) -> Option<F> {
    let f = F::from_le_bytes_mod_order(bytes);
    (field_to_bytes(&f) == *bytes).then_some(f)
}

/// Encodes a field element as 32 little-endian bytes.
pub(crate) fn field_to_bytes(f: &F) -> [u8; 32] {
    let mut out = [0u8; 32];
    f.serialize_compressed(&mut out[..])
        .expect("32-byte field element");
    out
}

/// Applies the sender's side of a transfer: signature, nonce, balance ≥
/// amount + fee, nonce overflow. Returns the updated sender.
pub fn debit(sender: &Account, st: &SignedTransfer) -> Result<Account, Rule> {
    let tx = &st.tx;
    if !sender.pubkey.verify(tx.message(), &st.sig) {
        return Err(Rule::BadSignature);
    }
    if tx.nonce != sender.nonce {
        return Err(Rule::WrongNonce);
    }
    let spend = tx.amount as u128 + tx.fee as u128;
    if spend > sender.balance as u128 {
        return Err(Rule::InsufficientBalance);
    }
    let nonce = sender.nonce.checked_add(1).ok_or(Rule::NonceOverflow)?;
    Ok(Account {
        balance: sender.balance - spend as u64,
        nonce,
        ..*sender
    })
}

/// Applies the receiver's side of a transfer; rejects overflow.
pub fn credit(receiver: &Account, amount: u64) -> Result<Account, Rule> {
    let balance = receiver
        .balance
        .checked_add(amount)
        .ok_or(Rule::BalanceOverflow)?;
    Ok(Account {
        balance,
        ..*receiver
    })
}

/// Commitment to a chunk's transfers: `c_0 = 0`, `c_{i+1} = poseidon(c_i,
/// message_i)`. The distributor recomputes it from the transfers it batched.
pub fn tx_commitment<'a>(txs: impl IntoIterator<Item = &'a Transfer>) -> F {
    txs.into_iter()
        .fold(F::zero(), |c, tx| poseidon::hash(&[c, tx.message()]))
}
