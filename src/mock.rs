//! The stand-in gateway.
