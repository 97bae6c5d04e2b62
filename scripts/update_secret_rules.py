"""Vendor a new release of gitleaks' rule set as the proxy's secret rules.

    .venv/bin/python scripts/update_secret_rules.py path/to/gitleaks/config/gitleaks.toml v8.30.0

The file is gitleaks' generated default configuration (``config/gitleaks.toml`` in its
repository, MIT licence; its licence is kept beside the copy as ``LICENSE.gitleaks``). It is
copied verbatim from its ``title`` line on, under a header naming the version, and only if every
rule compiles in RE2 (the engine the proxy scans with, whose syntax gitleaks' Go rules use) and
the whole set compiles as one. Then run ``./scripts/test tests/redact/test_secret_rules.py``: the
rules' own examples (``ghp_...``, ``AKIA...``, JWTs, ...) must still be found, and the
documented bodies left alone.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import re2

TARGET = Path(__file__).resolve().parent.parent / "cassette_proxy" / "redact" / "gitleaks.toml"
HEADER = """\
# gitleaks' default rule set, {version}: the secret rules cassette-proxy scans traffic with.
# Copied verbatim from the "title" line on by scripts/update_secret_rules.py; do not edit by
# hand. gitleaks is MIT-licensed, copyright (c) 2019 Zachary Rice: see LICENSE.gitleaks.

"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="gitleaks' config/gitleaks.toml")
    parser.add_argument("version", help="the gitleaks release it comes from, e.g. v8.30.0")
    args = parser.parse_args()
    text = args.source.read_text(encoding="utf-8")
    start = text.find("\ntitle = ")
    if start < 0:
        print(f"{args.source} has no 'title = ' line: not gitleaks' configuration", file=sys.stderr)
        return 1
    body = text[start + 1 :]
    rules = tomllib.loads(body).get("rules", [])
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    combined = re2.Set.SearchSet(options)
    broken = []
    for rule in rules:
        if "regex" not in rule:
            continue  # a rule on file paths only: nothing to scan traffic with
        try:
            re2.compile(rule["regex"].encode("latin-1"), options)
            combined.Add(rule["regex"].encode("latin-1"))
        except (re2.error, UnicodeEncodeError) as exc:
            broken.append(f"{rule.get('id', '?')}: {exc}")
    if broken:
        print("rules RE2 cannot compile; nothing written:", *broken, sep="\n  ", file=sys.stderr)
        return 1
    combined.Compile()
    TARGET.write_text(HEADER.format(version=args.version) + body, encoding="utf-8")
    print(f"{TARGET.name}: {len(rules)} rules from gitleaks {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
