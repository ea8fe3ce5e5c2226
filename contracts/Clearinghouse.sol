// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IClearinghouse} from "./interfaces/IClearinghouse.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {PositionBook} from "./clearinghouse/PositionBook.sol";
import {Liquidations} from "./clearinghouse/Liquidations.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {OrderSignatures} from "./libraries/OrderSignatures.sol";
import {PositionMath} from "./libraries/PositionMath.sol";
import {FundingMath} from "./libraries/FundingMath.sol";

/// @title Clearinghouse
/// @notice Collateral, isolated-margin perpetual positions, signed-order matching and funding.
/// @dev Every external mutating function follows validate -> accrue -> compute -> write -> emit ->
/// transfer and shares one transient reentrancy lock. Every position change goes through
/// `_modifyPosition`, the single funnel for trades now and liquidation and ADL later.
contract Clearinghouse is Liquidations, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using FixedPointMath for uint256;

    bytes32 public constant ORDER_TYPEHASH =
        keccak256(
            "Order(address trader,bytes32 marketId,int256 size,uint256 limitPrice,uint256 leverage,"
            "uint256 salt,uint64 expiry,bool reduceOnly,bool makerAllowed)"
        );

    /// @notice Base units filled per order hash.
    mapping(bytes32 orderHash => uint256) public filled;
    /// @notice Whether an order hash was cancelled by its trader.
    mapping(bytes32 orderHash => bool) public cancelled;

    /// @param collateral_ The collateral ERC-20 (at most 18 decimals, no fee on transfer).
    /// @param oracle_ The oracle adapter; market ids are its feed ids.
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    constructor(
        IERC20 collateral_,
        IOracleAdapter oracle_,
        address admin
    ) PositionBook(collateral_, _scaleOf(collateral_), oracle_) EIP712("Clearinghouse", "1") {
        if (address(oracle_) == address(0) || admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ================================================================ accounts

    /// @inheritdoc IClearinghouse
    function deposit(address account, uint256 tokenAmount) external nonReentrant {
        if (account == address(0)) revert ZeroAddress();
        if (tokenAmount == 0) revert ZeroAmount();
        uint256 credited = tokenAmount * collateralScale;
        _free[account] += credited;
        emit Deposited(msg.sender, account, tokenAmount, credited);
        _pullExact(tokenAmount);
    }

    /// @inheritdoc IClearinghouse
    function withdraw(address to, uint256 tokenAmount) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (tokenAmount == 0) revert ZeroAmount();
        uint256 debited = tokenAmount * collateralScale;
        _debitFree(msg.sender, debited);
        emit Withdrawn(msg.sender, to, tokenAmount, debited);
        collateral.safeTransfer(to, tokenAmount);
    }

    /// @inheritdoc IClearinghouse
    function addMargin(bytes32 marketId, uint256 amount) external nonReentrant {
        _requireListed(marketId);
        if (amount == 0) revert ZeroAmount();
        Position memory pos = _requirePosition(marketId, msg.sender);
        // Adding margin reads neither the price nor F, so it needs no oracle: a trader can
        // de-risk even while the feed is stale.
        _debitFree(msg.sender, amount);
        _addMargin(pos, amount);
        _writeMarginChange(marketId, msg.sender, pos, int256(amount));
    }

    /// @inheritdoc IClearinghouse
    function removeMargin(bytes32 marketId, uint256 amount) external nonReentrant {
        _requireActive(marketId);
        if (amount == 0) revert ZeroAmount();
        Position memory pos = _requirePosition(marketId, msg.sender);
        uint256 price = _indexPrice(marketId, false);
        _accrue(marketId, price);
        if (amount >= pos.margin) revert InsufficientMargin(msg.sender, amount - pos.margin + 1);
        pos.margin -= uint112(amount);
        _requireMargin(marketId, msg.sender, pos, price);
        _free[msg.sender] += amount;
        _writeMarginChange(marketId, msg.sender, pos, -int256(amount));
    }

    // ================================================================ orders

    /// @inheritdoc IClearinghouse
    function matchOrders(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) external nonReentrant {
        (bytes32 makerHash, bytes32 takerHash) = _checkMatch(maker, makerSignature, taker, takerSignature, fillSize);
        uint256 index = _indexPrice(maker.marketId, false);
        _checkBand(maker.marketId, maker.limitPrice, index);
        _accrue(maker.marketId, index);

        filled[makerHash] += fillSize;
        filled[takerHash] += fillSize;
        bool takerBuys = taker.size > 0;
        _fillOrder(maker, !takerBuys, fillSize, maker.limitPrice, index);
        _fillOrder(taker, takerBuys, fillSize, maker.limitPrice, index);
        _settleMatch(maker, taker, fillSize, index, makerHash, takerHash);
    }

    /// @inheritdoc IClearinghouse
    function cancelOrder(Order calldata order) external nonReentrant {
        if (msg.sender != order.trader) revert OrderNotSigner(msg.sender, order.trader);
        bytes32 orderHash = _hashOrder(order);
        cancelled[orderHash] = true;
        emit OrderCancelled(msg.sender, orderHash);
    }

    /// @inheritdoc IClearinghouse
    function hashOrder(Order calldata order) external view returns (bytes32) {
        return _hashOrder(order);
    }

    // ================================================================ liquidation

    /// @inheritdoc IClearinghouse
    function liquidate(bytes32 marketId, address account, uint256 size, uint256 leverage) external nonReentrant {
        _liquidate(marketId, account, size, leverage);
    }

    /// @notice Adds `tokenAmount` from the caller to the rounding reserve of `marketId`.
    /// @dev The reserve pays the few wei that integer floors leave in liquidation and ADL; it is
    /// never withdrawn.
    function fundRoundingReserve(bytes32 marketId, uint256 tokenAmount) external nonReentrant {
        _requireListed(marketId);
        if (tokenAmount == 0) revert ZeroAmount();
        uint256 amount = tokenAmount * collateralScale;
        roundingReserve[marketId] += amount;
        emit RoundingReserveFunded(marketId, msg.sender, amount);
        _pullExact(tokenAmount);
    }

    // ================================================================ funding, fees, treasury

    /// @inheritdoc IClearinghouse
    function accrueFunding(bytes32 marketId) external nonReentrant {
        _requireListed(marketId);
        _accrue(marketId, _indexPrice(marketId, false));
    }

    /// @notice Sets the insurance fund that receives the fund share of fees.
    function setInsuranceFund(address fund) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (fund == address(0)) revert ZeroAddress();
        insuranceFund = fund;
        emit InsuranceFundSet(fund);
    }

    /// @notice Transfers the whole token units of pending fund fees to the insurance fund.
    /// @dev Anyone may call. The sub-token remainder stays pending (rounded down, toward the protocol).
    function sweepFundFees() external nonReentrant returns (uint256 tokenAmount) {
        address fund = insuranceFund;
        if (fund == address(0)) revert ZeroAddress();
        tokenAmount = pendingFundFees / collateralScale;
        if (tokenAmount == 0) return 0;
        pendingFundFees -= tokenAmount * collateralScale;
        emit FundFeesSwept(fund, tokenAmount);
        collateral.safeTransfer(fund, tokenAmount);
    }

    /// @notice Pays `tokenAmount` of treasury collateral to `to`.
    function withdrawTreasury(address to, uint256 tokenAmount) external nonReentrant onlyRole(TREASURER_ROLE) {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = tokenAmount * collateralScale;
        if (amount > treasuryBalance) revert InsufficientTreasury(treasuryBalance, amount);
        treasuryBalance -= amount;
        emit TreasuryWithdrawn(to, tokenAmount);
        collateral.safeTransfer(to, tokenAmount);
    }

    // ================================================================ views

    /// @inheritdoc IClearinghouse
    function getPosition(bytes32 marketId, address account) external view returns (Position memory) {
        return _positions[marketId][account];
    }

    /// @inheritdoc IClearinghouse
    function freeCollateral(address account) external view returns (uint256) {
        return _free[account];
    }

    /// @inheritdoc IClearinghouse
    function equity(bytes32 marketId, address account) public view returns (int256) {
        Position memory pos = _positions[marketId][account];
        if (pos.size == 0) return 0;
        (uint256 price, int256 funding) = _viewPriceAndFunding(marketId);
        return PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
    }

    /// @inheritdoc IClearinghouse
    function isLiquidatable(bytes32 marketId, address account) external view returns (bool) {
        Position memory pos = _positions[marketId][account];
        if (pos.size == 0) return false;
        (uint256 price, int256 funding) = _viewPriceAndFunding(marketId);
        int256 eq = PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
        return eq < int256(PositionMath.requirementUp(pos.size, price, _params[marketId].mmr));
    }

    /// @inheritdoc IClearinghouse
    function isBankrupt(bytes32 marketId, address account) external view returns (bool) {
        return _positions[marketId][account].size != 0 && equity(marketId, account) < 0;
    }

    /// @notice The EIP-712 domain separator orders are signed under.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ================================================================ the position funnel

    // ================================================================ internals

    /// @dev Validates a pair of orders for a fill at the maker's price; returns their hashes.
    function _checkMatch(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) private view returns (bytes32 makerHash, bytes32 takerHash) {
        if (taker.marketId != maker.marketId) revert OrderMarketMismatch(maker.marketId, taker.marketId);
        _requireActive(maker.marketId);
        if (fillSize == 0 || maker.size == 0 || taker.size == 0) revert OrderZeroSize();
        if ((maker.size > 0) == (taker.size > 0)) revert OrderSameSide();
        if (maker.trader == taker.trader) revert OrderSelfMatch(maker.trader);
        makerHash = _checkOrder(maker, makerSignature, fillSize, maker.limitPrice);
        if (!maker.makerAllowed) revert OrderTakerOnly(makerHash);
        takerHash = _checkOrder(taker, takerSignature, fillSize, maker.limitPrice);
    }

    /// @dev One leg of a match, at the maker's price, through the funnel.
    function _fillOrder(Order calldata order, bool buys, uint256 fillSize, uint256 price, uint256 index) private {
        int256 delta = buys ? int256(fillSize) : -int256(fillSize);
        _modifyPosition(
            Fill(order.marketId, order.trader, delta, price, order.leverage, index, order.reduceOnly, 0),
            FillKind.Trade
        );
    }

    /// @dev Fees after both legs (DESIGN.md: reducing leg, then increasing leg's margin, then
    /// fees), then the funding premium and the event.
    function _settleMatch(
        Order calldata maker,
        Order calldata taker,
        uint256 fillSize,
        uint256 index,
        bytes32 makerHash,
        bytes32 takerHash
    ) private {
        uint256 price = maker.limitPrice;
        (uint256 makerFee, uint256 takerFee) = _chargeFees(maker.marketId, maker.trader, taker.trader, fillSize, price);
        _recordPremium(maker.marketId, price, index, fillSize);
        emit OrdersMatched(
            maker.marketId,
            makerHash,
            takerHash,
            maker.trader,
            taker.trader,
            taker.size > 0,
            fillSize,
            price,
            makerFee,
            takerFee
        );
    }

    function _chargeFees(
        bytes32 marketId,
        address maker,
        address taker,
        uint256 size,
        uint256 price
    ) private returns (uint256 makerFee, uint256 takerFee) {
        MarketParams storage p = _params[marketId];
        uint256 notional = size.mulDivUp(price, WAD);
        makerFee = notional.mulDivUp(p.makerFee, WAD);
        takerFee = notional.mulDivUp(p.takerFee, WAD);
        _debitFree(maker, makerFee);
        _debitFree(taker, takerFee);
        uint256 total = makerFee + takerFee;
        if (total == 0) return (0, 0);
        uint256 toFund = total.mulDivDown(p.fundFeeShare, WAD);
        pendingFundFees += toFund;
        treasuryBalance += total - toFund;
        emit FeesCollected(marketId, toFund, total - toFund);
    }

    function _checkOrder(
        Order calldata order,
        bytes calldata signature,
        uint256 fillSize,
        uint256 price
    ) private view returns (bytes32 orderHash) {
        orderHash = _hashOrder(order);
        if (block.timestamp > order.expiry) revert OrderExpired(orderHash, order.expiry);
        if (cancelled[orderHash]) revert OrderIsCancelled(orderHash);
        if (order.leverage == 0) revert OrderInvalidLeverage(orderHash, 0);
        uint256 size = uint256(order.size > 0 ? order.size : -order.size);
        uint256 already = filled[orderHash];
        if (already + fillSize > size) revert OrderOverfilled(orderHash, already, fillSize, size);
        bool limitMet = order.size > 0 ? price <= order.limitPrice : price >= order.limitPrice;
        if (!limitMet) revert OrderLimitNotMet(orderHash, order.limitPrice, price);
        if (order.reduceOnly) {
            Position storage pos = _positions[order.marketId][order.trader];
            if (pos.size < fillSize || pos.isLong == (order.size > 0)) revert OrderReduceOnly(orderHash);
        }
        // ERC-1271 wallets are queried by staticcall, before any state changes.
        if (!OrderSignatures.isValid(order.trader, orderHash, signature)) {
            revert OrderInvalidSignature(order.trader, orderHash);
        }
    }

    function _hashOrder(Order calldata o) private view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(
                        ORDER_TYPEHASH,
                        o.trader,
                        o.marketId,
                        o.size,
                        o.limitPrice,
                        o.leverage,
                        o.salt,
                        o.expiry,
                        o.reduceOnly,
                        o.makerAllowed
                    )
                )
            );
    }

    function _checkBand(bytes32 marketId, uint256 price, uint256 index) private view {
        uint256 band = _params[marketId].priceBand;
        uint256 gap = price > index ? price - index : index - price;
        if (gap * WAD > band * index) revert PriceOutsideBand(price, index, band);
    }

    function _recordPremium(bytes32 marketId, uint256 price, uint256 index, uint256 size) private {
        MarketState storage s = _state[marketId];
        s.premiumTimesSize += FundingMath.premium(price, index, _params[marketId].maxPremium) * int256(size);
        s.windowSize += size;
    }

    /// @dev 10^(18 - decimals) of the collateral; rejects the zero address and > 18 decimals.
    function _scaleOf(IERC20 token) private view returns (uint256) {
        if (address(token) == address(0)) revert ZeroAddress();
        uint8 decimals = IERC20Metadata(address(token)).decimals();
        if (decimals > 18) revert CollateralDecimalsTooLarge(decimals);
        return 10 ** (18 - decimals);
    }

    /// @dev Pulls `tokenAmount` from the caller, last, and checks that it all arrived: a token
    /// that delivers less than asked (fee on transfer) reverts the whole call.
    function _pullExact(uint256 tokenAmount) private {
        uint256 before = collateral.balanceOf(address(this));
        collateral.safeTransferFrom(msg.sender, address(this), tokenAmount);
        uint256 received = collateral.balanceOf(address(this)) - before;
        if (received != tokenAmount) revert CollateralTransferShort(tokenAmount, received);
    }
}
