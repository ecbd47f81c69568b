"""The testnet run report: JSON (everything), Markdown (to read) and an SVG
timeline (a row per prover, a bar per job attempt coloured by outcome)."""

import html
import json
import os

COLOURS = {
    "won": "#2e7d32",
    "late": "#f9a825",
    "invalid": "#c62828",
    "abandoned": "#9e9e9e",
    "released": "#1565c0",
    "open": "#ce93d8",
}


def prover_rows(run):
    """Per prover: role, jobs won, earnings, invalid submissions, jobs lost."""
    status = run["status"]
    balances = run["checks"]["balances"]
    lost = {}
    for a in run["attempts"]:
        if a["outcome"] in ("late", "abandoned"):
            lost[a["prover"]] = lost.get(a["prover"], 0) + 1
    rows = []
    for p in status["provers"]:
        key = p["public_key"]
        role = run["roles"].get(key, {"name": "distributor (local)", "fault": "none"})
        fault = role["fault"]
        if role.get("killed"):
            fault = "killed" + (", restarted" if role.get("restarted") else "")
        rows.append({
            "name": role["name"],
            "node_id": p["node_id"],
            "fault": fault,
            "assigned": p["assigned"],
            "won": p["accepted"],
            "earned": balances.get(key, 0),
            "invalid": p["invalid"],
            "not_issued": p["not_issued"],
            "late": p["late"],
            "lost_to_faster": lost.get(key, 0),
        })
    for key, role in run["roles"].items():
        if not any(r["name"] == role["name"] for r in rows):
            rows.append({"name": role["name"], "node_id": key[:12], "fault": role["fault"],
                         "assigned": 0, "won": 0, "earned": balances.get(key, 0), "invalid": 0,
                         "not_issued": 0, "late": 0, "lost_to_faster": 0})
    rows.sort(key=lambda r: r["name"])
    return rows


def settlement_summary(settlement):
    """Gas, latency and claims of the run's settlement on chain; None without a chain."""
    if settlement is None:
        return None
    settles = settlement["settles"]
    chunks = sum(x["chunks"] for x in settles)
    gas = sum(x["gas"] for x in settles)
    anchors = settlement["anchors"]
    anchor_gas = sum(a["gas"] for a in anchors)
    anchored_blocks = sum(a["blocks"] for a in anchors)
    after_cut = [a["after_cut_ms"] / 1000 for a in settlement["anchors"]
                 if a["after_cut_ms"] is not None]
    latency = settlement["latency_s"]
    claims = settlement["claims"]
    claim_gas = [c["claim_gas"] for c in claims if c["claim_gas"]]
    chain = settlement.get("chain") or {}
    return {
        "caught_up": settlement["caught_up"],
        "batches_settled": chain.get("settled_batch", 0),
        "blocks_anchored": chain.get("anchored_height", 0),
        "gas_per_batch": gas / len(settles) if settles else None,
        "gas_per_chunk_proof": gas / chunks if chunks else None,
        "gas_per_anchor": anchor_gas / anchored_blocks if anchored_blocks else None,
        "anchor_transactions": len(anchors),
        "gas_per_claim": sum(claim_gas) / len(claim_gas) if claim_gas else None,
        "settle_latency_mean_s": sum(latency) / len(latency) if latency else None,
        "settle_latency_max_s": max(latency) if latency else None,
        "claimable_after_cut_mean_s": sum(after_cut) / len(after_cut) if after_cut else None,
        "claimable_after_cut_max_s": max(after_cut) if after_cut else None,
        "claims": [{k: c[k] for k in ("name", "ledger", "paid", "claim_gas", "own_proof",
                                      "watched", "alarm")}
                   for c in claims],
        "claims_match": settlement["claims_match"],
    }


