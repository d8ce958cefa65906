//! Helpers shared by the end-to-end tests (`mod common;` in a tests/*.rs file).
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

pub mod peers;
pub mod process;
pub mod ramfs;
pub mod registry;
