// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
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
/// @dev Who may draw: exactly two addresses, the clearinghouse and the deleverager ("drawers"),
/// fixed in the constructor as immutables. Nothing can add, remove or replace a drawer: there is no
/// setter, and `grantRole` accepts only DEFAULT_ADMIN_ROLE, whose holder sets the fee source and
/// the cooldown but can never draw. The system's deployment creates the clearinghouse and the
/// deleverager before the fund (neither needs the fund's address to be built: the clearinghouse
/// learns it later through `setInsuranceFund`), so constructor arguments are possible and a
/// one-time setter, with its window between deployment and wiring, is not needed.
///
/// Share price: `totalAssets()` is the balance minus every reserve. Money an ADL session sets aside
/// counts as spent from the moment it is reserved and comes back only when it is released. So
/// stakes and payouts are priced without it, and nobody can exit at a value that counts it.
/// While any reserve is out, new stakes are refused (`FundDepositDuringReserve`): at that price a
/// newcomer would buy shares at the low post-reserve value and take part of the reserve when it is
/// released (sessions set aside all that is available, so one token could buy almost every share).
/// Shares under an unstake request sit in this contract's own balance and are counted once, in
/// `totalSupply()`. Rounding is OZ's: down on payouts, up on what a staker pays.
contract InsuranceFund is IInsuranceFund, ERC4626, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Bounds and default of the unstake cooldown.
    uint64 public constant MIN_COOLDOWN = 1 hours;
    uint64 public constant MAX_COOLDOWN = 30 days;
    uint64 public constant DEFAULT_COOLDOWN = 7 days;
    /// @notice A matured request can be completed for this long after `readyAt`, then only cancelled.
    /// @dev Without it a staker could keep a matured request open and exit the moment a bad-debt
    /// cover appears in the mempool, leaving the loss to the others.
    uint64 public constant COMPLETION_WINDOW = 1 days;
    /// @notice A reserve untouched for this long may be released by anyone (`releaseStale`).
    /// @dev Far above the longest ADL session (the deleverager caps T at 1 day and always releases
    /// at the end), so it only ever frees a reserve whose release was lost; without it such a
    /// reserve would stay out of the share price and block new stakes for good.
    uint64 public constant STALE_RESERVE_AGE = 7 days;

    /// @notice A pending unstake: `shares` held by the fund for `owner` until `readyAt`.
    struct UnstakeRequest {
        address owner;
        uint64 readyAt;
        uint256 shares;
        uint256 assetsAtRequest;
    }

    /// @notice The money set aside under one key, and when it was last added to.
    struct Reserve {
        uint192 tokenAmount;
        uint64 reservedAt;
    }

    /// @notice Drawer: pays bad debt of liquidations and ADL settlements through `cover`.
    address public immutable clearinghouse;
    /// @notice Drawer: sets ADL session money aside (`reserve`, `release`, `coverFromReserve`).
    address public immutable deleverager;

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
    mapping(bytes32 key => Reserve) private _reserves;

    /// @notice The fund's two drawers were fixed at deployment.
    event DrawersFixed(address indexed clearinghouse, address indexed deleverager);
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
    /// @notice `caller` released the reserve under `key`, untouched since `reservedAt` (also emits `Released`).
    event StaleReserveReleased(bytes32 indexed key, address indexed caller, uint256 tokenAmount, uint64 reservedAt);
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
    /// @notice The drawers must be two distinct non-zero addresses.
    error FundDrawersInvalid(address clearinghouse, address deleverager);
    /// @notice `caller` is neither the clearinghouse nor the deleverager fixed at deployment.
    error FundCallerNotDrawer(address caller);
    /// @notice Only DEFAULT_ADMIN_ROLE can be granted; `role` does not exist here (drawers are fixed).
    error FundRoleNotGrantable(bytes32 role);
    /// @notice Stakes are refused while `totalReserved` tokens are set aside for ADL sessions.
    error FundDepositDuringReserve(uint256 totalReserved);
    /// @notice Nothing is reserved under `key`.
    error FundReserveEmpty(bytes32 key);
    /// @notice The reserve under `key` becomes stale at `staleAt`, after `timestamp`.
    error FundReserveNotStale(bytes32 key, uint256 staleAt, uint256 timestamp);

    /// @param asset_ The collateral token (plain ERC-20, the clearinghouse's collateral).
    /// @param admin Receives DEFAULT_ADMIN_ROLE (fee source and cooldown; never a drawer).
    /// @param clearinghouse_ The clearinghouse: a drawer, for good.
    /// @param deleverager_ The deleverager: a drawer, for good.
    constructor(
        IERC20 asset_,
        address admin,
        address clearinghouse_,
        address deleverager_
    ) ERC20("ADL Insurance Fund Share", "adlIF") ERC4626(IERC20Metadata(address(asset_))) {
        if (address(asset_) == address(0) || admin == address(0)) revert ZeroAddress();
        if (clearinghouse_ == address(0) || deleverager_ == address(0) || clearinghouse_ == deleverager_) {
            revert FundDrawersInvalid(clearinghouse_, deleverager_);
        }
        clearinghouse = clearinghouse_;
        deleverager = deleverager_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit DrawersFixed(clearinghouse_, deleverager_);
        emit CooldownSet(0, DEFAULT_COOLDOWN);
    }

    /// @notice Only the clearinghouse and the deleverager fixed at deployment.
    modifier onlyDrawer() {
        if (msg.sender != clearinghouse && msg.sender != deleverager) revert FundCallerNotDrawer(msg.sender);
        _;
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

    /// @notice Grants DEFAULT_ADMIN_ROLE (admin only); every other role reverts `FundRoleNotGrantable`.
    /// @dev The fund has no role that draws on it: the drawers are immutables, so an admin cannot
    /// make itself (or anyone) a drawer, whatever role id it tries.
    function grantRole(bytes32 role, address account) public override {
        if (role != DEFAULT_ADMIN_ROLE) revert FundRoleNotGrantable(role);
        super.grantRole(role, account);
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
    /// Only the drawers. A zero amount is a no-op. The loss lowers the price of every share,
    /// requested ones included.
    function cover(uint256 tokenAmount) external nonReentrant onlyDrawer {
        if (tokenAmount == 0) return;
        uint256 avail = available();
        if (tokenAmount > avail) revert FundInsufficient(avail, tokenAmount);
        emit Covered(msg.sender, tokenAmount);
        IERC20(asset()).safeTransfer(msg.sender, tokenAmount);
    }

    /// @notice Sets `tokenAmount` of the available balance aside under `key` (adds to its reserve).
    /// @dev Only the drawers. Reverts `FundInsufficient` above `available()`. Zero is a no-op. The
    /// amount leaves `totalAssets()` now: from the stakers' point of view it is spent.
    function reserve(bytes32 key, uint256 tokenAmount) external nonReentrant onlyDrawer {
        if (tokenAmount == 0) return;
        uint256 avail = available();
        if (tokenAmount > avail) revert FundInsufficient(avail, tokenAmount);
        uint256 reserveAfter = _reserves[key].tokenAmount + tokenAmount;
        _reserves[key] = Reserve(SafeCast.toUint192(reserveAfter), uint64(block.timestamp));
        totalReserved += tokenAmount;
        emit Reserved(key, tokenAmount, reserveAfter);
    }

    /// @notice Returns the whole reserve under `key` to the available balance (and to the share price).
    /// @dev Only the drawers. Releasing an empty key is a no-op.
    function release(bytes32 key) external nonReentrant onlyDrawer {
        _release(key);
    }

    /// @notice Returns a reserve untouched for STALE_RESERVE_AGE to the available balance; anyone.
    /// @dev Frees a reserve whose release was lost (no session lasts that long). Reverts
    /// `FundReserveEmpty` for an empty key and `FundReserveNotStale` before it is stale.
    function releaseStale(bytes32 key) external nonReentrant {
        Reserve memory r = _reserves[key];
        if (r.tokenAmount == 0) revert FundReserveEmpty(key);
        uint256 staleAt = uint256(r.reservedAt) + STALE_RESERVE_AGE;
        if (block.timestamp < staleAt) revert FundReserveNotStale(key, staleAt, block.timestamp);
        emit StaleReserveReleased(key, msg.sender, r.tokenAmount, r.reservedAt);
        _release(key);
    }

    /// @notice Pays `tokenAmount` of bad debt to the caller out of the reserve under `key`.
    /// @dev Only the drawers. Reverts `ReserveInsufficient` above the key's reserve. Emits
    /// `ReserveUsed` and, like every bad-debt payout, `Covered`. Zero is a no-op. The share price
    /// does not move: the reserve already left `totalAssets()` when it was set aside.
    function coverFromReserve(bytes32 key, uint256 tokenAmount) external nonReentrant onlyDrawer {
        if (tokenAmount == 0) return;
        uint256 reserved = _reserves[key].tokenAmount;
        if (tokenAmount > reserved) revert ReserveInsufficient(key, reserved, tokenAmount);
        if (tokenAmount == reserved) delete _reserves[key];
        else _reserves[key].tokenAmount = uint192(reserved - tokenAmount);
        totalReserved -= tokenAmount;
        emit ReserveUsed(key, msg.sender, tokenAmount, reserved - tokenAmount);
        emit Covered(msg.sender, tokenAmount);
        IERC20(asset()).safeTransfer(msg.sender, tokenAmount);
    }

    // ================================================================ staking

    /// @notice Stakes `assets` for shares at the current price, after sweeping pending fees.
    /// @dev Reverts `FundDepositDuringReserve` while any reserve is out (see the contract notes).
    function deposit(uint256 assets, address receiver) public override nonReentrant returns (uint256) {
        if (receiver == address(this)) revert SharesToFund();
        _requireNoReserve();
        _sweep();
        return super.deposit(assets, receiver);
    }

    /// @notice Mints exactly `shares` for their price (rounded up), after sweeping pending fees.
    /// @dev Reverts `FundDepositDuringReserve` while any reserve is out (see the contract notes).
    function mint(uint256 shares, address receiver) public override nonReentrant returns (uint256) {
        if (receiver == address(this)) revert SharesToFund();
        _requireNoReserve();
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

    /// @notice 0 while any reserve is out (stakes are refused then), otherwise unlimited.
    function maxDeposit(address receiver) public view override returns (uint256) {
        return totalReserved == 0 ? super.maxDeposit(receiver) : 0;
    }

    /// @notice 0 while any reserve is out (stakes are refused then), otherwise unlimited.
    function maxMint(address receiver) public view override returns (uint256) {
        return totalReserved == 0 ? super.maxMint(receiver) : 0;
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
    /// @dev Records their value now, after the sweep and rounded down, counting the reserves then
    /// out as if they came back. It only caps the payout, which is also never above the value at
    /// completion (reserves excluded): a request made during a session thus keeps its part of a
    /// reserve that is released, and bears its part of one that is spent. With no reserve out
    /// this is `previewRedeem(shares)`.
    /// @return requestId The id to complete or cancel the request with.
    function requestUnstake(uint256 shares) external nonReentrant returns (uint256 requestId) {
        if (shares == 0) revert ZeroAmount();
        _sweep();
        uint256 assetsAtRequest = Math.mulDiv(shares, balance() + 1, totalSupply() + 10 ** _decimalsOffset());
        uint64 readyAt = uint64(block.timestamp) + cooldown;
        requestId = nextRequestId++;
        _requests[requestId] = UnstakeRequest(msg.sender, readyAt, shares, assetsAtRequest);
        totalPendingShares += shares;
        _transfer(msg.sender, address(this), shares);
        emit UnstakeRequested(requestId, msg.sender, shares, assetsAtRequest, readyAt);
    }

    /// @notice After the cooldown and within COMPLETION_WINDOW of it, burns the request's shares
    /// and pays `receiver` min(value at request, value now), rounded down.
    /// @dev Only the request's owner. The value now excludes every reserve, so a request that
    /// matures during an ADL session is paid as if the session spends its reserve; the payout is
    /// therefore at most `available()` (the `FundInsufficient` check is a guard).
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

    /// @notice The collateral that prices the shares: the balance minus every reserve (`available()`).
    /// @dev Reserved money counts as spent until it is released, so no stake or payout is priced
    /// with it.
    function totalAssets() public view override returns (uint256) {
        return available();
    }

    /// @notice The reserve set aside under `key`, in token units.
    function reserveOf(bytes32 key) external view returns (uint256) {
        return _reserves[key].tokenAmount;
    }

    /// @notice When the reserve under `key` was last added to (0 if empty).
    function reservedAt(bytes32 key) external view returns (uint64) {
        return _reserves[key].reservedAt;
    }

    /// @notice Whether `account` may draw on the fund (the clearinghouse or the deleverager).
    function isDrawer(address account) external view returns (bool) {
        return account == clearinghouse || account == deleverager;
    }

    /// @notice The unstake request `requestId` (owner zero if unknown, completed or cancelled).
    function getUnstakeRequest(uint256 requestId) external view returns (UnstakeRequest memory) {
        return _requests[requestId];
    }

    // ================================================================ internals

    function _release(bytes32 key) private {
        uint256 amount = _reserves[key].tokenAmount;
        if (amount == 0) return;
        delete _reserves[key];
        totalReserved -= amount;
        emit Released(key, amount);
    }

    function _requireNoReserve() private view {
        uint256 reserved = totalReserved;
        if (reserved != 0) revert FundDepositDuringReserve(reserved);
    }

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
