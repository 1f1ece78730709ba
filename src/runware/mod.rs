//! runware (being written).
