//! The DHT's record store: what this network looks up, bounded. Every node
//! serves the DHT, and anyone may ask it to store a provider record or a
//! value, so a plain store lets throwaway identities fill it (libp2p's
//! memory store holds up to 1,024 keys of up to 1,024 providers each, every
//! record with as many addresses as a message carries). The network looks up
//! one thing, the distributors' provider records ([`provider_key`]): this
//! store keeps those alone, each with at most [`MAX_PROVIDER_ADDRS`]
//! addresses, and stores no values.

use std::borrow::Cow;

use libp2p::PeerId;
use libp2p::kad::store::{self, MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

use super::provider_key;

/// Addresses kept per provider record: a distributor listens on a few.
pub const MAX_PROVIDER_ADDRS: usize = 8;

/// Provider records kept for the distributors' key: fake ones published
/// first must not crowd the distributor's out (libp2p's default is 20).
const MAX_PROVIDERS: usize = 1024;

/// The store: a memory store that only takes the distributors' provider
/// records.
pub struct DhtStore {
    inner: MemoryStore,
    key: RecordKey,
}

impl DhtStore {
    /// An empty store for the node `local`.
    pub fn new(local: PeerId) -> Self {
        let config = MemoryStoreConfig {
            max_providers_per_key: MAX_PROVIDERS,
            max_provided_keys: 1,
            ..Default::default()
        };
        Self {
            inner: MemoryStore::with_config(local, config),
            key: provider_key(),
        }
    }
}

impl RecordStore for DhtStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, key: &RecordKey) -> Option<Cow<'_, Record>> {
        self.inner.get(key)
    }

    /// No values: the network stores none, so nobody may make it.
    fn put(&mut self, _: Record) -> store::Result<()> {
        Err(store::Error::MaxRecords)
    }

    fn remove(&mut self, key: &RecordKey) {
        self.inner.remove(key)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    /// The distributors' key only (others are dropped, as a full store
    /// would), with a few addresses each.
    fn add_provider(&mut self, mut record: ProviderRecord) -> store::Result<()> {
        if record.key != self.key {
            return Err(store::Error::MaxProvidedKeys);
        }
        record.addresses.truncate(MAX_PROVIDER_ADDRS);
        self.inner.add_provider(record)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.inner.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        self.inner.remove_provider(key, provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::Multiaddr;

    fn record(key: RecordKey, provider: PeerId, addresses: usize) -> ProviderRecord {
        let addresses: Vec<Multiaddr> = (0..addresses)
            .map(|i| format!("/ip4/10.0.0.{}/tcp/4001", i % 250).parse().unwrap())
            .collect();
        ProviderRecord::new(key, provider, addresses)
    }

    #[test]
    fn only_the_distributors_provider_records_are_kept_each_with_few_addresses() {
        let mut store = DhtStore::new(PeerId::random());
        let distributor = PeerId::random();
        store
            .add_provider(record(provider_key(), distributor, 500))
            .unwrap();
        let kept = store.providers(&provider_key());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].addresses.len(), MAX_PROVIDER_ADDRS);
        // Any other key, and any value, is refused.
        let other = RecordKey::new(&b"/anything/else");
        assert!(
            store
                .add_provider(record(other.clone(), distributor, 1))
                .is_err()
        );
        assert!(store.providers(&other).is_empty());
        assert!(store.put(Record::new(other.clone(), vec![0; 100])).is_err());
        assert!(store.get(&other).is_none());
        // A crowd of fake providers stops at the cap.
        for _ in 0..MAX_PROVIDERS + 10 {
            store
                .add_provider(record(provider_key(), PeerId::random(), 1))
                .unwrap();
        }
        assert_eq!(store.providers(&provider_key()).len(), MAX_PROVIDERS);
    }
}
