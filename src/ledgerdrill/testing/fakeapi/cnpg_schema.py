"""The structural schemas of the CloudNativePG and Barman Cloud plugin resources, for the
fields ledgerdrill writes -- in its manifests under ``deploy/`` and in the objects its
Kubernetes backend creates (a point-in-time restore, a re-cloned replica cluster).

Written here from the upstream API types of the pinned versions (``deploy/kind/
versions.env``: CloudNativePG 1.28.1 via chart 0.27.1, Barman Cloud plugin 0.11.0):

- cloudnative-pg ``api/v1/cluster_types.go`` (``ClusterSpec``, ``AffinityConfiguration``,
  ``StorageConfiguration``, ``PostgresConfiguration``, ``SynchronousReplicaConfiguration``,
  ``BootstrapConfiguration`` and its three methods, ``RecoveryTarget``,
  ``ReplicaClusterConfiguration``, ``ExternalCluster``, ``PluginConfiguration``,
  ``BackupConfiguration``);
- cloudnative-pg ``config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml``
  (``ScheduledBackupSpec``: ``cluster`` and ``schedule`` required, the ``method`` and
  ``backupOwnerReference`` enums);
- barman-cloud ``pkg/api/config.go`` (``BarmanObjectStoreConfiguration``: a non-empty
  ``destinationPath``; WAL ``compression`` one of bzip2, gzip, lz4, snappy, xz, zstd);
- plugin-barman-cloud ``api/v1/objectstore_types.go`` (``ObjectStoreSpec``:
  ``configuration`` required and without ``serverName``, ``retentionPolicy`` as ``XXu``
  with u in d/w/m).

What the API server does with them (the apiextensions validation of a CRD's
``openAPIV3Schema``): a wrong type, a value outside an enum or pattern, a missing required
field is refused with 422 ``Invalid``; an unknown field is dropped ("pruned") and, unless
the client asks otherwise, reported in a ``Warning`` header (field validation "Warn", the
default since Kubernetes 1.27). So the fake refuses the first kind and prunes the second,
and the assets test is strict about both (``kubectl apply --validate=strict``).

Only the fields we use are modelled in depth; a few neighbours we do not write are
accepted as their JSON type (``object``) without looking inside -- named in ``OPAQUE``.
A field of ours missing here is reported as unknown: add it, from the same sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
INT: Schema = {"type": "integer"}
STR_MAP: Schema = {"type": "object", "additionalProperties": STR}
STR_LIST: Schema = {"type": "array", "items": STR}
OPAQUE: Schema = {"type": "object"}  # a field we do not write: its type only


def obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """An object whose every field is known (anything else is an unknown field)."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


NON_EMPTY: Schema = {"type": "string", "minLength": 1}
# `XXu`, XX a positive integer, u in d/w/m (BackupConfiguration and ObjectStoreSpec)
RETENTION: Schema = {"type": "string", "pattern": r"^[1-9][0-9]*[dwm]$"}
LOCAL_REF = obj({"name": STR}, ("name",))
# corev1.SecretKeySelector: key required (the name is LocalObjectReference's, optional)
SECRET_KEY = obj({"name": STR, "key": STR, "optional": BOOL}, ("key",))
# barman-cloud's own SecretKeySelector: both the secret's name and the key
BARMAN_SECRET_KEY = obj({"name": STR, "key": STR}, ("name", "key"))

BARMAN_OBJECT_STORE = obj(
    {
        "destinationPath": NON_EMPTY,
        "endpointURL": STR,
        "endpointCA": BARMAN_SECRET_KEY,
        "serverName": STR,
        "s3Credentials": obj(
            {
                "accessKeyId": BARMAN_SECRET_KEY,
                "secretAccessKey": BARMAN_SECRET_KEY,
                "region": BARMAN_SECRET_KEY,
                "sessionToken": BARMAN_SECRET_KEY,
                "inheritFromIAMRole": BOOL,
            }
        ),
        "azureCredentials": OPAQUE,
        "googleCredentials": OPAQUE,
        "wal": obj(
            {
                "compression": enum("bzip2", "gzip", "lz4", "snappy", "xz", "zstd"),
                "encryption": enum("AES256", "aws:kms"),
                "maxParallel": INT,
            }
        ),
        "data": OPAQUE,
        "tags": STR_MAP,
        "historyTags": STR_MAP,
    },
    ("destinationPath",),
)

