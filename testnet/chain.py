"""The testnet's L1: an anvil node, the distributor settling on it, and every
prover claiming its pay there at the end (docs/settlement.md)."""

import json
import os
import re
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANVIL = os.path.join(ROOT, "scripts", "chain-tools", "node_modules", "@foundry-rs",
                     "anvil-linux-amd64", "bin", "anvil")
# anvil's first dev accounts (its default mnemonic): 0 is the operator,
# 1 funds the payout contract, 2 sends the provers' claims.
KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
]
FUNDER = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


class Anvil:
    """A local anvil on a free port; its log in the run folder."""

    def __init__(self, run_dir, processes):
        if not os.access(ANVIL, os.X_OK):
            raise RuntimeError(f"no anvil at {ANVIL}: run scripts/setup (or pass --no-chain)")
        self.log_path = os.path.join(run_dir, "logs", "anvil.log")
        out = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ANVIL, "--port", "0", "--host", "127.0.0.1", "--accounts", "3"],
            stdout=subprocess.PIPE, stderr=out, text=True, start_new_session=True)
        processes.append(self.proc)
        self.url = None
        started = time.time()
        for line in self.proc.stdout:
            out.write(line)
            if line.startswith("Listening on "):
                self.url = "http://" + line.split("Listening on ", 1)[1].strip()
                break
            if time.time() - started > 30:
                break
        if not self.url:
            raise RuntimeError(f"anvil did not start; see {self.log_path}")
        # Keep draining its output so its pipe never fills.
        import threading
        threading.Thread(target=lambda: [out.write(l) for l in self.proc.stdout],
                         daemon=True).start()
        keys = os.path.join(run_dir, "keys")
        self.operator_key = os.path.join(keys, "chain-operator.key")
        self.claimer_key = os.path.join(keys, "chain-claimer.key")
        for path, key in ((self.operator_key, KEYS[0]), (self.claimer_key, KEYS[2])):
            with open(path, "w") as f:
                f.write(key)

    def config(self):
        """The distributor's [chain] section."""
        return f'\n[chain]\nrpc_url = "{self.url}"\naccount_key = "{self.operator_key}"\n'

    def rpc(self, method, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.load(r)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def balance(self, address):
        return int(self.rpc("eth_getBalance", address, "latest"), 16)

    def fund(self, to, wei):
        """Sends `wei` from the funding account (anvil's accounts are unlocked)."""
        tx = self.rpc("eth_sendTransaction", {"from": FUNDER, "to": to, "value": hex(wei)})
        for _ in range(100):
            receipt = self.rpc("eth_getTransactionReceipt", tx)
            if receipt:
                if int(receipt["status"], 16) != 1:
                    raise RuntimeError(f"funding {to} reverted")
                return
            time.sleep(0.1)
        raise RuntimeError(f"funding {to} was not mined")


def wait_caught_up(status_of, batches, deadline_s, on_settled):
    """Waits until every batch is settled and every ledger block anchored;
    calls on_settled(batch, time) as each batch is first seen settled.
    Returns the last status, or None past the deadline."""
    started = time.time()
    seen = 0
    while time.time() - started < deadline_s:
        s = status_of()
        chain = (s or {}).get("chain") or {}
        settled = chain.get("settled_batch", 0)
        for b in range(seen + 1, settled + 1):
            on_settled(b, time.time())
        seen = max(seen, settled)
        # Caught up: every batch settled, no credit waiting for a block,
        # and the last block anchored.
        if (settled >= batches and chain.get("pending_txs") == 0
                and s["ledger"]["pending"] == 0
                and chain.get("anchored_height") == s["ledger"]["height"]):
            return s
        time.sleep(0.25)
    return None


def gas_from_log(log_path):
    """Gas of each settlement and anchor, from the distributor's log lines
    `batch settled … chunks=N gas=G` and `ledger blocks anchored from=F
    to=L gas=G after_cut_ms=T` (T: from the last block's cut to its credits
    claimable)."""
    settles, anchors = [], []
    with open(log_path, errors="replace") as f:
        for line in f:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # the log's colours
            gas = re.search(r"\bgas=(\d+)", line)
            if not gas:
                continue
            if "batch settled" in line:
                chunks = re.search(r"\bchunks=(\d+)", line)
                settles.append({"gas": int(gas.group(1)),
                                "chunks": int(chunks.group(1)) if chunks else 0})
            elif "ledger blocks anchored" in line:
                after = re.search(r"\bafter_cut_ms=(\d+)", line)
                span = re.search(r"\bfrom=(\d+) to=(\d+)", line)
                anchors.append({"gas": int(gas.group(1)),
                                "blocks": int(span.group(2)) - int(span.group(1)) + 1 if span else 1,
                                "after_cut_ms": int(after.group(1)) if after else None})
    return settles, anchors


def wait_payouts(status_of, deadline_s):
    """The Payouts contract's address once the distributor has deployed or
    found it (provers watch it), or None past the deadline."""
    started = time.time()
    while time.time() - started < deadline_s:
        payouts = ((status_of() or {}).get("chain") or {}).get("payouts")
        if payouts:
            return payouts
        time.sleep(0.2)
    return None


def claim_all(binary, anvil, distributor, payouts, provers, accounts, status, cli):
    """Every prover that bound an address claims its balance on chain with
    the balance proof it kept (<data-dir>/balance-proof, served with its
    receipts), once that proof covers its whole ledger balance (30 s at
    most); a prover that is down (killed, not restarted) with the operator's
    export instead; returns one row per prover: ledger balance, paid on chain, claim
    gas, and whether its anchoring alarm stayed quiet."""
    rows = []
    bound = {key: node for key, (node, payout) in provers.items() if payout}
    total = sum(a["balance"] for a in accounts if a["prover"] in bound)
    if total:
        anvil.fund(payouts, total)
    deadline = time.time() + 30
    for a in accounts:
        key = a["prover"]
        if key not in bound or a["payout"] != provers[key][1]:
            continue
        node = bound[key]
        ps = status(node)
        while (time.time() < deadline and node.alive()
               and ((ps or {}).get("balance_proof") or {}).get("balance") != a["balance"]):
            time.sleep(0.5)
            ps = status(node)
        proof = os.path.join(node.data, "balance-proof")
        own = node.alive()
        if not own:  # killed and not restarted: the operator exports its proof
            proof = os.path.join(distributor.data, f"{node.name}.balance-proof")
            cli(binary, "ledger", "balance-proof", "--data-dir", distributor.data,
                "--prover", key, "--out", proof)
        claimed = cli(binary, "claim", "--balance-proof", proof,
                      "--distributor", distributor.info["public_key"], "--rpc", anvil.url,
                      "--payouts", payouts, "--sender-key", anvil.claimer_key)
        said = claimed.stdout + claimed.stderr
        gas = re.search(r"gas (\d+)", said)
        anchoring = (ps or {}).get("anchoring") or {}
        rows.append({
            "name": node.name,
            "ledger": a["balance"],
            "paid": anvil.balance(provers[key][1]),
            "claim_gas": int(gas.group(1)) if gas else None,
            "own_proof": own,
            "watched": bool(anchoring),
            "alarm": bool(anchoring.get("overdue")),
            "said": said.strip(),
        })
    return rows
