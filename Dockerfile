# syntax=docker/dockerfile:1
# Build wheels in one stage (the full image has the C compiler the flame graph decoder's
# C module needs), run them in a slim non-root image.
FROM python:3.12 AS builder
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY watcher ./watcher
COPY migrations ./migrations
RUN pip install --no-cache-dir --upgrade pip==24.3.1 \
    && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYROWATCH_CONFIG=/etc/pyrowatch/config.toml \
    PYROWATCH_WATCHER__DATABASE_URL=sqlite:////var/lib/pyrowatch/pyrowatch.db \
    PYROWATCH_WATCHER__LISTEN=0.0.0.0:9465
RUN groupadd --system --gid 10001 pyrowatch \
    && useradd --system --uid 10001 --gid pyrowatch --home-dir /var/lib/pyrowatch pyrowatch \
    && mkdir -p /var/lib/pyrowatch /etc/pyrowatch \
    && chown pyrowatch:pyrowatch /var/lib/pyrowatch
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && python -c "import watcher.flamegraph._speedups"
USER 10001:10001
VOLUME ["/var/lib/pyrowatch"]
EXPOSE 9465
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9465/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["pyrowatch"]
CMD ["run"]
