// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {PositionMath} from "./PositionMath.sol";

/// @title ScoreMath
/// @notice The ADL score, the queue order and the eligibility test of docs/mechanism.md sections 2-4.
/// @dev One canonical integer function of the stored (a, K) and the call's (P, F). In real numbers
/// the score is a^2 * x * P / (1 + a * x) for x > 0, x / P for x <= 0, and minus infinity iff x < 0
/// and a * (-x) >= 1. The finite chain `scoreFinite` (S_fin) is non-decreasing in `a` and in `x`
/// step by step, so a node's bound S_fin(max a, best K) is never below any member's score.
/// Domain (docs/mechanism.md): a <= 2^128, |K|, q, P < 2^128, so |x| < 2^130 and no step overflows; outside
/// it every function either returns the exact value or reverts, never wraps.
library ScoreMath {
    /// @dev The fixed-point unit W.
    uint256 internal constant WAD = 1e18;
    /// @dev W * W: the real number 1 at the scale of a * x (both W-scaled).
    uint256 internal constant WAD_SQUARED = 1e36;
    /// @dev The value carried by a minus-infinity score: below every finite score (|S_fin| < 2^255).
    int256 internal constant MINUS_INFINITY_VALUE = type(int256).min;

    /// @dev Per-unit PnL x = (P - F) - K for a long, K - (P - F) for a short (PositionMath.pnlPerUnit).
    function x(bool isLong, int256 k, uint256 p, int256 f) internal pure returns (int256) {
        return PositionMath.pnlPerUnit(isLong, k, p, f);
    }

    /// @dev S_fin(a, x, P), the finite score chain.
    /// For x > 0 (every step floors, each is non-decreasing in its non-negative inputs):
    ///   y = floor(a * x / W)                  (512-bit mulDiv, rounded down)
    ///   g = floor(y * W / (W + y))            (512-bit mulDiv, rounded down; g < W)
    ///   S = floor(floor(P * a / W) * g / W)   (two 512-bit mulDivs, each rounded down)
    /// For x <= 0: S = trunc(x * W / P), truncated toward zero like Solidity signed division, computed
    /// as -floor(|x| * W / P) (512-bit mulDiv, magnitude rounded down). Reverts if x <= 0 and P == 0.
    function scoreFinite(uint256 a, int256 x_, uint256 p) internal pure returns (int256) {
        if (x_ > 0) {
            uint256 y = Math.mulDiv(a, uint256(x_), WAD);
            uint256 g = Math.mulDiv(y, WAD, WAD + y);
            return SafeCast.toInt256(Math.mulDiv(Math.mulDiv(p, a, WAD), g, WAD));
        }
        // x_ <= 0: -x_ is checked (reverts only for type(int256).min, outside the domain).
        return -SafeCast.toInt256(Math.mulDiv(uint256(-x_), WAD, p));
    }

    /// @dev True iff x < 0 and a * (-x) >= W * W, compared on the exact (unbounded) product: a product
    /// that overflows 256 bits exceeds W * W.
    function isMinusInfinity(uint256 a, int256 x_) internal pure returns (bool) {
        if (x_ >= 0) return false;
        (bool fits, uint256 product) = Math.tryMul(a, _magnitude(x_));
        return !fits || product >= WAD_SQUARED;
    }

    /// @dev A member's score: (true, MINUS_INFINITY_VALUE) if isMinusInfinity(a, x), else (false, S_fin).
    function score(uint256 a, int256 x_, uint256 p) internal pure returns (bool minusInf, int256 value) {
        if (isMinusInfinity(a, x_)) return (true, MINUS_INFINITY_VALUE);
        return (false, scoreFinite(a, x_, p));
    }

    /// @dev True iff A ranks strictly below B in queue order: higher score first; minus infinity below
    /// every finite score; equal finite scores, or two minus infinities (values ignored), by lower
    /// address first, so then A ranks below B iff A's address is higher. Irreflexive, and a strict
    /// total order on distinct accounts.
    function ranksBelow(
        int256 scoreA,
        bool infA,
        address accountA,
        int256 scoreB,
        bool infB,
        address accountB
    ) internal pure returns (bool) {
        if (infA != infB) return infA;
        if (!infA && scoreA != scoreB) return scoreA < scoreB;
        return uint160(accountA) > uint160(accountB);
    }

    /// @dev E = floor(W * W / a) - K for a long, floor(W * W / a) + K for a short (floor: the stored a
    /// is rounded up, so E never overstates c / q). Requires a > 0 (reverts on a == 0).
    function eligibilityKey(bool isLong, uint256 a, int256 k) internal pure returns (int256) {
        int256 perUnitMargin = int256(WAD_SQUARED / a); // <= 1e36, fits
        return isLong ? perUnitMargin - k : perUnitMargin + k;
    }

    /// @dev True iff a key E covers the loss per unit: E + (P - F) >= delta for a long,
    /// E - (P - F) >= delta for a short. Non-decreasing in E, so a node whose largest key fails is
    /// wholly ineligible. Compared exactly (no cast of delta to int256).
    function keyCovers(bool isLong, int256 key, uint256 p, int256 f, uint256 delta) internal pure returns (bool) {
        int256 adjusted = SafeCast.toInt256(p) - f;
        int256 equityPerUnit = isLong ? key + adjusted : key - adjusted;
        return equityPerUnit >= 0 && uint256(equityPerUnit) >= delta;
    }

    /// @dev Eligibility (docs/mechanism.md section 3 step 4): floor(W * W / a) + x >= delta. Since
    /// E + (P - F) = floor(W*W/a) - K + (P - F) = floor(W*W/a) + x for a long and
    /// E - (P - F) = floor(W*W/a) + K - (P - F) = floor(W*W/a) + x for a short, it is written once, as
    /// keyCovers(eligibilityKey(...)), the same expression the node test uses. Requires a > 0.
    function isEligible(
        bool isLong,
        uint256 a,
        int256 k,
        uint256 p,
        int256 f,
        uint256 delta
    ) internal pure returns (bool) {
        return keyCovers(isLong, eligibilityKey(isLong, a, k), p, f, delta);
    }

    /// @dev A node's bound S_fin(max a, x(best K)), never minus infinity. Best K is the smallest K for
    /// longs and the largest for shorts, so x(best K) >= every member's x; with max a >= every member's
    /// a and S_fin non-decreasing in both, the bound is >= every member's score.
    function nodeBound(uint256 maxA, int256 bestK, bool isLong, uint256 p, int256 f) internal pure returns (int256) {
        return scoreFinite(maxA, x(isLong, bestK, p, f), p);
    }

    /// @dev |v| for v < 0 as uint256, exact also for type(int256).min.
    function _magnitude(int256 v) private pure returns (uint256) {
        return uint256(-(v + 1)) + 1;
    }
}
