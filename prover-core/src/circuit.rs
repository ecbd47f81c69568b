//! Circuit ids, the registry of circuits, and the transfer circuit itself.
//!
//! Per slot `i` of `K` (disabled slots pad a short chunk):
//! 1. sender leaf `H(A.x, A.y, bal, nonce)` hashes up `sender_path` under the
//!    `from` bits to the running root;
//! 2. `tx.nonce == nonce`;
//! 3. EdDSA: `s·B == R + H(R, A, m)·A` with `m = H(from, to, amount, fee, nonce)`;
//! 4. `amount`, `fee` < 2^64; `bal - amount - fee` < 2^64 (so bal ≥ amount + fee);
//!    `nonce + 1` < 2^64;
//! 5. the updated sender leaf over the same path gives the middle root;
//! 6. the receiver leaf hashes up `receiver_path` under the `to` bits to the
//!    middle root; `rbal + amount` < 2^64; the updated leaf gives the new root.
//!
//! Enabled slots advance the root, the commitment `c = H(c, m)` and the fee
//! sum; disabled ones leave all three unchanged. The final values must equal
//! the public inputs.

use std::fmt;
use std::str::FromStr;

use ark_ed_on_bn254::EdwardsAffine;
use ark_ed_on_bn254::constraints::EdwardsVar;
use ark_ff::{One, Zero};
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use protocol::ids::{CircuitId, ContentHash};

use crate::eddsa::{self, SCALAR_BITS};
use crate::error::{Error, Result};
use crate::merkle::{MAX_DEPTH, root_from_path_var};
use crate::poseidon::{self, F};
use crate::witness::{ChunkWitness, PublicInputs};

/// Bits of balances, amounts, fees and nonces.
pub const VALUE_BITS: usize = 64;
/// Most transfers per job accepted in a circuit id.
pub const MAX_TRANSFERS_PER_JOB: u32 = 256;

/// Shape of a transfer circuit: tree depth and transfers per job (K).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircuitConfig {
    /// Depth of the account tree (2^depth accounts).
    pub depth: u32,
    /// Transfers proven per job.
    pub transfers_per_job: u32,
}

impl Default for CircuitConfig {
    /// Depth 20 (a million accounts), K = 8: about 2^18 constraints, 5–30 s to
    /// prove on one core.
    fn default() -> Self {
        Self {
            depth: 20,
            transfers_per_job: 8,
        }
    }
}

impl CircuitConfig {
    /// A checked configuration.
    pub fn new(depth: u32, transfers_per_job: u32) -> Result<Self> {
        if !(1..=MAX_DEPTH).contains(&depth) {
            return Err(Error::Config(format!(
                "depth {depth} is not in 1..={MAX_DEPTH}"
            )));
        }
        if !(1..=MAX_TRANSFERS_PER_JOB).contains(&transfers_per_job) {
            return Err(Error::Config(format!(
                "{transfers_per_job} transfers per job is not in 1..={MAX_TRANSFERS_PER_JOB}"
            )));
        }
        Ok(Self {
            depth,
            transfers_per_job,
        })
    }

    /// The id, e.g. `transfer-d20-k8`.
    pub fn circuit_id(&self) -> CircuitId {
        CircuitId::new(format!(
            "transfer-d{}-k{}",
            self.depth, self.transfers_per_job
        ))
        .expect("transfer ids are valid circuit ids")
    }

    /// Parses `transfer-d<depth>-k<K>`.
    pub fn from_circuit_id(id: &CircuitId) -> Result<Self> {
        let unknown = || Error::UnknownCircuit(id.to_string());
        let rest = id.as_str().strip_prefix("transfer-d").ok_or_else(unknown)?;
        let (d, k) = rest.split_once("-k").ok_or_else(unknown)?;
        // Reject "+1", "01" and the like so each config has one id.
        let num = |s: &str| canonical_u32(s).ok_or_else(unknown);
        Self::new(num(d)?, num(k)?)
    }
}

impl fmt::Display for CircuitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.circuit_id().as_str())
    }
}

impl FromStr for CircuitConfig {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let id = CircuitId::new(s).map_err(|e| Error::UnknownCircuit(e.to_string()))?;
        Self::from_circuit_id(&id)
    }
}

/// A circom circuit, named by its snarkjs zkey: the id
/// `circom-<the zkey's hash, first 16 hex digits>-p<public signals>` says how
/// many public signals its proofs take; the full hash travels with every
/// announcement as the proving key's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircomCircuit {
    /// The first 8 bytes of the zkey's SHA-256.
    pub tag: [u8; 8],
    /// Public signals (outputs, then public inputs).
    pub num_public: u32,
}

