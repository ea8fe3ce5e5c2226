// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IClearinghouseTypes as T} from "../interfaces/IClearinghouseTypes.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {IFundReserves} from "../interfaces/IFundReserves.sol";
import {IRankIndex} from "../interfaces/IRankIndex.sol";
import {ClearinghouseEnv, ClearinghouseLayout, MarketStatus} from "./ClearinghouseStorage.sol";
import {PositionBook} from "./PositionBook.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";
import {PositionMath} from "../libraries/PositionMath.sol";
import {LiquidationMath} from "../libraries/LiquidationMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title Liquidations
/// @notice Forced settlement and the money outside positions: keeper liquidation at the index
/// price, insurance-fund cover of bankrupt parts, the rounding and keeper reserves, the execution
/// of verified ADL calls and of the final layer (socialized loss), fund-fee sweeps and treasury
/// withdrawals.
/// @dev A linked external library over the clearinghouse's `ClearinghouseLayout`: the clearinghouse
/// DELEGATECALLs it, so it runs on the clearinghouse's storage under its reentrancy lock, and
/// `msg.sender` is the clearinghouse's caller. Position changes go through `PositionBook.modify`.
/// Deviation from the original specification (docs/mechanism.md): the net equity of a liquidated
/// part stays in the remaining position's margin (not free collateral), so a partial liquidation
/// restores health; the stored `a` is left as is, which keeps it >= ceil(q*W/c).
library Liquidations {
    using FixedPointMath for uint256;
    using SafeERC20 for IERC20;

    uint256 private constant WAD = FixedPointMath.WAD;

    /// @notice Liquidates `size` of `account`'s position in `marketId`, the caller taking it over at
    /// the index price with `leverage` for the margin of any increase of its own position. See
    /// `IClearinghouse.liquidate`.
    function liquidate(
        ClearinghouseLayout storage s,
        ClearinghouseEnv memory env,
        bytes32 marketId,
        address account,
        uint256 size,
        uint256 leverage
    ) external {
        PositionBook.requireActive(s, marketId);
        if (account == msg.sender) revert T.LiquidationSelf(account);
        if (size == 0) revert T.ZeroAmount();
        T.Position memory pos = s.positions[marketId][account];
        if (pos.size == 0) revert T.PositionNotFound(marketId, account);
        if (size > pos.size) revert T.LiquidationTooLarge(size, pos.size);
        uint256 price = PositionBook.indexPrice(env.oracle, marketId, true);
        PositionBook.accrue(s, marketId, price);

        T.MarketParams storage params = s.params[marketId];
        int256 x = PositionBook.x(pos, price, PositionBook.sideFunding(s.state[marketId], pos.isLong));
        bool whole = _requireLiquidatable(params, account, pos, x, size, price);
        LiquidationMath.Plan memory plan = LiquidationMath.plan(
            pos.size,
            pos.margin,
            x,
            size,
            price,
            params.liquidationFee
        );
        int256 adjustment = plan.takenEquity >= 0
            ? -int256(plan.fee)
            : int256(_coverBadDebt(s, env, marketId, account, plan));
        int256 taken = pos.isLong ? int256(size) : -int256(size);
        PositionBook.modify(
            s,
            PositionBook.Fill(marketId, account, -taken, price, 0, price, false, adjustment),
            PositionBook.FillKind.Liquidated
        );
        PositionBook.modify(
            s,
            PositionBook.Fill(marketId, msg.sender, taken, price, leverage, price, false, 0),
            size == pos.size ? PositionBook.FillKind.TakeoverWhole : PositionBook.FillKind.Takeover
        );
        _payLiquidationFee(s, marketId, account, size, whole, price, plan);
    }

    /// @dev Reverts unless `pos` (at `x`, index `price`) is liquidatable and `size` is within the
    /// most a liquidator may take now; returns whether `size` is that most (the whole position when
    /// it is bankrupt).
    function _requireLiquidatable(
        T.MarketParams storage params,
        address account,
        T.Position memory pos,
        int256 x,
        uint256 size,
        uint256 price
    ) private view returns (bool) {
        int256 eq = PositionMath.equity(pos.margin, pos.size, x);
        {
            (bool isLiquidatable, uint256 maintenance) = PositionMath.liquidatable(eq, pos.size, price, params.mmr);
            if (!isLiquidatable) revert T.PositionNotLiquidatable(account, eq, maintenance);
        }
        uint256 cap = LiquidationMath.maxTake(
            pos.size,
            eq,
            price,
            params.mmr,
            params.liquidationFee,
            params.minNotional
        );
        if (size > cap) revert T.LiquidationTooLarge(size, cap);
        return size == cap;
    }

    /// @notice Executes a verified ADL call (docs/mechanism.md section 3, step 4) at the index
    /// price: closes sum(takes) of `bankrupt` (its closed part ends at exactly zero) against the
    /// legs, each reducing by its take and paying at most its charge, capped at its closed share's
    /// equity. The fund pays `fundPays`, which may not exceed the closed part's deficit; the
    /// rounding reserve pays any shortfall, a surplus goes to the fund. Only the rank index may
    /// call; the core itself guarantees: pure reductions on opposite sides (open interest stays
    /// balanced), B's closed part at zero, nobody below zero, and exact conservation.
    function settleDeleverage(
        ClearinghouseLayout storage s,
        ClearinghouseEnv memory env,
        bytes32 marketId,
        address bankrupt,
        T.DeleverageLeg[] calldata legs,
        uint256 fundPays,
        address keeper
    ) external returns (uint256 collected) {
        if (msg.sender != s.rankIndex) revert T.NotRankIndex(msg.sender);
        // A pause stops every forced settlement, ADL included: a counterparty that cannot exit is not
        // deleveraged either.
        PositionBook.requireActive(s, marketId);
        uint256 price = PositionBook.indexPrice(env.oracle, marketId, true);
        PositionBook.accrue(s, marketId, price);
        bool bLong = s.positions[marketId][bankrupt].isLong;
        uint256 closedSize;
        for (uint256 i; i < legs.length; ++i) closedSize += legs[i].take;
        int256 closed = _closeBankruptPart(s, marketId, bankrupt, bLong, closedSize, price);
        if (closed > 0 || uint256(-closed) < fundPays) revert T.DeleverageFundOverpays(closed, fundPays);
        collected = _chargeCounterparties(s, marketId, bLong, legs, price);
        _drawFromFund(s, env, fundPays);
        int256 gap = -closed - int256(fundPays) - int256(collected);
        if (gap > 0) _drawFromRoundingReserve(s, marketId, uint256(gap));
        else s.pendingFundFees += SafeCast.toUint128(uint256(-gap));
        _payAdlReward(s, marketId, bankrupt, keeper);
    }

    /// @dev Reduces each counterparty by its take at the index price, charging at most its charge
    /// (capped at its closed share's equity); returns what they paid in total.
    function _chargeCounterparties(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        bool bLong,
        T.DeleverageLeg[] calldata legs,
        uint256 price
    ) private returns (uint256 collected) {
        for (uint256 i; i < legs.length; ++i) {
            T.DeleverageLeg calldata leg = legs[i];
            int256 charge = int256(leg.charge);
            int256 v = PositionBook.modify(
                s,
                PositionBook.Fill(
                    marketId,
                    leg.account,
                    bLong ? int256(leg.take) : -int256(leg.take),
                    price,
                    0,
                    price,
                    true,
                    -charge
                ),
                PositionBook.FillKind.Deleveraged
            );
            // Collected = V - max(V - L, 0): min(L, V), or V itself when V < 0 (paid from the gap).
            collected = uint256(int256(collected) + (v > charge ? charge : v));
        }
    }

    /// @dev docs/mechanism.md sections 3 (ADL step 6) and 7.2: keeperPay, paid only to the call that
    /// closes what is left of the bankrupt position, so calls split by counterparty earn no more than
    /// one call. (A position too large for one call is settled by a session, whose continues are paid
    /// per member; a partial call that exhausts the eligible queue leaves the rest to the final layer.)
    function _payAdlReward(ClearinghouseLayout storage s, bytes32 marketId, address bankrupt, address keeper) private {
        if (s.positions[marketId][bankrupt].size != 0) return;
        _payKeeper(s, marketId, keeper, s.params[marketId].keeperPay);
    }

    /// @notice Pays `keeper` up to `amount` from the keeper reserve of `marketId` for session work;
    /// only the rank index may call. See `IClearinghouse.payKeeper`.
    function payKeeper(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address keeper,
        uint256 amount
    ) external returns (uint256) {
        if (msg.sender != s.rankIndex) revert T.NotRankIndex(msg.sender);
        return _payKeeper(s, marketId, keeper, amount);
    }

    /// @dev The one keeper-pay rule (docs/mechanism.md section 7.2): `amount` from the market's keeper
    /// reserve, as far as it goes; an empty reserve pays nothing and never reverts. Credits the
    /// keeper's free collateral and returns what was paid.
    function _payKeeper(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address keeper,
        uint256 amount
    ) private returns (uint256 paid) {
        MarketStatus storage st = s.status[marketId];
        uint256 reserve = st.keeperReserve;
        paid = amount < reserve ? amount : reserve;
        if (paid == 0) return 0;
        st.keeperReserve = uint128(reserve - paid);
        s.free[keeper] += paid;
        emit T.KeeperRewardPaid(marketId, keeper, paid);
    }

    /// @dev Closes `total` (the legs' takes) of the bankrupt position; returns the closed part's booked
    /// equity (its negative is what the fund, the counterparties and the reserve pay).
    function _closeBankruptPart(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address bankrupt,
        bool bLong,
        uint256 total,
        uint256 price
    ) private returns (int256) {
        int256 delta = bLong ? -int256(total) : int256(total);
        return
            PositionBook.modify(
                s,
                PositionBook.Fill(marketId, bankrupt, delta, price, 0, price, true, 0),
                PositionBook.FillKind.Bankrupt
            );
    }

    /// @dev The fund pays D - D' (only if it covers the whole deficit D), the rounding reserve the
    /// rest of -V. While `account`'s position is the bankrupt one of an open ADL session, the reserve
    /// that session set aside for it counts as available and pays first (docs/mechanism.md section
    /// 3.3). Returns the amount credited to the taken part, exactly -V.
    function _coverBadDebt(
        ClearinghouseLayout storage s,
        ClearinghouseEnv memory env,
        bytes32 marketId,
        address account,
        LiquidationMath.Plan memory plan
    ) private returns (uint256 credited) {
        (address fund, bytes32 key, uint256 reserved) = _sessionReserve(s, marketId, account);
        uint256 availableNow = fundAvailable(s, env.collateralScale) + reserved * env.collateralScale;
        if (availableNow < plan.deficit) revert T.AdlOnly(marketId, account, plan.deficit, availableNow);
        uint256 fromReserve = _drawFromSessionReserve(s, env, fund, key, reserved, plan.fundPays);
        _drawFromFund(s, env, plan.fundPays - fromReserve);
        _drawFromRoundingReserve(s, marketId, plan.reservePays);
        emit T.BadDebtCovered(marketId, account, plan.fundPays, plan.reservePays);
        return plan.fundPays + plan.reservePays;
    }

    /// @dev The reserve an open ADL session holds for `account` as its bankrupt position: the fund,
    /// the key and the tokens left under it (none without a rank index or such a session).
    function _sessionReserve(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address account
    ) private view returns (address fund, bytes32 key, uint256 tokens) {
        address index = s.rankIndex;
        if (index == address(0)) return (address(0), bytes32(0), 0);
        (fund, key) = IRankIndex(index).sessionReserve(marketId, account);
        if (fund != address(0)) tokens = IFundReserves(fund).reserveOf(key);
    }

    /// @dev Takes up to `amount` from a session's reserve of `reserved` tokens under `key`, in whole
    /// tokens rounded up (the sub-token surplus goes to pending fund fees, as in `_drawFromFund`).
    /// Returns the part of `amount` it paid.
    function _drawFromSessionReserve(
        ClearinghouseLayout storage s,
        ClearinghouseEnv memory env,
        address fund,
        bytes32 key,
        uint256 reserved,
        uint256 amount
    ) private returns (uint256 paid) {
        uint256 tokens = amount.mulDivUp(1, env.collateralScale);
        if (tokens > reserved) tokens = reserved;
        if (tokens == 0) return 0;
        paid = tokens * env.collateralScale;
        if (paid > amount) {
            s.pendingFundFees += SafeCast.toUint128(paid - amount);
            paid = amount;
        }
        IERC20 token = env.collateral;
        uint256 before = token.balanceOf(address(this));
        IFundReserves(fund).coverFromReserve(key, tokens);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != tokens) revert T.CollateralTransferShort(tokens, received);
    }

    function _payLiquidationFee(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address account,
        uint256 size,
        bool whole,
        uint256 price,
        LiquidationMath.Plan memory plan
    ) private {
        T.MarketParams storage params = s.params[marketId];
        // Waiting never pays (docs/mechanism.md section 7.2): the fee is min(fee, equity of the taken
        // part), zero for a bankrupt part, and the same fixed keeper pay comes on top either way.
        uint256 toLiquidator = plan.fee.mulDivDown(params.liquidatorShare, WAD);
        uint256 toFund = plan.fee - toLiquidator;
        s.free[msg.sender] += toLiquidator;
        s.pendingFundFees += SafeCast.toUint128(toFund);
        emit T.PositionLiquidated(marketId, account, msg.sender, size, price, toLiquidator, toFund, plan.fundPays);
        // keeperPay is paid for a liquidation that takes the most allowed now (all of a bankrupt
        // position), not for smaller pieces, so splitting a liquidation earns no more than taking it
        // at once; and it is capped at the fund's share of the ordinary fee on the notional taken, so
        // that an owner liquidating its own position from a second account never gains.
        if (!whole) return;
        uint256 ordinary = LiquidationMath.feeUp(size, price, params.liquidationFee);
        uint256 cap = ordinary - ordinary.mulDivDown(params.liquidatorShare, WAD);
        _payKeeper(s, marketId, msg.sender, cap < params.keeperPay ? cap : params.keeperPay);
    }

    /// @notice The final layer (docs/mechanism.md section 7.6), after the deleverager checked its
    /// trigger: the fund pays `fundPays` of `bankrupt`'s deficit D at (P, F), the rest D_rem is
    /// charged to the opposite side through its loss index, `bankrupt` is credited D (its equity is
    /// then exactly zero) and `taker` takes it over whole at P, posting the initial margin if its
    /// risk grows. Only the rank index may call. O(1) in the number of positions.
    function settleSocializedLoss(
        ClearinghouseLayout storage s,
        ClearinghouseEnv memory env,
        bytes32 marketId,
        address bankrupt,
        uint256 fundPays,
        address taker
    ) external {
        if (msg.sender != s.rankIndex) revert T.NotRankIndex(msg.sender);
        PositionBook.requireActive(s, marketId);
        uint256 price = PositionBook.indexPrice(env.oracle, marketId, true);
        PositionBook.accrue(s, marketId, price);
        T.Position memory pos = s.positions[marketId][bankrupt];
        int256 eq = PositionMath.equity(
            pos.margin,
            pos.size,
            PositionBook.x(pos, price, PositionBook.sideFunding(s.state[marketId], pos.isLong))
        );
        if (eq >= 0 || uint256(-eq) < fundPays) revert T.DeleverageFundOverpays(eq, fundPays);
        _drawFromFund(s, env, fundPays);
        _socialize(s, marketId, bankrupt, taker, pos, price, uint256(-eq), fundPays);
        _payKeeper(s, marketId, taker, s.params[marketId].keeperPay);
    }

    /// @dev Charges D_rem = `deficit` - `fundPays` to the side opposite `pos` and moves `pos` (credited
    /// `deficit`, so it closes at exactly zero) to `taker` at `price`.
    function _socialize(
        ClearinghouseLayout storage s,
        bytes32 marketId,
        address bankrupt,
        address taker,
        T.Position memory pos,
        uint256 price,
        uint256 deficit,
        uint256 fundPays
    ) private {
        (uint256 openInterest, uint256 lossIndex, uint256 toFund) = _raiseLossIndex(
            s.state[marketId],
            !pos.isLong,
            deficit - fundPays
        );
        s.pendingFundFees += SafeCast.toUint128(toFund);
        emit T.LossSocialized(
            marketId,
            bankrupt,
            taker,
            !pos.isLong,
            pos.size,
            price,
            fundPays,
            deficit - fundPays,
            openInterest,
            lossIndex,
            toFund
        );
        int256 taken = pos.isLong ? int256(uint256(pos.size)) : -int256(uint256(pos.size));
        // B's closed payout is -D; credited D it nets exactly zero (FillKind.Liquidated checks >= 0).
        PositionBook.modify(
            s,
            PositionBook.Fill(marketId, bankrupt, -taken, price, 0, price, false, int256(deficit)),
            PositionBook.FillKind.Liquidated
        );
        PositionBook.modify(
            s,
            PositionBook.Fill(marketId, taker, taken, price, type(uint256).max, price, false, 0),
            PositionBook.FillKind.TakeoverWhole
        );
    }

    /// @dev L_side += ceil(D_rem * W / Q_side): every position of the side pays at least its share
    /// q * dL / W when it next shrinks. The rounding, floor((Q * dL - D_rem * W) / W), goes to the
    /// fund (what the side pays beyond D_rem); the sub-wei rest stays as the protocol's dust.
    /// Returns Q_side, the new L_side and the fund's part.
    function _raiseLossIndex(
        T.MarketState storage st,
        bool chargedLong,
        uint256 remaining
    ) private returns (uint256 openInterest, uint256 lossIndex, uint256 toFund) {
        openInterest = chargedLong ? st.longOpenInterest : st.shortOpenInterest;
        if (remaining == 0) return (openInterest, chargedLong ? st.lossIndexLong : st.lossIndexShort, 0);
        // Q_side >= q_B > 0: open interest is balanced and B is open on the other side.
        uint256 step = remaining.mulDivUp(WAD, openInterest);
        // step <= ceil(D_rem * W / q_B) < 2^130 and Q_side < 2^128, so the product cannot overflow.
        toFund = (step * openInterest - remaining * WAD) / WAD;
        if (chargedLong) {
            lossIndex = uint256(st.lossIndexLong) + step;
            st.lossIndexLong = SafeCast.toUint128(lossIndex);
        } else {
            lossIndex = uint256(st.lossIndexShort) + step;
            st.lossIndexShort = SafeCast.toUint128(lossIndex);
        }
    }

    /// @dev The one fund-available rule: internal-unit amount the fund can pay now, its available
    /// tokens (scaled by `collateralScale`) plus fees not yet swept.
    function fundAvailable(ClearinghouseLayout storage s, uint256 collateralScale) internal view returns (uint256) {
        address fund = s.insuranceFund;
        uint256 tokens = fund == address(0) ? 0 : IInsuranceFund(fund).available();
        return s.pendingFundFees + tokens * collateralScale;
    }

    /// @dev Takes `amount` from the fund: unswept fees first, then whole tokens from the fund
    /// (rounded up; the sub-token surplus goes back to pending fund fees, so no value is lost).
    function _drawFromFund(ClearinghouseLayout storage s, ClearinghouseEnv memory env, uint256 amount) private {
        uint256 pending = s.pendingFundFees;
        if (amount <= pending) {
            s.pendingFundFees = uint128(pending - amount);
            return;
        }
        uint256 rest = amount - pending;
        uint256 tokens = rest.mulDivUp(1, env.collateralScale);
        s.pendingFundFees = SafeCast.toUint128(tokens * env.collateralScale - rest);
        IERC20 token = env.collateral;
        uint256 before = token.balanceOf(address(this));
        IInsuranceFund(s.insuranceFund).cover(tokens);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != tokens) revert T.CollateralTransferShort(tokens, received);
    }

    /// @dev Takes the few wei of rounding from the market's reserve, then from the treasury.
    function _drawFromRoundingReserve(ClearinghouseLayout storage s, bytes32 marketId, uint256 amount) private {
        if (amount == 0) return;
        uint256 reserve = s.roundingReserve[marketId];
        uint256 fromReserve = amount < reserve ? amount : reserve;
        s.roundingReserve[marketId] = reserve - fromReserve;
        uint256 fromTreasury = amount - fromReserve;
        if (fromTreasury > s.treasuryBalance) revert T.RoundingReserveEmpty(marketId, amount);
        s.treasuryBalance -= uint128(fromTreasury);
    }

    /// @notice Transfers the whole token units of pending fund fees to the insurance fund; the
    /// sub-token remainder stays pending (rounded down, toward the protocol). Returns the tokens sent.
    function sweepFundFees(ClearinghouseLayout storage s, ClearinghouseEnv memory env) external returns (uint256) {
        address fund = s.insuranceFund;
        if (fund == address(0)) revert T.ZeroAddress();
        uint256 tokenAmount = s.pendingFundFees / env.collateralScale;
        if (tokenAmount == 0) return 0;
        s.pendingFundFees -= uint128(tokenAmount * env.collateralScale);
        emit T.FundFeesSwept(fund, tokenAmount);
        env.collateral.safeTransfer(fund, tokenAmount);
        return tokenAmount;
    }

    /// @notice Pays `tokenAmount` of treasury collateral to `to` (the caller checked the role).
    function withdrawTreasury(
        ClearinghouseLayout storage s,
        ClearinghouseEnv memory env,
        address to,
        uint256 tokenAmount
    ) external {
        if (to == address(0)) revert T.ZeroAddress();
        uint256 amount = tokenAmount * env.collateralScale;
        if (amount > s.treasuryBalance) revert T.InsufficientTreasury(s.treasuryBalance, amount);
        s.treasuryBalance -= uint128(amount);
        emit T.TreasuryWithdrawn(to, tokenAmount);
        env.collateral.safeTransfer(to, tokenAmount);
    }
}
