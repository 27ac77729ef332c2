"""FastAPI dependencies (``Annotated`` aliases the routers use): the service, admin and reader authentication.

The admin token is compared with :func:`hmac.compare_digest`, in time independent of where the first
difference is, so response times leak nothing about the token. A request without
``Authorization: Bearer ...`` is 401 (with ``WWW-Authenticate: Bearer``), a wrong token 403.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from defectops.serving.service import PredictionService

_bearer = HTTPBearer(auto_error=False, description="The service's admin token (DEFECTOPS_SERVE_ADMIN_TOKEN).")


async def get_service(request: Request) -> PredictionService:
    # async: FastAPI runs a plain ``def`` dependency on a worker thread, a hop that costs more than a request.
    service: PredictionService = request.app.state.service
    return service


ServiceDep = Annotated[PredictionService, Depends(get_service)]


async def require_admin(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through only with the admin bearer token."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="admin endpoint: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.encode("utf-8")
    if not hmac.compare_digest(given, service.admin_token.encode("utf-8")):
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="invalid admin token")


AdminDep = Annotated[None, Depends(require_admin)]


async def require_reader(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let a read of the web UI's data through: always when no read token is configured, otherwise only with
    ``Authorization: Bearer`` and the read token (or the admin token, which may do more)."""
    token = service.serve.read_token_value()
    if token is None:
        return
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="this service's pages need the read token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.encode("utf-8")
    readable = hmac.compare_digest(given, token.encode("utf-8"))
    admin = hmac.compare_digest(given, service.admin_token.encode("utf-8"))
    if not (readable or admin):
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="invalid read token")


ReaderDep = Annotated[None, Depends(require_reader)]
