//! The thin IO layer: socket builders, kernel timestamps, batching and privileges.
//!
//! This is the only module of probe-core allowed to use `unsafe`; each use carries a
//! `// SAFETY:` comment.
#![allow(unsafe_code)]
