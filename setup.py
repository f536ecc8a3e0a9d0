"""Copies the shipped corpus and default model into the package when a wheel is built, so
`charrnn sample` works from an installed wheel with no training and no download."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ["checkpoints/shakespeare.pt", "corpora/shakespeare.txt"]


class BuildWithShippedFiles(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "charrnn" / "shipped"
        target.mkdir(parents=True, exist_ok=True)
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            source = root / name
            if source.is_file():
                shutil.copy2(source, target / source.name)


setup(cmdclass={"build_py": BuildWithShippedFiles})
