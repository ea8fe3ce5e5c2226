// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {FixedPointMath} from "../libraries/FixedPointMath.sol";

/// @title ClearinghouseStorage
/// @notice Every state variable and immutable of the clearinghouse, and nothing else. The parts
/// (`MarketRegistry`, `PositionBook`, `Liquidations`, `Trading`) derive from this contract and
/// declare no storage of their own, so the whole layout is read in one file.
abstract contract ClearinghouseStorage is IClearinghouseTypes, AccessControl, EIP712, ReentrancyGuardTransient {
    /// @notice Sizes, |K| and prices stay below 2^120 so every s*K and its sum fit in int256.
    uint256 public constant MAX_MAGNITUDE = (1 << 120) - 1;
    /// @notice Position margin stays below 2^112 (5e15 quote units) so a record packs in two slots.
    uint256 public constant MAX_MARGIN = (1 << 112) - 1;
    uint256 internal constant WAD = FixedPointMath.WAD;

    /// @dev Flags and bookkeeping per market, apart from the hot MarketState.
    struct MarketStatus {
        bool listed;
        bool paused;
        uint64 lastMmrRaise;
    }

    /// @notice The collateral token.
    IERC20 public immutable collateral;
    /// @notice 10^(18 - token decimals): internal amount per token unit.
    uint256 public immutable collateralScale;
    /// @notice Index price source.
    IOracleAdapter public immutable oracle;

    // ---------------------------------------------------------------- markets
    mapping(bytes32 marketId => MarketParams) internal _params;
    mapping(bytes32 marketId => MarketState) internal _state;
    mapping(bytes32 marketId => MarketStatus) internal _status;

    // ---------------------------------------------------------------- money outside positions
    /// @notice Fees owed to the insurance fund and not yet transferred (18-decimal quote).
    uint256 public pendingFundFees;
    /// @notice Treasury balance held here (18-decimal quote), rounding reserves excluded.
    uint256 public treasuryBalance;
    /// @notice Per-market rounding reserve (18-decimal quote), part of the treasury; never withdrawn.
    mapping(bytes32 marketId => uint256) public roundingReserve;

    // ---------------------------------------------------------------- wiring
    /// @notice The ADL rank index and deleverager (zero until set): reindexed on every position
    /// change, and the only caller of `settleDeleverage`.
    address public rankIndex;

    // ---------------------------------------------------------------- accounts and positions
    mapping(address account => uint256) internal _free;
    mapping(bytes32 marketId => mapping(address account => Position)) internal _positions;

    /// @notice The insurance fund: receives the fund share of fees and covers bad debt.
    address public insuranceFund;

    // ---------------------------------------------------------------- orders
    /// @notice Base units filled per order hash.
    mapping(bytes32 orderHash => uint256) public filled;
    /// @notice Whether an order hash was cancelled by its trader.
    mapping(bytes32 orderHash => bool) public cancelled;

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
}
