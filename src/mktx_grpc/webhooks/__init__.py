"""The Starlette sidecar that X calls: CRC checks and Account Activity deliveries."""
