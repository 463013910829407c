# The worker image the Helm chart names (charts/plugin-server: plugin-server:0.1.0):
#
#   docker build -t plugin-server:0.1.0 .
#
# The first stage installs the project and its dependencies into a virtual environment
# (every dependency comes as a wheel); the final stage is the slim Python image with that
# environment, no compilers or package tools' caches, running as an unprivileged user. The
# chart mounts writable volumes at /data (DATA_DIR) and /tmp and keeps the rest read-only.
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY plugin_runtime ./plugin_runtime
COPY schemas ./schemas
COPY topologies ./topologies
RUN python -m venv /opt/plugin-server \
    && /opt/plugin-server/bin/pip install . \
    && /opt/plugin-server/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim-bookworm

COPY --from=build /opt/plugin-server /opt/plugin-server
RUN groupadd --gid 10001 plugin-server \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin plugin-server \
    && mkdir -p /data && chown 10001:10001 /data
ENV PATH=/opt/plugin-server/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    WORKER_HTTP_HOST=0.0.0.0
WORKDIR /data
USER 10001:10001
EXPOSE 6066
CMD ["plugin-server", "worker"]
