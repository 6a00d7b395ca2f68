"""Linli records backend: the single source of truth behind every channel."""
