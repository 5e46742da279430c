"""Every corpus file through the validator's JSON report: the before/after proof that a change
of design changed no finding, verdict or fact.

    python -m tests.corpus_reports [CORPUS_DIR] OUT.json      (CORPUS_DIR: tests/corpus by default)

Metadata files run through ``saml-validate metadata``; responses through ``saml-validate
response``, with the IdP's certificate (``*.idp-cert.pem`` or ``*.metadata.xml`` beside the file)
when the corpus pairs one. The clock is pinned, so two runs of the same code give the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from validator.cli import cli

NOW = "2026-06-01T00:00:00Z"
CORPUS = Path(__file__).resolve().parent / "corpus"
METADATA_KINDS = ("idp-metadata", "sp-metadata")


def commands(corpus: Path = CORPUS) -> list[tuple[str, list[str]]]:
    """(name, CLI arguments) for every XML file of the corpus, in a stable order."""
    runs: list[tuple[str, list[str]]] = []
    for path in sorted(corpus.rglob("*.xml")):
        name = path.relative_to(corpus).as_posix()
        kind = name.split("/", 1)[0]
        if kind in METADATA_KINDS:
            runs.append((name, ["metadata", str(path), "--now", NOW, "--format", "json"]))
        elif kind == "responses" and not path.name.endswith(".metadata.xml"):
            args = ["response", str(path), "--now", NOW, "--format", "json"]
            paired = path.with_name(path.name.removesuffix(".xml") + ".metadata.xml")
            if paired.is_file():
                args += ["--metadata", str(paired)]
            runs.append((name, args))
    return runs


def reports(corpus: Path = CORPUS) -> dict[str, object]:
    runner = CliRunner()
    results: dict[str, object] = {}
    for name, args in commands(corpus):
        outcome = runner.invoke(cli, args, catch_exceptions=False)
        text = outcome.stdout.replace(str(corpus), "CORPUS")
        try:
            results[name] = {"exit": outcome.exit_code, "report": json.loads(text)}
        except json.JSONDecodeError:
            results[name] = {"exit": outcome.exit_code, "output": text}
    return results


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m tests.corpus_reports [CORPUS_DIR] OUT.json")
    corpus, out = (Path(sys.argv[1]).resolve() if len(sys.argv) == 3 else CORPUS), Path(sys.argv[-1])
    out.write_text(json.dumps(reports(corpus), indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{out}: {len(json.loads(out.read_text()))} reports")
