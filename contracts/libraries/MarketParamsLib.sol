// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";

/// @title MarketParamsLib
/// @notice The hard-coded bounds of every market parameter and their check. A linked external
/// library: called only when a market is listed or retuned, so it costs the trading path nothing
/// and keeps the clearinghouse's bytecode small.
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
    /// @notice The largest rise of `mmr` in one update (0.5 percentage points).
    uint256 internal constant MAX_MMR_STEP = 5e15;
    /// @notice The least time between two rises of `mmr`.
    uint256 internal constant MMR_STEP_DELAY = 1 days;

    /// @notice Reverts with `MarketParamOutOfBounds` naming the first field of `p` outside its bounds
    /// (`mmr` must also stay below `imr`, and `takerBand` above zero and at most `priceBand`).
    function validate(IClearinghouseTypes.MarketParams calldata p) external pure {
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

    /// @notice Reverts unless raising `mmr` from `current` to `proposed` is one allowed step: at
    /// most MAX_MMR_STEP, and at least MMR_STEP_DELAY after the previous raise (`lastRaise`, 0 if none).
    function checkMmrRaise(uint256 current, uint256 proposed, uint64 lastRaise) external view {
        if (proposed - current > MAX_MMR_STEP) {
            revert IClearinghouseTypes.MaintenanceStepTooLarge(current, proposed, MAX_MMR_STEP);
        }
        uint256 nextAllowed = uint256(lastRaise) + MMR_STEP_DELAY;
        if (lastRaise != 0 && block.timestamp < nextAllowed) {
            revert IClearinghouseTypes.MaintenanceStepTooSoon(nextAllowed);
        }
    }

    function _bound(IClearinghouseTypes.ParamField field, uint256 value, uint256 lo, uint256 hi) private pure {
        if (value < lo || value > hi) revert IClearinghouseTypes.MarketParamOutOfBounds(field, value, lo, hi);
    }
}
