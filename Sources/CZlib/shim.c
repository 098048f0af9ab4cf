// Intentionally empty: CZlib only exposes zlib to Swift.
