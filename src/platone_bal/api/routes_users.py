"""/v1/users: accounts of people and platforms (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from platone_bal.api.deps import Admin, Context, Signed
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


class NewPassword(BaseModel):
    password: str = Field(min_length=8)


class PasswordChange(BaseModel):
    current: str
    new: str = Field(min_length=8)


def _missing(error: LookupError) -> HTTPException:
    return HTTPException(404, str(error).strip("'\""))


@router.post("/{username}/disable", response_model=UserOut)
def disable_user(username: str, ctx: Context, who: Admin) -> UserOut:
    """Disable a user: its MQTT logins stop at once, and its tokens, dashboard sessions
    and platform clients' tokens are revoked (enabling it again does not revive them)."""
    try:
        ctx.users.set_disabled(username, True, who.user)
    except InvalidUser as error:
        raise HTTPException(422, str(error)) from None
    except LookupError as error:
        raise _missing(error) from None
    return _user_out(ctx, username)


@router.post("/{username}/enable", response_model=UserOut)
def enable_user(username: str, ctx: Context, who: Admin) -> UserOut:
    try:
        ctx.users.set_disabled(username, False, who.user)
    except LookupError as error:
        raise _missing(error) from None
    return _user_out(ctx, username)


@router.post("/{username}/password", status_code=204, response_class=Response)
def reset_password(username: str, body: NewPassword, ctx: Context, _: Admin) -> Response:
    """Set a new password for a user (admin); the user's tokens and dashboard sessions
    are revoked."""
    try:
        ctx.users.reset_password(username, body.password)
    except InvalidUser as error:
        raise HTTPException(422, str(error)) from None
    except LookupError as error:
        raise _missing(error) from None
    return Response(status_code=204)


def _user_out(ctx: Context, username: str) -> UserOut:
    user = ctx.store.get_user(username)
    assert user is not None
    return UserOut.of(user)


me = APIRouter(prefix="/v1/me", tags=["users"])


@me.get("", response_model=UserOut)
def who_am_i(who: Signed) -> UserOut:
    """The signed-in user."""
    return UserOut.of(who.user)


@me.post("/password", status_code=204, response_class=Response)
def change_own_password(body: PasswordChange, ctx: Context, who: Signed) -> Response:
    """Change your own password; the current one is required. Every token and dashboard
    session of yours is revoked, this request's token too: sign in again."""
    if who.client_id is not None:
        raise HTTPException(403, "platform clients cannot change their user's password")
    try:
        ctx.users.change_password(who.user, body.current, body.new)
    except InvalidUser as error:
        raise HTTPException(422, str(error)) from None
    return Response(status_code=204)


@me.post("/logout", status_code=204, response_class=Response)
def sign_out_everywhere(ctx: Context, who: Signed) -> Response:
    """Sign out everywhere: every token and dashboard session of yours (this token
    included) is revoked at once. A platform client's token revokes that client's
    tokens only."""
    if who.client_id is not None:
        ctx.clients.revoke_tokens(who.client_id)
    else:
        ctx.users.end_sessions(who.user.username)
    return Response(status_code=204)
