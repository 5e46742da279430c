#!/usr/bin/env bash
# The compose stack, proven end to end (docs/deploy.md; tests/test_compose_smoke.py runs it):
#
#   1. `make image BASE=...`: wheels built on this host, the image built with no network inside.
#      BASE: python:3.11-slim when the daemon has it, else saml-preflight-base:bookworm, made here
#      with debootstrap and `docker import` when missing (needs root and debootstrap).
#   2. `compose up -d` of docker-compose.yml as it is, in its own project (saml-preflight-smoke: its
#      own containers and volumes, never a real deployment's), with a config folder made here and
#      the ports 18080 (IdP) and 18081 (validator) on 127.0.0.1; waits for both health checks.
#   3. The first staff account (`compose run --rm -T validator-cli staff add`, password on stdin),
#      then a test login as a browser would do it over the published ports: sign in to the
#      validator, /test-login/smoke → the IdP container answers the AuthnRequest (an auto-login
#      persona) → the validator container's test SP verifies the response; its report must say
#      "ready" with the signature verified.
#   4. `compose down` and `up -d` again (new containers, the same volumes): the IdP's signing
#      certificate must be the same, and the validator must still know the staff account and
#      the test login's report.
#   5. `compose down -v` and the config folder removed: nothing it started is left (the image is).
#
# Compose: the v2 plugin (`docker compose`) when the client has it, else docker-compose 1.29
# (Debian bookworm's package); COMPOSE="docker-compose" picks one. Exit status 0 only when every
# step passed; each step prints one line, a failure the service logs.
#
# Runs are serialized by a lock (flock on $TMPDIR/saml-preflight-smoke.lock): a second run waits.
# Environment: BASE, SMOKE_PROJECT (saml-preflight-smoke), SMOKE_IDP_PORT (18080),
# SMOKE_VALIDATOR_PORT (18081), SMOKE_HEALTHY_TIMEOUT (seconds, 120), SMOKE_SKIP_BUILD=1 (use the
# saml-preflight:local image as it is), COMPOSE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROJECT=${SMOKE_PROJECT:-saml-preflight-smoke}
IDP_PORT=${SMOKE_IDP_PORT:-18080}
VALIDATOR_PORT=${SMOKE_VALIDATOR_PORT:-18081}
HEALTHY_TIMEOUT=${SMOKE_HEALTHY_TIMEOUT:-120}
IMAGE=saml-preflight:local
DEBIAN_BASE=saml-preflight-base:bookworm
STAFF_EMAIL=smoke@example.com
STAFF_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
IDP="http://127.0.0.1:$IDP_PORT"
VALIDATOR="http://127.0.0.1:$VALIDATOR_PORT"
START=$(date +%s)

