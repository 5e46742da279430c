# One image for SAML Preflight's services. By default it runs the test IdP:
#   gunicorn 'idp:create_app()'   on 0.0.0.0:8080 inside the container (publish it on 127.0.0.1 only)
# The validator's CLI is in the same image: docker run --rm IMAGE saml-validate demo
#
#   /config  settings, mounted read-only; IDP_CONFIG=/config/idp.toml selects a settings file
#            (optional: without it the IdP starts on its defaults with two demo personas).
#            Relative paths in idp.toml (an SP's metadata file) resolve against /config.
#   /data    the IdP's signing keys (/data/keys, mode 0600) and its SQLite store: keep it in a volume,
#            or every restart generates a new key (and SPs must trust a new certificate).
# Builds with BuildKit (Docker's default builder since 23.0): the runtime stage mounts the wheels.

# --- build: wheels of the project and of every dependency ------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the package is built from (no .venv, tests or var/ from the working tree).
COPY pyproject.toml README.md ./
COPY metadata ./metadata
COPY idp ./idp
COPY validator ./validator
RUN pip wheel --wheel-dir /wheels .

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels saml-preflight
# A non-root user with a home: gunicorn keeps its control socket in ~/.gunicorn.
RUN groupadd --system --gid 10001 saml \
    && useradd --system --uid 10001 --gid saml --home-dir /home/saml --create-home --shell /usr/sbin/nologin saml \
    && mkdir -p /config /data \
    && chown saml:saml /data \
    && chmod 0700 /data
ENV IDP_KEY_FOLDER=/data/keys \
    IDP_STORE=sqlite:////data/state.sqlite3 \
    GUNICORN_CMD_ARGS="--bind 0.0.0.0:8080 --workers 2 --access-logfile -"
VOLUME ["/data"]
WORKDIR /config
USER saml:saml
EXPOSE 8080
CMD ["gunicorn", "idp:create_app()"]
