// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IInsuranceFund} from "./interfaces/IInsuranceFund.sol";

/// @notice The part of the clearinghouse the fund uses to pull in its share of trading fees.
interface IClearinghouseFees {
    function sweepFundFees() external returns (uint256);
    function collateral() external view returns (IERC20);
    function insuranceFund() external view returns (address);
}

/// @title InsuranceFund
/// @notice One insurance fund for all markets: an ERC-4626 vault over the collateral token whose
/// stakers earn the fund's inflows and absorb the bad debt it covers. Unstaking goes through a
/// cooldown and pays min(value at request, value at completion) (see docs/insurance-fund.md).
/// @dev `totalAssets()` is the whole token balance (reserved money still belongs to stakers until
/// it is paid out). Shares under an unstake request sit in this contract's own balance and are
/// counted once, in `totalSupply()`. Rounding is OZ's: down on payouts, up on what a staker pays.
contract InsuranceFund is IInsuranceFund, ERC4626, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice May call `cover`, `reserve`, `release` and `coverFromReserve`.
    bytes32 public constant COVER_ROLE = keccak256("COVER_ROLE");
    /// @notice Bounds and default of the unstake cooldown.
    uint64 public constant MIN_COOLDOWN = 1 hours;
    uint64 public constant MAX_COOLDOWN = 30 days;
    uint64 public constant DEFAULT_COOLDOWN = 7 days;
    /// @notice A matured request can be completed for this long after `readyAt`, then only cancelled.
    /// @dev Without it a staker could keep a matured request open and exit the moment a bad-debt
    /// cover appears in the mempool, leaving the loss to the others.
    uint64 public constant COMPLETION_WINDOW = 1 days;

    /// @notice A pending unstake: `shares` held by the fund for `owner` until `readyAt`.
    struct UnstakeRequest {
        address owner;
        uint64 readyAt;
        uint256 shares;
        uint256 assetsAtRequest;
    }

    /// @notice Clearinghouse swept before every share mint or burn; zero disables the sweep.
    address public feeSource;
    /// @notice Delay between `requestUnstake` and `completeUnstake`, in seconds.
    uint64 public cooldown = DEFAULT_COOLDOWN;
    /// @notice Id the next unstake request gets (ids start at 1).
    uint256 public nextRequestId = 1;
    /// @notice Shares held by the fund under pending unstake requests.
    uint256 public totalPendingShares;
    /// @notice Sum of all per-key reserves, in token units.
    uint256 public totalReserved;

    mapping(uint256 requestId => UnstakeRequest) private _requests;
    mapping(bytes32 key => uint256) private _reserves;

    event FeeSourceSet(address indexed feeSource);
    event CooldownSet(uint64 previousCooldown, uint64 newCooldown);
    event UnstakeRequested(
        uint256 indexed requestId,
        address indexed owner,
        uint256 shares,
        uint256 assetsAtRequest,
        uint64 readyAt
    );
    event UnstakeCompleted(
        uint256 indexed requestId,
        address indexed owner,
        address indexed receiver,
        uint256 shares,
        uint256 tokenAmount
    );
    /// @notice `sharesBurned` is the part whose value had risen above `assetsAtRequest` (left to the other stakers).
    event UnstakeCancelled(
        uint256 indexed requestId,
        address indexed owner,
        uint256 sharesReturned,
        uint256 sharesBurned
    );
    event Reserved(bytes32 indexed key, uint256 tokenAmount, uint256 reserveAfter);
    event Released(bytes32 indexed key, uint256 tokenAmount);
    event ReserveUsed(bytes32 indexed key, address indexed caller, uint256 tokenAmount, uint256 reserveAfter);

    /// @notice An address argument was zero.
    error ZeroAddress();
    /// @notice An amount argument was zero.
    error ZeroAmount();
    /// @notice ERC-4626 `withdraw` and `redeem` are disabled: leave through `requestUnstake` and `completeUnstake`.
    error UnstakeRequiresCooldown();
    /// @notice Shares may not be minted to the fund itself.
    error SharesToFund();
    /// @notice The cooldown `cooldown` lies outside [`min`, `max`].
    error CooldownOutOfBounds(uint64 cooldown, uint64 min, uint64 max);
    /// @notice `feeSource` does not use this fund's asset or does not pay this fund.
    error FeeSourceMismatch(address feeSource);
    /// @notice No unstake request `requestId` exists.
    error UnknownRequest(uint256 requestId);
    /// @notice `caller` is not the `owner` of unstake request `requestId`.
    error NotRequestOwner(uint256 requestId, address caller, address owner);
    /// @notice Unstake request `requestId` is ready only at `readyAt`.
    error CooldownActive(uint256 requestId, uint64 readyAt, uint256 timestamp);
    /// @notice Unstake request `requestId` was not completed within its window, which ended at `expiredAt`.
    error UnstakeRequestExpired(uint256 requestId, uint256 expiredAt, uint256 timestamp);
    /// @notice Reserve `key` holds `reserved`, less than the `requested` amount.
    error ReserveInsufficient(bytes32 key, uint256 reserved, uint256 requested);

    /// @param asset_ The collateral token (plain ERC-20, the clearinghouse's collateral).
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    constructor(
        IERC20 asset_,
        address admin
    ) ERC20("ADL Insurance Fund Share", "adlIF") ERC4626(IERC20Metadata(address(asset_))) {
        if (address(asset_) == address(0) || admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit CooldownSet(0, DEFAULT_COOLDOWN);
    }

    // ================================================================ admin

    /// @notice Sets the clearinghouse whose `sweepFundFees` runs before every share mint or burn.
    /// @dev Zero disables the sweep. A non-zero source must use this fund's asset and already pay
    /// its fees to this fund, so the sweep can neither revert nor send the fees elsewhere.
    function setFeeSource(address source) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (source != address(0)) {
            IClearinghouseFees ch = IClearinghouseFees(source);
            if (address(ch.collateral()) != asset() || ch.insuranceFund() != address(this)) {
                revert FeeSourceMismatch(source);
            }
        }
        feeSource = source;
        emit FeeSourceSet(source);
    }

    /// @notice Sets the unstake cooldown for future requests (pending requests keep their `readyAt`).
    function setCooldown(uint64 newCooldown) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newCooldown < MIN_COOLDOWN || newCooldown > MAX_COOLDOWN) {
            revert CooldownOutOfBounds(newCooldown, MIN_COOLDOWN, MAX_COOLDOWN);
        }
        emit CooldownSet(cooldown, newCooldown);
        cooldown = newCooldown;
    }

    // ================================================================ inflows and outflows

    /// @notice Gives `tokenAmount` to the fund without minting shares: raises the share price.
    function donate(uint256 tokenAmount) external nonReentrant {
        if (tokenAmount == 0) revert ZeroAmount();
        emit Donated(msg.sender, tokenAmount);
        IERC20(asset()).safeTransferFrom(msg.sender, address(this), tokenAmount);
    }

    /// @inheritdoc IInsuranceFund
    /// @dev Does not sweep fees: the clearinghouse calls this under its own reentrancy lock.
    /// A zero amount is a no-op. The loss lowers the price of every share, requested ones included.
    function cover(uint256 tokenAmount) external nonReentrant onlyRole(COVER_ROLE) {
        if (tokenAmount == 0) return;
        uint256 avail = available();
        if (tokenAmount > avail) revert FundInsufficient(avail, tokenAmount);
        emit Covered(msg.sender, tokenAmount);
        IERC20(asset()).safeTransfer(msg.sender, tokenAmount);
    }

    /// @notice Sets `tokenAmount` of the available balance aside under `key` (adds to its reserve).
    /// @dev Only COVER_ROLE. Reverts `FundInsufficient` above `available()`. Zero is a no-op.
    function reserve(bytes32 key, uint256 tokenAmount) external nonReentrant onlyRole(COVER_ROLE) {
        if (tokenAmount == 0) return;
        uint256 avail = available();
        if (tokenAmount > avail) revert FundInsufficient(avail, tokenAmount);
        uint256 reserveAfter = _reserves[key] + tokenAmount;
        _reserves[key] = reserveAfter;
        totalReserved += tokenAmount;
        emit Reserved(key, tokenAmount, reserveAfter);
    }

    /// @notice Returns the whole reserve under `key` to the available balance.
    /// @dev Only COVER_ROLE. Releasing an empty key is a no-op.
    function release(bytes32 key) external nonReentrant onlyRole(COVER_ROLE) {
        uint256 amount = _reserves[key];
        if (amount == 0) return;
        delete _reserves[key];
        totalReserved -= amount;
        emit Released(key, amount);
    }

    /// @notice Pays `tokenAmount` of bad debt to the caller out of the reserve under `key`.
    /// @dev Only COVER_ROLE. Reverts `ReserveInsufficient` above the key's reserve. Emits
    /// `ReserveUsed` and, like every bad-debt payout, `Covered`. Zero is a no-op.
    function coverFromReserve(bytes32 key, uint256 tokenAmount) external nonReentrant onlyRole(COVER_ROLE) {
        if (tokenAmount == 0) return;
        uint256 reserved = _reserves[key];
        if (tokenAmount > reserved) revert ReserveInsufficient(key, reserved, tokenAmount);
        _reserves[key] = reserved - tokenAmount;
        totalReserved -= tokenAmount;
        emit ReserveUsed(key, msg.sender, tokenAmount, reserved - tokenAmount);
        emit Covered(msg.sender, tokenAmount);
        IERC20(asset()).safeTransfer(msg.sender, tokenAmount);
    }

    // ================================================================ staking

    /// @notice Stakes `assets` for shares at the current price, after sweeping pending fees.
    function deposit(uint256 assets, address receiver) public override nonReentrant returns (uint256) {
        if (receiver == address(this)) revert SharesToFund();
        _sweep();
        return super.deposit(assets, receiver);
    }

    /// @notice Mints exactly `shares` for their price (rounded up), after sweeping pending fees.
    function mint(uint256 shares, address receiver) public override nonReentrant returns (uint256) {
        if (receiver == address(this)) revert SharesToFund();
        _sweep();
        return super.mint(shares, receiver);
    }

    /// @notice Disabled: leave through `requestUnstake` and `completeUnstake`.
    function withdraw(uint256, address, address) public pure override returns (uint256) {
        revert UnstakeRequiresCooldown();
    }

    /// @notice Disabled: leave through `requestUnstake` and `completeUnstake`.
    function redeem(uint256, address, address) public pure override returns (uint256) {
        revert UnstakeRequiresCooldown();
    }

    /// @notice Always 0: direct withdrawals are disabled.
    function maxWithdraw(address) public pure override returns (uint256) {
        return 0;
    }

    /// @notice Always 0: direct redemptions are disabled.
    function maxRedeem(address) public pure override returns (uint256) {
        return 0;
    }

    /// @notice Moves `shares` of the caller into the fund's custody and starts the cooldown.
    /// @dev Records their value now (after the sweep, rounded down); the payout will be at most that.
    /// @return requestId The id to complete or cancel the request with.
    function requestUnstake(uint256 shares) external nonReentrant returns (uint256 requestId) {
        if (shares == 0) revert ZeroAmount();
        _sweep();
        uint256 assetsAtRequest = previewRedeem(shares);
        uint64 readyAt = uint64(block.timestamp) + cooldown;
        requestId = nextRequestId++;
        _requests[requestId] = UnstakeRequest(msg.sender, readyAt, shares, assetsAtRequest);
        totalPendingShares += shares;
        _transfer(msg.sender, address(this), shares);
        emit UnstakeRequested(requestId, msg.sender, shares, assetsAtRequest, readyAt);
    }

    /// @notice After the cooldown and within COMPLETION_WINDOW of it, burns the request's shares
    /// and pays `receiver` min(value at request, value now), rounded down.
    /// @dev Only the request's owner. Reverts `FundInsufficient` if the payout exceeds `available()`
    /// (reserved money waits for its ADL session to finish).
    function completeUnstake(uint256 requestId, address receiver) external nonReentrant returns (uint256 tokenAmount) {
        if (receiver == address(0)) revert ZeroAddress();
        UnstakeRequest memory r = _ownedRequest(requestId);
        if (block.timestamp < r.readyAt) revert CooldownActive(requestId, r.readyAt, block.timestamp);
        uint256 expiredAt = uint256(r.readyAt) + COMPLETION_WINDOW;
        if (block.timestamp > expiredAt) revert UnstakeRequestExpired(requestId, expiredAt, block.timestamp);
        _sweep();
        tokenAmount = Math.min(r.assetsAtRequest, _convertToAssets(r.shares, Math.Rounding.Floor));
        uint256 avail = available();
        if (tokenAmount > avail) revert FundInsufficient(avail, tokenAmount);
        delete _requests[requestId];
        totalPendingShares -= r.shares;
        _burn(address(this), r.shares);
        emit UnstakeCompleted(requestId, r.owner, receiver, r.shares, tokenAmount);
        emit Withdraw(msg.sender, receiver, r.owner, tokenAmount, r.shares);
        IERC20(asset()).safeTransfer(receiver, tokenAmount);
    }

    /// @notice Cancels a request and gives its shares back to the owner; if their value rose above
    /// the value at request, only shares worth that value come back and the rest are burned.
    /// @dev Only the request's owner; allowed at any time.
    function cancelUnstake(uint256 requestId) external nonReentrant returns (uint256 sharesReturned) {
        UnstakeRequest memory r = _ownedRequest(requestId);
        _sweep();
        sharesReturned = r.shares;
        if (_convertToAssets(r.shares, Math.Rounding.Floor) > r.assetsAtRequest) {
            // Keep r shares with r * (A + 1) / (S - shares + r + 10^offset) == assetsAtRequest after the
            // burn (the burn itself raises the price), rounded down; r < shares because value > assetsAtRequest.
            uint256 a = r.assetsAtRequest;
            uint256 otherSupply = totalSupply() - r.shares + 10 ** _decimalsOffset();
            sharesReturned = Math.min(Math.mulDiv(a, otherSupply, totalAssets() + 1 - a), r.shares);
        }
        delete _requests[requestId];
        totalPendingShares -= r.shares;
        if (sharesReturned < r.shares) _burn(address(this), r.shares - sharesReturned);
        _transfer(address(this), r.owner, sharesReturned);
        emit UnstakeCancelled(requestId, r.owner, sharesReturned, r.shares - sharesReturned);
    }

    /// @notice Share transfers to the fund itself are refused (use `requestUnstake`).
    function transfer(address to, uint256 value) public override(ERC20, IERC20) returns (bool) {
        if (to == address(this)) revert SharesToFund();
        return super.transfer(to, value);
    }

    /// @notice Share transfers to the fund itself are refused (use `requestUnstake`).
    function transferFrom(address from, address to, uint256 value) public override(ERC20, IERC20) returns (bool) {
        if (to == address(this)) revert SharesToFund();
        return super.transferFrom(from, to, value);
    }

    // ================================================================ views

    /// @inheritdoc IInsuranceFund
    function balance() public view returns (uint256) {
        return IERC20(asset()).balanceOf(address(this));
    }

    /// @inheritdoc IInsuranceFund
    /// @dev The balance minus all reserves.
    function available() public view returns (uint256) {
        uint256 bal = balance();
        return bal > totalReserved ? bal - totalReserved : 0;
    }

    /// @notice All the collateral held, reserved part included.
    function totalAssets() public view override returns (uint256) {
        return balance();
    }

    /// @notice The reserve set aside under `key`, in token units.
    function reserveOf(bytes32 key) external view returns (uint256) {
        return _reserves[key];
    }

    /// @notice The unstake request `requestId` (owner zero if unknown, completed or cancelled).
    function getUnstakeRequest(uint256 requestId) external view returns (UnstakeRequest memory) {
        return _requests[requestId];
    }

    // ================================================================ internals

    function _sweep() private {
        address source = feeSource;
        if (source != address(0)) IClearinghouseFees(source).sweepFundFees();
    }

    function _ownedRequest(uint256 requestId) private view returns (UnstakeRequest memory r) {
        r = _requests[requestId];
        if (r.owner == address(0)) revert UnknownRequest(requestId);
        if (r.owner != msg.sender) revert NotRequestOwner(requestId, msg.sender, r.owner);
    }

    /// @dev 10^6 virtual shares per virtual asset unit: makes the first-depositor inflation attack
    /// cost the attacker about a million times what it could take from a victim.
    function _decimalsOffset() internal pure override returns (uint8) {
        return 6;
    }
}
