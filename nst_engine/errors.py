"""The engine's error hierarchy. Every message is one line a user can act on."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: anything the engine refuses or cannot finish, with a one-line reason."""


class SettingsError(EngineError, ValueError):
    """A render setting has a value the engine cannot use."""

    def __init__(self, field: str, message: str, part: str | int | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.part = part  # the key or index inside the setting at fault (a layer, a scale), when one is


class ImageError(EngineError):
    """An input image cannot be decoded or used (corrupt, empty, animated, too big)."""


class ImageTooSmallError(ImageError):
    """The image is smaller than the network can see through its deepest layer."""


class WeightsError(EngineError):
    """Network weights are missing, corrupt or in a layout we do not know."""


class RenderDivergedError(EngineError):
    """The loss became NaN or infinite, or the result is blank; nothing is written."""


class RenderCancelledError(EngineError):
    """`should_cancel` returned True; the partial state went to `on_checkpoint`."""
