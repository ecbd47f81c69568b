//! The `crowdprove` binary's commands that need no network, run as a real
//! process: identities, key setup, submit's size check, the simulator.

use std::process::{Command, Output};

fn crowdprove(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crowdprove"))
        .args(args)
        .env_remove("CROWDPROVE_KEY")
        .output()
        .expect("run crowdprove")
}

fn line_value(stdout: &[u8], label: &str) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|line| line.strip_prefix(label).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {label:?} line"))
}

#[test]
fn keygen_then_identity_agree_and_keygen_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let key = key.to_str().unwrap();

    let created = crowdprove(&["keygen", "--key", key]);
    assert!(created.status.success(), "{created:?}");
    let public = line_value(&created.stdout, "public key");
    assert_eq!(public.len(), 64);

    let shown = crowdprove(&["identity", "--key", key]);
    assert!(shown.status.success(), "{shown:?}");
    assert_eq!(line_value(&shown.stdout, "public key"), public);
    assert_eq!(
        line_value(&shown.stdout, "node id"),
        public[..12].to_string()
    );

    let again = crowdprove(&["keygen", "--key", key]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("node.key"),
        "{stderr}"
    );
    let still = crowdprove(&["identity", "--key", key]);
    assert_eq!(line_value(&still.stdout, "public key"), public);
}

