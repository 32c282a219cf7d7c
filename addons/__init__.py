"""Schoolgate: addons."""
