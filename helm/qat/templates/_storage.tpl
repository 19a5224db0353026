{{/* The shared model volume and the scratch space. */}}

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
