# upstack as one image for both roles: `upstack serve` (the default) and `upstack worker` (see docker-compose.yml).
# Build stage: install the package (not editable) and its dependencies into a venv that the runtime copies whole.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/upstack
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/upstack/bin/pip install .

FROM python:3.11-slim
RUN useradd --system --no-log-init --uid 10001 --user-group --home-dir /data --no-create-home upstack \
    && mkdir /data && chown upstack:upstack /data
COPY --from=build /opt/upstack /opt/upstack
# The SQLite file (when UPSTACK_DATABASE_URL is unset) and the data lake live under /data.
ENV PATH=/opt/upstack/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    UPSTACK_DATA_DIR=/data \
    UPSTACK_HOST=0.0.0.0
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8080
# slim has no curl: probe with the interpreter. Worker containers have no HTTP port and disable this check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_upstack/health' % os.environ.get('UPSTACK_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["upstack"]
CMD ["serve"]
