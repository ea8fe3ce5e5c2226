// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IClearinghouseTypes
/// @notice The types, events and errors of the clearinghouse (shared by its core and its
/// order-matching extension); IClearinghouse adds the functions.
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
interface IClearinghouseTypes {
    /// @notice A trader's signed intent. `size` > 0 buys, < 0 sells (18-decimal base units).
    /// @param trader The account whose position changes (EOA or ERC-1271 contract).
    /// @param marketId The market, e.g. bytes32("ETH-USD").
    /// @param size Signed base size; fills consume its absolute value.
    /// @param limitPrice Worst acceptable price (18-decimal quote per base).
    /// @param leverage Target leverage (18-decimal) for the margin of any increase; the margin
    ///        posted is max(ceil(d * p / leverage), the least amount that passes the margin test).
    /// @param salt Any value that makes the order unique.
    /// @param expiry Last valid timestamp (inclusive).
    /// @param reduceOnly If true, a fill may only shrink an opposite position, never open or flip.
    /// @param makerAllowed If true the order may rest and be matched as the maker, filled at its own
    ///        limit price; if false it can only be the taker, filled at a resting order's price,
    ///        which must lie within the market's `takerBand` of the index. The flag alone does not
    ///        bound the taker's price: whoever submits a match may sign the resting order itself.
    /// @param sender The only address allowed to submit the order in a match; zero lets anyone
    ///        submit it (and so fill it at any price its limit and the bands allow).
    struct Order {
        address trader;
        bytes32 marketId;
        int256 size;
        uint256 limitPrice;
        uint256 leverage;
        uint256 salt;
        uint64 expiry;
        bool reduceOnly;
        bool makerAllowed;
        address sender;
    }

    /// @notice One match of a batch: the arguments of `matchOrders`.
    struct Match {
        Order maker;
        bytes makerSignature;
        Order taker;
        bytes takerSignature;
        uint256 fillSize;
    }

    /// @notice The stored position record (docs/mechanism.md section 2), packed in two slots.
    /// `size == 0` means no position.
    /// @param size q, base units, below 2^120.
    /// @param margin c, quote units, below 2^112; > 0 while the position is open.
    /// @param isLong Side.
    /// @param leaf Rank-index leaf (0 until the deleverager assigns bands).
    /// @param entry K, the funding-adjusted entry (signed), |K| below 2^120.
    /// @param leverage a = ceil(q * W / c) (base per quote, so notional leverage is a * P / W),
    ///        saturating at 2^128 - 1; recomputed on every change but reductions.
    struct Position {
        uint120 size;
        uint112 margin;
        bool isLong;
        uint16 leaf;
        int128 entry;
        uint128 leverage;
    }

    /// @notice One counterparty of an ADL call: reduce `account` by `take`, charging it at most
    /// `charge` (capped at its closed share's equity).
    struct DeleverageLeg {
        address account;
        uint256 take;
        uint256 charge;
    }

    /// @notice Risk and fee parameters of a market, each within hard-coded bounds.
    /// @param imr Initial margin ratio (fraction of notional).
    /// @param mmr Maintenance margin ratio; below imr.
    /// @param makerFee Fee on the maker's notional (fraction).
    /// @param takerFee Fee on the taker's notional (fraction).
    /// @param priceBand Largest |fill price - index| / index a fill may have.
    /// @param fundFeeShare Share of trading fees paid to the insurance fund; the rest to the treasury.
    /// @param maxPremium Clamp on each fill's premium |p - P| / P for funding.
    /// @param keeperFeeShare Share of trading fees paid into the market's keeper reserve (with
    ///        `fundFeeShare` at most 1); the reserve pays keepers and nothing else.
    /// @param minNotional Smallest notional q * P a voluntary fill may leave open (quote).
    /// @param fundingPeriod Seconds over which a constant premium moves F by premium * P.
    /// @param fundingWindow Seconds of each premium-averaging window.
    /// @param liquidationFee Fee on the notional taken by a liquidation (fraction).
    /// @param liquidatorShare Share of the liquidation fee that goes to the liquidator.
    /// @param takerBand Largest |fill price - index| / index for a fill whose taker order is
    ///        taker-only (`makerAllowed == false`); at most priceBand.
    /// @param keeperPay Fixed pay (quote) from the keeper reserve for one settling action: a
    ///        liquidation (bankrupt or not), an ADL call, a session's finish, a socialized loss.
    struct MarketParams {
        uint64 imr;
        uint64 mmr;
        uint64 makerFee;
        uint64 takerFee;
        uint64 priceBand;
        uint64 fundFeeShare;
        uint64 maxPremium;
        uint64 keeperFeeShare;
        uint128 minNotional;
        uint32 fundingPeriod;
        uint32 fundingWindow;
        uint64 liquidationFee;
        uint64 liquidatorShare;
        uint64 takerBand;
        uint128 keeperPay;
    }

