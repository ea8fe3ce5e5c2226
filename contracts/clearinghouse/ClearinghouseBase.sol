// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {PositionBook} from "./PositionBook.sol";
import {Liquidations} from "./Liquidations.sol";

/// @title ClearinghouseBase
/// @notice The whole storage layout and internal machinery of the clearinghouse, shared by the
/// core (`Clearinghouse`) and its order-matching extension (`OrderMatching`), which the core runs
/// by DELEGATECALL. Both derive from this contract and declare no storage of their own, so their
/// layouts are identical by construction; both are built with the same constructor arguments, so
/// their immutables agree.
abstract contract ClearinghouseBase is Liquidations, EIP712, ReentrancyGuardTransient {
    bytes32 public constant ORDER_TYPEHASH =
        keccak256(
            "Order(address trader,bytes32 marketId,int256 size,uint256 limitPrice,uint256 leverage,"
            "uint256 salt,uint64 expiry,bool reduceOnly,bool makerAllowed)"
        );

    /// @notice Base units filled per order hash.
    mapping(bytes32 orderHash => uint256) public filled;
    /// @notice Whether an order hash was cancelled by its trader.
    mapping(bytes32 orderHash => bool) public cancelled;

    constructor(
        IERC20 collateral_,
        IOracleAdapter oracle_
    ) PositionBook(collateral_, _scaleOf(collateral_), oracle_) EIP712("Clearinghouse", "1") {
        if (address(oracle_) == address(0)) revert ZeroAddress();
    }

    /// @dev The EIP-712 digest of `o`. Under DELEGATECALL `address(this)` is the core, so the
    /// domain's verifying contract is always the clearinghouse.
    function _hashOrder(Order calldata o) internal view returns (bytes32) {
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

    /// @dev 10^(18 - decimals) of the collateral; rejects the zero address and > 18 decimals.
    function _scaleOf(IERC20 token) private view returns (uint256) {
        if (address(token) == address(0)) revert ZeroAddress();
        uint8 decimals = IERC20Metadata(address(token)).decimals();
        if (decimals > 18) revert CollateralDecimalsTooLarge(decimals);
        return 10 ** (18 - decimals);
    }
}
