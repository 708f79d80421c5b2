"""actionrt-adobe (being written)."""
