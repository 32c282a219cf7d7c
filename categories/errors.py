"""The exceptions of the category engine, in one place (as httpx does)."""
from __future__ import annotations


class CategoryError(Exception):
    """Base class of every error the category engine raises on purpose."""


class CategoryImportError(CategoryError):
    """A list, tree or tarball cannot be imported.

    `member` names the file (or tar member) at fault when there is one; the
    message always says what is wrong with it.
    """

    def __init__(self, message: str, member: str | None = None) -> None:
        self.member = member
        self.reason = message
        super().__init__(f"{member}: {message}" if member else message)


class IndexFormatError(CategoryError):
    """A compiled index file is missing, truncated or of another format version."""


class FetchError(CategoryError):
    """A source could not be downloaded (network, HTTP status, size limit)."""


class UpdateRefused(CategoryError):
    """A downloaded list failed validation (for example it shrank too much)."""
