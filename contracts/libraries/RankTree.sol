// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ScoreMath} from "./ScoreMath.sol";

/// @title RankTree
/// @notice The rank index of DESIGN.md section 4 for one (market, side): a complete binary tree of height
/// HEIGHT stored heap-style (root 1; the node at level L, position i has index 2^(HEIGHT - L) + i; leaf j
/// has index LEAVES + j). Each node bounds its members: largest a, best K (smallest for longs, largest for
/// shorts) and largest eligibility key E. Leaves also count their members.
/// @dev Soundness rests on one invariant: every node dominates each of its children (maxA >=, bestK at least
/// as good, maxE >=) and every leaf dominates each of its current members. Merges keep it and may stop at the
/// first unchanged node (that node already dominated the member, so its ancestors do too); removals only
/// loosen it; refreshes recompute exactly from children / the full member list, which can only tighten a
/// node, so its parent still dominates it. Emptiness is maxA == 0 (every member has a >= 1).
library RankTree {
    /// @dev Tree height: level 0 holds the leaves, level HEIGHT the root.
    uint256 internal constant HEIGHT = 14;
    /// @dev Number of leaves, 2^HEIGHT; leaf number = (aBand << K_BAND_BITS) | kBand.
    uint256 internal constant LEAVES = 1 << HEIGHT;
    /// @dev Low bits of the leaf number that hold the K band.
    uint256 internal constant K_BAND_BITS = 8;
    /// @dev Largest a band (6 bits).
    uint256 internal constant MAX_A_BAND = 63;
    /// @dev Largest K band (8 bits).
    uint256 internal constant MAX_K_BAND = 255;
    /// @dev aBand = clamp(2 * bitlen(a) + secondBit(a) - A_BAND_OFFSET, 0, MAX_A_BAND).
    uint256 internal constant A_BAND_OFFSET = 60;

    /// @notice A node's record (2 storage slots). Empty iff maxA == 0; then the other aggregates are 0.
    /// @param maxA Largest stored a of the members (a is rounded up where it is computed).
    /// @param bestK Smallest K of the members in a long tree, largest in a short tree.
    /// @param maxE Largest eligibility key E = floor(W*W/a) -/+ K (long/short) of the members.
    /// @param count Number of members; meaningful on leaves only (0 on internal nodes).
    struct Node {
        uint128 maxA;
        int128 bestK;
        int128 maxE;
        uint64 count;
    }

    /// @notice One tree: node records by heap index.
    struct Tree {
        mapping(uint256 heapIndex => Node) nodes;
    }

    /// @notice The level exceeds HEIGHT.
    error RankTreeLevelOutOfRange(uint256 level);
    /// @notice The position is not below 2^(HEIGHT - level).
    error RankTreePositionOutOfRange(uint256 level, uint256 position);
    /// @notice The leaf number is not below LEAVES.
    error RankTreeLeafOutOfRange(uint256 leaf);
    /// @notice The heap index names no node (0 or >= 2 * LEAVES), or no internal node where one is required.
    error RankTreeHeapIndexOutOfRange(uint256 heapIndex);
    /// @notice remove() on a leaf whose count is already 0.
    error RankTreeCountUnderflow(uint256 leaf);
    /// @notice A member with a == 0 (every stored a is at least 1).
    error RankTreeZeroLeverage();
    /// @notice refreshLeaf() got lists whose lengths differ from each other or from the leaf's count.
    error RankTreeMemberListMismatch(uint256 leaf, uint256 count, uint256 aLength, uint256 kLength);

    // ------------------------------------------------------------------------------------ mutations

    /// @notice Adds a member (a, k) to `leaf`: count += 1, then merges it into the leaf and its ancestors.
    /// @param isLong True for the long tree (best K = smallest), false for the short tree (best K = largest).
    function insert(Tree storage t, bool isLong, uint256 leaf, uint256 a, int256 k) internal {
        _checkLeaf(leaf);
        (uint128 a_, int128 k_, int128 e_) = _member(isLong, a, k);
        t.nodes[LEAVES + leaf].count += 1;
        _mergeUp(t, isLong, LEAVES + leaf, a_, k_, e_);
    }

    /// @notice Merges a member's new (a, k) into `leaf` and its ancestors; the member stays in `leaf`.
    /// @param isLong True for the long tree, false for the short tree.
    function update(Tree storage t, bool isLong, uint256 leaf, uint256 a, int256 k) internal {
        _checkLeaf(leaf);
        (uint128 a_, int128 k_, int128 e_) = _member(isLong, a, k);
        _mergeUp(t, isLong, LEAVES + leaf, a_, k_, e_);
    }

    /// @notice Removes a member from `leaf`: count -= 1 only. Aggregates stay (stale is looser, never unsound).
    function remove(Tree storage t, uint256 leaf) internal {
        _checkLeaf(leaf);
        Node storage n = t.nodes[LEAVES + leaf];
        if (n.count == 0) revert RankTreeCountUnderflow(leaf);
        n.count -= 1;
    }

    /// @notice Recomputes internal node `heapIndex` exactly from its two children (an empty child adds
    /// nothing; two empty children make the node empty).
    /// @param isLong True for the long tree, false for the short tree.
    function refreshInternal(Tree storage t, bool isLong, uint256 heapIndex_) internal {
        if (heapIndex_ == 0 || heapIndex_ >= LEAVES) revert RankTreeHeapIndexOutOfRange(heapIndex_);
        Node memory left = t.nodes[2 * heapIndex_];
        Node memory right = t.nodes[2 * heapIndex_ + 1];
        if (left.maxA == 0) {
            left = right;
        } else if (right.maxA != 0) {
            left.maxA = left.maxA >= right.maxA ? left.maxA : right.maxA;
            left.bestK = _better(isLong, right.bestK, left.bestK) ? right.bestK : left.bestK;
            left.maxE = left.maxE >= right.maxE ? left.maxE : right.maxE;
        }
        _store(t.nodes[heapIndex_], left.maxA, left.bestK, left.maxE);
    }

    /// @notice Recomputes `leaf` exactly from its full member list (parallel arrays of a and K); an empty
    /// list empties it. The caller has checked membership; the lengths must equal the leaf's count.
    /// @param isLong True for the long tree, false for the short tree.
    function refreshLeaf(
        Tree storage t,
        bool isLong,
        uint256 leaf,
        uint256[] memory aValues,
        int256[] memory kValues
    ) internal {
        _checkLeaf(leaf);
        Node storage n = t.nodes[LEAVES + leaf];
        uint256 members = aValues.length;
        if (kValues.length != members || n.count != members) {
            revert RankTreeMemberListMismatch(leaf, n.count, members, kValues.length);
        }
        uint128 maxA;
        int128 bestK;
        int128 maxE;
        for (uint256 i = 0; i < members; ++i) {
            (uint128 a_, int128 k_, int128 e_) = _member(isLong, aValues[i], kValues[i]);
            if (i == 0 || a_ > maxA) maxA = a_;
            if (i == 0 || _better(isLong, k_, bestK)) bestK = k_;
            if (i == 0 || e_ > maxE) maxE = e_;
        }
        _store(n, maxA, bestK, maxE);
    }

    // ------------------------------------------------------------------------------------ views

    /// @notice The record at `heapIndex_` (1 = root, LEAVES + j = leaf j).
    function node(Tree storage t, uint256 heapIndex_) internal view returns (Node memory) {
        if (heapIndex_ == 0 || heapIndex_ >= 2 * LEAVES) revert RankTreeHeapIndexOutOfRange(heapIndex_);
        return t.nodes[heapIndex_];
    }

    /// @notice Heap index 2^(HEIGHT - level) + position of the node at (level, position).
    function heapIndex(uint256 level, uint256 position) internal pure returns (uint256) {
        _checkNode(level, position);
        return (1 << (HEIGHT - level)) + position;
    }

    /// @notice The leaves [firstLeaf, endLeaf) below the node at (level, position): position * 2^level and
    /// (position + 1) * 2^level.
    function leafRange(uint256 level, uint256 position) internal pure returns (uint256 firstLeaf, uint256 endLeaf) {
        _checkNode(level, position);
        return (position << level, (position + 1) << level);
    }

    /// @notice The leaf of a position with stored (a, k) in a market with reference exponent `kRef`.
    function leafOf(uint256 a, int256 k, uint8 kRef) internal pure returns (uint256) {
        (uint256 aBand, uint256 kBand) = bandOf(a, k, kRef);
        return (aBand << K_BAND_BITS) | kBand;
    }

    /// @notice The two bands of a leaf. Any assignment is sound; this one groups alike positions.
    /// @dev aBand = clamp(2 * bitlen(a) + secondBit(a) - A_BAND_OFFSET, 0, 63), two bands per octave, where
    /// secondBit is the bit below the leading one (0 if a < 2). kBand = 0 for k <= 0, else with b = bitlen(k)
    /// and mant7 the 7 bits below the leading one (zero-padded when b < 8, truncated otherwise, i.e. rounded
    /// down): clamp((b - kRef) * 128 + mant7, 0, 255), so 128 bands per octave over [2^(kRef-1), 2^(kRef+1)).
    function bandOf(uint256 a, int256 k, uint8 kRef) internal pure returns (uint256 aBand, uint256 kBand) {
        uint256 aBits = _bitLength(a);
        uint256 t = 2 * aBits + (aBits >= 2 ? (a >> (aBits - 2)) & 1 : 0);
        aBand = t <= A_BAND_OFFSET ? 0 : Math.min(t - A_BAND_OFFSET, MAX_A_BAND);
        if (k > 0) {
            uint256 magnitude = uint256(k);
            uint256 b = _bitLength(magnitude);
            uint256 mant7 = (b >= 8 ? magnitude >> (b - 8) : magnitude << (8 - b)) & 127;
            int256 raw = (int256(b) - int256(uint256(kRef))) * 128 + int256(mant7);
            kBand = raw <= 0 ? 0 : Math.min(uint256(raw), MAX_K_BAND);
        }
    }

    // ------------------------------------------------------------------------------------ internals

    /// @dev Merges (a, k, e) into node `index` and upward; stops at the first node where no component changes.
    /// Writes only the slots that change.
    function _mergeUp(Tree storage t, bool isLong, uint256 index, uint128 a, int128 k, int128 e) private {
        for (; index != 0; index >>= 1) {
            Node storage n = t.nodes[index];
            uint128 maxA = n.maxA;
            if (maxA == 0) {
                _store(n, a, k, e);
                continue;
            }
            int128 bestK = n.bestK;
            bool grewA = a > maxA;
            bool improvedK = _better(isLong, k, bestK);
            bool grewE = e > n.maxE;
            if (!(grewA || improvedK || grewE)) return;
            if (grewA || improvedK) {
                n.maxA = grewA ? a : maxA;
                n.bestK = improvedK ? k : bestK;
            }
            if (grewE) n.maxE = e;
        }
    }

    /// @dev Writes the three aggregates of `n`, keeping its count.
    function _store(Node storage n, uint128 maxA, int128 bestK, int128 maxE) private {
        n.maxA = maxA;
        n.bestK = bestK;
        n.maxE = maxE;
    }

    /// @dev True iff `k` is strictly better than `than`: smaller for a long tree, larger for a short tree.
    function _better(bool isLong, int128 k, int128 than) private pure returns (bool) {
        return isLong ? k < than : k > than;
    }

    /// @dev A member's (a, k, E) in storage widths; reverts on a == 0 or a value that does not fit (SafeCast).
    /// E = floor(W*W/a) -/+ k (ScoreMath.eligibilityKey: the floor is taken on the rounded-up a).
    function _member(bool isLong, uint256 a, int256 k) private pure returns (uint128, int128, int128) {
        if (a == 0) revert RankTreeZeroLeverage();
        int128 k_ = SafeCast.toInt128(k);
        return (SafeCast.toUint128(a), k_, SafeCast.toInt128(ScoreMath.eligibilityKey(isLong, a, k_)));
    }

    /// @dev Reverts unless leaf < LEAVES.
    function _checkLeaf(uint256 leaf) private pure {
        if (leaf >= LEAVES) revert RankTreeLeafOutOfRange(leaf);
    }

    /// @dev Reverts unless level <= HEIGHT and position < 2^(HEIGHT - level).
    function _checkNode(uint256 level, uint256 position) private pure {
        if (level > HEIGHT) revert RankTreeLevelOutOfRange(level);
        if (position >= LEAVES >> level) revert RankTreePositionOutOfRange(level, position);
    }

    /// @dev Number of bits of v: 0 for 0, floor(log2(v)) + 1 otherwise.
    function _bitLength(uint256 v) private pure returns (uint256) {
        return v == 0 ? 0 : Math.log2(v) + 1;
    }
}
