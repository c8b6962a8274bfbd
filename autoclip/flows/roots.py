"""Where a run started from a deployment (REST API, UI, the HTTP service) may read and write on the
worker's disk. A caller who can reach the Prefect API must not point the worker at any local file or
make it write anywhere: local sources must lie under AUTOCLIP_SOURCE_ROOTS, and the output under
AUTOCLIP_OUTPUT_ROOT (a relative output lands there, never in the worker's working directory).
Links and s3:// / oss:// URIs are not paths on the worker and pass unchanged. Runs started in-process
(`autoclip run`) keep plain paths: the user is on their own machine."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from autoclip.config import Settings
from autoclip.errors import InputError
from autoclip.sources import is_remote
from autoclip.storage.outputs import is_object_uri


def started_from_deployment() -> bool:
    """This flow run itself was created from a deployment (a subflow of one, like the inbox scan's reel,
    was not: its caller already chose the paths)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def confine(sources: list[str], output: str, settings: Settings) -> tuple[list[str], str]:
    """Sources and output of a deployment run, resolved against the configured roots; InputError
    naming the first one that points elsewhere."""
    roots = settings.resolved_source_roots()
    confined = []
    for source in sources:
        if is_remote(source):
            confined.append(source)
            continue
        path = Path(source).expanduser()
        if not path.is_absolute():
            path = roots[0] / path
        pattern = glob.has_magic(source) and not path.exists()  # a file may have [ ] in its name
        resolved = Path(os.path.normpath(path)) if pattern else Path(os.path.realpath(path))
        if not any(_inside(resolved, root) for root in roots):
            raise InputError(source, f"is outside the source roots ({', '.join(map(str, roots))}; "
                             "AUTOCLIP_SOURCE_ROOTS) that runs from a deployment may read")
        confined.append(str(path))
    if is_object_uri(output):
        return confined, output
    root = settings.resolved_output_root()
    target = Path(output).expanduser()
    target = Path(os.path.normpath(target if target.is_absolute() else root / target))
    real_parent = Path(os.path.realpath(target.parent))
    if not _inside(target, root) or not _inside(real_parent, root):
        raise InputError(output, f"is outside the output root {root} (AUTOCLIP_OUTPUT_ROOT) that runs from a "
                         "deployment may write to")
    return confined, str(target)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
