"""/v1/setpoints: the DSO's set points to Light Nodes and their answers (ARCHITECTURE §8).

The DSO issues them (an admin, or a platform client with the `setpoints` scope); a
producer sees its own devices' set points, the DSO all; consumers none. Each is a leaf
of bal-setpoints with a proof like a reading's, and so is its answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from platone_bal.api.audit import audit
from platone_bal.api.deps import Context, Issuer, Principal, Reader, RowId
from platone_bal.api.gateway import anchored_json
from platone_bal.domain.setpoints import SETPOINT_LOG, InvalidSetPoint, SetPointRequest
from platone_bal.domain.users import Role, Scope
from platone_bal.ports import StoredSetPoint
from platone_bal.services.certification import NotYetCertified, leaf_proof
from platone_bal.services.setpoints import SetPointService

router = APIRouter(prefix="/v1/setpoints", tags=["set points"])


class NewSetPoint(BaseModel):
    producer: str = Field(max_length=64)
    device: str = Field(max_length=64, examples=["ln001"])
    measurand: str = Field(max_length=128, examples=["activePowerLimit"])
    value: str = Field(max_length=64, description="A decimal string", examples=["3.5"])
    unit: str | None = Field(default=None, max_length=32, examples=["kW"])
    start: str = Field(max_length=64, description="RFC 3339 with a zone")
    end: str = Field(max_length=64, description="RFC 3339 with a zone, after start")


class SetPointOut(BaseModel):
    id: int
    status: str = Field(description="issued, delivered, applied, refused or expired")
    log: str = SETPOINT_LOG
    index: int = Field(description="The set point's leaf in bal-setpoints")
    producer: str
    device: str
    measurand: str
    value: str
    unit: str | None
    start: str
    end: str
    issuer: str
    issued: str
    delivered: str | None
    answer: dict[str, Any] | None = Field(
        description="The Light Node's signed answer: its leaf's index, status, time, signer"
    )

    @classmethod
    def of(cls, stored: StoredSetPoint) -> SetPointOut:
        answer = None
        if stored.answer_index is not None:
            answer = {
                "index": stored.answer_index,
                "status": stored.answer_status,
                "time": stored.answer_time,
                "signer": stored.answer_signer,
            }
        return cls(
            id=stored.id, status=stored.status, index=stored.index, producer=stored.producer,
            device=stored.device, measurand=stored.measurand, value=stored.value,
            unit=stored.unit, start=stored.start, end=stored.end, issuer=stored.issuer,
            issued=stored.issued, delivered=stored.delivered, answer=answer,
        )  # fmt: skip


class SetPointPage(BaseModel):
    items: list[SetPointOut]
    next_cursor: str | None


def _service(ctx: Context) -> SetPointService:
    if ctx.setpoints is None:
        raise HTTPException(503, "set points are not available on this node")
    return ctx.setpoints


def _sees_all(who: Principal) -> bool:
    return who.user.role is Role.ADMIN or Scope.SETPOINTS in who.scopes


def _visible(ctx: Context, who: Principal, setpoint_id: int) -> StoredSetPoint:
    stored = ctx.store.setpoint(setpoint_id)
    if stored is None or not (_sees_all(who) or stored.producer == who.user.username):
        raise HTTPException(404, f"no set point {setpoint_id} visible to you")
    return stored


@router.post("", status_code=201, response_model=SetPointOut)
def issue(body: NewSetPoint, request: Request, ctx: Context, who: Issuer) -> SetPointOut:
    """Issue a set point: logged in bal-setpoints at once, delivered on
    setpoints/NAME/DEVICE once a signed checkpoint covers it."""
    try:
        stored = _service(ctx).issue(SetPointRequest.of(body.model_dump()), who.user.username)
    except InvalidSetPoint as error:
        raise HTTPException(422, str(error)) from None
    audit(ctx, request, who, "setpoint.issued", [stored.producer], 1)
    return SetPointOut.of(stored)


@router.get("", response_model=SetPointPage)
def list_setpoints(
    request: Request,
    ctx: Context,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0)] = 0,
) -> SetPointPage:
    """Set points by id: the DSO all, a producer its own devices'; `after` pages on."""
    if not _sees_all(who) and who.user.role is not Role.PRODUCER:
        raise HTTPException(403, "set points are the DSO's and the producers'")
    producer = None if _sees_all(who) else who.user.username
    found = ctx.store.setpoints(producer, after=after, limit=limit)
    audit(ctx, request, who, "setpoints.read", sorted({s.producer for s in found}), len(found))
    cursor = str(found[-1].id) if len(found) == limit else None
    return SetPointPage(items=[SetPointOut.of(s) for s in found], next_cursor=cursor)


@router.get("/{setpoint_id}", response_model=SetPointOut)
def get_setpoint(setpoint_id: RowId, request: Request, ctx: Context, who: Reader) -> SetPointOut:
    stored = _visible(ctx, who, setpoint_id)
    audit(ctx, request, who, "setpoints.read", [stored.producer], 1)
    return SetPointOut.of(stored)


@router.get("/{setpoint_id}/proof")
def setpoint_proof(
    setpoint_id: RowId, request: Request, ctx: Context, who: Reader, answer: bool = False
) -> Any:
    """The proof bundle (§6) of the set point's leaf; with `answer=true`, of its answer's
    leaf. Immutable (ETag) once anchored."""
    stored = _visible(ctx, who, setpoint_id)
    index = stored.answer_index if answer else stored.index
    if index is None:
        raise HTTPException(404, f"set point {setpoint_id} has no answer yet")
    try:
        bundle = leaf_proof(ctx.store, SETPOINT_LOG, index, f"set point {setpoint_id}")
    except NotYetCertified as error:
        raise HTTPException(409, str(error), headers={"Retry-After": "1"}) from None
    audit(ctx, request, who, "proof.read", [stored.producer], 1)
    return anchored_json(request, bundle)
