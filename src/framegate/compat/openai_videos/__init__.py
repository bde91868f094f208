"""The OpenAI Videos API dialect (``/v1/videos``): client code written for OpenAI's Videos API
(the official ``openai`` SDK included) works against framegate with another base URL and a
framegate key.

A thin translation onto the task service, with no state of its own: a video is a framegate
video task (its id is the task id), OpenAI's model names resolve through the catalog (route
ids and aliases, e.g. an operator's alias ``sora-2``), ``seconds`` is the duration, ``size`` the
size and ``input_reference`` (a multipart file, an image URL or an upload id) the input image.
A remix is a new task with its source's parameters and a new prompt; the source is recorded in
the new task's metadata (``remixed_from_video_id``). Deleting a video cancels it if it is
unfinished and deletes its stored files, marking the task purged as the retention sweeper does;
a purged task is no longer a video here (not listed, 404), while ``GET /v1/tasks/{id}`` still
shows it.
"""

from __future__ import annotations

from framegate.compat.openai_videos.endpoints import router
from framegate.compat.openai_videos.errors import render_error
from framegate.compat.openai_videos.schemas import OpenAIErrorResponse
from framegate.kit.dialects import Dialect

DIALECT = Dialect(
    name="openai_videos",
    prefixes=("/v1/videos", "/v1/videos/"),
    render_error=render_error,
    error_model=OpenAIErrorResponse,
)

__all__ = ["DIALECT", "router"]
