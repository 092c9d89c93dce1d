"""Bytes -> canonical readings. Pure functions; every failure is a DecodeError with a reason."""

from platone_bal.codecs.detect import Decoded, decode, decode_envelope
from platone_bal.codecs.errors import DecodeError

__all__ = ["DecodeError", "Decoded", "decode", "decode_envelope"]
