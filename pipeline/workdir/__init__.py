"""The working directory on disk: the store, its commit point, the writer lock and versioned stage outputs."""
