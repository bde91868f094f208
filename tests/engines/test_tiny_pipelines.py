"""The tiny diffusers pipelines of tests/engines/tiny_pipelines.py: each one builds the same
from the same seed, loads back offline and runs on CPU with the arguments an engine passes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffusers
import huggingface_hub.constants
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from tests.engines.tiny_pipelines import BUILDERS, TINY_SHAPES, TinyShape

KEYS = sorted(BUILDERS)
PROMPT = "a red robot dances in the snow"
STEPS = 2


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub and no network: HF_HUB_OFFLINE (the variable, and the flag huggingface_hub read
    from it at import) and a socket that refuses to connect."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(self: socket.socket, address: Any) -> None:
        raise OSError(f"network access in an offline test: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _load(directory: Path) -> DiffusionPipeline:
    pipeline = DiffusionPipeline.from_pretrained(directory)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _image(width: int, height: int, colour: tuple[int, int, int]) -> Image.Image:
    """A picture with some structure: a colour fading to black from left to right."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            tuple(c * (width - x) // width for c in colour)
            for _y in range(height)
            for x in range(width)
        ]
    )
    return image


def _arguments(
    shape: TinyShape, *, seed: int = 0, width: int | None = None, **extra: Any
) -> dict[str, Any]:
    width = width or shape.width
    arguments: dict[str, Any] = {
        "prompt": PROMPT,
        "negative_prompt": "blurry",
        "height": shape.height,
        "width": width,
        "num_inference_steps": shape.num_inference_steps,
        "guidance_scale": 5.0,
        "generator": torch.Generator("cpu").manual_seed(seed),
        "output_type": "pt",
    }
    if shape.is_video:
        arguments["num_frames"] = shape.num_frames
    if shape.takes_image:
        arguments["image"] = _image(width, shape.height, (250, 40, 20))
    if shape.takes_last_image:
        arguments["last_image"] = _image(width, shape.height, (20, 40, 250))
    arguments.update(extra)
    return arguments


def _output(pipeline: DiffusionPipeline, arguments: dict[str, Any]) -> Any:
    result = pipeline(**arguments)
    return result.frames if hasattr(result, "frames") else result.images


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_shapes_cover_the_builders() -> None:
    assert set(TINY_SHAPES) == set(BUILDERS)
    for shape in TINY_SHAPES.values():
        assert shape.num_inference_steps == STEPS
        assert shape.width % shape.size_multiple == 0
        assert shape.height % shape.size_multiple == 0
        assert (shape.num_frames - 1) % shape.frame_multiple == 0


@pytest.mark.parametrize("key", KEYS)
def test_a_build_is_determined_by_its_seed(key: str, tmp_path: Path) -> None:
    first = _files(BUILDERS[key](tmp_path / "first"))
    again = _files(BUILDERS[key](tmp_path / "again"))
    other = _files(BUILDERS[key](tmp_path / "other", seed=1))

    assert "model_index.json" in first
    assert first == again
    assert first.keys() == other.keys()
    weights = [name for name in first if name.endswith(".safetensors")]
    assert weights
    assert any(first[name] != other[name] for name in weights)


@pytest.mark.parametrize("key", KEYS)
def test_loads_offline_runs_and_repeats_with_the_same_seed(
    key: str, pipeline_dir: Callable[[str], Path], offline: None
) -> None:
    shape = TINY_SHAPES[key]
    directory = pipeline_dir(key)

    pipeline = _load(directory)
    assert type(pipeline).__name__ == shape.pipeline_class
    concrete = getattr(diffusers, shape.pipeline_class).from_pretrained(directory)
    assert type(concrete).__name__ == shape.pipeline_class

    output = _output(pipeline, _arguments(shape))
    if shape.is_video:
        assert tuple(output.shape) == (1, shape.num_frames, 3, shape.height, shape.width)
    else:
        assert tuple(output.shape) == (1, 3, shape.height, shape.width)
    assert output.dtype == torch.float32
    assert float(output.min()) >= 0.0
    assert float(output.max()) <= 1.0

    assert torch.equal(_output(pipeline, _arguments(shape)), output)
    assert not torch.equal(_output(pipeline, _arguments(shape, seed=1)), output)


@pytest.mark.parametrize("key", KEYS)
def test_width_and_height_are_not_swapped(
    key: str, pipeline_dir: Callable[[str], Path], offline: None
) -> None:
    shape = TINY_SHAPES[key]
    pipeline = _load(pipeline_dir(key))
    width = 2 * shape.width

    output = _output(pipeline, _arguments(shape, width=width))

    assert tuple(output.shape[-2:]) == (shape.height, width)


