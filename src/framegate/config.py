"""The one Settings object. Nothing else in framegate reads the environment."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from framegate.kit.addresses import parse_networks
from framegate.kit.safe_fetch import FetchPolicy

_SECRET_FILE = "secret.key"
# SigV4 presigned URLs expire after at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class ConfigurationError(Exception):
    """Settings that cannot run together; the message is one line for the operator."""


class Settings(BaseSettings):
    """framegate configuration; every field can be set as ``FRAMEGATE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FRAMEGATE_", env_file=None, extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".framegate")
    # SQLAlchemy async URL; empty means a SQLite file inside data_dir.
    database_url: str = ""
    # Signs output URLs and keys API-key hashes. Empty: generated once into data_dir.
    secret_key: str = ""
    # Secrets used before the current one (a JSON list), during a rotation: API keys hashed
    # with one of them still authenticate (and are re-hashed with the current secret on
    # first use), and URLs signed with one still verify until they expire.
    previous_secret_keys: list[str] = Field(default_factory=list)
    # Absolute base for URLs in responses; empty: taken from the request.
    public_url: str = ""

    host: str = "127.0.0.1"
    port: int = 8000

    catalog_file: Path | None = None
    # Where `framegate models pull` puts hub weights (diffusers routes whose weights
    # setting is a repo id load from here). Empty: data_dir/models.
    models_dir: Path | None = None
    # Warm diffusers pipelines per device, least recently used evicted first.
    diffusers_max_pipelines: int = Field(default=2, ge=1, le=16)
    # GPU memory (GiB) of one device for the warm pipelines' weights and the running
    # requests' working memory; empty: 90 % of it.
    diffusers_memory_budget_gb: float | None = Field(default=None, gt=0)
    # Diffusers jobs running at once on one device (per worker process).
    diffusers_jobs_per_device: int = Field(default=1, ge=1, le=8)

    # Upstream vendors, called with the operator's own keys (never logged or returned).
    # A vendor's built-in routes are available once its key is set; the base URLs are
    # the vendors' public endpoints unless pointed elsewhere (a proxy, a regional host).
    veo_api_key: SecretStr | None = None
    veo_base_url: str = "https://generativelanguage.googleapis.com"
    runway_api_key: SecretStr | None = None
    runway_base_url: str = "https://api.dev.runwayml.com"
    luma_api_key: SecretStr | None = None
    luma_base_url: str = "https://api.lumalabs.ai/dream-machine/v1"
    fal_key: SecretStr | None = None
    fal_base_url: str = "https://queue.fal.run"
    replicate_api_token: SecretStr | None = None
    replicate_base_url: str = "https://api.replicate.com"
    pixverse_api_key: SecretStr | None = None
    pixverse_base_url: str = "https://app-api.pixverse.ai"
    kling_access_key: SecretStr | None = None
    kling_secret_key: SecretStr | None = None
    kling_base_url: str = "https://api-singapore.klingai.com"
    # Another framegate installation to federate with (its URL and an API key there).
    upstream_framegate_url: str = ""
    upstream_framegate_api_key: SecretStr | None = None
    # Seconds between status polls of an upstream job when the vendor gives no hint
    # (doubling up to vendor_poll_max_seconds while nothing changes). Unset, each vendor
    # engine's own interval applies (poll_interval: 10 s for Veo and Kling, 2 s for a
    # framegate upstream, 5 s for the others); set, it overrides them all.
    vendor_poll_seconds: float = Field(default=5.0, gt=0)
    vendor_poll_max_seconds: float = Field(default=30.0, gt=0)
    # Per upstream call.
    vendor_timeout_seconds: float = Field(default=30.0, gt=0)
    # Largest result video accepted from a vendor.
    vendor_result_max_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    # Circuit breaker per route: this many consecutive upstream failures open it for
    # breaker_cooldown_seconds (then one trial request decides).
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=60.0, gt=0)
    worker_concurrency: int = Field(default=2, ge=0, le=64)
    # embedded: the serving process runs the engines over the task table (SQLite or
    # PostgreSQL). distributed: API nodes and `framegate worker` processes on other
    # machines share one PostgreSQL; jobs travel through Procrastinate (docs/deploy.md).
    dispatch: Literal["embedded", "distributed"] = "embedded"
    # distributed: how often a worker says it is alive, and how long after its last word
    # its routes stop counting as available.
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    worker_stale_seconds: float = Field(default=20.0, gt=0)
    # distributed: on SIGTERM a worker lets its running tasks finish for this long, then
    # hands them back to the queue (no attempt used).
    worker_shutdown_seconds: float = Field(default=30.0, ge=0)
    # A processing task whose lease is not renewed for this long is reclaimed by the reaper.
    task_lease_seconds: float = Field(default=30.0, gt=0)
    task_max_attempts: int = Field(default=2, ge=1, le=10)
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    # How long POST /v1/images/generations waits for the image before answering 202.
    image_sync_timeout_seconds: float = Field(default=60.0, ge=0)

    # How long a result URL (the API's signed /v1/files link, or the bucket's presigned URL)
    # stays valid; a fresh one comes with every read of the task.
    signed_url_ttl_seconds: int = Field(default=3600, gt=0)
    # Where outputs, thumbnails, uploads and kept input images live. local: data_dir/files,
    # served by the API. s3: an S3-compatible bucket, served by presigned URLs (credentials
    # through the standard AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    # AWS_SESSION_TOKEN, web identity, container or instance credentials).
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str = ""
    # Empty: AWS. Set for R2, MinIO, SeaweedFS... (path-style requests).
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    # Keys under this prefix ("" = the bucket's root).
    s3_prefix: str = ""
    # A CDN in front of the bucket: result URLs use this origin (presigned query kept).
    s3_public_base_url: str = ""
    # In-process caches of verified API keys and polled tasks. Changes made by this process
    # take effect at once; those made by another process (a CLI revoke, a second server)
    # within this many seconds. 0 turns the caches off.
    read_cache_seconds: float = Field(default=1.0, ge=0)
    # A console sign-in lasts this long at most (it ends sooner with its key or a sign-out).
    console_session_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)

    # Comma-separated CIDRs admitted despite being private (off by default).
    allow_private_networks: str = ""
    # Any request body over this is refused with 413 while it streams in (a JSON body with
    # a data URI input image is the largest legitimate one).
    max_request_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    input_image_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    input_image_max_pixels: int = Field(default=40_000_000, gt=0)
    # Images decoded at once by one process (input images, uploads, the workers): a decode
    # holds the image at full size for a moment (4 bytes a pixel, ~160 MB at 40 MP), so
    # this bounds what a burst of large images adds to the process's memory.
    image_decode_concurrency: int = Field(default=2, ge=1, le=32)
    fetch_connect_timeout: float = Field(default=5.0, gt=0)
    fetch_read_timeout: float = Field(default=15.0, gt=0)

    # Outputs are deleted this many days after the task completes; their URLs then answer 410.
    retention_days: float = Field(default=7.0, gt=0)
    retention_sweep_seconds: float = Field(default=300.0, gt=0)
    # A task not finished this long after submission fails with `timeout` and is refunded
    # (a route's `deadline_seconds` overrides it).
    task_deadline_seconds: float = Field(default=7200.0, gt=0)

    # Webhook deliveries: delay before each attempt (the first is the initial send).
    webhook_retry_schedule: list[float] = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000], min_length=1
    )
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=15)
    # At most one task.progress event per task per this many seconds.
    webhook_progress_interval_seconds: float = Field(default=5.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # Webhook endpoints one account may register; POST /v1/webhooks answers 409 past it.
    webhook_max_endpoints: int = Field(default=16, ge=1, le=1000)

    # Uploads (POST /v1/uploads).
    upload_image_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    upload_video_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)

    # Limits of accounts whose plan has no row in the plans table.
    default_max_concurrent_videos: int = Field(default=5, ge=1)
    default_max_concurrent_images: int = Field(default=10, ge=1)
    default_requests_per_minute: int = Field(default=600, ge=1)
    # Where per-key request counts live: in process by default; a shared storage such as
    # redis://127.0.0.1:6379 when several API processes serve one installation.
    rate_limit_storage_url: str = "memory://"
    # Requests that carry no key, and requests whose key or signed URL failed, are counted
    # per client address (the peer, or X-Forwarded-For from a trusted proxy).
    anonymous_requests_per_minute: int = Field(default=600, ge=1)
    failed_auth_per_minute: int = Field(default=30, ge=1)
    # Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is
    # believed; empty: the peer address is the client.
    trusted_proxies: str = ""
    # A well-formed key that matches nothing is remembered this long (no lookup on repeats).
    unknown_key_cache_seconds: float = Field(default=30.0, ge=0)
    # JSON request bodies nested deeper than this are refused with 400 invalid_json.
    max_json_depth: int = Field(default=32, ge=4, le=512)
    # Idempotency keys are kept at least this long.
    idempotency_ttl_seconds: float = Field(default=86400.0, ge=86400.0)

    # Seconds between heartbeat comments on idle event streams.
    sse_ping_seconds: float = Field(default=15.0, gt=0)

    log_level: str = "info"

    @field_validator("allow_private_networks", "trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_is_strong(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("FRAMEGATE_SECRET_KEY must be at least 32 characters")
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _previous_secrets_are_strong(cls, value: list[str]) -> list[str]:
        if any(len(old) < 32 for old in value):
            raise ValueError("FRAMEGATE_PREVIOUS_SECRET_KEYS: each must be 32+ characters")
        return value

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose derived values (database URL, secret, fetch policy) are computed
        anew from its own fields, not carried over from this instance."""
        copy = super().model_copy(update=update, deep=deep)
        for name, value in type(self).__dict__.items():
            if isinstance(value, cached_property):
                copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'framegate.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def is_distributed(self) -> bool:
        return self.dispatch == "distributed"

    def check(self) -> None:
        """Refuse a deployment that cannot work, in one line (raises ConfigurationError)."""
        self._check_dispatch()
        self._check_storage()

    def _check_dispatch(self) -> None:
        if self.is_distributed and self.is_sqlite:
            raise ConfigurationError(
                "FRAMEGATE_DISPATCH=distributed needs PostgreSQL: set FRAMEGATE_DATABASE_URL "
                "to postgresql+asyncpg://USER@HOST/DB (SQLite serves one machine only)"
            )

    def _check_storage(self) -> None:
        if self.storage != "s3":
            return
        if not self.s3_bucket:
            raise ConfigurationError(
                "FRAMEGATE_STORAGE=s3 needs FRAMEGATE_S3_BUCKET (the bucket's name)"
            )
        if self.signed_url_ttl_seconds > MAX_PRESIGN_SECONDS:
            raise ConfigurationError(
                f"FRAMEGATE_SIGNED_URL_TTL_SECONDS is {self.signed_url_ttl_seconds}: presigned "
                f"S3 URLs are valid for at most {MAX_PRESIGN_SECONDS} s (7 days)"
            )
        for name in ("s3_endpoint_url", "s3_public_base_url"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"FRAMEGATE_{name.upper()} must be an http:// or https:// URL, not {value!r}"
                )

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "files"

    @cached_property
    def fetch_policy(self) -> FetchPolicy:
        return FetchPolicy(
            allow_networks=parse_networks(self.allow_private_networks),
            max_bytes=self.input_image_max_bytes,
            connect_timeout=self.fetch_connect_timeout,
            read_timeout=self.fetch_read_timeout,
        )

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def effective_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in the data directory.

        Outside development a secret must be configured explicitly, so a production
        deployment never runs on a key that lives next to the data it protects.
        """
        if self.secret_key:
            return self.secret_key
        if self.env == "production":
            raise RuntimeError("FRAMEGATE_SECRET_KEY must be set when FRAMEGATE_ENV=production")
        self.ensure_data_dir()
        path = self.data_dir / _SECRET_FILE
        if not path.exists():
            # Written aside and linked into place: two processes starting at once on a new
            # data directory (serve and a CLI command) still end up with the same secret.
            candidate = self.data_dir / f".{_SECRET_FILE}.{secrets.token_hex(8)}"
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
            candidate.unlink()
        return path.read_text().strip()
