# One image for SAML Preflight's services. By default it runs the test IdP:
#   gunicorn 'idp:create_app()'   on 0.0.0.0:8080 inside the container (publish it on 127.0.0.1 only)
# The validator's CLI is in the same image: docker run --rm IMAGE saml-validate demo
#
#   /config  settings, mounted read-only; IDP_CONFIG=/config/idp.toml selects a settings file
#            (optional: without it the IdP starts on its defaults with two demo personas).
#            Relative paths in idp.toml (an SP's metadata file) resolve against /config.
#   /data    the IdP's signing keys (/data/keys, mode 0600) and its SQLite store: keep it in a volume,
#            or every restart generates a new key (and SPs must trust a new certificate).
#
# Build it with `make image` (docs/deploy.md): the wheels of the project and of every dependency
# are built on the host first (build/wheels), so nothing inside the build reaches the network.
# The context is only build/wheels (.dockerignore). It needs no BuildKit feature: the legacy
# builder of Debian's docker.io 20.10 builds it as well as BuildKit does.
#
# BASE: any Debian-like image whose `python3` is CPython 3.11 (the wheels are built by the host's
# 3.11) with the venv module and useradd: python:3.11-slim (the default), or, where no image
# registry is reachable, a Debian bookworm root made by debootstrap and `docker import`ed
# (docs/deploy.md, "No image registry").
ARG BASE=python:3.11-slim

# --- install: a virtual environment from the host's wheels, offline ---------------------------------
FROM ${BASE} AS install
LABEL saml-preflight.stage=install
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1
COPY build/wheels /wheels
# pip and setuptools leave the environment once it is installed: the running services need neither.
RUN python3 -m venv /opt/saml-preflight \
    && /opt/saml-preflight/bin/pip install --no-index --find-links=/wheels saml-preflight \
    && /opt/saml-preflight/bin/pip uninstall --yes pip setuptools \
    && /opt/saml-preflight/bin/python -c "import idp, validator.web, gunicorn.app.wsgiapp, lxml, xmlsec, argon2, cryptography"

# --- runtime ----------------------------------------------------------------------------------------
FROM ${BASE}
COPY --from=install /opt/saml-preflight /opt/saml-preflight
# PATH spelled out: an image made by `docker import` has no PATH of its own to extend.
ENV PATH=/opt/saml-preflight/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
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
