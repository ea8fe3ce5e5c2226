// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ClearinghouseStorage, MarketStatus} from "./ClearinghouseStorage.sol";
import {PositionBook} from "./PositionBook.sol";
import {MarketParamsLib} from "../libraries/MarketParamsLib.sol";

/// @title MarketRegistry
/// @notice Market listing, parameter bounds and pausing for the clearinghouse.
/// @dev No parameter change can make an open position liquidatable by more than one step:
/// `mmr` may rise by at most MAX_MMR_STEP per update and at most once per MMR_STEP_DELAY.
/// `imr` only gates increases and margin removal, fees are charged to free collateral, and the
/// remaining parameters do not enter the liquidation test.
abstract contract MarketRegistry is ClearinghouseStorage {
    /// @notice Lists markets and tunes their parameters.
    bytes32 public constant MARKET_ADMIN_ROLE = keccak256("MARKET_ADMIN_ROLE");
    /// @notice Pauses and unpauses markets.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Withdraws treasury collateral.
    bytes32 public constant TREASURER_ROLE = keccak256("TREASURER_ROLE");

    /// @notice The largest rise of `mmr` in one update (0.5 percentage points).
    uint256 public constant MAX_MMR_STEP = MarketParamsLib.MAX_MMR_STEP;
    /// @notice The least time between two rises of `mmr`.
    uint256 public constant MMR_STEP_DELAY = MarketParamsLib.MMR_STEP_DELAY;

    /// @notice Lists `marketId` with `params`; its oracle feed is the adapter's feed of the same id.
    function listMarket(bytes32 marketId, MarketParams calldata params) external onlyRole(MARKET_ADMIN_ROLE) {
        if (_s.status[marketId].listed) revert MarketAlreadyListed(marketId);
        MarketParamsLib.validate(params);
        _s.status[marketId].listed = true;
        _s.params[marketId] = params;
        MarketState storage s = _s.state[marketId];
        s.lastFundingTime = uint64(block.timestamp);
        s.windowStart = uint64(block.timestamp);
        emit MarketListed(marketId, params);
    }

    /// @notice Replaces the parameters of a listed market, within bounds and the mmr step rule.
    /// @dev Funding is accrued first so the old window parameters apply to elapsed time.
    function setMarketParams(bytes32 marketId, MarketParams calldata params) external onlyRole(MARKET_ADMIN_ROLE) {
        MarketStatus storage st = PositionBook.requireListed(_s, marketId);
        MarketParamsLib.validate(params);
        uint256 current = _s.params[marketId].mmr;
        if (params.mmr > current) {
            MarketParamsLib.checkMmrRaise(current, params.mmr, st.lastMmrRaise);
            st.lastMmrRaise = uint64(block.timestamp);
        }
        // Funding accrues under the old parameters before they change.
        PositionBook.accrue(_s, marketId, PositionBook.indexPrice(oracle, marketId, false));
        _s.params[marketId] = params;
        emit MarketParamsUpdated(marketId, params);
    }

    /// @notice Pauses or unpauses trading, margin removal and liquidation in `marketId`.
    /// @dev Deposits, withdrawals of free collateral and adding margin keep working.
    function setPaused(bytes32 marketId, bool paused) external onlyRole(PAUSER_ROLE) {
        PositionBook.requireListed(_s, marketId).paused = paused;
        emit MarketPaused(marketId, paused);
    }

    /// @notice The parameters of `marketId`.
    function marketParams(bytes32 marketId) external view returns (MarketParams memory) {
        return _s.params[marketId];
    }

    /// @notice The funding and open-interest state of `marketId` as last written.
    function marketState(bytes32 marketId) external view returns (MarketState memory) {
        return _s.state[marketId];
    }

    /// @notice Whether `marketId` is listed and whether it is paused.
    function marketStatus(bytes32 marketId) external view returns (bool listed, bool paused) {
        MarketStatus storage st = _s.status[marketId];
        return (st.listed, st.paused);
    }
}
