// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ScoreMath} from "./ScoreMath.sol";

/// @title RankTree
/// @notice The rank index of docs/mechanism.md section 4 for one (market, side): a complete binary tree of height
/// HEIGHT stored heap-style (root 1; the node at level L, position i has index 2^(HEIGHT - L) + i; leaf j
/// has index LEAVES + j). Each node bounds its members: largest a (rounded up), best K (smallest for longs,
/// largest for shorts; rounded toward best) and largest eligibility key E (rounded up). Leaves also count
/// their members.
/// @dev One storage slot per node (low bit first):
///   [0, 48)    count, uint48 (exact; leaves only, 0 on internal nodes)
///   [48, 112)  maxA code: mantissa (56 bits) | exponent (8 bits) << 56; value = mantissa << exponent
///   [112, 184) bestK code: mantissa (64 bits) | exponent (7 bits) << 64 | sign << 71; value = +-(mantissa << exponent)
///   [184, 256) maxE code: same signed format as bestK
/// Every code is canonical: the exponent is the least for which the mantissa fits (so a representable value has
/// one code, and a code is a function of its value). A member's (a, K, E) is rounded before it is merged: a up,
/// K toward best (down in a long tree, up in a short tree), E up; rounding is monotone, so the rounded max /
/// best of the members is the max / best of the rounded members, and merges and refreshes only ever copy codes.
/// Soundness rests on one invariant: every node dominates each of its children (maxA >=, bestK at least as good,
/// maxE >=) and every leaf dominates each of its current members' rounded, hence exact, values. Merges keep it
/// and may stop at the first unchanged node (that node already dominated the member, so its ancestors do too);
/// removals only loosen it; refreshes recompute exactly (modulo the rounding) from children / the full member
/// list, which can only tighten a node, so its parent still dominates it. Emptiness is a maxA code of 0 (every
/// member has a >= 1, and rounding up keeps it >= 1); an empty node's bestK and maxE codes are 0 too.
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
    /// @dev aBand = clamp(2 * bitlen(a) + secondBit(a) + 2 * kRef - A_BAND_BIAS, 0, MAX_A_BAND). The kRef term
    /// centres the a bands on leverage rather than on raw a = q/c, which scales as 1/price: a market at 2,000
    /// (kRef 70) and one at 1 (kRef 59) both put 1x near band 39 and 100x near band 52.
    uint256 internal constant A_BAND_BIAS = 200;

    /// @dev Mantissa bits of the maxA code (its exponent has 8 bits).
    uint256 internal constant A_MANTISSA_BITS = 56;
    /// @dev Mantissa bits of the signed codes (bestK, maxE); then 7 exponent bits and a sign bit.
    uint256 internal constant S_MANTISSA_BITS = 64;
    /// @dev Largest member count of a leaf (uint48).
    uint256 internal constant MAX_COUNT = (1 << 48) - 1;

    uint256 private constant A_SHIFT = 48;
    uint256 private constant K_SHIFT = 112;
    uint256 private constant E_SHIFT = 184;
    uint256 private constant A_CODE_MASK = (1 << 64) - 1;
    uint256 private constant S_CODE_MASK = (1 << 72) - 1;
    uint256 private constant A_FIELD = A_CODE_MASK << A_SHIFT;
    uint256 private constant K_FIELD = S_CODE_MASK << K_SHIFT;
    uint256 private constant E_FIELD = S_CODE_MASK << E_SHIFT;
    uint256 private constant S_SIGN = 1 << 71;

    /// @notice A node's record, decoded from its slot. Empty iff maxA == 0; then bestK and maxE are 0.
    /// @param maxA Upper bound on the members' a: their largest a, rounded up (at most 2^128).
    /// @param bestK Bound on the members' K: their smallest K in a long tree (rounded down), largest in a short
    /// tree (rounded up).
    /// @param maxE Upper bound on the members' eligibility keys E = floor(W*W/a) -/+ K (long/short): the largest,
    /// rounded up.
    /// @param count Number of members; meaningful on leaves only (0 on internal nodes).
    struct Node {
        uint256 maxA;
        int256 bestK;
        int256 maxE;
        uint256 count;
    }

    /// @notice One tree: packed node records (see the layout above) by heap index.
    struct Tree {
        mapping(uint256 heapIndex => uint256 word) words;
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
    /// @notice insert() on a leaf whose count is already MAX_COUNT.
    error RankTreeCountOverflow(uint256 leaf);
    /// @notice A member with a == 0 (every stored a is at least 1).
    error RankTreeZeroLeverage();
    /// @notice refreshLeaf() got lists whose lengths differ from each other or from the leaf's count.
    error RankTreeMemberListMismatch(uint256 leaf, uint256 count, uint256 aLength, uint256 kLength);

    // ------------------------------------------------------------------------------------ mutations

    /// @notice Adds a member (a, k) to `leaf`: count += 1, then merges it into the leaf and its ancestors.
    /// @param isLong True for the long tree (best K = smallest), false for the short tree (best K = largest).
    function insert(Tree storage t, bool isLong, uint256 leaf, uint256 a, int256 k) internal {
        _checkLeaf(leaf);
        uint256 m = memberWord(isLong, a, k);
        uint256 index = LEAVES + leaf;
        uint256 w = t.words[index];
        if (w & MAX_COUNT == MAX_COUNT) revert RankTreeCountOverflow(leaf);
        uint256 joined = _join(isLong, w, m);
        t.words[index] = joined + 1;
        if (joined != w) _mergeUp(t, isLong, index >> 1, m);
    }

    /// @notice Merges a member's new (a, k) into `leaf` and its ancestors; the member stays in `leaf`.
    /// @param isLong True for the long tree, false for the short tree.
    function update(Tree storage t, bool isLong, uint256 leaf, uint256 a, int256 k) internal {
        _checkLeaf(leaf);
        _mergeUp(t, isLong, LEAVES + leaf, memberWord(isLong, a, k));
    }

    /// @notice Removes a member from `leaf`: count -= 1 only. Aggregates stay (stale is looser, never unsound).
    function remove(Tree storage t, uint256 leaf) internal {
        _checkLeaf(leaf);
        uint256 w = t.words[LEAVES + leaf];
        if (w & MAX_COUNT == 0) revert RankTreeCountUnderflow(leaf);
        t.words[LEAVES + leaf] = w - 1;
    }

    /// @notice Recomputes internal node `heapIndex` exactly from its two children (an empty child adds
    /// nothing; two empty children make the node empty): it copies each aggregate's code from the child
    /// holding the larger (better) value.
    /// @param isLong True for the long tree, false for the short tree.
    function refreshInternal(Tree storage t, bool isLong, uint256 heapIndex_) internal {
        if (heapIndex_ == 0 || heapIndex_ >= LEAVES) revert RankTreeHeapIndexOutOfRange(heapIndex_);
        uint256 left = t.words[2 * heapIndex_] & ~MAX_COUNT;
        uint256 right = t.words[2 * heapIndex_ + 1] & ~MAX_COUNT;
        t.words[heapIndex_] = right & A_FIELD == 0 ? left : _join(isLong, left, right);
    }

    /// @notice Recomputes `leaf` from its full member list (parallel arrays of a and K): exactly the max / best
    /// of the members' rounded values (an empty list empties it). The caller has checked membership; the
    /// lengths must equal the leaf's count.
    /// @param isLong True for the long tree, false for the short tree.
    function refreshLeaf(
        Tree storage t,
        bool isLong,
        uint256 leaf,
        uint256[] memory aValues,
        int256[] memory kValues
    ) internal {
        _checkLeaf(leaf);
        uint256 index = LEAVES + leaf;
        uint256 count = t.words[index] & MAX_COUNT;
        uint256 members = aValues.length;
        if (kValues.length != members || count != members) {
            revert RankTreeMemberListMismatch(leaf, count, members, kValues.length);
        }
        uint256 joined;
        for (uint256 i = 0; i < members; ++i)
            joined = _join(isLong, joined, memberWord(isLong, aValues[i], kValues[i]));
        t.words[index] = joined | count;
    }

    // ------------------------------------------------------------------------------------ views

    /// @notice The decoded record at `heapIndex_` (1 = root, LEAVES + j = leaf j).
    function node(Tree storage t, uint256 heapIndex_) internal view returns (Node memory) {
        return decode(word(t, heapIndex_));
    }

    /// @notice The packed slot at `heapIndex_` (see the layout above).
    function word(Tree storage t, uint256 heapIndex_) internal view returns (uint256) {
        if (heapIndex_ == 0 || heapIndex_ >= 2 * LEAVES) revert RankTreeHeapIndexOutOfRange(heapIndex_);
        return t.words[heapIndex_];
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
    /// @dev aBand = clamp(2 * bitlen(a) + secondBit(a) + 2 * kRef - A_BAND_BIAS, 0, 63), two bands per octave of
    /// leverage, where secondBit is the bit below the leading one (0 if a < 2). kBand = 0 for k <= 0, else with
    /// b = bitlen(k) and mant7 the 7 bits below the leading one (zero-padded when b < 8, truncated otherwise, i.e.
    /// rounded down): clamp((b - kRef) * 128 + mant7, 0, 255), so 128 bands per octave over [2^(kRef-1), 2^(kRef+1)).
    function bandOf(uint256 a, int256 k, uint8 kRef) internal pure returns (uint256 aBand, uint256 kBand) {
        uint256 aBits = _bitLength(a);
        // At most 2 * 256 + 1 + 2 * 255: no overflow; compared before subtracting, so no underflow.
        uint256 t = 2 * aBits + (aBits >= 2 ? (a >> (aBits - 2)) & 1 : 0) + 2 * uint256(kRef);
        aBand = t <= A_BAND_BIAS ? 0 : Math.min(t - A_BAND_BIAS, MAX_A_BAND);
        if (k > 0) {
            uint256 magnitude = uint256(k);
            uint256 b = _bitLength(magnitude);
            uint256 mant7 = (b >= 8 ? magnitude >> (b - 8) : magnitude << (8 - b)) & 127;
            int256 raw = (int256(b) - int256(uint256(kRef))) * 128 + int256(mant7);
            kBand = raw <= 0 ? 0 : Math.min(uint256(raw), MAX_K_BAND);
        }
    }

    // ------------------------------------------------------------------------------------ codec

    /// @notice The packed aggregates of one member (count bits 0): a rounded up, k rounded toward best (down for
    /// a long tree, up for a short tree), E = ScoreMath.eligibilityKey(isLong, a, k) (from the exact a and k)
    /// rounded up. Reverts on a == 0 or a value that does not fit uint128 / int128 (SafeCast; k, then a, then E).
    function memberWord(bool isLong, uint256 a, int256 k) internal pure returns (uint256) {
        if (a == 0) revert RankTreeZeroLeverage();
        int128 k_ = SafeCast.toInt128(k);
        uint128 a_ = SafeCast.toUint128(a);
        int128 e_ = SafeCast.toInt128(ScoreMath.eligibilityKey(isLong, a, k_));
        return (encodeA(a_) << A_SHIFT) | (encodeSigned(k_, !isLong) << K_SHIFT) | (encodeSigned(e_, true) << E_SHIFT);
    }

    /// @notice The record packed in `w`.
    function decode(uint256 w) internal pure returns (Node memory n) {
        n.maxA = _maxA(w);
        n.bestK = _bestK(w);
        n.maxE = _maxE(w);
        n.count = w & MAX_COUNT;
    }

    /// @notice The 64-bit code of the least value >= v of the form m << e (m < 2^56): code = e << 56 | m with the
    /// least such e. 0 only for v == 0.
    function encodeA(uint128 v) internal pure returns (uint256) {
        (uint256 e, uint256 m) = _encodeMagnitude(v, A_MANTISSA_BITS, true);
        return (e << A_MANTISSA_BITS) | m;
    }

    /// @notice The value of a 64-bit maxA code: m << e (at most 2^128 for codes of encodeA).
    function decodeA(uint256 code) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shl(shr(56, code), and(code, 0xffffffffffffff))
        }
    }

    /// @notice The 72-bit code of v rounded up (`up`) or down to the form +-(m << e) (m < 2^64): code =
    /// sign << 71 | e << 64 | m with the least such e; the sign bit is set iff v < 0 (never for 0).
    function encodeSigned(int128 v, bool up) internal pure returns (uint256) {
        bool negative = v < 0;
        uint256 magnitude = negative ? uint256(-int256(v)) : uint256(int256(v));
        // Rounding a negative value up rounds its magnitude down, and down rounds it up.
        (uint256 e, uint256 m) = _encodeMagnitude(magnitude, S_MANTISSA_BITS, up != negative);
        return (negative ? S_SIGN : 0) | (e << S_MANTISSA_BITS) | m;
    }

    /// @notice The value of a 72-bit signed code: +-(m << e) (|value| <= 2^127 for codes of encodeSigned).
    function decodeSigned(uint256 code) internal pure returns (int256 v) {
        assembly ("memory-safe") {
            v := shl(and(shr(64, code), 127), and(code, 0xffffffffffffffff))
            if and(shr(71, code), 1) {
                v := sub(0, v)
            }
        }
    }

    // ------------------------------------------------------------------------------------ internals

    /// @dev Merges member word `m` into node `index` and upward; stops at the first node that does not change.
    function _mergeUp(Tree storage t, bool isLong, uint256 index, uint256 m) private {
        for (; index != 0; index >>= 1) {
            uint256 w = t.words[index];
            uint256 joined = _join(isLong, w, m);
            if (joined == w) return;
            t.words[index] = joined;
        }
    }

    /// @dev `w` (a node word, count kept) joined with the non-empty aggregates `m` (count bits 0): if `w` is
    /// empty (all its aggregate bits are 0), m's aggregates; else each of w's codes replaced by m's where m's
    /// decoded value is larger (better, for K). Returns `w` itself iff nothing changes.
    function _join(bool isLong, uint256 w, uint256 m) private pure returns (uint256) {
        if (w & A_FIELD == 0) return w | m;
        if (_maxA(m) > _maxA(w)) w = (w & ~A_FIELD) | (m & A_FIELD);
        int256 k = _bestK(m);
        if (isLong ? k < _bestK(w) : k > _bestK(w)) w = (w & ~K_FIELD) | (m & K_FIELD);
        if (_maxE(m) > _maxE(w)) w = (w & ~E_FIELD) | (m & E_FIELD);
        return w;
    }

    function _maxA(uint256 w) private pure returns (uint256) {
        return decodeA((w >> A_SHIFT) & A_CODE_MASK);
    }

    function _bestK(uint256 w) private pure returns (int256) {
        return decodeSigned((w >> K_SHIFT) & S_CODE_MASK);
    }

    function _maxE(uint256 w) private pure returns (int256) {
        return decodeSigned((w >> E_SHIFT) & S_CODE_MASK);
    }

    /// @dev (e, m) with m << e the least (`up`) or greatest value of that form >= / <= v, m < 2^mantissaBits and
    /// e least: e = max(0, bitlen(v) - mantissaBits), m = v >> e, plus one if rounding up and bits were dropped
    /// (renormalized when that carries into bit mantissaBits).
    function _encodeMagnitude(uint256 v, uint256 mantissaBits, bool up) private pure returns (uint256 e, uint256 m) {
        uint256 bits = _bitLength(v);
        assembly ("memory-safe") {
            m := v
            if gt(bits, mantissaBits) {
                e := sub(bits, mantissaBits)
                m := shr(e, v)
                if and(iszero(iszero(up)), iszero(eq(shl(e, m), v))) {
                    m := add(m, 1)
                    if shr(mantissaBits, m) {
                        m := shr(1, m)
                        e := add(e, 1)
                    }
                }
            }
        }
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

    /// @dev Number of bits of v: 0 for 0, floor(log2(v)) + 1 otherwise. Math.log2's binary search, inlined:
    /// halve the window while its upper half is non-zero, then a 16-entry table for the last 4 bits.
    function _bitLength(uint256 v) private pure returns (uint256 r) {
        assembly ("memory-safe") {
            r := shl(7, lt(0xffffffffffffffffffffffffffffffff, v))
            r := or(r, shl(6, lt(0xffffffffffffffff, shr(r, v))))
            r := or(r, shl(5, lt(0xffffffff, shr(r, v))))
            r := or(r, shl(4, lt(0xffff, shr(r, v))))
            r := or(r, shl(3, lt(0xff, shr(r, v))))
            r := or(r, shl(2, lt(0xf, shr(r, v))))
            r := or(r, byte(shr(r, v), 0x0000010102020202030303030303030300000000000000000000000000000000))
            r := add(r, iszero(iszero(v)))
        }
    }
}
