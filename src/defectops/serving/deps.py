"""FastAPI dependencies (``Annotated`` aliases the routers use): the service and authentication by role.

Four roles, each with its own bearer token (see :mod:`defectops.config.serve`): ``admin`` may do
everything; ``feedback`` may write labels; ``predict``, when its token is configured, may score (otherwise
scoring is open); ``read``, when its token is configured, may read the web UI's data (otherwise it is
open). A token is read from the ``Authorization: Bearer`` header only: a request that carries a token-like
query parameter (``?token=``, ``?access_token=``...) is refused with 400 whatever it asks for, so a
token pasted into a URL is never accepted (URLs end up in access logs, browser history and proxies).

Tokens are compared with :func:`hmac.compare_digest`, in time independent of where the first difference is.
Without a token: 401 (with ``WWW-Authenticate: Bearer``); with a token of no role allowed here: 403, whose
reason names the settings whose token is expected (never a token's value).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from defectops.serving.guard import TOKEN_IN_URL, TOKEN_PARAMETERS
from defectops.serving.service import PredictionService

Role = Literal["admin", "feedback", "predict", "read"]

#: The OpenAPI security scheme of each role, one per role so the document says which token an operation takes
#: (the admin token is accepted wherever another role's is).
SCHEMES: dict[Role, str] = {
    "admin": "AdminToken",
    "feedback": "FeedbackToken",
    "predict": "PredictToken",
    "read": "ReadToken",
}
_VARIABLES: dict[Role, str] = {
    "admin": "DEFECTOPS_SERVE_ADMIN_TOKEN",
    "feedback": "DEFECTOPS_SERVE_FEEDBACK_TOKEN (or the admin token)",
    "predict": "DEFECTOPS_SERVE_PREDICT_TOKEN (or the admin token); scoring is open while it is unset",
    "read": "DEFECTOPS_SERVE_READ_TOKEN (or the admin token); the web UI's data is open while it is unset",
}


def _bearer(role: Role) -> HTTPBearer:
    return HTTPBearer(
        scheme_name=SCHEMES[role], auto_error=False, description=f"The {role} token: {_VARIABLES[role]}."
    )


async def get_service(request: Request) -> PredictionService:
    # async: FastAPI runs a plain ``def`` dependency on a worker thread, a hop that costs more than a request.
    service: PredictionService = request.app.state.service
    return service


ServiceDep = Annotated[PredictionService, Depends(get_service)]
_Bearer = HTTPAuthorizationCredentials | None
AdminCredentials = Annotated[_Bearer, Depends(_bearer("admin"))]
FeedbackCredentials = Annotated[_Bearer, Depends(_bearer("feedback"))]
PredictCredentials = Annotated[_Bearer, Depends(_bearer("predict"))]
ReadCredentials = Annotated[_Bearer, Depends(_bearer("read"))]


def _refuse_query_tokens(request: Request) -> None:
    if any(name.lower() in TOKEN_PARAMETERS for name in request.query_params):
        raise HTTPException(
            status_code=status.HTTP_400_BAD_REQUEST,
            detail=TOKEN_IN_URL,
        )


def _role_of(service: PredictionService, given: str, allowed: tuple[Role, ...]) -> Role | None:
    """The first role in ``allowed`` whose token equals ``given`` (every candidate compared)."""
    tokens: dict[Role, str | None] = {
        "admin": service.admin_token,
        "feedback": _secret(service.serve.feedback_token),
        "predict": _secret(service.serve.predict_token),
        "read": _secret(service.serve.read_token),
    }
    found: Role | None = None
    for role in allowed:
        token = tokens[role]
        if (
            token is not None
            and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))
            and not found
        ):
            found = role
    return found


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return None if getter is None else str(getter())


def _authenticate(
    request: Request, service: PredictionService, credentials: HTTPAuthorizationCredentials | None,
    allowed: tuple[Role, ...], what: str,
) -> Role:  # fmt: skip
    _refuse_query_tokens(request)
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"{what} endpoint: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    role = _role_of(service, credentials.credentials, allowed)
    if role is None:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"invalid {what} token: {_expected(service, allowed)}",
        )
    return role


def _expected(service: PredictionService, allowed: tuple[Role, ...]) -> str:
    """Which setting's token the refused request should have sent, by name and never by value.

    A bare "invalid token" left a user of a local service guessing: the feedback token was never set there,
    and the admin token is a default they had not heard of. The reason names the settings this service really
    started with, so the caller can look the value up, or set the missing one.
    """
    tokens: dict[Role, object] = {
        "admin": service.serve.admin_token,
        "feedback": service.serve.feedback_token,
        "predict": service.serve.predict_token,
        "read": service.serve.read_token,
    }
    given = [f"DEFECTOPS_SERVE_{role.upper()}_TOKEN" for role in allowed if tokens[role] is not None]
    unset = [
        f"DEFECTOPS_SERVE_{role.upper()}_TOKEN"
        for role in allowed
        if role != "admin" and tokens[role] is None
    ]
    if tokens["admin"] is None:  # only in local mode on a loopback address (ServeSettings.check)
        taken = " or ".join(["the value of " + name for name in given] + ["the local default admin token"])
        hint = (
            f"send {taken} (DEFECTOPS_SERVE_ADMIN_TOKEN is unset; see 'Tokens and roles' in docs/serving.md)"
        )
    else:
        hint = f"send the value of {' or '.join(given)} this service was started with"
    if unset:
        hint += f"; {' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set on this service"
    return hint


async def require_admin(request: Request, service: ServiceDep, credentials: AdminCredentials) -> None:
    """Let the request through only with the admin token."""
    _authenticate(request, service, credentials, ("admin",), "admin")


async def require_feedback(request: Request, service: ServiceDep, credentials: FeedbackCredentials) -> Role:
    """The role writing a label: the feedback token or the admin token."""
    return _authenticate(request, service, credentials, ("feedback", "admin"), "feedback")


async def require_predict(request: Request, service: ServiceDep, credentials: PredictCredentials) -> None:
    """Open scoring unless a predict token is configured; then the predict or admin token."""
    if service.serve.predict_token is None:
        _refuse_query_tokens(request)
        return
    _authenticate(request, service, credentials, ("predict", "admin"), "scoring")


AdminDep = Annotated[None, Depends(require_admin)]
FeedbackRoleDep = Annotated[Role, Depends(require_feedback)]
PredictDep = Annotated[None, Depends(require_predict)]


async def require_reader(request: Request, service: ServiceDep, credentials: ReadCredentials) -> None:
    """Open reads of the web UI's data unless a read token is configured; then the read or admin token."""
    if service.serve.read_token is None:
        _refuse_query_tokens(request)
        return
    _authenticate(request, service, credentials, ("read", "admin"), "read")


ReaderDep = Annotated[None, Depends(require_reader)]
