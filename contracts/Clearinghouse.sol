// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IClearinghouse} from "./interfaces/IClearinghouse.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ClearinghouseStorage, MarketStatus} from "./clearinghouse/ClearinghouseStorage.sol";
import {MarketRegistry} from "./clearinghouse/MarketRegistry.sol";
import {PositionBook} from "./clearinghouse/PositionBook.sol";
import {Trading} from "./clearinghouse/Trading.sol";
import {Liquidations} from "./clearinghouse/Liquidations.sol";
import {OrderLib} from "./libraries/OrderLib.sol";

/// @title Clearinghouse
/// @notice Collateral, isolated-margin perpetual positions, signed-order matching and funding.
/// @dev Entry points only, over one storage struct (`ClearinghouseStorage`): trading (`Trading`,
/// with `OrderLib`), markets (`MarketRegistry`, with `MarketParamsLib`), forced settlement (the
/// linked `Liquidations` library). Every position change goes through `PositionBook.modify`.
/// Every external mutating function follows validate -> accrue -> compute -> write -> emit ->
/// transfer and shares one transient reentrancy lock.
contract Clearinghouse is MarketRegistry, Trading, IClearinghouse {
    using SafeERC20 for IERC20;

    /// @param collateral_ The collateral ERC-20 (at most 18 decimals, no fee on transfer).
    /// @param oracle_ The oracle adapter; market ids are its feed ids.
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    constructor(IERC20 collateral_, IOracleAdapter oracle_, address admin) ClearinghouseStorage(collateral_, oracle_) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ================================================================ accounts

    /// @inheritdoc IClearinghouse
    function deposit(address account, uint256 tokenAmount) external nonReentrant {
        if (account == address(0)) revert ZeroAddress();
        if (tokenAmount == 0) revert ZeroAmount();
        uint256 credited = tokenAmount * collateralScale;
        _s.free[account] += credited;
        emit Deposited(msg.sender, account, tokenAmount, credited);
        _pullExact(tokenAmount);
    }

    /// @inheritdoc IClearinghouse
    function withdraw(address to, uint256 tokenAmount) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (tokenAmount == 0) revert ZeroAmount();
        uint256 debited = tokenAmount * collateralScale;
        PositionBook.debitFree(_s, msg.sender, debited);
        emit Withdrawn(msg.sender, to, tokenAmount, debited);
        collateral.safeTransfer(to, tokenAmount);
    }

    /// @inheritdoc IClearinghouse
    function addMargin(bytes32 marketId, uint256 amount) external nonReentrant {
        PositionBook.requireListed(_s, marketId);
        if (amount == 0) revert ZeroAmount();
        Position memory pos = PositionBook.requirePosition(_s, marketId, msg.sender);
        // Adding margin reads neither the price nor F, so it needs no oracle: a trader can
        // de-risk even while the feed is stale.
        PositionBook.debitFree(_s, msg.sender, amount);
        PositionBook.addMargin(pos, amount);
        PositionBook.writeMarginChange(_s, marketId, msg.sender, pos, int256(amount));
    }

    /// @inheritdoc IClearinghouse
    function removeMargin(bytes32 marketId, uint256 amount) external nonReentrant {
        PositionBook.requireActive(_s, marketId);
        if (amount == 0) revert ZeroAmount();
        Position memory pos = PositionBook.requirePosition(_s, marketId, msg.sender);
        // Removing margin adds risk: the strict freshness window applies, as for liquidation.
        uint256 price = PositionBook.indexPrice(oracle, marketId, true);
        PositionBook.accrue(_s, marketId, price);
        if (amount >= pos.margin) revert InsufficientMargin(msg.sender, amount - pos.margin + 1);
        pos.margin -= uint112(amount);
        PositionBook.requireMargin(_s, marketId, msg.sender, pos, price);
        _s.free[msg.sender] += amount;
        PositionBook.writeMarginChange(_s, marketId, msg.sender, pos, -int256(amount));
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
        _match(maker, makerSignature, taker, takerSignature, fillSize);
    }

    /// @inheritdoc IClearinghouse
    function matchOrderBatch(Match[] calldata matches) external nonReentrant {
        if (matches.length == 0) revert OrderBatchEmpty();
        for (uint256 i; i < matches.length; ++i) {
            Match calldata m = matches[i];
            _match(m.maker, m.makerSignature, m.taker, m.takerSignature, m.fillSize);
        }
    }

    /// @inheritdoc IClearinghouse
    function cancelOrder(Order calldata order) external nonReentrant {
        OrderLib.cancel(_s.fills, order, _domainSeparatorV4());
    }

    /// @inheritdoc IClearinghouse
    function hashOrder(Order calldata order) external view returns (bytes32) {
        return OrderLib.digest(order, _domainSeparatorV4());
    }

    // ================================================================ liquidation

    /// @inheritdoc IClearinghouse
    function liquidate(bytes32 marketId, address account, uint256 size, uint256 leverage) external nonReentrant {
        Liquidations.liquidate(_s, _env(), marketId, account, size, leverage);
    }

    /// @inheritdoc IClearinghouse
    function settleDeleverage(
        bytes32 marketId,
        address bankrupt,
        DeleverageLeg[] calldata legs,
        uint256 fundPays,
        address keeper
    ) external nonReentrant returns (uint256) {
        return Liquidations.settleDeleverage(_s, _env(), marketId, bankrupt, legs, fundPays, keeper);
    }

    /// @inheritdoc IClearinghouse
    function settleSocializedLoss(
        bytes32 marketId,
        address bankrupt,
        uint256 fundPays,
        address taker
    ) external nonReentrant {
        Liquidations.settleSocializedLoss(_s, _env(), marketId, bankrupt, fundPays, taker);
    }

    /// @inheritdoc IClearinghouse
    function payKeeper(bytes32 marketId, address keeper, uint256 amount) external nonReentrant returns (uint256) {
        return Liquidations.payKeeper(_s, marketId, keeper, amount);
    }

    /// @notice Sets the ADL rank index, once, before the first position is opened (reverts with
    /// `RankIndexAfterFirstPosition` after it).
    /// @dev Never re-pointed: a new index would hold none of the open positions, so its proofs could
    /// prune nodes that really hold them and accept an incomplete list.
    function setRankIndex(address index) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (index == address(0)) revert ZeroAddress();
        if (_s.rankIndex != address(0)) revert RankIndexAlreadySet(_s.rankIndex);
        // An index wired later would hold none of the open positions: closing one would try to
        // remove it from a leaf that never counted it.
        if (_s.positionOpened) revert RankIndexAfterFirstPosition();
        _s.rankIndex = index;
        emit RankIndexSet(index);
    }

    /// @notice Adds `tokenAmount` from the caller to the rounding reserve of `marketId`.
    /// @dev The reserve pays the few wei that integer floors leave in liquidation and ADL; it is
    /// never withdrawn.
    function fundRoundingReserve(bytes32 marketId, uint256 tokenAmount) external nonReentrant {
        _fundReserve(marketId, tokenAmount, false);
    }

    /// @inheritdoc IClearinghouse
    function fundKeeperReserve(bytes32 marketId, uint256 tokenAmount) external nonReentrant {
        _fundReserve(marketId, tokenAmount, true);
    }

    // ================================================================ funding, fees, treasury

    /// @inheritdoc IClearinghouse
    function accrueFunding(bytes32 marketId) external nonReentrant {
        PositionBook.requireListed(_s, marketId);
        PositionBook.accrue(_s, marketId, PositionBook.indexPrice(oracle, marketId, false));
    }

    /// @notice Sets the insurance fund that receives the fund share of fees.
    function setInsuranceFund(address fund) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (fund == address(0)) revert ZeroAddress();
        _s.insuranceFund = fund;
        emit InsuranceFundSet(fund);
    }

    /// @notice Transfers the whole token units of pending fund fees to the insurance fund.
    /// @dev Anyone may call. The sub-token remainder stays pending (rounded down, toward the protocol).
    function sweepFundFees() external nonReentrant returns (uint256) {
        return Liquidations.sweepFundFees(_s, _env());
    }

    /// @notice Pays `tokenAmount` of treasury collateral to `to`.
    function withdrawTreasury(address to, uint256 tokenAmount) external nonReentrant onlyRole(TREASURER_ROLE) {
        Liquidations.withdrawTreasury(_s, _env(), to, tokenAmount);
    }

    // ================================================================ views

    /// @inheritdoc IClearinghouse
    function getPosition(bytes32 marketId, address account) external view returns (Position memory) {
        return _s.positions[marketId][account];
    }

    /// @inheritdoc IClearinghouse
    function fundAvailable() external view returns (uint256) {
        return Liquidations.fundAvailable(_s, collateralScale);
    }

    /// @inheritdoc IClearinghouse
    function freeCollateral(address account) external view returns (uint256) {
        return _s.free[account];
    }

    // ================================================================ internals

    /// @dev Adds `tokenAmount` from the caller to the keeper reserve or the rounding reserve.
    function _fundReserve(bytes32 marketId, uint256 tokenAmount, bool keepers) private {
        MarketStatus storage st = PositionBook.requireListed(_s, marketId);
        if (tokenAmount == 0) revert ZeroAmount();
        uint256 amount = tokenAmount * collateralScale;
        if (keepers) {
            st.keeperReserve += SafeCast.toUint128(amount);
            emit KeeperReserveFunded(marketId, msg.sender, amount);
        } else {
            _s.roundingReserve[marketId] += amount;
            emit RoundingReserveFunded(marketId, msg.sender, amount);
        }
        _pullExact(tokenAmount);
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
