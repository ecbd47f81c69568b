//! The README's local network, `testnet/run`, as a user starts it: the
//! launcher starts real processes, drives batches through them with a fault
//! of each kind, checks the ledger (every job proven once and paid once) and
//! exits 0 only if all of it held. Run here, in the test pool, so their
//! waits overlap other tests instead of adding to the suite's time.

use std::path::Path;
use std::process::Command;

/// Runs `testnet/run` with `args` against the binary under test (the
/// launcher's own build step, `scripts/setup` and `cargo test --no-run`, is
/// the quick start's), in a run folder of its own; fails with the
/// launcher's output if it fails.
fn launch(args: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run_dir = tempfile::tempdir().unwrap();
    let out = Command::new(root.join("testnet/run"))
        .args(args)
        .args([
            "--deadline",
            "600",
            "--binary",
            env!("CARGO_BIN_EXE_crowdprove"),
        ])
        .arg("--run-dir")
        .arg(run_dir.path())
        .output()
        .expect("run testnet/run");
    assert!(
        out.status.success(),
        "testnet/run {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three provers, one straggler, one byzantine, one killed and restarted,
/// and the distributor restarted: two batches proven, each job paid once.
#[test]
fn the_launcher_proves_batches_through_a_fault_of_each_kind() {
    launch(&[
        "--provers",
        "3",
        "--circuit",
        "transfer-d4-k1",
        "--batches",
        "2",
        "--jobs-per-batch",
        "6",
        "--stragglers",
        "1",
        "--byzantine",
        "1",
        "--kill-provers",
        "1",
        "--restart-killed",
        "--restart-distributor",
        "--reserve-after-ms",
        "1500",
    ]);
}

/// Fifty prover identities in one process against one distributor.
#[test]
fn the_launcher_drives_a_crowd_of_fifty_identities() {
    launch(&[
        "--provers",
        "0",
        "--crowd",
        "50",
        "--circuit",
        "transfer-d4-k1",
        "--batches",
        "2",
        "--jobs-per-batch",
        "5",
    ]);
}
