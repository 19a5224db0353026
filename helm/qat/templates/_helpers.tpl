{{/*
Expand the name of the chart.
*/}}
{{- define "qat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "qat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "qat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "qat.labels" -}}
helm.sh/chart: {{ include "qat.chart" . }}
{{ include "qat.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "qat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: (dict "root" $ "component" "training").
*/}}
{{- define "qat.componentLabels" -}}
{{ include "qat.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "qat.componentSelectorLabels" -}}
{{ include "qat.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of the inference (and test) service account.
*/}}
{{- define "qat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "qat.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the training service account: its own, because it must exist before the pre-install
hook runs (a hook itself) while the inference one is an ordinary object (for --no-hooks).
*/}}
{{- define "qat.trainingServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- printf "%s-training" (include "qat.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The inference backend, validated: one documented enum, never copied template files.
The list is qatflow.core.backends.INFERENCE_BACKENDS (tests/chart checks it).
*/}}
{{- define "qat.backend" -}}
{{- $backends := list "optimum" "onnxruntime" "ovms" }}
{{- $backend := .Values.inference.backend | toString }}
{{- if not (has $backend $backends) }}
{{- fail (printf "inference.backend must be one of %s (got %q)" (join ", " $backends) $backend) }}
{{- end }}
{{- $backend }}
{{- end }}

{{/*
A qatflow image: (dict "root" $ "image" .Values.training.image).
*/}}
{{- define "qat.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{- define "qat.ovmsImage" -}}
{{- $image := .Values.inference.ovms.image }}
{{- if $image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" $image.registry) $image.repository $image.tag }}
{{- else }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}
{{- end }}

{{/*
Name of the PVC that holds the models (created by the chart or existing).
*/}}
{{- define "qat.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-models" (include "qat.fullname" .)) }}
{{- end }}

{{/*
The model volume of a pod spec. Training and inference share it; the mounts set read-only.
*/}}
{{- define "qat.modelVolume" -}}
- name: models
{{- if .Values.persistence.hostPath.path }}
  hostPath:
    path: {{ .Values.persistence.hostPath.path }}
    type: {{ .Values.persistence.hostPath.type }}
{{- else if or .Values.persistence.existingClaim .Values.persistence.enabled }}
{{- if not (or .Values.training.enabled .Values.persistence.existingClaim) }}
{{- fail "training.enabled=false serves a model that is already on a volume: name it with --set persistence.existingClaim=CLAIM (e.g. qatchart-models, which `helm install qatchart helm/qat` trains into and keeps) or persistence.hostPath.path. A new claim would hold no model, and the chart creates one only in its pre-install hook, which --no-hooks skips" }}
{{- end }}
  persistentVolumeClaim:
    claimName: {{ include "qat.claimName" . }}
{{- else }}
{{- fail "persistence: training and inference share the model volume; set persistence.enabled, persistence.existingClaim or persistence.hostPath.path" }}
{{- end }}
{{- end }}

{{/*
The model volume mount: (dict "root" $ "readOnly" true).
*/}}
{{- define "qat.modelVolumeMount" -}}
- name: models
  mountPath: {{ .root.Values.persistence.mountPath }}
  readOnly: {{ .readOnly }}
{{- with .root.Values.persistence.subPath }}
  subPath: {{ . }}
{{- end }}
{{- end }}

{{/*
Scratch space: the root filesystem is read-only.
*/}}
{{- define "qat.scratchVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratchSizeLimit }}
{{- end }}

{{- define "qat.scratchVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Environment every qatflow container gets: a writable HOME and the proxy pass-through.
*/}}
{{- define "qat.commonEnv" -}}
- name: HOME
  value: /tmp
{{- with .Values.proxy.httpProxy }}
- name: HTTP_PROXY
  value: {{ . | quote }}
- name: http_proxy
  value: {{ . | quote }}
{{- end }}
{{- with .Values.proxy.httpsProxy }}
- name: HTTPS_PROXY
  value: {{ . | quote }}
- name: https_proxy
  value: {{ . | quote }}
{{- end }}
{{- with .Values.proxy.noProxy }}
- name: NO_PROXY
  value: {{ . | quote }}
- name: no_proxy
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
One settings value as an environment string: null -> "" (the service's default), maps and
lists -> JSON, whole numbers without an exponent (Helm reads numbers as float64).
*/}}
{{- define "qat.settingValue" -}}
{{- if kindIs "invalid" . }}
{{- "" }}
{{- else if or (kindIs "map" .) (kindIs "slice" .) }}
{{- toJson . }}
{{- else if and (kindIs "float64" .) (eq (floor .) .) }}
{{- printf "%.0f" . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
Environment variables from a settings map: (dict "prefix" "QATFLOW_TRAIN_" "settings" $map).
*/}}
{{- define "qat.settingsEnv" -}}
{{- $prefix := .prefix }}
{{- range $key, $value := .settings }}
- name: {{ printf "%s%s" $prefix (upper $key) }}
  value: {{ include "qat.settingValue" $value | quote }}
{{- end }}
{{- end }}

{{/*
Hook annotations of the objects the training Job needs: created before it, kept afterwards.
*/}}
{{- define "qat.hookDependencyAnnotations" -}}
helm.sh/hook: pre-install
helm.sh/hook-weight: "-10"
helm.sh/resource-policy: keep
{{- end }}

{{/*
Name of the training Job (and, for a multi-node run, of its headless Service).
*/}}
{{- define "qat.trainingName" -}}
{{- printf "%s-training" (include "qat.fullname" .) }}
{{- end }}

{{/*
When training runs: on install, and on every upgrade with retrainOnUpgrade.
*/}}
{{- define "qat.trainingHook" -}}
{{- ternary "pre-install,pre-upgrade" "pre-install" .Values.training.retrainOnUpgrade }}
{{- end }}

{{/*
Training layouts that cannot work fail rendering with what to change.
*/}}
{{- define "qat.checkTrainingLayout" -}}
{{- $training := .Values.training }}
{{- $persistence := .Values.persistence }}
{{- $nodes := int $training.nodes }}
{{- $gpus := int $training.gpu.count }}
{{- if gt $nodes 1 }}
{{- if $persistence.hostPath.path }}
{{- fail (printf "training.nodes=%d: every training pod mounts the model volume read-write, and persistence.hostPath.path is a different directory on each node; use a ReadWriteMany claim instead (persistence.accessModes [ReadWriteMany], or persistence.existingClaim)" $nodes) }}
{{- else if and $persistence.enabled (not $persistence.existingClaim) (not (has "ReadWriteMany" $persistence.accessModes)) }}
{{- fail (printf "training.nodes=%d: every training pod mounts the model volume read-write from its own node, so persistence.accessModes must include ReadWriteMany (got %s), or persistence.existingClaim must name a ReadWriteMany claim" $nodes (toJson $persistence.accessModes)) }}
{{- end }}
{{- $hostname := printf "%s-%d" (include "qat.trainingName" .) (sub $nodes 1) }}
{{- if gt (len $hostname) 63 }}
{{- fail (printf "training.nodes=%d: pod host name %s is longer than 63 characters; use a shorter release name or fullnameOverride" $nodes $hostname) }}
{{- end }}
{{- end }}
{{- if and (gt $gpus 0) (gt (int $training.processesPerNode) $gpus) }}
{{- fail (printf "training.processesPerNode=%d: each process trains on its own GPU, but training.gpu.count is %d" (int $training.processesPerNode) $gpus) }}
{{- end }}
{{- if and (eq (toString $training.settings.device) "cuda") (eq $gpus 0) }}
{{- fail "training.settings.device=cuda needs a GPU on the training pod: set training.gpu.count" }}
{{- end }}
{{- end }}

{{/*
training.preset as a YAML list of names: "" none, a name one, or a list layered in order.
*/}}
{{- define "qat.trainingPresets" -}}
{{- $preset := .Values.training.preset }}
{{- if kindIs "string" $preset }}
{{- $preset = ternary (list $preset) (list) (ne $preset "") }}
{{- end }}
{{- toYaml $preset }}
{{- end }}

{{/*
The training settings the Job receives, as YAML: training.gpu.count > 0 turns device cpu into
cuda, and with a preset only the settings that differ from their defaults are kept, since the
environment beats the preset.
*/}}
{{- define "qat.trainingSettings" -}}
{{- $settings := deepCopy .Values.training.settings }}
{{- if and (gt (int .Values.training.gpu.count) 0) (eq (toString $settings.device) "cpu") }}
{{- $_ := set $settings "device" "cuda" }}
{{- end }}
{{- if include "qat.trainingPresets" . | fromYamlArray }}
{{- $defaults := .Files.Get "files/training-defaults.yaml" | fromYaml }}
{{- range $key, $value := deepCopy $settings }}
{{- if eq (include "qat.settingValue" $value) (include "qat.settingValue" (get $defaults $key)) }}
{{- $_ := unset $settings $key }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/*
The training command: the training module for one process, else torchrun around `qatflow
train`; several pods use a static rendezvous hosted by the first pod (index 0).
*/}}
{{- define "qat.trainingCommand" -}}
{{- $nodes := int .Values.training.nodes }}
{{- $processes := int .Values.training.processesPerNode }}
{{- if and (eq $nodes 1) (eq $processes 1) }}
- python
- -m
- qatflow.training
{{- else }}
{{- $job := include "qat.trainingName" . }}
- torchrun
- {{ printf "--nnodes=%d" $nodes | quote }}
- {{ printf "--nproc-per-node=%d" $processes | quote }}
{{- if eq $nodes 1 }}
- --standalone
{{- else }}
- "--node-rank=$(JOB_COMPLETION_INDEX)"
- {{ printf "--master-addr=%s-0.%s" $job $job | quote }}
- {{ printf "--master-port=%d" (int .Values.training.rendezvousPort) | quote }}
{{- end }}
- --no-python
- qatflow
- train
{{- end }}
{{- end }}
