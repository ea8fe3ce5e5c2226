// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";

/// @title MockAggregator
/// @author verifiable-adl maintainers
/// @notice Settable Chainlink-style aggregator for tests and local demos. Also usable as an
///         L2 sequencer-uptime feed (answer 0 = up, 1 = down; `startedAt` = last status change).
/// @dev Not access controlled: anyone can set any value. Never deploy outside tests and demos.
contract MockAggregator is AggregatorV3Interface {
    /// @notice How `latestRoundData` and `getRoundData` respond.
    /// @dev Normal: the stored round. Revert: revert with MockAggregatorReverted.
    ///      ShortData: return only two 32-byte words (undecodable as a round).
    ///      OversizedRoundId / OversizedAnsweredInRound: return the stored round, except that the
    ///      roundId / answeredInRound word is 2^80 (does not fit in uint80).
    enum ResponseMode {
        Normal,
        Revert,
        ShortData,
        OversizedRoundId,
        OversizedAnsweredInRound
    }

    /// @notice A stored round.
    /// @param answer The answer.
    /// @param startedAt When the round started.
    /// @param updatedAt When the round was updated.
    /// @param answeredInRound The round in which the answer was computed.
    struct RoundData {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        uint80 answeredInRound;
    }

    /// @notice Current response mode.
    ResponseMode public responseMode;
    /// @notice Id of the latest round.
    uint80 public latestRound;

    uint8 private _decimals;
    mapping(uint80 roundId => RoundData) private _rounds;

    /// @notice Emitted whenever the latest round changes.
    /// @param roundId The new latest round.
    /// @param answer Its answer.
    /// @param startedAt Its start time.
    /// @param updatedAt Its update time.
    /// @param answeredInRound The round in which it was answered.
    event RoundSet(uint80 indexed roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    /// @notice Raised by reads while `responseMode` is Revert.
    error MockAggregatorReverted();
    /// @notice Raised by `getRoundData` for a round that was never set.
    error MockAggregatorNoData(uint80 roundId);

    /// @notice Deploys the mock with round 1 = `initialAnswer`, started and updated now.
    /// @dev For a sequencer-uptime feed, `new MockAggregator(0, 0)` is "up since deployment".
    /// @param decimals_ Decimals reported by `decimals()`.
    /// @param initialAnswer Answer of round 1.
    constructor(uint8 decimals_, int256 initialAnswer) {
        _decimals = decimals_;
        _setRound(1, initialAnswer, block.timestamp, block.timestamp, 1);
    }

    /// @notice Starts a new complete round: roundId + 1, `answer`, startedAt = updatedAt = now.
    /// @param answer The new answer.
    function setAnswer(int256 answer) external {
        uint80 roundId = latestRound + 1;
        _setRound(roundId, answer, block.timestamp, block.timestamp, roundId);
    }

    /// @notice Starts a new complete round with `answer` updated at `updatedAt` (startedAt = updatedAt).
    /// @param answer The new answer.
    /// @param updatedAt The round's update (and start) time.
    function setAnswerAt(int256 answer, uint256 updatedAt) external {
        uint80 roundId = latestRound + 1;
        _setRound(roundId, answer, updatedAt, updatedAt, roundId);
    }

    /// @notice Sets the latest round to arbitrary values (it may be incomplete, in the future, etc.).
    /// @param roundId The round id; becomes `latestRound`.
    /// @param answer The answer.
    /// @param startedAt When the round started.
    /// @param updatedAt When the round was updated.
    /// @param answeredInRound The round in which the answer was computed.
    function setRound(
        uint80 roundId,
        int256 answer,
        uint256 startedAt,
        uint256 updatedAt,
        uint80 answeredInRound
    ) external {
        _setRound(roundId, answer, startedAt, updatedAt, answeredInRound);
    }

    /// @notice Overwrites `updatedAt` of the latest round, keeping everything else.
    /// @param updatedAt The new update time.
    function setUpdatedAt(uint256 updatedAt) external {
        RoundData memory r = _rounds[latestRound];
        _setRound(latestRound, r.answer, r.startedAt, updatedAt, r.answeredInRound);
    }

    /// @notice Overwrites `startedAt` of the latest round, keeping everything else.
    /// @param startedAt The new start time.
    function setStartedAt(uint256 startedAt) external {
        RoundData memory r = _rounds[latestRound];
        _setRound(latestRound, r.answer, startedAt, r.updatedAt, r.answeredInRound);
    }

    /// @notice Changes the decimals reported by `decimals()`.
    /// @param decimals_ The new decimals.
    function setDecimals(uint8 decimals_) external {
        _decimals = decimals_;
    }

    /// @notice Makes `latestRoundData` and `getRoundData` revert (true) or respond normally (false).
    /// @param shouldRevert Whether reads revert.
    function setShouldRevert(bool shouldRevert) external {
        responseMode = shouldRevert ? ResponseMode.Revert : ResponseMode.Normal;
    }

    /// @notice Sets how `latestRoundData` and `getRoundData` respond.
    /// @param mode The response mode.
    function setResponseMode(ResponseMode mode) external {
        responseMode = mode;
    }

    /// @inheritdoc AggregatorV3Interface
    function decimals() external view returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external pure returns (string memory) {
        return "MockAggregator";
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 4;
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(
        uint80 roundId_
    )
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        RoundData memory r = _rounds[roundId_];
        if (r.updatedAt == 0 && r.startedAt == 0 && r.answer == 0) revert MockAggregatorNoData(roundId_);
        return _respond(roundId_, r);
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return _respond(latestRound, _rounds[latestRound]);
    }

    /// @dev Stores round `roundId` and makes it the latest round.
    function _setRound(
        uint80 roundId,
        int256 answer,
        uint256 startedAt,
        uint256 updatedAt,
        uint80 answeredInRound
    ) private {
        latestRound = roundId;
        _rounds[roundId] = RoundData({
            answer: answer,
            startedAt: startedAt,
            updatedAt: updatedAt,
            answeredInRound: answeredInRound
        });
        emit RoundSet(roundId, answer, startedAt, updatedAt, answeredInRound);
    }

    /// @dev Returns `r` as round `roundId`, or misbehaves according to `responseMode`. The
    ///      misbehaving modes end the call from assembly so they can return ill-typed data.
    function _respond(
        uint80 roundId,
        RoundData memory r
    ) private view returns (uint80, int256, uint256, uint256, uint80) {
        ResponseMode mode = responseMode;
        if (mode == ResponseMode.Revert) revert MockAggregatorReverted();
        if (mode == ResponseMode.ShortData) {
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                let ptr := mload(0x40)
                mstore(ptr, roundId)
                mstore(add(ptr, 0x20), mload(r))
                return(ptr, 0x40)
            }
        }
        if (mode == ResponseMode.OversizedRoundId || mode == ResponseMode.OversizedAnsweredInRound) {
            uint256 tooWide = uint256(type(uint80).max) + 1;
            uint256 roundWord = mode == ResponseMode.OversizedRoundId ? tooWide : roundId;
            uint256 answeredWord = mode == ResponseMode.OversizedAnsweredInRound ? tooWide : r.answeredInRound;
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                let ptr := mload(0x40)
                mstore(ptr, roundWord)
                mstore(add(ptr, 0x20), mload(r))
                mstore(add(ptr, 0x40), mload(add(r, 0x20)))
                mstore(add(ptr, 0x60), mload(add(r, 0x40)))
                mstore(add(ptr, 0x80), answeredWord)
                return(ptr, 0xa0)
            }
        }
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }
}
