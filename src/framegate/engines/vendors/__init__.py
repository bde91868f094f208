"""Upstream vendor engines, configured from the operator's settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framegate.config import Settings
    from framegate.engines.vendors.base import VendorEngine


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def vendor_engines(settings: Settings) -> list[VendorEngine]:
    """Every vendor engine (available only where its key is set)."""
    from framegate.engines.vendors.fal import FalEngine
    from framegate.engines.vendors.framegate import FramegateEngine
    from framegate.engines.vendors.kling import KlingEngine
    from framegate.engines.vendors.luma import LumaEngine
    from framegate.engines.vendors.pixverse import PixVerseEngine
    from framegate.engines.vendors.replicate import ReplicateEngine
    from framegate.engines.vendors.runway import RunwayEngine
    from framegate.engines.vendors.veo import VeoEngine

    common: dict[str, Any] = {"timeout": settings.vendor_timeout_seconds}
    # Each vendor has its own default interval; the operator's setting, when given, wins.
    if "vendor_poll_seconds" in settings.model_fields_set:
        common["poll_interval"] = settings.vendor_poll_seconds
    return [
        VeoEngine(api_key=_secret(settings.veo_api_key), base_url=settings.veo_base_url, **common),
        RunwayEngine(
            api_key=_secret(settings.runway_api_key), base_url=settings.runway_base_url, **common
        ),
        LumaEngine(
            api_key=_secret(settings.luma_api_key), base_url=settings.luma_base_url, **common
        ),
        FalEngine(api_key=_secret(settings.fal_key), base_url=settings.fal_base_url, **common),
        ReplicateEngine(
            api_key=_secret(settings.replicate_api_token),
            base_url=settings.replicate_base_url,
            **common,
        ),
        PixVerseEngine(
            api_key=_secret(settings.pixverse_api_key),
            base_url=settings.pixverse_base_url,
            **common,
        ),
        KlingEngine(
            api_key=_secret(settings.kling_access_key),
            access_key=_secret(settings.kling_access_key),
            secret_key=_secret(settings.kling_secret_key),
            base_url=settings.kling_base_url,
            **common,
        ),
        FramegateEngine(
            api_key=_secret(settings.upstream_framegate_api_key),
            base_url=settings.upstream_framegate_url,
            **common,
        ),
    ]
