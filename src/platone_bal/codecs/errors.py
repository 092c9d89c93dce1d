"""The one error a codec raises: the payload as a whole cannot be read."""


class DecodeError(ValueError):
    """The payload cannot be decoded; `str(error)` is the reason stored with the rejection."""