PLUGIN = obj(
    {"name": STR, "enabled": BOOL, "isWALArchiver": BOOL, "parameters": STR_MAP}, ("name",)
)
STORAGE = obj({"storageClass": STR, "size": STR, "resizeInUseVolumes": BOOL, "pvcTemplate": OPAQUE})
DATABASE_OWNER = {"database": STR, "owner": STR, "secret": LOCAL_REF}

CLUSTER_SPEC = obj(
    {
        "description": STR,
        "imageName": STR,
        "imagePullPolicy": enum("Always", "Never", "IfNotPresent"),
        "instances": {"type": "integer", "minimum": 1},
        "minSyncReplicas": {"type": "integer", "minimum": 0},
        "maxSyncReplicas": {"type": "integer", "minimum": 0},
        "postgresql": obj(
            {
                "parameters": STR_MAP,
                "pg_hba": STR_LIST,
                "pg_ident": STR_LIST,
                "synchronous": obj(
                    {
                        "method": enum("any", "first"),
                        # a CEL rule upstream ("self > 0"), same outcome
                        "number": {"type": "integer", "minimum": 1},
                        "maxStandbyNamesFromCluster": INT,
                        "standbyNamesPre": STR_LIST,
                        "standbyNamesPost": STR_LIST,
                        "dataDurability": enum("required", "preferred"),
                        "failoverQuorum": BOOL,
                    },
                    ("method", "number"),
                ),
            }
        ),
        "bootstrap": obj(
            {
                "initdb": obj(
                    {
                        **DATABASE_OWNER,
                        "dataChecksums": BOOL,
                        "encoding": STR,
                        "postInitSQL": STR_LIST,
                        "postInitApplicationSQL": STR_LIST,
                    }
                ),
                "recovery": obj(
                    {
                        **DATABASE_OWNER,
                        "source": STR,
                        "backup": obj({"name": STR}, ("name",)),
                        "recoveryTarget": obj(
                            {
                                "backupID": STR,
                                "targetTLI": STR,
                                "targetXID": STR,
                                "targetName": STR,
                                "targetLSN": STR,
                                "targetTime": STR,
                                "targetImmediate": BOOL,
                                "exclusive": BOOL,
                            }
                        ),
                    }
                ),
                "pg_basebackup": obj({**DATABASE_OWNER, "source": NON_EMPTY}, ("source",)),
            }
        ),
        "replica": obj(
            {
                "self": STR,
                "primary": STR,
                "source": NON_EMPTY,
                "enabled": BOOL,
                "promotionToken": STR,
                "minApplyDelay": STR,
            },
            ("source",),
        ),
        "affinity": obj(
            {
                "enablePodAntiAffinity": BOOL,
                "topologyKey": STR,
                # no enum in the CRD: "preferred" (default) or "required", by the webhook
                "podAntiAffinityType": STR,
                "nodeSelector": STR_MAP,
                "tolerations": {"type": "array", "items": OPAQUE},
                "nodeAffinity": OPAQUE,
            }
        ),
        "storage": STORAGE,
        "walStorage": STORAGE,
        "resources": OPAQUE,
        "enableSuperuserAccess": BOOL,
        "enablePDB": BOOL,
        "failoverDelay": INT,
        "switchoverDelay": INT,
        "startDelay": INT,
        "stopDelay": INT,
        "primaryUpdateStrategy": enum("unsupervised", "supervised"),
        "primaryUpdateMethod": enum("switchover", "restart"),
        "logLevel": enum("error", "warning", "info", "debug", "trace"),
        "backup": obj(
            {
                "barmanObjectStore": BARMAN_OBJECT_STORE,
                "retentionPolicy": RETENTION,
                "target": enum("primary", "prefer-standby"),
                "volumeSnapshot": OPAQUE,
            }
        ),
        "externalClusters": {
            "type": "array",
            "items": obj(
                {
                    "name": STR,
                    "connectionParameters": STR_MAP,
                    "sslCert": SECRET_KEY,
                    "sslKey": SECRET_KEY,
                    "sslRootCert": SECRET_KEY,
                    "password": SECRET_KEY,
                    "barmanObjectStore": BARMAN_OBJECT_STORE,
                    "plugin": PLUGIN,
                },
                ("name",),
            ),
        },
        "plugins": {"type": "array", "items": PLUGIN},
        "monitoring": OPAQUE,
    }
)

