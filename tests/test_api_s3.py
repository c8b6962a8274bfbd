"""The HTTP service with object storage: uploads go to an S3 prefix (moto on loopback), a process worker
configured for S3 reads them by URI and publishes the reel under AUTOCLIP_OUTPUT_URI/<task id>/, and the
task's download links are presigned URLs that serve the very object."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from tests.conftest import S3_KEYS
from tests.test_api import ROOT, Api, _prefect, _stop, clips  # noqa: F401  (clips is a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_service(prefect_server, s3_server, tmp_path_factory):
    import s3fs

    bucket = f"svc-{uuid.uuid4().hex[:10]}"
    fs = s3fs.S3FileSystem(key=S3_KEYS["AWS_ACCESS_KEY_ID"], secret=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
                           endpoint_url=s3_server, client_kwargs={"region_name": "eu-west-1"},
                           skip_instance_cache=True, use_listings_cache=False)
    fs.mkdir(bucket)
    root = tmp_path_factory.mktemp("s3-service")
    env = {**S3_KEYS, "AUTOCLIP_S3_ENDPOINT_URL": s3_server, "AUTOCLIP_S3_REGION": "eu-west-1",
           "AUTOCLIP_S3_ADDRESSING": "path", "AUTOCLIP_STORAGE_BACKEND": "s3",
           "AUTOCLIP_OUTPUT_URI": f"s3://{bucket}/reels", "AUTOCLIP_UPLOAD_URI": f"s3://{bucket}/uploads",
           "AUTOCLIP_API_DATA_DIR": str(root / "data"), "AUTOCLIP_HTTP_ALLOW": ""}
    assert _prefect("work-pool", "create", "auto-clip-process", "--type", "process", "--overwrite").returncode == 0
    deployed = _prefect("deploy", "--name", "auto-clip")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with (root / "worker.log").open("w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "auto-clip-process"],
                                  cwd=ROOT, env={**os.environ, **env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api = Api(env, root / "api.log")
    try:
        yield api, fs, bucket
    finally:
        api.stop()
        _stop(worker)


def test_upload_to_download_through_object_storage(s3_service, clips):
    api, fs, bucket = s3_service
    key = api.key("s3-user")
    started = time.monotonic()
    status, uploaded = api.upload(key, [(p.name, p.read_bytes()) for p in clips])
    assert status == 200 and len(uploaded["videos"]) == 3, uploaded
    stored = fs.find(f"{bucket}/uploads")
    assert len(stored) == 3 and not list((api.data_dir / "videos" / ".staging").iterdir())
    status, _, task = api.call("POST", "/api/v1/tasks/create", key, {
        "video_ids": [v["video_id"] for v in uploaded["videos"]], "duration": 6, "aspect": "1:1"})
    assert status == 200, task
    done = api.wait(key, task["task_id"], ("COMPLETED", "FAILED", "CRASHED"))
    assert done["state_type"] == "COMPLETED", done["errors"]
    assert done["clips"] and all(c["video_id"] for c in done["clips"])
    reel_key = f"{bucket}/reels/{task['task_id']}/reel.mp4"
    assert fs.exists(reel_key)
    url = done["downloads"]["reel"]
    assert url.startswith(api.env["AUTOCLIP_S3_ENDPOINT_URL"]) and "Signature=" in url  # presigned
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.read() == fs.cat_file(reel_key)
    print(f"\nS3: upload of 3 videos to a presigned reel: {time.monotonic() - started:.1f} s")
