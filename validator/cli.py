"""`saml-validate`: the validator's command line.

Exit codes (DESIGN.md): 0 no errors (warnings allowed unless --strict); 1 errors found —
including a partner document that is unreachable or malformed, which is a finding; 2 usage
error or failure of the tool itself, printed once as ``Name: message``.

Size: every command and option of ``saml-validate`` is declared here, once, as the one table a
reader of ``--help`` would look for; each command only reads its inputs, calls the library and
hands the report to :func:`emit`.
"""

from __future__ import annotations

import difflib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from metadata.certs import CertificateError, load_certificates
from metadata.console import run
from metadata.crm import CRMRecord, load_crm
from metadata.xml import MiB
from validator.checks.crm_record import check_record
from validator.errors import ValidatorError
from validator.findings import FAMILIES, Rule, folded, get_rule, rules
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.record_facts import RecordFacts
from validator.render import render
from validator.report import Report

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy
    from metadata.store import Store
    from validator.discovery import Worksheet
    from validator.interview import CallAnswers, CallSheet
    from validator.web.staff_sso import StaffSSO

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("text", "json", "junit", "html")


def parse_now(value: str | None) -> datetime:
    """--now: an ISO 8601 date or date-time; without a zone it is UTC. Default: the real clock."""
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time such as 2026-05-01T12:00:00Z") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _existing_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--out (and --draft-crm): a file in a folder that exists. A typo in the folder would otherwise
    become a new folder tree nobody looks in; judged before any fetch or check runs."""
    if value is None or value.parent.is_dir():
        return value
    folder = str(value.parent)
    if value.parent.exists():
        raise click.BadParameter(f"{folder!r} is a file, not a folder, so {str(value)!r} cannot be written",
                                 ctx=ctx, param=param)
    raise click.BadParameter(f"the folder {folder!r} does not exist; create it first, or write {value.name!r} "
                             "into a folder that exists", ctx=ctx, param=param)


def report_options(func: F) -> F:
    for option in reversed([
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
                     help="Report format."),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path), callback=_existing_folder,
                     help="Write the report to this file instead of standard output (its folder must exist)."),
        click.option("--strict", is_flag=True, help="Exit 1 on warnings too."),
        click.option("--now", "now", metavar="ISO", help="Judge dates against this time instead of the clock."),
    ]):
        func = option(func)
    return func


def emit(report: Report, fmt: str, out: Path | None, strict: bool) -> None:
    """Render, write and exit with the report's exit code."""
    color = fmt == "text" and out is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    ran = [r for r in rules() if r.subject in report.subjects_run]
    text = render(report, fmt, rules=ran, color=color)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        _write_atomically(out, text)
        click.echo(f"{report.verdict}: report written to {out}", err=True)
    sys.exit(report.exit_code(strict=strict))


def _write_atomically(path: Path, text: str) -> None:
    # A crash mid-write never leaves a half report in place of the previous one. The folder is
    # never made here: --out names a file in a folder that exists (_existing_folder).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_crm(path: Path | None) -> CRMRecord | None:
    return load_crm(path) if path is not None else None


def _load_trust(paths: tuple[Path, ...]) -> tuple[bytes, ...]:
    trusted: list[bytes] = []
    for path in paths:
        try:
            trusted.extend(load_certificates(path.read_bytes()))
        except CertificateError as exc:
            raise click.BadParameter(f"{path}: {exc}", param_hint="--trust") from exc
    return tuple(trusted)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="saml-preflight")
def cli() -> None:
    """Check a partner's SAML IdP setup against its CRM record before go-live."""