SCHEDULED_BACKUP_SPEC = obj(
    {
        "schedule": STR,
        "cluster": LOCAL_REF,
        "immediate": BOOL,
        "suspend": BOOL,
        "backupOwnerReference": enum("none", "self", "cluster"),
        "method": enum("barmanObjectStore", "volumeSnapshot", "plugin"),
        "target": enum("primary", "prefer-standby"),
        "online": BOOL,
        "pluginConfiguration": obj({"name": STR, "parameters": STR_MAP}, ("name",)),
    },
    ("cluster", "schedule"),
)

# the plugin's CEL rule on ObjectStoreSpec.configuration: the server name belongs in the
# Cluster's plugin parameters (read on the plugin's main branch; not checked against 0.11.0)
SERVER_NAME_FORBIDDEN = "use the 'serverName' plugin parameter in the Cluster resource"
OBJECT_STORE_SPEC = obj(
    {
        "configuration": {**BARMAN_OBJECT_STORE, "not": {"required": ["serverName"]}},
        "retentionPolicy": RETENTION,
        "instanceSidecarConfiguration": OPAQUE,
    },
    ("configuration",),
)


def _resource(spec: Schema) -> Schema:
    top = {"apiVersion": STR, "kind": STR, "metadata": OPAQUE, "spec": spec, "status": OPAQUE}
    return obj(top, ("metadata", "spec"))


SCHEMAS: dict[tuple[str, str], Schema] = {
    ("postgresql.cnpg.io/v1", "Cluster"): _resource(CLUSTER_SPEC),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): _resource(SCHEDULED_BACKUP_SPEC),
    ("barmancloud.cnpg.io/v1", "ObjectStore"): _resource(OBJECT_STORE_SPEC),
}


@dataclass(frozen=True)
class Problem:
    """One field the API server would refuse (``unknown`` False) or drop (True)."""

    path: str  # dotted, as the API server names it: spec.bootstrap.recovery.source
    message: str
    unknown: bool

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _dotted(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".")


def problems(resource: dict[str, Any]) -> list[Problem]:
    """What is wrong with a CloudNativePG / Barman Cloud resource; [] when all is well.

    Raises ``KeyError`` for a kind this module has no schema for."""
    key = (str(resource.get("apiVersion")), str(resource.get("kind")))
    validator = jsonschema.Draft202012Validator(SCHEMAS[key])
    found: list[Problem] = []
    for error in validator.iter_errors(resource):
        where = _dotted(error.absolute_path)
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties") or {})
            for field in sorted(set(error.instance) - known):
                path = f"{where}.{field}" if where else field
                found.append(Problem(path, f'unknown field "{path}"', unknown=True))
        elif error.validator == "required":
            missing = str(error.message).split("'")[1]
            path = f"{where}.{missing}" if where else missing
            found.append(Problem(path, "Required value", unknown=False))
        elif error.validator == "not":  # the one rule written so: SERVER_NAME_FORBIDDEN
            found.append(Problem(f"{where}.serverName", f"Forbidden: {SERVER_NAME_FORBIDDEN}",
                                 unknown=False))  # fmt: skip
        elif error.validator == "enum":
            allowed = ", ".join(f'"{v}"' for v in error.validator_value)
            value = json.dumps(error.instance)
            message = f"Unsupported value: {value}: supported values: {allowed}"
            found.append(Problem(where, message, unknown=False))
        else:
            message = f"Invalid value: {json.dumps(error.instance)}: {where} in body {_rule(error)}"
            found.append(Problem(where, message, unknown=False))
    return sorted(found, key=lambda p: p.path)


def _rule(error: jsonschema.ValidationError) -> str:
    """The API server's wording of the broken rule (apiextensions-apiserver's validation)."""
    value = error.validator_value
    match error.validator:
        case "type":
            return f"must be of type {value}"
        case "minimum":
            return f"should be greater than or equal to {value}"
        case "minLength":
            return f"should be at least {value} chars long"
        case "pattern":
            return f"should match '{value}'"
        case _:
            return str(error.message)


def prune(resource: dict[str, Any], unknown: list[Problem]) -> None:
    """Drop the unknown fields in place, as the API server does before storing."""
    for problem in unknown:
        node: Any = resource
        steps = problem.path.replace("[", ".[").split(".")
        for step in steps[:-1]:
            node = node[int(step[1:-1])] if step.startswith("[") else node[step]
        node.pop(steps[-1], None)
