//! Runnable examples of the pool suite; see `examples/` and the README.
//!
//! The web service example's routes live here, so its test can serve them too.

pub mod web_service;