impl CircomCircuit {
    /// Most public signals a circom circuit may have here.
    pub const MAX_PUBLIC: u32 = 1 << 10;

    /// The circuit of a zkey with this hash and public signal count.
    pub fn new(zkey_hash: &ContentHash, num_public: usize) -> Result<Self> {
        if num_public as u64 > Self::MAX_PUBLIC as u64 {
            return Err(Error::Config(format!(
                "{num_public} public signals (at most {})",
                Self::MAX_PUBLIC
            )));
        }
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&zkey_hash.0[..8]);
        Ok(Self {
            tag,
            num_public: num_public as u32,
        })
    }

    fn id(&self) -> CircuitId {
        CircuitId::new(format!(
            "circom-{}-p{}",
            protocol::hex::encode(&self.tag),
            self.num_public
        ))
        .expect("circom ids are valid circuit ids")
    }

    fn from_id(id: &CircuitId) -> Result<Self> {
        let unknown = || Error::UnknownCircuit(id.to_string());
        let rest = id.as_str().strip_prefix("circom-").ok_or_else(unknown)?;
        let (tag, public) = rest.split_once("-p").ok_or_else(unknown)?;
        let tag = protocol::hex::decode(tag).map_err(|_| unknown())?;
        let tag: [u8; 8] = tag.try_into().map_err(|_| unknown())?;
        let num_public = canonical_u32(public).ok_or_else(unknown)?;
        if num_public > Self::MAX_PUBLIC {
            return Err(unknown());
        }
        let circuit = Self { tag, num_public };
        // One spelling per circuit (lower-case hex).
        if circuit.id() != *id {
            return Err(unknown());
        }
        Ok(circuit)
    }
}

/// A decimal without sign or leading zeros, so each number has one spelling.
fn canonical_u32(s: &str) -> Option<u32> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

/// Every circuit this build can prove, looked up by id. A new circuit is a new
/// variant here; the network only ever sees its [`CircuitId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// The transfer rollup.
    Transfer(CircuitConfig),
    /// An operator's circom circuit, proved from its snarkjs zkey.
    Circom(CircomCircuit),
}

impl Circuit {
    /// Looks a circuit up by id.
    pub fn from_id(id: &CircuitId) -> Result<Self> {
        if id.as_str().starts_with("circom-") {
            return CircomCircuit::from_id(id).map(Self::Circom);
        }
        Ok(Self::Transfer(CircuitConfig::from_circuit_id(id)?))
    }

    /// The circuit's id.
    pub fn id(&self) -> CircuitId {
        match self {
            Self::Transfer(c) => c.circuit_id(),
            Self::Circom(c) => c.id(),
        }
    }

    /// Number of public inputs.
    pub fn num_public_inputs(&self) -> usize {
        match self {
            Self::Transfer(_) => 4,
            Self::Circom(c) => c.num_public as usize,
        }
    }
}

/// Values of one slot; disabled slots use [`SlotValues::disabled`].
#[derive(Clone)]
struct SlotValues {
    enabled: bool,
    from: u64,
    to: u64,
    amount: F,
    fee: F,
    tx_nonce: F,
    pk: EdwardsAffine,
    r: EdwardsAffine,
    s_bits: Vec<bool>,
    sbal: F,
    snonce: F,
    spath: Vec<F>,
    rx: F,
    ry: F,
    rbal: F,
    rnonce: F,
    rpath: Vec<F>,
}

impl SlotValues {
    fn disabled(depth: usize) -> Self {
        // All-zero values (identity points) satisfy the unconditional range
        // and subgroup checks; everything else is gated by `enabled`.
        let id = EdwardsAffine::zero();
        Self {
            enabled: false,
            from: 0,
            to: 0,
            amount: F::zero(),
            fee: F::zero(),
            tx_nonce: F::zero(),
            pk: id,
            r: id,
            s_bits: vec![false; SCALAR_BITS],
            sbal: F::zero(),
            snonce: F::zero(),
            spath: vec![F::zero(); depth],
            rx: F::zero(),
            ry: F::zero(),
            rbal: F::zero(),
            rnonce: F::zero(),
            rpath: vec![F::zero(); depth],
        }
    }
}

