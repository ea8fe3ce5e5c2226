// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {FundingMath} from "../libraries/FundingMath.sol";

/// @title MathHarness
/// @notice Test-only wrapper exposing the internal math libraries as external pure functions, so the
/// TypeScript mirror (lib/math.ts, lib/position.ts, lib/funding.ts) can be compared bit for bit.
/// @dev Every function forwards its arguments unchanged; no validation is added or removed.
contract MathHarness {
    // ------------------------------------------------------------------ FixedPointMath

    function mulDivDown(uint256 a, uint256 b, uint256 d) external pure returns (uint256) {
        return FixedPointMath.mulDivDown(a, b, d);
    }

    function mulDivUp(uint256 a, uint256 b, uint256 d) external pure returns (uint256) {
        return FixedPointMath.mulDivUp(a, b, d);
    }

    function divFloor(int256 a, uint256 d) external pure returns (int256) {
        return FixedPointMath.divFloor(a, d);
    }

    function divCeil(int256 a, uint256 d) external pure returns (int256) {
        return FixedPointMath.divCeil(a, d);
    }

    function min(int256 a, int256 b) external pure returns (int256) {
        return FixedPointMath.min(a, b);
    }

    // ------------------------------------------------------------------ PositionMath

    function pnlPerUnit(bool isLong, int256 entry, uint256 price, int256 funding) external pure returns (int256) {
        return PositionMath.pnlPerUnit(isLong, entry, price, funding);
    }

    function pnlDown(uint256 size, int256 x) external pure returns (int256) {
        return PositionMath.pnlDown(size, x);
    }

    function equity(uint256 margin, uint256 size, int256 x) external pure returns (int256) {
        return PositionMath.equity(margin, size, x);
    }

    function requirementUp(uint256 size, uint256 price, uint256 ratio) external pure returns (uint256) {
        return PositionMath.requirementUp(size, price, ratio);
    }

    function marginShortfall(
        uint256 margin,
        uint256 size,
        int256 x,
        uint256 price,
        uint256 imr
    ) external pure returns (uint256) {
        return PositionMath.marginShortfall(margin, size, x, price, imr);
    }

    function blendEntry(
        bool isLong,
        uint256 size,
        int256 entry,
        uint256 add,
        uint256 price,
        int256 funding
    ) external pure returns (int256) {
        return PositionMath.blendEntry(isLong, size, entry, add, price, funding);
    }

    function releasedMargin(uint256 margin, uint256 reduce, uint256 size) external pure returns (uint256) {
        return PositionMath.releasedMargin(margin, reduce, size);
    }

    function leverageUp(uint256 size, uint256 margin) external pure returns (uint256) {
        return PositionMath.leverageUp(size, margin);
    }

    // ------------------------------------------------------------------ FundingMath

    function project(
        FundingMath.Accrual memory a,
        uint256 fundingWindow,
        uint256 fundingPeriod,
        uint256 price,
        uint256 nowTs,
        uint256 openInterest
    ) external pure returns (FundingMath.Accrual memory) {
        return FundingMath.project(a, fundingWindow, fundingPeriod, price, nowTs, openInterest);
    }

    function premium(uint256 fillPrice, uint256 indexPrice, uint256 maxPremium) external pure returns (int256) {
        return FundingMath.premium(fillPrice, indexPrice, maxPremium);
    }
}
