"""/v1/clients: platform clients for the client-credentials grant (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from platone_bal.api.deps import Admin, Context
from platone_bal.domain.users import Client, Scope
from platone_bal.services.clients import InvalidClient

router = APIRouter(prefix="/v1/clients", tags=["clients"])


class NewClient(BaseModel):
    name: str = Field(examples=["DSO data server"])
    username: str = Field(description="The user the client acts for", examples=["producer1"])
    scopes: list[Scope] = Field(
        min_length=1,
        examples=[["data:ingest", "data:read"]],
        description="What its tokens may do, at most its user's role's scopes. None implies"
        " another: deciding grants needs `grants:write`, reading data `data:read`.",
    )


class ClientOut(BaseModel):
    client_id: str
    name: str
    username: str
    scopes: list[Scope]
    disabled: bool

    @classmethod
    def of(cls, client: Client) -> ClientOut:
        return cls(
            client_id=client.client_id,
            name=client.name,
            username=client.username,
            scopes=sorted(client.scopes),
            disabled=client.disabled,
        )


class RegisteredClient(ClientOut):
    client_secret: str = Field(description="Shown once; only its argon2 hash is kept")


@router.post("", status_code=201, response_model=RegisteredClient)
def register_client(body: NewClient, ctx: Context, _: Admin) -> RegisteredClient:
    """Register a platform; it gets tokens with `grant_type=client_credentials`."""
    try:
        client, secret = ctx.clients.register(body.name, body.username, frozenset(body.scopes))
    except InvalidClient as error:
        raise HTTPException(422, str(error)) from None
    return RegisteredClient(**ClientOut.of(client).model_dump(), client_secret=secret)


@router.get("", response_model=list[ClientOut])
def list_clients(ctx: Context, _: Admin) -> list[ClientOut]:
    return [ClientOut.of(client) for client in ctx.store.list_clients()]


@router.delete("/{client_id}", status_code=204, response_class=Response)
def disable_client(client_id: str, ctx: Context, _: Admin) -> Response:
    """Disable a client for good; its tokens are revoked at once."""
    try:
        ctx.clients.disable(client_id)
    except LookupError:
        raise HTTPException(404, f"no client {client_id!r}") from None
    return Response(status_code=204)
