// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Administered} from "./Administered.sol";

/// @title CertificationRegistry
/// @notice Anchors signed checkpoints of the BAL's append-only Merkle logs
///         (ARCHITECTURE §5). One transaction per interval covers every reading of the
///         fleet, so chain load does not grow with the number of devices.
/// @dev A log is identified by keccak256 of its UTF-8 name. Sizes grow strictly per log,
///      so an anchored (size, root) can never be replaced or rolled back.
contract CertificationRegistry is Administered {
    mapping(address => bool) public isAnchorer;
    mapping(bytes32 => uint64) public latestSize;
    mapping(bytes32 => mapping(uint64 => bytes32)) private _roots;
    mapping(bytes32 => mapping(uint64 => uint64)) private _times;

    event Anchored(bytes32 indexed logId, uint64 size, bytes32 root, uint64 timestamp);
    event AnchorerGranted(address indexed account);
    event AnchorerRevoked(address indexed account);

    error NotAnchorer(address caller);
    error SizeMustGrow(uint64 latest, uint64 size);
    error ZeroRoot();

    function grantAnchorer(address account) external onlyAdmin {
        if (account == address(0)) revert ZeroAddress();
        isAnchorer[account] = true;
        emit AnchorerGranted(account);
    }

    function revokeAnchorer(address account) external onlyAdmin {
        isAnchorer[account] = false;
        emit AnchorerRevoked(account);
    }

    /// @notice Record that log `logId` had `size` leaves with Merkle root `root`.
    function anchor(bytes32 logId, uint64 size, bytes32 root) external {
        if (!isAnchorer[msg.sender]) revert NotAnchorer(msg.sender);
        uint64 latest_ = latestSize[logId];
        if (size <= latest_) revert SizeMustGrow(latest_, size);
        if (root == bytes32(0)) revert ZeroRoot();
        latestSize[logId] = size;
        _roots[logId][size] = root;
        _times[logId][size] = uint64(block.timestamp);
        emit Anchored(logId, size, root, uint64(block.timestamp));
    }

    /// @notice The newest anchored checkpoint of a log; all zero if none.
    function latest(bytes32 logId)
        external
        view
        returns (uint64 size, bytes32 root, uint64 timestamp)
    {
        size = latestSize[logId];
        return (size, _roots[logId][size], _times[logId][size]);
    }

    /// @notice The root anchored for exactly `size`; zero root if that size was never anchored.
    function rootAt(bytes32 logId, uint64 size)
        external
        view
        returns (bytes32 root, uint64 timestamp)
    {
        return (_roots[logId][size], _times[logId][size]);
    }
}
