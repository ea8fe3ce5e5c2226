// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {RankTree} from "../libraries/RankTree.sol";

/// @title RankTreeHarness
/// @notice Test-only holder of the two rank trees (long, short) of one market, exposing RankTree externally
/// so the TypeScript mirror (lib/rank-tree.ts) can be compared node for node and slot for slot.
/// @dev Every function forwards its arguments unchanged (the side picks the tree and the direction of best K);
/// no validation is added or removed, and nothing is emitted.
contract RankTreeHarness {
    using RankTree for RankTree.Tree;

    RankTree.Tree private _longs;
    RankTree.Tree private _shorts;

    /// @notice RankTree.insert on the tree of `isLong`.
    function insert(bool isLong, uint256 leaf, uint256 a, int256 k) external {
        _tree(isLong).insert(isLong, leaf, a, k);
    }

    /// @notice RankTree.update on the tree of `isLong`.
    function update(bool isLong, uint256 leaf, uint256 a, int256 k) external {
        _tree(isLong).update(isLong, leaf, a, k);
    }

    /// @notice RankTree.remove on the tree of `isLong`.
    function remove(bool isLong, uint256 leaf) external {
        _tree(isLong).remove(leaf);
    }

    /// @notice RankTree.refreshInternal on the tree of `isLong`.
    function refreshInternal(bool isLong, uint256 index) external {
        _tree(isLong).refreshInternal(isLong, index);
    }

    /// @notice RankTree.refreshLeaf on the tree of `isLong`.
    function refreshLeaf(bool isLong, uint256 leaf, uint256[] calldata aValues, int256[] calldata kValues) external {
        _tree(isLong).refreshLeaf(isLong, leaf, aValues, kValues);
    }

    /// @notice RankTree.node on the tree of `isLong`.
    function node(bool isLong, uint256 index) external view returns (RankTree.Node memory) {
        return _tree(isLong).node(index);
    }

    /// @notice RankTree.node for each of `heapIndices` (one call for many nodes).
    function nodes(bool isLong, uint256[] calldata heapIndices) external view returns (RankTree.Node[] memory out) {
        RankTree.Tree storage t = _tree(isLong);
        out = new RankTree.Node[](heapIndices.length);
        for (uint256 i = 0; i < heapIndices.length; ++i) out[i] = t.node(heapIndices[i]);
    }

    /// @notice RankTree.word (the packed slot) for each of `heapIndices`.
    function words(bool isLong, uint256[] calldata heapIndices) external view returns (uint256[] memory out) {
        RankTree.Tree storage t = _tree(isLong);
        out = new uint256[](heapIndices.length);
        for (uint256 i = 0; i < heapIndices.length; ++i) out[i] = t.word(heapIndices[i]);
    }

    /// @notice XOR over `heapIndices` of keccak256(abi.encodePacked(heapIndex, word)), word the packed slot:
    /// compares many nodes bit for bit with the mirror without returning them (the mirror can update it node by
    /// node).
    function digest(bool isLong, uint256[] calldata heapIndices) external view returns (bytes32 d) {
        RankTree.Tree storage t = _tree(isLong);
        for (uint256 i = 0; i < heapIndices.length; ++i) {
            d ^= keccak256(abi.encodePacked(heapIndices[i], t.word(heapIndices[i])));
        }
    }

    /// @notice RankTree.memberWord for each (a, k) on the side `isLong`.
    function memberWords(
        bool isLong,
        uint256[] calldata aValues,
        int256[] calldata kValues
    ) external pure returns (uint256[] memory out) {
        out = new uint256[](aValues.length);
        for (uint256 i = 0; i < aValues.length; ++i) out[i] = RankTree.memberWord(isLong, aValues[i], kValues[i]);
    }

    /// @notice RankTree.decode.
    function decode(uint256 w) external pure returns (RankTree.Node memory) {
        return RankTree.decode(w);
    }

    /// @notice RankTree.encodeA / decodeA on each of `aValues`, and RankTree.encodeSigned (up and down) /
    /// decodeSigned on each of `sValues`.
    function codecs(
        uint128[] calldata aValues,
        int128[] calldata sValues
    )
        external
        pure
        returns (
            uint256[] memory aCodes,
            uint256[] memory aDecoded,
            uint256[] memory upCodes,
            int256[] memory upDecoded,
            uint256[] memory downCodes,
            int256[] memory downDecoded
        )
    {
        aCodes = new uint256[](aValues.length);
        aDecoded = new uint256[](aValues.length);
        for (uint256 i = 0; i < aValues.length; ++i) {
            aCodes[i] = RankTree.encodeA(aValues[i]);
            aDecoded[i] = RankTree.decodeA(aCodes[i]);
        }
        upCodes = new uint256[](sValues.length);
        upDecoded = new int256[](sValues.length);
        downCodes = new uint256[](sValues.length);
        downDecoded = new int256[](sValues.length);
        for (uint256 i = 0; i < sValues.length; ++i) {
            upCodes[i] = RankTree.encodeSigned(sValues[i], true);
            upDecoded[i] = RankTree.decodeSigned(upCodes[i]);
            downCodes[i] = RankTree.encodeSigned(sValues[i], false);
            downDecoded[i] = RankTree.decodeSigned(downCodes[i]);
        }
    }

    /// @notice RankTree.heapIndex.
    function heapIndex(uint256 level, uint256 position) external pure returns (uint256) {
        return RankTree.heapIndex(level, position);
    }

    /// @notice RankTree.leafRange.
    function leafRange(uint256 level, uint256 position) external pure returns (uint256 firstLeaf, uint256 endLeaf) {
        return RankTree.leafRange(level, position);
    }

    /// @notice RankTree.leafOf.
    function leafOf(uint256 a, int256 k, uint8 kRef) external pure returns (uint256) {
        return RankTree.leafOf(a, k, kRef);
    }

    /// @notice RankTree.bandOf.
    function bandOf(uint256 a, int256 k, uint8 kRef) external pure returns (uint256 aBand, uint256 kBand) {
        return RankTree.bandOf(a, k, kRef);
    }

    /// @notice RankTree.bandOf and RankTree.leafOf for many inputs (one call for many cases).
    function bandsOf(
        uint256[] calldata aValues,
        int256[] calldata kValues,
        uint8[] calldata kRefs
    ) external pure returns (uint256[] memory aBands, uint256[] memory kBands, uint256[] memory leaves) {
        aBands = new uint256[](aValues.length);
        kBands = new uint256[](aValues.length);
        leaves = new uint256[](aValues.length);
        for (uint256 i = 0; i < aValues.length; ++i) {
            (aBands[i], kBands[i]) = RankTree.bandOf(aValues[i], kValues[i], kRefs[i]);
            leaves[i] = RankTree.leafOf(aValues[i], kValues[i], kRefs[i]);
        }
    }

    /// @dev The long tree for `isLong`, else the short tree.
    function _tree(bool isLong) private view returns (RankTree.Tree storage) {
        return isLong ? _longs : _shorts;
    }
}
