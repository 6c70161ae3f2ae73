{{/*
How this chart renders: the Tasks, the Pipeline, the Triggers and the RBAC are the repository's own
files (files/tasks -> tasks/, files/pipeline -> pipeline/), read with .Files.Get and fromYaml. A
template changes only the fields listed in .ci/chart_drift.py (namespace, labels, image and endpoint
defaults, Secret names, the git server and label literals of the Trigger filters), then writes the
object with toYaml. There is no second copy of any spec; .ci/chart checks the rendered objects
against the files field by field.
*/}}

{{/* Labels added to every object (the canonical labels stay). */}}
{{- define "ct.labels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* An image reference from {repository, digest, tag}: repository[:tag][@digest]. */}}
{{- define "ct.imageRef" -}}
{{- $ref := .repository -}}
{{- if .tag }}{{ $ref = printf "%s:%s" $ref .tag }}{{ end -}}
{{- if .digest }}{{ $ref = printf "%s@%s" $ref .digest }}{{ end -}}
{{- $ref -}}
{{- end }}

{{- define "ct.image" -}}
{{- include "ct.imageRef" .Values.image -}}
{{- end }}

{{- define "ct.kfpSdkImage" -}}
{{- include "ct.imageRef" .Values.kfpSdkImage -}}
{{- end }}

{{/* USER_NAME, or a failure naming what needed it. Args: list root "what needs it". */}}
{{- define "ct.userName" -}}
{{- $root := index . 0 -}}
{{- required (printf "USER_NAME is empty, and %s is derived from it: set USER_NAME (the workshop user) or set %s" (index . 1) (index . 1)) $root.Values.USER_NAME -}}
{{- end }}

{{/* cluster_domain, or a failure naming what needed it. Args: list root "what needs it". */}}
{{- define "ct.clusterDomain" -}}
{{- $root := index . 0 -}}
{{- required (printf "cluster_domain is empty, and %s is derived from it: set cluster_domain (e.g. apps.cluster-abc.example.com) or set %s" (index . 1) (index . 1)) $root.Values.cluster_domain -}}
{{- end }}

{{/* The git server as a URL without a trailing slash: git_server (a host means https://host), else
     https://gitea-gitea.<cluster_domain>. */}}
{{- define "ct.gitServer" -}}
{{- $s := .Values.git_server -}}
{{- if not $s }}{{ $s = printf "gitea-gitea.%s" (include "ct.clusterDomain" (list . "git_server")) }}{{ end -}}
{{- if not (contains "://" $s) }}{{ $s = printf "https://%s" $s }}{{ end -}}
{{- trimSuffix "/" $s -}}
{{- end }}

{{- define "ct.registryName" -}}
{{- if .Values.modelRegistry.name }}{{ .Values.modelRegistry.name }}{{ else }}{{ include "ct.userName" (list . "modelRegistry.name") }}-prod-registry{{ end -}}
{{- end }}

{{/* Every endpoint the Pipeline uses: the value when set, else the workshop's convention. */}}
{{- define "ct.endpoints" -}}
{{- $e := .Values.endpoints -}}
{{- $ns := .Release.Namespace -}}
{{- $git := include "ct.gitServer" . -}}
{{- $gitopsRepo := $e.gitopsRepo -}}
{{- if not $gitopsRepo }}{{ $gitopsRepo = printf "%s/mlops-gitops" (include "ct.userName" (list . "endpoints.gitopsRepo")) }}{{ end -}}
kfpUrl: {{ $e.kfpUrl | default (printf "https://ds-pipeline-dspa.%s.svc:8443" $ns) | quote }}
registryUrl: {{ if $e.registryUrl }}{{ $e.registryUrl | quote }}{{ else }}{{ printf "https://%s-rest.%s" (include "ct.registryName" .) (include "ct.clusterDomain" (list . "endpoints.registryUrl")) | quote }}{{ end }}
registryPageUrl: {{ if $e.registryPageUrl }}{{ $e.registryPageUrl | quote }}{{ else }}{{ printf "https://rhods-dashboard-redhat-ods-applications.%s/modelRegistry/%s/" (include "ct.clusterDomain" (list . "endpoints.registryPageUrl")) (include "ct.registryName" .) | quote }}{{ end }}
gitServer: {{ $git | quote }}
gitopsRepo: {{ $gitopsRepo | quote }}
gitopsRepoUrl: {{ $e.gitopsRepoUrl | default (printf "%s/%s.git" $git $gitopsRepo) | quote }}
forgeApiUrl: {{ if $e.forgeApiUrl }}{{ $e.forgeApiUrl | quote }}{{ else if ne .Values.forge "github" }}{{ $git | quote }}{{ else if eq $git "https://github.com" }}"https://api.github.com"{{ else }}{{ fail "endpoints.forgeApiUrl is empty and forge is github on a server other than github.com: set endpoints.forgeApiUrl (GitHub Enterprise: https://<host>/api/v3)" }}{{ end }}
modelcarRepository: {{ $e.modelcarRepository | default (printf "image-registry.openshift-image-registry.svc:5000/%s" $ns) | quote }}
{{- end }}

{{/* A CEL string literal (single quotes). */}}
{{- define "ct.celString" -}}
'{{ . | replace "\\" "\\\\" | replace "'" "\\'" }}'
{{- end }}

{{/* Replace a placeholder literal that must occur exactly once in a canonical string.
     Args: dict "in" string, "old", "new", "where" (for the message). */}}
{{- define "ct.replaceOnce" -}}
{{- if ne (len (splitList .old .in)) 2 -}}
{{- fail (printf "%s: expected the placeholder %s exactly once in %q; the canonical file changed, update charts/ct-pipeline/templates" .where .old .in) -}}
{{- end -}}
{{- replace .old .new .in -}}
{{- end }}

{{/* Set field to `to` on the element of a list of maps whose `name` is name (in place). Fails when
     no element has that name. Args: dict "list" "name" "field" "to" "where". */}}
{{- define "ct.setNamed" -}}
{{- $found := false -}}
{{- range $item := .list -}}
{{- if eq $item.name $.name }}{{ $_ := set $item $.field $.to }}{{ $found = true }}{{ end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "%s: no element named %s; the canonical file changed, update charts/ct-pipeline/templates" .where .name) -}}
{{- end -}}
{{- end }}

{{/* The element of a list of maps whose `name` is name, as YAML (for reading). */}}
{{- define "ct.named" -}}
{{- range $item := .list -}}
{{- if eq $item.name $.name }}{{ toYaml $item }}{{ end -}}
{{- end -}}
{{- end }}

{{/* Load a canonical file (path under files/) as a map; fails on YAML errors. Args: dict root path.
     Returns YAML (include cannot return a map): use `include ... | fromYaml`. */}}
{{- define "ct.load" -}}
{{- $text := .root.Files.Get .path -}}
{{- if not $text }}{{ fail (printf "%s: missing or empty (files/tasks and files/pipeline are symlinks to the repository's tasks/ and pipeline/)" .path) }}{{ end -}}
{{- $doc := fromYaml $text -}}
{{- if hasKey $doc "Error" }}{{ fail (printf "%s: %s" .path $doc.Error) }}{{ end -}}
{{- toYaml $doc -}}
{{- end }}

{{/* Write one object: the chart's labels merged in, the release namespace when namespaced and
     unset, and a comment naming the canonical file it comes from. Args: dict root obj source
     namespaced. */}}
{{- define "ct.emit" -}}
{{- $o := .obj -}}
{{- $meta := $o.metadata -}}
{{- $labels := merge (default (dict) $meta.labels) (include "ct.labels" .root | fromYaml) -}}
{{- $_ := set $meta "labels" $labels -}}
{{- if and .namespaced (not $meta.namespace) }}{{ $_ := set $meta "namespace" .root.Release.Namespace }}{{ end }}
---
{{- with .source }}
# ct-steps-source: {{ . }}
{{- end }}
{{ toYaml $o }}
{{ end }}

{{/* The placeholder literals of pipeline/triggers/ the chart replaces (each must occur exactly once
     where it is replaced). */}}
{{- define "ct.placeholders" -}}
gitServer: https://gitea-gitea.apps.cluster.example.com
repoOwner: user1
alertLabel: model
alertSecretName: ct-alertmanager-token
alertSecretKey: token
{{- end }}

{{/* The test or prod namespace: namespaces.<env>, else <USER_NAME>-<env>. Args: list root env. */}}
{{- define "ct.envNamespace" -}}
{{- $root := index . 0 -}}
{{- $env := index . 1 -}}
{{- $v := get $root.Values.namespaces $env -}}
{{- if $v }}{{ $v }}{{ else }}{{ include "ct.userName" (list $root (printf "namespaces.%s" $env)) }}-{{ $env }}{{ end -}}
{{- end }}

{{/* The webhook host: route.host, else el-ct-listener-<namespace>.<cluster_domain> (empty when
     cluster_domain is: OpenShift then assigns that same default). */}}
{{- define "ct.routeHost" -}}
{{- if .Values.route.host -}}
{{- .Values.route.host -}}
{{- else if .Values.cluster_domain -}}
{{- $label := printf "el-ct-listener-%s" .Release.Namespace -}}
{{- if gt (len $label) 63 }}{{ fail (printf "the Route host label %s is longer than 63 characters (namespace %s): set route.host" $label .Release.Namespace) }}{{ end -}}
{{- printf "%s.%s" $label .Values.cluster_domain -}}
{{- end -}}
{{- end }}

{{/* The webhook URL, or empty when only the cluster knows it. Always https: without
     ingress.tlsSecretName, TLS is terminated in front of the Ingress. */}}
{{- define "ct.webhookUrl" -}}
{{- if and .Values.route.enabled (include "ct.routeHost" .) -}}
https://{{ include "ct.routeHost" . }}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
https://{{ .Values.ingress.host }}
{{- end -}}
{{- end }}
