{{/* Names and labels of the release's objects (helm create's helpers). */}}

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
