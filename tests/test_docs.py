"""The repository's own docs/: every citation of a docs page (and anchor) in the code, the README,
profiles, scripts, benchmarks and tests resolves; links between docs pages resolve; no document
outside the repository is cited; every code of the code table is explained in docs/codes.md."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED = ("fhir_iastm", "profiles", "scripts", "benchmarks", "tests", "README.md")
SUFFIXES = {".py", ".md", ".json", ".toml", ".txt", ""}
CITATION = re.compile(r"docs/([A-Za-z0-9_-]+\.md)(?:#([A-Za-z0-9_-]+))?")
LINK = re.compile(r"\]\(([A-Za-z0-9_-]+\.md)?(?:#([A-Za-z0-9_-]+))?\)")
#: What only documents outside this repository were: never cited (docs/README.md says why).
OUTSIDE = re.compile(
    r"MAPPING|DESIGN(?:\.md)? ?§|LAYOUT\.md|STYLE(?:\.md)? ?§|hapi-local|\.\./shared/"
)


def _files() -> Iterator[Path]:
    for name in SCANNED:
        path = ROOT / name
        found = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in found:
            skip = ("__pycache__" in file.parts or "node_modules" in file.parts
                    or file.name == Path(__file__).name)
            if file.is_file() and file.suffix in SUFFIXES and not skip:
                yield file


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text("utf-8")
    found = set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    found |= {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}
    return found


def _check(page: str, anchor: str | None, where: str) -> str | None:
    target = DOCS / page
    if not target.is_file():
        return f"{where}: docs/{page} does not exist"
    if anchor and anchor not in anchors(target):
        return f"{where}: docs/{page} has no anchor #{anchor}"
    return None


def test_every_cited_docs_page_and_anchor_exists() -> None:
    problems, cited = [], 0
    for file in _files():
        text = file.read_text("utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            for page, anchor in CITATION.findall(line):
                cited += 1
                problem = _check(page, anchor or None, f"{file.relative_to(ROOT)}:{n}")
                if problem:
                    problems.append(problem)
    assert cited > 50, cited  # the code does cite docs/
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_between_docs_pages_resolve(page: str) -> None:
    problems = []
    for n, line in enumerate((DOCS / page).read_text("utf-8").splitlines(), 1):
        for target, anchor in LINK.findall(line):
            problem = _check(target or page, anchor or None, f"docs/{page}:{n}")
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems)


def test_no_document_outside_the_repository_is_cited() -> None:
    hits = []
    for file in [*_files(), *DOCS.glob("*.md")]:
        for n, line in enumerate(file.read_text("utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{file.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits)


def test_a_missing_anchor_is_reported() -> None:
    assert _check("decisions.md", "d22", "x") is None
    assert _check("decisions.md", "d99", "x") == "x: docs/decisions.md has no anchor #d99"
    assert _check("nowhere.md", None, "x") == "x: docs/nowhere.md does not exist"


def test_every_code_of_the_code_table_is_explained_in_codes_md() -> None:
    tables = json.loads((ROOT / "fhir_iastm/data/codes.json").read_text("utf-8"))
    doc = (DOCS / "codes.md").read_text("utf-8")
    missing = []
    for name, table in tables.items():
        if name.startswith("_"):
            continue
        for key, value in table.items():
            entries = value if isinstance(value, list) else [value]
            for entry in entries:
                if key.startswith("_") or not isinstance(entry, dict) or "code" not in entry:
                    continue
                if f"`{entry['code']}`" not in doc:
                    missing.append(f"{name}.{key}: {entry['code']}")
    assert not missing, missing


def test_clinical_md_lists_exactly_the_absolute_contraindications_the_rules_use() -> None:
    """docs/clinical.md#screening: the absolute / precaution table is the code table's ``kind``
    (the split awaits a clinician's review; the page must say so and cite the Delphi source)."""
    from fhir_iastm.records.vocab import raw_codes

    text = (Path(__file__).resolve().parents[1] / "docs" / "clinical.md").read_text("utf-8")
    rows = dict(re.findall(r"^\| `([a-z-]+)` [^|]*\| (absolute|precaution) \|$", text, re.M))
    table = {k: v["kind"] for k, v in raw_codes()["screening"].items()
             if not k.startswith("_") and v.get("kind") in ("absolute", "precaution")}
    assert rows == table
    assert "Cheatham et al., *Healthcare* 2025;13(6):642" in text
    assert "needs a\nclinician's review" in text
