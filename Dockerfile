# The application image: API, worker, beat and Flower run from it with different commands.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/iw/metrics

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 iw \
    && mkdir -p /var/lib/iw/metrics && chown -R iw /var/lib/iw

WORKDIR /app
COPY setup.cfg pyproject.toml README.md alembic.ini gunicorn.conf.py ./
COPY api ./api
COPY engine ./engine
COPY models ./models
COPY tasks ./tasks
COPY workers ./workers
COPY monitoring ./monitoring
RUN pip install .

USER iw
ENV GUNICORN_BIND=0.0.0.0:8080
EXPOSE 8080 9808
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"]
