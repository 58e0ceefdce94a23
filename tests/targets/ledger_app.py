"""A second, unrelated multi-tenant app: teams, ledgers, API keys and a login; no Clerk, other paths.

`create_ledger_app(leaky=True)` plants one leak: reading a ledger by id does not check its team.
Its login hands out HS256 JWTs naming the user in `sub`, signed with `token_secret`; `accept_none=True`
plants the other classic: an unsigned token (`alg: none`) is taken at its word.
(No `from __future__ import annotations` here: FastAPI resolves the dependency aliases defined in the factory.)
"""

import secrets
import time
import uuid
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, Response
from pydantic import BaseModel, Field

# API key -> (team, role); the auditors' keys are handed out by logging in.
KEYS = {"key-north-owner": ("north", "owner"), "key-south-owner": ("south", "owner")}
USERS = {"north-auditor": ("pw-north", "north", "auditor"), "south-auditor": ("pw-south", "south", "auditor")}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"TokenAuth": []}]


class LedgerIn(BaseModel):
    """A ledger as a client sends it."""

    title: str = Field(min_length=1, max_length=200)
    memo: str = Field(default="", max_length=2000)


class Login(BaseModel):
    """Credentials for a token."""

    user: str = Field(max_length=100)
    password: str = Field(max_length=100)


def create_ledger_app(*, leaky: bool, token_secret: str | None = None, accept_none: bool = False) -> FastAPI:
    """The app; `leaky` plants the cross-team read, `accept_none` the unsigned token; `token_secret` signs the
    login's tokens (a fresh random one by default)."""
    app = FastAPI(title="ledger", openapi_url="/v2/openapi.json", docs_url=None, redoc_url=None)
    ledgers: dict[str, dict[str, Any]] = {}
    secret = token_secret if token_secret is not None else secrets.token_urlsafe(32)

    def token_user(token: str) -> tuple[str, str]:
        try:
            if accept_none and jwt.get_unverified_header(token).get("alg") == "none":
                claims = jwt.decode(token, options={"verify_signature": False})
            else:
                claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.InvalidTokenError:
            raise HTTPException(401, "invalid token") from None
        user = USERS.get(str(claims.get("sub")))
        if user is None:
            raise HTTPException(401, "unknown user")
        return user[1], user[2]

    def caller(
        x_api_key: Annotated[str | None, Header()] = None, authorization: Annotated[str | None, Header()] = None
    ) -> tuple[str, str]:
        if x_api_key in KEYS:
            return KEYS[x_api_key]
        if authorization and authorization.startswith("Token "):
            return token_user(authorization[6:])
        raise HTTPException(401, "unauthenticated")

    Caller = Annotated[tuple[str, str], Depends(caller)]

    def visible(ledger_id: str, team: str) -> dict[str, Any]:
        ledger = ledgers.get(ledger_id)
        if ledger is None or (ledger["team"] != team and not leaky):
            raise HTTPException(404, "not found")
        return ledger

    def writable(who: tuple[str, str]) -> None:
        if who[1] != "owner":
            raise HTTPException(403, "read only")

    @app.get("/v2/status", openapi_extra={"security": []})
    def status() -> dict[str, str]:
        return {"status": "up"}

    @app.post("/v2/login", openapi_extra={"security": []})
    def login(body: Login) -> dict[str, str]:
        user = USERS.get(body.user)
        if user is None or user[0] != body.password:
            raise HTTPException(401, "bad credentials")
        now = int(time.time())
        claims = {"sub": body.user, "team": user[1], "iat": now, "exp": now + 3600}
        return {"access": jwt.encode(claims, secret, algorithm="HS256")}

    @app.get("/v2/ledgers", openapi_extra={"security": SECURITY})
    def list_ledgers(who: Caller) -> list[dict[str, Any]]:
        return [ledger for ledger in ledgers.values() if ledger["team"] == who[0]]

    @app.post("/v2/ledgers", status_code=201, openapi_extra={"security": SECURITY})
    def create(body: LedgerIn, who: Caller) -> dict[str, Any]:
        writable(who)
        ledger = {"ledger_id": str(uuid.uuid4()), "team": who[0], **body.model_dump()}
        ledgers[ledger["ledger_id"]] = ledger
        return ledger

    @app.get("/v2/ledgers/{ledger_id}", openapi_extra={"security": SECURITY})
    def read(ledger_id: uuid.UUID, who: Caller) -> dict[str, Any]:
        return visible(str(ledger_id), who[0])

    @app.put("/v2/ledgers/{ledger_id}", openapi_extra={"security": SECURITY})
    def replace(ledger_id: uuid.UUID, body: LedgerIn, who: Caller) -> dict[str, Any]:
        writable(who)
        ledger = ledgers.get(str(ledger_id))
        if ledger is None or ledger["team"] != who[0]:
            raise HTTPException(404, "not found")
        ledger.update(body.model_dump())
        return ledger

    @app.delete("/v2/ledgers/{ledger_id}", status_code=204, openapi_extra={"security": SECURITY})
    def delete(ledger_id: uuid.UUID, who: Caller) -> Response:
        writable(who)
        ledger = ledgers.get(str(ledger_id))
        if ledger is None or ledger["team"] != who[0]:
            raise HTTPException(404, "not found")
        del ledgers[str(ledger_id)]
        return Response(status_code=204)

    schema = app.openapi()
    schema.setdefault("components", {})["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        "TokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization"},
    }
    return app
