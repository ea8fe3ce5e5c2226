// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title AggregatorV3Interface
/// @author verifiable-adl maintainers
/// @notice Read interface of Chainlink price feeds and L2 sequencer-uptime feeds
///         (same ABI as Chainlink's `AggregatorV3Interface`).
interface AggregatorV3Interface {
    /// @notice Number of decimals of `answer`.
    /// @return The answer's decimals.
    function decimals() external view returns (uint8);

    /// @notice Human-readable description of the feed, e.g. "ETH / USD".
    /// @return The description.
    function description() external view returns (string memory);

    /// @notice Version of the aggregator implementation.
    /// @return The version.
    function version() external view returns (uint256);

    /// @notice Data of a past round.
    /// @param roundId_ The round to query.
    /// @return roundId The round id.
    /// @return answer The answer of the round.
    /// @return startedAt When the round started.
    /// @return updatedAt When the round was last updated.
    /// @return answeredInRound The round in which the answer was computed (deprecated by Chainlink).
    function getRoundData(
        uint80 roundId_
    )
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    /// @notice Data of the latest round.
    /// @return roundId The round id.
    /// @return answer The latest answer.
    /// @return startedAt When the round started (for sequencer-uptime feeds: when the status last changed).
    /// @return updatedAt When the round was last updated.
    /// @return answeredInRound The round in which the answer was computed (deprecated by Chainlink).
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}
