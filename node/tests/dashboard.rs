//! The live dashboard in a real browser: headless Chromium loads the page a
//! running distributor and prover serve, and what the page shows is checked
//! against the status API, before, while and after a batch is proven,
//! without reloading. Screenshots go to `<target>/tmp/dashboard/`.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::Net;
use support::browser::Browser;

const JOBS: u64 = 8; // batch_txs 8, one transfer per job

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

/// The value at a dotted path of a status document.
fn at<'a>(status: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(status, |v, key| &v[key])
}

/// Asserts every `paths` field on the page equals the status document's.
fn assert_matches(fields: &Value, status: &Value, paths: &[&str]) {
    for path in paths {
        assert_eq!(
            shown(fields, path),
            at(status, path).as_u64(),
            "the page shows {path} = {:?}; /status says {}\npage: {fields}\nstatus: {status:#}",
            fields[path],
            at(status, path)
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
    net.wait_status(d, "the prover connected", |s| {
        s["peers"].as_u64() >= Some(1)
    });

    // Before any batch: the page agrees with an idle distributor.
    browser.open(&format!("http://{}/", net.node(d).info().api));
    let fields = browser.wait_for("a first update", TOP_FIELDS, |f| {
        f["updates"].as_u64() >= Some(1) && shown(f, "peers") >= Some(1)
    });
    let status = net.get(d, "/status");
    let idle = [
        "peers",
        "batches.total",
        "batches.proven",
        "batches.open",
        "jobs.fresh",
        "jobs.pending",
        "jobs.done",
        "verification.proofs",
    ];
    assert_matches(&fields, &status, &idle);
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
    let status = net.wait_status(d, "the batch proven, every credit in a block", |s| {
        s["batches"]["proven"].as_u64() == Some(1) && s["ledger"]["pending"].as_u64() == Some(0)
    });
    let height = status["ledger"]["height"].as_u64().unwrap();
    let fields = browser.wait_for("the batch proven and its block", TOP_FIELDS, |f| {
        shown(f, "batches.proven") == Some(1) && shown(f, "ledger.height") == Some(height)
    });
    let mut settled = idle.to_vec();
    settled.extend(["ledger.height", "ledger.pending"]);
    assert_matches(&fields, &status, &settled);
    assert_eq!(shown(&fields, "verification.proofs"), Some(JOBS));

    // The provers table: the prover's row carries its counters.
    let row = &status["provers"][0];
    let prover_row = browser.eval(&row_fields("data-prover", row["node_id"].as_str().unwrap()));
    for field in [
        "accepted", "late", "invalid", "earned", "strikes", "assigned",
    ] {
        assert_eq!(
            shown(&prover_row, field),
            row[field].as_u64(),
            "provers table {field}: {prover_row}"
        );
    }
    assert_eq!(shown(&prover_row, "accepted"), Some(JOBS));
    browser.screenshot(&screenshots().join("distributor.png"));

    // The prover's own dashboard: its jobs, earnings and receipts.
    let prover_status = net.wait_status(p, "every receipt kept", |s| {
        s["receipts"].as_u64() == Some(JOBS)
    });
    browser.open(&format!("http://{}/", net.node(p).info().api));
    let fields = browser.wait_for("the prover's page", TOP_FIELDS, |f| {
        f["updates"].as_u64() >= Some(1) && shown(f, "receipts") == Some(JOBS)
    });
    assert_eq!(browser.eval("return document.body.dataset.role;"), "prover");
    assert_matches(
        &fields,
        &prover_status,
        &[
            "jobs.accepted",
            "jobs.late",
            "jobs.invalid",
            "jobs.released",
            "jobs.failed",
            "earned",
            "receipts",
        ],
    );
    let path = screenshots().join("prover.png");
    browser.screenshot(&path);
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
}
