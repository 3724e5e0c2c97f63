//! # roost-store
//!
//! Persistence for Roost (work in progress in this commit).

#![warn(missing_docs)]
