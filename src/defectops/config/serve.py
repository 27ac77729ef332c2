"""Settings of the prediction service (environment ``DEFECTOPS_SERVE_*``, or ``defectops serve`` options).

Why a settings class of its own: the service has knobs no other command needs (port, batch limits, the
admin token, the repositories it may mine), and it must refuse to start when they are unsafe rather than run
with a guessable secret. :meth:`ServeSettings.check` is that refusal; :func:`defectops.serving.app.create_app`
and the ``serve`` command both call it before anything listens.

Tokens, one per role: ``admin`` (reload, promote, rollback, traffic), ``feedback`` (write labels) and,
optionally, ``predict`` (score). Outside local mode (``DEFECTOPS_MODE`` other than ``local``) the admin
token must be set and differ from the local default; whenever the service is reachable from elsewhere (not
local mode, or not a loopback address) every token must have :data:`MIN_TOKEN_BITS` bits by
:func:`token_bits`. In local mode an unset token
falls back to :data:`LOCAL_ADMIN_TOKEN`, a documented, well-known value, so a developer can try the admin
endpoints on a laptop; because everybody knows it, it is accepted only while the service listens on a
loopback address.
"""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from defectops.errors import ConfigError

if TYPE_CHECKING:
    from defectops.config.core import Settings


#: The registered model the service loads when none is named.
DEFAULT_MODEL_NAME: Final = "defectops"
#: The admin token of local mode when none is configured (loopback only; see the module docstring).
LOCAL_ADMIN_TOKEN: Final = "defectops-local-admin"  # noqa: S105 - documented local-mode default, loopback only
#: Least strength of a token, by :func:`token_bits`, whenever the service can be reached from elsewhere.
MIN_TOKEN_BITS: Final = 128

