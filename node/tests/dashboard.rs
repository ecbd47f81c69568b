//! The live dashboard in a real browser: headless Chromium loads the page a
//! running distributor and prover serve, and what the page shows is checked
//! against the status API, before, while and after a batch is proven,
//! without reloading. Screenshots go to `<target>/tmp/dashboard/`.

mod support;

use std::fmt::Debug;
use std::path::PathBuf;

use node::status_doc::DistributorStatus;
use serde_json::Value;
use support::Net;
use support::browser::Browser;

const JOBS: u64 = 4; // batch_txs 4, one transfer per job

/// Every `[data-field]` outside the tables, as path → text.
const TOP_FIELDS: &str = r#"
    const out = {};
    for (const el of document.querySelectorAll('[data-field]')) {
        if (!el.closest('tr')) out[el.dataset.field] = el.textContent.trim();
    }
    out.updates = Number(document.body.dataset.updates || 0);
    return out;"#;

/// The `data-field` cells of the table row `[attribute="key"]`.
fn row_fields(attribute: &str, key: &str) -> String {
    format!(
        r#"const row = document.querySelector('tr[{attribute}="{key}"]');
        if (!row) return null;
        const out = {{}};
        for (const el of row.querySelectorAll('[data-field]')) out[el.dataset.field] = el.textContent.trim();
        return out;"#
    )
}

/// A number as the page shows it ("1,234" → 1234).
fn shown(fields: &Value, name: &str) -> Option<u64> {
    fields[name].as_str()?.replace(',', "").parse().ok()
}

/// The counters an idle distributor's page shows: the page's field (the
/// status document's path) and the document's value.
fn idle_fields(s: &DistributorStatus) -> Vec<(&'static str, Option<u64>)> {
    vec![
        ("peers", Some(s.peers)),
        ("batches.total", Some(s.batches.total)),
        ("batches.proven", Some(s.batches.proven)),
        ("batches.open", Some(s.batches.open)),
        ("jobs.fresh", Some(s.jobs.fresh)),
        ("jobs.pending", Some(s.jobs.pending)),
        ("jobs.done", Some(s.jobs.done)),
        ("verification.proofs", Some(s.verification.proofs)),
    ]
}

/// Asserts every field on the page equals the status document's value.
fn assert_matches(fields: &Value, status: &impl Debug, expected: &[(&str, Option<u64>)]) {
    for &(path, value) in expected {
        assert_eq!(
            shown(fields, path),
            value,
            "the page shows {path} = {:?}; /status says {value:?}\npage: {fields}\nstatus: {status:#?}",
            fields[path],
        );
    }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard")
}

#[test]
fn dashboard_shows_the_status_api_live_in_a_real_browser() {
    let browser = Browser::start();
    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor("", &[]);
    let p = net.start_prover("prover0", &key, &boot, &[]);
    net.wait_distributor(d, "the prover connected", |s| s.peers >= 1);

    // Before any batch: the page agrees with an idle distributor.
    browser.open(&format!("http://{}/", net.node(d).info().api));
    let fields = browser.wait_for("a first update", TOP_FIELDS, |f| {
        f["updates"].as_u64() >= Some(1) && shown(f, "peers") >= Some(1)
    });
    let status = net.distributor_status(d);
    assert_matches(&fields, &status, &idle_fields(&status));
    assert_eq!(shown(&fields, "batches.total"), Some(0));
    assert_eq!(
        browser.eval("return document.body.dataset.role;"),
        "distributor"
    );

    // A batch goes in; the open page follows it to the end without a reload.
    net.submit_batch(d);
    let mut seen = Vec::new();
    let batch_row = row_fields("data-batch", "1");
    browser.wait_for("the batch proven", &batch_row, |row| {
        let done = shown(row, "done");
        if done.is_some() && seen.last() != Some(&done) {
            seen.push(done);
        }
        done == Some(JOBS)
    });
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "done only grows: {seen:?}"
    );
    let status = net.wait_distributor(d, "the batch proven, every credit in a block", |s| {
        s.batches.proven == 1 && s.ledger.pending == 0
    });
    let height = status.ledger.height;
    let fields = browser.wait_for("the batch proven and its block", TOP_FIELDS, |f| {
        shown(f, "batches.proven") == Some(1) && shown(f, "ledger.height") == Some(height)
    });
    let mut settled = idle_fields(&status);
    settled.extend([
        ("ledger.height", Some(status.ledger.height)),
        ("ledger.pending", Some(status.ledger.pending)),
    ]);
    assert_matches(&fields, &status, &settled);
    assert_eq!(shown(&fields, "verification.proofs"), Some(JOBS));

    // The provers table: the prover's row carries its counters.
    let row = &status.provers[0];
    let prover_row = browser.eval(&row_fields("data-prover", &row.node_id));
    for (field, value) in [
        ("accepted", row.accepted),
        ("late", row.late),
        ("invalid", row.invalid),
        ("earned", row.earned),
        ("strikes", u64::from(row.strikes)),
        ("assigned", row.assigned),
    ] {
        assert_eq!(
            shown(&prover_row, field),
            Some(value),
            "provers table {field}: {prover_row}"
        );
    }
    assert_eq!(shown(&prover_row, "accepted"), Some(JOBS));
    browser.screenshot(&screenshots().join("distributor.png"));

    // The prover's own dashboard: its jobs, earnings and receipts.
    let prover_status = net.wait_prover(p, "every receipt kept", |s| s.receipts == Some(JOBS));
    browser.open(&format!("http://{}/", net.node(p).info().api));
    let fields = browser.wait_for("the prover's page", TOP_FIELDS, |f| {
        f["updates"].as_u64() >= Some(1) && shown(f, "receipts") == Some(JOBS)
    });
    assert_eq!(browser.eval("return document.body.dataset.role;"), "prover");
    assert_matches(
        &fields,
        &prover_status,
        &[
            ("jobs.accepted", prover_status.jobs.accepted),
            ("jobs.late", prover_status.jobs.late),
            ("jobs.invalid", prover_status.jobs.invalid),
            ("jobs.released", prover_status.jobs.released),
            ("jobs.failed", prover_status.jobs.failed),
            ("earned", prover_status.earned),
            ("receipts", prover_status.receipts),
        ],
    );
    // What its workers do and how its first job went.
    let text = browser.eval("return document.body.innerText;");
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("first job accepted after") && text.contains("now 0 "),
        "{text}"
    );
    let path = screenshots().join("prover.png");
    browser.screenshot(&path);
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
}
