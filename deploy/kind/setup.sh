#!/usr/bin/env bash
# The reference stack on the two kind clusters of `make kind-up` (which calls this after
# creating the clusters, loading the ERP image and installing CloudNativePG and Traefik).
# Idempotent: re-running applies the same state. Needs kubectl, openssl, base64.
#
# primary (kind-ledgerdrill): ERP (3 replicas), Redis, MinIO (backups), the CNPG cluster
#   with WAL archiving, the ingress and its TLS secret, the ERP's config secret.
# dr (kind-ledgerdrill-dr): the same ERP scaled to 0 (cold), Redis, a CNPG replica cluster
#   streaming from the primary, the same TLS secret and ERP config.
set -euo pipefail
cd "$(dirname "$0")"
PRIMARY=kind-ledgerdrill
DR=kind-ledgerdrill-dr
NS=ledgerdrill
k() { local ctx=$1; shift; kubectl --context "$ctx" -n "$NS" "$@"; }

# 1. primary
kubectl --context "$PRIMARY" apply -f erp.yaml -f redis.yaml -f minio.yaml -f database.yaml -f ingress.yaml
k "$PRIMARY" wait --for=condition=Ready cluster/ledgerdrill-db --timeout=15m

# 2. the ingress TLS secret (self-signed for erp.localtest.me; the same in both clusters)
if ! k "$PRIMARY" get secret ledgerdrill-tls >/dev/null 2>&1; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj /CN=erp.localtest.me \
    -addext subjectAltName=DNS:erp.localtest.me -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
  k "$PRIMARY" create secret tls ledgerdrill-tls --cert "$tmp/tls.crt" --key "$tmp/tls.key"
fi

# 3. the ERP's config (ErpConfig JSON) from the app credentials CNPG generated
uri=$(k "$PRIMARY" get secret ledgerdrill-db-app -o jsonpath='{.data.uri}' | base64 -d)
config=$(printf '{"dsn": "%s?target_session_attrs=read-write", "redis_url": "redis://redis.%s.svc:6379/0", "database": "ledgerdrill"}' "$uri" "$NS")
k "$PRIMARY" create secret generic ledgerdrill-erp-config --from-literal=erp.json="$config" \
  --dry-run=client -o yaml | kubectl --context "$PRIMARY" apply -f -

# 4. the ERP's schema and its login (the Secret the probes and the load read: login,
#    password, database); the password is generated once and kept in the Secret
if ! k "$PRIMARY" get secret ledgerdrill-erp-login >/dev/null 2>&1; then
  k "$PRIMARY" create secret generic ledgerdrill-erp-login --from-literal=login=accountant \
    --from-literal=password="$(openssl rand -hex 16)" --from-literal=database=ledgerdrill
fi
k "$PRIMARY" delete job ledgerdrill-erp-schema --ignore-not-found
cat <<JOB | kubectl --context "$PRIMARY" apply -f -
apiVersion: batch/v1
kind: Job
metadata: {name: ledgerdrill-erp-schema, namespace: $NS}
spec:
  backoffLimit: 5
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: schema
          image: ledgerdrill/erp:2026.11.0
          command: [python, -c, "import json, os; from ledgerdrill.platforms.sandbox.erp.schema import ensure_schema; ensure_schema(json.load(open('/etc/ledgerdrill/erp.json'))['dsn'], os.environ['LOGIN'], os.environ['PASSWORD'])"]
          env:
            - {name: LOGIN, valueFrom: {secretKeyRef: {name: ledgerdrill-erp-login, key: login}}}
            - {name: PASSWORD, valueFrom: {secretKeyRef: {name: ledgerdrill-erp-login, key: password}}}
          volumeMounts: [{name: config, mountPath: /etc/ledgerdrill, readOnly: true}]
      volumes: [{name: config, secret: {secretName: ledgerdrill-erp-config}}]
JOB
k "$PRIMARY" wait --for=condition=complete job/ledgerdrill-erp-schema --timeout=5m
k "$PRIMARY" rollout restart deployment/ledgerdrill-erp

# 5. dr: copy what the replica cluster and the ERP need, then the stack with a replica cluster
kubectl --context "$DR" apply -f erp.yaml -f redis.yaml -f ingress.yaml
for secret in ledgerdrill-db-replication ledgerdrill-db-ca ledgerdrill-tls ledgerdrill-erp-config \
              ledgerdrill-erp-login; do
  # only type and data travel: uid, resourceVersion and owner references belong to the primary
  type=$(k "$PRIMARY" get secret "$secret" -o jsonpath='{.type}')
  args=()
  for key in $(k "$PRIMARY" get secret "$secret" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}'); do
    value=$(k "$PRIMARY" get secret "$secret" -o go-template="{{index .data \"$key\" | base64decode}}")
    args+=(--from-literal="$key=$value")
  done
  k "$DR" create secret generic "$secret" --type="$type" "${args[@]}" --dry-run=client -o yaml \
    | kubectl --context "$DR" apply -f -
done
kubectl --context "$DR" apply -f dr/database.yaml
k "$DR" scale deployment/ledgerdrill-erp --replicas=0
k "$DR" wait --for=condition=Ready cluster/ledgerdrill-db --timeout=15m
echo "reference stack ready in $PRIMARY and $DR"
