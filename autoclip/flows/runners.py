"""Task runners for the flows: threads in the flow's process (default), or Dask to spread the per-video
work (ingest, analysis) over worker processes or machines.

    auto_clip.with_options(task_runner=task_runner("dask", address="tcp://10.0.0.5:8786"))

Dask workers run the tasks with their own environment: they need the same AUTOCLIP_* settings,
PREFECT_API_URL, credentials, and - because ingest and analysis exchange local file paths - the same
AUTOCLIP_WORKSPACE_DIR on a file system every worker and the flow's process share (automatic for the
LocalCluster made here, whose workers inherit this process's environment).
"""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

RUNNERS = ("thread", "dask")


def task_runner(name: str = "thread", address: str | None = None, workers: int | None = None):
    """A Prefect task runner.

    Args:
        name: "thread" (a ThreadPoolTaskRunner with `workers` threads, default Prefect's) or "dask".
        address: with "dask", the scheduler of an existing cluster (e.g. "tcp://10.0.0.5:8786");
            without it a LocalCluster is started for the run and stopped after it.
        workers: threads for "thread"; worker processes for a local Dask cluster (default 2, one thread
            each, so each video's analysis has a process of its own).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if name == "thread":
        if address:
            raise ValueError("--dask-address needs the dask task runner")
        return ThreadPoolTaskRunner(max_workers=workers)
    if name != "dask":
        raise ValueError(f"unknown task runner {name!r} (choose from: {', '.join(RUNNERS)})")
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ValueError("the dask task runner needs prefect-dask: pip install 'auto-clip[dask]'") from exc
    if address:
        if workers is not None:
            raise ValueError("workers applies to a local Dask cluster, not to one joined by address")
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers or 2, "processes": True, "threads_per_worker": 1,
        "host": "127.0.0.1",            # scheduler and workers listen on loopback only
        "dashboard_address": None,      # no dashboard (it would need bokeh and another port)
    })
