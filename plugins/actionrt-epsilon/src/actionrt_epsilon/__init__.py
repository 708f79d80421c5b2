"""actionrt-epsilon (being written)."""
