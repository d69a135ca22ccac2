# One image for web, worker, beat and migrate (docker-compose.yml picks the command).
# Two stages: the builder installs requirements.txt (the runtime packages only, all wheels for
# linux/amd64 and linux/arm64: `make check-wheels`) into a venv; the runtime stage gets that venv
# and the app's code, nothing else: no pip cache, no requirements-local/dev/lab packages.
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Wheels only: the slim image has no compiler, and a package without a wheel for this
# architecture should fail here, by name, rather than half-build.
RUN /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: -r /tmp/requirements.txt


FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=flashdeals.settings.production

# A numeric, unprivileged user (a fixed uid, so `runAsNonRoot` and file ownership on the host can
# rely on it). It owns nothing in the image: the code and the venv stay root's, read-only to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY manage.py ./
COPY deploy/gunicorn.conf.py deploy/
COPY templates/ templates/
COPY flashdeals/ flashdeals/
COPY apps/ apps/

# collectstatic needs settings that import; production settings refuse published keys, so give
# it random throwaway ones that exist only for this command (never stored in the image).
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    JWT_SECRET="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    DATABASE_URL=postgres://x@localhost/x REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput -v0

USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK here: the same image runs web, worker and beat, which are checked differently;
# docker-compose.yml gives each service its own.
# The WSGI server WEB_SERVER names (flashdeals/serve.py): gunicorn with deploy/gunicorn.conf.py
# unless WEB_SERVER=granian.
CMD ["python", "-m", "flashdeals.serve"]
