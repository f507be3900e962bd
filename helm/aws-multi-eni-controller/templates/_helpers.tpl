{{/* Names, labels and the image reference shared by every template. */}}

{{- define "eni.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eni.fullname" -}}
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

{{- define "eni.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eni.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eni.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "eni.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "eni.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eni.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "eni.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Events about NodeENIs (cluster-scoped) go to this namespace (eni_controller/kube/events.py EVENTS_NAMESPACE). */}}
{{- define "eni.eventsNamespace" -}}
default
{{- end }}

{{/* The Lease name is fixed in the controller (eni_controller/kube/leader.py). */}}
{{- define "eni.leaseName" -}}
nodeeni-controller-leader-election
{{- end }}

{{/*
The node agent (templates/agent-*.yaml). Its pods carry their own
app.kubernetes.io/name, so no selector of the controller (Deployment, metrics
Service, PodDisruptionBudget: name + instance) ever matches an agent pod, and
the DaemonSet's selector never matches a controller pod. The controller's
selector cannot gain a component label instead: a Deployment's selector is
immutable, so that would break `helm upgrade`.
*/}}
{{- define "eni.agent.name" -}}
{{- printf "%s-agent" (include "eni.name" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "eni.agent.fullname" -}}
{{- printf "%s-agent" (include "eni.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "eni.agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eni.agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eni.agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "eni.agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: {{ include "eni.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "eni.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "eni.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- required "agent.serviceAccount.name is required when agent.serviceAccount.create is false" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The agent's image: its own digest, else its own tag, else the controller's
reference. A repository of its own without a tag or digest takes the
controller's tag (the chart's appVersion by default), never the controller's
digest, which names a manifest of another repository.
*/}}
{{- define "eni.agent.image" -}}
{{- $agent := .Values.agent.image }}
{{- $repository := default .Values.image.repository $agent.repository }}
{{- if $agent.digest }}
{{- printf "%s@%s" $repository $agent.digest }}
{{- else if $agent.tag }}
{{- printf "%s:%s" $repository $agent.tag }}
{{- else if $agent.repository }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- else }}
{{- include "eni.image" . }}
{{- end }}
{{- end }}
