// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {PositionBook} from "./PositionBook.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {LiquidationMath} from "../libraries/LiquidationMath.sol";

/// @title Liquidations
/// @notice Keeper liquidation at the index price, insurance-fund cover of bankrupt parts, and the
/// per-market rounding reserve.
/// @dev Deviation from DESIGN.md section 2, stated in docs/liquidation.md: the net equity of a
/// liquidated part stays in the remaining position's margin (not free collateral), so a partial
/// liquidation restores health; the stored `a` is left as is, which keeps it >= ceil(q*W/c).
abstract contract Liquidations is PositionBook {
    using FixedPointMath for uint256;

    /// @dev Liquidates `size` of `account`'s position in `marketId`, the caller taking it over at
    /// the index price with `leverage` for the margin of any increase of its own position.
    function _liquidate(bytes32 marketId, address account, uint256 size, uint256 leverage) internal {
        _requireActive(marketId);
        if (account == msg.sender) revert LiquidationSelf(account);
        if (size == 0) revert ZeroAmount();
        Position memory pos = _positions[marketId][account];
        if (pos.size == 0) revert PositionNotFound(marketId, account);
        if (size > pos.size) revert LiquidationTooLarge(size, pos.size);
        uint256 price = _indexPrice(marketId, true);
        _accrue(marketId, price);

        MarketParams storage params = _params[marketId];
        int256 x = _x(pos, price, _state[marketId].cumulativeFunding);
        {
            int256 eq = PositionMath.equity(pos.margin, pos.size, x);
            (bool isLiquidatable, uint256 maintenance) = PositionMath.liquidatable(eq, pos.size, price, params.mmr);
            if (!isLiquidatable) revert PositionNotLiquidatable(account, eq, maintenance);
            uint256 cap = LiquidationMath.maxTake(
                pos.size,
                eq,
                price,
                params.mmr,
                params.liquidationFee,
                params.minNotional
            );
            if (size > cap) revert LiquidationTooLarge(size, cap);
        }
        LiquidationMath.Plan memory plan = LiquidationMath.plan(
            pos.size,
            pos.margin,
            x,
            size,
            price,
            params.liquidationFee
        );
        int256 adjustment = plan.takenEquity >= 0 ? -int256(plan.fee) : int256(_coverBadDebt(marketId, account, plan));
        int256 taken = pos.isLong ? int256(size) : -int256(size);
        _modifyPosition(Fill(marketId, account, -taken, price, 0, price, false, adjustment), FillKind.Liquidated);
        _modifyPosition(Fill(marketId, msg.sender, taken, price, leverage, price, false, 0), FillKind.Takeover);
        _payLiquidationFee(marketId, account, size, price, plan);
    }

    /// @dev Executes a verified ADL call (DESIGN.md section 3, step 4) at the index price: closes
    /// sum(takes) of `bankrupt` (its closed part ends at exactly zero) against `accounts`, each
    /// reducing by its take and paying at most `charges[i]`, capped at its closed share's equity.
    /// The fund pays `fundPays`, which may not exceed the closed part's deficit; the rounding
    /// reserve pays any shortfall, a surplus goes to the fund. Only the rank index may call; the
    /// core itself guarantees: pure reductions on opposite sides (open interest stays balanced),
    /// B's closed part at zero, nobody below zero, and exact conservation.
    function _settleDeleverage(
        bytes32 marketId,
        address bankrupt,
        DeleverageLeg[] calldata legs,
        uint256 fundPays,
        address keeper
    ) internal returns (uint256 collected) {
        if (msg.sender != rankIndex) revert NotRankIndex(msg.sender);
        uint256 price = _indexPrice(marketId, true);
        _accrue(marketId, price);
        bool bLong = _positions[marketId][bankrupt].isLong;
        int256 closed = _closeBankruptPart(marketId, bankrupt, bLong, legs, price);
        if (closed > 0 || uint256(-closed) < fundPays) revert DeleverageFundOverpays(closed, fundPays);
        collected = _chargeCounterparties(marketId, bLong, legs, price);
        _drawFromFund(fundPays);
        int256 gap = -closed - int256(fundPays) - int256(collected);
        if (gap > 0) _drawFromRoundingReserve(marketId, uint256(gap));
        else pendingFundFees += uint256(-gap);
        _payAdlReward(marketId, bankrupt, keeper, legs, price);
    }

    /// @dev Reduces each counterparty by its take at the index price, charging at most its charge
    /// (capped at its closed share's equity); returns what they paid in total.
    function _chargeCounterparties(
        bytes32 marketId,
        bool bLong,
        DeleverageLeg[] calldata legs,
        uint256 price
    ) private returns (uint256 collected) {
        for (uint256 i; i < legs.length; ++i) {
            DeleverageLeg calldata leg = legs[i];
            int256 charge = int256(leg.charge);
            int256 v = _modifyPosition(
                Fill(
                    marketId,
                    leg.account,
                    bLong ? int256(leg.take) : -int256(leg.take),
                    price,
                    0,
                    price,
                    true,
                    -charge
                ),
                FillKind.Deleveraged
            );
            // Collected = V - max(V - L, 0): min(L, V), or V itself when V < 0 (paid from the gap).
            collected = uint256(int256(collected) + (v > charge ? charge : v));
        }
    }

    /// @dev DESIGN.md section 3, step 6: a keeper reward from the treasury (what it has, never
    /// reverting), the liquidator's share of the liquidation fee on the notional closed, paid only
    /// when the call closes at least the minimum notional or all of the bankrupt position. The
    /// minimum never decides validity.
    function _payAdlReward(
        bytes32 marketId,
        address bankrupt,
        address keeper,
        DeleverageLeg[] calldata legs,
        uint256 price
    ) private {
        uint256 total;
        for (uint256 i; i < legs.length; ++i) total += legs[i].take;
        MarketParams storage params = _params[marketId];
        bool closedAll = _positions[marketId][bankrupt].size == 0;
        if (!closedAll && total.mulDivDown(price, WAD) < params.minNotional) return;
        uint256 reward = _takeKeeperReward(params, total, price);
        if (reward == 0) return;
        _free[keeper] += reward;
        emit KeeperRewardPaid(marketId, keeper, reward);
    }

    /// @dev The one keeper-reward rule: the liquidator's share of the ordinary liquidation fee on
    /// `size` at `price`, taken from the treasury as far as it goes (never reverting). Returns the
    /// amount taken; the caller credits it.
    function _takeKeeperReward(
        MarketParams storage params,
        uint256 size,
        uint256 price
    ) private returns (uint256 reward) {
        reward = LiquidationMath.feeUp(size, price, params.liquidationFee).mulDivDown(params.liquidatorShare, WAD);
        uint256 treasury = treasuryBalance;
        if (reward > treasury) reward = treasury;
        treasuryBalance = treasury - reward;
    }

    /// @dev Closes the legs' total of the bankrupt position; returns the closed part's booked
    /// equity (its negative is what the fund, the counterparties and the reserve pay).
    function _closeBankruptPart(
        bytes32 marketId,
        address bankrupt,
        bool bLong,
        DeleverageLeg[] calldata legs,
        uint256 price
    ) private returns (int256) {
        uint256 total;
        for (uint256 i; i < legs.length; ++i) total += legs[i].take;
        int256 delta = bLong ? -int256(total) : int256(total);
        return _modifyPosition(Fill(marketId, bankrupt, delta, price, 0, price, true, 0), FillKind.Bankrupt);
    }

    /// @dev The fund pays D - D' (only if it covers the whole deficit D), the rounding reserve the
    /// rest of -V. Returns the amount credited to the taken part, exactly -V.
    function _coverBadDebt(
        bytes32 marketId,
        address account,
        LiquidationMath.Plan memory plan
    ) private returns (uint256 credited) {
        uint256 availableNow = _fundAvailable();
        if (availableNow < plan.deficit) revert AdlOnly(marketId, account, plan.deficit, availableNow);
        _drawFromFund(plan.fundPays);
        _drawFromRoundingReserve(marketId, plan.reservePays);
        emit BadDebtCovered(marketId, account, plan.fundPays, plan.reservePays);
        return plan.fundPays + plan.reservePays;
    }

    function _payLiquidationFee(
        bytes32 marketId,
        address account,
        uint256 size,
        uint256 price,
        LiquidationMath.Plan memory plan
    ) private {
        MarketParams storage params = _params[marketId];
        uint256 toLiquidator = plan.fee.mulDivDown(params.liquidatorShare, WAD);
        uint256 toFund = plan.fee - toLiquidator;
        if (plan.takenEquity < 0) {
            // A bankrupt part pays no fee; the keeper reward comes from the treasury, what it has,
            // and never exceeds the liquidator's share of the ordinary fee, so waiting for
            // bankruptcy never pays.
            toLiquidator = _takeKeeperReward(params, size, price);
            emit KeeperRewardPaid(marketId, msg.sender, toLiquidator);
        }
        _free[msg.sender] += toLiquidator;
        pendingFundFees += toFund;
        emit PositionLiquidated(marketId, account, msg.sender, size, price, toLiquidator, toFund, plan.fundPays);
    }

    /// @dev Internal-unit amount the fund can pay now: its available tokens plus fees not yet swept.
    function _fundAvailable() internal view returns (uint256) {
        address fund = insuranceFund;
        uint256 tokens = fund == address(0) ? 0 : IInsuranceFund(fund).available();
        return pendingFundFees + tokens * collateralScale;
    }

    /// @dev Takes `amount` from the fund: unswept fees first, then whole tokens from the fund
    /// (rounded up; the sub-token surplus goes back to pending fund fees, so no value is lost).
    function _drawFromFund(uint256 amount) internal {
        uint256 pending = pendingFundFees;
        if (amount <= pending) {
            pendingFundFees = pending - amount;
            return;
        }
        uint256 rest = amount - pending;
        uint256 tokens = rest.mulDivUp(1, collateralScale);
        pendingFundFees = tokens * collateralScale - rest;
        IERC20 token = collateral;
        uint256 before = token.balanceOf(address(this));
        IInsuranceFund(insuranceFund).cover(tokens);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != tokens) revert CollateralTransferShort(tokens, received);
    }

    /// @dev Takes the few wei of rounding from the market's reserve, then from the treasury.
    function _drawFromRoundingReserve(bytes32 marketId, uint256 amount) internal {
        if (amount == 0) return;
        uint256 reserve = roundingReserve[marketId];
        uint256 fromReserve = amount < reserve ? amount : reserve;
        roundingReserve[marketId] = reserve - fromReserve;
        uint256 fromTreasury = amount - fromReserve;
        if (fromTreasury > treasuryBalance) revert RoundingReserveEmpty(marketId, amount);
        treasuryBalance -= fromTreasury;
    }
}
