"""The one exception type users see for bad input: the CLI prints its message on one line."""


class EFTEvalError(Exception):
    """Bad input or configuration. The message names the file, field or value at fault."""


__all__ = ["EFTEvalError"]
