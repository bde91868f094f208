"""A fake Hugging Face Hub on loopback, for offline tests of ``huggingface_hub.snapshot_download``.

``FakeHub`` serves model repositories from local directories with the standard library's
``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port), implementing the part of the Hub's HTTP
API that ``snapshot_download`` uses (written against huggingface_hub 2.4.0, which lists files
with the tree endpoint; the repo info also carries ``siblings``, which older clients used):

* ``GET /api/models/{repo_id}[/revision/{revision}]``: the repo info (``id``, ``sha``,
  ``siblings``, ...). ``snapshot_download`` calls it to resolve a branch to a commit; it skips
  the call when the revision is already a 40-hex commit.
* ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=true``: the file listing
  (``type``, ``path``, ``size``, ``oid`` and ``lfs`` for large files), one page (no ``Link``).
* ``HEAD`` and ``GET /{repo_id}/resolve/{revision}/{filename}``: small ("git") files answer
  ``200`` with ``X-Repo-Commit``, ``ETag`` (the git blob id) and ``Content-Length``; large
  ("LFS") files, chosen by suffix, answer ``302`` with ``X-Linked-Etag`` (their sha256),
  ``X-Linked-Size`` and a ``Location`` on a second loopback server standing for the CDN (a
  different port, hence a different origin: the client stops at the redirect, as it does for
  the real CDN, and does not send the ``Authorization`` header there). ``GET`` honours
  ``Range: bytes=N-`` / ``bytes=N-M`` (the client's resume path).

No Xet headers (``X-Xet-Hash``, ``xetHash``) are ever sent, so the client always takes the plain
HTTP download path, whether or not ``hf_xet`` is installed.

Errors carry the headers ``huggingface_hub.utils.hf_raise_for_status`` maps to its exceptions:
an unknown repo is ``404`` + ``X-Error-Code: RepoNotFound`` (``RepositoryNotFoundError``), an
unknown revision ``404`` + ``RevisionNotFound`` (``RevisionNotFoundError``), an unknown file
``404`` + ``EntryNotFound``. With ``token=...`` every repo endpoint (info, tree, resolve; not the
CDN) wants ``Authorization: Bearer <token>``: without it the answer is ``401`` +
``X-Error-Code: GatedRepo`` (``GatedRepoError``, a ``RepositoryNotFoundError``), with another
token ``401`` + ``X-Error-Message: Invalid credentials in Authorization header``
(``HfHubHTTPError``, status 401).

Files are read from disk on each request, so a test can change a repository between two
downloads; the commit is derived from the repo id and the files' contents (or fixed per repo
with ``commits=``), so a change of content is a new commit.

Pointing ``huggingface_hub`` at the fake hub:

* in this process: pass ``endpoint=hub.url`` to ``snapshot_download``/``hf_hub_download``, or
  call ``use_fake_hub(monkeypatch, hub, hf_home)``, which also patches the values that
  ``huggingface_hub.constants`` read from the environment at import time (``ENDPOINT``,
  ``HF_HOME``, the cache and token paths, offline mode, telemetry);
* in a subprocess (a CLI): ``env=hub.environment(hf_home)`` (``HF_ENDPOINT``, ``HF_HOME``,
  ``HF_HUB_DISABLE_TELEMETRY=1``, ``HF_HUB_DISABLE_XET=1``, ``NO_PROXY`` for loopback, and no
  inherited token, cache, offline or staging variables; ``token=`` sets ``HF_TOKEN``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import pytest

DEFAULT_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx")
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
# Files at least this large have their hashes cached by (size, mtime, inode); smaller ones are
# hashed on every request, so a quick same-size rewrite in a test is never missed.
_HASH_CACHE_MIN_SIZE = 1 << 20
_IGNORED_DIRS = (".git", ".cache/huggingface")

# Variables a developer's or CI's environment may hold that would send the client elsewhere
# (staging), keep it offline, give it a token or a cache outside the test's HF_HOME.
INHERITED_HF_VARIABLES = (
    "HF_ENDPOINT",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_OIDC_RESOURCE",
    "HF_OIDC_ID_TOKEN",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
)

_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_INFO = re.compile(rf"^/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha256>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")


class HubRequest(NamedTuple):
    """One request the fake hub (or its CDN) answered."""

    method: str
    # The URL path, percent-decoded, without the query string. CDN requests are "/cdn/<sha256>".
    path: str
    # Header names are lower-cased.
    headers: dict[str, str]

    @property
    def is_file_download(self) -> bool:
        """A GET of a file's content (from the hub or from the CDN)."""
        return self.method == "GET" and ("/resolve/" in self.path or self.path.startswith("/cdn/"))


