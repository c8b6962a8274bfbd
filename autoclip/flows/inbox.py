"""The inbox flow: a scheduled scan of a folder or object prefix that makes one reel of whatever is new.

    scan:  [lock] list pending -> claim [unlock] -> auto-clip subflow -> [lock] mark done/failed [unlock]

The lock is a Prefect global concurrency limit of 1 per inbox (`autoclip-inbox-<hash>`), created here when
missing, so overlapping scans (a slow run and the next scheduled one, or two workers) never claim the same
video. The ledger beside the inbox (see `autoclip.sources.inbox`) remembers what was done; a crashed scan's
claims expire after `claim_timeout` seconds.

Failed videos are not retried by later scans. To retry them: run a scan with `retry_failed=True`, or
replace/touch the file (a new size or modification time makes it a new video).
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import flow_run
from prefect.states import Completed

from autoclip.blocks import resolve_storage
from autoclip.config import ClipOptions, get_settings
from autoclip.errors import is_source_fault
from autoclip.flows.auto_clip import auto_clip
from autoclip.sources import inbox as ib

LOCK_TIMEOUT = 600.0  # seconds to wait for another scan's ledger update (each takes well under a second)


def ensure_lock(name: str) -> None:
    """Make sure the global concurrency limit `name` exists, is active and has exactly one slot."""
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1, active=True))
            except ObjectAlreadyExists:  # another scan created it first
                pass
            return
        if limit.limit != 1 or not limit.active:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1, active=True))


@contextmanager
def inbox_lock(inbox: str):
    """Hold the inbox's lock (strict: a missing limit is an error, never a silent no-op)."""
    name = ib.lock_name(inbox)
    ensure_lock(name)
    with concurrency(name, occupy=1, timeout_seconds=LOCK_TIMEOUT, strict=True):
        yield


def _failure(state) -> str:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as error:  # noqa: BLE001 - the result itself may be unreadable
        exc = error
    if isinstance(exc, BaseException):
        return ib.describe_error(exc)
    return state.message or state.name


def _videos_to_blame(state) -> bool:
    """Whether a failed run failed because of its videos (every one unusable), not the machine."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - an unreadable result says nothing against the videos
        return False
    return isinstance(exc, BaseException) and is_source_fault(exc)


@flow(name="auto-clip-inbox", description="Scan an inbox folder or object prefix and make one reel of the new videos.")
def auto_clip_inbox(inbox: str, output_prefix: str = "inbox-reel", options: ClipOptions | None = None,
                    min_videos: int = 1, settle_seconds: float = 30.0, retry_failed: bool = False,
                    claim_timeout: float = ib.CLAIM_TIMEOUT, webhook_url: str | None = None) -> ib.InboxScan:
    """Make one reel of the videos that arrived in `inbox` since the last scan.

    Args:
        inbox: a local folder, or an s3:// / oss:// prefix (a trailing '/' is added).
        output_prefix: the reel is `<output_prefix>-<UTC time>-<id>.mp4`, in `<inbox>/.autoclip/reels/`
            (or `<prefix>.autoclip/reels/` in the bucket) unless this is an absolute path or a URI.
        options: what reel to make (see ClipOptions).
        min_videos: wait until at least this many new videos are there.
        settle_seconds: local files changed more recently than this may still be copying in; a later scan
            takes them.
        retry_failed: also take the videos earlier scans marked failed.
        claim_timeout: seconds after which a claim by a scan that never finished expires.
        webhook_url: passed to the auto-clip run.
    """
    logger = get_run_logger()
    settings = resolve_storage(get_settings())  # the same object-store credentials as the run's
    inbox = ib.normalize(inbox)
    run_id = str(flow_run.get_id() or uuid.uuid4())
    scan = ib.InboxScan(inbox=inbox, message="")
    if not ib.is_object_inbox(inbox) and not Path(inbox).exists():
        # a fresh install's scheduled scan: make the folder to drop videos into, not a failure every 15 min
        Path(inbox).mkdir(parents=True, exist_ok=True)
        scan.message = f"created the inbox {inbox}: nothing to do yet"
        logger.info(scan.message)
        return Completed(message=scan.message, data=scan)

    with inbox_lock(inbox):
        found = ib.pending(inbox, settings, claim_timeout=claim_timeout, retry_failed=retry_failed)
        ready, settling = ib.settled(found, settle_seconds)
        scan.waiting = [i.source for i in settling]
        if not ready or len(ready) < min_videos:
            claimed, abandoned = [], {}
        else:
            claimed, abandoned = ib.claim(inbox, ready, run_id, settings, claim_timeout=claim_timeout,
                                          retry_failed=retry_failed)
    scan.failed.update(abandoned)
    for source, reason in abandoned.items():
        logger.warning("gave up on %s: %s", source, reason)
    if not claimed:
        if ready and len(ready) < min_videos:
            scan.waiting = [i.source for i in ready] + scan.waiting
            scan.message = f"waiting: {len(ready)} new video(s), fewer than min_videos={min_videos}"
        else:
            scan.message = "nothing new" + (f" ({len(settling)} still being written)" if settling else "")
        logger.info("%s: %s", inbox, scan.message)
        return Completed(message=scan.message, data=scan)

    logger.info("claimed %d video(s): %s", len(claimed), ", ".join(i.source for i in claimed))
    now = datetime.now(timezone.utc)
    output = ib.reel_location(inbox, output_prefix, f"{now:%Y%m%dT%H%M%SZ}-{run_id[:8]}")
    try:
        state = auto_clip(sources=[i.source for i in claimed], options=options, output=output,
                          webhook_url=webhook_url, return_state=True)
    except BaseException as exc:  # the subflow could not even start: give the videos back as failed
        with inbox_lock(inbox):
            ib.mark_failed(inbox, claimed, run_id, settings, ib.describe_error(exc))
        raise
    scan.run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None

    if state.is_completed():
        result = state.result()
        rejected = {r.source: f"{r.stage}: {r.reason}" for r in result.rejected}
        used = [i for i in claimed if i.source not in rejected]
        left_out = [i for i in claimed if i.source in rejected]
        with inbox_lock(inbox):
            ib.mark_done(inbox, used, run_id, settings, reel=result.reel)
            if left_out:
                ib.mark_failed(inbox, left_out, run_id, settings, rejected)
        scan.processed = [i.source for i in used]
        scan.failed.update({i.source: rejected[i.source] for i in left_out})
        scan.reel, scan.reel_url = result.reel, result.reel_url
        scan.message = f"made {result.reel} from {len(used)} new video(s)" + (
            f", {len(left_out)} left out" if left_out else "")
    elif _videos_to_blame(state):
        reason = _failure(state)
        with inbox_lock(inbox):
            ib.mark_failed(inbox, claimed, run_id, settings, reason)
        scan.failed.update({i.source: reason for i in claimed})
        scan.message = f"the run failed for {len(claimed)} video(s): {reason} (retry with retry_failed=True)"
        logger.error("%s", scan.message)
    else:  # the machine failed (disk, killed tool, storage, keys): the videos are tried again next scan
        reason = _failure(state)
        with inbox_lock(inbox):
            ib.release(inbox, claimed, run_id, settings, reason)
        scan.waiting = [i.source for i in claimed] + scan.waiting
        scan.message = f"the run failed, not because of its {len(claimed)} video(s): {reason}; the next scan tries again"
        logger.error("%s", scan.message)
    logger.info("%s", scan.message)
    return Completed(message=scan.message, data=scan)
