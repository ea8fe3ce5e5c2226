// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IClearinghouse} from "../interfaces/IClearinghouse.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title MockERC1271Wallet
/// @notice A smart-contract trader: signatures are valid when its owner's key signed the digest.
contract MockERC1271Wallet is IERC1271 {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner ? this.isValidSignature.selector : bytes4(0);
    }

    /// @notice Approves `spender` and deposits `amount` of `token` into `clearinghouse` for this wallet.
    function depositTo(IClearinghouse clearinghouse, IERC20 token, uint256 amount) external {
        token.approve(address(clearinghouse), amount);
        clearinghouse.deposit(address(this), amount);
    }
}
