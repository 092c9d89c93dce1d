// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Administered
/// @notice One admin account (the DSO) that may hand its role over; base of the
///         registries whose changes only the admin makes.
abstract contract Administered {
    address public admin;

    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);

    error NotAdmin(address caller);
    error ZeroAddress();

    constructor() {
        admin = msg.sender;
        emit AdminTransferred(address(0), msg.sender);
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    function transferAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        emit AdminTransferred(admin, newAdmin);
        admin = newAdmin;
    }
}
