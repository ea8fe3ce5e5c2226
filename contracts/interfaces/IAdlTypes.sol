// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAdlTypes
/// @notice The proof format, events and errors of verifiable ADL, shared by the deleverager and its
/// session module (which runs by DELEGATECALL on the deleverager's storage, so its events and
/// errors surface from the deleverager's address).
interface IAdlTypes {
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

    // ------------------------------------------------------------------ sessions (DESIGN.md section 4)

    /// @notice An open session as the `adlSession` view returns it (id 0: none).
    /// @param id Session id (global counter, from 1); it also keys the persistent list marks.
    /// @param bankrupt The position being settled.
    /// @param openedAt Timestamp of the opening block; the session ends at openedAt + T.
    /// @param deadline openedAt + T: the last timestamp at which it may continue or finish.
    /// @param cursor The next leaf the proof must tile from (LEAVES when complete).
    /// @param held True when the leaf at `cursor` is split across calls: members up to `heldLast`
    /// are verified and `heldTally` counts them (adjusted as members join or leave below it).
    /// @param holder The account whose chunk holds the leaf: until `holdUntil` only it may continue
    /// or restart the leaf; afterwards anyone may (a restart lists the leaf from its first member).
    /// @param price Pinned index price P. @param funding Pinned cumulative funding F.
    /// @param sigma Pinned fund subsidy per unit. @param delta Pinned loss per unit.
    /// @param lastScore Score of the last live entry. @param lastAccount Its address.
    /// @param reserveTokens Fund tokens set aside for `bankrupt`.
    /// @param listed The live entries, in queue order.
    struct SessionInfo {
        uint256 id;
        address bankrupt;
        uint64 openedAt;
        uint64 deadline;
        uint256 cursor;
        bool held;
        address heldLast;
        uint256 heldTally;
        address holder;
        uint64 holdUntil;
        uint256 price;
        int256 funding;
        uint256 sigma;
        uint256 delta;
        int256 lastScore;
        address lastAccount;
        uint256 reserveTokens;
        address[] listed;
    }

    /// @notice A multi-transaction settlement of `bankrupt` against the `side` (true: longs) of
    /// `marketId` opened at the pinned `price`, `funding`, subsidy per unit `sigma` and loss per unit
    /// `delta`; its last live entry has queue key (`lastScore`, `lastAccount`). The fund's `Reserved`
    /// event says what was set aside for `bankrupt`; the `adlSession` view lists the entries.
    event AdlSessionOpened(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        address bankrupt,
        uint256 price,
        int256 funding,
        uint256 sigma,
        uint256 delta,
        int256 lastScore,
        address lastAccount
    );
    /// @notice A continue call verified tiles up to leaf `cursor`; `heldLeafTally` members of the
    /// leaf at `cursor` are verified so far when `held` (a leaf split across calls).
    event AdlSessionContinued(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        uint256 cursor,
        bool held,
        uint256 heldLeafTally,
        uint256 openedMembers
    );
    /// @notice The session ended by finishing: `closedSize` of the bankrupt position was settled
    /// (0 when it had recovered or the fund now covers it; the reserve was released).
    event AdlSessionFinished(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        uint256 closedSize
    );
    /// @notice The session ended because `account` is unlisted, eligible and ranks above its last entry.
    event AdlSessionChallenged(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        address account,
        address challenger
    );
    /// @notice The session ended unfinished after its time `T`.
    event AdlSessionExpired(bytes32 indexed marketId, bool indexed side, uint256 indexed sessionId);
    /// @notice The session time `T` of `marketId` was set.
    event SessionTtlSet(bytes32 indexed marketId, uint32 ttlSeconds);
    /// @notice Ending session `sessionId` could not release its reserve in `fund` (the fund refused,
    /// e.g. the deleverager lost its cover role); the session ended anyway, and the fund's admin can
    /// release the key itself.
    event AdlReserveReleaseFailed(bytes32 indexed marketId, bool indexed side, uint256 indexed sessionId, address fund);

    /// @notice A session is open on (`marketId`, `side`): no second session, no single-transaction call.
    error AdlSessionActive(bytes32 marketId, bool side);
    /// @notice No session is open on (`marketId`, `side`).
    error AdlNoSession(bytes32 marketId, bool side);
    /// @notice The change to `account`'s position would invalidate the open session's proof.
    error AdlPending(bytes32 marketId, address account);
    /// @notice The session is older than `T`: `deadline` has passed.
    error AdlSessionTooOld(uint256 deadline, uint256 timestamp);
    /// @notice The session is not older than `T` yet.
    error AdlSessionNotExpired(uint256 deadline, uint256 timestamp);
    /// @notice Finish before the proof reached the last leaf (or with a leaf still held).
    error AdlSessionIncomplete(uint256 cursor, bool held);
    /// @notice A continue call must resume the held leaf `leaf` first.
    error AdlHeldLeaf(uint256 leaf);
    /// @notice Leaf `leaf` is held (a session's split leaf or a split refresh) by `holder`, who alone
    /// may continue or restart it until `until`.
    error AdlLeafReserved(uint256 leaf, address holder, uint256 until);
    /// @notice A chunk that leaves leaf `leaf` unfinished must list at least one member, and only live
    /// members of the leaf.
    error AdlPartialChunk(uint256 leaf);
    /// @notice The named position does not show that the session's list was not the head.
    error AdlChallengeRejected(address account);
    /// @notice `T` outside [MIN_SESSION_TTL, MAX_SESSION_TTL].
    error AdlSessionTtlOutOfRange(uint256 ttlSeconds);
    /// @notice The session module was called directly instead of through the deleverager.
    error AdlModuleDirectCall();
    /// @notice `account` is not a member of the leaf being refreshed (closed, other side or leaf).
    error AdlNotMember(address account);
    /// @notice Too many split leaf refreshes pending on one side of a market.
    error AdlTooManyRefreshes();

    /// @notice A split refresh of `leaf` has merged `tally` of its `count` members, up to `last`.
    event LeafRefreshChunk(
        bytes32 indexed marketId,
        bool isLong,
        uint256 leaf,
        address last,
        uint256 tally,
        uint256 count
    );
}
