"""How the flow meets provider faults (issue 11), kept out of the flow's body: the key checked before
any work, the run's provider wait budget, a refused key stopping the run, and a degraded analysis (made
with a fallback) never served from the task cache.

Why re-run rather than "do not cache": Prefect persists a task's result and cache record when the task
completes, whatever the result says, and the cache key is computed before the task runs. So the flow
looks at what the cache served: a degraded analysis is analysed again with `refresh_cache=True`, which
overwrites the record; the better provider is tried again, and the plan's notes say it was.
"""

from __future__ import annotations

from prefect.runtime import flow_run
from prefect.states import Completed

from autoclip.errors import ProviderAuthError
from autoclip.models import VideoAnalysis
from autoclip.providers import preflight
from autoclip.retry import ProviderBudget, budget_for_run


def run_budget(settings) -> ProviderBudget:
    """The provider wait budget of the current flow run, shared by its tasks in this process."""
    return budget_for_run(flow_run.get_id(), settings.provider_budget)


def check_keys() -> None:
    """One free request per provider that needs a key; a refused key raises ProviderAuthError now."""
    from autoclip.tasks.stages import run_settings

    preflight(*run_settings())


def raise_if_refused_key(state) -> None:
    """A task that failed because the service refused the key stops the run: every other video would
    meet the same refusal, and 'every video failed analysis' would hide the cause."""
    if state.is_final():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, ProviderAuthError):
            raise exc


def redo_if_degraded(task, video, state, logger, **kwargs):
    """The final state to use for `video`: when the cache served an analysis made with a fallback, the
    analysis runs again (refreshing the cache record) and its notes say so."""
    if not (state.is_completed() and state.name == "Cached"):
        return state
    cached: VideoAnalysis = state.result()
    if not cached.degraded:
        return state
    why = "; ".join(cached.notes) or "a provider failed"
    logger.warning("analysing %s again: its cached analysis was made with a fallback (%s)", video.name, why)
    future = task.with_options(refresh_cache=True).submit(video, **kwargs)
    future.wait()
    again = future.state
    if not again.is_completed():
        return again
    analysis: VideoAnalysis = again.result()
    note = ("analysed again: the cached analysis was made with a fallback; "
            + ("the better provider worked this time" if not analysis.degraded else "it fell back again"))
    return Completed(data=analysis.model_copy(update={"notes": [note] + analysis.notes}))
