// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {ClearinghouseBase} from "./ClearinghouseBase.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {FundingMath} from "../libraries/FundingMath.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title OrderMatching
/// @notice The clearinghouse's order-matching code: EIP-712 orders, signatures (ECDSA and
/// ERC-1271), fills through the position funnel, fees and the funding premium. It lives in its
/// own contract to keep the core under the 24 KB code-size limit, and runs only by DELEGATECALL
/// from the clearinghouse, on the clearinghouse's storage, under the clearinghouse's reentrancy
/// lock and EIP-712 domain.
contract OrderMatching is ClearinghouseBase {
    using FixedPointMath for uint256;

    /// @notice Called directly instead of through the clearinghouse.
    error OrderModuleDirectCall();

    address private immutable _self;

    /// @dev Built by the clearinghouse's constructor with the clearinghouse's own arguments.
    constructor(IERC20 collateral_, IOracleAdapter oracle_) ClearinghouseBase(collateral_, oracle_) {
        _self = address(this);
    }

    /// @dev Called directly this contract would act on its own, empty storage: refuse.
    modifier onlyDelegated() {
        if (address(this) == _self) revert OrderModuleDirectCall();
        _;
    }

    /// @notice See IClearinghouse.matchOrders; runs only by DELEGATECALL from the clearinghouse.
    function matchOrders(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) external nonReentrant onlyDelegated {
        (bytes32 makerHash, bytes32 takerHash) = _checkMatch(maker, makerSignature, taker, takerSignature, fillSize);
        uint256 index = _indexPrice(maker.marketId, false);
        _checkBand(maker.marketId, maker.limitPrice, index);
        _accrue(maker.marketId, index);

        filled[makerHash] += fillSize;
        filled[takerHash] += fillSize;
        bool takerBuys = taker.size > 0;
        _fillOrder(maker, !takerBuys, fillSize, maker.limitPrice, index);
        _fillOrder(taker, takerBuys, fillSize, maker.limitPrice, index);
        _settleMatch(maker, taker, fillSize, index, makerHash, takerHash);
    }

    /// @notice See IClearinghouse.cancelOrder; runs only by DELEGATECALL from the clearinghouse.
    function cancelOrder(Order calldata order) external nonReentrant onlyDelegated {
        if (msg.sender != order.trader) revert OrderNotSigner(msg.sender, order.trader);
        bytes32 orderHash = _hashOrder(order);
        cancelled[orderHash] = true;
        emit OrderCancelled(msg.sender, orderHash);
    }

    // ================================================================ internals

    /// @dev Validates a pair of orders for a fill at the maker's price; returns their hashes.
    function _checkMatch(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) private view returns (bytes32 makerHash, bytes32 takerHash) {
        if (taker.marketId != maker.marketId) revert OrderMarketMismatch(maker.marketId, taker.marketId);
        _requireActive(maker.marketId);
        if (fillSize == 0 || maker.size == 0 || taker.size == 0) revert OrderZeroSize();
        if ((maker.size > 0) == (taker.size > 0)) revert OrderSameSide();
        if (maker.trader == taker.trader) revert OrderSelfMatch(maker.trader);
        makerHash = _checkOrder(maker, makerSignature, fillSize, maker.limitPrice);
        if (!maker.makerAllowed) revert OrderTakerOnly(makerHash);
        takerHash = _checkOrder(taker, takerSignature, fillSize, maker.limitPrice);
    }

    /// @dev One leg of a match, at the maker's price, through the funnel.
    function _fillOrder(Order calldata order, bool buys, uint256 fillSize, uint256 price, uint256 index) private {
        int256 delta = buys ? int256(fillSize) : -int256(fillSize);
        _modifyPosition(
            Fill(order.marketId, order.trader, delta, price, order.leverage, index, order.reduceOnly, 0),
            FillKind.Trade
        );
    }

    /// @dev Fees after both legs (DESIGN.md: reducing leg, then increasing leg's margin, then
    /// fees), then the funding premium and the event.
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
        MarketParams storage p = _params[marketId];
        uint256 notional = size.mulDivUp(price, WAD);
        makerFee = notional.mulDivUp(p.makerFee, WAD);
        takerFee = notional.mulDivUp(p.takerFee, WAD);
        _debitFree(maker, makerFee);
        _debitFree(taker, takerFee);
        uint256 total = makerFee + takerFee;
        if (total == 0) return (0, 0);
        uint256 toFund = total.mulDivDown(p.fundFeeShare, WAD);
        pendingFundFees += toFund;
        treasuryBalance += total - toFund;
        emit FeesCollected(marketId, toFund, total - toFund);
    }

    function _checkOrder(
        Order calldata order,
        bytes calldata signature,
        uint256 fillSize,
        uint256 price
    ) private view returns (bytes32 orderHash) {
        orderHash = _hashOrder(order);
        if (block.timestamp > order.expiry) revert OrderExpired(orderHash, order.expiry);
        if (cancelled[orderHash]) revert OrderIsCancelled(orderHash);
        if (order.leverage == 0) revert OrderInvalidLeverage(orderHash, 0);
        uint256 size = uint256(order.size > 0 ? order.size : -order.size);
        uint256 already = filled[orderHash];
        if (already + fillSize > size) revert OrderOverfilled(orderHash, already, fillSize, size);
        bool limitMet = order.size > 0 ? price <= order.limitPrice : price >= order.limitPrice;
        if (!limitMet) revert OrderLimitNotMet(orderHash, order.limitPrice, price);
        if (order.reduceOnly) {
            Position storage pos = _positions[order.marketId][order.trader];
            if (pos.size < fillSize || pos.isLong == (order.size > 0)) revert OrderReduceOnly(orderHash);
        }
        // ERC-1271 wallets are queried by staticcall, before any state changes.
        if (!SignatureChecker.isValidSignatureNow(order.trader, orderHash, signature)) {
            revert OrderInvalidSignature(order.trader, orderHash);
        }
    }

    function _checkBand(bytes32 marketId, uint256 price, uint256 index) private view {
        uint256 band = _params[marketId].priceBand;
        uint256 gap = price > index ? price - index : index - price;
        if (gap * WAD > band * index) revert PriceOutsideBand(price, index, band);
    }

    function _recordPremium(bytes32 marketId, uint256 price, uint256 index, uint256 size) private {
        MarketState storage s = _state[marketId];
        s.premiumTimesSize += FundingMath.premium(price, index, _params[marketId].maxPremium) * int256(size);
        s.windowSize += size;
    }
}
