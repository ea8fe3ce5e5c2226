// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAdlTypes} from "../interfaces/IAdlTypes.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {ScoreMath} from "../libraries/ScoreMath.sol";
import {RankTree} from "../libraries/RankTree.sol";
import {AdlCall} from "./AdlCall.sol";
import {AdlStorage} from "./AdlStorage.sol";

/// @title AdlProofLib
/// @notice The list walk and the tile verifier of the completeness proof (docs/mechanism.md sections 3 and
/// 4), whole for `deleverage` or resumable for a session's continue step (which lives here too).
/// Deployed once and linked: the deleverager and the session library both call this one copy.
/// @dev Runs by DELEGATECALL on the deleverager's storage (`AdlStorage.Layout`, its list marks).
/// Memory arguments reach an external library as copies, so the call (with its last live entry set)
/// comes back as a return value; the session's continue step verifies here so that its proof is
/// copied into one library call, not two.
library AdlProofLib {
    /// @notice Where tile verification stands: the next leaf, members opened in this call, and a
    /// leaf split across calls (members up to `heldLast` verified, `tally` of them live).
    struct Progress {
        uint256 cursor;
        uint256 opened;
        bool held;
        address heldLast;
        uint256 tally;
        bool restarted; // the held leaf was listed again from its first member
        uint256 chunk; // live members listed in the chunk left held
        uint256 heldPaid; // the held leaf's highest tally paid for so far in the session
        uint256 paid; // live members verified for the first time in the session, in this call
    }

    // ================================================================ the list

    /// @notice Checks a single-transaction call before any state changes: walks the list (see
    /// `walkList`), then verifies that `proof` tiles every leaf, each opened leaf complete. Returns
    /// the call with its last live entry set, and each live entry's take and score.
    function checkListAndProof(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        address bankrupt,
        uint256 remaining,
        address[] calldata list,
        IAdlTypes.ProofNode[] calldata proof
    ) external returns (AdlCall.Call memory, IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores) {
        (legs, scores) = _walkList(s, ch, c, bankrupt, remaining, list);
        _verifyWholeProof(s, ch, c, proof);
        return (c, legs, scores);
    }

    /// @notice Walks the list before any state changes (docs/mechanism.md section 3, step 2): marks each
    /// live entry and returns its take and score, and the call with its last live entry set.
    function walkList(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        address bankrupt,
        uint256 remaining,
        address[] calldata list
    ) external returns (AdlCall.Call memory, IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores) {
        (legs, scores) = _walkList(s, ch, c, bankrupt, remaining, list);
        return (c, legs, scores);
    }

    function _walkList(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        address bankrupt,
        uint256 remaining,
        address[] calldata list
    ) private returns (IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores) {
        uint256 maxLength = s.maxListLength;
        if (list.length > maxLength) revert IAdlTypes.AdlListTooLong(list.length, maxLength);
        legs = new IClearinghouseTypes.DeleverageLeg[](list.length);
        scores = new int256[](list.length);
        uint256 live;
        for (uint256 i; i < list.length; ++i) {
            address account = list[i];
            if (account == bankrupt) revert IAdlTypes.AdlEntryIsBankrupt(account);
            IClearinghouseTypes.Position memory p = ch.getPosition(c.marketId, account);
            if (p.size == 0) continue; // closed since the keeper built the list
            int256 score = _checkEntry(c, account, p, live == 0);
            if (remaining == 0) revert IAdlTypes.AdlListPadded(account);
            uint256 take = remaining < p.size ? remaining : p.size;
            remaining -= take;
            AdlCall.mark(c, account);
            legs[live] = IClearinghouseTypes.DeleverageLeg(account, take, 0);
            scores[live] = score;
            c.lastScore = score;
            c.lastAccount = account;
            ++live;
        }
        if (live == 0) revert IAdlTypes.AdlNoLiveEntry();
        assembly ("memory-safe") {
            mstore(legs, live)
            mstore(scores, live)
        }
    }

    /// @dev A live entry: opposite side, not yet listed, finite score, eligible, ranked below the
    /// previous live entry. Returns its score.
    function _checkEntry(
        AdlCall.Call memory c,
        address account,
        IClearinghouseTypes.Position memory p,
        bool first
    ) private view returns (int256 score) {
        if (p.isLong != c.side) revert IAdlTypes.AdlEntrySameSide(account);
        if (AdlCall.isMarked(c, account)) revert IAdlTypes.AdlEntryDuplicate(account);
        bool minusInf;
        (minusInf, score) = AdlCall.scoreOf(c, p);
        if (minusInf) revert IAdlTypes.AdlEntryNotFinite(account);
        if (!AdlCall.eligible(c, p)) revert IAdlTypes.AdlEntryIneligible(account);
        if (!first && !ScoreMath.ranksBelow(score, false, account, c.lastScore, false, c.lastAccount)) {
            revert IAdlTypes.AdlListOrder(c.lastAccount, account);
        }
    }

    // ================================================================ the completeness proof

    /// @notice The proof of the final layer's first trigger: `proof` tiles the whole tree of the
    /// call's side for an empty list, so every node must be empty or wholly ineligible at the call's
    /// delta and every live member of an opened leaf ineligible (with no last entry, an eligible
    /// position outranks it, and no node bound can lie strictly below it).
    function verifyNoEligible(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        IAdlTypes.ProofNode[] calldata proof
    ) external view {
        (c.lastScore, c.lastAccount) = (type(int256).min, address(0));
        _verifyWholeProof(s, ch, c, proof);
    }

    /// @dev A single-transaction proof: tiles from leaf 0 to the last leaf, each opened leaf complete.
    function _verifyWholeProof(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        IAdlTypes.ProofNode[] calldata proof
    ) private view {
        Progress memory g;
        _verifyTiles(s, ch, c, proof, g, false);
        if (g.cursor != RankTree.LEAVES) revert IAdlTypes.AdlProofIncomplete(g.cursor);
    }

    /// @notice See IAutoDeleverager.continueAdlSession: verifies further tiles of an open session's
    /// proof, stores its progress and the held leaf's hold, and pays the caller the market's
    /// `memberPay` from the keeper reserve for each live member verified for the first time in the
    /// session. It lives here, next to the verifier, so the proof is copied into one library call only.
    function continueSession(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        bool side,
        IAdlTypes.ProofNode[] calldata proof
    ) external {
        AdlStorage.Session storage session = AdlStorage.openSession(s, marketId, side);
        AdlStorage.requireBeforeDeadline(session);
        // An empty call verifies nothing: it must not be able to take a lapsed hold over.
        if (proof.length == 0) revert IAdlTypes.AdlProofEmpty();
        (uint256 cursor, bool wasHeld, address holder, uint256 until) = (
            session.cursor,
            session.held,
            session.holder,
            session.holdUntil
        );
        if (wasHeld && msg.sender != holder && block.timestamp <= until) {
            revert IAdlTypes.AdlLeafReserved(cursor, holder, until);
        }
        Progress memory g = Progress(cursor, 0, wasHeld, session.heldLast, session.heldTally, false, 0, 0, 0);
        if (wasHeld) g.heldPaid = session.heldPaid;
        _verifyTiles(s, ch, AdlCall.sessionCall(marketId, side, session), proof, g, true);
        session.cursor = uint32(g.cursor);
        session.held = g.held;
        session.heldLast = g.heldLast;
        session.heldTally = uint64(g.tally);
        // At most the leaf's count, which no leaf anyone could verify within T comes near.
        session.heldPaid = g.heldPaid > type(uint32).max ? type(uint32).max : uint32(g.heldPaid);
        if (!g.held) (holder, until) = (address(0), 0);
        else if (
            // Real progress only, and never the holder's own restart within its window.
            AdlStorage.grantsHold(s, g.chunk) && !(g.restarted && g.cursor == cursor && block.timestamp <= until)
        ) (holder, until) = (msg.sender, block.timestamp + AdlStorage.HOLD_WINDOW);
        else if (g.cursor != cursor) (holder, until) = (address(0), 0); // a new held leaf nobody reserves
        (session.holder, session.holdUntil) = (holder, uint64(until));
        emit IAdlTypes.AdlSessionContinued(marketId, side, session.id, g.cursor, g.held, g.tally, g.opened, g.paid);
        uint256 memberPay = s.sessionTerms[marketId].memberPay;
        if (g.paid != 0 && memberPay != 0) ch.payKeeper(marketId, msg.sender, g.paid * memberPay);
    }

    /// @dev Verifies `proof`'s tiles from `g.cursor` (docs/mechanism.md section 4), advancing `g` in place
    /// (a private call does not copy memory): each node starts at the cursor and is empty, bounded
    /// strictly below the last live entry, wholly ineligible, or an opened leaf whose every live
    /// member is listed, ranks below the last entry, or is ineligible. With `resumable`, the last
    /// node may be a leaf listed only in part (held in `g`), and a held leaf must be resumed first;
    /// otherwise every opened leaf must be complete.
    function _verifyTiles(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        IAdlTypes.ProofNode[] calldata proof,
        Progress memory g,
        bool resumable
    ) private view {
        {
            uint256 maxNodes = s.maxProofNodes;
            if (proof.length > maxNodes) revert IAdlTypes.AdlProofTooLong(proof.length, maxNodes);
        }
        RankTree.Tree storage t = s.trees[c.marketId][c.side];
        for (uint256 i; i < proof.length; ++i) {
            _verifyNode(s, ch, c, t, proof[i], g, resumable && i == proof.length - 1);
        }
    }

    /// @dev One node of the proof: it starts at the cursor, and is prunable or an opened leaf.
    function _verifyNode(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        RankTree.Tree storage t,
        IAdlTypes.ProofNode calldata n,
        Progress memory g,
        bool mayHold
    ) private view {
        uint256 level = n.level;
        // The node's range is checked (heapIndex) before its place in the tiling.
        uint256 heap = RankTree.heapIndex(level, n.position);
        if (g.held && (level != 0 || n.position != g.cursor || !n.open)) revert IAdlTypes.AdlHeldLeaf(g.cursor);
        if (uint256(n.position) << level != g.cursor) revert IAdlTypes.AdlProofGap(level, n.position, g.cursor);
        RankTree.Node memory node = RankTree.node(t, heap);
        if (n.open) {
            if (level != 0) revert IAdlTypes.AdlOpenedNotLeaf(level, n.position);
            _openLeaf(s, ch, c, n, node.count, g, mayHold);
        } else {
            if (!_prunable(c, node)) revert IAdlTypes.AdlNodeNotPrunable(level, n.position);
            g.cursor += 1 << level;
        }
    }

    /// @dev An opened leaf with `count` members: complete (the cursor moves on), or, when `mayHold`
    /// (the last node of a session call), a partial chunk that leaves the leaf held. A held leaf listed
    /// again from a member at or below its last address restarts (tally and last address reset): a
    /// hold that skipped a member could otherwise never reach the count.
    function _openLeaf(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        AdlCall.Call memory c,
        IAdlTypes.ProofNode calldata n,
        uint256 count,
        Progress memory g,
        bool mayHold
    ) private view {
        uint256 listed = n.members.length;
        g.opened += listed;
        uint256 maxOpened = s.maxOpenedMembers;
        if (g.opened > maxOpened) revert IAdlTypes.AdlOpenedMembersTooMany(g.opened, maxOpened);
        if (!g.held) (g.heldLast, g.tally, g.heldPaid) = (address(0), 0, 0);
        else if (listed != 0 && n.members[0] <= g.heldLast) (g.heldLast, g.tally, g.restarted) = (address(0), 0, true);
        (uint256 tally, address last) = _checkLeaf(ch, c, n.position, n.members, g.heldLast, g.tally);
        // Paid: the tally beyond the highest one paid for in this leaf, so a restart (tally back to
        // zero) pays nothing until it passes what was verified before.
        if (tally > g.heldPaid) (g.paid, g.heldPaid) = (g.paid + tally - g.heldPaid, tally);
        if (tally == count) {
            (g.held, g.cursor, g.heldLast, g.tally, g.heldPaid) = (false, g.cursor + 1, address(0), 0, 0);
        } else if (mayHold && tally < count) {
            // A partial chunk lists live members only, at least one: a non-member would move the
            // last address past members nobody listed.
            if (listed == 0 || tally - g.tally != listed) revert IAdlTypes.AdlPartialChunk(n.position);
            (g.held, g.heldLast, g.tally, g.chunk) = (true, last, tally, listed);
        } else {
            revert IAdlTypes.AdlLeafCountMismatch(n.position, tally, count);
        }
    }

    /// @dev Empty, wholly ineligible, or bound S_fin(max a, best K) strictly below the last entry.
    function _prunable(AdlCall.Call memory c, RankTree.Node memory node) private pure returns (bool) {
        if (node.maxA == 0) return true;
        if (!ScoreMath.keyCovers(c.side, node.maxE, c.price, c.funding, c.delta)) return true;
        return ScoreMath.nodeBound(node.maxA, node.bestK, c.side, c.price, c.funding) < c.lastScore;
    }

    /// @dev Checks `members` of `leaf` (ascending, above `after_`): each live one is listed, ranks
    /// below the last entry or is ineligible. Returns `tally` plus the live ones, and the last
    /// address listed (`after_` if none).
    function _checkLeaf(
        Clearinghouse ch,
        AdlCall.Call memory c,
        uint256 leaf,
        address[] calldata members,
        address after_,
        uint256 tally
    ) private view returns (uint256, address) {
        for (uint256 j; j < members.length; ++j) {
            address m = members[j];
            if (m <= after_) revert IAdlTypes.AdlMembersNotAscending(after_, m);
            after_ = m;
            // Each member's position is decoded into fresh memory; nothing of it outlives the
            // iteration, so the free memory pointer goes back: the cost per member stays flat
            // instead of growing with memory expansion (quadratic in a big opened leaf).
            uint256 freeMemory;
            assembly {
                freeMemory := mload(0x40)
            }
            if (_isLiveMember(ch, c, leaf, m)) ++tally;
            assembly {
                mstore(0x40, freeMemory)
            }
        }
        return (tally, after_);
    }

    /// @dev Whether `m` is a live member of `leaf` (stored side and leaf; members that closed or
    /// moved are skipped); reverts if it is unlisted, eligible and ranks above the last entry.
    function _isLiveMember(
        Clearinghouse ch,
        AdlCall.Call memory c,
        uint256 leaf,
        address m
    ) private view returns (bool) {
        IClearinghouseTypes.Position memory p = ch.getPosition(c.marketId, m);
        if (p.size == 0 || p.isLong != c.side || p.leaf != leaf) return false;
        if (!AdlCall.isMarked(c, m) && AdlCall.outranksLast(c, m, p)) revert IAdlTypes.AdlMemberOutranks(m);
        return true;
    }
}
