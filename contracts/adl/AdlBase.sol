// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAdlTypes} from "../interfaces/IAdlTypes.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {ClearinghouseLens} from "../periphery/ClearinghouseLens.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {ScoreMath} from "../libraries/ScoreMath.sol";
import {RankTree} from "../libraries/RankTree.sol";

/// @title AdlBase
/// @notice The whole storage layout of the deleverager and the ADL engine both settlement paths
/// share: pinning (P, F, sigma, delta), the list walk, tile verification of the completeness proof
/// (whole or resumable), and execution through `Clearinghouse.settleDeleverage`.
/// @dev `AutoDeleverager` (the rank index, single-transaction `deleverage`) and `AdlSessions`
/// (multi-transaction sessions, run by DELEGATECALL from the deleverager) both derive from this
/// contract and declare no storage of their own, so their layouts are identical by construction;
/// both are built with the same constructor arguments, so their immutables agree.
abstract contract AdlBase is IAdlTypes, AccessControl, ReentrancyGuardTransient {
    using FixedPointMath for uint256;

    /// @notice Configures markets' band references, work bounds and session times.
    bytes32 public constant ADL_ADMIN_ROLE = keccak256("ADL_ADMIN_ROLE");
    /// @notice Session time `T` of a market that never set one.
    uint32 public constant DEFAULT_SESSION_TTL = 30 minutes;
    /// @notice Least `T`: enough blocks to land a proof split over many transactions.
    uint32 public constant MIN_SESSION_TTL = 2 minutes;
    /// @notice Largest `T`: a Chainlink heartbeat is at most a day; T stays within it.
    uint32 public constant MAX_SESSION_TTL = 1 days;
    /// @notice How long a leaf split across calls (a session's held leaf or a split refresh) stays
    /// reserved to the account whose chunk holds it. Without it anyone could restart a held leaf and
    /// undo an honest keeper's chunks; with it, a hold that skipped a member (so the leaf can never
    /// complete) is restarted by anyone once it lapses. A new hold gets the window; the holder's next
    /// chunk renews it only if it lists at least a quarter of `maxOpenedMembers`, so the window cannot
    /// be kept alive by listing one member at a time (nor by the holder restarting it).
    uint32 public constant HOLD_WINDOW = 1 minutes;
    uint256 internal constant WAD = FixedPointMath.WAD;
    /// @dev Transient-storage namespace of the per-call list marks of single-transaction calls.
    bytes32 internal constant MARK_NAMESPACE = keccak256("adl.deleverager.listed");
    /// @dev Storage namespace of the persistent list marks of sessions (keyed by session id, so a
    /// new session never sees an old one's marks and nothing needs clearing).
    bytes32 internal constant SESSION_MARK_NAMESPACE = keccak256("adl.deleverager.sessionListed");

    /// @notice The clearinghouse whose positions are indexed.
    Clearinghouse public immutable clearinghouse;
    /// @notice Views that accrue funding virtually (for `adlScore` and `adlDelta`).
    ClearinghouseLens public immutable lens;

    /// @dev Per-market settings and session flags in ONE slot, so `reindex` (inside every trade)
    /// reads the band reference and learns whether a session guards either side with one SLOAD.
    struct MarketConfig {
        uint8 kRef; // reference exponent of the K bands (see RankTree.bandOf)
        bool sessionLong; // a session settles against the longs
        bool sessionShort; // a session settles against the shorts
        uint32 sessionTtl; // T in seconds (0: DEFAULT_SESSION_TTL)
        uint16 refreshesLong; // leaf refreshes split across calls, pending in the long tree
        uint16 refreshesShort; // and in the short tree
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

    /// @dev One open session (DESIGN.md section 4). Slot 0 and 1 are what the guard reads first.
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
        address holder; // the held leaf's holder, alone allowed to continue it until holdUntil
        uint64 holdUntil;
        address bankrupt;
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

    /// @dev What one settlement fixes: one (P, F), delta and the last live entry's key.
    struct Call {
        bytes32 marketId;
        bool side; // the counterparties' side: true for longs
        uint256 price;
        int256 funding;
        uint256 delta;
        uint256 callId; // transient marks of a single-transaction call
        uint256 sessionId; // persistent marks of a session (0: none)
        int256 lastScore;
        address lastAccount;
    }

    /// @dev Where tile verification stands: the next leaf, members opened in this call, and a
    /// leaf split across calls (members up to `heldLast` verified, `tally` of them live).
    struct Progress {
        uint256 cursor;
        uint256 opened;
        bool held;
        address heldLast;
        uint256 tally;
        bool restarted; // the held leaf was listed again from its first member
        uint256 chunk; // live members listed in the chunk left held
    }

    mapping(bytes32 marketId => MarketConfig) internal _config;
    /// @notice Most entries a list may have.
    uint256 public maxListLength = 64;
    /// @notice Most nodes a proof (or one session call) may have.
    uint256 public maxProofNodes = 512;
    /// @notice Most members all opened leaves of one proof (or one session call) may list together.
    uint256 public maxOpenedMembers = 2000;
    mapping(bytes32 marketId => mapping(bool isLong => RankTree.Tree)) internal _trees;
    /// @dev Unsettled bankrupt positions per market, and each one's index + 1 in that list.
    mapping(bytes32 marketId => address[]) internal _unsettled;
    mapping(bytes32 marketId => mapping(address account => uint256)) internal _unsettledSlot;
    /// @dev The open session per (market, counterparty side).
    mapping(bytes32 marketId => mapping(bool side => Session)) internal _sessions;
    /// @dev Last session id handed out.
    uint256 internal _sessionNonce;
    /// @dev Pending split leaf refreshes per (market, side, leaf).
    mapping(bytes32 marketId => mapping(bool isLong => mapping(uint256 leaf => LeafRefresh))) internal _leafRefreshes;
    /// @dev Where a split leaf refresh accumulates its members' aggregates (the leaf's own index in a
    /// scratch tree whose parent is set to dominate everything, so a merge stops at the leaf).
    mapping(bytes32 marketId => mapping(bool isLong => RankTree.Tree)) internal _refreshScratch;
    /// @dev Counts deleverage calls within a transaction, so list marks never leak between calls.
    uint256 internal transient _callNonce;

    constructor(Clearinghouse clearinghouse_, ClearinghouseLens lens_) {
        clearinghouse = clearinghouse_;
        lens = lens_;
    }

    // ================================================================ pinning

    /// @dev Accrues funding once, reads one strict price, and fixes delta for `bankrupt`; reverts
    /// unless it is bankrupt and the fund falls short. Returns the call, B and (D, min(A, D)).
    function _pin(
        bytes32 marketId,
        address bankrupt
    ) internal returns (Call memory c, IClearinghouseTypes.Position memory b, uint256 deficit, uint256 covered) {
        clearinghouse.accrueFunding(marketId);
        c.marketId = marketId;
        (c.price, ) = clearinghouse.oracle().getPrice(marketId, true);
        c.funding = clearinghouse.marketState(marketId).cumulativeFunding;
        b = clearinghouse.getPosition(marketId, bankrupt);
        (deficit, covered) = _deficitAndCover(marketId, bankrupt, b, c.price, c.funding);
        // sigma = floor(min(A, D) * W / q), delta = ceil(D * W / q) - sigma > 0.
        c.delta = deficit.mulDivUp(WAD, b.size) - covered.mulDivDown(WAD, b.size);
        c.side = !b.isLong;
    }

    /// @dev D and min(A, D) at (P, F); reverts unless bankrupt and the fund falls short.
    function _deficitAndCover(
        bytes32 marketId,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        uint256 price,
        int256 funding
    ) internal view returns (uint256 deficit, uint256 covered) {
        int256 eq = _equityAt(b, price, funding);
        if (eq >= 0) revert AdlNotBankrupt(marketId, bankrupt, eq);
        deficit = uint256(-eq);
        uint256 available = _fundAvailable();
        if (available >= deficit) revert AdlFundSufficient(deficit, available);
        covered = available;
    }

    function _equityAt(
        IClearinghouseTypes.Position memory b,
        uint256 price,
        int256 funding
    ) internal pure returns (int256) {
        if (b.size == 0) return 0;
        return PositionMath.equity(b.margin, b.size, PositionMath.pnlPerUnit(b.isLong, b.entry, price, funding));
    }

    // ================================================================ the list

    /// @dev Walks the list before any state changes (DESIGN.md section 3, step 2): marks each live
    /// entry and returns its take and score; sets the call's last live entry.
    function _walkList(
        Call memory c,
        address bankrupt,
        uint256 remaining,
        address[] calldata list
    ) internal returns (IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores) {
        if (list.length > maxListLength) revert AdlListTooLong(list.length, maxListLength);
        legs = new IClearinghouseTypes.DeleverageLeg[](list.length);
        scores = new int256[](list.length);
        uint256 live;
        for (uint256 i; i < list.length; ++i) {
            address account = list[i];
            if (account == bankrupt) revert AdlEntryIsBankrupt(account);
            IClearinghouseTypes.Position memory p = clearinghouse.getPosition(c.marketId, account);
            if (p.size == 0) continue; // closed since the keeper built the list
            int256 score = _checkEntry(c, account, p, live == 0);
            if (remaining == 0) revert AdlListPadded(account);
            uint256 take = remaining < p.size ? remaining : p.size;
            remaining -= take;
            _mark(c, account);
            legs[live] = IClearinghouseTypes.DeleverageLeg(account, take, 0);
            scores[live] = score;
            c.lastScore = score;
            c.lastAccount = account;
            ++live;
        }
        if (live == 0) revert AdlNoLiveEntry();
        assembly ("memory-safe") {
            mstore(legs, live)
            mstore(scores, live)
        }
    }

    /// @dev A live entry: opposite side, not yet listed, finite score, eligible, ranked below the
    /// previous live entry. Returns its score.
    function _checkEntry(
        Call memory c,
        address account,
        IClearinghouseTypes.Position memory p,
        bool first
    ) private view returns (int256 score) {
        if (p.isLong != c.side) revert AdlEntrySameSide(account);
        if (_isMarked(c, account)) revert AdlEntryDuplicate(account);
        bool minusInf;
        (minusInf, score) = _scoreOf(c, p);
        if (minusInf) revert AdlEntryNotFinite(account);
        if (!_eligible(c, p)) revert AdlEntryIneligible(account);
        if (!first && !ScoreMath.ranksBelow(score, false, account, c.lastScore, false, c.lastAccount)) {
            revert AdlListOrder(c.lastAccount, account);
        }
    }

    // ================================================================ the completeness proof

    /// @dev Verifies `proof`'s tiles from `g.cursor` (DESIGN.md section 4): each node starts at the
    /// cursor and is empty, bounded strictly below the last live entry, wholly ineligible, or an
    /// opened leaf whose every live member is listed, ranks below the last entry, or is ineligible.
    /// With `resumable`, the last node may be a leaf listed only in part (held in `g`), and a held
    /// leaf must be resumed first; otherwise every opened leaf must be complete.
    function _verifyTiles(Call memory c, ProofNode[] calldata proof, Progress memory g, bool resumable) internal view {
        if (proof.length > maxProofNodes) revert AdlProofTooLong(proof.length, maxProofNodes);
        RankTree.Tree storage t = _trees[c.marketId][c.side];
        for (uint256 i; i < proof.length; ++i) {
            ProofNode calldata n = proof[i];
            uint256 level = n.level;
            uint256 heap = RankTree.heapIndex(level, n.position);
            if (g.held && (level != 0 || n.position != g.cursor || !n.open)) revert AdlHeldLeaf(g.cursor);
            if (uint256(n.position) << level != g.cursor) revert AdlProofGap(level, n.position, g.cursor);
            RankTree.Node memory node = RankTree.node(t, heap);
            if (n.open) {
                if (level != 0) revert AdlOpenedNotLeaf(level, n.position);
                _openLeaf(c, n, node.count, g, resumable && i == proof.length - 1);
            } else {
                if (!_prunable(c, node)) revert AdlNodeNotPrunable(level, n.position);
                g.cursor += 1 << level;
            }
        }
    }

    /// @dev An opened leaf with `count` members: complete (the cursor moves on), or, when `mayHold`
    /// (the last node of a session call), a partial chunk that leaves the leaf held. A held leaf listed
    /// again from a member at or below its last address restarts (tally and last address reset): a
    /// hold that skipped a member could otherwise never reach the count.
    function _openLeaf(
        Call memory c,
        ProofNode calldata n,
        uint256 count,
        Progress memory g,
        bool mayHold
    ) private view {
        uint256 listed = n.members.length;
        g.opened += listed;
        if (g.opened > maxOpenedMembers) revert AdlOpenedMembersTooMany(g.opened, maxOpenedMembers);
        if (!g.held) (g.heldLast, g.tally) = (address(0), 0);
        else if (listed != 0 && n.members[0] <= g.heldLast) (g.heldLast, g.tally, g.restarted) = (address(0), 0, true);
        (uint256 tally, address last) = _checkLeaf(c, n.position, n.members, g.heldLast, g.tally);
        if (tally == count) {
            (g.held, g.cursor) = (false, g.cursor + 1);
        } else if (mayHold && tally < count) {
            // A partial chunk lists live members only, at least one: a non-member would move the
            // last address past members nobody listed.
            if (listed == 0 || tally - g.tally != listed) revert AdlPartialChunk(n.position);
            (g.held, g.heldLast, g.tally, g.chunk) = (true, last, tally, listed);
        } else {
            revert AdlLeafCountMismatch(n.position, tally, count);
        }
    }

    /// @dev Empty, wholly ineligible, or bound S_fin(max a, best K) strictly below the last entry.
    function _prunable(Call memory c, RankTree.Node memory node) private pure returns (bool) {
        if (node.maxA == 0) return true;
        if (!ScoreMath.keyCovers(c.side, node.maxE, c.price, c.funding, c.delta)) return true;
        return ScoreMath.nodeBound(node.maxA, node.bestK, c.side, c.price, c.funding) < c.lastScore;
    }

    /// @dev Checks `members` of `leaf` (ascending, above `after_`): each live one is listed, ranks
    /// below the last entry or is ineligible. Returns `tally` plus the live ones, and the last
    /// address listed (`after_` if none).
    function _checkLeaf(
        Call memory c,
        uint256 leaf,
        address[] calldata members,
        address after_,
        uint256 tally
    ) private view returns (uint256, address) {
        for (uint256 j; j < members.length; ++j) {
            address m = members[j];
            if (m <= after_) revert AdlMembersNotAscending(after_, m);
            after_ = m;
            // Each member's position is decoded into fresh memory; nothing of it outlives the
            // iteration, so the free memory pointer goes back: the cost per member stays flat
            // instead of growing with memory expansion (quadratic in a big opened leaf).
            uint256 freeMemory;
            assembly {
                freeMemory := mload(0x40)
            }
            if (_isLiveMember(c, leaf, m)) ++tally;
            assembly {
                mstore(0x40, freeMemory)
            }
        }
        return (tally, after_);
    }

    /// @dev Whether `m` is a live member of `leaf` (stored side and leaf; members that closed or
    /// moved are skipped); reverts if it is unlisted, eligible and ranks above the last entry.
    function _isLiveMember(Call memory c, uint256 leaf, address m) private view returns (bool) {
        IClearinghouseTypes.Position memory p = clearinghouse.getPosition(c.marketId, m);
        if (p.size == 0 || p.isLong != c.side || p.leaf != leaf) return false;
        if (!_isMarked(c, m) && _outranksLast(c, m, p)) revert AdlMemberOutranks(m);
        return true;
    }

    /// @dev Whether `p` is eligible and ranks above the last live entry at the call's values: the
    /// one thing completeness forbids of an unlisted position.
    function _outranksLast(
        Call memory c,
        address account,
        IClearinghouseTypes.Position memory p
    ) internal pure returns (bool) {
        if (!_eligible(c, p)) return false;
        (bool minusInf, int256 score) = _scoreOf(c, p);
        return !ScoreMath.ranksBelow(score, minusInf, account, c.lastScore, false, c.lastAccount);
    }

    // ================================================================ execution

    /// @dev Step 4: the fund pays `fundPays`; the counterparties owe R = -(booked equity of B's
    /// closed part at (P, F)) - fund payment, each ceil(R * d_i / d); the clearinghouse settles.
    function _execute(
        Call memory c,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        IClearinghouseTypes.DeleverageLeg[] memory legs,
        int256[] memory scores,
        uint256 d,
        uint256 fundPays
    ) internal {
        uint256 owed = _owed(c, b, d, fundPays);
        for (uint256 i; i < legs.length; ++i) {
            IClearinghouseTypes.DeleverageLeg memory leg = legs[i];
            leg.charge = owed.mulDivUp(leg.take, d);
            emit CounterpartyDeleveraged(
                c.marketId,
                bankrupt,
                leg.account,
                leg.take,
                c.price,
                scores[i],
                i,
                leg.charge
            );
        }
        clearinghouse.settleDeleverage(c.marketId, bankrupt, legs, fundPays, msg.sender);
        emit DeleverageExecuted(c.marketId, bankrupt, d, fundPays, owed, b.size - d, c.delta);
    }

    /// @dev R = -(booked equity of B's closed part) - fund payment, floored at zero.
    function _owed(
        Call memory c,
        IClearinghouseTypes.Position memory b,
        uint256 d,
        uint256 fundPays
    ) private pure returns (uint256) {
        int256 closedEquity = int256(PositionMath.releasedMargin(b.margin, d, b.size)) +
            PositionMath.pnlDown(d, PositionMath.pnlPerUnit(b.isLong, b.entry, c.price, c.funding));
        int256 owed = -closedEquity - int256(fundPays);
        return owed > 0 ? uint256(owed) : 0;
    }

    /// @dev After a settlement of `d` of `bankrupt`: it leaves the unsettled list once closed, and
    /// a partly settled position stays visible with its remaining deficit share.
    function _syncUnsettled(bytes32 marketId, address bankrupt, uint256 deficit, uint256 size, uint256 d) internal {
        if (clearinghouse.getPosition(marketId, bankrupt).size == 0) _removeUnsettled(marketId, bankrupt);
        else _addUnsettled(marketId, bankrupt, deficit - deficit.mulDivDown(d, size));
    }

    // ================================================================ helpers

    /// @dev Equity per unit floor(W*W/a) + x covers delta (from the stored, rounded-up a).
    function _eligible(Call memory c, IClearinghouseTypes.Position memory p) internal pure returns (bool) {
        return ScoreMath.isEligible(c.side, p.leverage, p.entry, c.price, c.funding, c.delta);
    }

    function _scoreOf(Call memory c, IClearinghouseTypes.Position memory p) internal pure returns (bool, int256) {
        return ScoreMath.score(p.leverage, PositionMath.pnlPerUnit(p.isLong, p.entry, c.price, c.funding), c.price);
    }

    /// @dev What the fund can pay now: its available tokens (reserves excluded) plus fees not yet
    /// swept (as the clearinghouse counts it).
    function _fundAvailable() internal view returns (uint256) {
        address fund = clearinghouse.insuranceFund();
        uint256 tokens = fund == address(0) ? 0 : IInsuranceFund(fund).available();
        return clearinghouse.pendingFundFees() + tokens * clearinghouse.collateralScale();
    }

    /// @dev The session's T: configured, or the default.
    function _ttl(MarketConfig memory cfg) internal pure returns (uint256) {
        return cfg.sessionTtl == 0 ? DEFAULT_SESSION_TTL : cfg.sessionTtl;
    }

    function _addUnsettled(bytes32 marketId, address account, uint256 deficit) internal {
        if (_unsettledSlot[marketId][account] != 0) return;
        _unsettled[marketId].push(account);
        _unsettledSlot[marketId][account] = _unsettled[marketId].length;
        emit UnsettledAdded(marketId, account, deficit);
    }

    function _removeUnsettled(bytes32 marketId, address account) internal {
        uint256 slot = _unsettledSlot[marketId][account];
        if (slot == 0) return;
        address[] storage list = _unsettled[marketId];
        address last = list[list.length - 1];
        list[slot - 1] = last;
        _unsettledSlot[marketId][last] = slot;
        list.pop();
        delete _unsettledSlot[marketId][account];
        emit UnsettledRemoved(marketId, account);
    }

    /// @dev Marks `account` as listed: in transient storage for a single-transaction call, in
    /// storage under the session id for a session.
    function _mark(Call memory c, address account) internal {
        if (c.sessionId != 0) {
            bytes32 slot = _sessionMarkSlot(c.sessionId, account);
            assembly ("memory-safe") {
                sstore(slot, 1)
            }
        } else {
            bytes32 slot = keccak256(abi.encode(MARK_NAMESPACE, c.callId, account));
            assembly ("memory-safe") {
                tstore(slot, 1)
            }
        }
    }

    function _isMarked(Call memory c, address account) internal view returns (bool marked) {
        if (c.sessionId != 0) return _isSessionListed(c.sessionId, account);
        bytes32 slot = keccak256(abi.encode(MARK_NAMESPACE, c.callId, account));
        assembly ("memory-safe") {
            marked := tload(slot)
        }
    }

    function _isSessionListed(uint256 sessionId, address account) internal view returns (bool marked) {
        bytes32 slot = _sessionMarkSlot(sessionId, account);
        assembly ("memory-safe") {
            marked := sload(slot)
        }
    }

    function _sessionMarkSlot(uint256 sessionId, address account) private pure returns (bytes32) {
        return keccak256(abi.encode(SESSION_MARK_NAMESPACE, sessionId, account));
    }

    /// @dev The call a session pinned, rebuilt from storage.
    function _sessionCall(bytes32 marketId, bool side, Session storage s) internal view returns (Call memory c) {
        c.marketId = marketId;
        c.side = side;
        c.price = s.price;
        c.funding = s.funding;
        c.delta = s.delta;
        c.sessionId = s.id;
        c.lastScore = s.lastScore;
        c.lastAccount = s.lastAccount;
    }
}
