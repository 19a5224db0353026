{{/* Values that cannot work fail rendering with what to change. */}}

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
{{- if and (eq (toString ($training.settings | default dict).device) "cuda") (eq $gpus 0) }}
{{- fail "training.settings.device=cuda needs a GPU on the training pod: set training.gpu.count" }}
{{- end }}
{{- end }}