/// The transfer circuit for one job. Built with [`TransferCircuit::blank`] for
/// setup and [`TransferCircuit::with_witness`] for proving.
#[derive(Clone)]
pub struct TransferCircuit {
    config: CircuitConfig,
    /// `None` during setup.
    assignment: Option<(Vec<SlotValues>, [F; 4])>,
}

impl TransferCircuit {
    /// The circuit without values, for key generation.
    pub fn blank(config: CircuitConfig) -> Self {
        Self {
            config,
            assignment: None,
        }
    }

    /// The circuit with a chunk's values and the public inputs it claims.
    /// Public inputs that do not match the witness give an unsatisfied circuit
    /// (used by tests for the "wrong root" rule).
    pub fn with_witness(w: &ChunkWitness, public: &PublicInputs) -> Result<Self> {
        w.check_shape()?;
        let depth = w.config.depth as usize;
        let mut slots: Vec<SlotValues> = w
            .txs
            .iter()
            .map(|t| {
                let tx = &t.transfer.tx;
                let (rx, ry) = t.receiver.pubkey.xy();
                SlotValues {
                    enabled: true,
                    from: tx.from as u64,
                    to: tx.to as u64,
                    amount: F::from(tx.amount),
                    fee: F::from(tx.fee),
                    tx_nonce: F::from(tx.nonce),
                    pk: t.sender.pubkey.0,
                    r: t.transfer.sig.r,
                    s_bits: t.transfer.sig.s_bits(),
                    sbal: F::from(t.sender.balance),
                    snonce: F::from(t.sender.nonce),
                    spath: t.sender_path.clone(),
                    rx,
                    ry,
                    rbal: F::from(t.receiver.balance),
                    rnonce: F::from(t.receiver.nonce),
                    rpath: t.receiver_path.clone(),
                }
            })
            .collect();
        slots.resize(
            w.config.transfers_per_job as usize,
            SlotValues::disabled(depth),
        );
        let inputs = public.to_field_elements()?;
        Ok(Self {
            config: w.config,
            assignment: Some((slots, [inputs[0], inputs[1], inputs[2], inputs[3]])),
        })
    }
}

/// Enforces `x < 2^64` by a 64-bit decomposition (65 constraints).
fn enforce_u64(x: &FpVar<F>) -> std::result::Result<(), SynthesisError> {
    // The remainder is already constrained to zero inside the call.
    let (_bits, _rest) = x.to_bits_le_with_top_bits_zero(VALUE_BITS)?;
    Ok(())
}

fn witness<T: Copy>(v: Option<T>) -> impl FnOnce() -> std::result::Result<T, SynthesisError> {
    move || v.ok_or(SynthesisError::AssignmentMissing)
}

impl ConstraintSynthesizer<F> for TransferCircuit {
    fn generate_constraints(
        self,
        cs: ConstraintSystemRef<F>,
    ) -> std::result::Result<(), SynthesisError> {
        let depth = self.config.depth as usize;
        let k = self.config.transfers_per_job as usize;
        let (slots, inputs) = match self.assignment {
            Some((s, i)) => (Some(s), Some(i)),
            None => (None, None),
        };
        let input = |j: usize| FpVar::new_input(cs.clone(), witness(inputs.map(|i| i[j])));
        let old_root = input(0)?;
        let new_root = input(1)?;
        let commitment_in = input(2)?;
        let fees_in = input(3)?;

        let mut root = old_root;
        let mut commitment = FpVar::<F>::zero();
        let mut fees = FpVar::<F>::zero();
        for i in 0..k {
            let slot = SlotVars::new(cs.clone(), slots.as_ref().map(|s| &s[i]), depth)?;
            let (after, msg) = slot.enforce_transfer(cs.clone(), &root)?;
            root = FpVar::conditionally_select(&slot.enabled, &after, &root)?;
            let next_commitment = poseidon::hash_var(cs.clone(), &[commitment.clone(), msg])?;
            commitment = FpVar::conditionally_select(&slot.enabled, &next_commitment, &commitment)?;
            fees += FpVar::from(slot.enabled) * &slot.fee;
        }
        root.enforce_equal(&new_root)?;
        commitment.enforce_equal(&commitment_in)?;
        fees.enforce_equal(&fees_in)?;
        Ok(())
    }
}