@cli.command("metadata")
@click.argument("source", metavar="FILE|URL")
@click.option("--crm", "crm_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The partner's CRM record (TOML or JSON) to compare against.")
@click.option("--entity-id", help="The entity to check in an aggregate (default: the CRM record's).")
@click.option("--trust", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A certificate (PEM or DER) trusted to sign the metadata; repeat for a rollover.")
@click.option("--warn-days", type=click.IntRange(0, 3650), default=30, show_default=True,
              help="Warn when a signing certificate expires within this many days.")
@click.option("--max-size", type=click.IntRange(1, 1024), default=5, show_default=True, metavar="MiB",
              help="Largest metadata document accepted, in MiB (raise it for federation aggregates).")
@click.option("--all-entities", is_flag=True, help="Check every IdP entity of an aggregate.")
@click.option("--allow-http", is_flag=True, help="Allow fetching a metadata URL over plain http.")
@report_options
def metadata_command(
    source: str, crm_path: Path | None, entity_id: str | None, trust: tuple[Path, ...], warn_days: int,
    max_size: int, all_entities: bool, allow_http: bool, fmt: str, out: Path | None, strict: bool,
    now: str | None,
) -> None:
    """Check IdP metadata from a FILE or an https URL."""
    _file_or_url(source)
    options = MetadataOptions(
        now=parse_now(now), entity_id=entity_id, trusted=_load_trust(trust), warn_days=warn_days,
        max_bytes=max_size * MiB, all_entities=all_entities,
        fetch_policy=_http_policy() if allow_http else None,
    )
    crm = _load_crm(crm_path)
    report = metadata_report(inspect_metadata(source, options, crm), crm_source=str(crm_path) if crm_path else None)
    emit(report, fmt, out, strict)


def _file_or_url(source: str) -> bool:
    """True for a URL (judged by the fetcher, which refuses all but https), False for a file that
    exists; a usage error otherwise, naming the source with any password hidden."""
    from validator.inspection import is_url

    if is_url(source):
        return True
    path = Path(source)
    if not path.is_file():
        from metadata.urls import redact_url

        why = "is a folder, not a file" if path.is_dir() else "is neither a file nor a URL (no such file)"
        raise click.BadParameter(f"{redact_url(source)!r} {why}", param_hint="FILE|URL")
    return False


def _http_policy() -> FetchPolicy:
    from metadata.fetch import FetchPolicy

    return FetchPolicy(allow_http=True)


NO_TRUST_FIX = ("Run again with --metadata FILE|URL, or set [idp] metadata_url, metadata_file or "
                "signing_certificates in the CRM record (--crm).")


@cli.command("response")
@click.argument("source", metavar="FILE|-")
@click.option("--metadata", "metadata_source", metavar="FILE|URL",
              help="The IdP's metadata: its signing certificates and entity ID (default: the CRM record's "
                   "[idp] metadata_file, signing_certificates, then metadata_url).")
@click.option("--crm", "crm_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The partner's CRM record: audience, ACS URL, claims and login types to check against.")
@click.option("--sp-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The SP's private key (PEM), to decrypt an EncryptedAssertion.")
@click.option("--request-id", help="The ID of the AuthnRequest this response must answer (InResponseTo).")
@click.option("--skew", type=click.IntRange(0, 300), default=120, show_default=True, metavar="SECONDS",
              help="Clock skew allowed on NotBefore / NotOnOrAfter.")
@click.option("--allow-http", is_flag=True, help="Allow fetching the metadata URL over plain http.")
@report_options
def response_command(
    source: str, metadata_source: str | None, crm_path: Path | None, sp_key: Path | None, request_id: str | None,
    skew: int, allow_http: bool, fmt: str, out: Path | None, strict: bool, now: str | None,
) -> None:
    """Check a SAML response: raw XML, base64, a form body or a SAML-tracer export (FILE, or - for stdin)."""
    from validator.response_inspection import inspect_response
    from validator.response_report import response_report

    if source == "-":
        data = sys.stdin.buffer.read(2 * MiB)
    elif Path(source).is_file():
        with Path(source).open("rb") as handle:
            data = handle.read(2 * MiB)
    else:
        raise click.BadParameter(f"{source!r} is not a file (use - for standard input)", param_hint="FILE|-")
    crm = _load_crm(crm_path)
    inspection = inspect_response(
        data, source, now=parse_now(now), crm=crm, metadata=metadata_source,
        sp_key_pem=sp_key.read_bytes() if sp_key else None, request_id=request_id, skew_seconds=skew,
        policy=_http_policy() if allow_http else None, record_dir=crm_path.parent if crm_path else None,
        no_trust_fix=NO_TRUST_FIX,
    )
    emit(response_report(inspection, crm_source=str(crm_path) if crm_path else None), fmt, out, strict)


@cli.command("crm")
@click.argument("record", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@report_options
def crm_command(record: Path, fmt: str, out: Path | None, strict: bool, now: str | None) -> None:
    """Check a CRM record itself: keys, claims, login types, URLs."""
    loaded = load_crm(record)
    report = Report(subject="crm-record", inputs={"crm": str(record)}, clock=parse_now(now),
                    findings=tuple(folded(check_record(loaded, str(record)))), subjects_run=("crm-record",),
                    facts=(RecordFacts(loaded),))
    emit(report, fmt, out, strict)


@cli.command("discover")
@click.argument("source", metavar="FILE|URL", required=False)
@click.option("--crm", "crm_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The partner's CRM record: its claims, login types and the portal's URLs fill the worksheet.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "html"]),
              help="Worksheet format: plain text, Markdown (for a ticket or a wiki) or HTML (default: text on a "
                   "terminal, md with --out or when standard output is a file or a pipe).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), callback=_existing_folder,
              help="Write the worksheet to this file (its folder must exist).")
@click.option("--draft-crm", type=click.Path(dir_okay=False, path_type=Path), callback=_existing_folder,
              help="Also write the draft CRM record (TOML) to this new file; an existing file is never replaced.")
@click.option("--no-probe", is_flag=True, help="Do not ask the IdP's sign-in URL for its framing headers.")
@click.option("--entity-id", help="The entity to describe in an aggregate (default: the CRM record's).")
@click.option("--warn-days", type=click.IntRange(0, 3650), default=30, show_default=True,
              help="Warn when a signing certificate expires within this many days.")
@click.option("--allow-http", is_flag=True, help="Allow fetching a metadata URL over plain http.")
@click.option("--now", "now", metavar="ISO", help="Judge dates against this time instead of the clock.")
@click.option("--interview", is_flag=True,
              help="No metadata yet: ask the five questions on the call and record the partner's answers (one "
                   "line each from standard input when it is not a terminal; the lines after the fifth are the "
                   "call notes).")
@click.option("--interview-out", type=click.Path(dir_okay=False, path_type=Path), callback=_existing_folder,
              help="With --interview: write the answers (JSON) to this new file (default: next to --draft-crm).")
@click.option("--answers", "answers_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The answers of an interview (JSON): the worksheet sets each against the metadata.")
def discover_command(source: str | None, crm_path: Path | None, fmt: str | None, out: Path | None,
                     draft_crm: Path | None, no_probe: bool, entity_id: str | None, warn_days: int, allow_http: bool,
                     now: str | None, interview: bool, interview_out: Path | None, answers_path: Path | None) -> None:
    """The discovery worksheet: which IdP, which claims, entity ID, metadata URL, SSO URL, the
    signing certificates, whether the login can sit in an iframe, and a draft CRM record.

    With --interview, before any metadata exists: the partner's spoken answers, a draft record and
    a worksheet marked "from the call, not yet verified"; --answers later sets them against the
    metadata."""
    from metadata.fetch import FetchPolicy
    from validator.discovery import describes_an_idp, probed_worksheet

    if draft_crm is not None and draft_crm.exists():  # said before any fetch; _write_new guards the race
        raise _draft_exists(draft_crm)
    if interview:
        _refuse_metadata_options(entity_id=entity_id, no_probe=no_probe, allow_http=allow_http,
                                 warn_days=warn_days != 30)
        _interview_command(source, answers_path, crm_path, fmt, out, draft_crm, interview_out, now)
        return
    if source is None:
        raise click.UsageError("give the metadata (FILE|URL), or --interview to record the call's answers first")
    said = _load_answers(answers_path)
    url = _file_or_url(source)
    policy = _http_policy() if allow_http else None
    options = MetadataOptions(now=parse_now(now), warn_days=warn_days, fetch_policy=policy, entity_id=entity_id)
    crm = _load_crm(crm_path)
    inspection = inspect_metadata(source, options, crm)
    report = metadata_report(inspection, crm_source=str(crm_path) if crm_path else None)
    if not describes_an_idp(inspection):  # the findings say why; no worksheet, no draft
        click.echo(render(report, "text"), err=True, nl=False)
        several = any(f.code == "MD002" for f in report.findings)
        click.echo("no worksheet: " + ("the metadata holds several entities; choose one with --entity-id"
                                       if several else "no IdP entity could be read from the metadata (see the "
                                       "findings above)"), err=True)
        sys.exit(max(1, report.exit_code(strict=False)))
    worksheet = probed_worksheet(inspection, report, crm, metadata_url=inspection.shown if url else None,
                                 policy=None if no_probe else policy or FetchPolicy())
    if said is not None:
        from validator.interview import told_vs_metadata

        worksheet = replace(worksheet, told=told_vs_metadata(said, worksheet))
    _show_worksheet(worksheet, fmt, out, warn_days)
    if draft_crm is not None:
        _write_new(draft_crm, worksheet.draft)
        click.echo(f"draft CRM record written to {draft_crm}", err=True)
    sys.exit(report.exit_code(strict=False))


def _load_answers(path: Path | None) -> CallAnswers | None:
    """--answers: an interview's answers file, every field checked again (anyone could have edited it)."""
    from validator.interview import AnswerError, answers_from_json

    if path is None:
        return None
    try:
        return answers_from_json(path.read_bytes(), str(path))
    except AnswerError as exc:
        raise click.BadParameter(exc.message, param_hint="--answers") from None


def _refuse_metadata_options(**given: object) -> None:
    """--interview reads no metadata: an option about metadata is a mistake, said, not ignored."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if named:
        raise click.UsageError(f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} about the metadata, which "
                               "--interview does not read: give it later, with the metadata and --answers")


def _interview_command(source: str | None, answers_path: Path | None, crm_path: Path | None, fmt: str | None,
                       out: Path | None, draft_crm: Path | None, interview_out: Path | None, now: str | None) -> None:
    """discover --interview: ask, then write the answers, the draft and the worksheet from the call.
    Every file is judged before the first question, so no answer is lost to a path that cannot be written."""
    from validator.interview import AnswerError, answers_from, answers_json, call_sheet

    if source is not None or answers_path is not None:
        raise click.UsageError("--interview runs before any metadata exists: give the metadata later, with "
                               "--answers ANSWERS.json")
    kept = interview_out or (draft_crm.with_suffix(".answers.json") if draft_crm is not None else None)
    if kept is None:
        raise click.UsageError("--interview keeps the answers in a file: give --interview-out FILE or --draft-crm FILE")
    if kept.exists():
        raise click.BadParameter(f"{kept} exists; answers are never written over a file", param_hint="--interview-out")
    crm = _load_crm(crm_path)
    try:
        said = answers_from(_ask_interview(), taken=parse_now(now))
    except AnswerError as exc:
        raise click.UsageError(exc.message) from None
    sheet = call_sheet(said, crm)
    _write_new(kept, answers_json(said), "--interview-out")
    click.echo(f"answers written to {kept}", err=True)
    if draft_crm is not None:
        _write_new(draft_crm, sheet.draft)
        click.echo(f"draft CRM record written to {draft_crm}", err=True)
    _show_call(sheet, crm.biller.name if crm else None, fmt, out)


def _show_call(sheet: CallSheet, title: str | None, fmt: str | None, out: Path | None) -> None:
    """The worksheet from the call, in the format and place _show_worksheet would choose."""
    from validator.render.worksheet import render_call_html, render_call_markdown, render_call_text

    fmt = fmt or ("text" if out is None and sys.stdout.isatty() else "md")
    if fmt == "html":
        text = render_call_html(sheet, title)
    else:
        text = render_call_markdown(sheet, title) if fmt == "md" else render_call_text(sheet, title)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        _write_atomically(out, text)
        click.echo(f"from the call, not yet verified: worksheet written to {out}", err=True)


def _ask_interview() -> dict[str, str]:
    """The partner's answers: prompted one by one on a terminal (Enter: not known yet), else read as lines."""
    from validator.interview import DONT_KNOW, FIELDS, PRODUCT_CHOICES, SCRIPT_LIMIT, AnswerError, checked, scripted

    if not sys.stdin.isatty():
        return scripted(sys.stdin.read(SCRIPT_LIMIT + 1))
    notes: list[str] = []

    def check(key: str) -> Callable[[str], str]:
        def proc(value: str) -> str:
            try:
                if key == "notes":  # the notes so far with this line: an overflow is refused here, not after the call
                    checked(key, "\n".join([*notes, value]))
                return checked(key, value)
            except AnswerError as exc:
                raise click.BadParameter(exc.message) from None
        return proc

    click.echo("The partner's answers, as said on the call. Press Enter for 'not known yet'.")
    (_, _, first), *rest = FIELDS
    values = {"product": click.prompt(first, type=click.Choice(PRODUCT_CHOICES, case_sensitive=False),
                                      default=DONT_KNOW)}
    for key, _, question in rest:
        values[key] = click.prompt(question, default="", show_default=False, value_proc=check(key))
    while line := click.prompt("Call notes (an empty line ends them)" if not notes else "  more notes",
                               default="", show_default=False, value_proc=check("notes")):
        notes.append(line)
    values["notes"] = "\n".join(notes)
    return values


def _show_worksheet(worksheet: Worksheet, fmt: str | None, out: Path | None, warn_days: int) -> None:
    """Print or write the worksheet: plain text on a terminal unless --format says otherwise,
    Markdown into a file or a pipe (a ticket, a wiki page)."""
    from validator.render.worksheet import render_markdown, render_worksheet_html, render_worksheet_text

    fmt = fmt or ("text" if out is None and sys.stdout.isatty() else "md")
    if fmt == "html":
        text = render_worksheet_html(worksheet, warn_days=warn_days)
    else:
        text = render_markdown(worksheet) if fmt == "md" else render_worksheet_text(worksheet)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        _write_atomically(out, text)
        click.echo(f"{worksheet.report.verdict}: worksheet written to {out}", err=True)


def _store(store_url: str | None) -> Store:
    """The web app's store (--store, $VALIDATOR_STORE, else the user's data folder: one for
    serve and sweep wherever they run), saying where when it was just made; a usage error naming
    where an unsupported URL came from."""
    from validator.store_location import open_web_store

    try:
        return open_web_store(store_url, created=lambda said: click.echo(said, err=True))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store" if store_url else "$VALIDATOR_STORE") from None


def _write_new(path: Path, text: str, option: str = "--draft-crm") -> None:
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as exc:
        raise _draft_exists(path, option) from exc


def _draft_exists(path: Path, option: str = "--draft-crm") -> click.BadParameter:
    what = "a draft is" if option == "--draft-crm" else "answers are"
    return click.BadParameter(f"{path} exists; {what} never written over a file", param_hint=option)


STAFF_SSO_OPTIONS = {
    "VALIDATOR_STAFF_IDP_METADATA": "--staff-idp-metadata", "VALIDATOR_STAFF_EMAILS": "--staff-emails",
    "VALIDATOR_STAFF_GROUP": "--staff-group", "VALIDATOR_STAFF_EMAIL_CLAIM": "--staff-email-claim",
}
"""serve's staff single sign-on options, by the variable each also reads (validator.web.staff_sso)."""


def staff_sso_options(func: F) -> F:
    helps = {
        "--staff-idp-metadata": ("FILE", "Staff single sign-on: the company IdP's SAML metadata. Register this "
                                         "app's SP at it: BASE_URL/sign-in/sso/metadata."),
        "--staff-emails": ("EMAILS", "Staff single sign-on: the allowed staff emails, comma-separated."),
        "--staff-group": ("CLAIM=VALUE", "Staff single sign-on: users whose CLAIM carries VALUE are staff."),
        "--staff-email-claim": ("CLAIM", "Staff single sign-on: the claim holding the email (default: the NameID)."),
    }
    for variable, name in reversed(STAFF_SSO_OPTIONS.items()):
        metavar, text = helps[name]
        func = click.option(name, envvar=variable, show_envvar=True, metavar=metavar, help=text)(func)
    return func


def _staff_sso(values: dict[str, str | None]) -> StaffSSO | None:
    """The staff single sign-on serve's options give (None: none is set); a usage error naming the
    option (and its variable) at fault."""
    from validator.web.staff_sso import staff_sso_from_settings

    by_variable = {variable: values.get(name[2:].replace("-", "_")) for variable, name in STAFF_SSO_OPTIONS.items()}
    try:
        return staff_sso_from_settings(by_variable, lambda variable: f"{STAFF_SSO_OPTIONS[variable]} ({variable})")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command("serve")
@click.option("--crm-folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder of CRM records, one <biller-id>.toml each.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option("--base-url", help="Where browsers reach this app (default: http://HOST:PORT); the test SP's ACS "
                                 "is BASE_URL/test-sp/acs.")
@click.option("--store", "store_url", metavar="URL",
              help="sqlite:///ABSOLUTE/PATH or redis://host:port/db (default: $VALIDATOR_STORE, else "
                   "saml-validate-web.sqlite3 in your data folder, which sweep shares to know each partner's "
                   "signer).")
@click.option("--dev", is_flag=True, envvar="VALIDATOR_DEV_MODE",
              help="Local development mode: allow http and loopback metadata and SSO URLs (an IdP on this "
                   "machine, e.g. saml-idp serve); loopback --host only; a banner on every page.")
@staff_sso_options
def serve_command(crm_folder: Path, host: str, port: int, base_url: str | None, store_url: str | None,
                  dev: bool, **staff: str | None) -> None:
    """The web app: forms to check metadata and responses, discovery worksheets, go-live reports,
    live test logins (/test-login/<biller-id>) and the JSON API (/api/v1/openapi.json). A
    development server; for production: gunicorn 'validator.web:create_app()' (VALIDATOR_* settings)."""
    from validator.web import DevModeError, create_app, refuse_public_dev_mode

    url = base_url or f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    try:
        for where in (host, url) if dev else ():
            refuse_public_dev_mode(where)
    except DevModeError as exc:
        raise click.UsageError(str(exc)) from None
    store = _store(store_url)
    sso = _staff_sso(staff)
    _refuse_public_without_sign_in(host, store, sso is not None)
    app = create_app(crm_folder=crm_folder, base_url=url, store=store, dev_mode=dev, staff_sso=sso)
    if dev:
        click.echo("LOCAL DEVELOPMENT MODE: http and loopback metadata and SSO URLs are allowed", err=True)
    click.echo(f"SAML Preflight on {url}/ — test logins at {url}/test-login/<biller-id>, the API at "
               f"{url}/api/v1/openapi.json", err=True)
    app.run(host=host, port=port, threaded=True)


def _refuse_public_without_sign_in(host: str, store: Store, sso: bool = False) -> None:
    """No staff account and no company IdP (`sso`): the app would let anyone in as its operator,
    so it binds loopback only."""
    from validator.auth.staff import has_staff
    from validator.web.state import is_loopback_host

    if not is_loopback_host(host) and not sso and not has_staff(store):
        raise click.UsageError(
            f"no sign-in is configured, so the web app binds only a loopback address (127.0.0.1, ::1, localhost), "
            f"not {host!r}: anyone reaching it would act as its operator. Add a staff account first: "
            "saml-validate staff add EMAIL (with the same --store), then start it again.")


@cli.command("sweep")
@click.argument("folder", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--warn-days", type=click.IntRange(0, 3650), default=30, show_default=True,
              help="Warn when a signing certificate expires within this many days.")
@click.option("--store", "store_url", metavar="URL",
              help="Where sweep history is kept: sqlite:///ABSOLUTE/PATH or redis://host:port/db "
                   "(default: $VALIDATOR_STORE, else the web app's SQLite file in your data folder).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Partners fetched and checked at once.")
@click.option("--quiet", is_flag=True, help="No progress; the text summary lists only partners that need "
                                            "attention, and is empty when none does.")
@click.option("--verbose", is_flag=True, help="One line per partner on standard error as it finishes.")
@click.option("--allow-http", is_flag=True, help="Allow fetching metadata URLs over plain http.")
@report_options
def sweep_command(
    folder: Path, warn_days: int, store_url: str | None, concurrency: int, quiet: bool, verbose: bool,
    allow_http: bool, fmt: str, out: Path | None, strict: bool, now: str | None,
) -> None:
    """Every CRM record in DIR: fetch its metadata URL, check it, compare it with the last good
    copy, warn before a signing certificate expires; exit 1 when any partner has errors."""
    from validator.render.sweep import SweepProgress, render_sweep
    from validator.sweep import SweepOptions, fetch_policy, record_files, run_sweep

    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose exclude each other")
    # --now is a what-if: judged at another time, the history is read but not written.
    options = SweepOptions(now=parse_now(now), warn_days=warn_days, concurrency=concurrency,
                           fetch_policy=fetch_policy(allow_http), record_history=now is None)
    total = len(record_files(folder))
    store = _store(store_url)
    try:
        with SweepProgress(total, stream=sys.stderr, tty=sys.stderr.isatty(), verbose=verbose,
                           quiet=quiet) as progress:
            result = run_sweep(folder, options, store, progress=progress)
    finally:
        store.close()
    color = fmt == "text" and out is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = render_sweep(result, fmt, quiet=quiet, color=color)
    if out is not None:
        _write_atomically(out, text)
        if verbose:
            click.echo(f"sweep report written to {out}", err=True)
    elif text:
        click.echo(text, nl=not text.endswith("\n"))
    sys.exit(result.exit_code(strict=strict))


@cli.command("checks")
def checks_command() -> None:
    """List every rule: code, default severity and title."""
    family = None
    for r in rules():
        current = r.code.rstrip("0123456789")
        if current != family:
            family = current
            click.echo(f"\n{current}  {FAMILIES[current]}")
        retired = " (retired)" if r.retired else ""
        click.echo(f"  {r.code}  {r.severity.value:<7}  {r.title}{retired}")


@cli.command("explain")
@click.argument("code")
def explain_command(code: str) -> None:
    """Explain one rule: what it checks, why it matters, the fix."""
    found = get_rule(code)
    if found is None:
        codes = [r.code for r in rules()]
        close = difflib.get_close_matches(code.upper(), codes, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else " Run `saml-validate checks` for the list."
        raise click.BadParameter(f"no rule has the code {code!r}.{hint}", param_hint="CODE")
    click.echo(explain_text(found))


def explain_text(r: Rule) -> str:
    lines = [f"{r.code}  {r.title}", f"default severity: {r.severity.value}    family: "
             f"{FAMILIES[r.code.rstrip('0123456789')]}", ""]
    for heading, body in (("What it checks", r.what), ("Why it matters", r.why), ("Fix", r.fix)):
        lines += [heading, *_indent(body), ""]
    if r.example:
        lines += ["Example", *_indent(r.example), ""]
    return "\n".join(lines).rstrip() + "\n"


def _indent(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=96, initial_indent="  ", subsequent_indent="  ")


@cli.command("demo")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def demo_command(fmt: str) -> None:
    """Check the bundled demo partner (metadata, CRM record, signing certificate): a tour."""
    demo = resources.files("validator.demo")
    with resources.as_file(demo) as folder:
        metadata_file = folder / "springfield-water-idp-metadata.xml"
        crm_file = folder / "springfield-water.toml"
        options = MetadataOptions(now=parse_now(None),
                                  trusted=tuple(load_certificates((folder / "metadata-signer.pem").read_bytes())))
        report = metadata_report(inspect_metadata(str(metadata_file), options, load_crm(crm_file)),
                                 crm_source=str(crm_file))
        color = fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        ran = [r for r in rules() if r.subject in report.subjects_run]
        click.echo(render(report, fmt, rules=ran, color=color))
        if fmt == "text":
            # The hint's paths work from where the user stands: the demo files relative to the
            # working folder when they are under it (absolute otherwise), and the program by its
            # path when this venv's bin is not on PATH (after `make demo`: .venv/bin/saml-validate).
            cwd = Path.cwd()
            shown = folder if not folder.is_relative_to(cwd) else folder.relative_to(cwd)
            script = Path(sys.executable).parent / "saml-validate"
            on_path = shutil.which("saml-validate") == str(script)
            prog = "saml-validate" if on_path or not script.is_file() else (
                script.relative_to(cwd) if script.is_relative_to(cwd) else script)
            click.echo(
                f"This was the demo partner. `{prog} metadata {shown / metadata_file.name} --crm "
                f"{shown / crm_file.name} --trust {shown / 'metadata-signer.pem'}` would exit "
                f"{report.exit_code()}.\n"
                f"Try your own: {prog} metadata FILE|URL --crm RECORD.toml   "
                f"({prog} explain CODE tells more about a finding; examples/billers/ in the "
                "repository holds partners to try)", err=True,
            )


def _register_access_commands() -> None:
    """``staff``, ``token`` and ``invite``: who may use the web app (issue 13, docs/security.md)."""
    from validator.cli_access import staff, token
    from validator.cli_invites import invite

    for group in (staff, token, invite):
        cli.add_command(group)


_register_access_commands()


def main() -> None:
    run(cli, ValidatorError)


if __name__ == "__main__":
    main()
