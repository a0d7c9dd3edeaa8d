"""The scheduling assets parse, and the CronJob's RBAC covers every API call the
Kubernetes backend and the kube probe make -- derived from the code, so a new call
without its rule (or a rule nothing needs) fails here before it fails in a cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).parents[2]
CRONJOB = REPO / "deploy/kind/gameday-cronjob.yaml"
WORKFLOW = REPO / ".github/workflows/gameday.yml"
BACKEND = [
    *sorted((REPO / "src/ledgerdrill/platforms/kubernetes").glob("*.py")),
    REPO / "src/ledgerdrill/probes/kube.py",
]
CALL = re.compile(r"\b(core|apps|custom)\.([a-z_]+)\b")
VERBS = {"list": "list", "read": "get", "get": "get", "create": "create",
         "delete": "delete", "patch": "patch", "replace": "update"}  # fmt: skip
# client method (after its verb) -> (API group, resource, cluster-wide?)
RESOURCES = {
    "node": ("", "nodes", True),
    "pod_for_all_namespaces": ("", "pods", True),
    "namespaced_pod": ("", "pods", False),
    "namespaced_pod_eviction": ("", "pods/eviction", True),  # a drain evicts anywhere
    "namespaced_secret": ("", "secrets", False),
    "namespaced_deployment": ("apps", "deployments", False),
    "namespaced_replica_set": ("apps", "replicasets", False),
    "namespaced_custom_object": ("postgresql.cnpg.io", "clusters", False),
    "namespaced_custom_object_status": ("postgresql.cnpg.io", "clusters/status", False),
}
# a WebSocket exec is a GET, authorised as ``get pods/exec`` and, since Kubernetes 1.35
# (feature gate AuthorizePodWebsocketUpgradeCreatePermission, KEP 4006, kubernetes PR
# 134577), also as ``create pods/exec``: both are needed
CONNECT = {"connect_get_namespaced_pod_exec": [("", "pods/exec", "get", False),
                                               ("", "pods/exec", "create", False)]}  # fmt: skip
# the kube probe lists and then watches what it samples
WATCHED = {("", "nodes", True), ("apps", "deployments", False), ("", "pods", False)}
# a crash deletes every pod on the node, in any namespace
CLUSTER_WIDE_DELETE = {"delete_namespaced_pod"}

Grant = tuple[str, str, str, bool]  # group, resource, verb, cluster-wide


def required_grants() -> set[Grant]:
    found: set[Grant] = set()
    for path in BACKEND:
        for _, method in CALL.findall(path.read_text()):
            if method in CONNECT:
                found.update(CONNECT[method])
                continue
            verb, _, rest = method.partition("_")
            if verb not in VERBS or rest not in RESOURCES:
                raise AssertionError(
                    f"{path.name}: {method}: not in this test's mapping; add it here and its "
                    "rule to deploy/kind/gameday-cronjob.yaml"
                )
            group, resource, cluster = RESOURCES[rest]
            found.add((group, resource, VERBS[verb], cluster or method in CLUSTER_WIDE_DELETE))
    found |= {(g, r, "watch", c) for g, r, c in WATCHED}
    return found


def granted(documents: list[dict[str, Any]]) -> set[Grant]:
    out: set[Grant] = set()
    for doc in documents:
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:
            for verb in rule["verbs"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        out.add((group, resource, verb, doc["kind"] == "ClusterRole"))
    return out


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(CRONJOB.read_text()) if d]


def test_the_code_calls_what_the_mapping_knows() -> None:
    grants = required_grants()
    # the calls this mapping was written from are all still there
    assert ("", "pods/eviction", "create", True) in grants
    assert ("postgresql.cnpg.io", "clusters/status", "patch", False) in grants
    assert ("", "nodes", "update", True) in grants
    assert ("", "pods/exec", "create", False) in grants


def test_rbac_covers_every_call_and_grants_nothing_more(documents: list[dict[str, Any]]) -> None:
    have, need = granted(documents), required_grants()

    def covered(grant: Grant) -> bool:  # a cluster-wide rule also covers the namespace
        group, resource, verb, cluster = grant
        return grant in have or (not cluster and (group, resource, verb, True) in have)

    missing = sorted(g for g in need if not covered(g))
    assert missing == [], f"calls without an RBAC rule: {missing}"
    extra = sorted(g for g in have if g not in need and (g[0], g[1], g[2], False) not in need)
    assert extra == [], f"rules no call needs (least privilege): {extra}"
    assert not any("*" in g[:3] for g in have)


def test_the_cronjob_runs_a_game_day_as_that_service_account(
    documents: list[dict[str, Any]],
) -> None:
    kinds = [d["kind"] for d in documents]
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
            "PersistentVolumeClaim", "ConfigMap", "CronJob"} <= set(kinds)  # fmt: skip
    (cron,) = (d for d in documents if d["kind"] == "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (sa,) = (d for d in documents if d["kind"] == "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    for binding in (d for d in documents if d["kind"].endswith("Binding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                        "namespace": sa["metadata"]["namespace"]}]  # fmt: skip
    (container,) = pod["containers"]
    assert container["args"][:2] == ["gameday", "--target"]
    assert "--cleanup-first" in container["args"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/work" in mounts and "--reports-dir" in container["args"]
    assert container["args"][container["args"].index("--reports-dir") + 1].startswith("/work/")
    (config,) = (d for d in documents if d["kind"] == "ConfigMap")
    from ledgerdrill.targets import Target

    target = Target.model_validate(yaml.safe_load(config["data"]["incluster.yaml"]))
    assert target.platform.kind == "kubernetes"
    assert target.platform.node_faults == "api"  # type: ignore[union-attr]  # no docker in a pod


def test_the_workflow_is_a_schedule_and_a_gate_that_publishes_the_report() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"schedule", "workflow_dispatch", "pull_request"} <= set(triggers)
    steps = workflow["jobs"]["gameday"]["steps"]
    script = "\n".join(str(s.get("run", "")) for s in steps)
    for needed in ("make kind-up", "ledgerdrill gameday --target targets/kind.yaml",
                   "ledgerdrill plan --target targets/kind.yaml", "$GITHUB_STEP_SUMMARY",
                   "make kind-down", "kind-linux-amd64", "kubectl", "helm"):  # fmt: skip
        assert needed in script, needed
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "reports/" and upload["if"] == "always()"
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in str(s.get("run", "")))
    assert summary["if"] == "always()"  # a failed gate still shows its summary


def test_no_expression_is_pasted_into_a_shell_script() -> None:
    """GitHub expands ${{ }} before the shell runs: an input (or any expression) pasted
    into a run script is a script injection. Values reach scripts through env: only."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in str(step.get("run", "")), step.get("name")


def test_the_incluster_kubeconfig_names_the_kind_context(tmp_path: Path) -> None:
    from ledgerdrill.errors import ConfigError
    from ledgerdrill.platforms.kubernetes.incluster import incluster_kubeconfig

    for name, text in (("token", "t0ken"), ("ca.crt", "CA"), ("namespace", "ledgerdrill\n")):
        (tmp_path / name).write_text(text)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = incluster_kubeconfig(account=tmp_path, environ=env)
    assert config["current-context"] == "kind-ledgerdrill"
    assert config["clusters"] == [{"name": "kind-ledgerdrill", "cluster": {  # type: ignore[comparison-overlap]
        "server": "https://10.96.0.1:443", "certificate-authority": str(tmp_path / "ca.crt")}}]  # fmt: skip
    assert config["users"] == [{"name": "kind-ledgerdrill",  # type: ignore[comparison-overlap]
                                "user": {"tokenFile": str(tmp_path / "token")}}]  # fmt: skip
    with pytest.raises(ConfigError, match="not inside a pod"):
        incluster_kubeconfig(account=tmp_path, environ={})
