// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title MockFeeSource
/// @notice Stands in for the clearinghouse's fee sweep in the insurance fund tests: holds tokens
/// as "pending fees" and sends them all to `insuranceFund` on `sweepFundFees`. Tests only.
contract MockFeeSource {
    using SafeERC20 for IERC20;

    IERC20 public immutable collateral;
    address public insuranceFund;
    /// @notice Optional call made to the fund during the sweep (to test the fund's reentrancy lock).
    bytes public reenterCall;

    event Swept(uint256 tokenAmount);

    constructor(IERC20 collateral_) {
        collateral = collateral_;
    }

    function setInsuranceFund(address fund) external {
        insuranceFund = fund;
    }

    function setReenterCall(bytes calldata data) external {
        reenterCall = data;
    }

    /// @notice Sends every token held here to the fund.
    function sweepFundFees() external returns (uint256 tokenAmount) {
        if (reenterCall.length != 0) {
            (bool ok, bytes memory ret) = insuranceFund.call(reenterCall);
            if (!ok) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
        tokenAmount = collateral.balanceOf(address(this));
        if (tokenAmount == 0) return 0;
        emit Swept(tokenAmount);
        collateral.safeTransfer(insuranceFund, tokenAmount);
    }
}
