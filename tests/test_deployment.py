"""prefect.yaml is valid: the main deployment deploys to a real server and points at the flow."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _prefect(*args):
    return subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_main_deployment_deploys(prefect_server):
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    main = next(d for d in spec["deployments"] if d["name"] == "auto-clip")
    from prefect.flows import load_flow_from_entrypoint

    assert load_flow_from_entrypoint(str(ROOT / main["entrypoint"])).name == "auto-clip"
    pool = _prefect("work-pool", "create", main["work_pool"]["name"], "--type", "process", "--overwrite")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deployed = _prefect("deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("auto-clip/auto-clip")
    assert deployment.work_pool_name == "auto-clip-process"
    assert deployment.parameters["options"]["target_duration"] == 60
    properties = deployment.parameter_openapi_schema["properties"]
    assert "options" in properties and "webhook_url" in properties
    assert "signed JSON POST" in properties["webhook_url"]["description"]  # from the flow's docstring

    with get_client(sync_client=True) as client:
        inbox = client.read_deployment_by_name("auto-clip-inbox/auto-clip-inbox")
    (schedule,) = inbox.schedules
    assert schedule.schedule.cron == "*/15 * * * *" and schedule.schedule.timezone == "Asia/Shanghai"
    assert inbox.parameters["inbox"] == "inbox/"
