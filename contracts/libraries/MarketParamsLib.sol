// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {ClearinghouseLayout, MarketStatus} from "../clearinghouse/ClearinghouseStorage.sol";
import {PositionBook} from "../clearinghouse/PositionBook.sol";

/// @title MarketParamsLib
/// @notice Listing markets and changing their parameters: the hard-coded bounds of every field, and
/// the timelock. A listing sets the parameters at once; after it, a change is proposed, stays
/// pending and visible for PARAMS_DELAY, and moves each field by at most one bounded step. A linked
/// external library: the clearinghouse DELEGATECALLs it on its own storage, only when a market is
/// listed or its parameters change, so it costs the trading path nothing and keeps the
/// clearinghouse's bytecode small.
/// @dev Only one change per market is pending at a time, and only applying it changes the
/// parameters, so the step is measured from the parameters in force both when the change is
/// proposed and when it is applied, and no field moves by more than one step per PARAMS_DELAY.
library MarketParamsLib {
    uint256 internal constant MIN_IMR = 1e16; // 1% (100x)
    uint256 internal constant MAX_IMR = 5e17; // 50% (2x)
    uint256 internal constant MIN_MMR = 5e15; // 0.5%
    uint256 internal constant MAX_FEE = 1e16; // 1% of notional
    uint256 internal constant MIN_BAND = 1e15; // 0.1%
    uint256 internal constant MAX_BAND = 1e17; // 10%
    uint256 internal constant MAX_PREMIUM = 1e17; // 10%
    uint256 internal constant MIN_NOTIONAL_FLOOR = 1e18; // 1 quote unit
    uint256 internal constant MIN_NOTIONAL_CEIL = 1e24; // 1,000,000 quote units
    uint256 internal constant MIN_FUNDING_PERIOD = 1 hours;
    uint256 internal constant MAX_FUNDING_PERIOD = 30 days;
    uint256 internal constant MIN_FUNDING_WINDOW = 1 minutes;
    uint256 internal constant MAX_FUNDING_WINDOW = 1 days;
    uint256 internal constant MAX_LIQUIDATION_FEE = 5e16; // 5%
    uint256 internal constant ONE = 1e18;
    uint256 internal constant MAX_KEEPER_PAY = 1e21; // 1,000 quote units per settling action

    /// @notice How long a proposed change stays pending before anyone may apply it.
    uint256 internal constant PARAMS_DELAY = 1 days;
    /// @notice The largest move of each fraction in one change, either way. `minNotional`,
    /// `fundingPeriod` and `fundingWindow` instead move by at most a factor of two.
    uint256 internal constant IMR_STEP = 1e16; // 1 percentage point
    uint256 internal constant MMR_STEP = 5e15; // 0.5 pp
    uint256 internal constant FEE_STEP = 1e15; // 0.1 pp, maker and taker fee
    uint256 internal constant BAND_STEP = 1e16; // 1 pp
    uint256 internal constant TAKER_BAND_STEP = 5e15; // 0.5 pp
    uint256 internal constant SHARE_STEP = 1e17; // 10 pp, fund fee share and liquidator share
    uint256 internal constant PREMIUM_STEP = 25e14; // 0.25 pp
    uint256 internal constant LIQUIDATION_FEE_STEP = 5e15; // 0.5 pp
    uint256 internal constant KEEPER_PAY_STEP = 1e18; // 1 quote unit

    /// @notice Lists `marketId` with `p`, in force at once, and starts its funding clock.
    function list(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        IClearinghouseTypes.MarketParams calldata p
    ) external {
        MarketStatus storage st = s.status[marketId];
        if (st.listed) revert IClearinghouseTypes.MarketAlreadyListed(marketId);
        validate(p);
        st.listed = true;
        s.params[marketId] = p;
        IClearinghouseTypes.MarketState storage state = s.state[marketId];
        state.lastFundingTime = uint64(block.timestamp);
        state.windowStart = uint64(block.timestamp);
        emit IClearinghouseTypes.MarketListed(marketId, p);
    }

    /// @notice Makes `p` the pending change of `marketId`, applicable PARAMS_DELAY from now; it
    /// replaces any change already pending (whose delay then starts again). `p` must lie within the
    /// bounds and each field within one step of the parameters in force.
    /// @return eta When the change may be applied.
    function propose(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        IClearinghouseTypes.MarketParams calldata p
    ) external returns (uint256 eta) {
        MarketStatus storage st = PositionBook.requireListed(s, marketId);
        validate(p);
        checkSteps(s.params[marketId], p);
        eta = block.timestamp + PARAMS_DELAY;
        st.paramsEta = uint64(eta);
        s.pendingParams[marketId] = p;
        emit IClearinghouseTypes.MarketParamsProposed(marketId, p, eta);
    }

    /// @notice Drops the pending change of `marketId`; the parameters in force stay.
    function cancel(ClearinghouseLayout storage s, bytes32 marketId) external {
        MarketStatus storage st = s.status[marketId];
        uint256 eta = st.paramsEta;
        if (eta == 0) revert IClearinghouseTypes.MarketParamsNotPending(marketId);
        st.paramsEta = 0;
        delete s.pendingParams[marketId];
        emit IClearinghouseTypes.MarketParamsCancelled(marketId, eta);
    }

    /// @notice Puts the pending change of `marketId` in force once its delay has passed. Funding is
    /// accrued first (at the ordinary index price), so the old parameters apply to the time elapsed.
    function applyPending(ClearinghouseLayout storage s, IOracleAdapter oracle, bytes32 marketId) external {
        MarketStatus storage st = s.status[marketId];
        uint256 eta = st.paramsEta;
        if (eta == 0) revert IClearinghouseTypes.MarketParamsNotPending(marketId);
        if (block.timestamp < eta) revert IClearinghouseTypes.MarketParamsNotDue(marketId, eta);
        PositionBook.accrue(s, marketId, PositionBook.indexPrice(oracle, marketId, false));
        IClearinghouseTypes.MarketParams memory p = s.pendingParams[marketId];
        s.params[marketId] = p;
        st.paramsEta = 0;
        delete s.pendingParams[marketId];
        emit IClearinghouseTypes.MarketParamsUpdated(marketId, p);
    }

    /// @notice Reverts with `MarketParamOutOfBounds` naming the first field of `p` outside its bounds
    /// (`mmr` must also stay below `imr`, and `takerBand` above zero and at most `priceBand`).
    function validate(IClearinghouseTypes.MarketParams calldata p) public pure {
        _bound(IClearinghouseTypes.ParamField.Imr, p.imr, MIN_IMR, MAX_IMR);
        _bound(IClearinghouseTypes.ParamField.Mmr, p.mmr, MIN_MMR, p.imr - 1);
        _bound(IClearinghouseTypes.ParamField.MakerFee, p.makerFee, 0, MAX_FEE);
        _bound(IClearinghouseTypes.ParamField.TakerFee, p.takerFee, 0, MAX_FEE);
        _bound(IClearinghouseTypes.ParamField.PriceBand, p.priceBand, MIN_BAND, MAX_BAND);
        _bound(IClearinghouseTypes.ParamField.FundFeeShare, p.fundFeeShare, 0, ONE);
        _bound(IClearinghouseTypes.ParamField.MaxPremium, p.maxPremium, 0, MAX_PREMIUM);
        _bound(IClearinghouseTypes.ParamField.KeeperFeeShare, p.keeperFeeShare, 0, ONE - p.fundFeeShare);
        _bound(IClearinghouseTypes.ParamField.MinNotional, p.minNotional, MIN_NOTIONAL_FLOOR, MIN_NOTIONAL_CEIL);
        _bound(IClearinghouseTypes.ParamField.FundingPeriod, p.fundingPeriod, MIN_FUNDING_PERIOD, MAX_FUNDING_PERIOD);
        _bound(IClearinghouseTypes.ParamField.FundingWindow, p.fundingWindow, MIN_FUNDING_WINDOW, MAX_FUNDING_WINDOW);
        _bound(IClearinghouseTypes.ParamField.LiquidationFee, p.liquidationFee, 0, MAX_LIQUIDATION_FEE);
        _bound(IClearinghouseTypes.ParamField.LiquidatorShare, p.liquidatorShare, 0, ONE);
        _bound(IClearinghouseTypes.ParamField.TakerBand, p.takerBand, 1, p.priceBand);
        _bound(IClearinghouseTypes.ParamField.KeeperPay, p.keeperPay, 0, MAX_KEEPER_PAY);
    }

    /// @notice Reverts with `MarketParamStepTooLarge` naming the first field of `next` more than one
    /// step from `cur`: a fixed step either way for the fractions, a factor of two for
    /// `minNotional`, `fundingPeriod` and `fundingWindow`.
    function checkSteps(
        IClearinghouseTypes.MarketParams storage cur,
        IClearinghouseTypes.MarketParams calldata next
    ) public view {
        _step(IClearinghouseTypes.ParamField.Imr, cur.imr, next.imr, IMR_STEP);
        _step(IClearinghouseTypes.ParamField.Mmr, cur.mmr, next.mmr, MMR_STEP);
        _step(IClearinghouseTypes.ParamField.MakerFee, cur.makerFee, next.makerFee, FEE_STEP);
        _step(IClearinghouseTypes.ParamField.TakerFee, cur.takerFee, next.takerFee, FEE_STEP);
        _step(IClearinghouseTypes.ParamField.PriceBand, cur.priceBand, next.priceBand, BAND_STEP);
        _step(IClearinghouseTypes.ParamField.FundFeeShare, cur.fundFeeShare, next.fundFeeShare, SHARE_STEP);
        _step(IClearinghouseTypes.ParamField.MaxPremium, cur.maxPremium, next.maxPremium, PREMIUM_STEP);
        _factor(IClearinghouseTypes.ParamField.MinNotional, cur.minNotional, next.minNotional);
        _factor(IClearinghouseTypes.ParamField.FundingPeriod, cur.fundingPeriod, next.fundingPeriod);
        _factor(IClearinghouseTypes.ParamField.FundingWindow, cur.fundingWindow, next.fundingWindow);
        _step(
            IClearinghouseTypes.ParamField.LiquidationFee,
            cur.liquidationFee,
            next.liquidationFee,
            LIQUIDATION_FEE_STEP
        );
        _step(IClearinghouseTypes.ParamField.LiquidatorShare, cur.liquidatorShare, next.liquidatorShare, SHARE_STEP);
        _step(IClearinghouseTypes.ParamField.TakerBand, cur.takerBand, next.takerBand, TAKER_BAND_STEP);
        _step(IClearinghouseTypes.ParamField.KeeperFeeShare, cur.keeperFeeShare, next.keeperFeeShare, SHARE_STEP);
        _step(IClearinghouseTypes.ParamField.KeeperPay, cur.keeperPay, next.keeperPay, KEEPER_PAY_STEP);
    }

    function _bound(IClearinghouseTypes.ParamField field, uint256 value, uint256 lo, uint256 hi) private pure {
        if (value < lo || value > hi) revert IClearinghouseTypes.MarketParamOutOfBounds(field, value, lo, hi);
    }

    /// @dev `next` within `maxStep` of `cur` either way (the lower end floored at zero).
    function _step(IClearinghouseTypes.ParamField field, uint256 cur, uint256 next, uint256 maxStep) private pure {
        _within(field, cur, next, cur > maxStep ? cur - maxStep : 0, cur + maxStep);
    }

    /// @dev `next` between half of `cur` (rounded up) and twice `cur`.
    function _factor(IClearinghouseTypes.ParamField field, uint256 cur, uint256 next) private pure {
        _within(field, cur, next, (cur + 1) / 2, cur * 2);
    }

    function _within(
        IClearinghouseTypes.ParamField field,
        uint256 cur,
        uint256 next,
        uint256 lo,
        uint256 hi
    ) private pure {
        if (next < lo || next > hi) revert IClearinghouseTypes.MarketParamStepTooLarge(field, cur, next, lo, hi);
    }
}
