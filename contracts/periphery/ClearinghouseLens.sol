// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouse} from "../interfaces/IClearinghouse.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {FundingMath} from "../libraries/FundingMath.sol";
import {LiquidationMath} from "../libraries/LiquidationMath.sol";

/// @dev The clearinghouse getters the lens reads (public state of Clearinghouse).
interface IClearinghouseState is IClearinghouse {
    function oracle() external view returns (IOracleAdapter);
    function marketParams(bytes32 marketId) external view returns (MarketParams memory);
    function marketState(bytes32 marketId) external view returns (MarketState memory);
    function marketStatus(bytes32 marketId) external view returns (bool listed, bool paused);
}

/// @title ClearinghouseLens
/// @notice Read-only views derived from the clearinghouse's public state, computed with the same
/// libraries the clearinghouse uses, so they agree with it to the wei. Every derived view lives
/// here rather than in the core, which keeps only stored state and the rules that change it.
contract ClearinghouseLens {
    using FixedPointMath for uint256;

    /// @notice The clearinghouse this lens reads.
    IClearinghouseState public immutable clearinghouse;

    constructor(IClearinghouseState clearinghouse_) {
        clearinghouse = clearinghouse_;
    }

    /// @notice Cumulative funding F of `marketId` accrued virtually to the current block.
    function currentFunding(bytes32 marketId) external view returns (int256 funding) {
        (, funding, ) = _accrued(marketId);
    }

    /// @notice The F the positions of one side are valued at, accrued virtually to the current
    /// block: F + L_long for longs, F - L_short for shorts (docs/mechanism.md section 7.6).
    function currentSideFunding(bytes32 marketId, bool isLong) external view returns (int256 funding) {
        (, funding) = _priceAndFunding(marketId, isLong);
    }

    /// @notice Equity c + floor(q * x / W) of `account` in `marketId` at the current index price and
    /// funding accrued virtually to this block; 0 without a position (no price is read then).
    function equity(bytes32 marketId, address account) public view returns (int256) {
        IClearinghouse.Position memory pos = clearinghouse.getPosition(marketId, account);
        if (pos.size == 0) return 0;
        (uint256 price, int256 funding) = _priceAndFunding(marketId, pos.isLong);
        return PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
    }

    /// @notice True if `account`'s equity is below the maintenance requirement ceil(mmr * notional) at
    /// the current index price, the test `Clearinghouse.liquidate` applies; false without a position.
    function isLiquidatable(bytes32 marketId, address account) external view returns (bool result) {
        IClearinghouse.Position memory pos = clearinghouse.getPosition(marketId, account);
        if (pos.size == 0) return false;
        (uint256 price, int256 funding) = _priceAndFunding(marketId, pos.isLong);
        int256 eq = PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
        (result, ) = PositionMath.liquidatable(eq, pos.size, price, clearinghouse.marketParams(marketId).mmr);
    }

    /// @notice True if `account` has a position in `marketId` whose equity is below zero now.
    function isBankrupt(bytes32 marketId, address account) external view returns (bool) {
        return equity(marketId, account) < 0;
    }

    /// @notice Equity divided by notional (18-decimal), rounded down; type(int256).max without a position.
    function marginRatio(bytes32 marketId, address account) external view returns (int256) {
        IClearinghouse.Position memory pos = clearinghouse.getPosition(marketId, account);
        if (pos.size == 0) return type(int256).max;
        (uint256 price, int256 funding) = _priceAndFunding(marketId, pos.isLong);
        int256 eq = PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
        uint256 notional = uint256(pos.size).mulDivUp(price, FixedPointMath.WAD);
        return FixedPointMath.divFloor(eq * int256(FixedPointMath.WAD), notional);
    }

    /// @notice The most a liquidator may take from `account` now (0 if not liquidatable), as
    /// `Clearinghouse.liquidate` enforces it.
    function maxLiquidationSize(bytes32 marketId, address account) external view returns (uint256) {
        IClearinghouse.Position memory pos = clearinghouse.getPosition(marketId, account);
        if (pos.size == 0) return 0;
        (uint256 price, int256 funding) = _priceAndFunding(marketId, pos.isLong);
        IClearinghouse.MarketParams memory p = clearinghouse.marketParams(marketId);
        int256 eq = PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
        (bool isLiquidatable_, ) = PositionMath.liquidatable(eq, pos.size, price, p.mmr);
        if (!isLiquidatable_) return 0;
        return LiquidationMath.maxTake(pos.size, eq, price, p.mmr, p.liquidationFee, p.minNotional);
    }

    /// @dev The index price and the F positions of `isLong`'s side are valued at, accrued virtually.
    function _priceAndFunding(bytes32 marketId, bool isLong) private view returns (uint256 price, int256 funding) {
        IClearinghouse.MarketState memory s;
        (price, funding, s) = _accrued(marketId);
        funding = PositionMath.sideFunding(funding, s.lossIndexLong, s.lossIndexShort, isLong);
    }

    /// @dev The index price, F accrued virtually to this block, and the stored market state.
    function _accrued(
        bytes32 marketId
    ) private view returns (uint256 price, int256 funding, IClearinghouse.MarketState memory s) {
        (bool listed, ) = clearinghouse.marketStatus(marketId);
        if (!listed) revert IClearinghouseTypes.MarketUnknown(marketId);
        (price, ) = clearinghouse.oracle().getPrice(marketId, false);
        s = clearinghouse.marketState(marketId);
        IClearinghouse.MarketParams memory p = clearinghouse.marketParams(marketId);
        FundingMath.Accrual memory a = FundingMath.Accrual(
            s.cumulativeFunding,
            s.fundingRate,
            s.lastFundingTime,
            s.windowStart,
            s.premiumTimesSize,
            s.windowSize
        );
        funding = FundingMath
            .project(a, p.fundingWindow, p.fundingPeriod, price, block.timestamp, s.longOpenInterest)
            .cumulativeFunding;
    }

    function _x(IClearinghouse.Position memory pos, uint256 price, int256 funding) private pure returns (int256) {
        return PositionMath.pnlPerUnit(pos.isLong, pos.entry, price, funding);
    }
}
