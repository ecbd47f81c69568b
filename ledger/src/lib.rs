//! CrowdProve's compensation ledger: credits and withdrawals grouped in signed,
//! hash-chained blocks on RocksDB, with receipts any prover can check offline.