#[test]
fn corrupt_or_missing_key_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("broken.key");
    let missing = crowdprove(&["identity", "--key", key.to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("broken.key"));

    std::fs::write(&key, "crowdprove-secret-key v1\nseed 00\n").unwrap();
    let corrupt = crowdprove(&["identity", "--key", key.to_str().unwrap()]);
    assert!(!corrupt.status.success());
    let stderr = String::from_utf8_lossy(&corrupt.stderr);
    assert!(
        stderr.contains("broken.key") && stderr.contains("not a valid"),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_commands() {
    let help = crowdprove(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("keygen") && text.contains("identity"),
        "{text}"
    );
}

#[test]
fn a_proving_key_from_another_setup_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (ours, theirs) = (path("ours"), path("theirs"));
    for out in [&ours, &theirs] {
        let made = crowdprove(&["setup", "--circuit", "transfer-d4-k1", "--out", out]);
        assert!(made.status.success(), "{made:?}");
    }
    std::fs::copy(
        format!("{theirs}/transfer-d4-k1.pk"),
        format!("{ours}/transfer-d4-k1.pk"),
    )
    .unwrap();
    let started = crowdprove(&[
        "run",
        "--role",
        "distributor",
        "--circuit",
        "transfer-d4-k1",
        "--keys-dir",
        &ours,
        "--data-dir",
        &path("data"),
        "--key",
        &path("node.key"),
    ]);
    assert!(!started.status.success());
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(
        stderr.contains("does not belong to the verifying key"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

#[test]
fn setup_refuses_a_truncated_garbage_or_oversized_zkey_and_writes_nothing() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../prover-core/tests/fixtures/circom/multiplier");
    let good = std::fs::read(fixtures.join("circuit.zkey")).unwrap();
    let r1cs = fixtures.join("circuit.r1cs");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let oversized = dir.path().join("oversized.zkey");
    std::fs::File::create(&oversized)
        .unwrap()
        .set_len(prover_core::circom::MAX_ZKEY_BYTES + 1)
        .unwrap();
    let cap = format!("at most {}", prover_core::circom::MAX_ZKEY_BYTES);
    let cases = [
        (
            write("truncated.zkey", &good[..good.len() / 2]),
            "runs past the end of the file",
        ),
        (
            write(
                "garbage.zkey",
                b"this is not a zkey at all, just some text\n",
            ),
            "bad magic",
        ),
        (oversized, cap.as_str()),
    ];
    for (zkey, reason) in &cases {
        let name = zkey.file_name().unwrap().to_str().unwrap();
        let ran = crowdprove(&[
            "setup",
            "--zkey",
            zkey.to_str().unwrap(),
            "--r1cs",
            r1cs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(1), "{name}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{name}: one error line: {stderr}");
        assert!(
            errors[0].contains(name) && errors[0].contains(reason),
            "{name}: the error names neither the file nor {reason:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        // Nothing but the "checking" line and the error.
        assert!(stderr.trim().lines().count() <= 2, "{name}: {stderr}");
        assert!(ran.stdout.is_empty(), "{name}: {ran:?}");
        assert!(!out.exists(), "{name}: setup wrote {}", out.display());
    }
    // The same command with the good zkey writes the keys: the refusals
    // above were the zkey's.
    let made = crowdprove(&[
        "setup",
        "--zkey",
        fixtures.join("circuit.zkey").to_str().unwrap(),
        "--r1cs",
        r1cs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{made:?}");
    let written = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(written, 3, "the zkey, the r1cs and the verifying key");
}

/// `crowdprove setup --r1cs` alone sets a circom circuit up itself: a bad
/// r1cs is one line naming it, a good one gets a zkey, its r1cs and a
/// verifying key that records the setup.
#[test]
fn setup_of_a_circom_r1cs_writes_its_keys_or_names_what_is_wrong() {
    let r1cs = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../prover-core/tests/fixtures/circom/multiplier/circuit.r1cs");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let garbage = dir.path().join("garbage.r1cs");
    std::fs::write(&garbage, b"not a constraint system\n").unwrap();
    let setup = |r1cs: &std::path::Path| {
        crowdprove(&[
            "setup",
            "--r1cs",
            r1cs.to_str().unwrap(),
            "--insecure-seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let refused = setup(&garbage);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        errors[0].contains("garbage.r1cs") && errors[0].contains("bad magic"),
        "{stderr}"
    );
    assert!(!out.exists(), "setup wrote {}", out.display());
    let made = setup(&r1cs);
    assert!(made.status.success(), "{made:?}");
    let stdout = String::from_utf8_lossy(&made.stdout);
    assert!(stdout.contains("INSECURE (seed 3)"), "{stdout}");
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let extensions: Vec<&str> = written
        .iter()
        .map(|n| n.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(extensions, ["r1cs", "vk", "zkey"], "{written:?}");
    // The same seed makes the same key again; --force is needed to write it.
    let again = setup(&r1cs);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

/// `crowdprove submit` refuses witness files over the API's body limit by
/// their size, before reading them and before reaching any distributor.
#[test]
fn submit_refuses_oversized_witness_files_before_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.wtns");
    // Sparse: 4 GiB claimed, nothing written.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let refused = crowdprove(&[
        "submit",
        huge.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("1 witness files are 4294967296 bytes, over the API's"),
        "{stderr}"
    );
}

/// `crowdprove simulate` prints its comparison, meets its goals on a small
/// crowd, writes its files where asked, and refuses a crowd of nobody.
#[test]
fn simulate_prints_the_comparison_and_checks_the_goals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let ran = crowdprove(&[
        "simulate",
        "--sizes",
        "20",
        "--scale-provers",
        "0",
        "--no-paper",
        "--check",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{ran:?}");
    let table = String::from_utf8_lossy(&ran.stdout);
    for policy in [
        "adaptive (ours)",
        "paper LRP",
        "timeout 10 min",
        "heartbeat lease 30 s",
    ] {
        assert!(table.contains(policy), "{table}");
    }
    assert!(String::from_utf8_lossy(&ran.stderr).contains("every goal met"));
    let svg = std::fs::read_to_string(out.join("simulation.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    assert_eq!(
        std::fs::read_to_string(out.join("simulation.md")).unwrap(),
        table
    );

    let nobody = crowdprove(&["simulate", "--sizes", "0"]);
    assert_eq!(nobody.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&nobody.stderr);
    assert_eq!(
        stderr.trim(),
        "error: --sizes and --jobs-per-prover must be at least 1"
    );
}

/// The scheduler's goals at scale, in virtual time: every policy on the
/// same seeds, crowds of 20, 100 and 500 provers and one of 3,000
/// (docs/lrp.md); `--check` exits 1 naming any goal missed.
#[test]
fn the_scheduler_meets_its_goals_at_scale_in_simulation() {
    let ran = crowdprove(&[
        "simulate",
        "--sizes",
        "20,100,500",
        "--scale-provers",
        "3000",
        "--check",
    ]);
    assert!(ran.status.success(), "{ran:?}");
    assert!(String::from_utf8_lossy(&ran.stderr).contains("every goal met"));
}

/// A distributor without its keys stops with one line that says what to
/// run, and the missing file's cause said once.
#[test]
fn a_distributor_without_keys_says_what_to_run_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ran = crowdprove_quiet(&[
        "run",
        "--role",
        "distributor",
        "--circuit",
        "transfer-d4-k1",
        "--data-dir",
        &path("data"),
        "--key",
        &path("distributor.key"),
        "--keys-dir",
        keys.to_str().unwrap(),
        "--api",
        "127.0.0.1:0",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    let vk = keys.join("transfer-d4-k1.vk");
    let expected = format!(
        "error: cannot load {vk}; create the keys with `crowdprove setup --circuit \
         transfer-d4-k1 --out {keys}`: {vk}: No such file or directory (os error 2)",
        vk = vk.display(),
        keys = keys.display(),
    );
    assert_eq!(String::from_utf8_lossy(&ran.stderr).trim(), expected);
}

/// Runs `crowdprove` with `args` and logging off, killed if it has not
/// ended within a minute.
fn crowdprove_quiet(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crowdprove"))
        .args(args)
        .env_remove("CROWDPROVE_KEY")
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run crowdprove");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("crowdprove {args:?} did not end within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// A prover node's flags, with its files in `dir`.
fn prover_args(dir: &std::path::Path, distributor: &str) -> Vec<String> {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    [
        "run",
        "--role",
        "prover",
        "--distributor",
        distributor,
        "--data-dir",
        &path("data"),
        "--key",
        &path("node.key"),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
    ]
    .map(String::from)
    .to_vec()
}

/// 64 hex digits that are no point on the ed25519 curve: refused where the
/// flag is read, with one line naming it — it used to panic when the
/// prover made the distributor's peer id.
#[test]
fn a_distributor_key_off_the_curve_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let off_curve = format!("02{}", "0".repeat(62));
    let args = prover_args(dir.path(), &off_curve);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = crowdprove_quiet(&args);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(
        stderr.starts_with("error: --distributor")
            && stderr.contains(&off_curve)
            && stderr.contains("no point on the ed25519 curve"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A prover whose every worker stopped exits non-zero with one line saying
/// why (before, the reason was blank); `--max-failures 0` stops each worker
/// before its first claim.
#[test]
fn a_prover_whose_workers_all_stopped_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let distributor = protocol::SecretKey::from_seed([7; 32]).public().to_hex();
    let mut args = prover_args(dir.path(), &distributor);
    args.extend(["--max-failures", "0", "--jobs", "2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = crowdprove_quiet(&args);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(
        stderr.starts_with("error: every worker stopped (2 of 2)")
            && stderr.contains("--max-failures 0"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
