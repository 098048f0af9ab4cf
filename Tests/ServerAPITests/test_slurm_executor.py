"""`batchform serve --executor slurm`: API jobs run on Slurm workers, one per instance and node.

Needs the 4-node Slurm cluster of `scripts/slurm-up` (CI starts it); skips elsewhere when
sbatch is missing."""
import json
import shutil
import subprocess

import pytest

from conftest import CI, Server, create_model, job_request, make_inputs, read_outputs, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("sbatch") is None and not CI, reason="needs Slurm's sbatch: SLURM_NODES=4 scripts/slurm-up"
)


def test_create_transform_job_with_three_instances_runs_on_three_nodes(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    server = Server(
        tmp_path / "data", tmp_path, args=["--executor", "slurm"],
        env={"BATCHFORM_SLURM_ARGS": "--time=10", "TEST_REPORT_DIR": str(reports)},
    ).start()
    try:
        client = server.client()
        expected = make_inputs(tmp_path / "in", files=6, lines=400)
        create_model(client, "slurm-model")
        request = job_request(
            "slurm-api-job", "slurm-model", tmp_path / "in", tmp_path / "out",
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 3},
        )
        client.create_transform_job(**request)
        described = wait_for(client, "slurm-api-job")
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        assert read_outputs(tmp_path / "out") == expected
        nodes = {json.loads(path.read_text()).get("SLURMD_NODENAME") for path in reports.glob("env-*.json")}
        assert len(nodes) == 3 and None not in nodes, nodes
        # `jobs describe` names each worker's node and state.
        shown = json.loads(server.cli("describe", "slurm-api-job").stdout)
        workers = shown["BatchformProgress"]["Instances"]
        assert {worker["Node"] for worker in workers} == nodes, workers
        assert all(worker["State"] in ("stopped", "finished") for worker in workers), workers
        # The workers' logs are the job's logs.
        logs = server.cli("logs", "slurm-api-job").stdout
        assert "worker-1 started on node" in logs and "==> worker-1 <==" in logs, logs[-2000:]
        queue = subprocess.run(["squeue", "-h", "-n", "batchform-slurm-api-job"], capture_output=True, text=True)
        assert queue.stdout.strip() == ""
    finally:
        server.stop()
