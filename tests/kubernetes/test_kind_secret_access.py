"""The ERP on kind can read its config Secret, and nobody else can.

The kubelet's Secret volume, as upstream Kubernetes makes it (a model, cited):

- each key is written by the kubelet (root) with the volume's ``defaultMode`` (0644 when
  unset) -- ``pkg/volume/secret/secret.go`` (``SetUpAt``: payload with the default mode)
  and ``pkg/volume/util/atomic_writer.go``;
- with the pod's ``securityContext.fsGroup`` the files are chowned to that group and
  their mode is OR-ed with 0440 (``roMask``: Secret volumes are read-only) --
  ``pkg/volume/volume_linux.go``, ``SetVolumeOwnership``;
- the container's process runs as ``runAsUser``/``runAsGroup`` (else the image's USER),
  with ``fsGroup`` among its supplementary groups.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ledgerdrill.platforms.sandbox.erp.config import exposure

KIND = Path(__file__).resolve().parents[2] / "deploy" / "kind"


def erp_deployment() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((KIND / "erp.yaml").read_text()) if d]
    found: dict[str, Any] = next(d for d in docs if d["kind"] == "Deployment")
    return found


def image_user() -> int:
    match = re.search(r"^USER (\d+)", (KIND / "Dockerfile").read_text(), re.M)
    assert match, "the ERP image names its user"
    return int(match[1])


def secret_file(pod: dict[str, Any], volume: str) -> tuple[int, int, int]:
    """(owner uid, group, mode) of a key in Secret volume ``volume`` of ``pod``."""
    source = next(v for v in pod["volumes"] if v["name"] == volume)["secret"]
    mode = int(source.get("defaultMode", 0o644))
    group = 0
    fs_group = (pod.get("securityContext") or {}).get("fsGroup")
    if fs_group is not None:
        group, mode = int(fs_group), mode | 0o440
    return 0, group, mode


def process(pod: dict[str, Any]) -> tuple[int, set[int]]:
    """(uid, groups) of the ERP container's process."""
    context = pod.get("securityContext") or {}
    uid = int(context.get("runAsUser", image_user()))
    groups = {int(context.get("runAsGroup", uid))}  # useradd makes a group of the same id
    if context.get("fsGroup") is not None:
        groups.add(int(context["fsGroup"]))
    groups.update(int(g) for g in context.get("supplementalGroups", []))
    return uid, groups


def can_read(file: tuple[int, int, int], uid: int, groups: set[int]) -> bool:
    owner, group, mode = file
    if uid == 0:
        return True
    if uid == owner:
        return bool(mode & 0o400)
    if group in groups:
        return bool(mode & 0o040)
    return bool(mode & 0o004)


def test_the_erp_process_can_read_its_config_and_accepts_it_as_private() -> None:
    pod = erp_deployment()["spec"]["template"]["spec"]
    file = secret_file(pod, "config")
    uid, groups = process(pod)
    assert uid != 0 and pod["securityContext"]["runAsNonRoot"] is True
    assert can_read(file, uid, groups), (file, uid, groups)
    assert exposure(file[2], file[1], groups) == "", file
    # nobody outside the ERP's groups can read it
    assert not can_read(file, 4242, {4242})


def test_the_old_manifest_left_the_config_unreadable() -> None:
    """0400 without fsGroup: root-owned, root-only -- the ERP could not start."""
    pod = erp_deployment()["spec"]["template"]["spec"]
    old = {**pod, "securityContext": None}
    old["volumes"] = [
        {"name": "config", "secret": {"secretName": "x", "defaultMode": 0o400}}
    ]
    uid, groups = process(old)
    assert not can_read(secret_file(old, "config"), uid, groups)


def test_the_config_loader_refuses_what_others_could_read() -> None:
    assert exposure(0o600, 0, {10001}) == ""
    assert exposure(0o440, 10001, {10001}) == ""
    assert "a group the ERP is not in" in exposure(0o440, 0, {10001})
    assert "lets others" in exposure(0o644, 10001, {10001})
    assert "lets others" in exposure(0o660, 10001, {10001})


def test_the_loader_reads_a_group_readable_file_of_its_own_group(tmp_path: Path) -> None:
    import pytest

    from ledgerdrill.platforms.sandbox.erp.config import ErpConfig

    path = tmp_path / "erp.json"
    ErpConfig(dsn="host=x", database="d").write(path)  # type: ignore[arg-type]
    path.chmod(0o440)  # our own group: what the kubelet hands over with fsGroup
    assert ErpConfig.load(path).database == "d"
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="lets others"):
        ErpConfig.load(path)
