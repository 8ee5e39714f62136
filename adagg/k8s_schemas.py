"""Check rendered Kubernetes manifests (adagg/deploy.py) against the real schemas, without a cluster.

- FlinkDeployment and FlinkSessionJob: the v1beta1 openAPIV3Schema of the Flink Kubernetes
  Operator's CRDs, read from the flink-kubernetes-operator-api jar that `adagg setup` fetches
  (infra/jvm/k8s-schemas). The CRDs set no additionalProperties: false, so a field the schema does
  not have would pass jsonschema and be pruned by the API server without a word; unknown_fields()
  makes it an error, as `kubectl apply --validate=strict` does. Their metadata is checked against
  Kubernetes' ObjectMeta.
- Every other object: the Kubernetes OpenAPI schema of deploy.kubernetes_version, strict
  (kubernetes-validate, a test dependency).
"""

from __future__ import annotations

import copy
import functools
import zipfile
from pathlib import Path

import jsonschema
import yaml

from adagg import paths

JAR_MODULE = "k8s-schemas"
CRD_FILES = {"FlinkDeployment": "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml",
             "FlinkSessionJob": "META-INF/fabric8/flinksessionjobs.flink.apache.org-v1.yml"}
CRD_VERSION = "v1beta1"
# The newest operator API that Maven Central serves here is 1.10.0; its flinkVersion enum ends at
# v1_20. Operator 1.13 added v2_0, v2_1 and v2_2 (and 1.13 is what a cluster running Flink 2.2 needs).
# Extending the enum by these is the only change made to the CRDs' schemas (a unit test holds it so).
FLINK_VERSIONS_ADDED = ("v2_0", "v2_1", "v2_2")
# What every object has besides the CRD's spec and status: the API server's, not in the CRD's schema.
OBJECT_FIELDS = ("apiVersion", "kind", "metadata")


class MissingSchemas(RuntimeError):
    pass


def operator_jar() -> Path:
    jars = sorted(paths.jvm_lib(JAR_MODULE).glob("flink-kubernetes-operator-api-*.jar"))
    if not jars:
        raise MissingSchemas(f"the Flink Kubernetes Operator's CRDs are not in {paths.jvm_lib(JAR_MODULE)}: "
                             f"run `adagg setup`")
    return jars[-1]


@functools.lru_cache(maxsize=None)
def _crd(jar_path: Path, kind: str) -> dict:
    with zipfile.ZipFile(jar_path) as jar:  # half a megabyte of YAML: parsed once, with libyaml if there
        return yaml.load(jar.read(CRD_FILES[kind]), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def crd_schema(kind: str, extended: bool = True) -> dict:
    """The CRD's openAPIV3Schema of v1beta1, as the jar has it, or (extended) with flinkVersion's
    enum extended to the Flink 2 versions."""
    [version] = [v for v in _crd(operator_jar(), kind)["spec"]["versions"] if v["name"] == CRD_VERSION]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    spec = schema["properties"]["spec"]["properties"]
    if extended and "flinkVersion" in spec:
        spec["flinkVersion"]["enum"] += [v for v in FLINK_VERSIONS_ADDED if v not in spec["flinkVersion"]["enum"]]
    return schema


def unknown_fields(instance, schema: dict, path: str = "") -> list[str]:
    """Paths of the instance's keys that its schema does not have (where the schema lists properties
    and allows no others)."""
    found = []
    if isinstance(instance, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            where = f"{path}.{key}" if path else key
            if props is not None and key in props:
                found += unknown_fields(value, props[key], where)
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, where)
            elif props is not None and extra is not True:
                found.append(where)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(instance):
            found += unknown_fields(value, schema["items"], f"{path}[{i}]")
    return found


@functools.lru_cache(maxsize=None)
def _crd_validator(kind: str) -> tuple[dict, jsonschema.Validator]:
    schema = crd_schema(kind)
    return schema, jsonschema.Draft202012Validator(schema)


@functools.lru_cache(maxsize=None)
def _kubernetes_validator(schema_file: str, version: str) -> jsonschema.Validator:
    """A validator of one of kubernetes-validate's strict schemas (as its validate() builds it)."""
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    [full] = {v for v in utils.all_versions() if utils.major_minor(v) == version}  # -local and -local-strict
    folder = f"kubernetes-json-schema/v{full}-local-strict"
    schema = utils.schema_contents(f"{folder}/{schema_file}", version)
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _errors(validator: jsonschema.Validator, doc, prefix: str = "") -> list[str]:
    return [f"{prefix}{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in validator.iter_errors(doc)]


def validate(doc: dict, kubernetes_version: str) -> list[str]:
    """What is wrong with one object (empty: nothing found)."""
    if doc.get("kind") in CRD_FILES:
        if doc.get("apiVersion") != f"flink.apache.org/{CRD_VERSION}":
            return [f"apiVersion: {doc.get('apiVersion')!r} is not flink.apache.org/{CRD_VERSION}"]
        schema, validator = _crd_validator(doc["kind"])
        meta = _kubernetes_validator("objectmeta-meta-v1.json", kubernetes_version)
        return (_errors(validator, doc)
                + [f"{where}: not in the {doc['kind']} CRD" for where in unknown_fields(
                    {k: v for k, v in doc.items() if k not in OBJECT_FIELDS}, schema)]
                + _errors(meta, doc.get("metadata", {}), "metadata."))
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '(top)'}: {error.message}"]
    return []
