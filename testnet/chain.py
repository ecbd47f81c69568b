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
    `batch settled … chunks=N gas=G` and `ledger block anchored … gas=G`."""
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
            elif "ledger block anchored" in line:
                anchors.append(int(gas.group(1)))
    return settles, anchors


def claim_all(binary, anvil, distributor, payouts, roles, accounts, cli):
    """Every prover that bound an address claims its balance on chain; returns
    one row per prover: ledger balance, paid on chain, claim gas."""
    rows = []
    total = sum(a["balance"] for a in accounts if roles.get(a["prover"], {}).get("payout"))
    if total:
        anvil.fund(payouts, total)
    for a in accounts:
        role = roles.get(a["prover"], {})
        if not role.get("payout") or a["payout"] != role["payout"]:
            continue
        proof = os.path.join(distributor.data, f"{role['name']}.balance-proof")
        made = cli(binary, "ledger", "balance-proof", "--data-dir", distributor.data,
                   "--prover", a["prover"], "--out", proof)
        claimed = None
        if made.returncode == 0:
            claimed = cli(binary, "claim", "--balance-proof", proof,
                          "--distributor", distributor.info["public_key"], "--rpc", anvil.url,
                          "--payouts", payouts, "--sender-key", anvil.claimer_key)
        said = (claimed or made).stdout + (claimed or made).stderr
        gas = re.search(r"gas (\d+)", said)
        rows.append({
            "name": role["name"],
            "ledger": a["balance"],
            "paid": anvil.balance(role["payout"]),
            "claim_gas": int(gas.group(1)) if gas else None,
            "said": said.strip(),
        })
    return rows