@dataclass(frozen=True)
class HubFile:
    """A file of a served repository, as the fake hub describes it."""

    path: str
    local: Path
    size: int
    blob_id: str  # git blob sha1 (of the LFS pointer, for LFS files)
    sha256: str | None  # set for LFS files
    pointer_size: int | None  # set for LFS files

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class RepoSnapshot:
    repo_id: str
    commit: str
    files: dict[str, HubFile]


class _HubError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class FakeHub:
    """Serve ``repos`` (repo id -> local directory) as a Hugging Face Hub on loopback.

    Use as a context manager (or ``start()``/``stop()``). ``url`` is the endpoint to give the
    client; ``requests`` lists every request answered (hub and CDN), in order.
    """

    def __init__(
        self,
        repos: Mapping[str, Path],
        token: str | None = None,
        *,
        commits: Mapping[str, str] | None = None,
        branches: Iterable[str] = ("main",),
        lfs_suffixes: Iterable[str] = DEFAULT_LFS_SUFFIXES,
    ) -> None:
        self.repos: dict[str, Path] = {repo_id: Path(path) for repo_id, path in repos.items()}
        self.token = token
        self.commits: dict[str, str] = dict(commits or {})
        for repo_id, commit in self.commits.items():
            if not re.fullmatch(r"[0-9a-f]{40}", commit):
                raise ValueError(f"commit for {repo_id!r} must be 40 lowercase hex digits")
        self.branches = frozenset(branches)
        self.lfs_suffixes = tuple(lfs_suffixes)
        self.requests: list[HubRequest] = []
        self._lock = threading.Lock()
        self._hash_cache: dict[tuple[str, int, int, int], tuple[str, str]] = {}
        self._hub: _Server | None = None
        self._cdn: _Server | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._hub is not None:
            raise RuntimeError("FakeHub already started")
        self._hub = _Server(self, cdn=False)
        self._cdn = _Server(self, cdn=True)
        for server in (self._hub, self._cdn):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-hub-{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._hub, self._cdn):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._hub = self._cdn = None
        self._threads = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The hub endpoint, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return _server_url(self._hub)

    @property
    def cdn_url(self) -> str:
        """Where LFS files are redirected to (another port: another origin)."""
        return _server_url(self._cdn)

    # -- inspection ------------------------------------------------------------------------

    def commit(self, repo_id: str) -> str:
        """The commit ``repo_id`` is at now (changes when its files change)."""
        return self.snapshot(repo_id).commit

    def snapshot(self, repo_id: str) -> RepoSnapshot:
        root = self.repos[repo_id]
        files: dict[str, HubFile] = {}
        for local in sorted(root.rglob("*")):
            if not local.is_file():
                continue
            path = local.relative_to(root).as_posix()
            if any(path == d or path.startswith(d + "/") for d in _IGNORED_DIRS):
                continue
            files[path] = self._describe(path, local)
        commit = self.commits.get(repo_id)
        if commit is None:
            digest = hashlib.sha1(f"fake-hub commit {repo_id}\n".encode())
            for path, file in files.items():
                digest.update(f"{path}\0{file.blob_id}\n".encode())
            commit = digest.hexdigest()
        return RepoSnapshot(repo_id=repo_id, commit=commit, files=files)

    def file_downloads(self) -> list[HubRequest]:
        """The GETs of file contents seen so far."""
        with self._lock:
            return [request for request in self.requests if request.is_file_download]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- pointing huggingface_hub at the fake hub ---------------------------------------------

    def environment(
        self,
        hf_home: Path,
        *,
        token: str | None = None,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """An environment for a subprocess whose ``huggingface_hub`` should use this hub.

        Starts from ``base`` (default: ``os.environ``) without the variables in
        ``INHERITED_HF_VARIABLES``; ``token`` becomes ``HF_TOKEN``.
        """
        env = dict(os.environ if base is None else base)
        for name in INHERITED_HF_VARIABLES:
            env.pop(name, None)
        env.update(
            HF_ENDPOINT=self.url,
            HF_HOME=str(hf_home),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_XET="1",
            NO_PROXY=_no_proxy(env.get("NO_PROXY")),
            no_proxy=_no_proxy(env.get("no_proxy")),
        )
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    # -- internals -----------------------------------------------------------------------

    def _describe(self, path: str, local: Path) -> HubFile:
        stat = local.stat()
        key = (str(local), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        hashes = self._hash_cache.get(key) if stat.st_size >= _HASH_CACHE_MIN_SIZE else None
        if hashes is None:
            data = local.read_bytes()
            hashes = (_git_blob_id(data), hashlib.sha256(data).hexdigest())
            if stat.st_size >= _HASH_CACHE_MIN_SIZE:
                self._hash_cache[key] = hashes
        blob_id, sha256 = hashes
        if not path.endswith(self.lfs_suffixes):
            return HubFile(path, local, stat.st_size, blob_id, None, None)
        pointer = (
            "version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{sha256}\nsize {stat.st_size}\n"
        ).encode()
        return HubFile(path, local, stat.st_size, _git_blob_id(pointer), sha256, len(pointer))

    def _record(self, request: HubRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _repo(self, repo_id: str) -> RepoSnapshot:
        if repo_id not in self.repos:
            raise _HubError(404, "Repository not found", {"X-Error-Code": "RepoNotFound"})
        return self.snapshot(repo_id)

    def _check_auth(self, repo_id: str, headers: Mapping[str, str]) -> None:
        if self.token is None:
            return
        authorization = headers.get("authorization")
        if authorization is None:
            raise _HubError(
                401,
                f"Access to model {repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
                {"X-Error-Code": "GatedRepo"},
            )
        if authorization != f"Bearer {self.token}":
            raise _HubError(401, "Invalid credentials in Authorization header")

    def _check_revision(self, snapshot: RepoSnapshot, revision: str) -> None:
        if revision not in self.branches and revision != snapshot.commit:
            raise _HubError(
                404, f"Invalid rev id: {revision}", {"X-Error-Code": "RevisionNotFound"}
            )

    def _info(self, snapshot: RepoSnapshot, revision: str, query: Mapping[str, list[str]]) -> Any:
        self._check_revision(snapshot, revision)
        repo_id = snapshot.repo_id
        blobs = query.get("blobs", ["false"])[-1].lower() == "true"
        siblings: list[dict[str, Any]] = []
        for file in snapshot.files.values():
            sibling: dict[str, Any] = {"rfilename": file.path}
            if blobs:
                sibling.update(size=file.size, blobId=file.blob_id)
                if file.is_lfs:
                    sibling["lfs"] = _lfs_json(file, key="sha256")
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": snapshot.commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": snapshot.commit,
            "lastModified": LAST_MODIFIED,
            "createdAt": LAST_MODIFIED,
            "private": False,
            "gated": "manual" if self.token is not None else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if "model_index.json" in snapshot.files:
            info["library_name"] = "diffusers"
            info["tags"] = ["diffusers"]
        return info

    def _tree(
        self, snapshot: RepoSnapshot, revision: str, prefix: str, query: Mapping[str, list[str]]
    ) -> Any:
        self._check_revision(snapshot, revision)
        recursive = query.get("recursive", ["false"])[-1].lower() == "true"
        prefix = prefix.strip("/")
        base = f"{prefix}/" if prefix else ""
        folders: set[str] = set()
        for path in snapshot.files:
            parts = path.split("/")[:-1]
            folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        if prefix and prefix not in folders:
            if prefix in snapshot.files:
                raise _HubError(400, f"{prefix} is a file, not a directory")
            raise _HubError(404, f"{prefix} does not exist", {"X-Error-Code": "EntryNotFound"})

        def wanted(path: str) -> bool:
            if not path.startswith(base):
                return False
            return recursive or "/" not in path[len(base) :]

        entries: list[dict[str, Any]] = [
            {
                "type": "directory",
                "oid": hashlib.sha1(f"tree {snapshot.commit} {folder}".encode()).hexdigest(),
                "size": 0,
                "path": folder,
            }
            for folder in sorted(folders)
            if wanted(folder)
        ]
        for file in snapshot.files.values():
            if wanted(file.path):
                entry: dict[str, Any] = {
                    "type": "file",
                    "oid": file.blob_id,
                    "size": file.size,
                    "path": file.path,
                }
                if file.is_lfs:
                    entry["lfs"] = _lfs_json(file, key="oid")
                entries.append(entry)
        return entries

    def _cdn_file(self, sha256: str) -> HubFile | None:
        for repo_id in self.repos:
            for file in self.snapshot(repo_id).files.values():
                if file.sha256 == sha256:
                    return file
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, hub: FakeHub, *, cdn: bool) -> None:
        self.hub = hub
        self.cdn = cdn
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so the client keeps no connection to a stopped hub.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def _handle(self, *, head: bool) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        hub._record(HubRequest(self.command, unquote(split.path), headers))
        query = parse_qs(split.query)
        try:
            if self.server.cdn:
                self._serve_cdn(split.path, head=head)
            else:
                self._serve_hub(split.path, query, headers, head=head)
        except _HubError as error:
            body = json.dumps({"error": error.message}).encode()
            self._respond(
                error.status,
                {
                    "Content-Type": "application/json",
                    "X-Error-Message": error.message,
                    **error.headers,
                },
                body,
                head=head,
            )

    def _serve_hub(
        self, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], *, head: bool
    ) -> None:
        hub = self.server.hub
        match = _TREE.match(path) or _INFO.match(path) or _RESOLVE.match(path)
        if match is None:
            raise _HubError(404, "Not Found")
        # An unknown repo is reported before the token is checked.
        snapshot = hub._repo(unquote(match["repo"]))
        hub._check_auth(snapshot.repo_id, headers)
        revision = unquote(match["rev"] or "main")
        if match.re is _TREE:
            prefix = unquote(match["path"] or "")
            self._json(hub._tree(snapshot, revision, prefix, query), head=head)
        elif match.re is _INFO:
            self._json(hub._info(snapshot, revision, query), head=head)
        else:
            hub._check_revision(snapshot, revision)
            self._serve_resolve(snapshot, unquote(match["file"]), head=head)

    def _serve_resolve(self, snapshot: RepoSnapshot, filename: str, *, head: bool) -> None:
        commit_header = {"X-Repo-Commit": snapshot.commit}
        file = snapshot.files.get(filename)
        if file is None:
            raise _HubError(
                404, "Entry not found", {"X-Error-Code": "EntryNotFound", **commit_header}
            )
        if file.sha256 is not None:
            self._respond(
                302,
                {
                    **commit_header,
                    "ETag": f'"{file.blob_id}"',
                    "X-Linked-Etag": f'"{file.sha256}"',
                    "X-Linked-Size": str(file.size),
                    "Location": f"{self.server.hub.cdn_url}/cdn/{file.sha256}",
                },
                b"",
                head=head,
            )
            return
        self._serve_content(file, {**commit_header, "ETag": f'"{file.blob_id}"'}, head=head)

    def _serve_cdn(self, path: str, *, head: bool) -> None:
        match = _CDN.match(path)
        file = self.server.hub._cdn_file(match["sha256"]) if match else None
        if file is None or file.sha256 is None:
            raise _HubError(404, "NoSuchKey")
        self._serve_content(file, {"ETag": f'"{file.sha256}"'}, head=head)

    def _serve_content(self, file: HubFile, headers: dict[str, str], *, head: bool) -> None:
        data = file.local.read_bytes()
        size = len(data)
        headers = {**headers, "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        requested = self.headers.get("Range")
        match = _RANGE.match(requested.strip()) if requested else None
        if match is None:
            self._respond(200, headers, data, head=head)
            return
        start = int(match["start"])
        end = int(match["end"]) if match["end"] else size - 1
        if start >= size or end < start:
            self._respond(416, {**headers, "Content-Range": f"bytes */{size}"}, b"", head=head)
            return
        end = min(end, size - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._respond(206, headers, data[start : end + 1], head=head)

    def _json(self, payload: Any, *, head: bool) -> None:
        body = json.dumps(payload).encode()
        self._respond(200, {"Content-Type": "application/json; charset=utf-8"}, body, head=head)

    def _respond(self, status: int, headers: Mapping[str, str], body: bytes, *, head: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


def use_fake_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub, hf_home: Path) -> None:
    """Point this process's ``huggingface_hub`` at ``hub``, with its caches under ``hf_home``.

    ``huggingface_hub.constants`` reads ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_OFFLINE`` and
    friends once, at import time, so setting the environment variables is not enough in a
    process that has imported it already: this patches those constants (restored by
    ``monkeypatch``) and the environment (for anything that reads it later, e.g. the token).
    Calls without ``endpoint=`` then go to ``hub``.
    """
    from huggingface_hub import constants

    for name in INHERITED_HF_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in hub.environment(hf_home, base={}).items():
        monkeypatch.setenv(name, value)
    hub_cache = hf_home / "hub"
    patched: dict[str, object] = {
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(hf_home / ".check_for_update_done"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
    }
    for constant, patched_value in patched.items():
        if hasattr(constants, constant):
            monkeypatch.setattr(constants, constant, patched_value)


def _server_url(server: _Server | None) -> str:
    if server is None:
        raise RuntimeError("FakeHub is not running")
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_json(file: HubFile, *, key: str) -> dict[str, Any]:
    return {key: file.sha256, "size": file.size, "pointerSize": file.pointer_size}


def _no_proxy(current: str | None) -> str:
    hosts = [host for host in (current or "").split(",") if host.strip()]
    for host in ("127.0.0.1", "localhost"):
        if host not in hosts:
            hosts.append(host)
    return ",".join(hosts)
