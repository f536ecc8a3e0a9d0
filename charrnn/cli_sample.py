"""How `charrnn sample` writes what it makes: samples drawn at random and streamed, or the most
likely texts by beam search; and the novelty report after each. Thin, like cli.py: check the
options, call the library, render. (The interactive prompt is in cli_interactive.)"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from .config import SampleConfig, flag
from .console import info, sample_status, warn
from .errors import ConfigError
from .output import SampleWriter

# What only a random draw uses: meaningless for beam search.
SAMPLING_ONLY = ("temperature", "greedy", "top_k", "top_p", "seed")


def check_sample_modes(
    given: dict[str, Any], beam: int | None, interactive: bool, as_json: bool
) -> None:
    """Refuse, in one line, options that do not go together (given: the config fields set)."""
    if beam is not None:
        clash = [flag(name) for name in SAMPLING_ONLY if name in given]
        if clash:
            raise ConfigError(
                f"--beam looks for the most likely text, so {', '.join(clash)} cannot apply; "
                "drop them, or drop --beam to sample"
            )
        if interactive:
            raise ConfigError("--beam and --interactive do not go together; drop one")
    if interactive:
        if as_json:
            raise ConfigError("--interactive writes for a person; drop --json")
        if given.get("num_samples", 1) != 1:
            raise ConfigError(
                f"--interactive makes one continuation at a time; drop {flag('num_samples')}"
            )
        if not sys.stdin.isatty():
            raise ConfigError(
                "--interactive needs a terminal on stdin; from a script, give the prime with --prime"
            )


class NoveltyReport:
    """Measures samples against a corpus (its index built once, or read from the cache)."""

    def __init__(self, corpus: str, checkpoint_info: dict[str, Any], quiet: bool):
        from .novelty import NoveltyIndex, cache_path, training_corpus

        text, self.corpus = training_corpus(corpus, checkpoint_info)
        if not quiet and not cache_path(text).exists():
            info(
                f"novelty: indexing {self.corpus} ({len(text):,} chars) once; "
                f"cached in {cache_path(text).parent}"
            )
        self.index = NoveltyIndex.for_text(text)
        self._measured: dict[str, Any] = {}

    def measure(self, text: str) -> Any:
        if text not in self._measured:
            self._measured[text] = self.index.measure(text)
        return self._measured[text]

    def fields(self, sample: Any) -> dict[str, Any]:
        """For a sample's JSON object."""
        return {"novelty": self.measure(sample.text).to_dict()}

    def report(self, samples: list[Any]) -> None:
        """A line on stderr per sample."""
        for number, sample in enumerate(samples, 1):
            label = f"sample {number}: " if len(samples) > 1 else ""
            info(label + self.measure(sample.text).summary(self.corpus))


def annotations(*parts: Callable[[Any], dict[str, Any]] | None) -> Callable[[Any], dict[str, Any]]:
    """One annotate function (see SampleWriter) from several."""

    def annotate(sample: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for part in parts:
            if part is not None:
                fields.update(part(sample))
        return fields

    return annotate


def write_beam(
    loaded: Any,
    config: SampleConfig,
    width: int,
    stdout: Any,
    as_json: bool,
    quiet: bool,
    annotate: Callable[[Any], dict[str, Any]] | None,
) -> list[Any]:
    """Search, then write the best texts as sampling writes its samples (the most likely first)."""
    from .beam import BeamSearch
    from .sampling import Piece

    search = BeamSearch(loaded.model, loaded.vocab, config, width)
    if search.skipped_note:
        warn(search.skipped_note)
    if not quiet:
        where = loaded.path or "the shipped model"
        info(
            f"beam search of {width} from {where} ({loaded.model_config.shape}) on {search.device}"
        )
    writer = SampleWriter(
        stdout, search.prime, as_json, annotations(lambda s: {"beam": width}, annotate)
    )
    writer.start()
    samples = search.run()
    for index, sample in enumerate(samples):
        writer.piece(Piece(index, sample.text if index == 0 else "", sample))
    writer.finish(samples)
    return samples


def write_samples(
    loaded: Any,
    config: SampleConfig,
    stdout: Any,
    as_json: bool,
    quiet: bool,
    annotate: Callable[[Any], dict[str, Any]] | None,
    keep: bool = False,
) -> list[Any]:
    """Draw the samples, streaming the first as it is made, and say how fast on stderr. They
    are kept (and returned) only when `keep` asks: any number of them streams through bounded
    memory otherwise."""
    from .sampling import Generation

    generation = Generation(loaded.model, loaded.vocab, config, keep_samples=keep)
    if generation.skipped_note:
        warn(generation.skipped_note)
    if not quiet:
        weights = f"{loaded.model_config.shape}, {generation.precision} weights"
        info(sample_status(loaded.path, weights, str(generation.device), generation.seeds))
    writer = SampleWriter(stdout, generation.prime, as_json, annotate)
    started = time.perf_counter()
    writer.start()
    chars = 0
    for piece in generation:
        writer.piece(piece)
        chars += piece.finished.chars if piece.finished is not None else 0
    writer.finish()
    if not quiet:
        seconds = time.perf_counter() - started
        info(f"{chars:,} characters in {seconds:.2f} s ({chars / max(seconds, 1e-9):,.0f} chars/s)")
    return generation.samples
