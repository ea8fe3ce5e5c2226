// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRankIndex} from "../interfaces/IRankIndex.sol";
import {MarketRegistry} from "./MarketRegistry.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {FundingMath} from "../libraries/FundingMath.sol";

/// @title PositionBook
/// @notice The clearinghouse's core state (free collateral, positions, funding) and the one
/// funnel, `_modifyPosition`, through which trades, liquidations and ADL change positions.
/// @dev Keeps per market the exact sum of signed size times K and both open interests, so the
/// conservation identity of DESIGN.md section 5 can be checked from storage alone.
abstract contract PositionBook is MarketRegistry {
    using FixedPointMath for uint256;

    /// @dev How a position change settles its reducing leg.
    enum FillKind {
        Trade, // voluntary fill: minimum notional applies; a negative payout is debited, never clamped
        Takeover, // a liquidator's leg: like Trade without the minimum notional
        Liquidated, // the liquidated part: payout + adjustment >= 0 stays in the remaining margin
        Deleveraged, // an ADL counterparty: max(payout + adjustment, 0) goes to free collateral
        Bankrupt // the closed part of a bankrupt position in ADL: ends at exactly zero
    }

    /// @dev One side of a fill, as the funnel sees it.
    struct Fill {
        bytes32 marketId;
        address account;
        int256 sizeDelta; // > 0 buys
        uint256 price; // trade price
        uint256 leverage; // target leverage for the margin of an increase
        uint256 indexPrice; // P of this call
        bool reduceOnly;
        int256 adjustment; // added to the reducing leg's payout (fund, reserve, fee, ADL charge)
    }

    /// @dev Transient-storage namespace of the per-transaction index price cache.
    bytes32 private constant PRICE_CACHE_NAMESPACE = keccak256("adl.clearinghouse.priceCache");

    /// @dev The single funnel for every position change (DESIGN.md section 2): trades,
    /// liquidation and ADL. A fill that crosses zero is a full close followed by an opening on
    /// the other side. Returns the payout of the reducing leg (released margin plus realized
    /// PnL, signed, before `f.adjustment`), settled according to `kind`.
    function _modifyPosition(Fill memory f, FillKind kind) internal returns (int256 payout) {
        Position memory pos = _positions[f.marketId][f.account];
        MarketState storage s = _state[f.marketId];
        int256 funding = s.cumulativeFunding;
        bool buying = f.sizeDelta > 0;
        uint256 amount = uint256(buying ? f.sizeDelta : -f.sizeDelta);
        int256 contributionBefore = _contribution(pos);

        uint256 reduceBy;
        if (pos.size != 0 && pos.isLong != buying) reduceBy = amount < pos.size ? amount : pos.size;
        if (f.reduceOnly && (reduceBy == 0 || reduceBy != amount)) revert OrderReduceOnly(bytes32(0));
        int256 realizedPnl;
        if (reduceBy != 0) {
            uint256 released;
            (released, realizedPnl) = _reduce(pos, reduceBy, f.price, funding);
            payout = int256(released) + realizedPnl;
            _settleReduction(f.account, pos, payout + f.adjustment, kind);
        }
        uint256 increaseBy = amount - reduceBy;
        if (increaseBy != 0) _increase(f, pos, buying, increaseBy, funding);

        MarketParams storage params = _params[f.marketId];
        if (kind == FillKind.Trade && pos.size != 0) {
            uint256 notional = uint256(pos.size).mulDivDown(f.indexPrice, WAD);
            if (notional < params.minNotional) revert NotionalBelowMinimum(f.account, notional, params.minNotional);
        }
        _updateOpenInterest(s, buying, reduceBy, increaseBy);
        s.sumSizeTimesEntry += _contribution(pos) - contributionBefore;
        _store(f.marketId, f.account, pos, realizedPnl, funding);
    }

    /// @dev Reduction by d at p: release floor(c*d/q), book floor(d*x(p)/W); K and a stay.
    function _reduce(
        Position memory pos,
        uint256 d,
        uint256 price,
        int256 funding
    ) internal pure returns (uint256 released, int256 pnl) {
        released = PositionMath.releasedMargin(pos.margin, d, pos.size);
        pnl = PositionMath.pnlDown(d, PositionMath.pnlPerUnit(pos.isLong, pos.entry, price, funding));
        pos.margin -= uint112(released);
        pos.size -= uint120(d);
        if (pos.size == 0) {
            // A full close releases all margin (floor(c*q/q) == c) and clears the record.
            pos.entry = 0;
            pos.leverage = 0;
            pos.isLong = false;
        }
    }

    /// @dev Increase by d at p: blend K against the trader, post margin, run the margin test,
    /// recompute a.
    function _increase(Fill memory f, Position memory pos, bool buying, uint256 d, int256 funding) internal {
        if (f.leverage == 0) revert OrderInvalidLeverage(bytes32(0), 0);
        if (pos.size == 0) pos.isLong = buying;
        uint256 newSize = uint256(pos.size) + d;
        if (newSize > MAX_MAGNITUDE) revert PositionTooLarge(newSize, MAX_MAGNITUDE);
        int256 entry = PositionMath.blendEntry(buying, pos.size, pos.entry, d, f.price, funding);
        if (entry > int256(MAX_MAGNITUDE) || entry < -int256(MAX_MAGNITUDE)) revert EntryOutOfRange(entry);
        pos.entry = int128(entry);
        pos.size = uint120(newSize);

        uint256 chosen = d.mulDivUp(f.price, f.leverage);
        uint256 shortfall = PositionMath.marginShortfall(
            pos.margin,
            newSize,
            _x(pos, f.indexPrice, funding),
            f.indexPrice,
            _params[f.marketId].imr
        );
        uint256 posted = chosen > shortfall ? chosen : shortfall;
        _debitFree(f.account, posted);
        _addMargin(pos, posted);
        pos.leverage = uint128(PositionMath.leverageUp(newSize, pos.margin));
    }

    /// @dev Writes a position record and emits the event that lets anyone rebuild it.
    function _store(bytes32 marketId, address account, Position memory pos, int256 realized, int256 funding) internal {
        address index = rankIndex;
        if (index != address(0)) {
            Position storage old = _positions[marketId][account];
            bool wasOpen = old.size != 0;
            // A reduction that leaves the position open keeps a, K, side and leaf: nothing to move.
            if (
                !wasOpen ||
                pos.size == 0 ||
                old.isLong != pos.isLong ||
                old.leverage != pos.leverage ||
                old.entry != pos.entry
            ) {
                pos.leaf = IRankIndex(index).reindex(
                    marketId,
                    account,
                    wasOpen,
                    old.isLong,
                    old.leaf,
                    pos.size != 0,
                    pos.isLong,
                    pos.leverage,
                    pos.entry
                );
            }
        }
        _positions[marketId][account] = pos;
        emit PositionChanged(
            marketId,
            account,
            pos.isLong,
            pos.size,
            pos.entry,
            pos.margin,
            pos.leverage,
            pos.leaf,
            realized,
            funding
        );
    }

    /// @dev Settles the reducing leg's payout plus adjustment. Voluntary legs credit or debit free
    /// collateral (never clamped); forced legs never debit: the caller brings `net` to >= 0 with
    /// fund and counterparty payments. A liquidated remainder keeps its part in margin and keeps
    /// its stored `a` (still >= ceil(q*W/c), so its score and eligibility stay conservative).
    function _settleReduction(address account, Position memory pos, int256 net, FillKind kind) internal {
        if (kind == FillKind.Trade || kind == FillKind.Takeover) return _settlePayout(account, net);
        // The bankrupt part's deficit is paid by the fund, the counterparties and the reserve.
        if (kind == FillKind.Bankrupt) return;
        // A counterparty's charge is capped at its closed share's equity, never debited beyond.
        if (kind == FillKind.Deleveraged && net < 0) net = 0;
        if (net < 0) revert ForcedPayoutNegative(account, net);
        if (kind == FillKind.Liquidated && pos.size != 0) _addMargin(pos, uint256(net));
        else _free[account] += uint256(net);
    }

    function _settlePayout(address account, int256 payout) internal {
        if (payout >= 0) _free[account] += uint256(payout);
        else _debitFree(account, uint256(-payout));
    }

    function _debitFree(address account, uint256 amount) internal {
        uint256 available = _free[account];
        if (available < amount) revert InsufficientFreeCollateral(account, available, amount);
        _free[account] = available - amount;
    }

    function _updateOpenInterest(MarketState storage s, bool buying, uint256 reduceBy, uint256 increaseBy) internal {
        // A buy reduces a short and/or increases a long; a sell the mirror image.
        if (buying) {
            s.shortOpenInterest -= reduceBy;
            s.longOpenInterest += increaseBy;
        } else {
            s.longOpenInterest -= reduceBy;
            s.shortOpenInterest += increaseBy;
        }
    }

    /// @dev Accrues funding once per block; every later read in the call sees the same F.
    function _accrue(bytes32 marketId, uint256 price) internal {
        MarketState storage s = _state[marketId];
        if (s.lastFundingTime == block.timestamp) return;
        MarketParams storage p = _params[marketId];
        FundingMath.Accrual memory a = FundingMath.project(
            _accrualOf(s),
            p.fundingWindow,
            p.fundingPeriod,
            price,
            block.timestamp,
            s.longOpenInterest
        );
        s.cumulativeFunding = a.cumulativeFunding;
        s.fundingRate = int128(a.fundingRate);
        s.lastFundingTime = uint64(a.lastFundingTime);
        s.windowStart = uint64(a.windowStart);
        s.premiumTimesSize = a.premiumTimesSize;
        s.windowSize = a.windowSize;
        emit FundingAccrued(marketId, a.cumulativeFunding, a.fundingRate, price);
    }

    /// @dev The index price, read from the oracle at most once per market per transaction and
    /// cached in transient storage; a strict read upgrades the cache after checking the same price.
    function _indexPrice(bytes32 marketId, bool strict) internal returns (uint256 price) {
        bytes32 slot = keccak256(abi.encode(PRICE_CACHE_NAMESPACE, marketId));
        uint256 cached;
        assembly ("memory-safe") {
            cached := tload(slot)
        }
        uint256 cachedPrice = cached >> 1;
        if (cached != 0 && (!strict || cached & 1 == 1)) return cachedPrice;
        (price, ) = oracle.getPrice(marketId, strict);
        if (price > MAX_MAGNITUDE) revert IndexPriceTooLarge(price);
        if (cached != 0 && price != cachedPrice) revert OraclePriceChanged(marketId, cachedPrice, price);
        uint256 packed = (price << 1) | (strict ? 1 : 0);
        assembly ("memory-safe") {
            tstore(slot, packed)
        }
    }

    function _accrualOf(MarketState storage s) internal view returns (FundingMath.Accrual memory) {
        return
            FundingMath.Accrual(
                s.cumulativeFunding,
                s.fundingRate,
                s.lastFundingTime,
                s.windowStart,
                s.premiumTimesSize,
                s.windowSize
            );
    }

    function _x(Position memory pos, uint256 price, int256 funding) internal pure returns (int256) {
        return PositionMath.pnlPerUnit(pos.isLong, pos.entry, price, funding);
    }

    /// @dev Signed size times K: this position's term of the market's sum s*K.
    function _contribution(Position memory pos) internal pure returns (int256) {
        int256 sk = int256(uint256(pos.size)) * pos.entry;
        return pos.isLong ? sk : -sk;
    }

    function _writeMarginChange(bytes32 marketId, address account, Position memory pos, int256 moved) internal {
        pos.leverage = uint128(PositionMath.leverageUp(pos.size, pos.margin));
        emit MarginMoved(marketId, account, moved);
        _store(marketId, account, pos, 0, _state[marketId].cumulativeFunding);
    }

    function _requireMargin(bytes32 marketId, address account, Position memory pos, uint256 price) internal view {
        int256 funding = _state[marketId].cumulativeFunding;
        uint256 shortfall = PositionMath.marginShortfall(
            pos.margin,
            pos.size,
            _x(pos, price, funding),
            price,
            _params[marketId].imr
        );
        if (shortfall != 0) revert InsufficientMargin(account, shortfall);
    }

    function _requirePosition(bytes32 marketId, address account) internal view returns (Position memory pos) {
        pos = _positions[marketId][account];
        if (pos.size == 0) revert PositionNotFound(marketId, account);
    }

    function _beforeParamsChange(bytes32 marketId) internal override {
        _accrue(marketId, _indexPrice(marketId, false));
    }

    /// @dev c += amount, within MAX_MARGIN. Callers recompute `a` unless the change is a reduction.
    function _addMargin(Position memory pos, uint256 amount) internal pure {
        uint256 margin = uint256(pos.margin) + amount;
        if (margin > MAX_MARGIN) revert MarginTooLarge(margin, MAX_MARGIN);
        pos.margin = uint112(margin);
    }
}
