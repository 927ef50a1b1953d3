# syntax=docker/dockerfile:1
# One image for every parkbazaar command (deploy/README.md):
#   docker run IMAGE migrate | ingest | api --host 0.0.0.0 | provision FILE | broker config …
# Build: docker build -t parkbazaar:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtual environment with parkbazaar and its dependencies --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/parkbazaar
WORKDIR /src
COPY pyproject.toml README.md ./
COPY occupancy occupancy
COPY gateway gateway
COPY ingest ingest
COPY dashboard_api dashboard_api
COPY simulators simulators
COPY parkbazaar parkbazaar
RUN /opt/parkbazaar/bin/pip install . \
 && /opt/parkbazaar/bin/python -m compileall -q /opt/parkbazaar

# -- run: the interpreter, the virtual environment, nothing else ---------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="parkbazaar" \
      org.opencontainers.image.description="Live occupancy of parking lots and produce bazaars" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 parkbazaar \
 && useradd --system --uid 10001 --gid parkbazaar --home-dir /var/lib/parkbazaar --create-home parkbazaar
COPY --from=build /opt/parkbazaar /opt/parkbazaar
COPY deploy/docker/entrypoint.sh /usr/local/bin/parkbazaar-entrypoint
ENV PATH=/opt/parkbazaar/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PARKBAZAAR_DATA_DIR=/var/lib/parkbazaar \
    PARKBAZAAR_API__HOST=0.0.0.0 \
    PARKBAZAAR_INGEST__METRICS_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/parkbazaar
# API (HTTP, /metrics) and a standalone ingest's metrics (ingest.metrics_port)
EXPOSE 8000 9102
ENTRYPOINT ["/usr/local/bin/parkbazaar-entrypoint"]
CMD ["--help"]
