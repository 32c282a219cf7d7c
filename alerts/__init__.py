"""Schoolgate: alerts."""
