// CrowdProve live dashboard: a read-only page that polls the node's own API.
//
// Everything shown comes from strangers on the network (node ids, keys, error
// texts), so the DOM is built with createElement / createElementNS and
// textContent only; nothing is ever parsed as HTML. No framework, no build.
"use strict";

(function () {
  const STATUS_URL = "status";
  const ATTEMPTS_URL = "attempts?last=400";
  const STATUS_EVERY_MS = 1000;
  const ATTEMPTS_EVERY_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const MAX_BATCH_ROWS = 50;
  const MAX_TIMELINE_ROWS = 60;
  const TIMELINE_WINDOW_MS = 5 * 60 * 1000;
  const RATE_TAU_S = 10; // smoothing time constant of the verification rate
  const SVGNS = "http://www.w3.org/2000/svg";
  const DASH = "\u2013";
  const OUTCOMES = ["won", "late", "invalid", "abandoned", "released", "open"];
  const JOB_OUTCOMES = ["accepted", "late", "invalid", "released", "failed"];

  const intFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  const state = {
    view: null,
    updates: 0,
    clockSkewMs: 0, // server clock minus ours, when the node reports now_ms
    attempts: null,
    attemptsError: null,
    attemptsLoop: false,
  };

  // ---- DOM helpers ------------------------------------------------------

  function setProps(node, props) {
    if (!props) return;
    for (const key of Object.keys(props)) {
      const value = props[key];
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function addKids(node, kids) {
    for (const kid of kids.flat(4)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.appendChild(typeof kid === "object" ? kid : document.createTextNode(String(kid)));
    }
  }

  function h(tag, props, ...kids) {
    const node = document.createElement(tag);
    setProps(node, props);
    addKids(node, kids);
    return node;
  }

  function s(tag, props, ...kids) {
    const node = document.createElementNS(SVGNS, tag);
    setProps(node, props);
    addKids(node, kids);
    return node;
  }

  function setText(node, text) {
    const t = String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function setTitle(node, title) {
    if (title === null || title === undefined || title === "") node.removeAttribute("title");
    else if (node.getAttribute("title") !== String(title)) node.setAttribute("title", String(title));
  }

  // Keeps `container`'s children in the order of `items`, one element per
  // key, reusing the elements of the previous call.
  const listCache = new WeakMap();
  function syncList(container, items, keyOf, make, update, placeholder) {
    let cache = listCache.get(container);
    if (!cache) {
      cache = { rows: new Map(), empty: null };
      listCache.set(container, cache);
    }
    const seen = new Set();
    const ordered = [];
    items.forEach((item, i) => {
      let key = String(keyOf(item, i));
      if (seen.has(key)) key += "\u0000" + i;
      seen.add(key);
      let row = cache.rows.get(key);
      if (!row) {
        row = make(item);
        cache.rows.set(key, row);
      }
      update(row, item);
      ordered.push(row);
    });
    for (const [key, row] of cache.rows) {
      if (!seen.has(key)) {
        cache.rows.delete(key);
        row.remove();
      }
    }
    if (ordered.length === 0) {
      if (!cache.empty && placeholder) cache.empty = placeholder();
      if (cache.empty && cache.empty.parentNode !== container) container.appendChild(cache.empty);
      return;
    }
    if (cache.empty) cache.empty.remove();
    ordered.forEach((row, i) => {
      const at = container.children[i];
      if (at !== row) container.insertBefore(row, at || null);
    });
  }

  // ---- values and formats -----------------------------------------------

  function get(obj, path) {
    let cur = obj;
    for (const part of path.split(".")) {
      if (cur === null || typeof cur !== "object") return undefined;
      cur = cur[part];
    }
    return cur;
  }

  function num(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }

  function str(v) {
    return typeof v === "string" ? v : typeof v === "number" ? String(v) : null;
  }

  function arr(v) {
    return Array.isArray(v) ? v : [];
  }

  function fmtInt(v) {
    const n = num(v);
    return n === null ? DASH : intFormat.format(Math.round(n));
  }

  function fmtFixed(v, digits) {
    const n = num(v);
    return n === null ? DASH : n.toFixed(digits);
  }

  function fmtSeconds(ms) {
    const n = num(ms);
    if (n === null) return DASH;
    const sec = n / 1000;
    return sec < 10 ? sec.toFixed(2) + " s" : sec < 100 ? sec.toFixed(1) + " s" : intFormat.format(Math.round(sec)) + " s";
  }

  function fmtDuration(ms) {
    const n = num(ms);
    if (n === null || n < 0) return DASH;
    const total = Math.floor(n / 1000);
    const d = Math.floor(total / 86400);
    const hr = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = total % 60;
    if (d > 0) return `${d} d ${hr} h`;
    if (hr > 0) return `${hr} h ${m} m`;
    if (m > 0) return `${m} m ${sec} s`;
    return `${sec} s`;
  }

  function nowMs() {
    return Date.now() + state.clockSkewMs;
  }

  function fmtAgo(ts) {
    const t = num(ts);
    if (t === null) return DASH;
    const sec = Math.max(0, (nowMs() - t) / 1000);
    if (sec < 1) return "just now";
    if (sec < 60) return `${Math.floor(sec)} s ago`;
    if (sec < 3600) return `${Math.floor(sec / 60)} m ago`;
    if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
    return `${Math.floor(sec / 86400)} d ago`;
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  function fmtClock(ts) {
    const t = num(ts);
    if (t === null) return DASH;
    const d = new Date(t);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function fmtDate(ts) {
    const t = num(ts);
    return t === null ? null : new Date(t).toString();
  }

  function fmtBytes(v) {
    const n = num(v);
    if (n === null) return DASH;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let x = n;
    let u = 0;
    while (x >= 1024 && u < units.length - 1) {
      x /= 1024;
      u += 1;
    }
    return (u === 0 ? String(Math.round(x)) : x.toFixed(x < 10 ? 2 : 1)) + " " + units[u];
  }

  function shortHex(v, head = 10, tail = 6) {
    const t = str(v);
    if (t === null || t === "") return DASH;
    return t.length <= head + tail + 1 ? t : t.slice(0, head) + "\u2026" + t.slice(-tail);
  }

  function clip(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
  }

  function pct(part, whole) {
    const p = num(part);
    const w = num(whole);
    if (p === null || w === null || w <= 0) return 0;
    return Math.max(0, Math.min(100, (p / w) * 100));
  }

  // ---- building blocks ----------------------------------------------------

  // A view keeps a list of bindings: element + function of the status.
  function makeView(role) {
    const view = { role, bindings: [], root: h("div", { class: "view view-" + role }) };
    // An integer at `path` in /status, in an element the test can find.
    view.field = (path, cls) => {
      const el = h("span", { class: cls ? "num " + cls : "num", "data-field": path }, DASH);
      view.bindings.push([el, (st) => fmtInt(get(st, path))]);
      return el;
    };
    view.value = (fn, cls) => {
      const el = h("span", { class: cls || "val" }, DASH);
      view.bindings.push([el, fn]);
      return el;
    };
    view.apply = (st) => {
      for (const [el, fn] of view.bindings) {
        let text;
        try {
          text = fn(st);
        } catch (e) {
          text = DASH;
        }
        setText(el, text === null || text === undefined || text === "" ? DASH : text);
      }
    };
    return view;
  }

  function chip(label, ...value) {
    return h("div", { class: "chip" }, h("span", { class: "chip-k" }, label), h("span", { class: "chip-v" }, value));
  }

  function card(title, cls, ...body) {
    return h("section", { class: "card" + (cls ? " " + cls : "") }, h("h2", { class: "card-title" }, title), body);
  }

  function stat(label, valueEl, unit, cls) {
    return h(
      "div",
      { class: "stat" + (cls ? " " + cls : "") },
      h("div", { class: "stat-v" }, valueEl, unit ? h("span", { class: "unit" }, unit) : null),
      h("div", { class: "stat-k" }, label)
    );
  }

  function panel(title, extra, ...body) {
    return h(
      "section",
      { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title" }, title), extra),
      body
    );
  }

  function table(cls, headers) {
    const tbody = h("tbody");
    const t = h(
      "table",
      { class: "grid " + cls },
      h("thead", null, h("tr", null, headers.map(([label, c, title]) => h("th", { class: c || null, title: title || null }, label)))),
      tbody
    );
    return { wrap: h("div", { class: "table-wrap" }, t), tbody, cols: headers.length };
  }

  function emptyRow(cols, text) {
    return () => h("tr", { class: "empty" }, h("td", { colspan: cols }, text));
  }

  function badge(text, cls) {
    return h("span", { class: "badge " + cls }, text);
  }

  function keyLabel(el, key) {
    const k = str(key);
    setText(el, shortHex(k));
    setTitle(el, k);
  }

  function identityChips(view) {
    const nodeId = view.value((x) => str(get(x, "node.node_id")), "mono");
    const key = h("span", { class: "mono" }, DASH);
    view.bindings.push([key, (x) => {
      keyLabel(key, get(x, "node.public_key"));
      return key.textContent;
    }]);
    return [chip("node", nodeId), chip("key", key)];
  }

  // ---- distributor ---------------------------------------------------------

  function buildDistributor() {
    const view = makeView("distributor");
    const rate = { prev: null, prevT: 0, value: null };
    view.provers = [];

    // Header.
    const roleBadge = h("span", { class: "role-badge" }, "distributor");
    const central = h("span", { class: "role-badge central", hidden: true }, "centralized");
    const api = h("span", { class: "mono" }, location.host || DASH);
    const headerChips = [
      h("div", { class: "chip role" }, roleBadge, central),
      identityChips(view),
      chip("uptime", view.value((x) => fmtDuration(get(x, "uptime_ms")))),
      chip("peers", view.field("peers")),
      chip("circuit", view.value((x) => str(get(x, "circuit")), "mono")),
      chip("ledger", view.value((x) => (num(get(x, "ledger.height")) === null ? DASH : "#" + fmtInt(get(x, "ledger.height"))))),
      chip("api", api),
    ];

    // Cards.
    const jobsBar = h("div", { class: "stack" });
    const segFresh = h("div", { class: "seg seg-fresh" });
    const segPending = h("div", { class: "seg seg-pending" });
    const segDone = h("div", { class: "seg seg-done" });
    addKids(jobsBar, [segDone, segPending, segFresh]);

    const queues = h("div", { class: "queues" });
    const lastBlock = h("div", { class: "last-block" }, DASH);
    const rateEl = h("span", { class: "num" }, DASH);

    const cards = h(
      "div",
      { class: "cards" },
      card(
        "Batches",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("proven / total", [view.field("batches.proven", "big"), h("span", { class: "sep" }, "/"), view.field("batches.total", "big")]),
          stat("open", view.field("batches.open", "big"))
        )
      ),
      card(
        "Jobs",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("fresh", view.field("jobs.fresh", "big"), null, "key-fresh"),
          stat("pending", view.field("jobs.pending", "big"), null, "key-pending"),
          stat("done", view.field("jobs.done", "big"), null, "key-done")
        ),
        jobsBar
      ),
      card(
        "Verification",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("proofs verified", view.field("verification.proofs", "big")),
          stat("mean", view.value((x) => (num(get(x, "verification.proofs")) ? fmtFixed(get(x, "verification.mean_ms"), 2) : DASH), "num"), "ms"),
          stat("rate", rateEl, "proofs/s")
        )
      ),
      card("Queues", null, queues),
      card(
        "Ledger",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("height", view.field("ledger.height", "big")),
          stat("pending txs", view.field("ledger.pending", "big"))
        ),
        lastBlock
      ),
      card(
        "Chain",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("settled batch", view.field("chain.settled_batch", "big")),
          stat("unsettled", view.field("chain.batches_unsettled", "big")),
          stat("anchored block", view.field("chain.anchored_height", "big")),
          stat("unanchored", view.field("chain.blocks_unanchored", "big"))
        ),
        h(
          "div",
          { class: "kv-lines" },
          h("div", null, h("span", { class: "k" }, "payouts "), view.value((x) => (get(x, "chain") ? shortHex(get(x, "chain.payouts"), 8, 4) : "no chain configured"), "mono")),
          h("div", null, h("span", { class: "k" }, "txs pending "), view.field("chain.pending_txs"), h("span", { class: "k" }, "  gas used "), view.field("chain.gas_used")),
          h("div", null, h("span", { class: "k" }, "last error "), view.value((x) => clip(str(get(x, "chain.last_error")) || "none", 80)))
        )
      ),
      card(
        "Wire",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("rpc in", view.value((x) => fmtBytes(get(x, "wire.rpc_bytes_read")), "num")),
          stat("rpc out", view.value((x) => fmtBytes(get(x, "wire.rpc_bytes_written")), "num"))
        ),
        h(
          "div",
          { class: "kv-lines" },
          h("div", null, h("span", { class: "k" }, "proving key "), view.value((x) => shortHex(get(x, "proving_key"), 8, 4), "mono")),
          h("div", null, h("span", { class: "k" }, "verifying key "), view.value((x) => shortHex(get(x, "verifying_key"), 8, 4), "mono"))
        )
      )
    );

    // Timeline.
    const legend = h(
      "div",
      { class: "legend" },
      OUTCOMES.map((o) => h("span", { class: "legend-item" }, h("span", { class: "swatch a-" + o }), o))
    );
    const timelineNote = h("span", { class: "panel-note" }, "");
    const timelineBox = h("div", { class: "timeline" }, h("p", { class: "muted" }, "waiting for /attempts…"));

    // Provers table.
    const provers = table("provers", [
      ["node", "l"],
      ["speed", "r", "mean proving time of accepted proofs"],
      ["assigned", "r"],
      ["won", "r", "accepted proofs"],
      ["late", "r"],
      ["invalid", "r"],
      ["released", "r"],
      ["earned", "r"],
      ["balance", "r"],
      ["strikes", "r"],
      ["holding", "r", "jobs held now"],
      ["last seen", "r"],
    ]);
    const proversNote = h("span", { class: "panel-note" }, "");

    // Batches table.
    const batches = table("batches", [
      ["batch", "r"],
      ["progress", "l"],
      ["done", "r", "jobs done"],
      ["jobs", "r"],
      ["txs", "r"],
      ["created", "r"],
      ["latency", "r", "created to proven"],
      ["state", "l"],
    ]);
    const batchesNote = h("span", { class: "panel-note" }, "");

    addKids(view.root, [
      cards,
      panel("Attempts", [timelineNote, legend], timelineBox),
      h(
        "div",
        { class: "tables" },
        panel("Provers", proversNote, provers.wrap),
        panel("Batches", batchesNote, batches.wrap)
      ),
    ]);
    view.header = headerChips;

    const proverCells = new WeakMap();
    function makeProverRow() {
      const c = {
        node: h("td", { class: "l mono" }),
        speed: h("td", { class: "r" }),
        assigned: h("td", { class: "r", "data-field": "assigned" }),
        accepted: h("td", { class: "r", "data-field": "accepted" }),
        late: h("td", { class: "r", "data-field": "late" }),
        invalid: h("td", { class: "r", "data-field": "invalid" }),
        released: h("td", { class: "r", "data-field": "released" }),
        earned: h("td", { class: "r", "data-field": "earned" }),
        balance: h("td", { class: "r", "data-field": "balance" }),
        strikes: h("td", { class: "r", "data-field": "strikes" }),
        holding: h("td", { class: "r", "data-field": "holding" }),
        seen: h("td", { class: "r muted" }),
      };
      const tr = h("tr", null, Object.values(c));
      proverCells.set(tr, c);
      return tr;
    }
    function updateProverRow(tr, p) {
      const c = proverCells.get(tr);
      const id = str(p.node_id) || (str(p.public_key) || "").slice(0, 12) || DASH;
      if (tr.getAttribute("data-prover") !== id) tr.setAttribute("data-prover", id);
      setText(c.node, id);
      setTitle(c.node, str(p.public_key));
      setText(c.speed, fmtSeconds(p.mean_prove_ms));
      for (const k of ["assigned", "accepted", "late", "invalid", "released", "earned", "balance", "strikes", "holding"]) {
        setText(c[k], fmtInt(p[k]));
      }
      setText(c.seen, fmtAgo(p.last_seen_ms));
      setTitle(c.seen, fmtDate(p.last_seen_ms));
      tr.classList.toggle("struck", (num(p.strikes) || 0) > 0);
      c.invalid.classList.toggle("bad", (num(p.invalid) || 0) > 0);
      c.late.classList.toggle("warn", (num(p.late) || 0) > 0);
    }

    const batchCells = new WeakMap();
    function makeBatchRow() {
      const fill = h("div", { class: "bar-fill" });
      const c = {
        id: h("td", { class: "r mono" }),
        progress: h("td", { class: "l" }, h("div", { class: "bar" }, fill)),
        fill,
        done: h("td", { class: "r", "data-field": "done" }),
        jobs: h("td", { class: "r", "data-field": "jobs" }),
        txs: h("td", { class: "r", "data-field": "txs" }),
        created: h("td", { class: "r muted" }),
        latency: h("td", { class: "r" }),
        state: h("td", { class: "l" }),
      };
      const tr = h("tr", null, c.id, c.progress, c.done, c.jobs, c.txs, c.created, c.latency, c.state);
      batchCells.set(tr, c);
      return tr;
    }
    function updateBatchRow(tr, b) {
      const c = batchCells.get(tr);
      const id = fmtInt(b.id);
      const idAttr = num(b.id) === null ? String(str(b.id) || "") : String(b.id);
      if (tr.getAttribute("data-batch") !== idAttr) tr.setAttribute("data-batch", idAttr);
      setText(c.id, id);
      setText(c.done, fmtInt(b.done));
      setText(c.jobs, fmtInt(b.jobs));
      setText(c.txs, fmtInt(b.txs));
      setText(c.created, fmtClock(b.created_ms));
      setTitle(c.created, fmtDate(b.created_ms));
      setText(c.latency, num(b.latency_ms) === null ? DASH : (b.latency_ms / 1000).toFixed(1) + " s");
      const proven = num(b.proven_ms) !== null;
      c.fill.style.width = (proven ? 100 : pct(b.done, b.jobs)).toFixed(1) + "%";
      c.fill.classList.toggle("full", proven);
      setTitle(c.progress, `${fmtInt(b.done)} of ${fmtInt(b.jobs)} jobs done`);
      const stateText = proven ? "proven" : "proving";
      if (c.state.textContent !== stateText) c.state.replaceChildren(badge(stateText, proven ? "ok" : "busy"));
      setTitle(c.state, proven ? "proven " + fmtDate(b.proven_ms) : null);
    }

    const queueCells = new WeakMap();
    function makeQueueRow() {
      const fill = h("div", { class: "bar-fill" });
      const c = {
        name: h("span", { class: "q-name mono" }),
        depth: h("span", { class: "num" }),
        cap: h("span", { class: "num muted" }),
        fill,
      };
      const row = h(
        "div",
        { class: "q-row" },
        c.name,
        h("span", { class: "q-num" }, c.depth, h("span", { class: "sep" }, "/"), c.cap),
        h("div", { class: "bar small" }, fill)
      );
      queueCells.set(row, c);
      return row;
    }
    function updateQueueRow(row, q) {
      const c = queueCells.get(row);
      setText(c.name, q.name.replace(/_/g, " "));
      setTitle(c.name, q.name);
      setText(c.depth, fmtInt(get(q.v, "depth")));
      setText(c.cap, fmtInt(get(q.v, "capacity")));
      const p = pct(get(q.v, "depth"), get(q.v, "capacity"));
      c.fill.style.width = Math.max(p, p > 0 ? 2 : 0).toFixed(1) + "%";
      c.fill.classList.toggle("amber", p >= 50 && p < 90);
      c.fill.classList.toggle("red", p >= 90);
    }

    view.update = (st) => {
      view.apply(st);
      central.hidden = get(st, "centralized") !== true;
      const nodeApi = str(get(st, "node.api"));
      setTitle(api, nodeApi ? "the node listens on " + nodeApi : null);

      // Jobs stacked bar.
      const fresh = num(get(st, "jobs.fresh")) || 0;
      const pending = num(get(st, "jobs.pending")) || 0;
      const done = num(get(st, "jobs.done")) || 0;
      const all = fresh + pending + done;
      segFresh.style.width = pct(fresh, all).toFixed(2) + "%";
      segPending.style.width = pct(pending, all).toFixed(2) + "%";
      segDone.style.width = pct(done, all).toFixed(2) + "%";
      setTitle(jobsBar, `${fmtInt(done)} done · ${fmtInt(pending)} pending · ${fmtInt(fresh)} fresh`);

      // Verification rate, from the change between polls, smoothed.
      const proofs = num(get(st, "verification.proofs"));
      const t = performance.now();
      if (proofs !== null) {
        if (rate.prev !== null && proofs >= rate.prev && t > rate.prevT) {
          const dt = (t - rate.prevT) / 1000;
          const inst = (proofs - rate.prev) / dt;
          const a = 1 - Math.exp(-dt / RATE_TAU_S);
          rate.value = rate.value === null ? inst : rate.value + a * (inst - rate.value);
        } else if (rate.prev !== null && proofs < rate.prev) {
          rate.value = null; // the node restarted
        }
        rate.prev = proofs;
        rate.prevT = t;
      }
      setText(rateEl, rate.value === null ? DASH : rate.value.toFixed(rate.value < 10 ? 2 : 1));

      // Queues.
      const qs = get(st, "queues");
      const qItems = qs && typeof qs === "object" && !Array.isArray(qs)
        ? Object.keys(qs).map((name) => ({ name, v: qs[name] }))
        : [];
      syncList(queues, qItems, (q) => q.name, makeQueueRow, updateQueueRow, () => h("p", { class: "muted" }, DASH));

      // Last block.
      const lb = get(st, "ledger.last_block");
      if (lb && typeof lb === "object") {
        const hash = str(lb.hash);
        lastBlock.replaceChildren(
          h("span", { class: "nowrap" }, h("span", { class: "k" }, "last block "), h("span", { class: "num" }, "#" + fmtInt(lb.height))),
          " · ",
          h("span", { class: "mono", title: hash }, hash ? hash.slice(0, 10) : DASH),
          " · ",
          h("span", { class: "nowrap" }, h("span", { class: "num" }, fmtInt(lb.txs)), num(lb.txs) === 1 ? " tx" : " txs"),
          " · ",
          h("span", { class: "nowrap", title: fmtDate(lb.time_ms) }, fmtAgo(lb.time_ms))
        );
      } else {
        lastBlock.replaceChildren(h("span", { class: "k" }, "last block "), h("span", { class: "muted" }, "none yet"));
      }

      // Provers, most accepted first.
      const plist = arr(get(st, "provers")).filter((p) => p && typeof p === "object");
      plist.sort((a, b) => {
        const d = (num(b.accepted) || 0) - (num(a.accepted) || 0);
        if (d !== 0) return d;
        const x = str(a.node_id) || "";
        const y = str(b.node_id) || "";
        return x < y ? -1 : x > y ? 1 : 0;
      });
      view.provers = plist;
      syncList(
        provers.tbody,
        plist,
        (p, i) => str(p.public_key) || str(p.node_id) || "#" + i,
        makeProverRow,
        updateProverRow,
        emptyRow(provers.cols, "no provers yet")
      );
      const struck = plist.filter((p) => (num(p.strikes) || 0) > 0).length;
      // Only the most recently seen are listed; the rest are counted.
      const unlisted = num(get(st, "provers_unlisted")) || 0;
      const known = unlisted ? `${fmtInt(plist.length + unlisted)} known · ${plist.length} most recent listed` : `${plist.length} known`;
      setText(proversNote, plist.length ? known + (struck ? ` · ${struck} with strikes` : "") : "");

      // Batches, newest first.
      const blist = arr(get(st, "batches.list")).filter((b) => b && typeof b === "object");
      const sorted = blist
        .map((b, i) => [b, i])
        .sort((x, y) => (num(y[0].id) ?? y[1]) - (num(x[0].id) ?? x[1]) || y[1] - x[1])
        .map(([b]) => b);
      const shown = sorted.slice(0, MAX_BATCH_ROWS);
      syncList(
        batches.tbody,
        shown,
        (b, i) => (num(b.id) === null ? "#" + i : "b" + b.id),
        makeBatchRow,
        updateBatchRow,
        emptyRow(batches.cols, "no batches yet")
      );
      setText(batchesNote, sorted.length > shown.length ? `newest ${shown.length} of ${fmtInt(sorted.length)}` : "");
    };

    view.drawTimeline = () => drawTimeline(timelineBox, timelineNote, view.provers);
    return view;
  }

  // ---- the attempts timeline ---------------------------------------------

  function niceStep(spanMs) {
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].map((x) => x * 1000);
    for (const step of steps) if (spanMs / step <= 6) return step;
    return steps[steps.length - 1];
  }

  function fmtRel(ms) {
    const sec = Math.round(ms / 1000);
    if (sec === 0) return "now";
    const m = Math.floor(sec / 60);
    const r = sec % 60;
    if (m === 0) return `\u2212${r} s`;
    return r === 0 ? `\u2212${m} m` : `\u2212${m} m ${r} s`;
  }

  function drawTimeline(box, note, provers) {
    if (state.attempts === null) {
      if (state.attemptsError) {
        box.replaceChildren(h("p", { class: "muted" }, "attempts unavailable — retrying (" + clip(state.attemptsError, 160) + ")"));
      }
      return;
    }
    const stale = state.attemptsError ? " · stale: " + clip(state.attemptsError, 80) : "";
    const list = state.attempts.filter(
      (a) => a && typeof a === "object" && num(a.assigned_ms) !== null && str(a.prover) !== null
    );
    if (list.length === 0) {
      setText(note, stale.replace(/^ · /, ""));
      box.replaceChildren(h("p", { class: "muted" }, "no hand-outs yet"));
      return;
    }

    let latest = 0;
    let earliest = Infinity;
    for (const a of list) {
      latest = Math.max(latest, a.assigned_ms, num(a.ended_ms) || 0);
      earliest = Math.min(earliest, a.assigned_ms);
    }
    const t1 = Math.max(nowMs(), latest);
    const span = Math.max(10000, Math.min(TIMELINE_WINDOW_MS, t1 - earliest));
    const t0 = t1 - span;

    // Rows: one per prover, in the provers table's order.
    const order = new Map();
    const names = new Map();
    provers.forEach((p, i) => {
      const k = str(p.public_key);
      if (k) {
        order.set(k, i);
        if (str(p.node_id)) names.set(k, str(p.node_id));
      }
    });
    const rows = new Map();
    let visible = 0;
    for (const a of list) {
      const end = num(a.ended_ms) === null ? t1 : a.ended_ms;
      if (end < t0) continue;
      visible += 1;
      const k = a.prover;
      if (!rows.has(k)) rows.set(k, { key: k, first: a.assigned_ms, items: [] });
      rows.get(k).items.push({ a, start: Math.max(a.assigned_ms, t0), end: Math.max(end, a.assigned_ms) });
    }
    const rowList = [...rows.values()].sort((x, y) => {
      const ox = order.has(x.key) ? order.get(x.key) : Infinity;
      const oy = order.has(y.key) ? order.get(y.key) : Infinity;
      return ox !== oy ? ox - oy : x.first - y.first;
    });
    const more = Math.max(0, rowList.length - MAX_TIMELINE_ROWS);
    const shownRows = rowList.slice(0, MAX_TIMELINE_ROWS);

    const width = Math.max(320, Math.floor(box.clientWidth || 900));
    const labelW = 104;
    const padR = 12;
    const axisH = 20;
    const n = Math.max(1, shownRows.length);
    const rowH = Math.max(7, Math.min(22, Math.floor(600 / n)));
    const plotW = width - labelW - padR;
    const height = n * rowH + axisH + (more ? 16 : 2);
    const x = (t) => labelW + ((t - t0) / span) * plotW;

    const root = s("svg", {
      class: "tl",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": "attempts per prover over time",
    });
    const defs = s(
      "defs",
      null,
      s(
        "pattern",
        { id: "cp-stripes", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
        s("rect", { width: 6, height: 6, class: "stripe-bg" }),
        s("rect", { width: 2.5, height: 6, class: "stripe-fg" })
      )
    );
    root.appendChild(defs);

    // Grid and axis.
    const step = niceStep(span);
    const grid = s("g", { class: "tl-grid" });
    const axisY = n * rowH;
    for (let back = 0; back <= span + 1; back += step) {
      const gx = x(t1 - back);
      grid.appendChild(s("line", { x1: gx, x2: gx, y1: 0, y2: axisY }));
      const label = s("text", { x: gx, y: axisY + 14, class: "tl-tick" }, fmtRel(back));
      if (back === 0) label.setAttribute("text-anchor", "end");
      else if (gx - labelW < 20) label.setAttribute("text-anchor", "start");
      else label.setAttribute("text-anchor", "middle");
      grid.appendChild(label);
    }
    grid.appendChild(s("line", { class: "tl-axis", x1: labelW, x2: labelW + plotW, y1: axisY, y2: axisY }));

    const rowsG = s("g", { class: "tl-rows" });
    const fontSize = Math.max(7, Math.min(12, rowH - 3));
    shownRows.forEach((row, i) => {
      const y = i * rowH;
      if (i % 2 === 1) rowsG.appendChild(s("rect", { class: "tl-alt", x: 0, y, width, height: rowH }));
      const name = names.get(row.key) || row.key.slice(0, 12);
      rowsG.appendChild(
        s(
          "text",
          { class: "tl-label", x: labelW - 6, y: y + rowH / 2, "text-anchor": "end", "dominant-baseline": "central", "font-size": fontSize },
          clip(name, 13),
          s("title", null, row.key)
        )
      );
      // Lanes, so that a prover's overlapping hand-outs stay visible.
      const items = row.items.slice().sort((p, q) => p.start - q.start);
      const laneEnds = [];
      for (const it of items) {
        let lane = laneEnds.findIndex((e) => e <= it.start);
        if (lane === -1) {
          if (laneEnds.length < 3) {
            lane = laneEnds.length;
            laneEnds.push(0);
          } else lane = laneEnds.indexOf(Math.min(...laneEnds));
        }
        laneEnds[lane] = it.end;
        it.lane = lane;
      }
      const lanes = Math.max(1, laneEnds.length);
      const inner = Math.max(3, rowH - (rowH >= 12 ? 4 : 2));
      const laneH = inner / lanes;
      const top = y + (rowH - inner) / 2;
      for (const it of items) {
        const a = it.a;
        const outcome = OUTCOMES.includes(a.outcome) ? a.outcome : "unknown";
        const bx = x(it.start);
        const bw = Math.max(2, x(it.end) - bx);
        const ended = num(a.ended_ms);
        const dur = (ended === null ? t1 : ended) - a.assigned_ms;
        const tip = [
          str(a.job) || "job " + DASH,
          "request " + fmtInt(a.request),
          outcome === "unknown" ? String(str(a.outcome) || DASH) : outcome,
          (ended === null ? "open for " : "took ") + fmtSeconds(dur),
          "prover " + name,
        ].join(" · ");
        rowsG.appendChild(
          s(
            "rect",
            {
              class: "bar-a a-" + outcome,
              x: bx.toFixed(1),
              y: (top + it.lane * laneH + (lanes > 1 ? 0.5 : 0)).toFixed(1),
              width: bw.toFixed(1),
              height: Math.max(1.5, laneH - (lanes > 1 ? 1 : 0)).toFixed(1),
              rx: laneH >= 6 ? 2 : 0,
            },
            s("title", null, tip)
          )
        );
      }
    });
    root.appendChild(rowsG);
    root.appendChild(grid);
    if (more) {
      root.appendChild(
        s("text", { class: "tl-more", x: labelW, y: height - 3 }, `+${more} more prover${more === 1 ? "" : "s"} not shown`)
      );
    }
    setText(
      note,
      `${fmtInt(visible)} hand-out${visible === 1 ? "" : "s"} · last ${fmtRel(span).replace("\u2212", "")} · ${rowList.length} prover${rowList.length === 1 ? "" : "s"}` + stale
    );
    box.replaceChildren(root);
  }

  // ---- prover --------------------------------------------------------------

  function buildProver() {
    const view = makeView("prover");

    const distId = h("span", { class: "mono" }, DASH);
    const distKey = h("span", { class: "mono muted" }, DASH);
    const fault = h("div", { class: "chip warn", hidden: true }, h("span", { class: "chip-k" }, "fault"), h("span", { class: "chip-v" }));
    view.header = [
      h("div", { class: "chip role" }, h("span", { class: "role-badge prover" }, "prover")),
      identityChips(view),
      chip("uptime", view.value((x) => fmtDuration(get(x, "uptime_ms")))),
      chip("distributor", distId, " ", distKey),
      fault,
      chip("api", h("span", { class: "mono" }, location.host || DASH)),
    ];

    const stopped = view.field("workers_stopped", "big");
    const line = (k, value) => h("div", null, h("span", { class: "k" }, k + " "), view.value(value));
    const stoppedCard = card(
      "Workers",
      null,
      h("div", { class: "stat-row" }, stat("stopped", stopped)),
      h(
        "div",
        { class: "kv-lines" },
        line("now", (x) => {
          const ws = arr(get(x, "workers")).filter((w) => w && typeof w === "object");
          if (!ws.length) return "none";
          return ws.map((w) => `${w.slot} ${str(w.doing) || DASH}${w.job ? " " + w.job : ""} (${fmtSeconds(w.for_ms)})`).join(" · ");
        }),
        line("key", (x) => {
          const k = get(x, "key");
          if (!k || typeof k !== "object") return "ready or not needed yet";
          const total = num(k.total_bytes);
          const done = num(k.bytes) || 0;
          const pct = total ? ` ${Math.floor((100 * done) / total)} % of ${(total / 1e6).toFixed(1)} MB` : ` ${(done / 1e6).toFixed(1)} MB`;
          return `${str(k.doing) || DASH}${pct}`;
        }),
        line("first job", (x) => {
          const f = get(x, "first_job") || {};
          if (num(f.accepted_ms) !== null) return `accepted after ${fmtSeconds(f.accepted_ms)} (key ready after ${fmtSeconds(f.key_ready_ms)})`;
          if (num(f.assigned_ms) !== null) return `handed out after ${fmtSeconds(f.assigned_ms)}; not accepted yet`;
          return "none yet";
        })
      )
    );
    const errorBox = h("div", { class: "error-box", hidden: true });

    const cards = h(
      "div",
      { class: "cards" },
      card(
        "Jobs",
        "wide",
        h(
          "div",
          { class: "stat-row" },
          stat("active", view.field("jobs.active", "big")),
          stat("accepted", view.field("jobs.accepted", "big"), null, "key-ok"),
          stat("late", view.field("jobs.late", "big"), null, "key-late"),
          stat("invalid", view.field("jobs.invalid", "big"), null, "key-bad"),
          stat("released", view.field("jobs.released", "big"), null, "key-released"),
          stat("failed", view.field("jobs.failed", "big"), null, "key-bad")
        )
      ),
      card("Earned", null, h("div", { class: "stat-row" }, stat("ledger units", view.field("earned", "big")))),
      card(
        "Claim on chain",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("claimable", view.field("balance_proof.balance", "big")),
          stat("at block", view.field("balance_proof.height", "big")),
          stat("anchored block", view.field("anchoring.anchored_height", "big"))
        ),
        h(
          "div",
          { class: "kv-lines" },
          h(
            "div",
            null,
            h("span", { class: "k" }, "anchoring "),
            view.value((x) => {
              if (!get(x, "anchoring")) return "not watched (set [chain] rpc_url and payouts)";
              if (get(x, "anchoring.forged_anchor")) return "FORGED: " + clip(str(get(x, "anchoring.forged_anchor")), 80);
              if (get(x, "anchoring.overdue")) return "OVERDUE: block " + get(x, "anchoring.oldest_unanchored_height") + " waited " + fmtSeconds(get(x, "anchoring.oldest_unanchored_ms"));
              return "on time";
            })
          )
        )
      ),
      card(
        "Receipts",
        null,
        h(
          "div",
          { class: "stat-row" },
          stat("kept", view.field("receipts", "big")),
          stat("awaiting", view.field("awaiting_receipts", "big"))
        )
      ),
      stoppedCard
    );

    const jobs = table("recent-jobs", [
      ["job", "l"],
      ["request", "r"],
      ["outcome", "l"],
      ["prove time", "r"],
      ["reward", "r"],
      ["when", "r"],
    ]);
    const receipts = h("ul", { class: "receipts" });

    addKids(view.root, [
      errorBox,
      cards,
      h(
        "div",
        { class: "tables pair" },
        panel("Recent jobs", null, jobs.wrap),
        panel("Recent receipts", null, h("div", { class: "list-wrap" }, receipts))
      ),
    ]);

    const jobCells = new WeakMap();
    function makeJobRow() {
      const c = {
        job: h("td", { class: "l mono" }),
        request: h("td", { class: "r muted" }),
        outcome: h("td", { class: "l" }),
        prove: h("td", { class: "r" }),
        reward: h("td", { class: "r" }),
        when: h("td", { class: "r muted" }),
      };
      const tr = h("tr", null, Object.values(c));
      jobCells.set(tr, c);
      return tr;
    }
    function updateJobRow(tr, j) {
      const c = jobCells.get(tr);
      setText(c.job, str(j.job) || DASH);
      setText(c.request, fmtInt(j.request));
      const o = str(j.outcome) || DASH;
      if (c.outcome.textContent !== o) {
        c.outcome.replaceChildren(badge(o, JOB_OUTCOMES.includes(o) ? "o-" + o : "o-unknown"));
      }
      setText(c.prove, fmtSeconds(j.prove_ms));
      setText(c.reward, fmtInt(j.reward));
      setText(c.when, fmtAgo(j.ended_ms));
      setTitle(c.when, fmtDate(j.ended_ms));
    }

    const receiptCells = new WeakMap();
    function makeReceipt() {
      const c = { job: h("span", { class: "mono" }), height: h("span", { class: "num" }) };
      const li = h("li", null, c.job, h("span", { class: "muted" }, " in block #"), c.height);
      receiptCells.set(li, c);
      return li;
    }
    function updateReceipt(li, r) {
      const c = receiptCells.get(li);
      setText(c.job, str(r.job) || DASH);
      setText(c.height, fmtInt(r.height));
    }

    view.update = (st) => {
      view.apply(st);
      const dn = str(get(st, "distributor_node_id"));
      const dk = str(get(st, "distributor"));
      setText(distId, dn || (dk ? dk.slice(0, 12) : DASH));
      setTitle(distId, dk);
      setText(distKey, dk ? shortHex(dk) : "");
      setTitle(distKey, dk);
      const f = str(get(st, "fault"));
      fault.hidden = !f || f === "none";
      setText(fault.lastChild, f || "");
      stoppedCard.classList.toggle("alert", (num(get(st, "workers_stopped")) || 0) > 0);

      const err = get(st, "last_error");
      let errText = null;
      if (typeof err === "string" && err !== "") errText = err;
      else if (err && typeof err === "object") errText = JSON.stringify(err);
      if (errText) {
        errBox(errText);
      } else errorBox.hidden = true;

      const jlist = arr(get(st, "recent_jobs"))
        .filter((j) => j && typeof j === "object")
        .map((j, i) => [j, i])
        .sort((x, y) => (num(y[0].ended_ms) ?? -Infinity) - (num(x[0].ended_ms) ?? -Infinity) || x[1] - y[1])
        .map(([j]) => j)
        .slice(0, 100);
      syncList(
        jobs.tbody,
        jlist,
        (j, i) => (num(j.request) === null ? "#" + i : "r" + j.request + "/" + (str(j.job) || "")),
        makeJobRow,
        updateJobRow,
        emptyRow(jobs.cols, "no finished jobs yet")
      );
      const rlist = arr(get(st, "recent_receipts"))
        .filter((r) => r && typeof r === "object")
        .slice(0, 100);
      syncList(receipts, rlist, (r, i) => (str(r.job) || "#") + "@" + i, makeReceipt, updateReceipt, () =>
        h("li", { class: "muted empty" }, "no receipts yet")
      );
    };

    function errBox(text) {
      const t = clip(text, 2000);
      if (errorBox.hidden || errorBox.lastChild === null || errorBox.lastChild.textContent !== t) {
        errorBox.replaceChildren(h("strong", null, "last error "), h("span", { class: "error-text" }, t));
      }
      errorBox.hidden = false;
    }
    return view;
  }

  // ---- any other role ------------------------------------------------------

  function buildOther(role) {
    const view = makeView("other");
    view.role = role;
    view.header = [h("div", { class: "chip role" }, h("span", { class: "role-badge" }, role || DASH)), identityChips(view)];
    addKids(view.root, h("p", { class: "notice" }, "This dashboard knows the distributor and prover roles; this node reports role “", role || DASH, "”."));
    view.update = (st) => view.apply(st);
    return view;
  }

  // ---- polling and rendering ---------------------------------------------

  async function getJSON(url) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      let res;
      try {
        res = await fetch(url, { cache: "no-store", signal: controller.signal, credentials: "same-origin" });
      } catch (e) {
        throw new Error(controller.signal.aborted ? "timed out" : "network error");
      }
      const text = await res.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = null;
      }
      if (!res.ok) {
        const msg = body && typeof body.error === "string" ? body.error : res.statusText;
        throw new Error(`HTTP ${res.status}` + (msg ? ": " + clip(msg, 200) : ""));
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("the answer is not a JSON object");
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  const banner = document.getElementById("banner");
  const bannerDetail = document.getElementById("banner-detail");
  const identity = document.getElementById("identity");
  const main = document.getElementById("main");
  const lastUpdate = document.getElementById("last-update");

  function setConnected(ok, error) {
    if (ok) {
      banner.hidden = true;
      document.body.classList.remove("stale");
    } else {
      const since = state.updates > 0 ? " · showing data from " + lastUpdate.textContent : "";
      setText(bannerDetail, "(" + clip(error && error.message ? error.message : String(error), 200) + ")" + since);
      banner.hidden = false;
      document.body.classList.add("stale");
    }
  }

  function render(st) {
    const rawRole = get(st, "role") ?? get(st, "node.role");
    const role = str(rawRole) || "";
    const serverNow = num(get(st, "now_ms"));
    state.clockSkewMs = serverNow === null ? 0 : serverNow - Date.now();

    if (!state.view || state.view.role !== role) {
      state.view = role === "distributor" ? buildDistributor() : role === "prover" ? buildProver() : buildOther(role);
      identity.replaceChildren(...state.view.header.flat(4));
      main.replaceChildren(state.view.root);
      if (role === "distributor") {
        state.attempts = null;
        state.attemptsError = null;
        if (!state.attemptsLoop) {
          state.attemptsLoop = true;
          pollAttempts();
        }
      }
    }
    state.view.update(st);

    const nodeId = str(get(st, "node.node_id"));
    document.title = "CrowdProve \u2014 " + (role || "node") + (nodeId ? " " + nodeId : "");
    setText(lastUpdate, fmtClock(Date.now()));
    state.updates += 1;
    document.body.dataset.updates = String(state.updates);
    document.body.dataset.role = role;
  }

  async function pollStatus() {
    const started = performance.now();
    try {
      const st = await getJSON(STATUS_URL);
      setConnected(true);
      try {
        render(st);
      } catch (e) {
        console.error("dashboard: cannot render /status", e);
      }
    } catch (e) {
      setConnected(false, e);
    } finally {
      setTimeout(pollStatus, Math.max(50, STATUS_EVERY_MS - (performance.now() - started)));
    }
  }

  async function pollAttempts() {
    const started = performance.now();
    if (state.view && state.view.role === "distributor") {
      try {
        const doc = await getJSON(ATTEMPTS_URL);
        state.attempts = arr(doc.attempts);
        state.attemptsError = null;
      } catch (e) {
        state.attemptsError = e && e.message ? e.message : String(e);
      }
      try {
        if (state.view && state.view.drawTimeline) state.view.drawTimeline();
      } catch (e) {
        console.error("dashboard: cannot draw the timeline", e);
      }
    }
    setTimeout(pollAttempts, Math.max(50, ATTEMPTS_EVERY_MS - (performance.now() - started)));
  }

  let resizeQueued = false;
  window.addEventListener("resize", () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      if (state.view && state.view.drawTimeline) state.view.drawTimeline();
    });
  });

  pollStatus();
})();
