"""deploy/kubernetes: the manifests of docs/kubernetes.md parse and say what the design says.

No Kubernetes runs here, so these are the checks that can: YAML, kinds, the fields each object
needs, and the parts of the worker protocol the manifests carry (docs/kubernetes.md lists what
an API server would check besides)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy/kubernetes"
KNOWN = {
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"), ("apps/v1", "Deployment"), ("batch/v1", "Job"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}


def documents():
    found = []
    for path in sorted(FOLDER.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append(document)
    return found


def by_kind(kind):
    return [d for d in documents() if d["kind"] == kind]


def test_every_object_has_a_known_kind_a_name_and_the_namespace():
    objects = documents()
    assert len(objects) >= 9
    for document in objects:
        assert (document["apiVersion"], document["kind"]) in KNOWN, document["kind"]
        assert document["metadata"]["name"]
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "batchform"


def test_the_workers_are_an_indexed_job_running_batchform_worker_with_the_secret_in_the_environment():
    (job,) = by_kind("Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]
    assert spec["backoffLimit"] == 0, "the coordinator replaces lost workers itself"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"] == ["worker"]
    secret_name = container["envFrom"][0]["secretRef"]["name"]
    (secret,) = by_kind("Secret")
    assert secret["metadata"]["name"] == secret_name
    assert set(secret["stringData"]) == {"BATCHFORM_COORDINATOR_URL", "BATCHFORM_WORKER_SECRET"}
    assert not any("SECRET" in word for word in container["args"])
    env = {item["name"]: item for item in container["env"]}
    assert env["BATCHFORM_WORKER_NODE"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    spread = pod["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert spread["labelSelector"]["matchLabels"] == labels


def test_the_coordinator_is_reachable_where_the_workers_are_told_to_go():
    (deployment,) = by_kind("Deployment")
    (service,) = by_kind("Service")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][0] == "serve"
    env = {item["name"]: item.get("value") for item in container["env"]}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert int(env["BATCHFORM_COORDINATOR_PORT"]) == ports["coordinator"]
    assert env["BATCHFORM_COORDINATOR_HOST"] == "0.0.0.0"
    assert env["BATCHFORM_COORDINATOR_ADVERTISE"].startswith(f"{service['metadata']['name']}.batchform.svc")
    service_ports = {port["name"]: port for port in service["spec"]["ports"]}
    assert service_ports["coordinator"]["targetPort"] == "coordinator"
    assert service_ports["api"]["port"] == ports["api"]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    (secret,) = by_kind("Secret")
    url = secret["stringData"]["BATCHFORM_COORDINATOR_URL"]
    assert url == f"http://{env['BATCHFORM_COORDINATOR_ADVERTISE']}:{service_ports['coordinator']['port']}"
    (binding,) = by_kind("RoleBinding")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    (role,) = by_kind("Role")
    jobs = next(rule for rule in role["rules"] if "jobs" in rule["resources"])
    assert {"create", "delete", "watch"} <= set(jobs["verbs"])
