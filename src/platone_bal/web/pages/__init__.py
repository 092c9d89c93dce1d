"""The dashboard's pages: server-rendered HTML on the same services as the API.

Each role has a home: consumers browse producers, ask for grants and chart what they
may read (`consumer`); producers decide requests, revoke grants, watch their devices
and chart their data (`producer`, `grants`, `devices`) and see their devices' keys in
DeviceRegistry (`device_keys`); admins manage users, devices and (as the DSO) device keys,
and watch the pipeline (`admin`, `device_keys`) and the data lifecycle: archived days,
restores (`archives`). Everyone has the explorer (anchors, log growth, a
reading's way from payload to chain) and the verifier (a proof bundle checked step by
step, its Merkle path drawn) (`explorer`).

Forms post back here (CSRF-checked) and redirect (303) to the page with a notice;
charts fetch JSON from the API with the page's bearer token. What every page shares
is in `rendering`.
"""

from fastapi import APIRouter

from platone_bal.web.pages import (
    admin,
    archives,
    assets,
    consumer,
    device_keys,
    devices,
    explorer,
    grants,
    producer,
    setpoints,
    sign_in,
)

router = APIRouter(include_in_schema=False)
"""Every page and form of the dashboard."""
for _group in (
    sign_in, consumer, grants, producer, devices, device_keys, setpoints, admin, archives,
    explorer, assets,
):  # fmt: skip
    router.include_router(_group.router)
