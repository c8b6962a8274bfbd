"""State hooks of the auto-clip flow: the per-run signed callback (the seed's `webhook_url`)."""

from __future__ import annotations

import logging

from pydantic_core import to_jsonable_python

from autoclip.callbacks import deliver
from autoclip.config import Settings, get_settings

log = logging.getLogger("autoclip.callbacks")


def signing_secret(settings: Settings) -> str | None:
    """The callback signing key: the Prefect Secret block named AUTOCLIP_WEBHOOK_SECRET_BLOCK, else
    AUTOCLIP_WEBHOOK_SECRET; with None the callback is refused unless AUTOCLIP_CALLBACK_ALLOW_UNSIGNED."""
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(settings.webhook_secret_block, _sync=True).get())
    except Exception:  # noqa: BLE001 - no such block (or no API): fall back to the environment
        return settings.webhook_secret.get_secret_value() if settings.webhook_secret else None


def callback_payload(flow_run, state) -> dict:
    parameters = {k: v for k, v in (flow_run.parameters or {}).items() if k != "webhook_url"}
    completed = state.is_completed()
    return {"event": "auto-clip.run.finished", "flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name,
            "state": state.name, "state_type": state.type.value, "message": state.message,
            "reel": state.message if completed else None, "parameters": to_jsonable_python(parameters)}


def send_callback(flow, flow_run, state) -> None:
    """POST the run's outcome to its `webhook_url`. Never raises: a callback that cannot be delivered is
    logged and recorded as an artifact of the run, and the run keeps its state."""
    url = (flow_run.parameters or {}).get("webhook_url")
    if not url:
        return
    try:
        settings = get_settings()
        delivery = deliver(url, callback_payload(flow_run, state), signing_secret(settings), settings)
        if delivery.delivered:
            log.info("callback to %s delivered (%s, %d attempt(s))", delivery.url, delivery.detail, delivery.attempts)
        else:
            log.error("callback to %s NOT delivered after %d attempt(s): %s", delivery.url, delivery.attempts,
                      delivery.detail)
        _record(flow_run.id, delivery)
    except Exception as exc:  # noqa: BLE001 - a hook must never change the run's outcome
        log.error("callback hook failed: %s", exc)


def _record(flow_run_id, delivery) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    status = "delivered" if delivery.delivered else "NOT delivered"
    text = (f"# Callback {status}\n\n- to: `{delivery.url}`\n- attempts: {delivery.attempts}\n"
            f"- result: {delivery.detail}\n")
    with get_client(sync_client=True) as client:
        client.create_artifact(ArtifactCreate(key="auto-clip-callback", type="markdown", data=text,
                                              description=f"per-run callback {status}",
                                              flow_run_id=flow_run_id))
