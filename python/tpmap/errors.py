"""tpmap's exceptions: one base class, and the built-in kind each error also is.

Every exception raised by tpmap is a :class:`TpmapError`. Each kind also subclasses the built-in
exception a Python user expects for what happened, so ``except FileNotFoundError`` and ``except
ValueError`` work as usual:

=========================  =====================================  ==============================
class                      also a                                 raised when
=========================  =====================================  ==============================
``InvalidRowError``        ``ValueError``                         a row fails validation (strict
                                                                  mode); ``file``, ``row``,
                                                                  ``line``, ``column``
``FormatError``            ``ValueError``                         a file is unusable as a whole
                                                                  (missing columns, damaged,
                                                                  wrong encoding); ``file``
``ConfigError``            ``ValueError``                         an option, edition or catalogue
                                                                  is wrong
``RuleError``              ``ConfigError``                        an eligibility rule does not
                                                                  parse; ``column``
``LimitError``             —                                      an input is larger than a
                                                                  resource limit; ``file``
``TpmapFileNotFoundError`` ``FileNotFoundError``                  a file does not exist;
                                                                  ``filename``
``TpmapOSError``           ``OSError``                            any other I/O failure
=========================  =====================================  ==============================

Messages never hold a citizen ID: long numbers are shown as ``#``.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "ConfigError",
    "FormatError",
    "InvalidRowError",
    "LimitError",
    "RuleError",
    "TpmapError",
    "TpmapFileNotFoundError",
    "TpmapOSError",
]


class TpmapError(Exception):
    """An error from tpmap; the message names file, row and column where it can."""


class InvalidRowError(TpmapError, ValueError):
    """A row failed validation (strict mode)."""

    def __init__(self, message: str, file: str, row: int, line: int | None, column: str) -> None:
        super().__init__(message)
        self.file = file
        self.row = row
        self.line = line
        self.column = column


class FormatError(TpmapError, ValueError):
    """A file is unusable as a whole."""

    def __init__(self, message: str, file: str) -> None:
        super().__init__(message)
        self.file = file


class ConfigError(TpmapError, ValueError):
    """An option, edition, catalogue or model is inconsistent."""


class RuleError(ConfigError):
    """An eligibility rule does not parse; ``column`` counts characters from 1."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


class LimitError(TpmapError):
    """An input is larger than a resource limit allows (the message names the option to raise)."""

    def __init__(self, message: str, file: str) -> None:
        super().__init__(message)
        self.file = file


class TpmapOSError(TpmapError, OSError):
    """A file could not be read or written."""

    def __init__(self, message: str, filename: str | None = None, code: int | None = None) -> None:
        OSError.__init__(self, code or 0, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


class TpmapFileNotFoundError(TpmapOSError, FileNotFoundError):
    """A file does not exist."""

    def __init__(self, message: str, filename: str | None = None, code: int | None = None) -> None:
        super().__init__(message, filename, code or _errno.ENOENT)
