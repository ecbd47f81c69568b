// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

/// The two ERC-20 calls Payouts makes.
interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function balanceOf(address who) external view returns (uint256);
}

/// @title Payouts: provers claim their cumulative ledger balance on chain.
/// @notice The operator anchors each ledger block (height, block hash,
/// balance root) strictly in order, several per transaction. Anyone may then pay a prover
/// `balance - paid[prover]` to the payout address its balance leaf commits
/// to, given the leaf's Merkle path in an anchored block's balance root
/// (claims are cumulative, so a claim is idempotent). Paid in ETH, or in
/// the ERC-20 named at deployment; funded by the operator.
///
/// The tree is ledger/src/merkle.rs's: leaf = sha256(0x00 ‖ data), inner
/// node = sha256(0x01 ‖ left ‖ right), an odd last node is promoted
/// unchanged, a path lists the siblings from the leaf up. A balance leaf's
/// data = prover key (32) ‖ balance (u64 big-endian, 8) ‖ payout address (20).
contract Payouts {
    /// The only account that may anchor blocks.
    address public immutable operator;
    /// The ERC-20 paid out; address(0) pays ETH.
    IERC20Minimal public immutable token;

    /// The last anchored ledger height; 0 before the first anchor.
    uint64 public lastHeight;
    /// Balance root of each anchored height.
    mapping(uint64 height => bytes32) public balanceRoots;
    /// Ledger block hash of each anchored height.
    mapping(uint64 height => bytes32) public blockHashes;
    /// What each prover (by its node key) has been paid so far.
    mapping(bytes32 proverKey => uint64) public paid;

    /// A ledger block was anchored.
    event Anchored(uint64 indexed height, bytes32 blockHash, bytes32 balanceRoot);
    /// A prover was paid `amount`, bringing its total to `totalPaid`.
    event Claimed(bytes32 indexed proverKey, address payout, uint64 height, uint64 amount, uint64 totalPaid);

    /// Only the operator anchors.
    error NotOperator(address caller);
    /// Anchors come strictly in order: `expected` is the next height.
    error AnchorOutOfOrder(uint64 expected, uint64 got);
    /// An anchor names no block, or not one root per block hash.
    error AnchorRangeMismatch(uint256 hashes, uint256 roots);
    /// No block is anchored at `height`.
    error HeightNotAnchored(uint64 height);
    /// The leaf and path do not lead to the anchored balance root.
    error InvalidBalanceProof();
    /// The prover bound no payout address.
    error PayoutUnbound(bytes32 proverKey);
    /// The balance is not above what the prover was already paid.
    error NothingToClaim(bytes32 proverKey, uint64 balance, uint64 alreadyPaid);
    /// Sending the payout failed (the contract lacks funds?).
    error PayoutFailed(address payout, uint64 amount);

    /// @param operator_ the anchoring account; address(0) means the deployer
    /// @param token_ the ERC-20 to pay in; address(0) pays ETH
    constructor(address operator_, address token_) {
        operator = operator_ == address(0) ? msg.sender : operator_;
        token = IERC20Minimal(token_);
    }

    /// ETH funding (any sender; the operator in practice).
    receive() external payable {}

    /// Anchors ledger blocks `first`, `first + 1`, … (`first` the last
    /// anchored height plus one), one per hash and root, in one transaction:
    /// a ledger cutting blocks faster than the chain makes them catches up.
    function anchor(uint64 first, bytes32[] calldata hashes, bytes32[] calldata roots) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        uint64 expected = lastHeight + 1;
        if (first != expected) revert AnchorOutOfOrder(expected, first);
        uint256 n = hashes.length;
        if (n == 0 || n != roots.length) revert AnchorRangeMismatch(n, roots.length);
        for (uint256 i = 0; i < n; i++) {
            uint64 height = first + uint64(i);
            balanceRoots[height] = roots[i];
            blockHashes[height] = hashes[i];
            emit Anchored(height, hashes[i], roots[i]);
        }
        lastHeight = first + uint64(n) - 1;
    }

    /// Pays `proverKey` its `balance` in block `height` minus what it was
    /// paid, to `payout`. The leaf is leaf `index` of `leafCount` leaves.
    function claim(
        bytes32 proverKey,
        uint64 balance,
        address payout,
        uint64 height,
        uint256 index,
        uint256 leafCount,
        bytes32[] calldata path
    ) external {
        bytes32 root = balanceRoots[height];
        if (height == 0 || height > lastHeight) revert HeightNotAnchored(height);
        bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), proverKey, balance, payout));
        if (!verifyPath(leaf, index, leafCount, path, root)) revert InvalidBalanceProof();
        if (payout == address(0)) revert PayoutUnbound(proverKey);
        uint64 already = paid[proverKey];
        if (balance <= already) revert NothingToClaim(proverKey, balance, already);
        uint64 amount = balance - already;
        paid[proverKey] = balance;
        emit Claimed(proverKey, payout, height, amount, balance);
        _send(payout, amount);
    }

    /// ledger::merkle::verify_proof: true if `leaf` at `index` of `count`
    /// leaves with siblings `path` (leaf upward) hashes to `root`, using
    /// every sibling exactly once.
    function verifyPath(bytes32 leaf, uint256 index, uint256 count, bytes32[] calldata path, bytes32 root)
        public
        pure
        returns (bool)
    {
        if (index >= count) return false;
        bytes32 hash = leaf;
        uint256 used;
        while (count > 1) {
            if (index % 2 == 1) {
                if (used == path.length) return false;
                hash = sha256(abi.encodePacked(bytes1(0x01), path[used++], hash));
            } else if (index + 1 < count) {
                if (used == path.length) return false;
                hash = sha256(abi.encodePacked(bytes1(0x01), hash, path[used++]));
            }
            index /= 2;
            count = (count + 1) / 2;
        }
        return used == path.length && hash == root;
    }

    function _send(address payout, uint64 amount) internal {
        bool ok;
        if (address(token) == address(0)) {
            (ok,) = payout.call{value: amount}("");
        } else {
            bytes memory returned;
            (ok, returned) = address(token).call(abi.encodeCall(IERC20Minimal.transfer, (payout, amount)));
            ok = ok && (returned.length == 0 || abi.decode(returned, (bool)));
            ok = ok && address(token).code.length > 0;
        }
        if (!ok) revert PayoutFailed(payout, amount);
    }
}
