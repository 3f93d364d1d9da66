"""Copy the official FHIR R4 JSON examples into tests/data/r4-examples/ from a pinned package.

Source (pinned by version and SHA-256): the Maven Central artifact
``org.hl7.fhir.testcases:fhir-test-cases`` (``ARTIFACT``), HL7's own test-case package of the
reference validator and FHIRPath engine. Its folder ``org/hl7/fhir/testcases/r4/examples/`` holds
R4 4.0.1 specification examples; this script takes every ``*.json`` entry there (not the
``*.json.out`` FHIRPath outputs, not the XML) byte for byte, and writes
``tests/data/r4-examples/MANIFEST.json``: the source (artifact, URL, jar SHA-256, folder) and the
SHA-256 of each entry. tests/validation/test_r4_examples.py proves the committed files equal the
manifest (offline) and validates them (docs/r4-definitions.md#examples).

    .venv/bin/python scripts/derive_r4_examples.py [path/to/fhir-test-cases-X.jar]
    .venv/bin/python scripts/derive_r4_examples.py --check [jar]   # compare, write nothing

Without a jar argument it is read from the local Maven repository (``~/.m2``), downloaded there
from Maven Central first when missing. A jar whose SHA-256 is not ``JAR_SHA256`` is refused.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

GROUP, NAME, VERSION = "org.hl7.fhir.testcases", "fhir-test-cases", "1.7.69"
ARTIFACT = f"{GROUP}:{NAME}:{VERSION}"
JAR_SHA256 = "827a559099ae3297c3f96ab5749b419a24600d74b6a09e23620881a9c17df741"
URL = (
    "https://repo1.maven.org/maven2/"
    f"{GROUP.replace('.', '/')}/{NAME}/{VERSION}/{NAME}-{VERSION}.jar"
)
FOLDER = "org/hl7/fhir/testcases/r4/examples/"
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "r4-examples"
MANIFEST = "MANIFEST.json"


def local_jar() -> Path:
    """Where Maven keeps the pinned artifact (the path the download writes to)."""
    return Path.home() / ".m2" / "repository" / URL.split("/maven2/", 1)[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(jar: Path) -> None:
    """Download the pinned jar to ``jar`` (via a temporary file; checked before it is kept)."""
    jar.parent.mkdir(parents=True, exist_ok=True)
    part = jar.with_suffix(".part")
    with urllib.request.urlopen(URL, timeout=600) as response:  # noqa: S310 - fixed https URL
        part.write_bytes(response.read())
    if sha256(part.read_bytes()) != JAR_SHA256:
        part.unlink()
        raise SystemExit(f"{URL}: SHA-256 differs from the pinned {JAR_SHA256}")
    part.replace(jar)


def derive(jar: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(manifest, file name -> bytes) from the jar; refuses a jar that is not the pinned one."""
    digest = sha256(jar.read_bytes())
    if digest != JAR_SHA256:
        raise SystemExit(f"{jar}: SHA-256 {digest} is not the pinned {JAR_SHA256}")
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    with zipfile.ZipFile(jar) as zf:
        for entry in sorted(zf.namelist()):
            name = entry.removeprefix(FOLDER)
            if not entry.startswith(FOLDER) or not name or "/" in name:
                continue
            if name.endswith(".json"):
                files[name] = zf.read(entry)
            else:
                skipped.append(name)
    manifest = {
        "about": "R4 JSON examples copied byte for byte by scripts/derive_r4_examples.py "
        "(docs/r4-definitions.md#examples); files: name -> SHA-256 of the jar entry",
        "source": {"artifact": ARTIFACT, "url": URL, "sha256": JAR_SHA256, "folder": FOLDER},
        "skipped": skipped,
        "files": {name: sha256(data) for name, data in files.items()},
    }
    return manifest, files


def encode(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def committed_differences(manifest: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    """What differs between the derivation and tests/data/r4-examples/ (empty: equal)."""
    found = {p.name for p in OUT.glob("*.json") if p.name != MANIFEST}
    diffs = [f"not derived: {n}" for n in sorted(found - set(files))]
    diffs += [
        f"differs: {n}"
        for n, d in files.items()
        if not (OUT / n).is_file() or (OUT / n).read_bytes() != d
    ]
    if not (OUT / MANIFEST).is_file() or (OUT / MANIFEST).read_bytes() != encode(manifest):
        diffs.append(f"differs: {MANIFEST}")
    return diffs


def main(argv: list[str]) -> None:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    jar = Path(args[0]) if args else local_jar()
    if not args and not jar.exists():
        fetch(jar)
    manifest, files = derive(jar)
    if check:
        diffs = committed_differences(manifest, files)
        print("\n".join(diffs) or f"{OUT}: equal to {ARTIFACT}")
        raise SystemExit(1 if diffs else 0)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    (OUT / MANIFEST).write_bytes(encode(manifest))
    print(f"{OUT}: {len(files)} examples from {ARTIFACT} ({len(manifest['skipped'])} skipped)")


if __name__ == "__main__":
    main(sys.argv[1:])
