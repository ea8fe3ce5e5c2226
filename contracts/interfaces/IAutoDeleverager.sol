// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRankIndex} from "./IRankIndex.sol";

/// @title IAutoDeleverager
/// @notice Verifiable auto-deleveraging (DESIGN.md sections 3 and 4): any keeper settles a
/// bankrupt position the insurance fund cannot cover by naming the opposite side's head of the
/// ADL queue; the contract accepts the list only with a proof, over its rank index, that no
/// higher-ranked eligible position was left out.
interface IAutoDeleverager is IRankIndex {
    /// @notice One node of a completeness proof, in left-to-right order.
    /// @param level 0 for a leaf, up to HEIGHT for the root.
    /// @param position The node's index within its level.
    /// @param open True to open a leaf (level 0) by listing its members; false to prune the node.
    /// @param members An opened leaf's members in ascending address order (empty when pruned).
    struct ProofNode {
        uint8 level;
        uint32 position;
        bool open;
        address[] members;
    }

    /// @notice A counterparty took `size` of `bankrupt`'s position at `price` as entry number
    /// `queuePosition` (0-based among live entries) with queue score `score`.
    event CounterpartyDeleveraged(
        bytes32 indexed marketId,
        address indexed bankrupt,
        address indexed counterparty,
        uint256 size,
        uint256 price,
        int256 score,
        uint256 queuePosition,
        uint256 charged
    );
    /// @notice An ADL call closed `closedSize` of `bankrupt`: the fund paid `fundContribution`, the
    /// counterparties absorbed `deficitAbsorbed`; `remainingSize` is left open.
    event DeleverageExecuted(
        bytes32 indexed marketId,
        address indexed bankrupt,
        uint256 closedSize,
        uint256 fundContribution,
        uint256 deficitAbsorbed,
        uint256 remainingSize,
        uint256 delta
    );
    /// @notice `account` is bankrupt in `marketId`, the fund cannot cover its `deficit`, and it
    /// awaits settlement (DESIGN.md section 3, step 5).
    event UnsettledAdded(bytes32 indexed marketId, address indexed account, uint256 deficit);
    /// @notice `account` left the unsettled list (settled, closed or recovered).
    event UnsettledRemoved(bytes32 indexed marketId, address indexed account);
    /// @notice The band reference of `marketId` was set.
    event MarketConfigured(bytes32 indexed marketId, uint8 kRef);
    /// @notice Work bounds changed.
    event BoundsSet(uint256 maxListLength, uint256 maxProofNodes, uint256 maxOpenedMembers);
    /// @notice A node was recomputed from its children or, for a leaf, its member list.
    event NodeRefreshed(bytes32 indexed marketId, bool isLong, uint256 level, uint256 position);

    error AdlNotClearinghouse(address caller);
    error AdlNotBankrupt(bytes32 marketId, address account, int256 equity);
    error AdlFundSufficient(uint256 deficit, uint256 fundAvailable);
    error AdlNoLiveEntry();
    error AdlEntrySameSide(address account);
    error AdlEntryIsBankrupt(address account);
    error AdlEntryDuplicate(address account);
    error AdlEntryIneligible(address account);
    error AdlEntryNotFinite(address account);
    error AdlListOrder(address previous, address account);
    error AdlListPadded(address account);
    error AdlListTooLong(uint256 length, uint256 max);
    error AdlProofTooLong(uint256 nodes, uint256 max);
    error AdlOpenedMembersTooMany(uint256 members, uint256 max);
    error AdlProofGap(uint256 level, uint256 position, uint256 cursor);
    error AdlProofIncomplete(uint256 cursor);
    error AdlNodeNotPrunable(uint256 level, uint256 position);
    error AdlOpenedNotLeaf(uint256 level, uint256 position);
    error AdlMembersNotAscending(address previous, address member);
    error AdlMemberOutranks(address member);
    error AdlLeafCountMismatch(uint256 leaf, uint256 listed, uint256 count);
    error AdlBoundsOutOfRange();
    error AdlStillUnsettled(bytes32 marketId, address account, uint256 deficit);

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
}