/// One slot's witness variables (see [`SlotValues`]).
struct SlotVars {
    enabled: Boolean<F>,
    from_bits: Vec<Boolean<F>>,
    to_bits: Vec<Boolean<F>>,
    amount: FpVar<F>,
    fee: FpVar<F>,
    tx_nonce: FpVar<F>,
    pk: EdwardsVar,
    r: EdwardsVar,
    s_bits: Vec<Boolean<F>>,
    sbal: FpVar<F>,
    snonce: FpVar<F>,
    spath: Vec<FpVar<F>>,
    rx: FpVar<F>,
    ry: FpVar<F>,
    rbal: FpVar<F>,
    rnonce: FpVar<F>,
    rpath: Vec<FpVar<F>>,
}

impl SlotVars {
    /// Allocates the slot's witnesses, in this order, from `s` (`None`
    /// during setup).
    fn new(
        cs: ConstraintSystemRef<F>,
        s: Option<&SlotValues>,
        depth: usize,
    ) -> std::result::Result<Self, SynthesisError> {
        let fe = |f: fn(&SlotValues) -> F| FpVar::new_witness(cs.clone(), witness(s.map(f)));
        let bits = |v: Option<u64>| -> std::result::Result<Vec<Boolean<F>>, SynthesisError> {
            (0..depth)
                .map(|l| Boolean::new_witness(cs.clone(), witness(v.map(|v| (v >> l) & 1 == 1))))
                .collect()
        };
        let path = |p: Option<&Vec<F>>| -> std::result::Result<Vec<FpVar<F>>, SynthesisError> {
            (0..depth)
                .map(|l| FpVar::new_witness(cs.clone(), witness(p.map(|p| p[l]))))
                .collect()
        };

        Ok(Self {
            enabled: Boolean::new_witness(cs.clone(), witness(s.map(|s| s.enabled)))?,
            from_bits: bits(s.map(|s| s.from))?,
            to_bits: bits(s.map(|s| s.to))?,
            amount: fe(|s| s.amount)?,
            fee: fe(|s| s.fee)?,
            tx_nonce: fe(|s| s.tx_nonce)?,
            pk: EdwardsVar::new_witness(cs.clone(), witness(s.map(|s| s.pk)))?,
            r: EdwardsVar::new_witness(cs.clone(), witness(s.map(|s| s.r)))?,
            s_bits: (0..SCALAR_BITS)
                .map(|j| Boolean::new_witness(cs.clone(), witness(s.map(|s| s.s_bits[j]))))
                .collect::<std::result::Result<Vec<_>, _>>()?,
            sbal: fe(|s| s.sbal)?,
            snonce: fe(|s| s.snonce)?,
            spath: path(s.map(|s| &s.spath))?,
            rx: fe(|s| s.rx)?,
            ry: fe(|s| s.ry)?,
            rbal: fe(|s| s.rbal)?,
            rnonce: fe(|s| s.rnonce)?,
            rpath: path(s.map(|s| &s.rpath))?,
        })
    }

    /// Rules 1–6 of the module doc for this slot, starting from `root`
    /// (gated by `enabled`). Returns the root after the transfer and the
    /// signed message.
    fn enforce_transfer(
        &self,
        cs: ConstraintSystemRef<F>,
        root: &FpVar<F>,
    ) -> std::result::Result<(FpVar<F>, FpVar<F>), SynthesisError> {
        // Range checks hold in every slot (disabled slots carry zeros), so
        // they need no gating.
        enforce_u64(&self.amount)?;
        enforce_u64(&self.fee)?;
        self.enforce_sender_in(cs.clone(), root)?;
        let msg = self.enforce_signature(cs.clone())?;
        let mid_root = self.update_sender(cs.clone())?;
        let after = self.update_receiver(cs, &mid_root)?;
        Ok((after, msg))
    }

    /// Rules 1 and 2: the sender is in the current state, and the nonce matches.
    fn enforce_sender_in(
        &self,
        cs: ConstraintSystemRef<F>,
        root: &FpVar<F>,
    ) -> std::result::Result<(), SynthesisError> {
        let pk = &self.pk;
        let sleaf = poseidon::hash_var(
            cs.clone(),
            &[
                pk.x.clone(),
                pk.y.clone(),
                self.sbal.clone(),
                self.snonce.clone(),
            ],
        )?;
        let sroot = root_from_path_var(cs, &sleaf, &self.from_bits, &self.spath)?;
        sroot.conditional_enforce_equal(root, &self.enabled)?;
        self.tx_nonce
            .conditional_enforce_equal(&self.snonce, &self.enabled)
    }

