// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAdlTypes
/// @notice The proof format, events and errors of verifiable ADL. The deleverager's libraries
/// (AdlProofLib, AdlSessionLib) raise and emit them as `IAdlTypes.X`; they run by DELEGATECALL on the
/// deleverager, so events and errors surface from its address and are in its ABI.
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
    /// awaits settlement (docs/mechanism.md section 3, step 5).
    event UnsettledAdded(bytes32 indexed marketId, address indexed account, uint256 deficit);
    /// @notice `account` left the unsettled list (settled, closed or recovered).
    event UnsettledRemoved(bytes32 indexed marketId, address indexed account);
    /// @notice The band reference of `marketId` was set.
    event MarketConfigured(bytes32 indexed marketId, uint8 kRef);
    /// @notice Work bounds changed.
    event BoundsSet(uint256 maxListLength, uint256 maxProofNodes, uint256 maxOpenedMembers);
    /// @notice A node was recomputed from its children or, for a leaf, its member list.
    event NodeRefreshed(bytes32 indexed marketId, bool isLong, uint256 level, uint256 position);

    /// @notice `reindex` was called by `caller`, not the clearinghouse.
    error AdlNotClearinghouse(address caller);
    /// @notice `account` has non-negative `equity` in `marketId` at the price and funding of the call.
    error AdlNotBankrupt(bytes32 marketId, address account, int256 equity);
    /// @notice The fund can pay the whole `deficit` (`fundAvailable` >= `deficit`): no ADL needed.
    error AdlFundSufficient(uint256 deficit, uint256 fundAvailable);
    /// @notice Every entry of the list is closed: nothing to settle against.
    error AdlNoLiveEntry();
    /// @notice List entry `account` is on the bankrupt position's side, not the opposite one.
    error AdlEntrySameSide(address account);
    /// @notice The list names the bankrupt position `account` itself.
    error AdlEntryIsBankrupt(address account);
    /// @notice List entry `account` appears more than once.
    error AdlEntryDuplicate(address account);
    /// @notice List entry `account` cannot absorb the loss per unit delta (not eligible).
    error AdlEntryIneligible(address account);
    /// @notice List entry `account` has a minus-infinity score (equity per unit not positive).
    error AdlEntryNotFinite(address account);
    /// @notice List entry `account` does not rank below the live entry before it, `previous`.
    error AdlListOrder(address previous, address account);
    /// @notice List entry `account` follows entries that already take the whole bankrupt position.
    error AdlListPadded(address account);
    /// @notice The list has `length` entries, more than `max` (maxListLength).
    error AdlListTooLong(uint256 length, uint256 max);
    /// @notice The proof (or session call) has `nodes` nodes, more than `max` (maxProofNodes).
    error AdlProofTooLong(uint256 nodes, uint256 max);
    /// @notice Opened leaves list `members` members together, more than `max` (maxOpenedMembers).
    error AdlOpenedMembersTooMany(uint256 members, uint256 max);
    /// @notice The node at (`level`, `position`) does not start at the proof's cursor leaf `cursor`.
    error AdlProofGap(uint256 level, uint256 position, uint256 cursor);
    /// @notice The proof stops at leaf `cursor` instead of covering every leaf.
    error AdlProofIncomplete(uint256 cursor);
    /// @notice Pruned node (`level`, `position`) may hold an eligible position above the last entry.
    error AdlNodeNotPrunable(uint256 level, uint256 position);
    /// @notice The proof opens the node at (`level`, `position`), which is not a leaf.
    error AdlOpenedNotLeaf(uint256 level, uint256 position);
    /// @notice Member `member` does not come after `previous` in ascending address order.
    error AdlMembersNotAscending(address previous, address member);
    /// @notice Opened-leaf `member` is unlisted, eligible, above the last entry (`refresh`: not a member).
    error AdlMemberOutranks(address member);
    /// @notice Leaf `leaf` lists `listed` live members, not its stored `count`.
    error AdlLeafCountMismatch(uint256 leaf, uint256 listed, uint256 count);
    /// @notice `setBounds` was given a zero bound.
    error AdlBoundsOutOfRange();
    /// @notice `account` still has a `deficit` in `marketId`: it stays on the unsettled list.
    error AdlStillUnsettled(bytes32 marketId, address account, uint256 deficit);

    // ------------------------------------------------------------------ socialized loss

    /// @notice `caller` settled `bankrupt` by the final layer (the clearinghouse's `LossSocialized`
    /// carries the amounts), triggered by its deadline (`byDeadline`) or by a proof that no
    /// opposite position is eligible.
    event LossSocializationTriggered(
        bytes32 indexed marketId,
        address indexed bankrupt,
        address indexed caller,
        bool byDeadline
    );
    /// @notice The socialization delay `T_social` of `marketId` was configured (0: twice `T`).
    event SocialDelaySet(bytes32 indexed marketId, uint32 delaySeconds);
    /// @notice The owner of a bankrupt position may not settle it by the final layer.
    error AdlSocialSelf(address account);
    /// @notice `account` has been unsettled too briefly (or was never reported): the deadline
    /// trigger opens at `due` (0: report it first).
    error AdlSocialTooEarly(bytes32 marketId, address account, uint256 due);
    /// @notice A socialization delay above the largest allowed.
    error AdlSocialDelayOutOfRange(uint256 delaySeconds);

    // ------------------------------------------------------------------ sessions (docs/mechanism.md section 4)

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
    /// @param opener The account that opened the session and posted its bond (zero if no bond).
    /// @param bondTokens Collateral tokens the opener posted: returned at finish or expiry, paid to a
    /// successful challenger.
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
        address opener;
        uint256 bondTokens;
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
    /// leaf at `cursor` are verified so far when `held` (a leaf split across calls). Of the
    /// `openedMembers` it listed, `paidMembers` live ones were verified for the first time in the
    /// session: the caller was paid the market's `memberPay` for each (the clearinghouse's
    /// `KeeperRewardPaid` says what the keeper reserve paid).
    event AdlSessionContinued(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        uint256 cursor,
        bool held,
        uint256 heldLeafTally,
        uint256 openedMembers,
        uint256 paidMembers
    );
    /// @notice `opener` posted `tokens` of collateral as the session's bond.
    event AdlSessionBondPosted(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        address opener,
        uint256 tokens
    );
    /// @notice The session's bond of `tokens` went to `to`'s free collateral in the clearinghouse: the
    /// opener's at finish or expiry, the challenger's after a successful challenge.
    event AdlSessionBondPaid(
        bytes32 indexed marketId,
        bool indexed side,
        uint256 indexed sessionId,
        address to,
        uint256 tokens
    );
    /// @notice The session terms of `marketId` were set: the opener's `bond` and the pay per member
    /// verified, `memberPay` (both 18-decimal quote).
    event SessionTermsSet(bytes32 indexed marketId, uint256 bond, uint256 memberPay);
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
    /// @notice A session continue carried no proof node: it would verify nothing.
    error AdlProofEmpty();
    /// @notice The named position does not show that the session's list was not the head.
    error AdlChallengeRejected(address account);
    /// @notice A session `bond` above MAX_SESSION_BOND or a `memberPay` above MAX_MEMBER_PAY.
    error AdlSessionTermsOutOfRange(uint256 bond, uint256 memberPay);
    /// @notice The bond transfer delivered `received` collateral tokens instead of `expected`.
    error AdlBondShort(uint256 expected, uint256 received);
    /// @notice `T` outside [MIN_SESSION_TTL, MAX_SESSION_TTL].
    error AdlSessionTtlOutOfRange(uint256 ttlSeconds);
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