def settlement_lines(t):
    """The report's lines on the chain."""
    if t is None:
        return ["- No chain (--no-chain): nothing settled or claimed."]
    if not t["caught_up"]:
        return ["- **Settlement on chain: NOT CAUGHT UP** within 120 s after the last batch "
                "was proven; see the distributor's log (target `chain`)."]
    fmt = lambda v, spec: "—" if v is None else format(v, spec)
    paid = sum(c["paid"] for c in t["claims"])
    own = sum(1 for c in t["claims"] if c["own_proof"])
    watched = [c for c in t["claims"] if c["watched"]]
    alarms = sum(1 for c in watched if c["alarm"])
    watching = (f"{len(watched)} provers watched the anchoring, {alarms} raised the alarm"
                if watched else "no prover watched the anchoring")
    return [
        f"- **Settled on chain (anvil): {t['batches_settled']} batches, ledger blocks 1 to "
        f"{t['blocks_anchored']} anchored in {t['anchor_transactions']} transaction(s).** "
        f"Gas per batch {fmt(t['gas_per_batch'], ',.0f')}, "
        f"per chunk proof {fmt(t['gas_per_chunk_proof'], ',.0f')}; per anchored block "
        f"{fmt(t['gas_per_anchor'], ',.0f')}; per claim {fmt(t['gas_per_claim'], ',.0f')}.",
        f"- Settlement latency after proving: {fmt(t['settle_latency_mean_s'], '.1f')} s on "
        f"average, {fmt(t['settle_latency_max_s'], '.1f')} s at most (polled every 0.25 to 0.5 s).",
        f"- Credits claimable after their block is cut (anchored): "
        f"{fmt(t['claimable_after_cut_mean_s'], '.1f')} s on average, "
        f"{fmt(t['claimable_after_cut_max_s'], '.1f')} s at most; a credit waits for its block at "
        f"most the distributor's block_interval_ms.",
        f"- **Every prover paid its ledger credits on chain: {'yes' if t['claims_match'] else 'NO'}**"
        f" — {len(t['claims'])} claims, {own} with the provers' own balance proofs, {paid} wei in all, "
        f"each to the address its prover bound; {watching}.",
    ]


def batch_rows(run):
    """One row per batch; `latency_s` is None while the status has no latency
    for it yet (never a made-up 0)."""
    return [{"batch": b["id"], "jobs": b["jobs"],
             "latency_s": None if b["latency_ms"] is None else b["latency_ms"] / 1000}
            for b in run["status"]["batches"]["list"]]


def mean_latency(run):
    known = [r["latency_s"] for r in batch_rows(run) if r["latency_s"] is not None]
    return sum(known) / max(len(known), 1)


def work_summary(run):
    """How well the crowd's work was used: useful work (jobs ÷ hand-outs, from
    the distributor's per-prover counts, which survive its restarts),
    prover-seconds fault-free provers held jobs someone else won, Jain's
    fairness index of fault-free provers' wins, and each one's time from the
    run's first hand-out to its first paid job (from the attempts the testnet
    collected while it ran)."""
    attempts = run["attempts"]
    faulty = {k for k, v in run["roles"].items() if v.get("fault", "none") != "none"}
    jobs = run["checks"]["jobs"]
    handouts = sum(p["assigned"] for p in run["status"]["provers"])
    t0 = min((a["assigned_ms"] for a in attempts), default=0)
    end = max((a["ended_ms"] or a["assigned_ms"] for a in attempts), default=0)
    wasted_ms = sum((a["ended_ms"] or end) - a["assigned_ms"] for a in attempts
                    if a["outcome"] in ("late", "abandoned") and a["prover"] not in faulty)
    wins, first_paid = {}, {}
    for a in attempts:
        if a["prover"] in faulty:
            continue
        wins.setdefault(a["prover"], 0)
        if a["outcome"] == "won":
            wins[a["prover"]] += 1
            paid = a["ended_ms"] - t0
            first_paid[a["prover"]] = min(first_paid.get(a["prover"], paid), paid)
    counts = list(wins.values())
    squares = sum(x * x for x in counts)
    fairness = sum(counts) ** 2 / (len(counts) * squares) if squares else None
    firsts = sorted(first_paid.values())
    return {
        "handouts": handouts,
        "useful_work": jobs / handouts if handouts else None,
        "wasted_prover_s": wasted_ms / 1000,
        "fairness": fairness,
        "first_paid_mean_s": sum(firsts) / len(firsts) / 1000 if firsts else None,
        "first_paid_max_s": firsts[-1] / 1000 if firsts else None,
    }


