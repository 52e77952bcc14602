# The application image: API (serving the web console at /), worker, beat and Flower
# run from it with different commands (docker-compose.yml). PROMETHEUS_MULTIPROC_DIR is
# set by the services that serve /metrics (api, worker), never here: Flower and beat must
# not write metric files, and prometheus_client treats even an empty value as set.

# --- the web console: npm ci from the committed lock file, then the production build
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build

# --- the Python application, run as a non-root user
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WEB_DIST_DIR=/app/web/dist

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 iw \
    && mkdir -p /var/lib/iw/metrics && chown -R iw /var/lib/iw

WORKDIR /app
COPY setup.cfg pyproject.toml README.md alembic.ini gunicorn.conf.py gunicorn_streams.conf.py ./
COPY api ./api
COPY engine ./engine
COPY models ./models
COPY tasks ./tasks
COPY workers ./workers
COPY monitoring ./monitoring
COPY cli ./cli
RUN pip install .
COPY --from=web /web/dist ./web/dist

USER iw
ENV GUNICORN_BIND=0.0.0.0:8080
EXPOSE 8080 9808
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"]
