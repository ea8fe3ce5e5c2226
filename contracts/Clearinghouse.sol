// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IClearinghouse} from "./interfaces/IClearinghouse.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {MarketRegistry} from "./clearinghouse/MarketRegistry.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {PositionMath} from "./libraries/PositionMath.sol";
import {FundingMath} from "./libraries/FundingMath.sol";

/// @title Clearinghouse
/// @notice Collateral, isolated-margin perpetual positions, signed-order matching and funding.
/// @dev Every external mutating function follows validate -> accrue -> compute -> write -> emit ->
/// transfer and shares one transient reentrancy lock. Every position change goes through
/// `_modifyPosition`, the single funnel for trades now and liquidation and ADL later.
contract Clearinghouse is MarketRegistry, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using FixedPointMath for uint256;

    /// @dev How a position change settles its reducing leg.
    enum FillKind {
        Trade, // voluntary: a negative payout is debited from free collateral, never clamped
        Forced // liquidation and ADL: the caller settles the payout
    }

    /// @dev One side of a fill, as the funnel sees it.
    struct Fill {
        bytes32 marketId;
        address account;
        int256 sizeDelta; // > 0 buys
        uint256 price; // trade price
        uint256 leverage; // target leverage for the margin of an increase
        uint256 indexPrice; // P of this call
        bool reduceOnly;
    }

    bytes32 public constant ORDER_TYPEHASH =
        keccak256(
            "Order(address trader,bytes32 marketId,int256 size,uint256 limitPrice,uint256 leverage,"
            "uint256 salt,uint64 expiry,bool reduceOnly)"
        );
    /// @notice Sizes, |K| and prices stay below 2^120 so every s*K and its sum fit in int256.
    uint256 public constant MAX_MAGNITUDE = (1 << 120) - 1;
    uint256 private constant WAD = FixedPointMath.WAD;
    /// @dev Transient-storage namespace of the per-transaction index price cache.
    bytes32 private constant PRICE_CACHE_NAMESPACE = keccak256("adl.clearinghouse.priceCache");

    /// @notice The collateral token.
    IERC20 public immutable collateral;
    /// @notice 10^(18 - token decimals): internal amount per token unit.
    uint256 public immutable collateralScale;
    /// @notice Index price source.
    IOracleAdapter public immutable oracle;

    /// @notice Receives the fund share of fees when swept.
    address public insuranceFund;
    /// @notice Fees owed to the insurance fund and not yet transferred (18-decimal quote).
    uint256 public pendingFundFees;
    /// @notice Treasury balance held here (18-decimal quote).
    uint256 public treasuryBalance;

    mapping(address account => uint256) private _free;
    mapping(bytes32 marketId => mapping(address account => Position)) private _positions;
    /// @notice Base units filled per order hash.
    mapping(bytes32 orderHash => uint256) public filled;
    /// @notice Whether an order hash was cancelled by its trader.
    mapping(bytes32 orderHash => bool) public cancelled;

    /// @param collateral_ The collateral ERC-20 (at most 18 decimals, no fee on transfer).
    /// @param oracle_ The oracle adapter; market ids are its feed ids.
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    constructor(IERC20 collateral_, IOracleAdapter oracle_, address admin) EIP712("Clearinghouse", "1") {
        if (address(collateral_) == address(0) || address(oracle_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        uint8 decimals = IERC20Metadata(address(collateral_)).decimals();
        if (decimals > 18) revert CollateralDecimalsTooLarge(decimals);
        collateral = collateral_;
        collateralScale = 10 ** (18 - decimals);
        oracle = oracle_;
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
        // The transfer comes last, but the amount received is still checked: a token that
        // delivers less than asked (fee on transfer) reverts the whole deposit.
        uint256 before = collateral.balanceOf(address(this));
        collateral.safeTransferFrom(msg.sender, address(this), tokenAmount);
        uint256 received = collateral.balanceOf(address(this)) - before;
        if (received != tokenAmount) revert CollateralTransferShort(tokenAmount, received);
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
        _accrue(marketId, _indexPrice(marketId, false));
        _debitFree(msg.sender, amount);
        pos.margin += uint128(amount);
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
        pos.margin -= uint128(amount);
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
    function marginRatio(bytes32 marketId, address account) external view returns (int256) {
        Position memory pos = _positions[marketId][account];
        if (pos.size == 0) return type(int256).max;
        (uint256 price, int256 funding) = _viewPriceAndFunding(marketId);
        int256 eq = PositionMath.equity(pos.margin, pos.size, _x(pos, price, funding));
        uint256 notional = uint256(pos.size).mulDivUp(price, WAD);
        return FixedPointMath.divFloor(eq * int256(WAD), notional);
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

    /// @inheritdoc IClearinghouse
    function currentFunding(bytes32 marketId) external view returns (int256 funding) {
        (, funding) = _viewPriceAndFunding(marketId);
    }

    /// @notice The EIP-712 domain separator orders are signed under.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ================================================================ the position funnel

    /// @dev The single funnel for every position change (DESIGN.md section 2). A fill that
    /// crosses zero is a full close followed by an opening on the other side. Returns the
    /// payout of the reducing leg (released margin plus realized PnL, signed); a Trade settles
    /// it against free collateral here, a Forced fill leaves it to the caller.
    function _modifyPosition(Fill memory f, FillKind kind) internal returns (int256 payout) {
        Position memory pos = _positions[f.marketId][f.account];
        MarketState storage s = _state[f.marketId];
        int256 funding = s.cumulativeFunding;
        bool buying = f.sizeDelta > 0;
        uint256 amount = uint256(buying ? f.sizeDelta : -f.sizeDelta);
        int256 contributionBefore = _contribution(pos);

        uint256 reduceBy;
        if (pos.size != 0 && pos.isLong != buying) reduceBy = amount < pos.size ? amount : pos.size;
        if (f.reduceOnly && (reduceBy == 0 || reduceBy != amount)) revert OrderReduceOnly(bytes32(0));
        if (reduceBy != 0) {
            payout = _reduce(pos, reduceBy, f.price, funding);
            if (kind == FillKind.Trade) _settlePayout(f.account, payout);
        }
        uint256 increaseBy = amount - reduceBy;
        if (increaseBy != 0) _increase(f, pos, buying, increaseBy, funding);

        MarketParams storage params = _params[f.marketId];
        if (kind == FillKind.Trade && pos.size != 0) {
            uint256 notional = uint256(pos.size).mulDivDown(f.indexPrice, WAD);
            if (notional < params.minNotional) revert NotionalBelowMinimum(f.account, notional, params.minNotional);
        }
        _updateOpenInterest(s, buying, reduceBy, increaseBy);
        s.sumSizeTimesEntry += _contribution(pos) - contributionBefore;
        _store(f.marketId, f.account, pos, reduceBy == 0 ? int256(0) : payout, funding);
    }

    /// @dev Reduction by d at p: release floor(c*d/q), book floor(d*x(p)/W); K and a stay.
    function _reduce(Position memory pos, uint256 d, uint256 price, int256 funding) private pure returns (int256) {
        uint256 released = PositionMath.releasedMargin(pos.margin, d, pos.size);
        int256 pnl = PositionMath.pnlDown(d, PositionMath.pnlPerUnit(pos.isLong, pos.entry, price, funding));
        pos.margin -= uint128(released);
        pos.size -= uint128(d);
        if (pos.size == 0) {
            // A full close releases all margin (floor(c*q/q) == c) and clears the record.
            pos.entry = 0;
            pos.leverage = 0;
            pos.isLong = false;
        }
        return int256(released) + pnl;
    }

    /// @dev Increase by d at p: blend K against the trader, post margin, run the margin test,
    /// recompute a.
    function _increase(Fill memory f, Position memory pos, bool buying, uint256 d, int256 funding) private {
        if (f.leverage == 0) revert OrderInvalidLeverage(bytes32(0), 0);
        if (pos.size == 0) pos.isLong = buying;
        uint256 newSize = uint256(pos.size) + d;
        if (newSize > MAX_MAGNITUDE) revert PositionTooLarge(newSize, MAX_MAGNITUDE);
        int256 entry = PositionMath.blendEntry(buying, pos.size, pos.entry, d, f.price, funding);
        if (entry > int256(MAX_MAGNITUDE) || entry < -int256(MAX_MAGNITUDE)) revert EntryOutOfRange(entry);
        pos.entry = int128(entry);
        pos.size = uint128(newSize);

        uint256 chosen = d.mulDivUp(f.price, f.leverage);
        uint256 shortfall = PositionMath.marginShortfall(
            pos.margin,
            newSize,
            _x(pos, f.indexPrice, funding),
            f.indexPrice,
            _params[f.marketId].imr
        );
        uint256 posted = chosen > shortfall ? chosen : shortfall;
        _debitFree(f.account, posted);
        pos.margin += uint128(posted);
        pos.leverage = uint128(PositionMath.leverageUp(newSize, pos.margin));
    }

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
        takerHash = _checkOrder(taker, takerSignature, fillSize, maker.limitPrice);
    }

    /// @dev One leg of a match, at the maker's price, through the funnel.
    function _fillOrder(Order calldata order, bool buys, uint256 fillSize, uint256 price, uint256 index) private {
        int256 delta = buys ? int256(fillSize) : -int256(fillSize);
        _modifyPosition(
            Fill(order.marketId, order.trader, delta, price, order.leverage, index, order.reduceOnly),
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

    function _writeMarginChange(bytes32 marketId, address account, Position memory pos, int256 moved) private {
        pos.leverage = uint128(PositionMath.leverageUp(pos.size, pos.margin));
        emit MarginMoved(marketId, account, moved);
        _store(marketId, account, pos, 0, _state[marketId].cumulativeFunding);
    }

    /// @dev Writes a position record and emits the event that lets anyone rebuild it.
    function _store(bytes32 marketId, address account, Position memory pos, int256 realized, int256 funding) private {
        _positions[marketId][account] = pos;
        emit PositionChanged(
            marketId,
            account,
            pos.isLong,
            pos.size,
            pos.entry,
            pos.margin,
            pos.leverage,
            pos.leaf,
            realized,
            funding
        );
    }

    function _requireMargin(bytes32 marketId, address account, Position memory pos, uint256 price) private view {
        int256 funding = _state[marketId].cumulativeFunding;
        uint256 shortfall = PositionMath.marginShortfall(
            pos.margin,
            pos.size,
            _x(pos, price, funding),
            price,
            _params[marketId].imr
        );
        if (shortfall != 0) revert InsufficientMargin(account, shortfall);
    }

    function _requirePosition(bytes32 marketId, address account) private view returns (Position memory pos) {
        pos = _positions[marketId][account];
        if (pos.size == 0) revert PositionNotFound(marketId, account);
    }

    function _settlePayout(address account, int256 payout) private {
        if (payout >= 0) _free[account] += uint256(payout);
        else _debitFree(account, uint256(-payout));
    }

    function _debitFree(address account, uint256 amount) private {
        uint256 available = _free[account];
        if (available < amount) revert InsufficientFreeCollateral(account, available, amount);
        _free[account] = available - amount;
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
        if (!SignatureChecker.isValidSignatureNow(order.trader, orderHash, signature)) {
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
                        o.reduceOnly
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

    function _updateOpenInterest(MarketState storage s, bool buying, uint256 reduceBy, uint256 increaseBy) private {
        // A buy reduces a short and/or increases a long; a sell the mirror image.
        if (buying) {
            s.shortOpenInterest -= reduceBy;
            s.longOpenInterest += increaseBy;
        } else {
            s.longOpenInterest -= reduceBy;
            s.shortOpenInterest += increaseBy;
        }
    }

    /// @dev Accrues funding once per block; every later read in the call sees the same F.
    function _accrue(bytes32 marketId, uint256 price) internal {
        MarketState storage s = _state[marketId];
        if (s.lastFundingTime == block.timestamp) return;
        MarketParams storage p = _params[marketId];
        FundingMath.Accrual memory a = FundingMath.project(
            _accrualOf(s),
            p.fundingWindow,
            p.fundingPeriod,
            price,
            block.timestamp
        );
        s.cumulativeFunding = a.cumulativeFunding;
        s.fundingRate = int128(a.fundingRate);
        s.lastFundingTime = uint64(a.lastFundingTime);
        s.windowStart = uint64(a.windowStart);
        s.premiumTimesSize = a.premiumTimesSize;
        s.windowSize = a.windowSize;
        emit FundingAccrued(marketId, a.cumulativeFunding, a.fundingRate, price);
    }

    function _beforeParamsChange(bytes32 marketId) internal override {
        _accrue(marketId, _indexPrice(marketId, false));
    }

    /// @dev The index price, read from the oracle at most once per market per transaction and
    /// cached in transient storage; a strict read upgrades the cache after checking the same price.
    function _indexPrice(bytes32 marketId, bool strict) internal returns (uint256 price) {
        bytes32 slot = keccak256(abi.encode(PRICE_CACHE_NAMESPACE, marketId));
        uint256 cached;
        assembly ("memory-safe") {
            cached := tload(slot)
        }
        uint256 cachedPrice = cached >> 1;
        if (cached != 0 && (!strict || cached & 1 == 1)) return cachedPrice;
        (price, ) = oracle.getPrice(marketId, strict);
        if (price > MAX_MAGNITUDE) revert IndexPriceTooLarge(price);
        if (cached != 0 && price != cachedPrice) revert OraclePriceChanged(marketId, cachedPrice, price);
        uint256 packed = (price << 1) | (strict ? 1 : 0);
        assembly ("memory-safe") {
            tstore(slot, packed)
        }
    }

    function _viewPriceAndFunding(bytes32 marketId) internal view returns (uint256 price, int256 funding) {
        _requireListed(marketId);
        (price, ) = oracle.getPrice(marketId, false);
        MarketState storage s = _state[marketId];
        MarketParams storage p = _params[marketId];
        funding = FundingMath
            .project(_accrualOf(s), p.fundingWindow, p.fundingPeriod, price, block.timestamp)
            .cumulativeFunding;
    }

    function _accrualOf(MarketState storage s) private view returns (FundingMath.Accrual memory) {
        return
            FundingMath.Accrual(
                s.cumulativeFunding,
                s.fundingRate,
                s.lastFundingTime,
                s.windowStart,
                s.premiumTimesSize,
                s.windowSize
            );
    }

    function _x(Position memory pos, uint256 price, int256 funding) internal pure returns (int256) {
        return PositionMath.pnlPerUnit(pos.isLong, pos.entry, price, funding);
    }

    /// @dev Signed size times K: this position's term of the market's sum s*K.
    function _contribution(Position memory pos) private pure returns (int256) {
        int256 sk = int256(uint256(pos.size)) * pos.entry;
        return pos.isLong ? sk : -sk;
    }
}
