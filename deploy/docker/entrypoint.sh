#!/bin/sh
# Entry point of the parkbazaar image. Secrets come from files: every
# PARKBAZAAR_<KEY>_FILE variable names a file (a compose or Kubernetes secret)
# whose content becomes PARKBAZAAR_<KEY> (a trailing newline is dropped), e.g.
# PARKBAZAAR_DATABASE_URL_FILE=/run/secrets/database_url. Then the container's
# arguments run as a parkbazaar command: `ingest`, `api --host 0.0.0.0`, `migrate`…
set -eu

for var in $(env | sed -n 's/^\(PARKBAZAAR_[A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    file=$(printenv "${var}_FILE")
    if printenv "$var" >/dev/null; then
        echo "parkbazaar-entrypoint: both $var and ${var}_FILE are set; keep one" >&2
        exit 64
    fi
    if [ ! -r "$file" ]; then
        echo "parkbazaar-entrypoint: ${var}_FILE: cannot read $file" >&2
        exit 64
    fi
    value=$(cat "$file")
    export "$var=$value"
    unset "${var}_FILE"
done

exec parkbazaar "$@"