#: How much an answered prediction survives: a kill of the service (``kill``), or also an operating-system
#: crash or power loss (``power-loss``). Only SQLite has the choice.
Durability = Literal["kill", "power-loss"]
DEFAULT_DURABILITY: Final[Durability] = "kill"

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ServeSettings(BaseSettings):
    """Every setting of ``defectops serve``; the environment prefix is ``DEFECTOPS_SERVE_``."""

    model_config = SettingsConfigDict(
        env_prefix="DEFECTOPS_SERVE_", extra="ignore", frozen=True, populate_by_name=True
    )

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port).")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes. One is fastest for single records on small machines; more share "
        "admin changes through the control file in the workspace.",
    )
    model_name: str = Field(default=DEFAULT_MODEL_NAME, description="Registered model to serve.")
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin endpoints (required outside local mode)."
    )
    feedback_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that may write labels to /v1/feedback (the admin token may too); without "
        "it only the admin token can.",
    )
    predict_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /v1/predict and /v1/commits/score require when set (the admin token works "
        "too); unset: scoring is open.",
    )
    read_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the web UI's data (/ui/api/...) needs; unset: the read-only pages are "
        "open. The admin token reads too.",
    )
    repository_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Web address of a commit per repository id, as a template with {sha} (e.g. "
        "https://git.example.org/team/app/commit/{sha}); the UI links commits with it. JSON in the "
        "environment.",
    )
    log_url: str | None = Field(
        default=None,
        description="Prediction log database URL; default: SQLite predictions.db in the workspace.",
    )
    repositories: dict[str, Path] = Field(
        default_factory=dict,
        description="Repositories /v1/commits/score may mine, as {id: path} (JSON in the environment).",
    )
    max_batch: int = Field(
        default=1000, ge=1, description="Most records (or commits) one request may score; more is 413."
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest accepted request body in bytes; more is 413."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Time a request body may take to arrive; slower is 408."
    )
    json_max_object_keys: int = Field(
        # A change record has about 80 fields (Kamei, richer, code and Terraform metrics): room to grow.
        default=128,
        ge=24,
        description="Most keys one JSON object of a request body may have; more is 413.",
    )
    json_max_depth: int = Field(
        default=8, ge=3, le=64, description="Deepest nesting of a JSON request body; deeper is 413."
    )
    top_k: int = Field(
        default=5, ge=0, le=50, description="Reasons returned per prediction unless a request asks otherwise."
    )
    threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Decision threshold for the risk label; default: the one registered with the model.",
    )
    poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="How often a worker checks the control file for admin changes made by another worker.",
    )
    degraded_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86400,
        description=(
            "A worker serving a fallback because the champion does not load retries it after this many "
            "seconds, then twice as long after each failure (up to an hour); 0: only a reload, promotion "
            "or rollback ends it."
        ),
    )
    log_commit_rows: int = Field(
        default=5000,
        ge=1,
        description="Most prediction rows one group commit of the log writer takes from waiting requests.",
    )
    log_durability: Durability = Field(
        default=DEFAULT_DURABILITY,
        description=(
            "What an answered prediction survives: 'kill' (a kill of the service; SQLite commits without "
            "waiting for an fsync) or 'power-loss' (also an OS crash or power loss; every answer waits for "
            "an fsync). PostgreSQL always waits for the server's WAL flush."
        ),
    )
    access_log: bool = Field(default=False, description="Log every request line (uvicorn's access log).")
    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("metrics_dir", "PROMETHEUS_MULTIPROC_DIR"),
        description="Prometheus multiprocess folder (PROMETHEUS_MULTIPROC_DIR). `serve` sets it for its "
        "workers when there are several, so /metrics adds up all of them; not set by users.",
    )

    @field_validator("repositories")
    @classmethod
    def _check_repositories(cls, value: dict[str, Path]) -> dict[str, Path]:
        for repo_id in value:
            if not _REPO_ID.match(repo_id):
                raise ValueError(
                    f"repository id {repo_id!r}: use letters, digits, '_', '.', '-' (at most 100)"
                )
        return {repo_id: path.expanduser() for repo_id, path in value.items()}

    @field_validator("repository_urls")
    @classmethod
    def _check_repository_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for repo_id, template in value.items():
            if not template.startswith(("https://", "http://")) or "{sha}" not in template:
                raise ValueError(
                    f"repository {repo_id!r}: a commit URL is an http(s) address with {{sha}}, "
                    f"got {template!r}"
                )
        return value

    def check(self, settings: Settings) -> str:
        """Refuse unsafe settings (ConfigError); return the admin token in effect.

        Every token must have at least :data:`MIN_TOKEN_BITS` bits by :func:`token_bits` unless the service
        runs in local mode on a loopback address (a laptop); the roles' tokens must differ from each other.
        """
        local = settings.mode.strip().lower() == "local"
        exposed = not local or not is_loopback(self.host)
        tokens = {
            "ADMIN_TOKEN": self.admin_token,
            "FEEDBACK_TOKEN": self.feedback_token,
            "PREDICT_TOKEN": self.predict_token,
            "READ_TOKEN": self.read_token,
        }
        given = {name: secret.get_secret_value() for name, secret in tokens.items() if secret is not None}
        for name, value in given.items():
            if not value.strip():
                raise ConfigError(f"DEFECTOPS_SERVE_{name} is empty; set a random token or unset it")
            if value == LOCAL_ADMIN_TOKEN and not local:
                raise ConfigError(f"mode {settings.mode!r} refuses the well-known local admin token")
            if exposed:
                check_token_strength(f"DEFECTOPS_SERVE_{name}", value)
        if len(set(given.values())) < len(given):
            raise ConfigError("the admin, feedback, predict and read tokens must differ from each other")
        token = given.get("ADMIN_TOKEN")
        if not local and token is None:
            raise ConfigError(
                f"mode {settings.mode!r} needs an admin token: set DEFECTOPS_SERVE_ADMIN_TOKEN to a "
                f"random secret of at least {MIN_TOKEN_BITS} bits (e.g. `openssl rand -hex 24`)"
            )
        effective = token if token is not None else LOCAL_ADMIN_TOKEN
        if effective == LOCAL_ADMIN_TOKEN and not is_loopback(self.host):
            raise ConfigError(
                f"the local default admin token is only allowed on a loopback address, not {self.host!r}; "
                "set DEFECTOPS_SERVE_ADMIN_TOKEN"
            )
        if not self.model_name or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", self.model_name):
            raise ConfigError(f"invalid model name {self.model_name!r}")
        for repo_id, path in self.repositories.items():
            if not path.is_dir():
                raise ConfigError(f"repository {repo_id!r}: {path} is not a directory")
        return effective


#: Alphabets a token is measured against, smallest first: the first that holds every character counts.
_ALPHABETS: Final = (
    ("0123456789abcdef", 16),
    ("0123456789ABCDEF", 16),
    ("abcdefghijklmnopqrstuvwxyz0123456789", 36),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 36),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 62),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=", 66),
)
#: Fewest distinct characters a token may have (a random 32-character hex token has about 14).
MIN_DISTINCT_CHARACTERS: Final = 8


def token_bits(token: str) -> float:
    """The strength a token is credited with: its length times log2 of the smallest alphabet that holds all
    its characters (hex 16, lowercase or uppercase letters and digits 36, letters and digits 62, base64 66,
    anything else 95). The rule credits a token as if it were random; :func:`check_token_strength`
    also demands :data:`MIN_DISTINCT_CHARACTERS` different characters, which no random token of 128 bits
    misses but ``aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`` does."""
    size = next((n for alphabet, n in _ALPHABETS if set(token) <= set(alphabet)), 95)
    return len(token) * math.log2(size)


def check_token_strength(name: str, token: str) -> None:
    """ConfigError unless ``token`` has :data:`MIN_TOKEN_BITS` bits by :func:`token_bits` and at least
    :data:`MIN_DISTINCT_CHARACTERS` different characters."""
    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS or len(set(token)) < MIN_DISTINCT_CHARACTERS:
        raise ConfigError(
            f"{name} is too weak ({bits:.0f} bits, {len(set(token))} distinct characters); use a random "
            f"token of at least {MIN_TOKEN_BITS} bits, e.g. `openssl rand -hex 24`"
        )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (what only this machine can reach)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
