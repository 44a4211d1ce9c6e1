# Browser assets (htmx, the QR scanner) come from npm; only the runtime packages are installed.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=kibo.settings.production

# pgBackRest: beat reads the backup repository with it (kibo.backups), never the database.
RUN apt-get update && apt-get install -y --no-install-recommends pgbackrest \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
COPY --from=assets /app/node_modules ./node_modules
# Runtime dependencies only, exactly as locked (requirements/runtime.txt, hashes checked): no
# test or lint tools, no embedded servers, no devtools (.dockerignore). collectstatic needs
# settings to load; these build-time values are never used at run time.
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt \
    && pip install --no-cache-dir --no-deps -e . \
    && DJANGO_SECRET_KEY=build-time-placeholder-build-time-placeholder \
       KIBO_ESCROW_PRIVATE_KEY=build-time KIBO_S3_BUCKET=build-time \
       DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost \
       python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 kibo

USER kibo
EXPOSE 8000
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/kibo-metrics
CMD ["gunicorn", "kibo.wsgi:application", "-c", "deploy/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "3"]
