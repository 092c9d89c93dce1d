// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Administered} from "./Administered.sol";

/// @title DeviceRegistry
/// @notice The DSO's register of devices: device id hash -> signing key and owner.
/// @dev Only the admin (the DSO) registers and revokes. A revoked device may be
///      registered again with a new key (key rotation); the history is in the events.
contract DeviceRegistry is Administered {
    struct Device {
        address key;
        address owner;
        uint64 registered;
        bool revoked;
    }

    mapping(bytes32 => Device) private _devices;

    event DeviceRegistered(bytes32 indexed deviceId, address indexed key, address indexed owner);
    event DeviceRevoked(bytes32 indexed deviceId);

    error AlreadyRegistered(bytes32 deviceId);
    error UnknownDevice(bytes32 deviceId);

    function register(bytes32 deviceId, address key, address owner) external onlyAdmin {
        if (key == address(0) || owner == address(0)) revert ZeroAddress();
        Device storage existing = _devices[deviceId];
        if (existing.registered != 0 && !existing.revoked) revert AlreadyRegistered(deviceId);
        _devices[deviceId] = Device(key, owner, uint64(block.timestamp), false);
        emit DeviceRegistered(deviceId, key, owner);
    }

    function revoke(bytes32 deviceId) external onlyAdmin {
        Device storage existing = _devices[deviceId];
        if (existing.registered == 0 || existing.revoked) revert UnknownDevice(deviceId);
        existing.revoked = true;
        emit DeviceRevoked(deviceId);
    }

    function device(bytes32 deviceId)
        external
        view
        returns (address key, address owner, uint64 registered, bool revoked)
    {
        Device storage d = _devices[deviceId];
        return (d.key, d.owner, d.registered, d.revoked);
    }

    /// @notice True when `key` is the current, unrevoked key of the device.
    function isActiveKey(bytes32 deviceId, address key) external view returns (bool) {
        Device storage d = _devices[deviceId];
        return d.registered != 0 && !d.revoked && d.key == key;
    }
}
