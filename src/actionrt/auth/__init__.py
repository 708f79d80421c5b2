"""Authentication: the scheme interface, the built-in schemes and the token cache."""
