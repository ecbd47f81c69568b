// The on-chain check of a CrowdProve proof, offline: renders snarkjs's
// Groth16 Solidity verifier from a verification_key.json (the same template
// `snarkjs zkey export solidityverifier` fills from a zkey, so it serves our
// built-in circuit, which has no zkey, and any circom circuit), compiles it
// with solc (JavaScript, bundled), deploys it in @ethereumjs/evm and calls
// verifyProof with a proof's snarkjs files.
//
//   node evm-verifier.mjs solidity <verification_key.json> <Verifier.sol>
//   node evm-verifier.mjs verify <verification_key.json> <proof.json> <public.json>
//
// `verify` prints one JSON line: {"valid": true|false, "gas": <execution gas
// of the call>, "deploy_gas": …}. Every failure is one line on stderr and
// exit code 2.

import { readFileSync, writeFileSync } from "node:fs";

import ejs from "ejs";
import solc from "solc";
import * as snarkjs from "snarkjs";
import { createEVM } from "@ethereumjs/evm";
import { createAddressFromString, hexToBytes, bytesToHex } from "@ethereumjs/util";

const TEMPLATE = new URL("node_modules/snarkjs/templates/verifier_groth16.sol.ejs", import.meta.url);

function fail(message) {
    process.stderr.write(`evm-verifier: ${message}\n`);
    process.exit(2);
}

function readJson(file) {
    try {
        return JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        fail(`cannot read ${file}: ${e.message}`);
    }
}

function solidity(vk) {
    if (vk.protocol !== "groth16" || vk.curve !== "bn128") {
        fail(`not a Groth16 BN254 verification key (protocol ${vk.protocol}, curve ${vk.curve})`);
    }
    return ejs.render(readFileSync(TEMPLATE, "utf8"), vk);
}

function compile(source) {
    const input = {
        language: "Solidity",
        sources: { "Verifier.sol": { content: source } },
        settings: {
            optimizer: { enabled: true, runs: 200 },
            outputSelection: { "*": { "*": ["evm.bytecode.object", "evm.methodIdentifiers"] } },
        },
    };
    const output = JSON.parse(solc.compile(JSON.stringify(input)));
    const errors = (output.errors || []).filter((e) => e.severity === "error");
    if (errors.length > 0) {
        fail(`solc: ${errors.map((e) => e.formattedMessage).join("; ")}`);
    }
    const contract = output.contracts["Verifier.sol"].Groth16Verifier;
    const [signature, selector] = Object.entries(contract.evm.methodIdentifiers).find(([name]) =>
        name.startsWith("verifyProof("),
    );
    return { bytecode: contract.evm.bytecode.object, signature, selector };
}

function word(value) {
    const n = BigInt(value);
    if (n < 0n || n >= 1n << 256n) {
        fail(`${value} does not fit a uint256`);
    }
    return n.toString(16).padStart(64, "0");
}

async function verify(vkFile, proofFile, publicFile) {
    const { bytecode, selector } = compile(solidity(readJson(vkFile)));
    const proof = readJson(proofFile);
    const signals = readJson(publicFile);
    // snarkjs's own calldata: the G2 coordinates in the order the
    // precompile wants; every argument is static, so the ABI encoding is
    // the words in a row.
    const args = JSON.parse(`[${await snarkjs.groth16.exportSolidityCallData(proof, signals)}]`);
    const calldata = selector + args.flat(3).map(word).join("");

    const evm = await createEVM();
    const sender = createAddressFromString("0x" + "11".repeat(20));
    const deployed = await evm.runCall({
        caller: sender,
        data: hexToBytes("0x" + bytecode),
        gasLimit: 10_000_000n,
    });
    if (deployed.execResult.exceptionError || !deployed.createdAddress) {
        fail(`deploying the verifier failed: ${deployed.execResult.exceptionError?.error}`);
    }
    const call = await evm.runCall({
        caller: sender,
        to: deployed.createdAddress,
        data: hexToBytes("0x" + calldata),
        gasLimit: 1_000_000n,
    });
    if (call.execResult.exceptionError) {
        fail(`verifyProof reverted: ${call.execResult.exceptionError.error}`);
    }
    const returned = bytesToHex(call.execResult.returnValue);
    console.log(
        JSON.stringify({
            valid: BigInt(returned) === 1n,
            gas: Number(call.execResult.executionGasUsed),
            deploy_gas: Number(deployed.execResult.executionGasUsed),
        }),
    );
}

const [command, ...files] = process.argv.slice(2);
if (command === "solidity" && files.length === 2) {
    writeFileSync(files[1], solidity(readJson(files[0])));
} else if (command === "verify" && files.length === 3) {
    await verify(...files);
} else {
    fail(
        "usage: evm-verifier.mjs solidity <verification_key.json> <Verifier.sol> | " +
            "verify <verification_key.json> <proof.json> <public.json>",
    );
}
process.exit(0);
