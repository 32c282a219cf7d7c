"""Schoolgate: categories.

The category engine: "which categories is this host or URL in?" for every
request and DNS query.  No mitmproxy import anywhere in this package.

    from categories import CategoryIndex, LiveIndex, normalise_url
    with CategoryIndex.open(path) as index:
        index.lookup_url(normalise_url("http://www.example.com/page"))
"""
from categories.errors import CategoryError, CategoryImportError, IndexFormatError
from categories.index import CategoryIndex
from categories.live import LiveIndex
from categories.normalise import NormalisedHost, NormalisedURL, normalise_host, normalise_url

__all__ = [
    "CategoryError", "CategoryImportError", "CategoryIndex", "IndexFormatError", "LiveIndex",
    "NormalisedHost", "NormalisedURL", "normalise_host", "normalise_url",
]
