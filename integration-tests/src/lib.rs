//! Shared helpers for the tests that run the pools against real servers.
//!
//! The tests themselves live in `tests/`, one file per driver or fault.
