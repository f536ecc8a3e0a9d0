"""What a line typed at `charrnn sample --interactive` means: a prime to continue, or a command
that changes the settings (`:t 0.5`, `:n 300`, `:k 40`, `:p 0.9`, `:seed 3`, `:help`).

Pure: it turns lines into actions and settings; the loop that reads and prints is
cli_interactive. Settings are a SampleConfig, so they are checked as sampling checks them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .config import SampleConfig
from .errors import ConfigError

OFF_WORDS = ("off", "none", "random", "-")
HELP = """\
Type a prime and press Enter to see it continued (\\n in a prime is a newline; an empty line
starts from nothing). Ctrl-C stops a continuation, Ctrl-D quits; up and down recall lines.
  :t 0.5     temperature (> 0; lower is safer)
  :n 300     characters per continuation
  :k 40      draw among the 40 most likely characters (:k off)
  :p 0.9     draw among the most likely holding 90% of the probability (:p off)
  :seed 3    the same seed, prime and settings give the same text (:seed random)
  :help      this help and the settings;  :q quits"""

# command -> (the SampleConfig field it sets, how its value is read, its name in messages)
SETTINGS = {
    "t": ("temperature", float, "temperature"),
    "n": ("length", int, "length"),
    "k": ("top_k", int, "top-k"),
    "p": ("top_p", float, "top-p"),
    "seed": ("seed", int, "seed"),
}
OPTIONAL = ("top_k", "top_p", "seed")  # these can be turned off
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


@dataclass(frozen=True)
class Action:
    """What to do with a line: continue `prime`, say `message` (an error if `failed`), or quit."""

    prime: str | None = None
    message: str | None = None
    failed: bool = False
    quit: bool = False


def unescape(line: str) -> str:
    """A typed prime with \\n, \\t and \\\\ made into a newline, a tab and a backslash."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), line)


class Session:
    """The settings of an interactive session, changed by the commands typed."""

    def __init__(self, config: SampleConfig):
        self.config = dataclasses.replace(config, prime="", num_samples=1)

    def handle(self, line: str) -> Action:
        """The action a typed line asks for; a command changes the settings at once."""
        if not line.startswith(":"):
            return Action(prime=unescape(line))
        name, _, value = line[1:].strip().partition(" ")
        name, value = name.lower(), value.strip()
        if name in ("q", "quit", "exit"):
            return Action(quit=True)
        if name in ("help", "h", "?"):
            return Action(message=f"{HELP}\nnow: {self.describe()}")
        if name not in SETTINGS:
            return Action(message=f"no command :{name}; :help lists them", failed=True)
        return self._set(name, value)

    def _set(self, name: str, value: str) -> Action:
        field, read, shown = SETTINGS[name]
        if not value:
            return Action(message=f"{shown} {self._value(field)}")
        try:
            if value.lower() in OFF_WORDS and field in OPTIONAL:
                new_value = None
            else:
                new_value = read(value)
            self.config = dataclasses.replace(self.config, **{field: new_value})
        except ValueError:
            kind = "a whole number" if read is int else "a number"
            return Action(message=f":{name} takes {kind}, not {value!r}", failed=True)
        except ConfigError as problem:
            return Action(message=str(problem), failed=True)
        return Action(message=f"{shown} {self._value(field)}")

    def _value(self, field: str) -> str:
        value = getattr(self.config, field)
        if value is None:
            return "random" if field == "seed" else "off"
        return f"{value:g}" if isinstance(value, float) else str(value)

    def describe(self) -> str:
        """The settings in one line: 'temperature 0.8, length 500, top-k off, ...'."""
        return ", ".join(f"{shown} {self._value(field)}" for field, _, shown in SETTINGS.values())

    def sample_config(self, prime: str) -> SampleConfig:
        """The settings for continuing `prime`."""
        return dataclasses.replace(self.config, prime=prime)
