"""The HTTP edge: routes that turn requests into service calls."""
