// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";

/// @title MarketRegistry
/// @notice Market listing, parameter bounds and pausing for the clearinghouse.
/// @dev No parameter change can make an open position liquidatable by more than one step:
/// `mmr` may rise by at most MAX_MMR_STEP per update and at most once per MMR_STEP_DELAY.
/// `imr` only gates increases and margin removal, fees are charged to free collateral, and the
/// remaining parameters do not enter the liquidation test.
abstract contract MarketRegistry is IClearinghouseTypes, AccessControl {
    /// @notice Lists markets and tunes their parameters.
    bytes32 public constant MARKET_ADMIN_ROLE = keccak256("MARKET_ADMIN_ROLE");
    /// @notice Pauses and unpauses markets.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Withdraws treasury collateral.
    bytes32 public constant TREASURER_ROLE = keccak256("TREASURER_ROLE");

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
    /// @notice The largest rise of `mmr` in one update (0.5 percentage points).
    uint256 public constant MAX_MMR_STEP = 5e15;
    /// @notice The least time between two rises of `mmr`.
    uint256 public constant MMR_STEP_DELAY = 1 days;

    /// @dev Flags and bookkeeping per market, apart from the hot MarketState.
    struct MarketStatus {
        bool listed;
        bool paused;
        uint64 lastMmrRaise;
    }

    mapping(bytes32 marketId => MarketParams) internal _params;
    mapping(bytes32 marketId => MarketState) internal _state;
    mapping(bytes32 marketId => MarketStatus) internal _status;

    /// @notice Lists `marketId` with `params`; its oracle feed is the adapter's feed of the same id.
    function listMarket(bytes32 marketId, MarketParams calldata params) external onlyRole(MARKET_ADMIN_ROLE) {
        if (_status[marketId].listed) revert MarketAlreadyListed(marketId);
        _validateParams(params);
        _status[marketId].listed = true;
        _params[marketId] = params;
        MarketState storage s = _state[marketId];
        s.lastFundingTime = uint64(block.timestamp);
        s.windowStart = uint64(block.timestamp);
        emit MarketListed(marketId, params);
    }

    /// @notice Replaces the parameters of a listed market, within bounds and the mmr step rule.
    /// @dev Funding is accrued first so the old window parameters apply to elapsed time.
    function setMarketParams(bytes32 marketId, MarketParams calldata params) external onlyRole(MARKET_ADMIN_ROLE) {
        MarketStatus storage st = _requireListed(marketId);
        _validateParams(params);
        uint256 current = _params[marketId].mmr;
        if (params.mmr > current) {
            if (params.mmr - current > MAX_MMR_STEP) revert MaintenanceStepTooLarge(current, params.mmr, MAX_MMR_STEP);
            uint256 nextAllowed = uint256(st.lastMmrRaise) + MMR_STEP_DELAY;
            if (st.lastMmrRaise != 0 && block.timestamp < nextAllowed) revert MaintenanceStepTooSoon(nextAllowed);
            st.lastMmrRaise = uint64(block.timestamp);
        }
        _beforeParamsChange(marketId);
        _params[marketId] = params;
        emit MarketParamsUpdated(marketId, params);
    }

    /// @notice Pauses or unpauses trading, margin removal and liquidation in `marketId`.
    /// @dev Deposits, withdrawals of free collateral and adding margin keep working.
    function setPaused(bytes32 marketId, bool paused) external onlyRole(PAUSER_ROLE) {
        _requireListed(marketId).paused = paused;
        emit MarketPaused(marketId, paused);
    }

    /// @notice The parameters of `marketId`.
    function marketParams(bytes32 marketId) external view returns (MarketParams memory) {
        return _params[marketId];
    }

    /// @notice The funding and open-interest state of `marketId` as last written.
    function marketState(bytes32 marketId) external view returns (MarketState memory) {
        return _state[marketId];
    }

    /// @notice Whether `marketId` is listed and whether it is paused.
    function marketStatus(bytes32 marketId) external view returns (bool listed, bool paused) {
        MarketStatus storage st = _status[marketId];
        return (st.listed, st.paused);
    }

    /// @dev Hook: accrue funding under the old parameters before they change.
    function _beforeParamsChange(bytes32 marketId) internal virtual;

    function _requireListed(bytes32 marketId) internal view returns (MarketStatus storage st) {
        st = _status[marketId];
        if (!st.listed) revert MarketUnknown(marketId);
    }

    function _requireActive(bytes32 marketId) internal view {
        if (_requireListed(marketId).paused) revert MarketIsPaused(marketId);
    }

    function _validateParams(MarketParams calldata p) private pure {
        _bound(ParamField.Imr, p.imr, MIN_IMR, MAX_IMR);
        _bound(ParamField.Mmr, p.mmr, MIN_MMR, p.imr - 1);
        _bound(ParamField.MakerFee, p.makerFee, 0, MAX_FEE);
        _bound(ParamField.TakerFee, p.takerFee, 0, MAX_FEE);
        _bound(ParamField.PriceBand, p.priceBand, MIN_BAND, MAX_BAND);
        _bound(ParamField.FundFeeShare, p.fundFeeShare, 0, ONE);
        _bound(ParamField.MaxPremium, p.maxPremium, 0, MAX_PREMIUM);
        _bound(ParamField.MinNotional, p.minNotional, MIN_NOTIONAL_FLOOR, MIN_NOTIONAL_CEIL);
        _bound(ParamField.FundingPeriod, p.fundingPeriod, MIN_FUNDING_PERIOD, MAX_FUNDING_PERIOD);
        _bound(ParamField.FundingWindow, p.fundingWindow, MIN_FUNDING_WINDOW, MAX_FUNDING_WINDOW);
        _bound(ParamField.LiquidationFee, p.liquidationFee, 0, MAX_LIQUIDATION_FEE);
        _bound(ParamField.LiquidatorShare, p.liquidatorShare, 0, ONE);
    }

    function _bound(ParamField field, uint256 value, uint256 lo, uint256 hi) private pure {
        if (value < lo || value > hi) revert MarketParamOutOfBounds(field, value, lo, hi);
    }
}
