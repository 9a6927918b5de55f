//! Runnable examples of the pool suite; see `examples/` and the README.
