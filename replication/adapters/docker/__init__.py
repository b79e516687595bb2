"""Docker imports' outside world: registries (distribution API v2) and the persisted imports."""