@pytest.mark.parametrize("key", KEYS)
def test_callback_on_step_end_is_called_once_per_step(
    key: str, pipeline_dir: Callable[[str], Path], offline: None
) -> None:
    shape = TINY_SHAPES[key]
    pipeline = _load(pipeline_dir(key))
    steps: list[int] = []

    def on_step_end(
        pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        assert pipe is pipeline
        assert isinstance(tensors["latents"], torch.Tensor)
        steps.append(step)
        return {}

    _output(
        pipeline,
        _arguments(
            shape,
            callback_on_step_end=on_step_end,
            callback_on_step_end_tensor_inputs=["latents"],
        ),
    )

    assert steps == list(range(shape.num_inference_steps))


@pytest.mark.parametrize("key", KEYS)
def test_pil_output(key: str, pipeline_dir: Callable[[str], Path], offline: None) -> None:
    shape = TINY_SHAPES[key]
    pipeline = _load(pipeline_dir(key))

    output = _output(pipeline, _arguments(shape, output_type="pil"))

    assert len(output) == 1
    pictures = output[0] if shape.is_video else output
    assert len(pictures) == shape.num_frames
    assert all(isinstance(picture, Image.Image) for picture in pictures)
    assert {picture.size for picture in pictures} == {(shape.width, shape.height)}
    assert {picture.mode for picture in pictures} == {"RGB"}


@pytest.mark.parametrize("key", [key for key in KEYS if not TINY_SHAPES[key].is_video])
def test_text_to_image_makes_several_images_per_prompt(
    key: str, pipeline_dir: Callable[[str], Path], offline: None
) -> None:
    shape = TINY_SHAPES[key]
    pipeline = _load(pipeline_dir(key))

    images = _output(pipeline, _arguments(shape, num_images_per_prompt=2, output_type="pil"))
    tensors = _output(pipeline, _arguments(shape, num_images_per_prompt=2))

    assert [image.size for image in images] == [(shape.width, shape.height)] * 2
    assert tuple(tensors.shape) == (2, 3, shape.height, shape.width)
    assert not torch.equal(tensors[0], tensors[1])


@pytest.mark.parametrize(
    ("key", "drop_last_image", "add_last_image"),
    [("wan-i2v-2.1", False, True), ("wan-flf2v", True, False)],
)
def test_wan_image_layouts_that_take_one_image_or_two(
    key: str,
    drop_last_image: bool,
    add_last_image: bool,
    pipeline_dir: Callable[[str], Path],
    offline: None,
) -> None:
    """Wan 2.1 I2V encodes one image with CLIP, FLF2V exactly two: the other count fails."""
    shape = TINY_SHAPES[key]
    pipeline = _load(pipeline_dir(key))
    arguments = _arguments(shape)
    if drop_last_image:
        del arguments["last_image"]
    if add_last_image:
        arguments["last_image"] = _image(shape.width, shape.height, (20, 40, 250))

    with pytest.raises(RuntimeError):
        _output(pipeline, arguments)


@pytest.mark.parametrize("key", [key for key in KEYS if TINY_SHAPES[key].takes_guidance_scale_2])
def test_guidance_scale_2_steers_the_second_transformer(
    key: str, pipeline_dir: Callable[[str], Path], offline: None
) -> None:
    shape = TINY_SHAPES[key]
    pipeline = _load(pipeline_dir(key))
    assert pipeline.transformer_2 is not None

    same = _output(pipeline, _arguments(shape, guidance_scale_2=5.0))
    default = _output(pipeline, _arguments(shape))
    other = _output(pipeline, _arguments(shape, guidance_scale_2=1.5))

    assert torch.equal(same, default)
    assert not torch.equal(other, default)


@pytest.mark.parametrize("key", [key for key in KEYS if TINY_SHAPES[key].image_pipeline_class])
def test_text_to_video_directory_loads_as_the_image_pipeline(
    key: str, pipeline_dir: Callable[[str], Path], offline: None
) -> None:
    shape = TINY_SHAPES[key]
    name = shape.image_pipeline_class
    assert name is not None
    pipeline = getattr(diffusers, name).from_pretrained(pipeline_dir(key))
    pipeline.set_progress_bar_config(disable=True)
    assert type(pipeline).__name__ == name

    image = _image(shape.width, shape.height, (250, 40, 20))
    output = _output(pipeline, _arguments(shape, image=image))

    assert tuple(output.shape) == (1, shape.num_frames, 3, shape.height, shape.width)
