#!/bin/sh
# make-secrets.sh [DIR] — the passwords and connection URLs of deploy/compose.yaml,
# random, one file each, readable by the owner only (default DIR: deploy/secrets).
# Existing files are kept, so running it again never changes a password.
# Not made here: the TLS certificates (deploy/README.md) and ingest_mqtt_url,
# which needs the broker account: `parkbazaar broker account create ingest --role ingest`.
set -eu
dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
keep_or_write() {  # NAME CONTENT
    [ -s "$dir/$1" ] || printf '%s\n' "$2" > "$dir/$1"
}

for name in postgres_password parkbazaar_db_password monitor_db_password \
            replicator_db_password grafana_admin_password; do
    keep_or_write "$name" "$(random)"
done
keep_or_write database_url \
    "postgresql://parkbazaar:$(cat "$dir/parkbazaar_db_password")@db:5432/parkbazaar"
keep_or_write backup_pgpass "db:5432:*:postgres:$(cat "$dir/postgres_password")"
keep_or_write alert_webhook_token "replace-with-your-webhook-token"
echo "secrets in $dir; still to add: ingest_mqtt_url and the *.pem certificates (deploy/README.md)"
