"""Repository layer: keyword-only functions over a session; no HTTP concerns."""
