"""actionrt-firebase (being written)."""
