//! reelay: turns an ad-ops request into delivery-ready video on a CDN path.
//!
//! Start at `ARCHITECTURE.md` for the map of modules and the flow.

pub mod media;
pub mod runware;
pub mod secret;
pub mod simulator;
pub mod storage;
