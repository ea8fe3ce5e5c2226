// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title FixedPointMath
/// @notice 18-decimal fixed-point helpers whose names state their rounding direction.
/// @dev Every caller picks the direction that goes against the account and toward the protocol.
library FixedPointMath {
    /// @dev The fixed-point unit: prices, sizes, fractions and quote amounts carry 18 decimals.
    uint256 internal constant WAD = 1e18;

    /// @dev floor(a * b / d) with a 512-bit intermediate product.
    function mulDivDown(uint256 a, uint256 b, uint256 d) internal pure returns (uint256) {
        return Math.mulDiv(a, b, d);
    }

    /// @dev ceil(a * b / d) with a 512-bit intermediate product.
    function mulDivUp(uint256 a, uint256 b, uint256 d) internal pure returns (uint256) {
        return Math.mulDiv(a, b, d, Math.Rounding.Ceil);
    }

    /// @dev floor(a / d) toward negative infinity, for signed a and 0 < d < 2^255 (every caller
    /// passes W or a size below 2^121; a larger d would wrap in the int256 cast).
    function divFloor(int256 a, uint256 d) internal pure returns (int256 q) {
        int256 sd = int256(d);
        q = a / sd;
        if (a % sd != 0 && a < 0) q -= 1;
    }

    /// @dev ceil(a / d) toward positive infinity, for signed a and 0 < d < 2^255 (see divFloor).
    function divCeil(int256 a, uint256 d) internal pure returns (int256 q) {
        int256 sd = int256(d);
        q = a / sd;
        if (a % sd != 0 && a > 0) q += 1;
    }

    /// @dev The smaller of two signed values.
    function min(int256 a, int256 b) internal pure returns (int256) {
        return a < b ? a : b;
    }
}
