"""The package's public names: each is what it says, however the modules were imported."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_public_functions_stay_functions_after_their_modules_are_imported():
    probe = (
        "import charrnn.training, charrnn.scoring, charrnn.sampling\n"
        "from charrnn import train, score, generate\n"
        "assert callable(train) and train.__module__ == 'charrnn.training', train\n"
        "assert callable(score) and score.__module__ == 'charrnn.scoring', score\n"
        "import charrnn\n"
        "assert charrnn.train is train and callable(charrnn.score)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves():
    import charrnn

    for name in charrnn.__all__:
        assert getattr(charrnn, name) is not None, name
