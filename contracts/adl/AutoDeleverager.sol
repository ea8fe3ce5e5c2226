// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAutoDeleverager} from "../interfaces/IAutoDeleverager.sol";
import {IRankIndex} from "../interfaces/IRankIndex.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {ClearinghouseLens} from "../periphery/ClearinghouseLens.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {ScoreMath} from "../libraries/ScoreMath.sol";
import {RankTree} from "../libraries/RankTree.sol";

/// @title AutoDeleverager
/// @notice The rank index (one tree per market and side, reindexed by the clearinghouse on every
/// position change) and single-transaction verifiable ADL: a keeper's list is accepted only if it
/// is ordered, eligible, and provably complete against node bounds the contract keeps itself.
/// Execution goes through `Clearinghouse.settleDeleverage`, which re-checks what the core owns
/// (pure reductions, the bankrupt part at zero, nobody below zero, conservation).
contract AutoDeleverager is IAutoDeleverager, AccessControl, ReentrancyGuardTransient {
    using FixedPointMath for uint256;

    /// @notice Configures markets' band references and work bounds.
    bytes32 public constant ADL_ADMIN_ROLE = keccak256("ADL_ADMIN_ROLE");
    uint256 private constant WAD = FixedPointMath.WAD;
    /// @dev Transient-storage namespace of the per-call list marks.
    bytes32 private constant MARK_NAMESPACE = keccak256("adl.deleverager.listed");

    /// @notice The clearinghouse whose positions are indexed.
    Clearinghouse public immutable clearinghouse;
    /// @notice Views that accrue funding virtually (for `adlScore` and `adlDelta`).
    ClearinghouseLens public immutable lens;

    /// @notice Per-market reference exponent of the K bands (see RankTree.bandOf).
    mapping(bytes32 marketId => uint8) public kRef;
    /// @notice Most entries a list may have.
    uint256 public maxListLength = 64;
    /// @notice Most nodes a proof may have.
    uint256 public maxProofNodes = 512;
    /// @notice Most members all opened leaves of one proof may list together.
    uint256 public maxOpenedMembers = 2000;

    mapping(bytes32 marketId => mapping(bool isLong => RankTree.Tree)) private _trees;
    /// @dev Unsettled bankrupt positions per market, and each one's index + 1 in that list.
    mapping(bytes32 marketId => address[]) private _unsettled;
    mapping(bytes32 marketId => mapping(address account => uint256)) private _unsettledSlot;
    /// @dev Counts deleverage calls within a transaction, so list marks never leak between calls.
    uint256 private transient _callNonce;

    /// @dev What one deleverage call fixes at its start: one (P, F) and delta for everything.
    struct Call {
        bytes32 marketId;
        bool side; // the counterparties' side: true for longs
        uint256 price;
        int256 funding;
        uint256 delta;
        uint256 callId;
        int256 lastScore;
        address lastAccount;
    }

    constructor(Clearinghouse clearinghouse_, ClearinghouseLens lens_, address admin) {
        clearinghouse = clearinghouse_;
        lens = lens_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ADL_ADMIN_ROLE, admin);
    }

    // ================================================================ admin

    /// @notice Sets the K-band reference of `marketId` (e.g. bitlen(listing price) - 1). Any value
    /// is sound: membership is read from the stored leaf, never recomputed.
    function configureMarket(bytes32 marketId, uint8 bandReference) external onlyRole(ADL_ADMIN_ROLE) {
        kRef[marketId] = bandReference;
        emit MarketConfigured(marketId, bandReference);
    }

    /// @notice Sets the work bounds of one deleverage call.
    function setBounds(
        uint256 listLength,
        uint256 proofNodes,
        uint256 openedMembers
    ) external onlyRole(ADL_ADMIN_ROLE) {
        if (listLength == 0 || proofNodes == 0 || openedMembers == 0) revert AdlBoundsOutOfRange();
        maxListLength = listLength;
        maxProofNodes = proofNodes;
        maxOpenedMembers = openedMembers;
        emit BoundsSet(listLength, proofNodes, openedMembers);
    }

    // ================================================================ rank index

    /// @inheritdoc IRankIndex
    function reindex(
        bytes32 marketId,
        address,
        bool wasOpen,
        bool wasLong,
        uint16 oldLeaf,
        bool isOpen,
        bool isLong,
        uint256 a,
        int256 k
    ) external returns (uint16 leaf) {
        if (msg.sender != address(clearinghouse)) revert AdlNotClearinghouse(msg.sender);
        if (isOpen) leaf = uint16(RankTree.leafOf(a, k, kRef[marketId]));
        if (wasOpen && isOpen && wasLong == isLong && oldLeaf == leaf) {
            RankTree.update(_trees[marketId][isLong], isLong, leaf, a, k);
            return leaf;
        }
        if (wasOpen) RankTree.remove(_trees[marketId][wasLong], oldLeaf);
        if (isOpen) RankTree.insert(_trees[marketId][isLong], isLong, leaf, a, k);
    }

    /// @inheritdoc IAutoDeleverager
    function refresh(
        bytes32 marketId,
        bool isLong,
        uint256 level,
        uint256 position,
        address[] calldata members
    ) external nonReentrant {
        RankTree.Tree storage t = _trees[marketId][isLong];
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

    // ================================================================ deleverage

    /// @inheritdoc IAutoDeleverager
    function deleverage(
        bytes32 marketId,
        address bankrupt,
        address[] calldata counterparties,
        ProofNode[] calldata proof
    ) external nonReentrant {
        if (counterparties.length > maxListLength) revert AdlListTooLong(counterparties.length, maxListLength);
        if (proof.length > maxProofNodes) revert AdlProofTooLong(proof.length, maxProofNodes);
        // One F for the whole call: the clearinghouse accrues once per block.
        clearinghouse.accrueFunding(marketId);
        Call memory c;
        c.marketId = marketId;
        c.callId = ++_callNonce;
        (c.price, ) = clearinghouse.oracle().getPrice(marketId, true);
        c.funding = clearinghouse.marketState(marketId).cumulativeFunding;
        IClearinghouseTypes.Position memory b = clearinghouse.getPosition(marketId, bankrupt);
        (uint256 deficit, uint256 covered) = _deficitAndCover(marketId, bankrupt, b, c.price, c.funding);
        // sigma = floor(min(A, D) * W / q), delta = ceil(D * W / q) - sigma > 0.
        c.delta = deficit.mulDivUp(WAD, b.size) - covered.mulDivDown(WAD, b.size);
        c.side = !b.isLong;
        (IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores) = _walkList(
            c,
            bankrupt,
            b.size,
            counterparties
        );
        _verifyProof(c, proof);
        _execute(c, bankrupt, b, legs, scores, covered);
        // A partly settled position stays visible until it is settled in full.
        if (clearinghouse.getPosition(marketId, bankrupt).size == 0) _removeUnsettled(marketId, bankrupt);
        else _addUnsettled(marketId, bankrupt, deficit - _closedShare(deficit, b.size, legs));
    }

    // ================================================================ unsettled positions

    /// @inheritdoc IAutoDeleverager
    function reportUnsettled(bytes32 marketId, address account) external nonReentrant {
        uint256 deficit = _currentDeficit(marketId, account);
        uint256 available = _fundAvailable();
        if (deficit == 0) revert AdlNotBankrupt(marketId, account, 0);
        if (available >= deficit) revert AdlFundSufficient(deficit, available);
        _addUnsettled(marketId, account, deficit);
    }

    /// @inheritdoc IAutoDeleverager
    function clearUnsettled(bytes32 marketId, address account) external nonReentrant {
        uint256 deficit = _currentDeficit(marketId, account);
        if (deficit != 0) revert AdlStillUnsettled(marketId, account, deficit);
        _removeUnsettled(marketId, account);
    }

    /// @inheritdoc IAutoDeleverager
    function unsettled(bytes32 marketId) external view returns (address[] memory accounts, uint256[] memory deficits) {
        accounts = _unsettled[marketId];
        deficits = new uint256[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) deficits[i] = _currentDeficit(marketId, accounts[i]);
    }

    // ================================================================ views

    /// @inheritdoc IAutoDeleverager
    function adlScore(bytes32 marketId, address account) external view returns (bool minusInfinity, int256 score) {
        IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, account);
        (uint256 price, ) = clearinghouse.oracle().getPrice(marketId, false);
        int256 x = PositionMath.pnlPerUnit(p.isLong, p.entry, price, lens.currentFunding(marketId));
        return ScoreMath.score(p.leverage, x, price);
    }

    /// @inheritdoc IAutoDeleverager
    function adlDelta(bytes32 marketId, address bankrupt) external view returns (uint256 delta, uint256 sigma) {
        IClearinghouseTypes.Position memory b = clearinghouse.getPosition(marketId, bankrupt);
        if (b.size == 0) return (0, 0);
        (uint256 price, ) = clearinghouse.oracle().getPrice(marketId, false);
        int256 x = PositionMath.pnlPerUnit(b.isLong, b.entry, price, lens.currentFunding(marketId));
        int256 eq = PositionMath.equity(b.margin, b.size, x);
        if (eq >= 0) return (0, 0);
        uint256 deficit = uint256(-eq);
        uint256 available = _fundAvailable();
        uint256 covered = available < deficit ? available : deficit;
        sigma = covered.mulDivDown(WAD, b.size);
        delta = deficit.mulDivUp(WAD, b.size) - sigma;
    }

    /// @notice The node record at (`level`, `position`) of a tree.
    function nodeAt(
        bytes32 marketId,
        bool isLong,
        uint256 level,
        uint256 position
    ) external view returns (RankTree.Node memory) {
        return RankTree.node(_trees[marketId][isLong], RankTree.heapIndex(level, position));
    }

    // ================================================================ internals

    /// @dev D and min(A, D) at the call's (P, F); reverts unless bankrupt and the fund falls short.
    function _deficitAndCover(
        bytes32 marketId,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        uint256 price,
        int256 funding
    ) private view returns (uint256 deficit, uint256 covered) {
        int256 eq = b.size == 0
            ? int256(0)
            : PositionMath.equity(b.margin, b.size, PositionMath.pnlPerUnit(b.isLong, b.entry, price, funding));
        if (eq >= 0) revert AdlNotBankrupt(marketId, bankrupt, eq);
        deficit = uint256(-eq);
        uint256 available = _fundAvailable();
        if (available >= deficit) revert AdlFundSufficient(deficit, available);
        covered = available;
    }

    /// @dev Walks the list before any state changes (DESIGN.md section 3, step 2).
    function _walkList(
        Call memory c,
        address bankrupt,
        uint256 remaining,
        address[] calldata list
    ) private returns (IClearinghouseTypes.DeleverageLeg[] memory legs, int256[] memory scores) {
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
            _mark(c.callId, account);
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
        if (_isMarked(c.callId, account)) revert AdlEntryDuplicate(account);
        bool minusInf;
        (minusInf, score) = _scoreOf(c, p);
        if (minusInf) revert AdlEntryNotFinite(account);
        if (!_eligible(c, p)) revert AdlEntryIneligible(account);
        if (!first && !ScoreMath.ranksBelow(score, false, account, c.lastScore, false, c.lastAccount)) {
            revert AdlListOrder(c.lastAccount, account);
        }
    }

    /// @dev Completeness (DESIGN.md section 4): the proof tiles all leaves left to right; every
    /// node is empty, bounded strictly below the last live entry, wholly ineligible, or an opened
    /// leaf whose every live member is listed, ranks below the last entry, or is ineligible.
    function _verifyProof(Call memory c, ProofNode[] calldata proof) private view {
        RankTree.Tree storage t = _trees[c.marketId][c.side];
        uint256 cursor;
        uint256 opened;
        for (uint256 i; i < proof.length; ++i) {
            ProofNode calldata n = proof[i];
            uint256 level = n.level;
            uint256 heap = RankTree.heapIndex(level, n.position);
            if (uint256(n.position) << level != cursor) revert AdlProofGap(level, n.position, cursor);
            RankTree.Node memory node = RankTree.node(t, heap);
            if (n.open) {
                if (level != 0) revert AdlOpenedNotLeaf(level, n.position);
                opened += n.members.length;
                if (opened > maxOpenedMembers) revert AdlOpenedMembersTooMany(opened, maxOpenedMembers);
                _checkLeaf(c, n.position, node.count, n.members);
            } else if (!_prunable(c, node)) {
                revert AdlNodeNotPrunable(level, n.position);
            }
            cursor += 1 << level;
        }
        if (cursor != RankTree.LEAVES) revert AdlProofIncomplete(cursor);
    }

    /// @dev Empty, wholly ineligible, or bound S_fin(max a, best K) strictly below the last entry.
    function _prunable(Call memory c, RankTree.Node memory node) private pure returns (bool) {
        if (node.maxA == 0) return true;
        if (!ScoreMath.keyCovers(c.side, node.maxE, c.price, c.funding, c.delta)) return true;
        return ScoreMath.nodeBound(node.maxA, node.bestK, c.side, c.price, c.funding) < c.lastScore;
    }

    function _checkLeaf(Call memory c, uint256 leaf, uint256 count, address[] calldata members) private view {
        uint256 live;
        for (uint256 j; j < members.length; ++j) {
            address m = members[j];
            if (j > 0 && m <= members[j - 1]) revert AdlMembersNotAscending(members[j - 1], m);
            IClearinghouseTypes.Position memory p = clearinghouse.getPosition(c.marketId, m);
            // Membership is the stored (side, leaf); members that closed or moved are skipped.
            if (p.size == 0 || p.isLong != c.side || p.leaf != leaf) continue;
            ++live;
            if (!_isMarked(c.callId, m) && _eligible(c, p) && !_ranksBelowLast(c, m, p)) revert AdlMemberOutranks(m);
        }
        if (live != count) revert AdlLeafCountMismatch(leaf, live, count);
    }

    /// @dev Step 4: the fund pays floor(min(A, D) * d / q_B); the counterparties owe
    /// R = -(booked equity of B's closed part) - fund payment, each ceil(R * d_i / d).
    function _execute(
        Call memory c,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        IClearinghouseTypes.DeleverageLeg[] memory legs,
        int256[] memory scores,
        uint256 covered
    ) private {
        uint256 d;
        for (uint256 i; i < legs.length; ++i) d += legs[i].take;
        uint256 fundPays = covered.mulDivDown(d, b.size);
        uint256 owed = _owed(c, b, d, fundPays);
        _charge(c, bankrupt, legs, scores, owed, d);
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

    /// @dev Sets each leg's charge ceil(R * d_i / d) and emits its event.
    function _charge(
        Call memory c,
        address bankrupt,
        IClearinghouseTypes.DeleverageLeg[] memory legs,
        int256[] memory scores,
        uint256 owed,
        uint256 d
    ) private {
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
    }

    /// @dev Whether `account` with position `p` ranks below the call's last live entry.
    function _ranksBelowLast(
        Call memory c,
        address account,
        IClearinghouseTypes.Position memory p
    ) private pure returns (bool) {
        (bool minusInf, int256 score) = _scoreOf(c, p);
        return ScoreMath.ranksBelow(score, minusInf, account, c.lastScore, false, c.lastAccount);
    }

    /// @dev Equity per unit floor(W*W/a) + x covers delta (from the stored, rounded-up a).
    function _eligible(Call memory c, IClearinghouseTypes.Position memory p) private pure returns (bool) {
        return ScoreMath.isEligible(c.side, p.leverage, p.entry, c.price, c.funding, c.delta);
    }

    function _scoreOf(Call memory c, IClearinghouseTypes.Position memory p) private pure returns (bool, int256) {
        return ScoreMath.score(p.leverage, PositionMath.pnlPerUnit(p.isLong, p.entry, c.price, c.funding), c.price);
    }

    /// @dev What the fund can pay now: its available tokens plus fees not yet swept (as the
    /// clearinghouse counts it).
    function _fundAvailable() private view returns (uint256) {
        address fund = clearinghouse.insuranceFund();
        uint256 tokens = fund == address(0) ? 0 : IInsuranceFund(fund).available();
        return clearinghouse.pendingFundFees() + tokens * clearinghouse.collateralScale();
    }

    /// @dev The deficit of `account` at the current price and funding (virtual accrual); 0 if none.
    function _currentDeficit(bytes32 marketId, address account) private view returns (uint256) {
        IClearinghouseTypes.Position memory p = clearinghouse.getPosition(marketId, account);
        if (p.size == 0) return 0;
        (uint256 price, ) = clearinghouse.oracle().getPrice(marketId, false);
        int256 x = PositionMath.pnlPerUnit(p.isLong, p.entry, price, lens.currentFunding(marketId));
        int256 eq = PositionMath.equity(p.margin, p.size, x);
        return eq < 0 ? uint256(-eq) : 0;
    }

    /// @dev The deficit share of the closed size, floor(D * d / q), for the event of a partial call.
    function _closedShare(
        uint256 deficit,
        uint256 size,
        IClearinghouseTypes.DeleverageLeg[] memory legs
    ) private pure returns (uint256) {
        uint256 d;
        for (uint256 i; i < legs.length; ++i) d += legs[i].take;
        return deficit.mulDivDown(d, size);
    }

    function _addUnsettled(bytes32 marketId, address account, uint256 deficit) private {
        if (_unsettledSlot[marketId][account] != 0) return;
        _unsettled[marketId].push(account);
        _unsettledSlot[marketId][account] = _unsettled[marketId].length;
        emit UnsettledAdded(marketId, account, deficit);
    }

    function _removeUnsettled(bytes32 marketId, address account) private {
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

    function _mark(uint256 callId, address account) private {
        bytes32 slot = keccak256(abi.encode(MARK_NAMESPACE, callId, account));
        assembly ("memory-safe") {
            tstore(slot, 1)
        }
    }

    function _isMarked(uint256 callId, address account) private view returns (bool marked) {
        bytes32 slot = keccak256(abi.encode(MARK_NAMESPACE, callId, account));
        assembly ("memory-safe") {
            marked := tload(slot)
        }
    }
}
