// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title OrderSignatures
/// @notice Signature checks for EIP-712 orders, deployed once and linked (keeps the
/// clearinghouse under the 24 KB code-size limit).
/// @dev Called by DELEGATECALL, so an ERC-1271 wallet sees the clearinghouse as the caller; the
/// wallet is queried by STATICCALL and cannot change state.
library OrderSignatures {
    /// @notice True if `signature` over `digest` is valid for `signer` (ECDSA for EOAs, ERC-1271
    /// for contracts).
    function isValid(address signer, bytes32 digest, bytes calldata signature) external view returns (bool) {
        return SignatureChecker.isValidSignatureNow(signer, digest, signature);
    }
}
