// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ClearinghouseStorage, MarketStatus} from "./ClearinghouseStorage.sol";
import {PositionBook} from "./PositionBook.sol";
import {MarketParamsLib} from "../libraries/MarketParamsLib.sol";

/// @title MarketRegistry
/// @notice Market listing, timelocked parameter changes and pausing for the clearinghouse.
/// @dev A listing sets a market's parameters at once. After it, every change is proposed by
/// MARKET_ADMIN_ROLE, stays pending and visible (`pendingMarketParams`, `MarketParamsProposed`)
/// for PARAMS_DELAY, moves each field by at most one bounded step, and is applied by anyone once
/// due; the admin may cancel it until then. The rules live in the linked `MarketParamsLib`.
abstract contract MarketRegistry is ClearinghouseStorage {
    /// @notice Lists markets and proposes and cancels changes of their parameters.
    bytes32 public constant MARKET_ADMIN_ROLE = keccak256("MARKET_ADMIN_ROLE");
    /// @notice Pauses and unpauses markets.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Withdraws treasury collateral.
    bytes32 public constant TREASURER_ROLE = keccak256("TREASURER_ROLE");

    /// @notice How long a proposed parameter change stays pending before it may be applied.
    uint256 public constant PARAMS_DELAY = MarketParamsLib.PARAMS_DELAY;

    /// @notice Lists `marketId` with `params`, in force at once; its oracle feed is the adapter's
    /// feed of the same id.
    function listMarket(bytes32 marketId, MarketParams calldata params) external onlyRole(MARKET_ADMIN_ROLE) {
        MarketParamsLib.list(_s, marketId, params);
    }

    /// @notice Proposes `params` for the listed `marketId`: within the bounds, each field within one
    /// step of the parameters in force; applicable PARAMS_DELAY from now. Replaces a pending change.
    function proposeMarketParams(bytes32 marketId, MarketParams calldata params) external onlyRole(MARKET_ADMIN_ROLE) {
        MarketParamsLib.propose(_s, marketId, params);
    }

    /// @notice Drops the pending parameter change of `marketId`.
    function cancelMarketParams(bytes32 marketId) external onlyRole(MARKET_ADMIN_ROLE) {
        MarketParamsLib.cancel(_s, marketId);
    }

    /// @notice Puts the pending parameter change of `marketId` in force, once due. Callable by anyone.
    /// @dev Funding is accrued first so the old parameters apply to elapsed time.
    function applyMarketParams(bytes32 marketId) external nonReentrant {
        MarketParamsLib.applyPending(_s, oracle, marketId);
    }

    /// @notice Pauses or unpauses trading, margin removal and liquidation in `marketId`.
    /// @dev Deposits, withdrawals of free collateral and adding margin keep working.
    function setPaused(bytes32 marketId, bool paused) external onlyRole(PAUSER_ROLE) {
        PositionBook.requireListed(_s, marketId).paused = paused;
        emit MarketPaused(marketId, paused);
    }

    /// @notice The parameters of `marketId` in force.
    function marketParams(bytes32 marketId) external view returns (MarketParams memory) {
        return _s.params[marketId];
    }

    /// @notice The pending parameter change of `marketId` and when it may be applied (`eta`; zero
    /// and all-zero parameters when none is pending).
    function pendingMarketParams(bytes32 marketId) external view returns (MarketParams memory params, uint256 eta) {
        return (_s.pendingParams[marketId], _s.status[marketId].paramsEta);
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
