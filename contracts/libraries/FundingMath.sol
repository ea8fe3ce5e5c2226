// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPointMath} from "./FixedPointMath.sol";

/// @title FundingMath
/// @notice Premium averaging and funding accrual (docs/mechanism.md section 3, Funding).
/// @dev Each ordinary fill adds its clamped premium (p - P) / P, weighted by fill size, to the
/// current window. When a window closes, the premium of that window is
/// sum(premium * size) / max(sum(size), open interest): a size-weighted average, diluted when
/// the window traded less than the open interest, so a thin fill cannot steer the rate (moving
/// the rate by a premium costs volume comparable to the open interest at that premium). That
/// premium divided by `fundingPeriod` is the per-second rate of the next window (each second
/// of it carries the same rate); a window without fills sets the rate to zero. F grows by
/// rate * P * dt / W, truncated toward zero; F is one number shared by every position of the
/// market, so funding paid equals funding received exactly.
library FundingMath {
    uint256 internal constant WAD = FixedPointMath.WAD;

    /// @dev The funding fields that accrual rewrites.
    struct Accrual {
        int256 cumulativeFunding;
        int256 fundingRate;
        uint256 lastFundingTime;
        uint256 windowStart;
        int256 premiumTimesSize;
        uint256 windowSize;
    }

    /// @dev Projects `a` forward to `nowTs` at index `price`, with `openInterest` (the long open
    /// interest now) as the floor of a closing window's weight. Pure so views and writes agree.
    function project(
        Accrual memory a,
        uint256 fundingWindow,
        uint256 fundingPeriod,
        uint256 price,
        uint256 nowTs,
        uint256 openInterest
    ) internal pure returns (Accrual memory) {
        // `cursor` is the time F has been accrued to; it only moves forward, even when a
        // shortened window ends before the last accrual.
        uint256 cursor = a.lastFundingTime;
        uint256 windowEnd = a.windowStart + fundingWindow;
        if (nowTs >= windowEnd) {
            uint256 closedAt = windowEnd > cursor ? windowEnd : cursor;
            a.cumulativeFunding += _increment(a.fundingRate, price, closedAt - cursor);
            cursor = closedAt;
            uint256 weight = a.windowSize > openInterest ? a.windowSize : openInterest;
            a.fundingRate = a.windowSize == 0 ? int256(0) : a.premiumTimesSize / int256(weight) / int256(fundingPeriod);
            a.premiumTimesSize = 0;
            a.windowSize = 0;
            uint256 fullWindows = (nowTs - windowEnd) / fundingWindow;
            if (fullWindows > 0) {
                // The window after the closed one had no fills: its rate runs to its end, then zero.
                uint256 nextEnd = windowEnd + fundingWindow;
                if (nextEnd > cursor) {
                    a.cumulativeFunding += _increment(a.fundingRate, price, nextEnd - cursor);
                    cursor = nextEnd;
                }
                a.fundingRate = 0;
            }
            a.windowStart = windowEnd + fullWindows * fundingWindow;
        }
        a.cumulativeFunding += _increment(a.fundingRate, price, nowTs - cursor);
        a.lastFundingTime = nowTs;
        return a;
    }

    /// @dev The clamped premium of a fill at `fillPrice` against `indexPrice`, as a signed fraction
    /// truncated toward zero.
    function premium(uint256 fillPrice, uint256 indexPrice, uint256 maxPremium) internal pure returns (int256 p) {
        p = ((int256(fillPrice) - int256(indexPrice)) * int256(WAD)) / int256(indexPrice);
        int256 cap = int256(maxPremium);
        if (p > cap) p = cap;
        if (p < -cap) p = -cap;
    }

    /// @dev rate * price * dt / W truncated toward zero.
    function _increment(int256 rate, uint256 price, uint256 dt) private pure returns (int256) {
        if (rate == 0 || dt == 0) return 0;
        return (rate * int256(price) * int256(dt)) / int256(WAD);
    }
}
