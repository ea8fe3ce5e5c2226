// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAdlTypes} from "../interfaces/IAdlTypes.sol";
import {RankTree} from "../libraries/RankTree.sol";

/// @title AdlStorage
/// @notice The whole persistent state of the deleverager in one struct, and the constants its
/// libraries share. `AutoDeleverager` declares the only `Layout` variable; `AdlProofLib` and
/// `AdlSessionLib` receive it as a storage reference, so the compiler, not a convention, keeps
/// every piece of code on the one layout.
library AdlStorage {
    /// @dev Session time `T` of a market that never set one.
    uint32 internal constant DEFAULT_SESSION_TTL = 30 minutes;
    /// @dev Least `T`: enough blocks to land a proof split over many transactions.
    uint32 internal constant MIN_SESSION_TTL = 2 minutes;
    /// @dev Largest `T`: a Chainlink heartbeat is at most a day; T stays within it.
    uint32 internal constant MAX_SESSION_TTL = 1 days;
    /// @dev How long a leaf split across calls stays reserved to its holder (see
    /// AutoDeleverager.HOLD_WINDOW).
    uint32 internal constant HOLD_WINDOW = 1 minutes;
    /// @dev Initial work bounds (see `setBounds`).
    uint256 internal constant DEFAULT_MAX_LIST_LENGTH = 64;
    uint256 internal constant DEFAULT_MAX_PROOF_NODES = 512;
    uint256 internal constant DEFAULT_MAX_OPENED_MEMBERS = 2000;
    /// @dev Largest session bond a market may ask (18-decimal quote): one million quote units.
    uint256 internal constant MAX_SESSION_BOND = 1_000_000e18;
    /// @dev Largest pay per verified member a market may offer (18-decimal quote): ten quote units.
    uint256 internal constant MAX_MEMBER_PAY = 10e18;

    /// @dev Per-market settings and session flags in ONE slot, so `reindex` (inside every trade)
    /// reads the band reference and learns whether a session guards either side with one SLOAD.
    struct MarketConfig {
        uint8 kRef; // reference exponent of the K bands (see RankTree.bandOf)
        bool sessionLong; // a session settles against the longs
        bool sessionShort; // a session settles against the shorts
        uint32 sessionTtl; // T in seconds (0: DEFAULT_SESSION_TTL)
        uint16 refreshesLong; // leaf refreshes split across calls, pending in the long tree
        uint16 refreshesShort; // and in the short tree
        uint32 socialDelay; // T_social in seconds (never below 2 * T; 0: 2 * T)
    }

    /// @dev A leaf refresh split across calls: members up to `last` are merged into the scratch
    /// leaf and `tally` counts them. Any change to a member at or below `last` other than a join
    /// cancels it, so a completed refresh is exactly the join of the leaf's current members.
    struct LeafRefresh {
        address last;
        uint64 tally;
        bool active;
        address holder; // may continue or restart alone until `holdUntil` (HOLD_WINDOW)
        uint64 holdUntil;
    }

    /// @dev One open session (docs/mechanism.md section 4). Slot 0 and 1 are what the guard reads first.
    struct Session {
        uint64 id;
        uint64 openedAt;
        uint64 deadline; // openedAt + T, fixed at opening
        uint32 cursor;
        bool held;
        bool bankruptLong; // B's side at opening
        address lastAccount;
        address heldLast;
        uint64 heldTally;
        uint32 heldPaid; // the held leaf's highest tally paid for: a restart never pays a member twice
        address holder; // the held leaf's holder, alone allowed to continue it until holdUntil
        uint64 holdUntil;
        address bankrupt;
        uint96 bondTokens; // collateral tokens the opener posted, held by the deleverager
        address opener; // gets the bond back at finish or expiry (a successful challenger gets it instead)
        address reserveFund; // the fund holding the reserve (the clearinghouse's fund at opening)
        int256 lastScore;
        uint256 price;
        int256 funding;
        uint256 delta;
        uint256 sigma;
        uint256 reserveTokens;
        uint128 bankruptLeverage; // B's a at opening
        int128 bankruptEntry; // B's K at opening
        address[] entries;
    }

    /// @dev Everything the deleverager stores (list marks excepted: they live at hashed slots, see
    /// AdlCall, so a session's marks never need clearing).
    struct Layout {
        mapping(bytes32 marketId => MarketConfig) config;
        /// Most entries a list may have.
        uint256 maxListLength;
        /// Most nodes a proof (or one session call) may have.
        uint256 maxProofNodes;
        /// Most members all opened leaves of one proof (or one session call) may list together.
        uint256 maxOpenedMembers;
        mapping(bytes32 marketId => mapping(bool isLong => RankTree.Tree)) trees;
        /// Unsettled bankrupt positions per market, and each one's index + 1 in that list.
        mapping(bytes32 marketId => address[]) unsettled;
        mapping(bytes32 marketId => mapping(address account => uint256)) unsettledSlot;
        /// The open session per (market, counterparty side).
        mapping(bytes32 marketId => mapping(bool side => Session)) sessions;
        /// Last session id handed out.
        uint256 sessionNonce;
        /// Pending split leaf refreshes per (market, side, leaf).
        mapping(bytes32 marketId => mapping(bool isLong => mapping(uint256 leaf => LeafRefresh))) leafRefreshes;
        /// Where a split leaf refresh accumulates its members' aggregates (the leaf's own index in a
        /// scratch tree whose parent is set to dominate everything, so a merge stops at the leaf).
        mapping(bytes32 marketId => mapping(bool isLong => RankTree.Tree)) refreshScratch;
        /// When each unsettled position joined its market's unsettled list (the deadline trigger
        /// of socialized loss counts from it).
        mapping(bytes32 marketId => mapping(address account => uint256)) unsettledSince;
        /// What opening a session posts and what proving pays, per market (ADL admin).
        mapping(bytes32 marketId => SessionTerms) sessionTerms;
        /// The position each clock was started for (hash of side, K, a and size, `positionKey`): the
        /// deadline trigger only counts time for the position it was started for.
        mapping(bytes32 marketId => mapping(address account => bytes32)) unsettledKey;
    }

    /// @dev A market's session economics (docs/mechanism.md section 4.3), both 18-decimal quote:
    /// `bond` is posted by the opener (in collateral tokens, rounded up) and returned at finish or
    /// expiry, or paid to a successful challenger; `memberPay` is paid from the keeper reserve to a
    /// continue for each live member it verifies for the first time in the session.
    struct SessionTerms {
        uint128 bond;
        uint128 memberPay;
    }

    /// @dev The open session on (`marketId`, `side`); reverts if there is none.
    function openSession(
        Layout storage s,
        bytes32 marketId,
        bool side
    ) internal view returns (Session storage session) {
        session = s.sessions[marketId][side];
        if (session.id == 0) revert IAdlTypes.AdlNoSession(marketId, side);
    }

    /// @dev Reverts once the session is older than its T.
    function requireBeforeDeadline(Session storage session) internal view {
        if (block.timestamp > session.deadline) revert IAdlTypes.AdlSessionTooOld(session.deadline, block.timestamp);
    }

    /// @dev Whether a chunk that leaves its leaf unfinished is real progress, which alone grants or
    /// renews the HOLD_WINDOW: it lists at least a quarter of `maxOpenedMembers` live members (a chunk
    /// that completes its leaf needs no hold). The same rule for a new hold, a renewal and a takeover
    /// of a lapsed hold; the callers add that a restart by the holder within its window never renews.
    /// A smaller chunk still advances the leaf's state but reserves it against nobody, so accounts
    /// taking turns with one-member chunks (or one-member restarts) cannot keep a leaf reserved: each
    /// window costs at least a quarter of a full continue, and the holder's renewals are bounded by
    /// the leaf's size.
    function grantsHold(Layout storage s, uint256 listed) internal view returns (bool) {
        return listed != 0 && listed * 4 >= s.maxOpenedMembers;
    }

    /// @dev The fund reserve key of one session: (market, counterparty side, session id), so two
    /// sessions of the same account (one per side) never share a reserve.
    function reserveKey(bytes32 marketId, bool side, uint256 sessionId) internal pure returns (bytes32) {
        return keccak256(abi.encode(marketId, side, sessionId));
    }

    /// @dev Largest configurable T_social.
    uint32 internal constant MAX_SOCIAL_DELAY = 7 days;

    /// @dev The least T_social whatever the configuration: ADL keeps priority for at least an hour.
    uint256 internal constant MIN_SOCIAL_DELAY = 1 hours;

    /// @dev T_social: the configured delay, never below twice the session time T nor MIN_SOCIAL_DELAY.
    function socialDelay(MarketConfig memory cfg) internal pure returns (uint256) {
        uint256 least = 2 * ttl(cfg);
        if (least < MIN_SOCIAL_DELAY) least = MIN_SOCIAL_DELAY;
        return cfg.socialDelay > least ? cfg.socialDelay : least;
    }

    /// @dev The session's T: configured, or the default.
    function ttl(MarketConfig memory cfg) internal pure returns (uint256) {
        return cfg.sessionTtl == 0 ? DEFAULT_SESSION_TTL : cfg.sessionTtl;
    }
}
