#!/usr/bin/env python3
"""Maps every normative MQTT statement to the tests that check it.

Reads the statement lists in docs/spec/*.tsv, scans test sources for names that
carry a statement token, reads docs/spec-exemptions.tsv, and writes
docs/spec-coverage.md.

Naming rule (docs in /README.md): a test that checks statement MQTT-a.b.c-n has
the token ``mqtt_a_b_c_n`` in its name, prefixed ``v5_`` or ``v311_`` when it
checks only that version's statement; no prefix means both versions. A name that
begins with ``v5_`` or ``v311_`` is a test of that version: every unprefixed
token in it counts for that version only (``v5_mqtt_3_2_2_1_and_mqtt_3_2_2_2_x``
names two 5.0 statements). Tokens in comments and docstrings name nothing.

    python3 scripts/spec_coverage.py            # regenerate docs/spec-coverage.md
    python3 scripts/spec_coverage.py --check    # fail if the committed file is stale
    python3 scripts/spec_coverage.py --strict   # --check, and fail on missing ids
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

VERSIONS = {
    # version label: (statement file, token prefix)
    "5.0": ("docs/spec/mqtt-v5.0-normative.tsv", "v5"),
    "3.1.1": ("docs/spec/mqtt-v3.1.1-normative.tsv", "v311"),
}
PREFIX_TO_VERSION = {prefix: version for version, (_, prefix) in VERSIONS.items()}

EXEMPTIONS = "docs/spec-exemptions.tsv"
OUTPUT = "docs/spec-coverage.md"
SCAN_DIRS = ("crates", "interop", "fuzz")
SCAN_SUFFIXES = {".rs", ".py", ".js", ".mjs", ".toml"}
SKIP_DIRS = {"node_modules", "target", "__pycache__", ".pytest_cache", "artifacts", "corpus"}

TOKEN = re.compile(r"(?:(v5|v311)_)?mqtt_(\d+)_(\d+)_(\d+)_(\d+)")
WORD = re.compile(r"[A-Za-z0-9_]+")
STRING_LITERAL = re.compile(r"""(["'`])((?:\\.|(?!\1).)*)\1""")
STATEMENT_EXCERPT = 110


@dataclass
class Statement:
    """One normative statement and what the repository says about it."""

    id: str
    applies_to: str
    text: str
    tests: set[str] = field(default_factory=set)
    exemption: str | None = None

    @property
    def status(self) -> str:
        if self.tests:
            return "covered"
        if self.exemption is not None:
            return "exempt"
        return "missing"


class InputError(Exception):
    """A statement list or the exemption file is malformed."""


def read_tsv(path: Path, columns: list[str]) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != columns:
        raise InputError(f"{path}: header must be {'<TAB>'.join(columns)}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(columns):
            raise InputError(f"{path}:{number}: expected {len(columns)} tab-separated fields")
        rows.append(dict(zip(columns, cells)))
    return rows


def load_statements(root: Path) -> dict[str, dict[str, Statement]]:
    specs: dict[str, dict[str, Statement]] = {}
    for version, (relpath, _) in VERSIONS.items():
        rows = read_tsv(root / relpath, ["id", "section", "applies_to", "statement"])
        specs[version] = {
            row["id"]: Statement(row["id"], row["applies_to"], row["statement"]) for row in rows
        }
    return specs


def load_exemptions(root: Path, specs: dict[str, dict[str, Statement]]) -> None:
    path = root / EXEMPTIONS
    if not path.exists():
        return
    # The file is append-only: a later line for the same statement supersedes an earlier one.
    for row in read_tsv(path, ["version", "id", "reason"]):
        version, sid, reason = row["version"].strip(), row["id"].strip(), row["reason"].strip()
        if version not in specs:
            raise InputError(f"{path}: version {version!r} is not one of {', '.join(VERSIONS)}")
        if sid not in specs[version]:
            raise InputError(f"{path}: {sid} is not a statement of MQTT {version}")
        if not reason:
            raise InputError(f"{path}: {version} {sid} has no reason")
        specs[version][sid].exemption = reason


def source_files(root: Path):
    for top in SCAN_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root)
            if any(part in SKIP_DIRS for part in rel.parts):
                continue
            if path.suffix in SCAN_SUFFIXES and path.is_file():
                yield path


def test_name(line: str, start: int, end: int) -> str:
    """The name a token belongs to: the string literal holding it (JS test titles,
    TOML fixture names) or else the identifier around it (Rust and Python test functions)."""
    for literal in STRING_LITERAL.finditer(line):
        if literal.start(2) <= start and end <= literal.end(2):
            return literal.group(2)
    for word in WORD.finditer(line):
        if word.start() <= start and end <= word.end():
            return word.group(0)
    return line[start:end]


# Comment syntax per file type: line-comment marker, whether /* */ block
# comments exist, the string quotes, and whether triple-quoted strings
# (Python docstrings) are comments too.
COMMENTS = {
    ".rs": ("//", True, '"', False),
    ".js": ("//", True, "\"'`", False),
    ".mjs": ("//", True, "\"'`", False),
    ".py": ("#", False, "\"'", True),
    ".toml": ("#", False, "\"'", False),
}


def strip_comments(text: str, suffix: str) -> list[str]:
    """The file's lines with comments (and Python docstrings) blanked out, so
    that only code (names, string literals) is scanned. Line numbers keep."""
    marker, blocks, quotes, docstrings = COMMENTS.get(suffix, ("#", False, "\"'", False))
    out: list[str] = []
    in_block = False  # inside /* */ or a triple-quoted string
    closer = ""
    for line in text.splitlines():
        kept = []
        i = 0
        quote = ""
        while i < len(line):
            if in_block:
                end = line.find(closer, i)
                if end < 0:
                    i = len(line)
                    break
                i = end + len(closer)
                in_block = False
                continue
            ch = line[i]
            if quote:
                kept.append(ch)
                if ch == "\\" and i + 1 < len(line):
                    kept.append(line[i + 1])
                    i += 2
                    continue
                if ch == quote:
                    quote = ""
                i += 1
                continue
            if docstrings and line.startswith(('"""', "'''"), i):
                in_block, closer = True, line[i : i + 3]
                i += 3
                continue
            if blocks and line.startswith("/*", i):
                in_block, closer = True, "*/"
                i += 2
                continue
            if line.startswith(marker, i):
                break
            if ch in quotes and not (suffix == ".rs" and ch == "'"):
                quote = ch
            kept.append(ch)
            i += 1
        out.append("".join(kept))
    return out


def name_scope(name: str) -> str | None:
    """The version prefix a test name begins with, if any."""
    match = re.match(r"(?:test_)?(v5|v311)_", name)
    return match.group(1) if match else None


def scan_tests(root: Path, specs: dict[str, dict[str, Statement]]) -> list[str]:
    """Attaches test references to statements; returns tokens naming no statement."""
    unknown: set[str] = set()
    for path in source_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(strip_comments(text, path.suffix), start=1):
            for match in TOKEN.finditer(line):
                name = test_name(line, match.start(), match.end())
                prefix = match.group(1) or name_scope(name)
                sid = "MQTT-{}.{}.{}-{}".format(*match.group(2, 3, 4, 5))
                versions = [PREFIX_TO_VERSION[prefix]] if prefix else list(VERSIONS)
                reference = f"{rel}:{name}"
                hits = [v for v in versions if sid in specs[v]]
                for version in hits:
                    specs[version][sid].tests.add(reference)
                if not hits:
                    wanted = f"MQTT {PREFIX_TO_VERSION[prefix]}" if prefix else "either version"
                    unknown.add(f"`{rel}:{number}` `{match.group(0)}`: {sid} is not a statement of {wanted}")
    return sorted(unknown)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def excerpt(text: str) -> str:
    if len(text) <= STATEMENT_EXCERPT:
        return cell(text)
    return cell(text[:STATEMENT_EXCERPT].rstrip()) + "…"


def evidence(statement: Statement) -> str:
    if statement.tests:
        return "<br>".join(f"`{cell(t)}`" for t in sorted(statement.tests))
    if statement.exemption is not None:
        return "exempt: " + cell(statement.exemption)
    return "**missing**"


def render(specs: dict[str, dict[str, Statement]], unknown: list[str]) -> str:
    out = [
        "# Spec coverage",
        "",
        "Which test checks each normative statement of MQTT 5.0 and 3.1.1 (statement lists:",
        "[`docs/spec/`](spec/)). Generated by `python3 scripts/spec_coverage.py` from test names in",
        "`crates/`, `interop/` and `fuzz/` and from [`spec-exemptions.tsv`](spec-exemptions.tsv);",
        "do not edit by hand. A test name carries `mqtt_<a>_<b>_<c>_<n>` for statement",
        "`MQTT-a.b.c-n`, prefixed `v5_` or `v311_` when it checks only that version's statement.",
        "",
        "## Summary",
        "",
        "| version | server + both | covered | exempt | missing | client-only (not applicable to a server) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for version, statements in specs.items():
        applicable = [s for s in statements.values() if s.applies_to != "client"]
        count = {status: sum(1 for s in applicable if s.status == status) for status in ("covered", "exempt", "missing")}
        client_only = len(statements) - len(applicable)
        out.append(
            f"| MQTT {version} | {len(applicable)} | {count['covered']} | {count['exempt']} "
            f"| {count['missing']} | {client_only} |"
        )
    for version, statements in specs.items():
        applicable = [s for s in statements.values() if s.applies_to != "client"]
        client_only = [s for s in statements.values() if s.applies_to == "client"]
        out += [
            "",
            f"## MQTT {version}",
            "",
            f"### Statements on the server or on both sides ({len(applicable)})",
            "",
            "| id | applies to | statement | status | tests or reason |",
            "| --- | --- | --- | --- | --- |",
        ]
        for s in applicable:
            out.append(f"| {s.id} | {s.applies_to} | {excerpt(s.text)} | {s.status} | {evidence(s)} |")
        out += [
            "",
            f"### Client-only statements, not applicable to a server ({len(client_only)})",
            "",
            "A broker still enforces many of these as Malformed Packet or Protocol Error checks;",
            "tests that do so are listed.",
            "",
            "| id | statement | tests |",
            "| --- | --- | --- |",
        ]
        for s in client_only:
            tests = "<br>".join(f"`{cell(t)}`" for t in sorted(s.tests)) or "—"
            out.append(f"| {s.id} | {excerpt(s.text)} | {tests} |")
    if unknown:
        out += ["", "## Test names that name no statement", ""]
        out += [f"- {line}" for line in unknown]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help=f"fail if {OUTPUT} is not up to date; write nothing")
    parser.add_argument("--strict", action="store_true", help="like --check, and fail on missing statements or unknown tokens")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this script's repository)")
    args = parser.parse_args(argv)

    root = args.root.resolve()
    try:
        specs = load_statements(root)
        load_exemptions(root, specs)
    except (InputError, OSError) as error:
        print(f"spec_coverage: {error}", file=sys.stderr)
        return 2
    unknown = scan_tests(root, specs)
    document = render(specs, unknown)

    for version, statements in specs.items():
        applicable = [s for s in statements.values() if s.applies_to != "client"]
        covered = sum(1 for s in applicable if s.status == "covered")
        exempt = sum(1 for s in applicable if s.status == "exempt")
        print(
            f"spec_coverage: MQTT {version}: {covered} covered, {exempt} exempt, "
            f"{len(applicable) - covered - exempt} missing of {len(applicable)} server/both statements"
        )
    for line in unknown:
        print(f"spec_coverage: warning: {line.replace('`', '')}", file=sys.stderr)

    output = root / OUTPUT
    if not (args.check or args.strict):
        output.write_text(document, encoding="utf-8")
        print(f"spec_coverage: wrote {OUTPUT}")
        return 0

    failed = False
    committed = output.read_text(encoding="utf-8") if output.exists() else ""
    if committed != document:
        failed = True
        diff = difflib.unified_diff(
            committed.splitlines(), document.splitlines(), f"{OUTPUT} (committed)", f"{OUTPUT} (generated)", lineterm=""
        )
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        print(
            f"spec_coverage: {OUTPUT} is stale: run `python3 scripts/spec_coverage.py` and commit it",
            file=sys.stderr,
        )
    if args.strict:
        missing = [
            f"{version} {s.id}"
            for version, statements in specs.items()
            for s in statements.values()
            if s.applies_to != "client" and s.status == "missing"
        ]
        if missing:
            failed = True
            print(f"spec_coverage: {len(missing)} statements have no test and no exemption:", file=sys.stderr)
            for line in missing:
                print(f"  {line}", file=sys.stderr)
        if unknown:
            failed = True
            print("spec_coverage: test names above name no statement", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
