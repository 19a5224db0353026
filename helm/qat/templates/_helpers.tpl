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
*/}}
{{- define "qat.backend" -}}
{{- $backends := list "optimum" "onnxruntime" "ovms" }}
{{- $backend := .Values.inference.backend | toString }}
{{- if not (has $backend $backends) }}
{{- fail (printf "inference.backend must be one of optimum, onnxruntime, ovms (got %q)" $backend) }}
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
