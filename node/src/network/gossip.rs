//! The one gossip validator, run by the network task for both roles: a
//! message on the jobs topic is forwarded only if it is a well-formed, fresh
//! envelope signed by the one key the node trusts (the distributor's).
//! Validation happens before the message reaches a role's queue, so a flood
//! of forged gossip costs a signature check and the sender's gossip score,
//! never a slot in the role's queue.

use protocol::envelope::{self, EnvelopeError};
use protocol::messages::AnyMessage;
use protocol::{PublicKey, Timestamp};

/// A gossip message's fate.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// Signed by the trusted key: forward it and hand it to the role.
    Accept(AnyMessage),
    /// Well formed but stale: drop it without penalty.
    Ignore,
    /// Forged, malformed or signed by another key: drop it and score the
    /// sender down. The label names why, for the metrics.
    Reject(&'static str),
}

/// Judges one gossip message against the `trusted` signer.
pub fn check(bytes: &[u8], trusted: &PublicKey, now: Timestamp) -> Checked {
    match envelope::open_any(bytes, now, Default::default()) {
        Ok(signed) if signed.signer() == *trusted => Checked::Accept(signed.body),
        Ok(_) => Checked::Reject("gossip_not_from_distributor"),
        Err(EnvelopeError::Stale { .. }) => Checked::Ignore,
        Err(e) => Checked::Reject(e.label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;
    use protocol::messages::Rejected;

    fn message() -> Rejected {
        Rejected {
            reason: "test".into(),
        }
    }

    #[test]
    fn only_fresh_messages_signed_by_the_trusted_key_pass() {
        let trusted = SecretKey::from_seed([1; 32]);
        let other = SecretKey::from_seed([2; 32]);
        let now = Timestamp::now();
        let good = envelope::seal(&message(), &trusted, now, 1);
        assert_eq!(
            check(&good, &trusted.public(), now),
            Checked::Accept(AnyMessage::Rejected(message()))
        );
        let forged = envelope::seal(&message(), &other, now, 2);
        assert_eq!(
            check(&forged, &trusted.public(), now),
            Checked::Reject("gossip_not_from_distributor")
        );
        let mut broken = good.clone();
        let last = broken.len() - 1;
        broken[last] ^= 1;
        assert!(matches!(
            check(&broken, &trusted.public(), now),
            Checked::Reject(_)
        ));
        let old = envelope::seal(&message(), &trusted, Timestamp(now.0 - 3_600_000), 3);
        assert_eq!(check(&old, &trusted.public(), now), Checked::Ignore);
        assert!(matches!(
            check(b"junk", &trusted.public(), now),
            Checked::Reject(_)
        ));
    }
}
