// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title SubscriptionRegistry
/// @notice Records every decision on a data grant (the seed's subscriptions): provider,
///         consumer, topic, status and time, each carrying the EIP-712 signature of the
///         user who decided, so a third party can check who decided what and when.
/// @dev Status moves None -> Requested (signed by the consumer) -> Accepted | Refused
///      (signed by the provider); Accepted -> Revoked | Expired (signed by either side).
///      Recorders (the BAL's accounts, granted by the admin) submit the transactions;
///      the signature, not the sender, says who decided.
contract SubscriptionRegistry {
    enum Status { None, Requested, Accepted, Refused, Revoked, Expired }

    struct Grant {
        address provider;
        address consumer;
        string topic;
        Status status;
        uint64 timestamp;
        address decidedBy;
    }

    bytes32 public constant DECISION_TYPEHASH = keccak256(
        "Decision(uint256 grantId,address provider,address consumer,string topic,uint8 status,uint64 timestamp)"
    );
    bytes32 private constant _DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    // secp256k1n / 2: signatures with a larger s are malleable copies and are refused
    uint256 private constant _HALF_N =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    address public admin;
    mapping(address => bool) public isRecorder;
    mapping(uint256 => Grant) private _grants;

    event DecisionRecorded(
        uint256 indexed grantId,
        address indexed provider,
        address indexed consumer,
        string topic,
        Status status,
        uint64 timestamp,
        address decidedBy
    );
    event RecorderGranted(address indexed account);
    event RecorderRevoked(address indexed account);

    error NotAdmin(address caller);
    error NotRecorder(address caller);
    error BadSignature();
    error NotEntitled(address signer, Status status);
    error BadTransition(Status from, Status to);
    error PartiesChanged();

    constructor() {
        admin = msg.sender;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    function grantRecorder(address account) external onlyAdmin {
        isRecorder[account] = true;
        emit RecorderGranted(account);
    }

    function revokeRecorder(address account) external onlyAdmin {
        isRecorder[account] = false;
        emit RecorderRevoked(account);
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                _DOMAIN_TYPEHASH,
                keccak256("PlatoneBAL SubscriptionRegistry"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice The EIP-712 digest a user signs for a decision.
    function decisionDigest(
        uint256 grantId,
        address provider,
        address consumer,
        string calldata topic,
        Status status,
        uint64 timestamp
    ) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                DECISION_TYPEHASH,
                grantId,
                provider,
                consumer,
                keccak256(bytes(topic)),
                uint8(status),
                timestamp
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function record(
        uint256 grantId,
        address provider,
        address consumer,
        string calldata topic,
        Status status,
        uint64 timestamp,
        bytes calldata signature
    ) external {
        if (!isRecorder[msg.sender]) revert NotRecorder(msg.sender);
        Grant storage grant = _grants[grantId];
        _checkTransition(grant.status, status);
        if (grant.status != Status.None && (grant.provider != provider || grant.consumer != consumer))
        {
            revert PartiesChanged();
        }
        address signer = _recover(
            decisionDigest(grantId, provider, consumer, topic, status, timestamp), signature
        );
        bool entitled = status == Status.Requested
            ? signer == consumer
            : (status == Status.Accepted || status == Status.Refused)
                ? signer == provider
                : (signer == provider || signer == consumer);
        if (!entitled) revert NotEntitled(signer, status);
        _grants[grantId] = Grant(provider, consumer, topic, status, timestamp, signer);
        emit DecisionRecorded(grantId, provider, consumer, topic, status, timestamp, signer);
    }

    function grant(uint256 grantId)
        external
        view
        returns (
            address provider,
            address consumer,
            string memory topic,
            Status status,
            uint64 timestamp,
            address decidedBy
        )
    {
        Grant storage g = _grants[grantId];
        return (g.provider, g.consumer, g.topic, g.status, g.timestamp, g.decidedBy);
    }

    function _checkTransition(Status from, Status to) private pure {
        bool allowed = (from == Status.None && to == Status.Requested)
            || (from == Status.Requested && (to == Status.Accepted || to == Status.Refused))
            || (from == Status.Accepted && (to == Status.Revoked || to == Status.Expired));
        if (!allowed) revert BadTransition(from, to);
    }

    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) revert BadSignature();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > _HALF_N || (v != 27 && v != 28)) revert BadSignature();
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert BadSignature();
        return signer;
    }
}
