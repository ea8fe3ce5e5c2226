// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ScoreMath} from "../libraries/ScoreMath.sol";

/// @title ScoreHarness
/// @notice Test-only wrapper exposing ScoreMath as external pure functions, so the TypeScript mirror
/// (lib/score.ts) can be compared bit for bit.
/// @dev Every function forwards its arguments unchanged; no validation is added or removed.
contract ScoreHarness {
    function x(bool isLong, int256 k, uint256 p, int256 f) external pure returns (int256) {
        return ScoreMath.x(isLong, k, p, f);
    }

    function scoreFinite(uint256 a, int256 x_, uint256 p) external pure returns (int256) {
        return ScoreMath.scoreFinite(a, x_, p);
    }

    function isMinusInfinity(uint256 a, int256 x_) external pure returns (bool) {
        return ScoreMath.isMinusInfinity(a, x_);
    }

    function score(uint256 a, int256 x_, uint256 p) external pure returns (bool minusInf, int256 value) {
        return ScoreMath.score(a, x_, p);
    }

    function ranksBelow(
        int256 scoreA,
        bool infA,
        address accountA,
        int256 scoreB,
        bool infB,
        address accountB
    ) external pure returns (bool) {
        return ScoreMath.ranksBelow(scoreA, infA, accountA, scoreB, infB, accountB);
    }

    function eligibilityKey(bool isLong, uint256 a, int256 k) external pure returns (int256) {
        return ScoreMath.eligibilityKey(isLong, a, k);
    }

    function keyCovers(bool isLong, int256 key, uint256 p, int256 f, uint256 delta) external pure returns (bool) {
        return ScoreMath.keyCovers(isLong, key, p, f, delta);
    }

    function isEligible(
        bool isLong,
        uint256 a,
        int256 k,
        uint256 p,
        int256 f,
        uint256 delta
    ) external pure returns (bool) {
        return ScoreMath.isEligible(isLong, a, k, p, f, delta);
    }

    function nodeBound(uint256 maxA, int256 bestK, bool isLong, uint256 p, int256 f) external pure returns (int256) {
        return ScoreMath.nodeBound(maxA, bestK, isLong, p, f);
    }
}
