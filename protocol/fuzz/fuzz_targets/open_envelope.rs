//! Feeds arbitrary bytes to every decoding path a network peer can reach:
//! the envelope (header, size limit, body decoding and content checks come
//! before the signature, so the body decoders are exercised too), the
//! replay-checking verifier, and the bare codec for the largest bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::envelope::{Freshness, Verifier, open_any, peek_kind};
use protocol::messages::{Assignment, JobAnnouncement, KeyChunk, Message};
use protocol::{Timestamp, codec};

fuzz_target!(|data: &[u8]| {
    let now = Timestamp(1_750_000_000_000);
    let _ = peek_kind(data);
    let _ = open_any(data, now, Freshness::default());
    let mut verifier = Verifier::default();
    let _ = verifier.open_any(data, now);
    let _ = codec::decode::<Assignment>(data, Assignment::MAX_BODY);
    let _ = codec::decode::<JobAnnouncement>(data, JobAnnouncement::MAX_BODY);
    let _ = codec::decode::<KeyChunk>(data, KeyChunk::MAX_BODY);
});