    /// Rule 3: the sender signed the message `H(from, to, amount, fee,
    /// nonce)`, which is returned.
    fn enforce_signature(
        &self,
        cs: ConstraintSystemRef<F>,
    ) -> std::result::Result<FpVar<F>, SynthesisError> {
        let from = Boolean::le_bits_to_fp(&self.from_bits)?;
        let to = Boolean::le_bits_to_fp(&self.to_bits)?;
        let msg = poseidon::hash_var(
            cs.clone(),
            &[
                from,
                to,
                self.amount.clone(),
                self.fee.clone(),
                self.tx_nonce.clone(),
            ],
        )?;
        eddsa::verify_var(cs, &self.pk, &msg, &self.r, &self.s_bits, &self.enabled)?;
        Ok(msg)
    }

    /// Rules 4 and 5: balance and nonce arithmetic without wrap-around, and
    /// the updated sender leaf over the same path gives the middle root,
    /// returned.
    fn update_sender(
        &self,
        cs: ConstraintSystemRef<F>,
    ) -> std::result::Result<FpVar<F>, SynthesisError> {
        let new_sbal = &self.sbal - &self.amount - &self.fee;
        enforce_u64(&new_sbal)?;
        let new_snonce = &self.snonce + FpVar::Constant(F::one());
        enforce_u64(&new_snonce)?;
        let sleaf2 = poseidon::hash_var(
            cs.clone(),
            &[self.pk.x.clone(), self.pk.y.clone(), new_sbal, new_snonce],
        )?;
        root_from_path_var(cs, &sleaf2, &self.from_bits, &self.spath)
    }

    /// Rule 6: the receiver is under `mid_root`, and its updated leaf gives
    /// the root after the transfer, returned.
    fn update_receiver(
        &self,
        cs: ConstraintSystemRef<F>,
        mid_root: &FpVar<F>,
    ) -> std::result::Result<FpVar<F>, SynthesisError> {
        let (rx, ry) = (&self.rx, &self.ry);
        let rleaf = poseidon::hash_var(
            cs.clone(),
            &[
                rx.clone(),
                ry.clone(),
                self.rbal.clone(),
                self.rnonce.clone(),
            ],
        )?;
        let rroot = root_from_path_var(cs.clone(), &rleaf, &self.to_bits, &self.rpath)?;
        rroot.conditional_enforce_equal(mid_root, &self.enabled)?;
        let new_rbal = &self.rbal + &self.amount;
        enforce_u64(&new_rbal)?;
        let rleaf2 = poseidon::hash_var(
            cs.clone(),
            &[rx.clone(), ry.clone(), new_rbal, self.rnonce.clone()],
        )?;
        root_from_path_var(cs, &rleaf2, &self.to_bits, &self.rpath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_ids_round_trip() {
        let c = CircuitConfig::new(20, 8).unwrap();
        assert_eq!(c.circuit_id().as_str(), "transfer-d20-k8");
        assert_eq!(CircuitConfig::from_circuit_id(&c.circuit_id()).unwrap(), c);
        assert_eq!(
            "transfer-d4-k1".parse::<CircuitConfig>().unwrap(),
            CircuitConfig::new(4, 1).unwrap()
        );
        for bad in [
            "transfer-d0-k1",
            "transfer-d33-k1",
            "transfer-d4-k0",
            "transfer-d04-k1",
            "transfer-d4",
            "other-d4-k1",
            "transfer-d4-k1x",
            "transfer-d99999999999-k1",
        ] {
            assert!(bad.parse::<CircuitConfig>().is_err(), "{bad}");
        }
        assert_eq!(
            Circuit::from_id(&c.circuit_id()).unwrap(),
            Circuit::Transfer(c)
        );
    }

    #[test]
    fn circom_ids_name_the_zkey_and_its_public_signals() {
        let hash = ContentHash::of(b"a zkey");
        let c = Circuit::Circom(CircomCircuit::new(&hash, 2).unwrap());
        let id = c.id();
        assert_eq!(id.as_str(), format!("circom-{}-p2", &hash.to_hex()[..16]));
        assert_eq!(Circuit::from_id(&id).unwrap(), c);
        assert_eq!(c.num_public_inputs(), 2);
        assert!(CircomCircuit::new(&hash, 1025).is_err());
        for bad in [
            "circom-0011223344556677-p02",
            "circom-0011223344556677-p",
            "circom-0011223344556677-p1025",
            "circom-00112233445566-p1",
            "circom-0011223344556677x-p1",
            "circom-p1",
        ] {
            let id = CircuitId::new(bad).unwrap();
            assert!(Circuit::from_id(&id).is_err(), "{bad}");
        }
    }
}
