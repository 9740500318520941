"""Replay of the committed inputs of the load fuzzer (tests/fuzz/fuzz_load.py; no atheris needed): every file in
tests/fuzz/corpus/ is an input it found (named by what is damaged in it), and each must load or be refused with
``rnnfast.load``'s documented error, a ValueError whose message starts with the file's name."""

from __future__ import annotations

from pathlib import Path

import pytest

import rnnfast

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*"))


def test_the_corpus_is_there():
    assert CORPUS, "tests/fuzz/corpus/ is empty"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_fuzzer_finding_is_refused_as_documented(path):
    try:
        rnnfast.load(path)
    except ValueError as exc:
        assert str(exc).startswith(f"{path}: "), exc
    # Also through a file object, as the fuzzer loads it (the file's name then comes from the object).
    with open(path, "rb") as f:
        try:
            rnnfast.load(f)
        except ValueError as exc:
            assert str(exc).startswith(f"{f.name}: "), exc
