// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAutoDeleverager} from "../interfaces/IAutoDeleverager.sol";
import {IRankIndex} from "../interfaces/IRankIndex.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {ClearinghouseLens} from "../periphery/ClearinghouseLens.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {ScoreMath} from "../libraries/ScoreMath.sol";
import {RankTree} from "../libraries/RankTree.sol";
import {AdlCall} from "./AdlCall.sol";
import {AdlProofLib} from "./AdlProofLib.sol";
import {AdlSessionLib} from "./AdlSessionLib.sol";
import {AdlSettlement} from "./AdlSettlement.sol";
import {AdlStorage} from "./AdlStorage.sol";

/// @title AutoDeleverager
/// @notice The rank index (one tree per market and side, reindexed by the clearinghouse on every
/// position change, with the session guard), single-transaction verifiable ADL, and the entry
/// points of multi-transaction sessions: a keeper's list is accepted only if it is ordered,
/// eligible, and provably complete against node bounds the contract keeps itself. Execution goes
/// through `Clearinghouse.settleDeleverage`, which re-checks what the core owns (pure reductions,
/// the bankrupt part at zero, nobody below zero, conservation).
/// @dev The only contract of the ADL side with state: all of it is `_adl` (one `AdlStorage.Layout`)
/// plus a transient call counter. The list walk and the proof verifier live in the linked library
/// `AdlProofLib`, the session state machine in the linked library `AdlSessionLib`; both run by
/// DELEGATECALL on `_adl`, under this contract's reentrancy lock and role checks.
contract AutoDeleverager is IAutoDeleverager, AccessControl, ReentrancyGuardTransient {
    using FixedPointMath for uint256;

    /// @notice Configures markets' band references, work bounds and session times.
    bytes32 public constant ADL_ADMIN_ROLE = keccak256("ADL_ADMIN_ROLE");
    /// @notice Session time `T` of a market that never set one.
    uint32 public constant DEFAULT_SESSION_TTL = AdlStorage.DEFAULT_SESSION_TTL;
    /// @notice Least `T`: enough blocks to land a proof split over many transactions.
    uint32 public constant MIN_SESSION_TTL = AdlStorage.MIN_SESSION_TTL;
    /// @notice Largest `T`: a Chainlink heartbeat is at most a day; T stays within it.
    uint32 public constant MAX_SESSION_TTL = AdlStorage.MAX_SESSION_TTL;
    /// @notice How long a leaf split across calls (a session's held leaf or a split refresh) stays
    /// reserved to the account whose chunk holds it. Without it anyone could restart a held leaf and
    /// undo an honest keeper's chunks; with it, a hold that skipped a member (so the leaf can never
    /// complete) is restarted by anyone once it lapses. Only real progress grants or renews the window:
    /// a chunk of at least a quarter of `maxOpenedMembers` live members, whether it starts a hold,
    /// takes a lapsed one over or continues the holder's own (a restart by the holder never renews);
    /// a smaller chunk reserves the leaf against nobody.
    uint32 public constant HOLD_WINDOW = AdlStorage.HOLD_WINDOW;
    uint256 private constant WAD = FixedPointMath.WAD;
    /// @dev Bits of the MarketConfig slot that never need the slow path: kRef (bits 0-7), T
    /// (bits 24-55) and T_social (88-119); the session flags (8-23) and pending refresh counts
    /// (56-87) do.
    uint256 private constant CONFIG_KREF_AND_TTL =
        0xff | (uint256(type(uint32).max) << 24) | (uint256(type(uint32).max) << 88);

    /// @notice The clearinghouse whose positions are indexed.
    Clearinghouse public immutable clearinghouse;
    /// @notice Views that accrue funding virtually (for `adlScore` and `adlDelta`).
    ClearinghouseLens public immutable lens;

    /// @dev Everything the deleverager stores (see AdlStorage).
    AdlStorage.Layout private _adl;
    /// @dev Counts deleverage calls within a transaction, so list marks never leak between calls.
    uint256 private transient _callNonce;

    constructor(Clearinghouse clearinghouse_, ClearinghouseLens lens_, address admin) {
        clearinghouse = clearinghouse_;
        lens = lens_;
        _adl.maxListLength = AdlStorage.DEFAULT_MAX_LIST_LENGTH;
        _adl.maxProofNodes = AdlStorage.DEFAULT_MAX_PROOF_NODES;
        _adl.maxOpenedMembers = AdlStorage.DEFAULT_MAX_OPENED_MEMBERS;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADL_ADMIN_ROLE, admin);
        // Session bonds go back (or to a challenger) as deposits into the clearinghouse.
        SafeERC20.forceApprove(clearinghouse_.collateral(), address(clearinghouse_), type(uint256).max);
    }

    // ================================================================ admin

    /// @notice Sets the K-band reference of `marketId` (e.g. bitlen(listing price) - 1). Any value
    /// is sound: membership is read from the stored leaf, never recomputed.
    function configureMarket(bytes32 marketId, uint8 bandReference) external onlyRole(ADL_ADMIN_ROLE) {
        _adl.config[marketId].kRef = bandReference;
        emit MarketConfigured(marketId, bandReference);
    }

    /// @notice Sets the work bounds of one deleverage call.
    function setBounds(
        uint256 listLength,
        uint256 proofNodes,
        uint256 openedMembers
    ) external onlyRole(ADL_ADMIN_ROLE) {
        if (listLength == 0 || proofNodes == 0 || openedMembers == 0) revert AdlBoundsOutOfRange();
        _adl.maxListLength = listLength;
        _adl.maxProofNodes = proofNodes;
        _adl.maxOpenedMembers = openedMembers;
        emit BoundsSet(listLength, proofNodes, openedMembers);
    }

    /// @notice Sets the session time `T` of `marketId` (ADL admin), within [MIN_SESSION_TTL,
    /// MAX_SESSION_TTL] and at most the heartbeat of the market's oracle feed (a session's T is also
    /// capped at the heartbeat when it opens); see docs/adl.md for how to choose it.
    function setSessionTtl(bytes32 marketId, uint32 ttlSeconds) external onlyRole(ADL_ADMIN_ROLE) {
        AdlSessionLib.setSessionTtl(_adl, clearinghouse, marketId, ttlSeconds);
    }

    /// @notice Sets what a session of `marketId` costs and pays (ADL admin), both in 18-decimal quote:
    /// the `bond` an opener posts (in collateral tokens, rounded up; at most MAX_SESSION_BOND),
    /// returned at finish or expiry and paid to a successful challenger, and `memberPay`, paid from the
    /// keeper reserve to a continue for each live member it verifies for the first time in the session
    /// (at most MAX_MEMBER_PAY). Applies to sessions opened, and continues sent, afterwards.
    function setSessionTerms(bytes32 marketId, uint256 bond, uint256 memberPay) external onlyRole(ADL_ADMIN_ROLE) {
        AdlSessionLib.setSessionTerms(_adl, marketId, bond, memberPay);
    }

    /// @notice Sets the socialization delay `T_social` of `marketId` (ADL admin), at most
    /// 7 days; the delay in force is never below twice the session time `T` (0: exactly 2T).
    function setSocialDelay(bytes32 marketId, uint32 delaySeconds) external onlyRole(ADL_ADMIN_ROLE) {
        AdlSessionLib.setSocialDelay(_adl, marketId, delaySeconds);
    }

    // ================================================================ rank index

    /// @inheritdoc IRankIndex
    /// @dev One SLOAD gives the band reference and both session flags; only while a session is open
    /// on a side does a change there cost more (the guard).
    function reindex(
        bytes32 marketId,
        address account,
        bool wasOpen,
        bool wasLong,
        uint16 oldLeaf,
        bool isOpen,
        bool isLong,
        uint256 a,
        int256 k
    ) external returns (uint16 leaf) {
        if (msg.sender != address(clearinghouse)) revert AdlNotClearinghouse(msg.sender);
        // The whole config slot in one SLOAD: kRef in the low byte; the fast path tests the session
        // flags and pending-refresh counts as raw bits and decodes nothing more.
        AdlStorage.MarketConfig storage config = _adl.config[marketId];
        uint256 word;
        assembly {
            word := sload(config.slot)
        }
        if (isOpen) leaf = uint16(RankTree.leafOf(a, k, uint8(word)));
        if (word & ~uint256(CONFIG_KREF_AND_TTL) != 0) {
            _slowPath(marketId, account, wasOpen, wasLong, oldLeaf, isOpen, isLong, leaf, a, k);
        }
        if (wasOpen && isOpen && wasLong == isLong && oldLeaf == leaf) {
            RankTree.update(_adl.trees[marketId][isLong], isLong, leaf, a, k);
            return leaf;
        }
        if (wasOpen) RankTree.remove(_adl.trees[marketId][wasLong], oldLeaf);
        if (isOpen) RankTree.insert(_adl.trees[marketId][isLong], isLong, leaf, a, k);
    }

    /// @inheritdoc IAutoDeleverager
    function refresh(
        bytes32 marketId,
        bool isLong,
        uint256 level,
        uint256 position,
        address[] calldata members
    ) external nonReentrant {
        RankTree.Tree storage t = _adl.trees[marketId][isLong];
        if (level == 0) {
            uint256[] memory aValues = new uint256[](members.length);
            int256[] memory kValues = new int256[](members.length);
            for (uint256 i; i < members.length; ++i) {
                if (i > 0 && members[i] <= members[i - 1]) revert AdlMembersNotAscending(members[i - 1], members[i]);
                IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, members[i]);
                if (p.size == 0 || p.isLong != isLong || p.leaf != position) revert AdlMemberOutranks(members[i]);
                aValues[i] = p.leverage;
                kValues[i] = p.entry;
            }
            RankTree.refreshLeaf(t, isLong, position, aValues, kValues);
        } else {
            RankTree.refreshInternal(t, isLong, RankTree.heapIndex(level, position));
        }
        emit NodeRefreshed(marketId, isLong, level, position);
    }

    /// @inheritdoc IAutoDeleverager
    function refreshLeafChunk(
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        address[] calldata members
    ) external nonReentrant {
        AdlSessionLib.refreshLeafChunk(_adl, clearinghouse, marketId, isLong, leaf, members);
    }

    // ================================================================ deleverage

    /// @inheritdoc IAutoDeleverager
    function deleverage(
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties,
        ProofNode[] calldata proof
    ) external nonReentrant {
        // One F for the whole call: the clearinghouse accrues once per block.
        (AdlCall.Call memory c, IClearinghouseTypes.Position memory b, uint256 deficit, uint256 covered) = AdlSettlement
            .pin(clearinghouse, marketId, bankrupt);
        if (_sessionOpen(_adl.config[marketId], c.side)) revert AdlSessionActive(marketId, c.side);
        c.callId = ++_callNonce;
        IClearinghouseTypes.DeleverageLeg[] memory legs;
        int256[] memory scores;
        (c, legs, scores) = _checkListAndProof(c, bankrupt, b.size, counterparties, proof);
        uint256 d;
        for (uint256 i; i < legs.length; ++i) d += legs[i].take;
        AdlSettlement.execute(clearinghouse, c, bankrupt, b, legs, scores, d, covered.mulDivDown(d, b.size));
        _syncUnsettled(marketId, bankrupt, deficit - deficit.mulDivDown(d, b.size));
    }

    /// @dev AdlSessionLib.syncUnsettled in a frame of its own (`deleverage` has too many locals).
    function _syncUnsettled(bytes32 marketId, address bankrupt, uint256 remainingDeficit) private {
        AdlSessionLib.syncUnsettled(_adl, clearinghouse, marketId, bankrupt, remainingDeficit);
    }

    /// @dev AdlProofLib.checkListAndProof in a frame of its own (`deleverage` has too many locals).
    function _checkListAndProof(
        AdlCall.Call memory c,
        address bankrupt,
        uint256 size,
        address[] calldata counterparties,
        ProofNode[] calldata proof
    ) private returns (AdlCall.Call memory, IClearinghouseTypes.DeleverageLeg[] memory, int256[] memory) {
        return AdlProofLib.checkListAndProof(_adl, clearinghouse, c, bankrupt, size, counterparties, proof);
    }

    // ================================================================ sessions

    /// @inheritdoc IAutoDeleverager
    function openAdlSession(
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties
    ) external nonReentrant returns (uint256 sessionId) {
        return AdlSessionLib.openSession(_adl, clearinghouse, marketId, bankrupt, counterparties);
    }

    /// @inheritdoc IAutoDeleverager
    function continueAdlSession(bytes32 marketId, bool side, ProofNode[] calldata proof) external nonReentrant {
        AdlProofLib.continueSession(_adl, clearinghouse, marketId, side, proof);
    }

    /// @inheritdoc IAutoDeleverager
    function finishAdlSession(bytes32 marketId, bool side) external nonReentrant {
        AdlSessionLib.finishSession(_adl, clearinghouse, marketId, side);
    }

    /// @inheritdoc IAutoDeleverager
    function challengeAdlSession(bytes32 marketId, bool side, address account) external nonReentrant {
        AdlSessionLib.challengeSession(_adl, clearinghouse, marketId, side, account);
    }

    /// @inheritdoc IAutoDeleverager
    function expireAdlSession(bytes32 marketId, bool side) external nonReentrant {
        AdlSessionLib.expireSession(_adl, clearinghouse, marketId, side);
    }

    // ================================================================ socialized loss

    /// @inheritdoc IAutoDeleverager
    function socializeLoss(bytes32 marketId, address bankrupt, ProofNode[] calldata proof) external nonReentrant {
        AdlSessionLib.socializeLoss(_adl, clearinghouse, marketId, bankrupt, proof);
    }

    /// @inheritdoc IAutoDeleverager
    function unsettledSince(bytes32 marketId, address account) external view returns (uint256) {
        return _adl.unsettledSince[marketId][account];
    }

    /// @inheritdoc IAutoDeleverager
    function socialDelay(bytes32 marketId) external view returns (uint256) {
        return AdlStorage.socialDelay(_adl.config[marketId]);
    }

    // ================================================================ unsettled positions

    /// @inheritdoc IAutoDeleverager
    function reportUnsettled(bytes32 marketId, address account) external nonReentrant {
        AdlSessionLib.reportUnsettled(_adl, clearinghouse, marketId, account, _currentDeficit(marketId, account));
    }

    /// @inheritdoc IAutoDeleverager
    function clearUnsettled(bytes32 marketId, address account) external nonReentrant {
        AdlSessionLib.clearUnsettled(_adl, marketId, account, _currentDeficit(marketId, account));
    }

    /// @inheritdoc IAutoDeleverager
    function unsettled(bytes32 marketId) external view returns (address[] memory accounts, uint256[] memory deficits) {
        accounts = _adl.unsettled[marketId];
        deficits = new uint256[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) deficits[i] = _currentDeficit(marketId, accounts[i]);
    }

    // ================================================================ views

    /// @inheritdoc IAutoDeleverager
    function adlScore(bytes32 marketId, address account) external view returns (bool minusInfinity, int256 score) {
        IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, account);
        (uint256 price, ) = clearinghouse.oracle().getPrice(marketId, false);
        int256 x = PositionMath.pnlPerUnit(p.isLong, p.entry, price, lens.currentSideFunding(marketId, p.isLong));
        return ScoreMath.score(p.leverage, x, price);
    }

    /// @inheritdoc IAutoDeleverager
    function adlDelta(bytes32 marketId, address bankrupt) external view returns (uint256 delta, uint256 sigma) {
        IClearinghouseTypes.Position memory b = clearinghouse.getPosition(marketId, bankrupt);
        if (b.size == 0) return (0, 0);
        (uint256 price, ) = clearinghouse.oracle().getPrice(marketId, false);
        int256 eq = AdlSettlement.equityAt(b, price, lens.currentSideFunding(marketId, b.isLong));
        if (eq >= 0) return (0, 0);
        (sigma, delta) = AdlSettlement.subsidyAndLoss(uint256(-eq), clearinghouse.fundAvailable(), b.size);
    }

    /// @notice Most entries a list may have.
    function maxListLength() external view returns (uint256) {
        return _adl.maxListLength;
    }

    /// @notice Most nodes a proof (or one session call) may have.
    function maxProofNodes() external view returns (uint256) {
        return _adl.maxProofNodes;
    }

    /// @notice Most members all opened leaves of one proof (or one session call) may list together.
    function maxOpenedMembers() external view returns (uint256) {
        return _adl.maxOpenedMembers;
    }

    /// @notice The node record at (`level`, `position`) of a tree.
    function nodeAt(
        bytes32 marketId,
        bool isLong,
        uint256 level,
        uint256 position
    ) external view returns (RankTree.Node memory) {
        return RankTree.node(_adl.trees[marketId][isLong], RankTree.heapIndex(level, position));
    }

    /// @notice The reference exponent of `marketId`'s K bands (see RankTree.bandOf).
    function kRef(bytes32 marketId) external view returns (uint8) {
        return _adl.config[marketId].kRef;
    }

    /// @notice The session bond of `marketId` and the pay per member verified (18-decimal quote).
    function sessionTerms(bytes32 marketId) external view returns (uint256 bond, uint256 memberPay) {
        AdlStorage.SessionTerms memory t = _adl.sessionTerms[marketId];
        return (t.bond, t.memberPay);
    }

    /// @inheritdoc IRankIndex
    function sessionReserve(bytes32 marketId, address account) external view returns (address fund, bytes32 key) {
        bool side = !clearinghouse.getPosition(marketId, account).isLong;
        AdlStorage.Session storage s = _adl.sessions[marketId][side];
        if (s.id != 0 && s.bankrupt == account) return (s.reserveFund, AdlStorage.reserveKey(marketId, side, s.id));
    }

    /// @notice The session time `T` of `marketId`, in seconds.
    function sessionTtl(bytes32 marketId) external view returns (uint256) {
        return AdlStorage.ttl(_adl.config[marketId]);
    }

    /// @inheritdoc IAutoDeleverager
    function adlSession(bytes32 marketId, bool side) external view returns (SessionInfo memory info) {
        AdlStorage.Session storage s = _adl.sessions[marketId][side];
        if (s.id == 0) return info;
        info.id = s.id;
        info.bankrupt = s.bankrupt;
        info.openedAt = s.openedAt;
        info.deadline = s.deadline;
        info.cursor = s.cursor;
        info.held = s.held;
        info.heldLast = s.heldLast;
        info.heldTally = s.heldTally;
        info.holder = s.holder;
        info.holdUntil = s.holdUntil;
        info.price = s.price;
        info.funding = s.funding;
        info.sigma = s.sigma;
        info.delta = s.delta;
        info.lastScore = s.lastScore;
        info.lastAccount = s.lastAccount;
        info.reserveTokens = s.reserveTokens;
        info.opener = s.opener;
        info.bondTokens = s.bondTokens;
        info.listed = s.entries;
    }

    // ================================================================ internals

    /// @dev The deficit of `account` at the current price and funding (virtual accrual); 0 if none.
    function _currentDeficit(bytes32 marketId, address account) private view returns (uint256) {
        IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, account);
        if (p.size == 0) return 0;
        (uint256 price, ) = clearinghouse.oracle().getPrice(marketId, false);
        int256 eq = AdlSettlement.equityAt(p, price, lens.currentSideFunding(marketId, p.isLong));
        return eq < 0 ? uint256(-eq) : 0;
    }

    function _sessionOpen(AdlStorage.MarketConfig memory cfg, bool side) private pure returns (bool) {
        return side ? cfg.sessionLong : cfg.sessionShort;
    }

    /// @dev The session guard (docs/mechanism.md section 4) for a change that leaves `account` open on the
    /// side of an open session: reindex runs only for non-reductions there (a reduction keeps a, K
    /// and the leaf), so the change reverts if the position is listed, or if, unlisted, it would be
    /// eligible and rank above the last live entry at the pinned values. A join to the held leaf
    /// below its last verified address counts as verified (the check just passed).
    function _guard(bytes32 marketId, address account, bool side, uint256 leaf, uint256 a, int256 k) private {
        AdlStorage.Session storage s = _adl.sessions[marketId][side];
        if (AdlCall.isSessionListed(s.id, account)) revert AdlPending(marketId, account);
        IClearinghouseTypes.Position memory p;
        p.isLong = side;
        p.leverage = uint128(a);
        p.entry = int128(k);
        if (AdlCall.outranksLast(AdlCall.sessionCall(marketId, side, s), account, p))
            revert AdlPending(marketId, account);
        if (s.held && leaf == s.cursor && account <= s.heldLast) ++s.heldTally;
    }

    /// @dev A member leaving the held leaf below its last verified address: one fewer verified
    /// (saturating at 0, which only ever undercounts, so completion stays sound).
    function _leaveHeldLeaf(AdlStorage.Session storage s, address account, uint256 oldLeaf) private {
        if (s.held && oldLeaf == s.cursor && account <= s.heldLast && s.heldTally != 0) --s.heldTally;
    }

    /// @dev While a session or a split refresh is pending in the market: the guard, the held leaf's
    /// tally and the refresh's tally (see `_guard`, `_leaveHeldLeaf`, `_leaveRefresh`, `_joinRefresh`).
    function _slowPath(
        bytes32 marketId,
        address account,
        bool wasOpen,
        bool wasLong,
        uint16 oldLeaf,
        bool isOpen,
        bool isLong,
        uint16 leaf,
        uint256 a,
        int256 k
    ) private {
        AdlStorage.MarketConfig memory cfg = _adl.config[marketId];
        if (wasOpen && (wasLong ? cfg.refreshesLong : cfg.refreshesShort) != 0) {
            _leaveRefresh(marketId, wasLong, oldLeaf, account);
        }
        if (isOpen && (isLong ? cfg.refreshesLong : cfg.refreshesShort) != 0) {
            _joinRefresh(marketId, isLong, leaf, account, a, k);
        }
        if (isOpen && (isLong ? cfg.sessionLong : cfg.sessionShort)) _guard(marketId, account, isLong, leaf, a, k);
        if (wasOpen && (wasLong ? cfg.sessionLong : cfg.sessionShort)) {
            _leaveHeldLeaf(_adl.sessions[marketId][wasLong], account, oldLeaf);
        }
    }

    /// @dev A member at or below the last address of a split refresh of its old leaf leaves or
    /// changes: the merged aggregates would keep its old values, so the refresh is cancelled.
    function _leaveRefresh(bytes32 marketId, bool side, uint256 oldLeaf, address account) private {
        AdlStorage.LeafRefresh storage r = _adl.leafRefreshes[marketId][side][oldLeaf];
        if (!r.active || account > r.last) return;
        delete _adl.leafRefreshes[marketId][side][oldLeaf];
        AdlStorage.MarketConfig storage cfg = _adl.config[marketId];
        if (side) --cfg.refreshesLong;
        else --cfg.refreshesShort;
    }

    /// @dev A position joins a leaf with a split refresh below its last address: merged and counted.
    function _joinRefresh(bytes32 marketId, bool side, uint256 leaf, address account, uint256 a, int256 k) private {
        AdlStorage.LeafRefresh storage r = _adl.leafRefreshes[marketId][side][leaf];
        if (!r.active || account > r.last) return;
        RankTree.update(_adl.refreshScratch[marketId][side], side, leaf, a, k);
        ++r.tally;
    }
}
