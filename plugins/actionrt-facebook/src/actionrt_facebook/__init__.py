"""actionrt-facebook (being written)."""
