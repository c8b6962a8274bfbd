"""The FastAPI app: the original paths under /api/v1, on Prefect.

Requests name video ids, never paths. Each API key sees only its own videos and tasks (a task of another
key is a 404, not a 403: its existence is not revealed). A task is a flow run of the `auto-clip`
deployment started through the Prefect API with the videos' storage URIs; the output always lands under
the configured output root (or AUTOCLIP_OUTPUT_URI) in a folder named after the task.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from autoclip.api.store import ApiKey, Store, Task, Video
from autoclip.api.uploads import UploadReceiver
from autoclip.config import ClipOptions, Settings, get_settings
from autoclip.errors import AutoclipError, InputError

log = logging.getLogger("autoclip.api")
STATIC = Path(__file__).resolve().parent / "static"
OUTPUT_KINDS = {"reel": ".mp4", "plan": ".plan.json", "subtitles": ".srt"}
LINK_SECONDS = 6 * 3600


# --- shapes ---------------------------------------------------------------------------------------


class VideoOut(BaseModel):
    video_id: str
    filename: str
    size: int = Field(description="bytes")
    duration: float = Field(description="seconds")
    codec: str


class UploadItem(BaseModel):
    filename: str
    ok: bool
    video: VideoOut | None = None
    error: str | None = None


class UploadOut(BaseModel):
    videos: list[VideoOut]
    results: list[UploadItem] = Field(description="one entry per file, in request order")


class ImportUrlIn(BaseModel):
    url: str = Field(description="http(s) link to a video file")


class TaskIn(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    video_ids: list[str] = Field(min_length=1, max_length=100)
    duration: float = Field(60.0, gt=0, le=3600, description="target reel length, seconds")
    aspect: str = Field("16:9", description="16:9, 9:16, 1:1 ... (long side 1280)")
    webhook_url: str | None = Field(None, description="gets a signed JSON POST when the run ends")


class ClipOut(BaseModel):
    video_id: str | None
    filename: str
    start: float
    end: float
    duration: float
    reason: str


class LeftOut(BaseModel):
    video_id: str | None
    filename: str
    stage: str
    reason: str


class TaskOut(BaseModel):
    task_id: str
    state: str
    state_type: str
    percent: float
    stage: str
    created: float
    video_ids: list[str]
    title: str | None = None
    clips: list[ClipOut] = []
    left_out: list[LeftOut] = Field([], description="videos not in the reel: refused, or no moment of them "
                                    "fitted the plan (stage 'planning')")
    notes: list[str] = Field([], description="what the planner wants said: fallbacks, sources left out")
    errors: list[str] = []
    downloads: dict[str, str] = Field({}, description="reel, plan, subtitles -> URL (signed, time-limited)")


class TaskPage(BaseModel):
    tasks: list[TaskOut]
    page: int
    page_size: int
    total: int


# --- the app --------------------------------------------------------------------------------------


class RateLimiter:
    """At most `per_minute` requests per key in any sliding minute (in memory, per API process)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.seen: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def retry_after(self, key_id: str) -> float | None:
        now = time.monotonic()
        seen = self.seen[key_id]
        while seen and seen[0] <= now - 60:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return 60 - (now - seen[0])
        seen.append(now)
        return None


