// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ModuleCall
/// @notice Forwards the current call to a module by DELEGATECALL and ends the call with the module's
/// result: its return data on success, its revert data (custom errors intact) on failure.
/// @dev The module must share the caller's storage layout (derive from the same base contract);
/// nothing after `forward` runs.
library ModuleCall {
    /// @notice Runs the current calldata in `module` on this contract's storage and returns or reverts
    /// with the module's result.
    function forward(address module) internal {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            let ok := delegatecall(gas(), module, ptr, calldatasize(), 0, 0)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(ok) {
                revert(ptr, returndatasize())
            }
            return(ptr, returndatasize())
        }
    }
}
