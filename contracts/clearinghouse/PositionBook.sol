// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouseTypes as T} from "../interfaces/IClearinghouseTypes.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {IRankIndex} from "../interfaces/IRankIndex.sol";
import {ClearinghouseLayout, MarketStatus} from "./ClearinghouseStorage.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {FundingMath} from "../libraries/FundingMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title PositionBook
/// @notice The one funnel, `modify`, through which trades, liquidations and ADL change positions,
/// with funding accrual, the per-transaction index price and free-collateral bookkeeping.
/// @dev Internal library over the clearinghouse's `ClearinghouseLayout`: compiled into the core
/// (trades, margin) and into the external `Liquidations` library (liquidation, ADL), one source
/// for both. Keeps per market the exact sum of signed size times K and both open interests, so
/// the conservation identity (docs/mechanism.md section 5) can be checked from storage alone.
library PositionBook {
    using FixedPointMath for uint256;

    /// @dev How a position change settles its reducing leg.
    enum FillKind {
        Trade, // voluntary fill: minimum notional applies; a negative payout is debited, never clamped
        Takeover, // a liquidator's leg taking part of a position: like Trade (the minimum notional applies)
        TakeoverWhole, // a liquidator's leg taking a whole position: no minimum (it moves a position
        // that exists, creating none), so a position below the minimum can always be liquidated
        Liquidated, // the liquidated part: payout + adjustment >= 0 stays in the remaining margin,
        // and what stays open respects the minimum notional
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

    uint256 internal constant WAD = FixedPointMath.WAD;
    uint256 internal constant MAX_MAGNITUDE = (1 << 120) - 1;
    uint256 internal constant MAX_MARGIN = (1 << 112) - 1;
    /// @dev Transient-storage namespace of the per-transaction index price cache.
    bytes32 private constant PRICE_CACHE_NAMESPACE = keccak256("adl.clearinghouse.priceCache");

    /// @dev The single funnel for every position change (docs/mechanism.md section 2): trades,
    /// liquidation and ADL. A fill that crosses zero is a full close followed by an opening on
    /// the other side. Returns the payout of the reducing leg (released margin plus realized
    /// PnL, signed, before `f.adjustment`), settled according to `kind`.
    function modify(ClearinghouseLayout storage s, Fill memory f, FillKind kind) internal returns (int256 payout) {
        T.Position memory pos = s.positions[f.marketId][f.account];
        T.MarketState storage st = s.state[f.marketId];
        bool buying = f.sizeDelta > 0;
        uint256 amount = uint256(buying ? f.sizeDelta : -f.sizeDelta);
        int256 contributionBefore = contribution(pos);

        uint256 reduceBy;
        if (pos.size != 0 && pos.isLong != buying) reduceBy = amount < pos.size ? amount : pos.size;
        if (f.reduceOnly && (reduceBy == 0 || reduceBy != amount)) revert T.OrderReduceOnly(bytes32(0));
        int256 realizedPnl;
        if (reduceBy != 0) {
            uint256 released;
            (released, realizedPnl) = reduce(pos, reduceBy, f.price, sideFunding(st, pos.isLong));
            payout = int256(released) + realizedPnl;
            settleReduction(s, f.account, pos, payout + f.adjustment, kind);
        }
        uint256 increaseBy = amount - reduceBy;
        if (increaseBy != 0) increase(s, f, pos, buying, increaseBy, sideFunding(st, buying));

        // Every path that leaves a position open respects the minimum notional, except ADL, which
        // only reduces and must be able to leave any remainder: dust cannot pad the ADL queue.
        if (pos.size != 0 && (kind == FillKind.Trade || kind == FillKind.Takeover || kind == FillKind.Liquidated)) {
            uint256 minNotional = s.params[f.marketId].minNotional;
            uint256 notional = uint256(pos.size).mulDivDown(f.indexPrice, WAD);
            if (notional < minNotional) revert T.NotionalBelowMinimum(f.account, notional, minNotional);
        }
        updateOpenInterest(st, buying, reduceBy, increaseBy);
        st.sumSizeTimesEntry += contribution(pos) - contributionBefore;
        store(s, f.marketId, f.account, pos, realizedPnl, sideFunding(st, pos.isLong));
    }

    /// @dev The cumulative funding positions of one side are valued at: F with the side's loss
    /// index folded in (PositionMath.sideFunding). Both indices share one slot.
    function sideFunding(T.MarketState storage st, bool isLong) internal view returns (int256) {
        return PositionMath.sideFunding(st.cumulativeFunding, st.lossIndexLong, st.lossIndexShort, isLong);
    }

    /// @dev Reduction by d at p: release floor(c*d/q), book floor(d*x(p)/W); K and a stay.
    function reduce(
        T.Position memory pos,
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
    function increase(
        ClearinghouseLayout storage s,
        Fill memory f,
        T.Position memory pos,
        bool buying,
        uint256 d,
        int256 funding
    ) internal {
        if (f.leverage == 0) revert T.OrderInvalidLeverage(bytes32(0), 0);
        requireStrictPrice(f.marketId);
        if (pos.size == 0) pos.isLong = buying;
        uint256 newSize = uint256(pos.size) + d;
        if (newSize > MAX_MAGNITUDE) revert T.PositionTooLarge(newSize, MAX_MAGNITUDE);
        int256 entry = PositionMath.blendEntry(buying, pos.size, pos.entry, d, f.price, funding);
        if (entry > int256(MAX_MAGNITUDE) || entry < -int256(MAX_MAGNITUDE)) revert T.EntryOutOfRange(entry);
        pos.entry = int128(entry);
        pos.size = uint120(newSize);

        uint256 chosen = d.mulDivUp(f.price, f.leverage);
        uint256 shortfall = PositionMath.marginShortfall(
            pos.margin,
            newSize,
            x(pos, f.indexPrice, funding),
            f.indexPrice,
            s.params[f.marketId].imr
        );
        uint256 posted = chosen > shortfall ? chosen : shortfall;
        debitFree(s, f.account, posted);
        addMargin(pos, posted);
        pos.leverage = uint128(PositionMath.leverageUp(newSize, pos.margin));
    }

    /// @dev Writes a position record, reindexes it, and emits the event that lets anyone rebuild it;
    /// `funding` is the F its side is valued at (loss index folded in).
    function store(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address account,
        T.Position memory pos,
        int256 realized,
        int256 funding
    ) internal {
        address index = s.rankIndex;
        T.Position storage old = s.positions[marketId][account];
        if (index != address(0)) {
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
        s.positions[marketId][account] = pos;
        if (pos.size != 0 && !s.positionOpened) s.positionOpened = true;
        emit T.PositionChanged(
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
    function settleReduction(
        ClearinghouseLayout storage s,
        address account,
        T.Position memory pos,
        int256 net,
        FillKind kind
    ) internal {
        if (kind == FillKind.Trade || kind == FillKind.Takeover || kind == FillKind.TakeoverWhole) {
            return settlePayout(s, account, net);
        }
        // The bankrupt part's deficit is paid by the fund, the counterparties and the reserve.
        if (kind == FillKind.Bankrupt) return;
        // A counterparty's charge is capped at its closed share's equity, never debited beyond.
        if (kind == FillKind.Deleveraged && net < 0) net = 0;
        if (net < 0) revert T.ForcedPayoutNegative(account, net);
        if (kind == FillKind.Liquidated && pos.size != 0) addMargin(pos, uint256(net));
        else s.free[account] += uint256(net);
    }

    function settlePayout(ClearinghouseLayout storage s, address account, int256 payout) internal {
        if (payout >= 0) s.free[account] += uint256(payout);
        else debitFree(s, account, uint256(-payout));
    }

    function debitFree(ClearinghouseLayout storage s, address account, uint256 amount) internal {
        uint256 available = s.free[account];
        if (available < amount) revert T.InsufficientFreeCollateral(account, available, amount);
        s.free[account] = available - amount;
    }

    function updateOpenInterest(T.MarketState storage st, bool buying, uint256 reduceBy, uint256 increaseBy) internal {
        // A buy reduces a short and/or increases a long; a sell the mirror image. Both amounts
        // are below 2^120 (position sizes), so the casts are exact; the sums are checked.
        if (buying) {
            st.shortOpenInterest -= uint128(reduceBy);
            st.longOpenInterest += uint128(increaseBy);
        } else {
            st.longOpenInterest -= uint128(reduceBy);
            st.shortOpenInterest += uint128(increaseBy);
        }
    }

    /// @dev Accrues funding once per block; every later read in the call sees the same F.
    function accrue(ClearinghouseLayout storage s, bytes32 marketId, uint256 price) internal {
        T.MarketState storage st = s.state[marketId];
        if (st.lastFundingTime == block.timestamp) return;
        T.MarketParams storage p = s.params[marketId];
        FundingMath.Accrual memory a = FundingMath.project(
            accrualOf(st),
            p.fundingWindow,
            p.fundingPeriod,
            price,
            block.timestamp,
            st.longOpenInterest
        );
        st.cumulativeFunding = SafeCast.toInt128(a.cumulativeFunding);
        st.fundingRate = int128(a.fundingRate);
        st.lastFundingTime = uint64(a.lastFundingTime);
        st.windowStart = uint64(a.windowStart);
        st.windowSize = uint128(a.windowSize);
        st.premiumTimesSize = a.premiumTimesSize;
        emit T.FundingAccrued(marketId, a.cumulativeFunding, a.fundingRate, price);
    }

    /// @dev The index price, read from the oracle at most once per market per transaction and
    /// cached in transient storage; a strict read upgrades the cache after checking the same price.
    function indexPrice(IOracleAdapter oracle, bytes32 marketId, bool strict) internal returns (uint256 price) {
        uint256 cached = _cachedPrice(marketId);
        uint256 cachedPrice = cached >> 1;
        if (cached != 0 && (!strict || cached & 1 == 1)) return cachedPrice;
        (price, ) = oracle.getPrice(marketId, strict);
        _cachePrice(marketId, cached, price, strict);
    }

    /// @dev The index price of a trade: strict when the feed is fresh enough for a risk increase (the
    /// usual case, one oracle read), else the ordinary read, so that positions can still be reduced
    /// while the feed is older than the strict window but within its heartbeat. An increasing leg
    /// then reverts in `increase` (`RiskIncreaseOnStalePrice`).
    function tradePrice(IOracleAdapter oracle, bytes32 marketId) internal returns (uint256 price) {
        uint256 cached = _cachedPrice(marketId);
        if (cached & 1 == 1) return cached >> 1;
        // Not read yet, or read only under the heartbeat earlier in this transaction (an
        // `accrueFunding` before the match): try the strict read, which must agree with the cache.
        try oracle.getPrice(marketId, true) returns (uint256 strictPrice, uint256) {
            price = strictPrice;
            _cachePrice(marketId, cached, price, true);
        } catch {
            price = indexPrice(oracle, marketId, false);
        }
    }

    /// @dev Reverts unless this transaction read `marketId`'s price within the strict window: risk
    /// may not grow on a price too stale to liquidate on.
    function requireStrictPrice(bytes32 marketId) internal view {
        if (_cachedPrice(marketId) & 1 == 0) revert T.RiskIncreaseOnStalePrice(marketId);
    }

    function _cachedPrice(bytes32 marketId) private view returns (uint256 cached) {
        bytes32 slot = keccak256(abi.encode(PRICE_CACHE_NAMESPACE, marketId));
        assembly ("memory-safe") {
            cached := tload(slot)
        }
    }

    /// @dev Caches `price` (checked against an earlier `cached` read of this transaction) with its
    /// strictness in the low bit.
    function _cachePrice(bytes32 marketId, uint256 cached, uint256 price, bool strict) private {
        if (price > MAX_MAGNITUDE) revert T.IndexPriceTooLarge(price);
        if (cached != 0 && price != cached >> 1) revert T.OraclePriceChanged(marketId, cached >> 1, price);
        bytes32 slot = keccak256(abi.encode(PRICE_CACHE_NAMESPACE, marketId));
        uint256 packed = (price << 1) | (strict ? 1 : 0);
        assembly ("memory-safe") {
            tstore(slot, packed)
        }
    }

    function accrualOf(T.MarketState storage st) internal view returns (FundingMath.Accrual memory) {
        return
            FundingMath.Accrual(
                st.cumulativeFunding,
                st.fundingRate,
                st.lastFundingTime,
                st.windowStart,
                st.premiumTimesSize,
                st.windowSize
            );
    }

    function x(T.Position memory pos, uint256 price, int256 funding) internal pure returns (int256) {
        return PositionMath.pnlPerUnit(pos.isLong, pos.entry, price, funding);
    }

    /// @dev Signed size times K: this position's term of the market's sum s*K.
    function contribution(T.Position memory pos) internal pure returns (int256) {
        int256 sk = int256(uint256(pos.size)) * pos.entry;
        return pos.isLong ? sk : -sk;
    }

    /// @dev Stores a margin change (`moved` > 0 added): `a` is recomputed, the leaf may move.
    function writeMarginChange(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address account,
        T.Position memory pos,
        int256 moved
    ) internal {
        pos.leverage = uint128(PositionMath.leverageUp(pos.size, pos.margin));
        emit T.MarginMoved(marketId, account, moved);
        store(s, marketId, account, pos, 0, sideFunding(s.state[marketId], pos.isLong));
    }

    /// @dev The one margin test at `price` and the market's current F; reverts with the shortfall.
    function requireMargin(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address account,
        T.Position memory pos,
        uint256 price
    ) internal view {
        int256 funding = sideFunding(s.state[marketId], pos.isLong);
        uint256 shortfall = PositionMath.marginShortfall(
            pos.margin,
            pos.size,
            x(pos, price, funding),
            price,
            s.params[marketId].imr
        );
        if (shortfall != 0) revert T.InsufficientMargin(account, shortfall);
    }

    function requirePosition(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address account
    ) internal view returns (T.Position memory pos) {
        pos = s.positions[marketId][account];
        if (pos.size == 0) revert T.PositionNotFound(marketId, account);
    }

    function requireListed(
        ClearinghouseLayout storage s,
        bytes32 marketId
    ) internal view returns (MarketStatus storage st) {
        st = s.status[marketId];
        if (!st.listed) revert T.MarketUnknown(marketId);
    }

    function requireActive(ClearinghouseLayout storage s, bytes32 marketId) internal view {
        if (requireListed(s, marketId).paused) revert T.MarketIsPaused(marketId);
    }

    /// @dev c += amount, within MAX_MARGIN. Callers recompute `a` unless the change is a reduction.
    function addMargin(T.Position memory pos, uint256 amount) internal pure {
        uint256 margin = uint256(pos.margin) + amount;
        if (margin > MAX_MARGIN) revert T.MarginTooLarge(margin, MAX_MARGIN);
        pos.margin = uint112(margin);
    }
}
