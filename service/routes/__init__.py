"""The HTTP routes, each group built for one app's state (no module-level globals)."""
