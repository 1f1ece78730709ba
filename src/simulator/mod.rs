//! simulator (being written).