def timeline_svg(run):
    attempts = run["attempts"]
    names = {k: v["name"] for k, v in run["roles"].items()}
    keys = sorted({a["prover"] for a in attempts} | set(names), key=lambda k: names.get(k, k))
    if not attempts:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='400' height='40'>" \
               "<text x='10' y='25'>no attempts</text></svg>"
    t0 = min(a["assigned_ms"] for a in attempts)
    end = max(max((a["ended_ms"] or a["assigned_ms"]) for a in attempts),
              max((b["proven_ms"] or 0) for b in run["status"]["batches"]["list"]))
    span = max(end - t0, 1)
    events = run.get("events", [])
    left, width, row_h = 150, 900, 26
    top = 40 + 13 * len(events)
    height = top + row_h * len(keys) + 70
    x = lambda ms: left + (ms - t0) * width / span
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{left + width + 30}' height='{height}' "
           f"font-family='sans-serif' font-size='12'>",
           "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{left}' y='20' font-size='14'>{html.escape(run['mode'])} run: "
           f"job attempts over time ({span / 1000:.1f} s)</text>"]
    for i, key in enumerate(keys):
        y = top + i * row_h
        fault = run["roles"].get(key, {}).get("fault", "")
        label = names.get(key, key[:12]) + (f" ({fault})" if fault not in ("", "none") else "")
        out.append(f"<text x='5' y='{y + 16}'>{html.escape(label)}</text>")
        out.append(f"<line x1='{left}' y1='{y + row_h - 2}' x2='{left + width}' "
                   f"y2='{y + row_h - 2}' stroke='#eee'/>")
    row_of = {k: i for i, k in enumerate(keys)}
    for a in attempts:
        y = top + row_of[a["prover"]] * row_h + 3
        stop = a["ended_ms"] or end
        x0, x1 = x(a["assigned_ms"]), x(stop)
        colour = COLOURS.get(a["outcome"], "#000")
        out.append(f"<rect x='{x0:.1f}' y='{y}' width='{max(x1 - x0, 1.5):.1f}' height='{row_h - 8}' "
                   f"fill='{colour}' stroke='white' stroke-width='0.5'>"
                   f"<title>{html.escape(a['job'])} r{a['request']}: {a['outcome']}</title></rect>")
    for i, e in enumerate(events):
        ex = min(max(x(e["at_ms"]), left), left + width)
        ly = 36 + 13 * i
        out.append(f"<line x1='{ex:.1f}' y1='{ly - 9}' x2='{ex:.1f}' y2='{top + row_h * len(keys)}' "
                   f"stroke='black' stroke-dasharray='4,3'/>")
        out.append(f"<text x='{ex + 3:.1f}' y='{ly}' font-size='10'>{html.escape(e['what'])}</text>")
    ly = top + row_h * len(keys) + 25
    for i, (name, colour) in enumerate(COLOURS.items()):
        lx = left + i * 120
        out.append(f"<rect x='{lx}' y='{ly}' width='14' height='14' fill='{colour}'/>")
        out.append(f"<text x='{lx + 20}' y='{ly + 12}'>{name}</text>")
    out.append(f"<text x='{left}' y='{ly + 35}' font-size='10'>0 s</text>")
    out.append(f"<text x='{left + width - 30}' y='{ly + 35}' font-size='10'>{span / 1000:.1f} s</text>")
    out.append("</svg>")
    return "\n".join(out)


def table(rows, columns):
    head = "| " + " | ".join(title for title, _ in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(str(fn(r)) for _, fn in columns) + " |" for r in rows]
    return "\n".join([head, rule] + body)


