"""Schoolgate: reports."""
