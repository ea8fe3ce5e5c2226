// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRankIndex} from "./IRankIndex.sol";
import {IAdlTypes} from "./IAdlTypes.sol";

/// @title IAutoDeleverager
/// @notice Verifiable auto-deleveraging (docs/mechanism.md sections 3 and 4): any keeper settles a
/// bankrupt position the insurance fund cannot cover by naming the opposite side's head of the
/// ADL queue; the contract accepts the list only with a proof, over its rank index, that no
/// higher-ranked eligible position was left out.
interface IAutoDeleverager is IRankIndex, IAdlTypes {
    /// @notice Settles (part of) `bankrupt`'s position in `marketId` against `counterparties`,
    /// which must be exactly the head of the eligible opposite-side queue, as `proof` shows.
    /// @dev Callable by anyone; non-reentrant. Entries whose positions closed since the keeper
    /// built the list are skipped; opened-leaf members that closed or moved are skipped.
    function deleverage(
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties,
        ProofNode[] calldata proof
    ) external;

    /// @notice Recomputes the node at (`level`, `position`) of a tree: an internal node from its
    /// children; a leaf from `members`, its full member list in ascending address order.
    function refresh(
        bytes32 marketId,
        bool isLong,
        uint256 level,
        uint256 position,
        address[] calldata members
    ) external;

    /// @notice Refreshes leaf `leaf` of a tree over several calls (anyone): each call lists further
    /// members in ascending address order above the last one listed; when all of the leaf's current
    /// members are merged, the leaf is written (and `NodeRefreshed` emitted). A member at or below the
    /// last address listed that changes or leaves meanwhile cancels the refresh (start again).
    function refreshLeafChunk(bytes32 marketId, bool isLong, uint256 leaf, address[] calldata members) external;

    /// @notice Records `account` as an unsettled bankrupt position (anyone may call): it must be
    /// bankrupt at the current price and funding with the fund short of its deficit.
    function reportUnsettled(bytes32 marketId, address account) external;

    /// @notice Removes `account` from the unsettled list once it is closed or no longer bankrupt.
    function clearUnsettled(bytes32 marketId, address account) external;

    /// @notice The unsettled bankrupt positions of `marketId` and their deficits at the current
    /// price and funding (0 for one that has recovered and awaits `clearUnsettled`).
    function unsettled(bytes32 marketId) external view returns (address[] memory accounts, uint256[] memory deficits);

    /// @notice The canonical queue score of `account`'s position, funding accrued virtually to now.
    /// @return minusInfinity True if the position's equity per unit cannot be positive.
    /// @return score The finite score (type(int256).min when minus infinity).
    function adlScore(bytes32 marketId, address account) external view returns (bool minusInfinity, int256 score);

    /// @notice The loss per unit `delta` counterparties of `bankrupt` would absorb now (0 if not
    /// bankrupt), and the fund's subsidy per unit `sigma`.
    function adlDelta(bytes32 marketId, address bankrupt) external view returns (uint256 delta, uint256 sigma);

    // ------------------------------------------------------------------ sessions (docs/mechanism.md section 4)

    /// @notice Opens a multi-transaction settlement of `bankrupt` (anyone): checks the precondition,
    /// pins one strict oracle price, funding, sigma and delta, sets sigma * q_B of the fund aside as
    /// `bankrupt`'s reserve, walks `counterparties` as `deleverage` does and stores them with
    /// persistent marks. At most one session per (market, counterparty side).
    /// @return sessionId The new session's id.
    function openAdlSession(
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties
    ) external returns (uint256 sessionId);

    /// @notice Verifies further tiles of the session's completeness proof from its cursor at the
    /// pinned values (anyone). The last node may be a leaf listed only in part: it is held, and the
    /// next call resumes it above the last address listed.
    function continueAdlSession(bytes32 marketId, bool side, ProofNode[] calldata proof) external;

    /// @notice Ends a complete session no older than `T` (anyone): re-checks the precondition at the
    /// current price and funding (no trade if `bankrupt` recovered or is now covered), otherwise
    /// settles at the pinned sigma on current sizes, skipping entries that closed. The reserve is
    /// released either way.
    function finishAdlSession(bytes32 marketId, bool side) external;

    /// @notice Ends the session if `account` is an open, unlisted, eligible position on its side
    /// ranked above its last entry at the pinned values (the list was never the head).
    function challengeAdlSession(bytes32 marketId, bool side, address account) external;

    /// @notice Ends a session older than `T` without a trade (anyone); its reserve is released.
    function expireAdlSession(bytes32 marketId, bool side) external;

    /// @notice The final layer (docs/mechanism.md section 7.6): settles `bankrupt` when the fund
    /// cannot cover it and no session is open in the market, if either `proof` tiles the opposite
    /// side's tree with an empty list (every node empty or wholly ineligible at the call's delta,
    /// every opened leaf's live members ineligible: ADL is impossible now), or `proof` is empty and
    /// `bankrupt` has been on the unsettled list for at least `socialDelay` (ADL was too slow). The
    /// fund pays what it can, the rest is charged to every opposite position through its side's loss
    /// index, and the caller (anyone but the owner) takes the position over at the index price with
    /// zero equity, earning the keeper pay. O(1) in the number of positions, plus the proof.
    function socializeLoss(bytes32 marketId, address bankrupt, ProofNode[] calldata proof) external;

    /// @notice When `account` joined the unsettled list of `marketId` (0: not on it).
    function unsettledSince(bytes32 marketId, address account) external view returns (uint256);

    /// @notice The delay `T_social` after which an unsettled position may be socialized without a
    /// proof: the configured value, and never less than twice the session time `T`.
    function socialDelay(bytes32 marketId) external view returns (uint256);

    /// @notice The open session on (`marketId`, `side`) (id 0 if none).
    function adlSession(bytes32 marketId, bool side) external view returns (SessionInfo memory);
}