def _finite(value):
    """`value` with every NaN or infinite float written as text, so it can be sent as JSON."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.storage_backend == "hybrid":
        raise AutoclipError("the API writes to one place per task: set AUTOCLIP_STORAGE_BACKEND to local, "
                            "s3 or oss (not hybrid)")
    store = Store(settings.api_data_dir)
    limiter = RateLimiter(settings.api_rate_limit)
    signing_key = store.signing_key()
    app = FastAPI(title="auto-clip", version="1", docs_url="/api/v1/docs", redoc_url="/api/v1/redoc",
                  openapi_url="/api/v1/openapi.json",
                  description="Upload videos, make a highlight reel of them, follow and download it. "
                              "Send the API key as `Authorization: Bearer <key>`.")
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with what was wrong, even when the bad value is NaN or infinite (JSON cannot carry those,
        so echoing them back failed as a 500)."""
        return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})

    if settings.api_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.api_cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])

    def caller(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key")
        key = store.authenticate(secret) if secret else None
        if key is None:
            raise HTTPException(401, "a valid API key is needed (Authorization: Bearer <key>)",
                                headers={"WWW-Authenticate": "Bearer"})
        wait = limiter.retry_after(key.id)
        if wait is not None:
            raise HTTPException(429, f"more than {settings.api_rate_limit} requests a minute "
                                "(AUTOCLIP_API_RATE_LIMIT)", headers={"Retry-After": str(int(wait) + 1)})
        return key

    uploads = settings.api_data_dir.expanduser() / "videos"
    staging = uploads / ".staging"

    def keep(part, key: ApiKey) -> VideoOut:
        """Probe a fully received file and move it to storage; InputError when it is no usable video."""
        from autoclip.media.probe import probe

        try:
            info = probe(part.staging, name=part.filename)
            video_id = uuid.uuid4().hex[:16]
            name = f"{video_id}.{part.extension}"
            if settings.upload_uri:
                from autoclip.storage.objects import split_uri, upload

                uri = f"{settings.upload_uri.rstrip('/')}/{key.id}/{name}"
                upload(part.staging, uri, settings.object_store(split_uri(uri)[0]))
                part.staging.unlink(missing_ok=True)
            else:
                target = uploads / key.id / name
                target.parent.mkdir(parents=True, exist_ok=True)
                part.staging.replace(target)
                uri = str(target.resolve())
        finally:
            part.staging.unlink(missing_ok=True)
        video = Video(id=video_id, key_id=key.id, uri=uri, name=part.filename, size=part.size,
                      duration=round(info.duration, 3), codec=info.video_codec, created=time.time())
        store.add_video(video)
        return _video_out(video)

    @app.post("/api/v1/videos/upload", response_model=UploadOut, tags=["videos"],
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "properties": {"files": {"type": "array", "items": {
                      "type": "string", "format": "binary"}}}}}}}})
    async def upload_videos(request: Request, key: ApiKey = Depends(caller)):
        """Upload several videos in one multipart request (field `files`). Each file is streamed to
        storage with the size cap and format check applied as it arrives, then probed. A bad file gets
        its own error; the others are kept."""
        cap = settings.max_video_size * settings.api_max_files + 1024 * 1024
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            return _abort(413, f"the request announces {declared} bytes, more than "
                          f"{settings.api_max_files} files of AUTOCLIP_MAX_VIDEO_SIZE")
        try:
            receiver = UploadReceiver.for_request(request.headers.get("content-type", ""), staging_dir=staging,
                                                  max_size=settings.max_video_size,
                                                  formats=settings.supported_formats,
                                                  max_files=settings.api_max_files)
        except ValueError as exc:
            raise HTTPException(415, str(exc)) from None
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > cap:
                    receiver.discard()
                    return _abort(413, "the request is larger than "
                                  f"{settings.api_max_files} files of AUTOCLIP_MAX_VIDEO_SIZE")
                receiver.write(chunk)
            receiver.finish()
        except BaseException:
            receiver.discard()
            raise
        results = []
        try:
            for part in receiver.parts:
                if part.error:
                    results.append(UploadItem(filename=part.filename, ok=False, error=part.error))
                    continue
                try:
                    video = await run_in_threadpool(keep, part, key)
                    results.append(UploadItem(filename=part.filename, ok=True, video=video))
                except AutoclipError as exc:
                    reason = exc.reason if isinstance(exc, InputError) else str(exc)
                    results.append(UploadItem(filename=part.filename, ok=False, error=reason))
        finally:
            receiver.discard()  # a fault that still escapes leaves no staging file of the files after it
        if not receiver.parts:
            raise HTTPException(400, "no files in the request (send them in the multipart field 'files')")
        return UploadOut(videos=[r.video for r in results if r.video], results=results)

    @app.post("/api/v1/videos/import-url", response_model=VideoOut, tags=["videos"])
    async def import_url(body: ImportUrlIn, key: ApiKey = Depends(caller)):
        """Download a video from an http(s) link with the guarded downloader (internal addresses refused,
        size cap, whole-download deadline), then probe and keep it like an upload."""
        from autoclip.api.uploads import Part
        from autoclip.sources.http import fetch_http

        folder = staging / uuid.uuid4().hex
        try:
            path = await run_in_threadpool(fetch_http, body.url, folder, settings)
            part = Part(filename=path.name, extension=path.suffix.lower().lstrip("."), staging=path,
                        size=path.stat().st_size)
            return await run_in_threadpool(keep, part, key)
        except AutoclipError as exc:
            raise HTTPException(400, exc.reason if isinstance(exc, InputError) else str(exc)) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/api/v1/tasks/create", response_model=TaskOut, tags=["tasks"])
    async def create_task(body: TaskIn, key: ApiKey = Depends(caller)):
        """Start a reel of the given videos: a run of the auto-clip deployment, done by a worker."""
        videos = [store.video(key.id, v) for v in body.video_ids]
        unknown = [v for v, found in zip(body.video_ids, videos) if found is None]
        if unknown:
            raise HTTPException(404, f"no such video: {', '.join(unknown)}")
        try:
            options = ClipOptions.for_aspect(body.aspect, target_duration=body.duration)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if body.webhook_url:
            from autoclip.sources.http import vet_url

            try:
                vet_url(body.webhook_url, settings)
            except InputError as exc:
                raise HTTPException(400, f"webhook_url {exc.reason}") from None
        task_id = uuid.uuid4().hex[:16]
        output = _output_for(task_id, settings)
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            try:
                deployment = await client.read_deployment_by_name(settings.api_deployment)
            except Exception as exc:  # noqa: BLE001 - ObjectNotFound or the API is down: say which
                raise HTTPException(503, f"cannot find the deployment {settings.api_deployment!r} on the "
                                    f"Prefect API ({type(exc).__name__}); run `prefect deploy --all`") from None
            run = await client.create_flow_run_from_deployment(
                deployment.id, name=f"api-{task_id}", tags=["auto-clip", "api", f"api-key-{key.id}"],
                parameters={"sources": [v.uri for v in videos], "output": output,
                            "options": options.model_dump(mode="json"), "webhook_url": body.webhook_url})
        task = Task(id=task_id, key_id=key.id, flow_run_id=str(run.id), output=output,
                    video_ids=json.dumps(body.video_ids), created=time.time())
        store.add_task(task)
        return await _describe(task)

    @app.get("/api/v1/tasks/{task_id}", response_model=TaskOut, tags=["tasks"])
    async def get_task(task_id: str, key: ApiKey = Depends(caller)):
        """State, percent and stage, the clip table with reasons, what was left out, errors, downloads."""
        return await _describe(_own_task(key, task_id))

    @app.post("/api/v1/tasks/{task_id}/cancel", response_model=TaskOut, tags=["tasks"])
    async def cancel_task(task_id: str, key: ApiKey = Depends(caller)):
        """Cancel a task: a waiting run is cancelled at once, a running one is stopped by its worker."""
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled, Cancelling

        task = _own_task(key, task_id)
        async with get_client() as client:
            run = await client.read_flow_run(uuid.UUID(task.flow_run_id))
            if run.state and not run.state.is_final():
                state = Cancelling() if run.state.is_running() else Cancelled(message="cancelled through the API")
                await client.set_flow_run_state(run.id, state, force=True)
        return await _describe(task)

    @app.get("/api/v1/tasks", response_model=TaskPage, tags=["tasks"])
    async def list_tasks(page: int = Query(1, ge=1), page_size: int = Query(20, ge=1, le=100),
                         key: ApiKey = Depends(caller)):
        """This key's tasks, newest first."""
        tasks, total = store.tasks(key.id, (page - 1) * page_size, page_size)
        described = await asyncio.gather(*(_describe(t, details=False) for t in tasks))
        return TaskPage(tasks=list(described), page=page, page_size=page_size, total=total)

    @app.api_route("/api/v1/files/{task_id}/{kind}", methods=["GET", "HEAD"], tags=["tasks"])
    async def download(task_id: str, kind: Literal["reel", "plan", "subtitles"], expires: int, sig: str):
        """A task's output from local storage (Range requests supported; HEAD for its size and type). The
        link comes signed and time-limited in GET /tasks/{id}, so a <video> element or a plain browser can
        use it."""
        if expires < time.time() or not hmac.compare_digest(sig, _signature(signing_key, task_id, kind, expires)):
            raise HTTPException(403, "the link is invalid or has expired; ask GET /api/v1/tasks/{id} for a new one")
        task = store.task_by_id(task_id)
        if task is None:
            raise HTTPException(404, "no such task")
        path = _sibling(Path(task.output), kind)
        if not path.is_file():
            raise HTTPException(404, f"the task has no {kind} (yet)")
        media = {"reel": "video/mp4", "plan": "application/json", "subtitles": "application/x-subrip"}[kind]
        return FileResponse(path, media_type=media, filename=f"{task_id}-{path.name}")

    def _own_task(key: ApiKey, task_id: str) -> Task:
        task = store.task(key.id, task_id)
        if task is None:
            raise HTTPException(404, f"no such task: {task_id}")
        return task

    async def _describe(task: Task, details: bool = True) -> TaskOut:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        run_id = uuid.UUID(task.flow_run_id)
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        state = run.state
        out = TaskOut(task_id=task.id, state=state.name if state else "Unknown",
                      state_type=state.type.value if state else "UNKNOWN", percent=0.0, stage="waiting for a worker",
                      created=task.created, video_ids=json.loads(task.video_ids))
        progress = next((a for a in artifacts if a.key == "auto-clip-progress"), None)
        if progress is not None:
            out.percent = float(progress.data or 0)
            out.stage = _shown_stage(progress.description or "", task, store)
        if state and state.is_final() and not state.is_completed():
            out.stage = state.name.lower()
            out.errors.append(state.message or state.name)
        if not details or not state or not state.is_completed():
            return out
        out.percent = 100.0
        try:
            plan = json.loads(await run_in_threadpool(_read_text, _sibling_uri(task.output, "plan"), settings))
        except Exception as exc:  # noqa: BLE001 - the outputs may have been removed since
            out.errors.append(f"cannot read the plan: {exc}")
            return out
        by_uri = {}
        for video_id in out.video_ids:
            video = store.video(task.key_id, video_id)
            if video:
                by_uri[video.uri] = video
        out.title = plan.get("theme", {}).get("title")
        for clip in plan.get("clips", []):
            video = by_uri.get(clip.get("source"))
            out.clips.append(ClipOut(video_id=video.id if video else None, filename=video.name if video else
                                     clip.get("name", ""), start=clip["start"], end=clip["end"],
                                     duration=round(clip["end"] - clip["start"], 3), reason=clip.get("reason", "")))
        stored = {Path(uri).name: video.name for uri, video in by_uri.items()}  # names as the user gave them

        def in_user_words(text: str) -> str:
            for name, original in stored.items():
                text = text.replace(name, original)
            return text

        out.title = in_user_words(out.title or "") or None
        for clip in out.clips:
            clip.reason = in_user_words(clip.reason)
        out.notes = [in_user_words(n) for n in plan.get("planner", {}).get("notes", [])]
        for rejected in plan.get("rejected", []):
            video = by_uri.get(rejected.get("source"))
            out.left_out.append(LeftOut(video_id=video.id if video else None,
                                        filename=video.name if video else Path(rejected["source"]).name,
                                        stage=rejected["stage"], reason=in_user_words(rejected["reason"])))
        shown = {c.video_id for c in out.clips} | {x.video_id for x in out.left_out}
        for uri, video in by_uri.items():  # in no clip and not refused: the plan left it out
            if video.id not in shown:
                said = next((n for n in out.notes if video.name in n), "no moment of it fitted the plan")
                out.left_out.append(LeftOut(video_id=video.id, filename=video.name, stage="planning", reason=said))
        out.downloads = await run_in_threadpool(_links, task)
        return out

    def _links(task: Task) -> dict[str, str]:
        from autoclip.storage.outputs import is_object_uri

        links = {}
        for kind in OUTPUT_KINDS:
            uri = _sibling_uri(task.output, kind)
            if is_object_uri(uri):
                from autoclip.storage.objects import presign, split_uri

                config = settings.object_store(split_uri(uri)[0])
                fs = config.filesystem()
                if fs.exists(uri.split("://", 1)[1]):
                    links[kind] = presign(uri, config, settings.presign_expiry)
            elif Path(uri).is_file():
                expires = int(time.time()) + LINK_SECONDS
                links[kind] = (f"/api/v1/files/{task.id}/{kind}?expires={expires}"
                               f"&sig={_signature(signing_key, task.id, kind, expires)}")
        return links

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def _video_out(video: Video) -> VideoOut:
    return VideoOut(video_id=video.id, filename=video.name, size=video.size, duration=video.duration,
                    codec=video.codec)


