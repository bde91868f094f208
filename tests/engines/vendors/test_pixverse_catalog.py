"""PixVerse routes: settings, what the engine refuses before credits are held, and how
its answers are classified (no server needed)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from framegate.catalog.schemas import ModelRoute
from framegate.engines.vendors.base import (
    MODERATION_BLOCKED,
    UPSTREAM_AUTH,
    UPSTREAM_ERROR,
    UPSTREAM_INVALID,
    UPSTREAM_RATE_LIMITED,
    UPSTREAM_UNAVAILABLE,
    UpstreamError,
)
from framegate.engines.vendors.pixverse import (
    PIXVERSE_SIZES,
    PixVerseEngine,
)
from framegate.exceptions import InvalidValue
from tests.engines.vendors.common import builtin_routes
from tests.engines.vendors.common import vendor_shape as shape

BUILTIN_ROUTES = builtin_routes("pixverse")

ROUTE = BUILTIN_ROUTES[0]


# -- catalog -------------------------------------------------------------------------------


def test_builtin_routes_validate() -> None:
    assert [route["id"] for route in BUILTIN_ROUTES] == ["pixverse-v5"]
    engine = PixVerseEngine(api_key="k", base_url="https://app-api.pixverse.ai")
    for raw in BUILTIN_ROUTES:
        route = ModelRoute.model_validate(raw)
        assert route.engine == "pixverse" and route.kind == "video"
        engine.check_route(route)
        caps = route.capabilities
        assert caps.sizes == list(PIXVERSE_SIZES) and len(caps.sizes) == 20
        assert caps.default_size in caps.sizes
        assert (caps.min_duration, caps.max_duration) == (5, 8)
        assert caps.min_fps == caps.max_fps == caps.default_fps == 24
        assert caps.text_to_video and caps.image_to_video and caps.first_last_frame
        assert route.settings == {"model": "v5", "motion_mode": "normal"}


def test_settings_refuse_unknown_fields() -> None:
    engine = PixVerseEngine(api_key="k", base_url="https://app-api.pixverse.ai")
    route = ModelRoute.model_validate({**ROUTE, "settings": {"model": "v5", "quality": "720p"}})
    with pytest.raises(ValueError, match="settings"):
        engine.check_route(route)


def test_is_available_needs_a_key() -> None:
    assert not PixVerseEngine(api_key=None, base_url="http://x").is_available({})
    assert not PixVerseEngine(api_key="", base_url="http://x").is_available({})
    assert PixVerseEngine(api_key="k", base_url="http://x").is_available({})


@pytest.mark.parametrize(
    ("overrides", "param", "fragment"),
    [
        ({"width": 1000, "height": 1000}, "size", "1280x720"),
        ({"width": 1280, "height": 704}, "size", "choose one of"),
        ({"duration": 6, "num_frames": 144}, "duration", "5 or 8"),
        ({"duration": 10, "num_frames": 240}, "duration", "5 or 8"),
        ({"width": 1920, "height": 1080, "duration": 8, "num_frames": 192}, "duration", "1080p"),
        ({"fps": 30, "num_frames": 150}, "fps", "24"),
        ({"num_frames": 100}, "num_frames", "120 or 192"),
        (
            {"has_image": True, "has_last_image": True, "has_negative_prompt": True},
            "negative_prompt",
            "negative_prompt",
        ),
        ({"has_last_image": True}, "input_image", "first frame"),
    ],
)
def test_refuse_names_the_field(overrides: dict[str, Any], param: str, fragment: str) -> None:
    engine = PixVerseEngine(api_key="k", base_url="http://x")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse(ROUTE["settings"], shape(**overrides))
    assert caught.value.param == param
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"duration": 8, "num_frames": 192}, "duration"),
        ({"width": 1080, "height": 1920}, "size"),
    ],
)
def test_refuse_fast_motion_limits(overrides: dict[str, Any], param: str) -> None:
    engine = PixVerseEngine(api_key="k", base_url="http://x")
    with pytest.raises(InvalidValue) as caught:
        engine.refuse({"model": "v4.5", "motion_mode": "fast"}, shape(**overrides))
    assert caught.value.param == param


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"width": 1920, "height": 1080, "has_seed": True, "has_negative_prompt": True},
        {"width": 360, "height": 640, "duration": 8, "num_frames": 192, "has_image": True},
        {"width": 720, "height": 720, "has_image": True, "has_last_image": True},
        {"width": 540, "height": 720, "duration": 8, "num_frames": 192},
    ],
)
def test_refuse_accepts_what_pixverse_makes(overrides: dict[str, Any]) -> None:
    PixVerseEngine(api_key="k", base_url="http://x").refuse(ROUTE["settings"], shape(**overrides))


def test_capabilities_and_refuse_admit_exactly_what_pixverse_makes() -> None:
    engine = PixVerseEngine(api_key="k", base_url="http://x")
    caps = ModelRoute.model_validate(ROUTE).capabilities
    assert caps.sizes is not None
    for label in caps.sizes:
        width, height = map(int, label.split("x"))
        quality, _ = PIXVERSE_SIZES[label]
        for seconds in range(caps.min_duration, caps.max_duration + 1):
            made = seconds == 5 or (seconds == 8 and quality != "1080p")
            candidate = shape(width=width, height=height, duration=seconds, num_frames=seconds * 24)
            if made:
                engine.refuse(ROUTE["settings"], candidate)
            else:
                with pytest.raises(InvalidValue):
                    engine.refuse(ROUTE["settings"], candidate)


@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "retriable"),
    [
        (
            200,
            {"ErrCode": 400012, "ErrMsg": "Invalid account", "Resp": None},
            {},
            UPSTREAM_AUTH,
            False,
        ),
        (
            200,
            {"ErrCode": 500020, "ErrMsg": "no permission", "Resp": None},
            {},
            UPSTREAM_AUTH,
            False,
        ),
        (403, {"message": "Forbidden"}, {}, UPSTREAM_AUTH, False),
        (
            200,
            {"ErrCode": 400013, "ErrMsg": "Invalid binding", "Resp": None},
            {},
            UPSTREAM_INVALID,
            False,
        ),
        (
            200,
            {"ErrCode": 400999, "ErrMsg": "new 4xx code", "Resp": None},
            {},
            UPSTREAM_INVALID,
            False,
        ),
        (
            200,
            {"ErrCode": 500999, "ErrMsg": "new 5xx code", "Resp": None},
            {},
            UPSTREAM_ERROR,
            False,
        ),
        # The upload's documented HTTP 500 moderation answer uses lower-case fields.
        (
            500,
            {"err_code": 500052, "err_msg": "image refused", "resp": ""},
            {},
            MODERATION_BLOCKED,
            False,
        ),
        (
            200,
            {"ErrCode": 500054, "ErrMsg": "image refused", "Resp": None},
            {},
            MODERATION_BLOCKED,
            False,
        ),
        (
            200,
            {"ErrCode": 500044, "ErrMsg": "limit", "Resp": None},
            {"Retry-After": "3"},
            UPSTREAM_RATE_LIMITED,
            True,
        ),
        (
            200,
            {"ErrCode": 99999, "ErrMsg": "Unknown error", "Resp": None},
            {},
            UPSTREAM_UNAVAILABLE,
            True,
        ),
        (
            200,
            {"ErrCode": 500100, "ErrMsg": "MySQL error", "Resp": None},
            {},
            UPSTREAM_UNAVAILABLE,
            True,
        ),
        (
            200,
            {"ErrCode": 500090, "ErrMsg": "Insufficient balance", "Resp": None},
            {},
            UPSTREAM_ERROR,
            False,
        ),
        (502, "<html>Bad Gateway</html>", {}, UPSTREAM_UNAVAILABLE, True),
        (429, {"message": "slow down"}, {"Retry-After": "7"}, UPSTREAM_RATE_LIMITED, True),
        (200, "not json", {}, UPSTREAM_ERROR, False),
        (200, {"ErrCode": 0, "ErrMsg": "success", "Resp": None}, {}, UPSTREAM_ERROR, False),
    ],
)
def test_answer_classification(
    status: int, body: Any, headers: dict[str, str], code: str, retriable: bool
) -> None:
    engine = PixVerseEngine(api_key="pv-secret", base_url="http://x")
    if isinstance(body, str):
        response = httpx.Response(status, text=body, headers=headers)
    else:
        response = httpx.Response(status, json=body, headers=headers)
    with pytest.raises(UpstreamError) as caught:
        engine._answer(response, "submit")
    assert (caught.value.code, caught.value.retriable) == (code, retriable)
    if "Retry-After" in headers:
        assert caught.value.retry_after == float(headers["Retry-After"])
    assert "pv-secret" not in caught.value.message