log() { printf '[smoke %3ss] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# --- what runs it ------------------------------------------------------------------------------
# One run at a time on a machine: two would share the project, the ports and the image tag.
exec 9>"${TMPDIR:-/tmp}/saml-preflight-smoke.lock"
if ! flock -n 9; then
    log "another smoke run holds ${TMPDIR:-/tmp}/saml-preflight-smoke.lock: waiting for it (15 min at most)"
    flock -w 900 9 || die "the other smoke run did not finish within 15 min"
fi
command -v docker >/dev/null || die "no docker client on PATH"
docker info >/dev/null 2>&1 || die "no Docker daemon answers: $(docker info 2>&1 | tail -n 1)"
if [ -n "${COMPOSE:-}" ]; then
    read -r -a COMPOSE_CMD <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE_CMD=(docker-compose)
else
    die "neither \`docker compose\` (v2 plugin) nor docker-compose (v1) is installed"
fi
log "daemon $(docker version -f '{{.Server.Version}}'), storage $(docker info -f '{{.Driver}}'); compose: ${COMPOSE_CMD[*]} ($("${COMPOSE_CMD[@]}" version --short 2>/dev/null || "${COMPOSE_CMD[@]}" version | head -n 1))"

for port in "$IDP_PORT" "$VALIDATOR_PORT"; do
    python3 -c "import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null \
        || die "port $port on 127.0.0.1 is taken (SMOKE_IDP_PORT / SMOKE_VALIDATOR_PORT choose others)"
done

# --- the base image: python:3.11-slim, or Debian's own python3 from debootstrap -----------------
debian_base() {
    command -v debootstrap >/dev/null || die "$DEBIAN_BASE is missing and debootstrap is not installed (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || die "$DEBIAN_BASE is missing, and debootstrap needs root"
    local root
    root=$(mktemp -d /var/tmp/saml-preflight-rootfs.XXXXXX)
    log "making $DEBIAN_BASE: debootstrap bookworm into $root (a few minutes)"
    debootstrap --variant=minbase --include=python3,python3-venv,passwd bookworm "$root" >"$root.log" 2>&1 \
        || { tail -n 20 "$root.log"; rm -rf "$root"; die "debootstrap failed (above)"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
        "$root"/usr/share/man "$root"/usr/share/info
    tar --numeric-owner -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$DEBIAN_BASE" >/dev/null
    rm -rf "$root" "$root.log"
}

if [ "${SMOKE_SKIP_BUILD:-}" = 1 ]; then
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "SMOKE_SKIP_BUILD=1 but there is no $IMAGE"
    log "build skipped: $IMAGE as it is"
else
    if [ -z "${BASE:-}" ]; then
        if docker image inspect python:3.11-slim >/dev/null 2>&1; then
            BASE=python:3.11-slim
        else
            BASE=$DEBIAN_BASE
            docker image inspect "$BASE" >/dev/null 2>&1 || debian_base
        fi
    fi
    built=$(now)
    log "make image BASE=$BASE"
    make -C "$ROOT" --no-print-directory image BASE="$BASE" >"${TMPDIR:-/tmp}/saml-preflight-smoke-build.log" 2>&1 \
        || { tail -n 30 "${TMPDIR:-/tmp}/saml-preflight-smoke-build.log"; die "make image failed (above)"; }
    log "image built in $(since "$built") s"
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "image $IMAGE: $((size / 1000000)) MB ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c 8-19)), base ${BASE:-as built}"

# --- a config folder of its own ------------------------------------------------------------------
CONF=$(mktemp -d /tmp/saml-preflight-smoke.XXXXXX)
CLIENT="$CONF.login.py"
export COMPOSE_PROJECT_NAME=$PROJECT SAML_PREFLIGHT_CONFIG=$CONF SAML_PREFLIGHT_IDP_PORT=$IDP_PORT \
    SAML_PREFLIGHT_VALIDATOR_PORT=$VALIDATOR_PORT BASE=${BASE:-python:3.11-slim}
compose() { "${COMPOSE_CMD[@]}" --file "$ROOT/docker-compose.yml" --project-name "$PROJECT" "$@"; }

cleanup() {
    local status=$?
    if [ "$status" != 0 ]; then
        log "service logs (last 40 lines each):"
        compose logs --no-color --tail 40 idp validator 2>&1 | sed 's/^/    /' || true
    fi
    compose --profile cli down --volumes --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$CONF" "$CLIENT"
    left=$(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
    if [ -n "$left" ]; then
        log "left behind (containers, volumes): $(printf %s "$left" | tr "\n" " ")"
        [ "$status" != 0 ] || status=1
    else
        log "stopped: containers, network and volumes of $PROJECT removed"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
compose --profile cli down --volumes --remove-orphans >/dev/null 2>&1 || true  # an earlier run's leftovers

mkdir -p "$CONF/crm"
cat >"$CONF/idp.toml" <<EOF
# The smoke run's IdP (scripts/compose-smoke.sh): one persona that answers every AuthnRequest at
# once, and the validator's test SP as its only SP.
[server]
base_url = "$IDP"
dev_mode = true

[[personas]]
id = "smoke"
display_name = "Compose smoke"
nameid = "smoke@example.com"
auto_login = true

[personas.claims]
AccountNumber = "100200300"
Email = "smoke@example.com"
LoginTypeId = "1"

[[sps]]
entity_id = "$VALIDATOR/test-sp/metadata"
acs = ["$VALIDATOR/test-sp/acs"]
EOF
cat >"$CONF/crm/smoke.toml" <<EOF
# The smoke run's partner: the IdP container, trusted by its metadata as fetched after it started.
[biller]
id = "smoke"
name = "Compose smoke (the idp service)"

[sp]
entity_id = "$VALIDATOR/test-sp/metadata"
acs_url = "$VALIDATOR/test-sp/acs"

[idp]
entity_id = "$IDP/metadata"
metadata_file = "smoke-idp-metadata.xml"
sso_url = "$IDP/sso"

[[claims]]
name = "AccountNumber"
required = true

[[claims]]
name = "Email"
required = true

[[claims]]
name = "LoginTypeId"
required = true
login_type = true

[[login_types]]
id = 1
name = "Customer"
EOF
chmod -R a+rX "$CONF"  # the services run as uid 10001

# The browser: stdlib only (the host's python3). `login` signs in and runs a test login;
# `signin` only signs in; `report ID` reads a kept report; `cert` prints the IdP's certificate.
cat >"$CLIENT" <<'EOF'
import html, http.cookiejar, json, re, sys, urllib.error, urllib.parse, urllib.request

idp, validator, email, password, command, *args = sys.argv[1:]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)


def fetch(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        answer = opener.open(urllib.request.Request(url, data=data), timeout=20)
    except urllib.error.HTTPError as exc:
        answer = exc
    return answer.status, answer.headers, answer.read().decode("utf-8", "replace")


def text(page):
    """A page's words, for a failure's message."""
    body = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())[:400]


def sign_in():
    status, _, page = fetch(f"{validator}/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert status == 200 and token, f"sign-in page: HTTP {status}: {text(page)}"
    status, headers, page = fetch(f"{validator}/sign-in", {
        "email": email, "password": password, "csrf": html.unescape(token.group(1)), "next": "/"})
    assert status == 303, f"staff sign-in refused: HTTP {status}: {text(page)}"


def report(login_id):
    status, _, body = fetch(f"{validator}/api/v1/test-logins/{login_id}")
    assert status == 200, f"/api/v1/test-logins/{login_id}: HTTP {status}: {text(body)}"
    return json.loads(body)


def login():
    sign_in()
    status, headers, _ = fetch(f"{validator}/test-login/smoke")
    location = headers.get("Location", "")
    assert status == 302 and location.startswith(f"{idp}/sso?"), f"/test-login/smoke: HTTP {status} to {location!r}"
    status, _, page = fetch(location)  # the IdP container answers the AuthnRequest
    form = re.search(r'<form method="post" action="([^"]+)">', page)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert status == 200 and form and "SAMLResponse" in fields, f"IdP /sso: HTTP {status}, no response form"
    acs = html.unescape(form.group(1))
    assert acs == f"{validator}/test-sp/acs", f"the IdP posts to {acs!r}"
    status, headers, _ = fetch(acs, {k: html.unescape(v) for k, v in fields.items()})
    result = headers.get("Location", "")
    assert status == 303 and "/test-logins/" in result, f"test SP ACS: HTTP {status} to {result!r}"
    login_id = result.rsplit("/", 1)[1]
    found = report(login_id)
    response = found.get("facts", {}).get("response", {})
    errors = [f["code"] + " " + f.get("title", "") for f in found.get("findings", []) if f.get("severity") == "error"]
    print(f"{login_id} verdict={found['verdict']} verified={response.get('verified')} "
          f"signed_by={response.get('signed_by')!r} errors={errors}")
    assert response.get("verified") is True, "the test SP did not verify the response's signature"
    assert found["verdict"] == "ready", f"verdict {found['verdict']!r}: {errors}"


def cert():
    status, _, body = fetch(f"{idp}/metadata")
    found = re.search(r"<ds:X509Certificate>([^<]+)</ds:X509Certificate>", body)
    assert status == 200 and found, f"{idp}/metadata: HTTP {status}, no certificate"
    print(found.group(1).strip())


try:
    if command == "login":
        login()
    elif command == "signin":
        sign_in()
        print("signed in")
    elif command == "report":
        sign_in()
        print(report(args[0])["verdict"])
    elif command == "cert":
        cert()
except AssertionError as exc:
    print(f"FAILED: {exc}")
    sys.exit(1)
EOF
browser() { python3 "$CLIENT" "$IDP" "$VALIDATOR" "$STAFF_EMAIL" "$STAFF_PASSWORD" "$@"; }

wait_healthy() {  # sets HEALTHY_AFTER: the seconds from $1 until both services were healthy
    local began=$1 service id state pending
    while :; do
        pending=""
        for service in idp validator; do
            id=$(compose ps -q "$service" 2>/dev/null || true)
            [ -n "$id" ] || { pending="$pending $service(no container)"; continue; }
            state=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$id")
            case "$state" in
                running/healthy) ;;
                */unhealthy|restarting/*|exited/*|dead/*) die "$service is $state" ;;
                *) pending="$pending $service($state)" ;;
            esac
        done
        [ -z "$pending" ] && break
        [ "$(since "$began" | cut -d. -f1)" -lt "$HEALTHY_TIMEOUT" ] || die "not healthy after ${HEALTHY_TIMEOUT} s:$pending"
        sleep 0.5
    done
    HEALTHY_AFTER=$(since "$began")
}

# --- up ------------------------------------------------------------------------------------------
began=$(now)
compose up -d --no-build >"$CONF.up.log" 2>&1 || { cat "$CONF.up.log"; rm -f "$CONF.up.log"; die "compose up failed"; }
rm -f "$CONF.up.log"
wait_healthy "$began"
log "up: both services healthy after $HEALTHY_AFTER s"

browser cert >"$CONF/crm/.cert" || die "the IdP's metadata: $(cat "$CONF/crm/.cert")"
cert_before=$(cat "$CONF/crm/.cert")
python3 -c "import sys, urllib.request; open(sys.argv[2], 'wb').write(urllib.request.urlopen(sys.argv[1], timeout=10).read())" \
    "$IDP/metadata" "$CONF/crm/smoke-idp-metadata.xml"
chmod a+r "$CONF/crm/smoke-idp-metadata.xml"
log "IdP metadata fetched from $IDP/metadata (certificate ${cert_before:0:24}…)"

# --- the first staff account, then a test login ------------------------------------------------------
out=$(printf '%s\n' "$STAFF_PASSWORD" | compose run --rm -T validator-cli staff add "$STAFF_EMAIL" 2>&1) \
    || { printf '%s\n' "$out"; die "staff add failed"; }
log "staff add: $(printf '%s\n' "$out" | grep -v -i -e '^Creating' -e 'network' | tail -n 1)"
# Each gunicorn worker looks for a first staff account at most once a second (sign-in turns on without a
# restart); until every worker has, one of them still refuses requests from outside the container
# with 403 "No sign-in configured". 2 s after the account exists, every worker's next request looks.
sleep 2
result=$(browser login) || die "test login: $result"
login_id=${result%% *}
log "test login: $result"

# --- restart: new containers, the same volumes ------------------------------------------------------
compose down >/dev/null 2>&1 || die "compose down failed"
began=$(now)
compose up -d --no-build >/dev/null 2>&1 || die "compose up (again) failed"
wait_healthy "$began"
log "restarted (down, up): both services healthy after $HEALTHY_AFTER s"
cert_after=$(browser cert) || die "the IdP's metadata after the restart: $cert_after"
[ "$cert_after" = "$cert_before" ] || die "the IdP's signing certificate changed across the restart: its key did not survive"
log "IdP key survived: the same signing certificate"
verdict=$(browser report "$login_id") || die "after the restart: $verdict"
log "validator data survived: staff sign-in works, test login $login_id still reads \"$verdict\""
browser login >/dev/null || die "a second test login after the restart failed"
log "a second test login after the restart: ready"

compose --profile cli down --volumes --remove-orphans >/dev/null 2>&1 || die "compose down --volumes failed"
log "OK: build, healthy, staff account, test login, restart with keys and data kept"
