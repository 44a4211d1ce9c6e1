// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// A minimal smart-contract wallet, for tests only: it pays out by an internal call, so the
/// native coin it sends moves without a transaction addressed to the recipient, the way
/// Safe and other contract wallets pay.
contract SmartWallet {
    address public immutable owner;

    constructor() payable {
        owner = msg.sender;
    }

    function pay(address payable to, uint256 amount) external {
        require(msg.sender == owner, "not the owner");
        (bool sent, ) = to.call{value: amount}("");
        require(sent, "payment failed");
    }
}
