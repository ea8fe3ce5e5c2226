// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {ScoreMath} from "../libraries/ScoreMath.sol";
import {AdlStorage} from "./AdlStorage.sol";

/// @title AdlCall
/// @notice What one settlement fixes (one (P, F), delta and the last live entry's key), the
/// ranking predicates at those values, and the marks of listed entries.
/// @dev Internal functions only: the few lines the rank index's guard, the proof verifier and the
/// session challenge all need are inlined where they run.
library AdlCall {
    /// @dev Transient-storage namespace of the per-call list marks of single-transaction calls.
    bytes32 internal constant MARK_NAMESPACE = keccak256("adl.deleverager.listed");
    /// @dev Storage namespace of the persistent list marks of sessions (keyed by session id, so a
    /// new session never sees an old one's marks and nothing needs clearing).
    bytes32 internal constant SESSION_MARK_NAMESPACE = keccak256("adl.deleverager.sessionListed");

    /// @dev What one settlement fixes: one (P, F), delta and the last live entry's key.
    struct Call {
        bytes32 marketId;
        bool side; // the counterparties' side: true for longs
        uint256 price;
        int256 funding; // F of the counterparties' side (its loss index folded in)
        int256 bankruptFunding; // F of the bankrupt position's side, for its own equity
        uint256 delta;
        uint256 callId; // transient marks of a single-transaction call
        uint256 sessionId; // persistent marks of a session (0: none)
        int256 lastScore;
        address lastAccount;
    }

    /// @dev The call a session pinned, rebuilt from storage.
    function sessionCall(
        bytes32 marketId,
        bool side,
        AdlStorage.Session storage s
    ) internal view returns (Call memory c) {
        c.marketId = marketId;
        c.side = side;
        c.price = s.price;
        c.funding = s.funding;
        c.delta = s.delta;
        c.sessionId = s.id;
        c.lastScore = s.lastScore;
        c.lastAccount = s.lastAccount;
    }

    /// @dev Whether `p` is eligible and ranks above the last live entry at the call's values: the
    /// one thing completeness forbids of an unlisted position.
    function outranksLast(
        Call memory c,
        address account,
        IClearinghouseTypes.Position memory p
    ) internal pure returns (bool) {
        if (!eligible(c, p)) return false;
        (bool minusInf, int256 score) = scoreOf(c, p);
        return !ScoreMath.ranksBelow(score, minusInf, account, c.lastScore, false, c.lastAccount);
    }

    /// @dev Equity per unit floor(W*W/a) + x covers delta (from the stored, rounded-up a).
    function eligible(Call memory c, IClearinghouseTypes.Position memory p) internal pure returns (bool) {
        return ScoreMath.isEligible(c.side, p.leverage, p.entry, c.price, c.funding, c.delta);
    }

    /// @dev The queue score of `p` at the call's (P, F): (minus infinity, finite score).
    function scoreOf(Call memory c, IClearinghouseTypes.Position memory p) internal pure returns (bool, int256) {
        return ScoreMath.score(p.leverage, PositionMath.pnlPerUnit(p.isLong, p.entry, c.price, c.funding), c.price);
    }

    /// @dev Marks `account` as listed: in transient storage for a single-transaction call, in
    /// storage under the session id for a session. Runs in the deleverager's context (its own code
    /// or a library it delegates to), so the marks are the deleverager's.
    function mark(Call memory c, address account) internal {
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

    /// @dev Whether `account` is marked as listed in this call or session.
    function isMarked(Call memory c, address account) internal view returns (bool marked) {
        if (c.sessionId != 0) return isSessionListed(c.sessionId, account);
        bytes32 slot = keccak256(abi.encode(MARK_NAMESPACE, c.callId, account));
        assembly ("memory-safe") {
            marked := tload(slot)
        }
    }

    /// @dev Whether session `sessionId` listed `account`.
    function isSessionListed(uint256 sessionId, address account) internal view returns (bool marked) {
        bytes32 slot = _sessionMarkSlot(sessionId, account);
        assembly ("memory-safe") {
            marked := sload(slot)
        }
    }

    function _sessionMarkSlot(uint256 sessionId, address account) private pure returns (bytes32) {
        return keccak256(abi.encode(SESSION_MARK_NAMESPACE, sessionId, account));
    }
}
