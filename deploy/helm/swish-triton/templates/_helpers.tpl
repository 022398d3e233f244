{{/* Names, labels and the values checks every template shares. */}}

{{- define "swish-triton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "swish-triton.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Object name for one GPU type: <fullname>-<type>, shortened so that pod names stay valid. */}}
{{- define "swish-triton.typeName" -}}
{{- printf "%s-%s" (include "swish-triton.fullname" .root | trunc 40 | trimSuffix "-") .gpuType.name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "swish-triton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "swish-triton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "swish-triton.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "swish-triton.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.ngcRelease | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selects the Triton pods of every GPU type (the Service, NetworkPolicy and ServiceMonitor use it). */}}
{{- define "swish-triton.serverSelectorLabels" -}}
{{ include "swish-triton.selectorLabels" . }}
app.kubernetes.io/component: triton
{{- end -}}

{{/* Selects the pods of one GPU type. */}}
{{- define "swish-triton.typeSelectorLabels" -}}
{{ include "swish-triton.serverSelectorLabels" .root }}
swish-triton/gpu-type: {{ .gpuType.name }}
{{- end -}}

{{/* Pods carrying this label may reach the HTTP and gRPC ports when networkPolicy.clients is empty. */}}
{{- define "swish-triton.clientLabel" -}}
{{ include "swish-triton.fullname" . }}-client
{{- end -}}

{{- define "swish-triton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "swish-triton.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Both images carry the same NGC release: plans are built with the TensorRT that Triton loads them with. */}}
{{- define "swish-triton.imageTag" -}}
{{- printf "%s%s" (toString .Values.ngcRelease) .Values.image.tagSuffix -}}
{{- end -}}

{{- define "swish-triton.registry" -}}
{{- required "image.registry is required: the registry path the images built from docker/Dockerfile were pushed to (e.g. registry.example.com/ml)" .Values.image.registry | trimSuffix "/" -}}
{{- end -}}

{{- define "swish-triton.serverImage" -}}
{{- printf "%s/%s:%s" (include "swish-triton.registry" .) .Values.image.server.repository (include "swish-triton.imageTag" .) -}}
{{- end -}}

{{- define "swish-triton.enginesImage" -}}
{{- printf "%s/%s:%s" (include "swish-triton.registry" .) .Values.image.engines.repository (include "swish-triton.imageTag" .) -}}
{{- end -}}

{{- define "swish-triton.apiKeySecretName" -}}
{{- if .Values.apiKey.existingSecret -}}
{{- .Values.apiKey.existingSecret -}}
{{- else -}}
{{- $_ := required "an API key is required for Triton's restricted APIs: set apiKey.existingSecret (recommended) or apiKey.value" .Values.apiKey.value -}}
{{- printf "%s-api-key" (include "swish-triton.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "swish-triton.apiKeySecretKey" -}}
{{- if .Values.apiKey.existingSecret -}}
{{- .Values.apiKey.existingSecretKey -}}
{{- else -}}
api-key
{{- end -}}
{{- end -}}

{{- define "swish-triton.gracePeriod" -}}
{{- $minimum := add .Values.lifecycle.drainSeconds .Values.triton.exitTimeoutSeconds -}}
{{- if kindIs "invalid" .Values.lifecycle.terminationGracePeriodSeconds -}}
{{- add $minimum 15 -}}
{{- else if le (int .Values.lifecycle.terminationGracePeriodSeconds) (int $minimum) -}}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%v) must exceed lifecycle.drainSeconds + triton.exitTimeoutSeconds (%v), or Kubernetes kills tritonserver before it finishes in-flight requests" .Values.lifecycle.terminationGracePeriodSeconds $minimum) -}}
{{- else -}}
{{- .Values.lifecycle.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Checks that span several values (values.schema.json checks each value on its own). */}}
{{- define "swish-triton.validate" -}}
{{- if not .Values.gpuTypes -}}
{{- fail "gpuTypes is required: at least one GPU type, e.g. [{name: h100, product: NVIDIA-H100-80GB-HBM3}]" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $t := .Values.gpuTypes -}}
{{- $name := required (printf "gpuTypes[%d].name is required (a DNS label such as h100)" $i) $t.name -}}
{{- $_ := required (printf "gpuTypes[%d].product is required: the node label nvidia.com/gpu.product of that GPU type (kubectl get nodes -L nvidia.com/gpu.product)" $i) $t.product -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "gpuTypes: the name %q appears twice" $name) -}}
{{- end -}}
{{- $_ := set $seen $name true -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (eq .Values.autoscaling.mode "keda") -}}
{{- $_ := required "autoscaling.keda.serverAddress is required with autoscaling.mode keda (the Prometheus the ScaledObject queries)" .Values.autoscaling.keda.serverAddress -}}
{{- end -}}
{{- $_ := include "swish-triton.apiKeySecretName" . -}}
{{- $_ := include "swish-triton.gracePeriod" . -}}
{{- end -}}

{{/*
The scaling signal in PromQL for one set of label matchers, grouped by `by`.
queueComputeRatio: queue time per compute time (the clamp keeps an idle pod at 0 instead of NaN);
queueTimePerRequest: queue microseconds per successful request.
Call with (dict "metric" ... "matchers" ... "by" ... "window" ...).
*/}}
{{- define "swish-triton.promql" -}}
{{- $m := printf "{%s}[%s]" .matchers .window -}}
{{- if eq .metric "queueTimePerRequest" -}}
sum by ({{ .by }}) (rate(nv_inference_queue_duration_us{{ $m }})) / clamp_min(sum by ({{ .by }}) (rate(nv_inference_request_success{{ $m }})), 1e-9)
{{- else -}}
sum by ({{ .by }}) (rate(nv_inference_queue_duration_us{{ $m }})) / clamp_min(sum by ({{ .by }}) (rate(nv_inference_compute_infer_duration_us{{ $m }})), 1)
{{- end -}}
{{- end -}}

{{/* Name of the custom metric prometheus-adapter serves for a scaling signal (the HPA reads it). */}}
{{- define "swish-triton.adapterMetricName" -}}
{{- if eq . "queueTimePerRequest" -}}
swish_triton_queue_us_per_request
{{- else -}}
swish_triton_queue_compute_ratio
{{- end -}}
{{- end -}}
