"""The one error the verbs raise: a message and the exit code (1 API/not found/timeout, 2 bad input)."""

from __future__ import annotations


class CtlError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BadInput(CtlError):
    """Exit 2: input agentctl or the server rejects (argparse's convention)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


__all__ = ["BadInput", "CtlError"]
