// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAdlTypes} from "../interfaces/IAdlTypes.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {Clearinghouse} from "../Clearinghouse.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {AdlCall} from "./AdlCall.sol";
import {AdlStorage} from "./AdlStorage.sol";

/// @title AdlSettlement
/// @notice What both settlement paths (single-transaction `deleverage` and a session's finish)
/// share: pinning (P, F, sigma, delta), execution through `Clearinghouse.settleDeleverage`, and the
/// list of unsettled bankrupt positions.
/// @dev Internal functions: inlined into the deleverager and the session library, which both run
/// on the deleverager's storage (passed as `AdlStorage.Layout`).
library AdlSettlement {
    using FixedPointMath for uint256;

    uint256 internal constant WAD = FixedPointMath.WAD;

    /// @dev Accrues funding once, reads one strict price, fixes each side's F and delta for `bankrupt`; reverts
    /// unless it is bankrupt and the fund falls short. Returns the call, B and (D, min(A, D)).
    function pin(
        Clearinghouse ch,
        bytes32 marketId,
        address bankrupt
    )
        internal
        returns (AdlCall.Call memory c, IClearinghouseTypes.Position memory b, uint256 deficit, uint256 covered)
    {
        ch.accrueFunding(marketId);
        c.marketId = marketId;
        (c.price, ) = ch.oracle().getPrice(marketId, true);
        b = ch.getPosition(marketId, bankrupt);
        c.side = !b.isLong;
        (c.funding, c.bankruptFunding) = sideFundings(ch, marketId, b.isLong);
        (deficit, covered) = deficitAndCover(ch, marketId, bankrupt, b, c.price, c.bankruptFunding);
        (, c.delta) = subsidyAndLoss(deficit, covered, b.size);
    }

    /// @dev The F each side is valued at, as last accrued: (counterparties' side, bankrupt's side)
    /// for a bankrupt position on the long side iff `bankruptLong`. Each side's loss index is folded
    /// in (PositionMath.sideFunding), so scores, eligibility and node bounds of the counterparties'
    /// tree are computed exactly as under funding alone.
    function sideFundings(
        Clearinghouse ch,
        bytes32 marketId,
        bool bankruptLong
    ) internal view returns (int256 counterparties, int256 bankruptSide) {
        IClearinghouseTypes.MarketState memory st = ch.marketState(marketId);
        counterparties = PositionMath.sideFunding(
            st.cumulativeFunding,
            st.lossIndexLong,
            st.lossIndexShort,
            !bankruptLong
        );
        bankruptSide = PositionMath.sideFunding(
            st.cumulativeFunding,
            st.lossIndexLong,
            st.lossIndexShort,
            bankruptLong
        );
    }

    /// @dev D and min(A, D) at (P, F); reverts unless bankrupt and the fund falls short.
    function deficitAndCover(
        Clearinghouse ch,
        bytes32 marketId,
        address bankrupt,
        IClearinghouseTypes.Position memory b,
        uint256 price,
        int256 funding
    ) internal view returns (uint256 deficit, uint256 covered) {
        int256 eq = equityAt(b, price, funding);
        if (eq >= 0) revert IAdlTypes.AdlNotBankrupt(marketId, bankrupt, eq);
        deficit = uint256(-eq);
        uint256 available = ch.fundAvailable();
        if (available >= deficit) revert IAdlTypes.AdlFundSufficient(deficit, available);
        covered = available;
    }

    /// @dev The one definition of the fund's subsidy and the counterparties' loss per unit of a
    /// bankrupt position of size `size` and deficit `deficit`, the fund holding `available`:
    /// sigma = floor(min(A, D) * W / q) (down: never credits B), delta = ceil(D * W / q) - sigma.
    function subsidyAndLoss(
        uint256 deficit,
        uint256 available,
        uint256 size
    ) internal pure returns (uint256 sigma, uint256 delta) {
        uint256 covered = available < deficit ? available : deficit;
        sigma = covered.mulDivDown(WAD, size);
        delta = deficit.mulDivUp(WAD, size) - sigma;
    }

    /// @dev The equity of `b` at (P, F); 0 for a closed position.
    function equityAt(
        IClearinghouseTypes.Position memory b,
        uint256 price,
        int256 funding
    ) internal pure returns (int256) {
        if (b.size == 0) return 0;
        return PositionMath.equity(b.margin, b.size, PositionMath.pnlPerUnit(b.isLong, b.entry, price, funding));
    }

    /// @dev Step 4: the fund pays `fundPays`; the counterparties owe R = -(booked equity of B's
    /// closed part at (P, F)) - fund payment, each ceil(R * d_i / d); the clearinghouse settles.
    function execute(
        Clearinghouse ch,
        AdlCall.Call memory c,
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
            emit IAdlTypes.CounterpartyDeleveraged(
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
        ch.settleDeleverage(c.marketId, bankrupt, legs, fundPays, msg.sender);
        emit IAdlTypes.DeleverageExecuted(c.marketId, bankrupt, d, fundPays, owed, b.size - d, c.delta);
    }

    /// @dev R = -(booked equity of B's closed part) - fund payment, floored at zero.
    function _owed(
        AdlCall.Call memory c,
        IClearinghouseTypes.Position memory b,
        uint256 d,
        uint256 fundPays
    ) private pure returns (uint256) {
        int256 closedEquity = int256(PositionMath.releasedMargin(b.margin, d, b.size)) +
            PositionMath.pnlDown(d, PositionMath.pnlPerUnit(b.isLong, b.entry, c.price, c.bankruptFunding));
        int256 owed = -closedEquity - int256(fundPays);
        return owed > 0 ? uint256(owed) : 0;
    }

    /// @dev After a settlement of `d` of `bankrupt`: it leaves the unsettled list once closed, and
    /// a partly settled position stays visible with its remaining deficit share.
    function syncUnsettled(
        AdlStorage.Layout storage s,
        Clearinghouse ch,
        bytes32 marketId,
        address bankrupt,
        uint256 remainingDeficit
    ) internal {
        IClearinghouseTypes.Position memory p = ch.getPosition(marketId, bankrupt);
        if (p.size == 0) return removeUnsettled(s, marketId, bankrupt);
        if (s.unsettledSlot[marketId][bankrupt] == 0) {
            addUnsettled(s, marketId, bankrupt, p, remainingDeficit);
        } else {
            // The settlement itself shrank the position: its clock runs on.
            s.unsettledKey[marketId][bankrupt] = positionKey(p);
        }
    }

    /// @dev Adds `account` (position `p`) to the unsettled list of `marketId`, starting its clock. If
    /// it is listed for another position (side, K, a or size changed otherwise than by a settlement),
    /// the clock starts again for this one; if listed for this one, nothing changes.
    function addUnsettled(
        AdlStorage.Layout storage s,
        bytes32 marketId,
        address account,
        IClearinghouseTypes.Position memory p,
        uint256 deficit
    ) internal {
        bytes32 key = positionKey(p);
        if (s.unsettledSlot[marketId][account] == 0) {
            s.unsettled[marketId].push(account);
            s.unsettledSlot[marketId][account] = s.unsettled[marketId].length;
        } else if (s.unsettledKey[marketId][account] == key) {
            return;
        }
        s.unsettledSince[marketId][account] = block.timestamp;
        s.unsettledKey[marketId][account] = key;
        emit IAdlTypes.UnsettledAdded(marketId, account, deficit);
    }

    /// @dev What identifies a position for the unsettled clock: side, K, a and size.
    function positionKey(IClearinghouseTypes.Position memory p) internal pure returns (bytes32) {
        return keccak256(abi.encode(p.isLong, p.entry, p.leverage, p.size));
    }

    /// @dev Removes `account` from the unsettled list of `marketId` (no-op if not there).
    function removeUnsettled(AdlStorage.Layout storage s, bytes32 marketId, address account) internal {
        uint256 slot = s.unsettledSlot[marketId][account];
        if (slot == 0) return;
        address[] storage list = s.unsettled[marketId];
        address last = list[list.length - 1];
        list[slot - 1] = last;
        s.unsettledSlot[marketId][last] = slot;
        list.pop();
        delete s.unsettledSlot[marketId][account];
        delete s.unsettledSince[marketId][account];
        delete s.unsettledKey[marketId][account];
        emit IAdlTypes.UnsettledRemoved(marketId, account);
    }
}
