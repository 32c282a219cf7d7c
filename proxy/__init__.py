"""Schoolgate: proxy."""
