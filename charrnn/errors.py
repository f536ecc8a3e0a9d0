"""Errors a user can fix. The CLI prints them as one line and exits with `exit_code`."""


class CharRNNError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    exit_code = 1


class ConfigError(CharRNNError):
    """A nonsense option (negative size, dropout outside [0, 1), ...): a usage error."""

    exit_code = 2


class DataError(CharRNNError):
    """A corpus or input text that cannot be used."""


class VocabError(CharRNNError):
    """Text holds characters the model never saw."""


class CheckpointError(CharRNNError):
    """A checkpoint that is missing, corrupt, foreign or unsafe to load."""


class DeviceError(CharRNNError):
    """A device that was asked for but is not present."""

    exit_code = 2


class TrainingDiverged(CharRNNError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class ResourceError(CharRNNError):
    """The machine lacks what a run needs (memory), found before anything is allocated."""


class ServeError(CharRNNError):
    """The server cannot start: the serve extra is missing, or the address cannot be bound."""


class MissingExtra(CharRNNError):
    """An optional feature whose package is not installed; the message names the pip extra."""


class DistributedError(CharRNNError):
    """A process of a distributed run failed or could not reach the others."""
