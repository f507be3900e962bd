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

{{- define "eni.chartLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of an object: the chart's own, then commonLabels (the schema refuses
the chart's keys there; on a clash the chart's would win anyway).
*/}}
{{- define "eni.withCommonLabels" -}}
{{- $own := fromYaml .own }}
{{- toYaml (merge $own (.root.Values.commonLabels | default dict)) }}
{{- end }}

{{- define "eni.labels" -}}
{{- $own := printf "%s\n%s\napp.kubernetes.io/component: controller" (include "eni.chartLabels" .) (include "eni.selectorLabels" .) }}
{{- include "eni.withCommonLabels" (dict "own" $own "root" .) }}
{{- end }}

{{/*
The `helm test` pod: its own app.kubernetes.io/name, so no selector of the
controller (its ReplicaSets would adopt and delete a pod they match, its
Service would route to it, its PodDisruptionBudget would count it).
*/}}
{{- define "eni.test.labels" -}}
{{- $own := printf "%s\napp.kubernetes.io/name: %s-check\napp.kubernetes.io/instance: %s\napp.kubernetes.io/component: test" (include "eni.chartLabels" .) (include "eni.name" . | trunc 57 | trimSuffix "-") .Release.Name }}
{{- include "eni.withCommonLabels" (dict "own" $own "root" .) }}
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
{{- $own := printf "%s\n%s\napp.kubernetes.io/component: agent\napp.kubernetes.io/part-of: %s" (include "eni.chartLabels" .) (include "eni.agent.selectorLabels" .) (include "eni.name" .) }}
{{- include "eni.withCommonLabels" (dict "own" $own "root" .) }}
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

{{/*
The controller container's env, shared by the Deployment and the `helm test`
pod (templates/tests/check-pod.yaml), so `check` sees the settings `run` does.
*/}}
{{- define "eni.controllerEnv" -}}
{{- $c := .Values.controller -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with .Values.awsRegion }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.awsEndpointUrl }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.clusterName }}
- name: CLUSTER_NAME
  value: {{ . | quote }}
{{- end }}
{{- with .Values.vpcId }}
- name: VPC_ID
  value: {{ . | quote }}
{{- end }}
{{- with .Values.subnetAllowTag }}
- name: SUBNET_ALLOW_TAG
  value: {{ . | quote }}
{{- end }}
{{- with .Values.securityGroupAllowTag }}
- name: SECURITY_GROUP_ALLOW_TAG
  value: {{ . | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: MAX_CONCURRENT_RECONCILES
  value: {{ $c.maxConcurrentReconciles | quote }}
- name: MAX_CONCURRENT_ENI_CLEANUP
  value: {{ $c.maxConcurrentENICleanup | quote }}
- name: ENABLE_LEADER_ELECTION
  value: {{ $c.enableLeaderElection | quote }}
- name: LEADER_ELECTION_LEASE_DURATION
  value: {{ $c.leaderElection.leaseDuration | quote }}
- name: LEADER_ELECTION_RENEW_DEADLINE
  value: {{ $c.leaderElection.renewDeadline | quote }}
- name: LEADER_ELECTION_RETRY_PERIOD
  value: {{ $c.leaderElection.retryPeriod | quote }}
- name: RECONCILE_PERIOD
  value: {{ $c.reconcilePeriod | quote }}
- name: DETACHMENT_TIMEOUT
  value: {{ $c.detachmentTimeout | quote }}
- name: KUBE_REQUEST_TIMEOUT
  value: {{ $c.kubeRequestTimeout | quote }}
- name: RECONCILE_TIMEOUT
  value: {{ $c.reconcileTimeout | quote }}
- name: ERROR_BACKOFF_BASE
  value: {{ $c.errorBackoff.base | quote }}
- name: ERROR_BACKOFF_MAX
  value: {{ $c.errorBackoff.max | quote }}
- name: MAX_CLEANUP_DURATION
  value: {{ $c.maxCleanupDuration | quote }}
- name: DEFAULT_DEVICE_INDEX
  value: {{ $c.defaultDeviceIndex | quote }}
- name: DEFAULT_DELETE_ON_TERMINATION
  value: {{ $c.defaultDeleteOnTermination | quote }}
- name: CIRCUIT_BREAKER_ENABLED
  value: {{ $c.circuitBreaker.enabled | quote }}
- name: CIRCUIT_BREAKER_FAILURE_THRESHOLD
  value: {{ $c.circuitBreaker.failureThreshold | quote }}
- name: CIRCUIT_BREAKER_SUCCESS_THRESHOLD
  value: {{ $c.circuitBreaker.successThreshold | quote }}
- name: CIRCUIT_BREAKER_TIMEOUT
  value: {{ $c.circuitBreaker.timeout | quote }}
- name: ORPHAN_SWEEP_INTERVAL
  value: {{ $c.orphanSweep.interval | quote }}
- name: ORPHAN_GRACE_PERIOD
  value: {{ $c.orphanSweep.gracePeriod | quote }}
- name: EC2_DESCRIBE_BURST
  value: {{ $c.ec2RateLimits.describeBurst | quote }}
- name: EC2_DESCRIBE_RATE
  value: {{ $c.ec2RateLimits.describeRate | quote }}
- name: EC2_MUTATING_BURST
  value: {{ $c.ec2RateLimits.mutatingBurst | quote }}
- name: EC2_MUTATING_RATE
  value: {{ $c.ec2RateLimits.mutatingRate | quote }}
- name: EC2_BUDGET_SHARE
  value: {{ $c.ec2BudgetShare | quote }}
- name: METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
- name: HEALTH_PROBE_PORT
  value: {{ .Values.health.port | quote }}
{{- with .Values.defaultTags }}
- name: EXTRA_ENI_TAGS
  value: {{ include "eni.defaultTags" $ | quote }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* defaultTags as EXTRA_ENI_TAGS: "k=v,k2=v2", keys sorted (the controller parses it in config.py). */}}
{{- define "eni.defaultTags" -}}
{{- $pairs := list }}
{{- range $key, $value := .Values.defaultTags }}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The controller container's volume mounts and the pod's volumes (Deployment and helm test pod). */}}
{{- define "eni.volumeMounts" -}}
# The root filesystem is read-only; anything that needs scratch space gets /tmp.
- name: tmp
  mountPath: /tmp
{{- with .Values.controller.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "eni.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.controller.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The default pod anti-affinity of the controller's replicas (podAntiAffinityPreset). */}}
{{- define "eni.podAntiAffinity" -}}
{{- if eq .Values.podAntiAffinityPreset "hard" }}
requiredDuringSchedulingIgnoredDuringExecution:
  - topologyKey: kubernetes.io/hostname
    labelSelector:
      matchLabels:
        {{- include "eni.selectorLabels" . | nindent 8 }}
{{- else if eq .Values.podAntiAffinityPreset "soft" }}
preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    podAffinityTerm:
      topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "eni.selectorLabels" . | nindent 10 }}
{{- end }}
{{- end }}

{{/* affinity, with the preset's podAntiAffinity unless affinity.podAntiAffinity is given. */}}
{{- define "eni.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) }}
{{- if and (not (hasKey $affinity "podAntiAffinity")) (ne .Values.podAntiAffinityPreset "none") }}
{{- $_ := set $affinity "podAntiAffinity" (fromYaml (include "eni.podAntiAffinity" .)) }}
{{- end }}
{{- if $affinity }}
{{- toYaml $affinity }}
{{- end }}
{{- end }}
