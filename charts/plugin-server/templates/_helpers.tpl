{{- define "plugin-server.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "plugin-server.selectorLabels" -}}
app.kubernetes.io/name: plugin-server
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "plugin-server.labels" -}}
{{ include "plugin-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* the settings as environment variables; DATA_DIR is the writable volume */}}
{{- define "plugin-server.env" -}}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
- name: DATA_DIR
  value: /data
{{- end -}}

{{- define "plugin-server.volumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "plugin-server.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}
