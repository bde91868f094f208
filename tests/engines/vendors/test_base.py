"""The refusal rules and size tables the vendor engines share."""

from __future__ import annotations

from typing import Any

import pytest

from framegate.engines.vendors.base import refuse_inputs, refuse_num_frames, spoken
from framegate.engines.vendors.kit import size_table
from framegate.exceptions import InvalidValue
from tests.engines.vendors.common import vendor_shape as shape


@pytest.mark.parametrize(
    ("values", "words"),
    [([5], "5"), ([5, 9], "5 or 9"), ([4, 6, 8], "4, 6 or 8"), (list(range(2, 11)), "2 to 10")],
)
def test_spoken(values: list[int], words: str) -> None:
    assert spoken(values) == words


def test_size_table_pairs_every_resolution_with_every_ratio() -> None:
    assert size_table(("720p", "1080p"), ("16:9", "9:16", "4:3")) == {
        "1280x720": ("720p", "16:9"),
        "720x1280": ("720p", "9:16"),
        "960x720": ("720p", "4:3"),
        "1920x1080": ("1080p", "16:9"),
        "1080x1920": ("1080p", "9:16"),
        "1440x1080": ("1080p", "4:3"),
    }


@pytest.mark.parametrize(
    ("taken", "overrides", "param"),
    [
        ({"text_to_video": False}, {}, "input_image"),
        ({"input_image": False}, {"has_image": True}, "input_image"),
        ({"last_image": False}, {"has_image": True, "has_last_image": True}, "last_image"),
        ({"negative_prompt": False}, {"has_negative_prompt": True}, "negative_prompt"),
        ({"seed": False}, {"has_seed": True}, "seed"),
    ],
)
def test_refuse_inputs_names_the_field(
    taken: dict[str, bool], overrides: dict[str, Any], param: str
) -> None:
    refuse_inputs(shape(**overrides), "Vendor")  # everything taken: accepted
    with pytest.raises(InvalidValue) as caught:
        refuse_inputs(shape(**overrides), "Vendor", **taken)
    assert caught.value.param == param
    assert caught.value.message.startswith("Vendor ")


def test_refuse_num_frames_lists_the_whole_second_counts() -> None:
    refuse_num_frames(shape(), 24, (5, 8), "PixVerse")
    with pytest.raises(InvalidValue) as caught:
        refuse_num_frames(shape(num_frames=100), 24, (5, 8), "PixVerse")
    assert caught.value.param == "num_frames"
    assert "120 or 192 frames (5 or 8 s at 24 fps)" in caught.value.message
