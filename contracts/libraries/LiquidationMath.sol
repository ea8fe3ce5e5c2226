// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPointMath} from "./FixedPointMath.sol";
import {PositionMath} from "./PositionMath.sol";

/// @title LiquidationMath
/// @notice Sizes, fees and bad-debt splits of a liquidation (docs/mechanism.md section 3, Liquidation).
library LiquidationMath {
    using FixedPointMath for uint256;

    uint256 internal constant WAD = FixedPointMath.WAD;
    /// @dev A partial liquidation may take what brings the remainder to mmr * (1 + 25%).
    uint256 internal constant BUFFER = 25e16;

    /// @dev What one liquidation moves, all 18-decimal quote.
    struct Plan {
        int256 takenEquity; // V = floor(c*d/q) + floor(d*x/W): the taken part's booked equity
        uint256 fee; // liquidation fee actually charged: min(ceil(fee rate * notional), max(V, 0))
        uint256 deficit; // D = max(0, -equity) of the whole position before the takeover
        uint256 fundPays; // D - D': the drop in the whole position's deficit
        uint256 reservePays; // -V - fundPays: the 0 to 1 wei that floors leave
    }

    /// @dev The largest size a liquidator may take: the least that restores the remainder to
    /// mmr * (1 + BUFFER) after the fee (the taken part's net equity stays in the margin),
    /// rounded up, and at least the minimum notional's worth ceil(minNotional * W / P), so that a
    /// liquidator without a position can always take the cap (its leg must meet the minimum);
    /// the whole position if that cannot be reached or would leave less than the minimum notional.
    function maxTake(
        uint256 size,
        int256 eq,
        uint256 price,
        uint256 mmr,
        uint256 feeRate,
        uint256 minNotional
    ) internal pure returns (uint256) {
        uint256 cap;
        {
            uint256 target = mmr + mmr.mulDivDown(BUFFER, WAD);
            if (eq <= 0 || target <= feeRate) return size;
            int256 need = int256(PositionMath.requirementUp(size, price, target)) - eq;
            uint256 perUnit = (target - feeRate).mulDivDown(price, WAD);
            if (need <= 0 || perUnit == 0) return size;
            cap = uint256(need).mulDivUp(WAD, perUnit);
        }
        uint256 leastLeg = minNotional.mulDivUp(WAD, price);
        if (cap < leastLeg) cap = leastLeg;
        if (cap >= size || (size - cap).mulDivDown(price, WAD) < minNotional) return size;
        return cap;
    }

    /// @dev The plan of taking `d` of a position (q, c, x) at index `price`.
    function plan(
        uint256 size,
        uint256 margin,
        int256 x,
        uint256 d,
        uint256 price,
        uint256 feeRate
    ) internal pure returns (Plan memory p) {
        uint256 released = PositionMath.releasedMargin(margin, d, size);
        p.takenEquity = int256(released) + PositionMath.pnlDown(d, x);
        if (p.takenEquity >= 0) {
            uint256 fee = feeUp(d, price, feeRate);
            p.fee = fee < uint256(p.takenEquity) ? fee : uint256(p.takenEquity);
            return p;
        }
        int256 eq = PositionMath.equity(margin, size, x);
        int256 remaining = PositionMath.equity(margin - released, size - d, x);
        p.deficit = eq < 0 ? uint256(-eq) : 0;
        uint256 deficitAfter = remaining < 0 ? uint256(-remaining) : 0;
        p.fundPays = p.deficit - deficitAfter;
        p.reservePays = uint256(-p.takenEquity) - p.fundPays;
    }

    /// @dev ceil(ceil(d * P / W) * feeRate / W): the uncapped fee, rounded toward the protocol.
    function feeUp(uint256 d, uint256 price, uint256 feeRate) internal pure returns (uint256) {
        return PositionMath.requirementUp(d, price, feeRate);
    }
}
