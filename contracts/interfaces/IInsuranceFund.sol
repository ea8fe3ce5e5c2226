// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IInsuranceFund
/// @notice One insurance fund for all markets: pays the deficit of bankrupt positions.
/// @dev Holds the collateral token. Inflows: the fund share of trading fees (swept from the
/// clearinghouse), the fund share of liquidation fees, donations, stakes. The only outflows are
/// `cover` and reserve payouts (to the clearinghouse or the deleverager, its two drawers, fixed at
/// deployment) and unstaking payouts.
interface IInsuranceFund {
    /// @notice `caller` received `tokenAmount` to pay bad debt.
    event Covered(address indexed caller, uint256 tokenAmount);
    /// @notice `from` donated `tokenAmount` to the fund (no shares minted).
    event Donated(address indexed from, uint256 tokenAmount);

    /// @notice The cover request exceeds what the fund has available.
    error FundInsufficient(uint256 available, uint256 requested);

    /// @notice Transfers `tokenAmount` of collateral to the caller to pay bad debt.
    /// @dev Only the drawers (`clearinghouse()`, `deleverager()`). Reverts `FundInsufficient` if
    /// `tokenAmount > available()`; never pays more than it holds.
    function cover(uint256 tokenAmount) external;

    /// @notice The clearinghouse: one of the two drawers, fixed at deployment.
    function clearinghouse() external view returns (address);

    /// @notice The deleverager: one of the two drawers, fixed at deployment.
    function deleverager() external view returns (address);

    /// @notice Collateral available to cover bad debt now, in token units.
    function available() external view returns (uint256);

    /// @notice Total collateral the fund holds, in token units.
    function balance() external view returns (uint256);
}