def _shown_stage(description: str, task: Task, store: Store) -> str:
    """The run's stage in the caller's words: upload names instead of storage names, no worker paths."""
    stage = description.removeprefix("auto-clip: ")
    if task.output in stage:
        stage = stage.replace(task.output, "the reel")
    for video_id in json.loads(task.video_ids):
        video = store.video(task.key_id, video_id)
        if video:
            stage = stage.replace(video.uri.rsplit("/", 1)[-1], video.name)
    return stage


def _abort(status: int, detail: str) -> JSONResponse:
    """Answer before the body is read to its end and close the connection: the client stops sending."""
    return JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})


def _signature(key: bytes, task_id: str, kind: str, expires: int) -> str:
    return hmac.new(key, f"{task_id}/{kind}/{expires}".encode(), hashlib.sha256).hexdigest()


def _output_for(task_id: str, settings: Settings) -> str:
    """Where a task's reel goes: under AUTOCLIP_OUTPUT_URI for object storage, else under the output root."""
    if settings.storage_backend in ("s3", "oss") and settings.output_uri:
        return f"{settings.output_uri.rstrip('/')}/{task_id}/reel.mp4"
    return str(settings.resolved_output_root() / task_id / "reel.mp4")


def _sibling(path: Path, kind: str) -> Path:
    return path.with_suffix(OUTPUT_KINDS[kind])


def _sibling_uri(output: str, kind: str) -> str:
    stem = output.rsplit(".", 1)[0]
    return stem + OUTPUT_KINDS[kind]


def _read_text(uri: str, settings: Settings) -> str:
    from autoclip.storage.outputs import is_object_uri

    if is_object_uri(uri):
        from autoclip.storage.objects import split_uri

        fs = settings.object_store(split_uri(uri)[0]).filesystem()
        with fs.open(uri.split("://", 1)[1], "rb") as handle:
            return handle.read().decode("utf-8")
    return Path(uri).read_text(encoding="utf-8")
