// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IOracleAdapter
/// @notice Normalised, validated index prices from Chainlink-style feeds.
/// @dev Trust assumptions:
/// - each feed reports an honest price within its configured heartbeat;
/// - the admin configures heartbeat, bounds and decimals correctly;
/// - on L2s the sequencer-uptime feed reports outages.
interface IOracleAdapter {
    /// @notice Returns the validated price of `feedId`, scaled to 18 decimals (quote per base).
    /// @param feedId The feed key (the market id for perp markets).
    /// @param strict If true, the feed's stricter `strictMaxAge` freshness window applies
    ///        (liquidation and ADL); otherwise the feed's `heartbeat`.
    /// @return price The answer scaled to 18 decimals, > 0 and within the feed's bounds.
    /// @return updatedAt The round's `updatedAt` timestamp.
    function getPrice(bytes32 feedId, bool strict) external view returns (uint256 price, uint256 updatedAt);
}
