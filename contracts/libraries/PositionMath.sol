// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPointMath} from "./FixedPointMath.sol";

/// @title PositionMath
/// @notice The position record of docs/mechanism.md section 2 as pure functions.
/// @dev A position is (side, q, K, c) plus its stored leverage a. `K` is the funding-adjusted
/// entry, so with cumulative funding F a long's per-unit PnL is x = (P - F) - K and a short's is
/// x = K - (P - F). Sizes, prices, K, F and margins are 18-decimal; callers keep q, |K| and P
/// below 2^120 so that every product below fits in int256.
library PositionMath {
    using FixedPointMath for uint256;

    uint256 internal constant WAD = FixedPointMath.WAD;
    /// @dev Leverage saturates here instead of wrapping (the mechanism (docs/mechanism.md) caps it at 2^128).
    uint256 internal constant MAX_LEVERAGE = type(uint128).max;

    /// @dev The cumulative funding a side's positions are valued at: F with the side's loss index
    /// folded in, F + L_long for longs and F - L_short for shorts, so that a rise of a side's L
    /// lowers each of its positions' x by exactly that much, like funding paid by one side only.
    function sideFunding(
        int256 funding,
        uint256 lossLong,
        uint256 lossShort,
        bool isLong
    ) internal pure returns (int256) {
        return isLong ? funding + int256(lossLong) : funding - int256(lossShort);
    }

    /// @dev Per-unit unrealized PnL at price `price` under cumulative funding `funding`.
    function pnlPerUnit(bool isLong, int256 entry, uint256 price, int256 funding) internal pure returns (int256) {
        int256 adjusted = int256(price) - funding;
        return isLong ? adjusted - entry : entry - adjusted;
    }

    /// @dev floor(size * x / W): PnL rounded toward negative infinity, against the account.
    function pnlDown(uint256 size, int256 x) internal pure returns (int256) {
        return FixedPointMath.divFloor(int256(size) * x, WAD);
    }

    /// @dev Equity c + floor(q * x / W), rounded against the account.
    function equity(uint256 margin, uint256 size, int256 x) internal pure returns (int256) {
        return int256(margin) + pnlDown(size, x);
    }

    /// @dev ceil(ceil(q * P / W) * ratio / W): a margin requirement rounded up, against the account.
    function requirementUp(uint256 size, uint256 price, uint256 ratio) internal pure returns (uint256) {
        return size.mulDivUp(price, WAD).mulDivUp(ratio, WAD);
    }

    /// @dev The one liquidation test: equity below ceil(ceil(q*P/W)*mmr/W), the maintenance
    /// requirement rounded against the account. Returns the requirement too, for errors.
    function liquidatable(
        int256 eq,
        uint256 size,
        uint256 price,
        uint256 mmr
    ) internal pure returns (bool isLiquidatable, uint256 maintenance) {
        maintenance = requirementUp(size, price, mmr);
        isLiquidatable = eq < int256(maintenance);
    }

    /// @dev The one margin test: c + min(floor(q*x/W), 0) >= requirementUp(q, P, imr).
    /// Losses count, profit never does. Returns the shortfall (0 if the test passes).
    function marginShortfall(
        uint256 margin,
        uint256 size,
        int256 x,
        uint256 price,
        uint256 imr
    ) internal pure returns (uint256) {
        int256 backing = int256(margin) + FixedPointMath.min(pnlDown(size, x), 0);
        int256 required = int256(requirementUp(size, price, imr));
        return backing >= required ? 0 : uint256(required - backing);
    }

    /// @dev Blended funding-adjusted entry after adding `add` units at trade price `price`:
    /// (q*K + d*(p - F)) / (q + d), rounded up for a long and down for a short (against the trader).
    function blendEntry(
        bool isLong,
        uint256 size,
        int256 entry,
        uint256 add,
        uint256 price,
        int256 funding
    ) internal pure returns (int256) {
        int256 numerator = int256(size) * entry + int256(add) * (int256(price) - funding);
        uint256 total = size + add;
        return isLong ? FixedPointMath.divCeil(numerator, total) : FixedPointMath.divFloor(numerator, total);
    }

    /// @dev floor(c * d / q): margin released by reducing `size` by `reduce`, rounded down.
    function releasedMargin(uint256 margin, uint256 reduce, uint256 size) internal pure returns (uint256) {
        return margin.mulDivDown(reduce, size);
    }

    /// @dev a = ceil(q * W / c), saturating at MAX_LEVERAGE. Requires c > 0.
    function leverageUp(uint256 size, uint256 margin) internal pure returns (uint256) {
        // q < 2^120 so q * W < 2^180: no overflow, and the quotient is exact before capping.
        uint256 a = size.mulDivUp(WAD, margin);
        return a > MAX_LEVERAGE ? MAX_LEVERAGE : a;
    }
}
