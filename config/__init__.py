"""Schoolgate: config."""