    /// @notice Funding, open-interest and loss-index state of a market, packed in six slots:
    /// (F, rate), (times, window size), premium sum, (long OI, short OI), sum of s*K, (loss
    /// indices). The narrow
    /// fields are ample: |F| stays far below 2^127 wei per unit (1.7e20 quote per base) and each
    /// open interest below 2^128 (sizes are below 2^120); arithmetic is checked, never wrapped.
    /// @param cumulativeFunding F, per unit of long size (longs pay when it rises).
    /// @param fundingRate Current rate: fraction of the index price per second (signed).
    /// @param lastFundingTime When F was last accrued.
    /// @param windowStart Start of the current premium-averaging window.
    /// @param premiumTimesSize Sum of clamped premium * fill size in the current window.
    /// @param windowSize Sum of fill sizes in the current window.
    /// @param longOpenInterest Sum of long sizes.
    /// @param shortOpenInterest Sum of short sizes.
    /// @param sumSizeTimesEntry Exact sum over positions of signed size * K (36 decimals).
    struct MarketState {
        int128 cumulativeFunding;
        int128 fundingRate;
        uint64 lastFundingTime;
        uint64 windowStart;
        uint128 windowSize;
        int256 premiumTimesSize;
        uint128 longOpenInterest;
        uint128 shortOpenInterest;
        int256 sumSizeTimesEntry;
        uint128 lossIndexLong;
        uint128 lossIndexShort;
    }

    /// @notice Names the MarketParams field an error refers to (declaration order).
    enum ParamField {
        Imr,
        Mmr,
        MakerFee,
        TakerFee,
        PriceBand,
        FundFeeShare,
        MaxPremium,
        KeeperFeeShare,
        MinNotional,
        FundingPeriod,
        FundingWindow,
        LiquidationFee,
        LiquidatorShare,
        TakerBand,
        KeeperPay
    }

    // ------------------------------------------------------------------ events