def write(run_dir, options, runs):
    """Writes report.json, report.md and one timeline SVG per run."""
    paths = {"json": os.path.join(run_dir, "report.json"),
             "markdown": os.path.join(run_dir, "report.md")}
    charts = []
    for run in runs:
        name = "timeline.svg" if run["mode"] == "community" else f"timeline-{run['mode']}.svg"
        with open(os.path.join(run_dir, name), "w") as f:
            f.write(timeline_svg(run))
        charts.append(name)
    paths["chart"] = os.path.join(run_dir, charts[0])

    summary = []
    for run in runs:
        s = run["status"]
        verification = s["verification"]
        summary.append({
            "mode": run["mode"],
            "batches": s["batches"]["proven"],
            "jobs": run["checks"]["jobs"],
            "wall_s": round(run["wall_s"], 2),
            "batch_latency_s": [r["latency_s"] for r in batch_rows(run)],
            "mean_batch_latency_s": mean_latency(run),
            "verify_mean_ms": verification["mean_ms"],
            "verify_total_ms": verification["total_ms"],
            "proofs_verified": verification["proofs"],
            "rpc_bytes": s["wire"]["rpc_bytes_read"] + s["wire"]["rpc_bytes_written"],
            "ledger_verify": run["checks"]["ledger_verify"],
            "each_job_paid_once": run["checks"]["each_job_paid_once"],
            "payouts_bound": run["checks"]["payouts_bound"],
            "settlement": settlement_summary(run.get("settlement")),
            "provers": prover_rows(run),
            "work": work_summary(run),
        })
    with open(paths["json"], "w") as f:
        json.dump({"options": options, "summary": summary, "runs": runs}, f, indent=1)

    md = ["# CrowdProve testnet run", ""]
    opts = options
    md.append(f"Workload: {opts['batches']} batches × {opts['jobs_per_batch']} jobs of "
              f"`{opts['circuit']}`, {opts['provers']} provers ({opts['stragglers']} straggling, "
              f"{opts['byzantine']} byzantine), {opts['threads']} thread(s) per prover. Faults: "
              f"kill {opts['kill_provers']} prover(s){' (restarted)' if opts['restart_killed'] else ''}"
              f"{', restart the distributor' if opts['restart_distributor'] else ''}.")
    md.append("")
    for run, s in zip(runs, summary):
        c = run["checks"]
        md.append(f"## {run['mode'].capitalize()} run")
        md.append("")
        md.append(f"- **Every job proven once and paid once: {'yes' if s['each_job_paid_once'] else 'NO'}** "
                  f"— {c['jobs']} jobs, {c['total_paid']} paid for {c['expected_paid']} expected, "
                  f"jobs without a credit: {len(c['jobs_without_credit'])}.")
        md.append(f"- **`crowdprove ledger verify`: {'passed' if s['ledger_verify'] else 'FAILED'}.**")
        if run["roles"]:
            md.append(f"- **Payout addresses in the ledger: {'as bound' if s['payouts_bound'] else 'WRONG'}** "
                      f"— {c['provers_bound']} prover(s) paid to the address they bound, "
                      f"{len(c['provers_paid_elsewhere_than_bound'])} to another.")
        md.append(f"- Wall time {s['wall_s']:.1f} s; mean batch latency {s['mean_batch_latency_s']:.2f} s.")
        since = " since the distributor's restart" if opts["restart_distributor"] and run["mode"] == "community" else ""
        md.append(f"- Distributor verification{since}: {s['proofs_verified']} proofs, "
                  f"{s['verify_mean_ms']:.2f} ms each, {s['verify_total_ms']:.0f} ms in all.")
        md.append(f"- Request-response traffic{since}: {s['rpc_bytes'] / 1e6:.2f} MB "
                  f"({s['rpc_bytes'] / max(s['proofs_verified'], 1) / 1e3:.1f} kB per verified proof, "
                  f"proving-key downloads included).")
        w = s["work"]
        fmt = lambda v, spec: "—" if v is None else format(v, spec)
        md.append(f"- Work: {w['handouts']} hand-outs for {c['jobs']} jobs, useful work "
                  f"{fmt(w['useful_work'], '.3f')}; fault-free provers held jobs another prover "
                  f"won for {w['wasted_prover_s']:.1f} prover-seconds; fairness of their wins "
                  f"(Jain) {fmt(w['fairness'], '.3f')}; first paid job after "
                  f"{fmt(w['first_paid_mean_s'], '.1f')} s on average, "
                  f"{fmt(w['first_paid_max_s'], '.1f')} s at most.")
        md.extend(settlement_lines(s["settlement"]))
        for e in run.get("events", []):
            md.append(f"- Fault: {e['what']}.")
        md.append("")
        md.append("### Batches")
        md.append("")
        md.append(table(batch_rows(run), [("batch", lambda r: r["batch"]), ("jobs", lambda r: r["jobs"]),
                                          ("latency (s)", lambda r: "—" if r["latency_s"] is None else f"{r['latency_s']:.2f}")]))
        md.append("")
        md.append("### Provers")
        md.append("")
        md.append(table(s["provers"], [
            ("prover", lambda r: r["name"]), ("node", lambda r: r["node_id"]),
            ("fault", lambda r: r["fault"]), ("assigned", lambda r: r["assigned"]),
            ("jobs won", lambda r: r["won"]), ("earned", lambda r: r["earned"]),
            ("invalid", lambda r: r["invalid"]), ("misbound", lambda r: r["not_issued"]),
            ("lost to a faster prover", lambda r: r["lost_to_faster"])]))
        md.append("")
        chart = "timeline.svg" if run["mode"] == "community" else f"timeline-{run['mode']}.svg"
        md.append(f"![timeline]({chart})")
        md.append("")
    if len(runs) == 2:
        a, b = summary
        md.append("## Community vs centralized")
        md.append("")
        md.append(table([
            {"m": "mean batch latency (s)", "a": f"{a['mean_batch_latency_s']:.2f}",
             "b": f"{b['mean_batch_latency_s']:.2f}",
             "r": f"{a['mean_batch_latency_s'] / max(b['mean_batch_latency_s'], 1e-9):.2f}"},
            {"m": "wall time (s)", "a": f"{a['wall_s']:.1f}", "b": f"{b['wall_s']:.1f}",
             "r": f"{a['wall_s'] / max(b['wall_s'], 1e-9):.2f}"},
        ], [("measure", lambda r: r["m"]), ("community", lambda r: r["a"]),
            ("centralized", lambda r: r["b"]), ("community / centralized", lambda r: r["r"])]))
        md.append("")
    md.append("How to read this report: docs/testnet.md.")
    with open(paths["markdown"], "w") as f:
        f.write("\n".join(md) + "\n")
    return paths
