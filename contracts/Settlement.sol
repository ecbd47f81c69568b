// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

/// @title Settlement: one transaction settles one proven batch.
/// @notice Every chunk proof of a batch is checked in ONE batched Groth16
/// pairing check over BN254 (a random linear combination whose coefficients
/// come from the calldata by Fiat–Shamir), and in roots mode the chunks'
/// state roots must chain from the contract's root to the batch's new root.
/// Batches settle strictly in order: 1, 2, 3, ...
///
/// Roots mode (the transfer circuit): each chunk's public inputs are
/// [old root, new root, ...]; chunk 0's old root is the contract's root,
/// chunk i's old root is chunk i-1's new root, the last new root becomes
/// the contract's root. Statements mode (a circom circuit): the chunks'
/// public signals are checked, no roots.
contract Settlement {
    /// The BN254 scalar field: public inputs and coefficients live here.
    uint256 internal constant Q = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// The BN254 base field: point coordinates live here.
    uint256 internal constant P = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    /// Whether chunks chain state roots (inputs 0 and 1 of each chunk).
    bool public immutable chainsRoots;
    /// Public inputs per chunk (the verifying key's IC points minus one).
    uint256 public immutable inputsPerChunk;

    // The verifying key. G2 points are stored negated, in the precompile's
    // order (x.c1, x.c0, y.c1, y.c0), ready to pair.
    uint256 internal immutable alphaX;
    uint256 internal immutable alphaY;
    uint256 internal immutable negBetaX1;
    uint256 internal immutable negBetaX0;
    uint256 internal immutable negBetaY1;
    uint256 internal immutable negBetaY0;
    uint256 internal immutable negGammaX1;
    uint256 internal immutable negGammaX0;
    uint256 internal immutable negGammaY1;
    uint256 internal immutable negGammaY0;
    uint256 internal immutable negDeltaX1;
    uint256 internal immutable negDeltaX0;
    uint256 internal immutable negDeltaY1;
    uint256 internal immutable negDeltaY0;
    /// IC points, flattened: (x0, y0, x1, y1, ...).
    uint256[] internal ic;

    /// The state root after the last settled batch (the genesis root first).
    uint256 public stateRoot;
    /// The last settled batch; 0 before the first.
    uint64 public lastBatch;

    /// A batch settled: its chunks' proofs verified, the root moved.
    event BatchSettled(uint64 indexed batch, uint256 newRoot, uint256 chunks, bytes32 inputsHash);

    /// The batch number skips ahead of `expected`.
    error BatchGap(uint64 expected, uint64 got);
    /// The batch number was settled already (`expected` is the next one).
    error BatchReplayed(uint64 expected, uint64 got);
    /// Chunk 0's old root is not the contract's state root.
    error WrongOldRoot(uint256 expected, uint256 got);
    /// Chunk `chunk`'s old root is not chunk `chunk - 1`'s new root.
    error BrokenChain(uint256 chunk);
    /// The batched pairing check failed: some chunk's proof or inputs are false.
    error InvalidProof();
    /// A proof point of chunk `chunk` is not on the curve (or not canonical).
    error MalformedProof(uint256 chunk);
    /// Input `index` of chunk `chunk` is not below the scalar field's modulus.
    error InputNotInField(uint256 chunk, uint256 index);
    /// `got` public inputs for the batch's proofs; `expected` are needed.
    error WrongInputCount(uint256 expected, uint256 got);
    /// A batch must have at least one chunk.
    error NoChunks();
    /// The verifying key given to the constructor is unusable.
    error BadVerifyingKey(string why);

    /// @param alpha vk α (G1: x, y)
    /// @param beta vk β (G2, precompile order: x.c1, x.c0, y.c1, y.c0); likewise gamma, delta
    /// @param icPoints the IC points flattened (x0, y0, x1, y1, ...)
    /// @param genesisRoot the state root before batch 1 (ignored in statements mode)
    /// @param chainRoots_ roots mode (true) or statements mode (false)
    constructor(
        uint256[2] memory alpha,
        uint256[4] memory beta,
        uint256[4] memory gamma,
        uint256[4] memory delta,
        uint256[] memory icPoints,
        uint256 genesisRoot,
        bool chainRoots_
    ) {
        if (icPoints.length < 2 || icPoints.length % 2 != 0) revert BadVerifyingKey("IC must hold whole points");
        uint256 inputs = icPoints.length / 2 - 1;
        if (chainRoots_ && inputs < 2) revert BadVerifyingKey("roots mode needs old and new root inputs");
        if (genesisRoot >= Q) revert BadVerifyingKey("genesis root not in the scalar field");
        chainsRoots = chainRoots_;
        inputsPerChunk = inputs;
        alphaX = alpha[0];
        alphaY = alpha[1];
        (negBetaX1, negBetaX0, negBetaY1, negBetaY0) = (beta[0], beta[1], _neg(beta[2]), _neg(beta[3]));
        (negGammaX1, negGammaX0, negGammaY1, negGammaY0) = (gamma[0], gamma[1], _neg(gamma[2]), _neg(gamma[3]));
        (negDeltaX1, negDeltaX0, negDeltaY1, negDeltaY0) = (delta[0], delta[1], _neg(delta[2]), _neg(delta[3]));
        _checkOnCurve(alpha[0], alpha[1]);
        for (uint256 i = 0; i < icPoints.length; i += 2) {
            _checkOnCurve(icPoints[i], icPoints[i + 1]);
        }
        ic = icPoints;
        stateRoot = chainRoots_ ? genesisRoot : 0;
    }

    /// Settles batch `batch` (the last settled one plus one).
    /// @param proofs one Groth16 proof per chunk, in precompile order:
    ///   (A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y)
    /// @param inputs every chunk's public inputs in circuit order, chunk after chunk
    function settle(uint64 batch, uint256[8][] calldata proofs, uint256[] calldata inputs) external {
        uint256 n = proofs.length;
        uint256 k = inputsPerChunk;
        _checkBatchNumber(batch);
        if (n == 0) revert NoChunks();
        if (inputs.length != n * k) revert WrongInputCount(n * k, inputs.length);
        uint256 newRoot = stateRoot;
        if (chainsRoots) newRoot = _checkRootChain(n, k, inputs);
        _verifyBatch(proofs, inputs, n, k);
        lastBatch = batch;
        if (chainsRoots) stateRoot = newRoot;
        emit BatchSettled(batch, newRoot, n, keccak256(abi.encodePacked(inputs)));
    }

    function _checkBatchNumber(uint64 batch) internal view {
        uint64 expected = lastBatch + 1;
        if (batch > expected) revert BatchGap(expected, batch);
        if (batch < expected) revert BatchReplayed(expected, batch);
    }

    /// Checks the chunks' roots chain from the state root; returns the new root.
    function _checkRootChain(uint256 n, uint256 k, uint256[] calldata inputs) internal view returns (uint256) {
        if (inputs[0] != stateRoot) revert WrongOldRoot(stateRoot, inputs[0]);
        for (uint256 i = 1; i < n; i++) {
            if (inputs[i * k] != inputs[(i - 1) * k + 1]) revert BrokenChain(i);
        }
        return inputs[(n - 1) * k + 1];
    }

    /// Running sums of the batch's random linear combination.
    struct Combination {
        uint256 rSum;
        uint256[] inputSums;
        uint256[2] cSum;
    }

    /// One pairing check for all proofs, with r_0 = 1, r_i = keccak256(seed ‖ i)
    /// mod Q and seed = keccak256(calldata):
    /// ∏ e(r_i·A_i, B_i) · e(Σr_i·α, -β) · e(Σr_i·vk_x_i, -γ) · e(Σr_i·C_i, -δ) = 1.
    function _verifyBatch(uint256[8][] calldata proofs, uint256[] calldata inputs, uint256 n, uint256 k)
        internal
        view
    {
        bytes32 seed = keccak256(msg.data);
        // pairs: n proof pairs, then α, vk_x, C; 6 words (192 bytes) each
        uint256[] memory pairs = new uint256[](6 * (n + 3));
        Combination memory sums;
        sums.inputSums = new uint256[](k);
        for (uint256 i = 0; i < n; i++) {
            uint256 r = i == 0 ? 1 : uint256(keccak256(abi.encodePacked(seed, i))) % Q;
            sums.rSum = addmod(sums.rSum, r, Q);
            _foldInputs(sums, inputs[i * k:(i + 1) * k], r, i);
            _placeProofPair(pairs, i, proofs[i], r);
            _foldC(sums, proofs[i], r, i);
        }
        _placeKeyPairs(pairs, n, sums);
        if (!_pairing(pairs)) revert InvalidProof();
    }

    /// inputSums[j] += r·x_j, each x_j checked to be in the field.
    function _foldInputs(Combination memory sums, uint256[] calldata chunkInputs, uint256 r, uint256 i)
        internal
        pure
    {
        for (uint256 j = 0; j < chunkInputs.length; j++) {
            uint256 x = chunkInputs[j];
            if (x >= Q) revert InputNotInField(i, j);
            sums.inputSums[j] = addmod(sums.inputSums[j], mulmod(r, x, Q), Q);
        }
    }

    /// cSum += r·C_i.
    function _foldC(Combination memory sums, uint256[8] calldata proof, uint256 r, uint256 i) internal view {
        (bool ok, uint256 cx, uint256 cy) = _scale(proof[6], proof[7], r);
        if (!ok) revert MalformedProof(i);
        (sums.cSum[0], sums.cSum[1]) = _ecAddChecked(sums.cSum[0], sums.cSum[1], cx, cy);
    }

    /// Writes e(r·A_i, B_i) as pair i.
    function _placeProofPair(uint256[] memory pairs, uint256 i, uint256[8] calldata proof, uint256 r) internal view {
        (bool ok, uint256 ax, uint256 ay) = _scale(proof[0], proof[1], r);
        if (!ok) revert MalformedProof(i);
        uint256 base = 6 * i;
        pairs[base] = ax;
        pairs[base + 1] = ay;
        pairs[base + 2] = proof[2];
        pairs[base + 3] = proof[3];
        pairs[base + 4] = proof[4];
        pairs[base + 5] = proof[5];
    }

    /// Writes the three key pairs after the n proof pairs.
    function _placeKeyPairs(uint256[] memory pairs, uint256 n, Combination memory sums) internal view {
        uint256 base = 6 * n;
        (, pairs[base], pairs[base + 1]) = _ecMul(alphaX, alphaY, sums.rSum);
        (pairs[base + 2], pairs[base + 3], pairs[base + 4], pairs[base + 5]) = (negBetaX1, negBetaX0, negBetaY1, negBetaY0);
        (pairs[base + 6], pairs[base + 7]) = _linearCombinationOfIc(sums.rSum, sums.inputSums);
        (pairs[base + 8], pairs[base + 9], pairs[base + 10], pairs[base + 11]) =
            (negGammaX1, negGammaX0, negGammaY1, negGammaY0);
        (pairs[base + 12], pairs[base + 13]) = (sums.cSum[0], sums.cSum[1]);
        (pairs[base + 14], pairs[base + 15], pairs[base + 16], pairs[base + 17]) =
            (negDeltaX1, negDeltaX0, negDeltaY1, negDeltaY0);
    }

    /// Σ_i r_i·vk_x_i = (Σr_i)·IC_0 + Σ_j (Σ_i r_i·x_ij)·IC_{j+1}.
    function _linearCombinationOfIc(uint256 rSum, uint256[] memory inputSums)
        internal
        view
        returns (uint256 x, uint256 y)
    {
        uint256[] memory points = ic;
        (, x, y) = _ecMul(points[0], points[1], rSum);
        for (uint256 j = 0; j < inputSums.length; j++) {
            (, uint256 px, uint256 py) = _ecMul(points[2 * j + 2], points[2 * j + 3], inputSums[j]);
            (x, y) = _ecAddChecked(x, y, px, py);
        }
    }

    function _checkOnCurve(uint256 x, uint256 y) internal view {
        (bool ok,,) = _ecMul(x, y, 1);
        if (!ok) revert BadVerifyingKey("a G1 point is not on the curve");
    }

    function _neg(uint256 y) internal pure returns (uint256) {
        return y == 0 ? 0 : P - (y % P);
    }

    /// r·(x, y); ok is false for a point off the curve. r = 1 (chunk 0's
    /// coefficient) costs an ecAdd with infinity, which checks the point too.
    function _scale(uint256 x, uint256 y, uint256 r) internal view returns (bool ok, uint256 rx, uint256 ry) {
        return r == 1 ? _ecAdd(x, y, 0, 0) : _ecMul(x, y, r);
    }

    /// ecMul (precompile 0x07); ok is false for a point off the curve.
    function _ecMul(uint256 x, uint256 y, uint256 s) internal view returns (bool ok, uint256 rx, uint256 ry) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, x)
            mstore(add(m, 0x20), y)
            mstore(add(m, 0x40), s)
            ok := staticcall(gas(), 0x07, m, 0x60, m, 0x40)
            rx := mload(m)
            ry := mload(add(m, 0x20))
        }
    }

    /// ecAdd (precompile 0x06); ok is false for a point off the curve.
    function _ecAdd(uint256 x1, uint256 y1, uint256 x2, uint256 y2)
        internal
        view
        returns (bool ok, uint256 rx, uint256 ry)
    {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, x1)
            mstore(add(m, 0x20), y1)
            mstore(add(m, 0x40), x2)
            mstore(add(m, 0x60), y2)
            ok := staticcall(gas(), 0x06, m, 0x80, m, 0x40)
            rx := mload(m)
            ry := mload(add(m, 0x20))
        }
    }

    /// ecAdd of points already checked on the curve.
    function _ecAddChecked(uint256 x1, uint256 y1, uint256 x2, uint256 y2)
        internal
        view
        returns (uint256 rx, uint256 ry)
    {
        bool ok;
        (ok, rx, ry) = _ecAdd(x1, y1, x2, y2);
        if (!ok) revert InvalidProof();
    }

    /// ecPairing (precompile 0x08) over `pairs`; false if the product is not
    /// one, or a G2 point is off the curve or outside the subgroup.
    function _pairing(uint256[] memory pairs) internal view returns (bool valid) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            let ok := staticcall(gas(), 0x08, add(pairs, 0x20), mul(mload(pairs), 0x20), m, 0x20)
            valid := and(ok, mload(m))
        }
    }
}
