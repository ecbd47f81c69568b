// Compiles CrowdProve's Solidity (contracts/*.sol and contracts/test/*.sol)
// with the pinned solc and writes one artifact per contract,
// <out>/<Name>.json = {"abi": [...], "bytecode": {"object": "0x..."}}, the
// form alloy's `sol!` reads. Deterministic: the same sources give the same
// bytes, so `scripts/contracts check` can compare.
//
//   node compile-contracts.mjs <contracts dir> <out dir>
//
// Every failure is one line on stderr and exit code 2.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import solc from "solc";

function fail(message) {
    process.stderr.write(`compile-contracts: ${message}\n`);
    process.exit(2);
}

function sources(dir) {
    const found = {};
    for (const sub of ["", "test"]) {
        let names;
        try {
            names = readdirSync(join(dir, sub)).filter((n) => n.endsWith(".sol")).sort();
        } catch (e) {
            if (sub === "") fail(`cannot read ${dir}: ${e.message}`);
            continue;
        }
        for (const name of names) {
            const key = sub === "" ? `contracts/${name}` : `contracts/${sub}/${name}`;
            found[key] = { content: readFileSync(join(dir, sub, name), "utf8") };
        }
    }
    return found;
}

const [dir, out] = process.argv.slice(2);
if (!dir || !out) fail("usage: compile-contracts.mjs <contracts dir> <out dir>");

const input = {
    language: "Solidity",
    sources: sources(dir),
    settings: {
        optimizer: { enabled: true, runs: 200 },
        evmVersion: "cancun",
        outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = output.errors || [];
const errors = problems.filter((e) => e.severity === "error");
if (errors.length > 0) fail(`solc ${solc.version()}: ${errors.map((e) => e.formattedMessage).join("; ")}`);
for (const warning of problems.filter((e) => e.severity !== "error")) {
    process.stderr.write(warning.formattedMessage);
}

mkdirSync(out, { recursive: true });
for (const file of Object.keys(output.contracts).sort()) {
    for (const [name, contract] of Object.entries(output.contracts[file])) {
        if (contract.evm.bytecode.object === "") continue; // interfaces
        const artifact = { abi: contract.abi, bytecode: { object: "0x" + contract.evm.bytecode.object } };
        writeFileSync(join(out, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    }
}
