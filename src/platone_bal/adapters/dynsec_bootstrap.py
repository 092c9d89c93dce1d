"""What Mosquitto's Dynamic Security plugin holds before the BAL's first sync: the
node's service account alone, with its password hashed as the plugin hashes it.

The node writes this state once, when its broker starts on an empty data directory;
from then on `services.broker_sync` keeps the plugin in step with the BAL's users,
devices and grants over the plugin's control topics.
"""

from __future__ import annotations

import base64
import hashlib
import os

from platone_bal.adapters.dynsec import ACL_TYPE
from platone_bal.domain.broker_policy import SERVICE_ROLE, SERVICE_RULES

SERVICE_USERNAME = "bal-service"
ADMIN_ROLE_ACLS = [
    ("publishClientSend", "$CONTROL/dynamic-security/#"),
    ("publishClientReceive", "$CONTROL/dynamic-security/#"),
    ("subscribePattern", "$CONTROL/dynamic-security/#"),
]
"""The plugin's `admin` role as the service account needs it: the control topics only
(its data rights come from the BAL's `bal:service` role)."""
DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


def dynsec_client(username: str, password: str, role: str) -> dict[str, object]:
    """A plugin client entry with the plugin's own hash (PBKDF2-SHA512, 12-byte salt)."""
    salt = os.urandom(12)
    iterations = 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {
        "username": username,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
        "roles": [{"rolename": role}],
    }


def initial_dynsec_state(service_password: str) -> dict[str, object]:
    """What the plugin holds before the BAL's first sync: the service account alone,
    with the roles the sync would give it (a role given later would disconnect the
    sync's own connection), everything else denied."""

    def role(name: str, acls: list[tuple[str, str]]) -> dict[str, object]:
        entries = [
            {"acltype": kind, "topic": topic, "priority": 0, "allow": True} for kind, topic in acls
        ]
        return {"rolename": name, "acls": entries}

    service = dynsec_client(SERVICE_USERNAME, service_password, "admin")
    service["roles"] = [{"rolename": "admin"}, {"rolename": SERVICE_ROLE}]
    service_acls = sorted((ACL_TYPE[rule.action], rule.topic_filter) for rule in SERVICE_RULES)
    return {
        "defaultACLAccess": DEFAULT_ACL_ACCESS,
        "clients": [service],
        "groups": [],
        "roles": [role("admin", ADMIN_ROLE_ACLS), role(SERVICE_ROLE, service_acls)],
    }
