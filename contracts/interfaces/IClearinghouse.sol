// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IClearinghouseTypes} from "./IClearinghouseTypes.sol";

/// @title IClearinghouse
/// @notice Collateral, isolated-margin perpetual positions, EIP-712 order matching and funding.
/// @dev Units: every quote amount, price, size, fraction and funding index inside the protocol has
/// 18 decimals (W = 1e18). Token amounts cross the boundary in the token's own decimals, scaled
/// on the way in and out, rounding in the protocol's favour.
///
/// Trust assumptions:
/// - the oracle adapter reports an honest index price within its freshness windows;
/// - holders of MARKET_ADMIN_ROLE list markets within the hard-coded bounds, and change their
///   parameters only within those bounds, by one bounded step per field, after a public delay;
/// - the collateral token is a plain ERC-20 (no fee on transfer, no rebasing, no callbacks);
/// - keepers are untrusted: every fill is checked against signed orders and the index price.
interface IClearinghouse is IClearinghouseTypes {
    // ------------------------------------------------------------------ accounts

    /// @notice Deposits `tokenAmount` of collateral into the free balance of `account`.
    /// @dev Reverts `CollateralTransferShort` if fewer tokens arrive than sent (fee-on-transfer).
    function deposit(address account, uint256 tokenAmount) external;

    /// @notice Withdraws `tokenAmount` of the caller's free collateral to `to`.
    /// @dev Works while markets are paused.
    function withdraw(address to, uint256 tokenAmount) external;

    /// @notice Moves `amount` (18-decimal quote) from free collateral into the caller's position.
    function addMargin(bytes32 marketId, uint256 amount) external;

    /// @notice Moves `amount` (18-decimal quote) from the caller's position back to free
    /// collateral; the position must still pass the initial margin test.
    function removeMargin(bytes32 marketId, uint256 amount) external;

    // ------------------------------------------------------------------ orders

    /// @notice Matches a resting `maker` order with a `taker` order for `fillSize` base units
    /// at the maker's limit price. Callable by anyone an order's `sender` allows (any caller for a
    /// zero `sender`, else only that address). The maker's price must lie within `priceBand` of the
    /// index, or within `takerBand` when the taker order is taker-only.
    function matchOrders(
        Order calldata maker,
        bytes calldata makerSignature,
        Order calldata taker,
        bytes calldata takerSignature,
        uint256 fillSize
    ) external;

    /// @notice Executes several matches in one transaction, in order, each exactly as
    /// `matchOrders` would; all or nothing: any failing match reverts the whole batch with that
    /// match's error. Fixed costs (the transaction, the oracle read and funding accrual per market,
    /// the first touch of each market's state) are paid once. Callable by anyone every order's
    /// `sender` allows.
    function matchOrderBatch(Match[] calldata matches) external;

    /// @notice Cancels `order`; only its trader may call.
    function cancelOrder(Order calldata order) external;

    /// @notice The EIP-712 digest a trader signs for `order`.
    function hashOrder(Order calldata order) external view returns (bytes32);

    // ------------------------------------------------------------------ liquidation

    /// @notice Takes over `size` of `account`'s liquidatable position in `marketId` at the index
    /// price (strict freshness). The caller must not be `account`; its own leg is a fill at the
    /// index price (margin test only if its risk grows, margin per `leverage`). A fee on the
    /// notional taken, capped at the taken part's equity, is split between the caller and the
    /// insurance fund; the taken part's remaining equity stays in the remaining position's
    /// margin. At most `ClearinghouseLens.maxLiquidationSize` may be taken. If the taken part is bankrupt, the fund
    /// pays the drop in the whole position's deficit, only when it covers the whole deficit
    /// (else `AdlOnly`), and no fee is charged; while the position is the bankrupt one of an
    /// open ADL session, the reserve that session set aside for it counts and pays first. Either
    /// way the caller also receives the market's fixed `keeperPay` from the keeper reserve (as far
    /// as it goes), so waiting for bankruptcy never pays more than liquidating in time.
    function liquidate(bytes32 marketId, address account, uint256 size, uint256 leverage) external;

    /// @notice Executes a verified ADL call; only the rank index (AutoDeleverager) may call.
    /// `keeper` (the deleverage caller) receives the market's `keeperPay` from the keeper reserve
    /// if the call closes at least the minimum notional or all of the bankrupt position.
    /// @dev See `Liquidations._settleDeleverage` for what the core checks itself.
    /// @return collected What the counterparties paid in total (18-decimal quote).
    function settleDeleverage(
        bytes32 marketId,
        address bankrupt,
        DeleverageLeg[] calldata legs,
        uint256 fundPays,
        address keeper
    ) external returns (uint256 collected);

    /// @notice Settles `bankrupt` by the final layer once the deleverager has checked its trigger
    /// (docs/mechanism.md section 7.6); only the rank index may call. The fund pays `fundPays`
    /// (at most the deficit D at the index price), the rest D_rem is charged to every position of
    /// the opposite side through its loss index, and `taker` takes the position over whole at the
    /// index price with zero equity, posting the initial margin if its risk grows. `taker` receives
    /// the market's `keeperPay`. Emits `LossSocialized`.
    function settleSocializedLoss(bytes32 marketId, address bankrupt, uint256 fundPays, address taker) external;

    /// @notice Pays `keeper` up to `amount` (18-decimal quote) from the keeper reserve of `marketId`
    /// for ADL session work; only the rank index may call. Never reverts for an empty reserve.
    /// @return paid What was paid (the reserve's balance if smaller).
    function payKeeper(bytes32 marketId, address keeper, uint256 amount) external returns (uint256 paid);

    /// @notice Adds `tokenAmount` of the caller's tokens to the keeper reserve of `marketId`.
    function fundKeeperReserve(bytes32 marketId, uint256 tokenAmount) external;

    // ------------------------------------------------------------------ funding

    /// @notice Accrues funding of `marketId` to the current block.
    function accrueFunding(bytes32 marketId) external;

    // ------------------------------------------------------------------ views

    /// @notice The stored position of `account` in `marketId`.
    function getPosition(bytes32 marketId, address account) external view returns (Position memory);

    /// @notice Free collateral of `account` (18-decimal quote).
    function freeCollateral(address account) external view returns (uint256);

    /// @notice What the insurance fund can pay now (18-decimal quote): its available tokens, scaled,
    /// plus fund fees not yet swept. The one definition of fund-available, read by the deleverager.
    function fundAvailable() external view returns (uint256);
}
