// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {PositionBook} from "./PositionBook.sol";
import {OrderLib} from "../libraries/OrderLib.sol";

/// @dev Flags and bookkeeping per market, apart from the hot MarketState, in one slot, which every
/// trade reads (listed, paused) and writes (the keeper reserve's fee share). `paramsEta` is when the
/// pending parameter change (`ClearinghouseLayout.pendingParams`) may be applied; zero: none pending.
struct MarketStatus {
    bool listed;
    bool paused;
    uint64 paramsEta;
    /// The keeper reserve (18-decimal quote): its fee share of every trade, paid out only to keepers
    /// (docs/mechanism.md section 7.2). Part of the clearinghouse's money, never withdrawn.
    uint128 keeperReserve;
}

/// @dev Every state variable of the clearinghouse, in one struct, so the libraries that act on it
/// (`PositionBook`, `Liquidations`) receive it as one typed storage pointer (`OrderLib` receives the
/// two mappings it reads) and the compiler checks every access: a library cannot declare storage.
struct ClearinghouseLayout {
    // ---------------------------------------------------------------- markets
    mapping(bytes32 marketId => IClearinghouseTypes.MarketParams) params;
    mapping(bytes32 marketId => IClearinghouseTypes.MarketState) state;
    mapping(bytes32 marketId => MarketStatus) status;
    /// The proposed parameters of a market, pending until `MarketStatus.paramsEta` (MarketParamsLib).
    mapping(bytes32 marketId => IClearinghouseTypes.MarketParams) pendingParams;
    // ---------------------------------------------------------------- money outside positions
    /// Fees owed to the insurance fund and not yet transferred (18-decimal quote). With the
    /// treasury balance in one slot, since every trade credits both (2^128 wei is 3.4e20 quote).
    uint128 pendingFundFees;
    /// Treasury balance held by the clearinghouse (18-decimal quote), rounding reserves excluded.
    uint128 treasuryBalance;
    /// Per-market rounding reserve (18-decimal quote), part of the treasury; never withdrawn.
    mapping(bytes32 marketId => uint256) roundingReserve;
    // ---------------------------------------------------------------- wiring
    /// The ADL rank index and deleverager: reindexed on every position change, the only caller
    /// of `settleDeleverage`.
    address rankIndex;
    /// Whether any position was ever opened; shares the rank index's slot, which every position
    /// change reads anyway. Once set, the rank index can no longer be wired.
    bool positionOpened;
    /// The insurance fund: receives the fund share of fees and covers bad debt.
    address insuranceFund;
    // ---------------------------------------------------------------- accounts and positions
    mapping(address account => uint256) free;
    mapping(bytes32 marketId => mapping(address account => IClearinghouseTypes.Position)) positions;
    // ---------------------------------------------------------------- orders
    /// Per order digest: base units filled in the low 255 bits, the cancellation flag in the top
    /// bit (`OrderLib.CANCELLED`). One slot per order, read once per fill.
    mapping(bytes32 orderHash => uint256) fills;
}

/// @dev The clearinghouse's immutables, handed to its external libraries (which cannot read them).
struct ClearinghouseEnv {
    IERC20 collateral;
    uint256 collateralScale;
    IOracleAdapter oracle;
}

/// @title ClearinghouseStorage
/// @notice The clearinghouse's state (one `ClearinghouseLayout`), its immutables and constants,
/// and the getters of stored values. No part of the clearinghouse declares storage elsewhere; the
/// inherited OpenZeppelin bases keep their own (roles, EIP-712 name fallbacks).
abstract contract ClearinghouseStorage is IClearinghouseTypes, AccessControl, EIP712, ReentrancyGuardTransient {
    /// @notice Sizes, |K| and prices stay below 2^120 so every s*K and its sum fit in int256.
    uint256 public constant MAX_MAGNITUDE = PositionBook.MAX_MAGNITUDE;
    /// @notice Position margin stays below 2^112 (5e15 quote units) so a record packs in two slots.
    uint256 public constant MAX_MARGIN = PositionBook.MAX_MARGIN;

    /// @notice The collateral token.
    IERC20 public immutable collateral;
    /// @notice 10^(18 - token decimals): internal amount per token unit.
    uint256 public immutable collateralScale;
    /// @notice Index price source.
    IOracleAdapter public immutable oracle;

    ClearinghouseLayout internal _s;

    /// @param collateral_ The collateral ERC-20 (at most 18 decimals, no fee on transfer).
    /// @param oracle_ The oracle adapter; market ids are its feed ids.
    constructor(IERC20 collateral_, IOracleAdapter oracle_) EIP712("Clearinghouse", "1") {
        if (address(collateral_) == address(0) || address(oracle_) == address(0)) revert ZeroAddress();
        uint8 decimals = IERC20Metadata(address(collateral_)).decimals();
        if (decimals > 18) revert CollateralDecimalsTooLarge(decimals);
        collateral = collateral_;
        collateralScale = 10 ** (18 - decimals);
        oracle = oracle_;
    }

    /// @notice Fees owed to the insurance fund and not yet transferred (18-decimal quote).
    function pendingFundFees() external view returns (uint256) {
        return _s.pendingFundFees;
    }

    /// @notice Treasury balance held here (18-decimal quote), rounding reserves excluded.
    function treasuryBalance() external view returns (uint256) {
        return _s.treasuryBalance;
    }

    /// @notice Rounding reserve of `marketId` (18-decimal quote), part of the treasury; never withdrawn.
    function roundingReserve(bytes32 marketId) external view returns (uint256) {
        return _s.roundingReserve[marketId];
    }

    /// @notice Keeper reserve of `marketId` (18-decimal quote): pays keepers only, never withdrawn.
    function keeperReserve(bytes32 marketId) external view returns (uint256) {
        return _s.status[marketId].keeperReserve;
    }

    /// @notice The ADL rank index and deleverager (zero until set).
    function rankIndex() external view returns (address) {
        return _s.rankIndex;
    }

    /// @notice The insurance fund (zero until set).
    function insuranceFund() external view returns (address) {
        return _s.insuranceFund;
    }

    /// @notice Base units filled of the order with digest `orderHash`.
    function filled(bytes32 orderHash) external view returns (uint256) {
        return _s.fills[orderHash] & ~OrderLib.CANCELLED;
    }

    /// @notice Whether the order with digest `orderHash` was cancelled by its trader.
    function cancelled(bytes32 orderHash) external view returns (bool) {
        return _s.fills[orderHash] & OrderLib.CANCELLED != 0;
    }

    /// @dev The immutables, for the external libraries.
    function _env() internal view returns (ClearinghouseEnv memory) {
        return ClearinghouseEnv(collateral, collateralScale, oracle);
    }
}
