"""Exceptions raised for user errors (bad files, bad parameters).

The CLI turns a :class:`ClassicPRError` into a one-line message and exit code 2;
any other exception is a bug.
"""


class ClassicPRError(Exception):
    """A problem with the user's input: a file, a parameter or a data set."""


class ImageReadError(ClassicPRError):
    """An image file that cannot be read or decoded."""


class CorruptFileError(ClassicPRError):
    """A classicpr file (index, vocabulary, feature store) that fails its checks."""
