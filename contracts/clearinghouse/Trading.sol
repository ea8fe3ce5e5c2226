// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ClearinghouseStorage} from "./ClearinghouseStorage.sol";
import {PositionBook} from "./PositionBook.sol";
import {OrderLib} from "../libraries/OrderLib.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {FundingMath} from "../libraries/FundingMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title Trading
/// @notice Signed-order matching: each pair of orders is checked by `OrderLib`, filled through the
/// position funnel at the maker's price, charged fees, and fed into the funding premium.
abstract contract Trading is ClearinghouseStorage {
    using FixedPointMath for uint256;

    /// @dev One matched fill of two orders at the maker's limit price.
    function _match(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) internal {
        (bytes32 makerHash, bytes32 takerHash) = _checkMatch(maker, makerSignature, taker, takerSignature, fillSize);
        uint256 index = PositionBook.tradePrice(oracle, maker.marketId);
        _checkBand(maker.marketId, maker.limitPrice, index, taker.makerAllowed);
        PositionBook.accrue(_s, maker.marketId, index);

        // Both checked by OrderLib: not cancelled, and filled + fillSize <= size < 2^255.
        _s.fills[makerHash] += fillSize;
        _s.fills[takerHash] += fillSize;
        bool takerBuys = taker.size > 0;
        _fillOrder(maker, !takerBuys, fillSize, maker.limitPrice, index);
        _fillOrder(taker, takerBuys, fillSize, maker.limitPrice, index);
        _settleMatch(maker, taker, fillSize, index, makerHash, takerHash);
    }

    /// @dev Validates a pair of orders for a fill at the maker's price; returns their hashes.
    function _checkMatch(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) private view returns (bytes32 makerHash, bytes32 takerHash) {
        if (taker.marketId != maker.marketId) revert OrderMarketMismatch(maker.marketId, taker.marketId);
        PositionBook.requireActive(_s, maker.marketId);
        if (fillSize == 0 || maker.size == 0 || taker.size == 0) revert OrderZeroSize();
        if ((maker.size > 0) == (taker.size > 0)) revert OrderSameSide();
        if (maker.trader == taker.trader) revert OrderSelfMatch(maker.trader);
        makerHash = _checkOrder(maker, makerSignature, fillSize, maker.limitPrice);
        if (!maker.makerAllowed) revert OrderTakerOnly(makerHash);
        takerHash = _checkOrder(taker, takerSignature, fillSize, maker.limitPrice);
    }

    function _checkOrder(
        Order calldata order,
        bytes calldata signature,
        uint256 fillSize,
        uint256 price
    ) private view returns (bytes32) {
        mapping(address => Position) storage book = _s.positions[order.marketId];
        return OrderLib.check(_s.fills, book, order, signature, _domainSeparatorV4(), fillSize, price);
    }

    /// @dev One leg of a match, at the maker's price, through the funnel.
    function _fillOrder(Order calldata order, bool buys, uint256 fillSize, uint256 price, uint256 index) private {
        int256 delta = buys ? int256(fillSize) : -int256(fillSize);
        PositionBook.modify(
            _s,
            PositionBook.Fill(order.marketId, order.trader, delta, price, order.leverage, index, order.reduceOnly, 0),
            PositionBook.FillKind.Trade
        );
    }

    /// @dev Fees after both legs (the reducing leg, then the increasing leg's margin, then fees),
    /// then the funding premium and the event.
    function _settleMatch(
        Order calldata maker,
        Order calldata taker,
        uint256 fillSize,
        uint256 index,
        bytes32 makerHash,
        bytes32 takerHash
    ) private {
        uint256 price = maker.limitPrice;
        (uint256 makerFee, uint256 takerFee) = _chargeFees(maker.marketId, maker.trader, taker.trader, fillSize, price);
        _recordPremium(maker.marketId, price, index, fillSize);
        emit OrdersMatched(
            maker.marketId,
            makerHash,
            takerHash,
            maker.trader,
            taker.trader,
            taker.size > 0,
            fillSize,
            price,
            makerFee,
            takerFee
        );
    }

    function _chargeFees(
        bytes32 marketId,
        address maker,
        address taker,
        uint256 size,
        uint256 price
    ) private returns (uint256 makerFee, uint256 takerFee) {
        MarketParams storage p = _s.params[marketId];
        uint256 notional = size.mulDivUp(price, FixedPointMath.WAD);
        makerFee = notional.mulDivUp(p.makerFee, FixedPointMath.WAD);
        takerFee = notional.mulDivUp(p.takerFee, FixedPointMath.WAD);
        PositionBook.debitFree(_s, maker, makerFee);
        PositionBook.debitFree(_s, taker, takerFee);
        uint256 total = makerFee + takerFee;
        if (total == 0) return (0, 0);
        // Both shares rounded down; the treasury takes the rest (the shares sum to at most 1).
        uint256 toFund = total.mulDivDown(p.fundFeeShare, FixedPointMath.WAD);
        uint256 toKeepers = total.mulDivDown(p.keeperFeeShare, FixedPointMath.WAD);
        _s.pendingFundFees += SafeCast.toUint128(toFund);
        _s.status[marketId].keeperReserve += SafeCast.toUint128(toKeepers);
        _s.treasuryBalance += SafeCast.toUint128(total - toFund - toKeepers);
        emit FeesCollected(marketId, toFund, toKeepers, total - toFund - toKeepers);
    }

    /// @dev The maker's price within priceBand of the index, or within the tighter takerBand when the
    /// taker order is taker-only: its worst fill is then a protocol parameter, whoever signs the
    /// resting order.
    function _checkBand(bytes32 marketId, uint256 price, uint256 index, bool takerMayMake) private view {
        MarketParams storage p = _s.params[marketId];
        uint256 band = takerMayMake ? p.priceBand : p.takerBand;
        uint256 gap = price > index ? price - index : index - price;
        if (gap * FixedPointMath.WAD > band * index) revert PriceOutsideBand(price, index, band);
    }

    function _recordPremium(bytes32 marketId, uint256 price, uint256 index, uint256 size) private {
        MarketState storage st = _s.state[marketId];
        st.premiumTimesSize += FundingMath.premium(price, index, _s.params[marketId].maxPremium) * int256(size);
        // Exact: a fill is at most a full reduction plus an increase, each below 2^120 (checked in
        // the funnel, which has run for both legs).
        st.windowSize += uint128(size);
    }
}