    /// @notice Collateral entered the free balance of `account`.
    event Deposited(address indexed from, address indexed account, uint256 tokenAmount, uint256 credited);
    /// @notice Free collateral of `account` left to `to`.
    event Withdrawn(address indexed account, address indexed to, uint256 tokenAmount, uint256 debited);
    /// @notice Margin moved between free collateral and a position (`amount` > 0 adds).
    event MarginMoved(bytes32 indexed marketId, address indexed account, int256 amount);
    /// @notice A position's record changed. Carries everything needed to rebuild it off-chain;
    /// `cumulativeFunding` is F as last accrued in the market with the loss index of the
    /// position's side folded in (F + L_long for a long, F - L_short for a short).
    event PositionChanged(
        bytes32 indexed marketId,
        address indexed account,
        bool isLong,
        uint256 size,
        int256 entry,
        uint256 margin,
        uint256 leverage,
        uint16 leaf,
        int256 realizedPnl,
        int256 cumulativeFunding
    );
    /// @notice Two signed orders were matched for `size` at the maker's `price`.
    event OrdersMatched(
        bytes32 indexed marketId,
        bytes32 indexed makerOrderHash,
        bytes32 indexed takerOrderHash,
        address maker,
        address taker,
        bool takerBuys,
        uint256 size,
        uint256 price,
        uint256 makerFee,
        uint256 takerFee
    );
    /// @notice The signer cancelled an order.
    event OrderCancelled(address indexed trader, bytes32 indexed orderHash);
    /// @notice Funding accrued into F; `fundingRate` is the rate now in force.
    event FundingAccrued(bytes32 indexed marketId, int256 cumulativeFunding, int256 fundingRate, uint256 indexPrice);
    /// @notice A new market was listed.
    event MarketListed(bytes32 indexed marketId, MarketParams params);
    /// @notice A change of a market's parameters was proposed; anyone may apply it from `eta` on.
    event MarketParamsProposed(bytes32 indexed marketId, MarketParams params, uint256 eta);
    /// @notice The pending change of a market's parameters (applicable from `eta`) was dropped.
    event MarketParamsCancelled(bytes32 indexed marketId, uint256 eta);
    /// @notice A market's parameters changed: a pending change was applied.
    event MarketParamsUpdated(bytes32 indexed marketId, MarketParams params);
    /// @notice A market was paused or unpaused.
    event MarketPaused(bytes32 indexed marketId, bool paused);
    /// @notice Fees were credited to the insurance fund, the market's keeper reserve and the treasury.
    event FeesCollected(bytes32 indexed marketId, uint256 toFund, uint256 toKeepers, uint256 toTreasury);
    /// @notice Pending insurance-fund fees were transferred to the fund.
    event FundFeesSwept(address indexed fund, uint256 tokenAmount);
    /// @notice Treasury collateral was paid out.
    event TreasuryWithdrawn(address indexed to, uint256 tokenAmount);
    /// @notice `liquidator` took over `size` of `account`'s position at the index `price`.
    event PositionLiquidated(
        bytes32 indexed marketId,
        address indexed account,
        address indexed liquidator,
        uint256 size,
        uint256 price,
        uint256 feeToLiquidator,
        uint256 feeToFund,
        uint256 deficitCovered
    );
    /// @notice The insurance fund and the rounding reserve paid a bankrupt part's deficit.
    event BadDebtCovered(bytes32 indexed marketId, address indexed account, uint256 fundPaid, uint256 reservePaid);
    /// @notice A keeper was paid `amount` from the market's keeper reserve (what it held, at most
    /// the market's `keeperPay` per settling action).
    event KeeperRewardPaid(bytes32 indexed marketId, address indexed keeper, uint256 amount);
    /// @notice `from` added `amount` to the keeper reserve of `marketId`.
    event KeeperReserveFunded(bytes32 indexed marketId, address indexed from, uint256 amount);
    /// @notice The final layer settled `bankrupt`: the fund paid `fundPaid`, the rest `lossSocialized`
    /// (D_rem) was charged to the `chargedLong` side of open interest `openInterest` (Q_side) by
    /// raising its loss index to `lossIndex`, the rounding `toFund` went to the fund, and `taker`
    /// took the position (`size`, zero equity) over at `price`.
    event LossSocialized(
        bytes32 indexed marketId,
        address indexed bankrupt,
        address indexed taker,
        bool chargedLong,
        uint256 size,
        uint256 price,
        uint256 fundPaid,
        uint256 lossSocialized,
        uint256 openInterest,
        uint256 lossIndex,
        uint256 toFund
    );
    /// @notice The rounding reserve of `marketId` was topped up.
    event RoundingReserveFunded(bytes32 indexed marketId, address indexed from, uint256 amount);
    /// @notice The ADL rank index / deleverager was set.
    event RankIndexSet(address indexed rankIndex);
    /// @notice The insurance fund address changed.
    event InsuranceFundSet(address indexed fund);

    // ------------------------------------------------------------------ errors

