// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title MockMulticall
/// @notice Test helper: makes several calls to one target in one transaction, as an integrator's
/// contract would, and bubbles up the first revert.
contract MockMulticall {
    /// @notice Calls `target` with each of `calls` in order.
    function multicall(address target, bytes[] calldata calls) external {
        for (uint256 i; i < calls.length; ++i) {
            (bool ok, bytes memory result) = target.call(calls[i]);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(result, 32), mload(result))
                }
            }
        }
    }
}
