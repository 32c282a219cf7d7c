"""Shared test fixtures: real local servers and a demo-school proxy on loopback."""