    /// @notice An address argument was zero.
    error ZeroAddress();
    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice The collateral token has more than 18 decimals.
    error CollateralDecimalsTooLarge(uint8 decimals);
    /// @notice A token transfer delivered less than asked (a fee-on-transfer token).
    error CollateralTransferShort(uint256 expected, uint256 received);
    /// @notice `account` has `available` free collateral where `required` is needed.
    error InsufficientFreeCollateral(address account, uint256 available, uint256 required);
    /// @notice The treasury holds `available`, less than the `required` withdrawal.
    error InsufficientTreasury(uint256 available, uint256 required);
    /// @notice `marketId` is not listed.
    error MarketUnknown(bytes32 marketId);
    /// @notice `marketId` is already listed.
    error MarketAlreadyListed(bytes32 marketId);
    /// @notice `marketId` is paused: no trading, margin removal or liquidation.
    error MarketIsPaused(bytes32 marketId);
    /// @notice A market parameter `field` has `value` outside [`min`, `max`].
    error MarketParamOutOfBounds(ParamField field, uint256 value, uint256 min, uint256 max);
    /// @notice A parameter `field` would move from `current` to `proposed`, outside the one step
    /// [`min`, `max`] a change may make.
    error MarketParamStepTooLarge(ParamField field, uint256 current, uint256 proposed, uint256 min, uint256 max);
    /// @notice `marketId` has no pending parameter change.
    error MarketParamsNotPending(bytes32 marketId);
    /// @notice The pending parameter change of `marketId` may be applied only from `eta` on.
    error MarketParamsNotDue(bytes32 marketId, uint256 eta);
    /// @notice `account` has no position in `marketId`.
    error PositionNotFound(bytes32 marketId, address account);
    /// @notice A position would reach `size`, above `max` (2^120 - 1).
    error PositionTooLarge(uint256 size, uint256 max);
    /// @notice A position's margin would reach `margin`, above `max` (2^112 - 1).
    error MarginTooLarge(uint256 margin, uint256 max);
    /// @notice A position's funding-adjusted entry K would be `entry`, beyond +/-(2^120 - 1).
    error EntryOutOfRange(int256 entry);
    /// @notice The oracle returned `price`, at or above 2^120.
    error IndexPriceTooLarge(uint256 price);
    /// @notice `account`'s position fails the initial margin test by `shortfall`.
    error InsufficientMargin(address account, uint256 shortfall);
    /// @notice A voluntary fill would leave `account` a position of `notional` below `minNotional`.
    error NotionalBelowMinimum(address account, uint256 notional, uint256 minNotional);
    /// @notice The signature does not belong to `trader` (ECDSA or ERC-1271).
    error OrderInvalidSignature(address trader, bytes32 orderHash);
    /// @notice The order expired at `expiry`.
    error OrderExpired(bytes32 orderHash, uint256 expiry);
    /// @notice The order was cancelled by its trader.
    error OrderIsCancelled(bytes32 orderHash);
    /// @notice Filling `fill` more would exceed the order's `size` (`filled` already).
    error OrderOverfilled(bytes32 orderHash, uint256 filled, uint256 fill, uint256 size);
    /// @notice The maker and taker orders name different markets.
    error OrderMarketMismatch(bytes32 makerMarket, bytes32 takerMarket);
    /// @notice Both orders buy, or both sell.
    error OrderSameSide();
    /// @notice Maker and taker are the same `trader`.
    error OrderSelfMatch(address trader);
    /// @notice An order or the fill has size zero.
    error OrderZeroSize();
    /// @notice The fill `price` is worse than the order's `limitPrice`.
    error OrderLimitNotMet(bytes32 orderHash, uint256 limitPrice, uint256 price);
    /// @notice The order's leverage is zero.
    error OrderInvalidLeverage(bytes32 orderHash, uint256 leverage);
    /// @notice A reduce-only order would open, increase or flip a position.
    error OrderReduceOnly(bytes32 orderHash);
    /// @notice A taker-only order was submitted as the maker.
    error OrderTakerOnly(bytes32 orderHash);
    /// @notice The order names `sender` as the only address that may submit it; `caller` is not it.
    error OrderSenderNotAllowed(bytes32 orderHash, address sender, address caller);
    /// @notice Only the order's `trader` may cancel it, not `caller`.
    error OrderNotSigner(address caller, address trader);
    /// @notice A batch of matches was empty.
    error OrderBatchEmpty();
    /// @notice The fill `price` lies more than `band` (a fraction) from `indexPrice`.
    error PriceOutsideBand(uint256 price, uint256 indexPrice, uint256 band);
    /// @notice The oracle answered `fresh` after `cached` within one transaction.
    error OraclePriceChanged(bytes32 marketId, uint256 cached, uint256 fresh);
    /// @notice A liquidated part would settle at `net` below zero.
    error ForcedPayoutNegative(address account, int256 net);
    /// @notice An account may not liquidate its own position.
    error LiquidationSelf(address account);
    /// @notice `size` exceeds `maxSize`, the most that may be taken now.
    error LiquidationTooLarge(uint256 size, uint256 maxSize);
    /// @notice `equity` is at or above the `maintenance` requirement.
    error PositionNotLiquidatable(address account, int256 equity, uint256 maintenance);
    /// @notice The fund cannot cover the position's `deficit` (`fundAvailable`, with the reserve of the
    /// position's own ADL session if one is open): only ADL may settle it.
    error AdlOnly(bytes32 marketId, address account, uint256 deficit, uint256 fundAvailable);
    /// @notice Neither the rounding reserve nor the treasury can pay the `needed` rounding.
    error RoundingReserveEmpty(bytes32 marketId, uint256 needed);
    /// @notice Only the rank index may settle a deleverage; `caller` is not it.
    error NotRankIndex(address caller);
    /// @notice The rank index is already set (to `current`); it is never re-pointed.
    error RankIndexAlreadySet(address current);
    /// @notice The index price of `marketId` is older than the strict window: a position may be
    /// reduced but not opened or increased, and no margin removed.
    error RiskIncreaseOnStalePrice(bytes32 marketId);
    /// @notice A position was already opened: a rank index wired now would not hold it.
    error RankIndexAfterFirstPosition();
    /// @notice The fund would pay `fundPays`, more than the closed part's deficit (`closedPartEquity`).
    error DeleverageFundOverpays(int256 closedPartEquity, uint256 fundPays);
}
