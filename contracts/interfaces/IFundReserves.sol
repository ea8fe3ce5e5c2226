// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IFundReserves
/// @notice The insurance fund's per-key reserves (InsuranceFund): money set aside for one bankrupt
/// position while an ADL session settles it, excluded from `available()` and from the share price
/// until released.
interface IFundReserves {
    /// @notice Sets `tokenAmount` of the available balance aside under `key` (the fund's drawers only).
    function reserve(bytes32 key, uint256 tokenAmount) external;

    /// @notice Returns the whole reserve under `key` to the available balance (the fund's drawers only).
    function release(bytes32 key) external;

    /// @notice Pays `tokenAmount` of bad debt to the caller out of the reserve under `key` (COVER_ROLE).
    function coverFromReserve(bytes32 key, uint256 tokenAmount) external;

    /// @notice The reserve under `key`, in token units.
    function reserveOf(bytes32 key) external view returns (uint256);

    /// @notice Collateral available to cover bad debt now (reserves excluded), in token units.
    function available() external view returns (uint256);
}
