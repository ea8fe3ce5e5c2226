// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IRankIndex
/// @notice The clearinghouse's view of the ADL rank index (implemented by AutoDeleverager).
interface IRankIndex {
    /// @notice Moves `account`'s membership after a change of its position's size, side, `c` or `K`.
    /// @dev Called by the clearinghouse from its single position funnel, for every change except a
    /// reduction that leaves the position open (which keeps `a`, `K`, side and leaf).
    /// @param wasOpen, wasLong, oldLeaf The stored membership before the change.
    /// @param isOpen, isLong, a, k The position after the change.
    /// @return leaf The leaf the position now belongs to (0 if closed).
    function reindex(
        bytes32 marketId,
        address account,
        bool wasOpen,
        bool wasLong,
        uint16 oldLeaf,
        bool isOpen,
        bool isLong,
        uint256 a,
        int256 k
    ) external returns (uint16 leaf);

    /// @notice Where the reserve of `account`'s own open ADL session sits: the fund holding it and its
    /// key (both zero when `account`'s position is not the bankrupt one of an open session). The
    /// clearinghouse counts that reserve as available when it liquidates the position's bankrupt part,
    /// and draws it first (`coverFromReserve`).
    function sessionReserve(bytes32 marketId, address account) external view returns (address fund, bytes32 key);
}
