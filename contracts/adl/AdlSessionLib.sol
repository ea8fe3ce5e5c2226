// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IAdlTypes} from "../interfaces/IAdlTypes.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IFundReserves} from "../interfaces/IFundReserves.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {OracleAdapter} from "../oracle/OracleAdapter.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {RankTree} from "../libraries/RankTree.sol";
import {AdlCall} from "./AdlCall.sol";
import {AdlProofLib} from "./AdlProofLib.sol";
import {AdlSettlement} from "./AdlSettlement.sol";
import {AdlStorage} from "./AdlStorage.sol";

/// @title AdlSessionLib
/// @notice Multi-transaction ADL (docs/mechanism.md section 4): a session pins (P, F, sigma, delta) and the
/// list, has its completeness proof verified over several calls (AdlProofLib.continueSession, a big
/// leaf over several calls too) while the deleverager's `reindex` guards every verified tile, and
/// settles at the pinned subsidy on current sizes; and leaf refreshes split across calls. Deployed
/// once and linked: it keeps the deleverager under the code-size limit.
/// @dev Runs by DELEGATECALL from the deleverager's entry points (which hold the reentrancy lock and
/// the role checks), on the deleverager's storage passed as `AdlStorage.Layout`. Called directly,
/// its state-changing functions revert (the compiler's library call protection).
library AdlSessionLib {
    using FixedPointMath for uint256;
    using SafeERC20 for IERC20;

    uint256 private constant WAD = FixedPointMath.WAD;

    /// @notice See IAutoDeleverager.openAdlSession.
    function openSession(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties
    ) external returns (uint256 sessionId) {
        // Whole tokens of unswept fees move into the fund first (what the fund can pay is the same
        // before and after), so the reserve can hold nearly all of sigma * q_B in tokens.
        if (ch.insuranceFund() != address(0)) ch.sweepFundFees();
        (AdlCall.Call memory c, IClearinghouseTypes.Position memory b, uint256 deficit, uint256 covered) = AdlSettlement
            .pin(ch, marketId, bankrupt);
        AdlStorage.MarketConfig storage cfg = s.config[marketId];
        if (c.side ? cfg.sessionLong : cfg.sessionShort) revert IAdlTypes.AdlSessionActive(marketId, c.side);
        sessionId = ++s.sessionNonce;
        c.sessionId = sessionId;
        IClearinghouseTypes.DeleverageLeg[] memory legs;
        (c, legs) = _walkList(s, ch, c, bankrupt, b.size, counterparties);
        if (c.side) cfg.sessionLong = true;
        else cfg.sessionShort = true;
        _record(s, ch, c, bankrupt, b, covered.mulDivDown(WAD, b.size), legs);
        AdlSettlement.addUnsettled(s, marketId, bankrupt, b, deficit);
        _postBond(s, ch, marketId, c.side, sessionId);
    }

    /// @dev The opener posts the market's bond in collateral tokens (rounded up), pulled last; the
    /// deleverager holds them until the session ends (see `_end`).
    function _postBond(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        bool side,
        uint256 sessionId
    ) private {
        uint256 bond = s.sessionTerms[marketId].bond;
        if (bond == 0) return;
        uint256 tokens = bond.mulDivUp(1, ch.collateralScale());
        AdlStorage.Session storage session = s.sessions[marketId][side];
        (session.opener, session.bondTokens) = (msg.sender, uint96(tokens));
        emit IAdlTypes.AdlSessionBondPosted(marketId, side, sessionId, msg.sender, tokens);
        IERC20 token = ch.collateral();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), tokens);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != tokens) revert IAdlTypes.AdlBondShort(tokens, received);
    }

    /// @dev AdlProofLib.walkList in a frame of its own (the opening has too many locals around it).
    function _walkList(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        address bankrupt,
        uint256 size,
        address[] calldata counterparties
    ) private returns (AdlCall.Call memory, IClearinghouseTypes.DeleverageLeg[] memory legs) {
        (c, legs, ) = AdlProofLib.walkList(s, ch, c, bankrupt, size, counterparties);
        return (c, legs);
    }

    /// @notice See IAutoDeleverager.finishAdlSession.
    function finishSession(AdlStorage.Layout storage s, Clearinghouse ch, bytes32 marketId, bool side) external {
        AdlStorage.Session storage session = AdlStorage.openSession(s, marketId, side);
        AdlStorage.requireBeforeDeadline(session);
        if (session.cursor != RankTree.LEAVES || session.held) {
            revert IAdlTypes.AdlSessionIncomplete(session.cursor, session.held);
        }
        AdlCall.Call memory c = AdlCall.sessionCall(marketId, side, session);
        (address bankrupt, uint256 sigma, address[] memory entries) = (
            session.bankrupt,
            session.sigma,
            session.entries
        );
        bool pinned = _isPinnedPosition(session, ch.getPosition(marketId, bankrupt));
        uint256 id = session.id;
        // End first (flags, storage, reserve back into what the fund can pay, bond back to the
        // opener), then settle.
        _end(s, ch, marketId, side, session, session.opener);
        emit IAdlTypes.AdlSessionFinished(marketId, side, id, pinned ? _settle(s, ch, c, bankrupt, sigma, entries) : 0);
    }

    /// @notice See IAutoDeleverager.challengeAdlSession.
    function challengeSession(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        bool side,
        address account
    ) external {
        AdlStorage.Session storage session = AdlStorage.openSession(s, marketId, side);
        IClearinghouseTypes.Position memory p = ch.getPosition(marketId, account);
        if (
            p.size == 0 ||
            p.isLong != side ||
            AdlCall.isSessionListed(session.id, account) ||
            !AdlCall.outranksLast(AdlCall.sessionCall(marketId, side, session), account, p)
        ) revert IAdlTypes.AdlChallengeRejected(account);
        uint256 id = session.id;
        emit IAdlTypes.AdlSessionChallenged(marketId, side, id, account, msg.sender);
        // The list was never the head: the opener's bond goes to the challenger.
        _end(s, ch, marketId, side, session, msg.sender);
    }

    /// @notice See IAutoDeleverager.expireAdlSession.
    function expireSession(AdlStorage.Layout storage s, Clearinghouse ch, bytes32 marketId, bool side) external {
        AdlStorage.Session storage session = AdlStorage.openSession(s, marketId, side);
        if (block.timestamp <= session.deadline) {
            revert IAdlTypes.AdlSessionNotExpired(session.deadline, block.timestamp);
        }
        uint256 id = session.id;
        emit IAdlTypes.AdlSessionExpired(marketId, side, id);
        // Never challenged (a challenge would have ended it): the bond goes back to the opener.
        _end(s, ch, marketId, side, session, session.opener);
    }

    /// @notice See AutoDeleverager.setSessionTerms.
    function setSessionTerms(AdlStorage.Layout storage s, bytes32 marketId, uint256 bond, uint256 memberPay) external {
        if (bond > AdlStorage.MAX_SESSION_BOND || memberPay > AdlStorage.MAX_MEMBER_PAY) {
            revert IAdlTypes.AdlSessionTermsOutOfRange(bond, memberPay);
        }
        s.sessionTerms[marketId] = AdlStorage.SessionTerms(uint128(bond), uint128(memberPay));
        emit IAdlTypes.SessionTermsSet(marketId, bond, memberPay);
    }

    /// @notice See IAutoDeleverager.socializeLoss.
    function socializeLoss(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        address bankrupt,
        IAdlTypes.ProofNode[] calldata proof
    ) external {
        if (msg.sender == bankrupt) revert IAdlTypes.AdlSocialSelf(bankrupt);
        (AdlCall.Call memory c, IClearinghouseTypes.Position memory b, , uint256 covered) = AdlSettlement.pin(
            ch,
            marketId,
            bankrupt
        );
        AdlStorage.MarketConfig memory cfg = s.config[marketId];
        // No session anywhere in the market: a session pins both sides' F, which a loss index moves.
        if (cfg.sessionLong || cfg.sessionShort) revert IAdlTypes.AdlSessionActive(marketId, cfg.sessionLong);
        bool byDeadline = proof.length == 0;
        if (byDeadline) {
            // The clock counts only for the position it was started for (a stale clock is due 0:
            // report the position again).
            uint256 since = s.unsettledKey[marketId][bankrupt] == AdlSettlement.positionKey(b)
                ? s.unsettledSince[marketId][bankrupt]
                : 0;
            uint256 due = since == 0 ? 0 : since + AdlStorage.socialDelay(cfg);
            if (since == 0 || block.timestamp < due) revert IAdlTypes.AdlSocialTooEarly(marketId, bankrupt, due);
        } else {
            AdlProofLib.verifyNoEligible(s, ch, c, proof);
        }
        AdlSettlement.removeUnsettled(s, marketId, bankrupt);
        emit IAdlTypes.LossSocializationTriggered(marketId, bankrupt, msg.sender, byDeadline);
        ch.settleSocializedLoss(marketId, bankrupt, covered, msg.sender);
    }

    /// @notice See IAutoDeleverager.reportUnsettled; `deficit` is the position's deficit now.
    function reportUnsettled(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        address account,
        uint256 deficit
    ) external {
        uint256 available = ch.fundAvailable();
        if (deficit == 0) revert IAdlTypes.AdlNotBankrupt(marketId, account, 0);
        if (available >= deficit) revert IAdlTypes.AdlFundSufficient(deficit, available);
        AdlSettlement.addUnsettled(s, marketId, account, ch.getPosition(marketId, account), deficit);
    }

    /// @notice AdlSettlement.syncUnsettled for the deleverager's single-transaction calls (linked here,
    /// not inlined, to keep the deleverager's bytecode small).
    function syncUnsettled(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        address bankrupt,
        uint256 remainingDeficit
    ) external {
        AdlSettlement.syncUnsettled(s, ch, marketId, bankrupt, remainingDeficit);
    }

    /// @notice See IAutoDeleverager.clearUnsettled; `deficit` is the position's deficit now.
    function clearUnsettled(AdlStorage.Layout storage s, bytes32 marketId, address account, uint256 deficit) external {
        if (deficit != 0) revert IAdlTypes.AdlStillUnsettled(marketId, account, deficit);
        AdlSettlement.removeUnsettled(s, marketId, account);
    }

    /// @notice See AutoDeleverager.setSocialDelay.
    function setSocialDelay(AdlStorage.Layout storage s, bytes32 marketId, uint32 delaySeconds) external {
        if (delaySeconds > AdlStorage.MAX_SOCIAL_DELAY) revert IAdlTypes.AdlSocialDelayOutOfRange(delaySeconds);
        s.config[marketId].socialDelay = delaySeconds;
        emit IAdlTypes.SocialDelaySet(marketId, delaySeconds);
    }

    /// @notice See IAutoDeleverager.refreshLeafChunk.
    function refreshLeafChunk(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        address[] calldata members
    ) external {
        uint256 index = RankTree.heapIndex(0, leaf);
        AdlStorage.LeafRefresh storage r = s.leafRefreshes[marketId][isLong][leaf];
        bool renews = _claimRefresh(s, marketId, isLong, leaf, index, members);
        (address last, uint256 tally) = _mergeChunk(s, ch, marketId, isLong, leaf, members, r.last);
        tally += r.tally;
        RankTree.Tree storage t = s.trees[marketId][isLong];
        uint256 count = RankTree.node(t, index).count;
        if (tally > count) revert IAdlTypes.AdlLeafCountMismatch(leaf, tally, count);
        if (tally < count) {
            if (members.length == 0) revert IAdlTypes.AdlPartialChunk(leaf);
            (r.last, r.tally) = (last, uint64(tally));
            if (renews) {
                (r.holder, r.holdUntil) = (msg.sender, uint64(block.timestamp + AdlStorage.HOLD_WINDOW));
            }
            emit IAdlTypes.LeafRefreshChunk(marketId, isLong, leaf, last, tally, count);
            return;
        }
        // Every current member is merged (and none changed since): the exact leaf, count kept.
        t.words[index] = RankTree.word(s.refreshScratch[marketId][isLong], index) | count;
        delete s.leafRefreshes[marketId][isLong][leaf];
        AdlStorage.MarketConfig storage cfg = s.config[marketId];
        if (isLong) --cfg.refreshesLong;
        else --cfg.refreshesShort;
        emit IAdlTypes.NodeRefreshed(marketId, isLong, 0, leaf);
    }

    /// @notice See AutoDeleverager.setSessionTtl: within [MIN_SESSION_TTL, MAX_SESSION_TTL] and at
    /// most the market feed's heartbeat. Applies to sessions opened afterwards.
    function setSessionTtl(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        uint32 ttlSeconds
    ) external {
        uint256 heartbeat = _heartbeat(ch, marketId);
        if (
            ttlSeconds < AdlStorage.MIN_SESSION_TTL ||
            ttlSeconds > AdlStorage.MAX_SESSION_TTL ||
            (heartbeat != 0 && ttlSeconds > heartbeat)
        ) revert IAdlTypes.AdlSessionTtlOutOfRange(ttlSeconds);
        s.config[marketId].sessionTtl = ttlSeconds;
        emit IAdlTypes.SessionTtlSet(marketId, ttlSeconds);
    }

    // ================================================================ split leaf refresh

    /// @dev Starts a split refresh: an empty scratch leaf under a parent that dominates every member
    /// (so RankTree.update stops at the leaf), and one more pending refresh on the side.
    function _startRefresh(
        AdlStorage.Layout storage s,
        bytes32 marketId,
        bool isLong,
        RankTree.Tree storage scratch,
        uint256 index
    ) private {
        _resetScratch(isLong, scratch, index);
        AdlStorage.MarketConfig storage cfg = s.config[marketId];
        uint16 pending = isLong ? cfg.refreshesLong : cfg.refreshesShort;
        if (pending == type(uint16).max) revert IAdlTypes.AdlTooManyRefreshes();
        if (isLong) cfg.refreshesLong = pending + 1;
        else cfg.refreshesShort = pending + 1;
    }

    /// @dev Starts a split refresh of `leaf`, or checks the caller may go on with the pending one: its
    /// holder, or anyone once the hold lapsed. A first member at or below the last address restarts it
    /// (a chunk that skipped a member could otherwise never complete). Returns whether the chunk, if it
    /// leaves the refresh pending, gets or renews the hold: real progress only (`AdlStorage.grantsHold`),
    /// and never the holder's own restart within its window.
    function _claimRefresh(
        AdlStorage.Layout storage s,
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        uint256 index,
        address[] calldata members
    ) private returns (bool) {
        AdlStorage.LeafRefresh storage r = s.leafRefreshes[marketId][isLong][leaf];
        RankTree.Tree storage scratch = s.refreshScratch[marketId][isLong];
        bool progress = AdlStorage.grantsHold(s, members.length);
        if (!r.active) {
            _startRefresh(s, marketId, isLong, scratch, index);
            r.active = true;
            return progress;
        }
        (address holder, uint256 until) = (r.holder, r.holdUntil);
        bool holding = block.timestamp <= until;
        if (msg.sender != holder && holding) revert IAdlTypes.AdlLeafReserved(leaf, holder, until);
        bool restarted = members.length != 0 && members[0] <= r.last;
        if (restarted) {
            _resetScratch(isLong, scratch, index);
            (r.last, r.tally) = (address(0), 0);
        }
        return progress && !(restarted && holding);
    }

    /// @dev Merges `members` (ascending, above `last`, each a current member of `leaf`) into the
    /// scratch leaf; returns the last address and how many were merged.
    function _mergeChunk(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        bool isLong,
        uint256 leaf,
        address[] calldata members,
        address last
    ) private returns (address, uint256) {
        RankTree.Tree storage scratch = s.refreshScratch[marketId][isLong];
        for (uint256 i; i < members.length; ++i) {
            address m = members[i];
            if (m <= last) revert IAdlTypes.AdlMembersNotAscending(last, m);
            last = m;
            uint256 freeMemory;
            assembly {
                freeMemory := mload(0x40)
            }
            IClearinghouseTypes.Position memory p = ch.getPosition(marketId, m);
            if (p.size == 0 || p.isLong != isLong || p.leaf != leaf) revert IAdlTypes.AdlNotMember(m);
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

    // ================================================================ opening and ending

    /// @dev Stores an opened session (pinned values, entries, reserve) and emits its event.
    function _record(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        uint256 sigma,
        IClearinghouseTypes.DeleverageLeg[] memory legs
    ) private {
        // T, and never more than the feed's heartbeat (the pinned round is never older than that).
        uint256 ttl = AdlStorage.ttl(s.config[c.marketId]);
        uint256 heartbeat = _heartbeat(ch, c.marketId);
        if (heartbeat != 0 && heartbeat < ttl) ttl = heartbeat;
        AdlStorage.Session storage session = s.sessions[c.marketId][c.side];
        session.id = uint64(c.sessionId);
        session.openedAt = uint64(block.timestamp);
        session.deadline = uint64(block.timestamp + ttl);
        session.bankrupt = bankrupt;
        (session.bankruptLong, session.bankruptEntry, session.bankruptLeverage) = (b.isLong, b.entry, b.leverage);
        session.lastAccount = c.lastAccount;
        session.lastScore = c.lastScore;
        session.price = c.price;
        session.funding = c.funding;
        session.delta = c.delta;
        session.sigma = sigma;
        for (uint256 i; i < legs.length; ++i) session.entries.push(legs[i].account);
        (session.reserveFund, session.reserveTokens) = _reserve(
            ch,
            AdlStorage.reserveKey(c.marketId, c.side, c.sessionId),
            sigma.mulDivDown(b.size, WAD)
        );
        _emitOpened(c, bankrupt, sigma);
    }

    function _emitOpened(AdlCall.Call memory c, address bankrupt, uint256 sigma) private {
        emit IAdlTypes.AdlSessionOpened(
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
    function _heartbeat(Clearinghouse ch, bytes32 marketId) private view returns (uint256) {
        try OracleAdapter(address(ch.oracle())).feedConfig(marketId) returns (OracleAdapter.Feed memory f) {
            return f.heartbeat;
        } catch {
            return 0;
        }
    }

    /// @dev Clears the session and its flag, releases the session's reserve in the fund that holds it
    /// (the one of the opening, even if the clearinghouse's fund changed since), and pays the bond to
    /// `bondTo` (the opener at finish or expiry, the challenger after a successful challenge) as free
    /// collateral in the clearinghouse: a deposit for that account, which no recipient can refuse. A
    /// release the fund refuses does not stop the session from ending: finish, challenge and expiry
    /// never fail on it.
    function _end(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        bool side,
        AdlStorage.Session storage session,
        address bondTo
    ) private {
        (uint256 id, address fund, uint256 reserved, uint256 bond) = (
            session.id,
            session.reserveFund,
            session.reserveTokens,
            session.bondTokens
        );
        delete s.sessions[marketId][side];
        AdlStorage.MarketConfig storage cfg = s.config[marketId];
        if (side) cfg.sessionLong = false;
        else cfg.sessionShort = false;
        if (bond != 0) {
            emit IAdlTypes.AdlSessionBondPaid(marketId, side, id, bondTo, bond);
            ch.deposit(bondTo, bond);
        }
        if (reserved == 0) return;
        try IFundReserves(fund).release(AdlStorage.reserveKey(marketId, side, id)) {} catch {
            emit IAdlTypes.AdlReserveReleaseFailed(marketId, side, id, fund);
        }
    }

    // ================================================================ settlement

    /// @dev Finish: re-checks the precondition at the current (P, F) (no trade if B recovered, closed
    /// or is now covered) and otherwise settles the stored entries on current sizes (closed ones
    /// skipped) with the fund paying the pinned sigma per unit. The clearinghouse executes at the
    /// current (P, F); each counterparty's net payout depends on (P, F) only through x_i + x_B,
    /// which does not move with them, so this equals settling at the pinned values up to rounding.
    /// Returns the size closed.
    function _settle(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        address bankrupt,
        uint256 sigma,
        address[] memory entries
    ) private returns (uint256 d) {
        IClearinghouseTypes.Position memory b = ch.getPosition(c.marketId, bankrupt);
        // Legs and scores at the pinned values first; then the call moves to the current (P, F).
        IClearinghouseTypes.DeleverageLeg[] memory legs;
        int256[] memory scores;
        (legs, scores, d) = _currentLegs(ch, c, b.size, entries);
        int256 eq = _moveToNow(ch, c, b);
        if (eq >= 0) {
            AdlSettlement.removeUnsettled(s, c.marketId, bankrupt); // recovered or closed: nothing left to settle
            return 0;
        }
        uint256 available = ch.fundAvailable();
        if (available >= uint256(-eq) || d == 0) return 0;
        uint256 fundPays = sigma.mulDivDown(d, WAD);
        if (fundPays > available) fundPays = available;
        AdlSettlement.execute(ch, c, bankrupt, b, legs, scores, d, fundPays);
        AdlSettlement.syncUnsettled(s, ch, c.marketId, bankrupt, uint256(-eq) - uint256(-eq).mulDivDown(d, b.size));
    }

    /// @dev Accrues funding, sets the call's price and both sides' F to the current ones (one strict
    /// read), and returns B's equity there.
    function _moveToNow(
        Clearinghouse ch,
        AdlCall.Call memory c,
        IClearinghouseTypes.Position memory b
    ) private returns (int256) {
        ch.accrueFunding(c.marketId);
        (c.price, ) = ch.oracle().getPrice(c.marketId, true);
        (c.funding, c.bankruptFunding) = AdlSettlement.sideFundings(ch, c.marketId, !c.side);
        return AdlSettlement.equityAt(b, c.price, c.bankruptFunding);
    }

    /// @dev Whether B's position `b` is still the one the session pinned: same side and K, a no larger.
    /// Otherwise (B closed and reopened, or flipped) a finish trades nothing: sigma, delta and the list
    /// were fixed for the pinned side, K and a, and payouts equal the pinned ones only for them. A
    /// smaller a (more margin per unit) only lowers the deficit per unit; reductions keep a and K.
    function _isPinnedPosition(
        AdlStorage.Session storage session,
        IClearinghouseTypes.Position memory b
    ) private view returns (bool) {
        return
            b.size == 0 ||
            (b.isLong == session.bankruptLong &&
                b.entry == session.bankruptEntry &&
                b.leverage <= session.bankruptLeverage);
    }

    /// @dev The stored entries on current sizes, in order: closed ones and zero takes skipped; each
    /// with its score at the pinned values (the guard kept its a and K).
    function _currentLegs(
        Clearinghouse ch,
        AdlCall.Call memory c,
        uint256 remaining,
        address[] memory entries
    ) private view returns (IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores, uint256 d) {
        legs = new IClearinghouseTypes.DeleverageLeg[](entries.length);
        scores = new int256[](entries.length);
        uint256 live;
        for (uint256 i; i < entries.length && remaining != 0; ++i) {
            IClearinghouseTypes.Position memory p = ch.getPosition(c.marketId, entries[i]);
            // Closed, or flipped to B's side since it was listed: skipped like a closed entry, so a
            // counterparty cannot stall the finish by changing side (the leg would not reduce it).
            if (p.size == 0 || p.isLong != c.side) continue;
            uint256 take = remaining < p.size ? remaining : p.size;
            remaining -= take;
            d += take;
            legs[live] = IClearinghouseTypes.DeleverageLeg(entries[i], take, 0);
            (, scores[live]) = AdlCall.scoreOf(c, p);
            ++live;
        }
        assembly ("memory-safe") {
            mstore(legs, live)
            mstore(scores, live)
        }
    }

    /// @dev Sets aside up to `amount` (internal units, rounded up to tokens) of what the fund has
    /// available for the bankrupt position; returns the tokens reserved.
    function _reserve(Clearinghouse ch, bytes32 key, uint256 amount) private returns (address fund, uint256 tokens) {
        fund = ch.insuranceFund();
        if (fund == address(0) || amount == 0) return (fund, 0);
        tokens = amount.mulDivUp(1, ch.collateralScale());
        uint256 avail = IFundReserves(fund).available();
        if (tokens > avail) tokens = avail;
        IFundReserves(fund).reserve(key, tokens);
    }
}
