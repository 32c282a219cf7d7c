"""Schoolgate: categories."""
