{{/* The training hook: its name, when it runs, its presets, settings and command. */}}

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
The training settings the Job receives, as YAML: exactly the user's training.settings. The
defaults live in TrainingSettings alone, and a preset supplies what the user did not set.
training.gpu.count > 0 adds device cuda unless the user chose a device.
*/}}
{{- define "qat.trainingSettings" -}}
{{- $settings := deepCopy (.Values.training.settings | default dict) }}
{{- if and (gt (int .Values.training.gpu.count) 0) (kindIs "invalid" $settings.device) }}
{{- $_ := set $settings "device" "cuda" }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/*
The task the release trains for, which NOTES and the helm test pod follow: training.settings.task,
else TrainingSettings' default, qatflow.core.tasks.QUESTION_ANSWERING (tests/chart checks it).
A preset's task is invisible here: set training.settings.task with a classification preset.
*/}}
{{- define "qat.trainingTask" -}}
{{- (.Values.training.settings | default dict).task | default "question-answering" }}
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
