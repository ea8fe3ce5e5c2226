// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IClearinghouseTypes} from "../interfaces/IClearinghouseTypes.sol";

/// @title OrderLib
/// @notice EIP-712 order hashing and every check of one signed order before a fill: sender,
/// expiry, cancellation, leverage, remaining size, limit price, reduce-only, signature. A linked external
/// library: the clearinghouse DELEGATECALLs it, so its mapping arguments are the clearinghouse's
/// own storage, and the code exists once on chain.
library OrderLib {
    /// @notice The EIP-712 type of `IClearinghouseTypes.Order`.
    bytes32 public constant ORDER_TYPEHASH =
        keccak256(
            "Order(address trader,bytes32 marketId,int256 size,uint256 limitPrice,uint256 leverage,"
            "uint256 salt,uint64 expiry,bool reduceOnly,bool makerAllowed,address sender)"
        );

    /// @notice The top bit of an order's fill record: set once the order is cancelled. Filled
    /// amounts never reach it (an order's size is below 2^255).
    uint256 public constant CANCELLED = 1 << 255;

    /// @notice The EIP-712 digest of `order` under `domainSeparator` (the clearinghouse's domain).
    function digest(IClearinghouseTypes.Order calldata order, bytes32 domainSeparator) public pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                ORDER_TYPEHASH,
                order.trader,
                order.marketId,
                order.size,
                order.limitPrice,
                order.leverage,
                order.salt,
                order.expiry,
                order.reduceOnly,
                order.makerAllowed,
                order.sender
            )
        );
        return MessageHashUtils.toTypedDataHash(domainSeparator, structHash);
    }

    /// @notice Cancels `order` for good; only its trader (the caller) may. The filled amount is kept.
    /// @param fills The clearinghouse's fill record per order digest.
    function cancel(
        mapping(bytes32 => uint256) storage fills,
        IClearinghouseTypes.Order calldata order,
        bytes32 domainSeparator
    ) external {
        if (msg.sender != order.trader) revert IClearinghouseTypes.OrderNotSigner(msg.sender, order.trader);
        bytes32 orderHash = digest(order, domainSeparator);
        fills[orderHash] |= CANCELLED;
        emit IClearinghouseTypes.OrderCancelled(msg.sender, orderHash);
    }

    /// @notice Checks `order` for a fill of `fillSize` at `price` and returns its digest; reverts
    /// with the order error that applies. Reads only; the caller records the fill.
    /// @dev `msg.sender` is the account that called the clearinghouse (a DELEGATECALL keeps it): an
    /// order naming a `sender` is accepted only in a match that account submits.
    /// @param fills The clearinghouse's fill record per order digest (filled size, cancelled flag).
    /// @param positions The clearinghouse's positions of `order.marketId`, for reduce-only.
    function check(
        mapping(bytes32 => uint256) storage fills,
        mapping(address => IClearinghouseTypes.Position) storage positions,
        IClearinghouseTypes.Order calldata order,
        bytes calldata signature,
        bytes32 domainSeparator,
        uint256 fillSize,
        uint256 price
    ) external view returns (bytes32 orderHash) {
        orderHash = digest(order, domainSeparator);
        if (order.sender != address(0) && order.sender != msg.sender) {
            revert IClearinghouseTypes.OrderSenderNotAllowed(orderHash, order.sender, msg.sender);
        }
        if (block.timestamp > order.expiry) revert IClearinghouseTypes.OrderExpired(orderHash, order.expiry);
        uint256 already = fills[orderHash];
        if (already & CANCELLED != 0) revert IClearinghouseTypes.OrderIsCancelled(orderHash);
        if (order.leverage == 0) revert IClearinghouseTypes.OrderInvalidLeverage(orderHash, 0);
        uint256 size = uint256(order.size > 0 ? order.size : -order.size);
        if (already + fillSize > size) revert IClearinghouseTypes.OrderOverfilled(orderHash, already, fillSize, size);
        bool limitMet = order.size > 0 ? price <= order.limitPrice : price >= order.limitPrice;
        if (!limitMet) revert IClearinghouseTypes.OrderLimitNotMet(orderHash, order.limitPrice, price);
        if (order.reduceOnly) {
            IClearinghouseTypes.Position storage pos = positions[order.trader];
            if (pos.size < fillSize || pos.isLong == (order.size > 0)) {
                revert IClearinghouseTypes.OrderReduceOnly(orderHash);
            }
        }
        if (!isValidSignature(order.trader, orderHash, signature)) {
            revert IClearinghouseTypes.OrderInvalidSignature(order.trader, orderHash);
        }
    }

    /// @notice Whether `signature` is `signer`'s over `hash`: an ECDSA signature by the signer's
    /// key, else an ERC-1271 approval by the signer's code (queried by staticcall, before any state
    /// change).
    /// @dev ECDSA first, as OpenZeppelin 4 did: the code-size probe that OpenZeppelin 5 runs before
    /// it costs a cold account access (2,600 gas) per order. An account with code whose key signed
    /// (an EIP-7702 delegated EOA) is accepted by its key, as it would be anywhere else.
    function isValidSignature(address signer, bytes32 hash, bytes calldata signature) public view returns (bool) {
        if (signature.length == 65) {
            (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(hash, signature);
            if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        }
        return SignatureChecker.isValidERC1271SignatureNow(signer, hash, signature);
    }
}
