"""/v1/users: accounts of people and platforms (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from platone_bal.api.deps import Admin, Context
from platone_bal.domain.users import Role, User
from platone_bal.ports import UserExists
from platone_bal.services.users import InvalidUser

router = APIRouter(prefix="/v1/users", tags=["users"])


class NewUser(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", examples=["producer1"])
    password: str = Field(min_length=8, examples=["a long passphrase"])
    role: Role


class UserOut(BaseModel):
    username: str
    role: Role
    topic: str | None = Field(description="Ingress topic of a producer: platone/NAME")
    wallet: str = Field(description="EIP-55 address of the user's custodial account")
    disabled: bool = False

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            username=user.username,
            role=user.role,
            topic=user.topic,
            wallet=user.wallet,
            disabled=user.disabled,
        )


@router.post("", status_code=201, response_model=UserOut)
def create_user(body: NewUser, ctx: Context, _: Admin) -> UserOut:
    """Create a user; a producer can publish over MQTT with these credentials at once."""
    try:
        user = ctx.users.create(body.username, body.password, body.role)
    except InvalidUser as error:
        raise HTTPException(422, str(error)) from None
    except UserExists as error:
        raise HTTPException(409, str(error)) from None
    return UserOut.of(user)


@router.get("", response_model=list[UserOut])
def list_users(ctx: Context, _: Admin) -> list[UserOut]:
    return [UserOut.of(user) for user in ctx.store.list_users()]
