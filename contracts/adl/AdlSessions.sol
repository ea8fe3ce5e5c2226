// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IFundReserves} from "../interfaces/IFundReserves.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {OracleAdapter} from "../oracle/OracleAdapter.sol";
import {ClearinghouseLens} from "../periphery/ClearinghouseLens.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {RankTree} from "../libraries/RankTree.sol";
import {AdlBase} from "./AdlBase.sol";

/// @title AdlSessions
/// @notice Multi-transaction ADL (DESIGN.md section 4): a session pins (P, F, sigma, delta) and the
/// list, verifies the completeness proof over several calls (a big leaf over several calls too)
/// while the deleverager's `reindex` guards every verified tile, and settles at the pinned subsidy
/// on current sizes. It lives in its own contract to keep the deleverager under the 24 KB limit,
/// and runs only by DELEGATECALL from the deleverager, on its storage and under its reentrancy lock.
contract AdlSessions is AdlBase {
    using FixedPointMath for uint256;

    address private immutable _self;

    /// @dev Built by the deleverager's constructor with the deleverager's own arguments.
    constructor(Clearinghouse clearinghouse_, ClearinghouseLens lens_) AdlBase(clearinghouse_, lens_) {
        _self = address(this);
    }

    /// @dev Called directly this contract would act on its own, empty storage: refuse.
    modifier onlyDelegated() {
        if (address(this) == _self) revert AdlModuleDirectCall();
        _;
    }

    /// @notice See IAutoDeleverager.openAdlSession.
    function openAdlSession(
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties
    ) external nonReentrant onlyDelegated returns (uint256 sessionId) {
        address fund = clearinghouse.insuranceFund();
        // Whole tokens of unswept fees move into the fund first (what the fund can pay is the same
        // before and after), so the reserve can hold nearly all of sigma * q_B in tokens.
        if (fund != address(0)) clearinghouse.sweepFundFees();
        (Call memory c, IClearinghouseTypes.Position memory b, uint256 deficit, uint256 covered) = _pin(
            marketId,
            bankrupt
        );
        MarketConfig storage cfg = _config[marketId];
        if (c.side ? cfg.sessionLong : cfg.sessionShort) revert AdlSessionActive(marketId, c.side);
        sessionId = ++_sessionNonce;
        c.sessionId = sessionId;
        (IClearinghouseTypes.DeleverageLeg[] memory legs, ) = _walkList(c, bankrupt, b.size, counterparties);
        if (c.side) cfg.sessionLong = true;
        else cfg.sessionShort = true;
        // T, and never more than the feed's heartbeat (the pinned round is never older than that).
        uint256 ttl = _ttl(cfg);
        uint256 heartbeat = _heartbeat(marketId);
        if (heartbeat != 0 && heartbeat < ttl) ttl = heartbeat;
        _record(c, bankrupt, b, covered.mulDivDown(WAD, b.size), legs, ttl);
        _addUnsettled(marketId, bankrupt, deficit);
    }

    /// @notice See IAutoDeleverager.continueAdlSession.
    function continueAdlSession(
        bytes32 marketId,
        bool side,
        ProofNode[] calldata proof
    ) external nonReentrant onlyDelegated {
        Session storage s = _openSession(marketId, side);
        _requireBeforeDeadline(s);
        (uint256 cursor, bool wasHeld, address holder) = (s.cursor, s.held, s.holder);
        if (wasHeld && msg.sender != holder && block.timestamp <= s.holdUntil) {
            revert AdlLeafReserved(cursor, holder, s.holdUntil);
        }
        Progress memory g = Progress(cursor, 0, wasHeld, s.heldLast, s.heldTally, false, 0);
        _verifyTiles(_sessionCall(marketId, side, s), proof, g, true);
        s.cursor = uint32(g.cursor);
        s.held = g.held;
        s.heldLast = g.heldLast;
        s.heldTally = uint64(g.tally);
        if (!g.held) (s.holder, s.holdUntil) = (address(0), 0);
        else if (_renewsHold(!wasHeld || g.cursor != cursor || msg.sender != holder, g.restarted ? 0 : g.chunk)) {
            (s.holder, s.holdUntil) = (msg.sender, uint64(block.timestamp + HOLD_WINDOW));
        }
        emit AdlSessionContinued(marketId, side, s.id, g.cursor, g.held, g.tally, g.opened);
    }

    /// @notice See IAutoDeleverager.finishAdlSession.
    function finishAdlSession(bytes32 marketId, bool side) external nonReentrant onlyDelegated {
        Session storage s = _openSession(marketId, side);
        _requireBeforeDeadline(s);
        if (s.cursor != RankTree.LEAVES || s.held) revert AdlSessionIncomplete(s.cursor, s.held);
        Call memory c = _sessionCall(marketId, side, s);
        (address bankrupt, uint256 sigma, address[] memory entries) = (s.bankrupt, s.sigma, s.entries);
        bool pinned = _isPinnedPosition(s, clearinghouse.getPosition(marketId, bankrupt));
        uint256 id = s.id;
        // End first (flags, storage, reserve back into what the fund can pay), then settle.
        _end(marketId, side, s);
        emit AdlSessionFinished(marketId, side, id, pinned ? _settle(c, bankrupt, sigma, entries) : 0);
    }

    /// @notice See IAutoDeleverager.challengeAdlSession.
    function challengeAdlSession(bytes32 marketId, bool side, address account) external nonReentrant onlyDelegated {
        Session storage s = _openSession(marketId, side);
        IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, account);
        if (
            p.size == 0 ||
            p.isLong != side ||
            _isSessionListed(s.id, account) ||
            !_outranksLast(_sessionCall(marketId, side, s), account, p)
        ) revert AdlChallengeRejected(account);
        uint256 id = s.id;
        _end(marketId, side, s);
        emit AdlSessionChallenged(marketId, side, id, account, msg.sender);
    }

    /// @notice See IAutoDeleverager.expireAdlSession.
    function expireAdlSession(bytes32 marketId, bool side) external nonReentrant onlyDelegated {
        Session storage s = _openSession(marketId, side);
        if (block.timestamp <= s.deadline) revert AdlSessionNotExpired(s.deadline, block.timestamp);
        uint256 id = s.id;
        _end(marketId, side, s);
        emit AdlSessionExpired(marketId, side, id);
    }

    /// @notice See IAutoDeleverager.refreshLeafChunk.
    function refreshLeafChunk(
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        address[] calldata members
    ) external nonReentrant onlyDelegated {
        uint256 index = RankTree.heapIndex(0, leaf);
        LeafRefresh storage r = _leafRefreshes[marketId][isLong][leaf];
        bool renews = _claimRefresh(marketId, isLong, leaf, index, members);
        (address last, uint256 tally) = _mergeChunk(marketId, isLong, leaf, members, r.last);
        tally += r.tally;
        RankTree.Tree storage t = _trees[marketId][isLong];
        uint256 count = RankTree.node(t, index).count;
        if (tally > count) revert AdlLeafCountMismatch(leaf, tally, count);
        if (tally < count) {
            if (members.length == 0) revert AdlPartialChunk(leaf);
            (r.last, r.tally) = (last, uint64(tally));
            if (renews) {
                (r.holder, r.holdUntil) = (msg.sender, uint64(block.timestamp + HOLD_WINDOW));
            }
            emit LeafRefreshChunk(marketId, isLong, leaf, last, tally, count);
            return;
        }
        // Every current member is merged (and none changed since): the exact leaf, count kept.
        t.words[index] = RankTree.word(_refreshScratch[marketId][isLong], index) | count;
        delete _leafRefreshes[marketId][isLong][leaf];
        MarketConfig storage cfg = _config[marketId];
        if (isLong) --cfg.refreshesLong;
        else --cfg.refreshesShort;
        emit NodeRefreshed(marketId, isLong, 0, leaf);
    }

    /// @notice See AutoDeleverager.setSessionTtl: within [MIN_SESSION_TTL, MAX_SESSION_TTL] and at
    /// most the market feed's heartbeat. Applies to sessions opened afterwards.
    function setSessionTtl(bytes32 marketId, uint32 ttlSeconds) external onlyDelegated onlyRole(ADL_ADMIN_ROLE) {
        uint256 heartbeat = _heartbeat(marketId);
        if (ttlSeconds < MIN_SESSION_TTL || ttlSeconds > MAX_SESSION_TTL || (heartbeat != 0 && ttlSeconds > heartbeat))
            revert AdlSessionTtlOutOfRange(ttlSeconds);
        _config[marketId].sessionTtl = ttlSeconds;
        emit SessionTtlSet(marketId, ttlSeconds);
    }

    // ================================================================ internals

    /// @dev Starts a split refresh: an empty scratch leaf under a parent that dominates every member
    /// (so RankTree.update stops at the leaf), and one more pending refresh on the side.
    function _startRefresh(bytes32 marketId, bool isLong, RankTree.Tree storage scratch, uint256 index) private {
        _resetScratch(isLong, scratch, index);
        MarketConfig storage cfg = _config[marketId];
        uint16 pending = isLong ? cfg.refreshesLong : cfg.refreshesShort;
        if (pending == type(uint16).max) revert AdlTooManyRefreshes();
        if (isLong) cfg.refreshesLong = pending + 1;
        else cfg.refreshesShort = pending + 1;
    }

    /// @dev Starts a split refresh of `leaf`, or checks the caller may go on with the pending one: its
    /// holder, or anyone once the hold lapsed. A first member at or below the last address restarts it
    /// (a chunk that skipped a member could otherwise never complete). Returns whether the chunk, if it
    /// leaves the refresh pending, gets or renews the hold (see `_renewsHold`).
    function _claimRefresh(
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        uint256 index,
        address[] calldata members
    ) private returns (bool) {
        LeafRefresh storage r = _leafRefreshes[marketId][isLong][leaf];
        RankTree.Tree storage scratch = _refreshScratch[marketId][isLong];
        if (!r.active) {
            _startRefresh(marketId, isLong, scratch, index);
            r.active = true;
            return true;
        }
        address holder = r.holder;
        if (msg.sender != holder && block.timestamp <= r.holdUntil) revert AdlLeafReserved(leaf, holder, r.holdUntil);
        bool restarted = members.length != 0 && members[0] <= r.last;
        if (restarted) {
            _resetScratch(isLong, scratch, index);
            (r.last, r.tally) = (address(0), 0);
        }
        return _renewsHold(msg.sender != holder, restarted ? 0 : members.length);
    }

    /// @dev Merges `members` (ascending, above `last`, each a current member of `leaf`) into the
    /// scratch leaf; returns the last address and how many were merged.
    function _mergeChunk(
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        address[] calldata members,
        address last
    ) private returns (address, uint256) {
        RankTree.Tree storage scratch = _refreshScratch[marketId][isLong];
        for (uint256 i; i < members.length; ++i) {
            address m = members[i];
            if (m <= last) revert AdlMembersNotAscending(last, m);
            last = m;
            uint256 freeMemory;
            assembly {
                freeMemory := mload(0x40)
            }
            IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, m);
            if (p.size == 0 || p.isLong != isLong || p.leaf != leaf) revert AdlNotMember(m);
            RankTree.update(scratch, isLong, leaf, p.leverage, p.entry);
            assembly {
                mstore(0x40, freeMemory)
            }
        }
        return (last, members.length);
    }

    /// @dev An empty scratch leaf under a parent that dominates every member.
    function _resetScratch(bool isLong, RankTree.Tree storage scratch, uint256 index) private {
        scratch.words[index] = 0;
        scratch.words[index >> 1] = RankTree.memberWord(
            isLong,
            type(uint128).max,
            isLong ? type(int128).min + 1 : type(int128).max
        );
    }

    /// @dev Whether a chunk left held gets (or renews) the HOLD_WINDOW: always for a new hold (a leaf
    /// newly held, or another account taking over a lapsed hold); for the holder's own next chunk only
    /// if it resumes (a restart by the holder never renews) and lists at least a quarter of
    /// `maxOpenedMembers`. So a holder cannot keep a leaf reserved by listing one member per window,
    /// nor by restarting it: its renewals are bounded by the leaf's size.
    function _renewsHold(bool fresh, uint256 listed) private view returns (bool) {
        return fresh || listed * 4 >= maxOpenedMembers;
    }

    /// @dev Stores an opened session (pinned values, entries, reserve) and emits its event.
    function _record(
        Call memory c,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        uint256 sigma,
        IClearinghouseTypes.DeleverageLeg[] memory legs,
        uint256 ttl
    ) private {
        Session storage s = _sessions[c.marketId][c.side];
        s.id = uint64(c.sessionId);
        s.openedAt = uint64(block.timestamp);
        s.deadline = uint64(block.timestamp + ttl);
        s.bankrupt = bankrupt;
        (s.bankruptLong, s.bankruptEntry, s.bankruptLeverage) = (b.isLong, b.entry, b.leverage);
        s.lastAccount = c.lastAccount;
        s.lastScore = c.lastScore;
        s.price = c.price;
        s.funding = c.funding;
        s.delta = c.delta;
        s.sigma = sigma;
        for (uint256 i; i < legs.length; ++i) s.entries.push(legs[i].account);
        (s.reserveFund, s.reserveTokens) = _reserve(
            _reserveKey(c.marketId, c.side, c.sessionId),
            sigma.mulDivDown(b.size, WAD)
        );
        _emitOpened(c, bankrupt, sigma);
    }

    function _emitOpened(Call memory c, address bankrupt, uint256 sigma) private {
        emit AdlSessionOpened(
            c.marketId,
            c.side,
            c.sessionId,
            bankrupt,
            c.price,
            c.funding,
            sigma,
            c.delta,
            c.lastScore,
            c.lastAccount
        );
    }

    /// @dev The heartbeat of the market's oracle feed (0 if the oracle does not report one).
    function _heartbeat(bytes32 marketId) private view returns (uint256) {
        try OracleAdapter(address(clearinghouse.oracle())).feedConfig(marketId) returns (OracleAdapter.Feed memory f) {
            return f.heartbeat;
        } catch {
            return 0;
        }
    }

    function _openSession(bytes32 marketId, bool side) private view returns (Session storage s) {
        s = _sessions[marketId][side];
        if (s.id == 0) revert AdlNoSession(marketId, side);
    }

    function _requireBeforeDeadline(Session storage s) private view {
        if (block.timestamp > s.deadline) revert AdlSessionTooOld(s.deadline, block.timestamp);
    }

    /// @dev Clears the session and its flag and releases the session's reserve in the fund that holds
    /// it (the one of the opening, even if the clearinghouse's fund changed since). A release the fund
    /// refuses does not stop the session from ending: finish, challenge and expiry never fail on it.
    function _end(bytes32 marketId, bool side, Session storage s) private {
        (uint256 id, address fund, uint256 reserved) = (s.id, s.reserveFund, s.reserveTokens);
        delete _sessions[marketId][side];
        MarketConfig storage cfg = _config[marketId];
        if (side) cfg.sessionLong = false;
        else cfg.sessionShort = false;
        if (reserved == 0) return;
        try IFundReserves(fund).release(_reserveKey(marketId, side, id)) {} catch {
            emit AdlReserveReleaseFailed(marketId, side, id, fund);
        }
    }

    /// @dev Finish: re-checks the precondition at the current (P, F) (no trade if B recovered, closed
    /// or is now covered) and otherwise settles the stored entries on current sizes (closed ones
    /// skipped) with the fund paying the pinned sigma per unit. The clearinghouse executes at the
    /// current (P, F); each counterparty's net payout depends on (P, F) only through x_i + x_B,
    /// which does not move with them, so this equals settling at the pinned values up to rounding.
    /// Returns the size closed.
    function _settle(
        Call memory c,
        address bankrupt,
        uint256 sigma,
        address[] memory entries
    ) private returns (uint256 d) {
        clearinghouse.accrueFunding(c.marketId);
        (uint256 price, ) = clearinghouse.oracle().getPrice(c.marketId, true);
        int256 funding = clearinghouse.marketState(c.marketId).cumulativeFunding;
        IClearinghouseTypes.Position memory b = clearinghouse.getPosition(c.marketId, bankrupt);
        int256 eq = _equityAt(b, price, funding);
        if (eq >= 0) {
            _removeUnsettled(c.marketId, bankrupt); // recovered or closed: nothing left to settle
            return 0;
        }
        uint256 available = _fundAvailable();
        if (available >= uint256(-eq)) return 0;
        IClearinghouseTypes.DeleverageLeg[] memory legs;
        int256[] memory scores;
        (legs, scores, d) = _currentLegs(c, b.size, entries);
        if (d == 0) return 0;
        uint256 fundPays = sigma.mulDivDown(d, WAD);
        if (fundPays > available) fundPays = available;
        (c.price, c.funding) = (price, funding);
        _execute(c, bankrupt, b, legs, scores, d, fundPays);
        _syncUnsettled(c.marketId, bankrupt, uint256(-eq), b.size, d);
    }

    /// @dev Whether B's position `b` is still the one the session pinned: same side and K, a no larger.
    /// Otherwise (B closed and reopened, or flipped) a finish trades nothing: sigma, delta and the list
    /// were fixed for the pinned side, K and a, and payouts equal the pinned ones only for them. A
    /// smaller a (more margin per unit) only lowers the deficit per unit; reductions keep a and K.
    function _isPinnedPosition(Session storage s, IClearinghouseTypes.Position memory b) private view returns (bool) {
        return
            b.size == 0 ||
            (b.isLong == s.bankruptLong && b.entry == s.bankruptEntry && b.leverage <= s.bankruptLeverage);
    }

    /// @dev The stored entries on current sizes, in order: closed ones and zero takes skipped; each
    /// with its score at the pinned values (the guard kept its a and K).
    function _currentLegs(
        Call memory c,
        uint256 remaining,
        address[] memory entries
    ) private view returns (IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores, uint256 d) {
        legs = new IClearinghouseTypes.DeleverageLeg[](entries.length);
        scores = new int256[](entries.length);
        uint256 live;
        for (uint256 i; i < entries.length && remaining != 0; ++i) {
            IClearinghouseTypes.Position memory p = clearinghouse.getPosition(c.marketId, entries[i]);
            if (p.size == 0) continue;
            uint256 take = remaining < p.size ? remaining : p.size;
            remaining -= take;
            d += take;
            legs[live] = IClearinghouseTypes.DeleverageLeg(entries[i], take, 0);
            (, scores[live]) = _scoreOf(c, p);
            ++live;
        }
        assembly ("memory-safe") {
            mstore(legs, live)
            mstore(scores, live)
        }
    }

    /// @dev Sets aside up to `amount` (internal units, rounded up to tokens) of what the fund has
    /// available for the bankrupt position; returns the tokens reserved.
    function _reserve(bytes32 key, uint256 amount) private returns (address fund, uint256 tokens) {
        fund = clearinghouse.insuranceFund();
        if (fund == address(0) || amount == 0) return (fund, 0);
        tokens = amount.mulDivUp(1, clearinghouse.collateralScale());
        uint256 avail = IFundReserves(fund).available();
        if (tokens > avail) tokens = avail;
        IFundReserves(fund).reserve(key, tokens);
    }

    /// @dev The fund reserve key of one session: (market, counterparty side, session id), so two
    /// sessions of the same account (one per side) never share a reserve.
    function _reserveKey(bytes32 marketId, bool side, uint256 sessionId) private pure returns (bytes32) {
        return keccak256(abi.encode(marketId, side, sessionId));
    }
}
