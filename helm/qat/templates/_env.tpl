{{/* Environment variables: the common ones and settings maps as QATFLOW_* variables. */}}

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
