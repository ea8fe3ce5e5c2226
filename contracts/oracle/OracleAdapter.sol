// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";

/// @title OracleAdapter
/// @author verifiable-adl maintainers
/// @notice Validates Chainlink-style feeds and returns their prices scaled to 18 decimals.
/// @dev Every check fails closed: a feed that reverts, returns malformed data, an incomplete
///      or future round, a non-positive, stale or out-of-bounds answer makes `getPrice` revert
///      with a custom error; it never falls back to an older price.
///
///      On L2s an optional sequencer-uptime feed is consulted first (Chainlink convention:
///      answer 0 = up, 1 = down, `startedAt` = time the status last changed). While the sequencer
///      is down, and for `gracePeriod` seconds after it comes back up, every price is rejected.
///
///      Feed decimals are read once, in `setFeed`. If an aggregator's decimals ever change
///      (e.g. a proxy re-pointed by its owner), the feed must be configured again.
///
///      Aggregators are trusted not to grief the caller (gas or return-data bombs): only the
///      holder of `ORACLE_ADMIN_ROLE` can point a feed at a contract.
contract OracleAdapter is IOracleAdapter, AccessControl {
    /// @notice Configuration of a feed, as passed to `setFeed`.
    /// @param aggregator Chainlink-style aggregator (proxy) address.
    /// @param heartbeat Maximum age in seconds of an answer for ordinary reads (`strict == false`).
    /// @param strictMaxAge Maximum age in seconds for strict reads (liquidation, ADL); 0 < strictMaxAge <= heartbeat.
    /// @param minPrice Lowest accepted price, 18 decimals; 0 < minPrice < maxPrice.
    /// @param maxPrice Highest accepted price, 18 decimals.
    struct FeedConfig {
        address aggregator;
        uint32 heartbeat;
        uint32 strictMaxAge;
        uint128 minPrice;
        uint128 maxPrice;
    }

    /// @notice Stored configuration of a feed, as returned by `feedConfig` (two storage slots).
    /// @param aggregator Aggregator address; address(0) means the feed is not configured.
    /// @param decimals The aggregator's decimals, read when the feed was configured.
    /// @param heartbeat See `FeedConfig`.
    /// @param strictMaxAge See `FeedConfig`.
    /// @param minPrice See `FeedConfig`.
    /// @param maxPrice See `FeedConfig`.
    struct Feed {
        address aggregator;
        uint8 decimals;
        uint32 heartbeat;
        uint32 strictMaxAge;
        uint128 minPrice;
        uint128 maxPrice;
    }

    /// @dev Sequencer-uptime feed and grace period, packed in one slot.
    struct SequencerConfig {
        address feed;
        uint96 gracePeriod;
    }

    /// @dev A `latestRoundData` response, decoded from raw return data.
    struct Round {
        uint80 roundId;
        uint80 answeredInRound;
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
    }

    /// @dev Outcome of calling `latestRoundData`.
    enum CallStatus {
        Ok,
        Reverted,
        Malformed
    }

    /// @notice Role allowed to configure price feeds and the sequencer-uptime feed.
    bytes32 public constant ORACLE_ADMIN_ROLE = keccak256("ORACLE_ADMIN_ROLE");

    /// @notice Decimals of the prices returned by `getPrice`; also the maximum accepted feed decimals.
    uint8 public constant PRICE_DECIMALS = 18;

    /// @dev ABI-encoded size of `latestRoundData`'s five return words.
    uint256 private constant _ROUND_DATA_LENGTH = 160;

    mapping(bytes32 feedId => Feed) private _feeds;
    SequencerConfig private _sequencer;

    /// @notice Emitted when a feed is configured or reconfigured.
    /// @param feedId The feed key.
    /// @param aggregator The aggregator address.
    /// @param heartbeat Maximum answer age for ordinary reads, in seconds.
    /// @param strictMaxAge Maximum answer age for strict reads, in seconds.
    /// @param minPrice Lowest accepted price (18 decimals).
    /// @param maxPrice Highest accepted price (18 decimals).
    /// @param decimals The aggregator's decimals.
    event FeedConfigured(
        bytes32 indexed feedId,
        address indexed aggregator,
        uint256 heartbeat,
        uint256 strictMaxAge,
        uint256 minPrice,
        uint256 maxPrice,
        uint8 decimals
    );

    /// @notice Emitted when a feed is removed.
    /// @param feedId The feed key.
    /// @param aggregator The aggregator the feed pointed to.
    event FeedRemoved(bytes32 indexed feedId, address indexed aggregator);

    /// @notice Emitted when the sequencer-uptime feed is set or disabled (`feed == address(0)`).
    /// @param feed The sequencer-uptime feed.
    /// @param gracePeriod Seconds after the sequencer comes back up during which prices are rejected.
    event SequencerFeedSet(address indexed feed, uint256 gracePeriod);

    /// @notice The constructor's `admin` is the zero address.
    error OracleZeroAdmin();
    /// @notice `setFeed` was given the zero address as aggregator.
    error OracleZeroAggregator();
    /// @notice The address does not answer `decimals()` (or, for the sequencer feed, has no code).
    error OracleInvalidAggregator(address aggregator);
    /// @notice The heartbeat is zero.
    error OracleInvalidHeartbeat(uint256 heartbeat);
    /// @notice The strict window is zero or longer than the heartbeat.
    error OracleInvalidStrictMaxAge(uint256 strictMaxAge, uint256 heartbeat);
    /// @notice The price bounds do not satisfy 0 < min < max.
    error OracleInvalidBounds(uint256 min, uint256 max);
    /// @notice The aggregator reports more than 18 decimals.
    error OracleDecimalsTooLarge(uint8 decimals);
    /// @notice The sequencer grace period does not fit in 96 bits.
    error OracleInvalidGracePeriod(uint256 gracePeriod);
    /// @notice No feed is configured under `feedId`.
    error OracleFeedUnknown(bytes32 feedId);
    /// @notice The feed's `latestRoundData` reverted.
    error OracleFeedReverted(bytes32 feedId);
    /// @notice The feed's `latestRoundData` returned data that does not decode as a round.
    error OracleMalformedResponse(bytes32 feedId);
    /// @notice The answer is zero or negative.
    error OracleInvalidAnswer(bytes32 feedId, int256 answer);
    /// @notice The round has no `updatedAt` or was answered in an earlier round.
    error OracleIncompleteRound(bytes32 feedId, uint80 roundId, uint80 answeredInRound);
    /// @notice The round's `updatedAt` lies after the current block's timestamp.
    error OracleFutureTimestamp(bytes32 feedId, uint256 updatedAt, uint256 blockTimestamp);
    /// @notice The answer is older than the applicable maximum age.
    error OracleStalePrice(bytes32 feedId, uint256 updatedAt, uint256 maxAge);
    /// @notice The 18-decimal price lies outside the feed's bounds (saturated at 2^256-1 on overflow).
    error OraclePriceOutOfBounds(bytes32 feedId, uint256 price, uint256 min, uint256 max);
    /// @notice The sequencer-uptime feed reports the sequencer as down.
    error OracleSequencerDown();
    /// @notice The sequencer came back up `sinceUp` seconds ago, not more than the grace period `grace`.
    error OracleSequencerGracePeriod(uint256 sinceUp, uint256 grace);
    /// @notice The sequencer-uptime round is invalid: `startedAt` is zero or in the future.
    error OracleSequencerInvalidRound(uint256 startedAt);
    /// @notice The sequencer-uptime feed's `latestRoundData` reverted.
    error OracleSequencerFeedReverted();
    /// @notice The sequencer-uptime feed returned data that does not decode as a round.
    error OracleSequencerMalformedResponse();

    /// @notice Deploys the adapter with no feeds and no sequencer feed.
    /// @dev `admin` receives only DEFAULT_ADMIN_ROLE; it must grant ORACLE_ADMIN_ROLE (to itself or
    ///      an operator) before feeds can be configured.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE.
    constructor(address admin) {
        if (admin == address(0)) revert OracleZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Configures (or reconfigures) the feed `feedId`.
    /// @dev Reads and stores the aggregator's decimals. Reverts with OracleZeroAggregator,
    ///      OracleInvalidHeartbeat, OracleInvalidStrictMaxAge, OracleInvalidBounds,
    ///      OracleInvalidAggregator or OracleDecimalsTooLarge on invalid input.
    /// @param feedId The feed key (the market id for perp markets).
    /// @param cfg The feed configuration.
    function setFeed(bytes32 feedId, FeedConfig calldata cfg) external onlyRole(ORACLE_ADMIN_ROLE) {
        if (cfg.aggregator == address(0)) revert OracleZeroAggregator();
        if (cfg.heartbeat == 0) revert OracleInvalidHeartbeat(cfg.heartbeat);
        if (cfg.strictMaxAge == 0 || cfg.strictMaxAge > cfg.heartbeat) {
            revert OracleInvalidStrictMaxAge(cfg.strictMaxAge, cfg.heartbeat);
        }
        if (cfg.minPrice == 0 || cfg.minPrice >= cfg.maxPrice) revert OracleInvalidBounds(cfg.minPrice, cfg.maxPrice);
        uint8 decimals = _readDecimals(cfg.aggregator);

        _feeds[feedId] = Feed({
            aggregator: cfg.aggregator,
            decimals: decimals,
            heartbeat: cfg.heartbeat,
            strictMaxAge: cfg.strictMaxAge,
            minPrice: cfg.minPrice,
            maxPrice: cfg.maxPrice
        });
        emit FeedConfigured(
            feedId,
            cfg.aggregator,
            cfg.heartbeat,
            cfg.strictMaxAge,
            cfg.minPrice,
            cfg.maxPrice,
            decimals
        );
    }

    /// @notice Removes the feed `feedId`; `getPrice` then reverts with OracleFeedUnknown.
    /// @dev Reverts with OracleFeedUnknown if the feed is not configured.
    /// @param feedId The feed key.
    function removeFeed(bytes32 feedId) external onlyRole(ORACLE_ADMIN_ROLE) {
        address aggregator = _feeds[feedId].aggregator;
        if (aggregator == address(0)) revert OracleFeedUnknown(feedId);
        delete _feeds[feedId];
        emit FeedRemoved(feedId, aggregator);
    }

    /// @notice Sets the L2 sequencer-uptime feed and its grace period; address(0) disables the check.
    /// @dev Reverts with OracleInvalidAggregator if `feed` is non-zero and has no code, and with
    ///      OracleInvalidGracePeriod if `gracePeriod` exceeds 2^96-1.
    /// @param feed The sequencer-uptime feed, or address(0).
    /// @param gracePeriod Seconds after the sequencer comes back up during which prices are rejected.
    function setSequencerFeed(address feed, uint256 gracePeriod) external onlyRole(ORACLE_ADMIN_ROLE) {
        if (feed != address(0) && feed.code.length == 0) revert OracleInvalidAggregator(feed);
        if (gracePeriod > type(uint96).max) revert OracleInvalidGracePeriod(gracePeriod);
        _sequencer = SequencerConfig({feed: feed, gracePeriod: uint96(gracePeriod)});
        emit SequencerFeedSet(feed, gracePeriod);
    }

    /// @inheritdoc IOracleAdapter
    /// @dev Check order: OracleFeedUnknown; the sequencer checks (if a sequencer feed is set);
    ///      OracleFeedReverted / OracleMalformedResponse; OracleInvalidAnswer; OracleIncompleteRound;
    ///      OracleFutureTimestamp; OracleStalePrice; OraclePriceOutOfBounds.
    ///      An answer exactly `maxAge` seconds old is accepted.
    function getPrice(bytes32 feedId, bool strict) external view returns (uint256 price, uint256 updatedAt) {
        Feed memory feed = _feeds[feedId];
        if (feed.aggregator == address(0)) revert OracleFeedUnknown(feedId);

        _checkSequencer();

        (CallStatus status, Round memory round) = _latestRound(feed.aggregator);
        if (status == CallStatus.Reverted) revert OracleFeedReverted(feedId);
        if (status == CallStatus.Malformed) revert OracleMalformedResponse(feedId);

        if (round.answer <= 0) revert OracleInvalidAnswer(feedId, round.answer);
        if (round.updatedAt == 0 || round.answeredInRound < round.roundId) {
            revert OracleIncompleteRound(feedId, round.roundId, round.answeredInRound);
        }
        if (round.updatedAt > block.timestamp) {
            revert OracleFutureTimestamp(feedId, round.updatedAt, block.timestamp);
        }
        uint256 maxAge = strict ? feed.strictMaxAge : feed.heartbeat;
        if (block.timestamp - round.updatedAt > maxAge) revert OracleStalePrice(feedId, round.updatedAt, maxAge);

        price = _toPriceDecimals(uint256(round.answer), feed.decimals);
        if (price < feed.minPrice || price > feed.maxPrice) {
            revert OraclePriceOutOfBounds(feedId, price, feed.minPrice, feed.maxPrice);
        }
        updatedAt = round.updatedAt;
    }

    /// @notice Returns the stored configuration of `feedId`.
    /// @dev Returns an all-zero struct (aggregator == address(0)) if the feed is not configured.
    /// @param feedId The feed key.
    /// @return The feed's configuration, including the decimals read at configuration time.
    function feedConfig(bytes32 feedId) external view returns (Feed memory) {
        return _feeds[feedId];
    }

    /// @notice Returns the sequencer-uptime feed; address(0) if the check is disabled.
    /// @return The sequencer-uptime feed.
    function sequencerFeed() external view returns (address) {
        return _sequencer.feed;
    }

    /// @notice Returns the grace period applied after the sequencer comes back up.
    /// @return The grace period in seconds.
    function sequencerGracePeriod() external view returns (uint256) {
        return _sequencer.gracePeriod;
    }

    /// @dev Reverts unless the sequencer-uptime feed (if set) reports the sequencer up for longer than
    ///      the grace period.
    function _checkSequencer() private view {
        SequencerConfig memory sequencer = _sequencer;
        if (sequencer.feed == address(0)) return;

        (CallStatus status, Round memory round) = _latestRound(sequencer.feed);
        if (status == CallStatus.Reverted) revert OracleSequencerFeedReverted();
        if (status == CallStatus.Malformed) revert OracleSequencerMalformedResponse();

        if (round.answer != 0) revert OracleSequencerDown();
        if (round.startedAt == 0 || round.startedAt > block.timestamp) {
            revert OracleSequencerInvalidRound(round.startedAt);
        }
        uint256 sinceUp = block.timestamp - round.startedAt;
        if (sinceUp <= sequencer.gracePeriod) revert OracleSequencerGracePeriod(sinceUp, sequencer.gracePeriod);
    }

    /// @dev Calls `latestRoundData` without trusting the callee's return data: a plain try/catch
    ///      would not catch a failure to decode short or out-of-range return data, so the call is
    ///      made with `staticcall` and decoded word by word.
    function _latestRound(address aggregator) private view returns (CallStatus status, Round memory round) {
        // solhint-disable-next-line avoid-low-level-calls
        (bool success, bytes memory data) = aggregator.staticcall(
            abi.encodeCall(AggregatorV3Interface.latestRoundData, ())
        );
        if (!success) return (CallStatus.Reverted, round);
        if (data.length < _ROUND_DATA_LENGTH) return (CallStatus.Malformed, round);

        (uint256 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint256 answeredInRound) = abi.decode(
            data,
            (uint256, int256, uint256, uint256, uint256)
        );
        if (roundId > type(uint80).max || answeredInRound > type(uint80).max) return (CallStatus.Malformed, round);

        round = Round({
            roundId: uint80(roundId),
            answeredInRound: uint80(answeredInRound),
            answer: answer,
            startedAt: startedAt,
            updatedAt: updatedAt
        });
        return (CallStatus.Ok, round);
    }

    /// @dev Reads `decimals()` from `aggregator`, rejecting non-aggregators and more than 18 decimals.
    function _readDecimals(address aggregator) private view returns (uint8) {
        // solhint-disable-next-line avoid-low-level-calls
        (bool success, bytes memory data) = aggregator.staticcall(abi.encodeCall(AggregatorV3Interface.decimals, ()));
        if (!success || data.length < 32) revert OracleInvalidAggregator(aggregator);
        uint256 decimals = abi.decode(data, (uint256));
        if (decimals > type(uint8).max) revert OracleInvalidAggregator(aggregator);
        if (decimals > PRICE_DECIMALS) revert OracleDecimalsTooLarge(uint8(decimals));
        return uint8(decimals);
    }

    /// @dev Scales a positive `answer` with `decimals` (<= 18) decimals to 18 decimals, saturating
    ///      at 2^256-1 so that an absurd answer fails the bounds check instead of panicking.
    function _toPriceDecimals(uint256 answer, uint8 decimals) private pure returns (uint256) {
        uint256 factor = 10 ** (PRICE_DECIMALS - decimals);
        if (answer > type(uint256).max / factor) return type(uint256).max;
        return answer * factor;
    }
}
